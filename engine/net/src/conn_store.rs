//! The connection store: at most one connection per PKI-ID, sharded to keep lock hold times short,
//! with a per-destination async lock so concurrent sends to a new peer dial exactly once.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use gossip_proto::gossip::Envelope;
use parking_lot::Mutex;

use super::bounds::PENDING_DIAL_PEERS_MAX;
use super::conn::{Conn, Direction};
use super::lanes::Lane;
use crate::types::PkiId;

/// Number of shards; PKI-IDs are SHA-256 outputs, so the first byte spreads evenly.
const SHARD_COUNT: usize = 16;

#[derive(Debug, Default)]
struct Shard {
    conns: HashMap<PkiId, Arc<Conn>>,
    dial_locks: HashMap<PkiId, Arc<tokio::sync::Mutex<()>>>,
    /// Envelopes for peers with no connection, waiting for the one dial that each has running.
    pending: HashMap<PkiId, Vec<(Lane, Envelope)>>,
}

/// The outcome of [`ConnStore::queue_pending`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum PendingQueued {
    /// The first envelope for this peer: the caller starts its dial.
    DialNow,
    /// Queued behind a dial already running.
    Queued,
    /// The peer's pending queue is full: dropped.
    Full,
    /// [`PENDING_DIAL_PEERS_MAX`] peers are being dialled: dropped.
    PeersFull,
}

/// The outcome of [`ConnStore::register`].
#[derive(Debug)]
pub(crate) enum Registration {
    /// The new connection is registered; the caller closes the one it replaced, if any.
    Registered {
        /// The connection it replaced.
        replaced: Option<Arc<Conn>>,
    },
    /// The registered connection wins the tie-break: the caller closes the new one and uses this.
    KeptExisting(Arc<Conn>),
}

/// Envelopes waiting to be written ([`ConnStore::queued_sends`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct QueuedSends {
    /// In connections' send lanes.
    pub(crate) lanes: usize,
    /// Waiting for a dial to end.
    pub(crate) pending_dial: usize,
}

/// Connections by remote PKI-ID.
#[derive(Debug)]
pub(crate) struct ConnStore {
    shards: Vec<Mutex<Shard>>,
    /// Peers with a pending queue, over every shard.
    pending_peers_len: AtomicUsize,
}

impl Default for ConnStore {
    fn default() -> Self {
        Self {
            shards: (0..SHARD_COUNT)
                .map(|_| Mutex::new(Shard::default()))
                .collect(),
            pending_peers_len: AtomicUsize::new(0),
        }
    }
}

impl ConnStore {
    fn shard(&self, pki_id: &PkiId) -> &Mutex<Shard> {
        &self.shards[usize::from(pki_id.0[0]) % SHARD_COUNT]
    }

    /// The open connection to `pki_id`, if any.
    pub(crate) fn get(&self, pki_id: &PkiId) -> Option<Arc<Conn>> {
        self.shard(pki_id)
            .lock()
            .conns
            .get(pki_id)
            .filter(|c| !c.is_closed())
            .cloned()
    }

    /// Registers `conn`, returning the connection it replaced (the caller closes it).
    pub(crate) fn insert_replace(&self, conn: Arc<Conn>) -> Option<Arc<Conn>> {
        self.shard(&conn.pki_id())
            .lock()
            .conns
            .insert(conn.pki_id(), conn)
    }

    /// Registers `conn` (just authenticated, either direction) unless the open connection already
    /// registered for that peer wins the simultaneous-dial tie-break; see [`Registration`].
    ///
    /// Two peers that dial each other at the same moment each end up with an inbound and an
    /// outbound connection. If each kept the one it saw last, both would close the connection the
    /// other kept, possibly over and over. Both sides instead keep the connection dialled by the
    /// peer with the lower PKI-ID, which they compute alike. A connection meeting one of the same
    /// direction replaces it (a peer that reconnects: Fabric's "inbound replaces existing").
    pub(crate) fn register(&self, conn: Arc<Conn>, local: PkiId) -> Registration {
        let remote = conn.pki_id();
        let mut shard = self.shard(&remote).lock();
        if let Some(existing) = shard.conns.get(&remote).filter(|c| !c.is_closed())
            && existing.direction != conn.direction
        {
            let outbound_wins = local < remote;
            if (existing.direction == Direction::Outbound) == outbound_wins {
                return Registration::KeptExisting(existing.clone());
            }
        }
        Registration::Registered {
            replaced: shard.conns.insert(remote, conn),
        }
    }

    /// Unregisters the connection with id `conn_id` if it is still the one registered.
    pub(crate) fn remove_if(&self, pki_id: &PkiId, conn_id: u64) {
        let mut shard = self.shard(pki_id).lock();
        if shard.conns.get(pki_id).is_some_and(|c| c.id == conn_id) {
            shard.conns.remove(pki_id);
        }
    }

