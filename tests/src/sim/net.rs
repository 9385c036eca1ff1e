//! The simulated network side of [`Sim`]: logical connections, transmits, IO answers,
//! deliveries through each node's ingress, and the node events the checkers watch.

use std::time::Duration;

use gossip_engine::event::{Command, Event, IoRequest, IoResult, Transmit};
use gossip_engine::ingress::{ReceivedMessage, Verified};
use gossip_engine::types::PkiId;
use gossip_engine::wire::{self, ContentKind};
use gossip_proto::gossip::{Envelope, GossipMessage, PullMsgType};
use prost::Message;

use super::{Action, DIAL_FAILURE_DELAY, Sim, block_seq};
use crate::node::SimNode;

impl<N: SimNode> Sim<N> {
    /// Whether `a` and `b` are on the same side of the current partition (always without one).
    pub fn same_side(&self, a: usize, b: usize) -> bool {
        self.net.connected(a, b)
    }

    pub(super) fn reachable(&self, a: usize, b: usize) -> bool {
        self.slots[b].node.is_some() && self.net.connected(a, b)
    }

    /// The handshake's effect: each side stores the other's identity. `false` when a side
    /// refuses the other's identity (expired, revoked): no connection, as a failed handshake.
    pub(super) fn connect(&mut self, a: usize, b: usize) -> bool {
        let pair = (a.min(b), a.max(b));
        if self.connections.contains(&pair) {
            return true;
        }
        for (x, y) in [(a, b), (b, a)] {
            let identity = self.slots[y].signer.identity().clone();
            let claimed = identity.pki_id;
            let stored = self.slots[x]
                .ingress
                .identities()
                .put(&claimed.0, identity, self.now);
            if stored.is_err() {
                self.stats.handshakes_refused += 1;
                return false;
            }
        }
        self.connections.insert(pair);
        self.stats.handshakes += 1;
        true
    }

    pub(super) fn resolve(&self, pki_id: Option<&PkiId>, endpoint: &str) -> Option<usize> {
        pki_id
            .and_then(|p| self.by_pki.get(p))
            .or_else(|| self.by_endpoint.get(endpoint))
            .copied()
    }

    pub(super) fn io_to(&mut self, node: usize, delay: Duration, result: IoResult) {
        let incarnation = self.slots[node].incarnation;
        self.schedule(
            self.now + delay,
            Action::Io {
                node,
                incarnation,
                result,
            },
        );
    }

    pub(super) fn drain(&mut self, i: usize) {
        loop {
            let Some(node) = self.slots[i].node.as_mut() else {
                return;
            };
            if let Some(t) = node.poll_transmit() {
                self.transmit(i, t);
            } else if let Some(io) = node.poll_io() {
                self.io_request(i, io);
            } else if let Some(event) = node.poll_event() {
                self.event(i, event);
            } else {
                break;
            }
        }
        let slot = &mut self.slots[i];
        let deadline = slot.node.as_ref().and_then(|n| n.poll_timeout());
        if let Some(at) = deadline.map(|d| d.max(self.now))
            && slot.timer_at != Some(at)
        {
            slot.timer_at = Some(at);
            let incarnation = slot.incarnation;
            self.schedule(
                at,
                Action::Timer {
                    node: i,
                    incarnation,
                },
            );
        } else if deadline.is_none() {
            slot.timer_at = None;
        }
    }

