//! Signatures verified before: a bounded set of digests of `(key, signed bytes, signature, target)`.
//!
//! Membership responses carry every member's alive message and StateInfo snapshots every
//! member's StateInfo, each signed; a node receives the same items again every pull round. ECDSA
//! verification is a pure function of those four inputs, so a check whose exact inputs passed
//! before passes again: [`Ingress`](super::Ingress) skips it. Only successes are remembered, and
//! the digest (SHA-256 over every input, length-prefixed) covers the whole signed bytes and the
//! signature, so no different message can match an entry.

use std::collections::{HashSet, VecDeque};

use parking_lot::Mutex;
use ring::digest;

use super::{CheckTarget, SignatureCheck};

/// The digest that identifies one check.
pub(crate) type CheckDigest = [u8; 32];

/// A bounded FIFO set of verified checks.
#[derive(Debug)]
pub(crate) struct VerifiedSignatures {
    len_max: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    set: HashSet<CheckDigest>,
    order: VecDeque<CheckDigest>,
}

impl VerifiedSignatures {
    /// A set remembering at most `len_max` checks (0 disables it).
    pub(crate) fn new(len_max: usize) -> Self {
        Self {
            len_max,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// The digest of a check.
    pub(crate) fn digest(check: &SignatureCheck) -> CheckDigest {
        let mut ctx = digest::Context::new(&digest::SHA256);
        let target: u8 = match check.target {
            CheckTarget::Envelope => 1,
            CheckTarget::Secret => 2,
            CheckTarget::Block => 3,
        };
        ctx.update(&[target]);
        for part in [check.key.sec1(), &check.message[..], &check.signature[..]] {
            ctx.update(&(part.len() as u64).to_be_bytes());
            ctx.update(part);
        }
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.finish().as_ref());
        out
    }

    /// Whether this check passed before.
    #[cfg(test)]
    pub(crate) fn contains(&self, digest: &CheckDigest) -> bool {
        self.len_max > 0 && self.inner.lock().set.contains(digest)
    }

    /// Drops from `checks` those that passed before, under one lock, and returns the digests of
    /// the rest (to [`insert_all`](Self::insert_all) once they pass). Disabled, it keeps every
    /// check and computes no digest.
    pub(crate) fn retain_unverified(&self, checks: &mut Vec<SignatureCheck>) -> Vec<CheckDigest> {
        if self.len_max == 0 || checks.is_empty() {
            return Vec::new();
        }
        let digests: Vec<CheckDigest> = checks.iter().map(Self::digest).collect();
        let inner = self.inner.lock();
        let mut fresh = Vec::with_capacity(digests.len());
        let mut digests = digests.into_iter();
        checks.retain(|_| {
            // One digest per check, in order.
            let Some(digest) = digests.next() else {
                return true;
            };
            let unverified = !inner.set.contains(&digest);
            if unverified {
                fresh.push(digest);
            }
            unverified
        });
        fresh
    }

    /// Remembers checks that passed, forgetting the oldest beyond the bound.
    pub(crate) fn insert_all(&self, digests: &[CheckDigest]) {
        if self.len_max == 0 || digests.is_empty() {
            return;
        }
        let mut inner = self.inner.lock();
        for d in digests {
            if inner.set.insert(*d) {
                inner.order.push_back(*d);
            }
        }
        while inner.order.len() > self.len_max {
            if let Some(old) = inner.order.pop_front() {
                inner.set.remove(&old);
            }
        }
    }

    /// Checks remembered.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.inner.lock().order.len()
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::crypto::Sign;
    use crate::signing_key::SigningKey;

    fn fresh_key() -> SigningKey {
        let rng = ring::rand::SystemRandom::new();
        let doc = ring::signature::EcdsaKeyPair::generate_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
            &rng,
        )
        .expect("pkcs8");
        SigningKey::from_pkcs8_der(doc.as_ref()).expect("key")
    }

    fn check(message: &'static [u8], key: &SigningKey) -> SignatureCheck {
        let signature = key.sign(message).unwrap_or_default();
        SignatureCheck::envelope(key.public_key(), Bytes::from_static(message), signature)
    }

    #[test]
    fn remembers_exact_checks_only_and_stays_bounded() {
        let key = fresh_key();
        let other = fresh_key();
        let set = VerifiedSignatures::new(2);
        let a = check(b"alive 1", &key);
        let da = VerifiedSignatures::digest(&a);
        assert!(!set.contains(&da));
        set.insert_all(&[da]);
        assert!(set.contains(&da));

        // Same signature over other bytes, same bytes under another key, or as a secret: all differ.
        let mut other_message = a.clone();
        other_message.message = Bytes::from_static(b"alive 2");
        let mut other_key = a.clone();
        other_key.key = other.public_key();
        let mut as_secret = a.clone();
        as_secret.target = CheckTarget::Secret;
        for c in [&other_message, &other_key, &as_secret] {
            assert!(!set.contains(&VerifiedSignatures::digest(c)));
        }

        let b = VerifiedSignatures::digest(&check(b"b", &key));
        let c = VerifiedSignatures::digest(&check(b"c", &key));
        set.insert_all(&[b, c]);
        assert_eq!(set.len(), 2);
        assert!(!set.contains(&da), "the oldest is forgotten first");
        assert!(set.contains(&b) && set.contains(&c));
    }

    #[test]
    fn zero_len_max_disables_it() {
        let key = fresh_key();
        let set = VerifiedSignatures::new(0);
        let d = VerifiedSignatures::digest(&check(b"x", &key));
        set.insert_all(&[d]);
        assert!(!set.contains(&d));
    }
}
