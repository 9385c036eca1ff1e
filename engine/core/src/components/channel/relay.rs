//! Blocks from peers beyond the store's admission bound ([`super::blocks::Delivery::admits`]) are
//! relayed, not taken: forwarded once (so a peer lagging more than the bound still passes the
//! channel's new blocks on, as a Fabric peer's gossip layer does whatever its ledger's height),
//! but not stored, raised as received or delivered, so they cannot move the store's window past
//! the blocks that follow. Without the relay a lagging peer starves its push neighbours: under
//! loss, one unrepairable gap made every peer in turn fall 40 blocks behind and the whole channel
//! stop (results/reliability.md, R1 with Fabric's defaults).
//!
//! Each number is relayed once: [`Relayed`] remembers the numbers relayed, at most
//! [`RELAYED_LEN_MAX`] of them, the highest kept, until the store takes a later copy of the block
//! ([`Relayed::taken`]; that copy is not forwarded again: the relay forwarded the block already)
//! or delivery passes the number.

use std::collections::BTreeSet;

use gossip_proto::gossip::{Envelope, GossipMessage, Payload};

use super::blocks::verify_block;
use super::{Channel, Ctx};
use crate::outbox::{DropReason, Outbox};
use crate::types::PkiId;

/// Block numbers remembered as relayed (about 12 s of blocks at 20 blocks/s).
pub const RELAYED_LEN_MAX: usize = 256;

/// The block numbers relayed beyond the admission bound.
#[derive(Debug, Default)]
pub struct Relayed {
    seqs: BTreeSet<u64>,
}

impl Relayed {
    /// Whether `seq` is relayed now: not relayed before, and, with the set full, above the
    /// lowest number it remembers (that one is forgotten for it). Numbers below `next_seq` (the
    /// next block to deliver) are forgotten first: no copy of those is taken any more.
    pub fn first(&mut self, seq: u64, next_seq: u64) -> bool {
        while self.seqs.first().is_some_and(|min| *min < next_seq) {
            self.seqs.pop_first();
        }
        if self.seqs.contains(&seq) {
            return false;
        }
        if self.seqs.len() >= RELAYED_LEN_MAX {
            if self.seqs.first().is_some_and(|min| seq < *min) {
                return false;
            }
            self.seqs.pop_first();
        }
        self.seqs.insert(seq);
        true
    }

    /// The store took a copy of block `seq`: whether it was relayed (and so forwarded) already.
    /// It is forgotten either way.
    pub fn taken(&mut self, seq: u64) -> bool {
        self.seqs.remove(&seq)
    }

    /// Numbers remembered.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.seqs.len()
    }
}

impl Channel {
    /// A pushed block beyond the admission bound (module doc): counted as
    /// `BlockBeyondWindow`, then forwarded (excluding the sender) the first time its number
    /// comes, after the same checks as a block taken; a repeat is `Stale`.
    pub(super) fn relay_beyond_window(
        &mut self,
        from: PkiId,
        envelope: &Envelope,
        message: &GossipMessage,
        payload: &Payload,
        ctx: &Ctx<'_>,
        out: &mut Outbox,
    ) {
        if ctx.checks_blocks() && verify_block(payload).is_err() {
            return out.count_drop(DropReason::BadBlock);
        }
        out.count_drop(DropReason::BlockBeyondWindow);
        self.beyond_window_seen(payload.seq_num, ctx);
        if !self
            .relayed
            .first(payload.seq_num, self.delivery.next_seq())
        {
            return out.count_drop(DropReason::Stale);
        }
        out.emit(envelope.clone(), message.clone(), Some(from));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_number_is_relayed_once() {
        let mut r = Relayed::default();
        assert!(r.first(100, 50));
        assert!(!r.first(100, 50), "a repeat");
        assert!(r.first(101, 50));
        assert_eq!(r.len(), 2);
    }

    #[test]
    fn numbers_taken_or_delivered_are_forgotten() {
        let mut r = Relayed::default();
        assert!(r.first(100, 50));
        assert!(r.first(101, 50));
        assert!(r.taken(100), "relayed before the store took it");
        assert!(!r.taken(100), "forgotten once taken");
        assert!(!r.taken(102), "never relayed");
        assert!(
            r.first(120, 110),
            "101 is below the next block to deliver: forgotten"
        );
        assert_eq!(r.len(), 1);
    }

    #[test]
    fn a_full_set_keeps_the_highest_numbers() {
        let mut r = Relayed::default();
        for seq in 1_000..1_000 + RELAYED_LEN_MAX as u64 {
            assert!(r.first(seq, 0));
        }
        assert_eq!(r.len(), RELAYED_LEN_MAX);
        assert!(
            !r.first(999, 0),
            "below every remembered number: not relayed"
        );
        assert!(r.first(5_000, 0), "the lowest is forgotten for it");
        assert_eq!(r.len(), RELAYED_LEN_MAX);
        assert!(
            !r.first(1_000, 0),
            "forgotten, and below every remembered number: not relayed"
        );
    }
}
