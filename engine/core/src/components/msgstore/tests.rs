//! Mirrors Fabric's `msgstore_test.go` and the comparator tests of `protoext`.

use super::*;

#[derive(Clone, Debug, PartialEq, Eq)]
struct Alive {
    pki: u8,
    inc: u64,
    seq: u64,
}

impl PeerTimed for Alive {
    fn pki_id(&self) -> PkiId {
        PkiId([self.pki; 32])
    }
    fn peer_time(&self) -> PeerTime {
        PeerTime {
            inc_num: self.inc,
            seq_num: self.seq,
        }
    }
}

fn alive(pki: u8, inc: u64, seq: u64) -> Alive {
    Alive { pki, inc, seq }
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Block(u64);

impl Sequenced for Block {
    fn seq_num(&self) -> u64 {
        self.0
    }
}

fn t(s: u64) -> Instant {
    Instant::from_nanos(s * 1_000_000_000)
}

fn alive_store(ttl: Option<Duration>) -> MsgStore<PeerTimePolicy<Alive>> {
    MsgStore::new(PeerTimePolicy::default(), ttl, 1_000)
}

#[test]
fn size_counts_distinct_keys() {
    let mut s = alive_store(None);
    for i in 0..10 {
        s.add(alive(i, 1, 1), t(0)).unwrap();
    }
    assert_eq!(s.len(), 10);
}

#[test]
fn newer_invalidates_older_and_equal_is_invalidated() {
    let mut s = alive_store(None);
    assert!(s.add(alive(1, 1, 5), t(0)).unwrap().is_empty());
    assert_eq!(s.add(alive(1, 1, 5), t(0)), Err(AddError::Invalidated));
    assert_eq!(s.add(alive(1, 1, 4), t(0)), Err(AddError::Invalidated));
    assert_eq!(s.add(alive(1, 0, 99), t(0)), Err(AddError::Invalidated));
    assert!(!s.check_valid(&alive(1, 1, 5)));
    assert!(s.check_valid(&alive(1, 1, 6)));
    assert_eq!(s.add(alive(1, 1, 6), t(0)).unwrap(), vec![alive(1, 1, 5)]);
    assert_eq!(s.add(alive(1, 2, 0), t(0)).unwrap(), vec![alive(1, 1, 6)]);
    assert_eq!(s.len(), 1);
    assert_eq!(s.get(&PkiId([1; 32])), Some(&alive(1, 2, 0)));
}

#[test]
fn different_keys_never_interact() {
    let mut s = alive_store(None);
    s.add(alive(1, 9, 9), t(0)).unwrap();
    assert!(s.check_valid(&alive(2, 0, 0)));
    s.add(alive(2, 0, 0), t(0)).unwrap();
    assert_eq!(s.iter().count(), 2);
}

#[test]
fn purge_removes_matching() {
    let mut s = alive_store(None);
    for i in 0..10 {
        s.add(alive(i, 1, 1), t(0)).unwrap();
    }
    let purged = s.purge(|m| m.pki % 2 == 0);
    assert_eq!(purged.len(), 5);
    assert_eq!(s.len(), 5);
    assert!(s.iter().all(|m| m.pki % 2 == 1));
}

#[test]
fn expiration_hides_then_removes_but_still_invalidates() {
    let ttl = Duration::from_secs(10);
    let mut s = alive_store(Some(ttl));
    s.add(alive(1, 1, 1), t(0)).unwrap();
    s.add(alive(2, 1, 1), t(5)).unwrap();
    assert!(s.expire(t(9)).is_empty());
    assert_eq!(s.expire(t(10)), vec![alive(1, 1, 1)]);
    assert_eq!(s.len(), 1);
    assert_eq!(s.get(&PkiId([1; 32])), None);
    assert!(!s.check_valid(&alive(1, 1, 1)), "expired still invalidates");
    assert!(s.expire(t(12)).is_empty(), "expired once only");
    assert_eq!(s.expire(t(15)), vec![alive(2, 1, 1)]);
    s.expire(t(20));
    assert!(s.check_valid(&alive(1, 1, 1)), "gone after 2×TTL");
    assert_eq!(s.len(), 0);
    assert!(s.is_empty());
}

#[test]
fn newer_message_replaces_an_expired_one() {
    let mut s = alive_store(Some(Duration::from_secs(10)));
    s.add(alive(1, 1, 1), t(0)).unwrap();
    s.expire(t(10));
    assert_eq!(s.len(), 0);
    s.add(alive(1, 1, 2), t(11)).unwrap();
    assert_eq!(s.len(), 1);
    assert!(s.expire(t(20)).is_empty());
}

#[test]
fn bounded_by_len_max() {
    let mut s = MsgStore::new(PeerTimePolicy::<Alive>::default(), None, 2);
    s.add(alive(1, 1, 1), t(0)).unwrap();
    s.add(alive(2, 1, 1), t(0)).unwrap();
    assert_eq!(
        s.add(alive(3, 1, 1), t(0)),
        Err(AddError::Full { len_max: 2 })
    );
    s.add(alive(2, 1, 2), t(0))
        .expect("replacing needs no room");
}

#[test]
fn blocks_dedup_by_seq_and_keep_a_window() {
    let mut s = MsgStore::new(BlockPolicy::new(10), None, 100);
    s.add(Block(5), t(0)).unwrap();
    assert_eq!(s.add(Block(5), t(0)), Err(AddError::Invalidated));
    for n in 0..5 {
        s.add(Block(n), t(0)).unwrap();
    }
    assert_eq!(s.len(), 6);
    // 16 - 5 = 11 > 10: blocks 0..=5 go.
    let removed = s.add(Block(16), t(0)).unwrap();
    assert_eq!(
        removed.iter().map(|b| b.0).collect::<Vec<_>>(),
        [0, 1, 2, 3, 4, 5]
    );
    assert!(!s.check_valid(&Block(5)), "too old for the window");
    assert!(s.check_valid(&Block(6)), "16 - 6 = 10 is within the window");
    s.add(Block(6), t(0)).unwrap();
    assert_eq!(s.iter().map(|b| b.0).collect::<Vec<_>>(), [6, 16]);
}

#[test]
fn identities_first_wins() {
    let mut s = MsgStore::new(IdentityPolicy, None, 10);
    s.add(PkiId([1; 32]), t(0)).unwrap();
    assert_eq!(s.add(PkiId([1; 32]), t(0)), Err(AddError::Invalidated));
    s.add(PkiId([2; 32]), t(0)).unwrap();
    assert_eq!(s.len(), 2);
}
