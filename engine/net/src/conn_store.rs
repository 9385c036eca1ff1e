//! The connection store: at most one connection per PKI-ID, sharded to keep lock hold times short,
//! with a per-destination async lock so concurrent sends to a new peer dial exactly once.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

use super::conn::{Conn, Direction};
use crate::types::PkiId;

/// Number of shards; PKI-IDs are SHA-256 outputs, so the first byte spreads evenly.
const SHARD_COUNT: usize = 16;

#[derive(Debug, Default)]
struct Shard {
    conns: HashMap<PkiId, Arc<Conn>>,
    dial_locks: HashMap<PkiId, Arc<tokio::sync::Mutex<()>>>,
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

/// Connections by remote PKI-ID.
#[derive(Debug)]
pub(crate) struct ConnStore {
    shards: Vec<Mutex<Shard>>,
}

impl Default for ConnStore {
    fn default() -> Self {
        Self {
            shards: (0..SHARD_COUNT)
                .map(|_| Mutex::new(Shard::default()))
                .collect(),
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

    /// Unregisters and returns every connection.
    pub(crate) fn drain(&self) -> Vec<Arc<Conn>> {
        self.shards
            .iter()
            .flat_map(|s| s.lock().conns.drain().map(|(_, c)| c).collect::<Vec<_>>())
            .collect()
    }
}
