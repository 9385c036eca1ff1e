use std::time::Duration;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::*;

fn config() -> StateConfig {
    StateConfig {
        enabled: true,
        ..StateConfig::default()
    }
}

fn peer(n: u8) -> PkiId {
    PkiId::from_slice(&[n; 32]).expect("32 bytes")
}

fn at_secs(s: u64) -> Instant {
    Instant::from_nanos(s * 1_000_000_000)
}

fn ans(from: PkiId, nonce: u64) -> Answer {
    Answer { from, nonce }
}

/// Picks peer 7 for any range.
fn seven(_need: u64, _rng: &mut ChaCha8Rng) -> Option<PkiId> {
    Some(peer(7))
}

#[test]
fn a_check_transfers_the_gap_in_inclusive_batches() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut st = StateTransfer::new(config(), Instant::ZERO);
    assert_eq!(st.poll_timeout(), at_secs(10));
    assert_eq!(st.tick(at_secs(9), 5, 40, seven, &mut rng), None, "not due");
    let r = st
        .tick(at_secs(10), 5, 40, seven, &mut rng)
        .expect("a request");
    assert_eq!(
        (r.to, r.start_seq, r.end_seq),
        (peer(7), 5, 15),
        "batchSize + 1 blocks"
    );
    assert_eq!(
        st.poll_timeout(),
        at_secs(10) + ANSWER_WAIT_INITIAL,
        "no answer timed yet: the initial wait"
    );
    let next = st
        .on_response(ans(peer(7), r.nonce), 16, at_secs(11), seven, &mut rng)
        .expect("matches")
        .expect("the next range at once");
    assert_eq!((next.start_seq, next.end_seq), (16, 26));
    let last = st
        .on_response(ans(peer(7), next.nonce), 27, at_secs(11), seven, &mut rng)
        .unwrap()
        .unwrap();
    assert_eq!((last.start_seq, last.end_seq), (27, 37));
    let end = st
        .on_response(ans(peer(7), last.nonce), 38, at_secs(11), seven, &mut rng)
        .unwrap()
        .unwrap();
    assert_eq!(
        (end.start_seq, end.end_seq),
        (38, 39),
        "the range ends at max_height - 1"
    );
    assert_eq!(
        st.on_response(ans(peer(7), end.nonce), 40, at_secs(11), seven, &mut rng),
        Ok(None)
    );
    assert!(!st.is_active());
    assert_eq!(st.stats().transfers_completed, 1);
    assert_eq!(st.stats().requests_sent, 4);
}

#[test]
fn nothing_is_asked_when_no_peer_is_ahead_or_when_disabled() {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let mut st = StateTransfer::new(config(), Instant::ZERO);
    assert_eq!(st.tick(at_secs(10), 5, 5, seven, &mut rng), None);
    assert_eq!(st.poll_timeout(), at_secs(20));
    let mut off = StateTransfer::new(StateConfig::default(), Instant::ZERO);
    assert_eq!(off.poll_timeout(), Instant::MAX);
    assert_eq!(off.tick(at_secs(100), 1, 50, seven, &mut rng), None);
    off.height_seen(50, 1, at_secs(100));
    assert_eq!(off.poll_timeout(), Instant::MAX);
}

#[test]
fn timeouts_retry_with_new_nonces_then_give_up() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut st = StateTransfer::new(config(), Instant::ZERO);
    let first = st.tick(at_secs(10), 1, 5, seven, &mut rng).unwrap();
    let mut nonces = vec![first.nonce];
    let mut now = at_secs(10);
    for _ in 0..3 {
        now = now + Duration::from_secs(3);
        let retry = st.tick(now, 1, 5, seven, &mut rng).expect("a retry");
        assert_eq!((retry.start_seq, retry.end_seq), (1, 4));
        nonces.push(retry.nonce);
    }
    nonces.dedup();
    assert_eq!(nonces.len(), 4, "a new nonce per try");
    now = now + Duration::from_secs(3);
    assert_eq!(
        st.tick(now, 1, 5, seven, &mut rng),
        None,
        "maxRetries (3) spent"
    );
    assert!(!st.is_active());
    assert_eq!(st.stats().transfers_abandoned, 1);
    assert_eq!(st.stats().requests_timed_out, 4);
    // An answer to an abandoned request is not taken.
    assert_eq!(
        st.on_response(ans(peer(7), nonces[3]), 5, now, seven, &mut rng),
        Err(StateReject::Unsolicited)
    );
}

