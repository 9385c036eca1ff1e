//! Per-connection send lanes: two bounded lock-free queues, control drained before data, a `Notify`
//! that wakes the connection's writer, and the connection's close signal.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use gossip_proto::gossip::Envelope;
use tokio::sync::Notify;

use crate::bounded::BoundedQueue;

/// Which lane an envelope goes on: the core's choice per transmit (blocks on data, the rest on
/// control, written first).
pub use gossip_core::event::Lane;

/// Why an envelope was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EnqueueError {
    /// The lane is full; the envelope was dropped.
    #[error("send lane full")]
    Full,
    /// The connection is closed; the envelope was dropped.
    #[error("connection closed")]
    Closed,
}

/// The send side of one connection.
#[derive(Debug)]
pub(crate) struct Lanes {
    control: BoundedQueue<Envelope>,
    data: BoundedQueue<Envelope>,
    /// Wakes the single writer (permit semantics: no lost wake-ups).
    writer_wake: Notify,
    /// Wakes blocked senders when room appears or the lanes close.
    space_or_close: Notify,
    /// Wakes what waits for the close alone (the connection's reader). Not `space_or_close`: that
    /// one fires on every envelope the writer takes, and woke the reader for nothing each time.
    close_signal: Notify,
    closed: AtomicBool,
    /// No more pushes; the writer takes what is queued, then the lanes close
    /// ([`Lanes::close_after_drain`]).
    draining: AtomicBool,
    /// The transport dropped the writer before the connection was closed locally.
    broken: AtomicBool,
    /// Senders between their closed check and their push: [`Lanes::quiesce`] waits for them, so
    /// an envelope pushed as the lanes close is not stranded where no writer takes it.
    pushers: AtomicUsize,
}

/// Control-lane length: a few control messages are in flight at a time.
pub(crate) const CONTROL_LANE_LEN_MAX: usize = 64;

impl Lanes {
    /// Lanes with a data lane of `data_len_max` envelopes (Fabric's `sendBuffSize`).
    pub(crate) fn new(data_len_max: usize) -> Self {
        Self {
            control: BoundedQueue::new(CONTROL_LANE_LEN_MAX),
            data: BoundedQueue::new(data_len_max),
            writer_wake: Notify::new(),
            space_or_close: Notify::new(),
            close_signal: Notify::new(),
            closed: AtomicBool::new(false),
            draining: AtomicBool::new(false),
            broken: AtomicBool::new(false),
            pushers: AtomicUsize::new(0),
        }
    }

    /// Queues without waiting. A full lane drops the envelope.
    pub(crate) fn try_push(&self, lane: Lane, envelope: Envelope) -> Result<(), EnqueueError> {
        // SeqCst with the flags' stores: a closer either sees this sender in `pushers` and waits
        // for its push, or this sender sees the flag and pushes nothing.
        self.pushers.fetch_add(1, Ordering::SeqCst);
        let pushed = if self.closed.load(Ordering::SeqCst) || self.draining.load(Ordering::SeqCst) {
            Err(EnqueueError::Closed)
        } else {
            let queue = match lane {
                Lane::Control => &self.control,
                Lane::Data => &self.data,
            };
            queue.push(envelope).map_err(|_| EnqueueError::Full)
        };
        self.pushers.fetch_sub(1, Ordering::SeqCst);
        pushed?;
        self.writer_wake.notify_one();
        Ok(())
    }

    /// Waits (spinning: a push takes nanoseconds) until no sender is between its closed check
    /// and its push. After a close or drain flag is set, what is queued then is all there will be.
    fn quiesce(&self) {
        let mut spins = 0u32;
        while self.pushers.load(Ordering::SeqCst) != 0 {
            spins += 1;
            if spins < 64 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
    }

    /// Queues, waiting for room or for the connection to close.
    pub(crate) async fn push_wait(
        &self,
        lane: Lane,
        envelope: Envelope,
    ) -> Result<(), EnqueueError> {
        loop {
            let notified = self.space_or_close.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            match self.try_push(lane, envelope.clone()) {
                Err(EnqueueError::Full) => {}
                other => return other,
            }
            notified.await;
        }
    }

    /// Pops the next queued envelope, control before data.
    fn pop_control_first(&self) -> Option<Envelope> {
        self.control.pop().or_else(|| self.data.pop())
    }

    /// The next envelope for the writer, control first; waits; `None` once closed, or once
    /// draining and empty (which closes the lanes).
    pub(crate) async fn next(&self) -> Option<Envelope> {
        loop {
            if self.is_closed() {
                return None;
            }
            if let Some(envelope) = self.pop_control_first() {
                self.space_or_close.notify_waiters();
                return Some(envelope);
            }
            if self.draining.load(Ordering::SeqCst) {
                self.quiesce();
                if let Some(envelope) = self.pop_control_first() {
                    return Some(envelope);
                }
                self.close();
                return None;
            }
            self.writer_wake.notified().await;
        }
    }

    /// The next envelope for the writer if one is queued, control first; never waits.
    pub(crate) fn try_next(&self) -> Option<Envelope> {
        if self.is_closed() {
            return None;
        }
        let envelope = self.pop_control_first()?;
        self.space_or_close.notify_waiters();
        Some(envelope)
    }

    /// Takes every envelope still queued, control first. Call after [`Lanes::close`]: the writer
    /// no longer pops, so what is taken here was never written.
    pub(crate) fn take_pending(&self) -> Vec<(Lane, Envelope)> {
        self.quiesce();
        let mut out = Vec::with_capacity(self.pending());
        while let Some(envelope) = self.control.pop() {
            out.push((Lane::Control, envelope));
        }
        while let Some(envelope) = self.data.pop() {
            out.push((Lane::Data, envelope));
        }
        self.space_or_close.notify_waiters();
        out
    }

    /// Closes the lanes: the writer ends, blocked senders return, `closed()` completes.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.writer_wake.notify_one();
        self.space_or_close.notify_waiters();
        self.close_signal.notify_waiters();
    }

