//! The scenario suite over real transport: one `GossipHandle` per node, tonic with mutual TLS on
//! 127.0.0.1, a fresh test PKI per run (the fixture's certificates carry no TLS keys). Time is
//! real, so a scenario runs once (no seeds) and its `Await*` deadlines are liveness bounds.
//!
//! Each node's internal endpoint is `127.0.0.1:<port>`, its external one (when the scenario gives
//! it one) `localhost:<port>`: the same listener, two names, so the endpoint-leak checker can tell
//! an internal endpoint crossing orgs. The simulator's checkers run here too, fed from each node:
//! every verified message (an `accept` pass-through subscription: endpoint leaks, disclosure,
//! channel leaks on the wire), every block transmitted (a transmit filter: no echo), and every
//! block delivered (the event stream: in order, no duplicates, no channel leak).

use std::collections::{BTreeMap, BTreeSet};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use gossip_engine::config::GossipConfig;
use gossip_engine::crypto::MspManager;
use gossip_engine::event::{AnchorPeer, ChannelConfig, Command, RemotePeer};
use gossip_engine::ingress::ReceivedMessage;
use gossip_engine::time::Instant;
use gossip_engine::types::{OrgId, PkiId};
use gossip_engine::wire::ContentKind;
use gossip_engine::{GossipHandle, MemLedger, TlsMaterial, clock};
use gossip_proto::gossip::{Envelope, GossipMessage};
use gossip_testkit::testpki::{TestPki, TestPkiSpec};
use tokio::runtime::Runtime;

use self::node::{Peer, Seen};
use self::partition::Links;
use super::{Cluster, INJECT_SPACING, run_steps};
use crate::alive_seen::AliveSeen;
use crate::checkers::{Checkers, PeerFacts, Violation};
use crate::scenario::{Op, Scenario};
use crate::sim::PeerSpec;

mod node;
mod partition;

/// How often liveness conditions are evaluated, in real time.
const CHECK_EVERY: Duration = Duration::from_millis(100);

/// The longest a wait sleeps before folding what the nodes reported into the checkers.
const ABSORB_EVERY: Duration = Duration::from_millis(50);

/// Ports held for a cluster of this process, from their reservation until the cluster drops.
/// A cluster lets a port go just before its node binds it; meanwhile the kernel may offer it to
/// another cluster's reservation, which must pass it by (concurrent runs in one test).
static PORTS_HELD: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

/// `n` listeners on 127.0.0.1, on ports no other cluster of this process holds, outside the
/// ephemeral range (`gossip_testkit::ports::bind_local`: once let go, no outgoing connection
/// can take one before its node binds it).
fn reserve_ports(n: usize) -> Vec<TcpListener> {
    let mut held = PORTS_HELD.lock().expect("port registry poisoned");
    // Listeners on ports another cluster holds stay open until the end, so that the kernel
    // offers other ports.
    let mut passed_by = Vec::new();
    let mut mine = Vec::with_capacity(n);
    while mine.len() < n {
        let listener = gossip_testkit::ports::bind_local();
        let port = listener.local_addr().expect("bound address").port();
        match held.insert(port) {
            true => mine.push(listener),
            false => passed_by.push(listener),
        }
    }
    mine
}

/// How a tonic run ended.
#[derive(Clone, Debug)]
pub struct TonicOutcome {
    /// Broken invariants, first first (empty on success).
    pub violations: Vec<Violation>,
    /// Real time the steps took.
    pub elapsed: Duration,
}

/// Runs `scenario` once on a tonic cluster; `Err` when it is sim-only (nothing is started).
/// Whatever `N` is, the nodes are the engine's, each under its own `GossipHandle`.
pub fn try_run_tonic<N>(scenario: &Scenario<N>) -> Result<TonicOutcome, String> {
    try_run_tonic_then(scenario, |_| Ok(()))
}

/// [`try_run_tonic`], then `then` on the same cluster unless a step already failed: the tonic
/// counterpart of a custom step, for checks written over any [`Cluster`] (an `Err` is a
/// liveness failure). A panic in `then` stops the nodes as it unwinds.
pub fn try_run_tonic_then<N>(
    scenario: &Scenario<N>,
    then: impl FnOnce(&mut TonicCluster) -> Result<(), String>,
) -> Result<TonicOutcome, String> {
    if let Some(why) = scenario.sim_only_reason() {
        return Err(format!(
            "scenario {} runs on the simulator only: {why}",
            scenario.name
        ));
    }
    let mut cluster = TonicCluster::start(scenario.peer_specs(), scenario.gossip_config().clone());
    run_steps(scenario, &mut cluster);
    if cluster.checkers.violations().is_empty()
        && let Err(what) = then(&mut cluster)
    {
        cluster.checkers.liveness_failed(what);
    }
    let elapsed = Cluster::<N>::elapsed(&cluster);
    let violations = cluster.finish();
    Ok(TonicOutcome {
        violations,
        elapsed,
    })
}

