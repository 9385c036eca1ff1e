//! StateInfo of a channel (spec 3.7): this peer's own (signed, published on change), the cache of
//! the channel's peers, pull requests and snapshots.

use bytes::Bytes;
use gossip_proto::gossip::gossip_message::{Content, Tag};
use gossip_proto::gossip::{
    Envelope, GossipMessage, Properties, StateInfo, StateInfoPullRequest, StateInfoSnapshot,
};
use prost::Message;
use rand::Rng;

use super::{Channel, Ctx};
use crate::components::discovery::remote_of;
use crate::components::msgstore::{PeerTime, PeerTimed};
use crate::crypto::envelope::{noop_sign, sign_envelope};
use crate::egress::select_peers;
use crate::event::Event;
use crate::outbox::{DropReason, Outbox};
use crate::types::{NetworkMember, PkiId};

/// A cached StateInfo.
#[derive(Clone, Debug)]
pub struct StoredStateInfo {
    /// The peer it describes.
    pub pki_id: PkiId,
    /// Its timestamp.
    pub time: PeerTime,
    /// Ledger height, left flag, chaincodes.
    pub properties: Properties,
    /// The signed envelope, as received.
    pub envelope: Envelope,
}

impl PeerTimed for StoredStateInfo {
    fn pki_id(&self) -> PkiId {
        self.pki_id
    }
    fn peer_time(&self) -> PeerTime {
        self.time
    }
}

impl StoredStateInfo {
    /// Reads a StateInfo message; `None` without a 32-byte PKI-ID.
    pub fn of(envelope: &Envelope, state_info: &StateInfo) -> Option<Self> {
        Some(Self {
            pki_id: PkiId::from_slice(&state_info.pki_id)?,
            time: PeerTime::of(state_info.timestamp.as_ref()),
            properties: state_info.properties.clone().unwrap_or_default(),
            envelope: envelope.clone(),
        })
    }
}

impl Channel {
    /// Signs this peer's StateInfo, caches it and gossips it; clears the publish flag.
    pub(super) fn publish_state_info(&mut self, ctx: &Ctx<'_>, out: &mut Outbox) {
        let me = ctx.me();
        let seq_num = ctx.now.as_nanos().max(self.last_state_info_seq + 1);
        self.last_state_info_seq = seq_num;
        let message = GossipMessage {
            nonce: 0,
            channel: Bytes::new(),
            tag: Tag::ChanOrOrg as i32,
            content: Some(Content::StateInfo(StateInfo {
                timestamp: Some(gossip_proto::gossip::PeerTime {
                    inc_num: self.created_ns,
                    seq_num,
                }),
                pki_id: Bytes::copy_from_slice(me.as_bytes()),
                channel_mac: Bytes::copy_from_slice(&self.mac_of(&me)),
                properties: Some(self.properties.clone()),
            })),
        };
        let Ok(envelope) = sign_envelope(message.encode_to_vec().into(), ctx.signer.key()) else {
            return out.count_drop(DropReason::SignFailed);
        };
        let stored = StoredStateInfo {
            pki_id: me,
            time: PeerTime {
                inc_num: self.created_ns,
                seq_num,
            },
            properties: self.properties.clone(),
            envelope: envelope.clone(),
        };
        if self.state_infos.add(stored, ctx.now).is_err() {
            return out.count_drop(DropReason::Full);
        }
        self.should_publish = false;
        out.emit(envelope, message, None);
    }

    /// A StateInfo pull request at once, if none reached a peer since the join (members became
    /// alive: [`crate::node::Node`] calls it then).
    pub fn pull_state_infos_early<R: Rng + ?Sized>(
        &mut self,
        ctx: &Ctx<'_>,
        rng: &mut R,
        out: &mut Outbox,
    ) {
        if !self.left && !self.state_infos_asked {
            self.request_state_info(ctx, rng, out);
        }
    }

    /// Sends a StateInfo pull request to up to `pull_peer_num` alive peers of the channel's orgs.
    pub(super) fn request_state_info<R: Rng + ?Sized>(
        &mut self,
        ctx: &Ctx<'_>,
        rng: &mut R,
        out: &mut Outbox,
    ) {
        let alive = ctx.discovery.alive_members();
        let mut picked = Vec::new();
        let filter = |m: &NetworkMember| self.is_member_in_chan(m);
        select_peers(ctx.config.pull_peer_num, alive, &filter, rng, &mut picked);
        if picked.is_empty() {
            return;
        }
        self.state_infos_asked = true;
        let message = GossipMessage {
            nonce: 0,
            channel: Bytes::new(),
            tag: Tag::ChanOrOrg as i32,
            content: Some(Content::StateInfoPullReq(StateInfoPullRequest {
                channel_mac: Bytes::copy_from_slice(&self.mac_of(&ctx.me())),
            })),
        };
        let envelope = noop_sign(message.encode_to_vec().into());
        for m in picked {
            out.send(remote_of(m), envelope.clone());
        }
    }

