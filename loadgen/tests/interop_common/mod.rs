//! Helpers shared by the interop suites (`interop.rs`, `interop_identity.rs`): where Fabric's
//! gossip peer is, reading the test PKI, and the nodes' log tails for failure messages.

use std::path::{Path, PathBuf};

use loadgen::cluster::Cluster;

/// The fabric-node binary: `FABRIC_NODE_BIN`, else `../shared/tools/fabric-node/fabric-node`
/// beside the repository.
pub fn fabric_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("FABRIC_NODE_BIN") {
        return p.into();
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/tools/fabric-node/fabric-node")
}

/// The first file in `dir`.
pub fn only_file(dir: &Path) -> PathBuf {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no file in {}", dir.display()))
}

/// The last 30 lines of every node's log, each under a header naming the node and its binary.
pub fn logs(c: &Cluster) -> String {
    c.nodes
        .iter()
        .map(|n| {
            let text = std::fs::read_to_string(&n.spec.log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(30).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            format!(
                "--- node {} ({}):\n{}",
                n.index,
                n.spec.bin.display(),
                tail.join("\n")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}
