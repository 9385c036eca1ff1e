//! Discovery (spec 3.5, 2.4): who is alive, who is dead, and how this peer announces itself.
//!
//! - This peer's signed alive message: `inc_num` = start time (ns), `seq_num` + 1 for every alive
//!   message built; the identity is embedded during `publish_cert_period`; the secret envelope
//!   carries the internal endpoint and is stripped for other orgs.
//! - Periodic tasks (deadline fields, see [`Discovery::poll_timeout`]): heartbeat, expiry check,
//!   reconnect to dead members (and early probes of one that just died, [`reprobe`]),
//!   membership sync, bootstrap/anchor connect retries.
//! - Received alive messages, membership requests and responses.
//!
//! Members live in a `BTreeMap` by PKI-ID so every walk is deterministic; the alive view used for
//! peer selection is rebuilt once per input when membership changed ([`Discovery::refresh`]).

mod connect;
mod disclosure;
mod identities;
mod membership;
mod periodic;
mod renewal;
mod reprobe;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use bytes::Bytes;
use gossip_proto::gossip::gossip_message::{Content, Tag};
use gossip_proto::gossip::{
    AliveMessage, Envelope, GossipMessage, Member as PbMember, MembershipRequest, SecretEnvelope,
};
use prost::Message;

pub use connect::{ConnectKind, MEMBERSHIP_ACK_WAIT};
pub use disclosure::{envelope_for, sieve};
pub use identities::Purged;
pub(crate) use periodic::due;

use crate::components::msgstore::{MsgStore, PeerTime, PeerTimePolicy, PeerTimed};
use crate::config::GossipConfig;
use crate::crypto::LocalSigner;
use crate::crypto::envelope::{internal_endpoint, noop_sign, sign_envelope, sign_secret};
use crate::event::{Event, IoRequest, RemotePeer};
use crate::outbox::{DropReason, Outbox};
use crate::time::Instant;
use crate::types::{NetworkMember, OrgId, PkiId};

/// Bound on known members (alive and dead).
pub const MEMBERS_LEN_MAX: usize = 16_384;

/// What the alive-message store keeps per member: enough for the comparator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AliveStamp {
    /// The member.
    pub pki_id: PkiId,
    /// Its alive message's timestamp.
    pub time: PeerTime,
}

impl PeerTimed for AliveStamp {
    fn pki_id(&self) -> PkiId {
        self.pki_id
    }
    fn peer_time(&self) -> PeerTime {
        self.time
    }
}

impl AliveStamp {
    /// The stamp of an alive message; `None` without a 32-byte PKI-ID.
    pub fn of(alive: &AliveMessage) -> Option<Self> {
        let pki_id = PkiId::from_slice(&alive.membership.as_ref()?.pki_id)?;
        Some(Self {
            pki_id,
            time: PeerTime::of(alive.timestamp.as_ref()),
        })
    }
}

/// A known member and its latest alive message.
#[derive(Clone, Debug)]
pub struct Member {
    /// Endpoints, PKI-ID and org.
    pub member: NetworkMember,
    /// Alive or dead.
    pub alive: bool,
    /// Timestamp of the latest alive message.
    pub time: PeerTime,
    /// When an alive message newer than the previous one last arrived.
    pub last_seen: Instant,
    /// The latest signed alive envelope, as received (secret included).
    pub envelope: Envelope,
}

/// This peer as discovery announces it.
#[derive(Debug)]
pub struct SelfInfo {
    /// PKI-ID.
    pub pki_id: PkiId,
    /// MSP id.
    pub org: OrgId,
    /// Published in clear; may be empty.
    pub external_endpoint: String,
    /// Published in the secret envelope to this org only.
    pub internal_endpoint: String,
    /// Alive-message metadata.
    pub metadata: Bytes,
    /// Process start, ns (`inc_num`).
    pub inc_num: u64,
    /// Last `seq_num` used.
    pub seq_num: u64,
    /// Start, for `publish_cert_period`.
    pub started_at: Instant,
}

/// Discovery counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DiscoveryStats {
    /// Alive messages this peer built and signed.
    pub alive_created: u64,
    /// Members learnt or resurrected.
    pub became_alive: u64,
    /// Members expired to dead.
    pub became_dead: u64,
    /// Members forgotten.
    pub purged: u64,
    /// Bootstrap/anchor connects given up after `max_connection_attempts`.
    pub connects_abandoned: u64,
    /// Peers cut off because their identity expired or was revoked.
    pub identities_cut_off: u64,
    /// Members purged because a later incarnation with a new PKI-ID announced their endpoint (a
    /// renewed certificate).
    pub superseded: u64,
}

