//! Blocks of a channel: the block store (dedup by number, window, TTL), verification, and
//! in-order delivery to the application.
//!
//! Delivery: the next expected block number is the ledger height (height `h` means blocks
//! `0..h` are committed, so block `h` is next; a new channel has height 1). A block at the
//! expected number is delivered at once, followed by any buffered successors; a later block waits
//! in a reorder buffer of fewer than `state.blockBufferSize` (20) numbers past the expected one, and
//! one further ahead is dropped, as Fabric's state provider drops it in non-blocking mode; an
//! earlier one was delivered already (or committed by the application) and is not delivered again.
//! While a gap lasts the buffer holds at most that many blocks.
//!
//! Store admission: a block from a peer (pushed or pulled) at twice `state.blockBufferSize` or
//! more past the next expected number is not taken into the block store at all
//! ([`Delivery::admits`], counted as `BlockBeyondWindow`): it is not stored, raised as received
//! (so the driver does not mark it seen) or delivered, and so cannot move the store's window
//! (`maxBlockCountToStore` below the newest block) past the blocks that follow; it is relayed
//! (forwarded once per number, [`super::relay`]) so that a lagging peer does not starve its
//! neighbours. A block
//! between the buffer and that bound is stored and forwarded and delivered from the store once
//! the height reaches it. State responses bypass the store and are taken only within the buffer.

use std::collections::BTreeMap;

use bytes::Bytes;
use gossip_proto::common::Block;
use gossip_proto::gossip::gossip_message::Content;
use gossip_proto::gossip::{Envelope, GossipMessage, Payload};
use prost::Message;

use super::{Channel, Ctx};
use crate::components::msgstore::{BlockPolicy, Sequenced};
use crate::crypto::sha256_concat;
use crate::event::{Arrival, Event};
use crate::outbox::{DropReason, Outbox};
use crate::types::PkiId;

/// What the block store keeps per block: its number (all the comparator needs) and the data
/// message's envelope as received or signed, which the block puller serves.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredBlock {
    /// The block number.
    pub seq_num: u64,
    /// The data message's envelope.
    pub envelope: Envelope,
    /// The peer it came from and how (`None`: gossiped locally).
    pub origin: Option<(PkiId, Arrival)>,
}

impl StoredBlock {
    /// A key-only block for the store's checks (`check_valid` compares numbers only).
    pub fn probe(seq_num: u64) -> Self {
        Self {
            seq_num,
            envelope: Envelope::default(),
            origin: None,
        }
    }
}

impl Sequenced for StoredBlock {
    fn seq_num(&self) -> u64 {
        self.seq_num
    }
}

pub(super) type BlockStorePolicy = BlockPolicy<StoredBlock>;

/// Why a block failed verification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    /// `Payload.data` is not a `common.Block`.
    #[error("block does not decode: {0}")]
    Decode(String),
    /// The block has no header.
    #[error("block without header")]
    NoHeader,
    /// `header.number` differs from `seq_num`.
    #[error("header number {header} differs from sequence {seq_num}")]
    NumberMismatch {
        /// The header's number.
        header: u64,
        /// The payload's sequence.
        seq_num: u64,
    },
    /// `header.data_hash` is not SHA-256 over the concatenated `data.data`.
    #[error("data hash mismatch")]
    DataHash,
}

/// The structural part of Fabric's `VerifyBlock`: the payload decodes as a block whose number is
/// `seq_num` and whose data hash is SHA-256 over the concatenation of its data entries. Orderer
/// signature policy checks are out of scope (see ALGORITHM.md).
pub fn verify_block(payload: &Payload) -> Result<(), BlockError> {
    let block =
        Block::decode(payload.data.clone()).map_err(|e| BlockError::Decode(e.to_string()))?;
    let header = block.header.as_ref().ok_or(BlockError::NoHeader)?;
    if header.number != payload.seq_num {
        return Err(BlockError::NumberMismatch {
            header: header.number,
            seq_num: payload.seq_num,
        });
    }
    // Fabric's BlockDataHash: SHA-256 over the data entries joined, hashed here piece by piece.
    let data = block.data.map(|d| d.data).unwrap_or_default();
    if header.data_hash[..] != sha256_concat(data.iter().map(|d| &d[..]))[..] {
        return Err(BlockError::DataHash);
    }
    Ok(())
}

