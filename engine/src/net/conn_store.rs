//! The connection store: at most one connection per PKI-ID, sharded to keep lock hold times short,
//! with a per-destination async lock so concurrent sends to a new peer dial exactly once.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

use super::conn::Conn;
use crate::types::PkiId;

/// Number of shards; PKI-IDs are SHA-256 outputs, so the first byte spreads evenly.
const SHARD_COUNT: usize = 16;

#[derive(Debug, Default)]
struct Shard {
    conns: HashMap<PkiId, Arc<Conn>>,
    dial_locks: HashMap<PkiId, Arc<tokio::sync::Mutex<()>>>,
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

    /// Registers `conn` unless an open connection to the same peer exists, which is returned.
    pub(crate) fn insert_if_absent(&self, conn: Arc<Conn>) -> Result<(), Arc<Conn>> {
        let mut shard = self.shard(&conn.pki_id()).lock();
        if let Some(existing) = shard.conns.get(&conn.pki_id()).filter(|c| !c.is_closed()) {
            return Err(existing.clone());
        }
        shard.conns.insert(conn.pki_id(), conn);
        Ok(())
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
