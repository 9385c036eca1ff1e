//! The seen-before cache: broadcast messages already accepted, so a copy arriving from another peer
//! is dropped before anyone pays for its signature again.
//!
//! A key is a SHA-256 digest over the fields that identify a broadcast message (spec 3.5–3.10
//! comparators): data_msg: channel + seq; alive: pki_id + inc + seq; state_info: pki_id +
//! channel_MAC + inc + seq; leadership: pki_id + inc + seq + is_declaration. The digest is fixed
//! size, keeps no slice of the received buffer alive, and cannot be steered into collisions.
//!
//! Keys go in only after a message passed its checks (a forged copy can't poison the cache): a
//! signed kind once its signatures verified, a data message once its channel took the block. The
//! cache is a FIFO per shard, bounded twice: by count (when full, the oldest key leaves) and by
//! age (a key older than [`SEEN_TTL_DEFAULT`] leaves at the shard's next insert). The age bound
//! keeps the cache, and so the resident set, flat at a steady message rate: with the count bound
//! alone it grew for an hour at 20 blocks/s until 65,536 keys were held (~8 MiB/h of RSS in the
//! R7 soak, `results/reliability.md`). A copy that arrives after its key left is only checked
//! again and then refused by its store (a block below the delivery height, an alive or StateInfo
//! message no newer than the one held): forgetting costs a signature check, never a
//! redelivery. Shards whose table is much larger than what they hold give the memory back.

use std::collections::{HashSet, VecDeque};
use std::time::Duration;

use gossip_proto::gossip::gossip_message::Content;
use gossip_proto::gossip::{GossipMessage, PeerTime};
use parking_lot::Mutex;
use ring::digest;

use crate::time::Instant;

/// Default bound on remembered keys.
pub const SEEN_LEN_MAX_DEFAULT: usize = 65_536;
/// Default age bound on remembered keys. Duplicates of a broadcast come within one push wave
/// (milliseconds) or a few pull cycles (Fabric's `pullInterval` is 4 s): 20 s covers five.
pub const SEEN_TTL_DEFAULT: Duration = Duration::from_secs(20);
/// A shard's table is shrunk when its capacity exceeds this many times what it holds (and
/// [`SHRINK_FLOOR_LEN`]): memory taken during a burst goes back once the burst is over.
const SHRINK_SLACK_FACTOR: usize = 4;
/// Tables this small are never shrunk (re-growing them would cost more than they hold).
const SHRINK_FLOOR_LEN: usize = 64;

const SHARDS_COUNT: usize = 16;

/// What identifies a broadcast message.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SeenKey([u8; 32]);

impl std::fmt::Debug for SeenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SeenKey({})", hex::encode(&self.0[..8]))
    }
}

struct KeyBuilder(digest::Context);

impl KeyBuilder {
    fn new(kind: u8) -> Self {
        let mut ctx = digest::Context::new(&digest::SHA256);
        ctx.update(b"gossip-seen-v1");
        ctx.update(&[kind]);
        Self(ctx)
    }

    fn bytes(mut self, field: &[u8]) -> Self {
        self.0.update(&(field.len() as u64).to_le_bytes());
        self.0.update(field);
        self
    }

    fn u64(mut self, value: u64) -> Self {
        self.0.update(&value.to_le_bytes());
        self
    }

    fn time(self, time: Option<&PeerTime>) -> Self {
        let t = time.copied().unwrap_or_default();
        self.u64(t.inc_num).u64(t.seq_num)
    }

    fn finish(self) -> SeenKey {
        let mut out = [0u8; 32];
        out.copy_from_slice(self.0.finish().as_ref());
        SeenKey(out)
    }
}

impl SeenKey {
    /// The key of a broadcast message; `None` for kinds that are not deduplicated here (requests,
    /// responses and pull messages must be handled every time).
    pub fn of(message: &GossipMessage) -> Option<SeenKey> {
        let key = match message.content.as_ref()? {
            Content::DataMsg(d) => {
                return Some(Self::of_block(
                    &message.channel,
                    d.payload.as_ref().map_or(0, |p| p.seq_num),
                ));
            }
            Content::AliveMsg(a) => KeyBuilder::new(2)
                .bytes(a.membership.as_ref().map_or(&[][..], |m| &m.pki_id))
                .time(a.timestamp.as_ref()),
            Content::StateInfo(s) => KeyBuilder::new(3)
                .bytes(&s.pki_id)
                .bytes(&s.channel_mac)
                .time(s.timestamp.as_ref()),
            Content::LeadershipMsg(l) => KeyBuilder::new(4)
                .bytes(&l.pki_id)
                .time(l.timestamp.as_ref())
                .u64(u64::from(l.is_declaration)),
            _ => return None,
        };
        Some(key.finish())
    }