/// In-order delivery with a bounded reorder buffer (Fabric's payload buffer), and the commit
/// hand-off: with `backlog_len_max` above 0 the embedder acknowledges commits
/// ([`Delivery::set_height`]) and at most that many blocks are delivered beyond the acknowledged
/// height; later ones wait in the buffer (Fabric's blocking add, spec 3.9).
#[derive(Debug)]
pub struct Delivery {
    next_seq: u64,
    /// Blocks at `next_seq + buffer_len_max` or beyond are dropped.
    buffer_len_max: u64,
    /// The height the embedder acknowledged (blocks below it are committed).
    committed: u64,
    /// Blocks delivered and not yet acknowledged, at most; 0: no acknowledgements expected.
    backlog_len_max: u64,
    buffer: BTreeMap<u64, (Payload, Option<PkiId>)>,
}

impl Delivery {
    /// Delivery expecting block `next_seq` first, buffering blocks fewer than `buffer_len_max`
    /// numbers past the expected one (`state.blockBufferSize`), with no commit acknowledgements.
    pub fn new(next_seq: u64, buffer_len_max: u64) -> Self {
        Self::with_backlog(next_seq, buffer_len_max, 0)
    }

    /// Like [`Delivery::new`], holding back blocks more than `backlog_len_max` past the
    /// acknowledged height (0: none held back).
    pub fn with_backlog(next_seq: u64, buffer_len_max: u64, backlog_len_max: u64) -> Self {
        Self {
            next_seq,
            buffer_len_max,
            committed: next_seq,
            backlog_len_max,
            buffer: BTreeMap::new(),
        }
    }

    /// The next block number to deliver.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The ledger height: acknowledged commits, or with no acknowledgements expected, the
    /// delivered blocks.
    pub fn committed_height(&self) -> u64 {
        if self.backlog_len_max == 0 {
            self.next_seq
        } else {
            self.committed
        }
    }

    /// Blocks waiting for a predecessor (or for commits to be acknowledged).
    pub fn buffered_len(&self) -> usize {
        self.buffer.len()
    }

    /// The lowest block number above `seq` waiting in the buffer.
    pub fn buffered_after(&self, seq: u64) -> Option<u64> {
        self.buffer
            .range(seq.saturating_add(1)..)
            .next()
            .map(|(s, _)| *s)
    }

    /// The first block number neither delivered nor waiting in the buffer.
    pub fn first_missing(&self) -> u64 {
        let mut seq = self.next_seq;
        for &held in self.buffer.keys() {
            if held != seq {
                break;
            }
            seq += 1;
        }
        seq
    }

    /// How far past the next block to deliver a block may be and still be taken: twice
    /// `state.blockBufferSize`, Fabric's blocking bound for the deliver client's blocks
    /// ([`Delivery::offer_local`]) and the bound on the block store's admission
    /// ([`Delivery::admits`]).
    fn ahead_len_max(&self) -> u64 {
        self.buffer_len_max.saturating_mul(2)
    }

    /// Whether the block store may take block `seq` from a peer: any block below
    /// `next_seq + 2 × state.blockBufferSize` (older ones are the store's to judge, by its
    /// window and what it holds). The bound is relative to this peer's own delivery height, so a
    /// block far beyond it (a faulty orderer's, or any valid block far ahead) cannot evict the
    /// stored blocks or move the store's window (`maxBlockCountToStore` below the newest) past
    /// the honest blocks that follow. Why twice the buffer: it is the farthest the embedder's
    /// own blocks run ahead ([`Delivery::offer_local`]), so every block an honest leader
    /// gossips is admitted by a peer at the leader's height; it keeps a band past the reorder
    /// buffer whose blocks are stored, forwarded and delivered later from the store
    /// (`refill_from_store`); and it never makes the window floor (newest −
    /// `maxBlockCountToStore`) rise further than honest traffic within that band would. A peer
    /// lagging further catches up by state transfer (responses go to delivery, not to the
    /// store) and admits pushed blocks again once within the bound.
    pub fn admits(&self, seq: u64) -> bool {
        seq < self.admitted_end()
    }

    /// The first block number the block store does not admit from peers ([`Delivery::admits`]).
    pub fn admitted_end(&self) -> u64 {
        self.next_seq.saturating_add(self.ahead_len_max())
    }

    /// Whether block `seq` would be buffered or delivered (not held, not out of the window).
    pub fn wants(&self, seq: u64) -> bool {
        seq >= self.next_seq
            && seq < self.next_seq.saturating_add(self.buffer_len_max)
            && !self.buffer.contains_key(&seq)
    }

