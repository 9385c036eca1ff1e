//! A bounded lock-free MPMC queue with async waits on both ends: [`BoundedQueue`] (its memory
//! follows its occupancy) plus two tokio `Notify`s. Used for the inbound queue (all connections to
//! the demux) and for each subscriber's queue.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::bounded::BoundedQueue;
use tokio::sync::Notify;

/// A bounded queue; `push_wait` waits for room (back-pressure), `pop_wait` waits for an item.
#[derive(Debug)]
pub(crate) struct AsyncQueue<T> {
    items: BoundedQueue<T>,
    not_empty: Notify,
    not_full: Notify,
    closed: AtomicBool,
}

impl<T> AsyncQueue<T> {
    /// A queue holding at most `len_max` items (at least one).
    pub(crate) fn new(len_max: usize) -> Self {
        Self {
            items: BoundedQueue::new(len_max),
            not_empty: Notify::new(),
            not_full: Notify::new(),
            closed: AtomicBool::new(false),
        }
    }

    /// Adds an item without waiting; gives it back when full or closed.
    pub(crate) fn try_push(&self, item: T) -> Result<(), T> {
        if self.is_closed() {
            return Err(item);
        }
        self.items.push(item)?;
        self.not_empty.notify_waiters();
        Ok(())
    }

    /// Adds an item, waiting for room; gives it back if the queue is closed first.
    pub(crate) async fn push_wait(&self, mut item: T) -> Result<(), T> {
        loop {
            let notified = self.not_full.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            match self.try_push(item) {
                Ok(()) => return Ok(()),
                Err(back) if self.is_closed() => return Err(back),
                Err(back) => item = back,
            }
            notified.await;
        }
    }

    /// Takes an item without waiting.
    pub(crate) fn try_pop(&self) -> Option<T> {
        let item = self.items.pop()?;
        self.not_full.notify_waiters();
        Some(item)
    }

    /// Takes an item, waiting for one; `None` once the queue is closed and empty.
    pub(crate) async fn pop_wait(&self) -> Option<T> {
        loop {
            let notified = self.not_empty.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(item) = self.try_pop() {
                return Some(item);
            }
            if self.is_closed() {
                return None;
            }
            notified.await;
        }
    }

    /// Refuses further pushes and wakes every waiter; queued items can still be popped.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.not_empty.notify_waiters();
        self.not_full.notify_waiters();
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn push_waits_for_room_and_close_releases_waiters() {
        let q = std::sync::Arc::new(AsyncQueue::new(1));
        assert!(q.try_push(1).is_ok());
        assert_eq!(q.try_push(2), Err(2));
        let q2 = q.clone();
        let waiter = tokio::spawn(async move { q2.push_wait(3).await });
        assert_eq!(q.pop_wait().await, Some(1));
        assert_eq!(waiter.await.ok(), Some(Ok(())));
        assert_eq!(q.pop_wait().await, Some(3));
        q.close();
        assert_eq!(q.pop_wait().await, None);
        assert_eq!(q.push_wait(4).await, Err(4));
    }
}
