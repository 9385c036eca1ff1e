//! One authenticated connection: its send lanes (drained by the writer stream) and its reader task,
//! which runs every received envelope through ingress and onto the shared inbound queue.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use gossip_proto::gossip::Envelope;
use tonic::transport::Channel;

use super::clock;
use super::comm::Shared;
use super::grpc::{FrameError, FrameReader, encode_batch, encode_frame, framed_len};
use super::handshake::RemotePeerInfo;
use super::lanes::Lanes;
use super::stats::Stats;
use crate::crypto::SignatureError;
use crate::ingress::{Prechecked, Reject};
use crate::pool::{PoolFull, VerifyJob};
use crate::types::PkiId;

/// Who opened the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// The remote dialled us.
    Inbound,
    /// We dialled the remote.
    Outbound,
}

/// A registered, authenticated connection.
#[derive(Debug)]
pub(crate) struct Conn {
    /// Unique per comm instance, so a stale reader never removes a newer connection.
    pub(crate) id: u64,
    pub(crate) remote: RemotePeerInfo,
    pub(crate) direction: Direction,
    pub(crate) lanes: Arc<Lanes>,
    /// Replaced by another connection to the same peer: nothing more is sent on it, but its reader
    /// goes on until the remote ends the stream (a half-close), so what the remote wrote before it
    /// switched is not lost.
    retired: AtomicBool,
    /// Keeps a dialled transport open for as long as the connection lives.
    _channel: Option<Channel>,
}

impl Conn {
    pub(crate) fn new(
        id: u64,
        remote: RemotePeerInfo,
        direction: Direction,
        lanes: Arc<Lanes>,
        channel: Option<Channel>,
    ) -> Self {
        Self {
            id,
            remote,
            direction,
            lanes,
            retired: AtomicBool::new(false),
            _channel: channel,
        }
    }

    /// Retires the connection (see `retired`): closes its lanes, so the writer ends our side of
    /// the stream, and lets the reader drain the remote's side.
    pub(crate) fn retire(&self) {
        self.retired.store(true, Ordering::Release);
        self.lanes.close();
    }

    pub(crate) fn is_retired(&self) -> bool {
        self.retired.load(Ordering::Acquire)
    }

    pub(crate) fn pki_id(&self) -> PkiId {
        self.remote.pki_id
    }

    /// Closes the connection: the writer ends the stream, the reader stops.
    pub(crate) fn close(&self) {
        self.lanes.close();
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.lanes.is_closed()
    }
}

/// Marks the lanes broken if the transport drops the writer stream before a local close.
struct WriterGuard {
    lanes: Arc<Lanes>,
    shared: Arc<Shared>,
}

impl Drop for WriterGuard {
    fn drop(&mut self) {
        self.lanes.mark_broken();
    }
}

/// A writer batch stops growing at this many framed bytes (tonic's codec yields at 32 KiB too).
const WRITE_BATCH_LEN_MAX_BYTES: usize = 32 * 1024;

/// The outbound message stream of a connection, as gRPC frames: our ConnEstablish first, then the
/// lanes (control before data) until the connection closes. What is queued when the writer runs
/// goes out as one batch of up to [`WRITE_BATCH_LEN_MAX_BYTES`] (more when one envelope is
/// larger): its small messages in one chunk, so a burst costs one HTTP/2 frame and one write, and
/// each block payload as its own chunk, not copied ([`encode_batch`]). An envelope over
/// `send_message_len_max` is not sent (counted as the `send_oversize` reject); the connection
/// stays up.
pub(crate) fn writer_stream(
    first: Envelope,
    lanes: Arc<Lanes>,
    shared: Arc<Shared>,
) -> impl Stream<Item = Bytes> + Send + 'static {
    let guard = WriterGuard { lanes, shared };
    let batches = futures_util::stream::unfold((Some(first), guard), |(first, guard)| async move {
        if let Some(first) = first {
            return Some((vec![encode_frame(&first)], (None, guard)));
        }
        let mut batch = Vec::new();
        let mut batch_len = 0;
        while batch.is_empty() {
            let mut next = Some(guard.lanes.next().await?);
            while let Some(envelope) = next.take() {
                let len = framed_len(&envelope);
                if len > guard.shared.config.send_message_len_max {
                    guard.shared.stats.reject("send_oversize");
                } else {
                    Stats::incr(&guard.shared.stats.messages_sent);
                    batch_len += len;
                    batch.push(envelope);
                }
                if batch_len < WRITE_BATCH_LEN_MAX_BYTES {
                    next = guard.lanes.try_next();
                }
            }
        }
        Some((encode_batch(&batch), (None, guard)))
    });
    batches.flat_map(futures_util::stream::iter)
}

