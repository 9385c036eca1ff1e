//! Comm-layer counters: atomics on the hot path, small locked maps for rare events (rejects,
//! handshake failures, per-peer overflow).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use super::read_ahead::WireBytes;
use crate::histogram::{Histogram, HistogramSnapshot};
use crate::ingress::IdentityStoreStats;
use crate::types::PkiId;

/// The live counters, shared by every task of one [`super::Comm`].
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub(crate) messages_sent: AtomicU64,
    pub(crate) messages_received: AtomicU64,
    pub(crate) overflow_count: AtomicU64,
    pub(crate) connections_opened: AtomicU64,
    pub(crate) connections_closed: AtomicU64,
    pub(crate) presumed_dead_dropped: AtomicU64,
    pub(crate) identity_switches_dropped: AtomicU64,
    pub(crate) verified_inline_pool_full: AtomicU64,
    pub(crate) verified_inline_uncontended: AtomicU64,
    /// Socket bytes of every gossip connection, shared with each connection's stream.
    pub(crate) wire: Arc<WireBytes>,
    /// How long messages wait in the inbound queue (shared with [`crate::inbound::Inbound`]).
    pub(crate) inbound_wait: Arc<Histogram>,
    rejects: Mutex<HashMap<&'static str, u64>>,
    handshake_failures: Mutex<HashMap<&'static str, u64>>,
    refusals: Mutex<HashMap<&'static str, u64>>,
    overflow_by_peer: Mutex<HashMap<PkiId, u64>>,
}

impl Stats {
    pub(crate) fn incr(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn reject(&self, reason: &'static str) {
        *self.rejects.lock().entry(reason).or_default() += 1;
    }

    pub(crate) fn handshake_failure(&self, cause: &'static str) {
        *self.handshake_failures.lock().entry(cause).or_default() += 1;
    }

    /// Counts a resource a peer asked for and was refused, under `reason` (see
    /// [`CommStats::refusals`]).
    pub(crate) fn refuse(&self, reason: &'static str) {
        *self.refusals.lock().entry(reason).or_default() += 1;
    }

    pub(crate) fn overflow(&self, peer: PkiId) {
        Self::incr(&self.overflow_count);
        *self.overflow_by_peer.lock().entry(peer).or_default() += 1;
    }

    /// The counters, with the ingress's count of skipped signature checks, its identity
    /// store's counters, the queues' lengths and the verifier pool's histograms.
    pub(crate) fn snapshot(&self, shared: &super::comm::Shared) -> CommStats {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let ingress = &shared.ingress;
        let sends = shared.store.queued_sends();
        let pool = shared.verifier_pool.as_ref();
        CommStats {
            queues: QueueLens {
                inbound: shared.inbound.len(),
                verify: pool.map_or(0, crate::pool::VerifierPool::queue_len),
                send_lanes: sends.lanes,
                pending_dial: sends.pending_dial,
            },
            inbound_wait_seconds: self.inbound_wait.snapshot(),
            verify_pool_seconds: pool.map(|p| p.verify_seconds()).unwrap_or_default(),
            verify_batch_len: pool
                .map(|p| p.batch_len())
                .unwrap_or_else(|| Histogram::count(crate::histogram::LEN_BOUNDS).snapshot()),
            messages_sent: load(&self.messages_sent),
            messages_received: load(&self.messages_received),
            overflow_count: load(&self.overflow_count),
            connections_opened: load(&self.connections_opened),
            connections_closed: load(&self.connections_closed),
            presumed_dead_dropped: load(&self.presumed_dead_dropped),
            identity_switches_dropped: load(&self.identity_switches_dropped),
            verified_inline_pool_full: load(&self.verified_inline_pool_full),
            verified_inline_uncontended: load(&self.verified_inline_uncontended),
            checks_skipped_verified: ingress.stats().snapshot().checks_skipped_verified,
            identities: ingress.identities().stats(),
            wire_bytes_sent: self.wire.sent_bytes(),
            wire_bytes_received: self.wire.received_bytes(),
            rejects: self.rejects.lock().iter().map(|(k, v)| (*k, *v)).collect(),
            handshake_failures: self
                .handshake_failures
                .lock()
                .iter()
                .map(|(k, v)| (*k, *v))
                .collect(),
            refusals: self.refusals.lock().iter().map(|(k, v)| (*k, *v)).collect(),
            overflow_by_peer: self
                .overflow_by_peer
                .lock()
                .iter()
                .map(|(k, v)| (*k, *v))
                .collect(),
        }
    }
}

/// Items waiting in the comm's queues at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueLens {
    /// Messages that passed ingress, waiting for the driver.
    pub inbound: usize,
    /// Signature-check jobs waiting for a verifier thread.
    pub verify: usize,
    /// Envelopes in the send lanes of every connection.
    pub send_lanes: usize,
    /// Envelopes waiting for a dial to their peer to end.
    pub pending_dial: usize,
}

