//! Scenario files (TOML): every knob has a default, so an empty file is the built-in scenario.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// A scenario could not be read or is inconsistent.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML does not parse into a scenario.
    #[error("parsing scenario: {0}")]
    Parse(#[from] toml::de::Error),
    /// A value is out of range.
    #[error("invalid scenario: {0}")]
    Invalid(String),
    /// Nodes are to run a Fabric peer but no binary for it was found.
    #[error(
        "no Fabric peer binary for nodes {nodes:?} (tried {}): set `bin` in the scenario's [fabric] table or $FABRIC_NODE_BIN",
        tried.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    )]
    FabricBinMissing {
        /// The nodes that would run it.
        nodes: Vec<usize>,
        /// Paths looked at, in order.
        tried: Vec<PathBuf>,
    },
}

/// Which peer implementation a node runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PeerKind {
    /// gossip-node (this project), or whatever `--node-bin` / `node_bin` names.
    Ours,
    /// A Fabric peer speaking gossip-node's command line and control protocol (fabric-node).
    Fabric,
}

/// `[fabric]`: which nodes run a Fabric peer (`fabric-node`) instead of gossip-node. Absent or
/// empty: every node runs gossip-node (or the binary `--node-bin` names).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FabricPeers {
    /// Node indices that run the Fabric peer.
    pub nodes: Vec<usize>,
    /// Instead of `nodes`: this share of each org's peers, in `(0, 1]`, spread evenly over the
    /// org ([`Scenario::fabric_nodes`] says which).
    pub share: Option<f64>,
    /// The Fabric peer binary. Unset: `$FABRIC_NODE_BIN`, then
    /// `../shared/tools/fabric-node/fabric-node` beside the repository.
    pub bin: Option<PathBuf>,
}

/// The environment variable naming the Fabric peer binary.
pub const FABRIC_NODE_BIN_ENV: &str = "FABRIC_NODE_BIN";

/// Where the Fabric peer binary is looked for when neither the scenario nor
/// [`FABRIC_NODE_BIN_ENV`] names one: `shared/tools/fabric-node/fabric-node` beside the repository
/// this loadgen was built from, then the same relative to the working directory's parent.
pub fn fabric_bin_defaults() -> Vec<PathBuf> {
    let tail = Path::new("shared/tools/fabric-node/fabric-node");
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    vec![repo.join("..").join(tail), Path::new("..").join(tail)]
}

/// The Fabric peer binary: `explicit` (the scenario's `[fabric] bin`), else `env` (the value of
/// [`FABRIC_NODE_BIN_ENV`]), else the first of `defaults` that is a file. An explicit or
/// environment path must be a file; `nodes` only goes into the error.
pub fn resolve_fabric_bin(
    explicit: Option<&Path>,
    env: Option<PathBuf>,
    defaults: &[PathBuf],
    nodes: &[usize],
) -> Result<PathBuf, ScenarioError> {
    let candidates: Vec<PathBuf> = match explicit.map(Path::to_path_buf).or(env) {
        Some(p) => vec![p],
        None => defaults.to_vec(),
    };
    candidates
        .iter()
        .find(|p| p.is_file())
        .map(|p| std::fs::canonicalize(p).unwrap_or_else(|_| p.clone()))
        .ok_or_else(|| ScenarioError::FabricBinMissing {
            nodes: nodes.to_vec(),
            tried: candidates,
        })
}

/// Who injects each block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Injectors {
    /// The leader (first peer) of every org injects every block, as each org's leader receives
    /// it from the orderer in Fabric (data messages are org-scoped, so this reaches all orgs).
    PerOrg,
    /// Only node 0 (the leader of the first org) injects.
    Single,
}

/// What a partition does to the links it cuts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartitionMode {
    /// Close open connections and refuse new ones (the peer sees a reset).
    Cut,
    /// Keep connections open but silently discard every byte (the peer sees silence).
    BlackHole,
}