#[test]
fn answers_must_echo_the_nonce_and_come_from_the_peer_asked() {
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let mut st = StateTransfer::new(config(), Instant::ZERO);
    let r = st.tick(at_secs(10), 1, 5, seven, &mut rng).unwrap();
    let now = at_secs(11);
    assert_eq!(
        st.on_response(ans(peer(7), r.nonce ^ 1), 1, now, seven, &mut rng),
        Err(StateReject::Unsolicited)
    );
    assert_eq!(
        st.on_response(ans(peer(8), r.nonce), 1, now, seven, &mut rng),
        Err(StateReject::Unsolicited)
    );
    // An empty answer is a failed try: asked again at once.
    let again = st
        .on_response(ans(peer(7), r.nonce), 1, now, seven, &mut rng)
        .unwrap()
        .expect("retried");
    assert_eq!((again.start_seq, again.end_seq), (1, 4));
    assert_ne!(again.nonce, r.nonce);
}

#[test]
fn blocks_arriving_by_other_paths_are_not_asked_for_again() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let mut st = StateTransfer::new(config(), Instant::ZERO);
    let r = st.tick(at_secs(10), 1, 30, seven, &mut rng).unwrap();
    // The answer covered 1..=11, and pushes meanwhile brought the height to 20.
    let next = st
        .on_response(ans(peer(7), r.nonce), 20, at_secs(11), seven, &mut rng)
        .unwrap()
        .unwrap();
    assert_eq!((next.start_seq, next.end_seq), (20, 29));
}

#[test]
fn no_peer_covering_the_range_ends_the_transfer() {
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    let mut st = StateTransfer::new(config(), Instant::ZERO);
    assert_eq!(st.tick(at_secs(10), 1, 5, |_, _| None, &mut rng), None);
    assert!(!st.is_active());
    assert_eq!(st.stats().transfers_abandoned, 1);
}

#[test]
fn a_higher_advertised_height_brings_the_check_forward() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut st = StateTransfer::new(config(), Instant::ZERO);
    st.height_seen(9, 9, at_secs(1));
    assert_eq!(st.poll_timeout(), at_secs(10), "not ahead of us");
    st.height_seen(12, 9, at_secs(1));
    let soon = at_secs(1) + Duration::from_millis(100);
    assert_eq!(st.poll_timeout(), soon);
    let r = st.tick(soon, 9, 12, seven, &mut rng).unwrap();
    assert_eq!((r.start_seq, r.end_seq), (9, 11));
}

#[test]
fn serving_checks_the_range_and_bounds_the_reads() {
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    let cfg = StateConfig {
        channel_size: 2,
        ..config()
    };
    let mut st = StateTransfer::new(cfg, Instant::ZERO);
    assert_eq!(
        st.serve(peer(1), 1, 5, 4, &mut rng),
        Err(StateReject::BadRange)
    );
    assert_eq!(
        st.serve(peer(1), 1, 5, 16, &mut rng),
        Err(StateReject::BadRange),
        "12 blocks: more than batchSize + 1"
    );
    let a = st.serve(peer(1), 11, 5, 15, &mut rng).expect("11 blocks");
    let b = st.serve(peer(2), 22, 0, 0, &mut rng).expect("one block");
    assert_eq!(
        st.serve(peer(3), 33, 0, 0, &mut rng),
        Err(StateReject::Busy)
    );
    assert!(st.serves(a) && st.serves(b));
    assert_eq!(
        st.served(a),
        Some(Serving {
            to: peer(1),
            nonce: 11
        })
    );
    assert_eq!(st.served(a), None);
    assert!(
        st.serve(peer(3), 33, 0, 0, &mut rng).is_ok(),
        "a slot freed"
    );
}

