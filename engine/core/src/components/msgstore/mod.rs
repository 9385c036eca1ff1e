//! Fabric's message store (spec 3.8): messages with a replacement policy, optionally expiring.
//!
//! A policy decides, for two messages, whether one invalidates the other. Fabric compares a new
//! message with every stored one; every policy Fabric uses only relates messages with the same key
//! (PKI-ID, block number) or, for blocks, keys more than a window apart. So the store is a
//! `BTreeMap` by key: an add is O(log n) plus the evicted range, never O(n) over all members.
//!
//! Expiry (the "expirable" store): a message older than the TTL is marked expired and returned by
//! [`MsgStore::expire`] (Fabric's expire callback); it disappears from [`MsgStore::get`],
//! [`MsgStore::iter`] and [`MsgStore::len`] but still invalidates older copies until 2×TTL, when it
//! is removed for good.

use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::time::Duration;

use crate::time::Instant;
use crate::types::PkiId;

/// Fabric's `PeerTime`: `(inc_num, seq_num)`, newer when `inc_num` is greater, or equal with a
/// greater `seq_num`; the derived order is exactly that.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PeerTime {
    /// Incarnation: start time of the process (alive) or channel (StateInfo), ns.
    pub inc_num: u64,
    /// Sequence within the incarnation.
    pub seq_num: u64,
}

impl PeerTime {
    /// Reads a wire timestamp; a missing one is the oldest time.
    pub fn of(ts: Option<&gossip_proto::gossip::PeerTime>) -> Self {
        ts.map_or_else(Self::default, |t| Self {
            inc_num: t.inc_num,
            seq_num: t.seq_num,
        })
    }
}

/// How messages of one store replace each other.
pub trait Policy {
    /// What two messages must share to interact (besides the window).
    type Key: Ord + Clone;
    /// The stored message.
    type Item: Clone;
    /// The key of a message.
    fn key(&self, item: &Self::Item) -> Self::Key;
    /// Whether `new` invalidates `old` (same key). When false, `new` is the invalidated one.
    fn supersedes(&self, new: &Self::Item, old: &Self::Item) -> bool;
    /// Keys strictly below the bound are invalidated by a message with key `newest` (the block
    /// window); `None` when keys never interact.
    fn floor(&self, _newest: &Self::Key) -> Option<Self::Key> {
        None
    }
}

/// A message whose identity and age are a PKI-ID and a [`PeerTime`] (alive, StateInfo,
/// leadership).
pub trait PeerTimed {
    /// The PKI-ID the message is about.
    fn pki_id(&self) -> PkiId;
    /// Its timestamp.
    fn peer_time(&self) -> PeerTime;
}

/// Alive, StateInfo and leadership: per PKI-ID, the newer [`PeerTime`] wins; an equal one is
/// invalidated.
#[derive(Debug)]
pub struct PeerTimePolicy<T>(PhantomData<fn() -> T>);

impl<T> Default for PeerTimePolicy<T> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<T: PeerTimed + Clone> Policy for PeerTimePolicy<T> {
    type Key = PkiId;
    type Item = T;
    fn key(&self, item: &T) -> PkiId {
        item.pki_id()
    }
    fn supersedes(&self, new: &T, old: &T) -> bool {
        new.peer_time() > old.peer_time()
    }
}

/// A block as the block store keeps it.
pub trait Sequenced {
    /// The block number (`Payload.seq_num`).
    fn seq_num(&self) -> u64;
}

/// Blocks: the same number is invalidated (dedup); numbers more than `window` apart invalidate
/// the older (`maxBlockCountToStore`), except numbers at or above [`BlockPolicy::keep_from`].
#[derive(Debug)]
pub struct BlockPolicy<T> {
    window: u64,
    keep_from: u64,
    _item: PhantomData<fn() -> T>,
}

impl<T> BlockPolicy<T> {
    /// A policy keeping blocks within `window` of the newest.
    pub fn new(window: u64) -> Self {
        Self {
            window,
            keep_from: u64::MAX,
            _item: PhantomData,
        }
    }

    /// How far below the newest number blocks are kept (`maxBlockCountToStore`).
    pub fn window(&self) -> u64 {
        self.window
    }

    /// Numbers at or above `seq` are never invalidated by the window (ours, not Fabric's): the
    /// channel sets it to the next block it has to deliver, so a block it still needs is taken
    /// however many newer ones arrived first. Its owner bounds how far the newest may run ahead.
    pub fn keep_from(&mut self, seq: u64) {
        self.keep_from = seq;
    }
}

impl<T: Sequenced + Clone> Policy for BlockPolicy<T> {
    type Key = u64;
    type Item = T;
    fn key(&self, item: &T) -> u64 {
        item.seq_num()
    }
    fn supersedes(&self, _new: &T, _old: &T) -> bool {
        false
    }
    fn floor(&self, newest: &u64) -> Option<u64> {
        Some(newest.saturating_sub(self.window).min(self.keep_from))
    }
}

/// Identities: the same PKI-ID is invalidated (the first wins).
#[derive(Debug, Default)]
pub struct IdentityPolicy;

impl Policy for IdentityPolicy {
    type Key = PkiId;
    type Item = PkiId;
    fn key(&self, item: &PkiId) -> PkiId {
        *item
    }
    fn supersedes(&self, _new: &PkiId, _old: &PkiId) -> bool {
        false
    }
}

/// Why an add was refused. The store is unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AddError {
    /// A stored message (possibly expired) invalidates the new one.
    #[error("invalidated by a stored message")]
    Invalidated,
    /// The store holds `len_max` keys and the message would add one more.
    #[error("message store full ({len_max} messages)")]
    Full {
        /// The bound.
        len_max: usize,
    },
}