    pub(super) fn transmit(&mut self, a: usize, t: Transmit) {
        let message = GossipMessage::decode(t.envelope.payload.clone()).ok();
        let kind = message.as_ref().map_or(ContentKind::None, ContentKind::of);
        let identity_pull =
            message.as_ref().and_then(wire::pull_msg_type) == Some(PullMsgType::IdentityMsg as i32);
        let len_bytes = t.envelope.encoded_len();
        if self.verbose {
            let to = self.resolve(t.to.pki_id.as_ref(), &t.to.endpoint);
            let seq = block_seq(&t.envelope);
            eprintln!("{:?} {a} -> {to:?} {} {seq:?}", self.elapsed(), kind.name());
        }
        self.stats.record_transmit(kind, identity_pull, len_bytes);
        let Some(b) = self.resolve(t.to.pki_id.as_ref(), &t.to.endpoint) else {
            self.stats.unroutable += 1;
            if let Some(pki_id) = t.to.pki_id {
                self.io_to(a, DIAL_FAILURE_DELAY, IoResult::PresumedDead(pki_id));
            }
            return;
        };
        if b == a {
            self.stats.self_sends += 1;
            return;
        }
        if !self.reachable(a, b) {
            self.stats.send_failures += 1;
            self.connections.remove(&(a.min(b), a.max(b)));
            let pki_id = self.pki_id(b);
            self.io_to(a, DIAL_FAILURE_DELAY, IoResult::PresumedDead(pki_id));
            return;
        }
        if !self.connect(a, b) {
            self.stats.send_failures += 1;
            let pki_id = self.pki_id(b);
            self.io_to(a, DIAL_FAILURE_DELAY, IoResult::PresumedDead(pki_id));
            return;
        }
        self.stats.record_link(a, b, kind);
        if kind == ContentKind::DataMsg {
            self.checkers.on_block_transmit(a, b, &t.envelope);
        }
        let link = *self.net.link(a, b);
        let copies = link.draw_copies(&mut self.rng);
        self.stats.lost += u64::from(copies == 0);
        self.stats.duplicated += u64::from(copies == 2);
        let to_incarnation = self.slots[b].incarnation;
        for _ in 0..copies {
            let at = self.now + link.draw_latency(&mut self.rng);
            self.schedule(
                at,
                Action::Deliver {
                    from: a,
                    to: b,
                    to_incarnation,
                    envelope: t.envelope.clone(),
                },
            );
        }
    }

    pub(super) fn io_request(&mut self, a: usize, io: IoRequest) {
        self.trace(("io_request", a, format!("{io:?}")));
        let rtt = self.net.link(a, a).latency_base * 2;
        match io {
            IoRequest::Handshake { endpoint, token } => {
                let result = match self.resolve(None, &endpoint) {
                    Some(b) if self.reachable(a, b) && (a == b || self.connect(a, b)) => {
                        Ok((self.pki_id(b), self.slots[b].org_id.clone()))
                    }
                    _ => Err(format!("{endpoint} unreachable")),
                };
                self.io_to(a, rtt, IoResult::Handshake { token, result });
            }
            IoRequest::Probe { pki_id, endpoint } => {
                let alive = self
                    .resolve(None, &endpoint)
                    .is_some_and(|b| self.reachable(a, b));
                self.io_to(a, rtt, IoResult::Probe { pki_id, alive });
            }
            IoRequest::CloseConn(pki_id) => {
                if self.stats.conns_closed.len() < crate::stats::CONNS_CLOSED_LEN_MAX {
                    self.stats.conns_closed.push((a, pki_id));
                }
                if let Some(b) = self.index_of(&pki_id) {
                    self.connections.remove(&(a.min(b), a.max(b)));
                }
            }
            IoRequest::ReadBlocks {
                channel,
                start_seq,
                end_seq,
                token,
            } => {
                let blocks = self.slots[a].ledger.blocks(&channel, start_seq, end_seq);
                self.io_to(a, Duration::ZERO, IoResult::Blocks { token, blocks });
            }
        }
    }