    /// Offers a block; returns how many blocks were delivered (raised as events).
    pub fn offer(
        &mut self,
        channel: &Bytes,
        payload: Payload,
        from: Option<PkiId>,
        out: &mut Outbox,
    ) -> u64 {
        self.offer_within(channel, payload, from, self.buffer_len_max, out)
    }

    /// Offers a block the embedder gossips (from the orderer, in order): Fabric adds those
    /// blocking, waiting while the buffer holds more than twice `blockBufferSize`; here it is
    /// taken up to that distance (the gap before it is repaired by pull or state transfer) and
    /// dropped and counted beyond it.
    pub fn offer_local(&mut self, channel: &Bytes, payload: Payload, out: &mut Outbox) -> u64 {
        let window = self.ahead_len_max();
        self.offer_within(channel, payload, None, window, out)
    }

    fn offer_within(
        &mut self,
        channel: &Bytes,
        payload: Payload,
        from: Option<PkiId>,
        window: u64,
        out: &mut Outbox,
    ) -> u64 {
        let seq = payload.seq_num;
        if seq < self.next_seq || seq >= self.next_seq.saturating_add(window) {
            out.count_drop(DropReason::OutOfWindow);
            return 0;
        }
        self.buffer.entry(seq).or_insert((payload, from));
        self.flush(channel, out)
    }

    /// The application committed up to `height` (by other means, or acknowledging delivered
    /// blocks): skip to it, and deliver what the acknowledgement releases.
    pub fn set_height(&mut self, channel: &Bytes, height: u64, out: &mut Outbox) -> u64 {
        self.committed = self.committed.max(height);
        if height > self.next_seq {
            self.next_seq = height;
            self.buffer = self.buffer.split_off(&height);
        }
        self.flush(channel, out)
    }

    fn flush(&mut self, channel: &Bytes, out: &mut Outbox) -> u64 {
        let mut delivered = 0;
        while let Some(entry) = self.buffer.first_entry() {
            if *entry.key() != self.next_seq {
                break;
            }
            if self.backlog_len_max > 0
                && self.next_seq >= self.committed.saturating_add(self.backlog_len_max)
            {
                break;
            }
            let (payload, from) = entry.remove();
            out.event(Event::Block {
                channel: channel.clone(),
                payload,
                from,
            });
            self.next_seq += 1;
            delivered += 1;
        }
        delivered
    }
}

impl Channel {
    /// A data message of this channel from `from`: check (the store's window, then
    /// [`Delivery::admits`]), verify, store; a new block is forwarded (excluding the sender)
    /// unless it was relayed already, and delivered in order.
    pub fn handle_data(
        &mut self,
        from: PkiId,
        envelope: &Envelope,
        message: &GossipMessage,
        ctx: &Ctx<'_>,
        out: &mut Outbox,
    ) {
        if self.left {
            return out.count_drop(DropReason::LeftChannel);
        }
        let Some(Content::DataMsg(data)) = &message.content else {
            return out.count_drop(DropReason::Malformed);
        };
        let Some(payload) = &data.payload else {
            return out.count_drop(DropReason::Malformed);
        };
        if !self
            .blocks
            .check_valid(&StoredBlock::probe(payload.seq_num))
        {
            return out.count_drop(DropReason::Stale);
        }
        if !self.delivery.admits(payload.seq_num) {
            // Relayed once, not stored or raised (so not marked seen).
            return self.relay_beyond_window(from, envelope, message, payload, ctx, out);
        }
        if ctx.checks_blocks() && verify_block(payload).is_err() {
            return out.count_drop(DropReason::BadBlock);
        }
        let block = StoredBlock {
            seq_num: payload.seq_num,
            envelope: envelope.clone(),
            origin: Some((from, Arrival::Push)),
        };
        if self.blocks.add(block, ctx.now).is_err() {
            return out.count_drop(DropReason::Full);
        }
        self.puller.arrived(&payload.seq_num);
        self.puller.observe(&payload.seq_num, ctx.now, true);
        // Raised (and so marked seen by the driver) only when delivery takes it: a block beyond
        // the buffer is stored and forwarded but stays wanted, so a later copy, a pull or state
        // transfer can still bring it.
        if self.delivery.wants(payload.seq_num) {
            out.event(Event::BlockReceived {
                channel: self.name.clone(),
                seq_num: payload.seq_num,
                from,
                size_bytes: payload.data.len(),
                via: Arrival::Push,
            });
        }
        // A block relayed while it was beyond the admission bound was forwarded then.
        if !self.relayed.taken(payload.seq_num) {
            out.emit(envelope.clone(), message.clone(), Some(from));
        }
        self.deliver(payload.clone(), Some(from), ctx.now, out);
    }

