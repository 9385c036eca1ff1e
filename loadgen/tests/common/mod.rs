//! Helpers shared by loadgen's integration tests.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use loadgen::cluster::launcher::find_node_bin;

/// The gossip-node binary of this workspace (or `GOSSIP_NODE_BIN`), built once per test
/// process: `cargo test -p loadgen` alone does not build it, and a binary left beside the test
/// by an earlier build would run old code.
pub fn node_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if std::env::var_os("GOSSIP_NODE_BIN").is_none() {
            let mut args = vec!["build", "-q", "-p", "gossip-node", "--bin", "gossip-node"];
            if !cfg!(debug_assertions) {
                args.push("--release");
            }
            let status = Command::new(env!("CARGO"))
                .args(args)
                .status()
                .expect("running cargo build for gossip-node");
            assert!(status.success(), "building gossip-node failed");
        }
        let bin = find_node_bin(None);
        assert!(bin.is_file(), "gossip-node not found at {bin:?}");
        bin
    })
    .clone()
}