    pub(super) fn event(&mut self, i: usize, event: Event) {
        if self.verbose {
            eprintln!("{:?} event at {i}: {event:?}", self.elapsed());
        }
        match &event {
            Event::Block {
                channel, payload, ..
            } => {
                self.stats.blocks_delivered += 1;
                self.stats.last_block_at_ns = self.elapsed().as_nanos() as u64;
                self.checkers.on_block_event(i, channel, payload.seq_num);
                self.trace(("block", i, channel, payload.seq_num));
                // What a committer does: store, then acknowledge the new height.
                let height = self.slots[i].ledger.commit(channel, payload);
                let ack = Command::UpdateLedgerHeight {
                    channel: channel.clone(),
                    height,
                };
                self.command_in(Duration::ZERO, i, ack);
            }
            Event::BlockReceived {
                channel, seq_num, ..
            } => {
                // What the tokio driver does: a block is remembered as seen once taken.
                let now = self.now();
                self.slots[i]
                    .ingress
                    .mark_block_seen(channel, *seq_num, now);
                self.stats.block_receipts.push(crate::stats::BlockReceipt {
                    node: i,
                    seq_num: *seq_num,
                    at_ns: self.elapsed().as_nanos() as u64,
                });
                self.trace(("block_received", i, channel, *seq_num));
            }
            Event::MemberAlive(m) => self.trace(("alive", i, m.pki_id)),
            Event::MemberDead(p) => self.trace(("dead", i, *p)),
            Event::MemberPurged(p) => self.trace(("purged", i, *p)),
            Event::ChannelPeerUpdated {
                channel, pki_id, ..
            } => self.trace(("chan_peer", i, channel, *pki_id)),
            Event::Leadership { channel, from, .. } => {
                self.trace(("leadership", i, channel, *from))
            }
            Event::LeadershipChanged { channel, leader } => {
                self.trace(("leader", i, channel, *leader))
            }
        }
    }

    pub(super) fn deliver(
        &mut self,
        from: usize,
        to: usize,
        to_incarnation: u32,
        envelope: Envelope,
    ) {
        if self.slots[to].incarnation != to_incarnation || self.slots[to].node.is_none() {
            self.stats.dropped_down += 1;
            return;
        }
        if !self.net.connected(from, to) {
            self.stats.dropped_partition += 1;
            return;
        }
        self.stats.delivered += 1;
        self.checkers.on_wire(from, to, &envelope);
        let from_pki = self.pki_id(from);
        let seq = if self.verbose {
            block_seq(&envelope)
        } else {
            None
        };
        let received = self.slots[to]
            .ingress
            .receive_inline(from_pki, envelope, self.now);
        if self.verbose {
            let what = received
                .as_ref()
                .map(|m| m.kind.name())
                .map_err(|r| r.reason());
            eprintln!("{:?} {from} => {to} {what:?} {seq:?}", self.elapsed());
        }
        match received {
            Ok(message) => self.handle_verified(from, to, message),
            Err(reject) => {
                self.checkers.on_rejected(reject.reason());
                self.trace(("reject", from, to, reject.reason()));
            }
        }
    }

    /// The metadata of the newest alive message about `about` that `to` accepted (directly or in
    /// a membership response).
    pub fn alive_metadata(&self, to: usize, about: usize) -> Option<&bytes::Bytes> {
        self.alive_seen.metadata(to, about)
    }

    pub(super) fn handle_verified(
        &mut self,
        from: usize,
        to: usize,
        message: Verified<ReceivedMessage>,
    ) {
        let by_pki = &self.by_pki;
        self.alive_seen
            .observe(to, &message.message, |p| by_pki.get(p).copied());
        let is_block = message.kind == ContentKind::DataMsg;
        self.checkers
            .on_accepted(from, to, &message.envelope, is_block);
        self.trace((
            "handle",
            from,
            to,
            message.kind,
            is_block.then(|| message.envelope.payload.clone()),
        ));
        let now = self.now;
        let slot = &mut self.slots[to];
        if let Some(node) = slot.node.as_mut() {
            let identities = slot.ingress.identities();
            identities.take_changes(|change| node.handle_identity(change, now));
            node.handle_message(message, now);
        }
        self.drain(to);
    }
}
