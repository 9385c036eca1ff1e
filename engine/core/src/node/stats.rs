//! Node counters.

use std::collections::BTreeMap;

use crate::components::certstore::CertStoreStats;
use crate::components::discovery::DiscoveryStats;
use crate::components::pull::PullStats;
use crate::components::state::StateStats;
use crate::outbox::DropReason;

/// A snapshot of the node's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeStats {
    /// Messages that entered the emitter.
    pub emitted: u64,
    /// Transmits handed out by `poll_transmit`.
    pub transmits: u64,
    /// Events handed out by `poll_event`.
    pub events: u64,
    /// IO requests handed out by `poll_io`.
    pub io_requests: u64,
    /// Blocks delivered in order, all channels.
    pub blocks_delivered: u64,
    /// Blocks taken from pull updates rather than pushed, all channels (every one of them is
    /// also in `BlockReceived` events; this tells them apart).
    pub blocks_pulled: u64,
    /// The block pullers' counters, all channels.
    pub pull: PullStats,
    /// Blocks taken from state responses, all channels.
    pub blocks_transferred: u64,
    /// Blocks the store held beyond the reorder buffer and delivered once the height reached
    /// them, all channels.
    pub blocks_refilled: u64,
    /// State transfer's counters, all channels.
    pub state: StateStats,
    /// Messages handled (`handle_message` calls).
    pub messages_handled: u64,
    /// Outputs lost because an outbox queue was full (the host did not drain).
    pub outbox_overflowed: u64,
    /// Dropped messages and items, by reason.
    pub dropped: BTreeMap<DropReason, u64>,
    /// Alive members now.
    pub members_alive: usize,
    /// Dead members now.
    pub members_dead: usize,
    /// Discovery's own counters.
    pub discovery: DiscoveryStats,
    /// The cert store's (identity puller's) counters.
    pub certstore: CertStoreStats,
}

impl NodeStats {
    /// Drops for one reason.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.dropped.get(&reason).copied().unwrap_or(0)
    }

    /// All drops.
    pub fn dropped_total(&self) -> u64 {
        self.dropped.values().sum()
    }
}

/// One joined channel as the operations endpoint reports it ([`crate::Node::channel_summaries`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChannelSummary {
    /// The channel name.
    pub channel: bytes::Bytes,
    /// This peer's ledger height: blocks committed (acknowledged), or delivered when no
    /// acknowledgements are expected.
    pub ledger_height: u64,
    /// Blocks waiting in the reorder buffer.
    pub buffered_len: usize,
    /// Alive peers of the channel with a StateInfo (Fabric's `PeersOfChannel`, self excluded).
    pub peers_known: usize,
    /// The highest ledger height those peers advertise in their StateInfo (0 with none).
    pub peers_ledger_height_max: u64,
    /// The highest height that a strict majority of those peers advertise or exceed (0 with
    /// none; [`majority_height`]). A StateInfo's height is the signer's own word: one peer, or
    /// any minority, advertising a height it does not have moves the maximum but not this.
    pub peers_ledger_height_majority: u64,
    /// Whether this peer is its org's leader of the channel (elected, or static with
    /// `orgLeader`; Fabric's `gossip_leader_election_leader`).
    pub leader: bool,
}

/// The highest height `h` such that more than half of `heights` are at least `h` (0 for none):
/// the lower median, so that a minority of peers advertising any height cannot move it. With
/// one peer it is that peer's height; with two, the lower of the two.
pub fn majority_height(heights: impl IntoIterator<Item = u64>) -> u64 {
    let mut heights: Vec<u64> = heights.into_iter().collect();
    if heights.is_empty() {
        return 0;
    }
    // Sorted descending, the element at n / 2 has n / 2 + 1 (a strict majority) at or above it.
    let at = heights.len() / 2;
    let (_, h, _) = heights.select_nth_unstable_by(at, |a, b| b.cmp(a));
    *h
}

#[cfg(test)]
mod tests {
    use super::majority_height;

    #[test]
    fn a_minority_cannot_move_the_majority_height() {
        assert_eq!(majority_height([]), 0);
        assert_eq!(majority_height([7]), 7, "one peer: its height");
        assert_eq!(majority_height([7, u64::MAX]), 7, "two: the lower");
        assert_eq!(majority_height([5, 6, 1_000_000_000_000_000]), 6);
        // 25 peers near the tip, 12 of them claiming any height: the honest tip still.
        let mut heights = vec![u64::MAX; 12];
        heights.extend([100; 3].iter().chain(&[101; 10]));
        assert_eq!(majority_height(heights.iter().copied()), 101);
        // A majority genuinely ahead is seen.
        assert_eq!(majority_height([10, 500, 500]), 500);
    }
}
