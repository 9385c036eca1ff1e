//! The [`Node`]: one gossip peer as a sans-IO state machine, wiring discovery, channels and the
//! egress pipeline (emitter → partition → routing).

mod admission;
mod leadership;
mod lifecycle;
mod route;
mod stats;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use gossip_proto::gossip::gossip_message::Content;
use gossip_proto::gossip::{Envelope, GossipMessage, Properties};
use prost::Message;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub use route::{Emitted, Outgoing, Router};
pub use stats::{ChannelSummary, NodeStats, majority_height};

use crate::components::certstore::{self, CertStore};
use crate::components::channel::{self, Channel, StoredStateInfo};
use crate::components::discovery::{ConnectKind, Discovery, due};
use crate::components::msgstore::{MsgStore, PeerTimePolicy};
use crate::config::GossipConfig;
use crate::crypto::envelope::{noop_sign, sign_envelope};
use crate::crypto::{LocalSigner, channel_mac};
use crate::egress::{Emitter, EmitterConfig, Partition, RouteClass};
use crate::event::{
    ChannelConfig, Command, Event, IoRequest, IoResult, Lane, RemotePeer, Transmit,
};
#[cfg(doc)]
use crate::ingress::IdentityStore;
use crate::ingress::{IdentityChange, ReceivedMessage, Verified};
use crate::outbox::{DropReason, Outbox};
use crate::time::Instant;
use crate::types::{NetworkMember, PkiId};
use crate::wire::{self, ContentKind};

/// Bound on joined channels.
pub const CHANNELS_LEN_MAX: usize = 1_024;
/// Bound on the node-level StateInfo store (channels this peer is not in).
pub const NODE_STATE_INFOS_LEN_MAX: usize = 16_384;

/// What a node is built from.
#[derive(Clone, Debug)]
pub struct NodeParams {
    /// `peer.gossip.*`.
    pub config: GossipConfig,
    /// `peer.gossip.externalEndpoint`; may be empty.
    pub external_endpoint: String,
    /// `peer.gossip.endpoint` or `peer.address`; never empty.
    pub internal_endpoint: String,
    /// `peer.gossip.bootstrap`: same-org endpoints.
    pub bootstrap: Vec<String>,
    /// This peer's identity and key.
    pub signer: Arc<LocalSigner>,
    /// Seed of the node's ChaCha8 RNG (all of its randomness).
    pub rng_seed: u64,
}

/// One gossip peer (Fabric's `gossipServiceImpl`), sans IO.
///
/// # Driving a node
///
/// Inputs are `handle_*` calls, each taking the current time:
/// [`handle_message`](Self::handle_message) (a verified message from ingress),
/// [`handle_timeout`](Self::handle_timeout) (when [`poll_timeout`](Self::poll_timeout) has passed),
/// [`handle_command`](Self::handle_command) (the application),
/// [`handle_io`](Self::handle_io) (outcomes of requested IO and comm notifications), and
/// [`handle_identity`](Self::handle_identity) (changes of the driver's identity store: hand them
/// over before any message checked against the store).
///
/// After [`Node::new`] and after **every** `handle_*` call, drain the outputs in this order,
/// each until it returns `None`:
///
/// 1. [`poll_transmit`](Self::poll_transmit): messages to send;
/// 2. [`poll_io`](Self::poll_io): IO to perform (handshakes, probes, closing connections);
/// 3. [`poll_event`](Self::poll_event): events for the application (blocks in order, membership);
///
/// then re-arm the timer with [`poll_timeout`](Self::poll_timeout). Outputs are bounded queues:
/// a host that does not drain loses outputs (counted in [`NodeStats::outbox_overflowed`]).
///
/// # Timers
///
/// Every periodic task keeps its next deadline in a field; [`handle_timeout`](Self::handle_timeout)
/// runs each task whose deadline is at or before `now` and sets its next deadline to
/// `now + period`. Nothing is ever cancelled, so no tokens are needed: a call before any deadline
/// does nothing, and `poll_timeout` is always the minimum of the live deadlines (including the
/// emitter's next emission).
///
/// # Determinism
///
/// All randomness comes from the ChaCha8 RNG seeded with [`NodeParams::rng_seed`]; every map the
/// node walks is ordered, so the same seed and inputs replay the same outputs (ECDSA signature
/// bytes aside: ring draws signing nonces from the OS, which never changes control flow).
pub struct Node {
    config: GossipConfig,
    signer: Arc<LocalSigner>,
    rng: ChaCha8Rng,
    discovery: Discovery,
    certstore: CertStore,
    channels: BTreeMap<Bytes, Channel>,
    node_state_infos: MsgStore<PeerTimePolicy<StoredStateInfo>>,
    node_state_infos_expire_at: Instant,
    emitter: Emitter<Emitted>,
    emitter_deadline: Option<Instant>,
    flushed: Vec<Emitted>,
    partition: Partition,
    out: Outbox,
    stats: NodeStats,
    /// Discovery's `became_alive` count the channels last saw ([`Node::pull_state_infos_early`]).
    became_alive_seen: u64,
}

