//! A bounded lock-free MPMC queue whose memory follows its occupancy, not its bound.
//!
//! crossbeam's `ArrayQueue` (and `crossbeam_channel::bounded`) allocate and touch every slot when
//! created: a node with an inbound queue of 4,096 messages and a 200-envelope send lane per
//! connection pays for all of them while idle. This queue is crossbeam's `SegQueue` (segments of
//! 31 slots, allocated as items arrive and freed as they leave) plus an atomic count that enforces
//! the bound: a push first reserves a place in the count, so the queue never holds more than
//! `len_max` items, even under concurrent pushes.

use std::sync::atomic::{AtomicUsize, Ordering};

use crossbeam_queue::SegQueue;

/// A count with a bound, for queues whose storage does not enforce one: a producer reserves a
/// place before it enqueues, and a consumer releases places as it takes items.
#[derive(Debug)]
pub struct LenBound {
    len: AtomicUsize,
    len_max: usize,
}

impl LenBound {
    /// A bound of `len_max` (at least one).
    pub fn new(len_max: usize) -> Self {
        Self {
            len: AtomicUsize::new(0),
            len_max: len_max.max(1),
        }
    }

    /// Reserves one place; `false` when `len_max` are taken.
    pub fn try_reserve(&self) -> bool {
        self.len
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |len| {
                (len < self.len_max).then_some(len + 1)
            })
            .is_ok()
    }

    /// Gives back `n` places.
    pub fn release(&self, n: usize) {
        self.len.fetch_sub(n, Ordering::AcqRel);
    }

    /// Places taken.
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Acquire)
    }

    /// Whether no place is taken.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bound.
    pub fn len_max(&self) -> usize {
        self.len_max
    }
}

/// A bounded MPMC queue; `push` hands the item back when `len_max` items are queued.
#[derive(Debug)]
pub struct BoundedQueue<T> {
    items: SegQueue<T>,
    /// Items queued plus pushes in progress that reserved a place.
    bound: LenBound,
}

impl<T> BoundedQueue<T> {
    /// A queue holding at most `len_max` items (at least one). Allocates nothing until used.
    pub fn new(len_max: usize) -> Self {
        Self {
            items: SegQueue::new(),
            bound: LenBound::new(len_max),
        }
    }

    /// Adds an item; gives it back when the queue is full.
    pub fn push(&self, item: T) -> Result<(), T> {
        if !self.bound.try_reserve() {
            return Err(item);
        }
        self.items.push(item);
        Ok(())
    }

    /// Takes the oldest item.
    pub fn pop(&self) -> Option<T> {
        let item = self.items.pop()?;
        self.bound.release(1);
        Some(item)
    }

    /// Items queued (pushes in progress included).
    pub fn len(&self) -> usize {
        self.bound.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.bound.is_empty()
    }

    /// The bound.
    pub fn len_max(&self) -> usize {
        self.bound.len_max()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn fifo_and_full_hands_back() {
        let q = BoundedQueue::new(2);
        assert_eq!(q.push(1), Ok(()));
        assert_eq!(q.push(2), Ok(()));
        assert_eq!(q.push(3), Err(3));
        assert_eq!(q.len(), 2);
        assert_eq!(q.pop(), Some(1));
        assert_eq!(q.push(4), Ok(()));
        assert_eq!(q.pop(), Some(2));
        assert_eq!(q.pop(), Some(4));
        assert_eq!(q.pop(), None);
        assert!(q.is_empty());
        assert_eq!(BoundedQueue::<u8>::new(0).len_max(), 1);
    }

    #[test]
    fn concurrent_pushes_never_exceed_the_bound_and_lose_nothing() {
        let q = Arc::new(BoundedQueue::new(100));
        let accepted: usize = (0..4)
            .map(|t| {
                let q = Arc::clone(&q);
                std::thread::spawn(move || {
                    (0..1_000).filter(|i| q.push(t * 1_000 + i).is_ok()).count()
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap_or(0))
            .sum();
        assert_eq!(
            accepted, 100,
            "exactly the bound is accepted while nothing pops"
        );
        let mut popped = 0;
        while q.pop().is_some() {
            popped += 1;
        }
        assert_eq!(popped, accepted);
    }

    #[test]
    fn producers_and_consumers_together_deliver_every_accepted_item() {
        let q = Arc::new(BoundedQueue::new(8));
        let producers: Vec<_> = (0..2)
            .map(|t| {
                let q = Arc::clone(&q);
                std::thread::spawn(move || {
                    let mut sent = 0u64;
                    for i in 0..20_000u64 {
                        let mut item = t * 1_000_000 + i;
                        loop {
                            match q.push(item) {
                                Ok(()) => break,
                                Err(back) => {
                                    item = back;
                                    std::thread::yield_now();
                                }
                            }
                        }
                        sent += item;
                    }
                    sent
                })
            })
            .collect();
        let mut got = 0u64;
        let mut count = 0;
        while count < 40_000 {
            assert!(q.len() <= 8);
            match q.pop() {
                Some(v) => {
                    got += v;
                    count += 1;
                }
                None => std::thread::yield_now(),
            }
        }
        let sent: u64 = producers.into_iter().map(|h| h.join().unwrap_or(0)).sum();
        assert_eq!(got, sent);
    }
}