#[derive(Debug)]
struct Timers {
    alive: Instant,
    expiry_check: Instant,
    reconnect: Instant,
    sync: Instant,
}

/// The discovery state machine.
#[derive(Debug)]
pub struct Discovery {
    config: GossipConfig,
    signer: Arc<LocalSigner>,
    /// The org and validity of every identity the driver validated (handshakes, identities carried
    /// by messages), as [`crate::ingress::IdentityChange`]s told it; bounded like the driver's store.
    known: identities::KnownIdentities,
    /// Purged members the node has not taken yet.
    purged: Vec<Purged>,
    me: SelfInfo,
    secret: Option<SecretEnvelope>,
    members: BTreeMap<PkiId, Member>,
    alive_store: MsgStore<PeerTimePolicy<AliveStamp>>,
    alive_view: Vec<NetworkMember>,
    view_dirty: bool,
    connects: connect::Connects,
    /// Bootstrap and anchor endpoints: members reachable there are never purged.
    pinned_endpoints: BTreeSet<String>,
    timers: Timers,
    /// Early probes of members that just died.
    reprobes: reprobe::Reprobes,
    stats: DiscoveryStats,
}

impl Discovery {
    /// Discovery for this peer, started at `now`.
    pub fn new(
        config: GossipConfig,
        signer: Arc<LocalSigner>,
        external_endpoint: String,
        internal_endpoint: String,
        now: Instant,
    ) -> Self {
        let secret = sign_secret(&internal_endpoint, signer.key()).ok();
        let me = SelfInfo {
            pki_id: signer.pki_id(),
            org: OrgId::from(signer.identity().mspid.as_str()),
            external_endpoint,
            internal_endpoint,
            metadata: Bytes::new(),
            inc_num: now.as_nanos(),
            seq_num: 0,
            started_at: now,
        };
        let timers = Timers {
            alive: now + config.alive_time_interval,
            expiry_check: now + config.alive_expiration_check_interval(),
            reconnect: now + config.reconnect_interval,
            sync: now + config.pull_interval,
        };
        let alive_store = MsgStore::new(
            PeerTimePolicy::default(),
            Some(config.alive_msg_ttl()),
            MEMBERS_LEN_MAX,
        );
        Self {
            config,
            signer,
            known: identities::KnownIdentities::default(),
            purged: Vec::new(),
            me,
            secret,
            members: BTreeMap::new(),
            alive_store,
            alive_view: Vec::new(),
            view_dirty: false,
            connects: connect::Connects::default(),
            pinned_endpoints: BTreeSet::new(),
            timers,
            reprobes: reprobe::Reprobes::default(),
            stats: DiscoveryStats::default(),
        }
    }

    /// This peer.
    pub fn me(&self) -> &SelfInfo {
        &self.me
    }

    /// This peer as a member.
    pub fn self_member(&self) -> NetworkMember {
        NetworkMember {
            pki_id: self.me.pki_id,
            endpoint: self.me.external_endpoint.clone(),
            internal_endpoint: self.me.internal_endpoint.clone(),
            org: Some(self.me.org.clone()),
        }
    }

    /// Alive members, by PKI-ID (as of the last [`refresh`](Self::refresh)).
    pub fn alive_members(&self) -> &[NetworkMember] {
        &self.alive_view
    }

    /// Dead members, by PKI-ID.
    pub fn dead_members(&self) -> Vec<NetworkMember> {
        self.members
            .values()
            .filter(|m| !m.alive)
            .map(|m| m.member.clone())
            .collect()
    }

    /// How many members are dead (without building the list).
    pub fn dead_len(&self) -> usize {
        self.members.values().filter(|m| !m.alive).count()
    }

    /// Fabric's `Lookup`: a known member (alive or dead), or self.
    pub fn lookup(&self, pki_id: &PkiId) -> Option<&NetworkMember> {
        self.members.get(pki_id).map(|m| &m.member)
    }

    /// Where to send to `pki_id`: its preferred endpoint when it is a known member, else none
    /// (the comm layer then uses a connection it has).
    pub fn remote_for(&self, pki_id: &PkiId) -> RemotePeer {
        self.lookup(pki_id).map_or_else(
            || RemotePeer {
                pki_id: Some(*pki_id),
                endpoint: String::new(),
            },
            remote_of,
        )
    }

    /// Whether `pki_id` is self or a known member.
    pub fn is_known(&self, pki_id: &PkiId) -> bool {
        *pki_id == self.me.pki_id || self.members.contains_key(pki_id)
    }

