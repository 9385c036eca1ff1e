//! The identity mapper (spec 3.11, Fabric's `idMapper`): PKI-ID → validated identity, shared by every
//! connection task. Only identities that validate under the MSPs as a gossip peer (chain, expiry,
//! NodeOU `peer` role: [`MspManager::validate_peer`]) and whose PKI-ID matches the one claimed for
//! them get in; the first identity stored for a PKI-ID wins.
//!
//! Bounded by `identities_len_max`. An insert into a full store first drops every identity whose
//! certificate expired (by the `now` it is given), then, if none had, the least recently seen one:
//! "seen" is the insert and every lookup that resolves a signer ([`IdentityStore::get`]). Our own
//! identity ([`IdentityStore::put_own`]) is never evicted or purged. Peers that are connected are
//! not pinned (the store does not know the connections): they send an alive message every
//! `aliveTimeInterval`, whose check is a lookup, so they are the most recently seen; a flood of new
//! identities of a trusted CA that outpaces them can still evict them, and they are learned again
//! at their next handshake or alive message carrying their identity.
//!
//! Eviction costs O(log n): an index orders identities by expiry and by last-seen time. A lookup
//! only raises its entry's last-seen time (an atomic, under the shard's read lock); the index
//! learns it lazily, when the entry reaches the front of the last-seen order and is found to have
//! been seen since it was filed, so it is filed again (at most once per lookup).
//!
//! Fabric's periodic purges are [`IdentityStore::purge_expired`] and
//! [`IdentityStore::purge_unused`] (`usageThreshold`, [`UNUSED_THRESHOLD_DEFAULT`]), which the
//! driver runs on its timer.
//!
//! The store is the driver's (its connection tasks write it); the [`crate::Node`] never reads it.
//! Every change is also queued as an [`IdentityChange`], which the driver drains
//! ([`IdentityStore::take_changes`]) into [`crate::Node::handle_identity`] before it hands the node
//! any message that was checked against the store, so the core's decisions change only on inputs.
//!
//! Sharded by the PKI-ID's first byte (PKI-IDs are SHA-256 outputs, so shards fill evenly), each
//! shard behind a `parking_lot::RwLock`: lookups on the hot path take a read lock on one shard.
//! Changes of membership (insert, eviction, removal) take the index's mutex first, then a shard's
//! write lock.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use crossbeam_queue::ArrayQueue;
use parking_lot::{Mutex, RwLock};

use crate::crypto::{Identity, IdentityError, MspManager};
use crate::time::Instant;
use crate::types::{OrgId, PkiId};

/// Fabric's `usageThreshold`: an identity not seen for this long is purged by
/// [`IdentityStore::purge_unused`].
pub const UNUSED_THRESHOLD_DEFAULT: Duration = Duration::from_secs(3600);

/// Changes queued for the driver between two drains; beyond this the next drain is a full
/// snapshot ([`IdentityChange::Reset`] and every identity stored).
pub const CHANGES_LEN_MAX: usize = 1024;

/// A change of the identity store, as the node learns it ([`crate::Node::handle_identity`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IdentityChange {
    /// An identity was stored: its PKI-ID, its org and the last second of its validity.
    Learned {
        /// The PKI-ID.
        pki_id: PkiId,
        /// The identity's MSP id.
        org: OrgId,
        /// Last second of validity of its certificate (Unix seconds).
        not_after_unix_s: i64,
    },
    /// An identity was removed (not seen for long, or evicted to make room): forget its org.
    Removed(PkiId),
    /// An identity stopped being valid (its certificate expired, or a CRL revoked it) and was
    /// removed: the peer is cut off (Fabric's `idMapper` purge: membership entries, StateInfo and
    /// connections go with it).
    Invalidated(PkiId),
    /// Forget every identity: a full list follows (the change queue overflowed).
    Reset,
}

impl IdentityChange {
    /// `identity` was stored.
    pub fn learned(identity: &Identity) -> Self {
        Self::Learned {
            pki_id: identity.pki_id,
            org: OrgId::from(identity.mspid.as_str()),
            not_after_unix_s: identity.cert.not_after_unix_s,
        }
    }
}

/// Default bound on stored identities.
pub const IDENTITIES_LEN_MAX_DEFAULT: usize = 65_536;

const SHARDS_COUNT: usize = 16;

/// Why `put` refused an identity. Nothing was stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityStoreError {
    /// The identity did not validate, or its PKI-ID is not the claimed one.
    #[error(transparent)]
    Invalid(#[from] IdentityError),
    /// The store holds `identities_len_max` identities already, all of them pinned.
    #[error("identity store full ({identities_len_max} identities)")]
    Full {
        /// The bound.
        identities_len_max: usize,
    },
}