impl Node {
    /// A node started at `now` (`inc_num` = `now` in ns). Drain its outputs right away: it asks
    /// for handshakes with the bootstrap peers.
    pub fn new(params: NodeParams, now: Instant) -> Node {
        let config = params.config;
        let mut discovery = Discovery::new(
            config.clone(),
            Arc::clone(&params.signer),
            params.external_endpoint,
            params.internal_endpoint,
            now,
        );
        let mut out = Outbox::default();
        let own_identity = certstore::own_identity_message(&params.signer);
        if own_identity.is_none() {
            out.count_drop(DropReason::SignFailed);
        }
        let certstore = CertStore::new(params.signer.pki_id(), own_identity, &config, now);
        for endpoint in &params.bootstrap {
            discovery.connect(endpoint, ConnectKind::Bootstrap, &mut out);
        }
        let mut rng = ChaCha8Rng::seed_from_u64(params.rng_seed);
        let latency_ns = config
            .max_propagation_burst_latency
            .as_nanos()
            .clamp(1, u128::from(u64::MAX)) as u64;
        let emitter = Emitter::new(EmitterConfig {
            burst_len_max: config.max_propagation_burst_len,
            burst_latency: config.max_propagation_burst_latency,
            iterations: config.propagate_iterations,
            tick_phase: Duration::from_nanos(rng.random_range(0..latency_ns)),
            flush_when_idle: config.emit_when_idle,
            interval_min: config.emitter_interval_min(),
        });
        let node_state_infos = MsgStore::new(
            PeerTimePolicy::default(),
            Some(config.node_state_info_ttl()),
            NODE_STATE_INFOS_LEN_MAX,
        );
        Node {
            node_state_infos_expire_at: now + config.node_state_info_ttl() / 100,
            config,
            signer: params.signer,
            rng,
            discovery,
            certstore,
            channels: BTreeMap::new(),
            node_state_infos,
            emitter,
            emitter_deadline: None,
            flushed: Vec::new(),
            partition: Partition::default(),
            out,
            stats: NodeStats::default(),
            became_alive_seen: 0,
        }
    }

    /// A verified message from ingress (Fabric's `handleMessage`, spec 3.3).
    pub fn handle_message(&mut self, msg: Verified<ReceivedMessage>, now: Instant) {
        let received = msg.into_inner();
        self.stats.messages_handled += 1;
        self.dispatch(&received, now);
        self.after_input(now);
    }

    fn dispatch(&mut self, m: &ReceivedMessage, now: Instant) {
        let (from, envelope, message) = (m.from, &m.envelope, &m.message);
        let channel_restricted = wire::tag_of(message).is_some_and(wire::is_channel_restricted);
        if channel_restricted {
            return self.dispatch_channel(m, now);
        }
        let out = &mut self.out;
        match m.kind {
            ContentKind::AliveMsg => self
                .discovery
                .handle_alive(from, envelope, message, now, out),
            ContentKind::MemReq => self
                .discovery
                .handle_membership_request(from, message, now, out),
            ContentKind::MemRes => self.discovery.handle_membership_response(message, now, out),
            ContentKind::Hello
            | ContentKind::DataDig
            | ContentKind::DataReq
            | ContentKind::DataUpdate => {
                let ctx = certstore::Ctx::new(&self.discovery, &self.config, now);
                self.certstore.handle_pull(from, message, &ctx, out)
            }
            _ => out.count_drop(DropReason::Unsupported),
        }
    }

