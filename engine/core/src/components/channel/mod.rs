//! A joined channel (spec 3.7, Fabric's `GossipChannel`): its orgs and anchors, this peer's
//! StateInfo, the StateInfo cache of the channel's peers, the block store with in-order delivery
//! ([`blocks`]), the block puller (`pull`, Fabric's pull mediator for BLOCK_MSG over the
//! [`PullEngine`]), and the leadership store.
//!
//! Periodic tasks are deadline fields (see [`Channel::poll_timeout`]): publish the own StateInfo
//! when it changed, pull StateInfo from peers of the channel's orgs, sweep StateInfo of peers
//! discovery forgot, expire blocks and leadership messages, and the block puller's rounds.

mod blocks;
mod election;
mod pull;
mod relay;
mod state;
mod state_info;
#[cfg(test)]
mod tests;

use std::time::Duration;

use bytes::Bytes;
use gossip_proto::gossip::{Chaincode, Envelope, GossipMessage, Properties};

pub use blocks::{Delivery, StoredBlock, verify_block};
pub use state_info::StoredStateInfo;

#[cfg(test)]
pub(crate) use blocks::block_fixture as verify_block_fixture;

use crate::components::discovery::{Discovery, due};
use crate::components::election::Election;
use crate::components::msgstore::{MsgStore, PeerTime, PeerTimePolicy, PeerTimed};
use crate::components::pull::{PullConfig, PullEngine, PullStats};
use crate::components::state::{StateStats, StateTransfer};
use crate::config::GossipConfig;
use crate::crypto::{LocalSigner, channel_mac};
use crate::event::{ChannelConfig, Event};
use crate::outbox::{DropReason, Outbox};
use crate::time::Instant;
use crate::types::{NetworkMember, OrgId, PkiId};

/// Bound on cached StateInfo messages per channel.
pub const STATE_INFOS_LEN_MAX: usize = crate::components::discovery::MEMBERS_LEN_MAX;
/// Bound on stored leadership messages per channel.
pub const LEADERS_LEN_MAX: usize = 1_024;
/// Bound on stored blocks per channel (the window `max_block_count_to_store` is far smaller).
pub const BLOCKS_LEN_MAX: usize = 10_000;

/// A stored leadership message (the comparator needs only its creator and time).
#[derive(Clone, Copy, Debug)]
pub struct StoredLeadership {
    pki_id: PkiId,
    time: PeerTime,
}

impl PeerTimed for StoredLeadership {
    fn pki_id(&self) -> PkiId {
        self.pki_id
    }
    fn peer_time(&self) -> PeerTime {
        self.time
    }
}

/// What a channel needs from the rest of the node while it handles an input.
pub struct Ctx<'a> {
    /// Membership.
    pub discovery: &'a Discovery,
    /// This peer's key.
    pub signer: &'a LocalSigner,
    /// Settings.
    pub config: &'a GossipConfig,
    /// The time of the input.
    pub now: Instant,
    /// The input's blocks passed ingress's whole `VerifyBlock` (see
    /// [`ReceivedMessage::blocks_authenticated`](crate::ingress::ReceivedMessage)).
    pub blocks_authenticated: bool,
}

impl<'a> Ctx<'a> {
    /// The context of an input whose blocks (if any) ingress did not authenticate: timers,
    /// commands, IO results.
    pub fn new(
        discovery: &'a Discovery,
        signer: &'a LocalSigner,
        config: &'a GossipConfig,
        now: Instant,
    ) -> Self {
        Self {
            discovery,
            signer,
            config,
            now,
            blocks_authenticated: false,
        }
    }

    /// Whether this input's blocks still need the structural check of [`verify_block`]: not when
    /// verification is off (`skipBlockVerification`), nor when ingress authenticated them
    /// already, which includes that check.
    fn checks_blocks(&self) -> bool {
        !self.config.skip_block_verification && !self.blocks_authenticated
    }
    fn me(&self) -> PkiId {
        self.discovery.me().pki_id
    }
    fn my_org(&self) -> &OrgId {
        &self.discovery.me().org
    }
}

#[derive(Debug)]
struct Timers {
    publish: Instant,
    pull: Instant,
    sweep: Instant,
}

