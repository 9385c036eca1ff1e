//! The discrete-event simulator: N sans-IO nodes, one priority queue of actions ordered by
//! (simulated time, insertion sequence), no clock, no threads, no tokio.
//!
//! Each node has its own [`Ingress`] and [`IdentityStore`], like a real peer. A "connection" is
//! logical: the first time A sends to B the simulator performs the handshake's effect (each learns
//! the other's identity), unless B is down or partitioned away, in which case A is told
//! `PresumedDead(B)`. Every random draw comes from one ChaCha8 RNG seeded by the master seed; node
//! seeds are derived from it too, so a seed replays exactly (see [`Sim::trace_hash`]).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use gossip_engine::config::GossipConfig;
use gossip_engine::crypto::LocalSigner;
use gossip_engine::event::{ChannelConfig, Command, IoResult};
use gossip_engine::ingress::NestedSignerPolicy;
use gossip_engine::ingress::{IDENTITIES_LEN_MAX_DEFAULT, IdentityStore, Ingress, IngressConfig};
use gossip_engine::time::Instant;
use gossip_engine::types::{OrgId, PkiId};
use gossip_proto::gossip::gossip_message::Content;
use gossip_proto::gossip::{Envelope, GossipMessage};
use prost::Message;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::alive_seen::AliveSeen;
use crate::checkers::{Checkers, PeerFacts};
use crate::faults::{LinkConfig, Network};
use crate::node::{NodeSetup, SimNode};
use crate::pki::{SIM_EPOCH_UNIX_S, SimPki};
use crate::stats::SimStats;

mod ledger;
mod lifecycle;
mod net;

pub use ledger::SimLedger;

/// Delay before a failed dial is reported as `PresumedDead`.
pub const DIAL_FAILURE_DELAY: Duration = Duration::from_millis(50);

/// One node of a simulation.
#[derive(Clone, Debug)]
pub struct PeerSpec {
    /// Org index (0 = `Org1MSP`).
    pub org: usize,
    /// Peer index within its org.
    pub peer: usize,
    /// Whether the peer publishes an external endpoint (visible to other orgs).
    pub external: bool,
    /// Bootstrap peers, as node indexes (their internal endpoints are used).
    pub bootstrap: Vec<usize>,
}

/// A simulation's setup.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// The master seed.
    pub seed: u64,
    /// The nodes.
    pub peers: Vec<PeerSpec>,
    /// Protocol settings for every node.
    pub gossip: GossipConfig,
    /// Every link's behaviour.
    pub link: LinkConfig,
}

/// Something that happens at a simulated time.
#[derive(Debug)]
enum Action {
    Deliver {
        from: usize,
        to: usize,
        to_incarnation: u32,
        envelope: Envelope,
    },
    Timer {
        node: usize,
        incarnation: u32,
    },
    Io {
        node: usize,
        incarnation: u32,
        result: IoResult,
    },
    Command {
        node: usize,
        command: Command,
    },
    Crash(usize),
    Restart(usize),
    Partition(Vec<Vec<usize>>),
    Heal,
}