    /// A known member's record.
    pub fn member(&self, pki_id: &PkiId) -> Option<&Member> {
        self.members.get(pki_id)
    }

    /// Whether a member (or self) publishes a non-empty external endpoint.
    pub fn has_external_endpoint(&self, pki_id: &PkiId) -> bool {
        if *pki_id == self.me.pki_id {
            return !self.me.external_endpoint.is_empty();
        }
        self.lookup(pki_id).is_some_and(|m| !m.endpoint.is_empty())
    }

    /// The org of a peer: self, a known member, or the identity store.
    pub fn org_of(&self, pki_id: &PkiId, now: Instant) -> Option<OrgId> {
        if *pki_id == self.me.pki_id {
            return Some(self.me.org.clone());
        }
        if let Some(org) = self.members.get(pki_id).and_then(|m| m.member.org.clone()) {
            return Some(org);
        }
        self.known.org(pki_id, now).cloned()
    }

    /// The org of a valid identity the driver's store holds (Fabric's `idMapper.Get`): self, or
    /// one it told about that has not expired at `now`.
    pub fn identity_org(&self, pki_id: &PkiId, now: Instant) -> Option<&OrgId> {
        if *pki_id == self.me.pki_id {
            return Some(&self.me.org);
        }
        self.known.org(pki_id, now)
    }

    /// Counters.
    pub fn stats(&self) -> DiscoveryStats {
        self.stats
    }

    /// Replaces the alive-message metadata (published with the next heartbeat).
    pub fn set_metadata(&mut self, metadata: Bytes) {
        self.me.metadata = metadata;
    }

    /// Rebuilds the alive view if membership changed. The node calls it after every input.
    pub fn refresh(&mut self) {
        if !self.view_dirty {
            return;
        }
        self.view_dirty = false;
        self.alive_view.clear();
        self.alive_view.extend(
            self.members
                .values()
                .filter(|m| m.alive)
                .map(|m| m.member.clone()),
        );
    }

    /// Builds and signs a fresh alive message about this peer (`seq_num` + 1).
    pub fn new_alive(
        &mut self,
        include_secret: bool,
        now: Instant,
    ) -> Option<(Envelope, GossipMessage)> {
        self.me.seq_num += 1;
        self.stats.alive_created += 1;
        let in_cert_period = now < self.me.started_at + self.config.publish_cert_period;
        let message = GossipMessage {
            nonce: 0,
            channel: Bytes::new(),
            tag: Tag::Empty as i32,
            content: Some(Content::AliveMsg(AliveMessage {
                membership: Some(PbMember {
                    endpoint: self.me.external_endpoint.clone(),
                    metadata: self.me.metadata.clone(),
                    pki_id: Bytes::copy_from_slice(self.me.pki_id.as_bytes()),
                }),
                timestamp: Some(gossip_proto::gossip::PeerTime {
                    inc_num: self.me.inc_num,
                    seq_num: self.me.seq_num,
                }),
                identity: if in_cert_period {
                    self.signer.identity().serialized.clone()
                } else {
                    Bytes::new()
                },
            })),
        };
        let mut envelope = sign_envelope(message.encode_to_vec().into(), self.signer.key()).ok()?;
        if include_secret {
            envelope.secret_envelope = self.secret.clone();
        }
        Some((envelope, message))
    }

    /// A NoopSigned membership request carrying `self_information`.
    fn membership_request(self_information: Envelope, nonce: u64) -> Envelope {
        let message = GossipMessage {
            nonce,
            channel: Bytes::new(),
            tag: Tag::Empty as i32,
            content: Some(Content::MemReq(MembershipRequest {
                self_information: Some(self_information),
                known: Vec::new(),
            })),
        };
        noop_sign(message.encode_to_vec().into())
    }

    /// A received, verified alive message: check, store, learn, forward (excluding the sender).
    pub fn handle_alive(
        &mut self,
        from: PkiId,
        envelope: &Envelope,
        message: &GossipMessage,
        now: Instant,
        out: &mut Outbox,
    ) {
        let Some(Content::AliveMsg(alive)) = &message.content else {
            return out.count_drop(DropReason::Malformed);
        };
        let Some(stamp) = AliveStamp::of(alive) else {
            return out.count_drop(DropReason::Malformed);
        };
        if stamp.pki_id == self.me.pki_id {
            return out.count_drop(DropReason::FromSelf);
        }
        if self.alive_store.add(stamp, now).is_err() {
            return out.count_drop(DropReason::Stale);
        }
        self.learn_alive(envelope, alive, stamp, now, out);
        out.emit(envelope.clone(), message.clone(), Some(from));
    }

