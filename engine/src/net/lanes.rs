//! Per-connection send lanes: two bounded lock-free queues, control drained before data, a `Notify`
//! that wakes the connection's writer, and the connection's close signal.

use std::sync::atomic::{AtomicBool, Ordering};

use gossip_proto::gossip::Envelope;
use tokio::sync::Notify;

use crate::bounded::BoundedQueue;

/// Which lane an envelope goes on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lane {
    /// Small control messages, written before any queued data.
    Control,
    /// Everything else (gossip data, blocks, responses).
    Data,
}

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
    /// The transport dropped the writer before the connection was closed locally.
    broken: AtomicBool,
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
            broken: AtomicBool::new(false),
        }
    }

    /// Queues without waiting. A full lane drops the envelope.
    pub(crate) fn try_push(&self, lane: Lane, envelope: Envelope) -> Result<(), EnqueueError> {
        if self.is_closed() {
            return Err(EnqueueError::Closed);
        }
        let queue = match lane {
            Lane::Control => &self.control,
            Lane::Data => &self.data,
        };
        queue.push(envelope).map_err(|_| EnqueueError::Full)?;
        self.writer_wake.notify_one();
        Ok(())
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

    /// The next envelope for the writer, control first; waits; `None` once closed.
    pub(crate) async fn next(&self) -> Option<Envelope> {
        loop {
            if self.is_closed() {
                return None;
            }
            if let Some(envelope) = self.control.pop().or_else(|| self.data.pop()) {
                self.space_or_close.notify_waiters();
                return Some(envelope);
            }
            self.writer_wake.notified().await;
        }
    }

    /// The next envelope for the writer if one is queued, control first; never waits.
    pub(crate) fn try_next(&self) -> Option<Envelope> {
        if self.is_closed() {
            return None;
        }
        let envelope = self.control.pop().or_else(|| self.data.pop())?;
        self.space_or_close.notify_waiters();
        Some(envelope)
    }

    /// Takes every envelope still queued, control first. Call after [`Lanes::close`]: the writer
    /// no longer pops, so what is taken here was never written.
    pub(crate) fn take_pending(&self) -> Vec<(Lane, Envelope)> {
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
        self.closed.store(true, Ordering::Release);
        self.writer_wake.notify_one();
        self.space_or_close.notify_waiters();
        self.close_signal.notify_waiters();
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
