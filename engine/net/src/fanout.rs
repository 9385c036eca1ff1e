//! Fan-out to application subscribers, run by the driver: the node's events (Fabric's `Accept`
//! without pass-through, plus a plain event stream) and verified messages straight from comm
//! (`Accept` with pass-through). Every subscriber has a bounded queue; a full queue drops and
//! counts, so a slow subscriber never blocks the driver or the core.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use gossip_proto::gossip::gossip_message::{Content, Tag};
use gossip_proto::gossip::{DataMessage, GossipMessage};
use parking_lot::Mutex;
use tokio::sync::mpsc;

use crate::event::Event;
use crate::ingress::{ReceivedMessage, Verified};

/// Event and accept subscribers one gossip instance serves at once.
pub const SUBSCRIBERS_LEN_MAX: usize = 256;
/// Events queued per subscriber before new ones are dropped (and counted).
pub const SUBSCRIBER_QUEUE_LEN_MAX: usize = 4_096;

/// A filter over messages, as Fabric's `Accept` takes it.
pub type AcceptPredicate = Arc<dyn Fn(&GossipMessage) -> bool + Send + Sync>;

/// What an [`accept`](super::GossipHandle::accept) subscriber receives.
#[derive(Clone, Debug)]
pub enum Accepted {
    /// Delivered by the node (`pass_through = false`): a block in order ([`Event::Block`]) or a
    /// leadership message ([`Event::Leadership`]).
    Delivered(Event),
    /// A verified message straight from comm (`pass_through = true`).
    PassThrough(Box<Verified<ReceivedMessage>>),
}

enum Sink {
    Events(mpsc::Sender<Event>),
    Accept(AcceptPredicate, mpsc::Sender<Accepted>),
    PassThrough(AcceptPredicate, mpsc::Sender<Accepted>),
}

impl Sink {
    fn is_closed(&self) -> bool {
        match self {
            Sink::Events(tx) => tx.is_closed(),
            Sink::Accept(_, tx) | Sink::PassThrough(_, tx) => tx.is_closed(),
        }
    }
}

/// Why a subscription was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SubscribeError {
    /// [`SUBSCRIBERS_LEN_MAX`] subscribers are live.
    #[error("{max} subscribers already")]
    Full {
        /// The bound.
        max: usize,
    },
    /// The gossip instance is stopped.
    #[error("stopped")]
    Stopped,
}

/// The subscriber list, shared by the handle (subscribe) and the driver (publish).
#[derive(Default)]
pub(crate) struct Fanout {
    sinks: Mutex<Vec<Sink>>,
    /// Live pass-through sinks, so the driver skips the lock when there are none.
    pass_through_len: AtomicUsize,
    closed: AtomicBool,
    /// Events dropped because a subscriber's queue was full.
    pub(crate) dropped: AtomicU64,
    /// Pass-through messages dropped because a subscriber's queue was full.
    pub(crate) pass_through_dropped: AtomicU64,
}

impl std::fmt::Debug for Fanout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fanout")
            .field("subscribers", &self.sinks.lock().len())
            .finish_non_exhaustive()
    }
}

