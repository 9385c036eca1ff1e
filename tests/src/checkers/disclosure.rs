//! The disclosure checker (Fabric's TestConfidentiality, spec section 6 and §2.4): on every
//! delivery, every peer a message tells about — the subject of an alive message, of a membership
//! request's self information, of a membership response's alive and dead entries, of a StateInfo,
//! of a StateInfo snapshot's elements, of an identity message or identity pull — must be one the
//! receiver may learn of:
//!
//! - a peer of the receiver's org, or of an org that shares a channel with it (some channel config
//!   joined in the run lists both orgs);
//! - across orgs, a peer with an external endpoint (peers without one stay inside their org);
//! - across orgs, for membership and identity messages (not StateInfo, which channel members
//!   forward to each other), a peer of the sender's or the receiver's org: a peer never vouches
//!   for a third org.

use bytes::Bytes;
use gossip_engine::types::PkiId;
use gossip_proto::gossip::gossip_message::Content;
use gossip_proto::gossip::{Envelope, GossipMessage, PullMsgType};
use prost::Message;

use super::{Checkers, Violation};

/// Whom a message tells about: `(via, pki_id)` per subject, `via` naming the content that carried
/// it (`alive_msg`, `mem_req`, `mem_res_alive`, `mem_res_dead`, `state_info`, `state_snapshot`,
/// `peer_identity`, `identity_update`, `identity_digest`). Undecodable items are skipped (ingress
/// rejects them).
pub fn subjects(message: &GossipMessage) -> Vec<(&'static str, Bytes)> {
    let mut out = Vec::new();
    let alive_of = |envelope: &Envelope| match GossipMessage::decode(envelope.payload.clone()) {
        Ok(GossipMessage {
            content: Some(Content::AliveMsg(alive)),
            ..
        }) => alive.membership.map(|m| m.pki_id),
        _ => None,
    };
    let state_info_of = |envelope: &Envelope| match GossipMessage::decode(envelope.payload.clone())
    {
        Ok(GossipMessage {
            content: Some(Content::StateInfo(info)),
            ..
        }) => Some(info.pki_id),
        _ => None,
    };
    let identity_of = |envelope: &Envelope| match GossipMessage::decode(envelope.payload.clone()) {
        Ok(GossipMessage {
            content: Some(Content::PeerIdentity(identity)),
            ..
        }) => Some(identity.pki_id),
        _ => None,
    };
    let identity_pull = |msg_type: i32| msg_type == PullMsgType::IdentityMsg as i32;
    match &message.content {
        Some(Content::AliveMsg(alive)) => {
            out.extend(
                alive
                    .membership
                    .as_ref()
                    .map(|m| ("alive_msg", m.pki_id.clone())),
            );
        }
        Some(Content::MemReq(request)) => {
            let info = request.self_information.as_ref().and_then(alive_of);
            out.extend(info.map(|p| ("mem_req", p)));
        }
        Some(Content::MemRes(response)) => {
            out.extend(
                response
                    .alive
                    .iter()
                    .filter_map(alive_of)
                    .map(|p| ("mem_res_alive", p)),
            );
            out.extend(
                response
                    .dead
                    .iter()
                    .filter_map(alive_of)
                    .map(|p| ("mem_res_dead", p)),
            );
        }
        Some(Content::StateInfo(info)) => out.push(("state_info", info.pki_id.clone())),
        Some(Content::StateSnapshot(snapshot)) => {
            let elements = snapshot.elements.iter().filter_map(state_info_of);
            out.extend(elements.map(|p| ("state_snapshot", p)));
        }
        Some(Content::PeerIdentity(identity)) => {
            out.push(("peer_identity", identity.pki_id.clone()));
        }
        Some(Content::DataUpdate(update)) if identity_pull(update.msg_type) => {
            let items = update.data.iter().filter_map(identity_of);
            out.extend(items.map(|p| ("identity_update", p)));
        }
        Some(Content::DataDig(digest)) if identity_pull(digest.msg_type) => {
            out.extend(
                digest
                    .digests
                    .iter()
                    .map(|d| ("identity_digest", d.clone())),
            );
        }
        Some(Content::DataReq(request)) if identity_pull(request.msg_type) => {
            out.extend(
                request
                    .digests
                    .iter()
                    .map(|d| ("identity_digest", d.clone())),
            );
        }
        _ => {}
    }
    out
}

impl Checkers {
    /// Orgs `orgs` share a channel from now on (a node joined a channel config listing them).
    pub fn on_channel_orgs(&mut self, orgs: &[usize]) {
        for &a in orgs {
            for &b in orgs {
                self.org_links.insert((a, b));
            }
        }
    }

    /// Whether orgs `a` and `b` are the same or share a channel.
    pub fn orgs_share_channel(&self, a: usize, b: usize) -> bool {
        a == b || self.org_links.contains(&(a, b))
    }

