//! A deliberately small node that exercises the simulator without the engine's `Node`: it
//! heartbeats signed alive messages to its bootstrap peers and everyone it heard from, relays the
//! alive messages it hears (first copy only: ingress drops duplicates), expires
//! silent members, and floods blocks to every member (in every channel: it leaks on purpose, so
//! the checkers have something to catch). Blocks are delivered in order from a reorder buffer.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use bytes::Bytes;
use gossip_engine::crypto::envelope::{noop_sign, sign_envelope};
use gossip_engine::event::{Command, Event, IoRequest, IoResult, Lane, RemotePeer, Transmit};
use gossip_engine::ingress::{IdentityChange, ReceivedMessage, Verified};
use gossip_engine::time::Instant;
use gossip_engine::types::PkiId;
use gossip_proto::gossip::gossip_message::{Content, Tag};
use gossip_proto::gossip::{AliveMessage, Envelope, GossipMessage, Member, PeerTime};
use prost::Message;

use crate::node::{NodeSetup, SimNode};

/// Heartbeat period.
pub const TOY_ALIVE_INTERVAL: Duration = Duration::from_secs(1);
/// Silence after which a member is dead.
pub const TOY_EXPIRATION: Duration = Duration::from_secs(4);

/// The toy node.
#[derive(Debug)]
pub struct ToyNode {
    setup: NodeSetup,
    inc_num: u64,
    seq_num: u64,
    next_alive: Instant,
    /// PKI-ID → (endpoint, last heard).
    members: BTreeMap<PkiId, (String, Instant)>,
    dead: BTreeSet<PkiId>,
    joined: BTreeSet<Bytes>,
    /// Per channel: next seq to deliver, and blocks waiting for it.
    next_seq: BTreeMap<Bytes, u64>,
    pending: BTreeMap<(Bytes, u64), (GossipMessage, Option<PkiId>)>,
    /// Blocks taken (first receipt), by channel and number.
    taken: BTreeSet<(Bytes, u64)>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
}

impl ToyNode {
    fn alive_envelope(&mut self) -> Envelope {
        self.seq_num += 1;
        let message = GossipMessage {
            tag: Tag::Empty as i32,
            content: Some(Content::AliveMsg(AliveMessage {
                membership: Some(Member {
                    endpoint: self.setup.internal_endpoint.clone(),
                    metadata: Bytes::new(),
                    pki_id: Bytes::copy_from_slice(self.setup.signer.pki_id().as_bytes()),
                }),
                timestamp: Some(PeerTime {
                    inc_num: self.inc_num,
                    seq_num: self.seq_num,
                }),
                identity: self.setup.signer.identity().serialized.clone(),
            })),
            ..GossipMessage::default()
        };
        sign_envelope(message.encode_to_vec().into(), self.setup.signer.key()).expect("sign")
    }

    fn heartbeat(&mut self) {
        let envelope = self.alive_envelope();
        // Dead members get the heartbeat too: it doubles as the reconnect probe.
        let mut targets: Vec<RemotePeer> = self
            .members
            .iter()
            .map(|(p, (ep, _))| RemotePeer {
                pki_id: Some(*p),
                endpoint: ep.clone(),
            })
            .collect();
        if targets.is_empty() {
            targets = self
                .setup
                .bootstrap
                .iter()
                .map(|ep| RemotePeer {
                    pki_id: None,
                    endpoint: ep.clone(),
                })
                .collect();
        }
        for to in targets {
            self.transmits.push_back(Transmit {
                to,
                envelope: envelope.clone(),
                lane: Lane::Control,
            });
        }
    }

    fn flood(&mut self, envelope: &Envelope, except: Option<PkiId>) {
        for (pki_id, (endpoint, _)) in &self.members {
            if Some(*pki_id) != except && !self.dead.contains(pki_id) {
                self.transmits.push_back(Transmit {
                    to: RemotePeer {
                        pki_id: Some(*pki_id),
                        endpoint: endpoint.clone(),
                    },
                    envelope: envelope.clone(),
                    lane: Lane::Data,
                });
            }
        }
    }

    fn accept_block(&mut self, message: GossipMessage, from: Option<PkiId>) {
        let Some(Content::DataMsg(data)) = &message.content else {
            return;
        };
        let Some(seq) = data.payload.as_ref().map(|p| p.seq_num) else {
            return;
        };
        let channel = message.channel.clone();
        if !self.joined.contains(&channel) {
            return;
        }
        self.pending.insert((channel.clone(), seq), (message, from));
        let next = self.next_seq.entry(channel.clone()).or_insert(1);
        while let Some((m, from)) = self.pending.remove(&(channel.clone(), *next)) {
            if let Some(Content::DataMsg(d)) = m.content {
                self.events.push_back(Event::Block {
                    channel: channel.clone(),
                    payload: d.payload.unwrap_or_default(),
                    from,
                });
            }
            *next += 1;
        }
    }
}

