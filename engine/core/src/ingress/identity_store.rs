//! The identity mapper (spec 3.11, Fabric's `idMapper`): PKI-ID → validated identity, shared by every
//! connection task. Only identities that validate under the MSPs (chain, expiry) and whose PKI-ID
//! matches the one claimed for them get in; the first identity stored for a PKI-ID wins.
//!
//! The store is the driver's (its connection tasks write it); the [`crate::Node`] never reads it.
//! Every change is also queued as an [`IdentityChange`], which the driver drains
//! ([`IdentityStore::take_changes`]) into [`crate::Node::handle_identity`] before it hands the node
//! any message that was checked against the store, so the core's decisions change only on inputs.
//!
//! Sharded by the PKI-ID's first byte (PKI-IDs are SHA-256 outputs, so shards fill evenly), each
//! shard behind a `parking_lot::RwLock`: lookups on the hot path take a read lock on one shard.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use crossbeam_queue::ArrayQueue;
use parking_lot::RwLock;

use crate::crypto::{Identity, IdentityError, MspManager};
use crate::time::Instant;
use crate::types::{OrgId, PkiId};

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
    /// An identity was removed.
    Removed(PkiId),
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
    /// The store holds `identities_len_max` identities already.
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
    msp: Arc<MspManager>,
    shards: Box<[RwLock<HashMap<PkiId, Entry>>]>,
    len: AtomicUsize,
    identities_len_max: usize,
    refused_full: AtomicU64,
    changes: ArrayQueue<IdentityChange>,
    changes_lost: AtomicBool,
}

impl IdentityStore {
    /// An empty store validating against `msp`, holding at most `identities_len_max` identities.
    pub fn new(msp: Arc<MspManager>, identities_len_max: usize) -> Self {
        Self {
            msp,
            shards: (0..SHARDS_COUNT)
                .map(|_| RwLock::new(HashMap::new()))
                .collect(),
            len: AtomicUsize::new(0),
            identities_len_max,
            refused_full: AtomicU64::new(0),
            changes: ArrayQueue::new(CHANGES_LEN_MAX),
            changes_lost: AtomicBool::new(false),
        }
    }

    /// The MSPs identities are validated against.
    pub fn msp(&self) -> &Arc<MspManager> {
        &self.msp
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
        validate_with(&self.msp, claimed_pki_id, identity, now)
    }

    /// Fabric's `idMapper.Put`: validates the identity and stores it under its PKI-ID. When the
    /// PKI-ID is present already, the stored identity stays and is returned.
    pub fn put(
        &self,
        claimed_pki_id: &[u8],
        identity: Identity,
        now: Instant,
    ) -> Result<Arc<Identity>, IdentityStoreError> {
        self.validate(claimed_pki_id, &identity, now)?;
        self.insert_validated(Arc::new(identity))
    }

    /// Stores an identity the caller validated (ingress validates in precheck and stores after the
    /// signature checks passed).
    pub(crate) fn insert_validated(
        &self,
        identity: Arc<Identity>,
    ) -> Result<Arc<Identity>, IdentityStoreError> {
        let pki_id = identity.pki_id;
        let mut shard = self.shard(&pki_id).write();
        if let Some(existing) = shard.get(&pki_id) {
            return Ok(Arc::clone(&existing.identity));
        }
        if self.len.fetch_add(1, Ordering::Relaxed) >= self.identities_len_max {
            self.len.fetch_sub(1, Ordering::Relaxed);
            self.refused_full.fetch_add(1, Ordering::Relaxed);
            return Err(IdentityStoreError::Full {
                identities_len_max: self.identities_len_max,
            });
        }
        let not_after_unix_s = identity.cert.not_after_unix_s;
        shard.insert(
            pki_id,
            Entry {
                identity: Arc::clone(&identity),
                not_after_unix_s,
                peer_identity: None,
            },
        );
        drop(shard);
        self.record(IdentityChange::learned(&identity));
        Ok(identity)
    }