/// Runs a message's signature checks: inline when the comm has no verifier pool, or when the
/// message is rare (no other message is being verified and the previous verification started at
/// least [`VERIFY_INLINE_GAP_NS`] earlier); otherwise on the pool when it has room, inline when it
/// is full. Unsigned messages have no checks and never leave the connection task.
///
/// A rare message goes inline because handing it to a pool thread and back costs two thread
/// wake-ups, about as much CPU as an ECDSA verification: at idle (alive and StateInfo traffic
/// only) that hand-off was a third of a node's CPU. Frequent messages go to the pool, so that
/// under load ECDSA spreads over its threads and never holds up an IO thread.
pub(crate) async fn verify_checks(
    shared: &Shared,
    prechecked: &Prechecked,
) -> Result<(), SignatureError> {
    if prechecked.checks().is_empty() {
        return Ok(());
    }
    let Some(pool) = &shared.verifier_pool else {
        return prechecked.run_checks();
    };
    let verifying = Verifying::enter(&shared.verifying_count);
    let now_ns = clock::now().as_nanos();
    let last_ns = shared
        .verify_started_last_ns
        .swap(now_ns, Ordering::Relaxed);
    let rare = now_ns.saturating_sub(last_ns) >= VERIFY_INLINE_GAP_NS;
    if verifying.alone && rare {
        Stats::incr(&shared.stats.verified_inline_uncontended);
        return prechecked.run_checks();
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job = VerifyJob::new(prechecked.checks().to_vec(), move |outcome| {
        // The reader may have gone (connection closed): nothing to deliver then.
        let _ = tx.send(outcome);
    });
    match pool.submit(job) {
        Ok(()) => match rx.await {
            Ok(outcome) => outcome,
            // The pool dropped the job without running it (shutting down): verify here.
            Err(_) => prechecked.run_checks(),
        },
        Err(PoolFull(_)) => {
            Stats::incr(&shared.stats.verified_inline_pool_full);
            prechecked.run_checks()
        }
    }
}

/// A verification starting this long after the previous one (fewer than 100 a second) runs
/// inline when nothing else is being verified; more frequent ones go to the pool, so that under
/// load ECDSA never holds up an IO thread.
const VERIFY_INLINE_GAP_NS: u64 = 10_000_000;

/// Counts a message as being verified while it lives; `alone` when no other message was.
struct Verifying<'a> {
    count: &'a AtomicUsize,
    alone: bool,
}

impl<'a> Verifying<'a> {
    fn enter(count: &'a AtomicUsize) -> Self {
        let before = count.fetch_add(1, Ordering::AcqRel);
        Self {
            count,
            alone: before == 0,
        }
    }
}