    /// Unregisters and returns the connection to `pki_id`.
    pub(crate) fn remove(&self, pki_id: &PkiId) -> Option<Arc<Conn>> {
        self.shard(pki_id).lock().conns.remove(pki_id)
    }

    /// The dial lock of a destination.
    pub(crate) fn dial_lock(&self, pki_id: &PkiId) -> Arc<tokio::sync::Mutex<()>> {
        self.shard(pki_id)
            .lock()
            .dial_locks
            .entry(*pki_id)
            .or_default()
            .clone()
    }

    /// Drops the dial lock entry once nobody else holds or waits on it.
    pub(crate) fn release_dial_lock(&self, pki_id: &PkiId, lock: Arc<tokio::sync::Mutex<()>>) {
        let mut shard = self.shard(pki_id).lock();
        // Two references: the map's and `lock`.
        if Arc::strong_count(&lock) <= 2 {
            shard.dial_locks.remove(pki_id);
        }
    }

    /// Queues `envelope` for `pki_id`, which has no connection, until its dial ends; at most
    /// `per_peer_len_max` envelopes per peer and [`PENDING_DIAL_PEERS_MAX`] peers.
    pub(crate) fn queue_pending(
        &self,
        pki_id: &PkiId,
        lane: Lane,
        envelope: Envelope,
        per_peer_len_max: usize,
    ) -> PendingQueued {
        let mut shard = self.shard(pki_id).lock();
        if let Some(queue) = shard.pending.get_mut(pki_id) {
            if queue.len() >= per_peer_len_max {
                return PendingQueued::Full;
            }
            queue.push((lane, envelope));
            return PendingQueued::Queued;
        }
        let taken = self
            .pending_peers_len
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < PENDING_DIAL_PEERS_MAX).then_some(n + 1)
            });
        if taken.is_err() {
            return PendingQueued::PeersFull;
        }
        shard.pending.insert(*pki_id, vec![(lane, envelope)]);
        PendingQueued::DialNow
    }

    /// Takes what was queued for `pki_id` while it was dialled.
    pub(crate) fn take_pending(&self, pki_id: &PkiId) -> Vec<(Lane, Envelope)> {
        let taken = self.shard(pki_id).lock().pending.remove(pki_id);
        if taken.is_some() {
            self.pending_peers_len.fetch_sub(1, Ordering::AcqRel);
        }
        taken.unwrap_or_default()
    }

    /// PKI-IDs of every open connection.
    pub(crate) fn peers(&self) -> Vec<PkiId> {
        self.shards
            .iter()
            .flat_map(|s| {
                s.lock()
                    .conns
                    .values()
                    .filter(|c| !c.is_closed())
                    .map(|c| c.pki_id())
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// Envelopes queued now: in the send lanes of every connection, and waiting for a dial.
    pub(crate) fn queued_sends(&self) -> QueuedSends {
        let mut queued = QueuedSends::default();
        for shard in &self.shards {
            let shard = shard.lock();
            queued.lanes += shard
                .conns
                .values()
                .map(|c| c.lanes.pending())
                .sum::<usize>();
            queued.pending_dial += shard.pending.values().map(Vec::len).sum::<usize>();
        }
        queued
    }

    /// Unregisters and returns every connection.
    pub(crate) fn drain(&self) -> Vec<Arc<Conn>> {
        self.shards
            .iter()
            .flat_map(|s| s.lock().conns.drain().map(|(_, c)| c).collect::<Vec<_>>())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(n: usize) -> PkiId {
        let mut id = [0u8; 32];
        id[..8].copy_from_slice(&(n as u64).to_be_bytes());
        id[0] = (n % 251) as u8;
        PkiId(id)
    }

    #[test]
    fn pending_sends_are_bounded_per_peer_and_in_peers() {
        let store = ConnStore::default();
        let queue = |n: usize| store.queue_pending(&peer(n), Lane::Data, Envelope::default(), 3);
        assert_eq!(queue(0), PendingQueued::DialNow);
        assert_eq!(queue(0), PendingQueued::Queued);
        assert_eq!(queue(0), PendingQueued::Queued);
        assert_eq!(queue(0), PendingQueued::Full, "three per peer");
        for n in 1..PENDING_DIAL_PEERS_MAX {
            assert_eq!(queue(n), PendingQueued::DialNow);
        }
        assert_eq!(queue(PENDING_DIAL_PEERS_MAX), PendingQueued::PeersFull);
        assert_eq!(store.take_pending(&peer(0)).len(), 3);
        assert!(store.take_pending(&peer(0)).is_empty());
        assert_eq!(
            queue(PENDING_DIAL_PEERS_MAX),
            PendingQueued::DialNow,
            "a slot freed"
        );
    }
}