    /// The channel of a channel-restricted message: by MAC for StateInfo and its pull request,
    /// by name otherwise.
    fn channel_of(&self, m: &ReceivedMessage) -> Option<Bytes> {
        let by_mac = |pki_id: &PkiId, mac: &[u8]| {
            self.channels
                .keys()
                .find(|name| channel_mac(pki_id, name)[..] == *mac)
                .cloned()
        };
        match &m.message.content {
            Some(Content::StateInfoPullReq(r)) => by_mac(&m.from, &r.channel_mac),
            Some(Content::StateInfo(si)) => {
                by_mac(&PkiId::from_slice(&si.pki_id)?, &si.channel_mac)
            }
            _ => self
                .channels
                .contains_key(&m.message.channel)
                .then(|| m.message.channel.clone()),
        }
    }

    fn dispatch_channel(&mut self, m: &ReceivedMessage, now: Instant) {
        let Some(name) = self.channel_of(m) else {
            return self.relay_foreign_state_info(m, now);
        };
        let ctx = channel::Ctx {
            discovery: &self.discovery,
            signer: &self.signer,
            config: &self.config,
            now,
            blocks_authenticated: m.blocks_authenticated,
        };
        let (Some(ch), out) = (self.channels.get_mut(&name), &mut self.out) else {
            return;
        };
        let sender_org = ctx.discovery.org_of(&m.from, now);
        if !sender_org.is_some_and(|o| ch.has_org(&o)) {
            return out.count_drop(DropReason::OrgNotInChannel);
        }
        let (from, envelope, message) = (m.from, &m.envelope, &m.message);
        match m.kind {
            ContentKind::StateInfoPullReq => ch.handle_state_info_pull_request(from, &ctx, out),
            ContentKind::StateSnapshot => ch.handle_state_info_snapshot(message, &ctx, out),
            ContentKind::StateInfo => ch.handle_state_info(from, envelope, message, &ctx, out),
            ContentKind::DataMsg => ch.handle_data(from, envelope, message, &ctx, out),
            ContentKind::LeadershipMsg => ch.handle_leadership(from, message, &ctx, out),
            ContentKind::Hello
            | ContentKind::DataDig
            | ContentKind::DataReq
            | ContentKind::DataUpdate => ch.handle_pull(from, message, &ctx, out),
            ContentKind::StateRequest => ch.handle_state_request(from, message, &mut self.rng, out),
            ContentKind::StateResponse => {
                ch.handle_state_response(from, message, &ctx, &mut self.rng, out)
            }
            _ => out.count_drop(DropReason::Unsupported),
        }
    }

    /// A channel-restricted message for a channel this peer is not in: a StateInfo from a peer of
    /// this org goes to the node-level store and, if new, is forwarded; anything else is dropped.
    fn relay_foreign_state_info(&mut self, m: &ReceivedMessage, now: Instant) {
        let my_org = &self.discovery.me().org;
        let same_org = self.discovery.org_of(&m.from, now).as_ref() == Some(my_org);
        let stored = match &m.message.content {
            Some(Content::StateInfo(si)) if same_org => StoredStateInfo::of(&m.envelope, si),
            _ => return self.out.count_drop(DropReason::UnknownChannel),
        };
        let Some(stored) = stored else {
            return self.out.count_drop(DropReason::Malformed);
        };
        if stored.pki_id == self.discovery.me().pki_id {
            return self.out.count_drop(DropReason::FromSelf);
        }
        match self.node_state_infos.add(stored, now) {
            Ok(_) => self
                .out
                .emit(m.envelope.clone(), m.message.clone(), Some(m.from)),
            Err(_) => self.out.count_drop(DropReason::Stale),
        }
    }

