//! Starting and stopping node processes behind a [`Launcher`] trait: local processes now, remote
//! hosts (ssh, containers) later with the same interface.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// Everything needed to (re)start one node.
#[derive(Clone, Debug)]
pub struct NodeSpec {
    /// Node index in the scenario.
    pub index: usize,
    /// Peer name (peer.id).
    pub name: String,
    /// The gossip-node binary.
    pub bin: PathBuf,
    /// Its arguments.
    pub args: Vec<OsString>,
    /// Extra environment.
    pub env: BTreeMap<String, String>,
    /// Working directory.
    pub workdir: PathBuf,
    /// File receiving stdout and stderr (appended, so restarts keep earlier output).
    pub log: PathBuf,
}

/// Starting a node failed.
#[derive(Debug, thiserror::Error)]
#[error("starting node {name} ({bin}): {source}")]
pub struct LaunchError {
    /// Peer name.
    pub name: String,
    /// Binary.
    pub bin: String,
    /// Why.
    pub source: std::io::Error,
}

/// A started node. Dropping it kills the node.
pub trait NodeHandle: Send {
    /// Process id on its host, when it has one we can read `/proc` of.
    fn pid(&self) -> Option<u32>;
    /// Kills with SIGKILL and reaps; idempotent.
    fn kill(&mut self);
    /// Whether it is still running.
    fn is_running(&mut self) -> bool;
}

/// Starts nodes somewhere.
pub trait Launcher {
    /// Starts one node; restarting is `start` again with the same spec (same identity and ports).
    fn start(&mut self, spec: &NodeSpec) -> Result<Box<dyn NodeHandle>, LaunchError>;
}

/// Local child processes.
#[derive(Default)]
pub struct LocalLauncher;

struct LocalNode {
    child: Option<Child>,
}

/// The argument that makes a node exit when loadgen's end of its stdin pipe closes.
const EXIT_WITH_LAUNCHER_ARG: &str = "--exit-on-stdin-eof";

impl NodeHandle for LocalNode {
    fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill(); // SIGKILL on Unix
            let _ = c.wait();
        }
    }

    fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }
}

impl Drop for LocalNode {
    fn drop(&mut self) {
        self.kill();
    }
}

impl Launcher for LocalLauncher {
    fn start(&mut self, spec: &NodeSpec) -> Result<Box<dyn NodeHandle>, LaunchError> {
        let err = |source| LaunchError {
            name: spec.name.clone(),
            bin: spec.bin.display().to_string(),
            source,
        };
        let log = File::options()
            .create(true)
            .append(true)
            .open(&spec.log)
            .map_err(err)?;
        let log2 = log.try_clone().map_err(err)?;
        let child = Command::new(&spec.bin)
            .args(&spec.args)
            .arg(EXIT_WITH_LAUNCHER_ARG)
            .envs(&spec.env)
            .current_dir(&spec.workdir)
            // The node holds the read end and exits on end of file (`EXIT_WITH_LAUNCHER_ARG`); the
            // write end lives in the `Child` and closes when loadgen ends, however it ends.
            .stdin(Stdio::piped())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(err)?;
        Ok(Box::new(LocalNode { child: Some(child) }))
    }
}

/// Finds the gossip-node binary: `explicit`, `$GOSSIP_NODE_BIN`, beside the current executable
/// (or its parent, for test executables in `target/*/deps`), then `gossip-node` on `$PATH`.
pub fn find_node_bin(explicit: Option<&PathBuf>) -> PathBuf {
    if let Some(p) = explicit {
        return p.clone();
    }
    if let Some(p) = std::env::var_os("GOSSIP_NODE_BIN") {
        return p.into();
    }
    if let Ok(exe) = std::env::current_exe() {
        for dir in exe.ancestors().skip(1).take(2) {
            let cand = dir.join("gossip-node");
            if cand.is_file() {
                return cand;
            }
        }
    }
    PathBuf::from("gossip-node")
}
