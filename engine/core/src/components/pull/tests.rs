use std::time::Duration;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::*;

fn config(eager: bool) -> PullConfig {
    PullConfig {
        interval: Duration::from_secs(4),
        digest_wait: Duration::from_secs(1),
        request_wait: Duration::from_millis(1500),
        response_wait: Duration::from_secs(2),
        eager,
        gap_interval: Duration::from_millis(100),
    }
}

fn at(ms: u64) -> Instant {
    Instant::from_nanos(1_000_000_000_000 + ms * 1_000_000)
}

fn peer(i: u8) -> PkiId {
    PkiId([i; 32])
}

fn rng() -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(7)
}

/// An engine with a round started at `at(0)` with peers 1, 2, 3; returns their nonces.
fn started(eager: bool) -> (PullEngine<u64>, Vec<(PkiId, u64)>) {
    let mut e = PullEngine::new(config(eager), at(0));
    assert_eq!(e.round_due(at(0)), Some(RoundKind::Periodic));
    let hellos = e.start_round(
        RoundKind::Periodic,
        &[peer(1), peer(2), peer(3)],
        at(0),
        &mut rng(),
    );
    assert_eq!(hellos.len(), 3);
    (e, hellos)
}

#[test]
fn round_runs_hello_digest_request_update_then_ends() {
    let (mut e, hellos) = started(false);
    let (p1, n1) = hellos[0];
    let (p2, n2) = hellos[1];
    assert_eq!(e.poll_timeout(), at(1_000), "digest deadline");
    e.on_digest(p1, n1, [5, 6, 7], at(10)).unwrap();
    e.on_digest(p2, n2, [6, 8], at(20)).unwrap();
    assert!(!e.requests_due(at(999)));
    assert!(e.requests_due(at(1_000)));
    let requests = e.take_requests(at(1_000), |&i| i != 7, &mut rng());
    let mut asked: Vec<u64> = requests.iter().flat_map(|r| r.2.clone()).collect();
    asked.sort_unstable();
    assert_eq!(asked, [5, 6, 8], "7 is held by now; each item asked once");
    for (p, n, items) in &requests {
        let expected = hellos.iter().find(|h| h.0 == *p).unwrap().1;
        assert_eq!(
            *n, expected,
            "a request echoes the nonce of the hello to that peer"
        );
        assert!(items.iter().all(|i| *p == p1 || *i != 5), "5 only from p1");
        assert!(items.iter().all(|i| *p == p2 || *i != 8), "8 only from p2");
    }
    assert_eq!(e.poll_timeout(), at(3_000), "responses until +2 s");
    e.on_update(p1, n1, at(2_000)).unwrap();
    assert_eq!(
        e.on_update(p1, n2, at(2_000)),
        Err(PullReject::UnknownNonce)
    );
    assert_eq!(
        e.on_update(p2, 99, at(2_000)),
        Err(PullReject::UnknownNonce)
    );
    e.advance(at(3_000));
    assert!(!e.in_round());
    assert_eq!(
        e.on_update(p1, n1, at(3_000)),
        Err(PullReject::UnknownNonce)
    );
    assert_eq!(
        e.poll_timeout(),
        at(4_000),
        "next round one interval after the start"
    );
}

#[test]
fn digests_need_their_nonce_their_peer_their_phase_and_come_once() {
    let (mut e, hellos) = started(false);
    let (p1, n1) = hellos[0];
    let (p2, _) = hellos[1];
    assert_eq!(
        e.on_digest(p2, n1, [1], at(1)),
        Err(PullReject::UnknownNonce),
        "another peer's nonce"
    );
    assert_eq!(
        e.on_digest(p1, n1 ^ 1, [1], at(1)),
        Err(PullReject::UnknownNonce)
    );
    e.on_digest(p1, n1, [1], at(1)).unwrap();
    assert_eq!(
        e.on_digest(p1, n1, [2], at(2)),
        Err(PullReject::UnknownNonce),
        "one digest per hello"
    );
    let (mut late, hellos) = started(false);
    assert_eq!(
        late.on_digest(hellos[2].0, hellos[2].1, [1], at(1_000)),
        Err(PullReject::UnknownNonce),
        "after the digest wait"
    );
    assert_eq!(
        late.on_update(hellos[2].0, hellos[2].1, at(500)),
        Err(PullReject::UnknownNonce),
        "no update before the requests"
    );
}