    /// Runs the periodic tasks that are due and flushes the emitter on its tick. Idempotent when
    /// called before [`poll_timeout`](Self::poll_timeout).
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.emitter_deadline.is_some_and(|d| d <= now) {
            self.emitter_deadline = None;
            self.emitter.handle_timeout(now, &mut self.flushed);
            self.route_flushed(now);
        }
        self.discovery.refresh();
        self.discovery
            .handle_timeout(now, &mut self.rng, &mut self.out);
        self.discovery.refresh();
        let ctx = certstore::Ctx::new(&self.discovery, &self.config, now);
        self.certstore
            .handle_timeout(&ctx, &mut self.rng, &mut self.out);
        let ctx = channel::Ctx::new(&self.discovery, &self.signer, &self.config, now);
        for ch in self.channels.values_mut() {
            ch.handle_timeout(&ctx, &mut self.rng, &mut self.out);
        }
        let period = self.config.node_state_info_ttl() / 100;
        if due(
            &mut self.node_state_infos_expire_at,
            now,
            period.max(Duration::from_millis(1)),
        ) {
            self.node_state_infos.expire(now);
        }
        self.after_input(now);
    }

    /// An application command.
    pub fn handle_command(&mut self, cmd: Command, now: Instant) {
        match cmd {
            Command::Gossip(message) => self.gossip(message, now),
            Command::Send { message, peers } => {
                if let Some(envelope) = self.sign(&message) {
                    let lane = Lane::of(&message);
                    for peer in peers {
                        self.out.send_on(lane, peer, envelope.clone());
                    }
                }
            }
            Command::JoinChan(config) => self.join_chan(config, now),
            Command::LeaveChan(name) => {
                if let Some(ch) = self.channels.get_mut(&name) {
                    ch.leave();
                    ch.stop_election(&mut self.out);
                }
            }
            Command::YieldLeadership(name) => self.yield_leadership(&name, now),
            Command::UpdateLedgerHeight { channel, height } => {
                if let Some(ch) = self.channels.get_mut(&channel) {
                    ch.set_ledger_height(height, &mut self.out);
                }
            }
            Command::UpdateMetadata(metadata) => self.discovery.set_metadata(metadata),
            Command::UpdateChaincodes {
                channel,
                chaincodes,
            } => {
                if let Some(ch) = self.channels.get_mut(&channel) {
                    ch.set_chaincodes(&chaincodes);
                }
            }
        }
        self.after_input(now);
    }

    /// Data messages are NoopSigned, everything else signed (an illegal tag is refused and
    /// counted; Fabric panics).
    fn sign(&mut self, message: &GossipMessage) -> Option<Envelope> {
        if wire::check_tag(message).is_err() {
            self.out.count_drop(DropReason::Malformed);
            return None;
        }
        let payload: Bytes = message.encode_to_vec().into();
        if matches!(message.content, Some(Content::DataMsg(_))) {
            return Some(noop_sign(payload));
        }
        let signed = sign_envelope(payload, self.signer.key()).ok();
        if signed.is_none() {
            self.out.count_drop(DropReason::SignFailed);
        }
        signed
    }

    fn gossip(&mut self, message: GossipMessage, now: Instant) {
        let Some(envelope) = self.sign(&message) else {
            return;
        };
        let is_data = matches!(message.content, Some(Content::DataMsg(_)));
        let channel_restricted = wire::tag_of(&message).is_some_and(wire::is_channel_restricted);
        match self.channels.get_mut(&message.channel) {
            Some(ch) if is_data && channel_restricted => {
                ch.gossip_local(envelope, message, now, &mut self.out)
            }
            _ => self.out.emit(envelope, message, None),
        }
    }

    fn join_chan(&mut self, config: ChannelConfig, now: Instant) {
        if config.orgs.is_empty() {
            return;
        }
        let channels_len = self.channels.len();
        match self.channels.get_mut(&config.channel) {
            Some(ch) => {
                let discovery = &self.discovery;
                ch.reconfigure(&config, |p| discovery.org_of(p, now));
            }
            None if channels_len >= CHANNELS_LEN_MAX => {
                return self.out.count_drop(DropReason::Full);
            }
            None => {
                let mut ch = Channel::new(&config, &self.config, now);
                ch.spread_timers(&self.config, &mut self.rng);
                self.channels.insert(config.channel.clone(), ch);
                self.ask_state_infos(now);
            }
        }
        let me = self.discovery.me();
        let (my_org, no_external) = (me.org.clone(), me.external_endpoint.is_empty());
        for (org, anchors) in &config.orgs {
            if *org != my_org && no_external {
                continue;
            }
            for anchor in anchors {
                if anchor.host.is_empty() || anchor.port == 0 {
                    continue;
                }
                let endpoint = format!("{}:{}", anchor.host, anchor.port);
                let kind = ConnectKind::Anchor {
                    claimed_org: org.clone(),
                };
                self.discovery.connect(&endpoint, kind, &mut self.out);
            }
        }
    }

    /// A change of the driver's identity store ([`IdentityStore::take_changes`]): the orgs of
    /// peers known by their identity before their alive message arrives.
    /// Expiry is checked against the `now` of later inputs.
    pub fn handle_identity(&mut self, change: IdentityChange, _now: Instant) {
        self.certstore.handle_identity(&change);
        self.discovery.learn_identity(change, &mut self.out);
        self.forget_purged();
        self.discovery.refresh();
    }

    /// The outcome of requested IO, or a comm notification.
    pub fn handle_io(&mut self, result: IoResult, now: Instant) {
        let out = &mut self.out;
        match result {
            IoResult::Handshake { token, result } => {
                self.discovery
                    .handle_handshake(token, &result, now, &mut self.rng, out)
            }
            IoResult::Probe { pki_id, alive } => {
                self.discovery.handle_probe(&pki_id, alive, now, out)
            }
            IoResult::PresumedDead(pki_id) => {
                self.discovery.handle_presumed_dead(&pki_id, now, out)
            }
            IoResult::IdentitySwitch(pki_id) => self.discovery.purge(&pki_id, out),
            IoResult::Blocks { token, blocks } => {
                let ctx = channel::Ctx::new(&self.discovery, &self.signer, &self.config, now);
                if let Some(ch) = self.channels.values_mut().find(|c| c.serves_read(token)) {
                    ch.handle_blocks_read(token, blocks, &ctx, out);
                }
            }
        }
        self.after_input(now);
    }

    /// Moves the components' emits into the emitter (routing any burst it flushes) and arms the
    /// emitter's tick.
    fn after_input(&mut self, now: Instant) {
        self.forget_purged();
        self.discovery.refresh();
        self.pull_state_infos_early(now);
        let my_org = self.discovery.me().org.clone();
        for emit in std::mem::take(&mut self.out.emits) {
            let origin_in_my_org = match &emit.message.content {
                Some(Content::AliveMsg(a)) => a
                    .membership
                    .as_ref()
                    .and_then(|m| PkiId::from_slice(&m.pki_id))
                    .and_then(|p| self.discovery.org_of(&p, now))
                    .is_some_and(|o| o == my_org),
                _ => false,
            };
            let class = RouteClass::of(&emit.message, origin_in_my_org);
            self.stats.emitted += 1;
            let item = Emitted(Arc::new(Outgoing {
                envelope: emit.envelope,
                message: emit.message,
                class,
                source: emit.source,
            }));
            self.emitter.add(item, now, &mut self.flushed);
            if !self.flushed.is_empty() {
                self.route_flushed(now);
            }
        }
        if self.emitter.is_empty() {
            self.emitter_deadline = None;
        } else if self.emitter_deadline.is_none() {
            self.emitter_deadline = self.emitter.poll_timeout(now);
        }
    }

    fn route_flushed(&mut self, now: Instant) {
        let router = Router {
            discovery: &self.discovery,
            channels: &self.channels,
            config: &self.config,
            now,
        };
        router.route(
            &self.flushed,
            &mut self.partition,
            &mut self.rng,
            &mut self.out,
        );
        self.flushed.clear();
    }

    /// The next message to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        let t = self.out.transmits.pop_front()?;
        self.stats.transmits += 1;
        Some(t)
    }

    /// The next event for the application.
    pub fn poll_event(&mut self) -> Option<Event> {
        let e = self.out.events.pop_front()?;
        self.stats.events += 1;
        Some(e)
    }

    /// The next IO request for the driver.
    pub fn poll_io(&mut self) -> Option<IoRequest> {
        let r = self.out.io.pop_front()?;
        self.stats.io_requests += 1;
        Some(r)
    }

    /// The earliest deadline of every timer and the emitter's tick.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut next = self
            .discovery
            .poll_timeout()
            .min(self.certstore.poll_timeout())
            .min(self.node_state_infos_expire_at);
        for ch in self.channels.values() {
            next = next.min(ch.poll_timeout());
        }
        if let Some(d) = self.emitter_deadline {
            next = next.min(d);
        }
        Some(next)
    }

    /// This peer's PKI-ID.
    pub fn pki_id(&self) -> PkiId {
        self.discovery.me().pki_id
    }

    /// Alive members.
    pub fn peers(&self) -> Vec<NetworkMember> {
        self.discovery.alive_members().to_vec()
    }

    /// Dead members.
    pub fn dead_peers(&self) -> Vec<NetworkMember> {
        self.discovery.dead_members()
    }

    /// How many members are alive and dead now (what a health check needs, without copying them).
    pub fn members_len(&self) -> (usize, usize) {
        (
            self.discovery.alive_members().len(),
            self.discovery.dead_len(),
        )
    }

    /// Fabric's `PeersOfChannel`: alive peers of a joined channel with their properties.
    pub fn peers_of_channel(&self, channel: &[u8]) -> Vec<(NetworkMember, Properties)> {
        self.channels
            .get(channel)
            .map(|ch| ch.peers(self.discovery.alive_members()))
            .unwrap_or_default()
    }

    /// This peer as a member.
    pub fn self_member(&self) -> NetworkMember {
        self.discovery.self_member()
    }

    /// The next block number a joined channel will deliver.
    pub fn next_block_seq(&self, channel: &[u8]) -> Option<u64> {
        self.channels.get(channel).map(Channel::next_expected_seq)
    }

    /// Every joined channel this peer has not left, with its height and its peers' highest.
    pub fn channel_summaries(&self) -> Vec<ChannelSummary> {
        let alive = self.discovery.alive_members();
        self.channels
            .iter()
            .filter(|(_, ch)| !ch.is_left())
            .map(|(name, ch)| {
                let peers = ch.peers(alive);
                let heights = || peers.iter().map(|(_, p)| p.ledger_height);
                ChannelSummary {
                    channel: name.clone(),
                    ledger_height: ch.ledger_height(),
                    buffered_len: ch.buffered_len(),
                    peers_known: peers.len(),
                    peers_ledger_height_max: heights().max().unwrap_or(0),
                    peers_ledger_height_majority: stats::majority_height(heights()),
                    leader: ch.is_leader(),
                }
            })
            .collect()
    }

    /// Counters.
    pub fn stats(&self) -> NodeStats {
        let mut s = self.stats.clone();
        s.blocks_delivered = self.channels.values().map(Channel::blocks_delivered).sum();
        s.blocks_pulled = self.channels.values().map(Channel::blocks_pulled).sum();
        for ch in self.channels.values() {
            s.pull.add(&ch.pull_stats());
            s.state.add(&ch.state_stats());
            s.blocks_transferred += ch.blocks_transferred();
            s.blocks_refilled += ch.blocks_refilled();
        }
        s.outbox_overflowed = self.out.overflowed;
        s.dropped = self.out.drops.clone();
        s.members_alive = self.discovery.alive_members().len();
        s.members_dead = self.discovery.dead_len();
        s.discovery = self.discovery.stats();
        s.certstore = self.certstore.stats();
        s
    }
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("pki_id", &self.pki_id())
            .field("channels", &self.channels.len())
            .field("alive", &self.discovery.alive_members().len())
            .finish_non_exhaustive()
    }
}

/// For routing tests and the simulator: a remote peer from a member.
pub fn remote_peer(member: &NetworkMember) -> RemotePeer {
    crate::components::discovery::remote_of(member)
}