#[derive(Debug, Clone)]
struct Entry<T> {
    item: T,
    added_at: Instant,
    expired: bool,
}

/// A bounded message store under a [`Policy`], with an optional TTL.
#[derive(Debug)]
pub struct MsgStore<P: Policy> {
    policy: P,
    entries: BTreeMap<P::Key, Entry<P::Item>>,
    ttl: Option<Duration>,
    len_max: usize,
    expired_len: usize,
}

impl<P: Policy> MsgStore<P> {
    /// An empty store holding at most `len_max` messages (expired ones included), expiring after
    /// `ttl` when given.
    pub fn new(policy: P, ttl: Option<Duration>, len_max: usize) -> Self {
        Self {
            policy,
            entries: BTreeMap::new(),
            ttl,
            len_max,
            expired_len: 0,
        }
    }

    /// The policy.
    pub fn policy(&self) -> &P {
        &self.policy
    }

    /// The highest key stored (expired messages included).
    pub fn newest_key(&self) -> Option<&P::Key> {
        self.entries.last_key_value().map(|(k, _)| k)
    }

    /// The lowest key stored (expired messages included) above `key`.
    pub fn key_after(&self, key: &P::Key) -> Option<&P::Key> {
        self.entries
            .range((std::ops::Bound::Excluded(key), std::ops::Bound::Unbounded))
            .next()
            .map(|(k, _)| k)
    }

    /// The policy, to adjust it (a lower floor takes effect at once; a higher one at the next
    /// add).
    pub fn policy_mut(&mut self) -> &mut P {
        &mut self.policy
    }

    /// Fabric's `CheckValid`: no stored message (expired or not) invalidates `item`.
    pub fn check_valid(&self, item: &P::Item) -> bool {
        self.admit(item).is_ok()
    }

    fn admit(&self, item: &P::Item) -> Result<P::Key, AddError> {
        let key = self.policy.key(item);
        let newest = match self.entries.last_key_value() {
            Some((last, _)) if *last > key => last.clone(),
            _ => key.clone(),
        };
        if self.policy.floor(&newest).is_some_and(|floor| key < floor) {
            return Err(AddError::Invalidated);
        }
        match self.entries.get(&key) {
            Some(old) if !self.policy.supersedes(item, &old.item) => Err(AddError::Invalidated),
            Some(_) => Ok(key),
            None if self.entries.len() >= self.len_max => Err(AddError::Full {
                len_max: self.len_max,
            }),
            None => Ok(key),
        }
    }

    /// Fabric's `Add`: refuses an invalidated message; otherwise removes every message it
    /// invalidates (returned, Fabric's invalidation trigger) and stores it.
    pub fn add(&mut self, item: P::Item, now: Instant) -> Result<Vec<P::Item>, AddError> {
        let key = self.admit(&item)?;
        let mut removed = Vec::new();
        if let Some(floor) = self.policy.floor(&key) {
            // Usually one entry or none falls below the floor: pop them, never split the map
            // (a split allocates new nodes on every add).
            while let Some(first) = self.entries.first_entry() {
                if *first.key() >= floor {
                    break;
                }
                let e = first.remove();
                self.forget(&e);
                removed.push(e.item);
            }
        }
        let entry = Entry {
            item,
            added_at: now,
            expired: false,
        };
        if let Some(old) = self.entries.insert(key, entry) {
            self.forget(&old);
            removed.push(old.item);
        }
        Ok(removed)
    }

    fn forget(&mut self, entry: &Entry<P::Item>) {
        if entry.expired {
            self.expired_len -= 1;
        }
    }

    /// The live (not expired) message under `key`.
    pub fn get(&self, key: &P::Key) -> Option<&P::Item> {
        self.entries
            .get(key)
            .filter(|e| !e.expired)
            .map(|e| &e.item)
    }

    /// Live messages in key order.
    pub fn iter(&self) -> impl Iterator<Item = &P::Item> {
        self.entries
            .values()
            .filter(|e| !e.expired)
            .map(|e| &e.item)
    }

    /// How many live messages are stored.
    pub fn len(&self) -> usize {
        self.entries.len() - self.expired_len
    }

    /// Whether no live message is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes the message under `key`, expired or not.
    pub fn remove(&mut self, key: &P::Key) -> Option<P::Item> {
        let e = self.entries.remove(key)?;
        self.forget(&e);
        Some(e.item)
    }

    /// Fabric's `Purge`: removes every message matching `pred` (expired ones too) and returns them.
    pub fn purge(&mut self, mut pred: impl FnMut(&P::Item) -> bool) -> Vec<P::Item> {
        let keys: Vec<P::Key> = self
            .entries
            .iter()
            .filter(|(_, e)| pred(&e.item))
            .map(|(k, _)| k.clone())
            .collect();
        keys.iter().filter_map(|k| self.remove(k)).collect()
    }

    /// Marks messages older than the TTL as expired and returns them (Fabric's expire callback);
    /// removes those older than 2×TTL. Does nothing without a TTL.
    pub fn expire(&mut self, now: Instant) -> Vec<P::Item> {
        let Some(ttl) = self.ttl else {
            return Vec::new();
        };
        let mut newly_expired = Vec::new();
        self.entries.retain(|_, e| {
            if e.added_at + ttl * 2 <= now {
                if !e.expired {
                    newly_expired.push(e.item.clone());
                }
                return false;
            }
            if !e.expired && e.added_at + ttl <= now {
                e.expired = true;
                newly_expired.push(e.item.clone());
            }
            true
        });
        self.expired_len = self.entries.values().filter(|e| e.expired).count();
        newly_expired
    }
}

#[cfg(test)]
mod tests;
