//! Blocks delivered and not yet committed, kept to serve state requests.
//!
//! A delivered block reaches the ledger up to `state.commitLinger` later (group commit, module
//! [`commit`](crate::commit)). A peer whose gap no block store holds any more asks for it by state
//! request at once (gap repair, `gossip_core::components::state`), and at a few hundred blocks per
//! second the block it asks for has usually been delivered everywhere and committed nowhere yet:
//! served from the ledger alone, every answer would come back without it until the next group
//! commit. The driver keeps what it handed to the committer here until the commit is
//! acknowledged. The payloads share their bytes with the ones handed to the committer, so this
//! costs map entries, not block copies.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use gossip_proto::gossip::Payload;

/// Most blocks kept per channel. The node holds at most `2 × state.blockBufferSize` blocks
/// delivered and not acknowledged (40 by default), so this bound is reached only when commits
/// stop (a commit error, a full commit queue); the lowest blocks go first.
pub const UNCOMMITTED_PER_CHANNEL_LEN_MAX: usize = 1_024;

/// Delivered blocks per channel until their commit is acknowledged (module doc).
#[derive(Debug, Default)]
pub(crate) struct Uncommitted {
    by_channel: HashMap<Bytes, BTreeMap<u64, Payload>>,
}

impl Uncommitted {
    /// A block handed to the committer.
    pub(crate) fn insert(&mut self, channel: &Bytes, payload: &Payload) {
        let blocks = self.by_channel.entry(channel.clone()).or_default();
        blocks.insert(payload.seq_num, payload.clone());
        while blocks.len() > UNCOMMITTED_PER_CHANNEL_LEN_MAX {
            blocks.pop_first();
        }
    }

    /// The ledger of `channel` holds every block below `height`: they are no longer kept.
    pub(crate) fn committed(&mut self, channel: &Bytes, height: u64) {
        if let Some(blocks) = self.by_channel.get_mut(channel) {
            *blocks = blocks.split_off(&height);
        }
    }

    /// The kept blocks `start_seq..=end_seq` of `channel`, in order, and whether they are all of
    /// that range (then the ledger need not be read).
    pub(crate) fn range(
        &self,
        channel: &Bytes,
        start_seq: u64,
        end_seq: u64,
    ) -> (Vec<Payload>, bool) {
        let Some(blocks) = self
            .by_channel
            .get(channel)
            .filter(|_| start_seq <= end_seq)
        else {
            return (Vec::new(), false);
        };
        let found: Vec<Payload> = blocks
            .range(start_seq..=end_seq)
            .map(|(_, p)| p.clone())
            .collect();
        let whole = u64::try_from(found.len()).is_ok_and(|n| n == end_seq - start_seq + 1);
        (found, whole)
    }

    /// Blocks kept, all channels.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.by_channel.values().map(BTreeMap::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::tests::{block, seqs};

    #[test]
    fn kept_until_committed_and_served_by_range() {
        let (a, b) = (Bytes::from_static(b"a"), Bytes::from_static(b"b"));
        let mut u = Uncommitted::default();
        for seq in 3..=7 {
            u.insert(&a, &block(seq));
        }
        u.insert(&b, &block(3));
        let (found, whole) = u.range(&a, 4, 6);
        assert_eq!((seqs(&found), whole), (vec![4, 5, 6], true));
        let (found, whole) = u.range(&a, 6, 9);
        assert_eq!(
            (seqs(&found), whole),
            (vec![6, 7], false),
            "8 and 9 are not kept"
        );
        u.committed(&a, 6);
        let (found, whole) = u.range(&a, 3, 7);
        assert_eq!(
            (seqs(&found), whole),
            (vec![6, 7], false),
            "3 to 5 are in the ledger"
        );
        assert_eq!(seqs(&u.range(&b, 3, 3).0), [3], "channels apart");
        assert_eq!(u.range(&a, 7, 6), (Vec::new(), false), "an empty range");
        assert_eq!(
            u.range(&Bytes::from_static(b"c"), 1, 2),
            (Vec::new(), false)
        );
    }

    #[test]
    fn bounded_per_channel_lowest_first() {
        let a = Bytes::from_static(b"a");
        let mut u = Uncommitted::default();
        let n = UNCOMMITTED_PER_CHANNEL_LEN_MAX as u64;
        for seq in 1..=n + 5 {
            u.insert(&a, &block(seq));
        }
        assert_eq!(u.len(), UNCOMMITTED_PER_CHANNEL_LEN_MAX);
        assert!(u.range(&a, 1, 5).0.is_empty());
        assert_eq!(seqs(&u.range(&a, n + 5, n + 5).0), [n + 5]);
    }
}