#[test]
fn responder_nonces_expire_are_used_once_and_are_per_peer() {
    let mut e: PullEngine<u64> = PullEngine::new(config(false), at(4_000));
    e.on_hello(peer(1), 42, at(0)).unwrap();
    assert_eq!(
        e.on_request(peer(2), 42, at(10)),
        Err(PullReject::UnknownNonce),
        "another peer cannot use it"
    );
    e.on_request(peer(1), 42, at(10)).unwrap();
    assert_eq!(
        e.on_request(peer(1), 42, at(20)),
        Err(PullReject::UnknownNonce),
        "used up"
    );
    e.on_hello(peer(1), 43, at(0)).unwrap();
    assert_eq!(
        e.on_request(peer(1), 43, at(1_500)),
        Err(PullReject::UnknownNonce),
        "expired after requestWaitTime"
    );
    e.on_hello(peer(1), 44, at(2_000)).unwrap();
    e.advance(at(3_500));
    assert_eq!(
        e.on_request(peer(1), 44, at(3_400)),
        Err(PullReject::UnknownNonce),
        "purged by advance"
    );
}

#[test]
fn responder_nonces_are_bounded() {
    let mut e: PullEngine<u64> = PullEngine::new(config(false), at(4_000));
    for n in 0..10 {
        e.on_hello(peer(1), n, at(n)).unwrap();
    }
    // One peer keeps its newest INCOMING_PER_PEER_MAX nonces.
    for n in 0..10 - INCOMING_PER_PEER_MAX as u64 {
        assert_eq!(
            e.on_request(peer(1), n, at(20)),
            Err(PullReject::UnknownNonce)
        );
    }
    e.on_request(peer(1), 9, at(20)).unwrap();
    // All peers together hold at most INCOMING_LEN_MAX.
    let mut e: PullEngine<u64> = PullEngine::new(config(false), at(4_000));
    let mut refused = 0;
    for i in 0..(INCOMING_LEN_MAX + 10) {
        let mut id = [0u8; 32];
        id[..8].copy_from_slice(&(i as u64).to_le_bytes());
        if e.on_hello(PkiId(id), 1, at(0)) == Err(PullReject::Full) {
            refused += 1;
        }
    }
    assert_eq!(refused, 10);
    // Expired ones make room.
    e.on_hello(peer(200), 1, at(1_500)).unwrap();
}

#[test]
fn wanted_items_are_bounded_keeping_the_lowest() {
    let (mut e, hellos) = started(false);
    let (p1, n1) = hellos[0];
    let (p2, n2) = hellos[1];
    let liar = (1_000_000..1_000_000 + WANTED_LEN_MAX as u64).collect::<Vec<_>>();
    e.on_digest(p1, n1, liar, at(1)).unwrap();
    e.on_digest(p2, n2, [5, 6], at(2)).unwrap();
    let requests = e.take_requests(at(1_000), |_| true, &mut rng());
    let asked: BTreeSet<u64> = requests.iter().flat_map(|r| r.2.clone()).collect();
    assert_eq!(asked.len(), WANTED_LEN_MAX);
    assert!(
        asked.contains(&5) && asked.contains(&6),
        "the low items win"
    );
    assert_eq!(e.stats().items_over_bound, 2);
}

#[test]
fn requests_spread_over_the_owners() {
    let (mut e, hellos) = started(false);
    let items: Vec<u64> = (1..=60).collect();
    for &(p, n) in &hellos {
        e.on_digest(p, n, items.clone(), at(1)).unwrap();
    }
    let requests = e.take_requests(at(1_000), |_| true, &mut rng());
    assert_eq!(requests.len(), 3, "every owner gets a share");
    let total: usize = requests.iter().map(|r| r.2.len()).sum();
    assert_eq!(total, 60, "each item requested once");
}