/// A point-in-time copy of the comm counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommStats {
    /// Queue lengths when the copy was taken.
    pub queues: QueueLens,
    /// Time from a message passing ingress to the driver taking it from the inbound queue.
    pub inbound_wait_seconds: HistogramSnapshot,
    /// Time from a verification job's submission to the pool to its checks' end (queue wait
    /// included; checks run on the connection task are not in it).
    pub verify_pool_seconds: HistogramSnapshot,
    /// Jobs per batch a verifier thread took off its queue.
    pub verify_batch_len: HistogramSnapshot,
    /// Envelopes written to a stream (ConnEstablish excluded).
    pub messages_sent: u64,
    /// Envelopes that passed ingress and reached the inbound queue.
    pub messages_received: u64,
    /// Envelopes dropped because a send lane was full (Fabric's `gossip_comm_overflow_count`).
    pub overflow_count: u64,
    /// Authenticated connections registered in the store (inbound and outbound).
    pub connections_opened: u64,
    /// Registered connections that ended.
    pub connections_closed: u64,
    /// Presumed-dead notices dropped because the channel was full.
    pub presumed_dead_dropped: u64,
    /// Identity-switch notices dropped because the channel was full.
    pub identity_switches_dropped: u64,
    /// Signature checks run on the connection task because the verifier pool's queue was full.
    pub verified_inline_pool_full: u64,
    /// Messages verified on the connection task because they were rare (no other verification
    /// running, the previous one started at least 10 ms earlier): handing a lone check to a pool
    /// thread costs two thread wake-ups, about as much CPU as the check itself.
    pub verified_inline_uncontended: u64,
    /// Signature checks skipped because the same key, bytes and signature passed before
    /// (ingress's `checks_skipped_verified`).
    pub checks_skipped_verified: u64,
    /// Bytes written to the sockets of gossip connections since start, inbound and outbound,
    /// handshakes included (TLS records when TLS is on; TCP/IP headers not counted).
    pub wire_bytes_sent: u64,
    /// Bytes read from the sockets of gossip connections since start (as `wire_bytes_sent`).
    pub wire_bytes_received: u64,
    /// Rejected envelopes by [`crate::ingress::Reject::reason`].
    pub rejects: BTreeMap<&'static str, u64>,
    /// Failed handshakes by [`super::HandshakeError::cause`], and server-side TLS handshakes that
    /// failed (`tls_rejected`: not TLS, no client certificate of a trusted TLS CA, closed midway)
    /// or timed out (`tls_timeout`).
    pub handshake_failures: BTreeMap<&'static str, u64>,
    /// Resources refused because a bound was reached, by reason: `first_frame_oversize` (a frame
    /// before the handshake announced more than [`crate::grpc::FIRST_FRAME_LEN_MAX_BYTES`]),
    /// `handshakes_full` (an accepted connection or stream found
    /// [`crate::bounds::HANDSHAKES_IN_FLIGHT_MAX`] handshakes running), `stream_tie_break_lost` (an
    /// authenticated inbound stream lost the simultaneous-dial tie-break and was closed),
    /// `pending_dial_full` (a send to a peer being dialled found its pending queue full),
    /// `pending_dial_peers_full` (a send to an unconnected peer found
    /// [`crate::bounds::PENDING_DIAL_PEERS_MAX`] peers being dialled), `streams_per_conn_at_bound`
    /// (a connection's `GossipStream`s reached [`crate::bounds::HTTP2_STREAMS_PER_CONN_MAX`]; HTTP/2
    /// holds back or refuses its further streams itself, uncounted one by one).
    pub refusals: BTreeMap<&'static str, u64>,
    /// Overflow drops per destination peer.
    pub overflow_by_peer: BTreeMap<PkiId, u64>,
    /// The identity store: identities held, evictions and purges by reason, refusals by reason
    /// (identities refused at the handshake count in `handshake_failures`, e.g.
    /// `identity_not_a_peer`; carried in messages, in `rejects`, e.g. `not_a_peer`).
    pub identities: IdentityStoreStats,
}

impl CommStats {
    /// Rejects counted under `reason`.
    pub fn rejects_of(&self, reason: &str) -> u64 {
        self.rejects.get(reason).copied().unwrap_or(0)
    }

    /// Refusals counted under `reason`.
    pub fn refusals_of(&self, reason: &str) -> u64 {
        self.refusals.get(reason).copied().unwrap_or(0)
    }

    /// Handshake failures counted under `cause`.
    pub fn handshake_failures_of(&self, cause: &str) -> u64 {
        self.handshake_failures.get(cause).copied().unwrap_or(0)
    }
}
