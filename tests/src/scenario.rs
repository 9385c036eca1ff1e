//! A readable cluster-test DSL (chitchat's `Operation` style): a scenario is a cluster shape plus a
//! list of steps. The same value runs on either transport (ARCHITECTURE.md, testing tier 3):
//!
//! - on the deterministic simulator over many seeds ([`run_seeds`]); safety invariants are
//!   checked on every delivery ([`crate::checkers`]);
//! - on a real cluster of `GossipHandle`s over tonic with mutual TLS on 127.0.0.1, once, in real
//!   time ([`crate::transport::tonic::run_tonic`]); the same checkers watch every verified
//!   message, transmitted block and delivered block there.
//!
//! Liveness is asserted by `Await*` steps with a deadline (a bound, never a timing assertion).
//! Steps that only a simulator can take (link faults, closures over [`Sim`]) make a scenario
//! sim-only ([`Scenario::sim_only_reason`]); the tonic runner refuses it. Partitions run on both:
//! on tonic every node's transmit filter drops what would cross a cut.
//!
//! ```ignore
//! let s = Scenario::<Node>::new("dissemination").orgs(1).peers_per_org(4)
//!     .step(Op::AwaitConverged { within: secs(30) })
//!     .step(Op::JoinChan { channel: "A", nodes: Nodes::All })
//!     .step(Op::AwaitChannelViews { within: secs(20) })
//!     .step(Op::InjectBlocks { from: 0, channel: "A", count: 10 })
//!     .step(Op::AwaitBlocks { channel: "A", within: secs(10) });
//! run_seeds(&s, 0..200);
//! run_tonic(&s);
//! ```

use std::collections::BTreeMap;
use std::ops::Range;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use gossip_engine::config::GossipConfig;
use gossip_engine::crypto::sha256;
use gossip_proto::common::{Block, BlockData, BlockHeader};
use gossip_proto::gossip::gossip_message::{Content, Tag};
use gossip_proto::gossip::{DataMessage, GossipMessage, Payload};
use prost::Message;

use crate::checkers::Violation;
use crate::faults::LinkConfig;
use crate::node::{SimNode, channel_bytes};
use crate::sim::{PeerSpec, Sim, SimConfig};
use crate::stats::SimStats;
use crate::transport;

/// `Duration::from_secs`, shorter.
pub fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// A set of nodes.
#[derive(Clone, Debug)]
pub enum Nodes {
    /// Every node.
    All,
    /// Every node of one org.
    Org(usize),
    /// These nodes.
    List(Vec<usize>),
}

/// Which peers publish an external endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Externals {
    /// Every peer.
    All,
    /// No peer (orgs never see each other).
    None,
    /// Peers 0 and 1 of each org.
    FirstTwoOfEachOrg,
}

/// Whom each peer bootstraps to.
#[derive(Clone, Debug)]
pub enum Bootstrap {
    /// Nobody.
    None,
    /// Every peer but peer 0 to peer 0 of its own org.
    OrgPeer0,
    /// Explicit bootstrap node lists, one per node.
    Explicit(Vec<Vec<usize>>),
}

/// Which leader each org of a channel must have ([`Op::AwaitLeaders`], [`Op::HoldLeaders`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeaderRule {
    /// Exactly one per org: its up, joined peer with the lowest PKI-ID.
    Lowest,
    /// Exactly one per org, any.
    One,
    /// Exactly one per org, and it is none of these nodes.
    NoneOf(Vec<usize>),
    /// Exactly one per org, and in the org of each listed node it is that node.
    Nodes(Vec<usize>),
}

/// A custom step.
pub type CustomStep<N> = Arc<dyn Fn(&mut Sim<N>) -> Result<(), String> + Send + Sync>;

