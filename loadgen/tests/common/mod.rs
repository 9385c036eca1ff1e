//! Helpers shared by loadgen's integration tests.

use std::path::PathBuf;
use std::process::Command;

use loadgen::cluster::launcher::find_node_bin;

/// The gossip-node binary of this workspace, built if `cargo test -p loadgen` alone did not.
pub fn node_bin() -> PathBuf {
    let bin = find_node_bin(None);
    if bin.is_file() {
        return bin;
    }
    let status = Command::new(env!("CARGO"))
        .args(["build", "-p", "gossip-node", "--bin", "gossip-node"])
        .status()
        .expect("running cargo build for gossip-node");
    assert!(status.success(), "building gossip-node failed");
    let bin = find_node_bin(None);
    assert!(bin.is_file(), "gossip-node not found beside {bin:?}");
    bin
}