#[derive(Debug)]
struct Entry {
    identity: Arc<Identity>,
    /// Last second of validity of the leaf certificate (Unix seconds); gone after it.
    not_after_unix_s: i64,
    /// The digest of a signed `PeerIdentity` of this identity whose signature verified (the
    /// first one; [`IdentityStore::peer_identity_verified`]).
    peer_identity: Option<PeerIdentityDigest>,
    /// When it was last inserted or looked up (nanoseconds of [`Instant`]).
    last_seen_ns: AtomicU64,
    /// Our own identity: never evicted nor purged, not in the index.
    pinned: bool,
}

impl Entry {
    fn touch(&self, now: Instant) {
        self.last_seen_ns
            .fetch_max(now.as_nanos(), Ordering::Relaxed);
    }
}

/// The eviction order of every unpinned identity: by expiry, and by last-seen time as filed (an
/// entry's own `last_seen_ns` may be later: it was seen since).
#[derive(Debug, Default)]
struct Index {
    by_not_after: BTreeSet<(i64, PkiId)>,
    by_last_seen: BTreeSet<(u64, PkiId)>,
    /// The last-seen time each identity is filed under in `by_last_seen`.
    filed_last_seen_ns: HashMap<PkiId, u64>,
}

impl Index {
    fn insert(&mut self, pki_id: PkiId, not_after_unix_s: i64, last_seen_ns: u64) {
        self.by_not_after.insert((not_after_unix_s, pki_id));
        self.by_last_seen.insert((last_seen_ns, pki_id));
        self.filed_last_seen_ns.insert(pki_id, last_seen_ns);
    }

    fn remove(&mut self, pki_id: &PkiId, not_after_unix_s: i64) {
        self.by_not_after.remove(&(not_after_unix_s, *pki_id));
        if let Some(filed) = self.filed_last_seen_ns.remove(pki_id) {
            self.by_last_seen.remove(&(filed, *pki_id));
        }
    }
}

/// Why identities left the store, and inserts it refused; read with [`IdentityStore::stats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IdentityStoreStats {
    /// Identities stored.
    pub len: u64,
    /// Evicted by an insert into the full store: their certificate had expired.
    pub evicted_expired: u64,
    /// Evicted by an insert into the full store: least recently seen (none had expired).
    pub evicted_lru: u64,
    /// Removed by [`IdentityStore::purge_expired`].
    pub purged_expired: u64,
    /// Removed by [`IdentityStore::purge_unused`] (not seen for the usage threshold).
    pub purged_unused: u64,
    /// Removed by [`IdentityStore::replace_msp`]: no longer valid under the new MSPs (a CRL).
    pub purged_revoked: u64,
    /// Inserts refused: full, and nothing evictable (every stored identity pinned).
    pub refused_full: u64,
    /// `put`s refused: the identity is not a peer's (NodeOU role).
    pub refused_not_a_peer: u64,
    /// `put`s refused: the identity did not validate otherwise (unknown CA, expired, PKI-ID).
    pub refused_invalid: u64,
}

#[derive(Debug, Default)]
struct Counters {
    evicted_expired: AtomicU64,
    evicted_lru: AtomicU64,
    purged_expired: AtomicU64,
    purged_unused: AtomicU64,
    purged_revoked: AtomicU64,
    refused_full: AtomicU64,
    refused_not_a_peer: AtomicU64,
    refused_invalid: AtomicU64,
}

/// Why an identity was removed by [`IdentityStore::take`].
#[derive(Clone, Copy)]
enum Removal {
    EvictedExpired,
    EvictedLru,
    PurgedExpired,
    PurgedUnused,
    Removed,
    Revoked,
}

/// The digest of a signed `PeerIdentity` envelope ([`peer_identity_digest`]).
pub(crate) type PeerIdentityDigest = [u8; 32];

