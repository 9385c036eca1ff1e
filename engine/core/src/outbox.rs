//! Where components put what they want done (STYLE idea 6, raft-rs `Ready`, foca's
//! `AccumulatingRuntime`): gossip a message through the emitter, send one directly to a peer, raise
//! an event for the application, or ask the driver for IO. Components never see connections; the
//! [`Node`](crate::node::Node) drains the outbox after every input.
//!
//! Every queue is bounded; a push past the bound drops the item and counts it, which only happens
//! when the host does not drain the node between inputs.

use std::collections::{BTreeMap, VecDeque};

use gossip_proto::gossip::{Envelope, GossipMessage};

use prost::Message;

use crate::crypto::envelope::noop_sign;
use crate::event::{Event, IoRequest, Lane, RemotePeer, Transmit};
use crate::types::PkiId;

/// Bound on messages waiting to enter the emitter within one input.
pub const EMITS_LEN_MAX: usize = 4_096;
/// Bound on direct transmits waiting for `poll_transmit`.
pub const TRANSMITS_LEN_MAX: usize = 65_536;
/// Bound on events waiting for `poll_event`.
pub const EVENTS_LEN_MAX: usize = 16_384;
/// Bound on IO requests waiting for `poll_io`.
pub const IO_REQUESTS_LEN_MAX: usize = 4_096;

/// Why the node dropped a message or an item of one (counted in [`NodeStats`](crate::node::NodeStats)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DropReason {
    /// Invalidated by a stored message (duplicate or older).
    Stale,
    /// About this peer itself.
    FromSelf,
    /// Missing fields or undecodable nested content.
    Malformed,
    /// For a channel this peer has not joined (and not a relayable StateInfo).
    UnknownChannel,
    /// The sender's or subject's org is unknown or not in the channel.
    OrgNotInChannel,
    /// Must come from (or be about) a peer of this peer's org.
    NotInMyOrg,
    /// A channel MAC that does not match.
    BadMac,
    /// A block that does not verify (number, data hash).
    BadBlock,
    /// A store, buffer or queue at its bound.
    Full,
    /// A block beyond the reorder buffer, or below the delivered height.
    OutOfWindow,
    /// A block from a peer too far beyond the delivery height to enter the block store
    /// (`Delivery::admits`: twice `state.blockBufferSize` past the next block to deliver): not
    /// stored, delivered or marked seen, so it cannot evict the stored blocks or move the store's
    /// window past the honest blocks that follow. A pushed one is still relayed (forwarded once
    /// per number); a pulled one is not.
    BlockBeyondWindow,
    /// For a channel this peer left.
    LeftChannel,
    /// A block pull message from a peer without a cached StateInfo of the channel.
    NotEligible,
    /// A pull message whose nonce is unknown, expired, of another peer, used up, or outside
    /// the phase of its round that takes it.
    UnknownNonce,
    /// An identity pull item whose identity the identity store does not hold (it refused it
    /// when full, or it expired or was removed since).
    UnknownIdentity,
    /// A kind this node does not handle (state transfer, private data).
    Unsupported,
    /// An emitted message no routing rule accepts.
    Unroutable,
    /// Signing failed.
    SignFailed,
}

/// A message to gossip: it goes through the emitter, the partition and the routing of spec 3.3.
#[derive(Clone, Debug)]
pub struct Emit {
    /// The envelope as signed (or as received, when forwarding).
    pub envelope: Envelope,
    /// The decoded message (routing reads its content and tag).
    pub message: GossipMessage,
    /// The peer it came from, never sent back to it (`None` for locally originated messages).
    pub source: Option<PkiId>,
}

/// The outputs components accumulate during one input.
#[derive(Debug, Default)]
pub struct Outbox {
    pub(crate) emits: Vec<Emit>,
    pub(crate) transmits: VecDeque<Transmit>,
    pub(crate) events: VecDeque<Event>,
    pub(crate) io: VecDeque<IoRequest>,
    /// Items refused because a queue was at its bound.
    pub(crate) overflowed: u64,
    /// Drop counters, by reason (never drained).
    pub(crate) drops: BTreeMap<DropReason, u64>,
}

impl Outbox {
    /// Queues a message for the emitter.
    pub fn emit(&mut self, envelope: Envelope, message: GossipMessage, source: Option<PkiId>) {
        if self.emits.len() >= EMITS_LEN_MAX {
            self.overflowed += 1;
            return;
        }
        self.emits.push(Emit {
            envelope,
            message,
            source,
        });
    }

    /// Queues a control message (membership, StateInfo, pull, election) for one peer, bypassing
    /// the emitter.
    pub fn send(&mut self, to: RemotePeer, envelope: Envelope) {
        self.send_on(Lane::Control, to, envelope);
    }

    /// Queues a NoopSigned `message` for one peer on its lane ([`Lane::of`]), bypassing the
    /// emitter: pull, state transfer and StateInfo snapshots, which Fabric sends unsigned.
    pub fn send_unsigned(&mut self, to: RemotePeer, message: &GossipMessage) {
        let envelope = noop_sign(message.encode_to_vec().into());
        self.send_on(Lane::of(message), to, envelope);
    }

    /// Queues a message for one peer on `lane`, bypassing the emitter.
    pub fn send_on(&mut self, lane: Lane, to: RemotePeer, envelope: Envelope) {
        if self.transmits.len() >= TRANSMITS_LEN_MAX {
            self.overflowed += 1;
            return;
        }
        self.transmits.push_back(Transmit { to, envelope, lane });
    }

    /// Raises an event for the application.
    pub fn event(&mut self, event: Event) {
        if self.events.len() >= EVENTS_LEN_MAX {
            self.overflowed += 1;
            return;
        }
        self.events.push_back(event);
    }

    /// Counts a dropped message or item.
    pub fn count_drop(&mut self, reason: DropReason) {
        *self.drops.entry(reason).or_insert(0) += 1;
    }

    /// Asks the driver for IO.
    pub fn io(&mut self, request: IoRequest) {
        if self.io.len() >= IO_REQUESTS_LEN_MAX {
            self.overflowed += 1;
            return;
        }
        self.io.push_back(request);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queues_are_bounded_and_count_overflow() {
        let mut out = Outbox::default();
        for _ in 0..IO_REQUESTS_LEN_MAX + 3 {
            out.io(IoRequest::CloseConn(PkiId::default()));
        }
        assert_eq!(out.io.len(), IO_REQUESTS_LEN_MAX);
        assert_eq!(out.overflowed, 3);
    }
}
