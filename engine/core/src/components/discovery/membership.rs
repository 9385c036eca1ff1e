//! Membership requests and responses (spec 3.5): answering with the disclosed membership, and
//! learning from answers.

use bytes::Bytes;
use gossip_proto::gossip::gossip_message::{Content, Tag};
use gossip_proto::gossip::{AliveMessage, Envelope, GossipMessage, MembershipResponse};
use prost::Message;

use super::{AliveStamp, Discovery, MEMBERS_LEN_MAX, Member, envelope_for, sieve};
use crate::crypto::envelope::{internal_endpoint, noop_sign};
use crate::event::{IoRequest, RemotePeer};
use crate::outbox::{DropReason, Outbox};
use crate::time::Instant;
use crate::types::{NetworkMember, PkiId};

impl Discovery {
    /// A membership request (ingress checked `self_information` is a signed alive message about
    /// the sender): learn the sender, answer with the disclosed membership and this peer last.
    pub fn handle_membership_request(
        &mut self,
        from: PkiId,
        message: &GossipMessage,
        now: Instant,
        out: &mut Outbox,
    ) {
        let Some(Content::MemReq(request)) = &message.content else {
            return out.count_drop(DropReason::Malformed);
        };
        let Some(info) = &request.self_information else {
            return out.count_drop(DropReason::Malformed);
        };
        let Some(Content::AliveMsg(alive)) = GossipMessage::decode(info.payload.clone())
            .ok()
            .and_then(|m| m.content)
        else {
            return out.count_drop(DropReason::Malformed);
        };
        let Some(stamp) = AliveStamp::of(&alive) else {
            return out.count_drop(DropReason::Malformed);
        };
        if stamp.pki_id == self.me.pki_id {
            return out.count_drop(DropReason::FromSelf);
        }
        if self.alive_store.check_valid(&stamp) {
            self.learn_alive(info, &alive, stamp, now, out);
        }
        let remote_external = alive
            .membership
            .as_ref()
            .map_or("", |m| m.endpoint.as_str());
        let target = RemotePeer {
            pki_id: Some(from),
            endpoint: info
                .secret_envelope
                .as_ref()
                .and_then(internal_endpoint)
                .unwrap_or_else(|| remote_external.to_owned()),
        };
        let remote_org = self.org_of(&from, now);
        let Some(response) =
            self.membership_response(remote_org.as_deref(), remote_external, message.nonce, now)
        else {
            out.io(IoRequest::CloseConn(from));
            return;
        };
        out.send(target, response);
    }

    /// The response to a requester of `remote_org` publishing `remote_external`; `None` when this
    /// peer itself may not be disclosed to it (the connection is closed instead).
    fn membership_response(
        &mut self,
        remote_org: Option<&str>,
        remote_external: &str,
        nonce: u64,
        now: Instant,
    ) -> Option<Envelope> {
        let my_org = self.me.org.clone();
        let remote_org = remote_org?;
        if !sieve(
            &my_org,
            Some(&my_org),
            &self.me.external_endpoint,
            remote_org,
            remote_external,
        ) {
            return None;
        }
        let (own, _) = self.new_alive(true, now)?;
        let disclose = |m: &Member| {
            sieve(
                &my_org,
                m.member.org.as_deref(),
                &m.member.endpoint,
                remote_org,
                remote_external,
            )
            .then(|| envelope_for(&m.envelope, &my_org, Some(remote_org)))
        };
        let mut alive: Vec<Envelope> = self
            .members
            .values()
            .filter(|m| m.alive)
            .filter_map(disclose)
            .collect();
        alive.push(envelope_for(&own, &my_org, Some(remote_org)));
        let dead = self
            .members
            .values()
            .filter(|m| !m.alive)
            .filter_map(disclose)
            .collect();
        let message = GossipMessage {
            nonce,
            channel: Bytes::new(),
            tag: Tag::Empty as i32,
            content: Some(Content::MemRes(MembershipResponse { alive, dead })),
        };
        Some(noop_sign(message.encode_to_vec().into()))
    }

    /// A membership response: ack its nonce, learn alive and dead members.
    pub fn handle_membership_response(
        &mut self,
        message: &GossipMessage,
        now: Instant,
        out: &mut Outbox,
    ) {
        let Some(Content::MemRes(response)) = &message.content else {
            return out.count_drop(DropReason::Malformed);
        };
        self.connects.ack(message.nonce);
        for (envelope, alive_list) in response
            .alive
            .iter()
            .map(|e| (e, true))
            .chain(response.dead.iter().map(|e| (e, false)))
        {
            let Some(Content::AliveMsg(alive)) = GossipMessage::decode(envelope.payload.clone())
                .ok()
                .and_then(|m| m.content)
            else {
                out.count_drop(DropReason::Malformed);
                continue;
            };
            let Some(stamp) = AliveStamp::of(&alive) else {
                out.count_drop(DropReason::Malformed);
                continue;
            };
            if stamp.pki_id == self.me.pki_id || !self.alive_store.check_valid(&stamp) {
                continue;
            }
            if alive_list {
                self.learn_alive(envelope, &alive, stamp, now, out);
            } else if !self.members.contains_key(&stamp.pki_id) {
                self.learn_dead(envelope, &alive, stamp, now, out);
            }
        }
    }

    fn learn_dead(
        &mut self,
        envelope: &Envelope,
        alive: &AliveMessage,
        stamp: AliveStamp,
        now: Instant,
        out: &mut Outbox,
    ) {
        if self.members.len() >= MEMBERS_LEN_MAX {
            return out.count_drop(DropReason::Full);
        }
        let org = self.org_of(&stamp.pki_id, now);
        let endpoint = alive
            .membership
            .as_ref()
            .map_or("", |m| m.endpoint.as_str());
        let internal = envelope
            .secret_envelope
            .as_ref()
            .and_then(internal_endpoint);
        if self.is_superseded(&stamp, endpoint, internal.as_deref(), org.as_ref()) {
            return out.count_drop(DropReason::Stale);
        }
        let member = NetworkMember {
            pki_id: stamp.pki_id,
            endpoint: alive
                .membership
                .as_ref()
                .map_or_else(String::new, |m| m.endpoint.clone()),
            internal_endpoint: envelope
                .secret_envelope
                .as_ref()
                .and_then(internal_endpoint)
                .unwrap_or_default(),
            org: self.org_of(&stamp.pki_id, now),
        };
        self.members.insert(
            stamp.pki_id,
            Member {
                member,
                alive: false,
                time: stamp.time,
                last_seen: now,
                envelope: envelope.clone(),
            },
        );
    }
}