/// Runs `scenario` once on a tonic cluster; panics with `TONIC FAILED scenario=<name>` and the
/// violations on a broken invariant, and when the scenario is sim-only.
pub fn run_tonic<N>(scenario: &Scenario<N>) -> TonicOutcome {
    run_tonic_then(scenario, |_| Ok(()))
}

/// [`run_tonic`] with [`try_run_tonic_then`]'s `then`.
pub fn run_tonic_then<N>(
    scenario: &Scenario<N>,
    then: impl FnOnce(&mut TonicCluster) -> Result<(), String>,
) -> TonicOutcome {
    let outcome = try_run_tonic_then(scenario, then).unwrap_or_else(|refused| panic!("{refused}"));
    if !outcome.violations.is_empty() {
        let list: Vec<String> = outcome.violations.iter().map(|v| v.to_string()).collect();
        panic!(
            "TONIC FAILED scenario={} after {:?}\n  {}",
            scenario.name,
            outcome.elapsed,
            list.join("\n  ")
        );
    }
    eprintln!(
        "tonic scenario {}: ok in {:?}",
        scenario.name, outcome.elapsed
    );
    outcome
}

/// A cluster of `GossipHandle`s on 127.0.0.1, driven by its own tokio runtime.
pub struct TonicCluster {
    rt: Runtime,
    started: Instant,
    gossip: GossipConfig,
    msp: Arc<MspManager>,
    org_ids: Vec<OrgId>,
    peers: Vec<Peer>,
    /// Who is whom, and the current partition (shared with every node's transmit filter).
    links: Arc<Links>,
    checkers: Checkers,
    /// (receiver, subject) → newest accepted alive message's (inc_num, seq_num, metadata).
    alive_seen: AliveSeen,
}

impl TonicCluster {
    /// Generates a PKI for `specs`, reserves a port per node and starts every node, in index
    /// order.
    pub fn start(specs: Vec<PeerSpec>, gossip: GossipConfig) -> TonicCluster {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let orgs = specs.iter().map(|s| s.org + 1).max().unwrap_or(0);
        let per_org = specs.iter().map(|s| s.peer + 1).max().unwrap_or(0);
        let now_unix_s = clock::now().as_unix_secs();
        let pki =
            TestPki::generate(&TestPkiSpec::uniform(orgs, per_org, now_unix_s)).expect("test PKI");
        let msp = Arc::new(pki.msp_manager().expect("MSP manager"));
        // Reserve every port first: a node's endpoints and its bootstrap list name them.
        let listeners = reserve_ports(specs.len());
        let mut peers = Vec::with_capacity(specs.len());
        for (spec, listener) in specs.into_iter().zip(&listeners) {
            let test_peer = &pki.orgs[spec.org].peers[spec.peer];
            peers.push(Peer {
                listen: listener.local_addr().expect("bound address"),
                signer: Arc::new(test_peer.signer().expect("signer")),
                tls: TlsMaterial {
                    cert_chain_pem: test_peer.tls.cert_pem.clone(),
                    key_pem: test_peer.tls.key_pem.clone(),
                },
                spec,
                incarnation: 0,
                channels: BTreeMap::new(),
                ledger: Arc::new(MemLedger::default()),
                running: None,
            });
        }
        let facts = peers
            .iter()
            .map(|p| PeerFacts {
                org: p.spec.org,
                internal_endpoint: p.internal_endpoint(),
                pki_id: p.signer.pki_id(),
                external: p.spec.external,
            })
            .collect();
        let by_pki = (peers.iter().enumerate())
            .map(|(i, p)| (p.signer.pki_id(), i))
            .collect();
        let mut by_endpoint = BTreeMap::new();
        for (i, p) in peers.iter().enumerate() {
            by_endpoint.insert(p.internal_endpoint(), i);
            by_endpoint.insert(p.localhost_endpoint(), i);
        }
        let mut cluster = TonicCluster {
            rt,
            started: clock::now(),
            gossip,
            msp,
            org_ids: pki
                .orgs
                .iter()
                .map(|o| OrgId::from(o.mspid.as_str()))
                .collect(),
            links: Arc::new(Links::new(by_pki, by_endpoint)),
            peers,
            checkers: Checkers::new(facts),
            alive_seen: AliveSeen::default(),
        };
        // Each port is let go just before its node binds it (see `PORTS_HELD`).
        for (i, listener) in listeners.into_iter().enumerate() {
            drop(listener);
            cluster.boot(i);
        }
        cluster
    }