/// One joined channel.
#[derive(Debug)]
pub struct Channel {
    name: Bytes,
    config_sequence: u64,
    orgs: Vec<OrgId>,
    left: bool,
    created_ns: u64,
    last_state_info_seq: u64,
    properties: Properties,
    should_publish: bool,
    state_infos: MsgStore<PeerTimePolicy<StoredStateInfo>>,
    blocks: MsgStore<blocks::BlockStorePolicy>,
    leaders: MsgStore<PeerTimePolicy<StoredLeadership>>,
    election: Election,
    delivery: Delivery,
    /// Block numbers relayed beyond the store's admission bound ([`relay`]).
    relayed: relay::Relayed,
    puller: PullEngine<u64>,
    timers: Timers,
    state: StateTransfer,
    /// The highest ledger height a channel peer advertised (a gap it reveals keeps a due gap
    /// pull round alive).
    advertised_height_max: u64,
    /// The first missing block the last periodic check found behind the majority's height and
    /// left to pull ([`Channel::repair_behind_majority`]).
    behind_majority_at: Option<u64>,
    /// A StateInfo pull request went to a peer since the join.
    state_infos_asked: bool,
    blocks_delivered: u64,
    blocks_pulled: u64,
    blocks_transferred: u64,
    /// Stored blocks delivered once the height reached them.
    blocks_refilled: u64,
}

impl Channel {
    /// A channel joined at `now` with ledger height 1 (next expected block 1).
    pub fn new(config: &ChannelConfig, gossip: &GossipConfig, now: Instant) -> Self {
        let mut orgs: Vec<OrgId> = config.orgs.iter().map(|(o, _)| o.clone()).collect();
        orgs.sort();
        orgs.dedup();
        let mut channel = Self {
            name: config.channel.clone(),
            config_sequence: config.sequence,
            orgs,
            left: false,
            created_ns: now.as_nanos(),
            last_state_info_seq: 0,
            properties: Properties {
                ledger_height: 1,
                left_channel: false,
                chaincodes: Vec::new(),
            },
            should_publish: true,
            state_infos: MsgStore::new(PeerTimePolicy::default(), None, STATE_INFOS_LEN_MAX),
            blocks: MsgStore::new(
                blocks::BlockStorePolicy::new(gossip.max_block_count_to_store),
                Some(gossip.block_ttl()),
                BLOCKS_LEN_MAX,
            ),
            leaders: MsgStore::new(
                PeerTimePolicy::default(),
                Some(gossip.leadership_msg_ttl()),
                LEADERS_LEN_MAX,
            ),
            election: Election::new(config.channel.clone(), gossip, now),
            delivery: Delivery::with_backlog(
                1,
                gossip.state_block_buffer_len,
                gossip.state.commit_backlog_len_max,
            ),
            relayed: relay::Relayed::default(),
            puller: PullEngine::new(PullConfig::of(gossip), now + gossip.pull_interval),
            timers: Timers {
                publish: now + gossip.publish_state_info_interval,
                pull: now + gossip.request_state_info_interval,
                sweep: now + gossip.state_info_sweep_interval(),
            },
            state: StateTransfer::new(gossip.state.clone(), now),
            advertised_height_max: 0,
            behind_majority_at: None,
            state_infos_asked: false,
            blocks_delivered: 0,
            blocks_pulled: 0,
            blocks_transferred: 0,
            blocks_refilled: 0,
        };
        channel.keep_undelivered();
        channel
    }

    /// Moves the first StateInfo publish and pull of a new channel earlier by a random share (up
    /// to half) of their intervals, keeping the periods. Peers that join a channel together (a
    /// channel config reaching every peer at once, a cluster started by one script) would
    /// otherwise publish and pull in the same instant every interval: while blocks flow every
    /// height changes, so each peer then signs a StateInfo and verifies all the others' in one
    /// burst (at N = 50 on 2 cores it held every block back by about 80 ms once per 4 s).
    /// Fabric starts both tickers at the join without such a spread.
    pub fn spread_timers<R: rand::Rng + ?Sized>(&mut self, gossip: &GossipConfig, rng: &mut R) {
        let mut earlier = |interval: Duration| {
            let half_ns = u64::try_from(interval.as_nanos() / 2).unwrap_or(u64::MAX);
            Duration::from_nanos(rng.random_range(0..=half_ns))
        };
        self.timers.publish = self.timers.publish - earlier(gossip.publish_state_info_interval);
        self.timers.pull = self.timers.pull - earlier(gossip.request_state_info_interval);
        let first_round = self.puller.poll_timeout() - earlier(gossip.pull_interval);
        self.puller.set_next_round(first_round);
    }

    /// The channel name.
    pub fn name(&self) -> &Bytes {
        &self.name
    }

    /// The member orgs, sorted.
    pub fn orgs(&self) -> &[OrgId] {
        &self.orgs
    }

    /// Whether this peer left the channel.
    pub fn is_left(&self) -> bool {
        self.left
    }

    /// Blocks delivered to the application so far.
    pub fn blocks_delivered(&self) -> u64 {
        self.blocks_delivered
    }

    /// Blocks taken from pull updates (not pushed) so far.
    pub fn blocks_pulled(&self) -> u64 {
        self.blocks_pulled
    }

    /// Blocks taken from state responses so far.
    pub fn blocks_transferred(&self) -> u64 {
        self.blocks_transferred
    }