/// A partition between two groups of nodes, from `at_s` for `duration_s` (seconds after the
/// first scheduled block).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Partition {
    /// Start, seconds after the first scheduled block.
    pub at_s: f64,
    /// Length in seconds; the partition heals at `at_s + duration_s`.
    pub duration_s: f64,
    /// One side (node indices). Links between `a` and `b` (both directions) are affected.
    pub a: Vec<usize>,
    /// The other side; empty means "every node not in `a`".
    #[serde(default)]
    pub b: Vec<usize>,
    /// Cut or black-hole.
    #[serde(default = "default_mode")]
    pub mode: PartitionMode,
}

fn default_mode() -> PartitionMode {
    PartitionMode::Cut
}

/// Kill a node with SIGKILL at `at_s` and restart it (same identity, ports, config) after
/// `restart_after_s` (never, when absent).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Kill {
    /// Node index.
    pub node: usize,
    /// Seconds after the first scheduled block.
    pub at_s: f64,
    /// Restart delay in seconds; absent means the node stays down.
    #[serde(default)]
    pub restart_after_s: Option<f64>,
}

/// Faults: the userspace TCP proxy (delay, jitter, partitions), kills, and the node's drop hook.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Put the TCP proxy between nodes even without delay or partitions.
    pub proxy: bool,
    /// One-way delay added by the proxy to every chunk, per direction, in milliseconds.
    pub delay_ms: f64,
    /// Uniform extra delay in `[0, jitter_ms]` per chunk (order within a stream is kept).
    pub jitter_ms: f64,
    /// Partitions on a schedule.
    pub partitions: Vec<Partition>,
    /// Kills and restarts on a schedule.
    pub kills: Vec<Kill>,
    /// The node's `--fault-drop-share` (0 disables the hook).
    pub drop_share: f64,
    /// The node's `--fault-seed` base (node index is added).
    pub fault_seed: u64,
}

impl Faults {
    /// Whether the proxy is needed.
    pub fn uses_proxy(&self) -> bool {
        self.proxy || self.delay_ms > 0.0 || self.jitter_ms > 0.0 || !self.partitions.is_empty()
    }
}

/// One benchmark scenario.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Scenario {
    /// Name; results go to `results/<name>/`.
    pub name: String,
    /// Number of gossip-node processes.
    pub nodes: usize,
    /// Number of orgs; node `k` belongs to org `k % orgs`, nodes `0..orgs` are the org leaders.
    pub orgs: usize,
    /// Channels every node joins; blocks are injected on each.
    pub channels: Vec<String>,
    /// Payload bytes per block.
    pub block_size_bytes: u64,
    /// Blocks per second per channel (open loop: the schedule never waits for the system).
    pub rate_per_s: f64,
    /// Each block's due time is offset by a fixed pseudo-random amount in `[0, this)` ms within
    /// its interval, so a constant rate does not phase-lock with the node's periodic emitter
    /// flush (`maxPropagationBurstLatency`, 10 ms). 0 gives a strict grid.
    pub arrival_jitter_ms: f64,
    /// Injection length in seconds (warm-up included); ignored when `blocks` is set.
    pub duration_s: f64,
    /// Blocks per channel; overrides `duration_s`.
    pub blocks: Option<u64>,
    /// Blocks scheduled in the first `warmup_s` seconds are tagged warm-up and excluded.
    pub warmup_s: f64,
    /// Time to wait for stragglers after the last scheduled block, seconds.
    pub drain_s: f64,
    /// Limit on the wait for membership and channel convergence, seconds.
    pub converge_timeout_s: f64,
    /// Quiet window after convergence and before injection, seconds: the nodes' idle CPU and
    /// the background (alive, state-info) message rates are measured in it. One
    /// `aliveTimeInterval` (5 s by default) averages the periodic alive traffic.
    pub idle_s: f64,
    /// TLS between peers (`peer.tls.enabled`).
    pub tls: bool,
    /// `peer.gossip.skipBlockVerification` (Fabric reads it but does not use it).
    pub skip_block_verification: bool,
    /// Who injects.
    pub injectors: Injectors,
    /// The injecting nodes by index; overrides `injectors` when set. Data messages are org-scoped
    /// (as Fabric's, tag CHAN_AND_ORG), so every org needs an injector for blocks to reach it.
    pub injector_nodes: Option<Vec<usize>>,
    /// Nodes that run a Fabric peer instead of gossip-node (mixed clusters).
    pub fabric: FabricPeers,
    /// `peer.gossip.*` overrides written into every core.yaml (dotted keys for nesting, e.g.
    /// `"election.leaderAliveThreshold" = "10s"`); everything else is Fabric's default.
    pub gossip: BTreeMap<String, toml::Value>,
    /// Faults.
    pub faults: Faults,
    /// Pause between node starts, ms. Nodes started together run their alive timers in phase;
    /// then pairs dial each other at the same moment, and gossip-node's comm may close both
    /// connections of such a simultaneous dial, again each period. Staggering avoids that.
    pub start_stagger_ms: u64,
    /// Resource sampling period in milliseconds.
    pub sample_ms: u64,
    /// The gossip-node binary (default: beside loadgen's own executable, then `$PATH`).
    pub node_bin: Option<PathBuf>,
    /// Tokio worker threads per node (`--worker-threads`). 0, the default, gives each node its
    /// share of the machine: `cores / nodes`, at least 1; one thread runs tokio's current-thread
    /// scheduler, which is what many nodes on few cores want (see [`Scenario::node_threads`]).
    pub node_worker_threads: usize,
    /// Signature-verifier threads per node (`--verifier-threads`). Unset: none when a node runs one
    /// worker thread (signatures are checked on the connection tasks, no hand-off between
    /// threads), else gossip-node's default of one per core.
    pub node_verifier_threads: Option<usize>,
    /// Extra environment for every node (e.g. `RUST_LOG`).
    pub env: BTreeMap<String, String>,
}