struct Scheduled {
    at: Instant,
    seq: u64,
    action: Action,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// A node's slot: its identity, its current incarnation (if up), and its own ingress.
struct Slot<N> {
    spec: PeerSpec,
    signer: Arc<LocalSigner>,
    org_id: OrgId,
    internal_endpoint: String,
    external_endpoint: String,
    node: Option<N>,
    ingress: Ingress,
    incarnation: u32,
    timer_at: Option<Instant>,
    channels: BTreeMap<bytes::Bytes, ChannelConfig>,
    /// Survives crashes.
    ledger: SimLedger,
}

/// The simulator.
pub struct Sim<N> {
    seed: u64,
    gossip: GossipConfig,
    now: Instant,
    queue: BinaryHeap<Reverse<Scheduled>>,
    seq: u64,
    rng: ChaCha8Rng,
    net: Network,
    slots: Vec<Slot<N>>,
    by_pki: BTreeMap<PkiId, usize>,
    by_endpoint: BTreeMap<String, usize>,
    connections: BTreeSet<(usize, usize)>,
    checkers: Checkers,
    stats: SimStats,
    trace: DefaultHasher,
    trace_len: u64,
    /// Print every transmit, delivery and event to stderr (`SIM_VERBOSE=1`).
    verbose: bool,
    /// (receiver, subject) → newest accepted alive message's (inc_num, seq_num, metadata).
    alive_seen: AliveSeen,
    /// The MSPs every node validates identities with (a CRL update replaces it:
    /// [`Sim::replace_msp_now`]).
    msp: Arc<gossip_engine::crypto::MspManager>,
}

/// The block number of a data message envelope (for verbose traces).
fn block_seq(envelope: &Envelope) -> Option<u64> {
    match GossipMessage::decode(envelope.payload.clone())
        .ok()?
        .content?
    {
        Content::DataMsg(d) => d.payload.map(|p| p.seq_num),
        _ => None,
    }
}

/// Simulated time zero.
pub fn sim_epoch() -> Instant {
    Instant::from_nanos(SIM_EPOCH_UNIX_S as u64 * 1_000_000_000)
}

/// The seed of incarnation `incarnation` of node `node` (splitmix64 of the three).
pub fn node_seed(master: u64, node: usize, incarnation: u32) -> u64 {
    let mut z = master ^ ((node as u64) << 32) ^ u64::from(incarnation);
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Internal endpoint of a peer: `peer<P>.org<O>:7051`.
pub fn internal_endpoint(org: usize, peer: usize) -> String {
    format!("peer{peer}.org{}:7051", org + 1)
}

/// External endpoint of a peer: `peer<P>.org<O>.example.com:7051`.
pub fn external_endpoint(org: usize, peer: usize) -> String {
    format!("peer{peer}.org{}.example.com:7051", org + 1)
}

fn new_ingress(msp: &Arc<gossip_engine::crypto::MspManager>) -> Ingress {
    let identities = Arc::new(IdentityStore::new(
        Arc::clone(msp),
        IDENTITIES_LEN_MAX_DEFAULT,
    ));
    let config = IngressConfig {
        nested_signer_policy: NestedSignerPolicy::DropItem,
        ..IngressConfig::default()
    };
    Ingress::new(config, Arc::clone(msp), identities)
}

impl<N: SimNode> Sim<N> {
    /// Builds the nodes and starts them all at time zero.
    pub fn new(config: SimConfig) -> Self {
        let pki = SimPki::get();
        let mut slots = Vec::with_capacity(config.peers.len());
        let (mut by_pki, mut by_endpoint) = (BTreeMap::new(), BTreeMap::new());
        for (i, spec) in config.peers.iter().enumerate() {
            let signer = pki.signer(spec.org, spec.peer);
            let internal = internal_endpoint(spec.org, spec.peer);
            let external = if spec.external {
                external_endpoint(spec.org, spec.peer)
            } else {
                String::new()
            };
            assert!(by_pki.insert(signer.pki_id(), i).is_none(), "peer twice");
            by_endpoint.insert(internal.clone(), i);
            if spec.external {
                by_endpoint.insert(external.clone(), i);
            }
            slots.push(Slot {
                org_id: OrgId::from(signer.identity().mspid.as_str()),
                spec: spec.clone(),
                signer,
                internal_endpoint: internal,
                external_endpoint: external,
                node: None,
                ingress: new_ingress(&pki.msp),
                incarnation: 0,
                timer_at: None,
                channels: BTreeMap::new(),
                ledger: SimLedger::default(),
            });
        }
        let facts = slots
            .iter()
            .map(|s| PeerFacts {
                org: s.spec.org,
                internal_endpoint: s.internal_endpoint.clone(),
                pki_id: s.signer.pki_id(),
                external: s.spec.external,
            })
            .collect();
        let mut gossip = config.gossip;
        if gossip.state.commit_backlog_len_max == 0 {
            // The simulator commits every delivered block and acknowledges it, as a driver with
            // a ledger does.
            gossip.state.commit_backlog_len_max = 2 * gossip.state_block_buffer_len;
        }
        let mut sim = Self {
            seed: config.seed,
            gossip,
            now: sim_epoch(),
            queue: BinaryHeap::new(),
            seq: 0,
            rng: ChaCha8Rng::seed_from_u64(config.seed),
            net: Network::new(config.link),
            slots,
            by_pki,
            by_endpoint,
            connections: BTreeSet::new(),
            checkers: Checkers::new(facts),
            stats: SimStats::default(),
            trace: DefaultHasher::new(),
            trace_len: 0,
            alive_seen: AliveSeen::default(),
            verbose: std::env::var_os("SIM_VERBOSE").is_some(),
            msp: Arc::clone(&pki.msp),
        };
        for i in 0..sim.slots.len() {
            sim.boot(i);
        }
        sim
    }

    /// The protocol settings every node runs with.
    pub fn gossip(&self) -> &GossipConfig {
        &self.gossip
    }

    /// The master seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Simulated time elapsed since the start.
    pub fn elapsed(&self) -> Duration {
        self.now.saturating_duration_since(sim_epoch())
    }

    /// The current simulated instant.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether there are no nodes.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Node `i`, when it is up.
    pub fn node(&self, i: usize) -> Option<&N> {
        self.slots[i].node.as_ref()
    }

    /// Whether node `i` is up.
    pub fn is_up(&self, i: usize) -> bool {
        self.slots[i].node.is_some()
    }

    /// PKI-ID of node `i`.
    pub fn pki_id(&self, i: usize) -> PkiId {
        self.slots[i].signer.pki_id()
    }

    /// The MSP id of node `i`'s org.
    pub fn org_id(&self, i: usize) -> OrgId {
        self.slots[i].org_id.clone()
    }

    /// Node index of a PKI-ID.
    pub fn index_of(&self, pki_id: &PkiId) -> Option<usize> {
        self.by_pki.get(pki_id).copied()
    }

    /// The setup of node `i`.
    pub fn spec(&self, i: usize) -> &PeerSpec {
        &self.slots[i].spec
    }

    /// The signer of node `i` (to craft envelopes in tests).
    pub fn signer(&self, i: usize) -> &Arc<LocalSigner> {
        &self.slots[i].signer
    }

    /// The internal endpoint of node `i`.
    pub fn internal_endpoint_of(&self, i: usize) -> &str {
        &self.slots[i].internal_endpoint
    }

    /// The invariant checkers.
    pub fn checkers(&self) -> &Checkers {
        &self.checkers
    }

    /// Records a liveness failure found by the caller.
    pub fn fail_liveness(&mut self, what: String) {
        self.checkers.liveness_failed(what);
    }

    /// Traffic counters.
    pub fn stats(&self) -> &SimStats {
        &self.stats
    }

    /// Hash of the trace so far: every delivery, handled message, event, IO and timer with its
    /// time, node and content kind. Signature bytes are left out: ring draws ECDSA nonces from the
    /// OS RNG, which changes signatures but never control flow.
    pub fn trace_hash(&self) -> (u64, u64) {
        (self.trace.finish(), self.trace_len)
    }

    fn trace(&mut self, record: impl Hash) {
        (self.now.as_nanos(), &record).hash(&mut self.trace);
        self.trace_len += 1;
    }

    fn schedule(&mut self, at: Instant, action: Action) {
        self.seq += 1;
        self.queue.push(Reverse(Scheduled {
            at: at.max(self.now),
            seq: self.seq,
            action,
        }));
    }

    /// Schedules a command to node `node` after `delay`.
    pub fn command_in(&mut self, delay: Duration, node: usize, command: Command) {
        self.schedule(self.now + delay, Action::Command { node, command });
    }

    /// Crashes node `node` after `delay`.
    pub fn crash_in(&mut self, delay: Duration, node: usize) {
        self.schedule(self.now + delay, Action::Crash(node));
    }

    /// Restarts node `node` after `delay` (a fresh node with the same identity).
    pub fn restart_in(&mut self, delay: Duration, node: usize) {
        self.schedule(self.now + delay, Action::Restart(node));
    }

    /// Partitions the network after `delay` (see [`Network::partition`]).
    pub fn partition_in(&mut self, delay: Duration, groups: Vec<Vec<usize>>) {
        self.schedule(self.now + delay, Action::Partition(groups));
    }

    /// Heals every partition after `delay`.
    pub fn heal_in(&mut self, delay: Duration) {
        self.schedule(self.now + delay, Action::Heal);
    }

    /// Replaces the behaviour of every link from now on.
    pub fn set_default_link(&mut self, link: LinkConfig) {
        self.net.default_link = link;
    }

    /// Delivers a crafted envelope to `to` as if `from` had sent it on their connection (it passes
    /// `to`'s ingress like any other).
    pub fn inject(&mut self, from: usize, to: usize, envelope: Envelope) {
        let _ = self.connect(from, to);
        let to_incarnation = self.slots[to].incarnation;
        let at = self.now + self.net.link(from, to).latency_base;
        self.schedule(
            at,
            Action::Deliver {
                from,
                to,
                to_incarnation,
                envelope,
            },
        );
    }

    /// Runs every action up to `elapsed() + duration`.
    pub fn run_for(&mut self, duration: Duration) {
        let until = self.now + duration;
        while self.queue.peek().is_some_and(|Reverse(s)| s.at <= until) {
            let Some(Reverse(next)) = self.queue.pop() else {
                break;
            };
            self.now = next.at;
            self.apply(next.action);
        }
        self.now = until;
    }

    /// Runs until `done` holds (checked every `check_every`) or `limit` more time passed; returns
    /// whether it held.
    pub fn run_until(
        &mut self,
        limit: Duration,
        check_every: Duration,
        mut done: impl FnMut(&Self) -> bool,
    ) -> bool {
        let deadline = self.now + limit;
        while !done(self) {
            if self.now >= deadline {
                return false;
            }
            let step = check_every.min(deadline.saturating_duration_since(self.now));
            self.run_for(step);
        }
        true
    }

    fn apply(&mut self, action: Action) {
        match action {
            Action::Deliver {
                from,
                to,
                to_incarnation,
                envelope,
            } => self.deliver(from, to, to_incarnation, envelope),
            Action::Timer { node, incarnation } => {
                let slot = &mut self.slots[node];
                if slot.incarnation != incarnation || slot.timer_at != Some(self.now) {
                    return;
                }
                slot.timer_at = None;
                let Some(n) = slot.node.as_mut() else { return };
                n.handle_timeout(self.now);
                self.stats.timers += 1;
                self.trace(("timer", node));
                self.drain(node);
            }
            Action::Io {
                node,
                incarnation,
                result,
            } => {
                if self.slots[node].incarnation != incarnation || !self.is_up(node) {
                    return;
                }
                self.trace(("io", node, format!("{result:?}")));
                let now = self.now;
                if let Some(n) = self.slots[node].node.as_mut() {
                    n.handle_io(result, now);
                }
                self.drain(node);
            }
            Action::Command { node, command } => self.command(node, command),
            Action::Crash(node) => self.crash(node),
            Action::Restart(node) => {
                if self.slots[node].node.is_none() {
                    self.slots[node].incarnation += 1;
                    self.boot(node);
                }
            }
            Action::Partition(groups) => {
                self.trace(("partition", &groups));
                self.net.partition(&groups);
                let cut: Vec<_> = self
                    .connections
                    .iter()
                    .copied()
                    .filter(|&(a, b)| !self.net.connected(a, b))
                    .collect();
                for pair in cut {
                    self.connections.remove(&pair);
                }
            }
            Action::Heal => {
                self.trace("heal");
                self.net.heal();
            }
        }
    }

    fn boot(&mut self, i: usize) {
        let incarnation = self.slots[i].incarnation;
        self.slots[i].ingress = new_ingress(&self.msp);
        let slot = &self.slots[i];
        let setup = NodeSetup {
            config: self.gossip.clone(),
            external_endpoint: slot.external_endpoint.clone(),
            internal_endpoint: slot.internal_endpoint.clone(),
            bootstrap: slot
                .spec
                .bootstrap
                .iter()
                .map(|&b| self.slots[b].internal_endpoint.clone())
                .collect(),
            signer: Arc::clone(&self.slots[i].signer),
            rng_seed: node_seed(self.seed, i, incarnation),
        };
        self.slots[i].node = Some(N::start(setup, self.now));
        self.checkers.on_restart(i);
        self.checkers.reset_tally(i);
        self.trace(("boot", i, incarnation));
        self.drain(i);
        // A restarted peer rejoins its channels and resumes from its ledger's height.
        let channels: Vec<_> = self.slots[i].channels.values().cloned().collect();
        for config in channels {
            let height = self.slots[i].ledger.height(&config.channel);
            let channel = config.channel.clone();
            self.command(i, Command::JoinChan(config));
            if height > 1 {
                self.command(i, Command::UpdateLedgerHeight { channel, height });
            }
        }
    }

    fn crash(&mut self, i: usize) {
        if self.slots[i].node.is_none() {
            return;
        }
        let accepted = self.slots[i].ingress.stats().snapshot().accepted;
        self.checkers.check_ingress_tally(i, accepted);
        let slot = &mut self.slots[i];
        slot.node = None;
        slot.timer_at = None;
        slot.incarnation += 1;
        self.connections.retain(|&(a, b)| a != i && b != i);
        self.trace(("crash", i));
    }

    fn command(&mut self, i: usize, command: Command) {
        match &command {
            Command::JoinChan(config) => {
                self.checkers
                    .on_join(i, &String::from_utf8_lossy(&config.channel));
                let orgs: Vec<usize> = config
                    .orgs
                    .iter()
                    .filter_map(|(org, _)| self.slots.iter().find(|s| s.org_id == *org))
                    .map(|s| s.spec.org)
                    .collect();
                self.checkers.on_channel_orgs(&orgs);
                self.slots[i]
                    .channels
                    .insert(config.channel.clone(), config.clone());
            }
            Command::LeaveChan(channel) => {
                self.checkers.on_leave(i, channel);
                self.slots[i].channels.remove(channel);
            }
            _ => {}
        }
        let now = self.now;
        let Some(node) = self.slots[i].node.as_mut() else {
            return;
        };
        node.handle_command(command, now);
        self.trace(("command", i));
        self.drain(i);
    }

    /// Ends the run: checks every live node's ingress tally and returns the violations.
    pub fn finish(&mut self) -> Vec<crate::checkers::Violation> {
        for i in 0..self.slots.len() {
            if self.slots[i].node.is_some() {
                let accepted = self.slots[i].ingress.stats().snapshot().accepted;
                self.checkers.check_ingress_tally(i, accepted);
            }
        }
        self.checkers.violations().to_vec()
    }
}
