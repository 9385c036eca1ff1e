//! A readable cluster-test DSL (chitchat's `Operation` style): a scenario is a cluster shape plus a
//! list of steps, run over many seeds. Safety invariants are checked on every step
//! ([`crate::checkers`]); liveness is asserted by `Await*` steps with a deadline.
//!
//! ```ignore
//! let s = Scenario::<Node>::new("dissemination").orgs(1).peers_per_org(8)
//!     .step(Op::Wait(secs(10)))
//!     .step(Op::JoinChan { channel: "A", nodes: Nodes::All })
//!     .step(Op::InjectBlocks { from: 0, channel: "A", count: 10 })
//!     .step(Op::AwaitBlocks { channel: "A", within: secs(30) });
//! run_seeds(&s, 0..200);
//! ```

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use gossip_engine::config::GossipConfig;
use gossip_engine::crypto::sha256;
use gossip_engine::event::{AnchorPeer, ChannelConfig, Command};
use gossip_engine::types::{OrgId, PkiId};
use gossip_proto::common::{Block, BlockData, BlockHeader};
use gossip_proto::gossip::gossip_message::{Content, Tag};
use gossip_proto::gossip::{DataMessage, GossipMessage, Payload};
use prost::Message;

use crate::checkers::Violation;
use crate::faults::LinkConfig;
use crate::node::{SimNode, channel_bytes};
use crate::sim::{PeerSpec, Sim, SimConfig};
use crate::stats::SimStats;

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
    /// Cut the network into groups (nodes in no group form one more group).
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
    /// Until `within`: every up node's alive view is exactly the up peers it may see.
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
    /// Until `within`: every up node joined to `channel` delivered every injected block.
    AwaitBlocks {
        /// The channel.
        channel: &'static str,
        /// Deadline.
        within: Duration,
    },
    /// Anything else; an `Err` is a liveness failure.
    Custom(CustomStep<N>),
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

impl<N: SimNode> Scenario<N> {
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

