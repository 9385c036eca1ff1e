//! Ingress counters: one per reject reason plus accepted, updated with relaxed atomics from every
//! connection task, read as a snapshot.

use std::sync::atomic::{AtomicU64, Ordering};

use super::Reject;
use crate::crypto::IdentityError;

macro_rules! counters {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {
        /// Live counters, shared by every connection task.
        #[derive(Debug, Default)]
        pub struct IngressStats {
            $($(#[$doc])* $name: AtomicU64,)*
        }

        /// A copy of the counters at one moment.
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct IngressStatsSnapshot {
            $($(#[$doc])* pub $name: u64,)*
        }

        impl IngressStats {
            /// Reads every counter.
            pub fn snapshot(&self) -> IngressStatsSnapshot {
                IngressStatsSnapshot { $($name: self.$name.load(Ordering::Relaxed),)* }
            }
        }
    };
}

counters! {
    /// Messages that passed every check.
    accepted,
    /// Rejected: the payload did not decode.
    malformed,
    /// Rejected: over the size limit.
    too_large,
    /// Rejected: illegal tag for the content.
    illegal_tag,
    /// Rejected: seen before.
    duplicate,
    /// Rejected: the signer's identity is unknown.
    unknown_signer,
    /// Rejected: a carried identity did not validate or did not match its PKI-ID.
    bad_identity,
    /// Rejected: a carried identity is not a peer's (NodeOUs enabled, role not `peer`).
    not_a_peer,
    /// Rejected: a membership request's self information is not about its sender.
    spoofed,
    /// Rejected: the content breaks a structural rule.
    invalid,
    /// Rejected: more nested items than allowed.
    too_many_items,
    /// Rejected: a signature check failed.
    bad_signature,
    /// Rejected: a block failed authentication (by reason in the comm's rejects, `block_*`).
    bad_block,
    /// Nested items with an unknown signer dropped (policy `DropItem`).
    nested_items_dropped,
    /// Blocks of pull updates left out before verification: they were taken already.
    block_items_seen,
    /// Signature checks skipped: the same key, bytes and signature passed before.
    checks_skipped_verified,
    /// Identity pull items not checked again: the same signed bytes passed before for the
    /// stored identity.
    peer_identities_known,
    /// Identities learned from accepted messages.
    identities_learned,
    /// Identities not learned because the identity store was full of pinned identities.
    identities_refused_full,
}

impl IngressStats {
    pub(crate) fn record_reject(&self, reject: &Reject) {
        let counter = match reject {
            Reject::Malformed(_) => &self.malformed,
            Reject::TooLarge { .. } => &self.too_large,
            Reject::IllegalTag(_) => &self.illegal_tag,
            Reject::Duplicate => &self.duplicate,
            Reject::UnknownSigner => &self.unknown_signer,
            Reject::BadIdentity(IdentityError::NotAPeer { .. }) => &self.not_a_peer,
            Reject::BadIdentity(_) => &self.bad_identity,
            Reject::Spoofed => &self.spoofed,
            Reject::Invalid(_) => &self.invalid,
            Reject::TooManyItems { .. } => &self.too_many_items,
            Reject::BadSignature(_) => &self.bad_signature,
            Reject::BadBlock(_) => &self.bad_block,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn record_accepted(&self) {
        self.accepted.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn add_checks_skipped_verified(&self, n: u64) {
        if n > 0 {
            self.checks_skipped_verified.fetch_add(n, Ordering::Relaxed);
        }
    }

    pub(crate) fn add_peer_identities_known(&self, n: u64) {
        if n > 0 {
            self.peer_identities_known.fetch_add(n, Ordering::Relaxed);
        }
    }

    pub(crate) fn add_block_items_seen(&self, n: u64) {
        if n > 0 {
            self.block_items_seen.fetch_add(n, Ordering::Relaxed);
        }
    }

    pub(crate) fn add_nested_dropped(&self, n: u64) {
        self.nested_items_dropped.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn record_identity_learned(&self, learned: bool) {
        let counter = if learned {
            &self.identities_learned
        } else {
            &self.identities_refused_full
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

impl IngressStatsSnapshot {
    /// Every rejected message, all reasons together.
    pub fn rejected_total(&self) -> u64 {
        self.malformed
            + self.too_large
            + self.illegal_tag
            + self.duplicate
            + self.unknown_signer
            + self.bad_identity
            + self.not_a_peer
            + self.spoofed
            + self.invalid
            + self.too_many_items
            + self.bad_signature
            + self.bad_block
    }
}