    /// Fabric's `handleAliveMessage`: learn, resurrect or update.
    fn learn_alive(
        &mut self,
        envelope: &Envelope,
        alive: &AliveMessage,
        stamp: AliveStamp,
        now: Instant,
        out: &mut Outbox,
    ) {
        let endpoint = alive
            .membership
            .as_ref()
            .map_or_else(String::new, |m| m.endpoint.clone());
        let internal = envelope
            .secret_envelope
            .as_ref()
            .and_then(internal_endpoint);
        let org = self.org_of(&stamp.pki_id, now);
        match self.members.get_mut(&stamp.pki_id) {
            None => {
                if !self.supersede(&stamp, &endpoint, internal.as_deref(), org.as_ref(), out) {
                    return out.count_drop(DropReason::Stale);
                }
                if self.members.len() >= MEMBERS_LEN_MAX {
                    return out.count_drop(DropReason::Full);
                }
                let member = NetworkMember {
                    pki_id: stamp.pki_id,
                    endpoint,
                    internal_endpoint: internal.unwrap_or_default(),
                    org,
                };
                out.event(Event::MemberAlive(member.clone()));
                self.members.insert(
                    stamp.pki_id,
                    Member {
                        member,
                        alive: true,
                        time: stamp.time,
                        last_seen: now,
                        envelope: envelope.clone(),
                    },
                );
                self.stats.became_alive += 1;
                self.view_dirty = true;
            }
            Some(m) if stamp.time <= m.time => {}
            Some(m) => {
                let resurrected = !m.alive;
                let changed = m.member.endpoint != endpoint
                    || internal
                        .as_ref()
                        .is_some_and(|i| *i != m.member.internal_endpoint);
                m.alive = true;
                m.time = stamp.time;
                m.last_seen = now;
                m.envelope = envelope.clone();
                m.member.endpoint = endpoint;
                if let Some(internal) = internal {
                    m.member.internal_endpoint = internal;
                }
                if m.member.org.is_none() {
                    m.member.org = org;
                }
                if resurrected {
                    self.reprobes.forget(&m.member.pki_id);
                    out.event(Event::MemberAlive(m.member.clone()));
                    self.stats.became_alive += 1;
                }
                self.view_dirty |= resurrected || changed;
            }
        }
    }

    /// Comm presumes a peer dead at `now`: expire it now.
    pub fn handle_presumed_dead(&mut self, pki_id: &PkiId, now: Instant, out: &mut Outbox) {
        if self.members.get(pki_id).is_some_and(|m| m.alive) {
            self.expire_member(*pki_id, now, out);
        }
    }

    /// A probe of a dead member finished: if it answered, send it a membership request.
    pub fn handle_probe(&mut self, pki_id: &PkiId, alive: bool, now: Instant, out: &mut Outbox) {
        let Some(m) = self.members.get(pki_id).filter(|m| !m.alive && alive) else {
            return;
        };
        let target = RemotePeer {
            pki_id: Some(*pki_id),
            endpoint: m.member.preferred_endpoint().to_owned(),
        };
        let remote_org = m.member.org.clone();
        let Some((own, _)) = self.new_alive(true, now) else {
            return out.count_drop(DropReason::SignFailed);
        };
        let own = envelope_for(&own, &self.me.org, remote_org.as_deref());
        out.send(target, Self::membership_request(own, 0));
    }

    /// Forgets a member entirely (identity switch, or its alive message outlived the TTL).
    pub fn purge(&mut self, pki_id: &PkiId, out: &mut Outbox) {
        self.alive_store.remove(pki_id);
        self.reprobes.forget(pki_id);
        if self.members.remove(pki_id).is_some() {
            self.stats.purged += 1;
            self.view_dirty = true;
            out.event(Event::MemberPurged(*pki_id));
            self.note_purged(Purged {
                pki_id: *pki_id,
                identity_cut_off: false,
            });
        }
    }

    fn expire_member(&mut self, pki_id: PkiId, now: Instant, out: &mut Outbox) {
        if let Some(m) = self.members.get_mut(&pki_id) {
            m.alive = false;
            self.reprobes
                .died(pki_id, now, self.config.reconnect_interval);
            self.stats.became_dead += 1;
            self.view_dirty = true;
            out.io(IoRequest::CloseConn(pki_id));
            out.event(Event::MemberDead(pki_id));
        }
    }
}

/// Where to send to a member: its PKI-ID and preferred endpoint.
pub fn remote_of(member: &NetworkMember) -> RemotePeer {
    RemotePeer {
        pki_id: Some(member.pki_id),
        endpoint: member.preferred_endpoint().to_owned(),
    }
}