impl Fanout {
    fn add(&self, sink: Sink) -> Result<(), SubscribeError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(SubscribeError::Stopped);
        }
        let mut sinks = self.sinks.lock();
        self.retain_open(&mut sinks);
        if sinks.len() >= SUBSCRIBERS_LEN_MAX {
            return Err(SubscribeError::Full {
                max: SUBSCRIBERS_LEN_MAX,
            });
        }
        sinks.push(sink);
        self.count_pass_through(&sinks);
        Ok(())
    }

    fn retain_open(&self, sinks: &mut Vec<Sink>) {
        sinks.retain(|s| !s.is_closed());
        self.count_pass_through(sinks);
    }

    fn count_pass_through(&self, sinks: &[Sink]) {
        let len = sinks
            .iter()
            .filter(|s| matches!(s, Sink::PassThrough(..)))
            .count();
        self.pass_through_len.store(len, Ordering::Release);
    }

    /// A new subscriber to every event.
    pub(crate) fn subscribe_events(&self) -> Result<mpsc::Receiver<Event>, SubscribeError> {
        let (tx, rx) = mpsc::channel(SUBSCRIBER_QUEUE_LEN_MAX);
        self.add(Sink::Events(tx)).map(|()| rx)
    }

    /// A new subscriber to delivered messages matching `predicate`.
    pub(crate) fn subscribe_accept(
        &self,
        predicate: AcceptPredicate,
    ) -> Result<mpsc::Receiver<Accepted>, SubscribeError> {
        let (tx, rx) = mpsc::channel(SUBSCRIBER_QUEUE_LEN_MAX);
        self.add(Sink::Accept(predicate, tx)).map(|()| rx)
    }

    /// A new subscriber to verified messages from comm matching `predicate`.
    pub(crate) fn subscribe_pass_through(
        &self,
        predicate: AcceptPredicate,
    ) -> Result<mpsc::Receiver<Accepted>, SubscribeError> {
        let (tx, rx) = mpsc::channel(SUBSCRIBER_QUEUE_LEN_MAX);
        self.add(Sink::PassThrough(predicate, tx)).map(|()| rx)
    }

    /// Offers a verified message from comm to every pass-through subscriber; never waits.
    pub(crate) fn offer(&self, message: &Verified<ReceivedMessage>) {
        if self.pass_through_len.load(Ordering::Acquire) == 0 {
            return;
        }
        let mut sinks = self.sinks.lock();
        let mut saw_closed = false;
        for sink in sinks.iter() {
            let Sink::PassThrough(predicate, tx) = sink else {
                continue;
            };
            if !predicate(&message.message) {
                continue;
            }
            match tx.try_send(Accepted::PassThrough(Box::new(message.clone()))) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    self.pass_through_dropped.fetch_add(1, Ordering::Relaxed);
                }
                Err(mpsc::error::TrySendError::Closed(_)) => saw_closed = true,
            }
        }
        if saw_closed {
            self.retain_open(&mut sinks);
        }
    }

    /// Offers `event` to every subscriber; never waits.
    pub(crate) fn publish(&self, event: &Event) {
        let message = message_of(event);
        let mut sinks = self.sinks.lock();
        let mut saw_closed = false;
        for sink in sinks.iter() {
            let sent = match sink {
                Sink::Events(tx) => tx.try_send(event.clone()).map_err(is_full),
                Sink::Accept(predicate, tx) => match &message {
                    Some(m) if predicate(m) => tx
                        .try_send(Accepted::Delivered(event.clone()))
                        .map_err(is_full),
                    _ => Ok(()),
                },
                Sink::PassThrough(..) => Ok(()),
            };
            match sent {
                Ok(()) => {}
                Err(true) => {
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                }
                Err(false) => saw_closed = true,
            }
        }
        if saw_closed {
            self.retain_open(&mut sinks);
        }
    }

    /// Ends every subscription (receivers see the end after their queued events) and refuses new
    /// ones.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        let mut sinks = self.sinks.lock();
        sinks.clear();
        self.count_pass_through(&sinks);
    }
}

/// `true` when the queue was full (a drop), `false` when the receiver is gone.
fn is_full<T>(e: mpsc::error::TrySendError<T>) -> bool {
    matches!(e, mpsc::error::TrySendError::Full(_))
}

/// The message form of an event that Fabric's `Accept` would deliver: blocks as data messages,
/// leadership messages as themselves. Other events have none.
pub fn message_of(event: &Event) -> Option<GossipMessage> {
    let (channel, content) = match event {
        Event::Block {
            channel, payload, ..
        } => (
            channel,
            Content::DataMsg(DataMessage {
                payload: Some(payload.clone()),
            }),
        ),
        Event::Leadership {
            channel, message, ..
        } => (channel, Content::LeadershipMsg(message.clone())),
        _ => return None,
    };
    Some(GossipMessage {
        nonce: 0,
        channel: channel.clone(),
        tag: Tag::ChanAndOrg as i32,
        content: Some(content),
    })
}