/// One step of a scenario.
pub enum Op<N> {
    /// Let simulated time pass.
    Wait(Duration),
    /// These nodes join `channel`; the channel's orgs are those of the nodes, with every member
    /// that has an external endpoint as an anchor peer.
    JoinChan {
        /// The channel.
        channel: &'static str,
        /// Who joins.
        nodes: Nodes,
    },
    /// `count` blocks of `channel` gossiped by `from`, 20 ms apart, numbered on from the last.
    InjectBlocks {
        /// The source node.
        from: usize,
        /// The channel.
        channel: &'static str,
        /// How many.
        count: u64,
    },
    /// Crash a node.
    Crash(usize),
    /// Restart a crashed node (fresh node, same identity).
    Restart(usize),
    /// Cut the network into groups (nodes in no group form one more group), replacing any
    /// previous partition.
    Partition(Vec<Vec<usize>>),
    /// Remove every partition.
    Heal,
    /// Change every link from now on.
    SetLink(LinkConfig),
    /// Replace a node's alive metadata.
    UpdateMetadata {
        /// The node.
        node: usize,
        /// The new metadata.
        metadata: &'static [u8],
    },
    /// Until `within`: every up node's alive view is exactly the up peers it may see (on its
    /// side of a partition).
    AwaitConverged {
        /// Deadline.
        within: Duration,
    },
    /// Until `within`: every up node other than `node` holds it dead (or forgot it).
    AwaitDead {
        /// The crashed node.
        node: usize,
        /// Deadline.
        within: Duration,
    },
    /// Until `within`: every up node other than `node` lists it among its dead members.
    AwaitDeadListed {
        /// The crashed node.
        node: usize,
        /// Deadline.
        within: Duration,
    },
    /// Until `within`: every up node other than `node` accepted an alive message of `node`
    /// carrying `metadata` (directly or in a membership response).
    AwaitMetadata {
        /// The node whose metadata changed.
        node: usize,
        /// The metadata.
        metadata: &'static [u8],
        /// Deadline.
        within: Duration,
    },
    /// Until `within`: every up node's view of each channel it joined is exactly the other up
    /// members it may see (its org's, and other orgs' when both publish an external endpoint).
    AwaitChannelViews {
        /// Deadline.
        within: Duration,
    },
    /// The disclosure checker has inspected cross-org subjects carried by each of these contents
    /// (so its checks were not vacuous), e.g. `"alive_msg"`, `"state_snapshot"`.
    ExpectCrossOrgSubjects(&'static [&'static str]),
    /// Until `within`: every up node joined to `channel` delivered every injected block. In a
    /// [`Scenario::safety_only`] run it waits the same way but a miss is not a failure.
    AwaitBlocks {
        /// The channel.
        channel: &'static str,
        /// Deadline.
        within: Duration,
    },
    /// Until `within`: among the up nodes joined to `channel`, each org's leaders (by the nodes'
    /// own answers) follow `rule` (leader election, spec 3.10).
    AwaitLeaders {
        /// The channel.
        channel: &'static str,
        /// The rule.
        rule: LeaderRule,
        /// Deadline.
        within: Duration,
    },
    /// For `duration`, checked every [`Cluster`](crate::transport::Cluster) check period: the
    /// leaders follow `rule` throughout.
    HoldLeaders {
        /// The channel.
        channel: &'static str,
        /// The rule.
        rule: LeaderRule,
        /// How long.
        duration: Duration,
    },
    /// Crash every up node that leads `channel` now.
    CrashLeaders {
        /// The channel.
        channel: &'static str,
    },
    /// Anything else; an `Err` is a liveness failure. Sim-only.
    Custom(CustomStep<N>),
}

impl<N> Op<N> {
    /// Why this step runs on the simulator only, if it does.
    pub fn sim_only_reason(&self) -> Option<&'static str> {
        match self {
            Op::SetLink(_) => {
                Some("link faults (loss, duplication, jitter) need the simulated network")
            }
            Op::Custom(_) => Some("a custom step is a closure over the simulator"),
            _ => None,
        }
    }
}

/// A cluster shape plus steps.
pub struct Scenario<N> {
    /// Name printed on failure.
    pub name: &'static str,
    orgs: usize,
    peers_per_org: usize,
    externals: Externals,
    bootstrap: Bootstrap,
    gossip: GossipConfig,
    link: LinkConfig,
    first_block_seq: u64,
    needs_repair: Option<&'static str>,
    safety_only: bool,
    steps: Vec<Op<N>>,
}

/// How a seed ended.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The seed.
    pub seed: u64,
    /// Broken invariants, first first (empty on success).
    pub violations: Vec<Violation>,
    /// Trace hash and length (determinism).
    pub trace: (u64, u64),
    /// Traffic.
    pub stats: SimStats,
    /// Simulated time at the end.
    pub elapsed: Duration,
    /// Ingress rejects per reason.
    pub rejects: BTreeMap<&'static str, u64>,
}

impl<N> Scenario<N> {
    /// One org of four peers bootstrapping to peer 0, Fabric's default protocol settings, a clean
    /// network, no steps.
    pub fn new(name: &'static str) -> Self {
        Self {
            name,
            orgs: 1,
            peers_per_org: 4,
            externals: Externals::All,
            bootstrap: Bootstrap::OrgPeer0,
            gossip: GossipConfig::default(),
            link: LinkConfig::default(),
            first_block_seq: 1,
            needs_repair: None,
            safety_only: false,
            steps: Vec::new(),
        }
    }

