//! The ledger an embedder gives the driver ([`StartOptions::ledger`](crate::StartOptions)): where
//! delivered blocks are committed and where state requests of other peers are served from.
//!
//! With a ledger, the driver
//! - hands every block the node delivers in order ([`Event::Block`](crate::event::Event)) to a
//!   committer thread, which commits each block once, in order ([`Ledger::commit`], or
//!   [`Ledger::commit_batch`] for blocks that queued up meanwhile), and feeds each new
//!   height back to the node as `UpdateLedgerHeight` (published in the channel's StateInfo, and the
//!   acknowledgement that lets the node deliver further: it holds at most
//!   `2 × state.blockBufferSize` blocks delivered and not acknowledged, Fabric's blocking bound);
//! - answers the node's `ReadBlocks` requests (state transfer) with [`Ledger::blocks`];
//! - follows every `JoinChan` with `UpdateLedgerHeight(`[`Ledger::height`]`)`, so a restarted
//!   node resumes delivery at its stored height instead of block 1.
//!
//! Without a ledger, a delivered block counts as committed and nothing is served (the embedder may
//! publish heights itself with `GossipHandle::update_ledger_height`).
//!
//! Every call may block (disk): the driver makes them on a thread of their own or through
//! `spawn_blocking`, never on its task.

use std::collections::{HashMap, VecDeque};

use bytes::Bytes;
use gossip_proto::gossip::Payload;
use parking_lot::Mutex;

/// The height of a channel that never committed a block: block 0 (the genesis block a peer joins
/// the channel with) is not gossiped, so block 1 is the first a ledger commits.
pub const INITIAL_HEIGHT: u64 = 1;

/// Why a ledger call failed.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// [`Ledger::commit`] was given a block other than the next one (or
    /// [`Ledger::commit_batch`] a block out of sequence); nothing was written.
    #[error("block {seq_num} is out of order: block {height} was expected")]
    OutOfOrder {
        /// The block's number.
        seq_num: u64,
        /// The number expected in its place (for `commit`, the ledger's height).
        height: u64,
    },
    /// The block store failed. Whether a failed commit left anything behind is the
    /// implementation's to say (the durable ledgers of this project write a block and its height
    /// in one transaction: all or nothing).
    #[error("ledger storage: {0}")]
    Storage(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// A block store, provided by the embedder. Channels are named by their bytes; a block is a
/// [`Payload`] whose `seq_num` is the block number and whose `data` is the marshalled
/// `common.Block`.
pub trait Ledger: Send + Sync + 'static {
    /// Commits `payload`, the block numbered [`height`](Self::height): called once per block, in
    /// order, from one thread. A block of any other number is refused with
    /// [`LedgerError::OutOfOrder`] and nothing is written.
    fn commit(&self, channel: &[u8], payload: &Payload) -> Result<(), LedgerError>;

    /// Commits `payloads`, consecutive blocks from the ledger's height, in order: what the driver
    /// calls when several blocks of a channel wait for commit at once. The default makes one
    /// [`commit`](Self::commit) per block; a store may write them in one transaction (all or
    /// nothing). After an error, [`height`](Self::height) says how many were committed.
    fn commit_batch(&self, channel: &[u8], payloads: &[Payload]) -> Result<(), LedgerError> {
        payloads.iter().try_for_each(|p| self.commit(channel, p))
    }

    /// The number of the next block to commit: the last committed block's number + 1, or
    /// [`INITIAL_HEIGHT`] for a channel never committed to.
    fn height(&self, channel: &[u8]) -> Result<u64, LedgerError>;

    /// The committed blocks numbered `start_seq..=end_seq`, in order; blocks the ledger does not
    /// hold are left out (an empty range gives none).
    fn blocks(
        &self,
        channel: &[u8],
        start_seq: u64,
        end_seq: u64,
    ) -> Result<Vec<Payload>, LedgerError>;
}

/// Blocks a [`MemLedger::default`] keeps per channel.
pub const MEM_LEDGER_BLOCKS_LEN_MAX: usize = 1_024;

/// An in-memory [`Ledger`] for tests and embedders without storage: heights as a durable ledger
/// keeps them, and the newest `blocks_len_max` blocks of each channel (older ones are forgotten,
/// so [`blocks`](Ledger::blocks) leaves them out; the height is unaffected). Memory: at most
/// `blocks_len_max` blocks per channel joined. Nothing survives the process.
#[derive(Debug)]
pub struct MemLedger {
    blocks_len_max: usize,
    channels: Mutex<HashMap<Bytes, MemChannel>>,
}

#[derive(Debug)]
struct MemChannel {
    height: u64,
    /// The newest blocks, contiguous, the last numbered `height - 1`.
    blocks: VecDeque<Payload>,
}

impl Default for MemLedger {
    fn default() -> Self {
        Self::new(MEM_LEDGER_BLOCKS_LEN_MAX)
    }
}