    /// The key of block `seq_num` of `channel` (a data message's).
    pub fn of_block(channel: &[u8], seq_num: u64) -> SeenKey {
        KeyBuilder::new(1).bytes(channel).u64(seq_num).finish()
    }
}

#[derive(Debug, Default)]
struct Shard {
    set: HashSet<SeenKey>,
    /// Keys in insertion order, with when they went in.
    order: VecDeque<(SeenKey, Instant)>,
}

impl Shard {
    /// Drops the oldest keys beyond `len_max` or inserted before `born_after`, then gives back
    /// memory the table no longer needs.
    fn evict(&mut self, len_max: usize, born_after: Instant) {
        while let Some((key, at)) = self.order.front().copied() {
            let too_old = at < born_after;
            if self.order.len() <= len_max && !too_old {
                break;
            }
            self.order.pop_front();
            self.set.remove(&key);
        }
        let len = self.order.len().max(SHRINK_FLOOR_LEN);
        if self.set.capacity() > len * SHRINK_SLACK_FACTOR {
            self.set.shrink_to(len * 2);
            self.order.shrink_to(len * 2);
        }
    }
}

/// A bounded set of [`SeenKey`]s, internally synchronised.
#[derive(Debug)]
pub struct SeenCache {
    shards: Box<[Mutex<Shard>]>,
    shard_len_max: usize,
    ttl: Duration,
}

impl SeenCache {
    /// A cache remembering about `seen_len_max` keys (rounded up to a multiple of the shard
    /// count), each for at most `ttl`.
    pub fn new(seen_len_max: usize, ttl: Duration) -> Self {
        Self {
            shards: (0..SHARDS_COUNT)
                .map(|_| Mutex::new(Shard::default()))
                .collect(),
            shard_len_max: seen_len_max.div_ceil(SHARDS_COUNT).max(1),
            ttl,
        }
    }

    fn shard(&self, key: &SeenKey) -> &Mutex<Shard> {
        &self.shards[usize::from(key.0[0]) % SHARDS_COUNT]
    }

    /// Whether the key was inserted and not evicted since.
    pub fn contains(&self, key: &SeenKey) -> bool {
        self.shard(key).lock().set.contains(key)
    }

    /// Inserts a key at `now`; `false` when it was present already. Evicts the shard's keys
    /// older than the age bound, and its oldest key when full.
    pub fn insert(&self, key: SeenKey, now: Instant) -> bool {
        let mut shard = self.shard(&key).lock();
        if !shard.set.insert(key) {
            return false;
        }
        shard.order.push_back((key, now));
        shard.evict(self.shard_len_max, now - self.ttl);
        true
    }

