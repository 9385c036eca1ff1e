//! Scenario files (TOML): every knob has a default, so an empty file is the built-in scenario.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub mod leader;
pub mod limits;
mod validate;

pub use leader::LeaderKill;

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
    /// The TOML does not parse into a scenario (the message shows the line and names the key).
    #[error("parsing scenario {file}: {}", .source.to_string().trim_end())]
    Parse {
        /// The file, or `(text)`.
        file: String,
        /// Why.
        source: toml::de::Error,
    },
    /// A key's value is out of range, or beyond what the machine allows.
    #[error("scenario key {key:?} = {value} {problem}")]
    Key {
        /// The key, dotted for tables (`faults.delay_ms`).
        key: String,
        /// The value as given.
        value: String,
        /// What is wrong: the limit, and how to meet it.
        problem: String,
    },
    /// Values are inconsistent with each other.
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
    /// Restart with a renewed enrollment certificate: a new certificate (and key) of the same
    /// org and CA, hence a new PKI-ID, at the same endpoint (Fabric's certificate renewal,
    /// fabric#5121). Needs `restart_after_s`.
    #[serde(default)]
    pub renew_cert: bool,
}

/// A hostile peer flooding one node (`loadgen flood`, started by the run): a real handshake with
/// a valid identity of the victim's org, then `rate_per_s` messages per second for `duration_s`,
/// `invalid_share` of them garbage (undecodable or badly signed), the rest valid-looking junk.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flood {
    /// The node flooded.
    pub victim: usize,
    /// Start, seconds after the first scheduled block.
    pub at_s: f64,
    /// Length in seconds.
    pub duration_s: f64,
    /// Messages per second sent at the victim.
    pub rate_per_s: f64,
    /// Share of the messages that are invalid (garbage bytes, bad signatures), in `[0, 1]`.
    #[serde(default = "default_invalid_share")]
    pub invalid_share: f64,
}

fn default_invalid_share() -> f64 {
    0.5
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
    /// Kills of whichever node is an org's elected leader at the time (election on only).
    pub leader_kills: Vec<LeaderKill>,
    /// The node's `--fault-drop-share` (0 disables the hook).
    pub drop_share: f64,
    /// The node's `--fault-seed` base (node index is added).
    pub fault_seed: u64,
    /// Hostile floods on a schedule.
    pub floods: Vec<Flood>,
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
    /// Period of the membership poll (`peers` of every node, from injection to the end), ms;
    /// 0 (the default) polls nothing. Failure detection, re-learning and partition-heal figures
    /// (run.json's `membership`) come from it.
    pub membership_poll_ms: u64,
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
            membership_poll_ms: 0,
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
        Self::from_toml_in(text, "(text)")
    }

    fn from_toml_in(text: &str, file: &str) -> Result<Self, ScenarioError> {
        let s: Scenario = toml::from_str(text).map_err(|source| ScenarioError::Parse {
            file: file.to_owned(),
            source,
        })?;
        s.validate()?;
        Ok(s)
    }

    /// Reads and validates a scenario file.
    pub fn load(path: &Path) -> Result<Self, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml_in(&text, &path.display().to_string())
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
    /// With leader election on, none: loadgen follows each org's elected leader instead.
    pub fn injector_nodes(&self) -> Vec<usize> {
        if self.leader_election() {
            return Vec::new();
        }
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

    /// Peers per org, for the PKI: the nodes, then the spare identities of [`Scenario::spares`].
    pub fn peers_per_org(&self) -> Vec<usize> {
        let spares = self.spares();
        (0..self.orgs)
            .map(|o| {
                (0..self.nodes).filter(|&k| self.org_of(k) == o).count()
                    + spares.iter().filter(|sp| sp.org == o).count()
            })
            .collect()
    }

    /// Identities beyond the nodes': one per renewed-certificate kill (the node's new
    /// certificate) and one per flood (the hostile peer), each in its node's org, in this order:
    /// kills in scenario order, then floods.
    pub fn spares(&self) -> Vec<Spare> {
        let kills = self.faults.kills.iter().enumerate();
        let renewals = kills.filter(|(_, k)| k.renew_cert).map(|(i, k)| Spare {
            org: self.org_of(k.node),
            purpose: SpareUse::RenewedCert(i),
        });
        let floods = self.faults.floods.iter().enumerate().map(|(i, f)| Spare {
            org: self.org_of(f.victim),
            purpose: SpareUse::Flooder(i),
        });
        renewals.chain(floods).collect()
    }
}

/// An identity of the PKI that no node starts with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Spare {
    /// Its org.
    pub org: usize,
    /// What it is for.
    pub purpose: SpareUse,
}

/// What a spare identity is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpareUse {
    /// The renewed certificate of `faults.kills[i]`.
    RenewedCert(usize),
    /// The hostile peer of `faults.floods[i]`.
    Flooder(usize),
}

#[cfg(test)]
mod tests;
