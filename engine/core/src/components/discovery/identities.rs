//! The identities discovery knows of (spec 3.11, as the driver's identity store reports them):
//! each one's org and the end of its validity, and the identity lifecycle that follows from them.
//!
//! - An identity is cut off at its certificate's NotAfter (Fabric's `idMapper` deletes it 1 ms
//!   after expiry; here at the first whole second past `not_after_unix_s`, the precision of X.509
//!   times): the member is purged from membership and its connection closed, whether or not the
//!   driver's store purged it yet. The deadline is part of [`Discovery::poll_timeout`].
//! - An identity the store invalidated ([`IdentityChange::Invalidated`]: expired, or revoked by a
//!   CRL) is cut off at once.
//! - Every purged member is queued ([`Discovery::take_purged`]) so the node drops its StateInfo
//!   and, when its identity was cut off, its pulled identity too.

use std::collections::{BTreeMap, BTreeSet};

use super::{Discovery, MEMBERS_LEN_MAX};
use crate::event::IoRequest;
use crate::ingress::{IDENTITIES_LEN_MAX_DEFAULT, IdentityChange};
use crate::outbox::Outbox;
use crate::time::Instant;
use crate::types::{OrgId, PkiId};

/// A member that left membership, as [`Discovery::take_purged`] reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Purged {
    /// The member.
    pub pki_id: PkiId,
    /// Whether its identity was cut off (expired or revoked), not just the member forgotten.
    pub identity_cut_off: bool,
}

/// Org and validity by PKI-ID, with an expiry index; bounded like the driver's store.
#[derive(Debug, Default)]
pub(super) struct KnownIdentities {
    by_pki: BTreeMap<PkiId, (OrgId, i64)>,
    by_not_after: BTreeSet<(i64, PkiId)>,
}

impl KnownIdentities {
    fn insert(&mut self, pki_id: PkiId, org: OrgId, not_after_unix_s: i64) {
        if self.by_pki.len() >= IDENTITIES_LEN_MAX_DEFAULT && !self.by_pki.contains_key(&pki_id) {
            return;
        }
        if let Some((_, old)) = self.by_pki.insert(pki_id, (org, not_after_unix_s)) {
            self.by_not_after.remove(&(old, pki_id));
        }
        self.by_not_after.insert((not_after_unix_s, pki_id));
    }

    fn remove(&mut self, pki_id: &PkiId) -> bool {
        match self.by_pki.remove(pki_id) {
            Some((_, not_after_unix_s)) => self.by_not_after.remove(&(not_after_unix_s, *pki_id)),
            None => false,
        }
    }

    /// The org of an identity valid at `now`.
    pub(super) fn org(&self, pki_id: &PkiId, now: Instant) -> Option<&OrgId> {
        self.by_pki
            .get(pki_id)
            .filter(|(_, not_after_unix_s)| now.as_unix_secs() <= *not_after_unix_s)
            .map(|(org, _)| org)
    }

    /// When the first identity other than `me` expires: the first instant whose whole seconds
    /// pass its NotAfter.
    fn next_expiry(&self, me: &PkiId) -> Option<Instant> {
        let (not_after_unix_s, _) = self.by_not_after.iter().find(|(_, p)| p != me)?;
        let secs = u64::try_from(not_after_unix_s.saturating_add(1)).unwrap_or(0);
        Some(Instant::from_nanos(secs.saturating_mul(1_000_000_000)))
    }

    /// Removes every identity but `me` expired at `now`; returns them.
    fn take_expired(&mut self, me: &PkiId, now: Instant) -> Vec<PkiId> {
        let expired: Vec<PkiId> = self
            .by_not_after
            .iter()
            .take_while(|(not_after_unix_s, _)| *not_after_unix_s < now.as_unix_secs())
            .map(|(_, p)| *p)
            .filter(|p| p != me)
            .collect();
        for p in &expired {
            self.remove(p);
        }
        expired
    }
}

impl Discovery {
    /// Applies a change of the driver's identity store; an invalidated identity is cut off.
    pub fn learn_identity(&mut self, change: IdentityChange, out: &mut Outbox) {
        match change {
            IdentityChange::Learned {
                pki_id,
                org,
                not_after_unix_s,
            } => self.known.insert(pki_id, org, not_after_unix_s),
            IdentityChange::Removed(pki_id) => {
                self.known.remove(&pki_id);
            }
            IdentityChange::Invalidated(pki_id) => {
                // Not again when the expiry timer cut it off already.
                if self.known.remove(&pki_id) || self.members.contains_key(&pki_id) {
                    self.cut_off(pki_id, out);
                }
            }
            IdentityChange::Reset => self.known = KnownIdentities::default(),
        }
    }

    /// Cuts off a peer whose identity is no longer valid: purged from membership, its
    /// connection closed.
    pub fn cut_off(&mut self, pki_id: PkiId, out: &mut Outbox) {
        if pki_id == self.me.pki_id {
            return;
        }
        self.stats.identities_cut_off += 1;
        self.purge(&pki_id, out);
        out.io(IoRequest::CloseConn(pki_id));
        self.note_purged(Purged {
            pki_id,
            identity_cut_off: true,
        });
    }

    /// Queues a purge for [`Self::take_purged`] (bounded: beyond [`MEMBERS_LEN_MAX`] undrained
    /// purges, the channel sweep drops the StateInfo later instead).
    pub(super) fn note_purged(&mut self, purged: Purged) {
        if self.purged.len() < MEMBERS_LEN_MAX {
            self.purged.push(purged);
        }
    }

    /// When the next known identity expires.
    pub(super) fn identity_expiry_at(&self) -> Option<Instant> {
        self.known.next_expiry(&self.me.pki_id)
    }

    /// Cuts off every identity expired at `now`.
    pub(super) fn expire_identities(&mut self, now: Instant, out: &mut Outbox) {
        if self.identity_expiry_at().is_none_or(|at| now < at) {
            return;
        }
        for pki_id in self.known.take_expired(&self.me.pki_id, now) {
            self.cut_off(pki_id, out);
        }
    }

    /// Members purged since the last call, oldest first (the node drops their channel state).
    pub fn take_purged(&mut self) -> Vec<Purged> {
        std::mem::take(&mut self.purged)
    }
}
