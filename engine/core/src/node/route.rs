//! Fabric's `gossipBatch` (spec 3.3): where each message of an emitted batch goes.
//!
//! The batch is split by [`Partition`] (blocks and leadership per channel, StateInfo, org
//! restricted, alive, unroutable), and each part has its own peer selection:
//!
//! | part | peers |
//! |---|---|
//! | blocks of a channel | one `select_peers(propagate_peer_num)` per channel per batch over my-org peers of the channel with a cached StateInfo; each message skips its source |
//! | leadership of a channel | every peer matching the same filter |
//! | StateInfo, one at a time | `propagate_peer_num` peers of my org, or of the channel's orgs when I am in the channel and the subject has an external endpoint; never the source |
//! | org restricted | one selection of `propagate_peer_num` my-org peers for the whole part |
//! | alive, one at a time | by origin org (mine: anyone; other: mine or the origin's; unknown: nobody), secrets stripped for other orgs, foreign alive never to peers without external endpoint |

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use gossip_proto::gossip::gossip_message::Content;
use gossip_proto::gossip::{Envelope, GossipMessage};
use rand::Rng;

use crate::components::channel::Channel;
use crate::components::discovery::{Discovery, envelope_for, remote_of};
use crate::config::GossipConfig;
use crate::egress::{Partition, Routable, RouteClass, select_peers};
use crate::event::Lane;
use crate::outbox::{DropReason, Outbox};
use crate::time::Instant;
use crate::types::{NetworkMember, PkiId};

/// An emitted message on its way through the emitter: encoded once, routed by class.
#[derive(Debug)]
pub struct Outgoing {
    /// The envelope every target receives (the same `Bytes`).
    pub envelope: Envelope,
    /// The decoded message.
    pub message: GossipMessage,
    /// Its routing class, fixed when it entered the emitter.
    pub class: RouteClass,
    /// The peer it came from; never a target.
    pub source: Option<PkiId>,
}

/// A shared emitted message (the emitter clones entries for repeated iterations).
#[derive(Clone, Debug)]
pub struct Emitted(pub Arc<Outgoing>);

impl Routable for Emitted {
    fn route_class(&self) -> RouteClass {
        self.0.class
    }
    fn channel(&self) -> &Bytes {
        &self.0.message.channel
    }
}

/// What routing reads.
pub struct Router<'a> {
    /// Membership.
    pub discovery: &'a Discovery,
    /// Joined channels.
    pub channels: &'a BTreeMap<Bytes, Channel>,
    /// Fan-out settings.
    pub config: &'a GossipConfig,
    /// The time of the flush.
    pub now: Instant,
}

impl Router<'_> {
    fn send_to(&self, msg: &Outgoing, peers: &[&NetworkMember], out: &mut Outbox) {
        let lane = Lane::of(&msg.message);
        for p in peers.iter().filter(|p| Some(p.pki_id) != msg.source) {
            out.send_on(lane, remote_of(p), msg.envelope.clone());
        }
    }

    /// Routes one emitted batch into transmits.
    pub fn route<R: Rng + ?Sized>(
        &self,
        batch: &[Emitted],
        partition: &mut Partition,
        rng: &mut R,
        out: &mut Outbox,
    ) {
        partition.split(batch);
        let alive = self.discovery.alive_members();
        let my_org = &self.discovery.me().org;
        let k = self.config.propagate_peer_num;
        let mut peers: Vec<&NetworkMember> = Vec::new();
        for (groups, all) in [(&partition.blocks, false), (&partition.leadership, true)] {
            for group in groups {
                let Some(ch) = self.channels.get(&group.channel) else {
                    group
                        .indices
                        .iter()
                        .for_each(|_| out.count_drop(DropReason::UnknownChannel));
                    continue;
                };
                let filter = |m: &NetworkMember| {
                    m.org.as_ref() == Some(my_org) && ch.is_member_in_chan(m) && ch.is_eligible(m)
                };
                peers.clear();
                select_peers(
                    if all { alive.len() } else { k },
                    alive,
                    &filter,
                    rng,
                    &mut peers,
                );
                for &i in &group.indices {
                    self.send_to(&batch[i as usize].0, &peers, out);
                }
            }
        }
        for &i in &partition.state_info {
            let msg = &batch[i as usize].0;
            let Some(Content::StateInfo(si)) = &msg.message.content else {
                continue;
            };
            let subject = PkiId::from_slice(&si.pki_id).unwrap_or_default();
            let channel = self
                .channels
                .values()
                .find(|c| c.mac_of(&subject)[..] == si.channel_mac[..]);
            let wide = channel.filter(|_| self.discovery.has_external_endpoint(&subject));
            let filter = |m: &NetworkMember| {
                Some(m.pki_id) != msg.source
                    && match wide {
                        Some(ch) => ch.is_member_in_chan(m),
                        None => m.org.as_ref() == Some(my_org),
                    }
            };
            peers.clear();
            select_peers(k, alive, &filter, rng, &mut peers);
            self.send_to(msg, &peers, out);
        }
        if !partition.org_restricted.is_empty() {
            let filter = |m: &NetworkMember| m.org.as_ref() == Some(my_org);
            peers.clear();
            select_peers(k, alive, &filter, rng, &mut peers);
            for &i in &partition.org_restricted {
                self.send_to(&batch[i as usize].0, &peers, out);
            }
        }
        for &i in &partition.alive {
            self.route_alive(&batch[i as usize].0, alive, rng, out);
        }
        for _ in &partition.unroutable {
            out.count_drop(DropReason::Unroutable);
        }
    }

    /// Alive messages: selection by origin org, then Fabric's `sendAndFilterSecrets`.
    fn route_alive<R: Rng + ?Sized>(
        &self,
        msg: &Outgoing,
        alive: &[NetworkMember],
        rng: &mut R,
        out: &mut Outbox,
    ) {
        let my_org = &self.discovery.me().org;
        let origin = match &msg.message.content {
            Some(Content::AliveMsg(a)) => a
                .membership
                .as_ref()
                .and_then(|m| PkiId::from_slice(&m.pki_id)),
            _ => None,
        };
        let Some(origin_org) = origin.and_then(|p| self.discovery.org_of(&p, self.now)) else {
            return out.count_drop(DropReason::Unroutable);
        };
        let foreign = origin_org != *my_org;
        let filter = |m: &NetworkMember| {
            Some(m.pki_id) != msg.source
                && (!foreign
                    || m.org.as_ref() == Some(my_org)
                    || m.org.as_ref() == Some(&origin_org))
        };
        let mut peers = Vec::new();
        select_peers(
            self.config.propagate_peer_num,
            alive,
            &filter,
            rng,
            &mut peers,
        );
        for p in peers {
            if foreign && p.endpoint.is_empty() {
                continue;
            }
            let envelope = envelope_for(&msg.envelope, my_org, p.org.as_deref());
            out.send_on(Lane::of(&msg.message), remote_of(p), envelope);
        }
    }
}