    fn sim_config(&self, seed: u64) -> SimConfig {
        let peers = (0..self.len())
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
            .collect();
        SimConfig {
            seed,
            peers,
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

    /// Runs one seed to the end; the simulation is returned for further inspection.
    pub fn run(&self, seed: u64) -> (Outcome, Sim<N>) {
        let mut sim = Sim::<N>::new(self.sim_config(seed));
        let mut runner = Runner {
            scenario: self,
            injected: BTreeMap::new(),
        };
        for step in &self.steps {
            if let Err(what) = runner.apply(&mut sim, step) {
                sim.fail_liveness(what);
            }
            if !sim.checkers().violations().is_empty() {
                break;
            }
        }
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

/// The mutable state of one run: blocks injected per channel.
struct Runner<'a, N> {
    scenario: &'a Scenario<N>,
    injected: BTreeMap<&'static str, Vec<u64>>,
}

/// How often liveness conditions are evaluated.
const CHECK_EVERY: Duration = Duration::from_millis(500);

impl<N: SimNode> Runner<'_, N> {
    fn apply(&mut self, sim: &mut Sim<N>, step: &Op<N>) -> Result<(), String> {
        match step {
            Op::Wait(d) => sim.run_for(*d),
            Op::JoinChan { channel, nodes } => {
                let config = self.channel_config(sim, channel, nodes);
                for n in self.scenario.nodes(nodes) {
                    sim.command_in(Duration::ZERO, n, Command::JoinChan(config.clone()));
                }
                sim.run_for(Duration::from_millis(1));
            }
            Op::InjectBlocks {
                from,
                channel,
                count,
            } => {
                let seqs = self.injected.entry(channel).or_default();
                let first = seqs.last().map_or(self.scenario.first_block_seq, |s| s + 1);
                for (k, seq) in (first..first + count).enumerate() {
                    seqs.push(seq);
                    let delay = Duration::from_millis(20 * k as u64);
                    sim.command_in(delay, *from, Command::Gossip(block(channel, seq)));
                }
                sim.run_for(Duration::from_millis(20 * count));
            }
            Op::Crash(n) => {
                sim.crash_in(Duration::ZERO, *n);
                sim.run_for(Duration::from_millis(1));
            }
            Op::Restart(n) => {
                sim.restart_in(Duration::ZERO, *n);
                sim.run_for(Duration::from_millis(1));
            }
            Op::Partition(groups) => {
                sim.partition_in(Duration::ZERO, groups.clone());
                sim.run_for(Duration::from_millis(1));
            }
            Op::Heal => {
                sim.heal_in(Duration::ZERO);
                sim.run_for(Duration::from_millis(1));
            }
            Op::SetLink(link) => sim.set_default_link(*link),
            Op::UpdateMetadata { node, metadata } => {
                let cmd = Command::UpdateMetadata(Bytes::from_static(metadata));
                sim.command_in(Duration::ZERO, *node, cmd);
                sim.run_for(Duration::from_millis(1));
            }
            Op::AwaitConverged { within } => {
                let ok = sim.run_until(*within, CHECK_EVERY, |s| self.converged(s).is_ok());
                if !ok {
                    return self.converged(sim);
                }
            }
            Op::AwaitDead { node, within } => {
                let target = sim.pki_id(*node);
                let holds = |s: &Sim<N>| {
                    (0..s.len())
                        .filter(|&i| i != *node)
                        .filter_map(|i| s.node(i))
                        .all(|n| !n.alive_members().contains(&target))
                };
                if !sim.run_until(*within, CHECK_EVERY, holds) {
                    return Err(format!(
                        "node {node} still alive somewhere after {within:?}"
                    ));
                }
            }
            Op::AwaitBlocks { channel, within } => {
                let ok = sim.run_until(*within, CHECK_EVERY, |s| {
                    self.blocks_complete(s, channel).is_ok()
                });
                if !ok {
                    return self.blocks_complete(sim, channel);
                }
            }
            Op::Custom(f) => return f(sim),
        }
        Ok(())
    }

    fn channel_config(&self, sim: &Sim<N>, channel: &str, nodes: &Nodes) -> ChannelConfig {
        let members = self.scenario.nodes(nodes);
        let mut orgs: BTreeMap<usize, Vec<AnchorPeer>> = BTreeMap::new();
        for &n in &members {
            let spec = sim.spec(n);
            let anchors = orgs.entry(spec.org).or_default();
            if spec.external {
                anchors.push(AnchorPeer {
                    host: format!("peer{}.org{}.example.com", spec.peer, spec.org + 1),
                    port: 7051,
                });
            }
        }
        ChannelConfig {
            channel: channel_bytes(channel),
            sequence: 1,
            orgs: orgs
                .into_iter()
                .map(|(org, anchors)| (OrgId::from(format!("Org{}MSP", org + 1)), anchors))
                .collect(),
        }
    }

    /// Whom node `i` should see alive: up peers of its org, and up peers of orgs it shares a
    /// channel with when both have external endpoints.
    fn expected_view(&self, sim: &Sim<N>, i: usize) -> Vec<PkiId> {
        let me = sim.spec(i);
        let mut view: Vec<PkiId> = (0..sim.len())
            .filter(|&j| j != i && sim.is_up(j))
            .filter(|&j| {
                let other = sim.spec(j);
                other.org == me.org
                    || (me.external
                        && other.external
                        && sim
                            .checkers()
                            .joined(i)
                            .iter()
                            .any(|c| sim.checkers().joined(j).contains(c)))
            })
            .map(|j| sim.pki_id(j))
            .collect();
        view.sort_unstable();
        view
    }

    fn converged(&self, sim: &Sim<N>) -> Result<(), String> {
        for i in 0..sim.len() {
            let Some(node) = sim.node(i) else { continue };
            let view = node.alive_members();
            let expected = self.expected_view(sim, i);
            if view != expected {
                let names = |v: &[PkiId]| -> Vec<usize> {
                    v.iter().filter_map(|p| sim.index_of(p)).collect()
                };
                return Err(format!(
                    "not converged at {:?}: node {i} sees {:?}, expected {:?}",
                    sim.elapsed(),
                    names(&view),
                    names(&expected)
                ));
            }
        }
        Ok(())
    }

    fn blocks_complete(&self, sim: &Sim<N>, channel: &str) -> Result<(), String> {
        let want = self.injected.get(channel).map_or(&[][..], Vec::as_slice);
        let ch = channel_bytes(channel);
        for i in (0..sim.len()).filter(|&i| sim.is_up(i)) {
            if !sim.checkers().joined(i).contains(&ch) {
                continue;
            }
            let got = sim.checkers().delivered(i, channel);
            let missing: Vec<u64> = want
                .iter()
                .filter(|s| !got.is_some_and(|g| g.contains(s)))
                .copied()
                .collect();
            if !missing.is_empty() {
                return Err(format!(
                    "blocks of {channel} missing at {:?}: node {i} lacks {missing:?}",
                    sim.elapsed()
                ));
            }
        }
        Ok(())
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

/// Runs every seed of `seeds`; panics on the first failing one (see [`run_seed`]). The
/// `SIM_SEED` environment variable, when set, runs only that seed (replay).
pub fn run_seeds<N: SimNode>(scenario: &Scenario<N>, seeds: Range<u64>) -> Vec<Outcome> {
    if let Some(seed) = std::env::var("SIM_SEED").ok().and_then(|s| s.parse().ok()) {
        return vec![run_seed(scenario, seed)];
    }
    seeds.map(|seed| run_seed(scenario, seed)).collect()
}
