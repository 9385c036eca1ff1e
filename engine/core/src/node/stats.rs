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
    /// Whether this peer is its org's leader of the channel (elected, or static with
    /// `orgLeader`; Fabric's `gossip_leader_election_leader`).
    pub leader: bool,
}