impl SimNode for ToyNode {
    fn start(setup: NodeSetup, now: Instant) -> Self {
        let mut node = Self {
            setup,
            inc_num: now.as_nanos(),
            seq_num: 0,
            next_alive: now,
            members: BTreeMap::new(),
            dead: BTreeSet::new(),
            joined: BTreeSet::new(),
            next_seq: BTreeMap::new(),
            pending: BTreeMap::new(),
            taken: BTreeSet::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        };
        node.handle_timeout(now);
        node
    }

    fn handle_message(&mut self, message: Verified<ReceivedMessage>, now: Instant) {
        let received = message.into_inner();
        match &received.message.content {
            Some(Content::AliveMsg(alive)) => {
                let Some(m) = &alive.membership else { return };
                let Some(pki_id) = PkiId::from_slice(&m.pki_id) else {
                    return;
                };
                if self.dead.remove(&pki_id) || !self.members.contains_key(&pki_id) {
                    self.events.push_back(Event::MemberAlive(
                        gossip_engine::types::NetworkMember {
                            pki_id,
                            endpoint: m.endpoint.clone(),
                            internal_endpoint: m.endpoint.clone(),
                            org: None,
                        },
                    ));
                }
                if pki_id != self.setup.signer.pki_id() {
                    self.members.insert(pki_id, (m.endpoint.clone(), now));
                }
                self.flood(&received.envelope, Some(received.from));
            }
            Some(Content::DataMsg(data)) => {
                // Like the real node: a block is taken (and raised, so the harness marks it seen
                // at ingress) and flooded once; a later copy is dropped here.
                let seq_num = data.payload.as_ref().map_or(0, |p| p.seq_num);
                let size_bytes = data.payload.as_ref().map_or(0, |p| p.data.len());
                let channel = received.message.channel.clone();
                if !self.taken.insert((channel.clone(), seq_num)) {
                    return;
                }
                self.events.push_back(Event::BlockReceived {
                    channel,
                    seq_num,
                    from: received.from,
                    size_bytes,
                    via: gossip_engine::event::Arrival::Push,
                });
                self.flood(&received.envelope, Some(received.from));
                self.accept_block(received.message, Some(received.from));
            }
            _ => {}
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        if now >= self.next_alive {
            self.heartbeat();
            self.next_alive = now + TOY_ALIVE_INTERVAL;
        }
        let expired: Vec<PkiId> = self
            .members
            .iter()
            .filter(|(p, (_, heard))| {
                !self.dead.contains(*p) && now.saturating_duration_since(*heard) > TOY_EXPIRATION
            })
            .map(|(p, _)| *p)
            .collect();
        for pki_id in expired {
            self.dead.insert(pki_id);
            self.events.push_back(Event::MemberDead(pki_id));
        }
    }

    fn handle_command(&mut self, command: Command, _now: Instant) {
        match command {
            Command::Gossip(message) => {
                let envelope = noop_sign(message.encode_to_vec().into());
                self.flood(&envelope, None);
                self.accept_block(message, None);
            }
            Command::JoinChan(config) => {
                self.joined.insert(config.channel);
            }
            Command::LeaveChan(channel) => {
                self.joined.remove(&channel);
            }
            _ => {}
        }
    }

    fn handle_identity(&mut self, _change: IdentityChange, _now: Instant) {
        // The toy node routes by endpoint and membership only.
    }

    fn handle_io(&mut self, result: IoResult, _now: Instant) {
        if let IoResult::PresumedDead(pki_id) = result
            && self.members.contains_key(&pki_id)
            && self.dead.insert(pki_id)
        {
            self.events.push_back(Event::MemberDead(pki_id));
        }
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    fn poll_io(&mut self) -> Option<IoRequest> {
        None
    }

    fn poll_timeout(&self) -> Option<Instant> {
        let next_expiry = self
            .members
            .iter()
            .filter(|(p, _)| !self.dead.contains(*p))
            .map(|(_, (_, heard))| *heard + TOY_EXPIRATION + Duration::from_nanos(1))
            .min();
        Some(next_expiry.map_or(self.next_alive, |e| e.min(self.next_alive)))
    }

    fn alive_members(&self) -> Vec<PkiId> {
        self.members
            .keys()
            .filter(|p| !self.dead.contains(*p))
            .copied()
            .collect()
    }

    fn dead_members(&self) -> Vec<PkiId> {
        self.dead.iter().copied().collect()
    }

    fn channel_members(&self, _channel: &[u8]) -> Vec<PkiId> {
        self.alive_members()
    }
}