/// The digest of a signed `PeerIdentity` envelope: SHA-256 over its payload, its signature and
/// its secret envelope if any, each length-prefixed. Two envelopes with the same digest carry the
/// same bytes and the same signatures.
pub(crate) fn peer_identity_digest(
    envelope: &gossip_proto::gossip::Envelope,
) -> PeerIdentityDigest {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    let secret = envelope.secret_envelope.as_ref();
    ctx.update(&[u8::from(secret.is_some())]);
    let parts = [
        &envelope.payload[..],
        &envelope.signature[..],
        secret.map_or(&[][..], |s| &s.payload[..]),
        secret.map_or(&[][..], |s| &s.signature[..]),
    ];
    for part in parts {
        ctx.update(&(part.len() as u64).to_be_bytes());
        ctx.update(part);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// PKI-ID → identity, bounded, internally synchronised.
#[derive(Debug)]
pub struct IdentityStore {
    /// Replaced whole by [`IdentityStore::replace_msp`] (a CRL update).
    msp: RwLock<Arc<MspManager>>,
    shards: Box<[RwLock<HashMap<PkiId, Entry>>]>,
    index: Mutex<Index>,
    len: AtomicUsize,
    identities_len_max: usize,
    counters: Counters,
    changes: ArrayQueue<IdentityChange>,
    changes_lost: AtomicBool,
}

impl IdentityStore {
    /// An empty store validating against `msp`, holding at most `identities_len_max` identities.
    pub fn new(msp: Arc<MspManager>, identities_len_max: usize) -> Self {
        Self {
            msp: RwLock::new(msp),
            shards: (0..SHARDS_COUNT)
                .map(|_| RwLock::new(HashMap::new()))
                .collect(),
            index: Mutex::new(Index::default()),
            len: AtomicUsize::new(0),
            identities_len_max,
            counters: Counters::default(),
            changes: ArrayQueue::new(CHANGES_LEN_MAX),
            changes_lost: AtomicBool::new(false),
        }
    }

    /// The MSPs identities are validated against now.
    pub fn msp(&self) -> Arc<MspManager> {
        Arc::clone(&self.msp.read())
    }

    fn shard(&self, pki_id: &PkiId) -> &RwLock<HashMap<PkiId, Entry>> {
        &self.shards[usize::from(pki_id.0[0]) % SHARDS_COUNT]
    }

    /// Checks an identity as `put` does, without storing it: the claimed PKI-ID equals the one
    /// computed from the identity, and the identity validates under the MSPs at `now`.
    pub fn validate(
        &self,
        claimed_pki_id: &[u8],
        identity: &Identity,
        now: Instant,
    ) -> Result<(), IdentityError> {
        validate_with(&self.msp.read(), claimed_pki_id, identity, now)
    }

    /// Fabric's `idMapper.Put`: validates the identity and stores it under its PKI-ID. When the
    /// PKI-ID is present already, the stored identity stays and is returned. Refusals are counted
    /// by reason ([`IdentityStoreStats`]).
    pub fn put(
        &self,
        claimed_pki_id: &[u8],
        identity: Identity,
        now: Instant,
    ) -> Result<Arc<Identity>, IdentityStoreError> {
        if let Err(e) = self.validate(claimed_pki_id, &identity, now) {
            let counter = match e {
                IdentityError::NotAPeer { .. } => &self.counters.refused_not_a_peer,
                _ => &self.counters.refused_invalid,
            };
            counter.fetch_add(1, Ordering::Relaxed);
            return Err(e.into());
        }
        self.insert_validated(Arc::new(identity), now)
    }

    /// Stores our own identity, unvalidated and pinned: never evicted nor purged. It takes a
    /// slot of the bound (when full, an identity is evicted for it).
    pub fn put_own(&self, identity: Identity, now: Instant) -> Result<(), IdentityStoreError> {
        self.insert(Arc::new(identity), now, true).map(drop)
    }

    /// Stores an identity the caller validated (ingress validates in precheck and stores after the
    /// signature checks passed). A full store makes room ([module doc](self)).
    pub(crate) fn insert_validated(
        &self,
        identity: Arc<Identity>,
        now: Instant,
    ) -> Result<Arc<Identity>, IdentityStoreError> {
        self.insert(identity, now, false)
    }

    fn insert(
        &self,
        identity: Arc<Identity>,
        now: Instant,
        pinned: bool,
    ) -> Result<Arc<Identity>, IdentityStoreError> {
        let pki_id = identity.pki_id;
        if let Some(existing) = self.shard(&pki_id).read().get(&pki_id) {
            existing.touch(now);
            return Ok(Arc::clone(&existing.identity));
        }
        let mut index = self.index.lock();
        if let Some(existing) = self.shard(&pki_id).read().get(&pki_id) {
            // Stored by another task between the two looks.
            existing.touch(now);
            return Ok(Arc::clone(&existing.identity));
        }
        if self.len() >= self.identities_len_max && !self.make_room(&mut index, now) {
            self.counters.refused_full.fetch_add(1, Ordering::Relaxed);
            return Err(IdentityStoreError::Full {
                identities_len_max: self.identities_len_max,
            });
        }
        let not_after_unix_s = identity.cert.not_after_unix_s;
        if !pinned {
            index.insert(pki_id, not_after_unix_s, now.as_nanos());
        }
        self.shard(&pki_id).write().insert(
            pki_id,
            Entry {
                identity: Arc::clone(&identity),
                not_after_unix_s,
                peer_identity: None,
                last_seen_ns: AtomicU64::new(now.as_nanos()),
                pinned,
            },
        );
        self.len.fetch_add(1, Ordering::Relaxed);
        drop(index);
        self.record(IdentityChange::learned(&identity));
        Ok(identity)
    }

    /// Frees at least one slot: every expired identity, else the least recently seen one.
    /// `false` when nothing can go (every identity pinned).
    fn make_room(&self, index: &mut Index, now: Instant) -> bool {
        if self.take_expired(index, now, Removal::EvictedExpired) > 0 {
            return true;
        }
        self.take_least_recently_seen(index, Instant::MAX, Removal::EvictedLru)
            .is_some()
    }

    /// Removes every identity expired at `now`; returns how many.
    fn take_expired(&self, index: &mut Index, now: Instant, why: Removal) -> usize {
        let now_unix_s = now.as_unix_secs();
        let mut taken = 0;
        while let Some(&(not_after_unix_s, pki_id)) = index.by_not_after.first()
            && not_after_unix_s < now_unix_s
        {
            self.take(index, &pki_id, why);
            taken += 1;
        }
        taken
    }

    /// Removes the least recently seen identity if it was last seen before `seen_before`; files
    /// again the ones found seen since they were filed. Returns the one removed.
    fn take_least_recently_seen(
        &self,
        index: &mut Index,
        seen_before: Instant,
        why: Removal,
    ) -> Option<PkiId> {
        while let Some((filed_ns, pki_id)) = index.by_last_seen.pop_first() {
            let last_seen_ns = self
                .shard(&pki_id)
                .read()
                .get(&pki_id)
                .map(|e| e.last_seen_ns.load(Ordering::Relaxed));
            match last_seen_ns {
                Some(seen_ns) if seen_ns > filed_ns => {
                    index.by_last_seen.insert((seen_ns, pki_id));
                    index.filed_last_seen_ns.insert(pki_id, seen_ns);
                }
                Some(seen_ns) if seen_ns < seen_before.as_nanos() => {
                    index.by_last_seen.insert((filed_ns, pki_id));
                    self.take(index, &pki_id, why);
                    return Some(pki_id);
                }
                Some(_) => {
                    index.by_last_seen.insert((filed_ns, pki_id));
                    return None;
                }
                None => {
                    // Not stored (cannot happen: the index changes with the shards).
                    index.filed_last_seen_ns.remove(&pki_id);
                }
            }
        }
        None
    }

    /// Removes `pki_id` from the shards and the index, counts why, queues the change.
    fn take(&self, index: &mut Index, pki_id: &PkiId, why: Removal) -> Option<Arc<Identity>> {
        let removed = self.shard(pki_id).write().remove(pki_id)?;
        index.remove(pki_id, removed.not_after_unix_s);
        self.len.fetch_sub(1, Ordering::Relaxed);
        let counter = match why {
            Removal::EvictedExpired => Some(&self.counters.evicted_expired),
            Removal::EvictedLru => Some(&self.counters.evicted_lru),
            Removal::PurgedExpired => Some(&self.counters.purged_expired),
            Removal::PurgedUnused => Some(&self.counters.purged_unused),
            Removal::Revoked => Some(&self.counters.purged_revoked),
            Removal::Removed => None,
        };
        if let Some(counter) = counter {
            counter.fetch_add(1, Ordering::Relaxed);
        }
        let change = match why {
            Removal::EvictedExpired | Removal::PurgedExpired | Removal::Revoked => {
                IdentityChange::Invalidated(*pki_id)
            }
            Removal::EvictedLru | Removal::PurgedUnused | Removal::Removed => {
                IdentityChange::Removed(*pki_id)
            }
        };
        self.record(change);
        Some(removed.identity)
    }

    /// The identity of `pki_id`, unless unknown or expired at `now` (an expired identity verifies
    /// nothing, whether purged yet or not). A hit counts as seeing it at `now`.
    pub fn get(&self, pki_id: &PkiId, now: Instant) -> Option<Arc<Identity>> {
        let shard = self.shard(pki_id).read();
        let entry = shard.get(pki_id)?;
        if now.as_unix_secs() > entry.not_after_unix_s {
            return None;
        }
        entry.touch(now);
        Some(Arc::clone(&entry.identity))
    }

    /// Whether `pki_id` is stored (expired or not), without counting as seeing it.
    pub fn contains(&self, pki_id: &PkiId) -> bool {
        self.shard(pki_id).read().contains_key(pki_id)
    }

    /// Whether a signed `PeerIdentity` with this digest passed its signature check for the stored,
    /// unexpired identity of `pki_id` ([`mark_peer_identity_verified`](Self::mark_peer_identity_verified)):
    /// the same bytes need no check again.
    pub(crate) fn peer_identity_verified(
        &self,
        pki_id: &PkiId,
        digest: &PeerIdentityDigest,
        now: Instant,
    ) -> bool {
        let shard = self.shard(pki_id).read();
        shard.get(pki_id).is_some_and(|e| {
            now.as_unix_secs() <= e.not_after_unix_s && e.peer_identity.as_ref() == Some(digest)
        })
    }

    /// Remembers the digest of a signed `PeerIdentity` of the stored identity `pki_id` whose
    /// signature verified (the first one stays; nothing happens for an identity not stored). It
    /// leaves with the identity.
    pub(crate) fn mark_peer_identity_verified(&self, pki_id: &PkiId, digest: PeerIdentityDigest) {
        if let Some(entry) = self.shard(pki_id).write().get_mut(pki_id) {
            entry.peer_identity.get_or_insert(digest);
        }
    }

    /// Removes an identity (purge on identity switch, CRL update); our own stays.
    pub fn remove(&self, pki_id: &PkiId) -> Option<Arc<Identity>> {
        let mut index = self.index.lock();
        if self.shard(pki_id).read().get(pki_id)?.pinned {
            return None;
        }
        self.take(&mut index, pki_id, Removal::Removed)
    }

    fn record(&self, change: IdentityChange) {
        if self.changes.push(change).is_err() {
            self.changes_lost.store(true, Ordering::Release);
        }
    }

    /// Hands every change since the last call to `apply`, oldest first. After an overflow of the
    /// change queue it hands [`IdentityChange::Reset`] and then every stored identity instead.
    /// Changes made during the call reach this call or the next one.
    pub fn take_changes(&self, mut apply: impl FnMut(IdentityChange)) {
        if self.changes_lost.swap(false, Ordering::AcqRel) {
            while self.changes.pop().is_some() {}
            apply(IdentityChange::Reset);
            for shard in self.shards.iter() {
                let snapshot: Vec<_> = shard
                    .read()
                    .values()
                    .map(|e| IdentityChange::learned(&e.identity))
                    .collect();
                snapshot.into_iter().for_each(&mut apply);
            }
            return;
        }
        while let Some(change) = self.changes.pop() {
            apply(change);
        }
    }

    /// Identities stored.
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    /// Whether no identity is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bound on stored identities.
    pub fn identities_len_max(&self) -> usize {
        self.identities_len_max
    }

    /// Identities refused because the store was full and nothing could be evicted.
    pub fn refused_full_count(&self) -> u64 {
        self.counters.refused_full.load(Ordering::Relaxed)
    }

    /// The counters.
    pub fn stats(&self) -> IdentityStoreStats {
        let c = &self.counters;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        IdentityStoreStats {
            len: self.len() as u64,
            evicted_expired: load(&c.evicted_expired),
            evicted_lru: load(&c.evicted_lru),
            purged_expired: load(&c.purged_expired),
            purged_unused: load(&c.purged_unused),
            purged_revoked: load(&c.purged_revoked),
            refused_full: load(&c.refused_full),
            refused_not_a_peer: load(&c.refused_not_a_peer),
            refused_invalid: load(&c.refused_invalid),
        }
    }
}

/// The checks of [`IdentityStore::validate`] against any MSP manager: the PKI-ID, and the identity
/// as a gossip peer's ([`MspManager::validate_peer`]).
pub(crate) fn validate_with(
    msp: &MspManager,
    claimed_pki_id: &[u8],
    identity: &Identity,
    now: Instant,
) -> Result<(), IdentityError> {
    if claimed_pki_id != identity.pki_id.as_bytes() {
        return Err(IdentityError::PkiIdMismatch);
    }
    msp.validate_peer(identity, now.as_unix_secs())
}

mod purges;

#[cfg(test)]
#[path = "identity_store_tests.rs"]
mod tests;
