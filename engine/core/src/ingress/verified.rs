//! Signatures verified before: a bounded set of digests of `(key, signed bytes, signature, target)`.
//!
//! Membership responses carry every member's alive message and StateInfo snapshots every
//! member's StateInfo, each signed; a node receives the same items again every pull round. ECDSA
//! verification is a pure function of those four inputs, so a check whose exact inputs passed
//! before passes again: [`Ingress`](super::Ingress) skips it. Only successes are remembered, and
//! the digest (SHA-256 over every input, length-prefixed) covers the whole signed bytes and the
//! signature, so no different message can match an entry.

use parking_lot::Mutex;
use ring::digest;

use super::{CheckTarget, SignatureCheck};

/// The digest that identifies one check.
pub(crate) type CheckDigest = [u8; 32];

/// Slots per set: a digest may sit in any of the `WAYS` slots of the set its first bytes pick.
const WAYS: usize = 4;

/// A bounded set of verified checks with its whole memory taken up front: `slots_len` digests,
/// `WAYS` per set, the set picked by the digest's first eight bytes (SHA-256 output, uniformly
/// spread), the oldest slot of a full set replaced first.
///
/// Written by hand rather than a `HashSet` plus a FIFO queue: under steady churn (every block's
/// orderer signature, every new alive message) hashbrown's tombstones made the table double once,
/// tens of thousands of inserts after it filled (4,096 digests: 270 to 540 KiB), a step in
/// resident memory long into a soak (results/reliability.md, R7). Here nothing is allocated after
/// [`new`](Self::new), a lookup compares at most `WAYS` digests, and no hashing is needed beyond
/// the digest itself. An attacker who grinds digests into one set only evicts entries, which costs
/// a repeated verification, never a false hit: lookups compare whole digests.
#[derive(Debug)]
pub(crate) struct VerifiedSignatures {
    /// No slots: remember nothing (fixed at construction, read without the lock).
    disabled: bool,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// `sets * WAYS` digests; all zeros is an empty slot (a SHA-256 output of all zeros is never
    /// stored, so it cannot be confused with one).
    slots: Box<[CheckDigest]>,
    /// Per set, the way the next insert replaces (round robin = oldest first).
    next_way: Box<[u8]>,
}

const EMPTY: CheckDigest = [0u8; 32];

impl Inner {
    fn sets_len(&self) -> usize {
        self.next_way.len()
    }

    /// The slots of the set that `digest` belongs to.
    fn set_of(&self, digest: &CheckDigest) -> usize {
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        // `sets_len` is a power of two.
        (u64::from_le_bytes(first) as usize) & (self.sets_len() - 1)
    }

    fn contains(&self, digest: &CheckDigest) -> bool {
        if self.sets_len() == 0 || *digest == EMPTY {
            return false;
        }
        let set = self.set_of(digest);
        self.slots[set * WAYS..(set + 1) * WAYS].contains(digest)
    }

    fn insert(&mut self, digest: &CheckDigest) {
        if self.sets_len() == 0 || *digest == EMPTY || self.contains(digest) {
            return;
        }
        let set = self.set_of(digest);
        let way = usize::from(self.next_way[set]);
        self.slots[set * WAYS + way] = *digest;
        self.next_way[set] = ((way + 1) % WAYS) as u8;
    }
}

impl VerifiedSignatures {
    /// A set remembering at most `len_max` checks, rounded up to a power of two and to at least
    /// `WAYS` (0 disables it).
    pub(crate) fn new(len_max: usize) -> Self {
        let sets_len = if len_max == 0 {
            0
        } else {
            len_max.next_power_of_two().max(WAYS) / WAYS
        };
        Self {
            disabled: sets_len == 0,
            inner: Mutex::new(Inner {
                slots: vec![EMPTY; sets_len * WAYS].into_boxed_slice(),
                next_way: vec![0u8; sets_len].into_boxed_slice(),
            }),
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
        self.inner.lock().contains(digest)
    }

    /// Drops from `checks` those that passed before, under one lock, and returns the digests of
    /// the rest (to [`insert_all`](Self::insert_all) once they pass). Disabled, it keeps every
    /// check and computes no digest.
    pub(crate) fn retain_unverified(&self, checks: &mut Vec<SignatureCheck>) -> Vec<CheckDigest> {
        if checks.is_empty() || self.disabled {
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
            let unverified = !inner.contains(&digest);
            if unverified {
                fresh.push(digest);
            }
            unverified
        });
        fresh
    }

    /// Remembers checks that passed, replacing the oldest of a full set.
    pub(crate) fn insert_all(&self, digests: &[CheckDigest]) {
        if digests.is_empty() || self.disabled {
            return;
        }
        let mut inner = self.inner.lock();
        for d in digests {
            inner.insert(d);
        }
    }

    /// Checks remembered.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.inner
            .lock()
            .slots
            .iter()
            .filter(|d| **d != EMPTY)
            .count()
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
        // Four slots: one set of `WAYS`.
        let set = VerifiedSignatures::new(3);
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

        let later: Vec<CheckDigest> = [&b"b"[..], b"c", b"d", b"e"]
            .iter()
            .map(|m| VerifiedSignatures::digest(&check(m, &key)))
            .collect();
        set.insert_all(&later[..3]);
        set.insert_all(&later[..3]);
        assert_eq!(set.len(), 4, "a repeat takes no second slot");
        set.insert_all(&later[3..]);
        assert_eq!(set.len(), 4);
        assert!(!set.contains(&da), "the oldest is forgotten first");
        assert!(later.iter().all(|d| set.contains(d)));
    }

    #[test]
    fn stays_within_its_slots_under_churn() {
        let set = VerifiedSignatures::new(4_096);
        let digests: Vec<CheckDigest> = (0u32..50_000)
            .map(|i| {
                let mut out = [0u8; 32];
                out.copy_from_slice(digest::digest(&digest::SHA256, &i.to_be_bytes()).as_ref());
                out
            })
            .collect();
        for chunk in digests.chunks(7) {
            set.insert_all(chunk);
        }
        assert_eq!(set.len(), 4_096, "every slot in use, none added");
        // The newest of a full set always stays: the last insert is found.
        assert!(set.contains(digests.last().expect("digests")));
        let recent = digests[digests.len() - 1_000..]
            .iter()
            .filter(|d| set.contains(d))
            .count();
        assert!(
            recent > 900,
            "most of the last 1,000 are still there: {recent}"
        );
        // The all-zero digest marks an empty slot and is never taken as remembered.
        set.insert_all(&[[0u8; 32]]);
        assert!(!set.contains(&[0u8; 32]));
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
