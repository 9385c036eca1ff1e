//! The identity store's purges (spec 3.11): Fabric's periodic ones (expired identities, and
//! identities unused for the usage threshold, which the driver runs on its timer) and
//! `SuspectPeers` after an MSP or CRL update ([`IdentityStore::replace_msp`]).

use std::sync::Arc;
use std::time::Duration;

use super::{IdentityStore, Removal};
use crate::crypto::MspManager;
use crate::time::Instant;
use crate::types::PkiId;

impl IdentityStore {
    /// Fabric's `SuspectPeers` after a CRL or MSP update: validates against `msp` from now on,
    /// and removes every stored identity (our own excepted) that no longer validates under it at
    /// `now` (revoked, expired), each queued as [`crate::ingress::IdentityChange::Invalidated`]. Returns their
    /// PKI-IDs, sorted. Costs one validation per stored identity.
    pub fn replace_msp(&self, msp: Arc<MspManager>, now: Instant) -> Vec<PkiId> {
        *self.msp.write() = Arc::clone(&msp);
        let mut invalid = Vec::new();
        for shard in self.shards.iter() {
            invalid.extend(
                shard
                    .read()
                    .values()
                    .filter(|e| !e.pinned)
                    .filter(|e| msp.validate_peer(&e.identity, now.as_unix_secs()).is_err())
                    .map(|e| e.identity.pki_id),
            );
        }
        let mut index = self.index.lock();
        invalid.retain(|p| self.take(&mut index, p, Removal::Revoked).is_some());
        invalid.sort_unstable();
        invalid
    }

    /// Removes every identity expired at `now` (our own excepted) and returns their PKI-IDs,
    /// sorted (the caller closes their connections and purges them from membership). Costs
    /// O(log n) per identity removed, O(1) when none expired.
    pub fn purge_expired(&self, now: Instant) -> Vec<PkiId> {
        let mut index = self.index.lock();
        let now_unix_s = now.as_unix_secs();
        let mut purged = Vec::new();
        while let Some(&(not_after_unix_s, pki_id)) = index.by_not_after.first()
            && not_after_unix_s < now_unix_s
        {
            self.take(&mut index, &pki_id, Removal::PurgedExpired);
            purged.push(pki_id);
        }
        purged.sort_unstable();
        purged
    }

    /// Fabric's `periodicalPurgeUnusedIdentities`: removes every identity (our own excepted) not
    /// seen for `unused_threshold` by `now` ([`super::UNUSED_THRESHOLD_DEFAULT`]); returns their
    /// PKI-IDs, sorted.
    pub fn purge_unused(&self, now: Instant, unused_threshold: Duration) -> Vec<PkiId> {
        let seen_before = now - unused_threshold;
        let mut index = self.index.lock();
        let mut purged = Vec::new();
        while let Some(pki_id) =
            self.take_least_recently_seen(&mut index, seen_before, Removal::PurgedUnused)
        {
            purged.push(pki_id);
        }
        purged.sort_unstable();
        purged
    }
}
