//! The demux (Fabric's `ChannelDeMultiplexer` and `Accept`): one task drains the inbound queue and
//! offers each message to every subscriber whose predicate matches. A full subscriber makes the
//! demux wait (back-pressure); a dropped subscription is removed.

use std::sync::Arc;

use parking_lot::Mutex;

use super::queue::AsyncQueue;
use crate::ingress::{ReceivedMessage, Verified};

/// A subscriber's filter.
pub type Predicate = Box<dyn Fn(&ReceivedMessage) -> bool + Send + Sync>;

struct SubInner {
    predicate: Predicate,
    queue: AsyncQueue<Verified<ReceivedMessage>>,
}

/// Messages matching one predicate. Dropping it unsubscribes.
pub struct Subscription {
    inner: Arc<SubInner>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("queued", &self.inner.queue.len())
            .finish()
    }
}

impl Subscription {
    /// The next message; `None` once the comm has stopped and the queue is drained.
    pub async fn recv(&self) -> Option<Verified<ReceivedMessage>> {
        self.inner.queue.pop_wait().await
    }

    /// The next message if one is queued.
    pub fn try_recv(&self) -> Option<Verified<ReceivedMessage>> {
        self.inner.queue.try_pop()
    }

    /// Messages queued now.
    pub fn len(&self) -> usize {
        self.inner.queue.len()
    }

    /// Whether no message is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.inner.queue.close();
    }
}

/// The subscriber list.
#[derive(Default)]
pub(crate) struct Demux {
    subs: Mutex<Vec<Arc<SubInner>>>,
}

impl std::fmt::Debug for Demux {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Demux")
            .field("subscribers", &self.subs.lock().len())
            .finish()
    }
}

impl Demux {
    /// Adds a subscriber with a queue of `queue_len_max` messages.
    pub(crate) fn subscribe(&self, predicate: Predicate, queue_len_max: usize) -> Subscription {
        let inner = Arc::new(SubInner {
            predicate,
            queue: AsyncQueue::new(queue_len_max),
        });
        self.subs.lock().push(inner.clone());
        Subscription { inner }
    }

    /// Drains `inbound` until it is closed and empty, then closes every subscription.
    pub(crate) async fn run(&self, inbound: &AsyncQueue<Verified<ReceivedMessage>>) {
        while let Some(message) = inbound.pop_wait().await {
            let subs: Vec<_> = self.subs.lock().clone();
            let mut saw_closed = false;
            for sub in subs {
                if sub.queue.is_closed() {
                    saw_closed = true;
                    continue;
                }
                if (sub.predicate)(&message) && sub.queue.push_wait(message.clone()).await.is_err()
                {
                    saw_closed = true;
                }
            }
            if saw_closed {
                self.subs.lock().retain(|s| !s.queue.is_closed());
            }
        }
        self.close_all();
    }

    /// Closes every subscription (their queued messages stay readable).
    pub(crate) fn close_all(&self) {
        for sub in self.subs.lock().drain(..) {
            sub.queue.close();
        }
    }
}