    /// A StateInfo gossiped to this channel: cache it; a new one is forwarded and reported.
    pub fn handle_state_info(
        &mut self,
        from: PkiId,
        envelope: &Envelope,
        message: &GossipMessage,
        ctx: &Ctx<'_>,
        out: &mut Outbox,
    ) {
        let Some(Content::StateInfo(si)) = &message.content else {
            return out.count_drop(DropReason::Malformed);
        };
        match self.add_state_info(envelope, si, ctx) {
            Ok(()) => out.emit(envelope.clone(), message.clone(), Some(from)),
            Err(reason) => return out.count_drop(reason),
        }
        if let Some(pki_id) = PkiId::from_slice(&si.pki_id) {
            out.event(Event::ChannelPeerUpdated {
                channel: self.name.clone(),
                pki_id,
                properties: si.properties.clone().unwrap_or_default(),
            });
        }
    }

    /// Checks a StateInfo against this channel (org in the channel, MAC) and caches it.
    fn add_state_info(
        &mut self,
        envelope: &Envelope,
        si: &StateInfo,
        ctx: &Ctx<'_>,
    ) -> Result<(), DropReason> {
        let stored = StoredStateInfo::of(envelope, si).ok_or(DropReason::Malformed)?;
        if stored.pki_id == ctx.me() {
            return Err(DropReason::FromSelf);
        }
        let org = ctx.discovery.org_of(&stored.pki_id, ctx.now);
        if !org.is_some_and(|o| self.has_org(&o)) {
            return Err(DropReason::OrgNotInChannel);
        }
        if si.channel_mac[..] != self.mac_of(&stored.pki_id)[..] {
            return Err(DropReason::BadMac);
        }
        self.state_infos.add(stored, ctx.now).map_err(|e| match e {
            crate::components::msgstore::AddError::Invalidated => DropReason::Stale,
            crate::components::msgstore::AddError::Full { .. } => DropReason::Full,
        })?;
        let height = si.properties.as_ref().map_or(0, |p| p.ledger_height);
        self.height_advertised(height, ctx);
        Ok(())
    }

    /// A StateInfo pull request from `from` (already matched to this channel by its MAC): answer
    /// with the cached StateInfo it may see.
    pub fn handle_state_info_pull_request(&self, from: PkiId, ctx: &Ctx<'_>, out: &mut Outbox) {
        if self.left {
            return out.count_drop(DropReason::LeftChannel);
        }
        let my_org = ctx.my_org();
        let requester_org = ctx.discovery.org_of(&from, ctx.now);
        let same_org = requester_org.as_ref() == Some(my_org);
        let elements: Vec<Envelope> = self
            .state_infos
            .iter()
            .filter(|s| {
                same_org || {
                    let subject_org = ctx.discovery.org_of(&s.pki_id, ctx.now);
                    subject_org.as_ref() != Some(my_org)
                        || ctx.discovery.has_external_endpoint(&s.pki_id)
                }
            })
            .map(|s| s.envelope.clone())
            .collect();
        let message = GossipMessage {
            nonce: 0,
            channel: self.name.clone(),
            tag: Tag::ChanOrOrg as i32,
            content: Some(Content::StateSnapshot(StateInfoSnapshot { elements })),
        };
        out.send_unsigned(ctx.discovery.remote_for(&from), &message);
    }

    /// A StateInfo snapshot: each element must be a StateInfo of a peer whose org is in the
    /// channel, with this channel's MAC; known peers' elements are cached. The first invalid
    /// element aborts the rest.
    pub fn handle_state_info_snapshot(
        &mut self,
        message: &GossipMessage,
        ctx: &Ctx<'_>,
        out: &mut Outbox,
    ) {
        let Some(Content::StateSnapshot(snapshot)) = &message.content else {
            return out.count_drop(DropReason::Malformed);
        };
        for element in &snapshot.elements {
            let Some(Content::StateInfo(si)) = GossipMessage::decode(element.payload.clone())
                .ok()
                .and_then(|m| m.content)
            else {
                return out.count_drop(DropReason::Malformed);
            };
            let Some(pki_id) = PkiId::from_slice(&si.pki_id) else {
                return out.count_drop(DropReason::Malformed);
            };
            if pki_id == ctx.me() || !ctx.discovery.is_known(&pki_id) {
                continue;
            }
            match self.add_state_info(element, &si, ctx) {
                Ok(()) => out.event(Event::ChannelPeerUpdated {
                    channel: self.name.clone(),
                    pki_id,
                    properties: si.properties.clone().unwrap_or_default(),
                }),
                Err(DropReason::Stale) => {}
                Err(reason) => return out.count_drop(reason),
            }
        }
    }
}