#[test]
fn gap_repair_transfers_up_to_the_refused_block_with_anti_entropy_off() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let defaults = StateConfig::default();
    assert!(
        !defaults.enabled && defaults.gap_repair,
        "anti-entropy off (Fabric's default), gap repair on (ours)"
    );
    let off = StateConfig {
        gap_repair: false,
        ..defaults
    };
    // Without gap repair a refused block changes nothing.
    let mut st = StateTransfer::new(off.clone(), Instant::ZERO);
    st.gap_seen(60, 5, at_secs(1));
    assert!(!st.may_ask_any());
    assert_eq!(st.poll_timeout(), Instant::MAX, "no check, no repair");
    assert_eq!(st.tick(at_secs(2), 5, 0, seven, &mut rng), None);
    // With it: due heightGapDelay later, up to the refused block, asked even though no peer
    // advertises a height above ours.
    let cfg = StateConfig {
        gap_repair: true,
        ..off
    };
    let mut st = StateTransfer::new(cfg.clone(), Instant::ZERO);
    st.gap_seen(60, 5, at_secs(1));
    st.gap_seen(70, 5, at_secs(1));
    assert!(st.may_ask_any());
    let due = at_secs(1) + cfg.height_gap_delay;
    assert_eq!(st.poll_timeout(), due);
    assert_eq!(
        st.tick(at_secs(1), 5, 0, seven, &mut rng),
        None,
        "not yet due"
    );
    let r = st.tick(due, 5, 0, seven, &mut rng).expect("a request");
    assert_eq!((r.to, r.start_seq, r.end_seq), (peer(7), 5, 15));
    assert_eq!(st.stats().gap_repairs, 1);
    // Runs to the highest refused block (69), then ends; no anti-entropy check follows.
    let mut next = r;
    for _ in 0..10 {
        let answered = st
            .on_response(
                ans(peer(7), next.nonce),
                next.end_seq + 1,
                due,
                seven,
                &mut rng,
            )
            .expect("matches");
        match answered {
            Some(n) => next = n,
            None => break,
        }
    }
    assert_eq!(next.end_seq, 69);
    assert!(!st.is_active() && !st.may_ask_any());
    assert_eq!(st.stats().transfers_completed, 1);
    assert_eq!(st.poll_timeout(), Instant::MAX);
    // A block refused at or below our height is no gap.
    st.gap_seen(70, 70, due);
    assert_eq!(st.poll_timeout(), Instant::MAX);
}

#[test]
fn a_gap_no_store_holds_is_repaired_at_once_and_only_the_missing_run() {
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let cfg = StateConfig::default();
    let mut st = StateTransfer::new(cfg.clone(), Instant::ZERO);
    // Blocks 5..8 are missing, 8 is held: due now, not heightGapDelay later.
    st.gap_unreachable(8, 5, at_secs(1));
    assert_eq!(st.poll_timeout(), at_secs(1));
    let r = st
        .tick(at_secs(1), 5, 0, seven, &mut rng)
        .expect("a request");
    assert_eq!((r.start_seq, r.end_seq), (5, 7), "the missing run only");
    // A gap found while it runs extends it.
    st.gap_unreachable(30, 20, at_secs(1));
    let next = st
        .on_response(ans(peer(7), r.nonce), 20, at_secs(1), seven, &mut rng)
        .expect("matches")
        .expect("extended");
    assert_eq!((next.start_seq, next.end_seq), (20, 29));
    // Off: nothing.
    let off = StateConfig {
        gap_repair: false,
        ..cfg
    };
    let mut st = StateTransfer::new(off, Instant::ZERO);
    st.gap_unreachable(8, 5, at_secs(1));
    assert_eq!(st.poll_timeout(), Instant::MAX);
}