    /// Stored blocks delivered once the height reached them.
    pub fn blocks_refilled(&self) -> u64 {
        self.blocks_refilled
    }

    /// State transfer's counters.
    pub fn state_stats(&self) -> StateStats {
        self.state.stats()
    }

    /// The ledger height: blocks committed (acknowledged), or delivered when no
    /// acknowledgements are expected.
    pub fn ledger_height(&self) -> u64 {
        self.delivery.committed_height()
    }

    /// The block puller's counters.
    pub fn pull_stats(&self) -> PullStats {
        self.puller.stats()
    }

    /// Blocks waiting in the reorder buffer for a missing one (Fabric's
    /// `gossip_payload_buffer_size`).
    pub fn buffered_len(&self) -> usize {
        self.delivery.buffered_len()
    }

    /// The next block number the application expects.
    pub fn next_expected_seq(&self) -> u64 {
        self.delivery.next_seq()
    }

    /// Applies a newer config (`JoinChan` again): replaces the orgs and drops cached StateInfo of
    /// peers whose org left, given their orgs through `org_of`. An empty or older config is
    /// ignored; returns whether it applied.
    pub fn reconfigure(
        &mut self,
        config: &ChannelConfig,
        org_of: impl Fn(&PkiId) -> Option<OrgId>,
    ) -> bool {
        if config.orgs.is_empty() || config.sequence < self.config_sequence {
            return false;
        }
        self.config_sequence = config.sequence;
        self.orgs = config.orgs.iter().map(|(o, _)| o.clone()).collect();
        self.orgs.sort();
        self.orgs.dedup();
        let orgs = &self.orgs;
        self.state_infos
            .purge(|s| org_of(&s.pki_id).is_none_or(|o| !orgs.contains(&o)));
        true
    }

    /// Fabric's `IsMemberInChan`: the member's org is one of the channel's.
    pub fn is_member_in_chan(&self, member: &NetworkMember) -> bool {
        member.org.as_ref().is_some_and(|o| self.has_org(o))
    }

    /// Whether `org` is one of the channel's orgs.
    pub fn has_org(&self, org: &str) -> bool {
        self.orgs.iter().any(|o| &**o == org)
    }

    /// Fabric's `EligibleForChannel`: a StateInfo from the member is cached (its identity is known,
    /// or the StateInfo would not have verified), and, unlike Fabric, it does not say the member
    /// left the channel: a peer that left is no target of block push or pull (it would drop
    /// them; Fabric spends a fan-out slot or a pull round on it).
    pub fn is_eligible(&self, member: &NetworkMember) -> bool {
        self.state_infos
            .get(&member.pki_id)
            .is_some_and(|si| !si.properties.left_channel)
    }

    /// Fabric's `GetPeers`: alive members with a cached StateInfo that did not leave, with their
    /// properties. Empty once this peer left.
    pub fn peers(&self, alive: &[NetworkMember]) -> Vec<(NetworkMember, Properties)> {
        if self.left {
            return Vec::new();
        }
        alive
            .iter()
            .filter(|m| self.is_member_in_chan(m))
            .filter_map(|m| {
                let si = self.state_infos.get(&m.pki_id)?;
                (!si.properties.left_channel).then(|| (m.clone(), si.properties.clone()))
            })
            .collect()
    }

    /// Drops what this channel holds about a peer that left membership (purged, cut off or
    /// superseded by a renewed certificate): its StateInfo and leadership message. Without a
    /// StateInfo it is no longer eligible nor among [`Channel::peers`].
    pub fn forget_peer(&mut self, pki_id: &PkiId) {
        self.state_infos.remove(pki_id);
        self.leaders.remove(pki_id);
    }

    /// `LeaveChan`: publish `left_channel` and stop serving.
    pub fn leave(&mut self) {
        self.left = true;
        self.properties.left_channel = true;
        self.should_publish = true;
    }

    /// `UpdateLedgerHeight`: publish the new height; delivery never goes below it.
    pub fn set_ledger_height(&mut self, height: u64, out: &mut Outbox) {
        self.properties.ledger_height = height;
        self.should_publish = true;
        self.blocks_delivered += self.delivery.set_height(&self.name, height, out);
        self.keep_undelivered();
    }

    /// `UpdateChaincodes`: publish the new set (Fabric publishes at once; we publish at the next
    /// publish tick).
    pub fn set_chaincodes(&mut self, chaincodes: &[(String, String)]) {
        self.properties.chaincodes = chaincodes
            .iter()
            .map(|(name, version)| Chaincode {
                name: name.clone(),
                version: version.clone(),
                metadata: Bytes::new(),
            })
            .collect();
        self.should_publish = true;
    }