    /// The identity of `pki_id`, unless unknown or expired at `now`.
    pub fn get(&self, pki_id: &PkiId, now: Instant) -> Option<Arc<Identity>> {
        let shard = self.shard(pki_id).read();
        let entry = shard.get(pki_id)?;
        (now.as_unix_secs() <= entry.not_after_unix_s).then(|| Arc::clone(&entry.identity))
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

    /// Removes an identity (purge on identity switch, CRL update, unused).
    pub fn remove(&self, pki_id: &PkiId) -> Option<Arc<Identity>> {
        let removed = self.shard(pki_id).write().remove(pki_id)?;
        self.len.fetch_sub(1, Ordering::Relaxed);
        self.record(IdentityChange::Removed(*pki_id));
        Some(removed.identity)
    }

    /// Removes every identity expired at `now` and returns their PKI-IDs, sorted (the caller closes
    /// their connections and purges them from membership).
    pub fn purge_expired(&self, now: Instant) -> Vec<PkiId> {
        let now_unix_s = now.as_unix_secs();
        let mut purged = Vec::new();
        for shard in self.shards.iter() {
            let mut shard = shard.write();
            shard.retain(|pki_id, entry| {
                let keep = now_unix_s <= entry.not_after_unix_s;
                if !keep {
                    purged.push(*pki_id);
                }
                keep
            });
        }
        self.len.fetch_sub(purged.len(), Ordering::Relaxed);
        purged.sort_unstable();
        for pki_id in &purged {
            self.record(IdentityChange::Removed(*pki_id));
        }
        purged
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

    /// Identities refused because the store was full.
    pub fn refused_full_count(&self) -> u64 {
        self.refused_full.load(Ordering::Relaxed)
    }
}

/// The checks of [`IdentityStore::validate`] against any MSP manager.
pub(crate) fn validate_with(
    msp: &MspManager,
    claimed_pki_id: &[u8],
    identity: &Identity,
    now: Instant,
) -> Result<(), IdentityError> {
    if claimed_pki_id != identity.pki_id.as_bytes() {
        return Err(IdentityError::PkiIdMismatch);
    }
    msp.validate(identity, now.as_unix_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::golden::{Golden, NOW_UNIX_S, now};

    const PEERS: [&str; 3] = [
        "peer0.org1.example.com",
        "peer1.org1.example.com",
        "peer0.org2.example.com",
    ];

    fn store(golden: &Golden, identities_len_max: usize) -> IdentityStore {
        IdentityStore::new(Arc::new(golden.msp_manager()), identities_len_max)
    }

    fn identity(golden: &Golden, peer: &str) -> Identity {
        Identity::from_serialized(golden.serialized_identity(peer)).expect("golden identity")
    }

    #[test]
    fn put_get_remove() {
        let Some(golden) = Golden::load() else { return };
        let store = store(&golden, 8);
        let id = identity(&golden, PEERS[0]);
        let pki = id.pki_id;
        assert!(store.get(&pki, now()).is_none());
        let stored = store.put(pki.as_bytes(), id.clone(), now()).expect("put");
        assert_eq!(stored.pki_id, pki);
        assert_eq!(
            store.get(&pki, now()).expect("get").serialized,
            id.serialized
        );
        // First wins; a second put is a no-op.
        store.put(pki.as_bytes(), id, now()).expect("put again");
        assert_eq!(store.len(), 1);
        assert!(store.remove(&pki).is_some());
        assert!(store.remove(&pki).is_none());
        assert!(store.is_empty());
    }

    #[test]
    fn put_refuses_bad_identities() {
        let Some(golden) = Golden::load() else { return };
        let store = store(&golden, 8);
        let id = identity(&golden, PEERS[0]);
        let other = identity(&golden, PEERS[1]);
        // (claimed PKI-ID, now, expected error)
        let expired_at = Instant::from_nanos((NOW_UNIX_S + 20 * 365 * 86_400) * 1_000_000_000);
        let too_early = Instant::from_nanos((NOW_UNIX_S - 365 * 86_400) * 1_000_000_000);
        type Want = fn(&IdentityStoreError) -> bool;
        let cases: [(&[u8], Instant, Want); 5] = [
            (other.pki_id.as_bytes(), now(), |e| {
                matches!(e, IdentityStoreError::Invalid(IdentityError::PkiIdMismatch))
            }),
            (b"", now(), |e| {
                matches!(e, IdentityStoreError::Invalid(IdentityError::PkiIdMismatch))
            }),
            (&id.pki_id.0[..31], now(), |e| {
                matches!(e, IdentityStoreError::Invalid(IdentityError::PkiIdMismatch))
            }),
            (id.pki_id.as_bytes(), expired_at, |e| {
                matches!(
                    e,
                    IdentityStoreError::Invalid(IdentityError::Expired { .. })
                )
            }),
            (id.pki_id.as_bytes(), too_early, |e| {
                matches!(
                    e,
                    IdentityStoreError::Invalid(IdentityError::NotYetValid { .. })
                )
            }),
        ];
        for (i, (claimed, at, want)) in cases.into_iter().enumerate() {
            let err = store.put(claimed, id.clone(), at).expect_err("refused");
            assert!(want(&err), "case {i}: {err:?}");
        }
        // An MSP that does not know Org2 refuses its identity.
        let mut only_org1 = MspManager::new();
        only_org1.add_org(golden.msp_manager().org("Org1MSP").expect("org1").clone());
        let org1_store = IdentityStore::new(Arc::new(only_org1), 8);
        let org2 = identity(&golden, PEERS[2]);
        let org2_pki = org2.pki_id;
        assert!(matches!(
            org1_store.put(org2_pki.as_bytes(), org2, now()),
            Err(IdentityStoreError::Invalid(IdentityError::UnknownMsp(_)))
        ));
        assert!(store.is_empty() && org1_store.is_empty());
    }

    #[test]
    fn bounded_and_counts_refusals() {
        let Some(golden) = Golden::load() else { return };
        let store = store(&golden, 2);
        for peer in &PEERS[..2] {
            let id = identity(&golden, peer);
            store.put(&id.pki_id.0, id.clone(), now()).expect("room");
        }
        let third = identity(&golden, PEERS[2]);
        assert_eq!(
            store.put(&third.pki_id.0, third.clone(), now()),
            Err(IdentityStoreError::Full {
                identities_len_max: 2
            })
        );
        assert_eq!((store.len(), store.refused_full_count()), (2, 1));
        // A PKI-ID already present is not refused even when full.
        let first = identity(&golden, PEERS[0]);
        let first_pki = first.pki_id;
        store
            .put(&first_pki.0, first, now())
            .expect("present already");
    }

    #[test]
    fn expired_identities_vanish_and_purge() {
        let Some(golden) = Golden::load() else { return };
        let store = store(&golden, 8);
        for peer in PEERS {
            let id = identity(&golden, peer);
            let id_pki = id.pki_id;
            store.put(&id_pki.0, id, now()).expect("put");
        }
        let first = identity(&golden, PEERS[0]);
        let after = Instant::from_nanos(((first.cert.not_after_unix_s + 1) as u64) * 1_000_000_000);
        assert!(store.get(&first.pki_id, now()).is_some());
        assert!(
            store.get(&first.pki_id, after).is_none(),
            "expired identities are not served"
        );
        assert!(store.purge_expired(now()).is_empty());
        let purged = store.purge_expired(after);
        assert_eq!(purged.len(), 3);
        assert!(purged.windows(2).all(|w| w[0] < w[1]), "sorted");
        assert!(store.is_empty());
    }
}