    /// Starts node `i` (again).
    fn boot(&mut self, i: usize) {
        let bootstrap = (self.peers[i].spec.bootstrap.iter())
            .map(|&b| self.peers[b].internal_endpoint())
            .collect();
        let links = &self.links;
        self.peers[i].start(&self.rt, i, &self.gossip, &self.msp, bootstrap, links);
    }

    /// Folds what every node reported into the checkers.
    fn absorb(&mut self) {
        for i in 0..self.peers.len() {
            self.absorb_node(i);
        }
    }

    /// Folds what node `i` reported into the checkers, in the order its driver did it: each
    /// block it sent is checked against the messages it had received before (no echo).
    fn absorb_node(&mut self, i: usize) {
        let Some(run) = self.peers[i].running.as_mut() else {
            return;
        };
        for seen in run.take() {
            match seen {
                Seen::Received(m) => self.received(i, &m),
                Seen::BlockSent(to, envelope) => self.block_sent(i, &to, &envelope),
                Seen::Delivered(channel, seq) => self.checkers.on_block_event(i, &channel, seq),
            }
        }
    }

    fn received(&mut self, i: usize, m: &ReceivedMessage) {
        let Some(from) = self.links.by_pki(&m.from) else {
            return;
        };
        self.checkers.on_wire(from, i, &m.envelope);
        let links = &self.links;
        self.alive_seen.observe(i, &m.message, |p| links.by_pki(p));
        let is_block = m.kind == ContentKind::DataMsg;
        self.checkers.on_accepted(from, i, &m.envelope, is_block);
    }

    fn block_sent(&mut self, i: usize, to: &RemotePeer, envelope: &Envelope) {
        if let Some(to) = self.links.target(to) {
            self.checkers.on_block_transmit(i, to, envelope);
        }
    }

    /// Stops node `i` after folding in what it reported; a subscriber queue that overflowed
    /// (so the checkers missed something) is a failure.
    fn stop_node(&mut self, i: usize) {
        self.absorb_node(i);
        let Some(run) = self.peers[i].running.as_ref() else {
            return;
        };
        let stats = self.rt.block_on(run.handle.stats());
        self.rt.block_on(run.handle.stop());
        self.absorb_node(i);
        self.peers[i].running = None;
        if let Ok(s) = stats
            && s.driver.events_dropped + s.driver.pass_through_dropped > 0
        {
            self.checkers.liveness_failed(format!(
                "tonic node {i} dropped {} events and {} verified messages before the checkers \
                 saw them",
                s.driver.events_dropped, s.driver.pass_through_dropped
            ));
        }
    }

    /// Stops every node and returns the violations.
    pub fn finish(&mut self) -> Vec<Violation> {
        for i in 0..self.peers.len() {
            self.stop_node(i);
        }
        self.checkers.violations().to_vec()
    }

    fn command(&mut self, i: usize, command: Command) {
        match &command {
            Command::JoinChan(config) => {
                self.checkers
                    .on_join(i, &String::from_utf8_lossy(&config.channel));
                let orgs: Vec<usize> = config
                    .orgs
                    .iter()
                    .filter_map(|(org, _)| self.org_ids.iter().position(|o| o == org))
                    .collect();
                self.checkers.on_channel_orgs(&orgs);
                let channels = &mut self.peers[i].channels;
                channels.insert(config.channel.clone(), config.clone());
            }
            Command::LeaveChan(channel) => {
                self.checkers.on_leave(i, channel);
                self.peers[i].channels.remove(channel);
            }
            _ => {}
        }
        let Some(run) = self.peers[i].running.as_ref() else {
            return;
        };
        let handle = &run.handle;
        let sent = self.rt.block_on(async {
            match command {
                Command::Gossip(m) => handle.gossip(m).await,
                Command::Send { message, peers } => handle.send(message, peers).await,
                Command::JoinChan(config) => handle.join_chan(config).await,
                Command::LeaveChan(channel) => handle.leave_chan(channel).await,
                Command::UpdateLedgerHeight { channel, height } => {
                    handle.update_ledger_height(channel, height).await
                }
                Command::UpdateMetadata(metadata) => handle.update_metadata(metadata).await,
                Command::YieldLeadership(channel) => handle.yield_leadership(channel).await,
                Command::UpdateChaincodes {
                    channel,
                    chaincodes,
                } => handle.update_channel_metadata(channel, chaincodes).await,
            }
        });
        if let Err(e) = sent {
            self.checkers
                .liveness_failed(format!("tonic node {i} refused a command: {e}"));
        }
    }

    fn query<T: Send + 'static, F>(
        &mut self,
        i: usize,
        f: impl FnOnce(GossipHandle) -> F,
    ) -> Option<T>
    where
        F: std::future::Future<Output = Result<T, gossip_engine::GossipError>>,
    {
        let handle = self.peers[i].running.as_ref()?.handle.clone();
        self.rt.block_on(f(handle)).ok()
    }

    fn sorted(&self, mut ids: Vec<PkiId>) -> Vec<PkiId> {
        ids.sort_unstable();
        ids
    }
}