    /// Offers a block taken into the store to in-order delivery (`from` `None`: gossiped by the
    /// embedder, [`Delivery::offer_local`]); a block left waiting for a predecessor is a gap,
    /// which the block puller may repair at once (`pull_on_gap`).
    pub(super) fn deliver(
        &mut self,
        payload: Payload,
        from: Option<PkiId>,
        now: crate::time::Instant,
        out: &mut Outbox,
    ) {
        self.blocks_delivered += match from {
            Some(_) => self.delivery.offer(&self.name, payload, from, out),
            None => self.delivery.offer_local(&self.name, payload, out),
        };
        self.refill_from_store(out);
        self.keep_undelivered();
        if self.delivery.buffered_len() > 0 {
            self.puller.gap(now);
        }
        self.repair_unreachable_gap(now);
    }

    /// The block store keeps (and takes) every block delivery still needs, whatever the window
    /// `maxBlockCountToStore` says: a first copy that arrives after more newer blocks than the
    /// window (a slow hop, a late pull) would otherwise be refused as stale and leave a gap that
    /// nothing but state transfer fills. Bounded by [`Delivery::admits`].
    pub(super) fn keep_undelivered(&mut self) {
        let next = self.delivery.next_seq();
        self.blocks.policy_mut().keep_from(next);
    }

    /// Offers delivery the stored blocks it now wants: blocks the store took while they were
    /// beyond the buffer (stored and forwarded, but not delivered) come within it as the height
    /// grows, and no push or pull brings them again (both skip blocks the store holds).
    fn refill_from_store(&mut self, out: &mut Outbox) {
        loop {
            let seq = self.delivery.first_missing();
            if !self.delivery.wants(seq) {
                return;
            }
            let Some(stored) = self.blocks.get(&seq) else {
                return;
            };
            let origin = stored.origin;
            let payload = GossipMessage::decode(stored.envelope.payload.clone())
                .ok()
                .and_then(|m| match m.content {
                    Some(Content::DataMsg(d)) => d.payload,
                    _ => None,
                });
            let Some(payload) = payload.filter(|p| p.seq_num == seq) else {
                return;
            };
            if let Some((from, via)) = origin {
                out.event(Event::BlockReceived {
                    channel: self.name.clone(),
                    seq_num: seq,
                    from,
                    size_bytes: payload.data.len(),
                    via,
                });
            }
            self.blocks_refilled += 1;
            let from = origin.map(|(p, _)| p);
            self.blocks_delivered += self.delivery.offer(&self.name, payload, from, out);
        }
    }
}