    /// Keys remembered now.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().order.len()).sum()
    }

    /// Whether no key is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use gossip_proto::gossip::*;

    use super::*;

    fn msg(channel: &'static [u8], content: gossip_message::Content) -> GossipMessage {
        GossipMessage {
            nonce: 0,
            channel: Bytes::from_static(channel),
            tag: 1,
            content: Some(content),
        }
    }

    fn time(inc_num: u64, seq_num: u64) -> Option<PeerTime> {
        Some(PeerTime { inc_num, seq_num })
    }

    fn data(channel: &'static [u8], seq_num: u64) -> GossipMessage {
        msg(
            channel,
            Content::DataMsg(DataMessage {
                payload: Some(Payload {
                    seq_num,
                    data: Bytes::new(),
                    private_data: vec![],
                }),
            }),
        )
    }

    fn alive(pki: u8, inc: u64, seq: u64) -> GossipMessage {
        let membership = Some(Member {
            pki_id: Bytes::from(vec![pki; 32]),
            ..Default::default()
        });
        msg(
            b"",
            Content::AliveMsg(AliveMessage {
                membership,
                timestamp: time(inc, seq),
                identity: Bytes::new(),
            }),
        )
    }

    fn state_info(pki: u8, mac: u8, seq: u64) -> GossipMessage {
        msg(
            b"",
            Content::StateInfo(StateInfo {
                pki_id: Bytes::from(vec![pki; 32]),
                channel_mac: Bytes::from(vec![mac; 32]),
                timestamp: time(1, seq),
                properties: None,
            }),
        )
    }

    fn leadership(pki: u8, seq: u64, is_declaration: bool) -> GossipMessage {
        msg(
            b"ch",
            Content::LeadershipMsg(LeadershipMessage {
                pki_id: Bytes::from(vec![pki; 32]),
                timestamp: time(1, seq),
                is_declaration,
            }),
        )
    }

    #[test]
    fn keys_identify_broadcasts() {
        // (a, b, same key?)
        let table = [
            (data(b"ch1", 5), data(b"ch1", 5), true),
            (data(b"ch1", 5), data(b"ch1", 6), false),
            (data(b"ch1", 5), data(b"ch2", 5), false),
            (alive(1, 10, 1), alive(1, 10, 1), true),
            (alive(1, 10, 1), alive(1, 10, 2), false),
            (alive(1, 10, 1), alive(1, 11, 1), false),
            (alive(1, 10, 1), alive(2, 10, 1), false),
            (state_info(1, 7, 3), state_info(1, 7, 3), true),
            (state_info(1, 7, 3), state_info(1, 8, 3), false),
            (state_info(1, 7, 3), state_info(1, 7, 4), false),
            (leadership(1, 3, true), leadership(1, 3, true), true),
            (leadership(1, 3, true), leadership(1, 3, false), false),
            (leadership(1, 3, true), leadership(2, 3, true), false),
            // Different kinds never share a key.
            (alive(1, 0, 0), leadership(1, 0, false), false),
        ];
        for (i, (a, b, same)) in table.iter().enumerate() {
            let (ka, kb) = (SeenKey::of(a).expect("key"), SeenKey::of(b).expect("key"));
            assert_eq!(ka == kb, *same, "row {i}");
        }
        let hello = msg(b"", Content::Hello(GossipHello::default()));
        assert!(SeenKey::of(&hello).is_none());
    }

    fn at_s(secs: u64) -> Instant {
        Instant::from_nanos(secs * 1_000_000_000)
    }

    fn block_keys(len: u64) -> Vec<SeenKey> {
        (0..len)
            .map(|i| SeenKey::of(&data(b"c", i)).expect("key"))
            .collect()
    }

    #[test]
    fn bounded_fifo() {
        let cache = SeenCache::new(SHARDS_COUNT * 2, SEEN_TTL_DEFAULT);
        let keys = block_keys(200);
        for key in &keys {
            assert!(cache.insert(*key, at_s(1)));
            assert!(
                !cache.insert(*key, at_s(1)),
                "second insert reports present"
            );
        }
        assert!(cache.len() <= SHARDS_COUNT * 2);
        assert!(
            cache.contains(keys.last().expect("last")),
            "the newest key stays"
        );
        assert!(!cache.contains(&keys[0]), "the oldest key was evicted");
    }

    #[test]
    fn keys_leave_after_the_age_bound_and_the_table_shrinks() {
        let ttl = Duration::from_secs(20);
        let cache = SeenCache::new(SEEN_LEN_MAX_DEFAULT, ttl);
        let keys = block_keys(20_000);
        // A burst at t = 0 s fills the tables.
        for key in &keys {
            assert!(cache.insert(*key, at_s(0)));
        }
        assert_eq!(cache.len(), keys.len());
        let capacity_after_burst: usize =
            cache.shards.iter().map(|s| s.lock().set.capacity()).sum();
        // Still remembered within the age bound.
        assert!(
            !cache.insert(keys[0], at_s(20)),
            "20 s old: still a duplicate"
        );
        // A steady trickle 21 s later: every shard's next insert drops the burst's keys.
        let later = block_keys(21_000);
        for key in &later[20_000..] {
            assert!(cache.insert(*key, at_s(21)));
        }
        assert_eq!(cache.len(), 1_000, "only the trickle's keys are left");
        assert!(!cache.contains(&keys[0]), "an old key left");
        assert!(cache.insert(keys[0], at_s(21)), "and counts as new again");
        let capacity_now: usize = cache.shards.iter().map(|s| s.lock().set.capacity()).sum();
        assert!(
            capacity_now * 4 < capacity_after_burst,
            "tables gave memory back: {capacity_after_burst} -> {capacity_now}"
        );
    }
}