    /// Number of orgs (at most 4; org 0 has up to 128 peers, the others 16).
    pub fn orgs(mut self, orgs: usize) -> Self {
        self.orgs = orgs;
        self
    }

    /// Peers in every org.
    pub fn peers_per_org(mut self, peers: usize) -> Self {
        self.peers_per_org = peers;
        self
    }

    /// Which peers publish an external endpoint.
    pub fn externals(mut self, externals: Externals) -> Self {
        self.externals = externals;
        self
    }

    /// Whom peers bootstrap to.
    pub fn bootstrap(mut self, bootstrap: Bootstrap) -> Self {
        self.bootstrap = bootstrap;
        self
    }

    /// Protocol settings.
    pub fn gossip(mut self, gossip: GossipConfig) -> Self {
        self.gossip = gossip;
        self
    }

    /// Every link's behaviour.
    pub fn link(mut self, link: LinkConfig) -> Self {
        self.link = link;
        self
    }

    /// Sequence number of the first injected block of every channel (default 1).
    pub fn first_block_seq(mut self, seq: u64) -> Self {
        self.first_block_seq = seq;
        self
    }

    /// Marks the scenario's block completeness (`AwaitBlocks`) as needing repair the core does
    /// not have yet (state transfer, for blocks no longer in any peer's block store). A miss is
    /// reported with `why`; run it [`safety_only`](Self::safety_only) to check the rest.
    pub fn needs_repair(mut self, why: &'static str) -> Self {
        self.needs_repair = Some(why);
        self
    }

    /// Why block completeness needs repair, when it does.
    pub fn repair_needed(&self) -> Option<&'static str> {
        self.needs_repair
    }

    /// Checks safety only: `AwaitBlocks` waits as usual but a miss is no failure; every safety
    /// invariant (in-order delivery without duplicates, no channel, endpoint or disclosure leak,
    /// no echo) and every other step still is.
    pub fn safety_only(mut self) -> Self {
        self.safety_only = true;
        self
    }

    /// Whether this is a [`safety_only`](Self::safety_only) run.
    pub fn is_safety_only(&self) -> bool {
        self.safety_only
    }

    /// The steps.
    pub fn steps(&self) -> &[Op<N>] {
        &self.steps
    }

    /// Protocol settings.
    pub fn gossip_config(&self) -> &GossipConfig {
        &self.gossip
    }

    /// Sequence number of the first injected block of every channel.
    pub fn first_seq(&self) -> u64 {
        self.first_block_seq
    }

    /// Why the scenario runs on the simulator only (a sim-only step or a faulty link), if it
    /// does.
    pub fn sim_only_reason(&self) -> Option<String> {
        if self.link != LinkConfig::default() {
            return Some("its links are faulty (loss, duplication, latency), which needs the simulated network".into());
        }
        self.steps.iter().enumerate().find_map(|(k, step)| {
            step.sim_only_reason()
                .map(|why| format!("step {k} is sim-only: {why}"))
        })
    }

    /// Appends a step.
    pub fn step(mut self, op: Op<N>) -> Self {
        self.steps.push(op);
        self
    }

    /// Node count.
    pub fn len(&self) -> usize {
        self.orgs * self.peers_per_org
    }

    /// Whether the scenario has no nodes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Index of peer `peer` of org `org`.
    pub fn node(&self, org: usize, peer: usize) -> usize {
        org * self.peers_per_org + peer
    }

    fn external(&self, peer: usize) -> bool {
        match self.externals {
            Externals::All => true,
            Externals::None => false,
            Externals::FirstTwoOfEachOrg => peer < 2,
        }
    }

    /// Every node's org, index in its org, external endpoint and bootstrap list.
    pub fn peer_specs(&self) -> Vec<PeerSpec> {
        (0..self.len())
            .map(|i| {
                let (org, peer) = (i / self.peers_per_org, i % self.peers_per_org);
                let bootstrap = match &self.bootstrap {
                    Bootstrap::None => Vec::new(),
                    Bootstrap::OrgPeer0 if peer == 0 => Vec::new(),
                    Bootstrap::OrgPeer0 => vec![self.node(org, 0)],
                    Bootstrap::Explicit(lists) => lists.get(i).cloned().unwrap_or_default(),
                };
                PeerSpec {
                    org,
                    peer,
                    external: self.external(peer),
                    bootstrap,
                }
            })
            .collect()
    }

    fn sim_config(&self, seed: u64) -> SimConfig {
        SimConfig {
            seed,
            peers: self.peer_specs(),
            gossip: self.gossip.clone(),
            link: self.link,
        }
    }

    /// The nodes of a set, sorted.
    pub fn nodes(&self, nodes: &Nodes) -> Vec<usize> {
        match nodes {
            Nodes::All => (0..self.len()).collect(),
            Nodes::Org(o) => (0..self.peers_per_org).map(|p| self.node(*o, p)).collect(),
            Nodes::List(list) => list.clone(),
        }
    }
}