    /// Subjects of cross-org deliveries inspected so far, per carrying content (see
    /// [`subjects`]): a scenario asserts these are non-zero, so the check was not vacuous.
    pub fn cross_org_subjects(&self) -> &std::collections::BTreeMap<&'static str, u64> {
        &self.cross_org_subjects
    }

    pub(super) fn check_disclosure(&mut self, from: usize, to: usize, message: &GossipMessage) {
        if self.single_org {
            return;
        }
        let (sender_org, receiver_org) = (self.peers[from].org, self.peers[to].org);
        let cross_org = sender_org != receiver_org;
        for (via, pki_id) in subjects(message) {
            let Some(about) = PkiId::from_slice(&pki_id).and_then(|p| self.by_pki.get(&p)) else {
                continue;
            };
            let about = *about;
            let subject = &self.peers[about];
            if cross_org {
                *self.cross_org_subjects.entry(via).or_default() += 1;
            }
            if subject.org == receiver_org {
                continue;
            }
            let third_org = !via.starts_with("state_") && subject.org != sender_org;
            let why = if !self.orgs_share_channel(subject.org, receiver_org) {
                "its org shares no channel with the receiver's"
            } else if cross_org && !subject.external {
                "it has no external endpoint"
            } else if cross_org && third_org {
                "its org is neither the sender's nor the receiver's"
            } else {
                continue;
            };
            self.violate(Violation::Disclosure {
                from,
                to,
                about,
                via,
                why,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use gossip_proto::gossip::{AliveMessage, Member, MembershipResponse, StateInfo};

    use super::*;
    use crate::checkers::PeerFacts;

    /// Orgs 0, 1, 2 with two peers each; peer 0 of each org is external.
    fn checkers() -> Checkers {
        let facts = (0..6)
            .map(|i| PeerFacts {
                org: i / 2,
                internal_endpoint: format!("peer{}.org{}:7051", i % 2, i / 2),
                pki_id: PkiId([i as u8 + 1; 32]),
                external: i % 2 == 0,
            })
            .collect();
        let mut c = Checkers::new(facts);
        c.on_channel_orgs(&[0, 1]);
        c.on_channel_orgs(&[1, 2]);
        c
    }

    fn envelope(content: Content) -> Envelope {
        let message = GossipMessage {
            content: Some(content),
            ..GossipMessage::default()
        };
        Envelope {
            payload: message.encode_to_vec().into(),
            ..Envelope::default()
        }
    }

    fn alive(node: usize) -> Content {
        Content::AliveMsg(AliveMessage {
            membership: Some(Member {
                pki_id: Bytes::copy_from_slice(&[node as u8 + 1; 32]),
                ..Member::default()
            }),
            ..AliveMessage::default()
        })
    }

    fn whys(c: &Checkers) -> Vec<(usize, &'static str)> {
        let of = |v: &Violation| match v {
            Violation::Disclosure { about, why, .. } => (*about, *why),
            other => panic!("{other}"),
        };
        c.violations().iter().map(of).collect()
    }

    #[test]
    fn allowed_subjects_pass() {
        let mut c = checkers();
        c.on_wire(2, 0, &envelope(alive(2)));
        c.on_wire(2, 0, &envelope(alive(0)));
        c.on_wire(3, 2, &envelope(alive(1))); // same org: anything its org may know
        let state_info = |n: usize| StateInfo {
            pki_id: Bytes::copy_from_slice(&[n as u8 + 1; 32]),
            ..StateInfo::default()
        };
        // An external peer of org 2 sends its StateInfo to org 1, its channel partner.
        c.on_wire(4, 2, &envelope(Content::StateInfo(state_info(4))));
        assert!(c.violations().is_empty(), "{:?}", c.violations());
        assert_eq!(c.cross_org_subjects().get("alive_msg"), Some(&2));
        assert_eq!(c.cross_org_subjects().get("state_info"), Some(&1));
    }

    #[test]
    fn forbidden_subjects_are_caught() {
        let mut c = checkers();
        // Org 2 shares no channel with org 0, even told by org 1 which shares one with both.
        c.on_wire(2, 0, &envelope(alive(4)));
        // Peer 3 (org 1) has no external endpoint.
        c.on_wire(2, 0, &envelope(alive(3)));
        let response = MembershipResponse {
            alive: vec![envelope(alive(2))],
            dead: vec![envelope(alive(5))],
        };
        c.on_wire(2, 0, &envelope(Content::MemRes(response)));
        assert_eq!(
            whys(&c),
            vec![
                (4, "its org shares no channel with the receiver's"),
                (3, "it has no external endpoint"),
                (5, "its org shares no channel with the receiver's"),
            ]
        );
    }

    #[test]
    fn third_org_membership_is_caught() {
        let mut c = checkers();
        c.on_channel_orgs(&[0, 2]);
        // Org 1 tells org 0 about org 2: they share a channel, but org 1 may not vouch for it.
        c.on_wire(2, 0, &envelope(alive(4)));
        assert_eq!(
            whys(&c),
            vec![(4, "its org is neither the sender's nor the receiver's")]
        );
    }
}
