//! The driver's counters and histograms ([`crate::handle::GossipHandle::stats`]).

use std::collections::BTreeMap;

use bytes::Bytes;

use crate::histogram::HistogramSnapshot;

/// Driver counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DriverStats {
    /// Inbound messages handed to the node.
    pub messages_handled: u64,
    /// Wake-ups that hit [`INBOUND_BURST_LEN_MAX`] or [`REQUEST_BURST_LEN_MAX`].
    pub bursts_limited: u64,
    /// Timer wake-ups.
    pub timeouts: u64,
    /// Commands handed to the node.
    pub commands: u64,
    /// Transmits passed to comm.
    pub transmits: u64,
    /// Transmits without a PKI-ID (a handshake learns it first).
    pub transmits_unidentified: u64,
    /// IO tasks started.
    pub io_started: u64,
    /// IO requests answered as failed because [`IO_TASKS_LEN_MAX`] tasks were running.
    pub io_refused: u64,
    /// Refused-IO results dropped because the deferred queue was full.
    pub io_results_dropped: u64,
    /// IO tasks that panicked or were cancelled.
    pub io_tasks_failed: u64,
    /// Events dropped because a subscriber's queue was full.
    pub events_dropped: u64,
    /// Pass-through messages dropped because a subscriber's queue was full.
    pub pass_through_dropped: u64,
    /// Blocks committed to the ledger.
    pub ledger_commits: u64,
    /// Commits that failed, each stopping its channel's commits (see [`ledger`](crate::ledger)).
    pub ledger_commit_errors: u64,
    /// Delivered blocks below the ledger's height (committed before), not committed again.
    pub ledger_commits_skipped: u64,
    /// Delivered blocks dropped because the commit queue was full
    /// ([`COMMIT_QUEUE_LEN_MAX`](crate::commit::COMMIT_QUEUE_LEN_MAX)).
    pub ledger_commit_queue_full: u64,
    /// Heights acknowledged to the node (`UpdateLedgerHeight` after commits and joins).
    pub ledger_heights_acknowledged: u64,
    /// Blocks read from the ledger to serve state requests.
    pub ledger_blocks_served: u64,
    /// Ledger reads for state requests that failed (answered with no blocks).
    pub ledger_read_errors: u64,
    /// Blocks delivered and waiting to be committed: held back for their batch in the driver,
    /// and queued for the committer thread.
    pub ledger_commit_waiting_len: u64,
    /// How long the node took over each inbound message, its outputs handed on included.
    pub handle_seconds: HistogramSnapshot,
    /// How long each ledger transaction took (one per batch and channel).
    pub commit_seconds: HistogramSnapshot,
    /// Fabric's `gossip_state_commit_duration` per channel: each committed block observes the
    /// time of the transaction that made it durable (blocks are committed in groups).
    pub commit_duration_by_channel: BTreeMap<Bytes, HistogramSnapshot>,
}