#[test]
fn eager_gap_round_is_rate_limited_and_ends_early() {
    let (mut e, hellos) = started(true);
    // All three answered: the requests are due at once.
    for (i, &(p, n)) in hellos.iter().enumerate() {
        let items: Vec<u64> = if i == 0 { vec![7, 8] } else { vec![] };
        e.on_digest(p, n, items, at(5)).unwrap();
    }
    assert!(e.requests_due(at(5)));
    let requests = e.take_requests(at(5), |_| true, &mut rng());
    assert_eq!(requests.len(), 1);
    e.arrived(&7);
    assert!(e.in_round());
    e.arrived(&8);
    assert!(!e.in_round(), "every requested item arrived");
    assert_eq!(e.stats().rounds_ended_early, 1);
    // A gap right away waits for gap_interval after the last start.
    e.gap(at(10));
    assert_eq!(e.round_due(at(10)), None);
    assert_eq!(e.poll_timeout(), at(100));
    assert_eq!(e.round_due(at(100)), Some(RoundKind::Gap));
    e.cancel_gap();
    assert_eq!(e.round_due(at(100)), None);
    assert_eq!(e.poll_timeout(), at(4_000));
}

#[test]
fn timer_only_ignores_gaps_and_keeps_the_full_phases() {
    let (mut e, hellos) = started(false);
    for &(p, n) in &hellos {
        e.on_digest(p, n, [7], at(5)).unwrap();
    }
    assert!(!e.requests_due(at(5)), "waits digestWaitTime");
    e.take_requests(at(1_000), |_| true, &mut rng());
    e.arrived(&7);
    assert!(e.in_round(), "waits responseWaitTime");
    e.advance(at(3_000));
    e.gap(at(3_000));
    assert_eq!(e.round_due(at(3_000)), None);
    assert_eq!(e.round_due(at(4_000)), Some(RoundKind::Periodic));
}

#[test]
fn no_peer_no_round() {
    let mut e: PullEngine<u64> = PullEngine::new(config(true), at(0));
    assert!(
        e.start_round(RoundKind::Periodic, &[], at(0), &mut rng())
            .is_empty()
    );
    assert!(!e.in_round());
    assert_eq!(e.poll_timeout(), at(4_000));
}

#[test]
fn a_quiet_stream_makes_one_round_due_after_one_and_a_half_intervals() {
    let mut e = PullEngine::new(config(true), at(4_000));
    let peers = [peer(1), peer(2), peer(3)];
    // New blocks every 50 ms; an older or repeated one is not news.
    for (i, seq) in [1u64, 2, 3].into_iter().enumerate() {
        e.observe(&seq, at(1_000 + 50 * i as u64), true);
    }
    e.observe(&2, at(1_120), true);
    assert_eq!(
        e.poll_timeout(),
        at(1_175),
        "block 4 is 25 ms late at 1,175"
    );
    assert_eq!(e.round_due(at(1_174)), None);
    assert_eq!(e.round_due(at(1_175)), Some(RoundKind::Quiet));
    assert_eq!(
        e.start_round(RoundKind::Quiet, &peers, at(1_175), &mut rng())
            .len(),
        3
    );
    assert_eq!(e.stats().quiet_rounds, 1);
    let hellos: Vec<_> = e
        .round
        .as_ref()
        .unwrap()
        .nonces
        .iter()
        .map(|(n, o)| (o.peer, *n))
        .collect();
    for (p, n) in hellos {
        e.on_digest(p, n, [4], at(1_180)).unwrap();
    }
    e.take_requests(at(1_180), |_| true, &mut rng());
    // Block 4 arrives by pull: the silence check re-arms from there (not an interval), waiting
    // for gap_interval after the round's start.
    e.arrived(&4);
    e.observe(&4, at(1_185), false);
    assert!(!e.in_round());
    assert_eq!(e.poll_timeout(), at(1_275), "gap_interval after 1,175");
    // Block 5 comes by push on time: no round.
    e.observe(&5, at(1_200), true);
    assert_eq!(e.poll_timeout(), at(1_275));
    e.start_round(RoundKind::Quiet, &peers, at(1_275), &mut rng());
    // One round per silence: until a new block arrives, only the periodic round is left.
    assert_eq!(e.quiet_at(), None);
}

