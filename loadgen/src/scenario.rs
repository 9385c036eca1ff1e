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

    /// Nodes that inject blocks.
    pub fn injector_nodes(&self) -> Vec<usize> {
        match self.injectors {
            Injectors::PerOrg => (0..self.orgs.min(self.nodes)).collect(),
            Injectors::Single => vec![0],
        }
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
        if !(self.idle_s > 0.0 && self.idle_s.is_finite()) {
            return bad(format!("idle_s {} must be > 0", self.idle_s));
        }
        if self.sample_ms == 0 {
            return bad("sample_ms must be > 0".into());
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
    }
}