impl MemLedger {
    /// A ledger keeping the newest `blocks_len_max` blocks of each channel (at least 1).
    pub fn new(blocks_len_max: usize) -> Self {
        Self {
            blocks_len_max: blocks_len_max.max(1),
            channels: Mutex::new(HashMap::new()),
        }
    }
}

impl Ledger for MemLedger {
    fn commit(&self, channel: &[u8], payload: &Payload) -> Result<(), LedgerError> {
        let mut channels = self.channels.lock();
        let ch = channels
            .entry(Bytes::copy_from_slice(channel))
            .or_insert_with(|| MemChannel {
                height: INITIAL_HEIGHT,
                blocks: VecDeque::new(),
            });
        if payload.seq_num != ch.height {
            return Err(LedgerError::OutOfOrder {
                seq_num: payload.seq_num,
                height: ch.height,
            });
        }
        if ch.blocks.len() >= self.blocks_len_max {
            ch.blocks.pop_front();
        }
        ch.blocks.push_back(payload.clone());
        ch.height += 1;
        Ok(())
    }

    fn height(&self, channel: &[u8]) -> Result<u64, LedgerError> {
        Ok(self
            .channels
            .lock()
            .get(channel)
            .map_or(INITIAL_HEIGHT, |ch| ch.height))
    }

    fn blocks(
        &self,
        channel: &[u8],
        start_seq: u64,
        end_seq: u64,
    ) -> Result<Vec<Payload>, LedgerError> {
        let channels = self.channels.lock();
        let Some(ch) = channels.get(channel) else {
            return Ok(Vec::new());
        };
        // The deque holds `first..height`, contiguous.
        let first = ch.height - ch.blocks.len() as u64;
        let start = start_seq.max(first);
        let end = end_seq.min(ch.height.saturating_sub(1));
        if start > end {
            return Ok(Vec::new());
        }
        let (from, to) = ((start - first) as usize, (end - first) as usize);
        Ok(ch.blocks.range(from..=to).cloned().collect())
    }
}

/// Test blocks, shared by the driver's ledger tests.
#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A payload numbered `seq` whose data names it.
    pub(crate) fn block(seq: u64) -> Payload {
        Payload {
            seq_num: seq,
            data: Bytes::from(format!("block {seq}")),
            private_data: Vec::new(),
        }
    }

    /// The numbers of `blocks`, in their order.
    pub(crate) fn seqs(blocks: &[Payload]) -> Vec<u64> {
        blocks.iter().map(|b| b.seq_num).collect()
    }

    #[test]
    fn commits_in_order_and_refuses_any_other_block() {
        let ledger = MemLedger::default();
        assert_eq!(ledger.height(b"ch").unwrap(), INITIAL_HEIGHT);
        for seq in 1..=3 {
            ledger.commit(b"ch", &block(seq)).expect("next block");
        }
        assert_eq!(ledger.height(b"ch").unwrap(), 4);
        for seq in [2, 3, 5] {
            let refused = ledger.commit(b"ch", &block(seq));
            assert!(
                matches!(refused, Err(LedgerError::OutOfOrder { seq_num, height: 4 }) if seq_num == seq),
                "{refused:?}"
            );
        }
        assert_eq!(ledger.height(b"ch").unwrap(), 4, "nothing written");
        assert_eq!(ledger.height(b"other").unwrap(), INITIAL_HEIGHT);
    }

    #[test]
    fn blocks_are_an_inclusive_range_of_what_is_held() {
        let ledger = MemLedger::default();
        for seq in 1..=5 {
            ledger.commit(b"ch", &block(seq)).expect("commit");
        }
        assert_eq!(seqs(&ledger.blocks(b"ch", 2, 4).unwrap()), [2, 3, 4]);
        assert_eq!(ledger.blocks(b"ch", 3, 3).unwrap(), [block(3)]);
        assert_eq!(
            seqs(&ledger.blocks(b"ch", 0, 100).unwrap()),
            [1, 2, 3, 4, 5]
        );
        assert!(ledger.blocks(b"ch", 6, 10).unwrap().is_empty(), "not yet");
        assert!(
            ledger.blocks(b"ch", 4, 2).unwrap().is_empty(),
            "empty range"
        );
        assert!(ledger.blocks(b"none", 1, 10).unwrap().is_empty());
        assert_eq!(
            seqs(&ledger.blocks(b"ch", u64::MAX - 1, u64::MAX).unwrap()),
            [] as [u64; 0]
        );
    }

    #[test]
    fn only_the_newest_blocks_are_kept_and_the_height_goes_on() {
        let ledger = MemLedger::new(3);
        for seq in 1..=10 {
            ledger.commit(b"ch", &block(seq)).expect("commit");
        }
        assert_eq!(ledger.height(b"ch").unwrap(), 11);
        assert_eq!(seqs(&ledger.blocks(b"ch", 1, 10).unwrap()), [8, 9, 10]);
        assert_eq!(seqs(&ledger.blocks(b"ch", 1, 8).unwrap()), [8]);
        assert!(ledger.blocks(b"ch", 1, 7).unwrap().is_empty(), "forgotten");
    }
}