/// Thread counts a node is started with, resolved from the scenario and the machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeThreads {
    /// `--worker-threads`.
    pub worker: usize,
    /// `--verifier-threads`; `None` leaves gossip-node's default.
    pub verifier: Option<usize>,
}

impl Default for Scenario {
    fn default() -> Self {
        Scenario {
            name: "default".into(),
            nodes: 6,
            orgs: 2,
            channels: vec!["mychannel".into()],
            block_size_bytes: 10 * 1024,
            rate_per_s: 10.0,
            arrival_jitter_ms: 10.0,
            duration_s: 20.0,
            blocks: None,
            warmup_s: 3.0,
            drain_s: 8.0,
            converge_timeout_s: 60.0,
            idle_s: 5.0,
            tls: true,
            skip_block_verification: false,
            injectors: Injectors::PerOrg,
            injector_nodes: None,
            fabric: FabricPeers::default(),
            gossip: BTreeMap::new(),
            faults: Faults::default(),
            start_stagger_ms: 250,
            sample_ms: 1000,
            node_bin: None,
            node_worker_threads: 0,
            node_verifier_threads: None,
            env: BTreeMap::new(),
        }
    }
}

impl Scenario {
    /// Parses TOML text and validates it.
    pub fn from_toml(text: &str) -> Result<Self, ScenarioError> {
        let s: Scenario = toml::from_str(text)?;
        s.validate()?;
        Ok(s)
    }