#[test]
fn a_gap_seen_during_anti_entropy_is_repaired_after_it_and_a_failed_repair_backs_off() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let cfg = StateConfig {
        enabled: true,
        ..StateConfig::default()
    };
    let delay = cfg.height_gap_delay;
    let mut st = StateTransfer::new(cfg.clone(), Instant::ZERO);
    let r = st
        .tick(at_secs(10), 1, 5, seven, &mut rng)
        .expect("anti-entropy");
    assert_eq!((r.start_seq, r.end_seq), (1, 4));
    // A refused block at 40: remembered; nothing due while the transfer runs.
    st.gap_seen(41, 1, at_secs(10));
    assert_eq!(st.poll_timeout(), r_deadline(&cfg, at_secs(10)));
    let done = st
        .on_response(ans(peer(7), r.nonce), 5, at_secs(10), seven, &mut rng)
        .expect("matches");
    assert_eq!(done, None, "anti-entropy's range is done");
    let due = at_secs(10) + delay;
    assert_eq!(st.poll_timeout(), due, "the remembered gap is due");
    let mut r = st.tick(due, 5, 0, seven, &mut rng).expect("the repair");
    assert_eq!((r.start_seq, r.end_seq), (5, 15));
    // Every peer answers without the blocks: after maxRetries it gives up and backs off.
    for _ in 0..cfg.max_retries {
        r = st
            .on_response(ans(peer(7), r.nonce), 5, due, seven, &mut rng)
            .expect("matches")
            .expect("retried");
    }
    let gave_up = st
        .on_response(ans(peer(7), r.nonce), 5, due, seven, &mut rng)
        .expect("matches");
    assert_eq!(gave_up, None);
    assert_eq!(st.stats().transfers_abandoned, 1);
    // It is tried again, for what it had left, after a backoff that doubles.
    assert_eq!(st.poll_timeout(), due + delay, "not at once: backed off");
    assert_eq!(st.tick(due, 5, 0, seven, &mut rng), None);
    let mut r = st.tick(due + delay, 5, 0, seven, &mut rng).expect("again");
    assert_eq!((r.start_seq, r.end_seq), (5, 15));
    let again = due + delay;
    for _ in 0..=cfg.max_retries {
        let next = st.on_response(ans(peer(7), r.nonce), 5, again, seven, &mut rng);
        match next.expect("matches") {
            Some(n) => r = n,
            None => break,
        }
    }
    assert_eq!(st.poll_timeout(), again + delay * 2, "the backoff doubled");
    // Once it completes the backoff is back to heightGapDelay.
    let r = st
        .tick(again + delay * 2, 5, 0, seven, &mut rng)
        .expect("again");
    st.on_response(ans(peer(7), r.nonce), 41, again, seven, &mut rng)
        .expect("matches");
    assert_eq!(st.stats().transfers_completed, 2);
    assert!(!st.is_active());
    assert_eq!(
        st.poll_timeout(),
        at_secs(20),
        "only anti-entropy's next check"
    );
}

/// The deadline of a first request sent at `sent`, before any answer was timed.
fn r_deadline(cfg: &StateConfig, sent: Instant) -> Instant {
    let wait = ANSWER_WAIT_INITIAL
        .max(cfg.response_timeout_min)
        .min(cfg.response_timeout);
    (sent + wait).min(sent + cfg.check_interval)
}

/// Progress is our height, not what an answer carried: blocks delivery could not take (its
/// buffer full while commits catch up) are asked for again rather than skipped.
#[test]
fn blocks_an_answer_carried_but_delivery_did_not_take_are_asked_again() {
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    let mut st = StateTransfer::new(config(), Instant::ZERO);
    let r = st
        .tick(at_secs(10), 46, 100, seven, &mut rng)
        .expect("a request");
    assert_eq!((r.start_seq, r.end_seq), (46, 56));
    // The answer carried 46..=56, delivery took 46..=50 only: height 51.
    let next = st
        .on_response(ans(peer(7), r.nonce), 51, at_secs(10), seven, &mut rng)
        .expect("matches")
        .expect("goes on");
    assert_eq!((next.start_seq, next.end_seq), (51, 61), "51..=56 again");
}