impl Drop for Verifying<'_> {
    fn drop(&mut self) {
        self.count.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Why a reader stopped.
#[derive(Debug)]
enum ReaderEnd {
    ClosedLocally,
    RemoteEnded,
    StreamError(FrameError),
    Rejected(Reject),
    Oversize { len_bytes: usize },
    InboundClosed,
}

/// Reads envelopes until the stream ends, the connection closes, or an envelope is rejected with
/// `closes_connection`. Then closes and unregisters the connection.
pub(crate) async fn run_reader(shared: Arc<Shared>, conn: Arc<Conn>, mut inbound: FrameReader) {
    // One future for the whole stream: made anew per message it registered and unregistered a
    // waiter (two lock round trips) for every envelope read.
    let ended = reading_ended(&shared, &conn);
    tokio::pin!(ended);
    let end = loop {
        let next = tokio::select! {
            biased;
            () = &mut ended => break ReaderEnd::ClosedLocally,
            next = inbound.message::<Envelope>() => next,
        };
        match next {
            Ok(Some(envelope)) => {
                if let Err(end) = handle_envelope(&shared, &conn, envelope).await {
                    break end;
                }
            }
            Ok(None) => break ReaderEnd::RemoteEnded,
            Err(FrameError::Oversize { len_bytes }) => {
                shared.stats.reject("oversize");
                break ReaderEnd::Oversize { len_bytes };
            }
            Err(e) => {
                if let Some(reason) = e.reject_reason() {
                    shared.stats.reject(reason);
                }
                break ReaderEnd::StreamError(e);
            }
        }
    };
    if matches!(end, ReaderEnd::RemoteEnded) {
        drain_our_half(&shared, &conn).await;
    }
    let pending = conn.lanes.pending();
    let closed_locally = conn.is_closed() && !conn.lanes.is_broken();
    conn.close();
    shared.store.remove_if(&conn.pki_id(), conn.id);
    Stats::incr(&shared.stats.connections_closed);
    // A peer that sends bad envelopes and redials does so thousands of times a minute: the
    // warning about it is rate-limited (every one is counted in `rejects`).
    let warn = || {
        let key = crate::warn_limit::WarnKey::peer(&conn.pki_id());
        shared.warn_limiter.allow(key, crate::clock::now())
    };
    match &end {
        ReaderEnd::Rejected(r) if warn() => {
            tracing::warn!(peer = %conn.pki_id(), reason = r.reason(), error = %r, "closing connection: rejected envelope (further warnings about this peer within a minute are not logged)")
        }
        ReaderEnd::Oversize { len_bytes } if warn() => {
            tracing::warn!(peer = %conn.pki_id(), len_bytes, "closing connection: envelope over the size limit (further warnings about this peer within a minute are not logged)")
        }
        ReaderEnd::Rejected(_) | ReaderEnd::Oversize { .. } => {}
        ReaderEnd::StreamError(error) => {
            tracing::debug!(peer = %conn.pki_id(), direction = ?conn.direction, %error, "connection stream failed")
        }
        other => {
            tracing::debug!(peer = %conn.pki_id(), direction = ?conn.direction, end = ?other, "connection ended")
        }
    }
    // Envelopes still queued when the transport failed under us are failed sends: Fabric's writer
    // marks such a peer presumed dead.
    if !closed_locally && pending > 0 && !matches!(end, ReaderEnd::ClosedLocally) {
        tracing::warn!(peer = %conn.pki_id(), pending, "peer isn't responsive");
        shared.presumed_dead(conn.pki_id());
    }
}

/// The remote ended its half of the stream: it retired this connection (for a reconnect, or for
/// its own dial in the simultaneous-dial tie-break) or it is leaving. Its reader goes on until we
/// end our half, so what we queued before we learned of it still goes out there rather than being
/// lost: the connection leaves the store (new sends find the replacement, or dial), takes no more
/// envelopes, and the writer sends the rest and ends our half. Bounded by `conn_timeout`; what a
/// remote that stopped reading leaves queued counts as a failed send.
async fn drain_our_half(shared: &Shared, conn: &Conn) {
    if conn.is_closed() || conn.lanes.pending() == 0 {
        return;
    }
    tracing::debug!(peer = %conn.pki_id(), pending = conn.lanes.pending(), "remote ended its half: sending what was queued on ours");
    shared.store.remove_if(&conn.pki_id(), conn.id);
    conn.lanes.close_after_drain();
    let _ = tokio::time::timeout(shared.config.conn_timeout, conn.lanes.closed()).await;
}

async fn handle_envelope(
    shared: &Shared,
    conn: &Conn,
    envelope: Envelope,
) -> Result<(), ReaderEnd> {
    let now = clock::now();
    let prechecked = match shared.ingress.precheck(conn.pki_id(), envelope, now) {
        Ok(p) => p,
        Err(reject) => return on_reject(shared, conn, reject),
    };
    let checks = verify_checks(shared, &prechecked).await;
    let verified = match shared.ingress.accept(prechecked, checks, now) {
        Ok(v) => v,
        Err(reject) => return on_reject(shared, conn, reject),
    };
    // Counted before the push: the driver may take the message (and anyone look at the
    // counters) before this task runs again.
    Stats::incr(&shared.stats.messages_received);
    // A full inbound queue holds this connection's reader only (back-pressure, as Fabric's
    // per-connection buffer).
    tokio::select! {
        biased;
        () = reading_ended(shared, conn) => Err(ReaderEnd::ClosedLocally),
        pushed = shared.inbound.push_wait(crate::inbound::Queued::now(verified)) => match pushed {
            Ok(()) => Ok(()),
            Err(_) => Err(ReaderEnd::InboundClosed),
        },
    }
}

/// Completes when the reader should stop waiting: at once when the connection is closed; when it
/// is only retired (half-closed, see `Conn::retire`), after `conn_timeout` without the remote
/// ending it, or at once when the comm stops. The reader's own wait spans the whole stream, so a
/// retired connection is read for at most `conn_timeout` however long the remote keeps sending
/// (a remote cannot hold a retired stream open); a push waiting on the inbound queue starts its
/// own.
async fn reading_ended(shared: &Shared, conn: &Conn) {
    conn.lanes.closed().await;
    if conn.is_retired() && !shared.is_stopped() {
        tokio::time::sleep(shared.config.conn_timeout).await;
    }
}

fn on_reject(shared: &Shared, conn: &Conn, reject: Reject) -> Result<(), ReaderEnd> {
    shared.stats.reject(reject.reason());
    if reject.closes_connection() {
        return Err(ReaderEnd::Rejected(reject));
    }
    tracing::debug!(peer = %conn.pki_id(), reason = reject.reason(), error = %reject, "dropped envelope");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verification_is_alone_only_when_none_overlaps_it() {
        let count = AtomicUsize::new(0);
        let first = Verifying::enter(&count);
        assert!(first.alone);
        let second = Verifying::enter(&count);
        assert!(!second.alone, "overlaps the first: goes to the pool");
        drop(first);
        let third = Verifying::enter(&count);
        assert!(!third.alone, "the second still runs");
        drop(second);
        drop(third);
        assert_eq!(count.load(Ordering::Acquire), 0);
        assert!(Verifying::enter(&count).alone);
    }
}