/// A valid block payload for tests: one data entry, correct number and hash.
#[cfg(test)]
pub(crate) fn block_fixture(seq: u64) -> Bytes {
    tests::block_bytes(seq, &[b"tx"], false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::sha256;
    use gossip_proto::common::{BlockData, BlockHeader};

    /// Fabric's `state.blockBufferSize` default.
    const BUFFER_LEN_MAX: u64 = 20;

    fn payload(seq: u64) -> Payload {
        Payload {
            seq_num: seq,
            data: Bytes::new(),
            private_data: Vec::new(),
        }
    }

    fn delivered(out: &mut Outbox) -> Vec<u64> {
        out.events
            .drain(..)
            .filter_map(|e| match e {
                Event::Block { payload, .. } => Some(payload.seq_num),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn delivers_in_order_once() {
        let ch = Bytes::from_static(b"ch");
        let mut d = Delivery::new(1, BUFFER_LEN_MAX);
        let mut out = Outbox::default();
        assert_eq!(d.offer(&ch, payload(3), None, &mut out), 0);
        assert_eq!(d.offer(&ch, payload(2), None, &mut out), 0);
        assert_eq!(d.offer(&ch, payload(1), None, &mut out), 3);
        assert_eq!(delivered(&mut out), [1, 2, 3]);
        assert_eq!(d.offer(&ch, payload(2), None, &mut out), 0, "below next");
        assert_eq!(d.offer(&ch, payload(0), None, &mut out), 0);
        assert_eq!(d.next_seq(), 4);
        assert_eq!(d.offer(&ch, payload(4 + BUFFER_LEN_MAX), None, &mut out), 0);
        assert_eq!(d.buffered_len(), 0);
    }

    #[test]
    fn a_gap_holds_at_most_the_buffer_window() {
        let ch = Bytes::from_static(b"ch");
        let mut d = Delivery::new(1, BUFFER_LEN_MAX);
        let mut out = Outbox::default();
        // Block 1 never comes: 2..=20 wait for it, 21 and later are dropped.
        for seq in 2..=100 {
            assert_eq!(d.offer(&ch, payload(seq), None, &mut out), 0);
        }
        assert_eq!(d.buffered_len(), 19);
        assert_eq!(out.drops.get(&DropReason::OutOfWindow), Some(&(100 - 20)));
        assert_eq!(d.offer(&ch, payload(1), None, &mut out), 20);
        assert_eq!(delivered(&mut out), (1..=20).collect::<Vec<_>>());
        assert_eq!(d.next_seq(), 21);
    }

    #[test]
    fn ledger_height_skips_ahead() {
        let ch = Bytes::from_static(b"ch");
        let mut d = Delivery::new(1, BUFFER_LEN_MAX);
        let mut out = Outbox::default();
        d.offer(&ch, payload(3), None, &mut out);
        d.offer(&ch, payload(6), None, &mut out);
        assert_eq!(d.set_height(&ch, 5, &mut out), 0);
        assert_eq!(d.buffered_len(), 1, "3 dropped, 6 kept");
        assert_eq!(d.offer(&ch, payload(5), None, &mut out), 2);
        assert_eq!(delivered(&mut out), [5, 6]);
        assert_eq!(d.set_height(&ch, 2, &mut out), 0, "never backwards");
        assert_eq!(d.next_seq(), 7);
    }

    #[test]
    fn acknowledged_commits_bound_the_backlog() {
        let ch = Bytes::from_static(b"ch");
        let mut d = Delivery::with_backlog(1, BUFFER_LEN_MAX, 3);
        let mut out = Outbox::default();
        for seq in 1..=6 {
            d.offer(&ch, payload(seq), None, &mut out);
        }
        assert_eq!(
            delivered(&mut out),
            [1, 2, 3],
            "three delivered, none acknowledged"
        );
        assert_eq!(d.committed_height(), 1);
        assert_eq!(d.buffered_len(), 3);
        assert_eq!(
            d.set_height(&ch, 3, &mut out),
            2,
            "1 and 2 committed release 4 and 5"
        );
        assert_eq!(delivered(&mut out), [4, 5]);
        assert_eq!(d.committed_height(), 3);
        assert_eq!(d.set_height(&ch, 6, &mut out), 1);
        assert_eq!(delivered(&mut out), [6]);
        assert_eq!(d.next_seq(), 7);
        assert!(d.wants(7) && !d.wants(6) && !d.wants(7 + BUFFER_LEN_MAX));
    }

    pub(crate) fn block_bytes(number: u64, data: &[&[u8]], tamper: bool) -> Bytes {
        let concatenated: Vec<u8> = data.concat();
        let mut hash = sha256(&concatenated).to_vec();
        if tamper {
            hash[0] ^= 1;
        }
        Block {
            header: Some(BlockHeader {
                number,
                previous_hash: Bytes::new(),
                data_hash: hash.into(),
            }),
            data: Some(BlockData {
                data: data.iter().map(|d| Bytes::copy_from_slice(d)).collect(),
            }),
            metadata: None,
        }
        .encode_to_vec()
        .into()
    }

    #[test]
    fn verification() {
        let ok = Payload {
            seq_num: 7,
            data: block_bytes(7, &[b"tx1", b"tx2"], false),
            private_data: Vec::new(),
        };
        assert_eq!(verify_block(&ok), Ok(()));
        let wrong_number = Payload {
            seq_num: 8,
            ..ok.clone()
        };
        assert!(matches!(
            verify_block(&wrong_number),
            Err(BlockError::NumberMismatch { .. })
        ));
        let tampered = Payload {
            data: block_bytes(7, &[b"tx1"], true),
            ..ok.clone()
        };
        assert_eq!(verify_block(&tampered), Err(BlockError::DataHash));
        let garbage = Payload {
            data: Bytes::from_static(&[0xff, 0xff, 0xff]),
            ..ok
        };
        assert!(verify_block(&garbage).is_err());
    }
}