    /// The channel MAC of `pki_id` for this channel.
    pub fn mac_of(&self, pki_id: &PkiId) -> [u8; 32] {
        channel_mac(pki_id, &self.name)
    }

    /// The earliest deadline of this channel's periodic tasks.
    pub fn poll_timeout(&self) -> Instant {
        self.timers
            .publish
            .min(self.timers.pull)
            .min(self.timers.sweep)
            .min(self.puller.poll_timeout())
            .min(self.state.poll_timeout())
            .min(self.election.poll_timeout())
    }

    /// Runs the periodic tasks that are due. Idempotent when called early.
    pub fn handle_timeout<R: rand::Rng + ?Sized>(
        &mut self,
        ctx: &Ctx<'_>,
        rng: &mut R,
        out: &mut Outbox,
    ) {
        let now = ctx.now;
        if due(
            &mut self.timers.publish,
            now,
            ctx.config.publish_state_info_interval,
        ) && self.should_publish
            && !ctx.discovery.alive_members().is_empty()
        {
            self.publish_state_info(ctx, out);
        }
        if due(
            &mut self.timers.pull,
            now,
            ctx.config.request_state_info_interval,
        ) {
            self.blocks.expire(now);
            self.leaders.expire(now);
            if !self.left {
                self.request_state_info(ctx, rng, out);
                // Peers back from a partition bring no new StateInfo: their heights count again
                // once they are alive.
                self.repair_behind_majority(true, ctx);
            }
        }
        if due(
            &mut self.timers.sweep,
            now,
            ctx.config.state_info_sweep_interval(),
        ) {
            let me = ctx.me();
            self.state_infos
                .purge(|s| s.pki_id != me && !ctx.discovery.is_known(&s.pki_id));
        }
        self.pull_tick(ctx, rng, out);
        self.state_tick(ctx, rng, out);
        self.election_tick(ctx, out);
    }

    /// A leadership message (ingress verified it against its creator's identity): the sender and
    /// the creator must be of this org; a new one goes to the election and to the application.
    pub fn handle_leadership(
        &mut self,
        from: PkiId,
        message: &GossipMessage,
        ctx: &Ctx<'_>,
        out: &mut Outbox,
    ) {
        use gossip_proto::gossip::gossip_message::Content;
        let Some(Content::LeadershipMsg(l)) = &message.content else {
            return out.count_drop(DropReason::Malformed);
        };
        let Some(creator) = PkiId::from_slice(&l.pki_id) else {
            return out.count_drop(DropReason::Malformed);
        };
        let my_org = ctx.my_org();
        let in_my_org = |p: &PkiId| ctx.discovery.org_of(p, ctx.now).as_ref() == Some(my_org);
        if !in_my_org(&from) || !in_my_org(&creator) {
            return out.count_drop(DropReason::NotInMyOrg);
        }
        let stored = StoredLeadership {
            pki_id: creator,
            time: PeerTime::of(l.timestamp.as_ref()),
        };
        if self.leaders.add(stored, ctx.now).is_err() {
            return out.count_drop(DropReason::Stale);
        }
        self.election_message(creator, l.is_declaration, ctx, out);
        out.event(Event::Leadership {
            channel: self.name.clone(),
            message: l.clone(),
            from,
        });
    }

    /// The first block number the channel takes, from the embedder or from peers
    /// ([`Delivery::admitted_end`]: the delivery height plus twice `state.blockBufferSize`).
    pub fn admitted_end(&self) -> u64 {
        self.delivery.admitted_end()
    }

    /// Emits a message of this channel that originated here: blocks go to the block store (and
    /// are delivered locally in order), then everything goes to the emitter. A block at or
    /// beyond [`Channel::admitted_end`] is dropped (`BlockBeyondWindow`), as one from a peer.
    pub fn gossip_local(
        &mut self,
        envelope: Envelope,
        message: GossipMessage,
        now: Instant,
        out: &mut Outbox,
    ) {
        use gossip_proto::gossip::gossip_message::Content;
        if let Some(Content::DataMsg(d)) = &message.content {
            let Some(payload) = &d.payload else {
                return out.count_drop(DropReason::Malformed);
            };
            if !self.delivery.admits(payload.seq_num) {
                // As from a peer: it would move the store's window past the blocks before it.
                return out.count_drop(DropReason::BlockBeyondWindow);
            }
            let block = StoredBlock {
                seq_num: payload.seq_num,
                envelope: envelope.clone(),
                origin: None,
            };
            if self.blocks.add(block, now).is_err() {
                return out.count_drop(DropReason::Stale);
            }
            self.puller.arrived(&payload.seq_num);
            self.puller.observe(&payload.seq_num, now, true);
            self.deliver(payload.clone(), None, now, out);
        }
        out.emit(envelope, message, None);
    }
}