impl Drop for TonicCluster {
    fn drop(&mut self) {
        for peer in &mut self.peers {
            if let Some(run) = peer.running.take() {
                self.rt.block_on(run.handle.stop());
            }
        }
        if let Ok(mut held) = PORTS_HELD.lock() {
            for peer in &self.peers {
                held.remove(&peer.listen.port());
            }
        }
    }
}

impl<N> Cluster<N> for TonicCluster {
    fn node_count(&self) -> usize {
        self.peers.len()
    }

    fn spec(&self, i: usize) -> &PeerSpec {
        &self.peers[i].spec
    }

    fn is_up(&self, i: usize) -> bool {
        self.peers[i].running.is_some()
    }

    fn pki_id(&self, i: usize) -> PkiId {
        self.peers[i].signer.pki_id()
    }

    fn index_of(&self, pki_id: &PkiId) -> Option<usize> {
        self.links.by_pki(pki_id)
    }

    fn elapsed(&self) -> Duration {
        clock::now().saturating_duration_since(self.started)
    }

    fn check_every(&self) -> Duration {
        CHECK_EVERY
    }

    fn checkers(&self) -> &Checkers {
        &self.checkers
    }

    fn fail(&mut self, what: String) {
        self.checkers.liveness_failed(what);
    }

    fn anchor(&self, i: usize) -> AnchorPeer {
        AnchorPeer {
            host: "localhost".into(),
            port: self.peers[i].listen.port(),
        }
    }

    fn wait(&mut self, duration: Duration) {
        let until = Cluster::<N>::elapsed(self) + duration;
        loop {
            self.absorb();
            let now = Cluster::<N>::elapsed(self);
            if now >= until {
                return;
            }
            std::thread::sleep(ABSORB_EVERY.min(until - now));
        }
    }

    fn commands(&mut self, commands: Vec<(usize, Command)>) {
        for (node, command) in commands {
            self.command(node, command);
        }
        self.absorb();
    }

    fn inject(&mut self, from: usize, messages: Vec<GossipMessage>) {
        for message in messages {
            self.command(from, Command::Gossip(message));
            Cluster::<N>::wait(self, INJECT_SPACING);
        }
    }

    fn crash(&mut self, i: usize) {
        self.stop_node(i);
    }

    fn restart(&mut self, i: usize) {
        if self.peers[i].running.is_some() {
            return;
        }
        self.peers[i].incarnation += 1;
        self.boot(i);
        self.checkers.on_restart(i);
        // A restarted peer rejoins its channels; the driver resumes each from the ledger's height.
        let channels: Vec<ChannelConfig> = self.peers[i].channels.values().cloned().collect();
        for config in channels {
            self.command(i, Command::JoinChan(config));
        }
    }

    fn alive_members(&mut self, i: usize) -> Option<Vec<PkiId>> {
        let members = self.query(i, |h| async move { h.peers().await })?;
        Some(self.sorted(members.into_iter().map(|m| m.pki_id).collect()))
    }

    fn dead_members(&mut self, i: usize) -> Option<Vec<PkiId>> {
        let members = self.query(i, |h| async move { h.dead_peers().await })?;
        Some(self.sorted(members.into_iter().map(|m| m.pki_id).collect()))
    }

    fn channel_members(&mut self, i: usize, channel: &[u8]) -> Option<Vec<PkiId>> {
        let channel = Bytes::copy_from_slice(channel);
        let members = self.query(i, |h| async move { h.peers_of_channel(channel).await })?;
        Some(self.sorted(members.into_iter().map(|(m, _)| m.pki_id).collect()))
    }

    fn is_leader(&mut self, i: usize, channel: &[u8]) -> Option<bool> {
        let channel = Bytes::copy_from_slice(channel);
        self.query(i, |h| async move { h.is_leader(channel).await })?
    }

    fn alive_metadata(&self, to: usize, about: usize) -> Option<Bytes> {
        self.alive_seen.metadata(to, about).cloned()
    }

    /// Through the transmit filters, see [`Links`].
    fn partition(&mut self, groups: &[Vec<usize>]) {
        self.links.partition(groups);
        self.absorb();
    }

    fn heal(&mut self) {
        self.links.heal();
        self.absorb();
    }

    fn same_side(&self, a: usize, b: usize) -> bool {
        self.links.same_side(a, b)
    }

    /// Refuses every sim-only step (link faults, closures over the simulator).
    fn sim_only(&mut self, step: &Op<N>) -> Result<(), String> {
        Err(format!(
            "{} (the tonic runner refuses sim-only steps)",
            step.sim_only_reason().unwrap_or("not a sim-only step")
        ))
    }
}
