//! The one inbound queue: every connection reader pushes the messages that passed ingress here,
//! and the driver pops them, with no task in between. A full queue holds only the reader that is
//! pushing (back-pressure, as Fabric's per-connection buffer does); application subscribers are
//! served from the driver's fan-out, never from this queue, so a slow one cannot stall the core.

use std::sync::Arc;

use super::queue::AsyncQueue;
use crate::histogram::Histogram;
use crate::ingress::{ReceivedMessage, Verified};

/// A message in the inbound queue, stamped when its reader queued it.
pub(crate) struct Queued {
    at: std::time::Instant,
    message: Verified<ReceivedMessage>,
}

impl Queued {
    /// `message`, stamped now.
    pub(crate) fn now(message: Verified<ReceivedMessage>) -> Self {
        Self {
            at: crate::clock::stopwatch(),
            message,
        }
    }
}

/// The consumer's end of the inbound queue ([`super::Comm::inbound`]).
#[derive(Clone)]
pub struct Inbound {
    pub(crate) queue: Arc<AsyncQueue<Queued>>,
    /// How long taken messages waited, from their reader's push (the comm's
    /// `inbound_wait_seconds`).
    pub(crate) wait: Arc<Histogram>,
}

impl std::fmt::Debug for Inbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inbound")
            .field("queued", &self.queue.len())
            .finish()
    }
}

impl Inbound {
    /// The next message; `None` once the comm has stopped and the queue is drained.
    pub async fn recv(&self) -> Option<Verified<ReceivedMessage>> {
        self.queue.pop_wait().await.map(|q| self.taken(q))
    }

    /// The next message if one is queued.
    pub fn try_recv(&self) -> Option<Verified<ReceivedMessage>> {
        self.queue.try_pop().map(|q| self.taken(q))
    }

    fn taken(&self, queued: Queued) -> Verified<ReceivedMessage> {
        self.wait.observe_duration(queued.at.elapsed());
        queued.message
    }

    /// Messages queued now.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether no message is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