impl<N: SimNode> Scenario<N> {
    /// Runs one seed to the end on the simulator; the simulation is returned for further
    /// inspection.
    pub fn run(&self, seed: u64) -> (Outcome, Sim<N>) {
        let mut sim = Sim::<N>::new(self.sim_config(seed));
        transport::run_steps(self, &mut sim);
        let violations = sim.finish();
        let outcome = Outcome {
            seed,
            violations,
            trace: sim.trace_hash(),
            stats: sim.stats().clone(),
            elapsed: sim.elapsed(),
            rejects: sim.checkers().rejects().clone(),
        };
        (outcome, sim)
    }
}

/// A block of `channel` with number `seq`: a data message (tag CHAN_AND_ORG) whose payload is a
/// `common.Block` with that number and a correct data hash, as the channel's block check wants.
pub fn block(channel: &str, seq: u64) -> GossipMessage {
    let data = vec![Bytes::from(
        format!("tx of block {seq} of {channel}").into_bytes(),
    )];
    let concatenated: Vec<u8> = data.iter().flat_map(|d| d.iter().copied()).collect();
    let common_block = Block {
        header: Some(BlockHeader {
            number: seq,
            previous_hash: Bytes::new(),
            data_hash: Bytes::copy_from_slice(&sha256(&concatenated)),
        }),
        data: Some(BlockData { data }),
        metadata: None,
    };
    GossipMessage {
        nonce: 0,
        channel: channel_bytes(channel),
        tag: Tag::ChanAndOrg as i32,
        content: Some(Content::DataMsg(DataMessage {
            payload: Some(Payload {
                seq_num: seq,
                data: common_block.encode_to_vec().into(),
                private_data: Vec::new(),
            }),
        })),
    }
}

/// Runs one seed; on a broken invariant panics with `SIM FAILED seed=<seed> scenario=<name>` and
/// the violations. Returns the outcome.
pub fn run_seed<N: SimNode>(scenario: &Scenario<N>, seed: u64) -> Outcome {
    let (outcome, _) = scenario.run(seed);
    if !outcome.violations.is_empty() {
        let list: Vec<String> = outcome.violations.iter().map(|v| v.to_string()).collect();
        panic!(
            "SIM FAILED seed={seed} scenario={} at {:?}\n  {}\nreplay: run_seed(&scenario, {seed})",
            scenario.name,
            outcome.elapsed,
            list.join("\n  ")
        );
    }
    outcome
}

/// Runs every seed of `seeds`; panics on a failing one (see [`run_seed`]). The `SIM_SEED`
/// environment variable, when set, runs only that seed (replay).
///
/// Seeds are independent simulations, so they are spread over `SIM_THREADS` threads (default:
/// the machine's cores); each seed's run is the same as on one thread, and the outcomes come
/// back in seed order. After a failure no further seed starts, and the failure of the lowest
/// failing seed is raised.
pub fn run_seeds<N: SimNode>(scenario: &Scenario<N>, seeds: Range<u64>) -> Vec<Outcome> {
    if let Some(seed) = std::env::var("SIM_SEED").ok().and_then(|s| s.parse().ok()) {
        return vec![run_seed(scenario, seed)];
    }
    let threads = std::env::var("SIM_THREADS")
        .ok()
        .and_then(|s| s.parse::<usize>().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .clamp(1, seeds.end.saturating_sub(seeds.start).max(1) as usize);
    let next = AtomicU64::new(seeds.start);
    let failed = AtomicBool::new(false);
    let worker = || {
        let mut done = Vec::new();
        while !failed.load(Ordering::Relaxed) {
            let seed = next.fetch_add(1, Ordering::Relaxed);
            if seed >= seeds.end {
                break;
            }
            let run = std::panic::catch_unwind(AssertUnwindSafe(|| run_seed(scenario, seed)));
            if run.is_err() {
                failed.store(true, Ordering::Relaxed);
            }
            done.push((seed, run));
        }
        done
    };
    let mut runs: Vec<_> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads).map(|_| scope.spawn(worker)).collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("a seed's panic is caught in its worker"))
            .collect()
    });
    runs.sort_by_key(|(seed, _)| *seed);
    runs.into_iter()
        .map(|(_, run)| run.unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
        .collect()
}