#[test]
fn without_eager_a_quiet_stream_waits_for_the_timer() {
    let mut e = PullEngine::new(config(false), at(4_000));
    for seq in 1..=3u64 {
        e.observe(&seq, at(1_000 + 50 * seq), true);
    }
    assert_eq!(e.poll_timeout(), at(4_000));
}

#[test]
fn a_round_waiting_on_silent_peers_gives_way_to_a_gap_round() {
    // A periodic round just before the first block: the peers' stores are empty, so (as in
    // Fabric) none answers the hello and the digest phase would last the whole digest_wait.
    let (mut e, old) = started(true);
    e.gap(at(50));
    assert_eq!(
        e.round_due(at(50)),
        None,
        "not before gap_interval after the start"
    );
    assert_eq!(e.poll_timeout(), at(100));
    assert_eq!(e.round_due(at(100)), Some(RoundKind::Gap));
    let peers = [peer(4), peer(5), peer(6)];
    let hellos = e.start_round(RoundKind::Gap, &peers, at(100), &mut rng());
    assert_eq!(hellos.len(), 3);
    assert_eq!(e.stats().rounds_superseded, 1);
    assert_eq!(e.stats().rounds, 2);
    // The given-up round's nonces are forgotten; the new round's work.
    let (p, n) = old[0];
    assert_eq!(
        e.on_digest(p, n, [1], at(110)),
        Err(PullReject::UnknownNonce)
    );
    let (p, n) = hellos[0];
    assert_eq!(e.on_digest(p, n, [1], at(110)), Ok(()));
}

#[test]
fn on_a_slow_link_a_round_is_given_its_round_trips_before_a_gap_round_replaces_it() {
    // 150 ms answer delays (a WAN): the first round is given up at gap_interval, before its
    // digest comes; the late digest teaches the engine the delay, and later rounds run their
    // phases to the end however often gaps are seen (before, every round was given up at
    // 100 ms and no block was ever pulled).
    let (mut e, old) = started(true);
    e.gap(at(10));
    assert_eq!(
        e.round_due(at(100)),
        Some(RoundKind::Gap),
        "nothing known yet"
    );
    let peers = [peer(1), peer(2), peer(3)];
    let mut other_rng = ChaCha8Rng::seed_from_u64(8);
    let hellos = e.start_round(RoundKind::Gap, &peers, at(100), &mut other_rng);
    let (p, n) = old[0];
    assert_eq!(
        e.on_digest(p, n, [1], at(150)),
        Err(PullReject::UnknownNonce)
    );
    assert_eq!(e.answer_delay(), Some(Duration::from_millis(150)));
    // Gaps keep coming: the new round is not given up before 3 × 150 ms.
    e.gap(at(200));
    assert_eq!(e.round_due(at(300)), None);
    assert_eq!(e.poll_timeout(), at(100 + 450));
    for (p, n) in &hellos {
        e.on_digest(*p, *n, [1, 2], at(250)).unwrap();
    }
    assert!(e.requests_due(at(250)), "every peer answered");
    let requests = e.take_requests(at(250), |_| true, &mut rng());
    // The responses phase began at 250 ms: it too gets three answer delays.
    assert_eq!(e.round_due(at(500)), None);
    let (p, n, _) = &requests[0];
    assert_eq!(e.on_update(*p, *n, at(400)), Ok(()));
    e.arrived(&1);
    e.arrived(&2);
    assert!(!e.in_round(), "ended early with every item in");
    assert_eq!(e.stats().rounds_superseded, 1);
}

#[test]
fn a_periodic_round_never_supersedes_and_timer_only_engines_keep_waiting() {
    let (mut e, _) = started(true);
    let peers = [peer(4)];
    assert!(
        e.start_round(RoundKind::Periodic, &peers, at(500), &mut rng())
            .is_empty()
    );
    assert_eq!(e.stats().rounds_superseded, 0);
    let (mut e, _) = started(false);
    e.gap(at(50));
    assert_eq!(e.round_due(at(500)), None);
    assert_eq!(e.poll_timeout(), at(1_000), "the digest phase's end");
}