#[test]
fn once_answers_are_timed_a_lost_request_is_retried_after_four_answer_times_doubling() {
    let ms = Duration::from_millis;
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let cfg = config();
    assert_eq!(
        (cfg.response_timeout_min, cfg.response_timeout),
        (ms(200), ms(3_000))
    );
    let mut st = StateTransfer::new(cfg, Instant::ZERO);
    let first = st.tick(at_secs(10), 5, 1_000, seven, &mut rng).unwrap();
    assert_eq!(
        st.poll_timeout(),
        at_secs(10) + ms(1_000),
        "no answer timed yet: RFC 6298's initial 1 s"
    );
    assert_eq!(st.response_wait(1), ms(2_000), "doubled per retry");
    assert_eq!(st.response_wait(2), ms(3_000), "up to responseTimeout");
    // Answered in 100 ms: the next request waits four times that.
    let t1 = at_secs(10) + ms(100);
    let second = st
        .on_response(ans(peer(7), first.nonce), 16, t1, seven, &mut rng)
        .unwrap()
        .unwrap();
    assert_eq!(st.poll_timeout(), t1 + ms(400));
    // It is lost: retried then, and the retry waits twice as long.
    assert_eq!(st.tick(t1 + ms(399), 16, 1_000, seven, &mut rng), None);
    let retry = st.tick(t1 + ms(400), 16, 1_000, seven, &mut rng).unwrap();
    assert_eq!(
        (retry.start_seq, retry.end_seq),
        (second.start_seq, second.end_seq)
    );
    assert_ne!(retry.nonce, second.nonce);
    assert_eq!(st.poll_timeout(), t1 + ms(400) + ms(800));
    // Answered in 1 ms: the estimate moves an eighth of the way, (7 × 100 + 1) / 8 ms.
    let t2 = t1 + ms(401);
    let mut next = st
        .on_response(ans(peer(7), retry.nonce), 27, t2, seven, &mut rng)
        .unwrap()
        .unwrap();
    assert_eq!(st.poll_timeout(), t2 + Duration::from_micros(4 * 87_625));
    // Fast answers never bring the wait under `response_timeout_min`.
    let mut now = t2;
    for height in (38..).step_by(11).take(20) {
        now = now + ms(1);
        next = st
            .on_response(ans(peer(7), next.nonce), height, now, seven, &mut rng)
            .unwrap()
            .unwrap();
    }
    assert!(st.is_active());
    assert_eq!(st.poll_timeout(), now + ms(200));
    // Retries double it, up to responseTimeout.
    assert_eq!(st.response_wait(1), ms(400));
    assert_eq!(st.response_wait(10), ms(3_000));
}

#[test]
fn a_late_answer_to_a_retried_request_is_taken_and_raises_the_wait() {
    let ms = Duration::from_millis;
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    let mut st = StateTransfer::new(config(), Instant::ZERO);
    let first = st.tick(at_secs(10), 5, 1_000, seven, &mut rng).unwrap();
    // Answered in 100 ms: the next request waits 400 ms.
    let t1 = at_secs(10) + ms(100);
    let second = st
        .on_response(ans(peer(7), first.nonce), 16, t1, seven, &mut rng)
        .unwrap()
        .unwrap();
    // Slow, not lost: its wait runs out and it is sent again.
    let retry = st.tick(t1 + ms(400), 16, 1_000, seven, &mut rng).unwrap();
    assert_eq!(
        (retry.start_seq, retry.end_seq),
        (second.start_seq, second.end_seq)
    );
    assert!(st.expects(peer(7), second.nonce) && st.expects(peer(7), retry.nonce));
    // Its answer comes 500 ms after it was sent, with blocks 16..=26: taken, and the next range
    // is asked for in place of the retry.
    let t2 = t1 + ms(500);
    let third = st
        .on_response(ans(peer(7), second.nonce), 27, t2, seven, &mut rng)
        .unwrap()
        .expect("the next range");
    assert_eq!(third.start_seq, 27);
    assert_eq!(st.stats().responses_late, 1);
    assert_eq!(st.stats().responses_taken, 2);
    assert!(!st.expects(peer(7), second.nonce), "taken once");
    // The answer time entered the estimate, (7 × 100 + 500) / 8 = 150 ms: the wait is 600 ms.
    assert_eq!(st.poll_timeout(), t2 + ms(600));
    // The retry's own answer, late too, is taken without asking again; then nothing of it is.
    let t3 = t2 + ms(10);
    assert_eq!(
        st.on_response(ans(peer(7), retry.nonce), 27, t3, seven, &mut rng),
        Ok(None)
    );
    assert_eq!(st.stats().responses_late, 2);
    assert_eq!(
        st.on_response(ans(peer(7), retry.nonce), 27, t3, seven, &mut rng),
        Err(StateReject::Unsolicited)
    );
    assert!(st.expects(peer(7), third.nonce));
    assert_eq!(st.stats().requests_timed_out, 1);
}