    /// Reads and validates a scenario file.
    pub fn load(path: &Path) -> Result<Self, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml(&text)
    }

    /// Blocks per channel.
    pub fn block_count(&self) -> u64 {
        self.blocks
            .unwrap_or_else(|| (self.duration_s * self.rate_per_s).round() as u64)
    }

    /// Interval between scheduled blocks, nanoseconds.
    pub fn interval_ns(&self) -> u64 {
        (1e9 / self.rate_per_s) as u64
    }

    /// Blocks (per channel) that fall in the warm-up window: sequence numbers `1..=this`.
    pub fn warmup_blocks(&self) -> u64 {
        ((self.warmup_s * self.rate_per_s).ceil() as u64).min(self.block_count())
    }

    /// The org of node `k` (0-based).
    pub fn org_of(&self, k: usize) -> usize {
        k % self.orgs
    }

    /// Nodes that inject blocks: `injector_nodes` when set, else by `injectors`.
    pub fn injector_nodes(&self) -> Vec<usize> {
        if let Some(nodes) = &self.injector_nodes {
            return nodes.clone();
        }
        match self.injectors {
            Injectors::PerOrg => (0..self.orgs.min(self.nodes)).collect(),
            Injectors::Single => vec![0],
        }
    }

    /// Nodes that run the Fabric peer, ascending: `[fabric] nodes`, or with `share` the `i`-th
    /// peer (0-based, in index order) of org `o` when `⌊(i + o + 1)·share⌋ > ⌊(i + o)·share⌋`:
    /// about `share` of every org, spread evenly, the pattern shifted by one per org so that with
    /// `share = 0.5` org 1's leader (node 0) runs gossip-node and org 2's (node 1) Fabric.
    pub fn fabric_nodes(&self) -> Vec<usize> {
        let mut out = match self.fabric.share {
            Some(share) => {
                let mut out = Vec::new();
                for o in 0..self.orgs {
                    let members = (0..self.nodes).filter(|&k| self.org_of(k) == o);
                    for (i, k) in members.enumerate() {
                        let at = |j: usize| (j as f64 * share + 1e-9).floor();
                        if at(i + o + 1) > at(i + o) {
                            out.push(k);
                        }
                    }
                }
                out
            }
            None => self.fabric.nodes.clone(),
        };
        out.sort_unstable();
        out.dedup();
        out
    }

    /// What node `k` runs.
    pub fn kind_of(&self, k: usize) -> PeerKind {
        if self.fabric_nodes().contains(&k) {
            PeerKind::Fabric
        } else {
            PeerKind::Ours
        }
    }

    /// The Fabric peer binary when some node runs it ([`resolve_fabric_bin`] with the scenario's
    /// `[fabric] bin`, `$FABRIC_NODE_BIN` and [`fabric_bin_defaults`]); `None` when none does.
    pub fn fabric_bin(&self) -> Result<Option<PathBuf>, ScenarioError> {
        let nodes = self.fabric_nodes();
        if nodes.is_empty() {
            return Ok(None);
        }
        let env = std::env::var_os(FABRIC_NODE_BIN_ENV)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from);
        resolve_fabric_bin(
            self.fabric.bin.as_deref(),
            env,
            &fabric_bin_defaults(),
            &nodes,
        )
        .map(Some)
    }

    /// The node runtime's threads on a machine with `cores` logical cores: the scenario's
    /// settings, else the share of the cores that the nodes would get if they all ran at once,
    /// so that 25 nodes on 2 cores do not run 50 scheduler threads and 50 verifier threads.
    pub fn node_threads(&self, cores: usize) -> NodeThreads {
        let worker = match self.node_worker_threads {
            0 => (cores / self.nodes).max(1),
            n => n,
        };
        let verifier = self.node_verifier_threads.or((worker == 1).then_some(0));
        NodeThreads { worker, verifier }
    }

    /// Peers per org, for the PKI.
    pub fn peers_per_org(&self) -> Vec<usize> {
        (0..self.orgs)
            .map(|o| (0..self.nodes).filter(|&k| self.org_of(k) == o).count())
            .collect()
    }

    /// Checks ranges and indices.
    pub fn validate(&self) -> Result<(), ScenarioError> {
        let bad = |m: String| Err(ScenarioError::Invalid(m));
        if self.nodes == 0 || self.orgs == 0 || self.orgs > self.nodes {
            return bad(format!(
                "need 1 <= orgs <= nodes (orgs {}, nodes {})",
                self.orgs, self.nodes
            ));
        }
        if self.channels.is_empty() {
            return bad("at least one channel".into());
        }
        if !(self.rate_per_s > 0.0 && self.rate_per_s <= 100_000.0) {
            return bad(format!("rate_per_s {} out of (0, 100000]", self.rate_per_s));
        }
        if self.block_count() == 0 {
            return bad("no blocks: set duration_s or blocks".into());
        }
        if !(0.0..=1.0).contains(&self.faults.drop_share) {
            return bad("faults.drop_share must be in [0, 1]".into());
        }
        if self.arrival_jitter_ms < 0.0 || self.faults.delay_ms < 0.0 || self.faults.jitter_ms < 0.0
        {
            return bad("delay and jitter must be >= 0".into());
        }
        for p in &self.faults.partitions {
            if p.a.is_empty() || p.a.iter().chain(&p.b).any(|&n| n >= self.nodes) {
                return bad(format!("partition sides must name nodes < {}", self.nodes));
            }
        }
        for k in &self.faults.kills {
            if k.node >= self.nodes {
                return bad(format!("kill of node {} >= nodes", k.node));
            }
        }
        self.validate_node_lists()?;
        if !(self.idle_s > 0.0 && self.idle_s.is_finite()) {
            return bad(format!("idle_s {} must be > 0", self.idle_s));
        }
        if self.sample_ms == 0 {
            return bad("sample_ms must be > 0".into());
        }
        Ok(())
    }

    /// Checks `injector_nodes` and `[fabric]`.
    fn validate_node_lists(&self) -> Result<(), ScenarioError> {
        let bad = |m: String| Err(ScenarioError::Invalid(m));
        let check = |what: &str, list: &[usize]| {
            if let Some(k) = list.iter().find(|&&k| k >= self.nodes) {
                return bad(format!(
                    "{what} names node {k}, but nodes are 0..={} (nodes = {})",
                    self.nodes - 1,
                    self.nodes
                ));
            }
            let mut sorted = list.to_vec();
            sorted.sort_unstable();
            if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
                return bad(format!("{what} names node {} twice", w[0]));
            }
            Ok(())
        };
        if let Some(list) = &self.injector_nodes {
            if list.is_empty() {
                return bad("injector_nodes is empty: name at least one node".into());
            }
            check("injector_nodes", list)?;
        }
        check("[fabric] nodes", &self.fabric.nodes)?;
        if let Some(share) = self.fabric.share {
            if !self.fabric.nodes.is_empty() {
                return bad("[fabric]: set either nodes or share, not both".into());
            }
            if !(share > 0.0 && share <= 1.0) {
                return bad(format!("[fabric] share {share} must be in (0, 1]"));
            }
        }
        if self.fabric.bin.is_some() && self.fabric_nodes().is_empty() {
            return bad("[fabric] bin is set but no node runs it: set nodes or share".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_toml_is_the_default_scenario() {
        let s = Scenario::from_toml("").unwrap();
        assert_eq!(s, Scenario::default());
        assert_eq!(s.block_count(), 200);
        assert_eq!(s.warmup_blocks(), 30);
        assert_eq!(s.injector_nodes(), vec![0, 1]);
        assert_eq!(s.peers_per_org(), vec![3, 3]);
        assert_eq!(s.idle_s, 5.0);
    }

    #[test]
    fn overrides_and_faults_parse() {
        let s = Scenario::from_toml(
            r#"
            name = "wan"
            nodes = 4
            orgs = 1
            blocks = 50
            [gossip]
            propagatePeerNum = 3
            pullInterval = "1s"
            "election.leaderAliveThreshold" = "10s"
            [faults]
            delay_ms = 20
            jitter_ms = 5
            kills = [{ node = 2, at_s = 3, restart_after_s = 2 }]
            [[faults.partitions]]
            at_s = 1
            duration_s = 2
            a = [0, 1]
            mode = "black_hole"
            "#,
        )
        .unwrap();
        assert_eq!(s.name, "wan");
        assert_eq!(s.block_count(), 50);
        assert_eq!(s.rate_per_s, 10.0, "unset fields keep defaults");
        assert_eq!(s.gossip["propagatePeerNum"], toml::Value::Integer(3));
        assert!(s.faults.uses_proxy());
        assert_eq!(s.faults.partitions[0].mode, PartitionMode::BlackHole);
        assert_eq!(s.faults.kills[0].restart_after_s, Some(2.0));
        assert!(Scenario::from_toml("nodes = 2\norgs = 3").is_err());
        assert_eq!(Scenario::from_toml("idle_s = 2.5").unwrap().idle_s, 2.5);
        for bad in ["idle_s = 0", "idle_s = -1", "idle_s = nan"] {
            assert!(Scenario::from_toml(bad).is_err(), "{bad}");
        }
        assert!(
            Scenario::from_toml("bogus = 1").is_err(),
            "unknown keys refused"
        );
    }

    #[test]
    fn node_threads_share_the_cores_unless_set() {
        let n25 = Scenario {
            nodes: 25,
            ..Scenario::default()
        };
        let one = NodeThreads {
            worker: 1,
            verifier: Some(0),
        };
        assert_eq!(n25.node_threads(2), one, "25 nodes on 2 cores");
        assert_eq!(n25.node_threads(16), one, "25 nodes on 16 cores");
        assert_eq!(
            n25.node_threads(100),
            NodeThreads {
                worker: 4,
                verifier: None
            },
            "more cores than nodes: gossip-node's verifier default"
        );
        let set =
            Scenario::from_toml("nodes = 25\nnode_worker_threads = 2\nnode_verifier_threads = 1")
                .unwrap();
        assert_eq!(
            set.node_threads(2),
            NodeThreads {
                worker: 2,
                verifier: Some(1)
            }
        );
        let worker_only = Scenario::from_toml("node_worker_threads = 1").unwrap();
        assert_eq!(
            worker_only.node_threads(64),
            one,
            "one worker verifies inline"
        );
    }

    #[test]
    fn fabric_nodes_by_list_or_share() {
        let s = Scenario::from_toml("nodes = 10\norgs = 2\n[fabric]\nnodes = [9, 1, 2]").unwrap();
        assert_eq!(s.fabric_nodes(), vec![1, 2, 9]);
        assert_eq!(s.kind_of(1), PeerKind::Fabric);
        assert_eq!(s.kind_of(0), PeerKind::Ours);
        let half = Scenario::from_toml("nodes = 10\norgs = 2\n[fabric]\nshare = 0.5").unwrap();
        assert_eq!(
            half.fabric_nodes(),
            vec![1, 2, 5, 6, 9],
            "half of each org, org 1's leader ours and org 2's Fabric"
        );
        assert_eq!(
            half.injector_nodes(),
            vec![0, 1],
            "per_org: one injector of each kind"
        );
        let third = Scenario::from_toml("nodes = 9\norgs = 1\n[fabric]\nshare = 0.34").unwrap();
        assert_eq!(
            third.fabric_nodes(),
            vec![2, 5, 8],
            "a third, spread evenly"
        );
        let all = Scenario::from_toml("nodes = 5\norgs = 1\n[fabric]\nshare = 1.0").unwrap();
        assert_eq!(all.fabric_nodes(), vec![0, 1, 2, 3, 4]);
        assert!(Scenario::default().fabric_nodes().is_empty());
        assert_eq!(
            Scenario::default().fabric_bin().unwrap(),
            None,
            "no Fabric node, no binary"
        );
        let inj = Scenario::from_toml("nodes = 4\norgs = 1\ninjector_nodes = [0, 3]").unwrap();
        assert_eq!(inj.injector_nodes(), vec![0, 3], "overrides injectors");
    }

    #[test]
    fn bad_node_lists_are_refused_with_a_clear_error() {
        let err = |text: &str| Scenario::from_toml(text).unwrap_err().to_string();
        let e = err("nodes = 4\n[fabric]\nnodes = [1, 4]");
        assert!(
            e.contains("[fabric] nodes names node 4") && e.contains("0..=3"),
            "{e}"
        );
        let e = err("nodes = 4\n[fabric]\nnodes = [1, 1]");
        assert!(e.contains("node 1 twice"), "{e}");
        let e = err("[fabric]\nnodes = [1]\nshare = 0.5");
        assert!(e.contains("either nodes or share"), "{e}");
        for share in ["0", "1.5", "-0.5", "nan"] {
            let e = err(&format!("[fabric]\nshare = {share}"));
            assert!(e.contains("must be in (0, 1]"), "{share}: {e}");
        }
        let e = err("[fabric]\nbin = \"/x\"");
        assert!(e.contains("no node runs it"), "{e}");
        let e = err("[fabric]\nnode = [1]");
        assert!(e.contains("unknown field"), "{e}");
        let e = err("nodes = 4\ninjector_nodes = [7]");
        assert!(e.contains("injector_nodes names node 7"), "{e}");
        let e = err("injector_nodes = []");
        assert!(e.contains("at least one"), "{e}");
        let e = err("[fabric]\nnodes = \"half\"");
        assert!(e.contains("parsing scenario"), "{e}");
    }

    #[test]
    fn the_fabric_binary_is_the_scenarios_then_the_environments_then_a_default() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::write(&a, "").unwrap();
        std::fs::write(&b, "").unwrap();
        let (a, b) = (a.canonicalize().unwrap(), b.canonicalize().unwrap());
        let missing = dir.path().join("missing");
        let defaults = [missing.clone(), b.clone()];
        let got = |explicit: Option<&Path>, env: Option<&Path>| {
            resolve_fabric_bin(explicit, env.map(Path::to_path_buf), &defaults, &[1])
        };
        assert_eq!(got(Some(&a), Some(&b)).unwrap(), a);
        assert_eq!(got(None, Some(&a)).unwrap(), a);
        assert_eq!(got(None, None).unwrap(), b, "first default that exists");
        let e = got(Some(&missing), Some(&a)).unwrap_err().to_string();
        assert!(
            e.contains("nodes [1]") && e.contains("missing") && e.contains("FABRIC_NODE_BIN"),
            "a named binary that is missing is an error, not a fallback: {e}"
        );
        let e = resolve_fabric_bin(None, None, &[missing], &[2, 3]).unwrap_err();
        assert!(matches!(e, ScenarioError::FabricBinMissing { ref nodes, .. } if nodes == &[2, 3]));
    }

    #[test]
    fn shipped_scenarios_parse() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        let mut n = 0;
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "toml") {
                Scenario::load(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
                n += 1;
            }
        }
        assert!(n > 10, "{n} scenarios");
        let c = Scenario::load(&dir.join("capacity-n25.toml")).unwrap();
        assert_eq!((c.nodes, c.orgs, c.injectors), (25, 1, Injectors::Single));
        assert_eq!(
            (c.block_size_bytes, c.tls, c.skip_block_verification),
            (10240, true, false)
        );
        assert_eq!((c.duration_s, c.warmup_s, c.blocks), (10.0, 2.0, None));
        assert!(c.gossip.is_empty(), "Fabric's default gossip config");
        let m = Scenario::load(&dir.join("mixed-2org.toml")).unwrap();
        assert_eq!((m.orgs, m.tls, m.injectors), (2, true, Injectors::PerOrg));
        let fabric = m.fabric_nodes();
        assert!(
            fabric.contains(&1) && !fabric.contains(&0),
            "one injector of each kind"
        );
        assert!(2 * fabric.len() >= m.nodes - 1 && 2 * fabric.len() <= m.nodes + 1);
        assert!(m.gossip.is_empty(), "Fabric's default gossip config");
        let f = Scenario::load(&dir.join("faults-state.toml")).unwrap();
        assert_eq!(
            (
                f.nodes,
                f.injector_nodes(),
                f.block_size_bytes,
                f.rate_per_s
            ),
            (10, vec![0], 10240, 20.0)
        );
        assert_eq!((f.tls, f.skip_block_verification), (true, false));
        assert_eq!(f.faults.drop_share, 0.05);
        assert_eq!(f.gossip["state.enabled"], toml::Value::Boolean(true));
        assert_eq!(f.gossip.len(), 1, "the rest at Fabric's defaults");
        let killed: Vec<usize> = f.faults.kills.iter().map(|k| k.node).collect();
        assert_eq!(killed.len() * 5, f.nodes, "a fifth of the nodes");
        assert!(!killed.contains(&0), "never the injector");
        let injection_s = f.block_count() as f64 / f.rate_per_s;
        for k in &f.faults.kills {
            let back_s = k.at_s + k.restart_after_s.expect("restarted");
            assert!(back_s < injection_s, "restarted while injection goes on");
        }
        let a = Scenario::load(&dir.join("scenario-a-n25-fabric.toml")).unwrap();
        assert_eq!(a.fabric_nodes(), (0..25).collect::<Vec<_>>());
        assert_eq!(
            (
                a.nodes,
                a.orgs,
                a.injectors,
                a.block_count(),
                a.rate_per_s,
                a.tls
            ),
            (25, 1, Injectors::Single, 200, 20.0, true)
        );
    }
}