    /// Takes no more envelopes, but lets the writer send what is queued; the lanes close once it
    /// has taken the last one (or at once when nothing is queued). Blocked senders return.
    pub(crate) fn close_after_drain(&self) {
        self.draining.store(true, Ordering::SeqCst);
        self.writer_wake.notify_one();
        self.space_or_close.notify_waiters();
    }

    /// Marks the transport as failed under us, then closes.
    pub(crate) fn mark_broken(&self) {
        if !self.is_closed() {
            self.broken.store(true, Ordering::Release);
        }
        self.close();
    }

    pub(crate) fn is_broken(&self) -> bool {
        self.broken.load(Ordering::Acquire)
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Envelopes still queued.
    pub(crate) fn pending(&self) -> usize {
        self.control.len() + self.data.len()
    }

    /// Completes once the lanes are closed.
    pub(crate) async fn closed(&self) {
        loop {
            let notified = self.close_signal.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_closed() {
                return;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn env(n: u8) -> Envelope {
        Envelope {
            payload: Bytes::from(vec![n]),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn control_is_drained_before_data_and_full_lane_drops() {
        let lanes = Lanes::new(1);
        assert_eq!(lanes.try_push(Lane::Data, env(1)), Ok(()));
        assert_eq!(lanes.try_push(Lane::Data, env(2)), Err(EnqueueError::Full));
        assert_eq!(lanes.try_push(Lane::Control, env(3)), Ok(()));
        assert_eq!(
            lanes.next().await.map(|e| e.payload),
            Some(Bytes::from(vec![3]))
        );
        assert_eq!(
            lanes.next().await.map(|e| e.payload),
            Some(Bytes::from(vec![1]))
        );
        lanes.close();
        assert!(lanes.next().await.is_none());
        assert_eq!(
            lanes.try_push(Lane::Data, env(4)),
            Err(EnqueueError::Closed)
        );
    }

    #[tokio::test]
    async fn draining_refuses_new_envelopes_and_closes_after_the_queued_ones() {
        let lanes = std::sync::Arc::new(Lanes::new(4));
        // A writer already waiting on empty lanes ends when draining starts.
        let idle = std::sync::Arc::new(Lanes::new(4));
        let waiting = tokio::spawn({
            let idle = idle.clone();
            async move { idle.next().await.is_none() }
        });
        tokio::task::yield_now().await;
        idle.close_after_drain();
        assert!(waiting.await.expect("writer task"), "ends with nothing");
        assert!(idle.is_closed());

        lanes.try_push(Lane::Data, env(1)).expect("room");
        lanes.try_push(Lane::Control, env(2)).expect("room");
        lanes.close_after_drain();
        assert_eq!(
            lanes.try_push(Lane::Data, env(3)),
            Err(EnqueueError::Closed)
        );
        assert!(!lanes.is_closed(), "closes only once drained");
        let closed = tokio::spawn({
            let lanes = lanes.clone();
            async move { lanes.closed().await }
        });
        let mut sent = Vec::new();
        while let Some(e) = lanes.next().await {
            sent.push(e.payload[0]);
        }
        assert_eq!(sent, vec![2, 1], "control first, nothing lost");
        assert!(lanes.is_closed() && !lanes.is_broken());
        closed.await.expect("close waiter completes");
    }

    /// Counts wake-ups.
    struct CountWakes(std::sync::atomic::AtomicUsize);

    impl std::task::Wake for CountWakes {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_close_waiter_wakes_on_close_only_not_on_every_envelope_taken() {
        use std::future::Future;
        use std::sync::Arc;
        use std::task::{Context, Poll, Waker};

        let lanes = Lanes::new(4);
        let wakes = Arc::new(CountWakes(std::sync::atomic::AtomicUsize::new(0)));
        let waker = Waker::from(wakes.clone());
        let mut cx = Context::from_waker(&waker);
        let closed = lanes.closed();
        let mut closed = std::pin::pin!(closed);
        assert!(closed.as_mut().poll(&mut cx).is_pending());
        for n in 0..3 {
            lanes.try_push(Lane::Data, env(n)).expect("room");
            assert!(lanes.try_next().is_some());
        }
        assert_eq!(
            wakes.0.load(Ordering::SeqCst),
            0,
            "taking envelopes woke it"
        );
        lanes.close();
        assert_eq!(wakes.0.load(Ordering::SeqCst), 1);
        assert_eq!(closed.as_mut().poll(&mut cx), Poll::Ready(()));
    }
}
