use super::*;

/// Four nodes in two orgs (node k in org k % 2), one channel.
fn router() -> Router {
    Router::new(vec![0, 1, 0, 1], vec!["ch".into()])
}

/// Drives `r` as the follower does with `produced` blocks made: every hand-over it asks for,
/// each taken.
fn drain(r: &mut Router, produced: u64) -> Vec<(usize, u64)> {
    let mut out = Vec::new();
    for _ in 0..1000 {
        let Some((node, ch, seq)) = r.next_send(produced) else {
            break;
        };
        r.sent(node, ch, seq, SendOutcome::Taken);
        out.push((node, seq));
    }
    out
}

#[test]
fn without_a_leader_blocks_are_held() {
    let mut r = router();
    assert_eq!(r.next_send(10), None);
    r.leadership(0, "ch", false, 5);
    assert_eq!(r.next_send(10), None, "a follower gets nothing");
}

#[test]
fn a_new_leader_starts_at_its_height_and_then_follows_the_schedule() {
    let mut r = router();
    assert!(r.leadership(2, "ch", true, 10));
    assert_eq!(r.cursor(2, 0), Some(Cursor::AwaitingHeight));
    assert_eq!(r.next_send(5), None, "nothing before its height is known");
    assert_eq!(r.awaiting_height(), vec![(2, 0)]);
    r.height(2, 0, Some(3));
    assert_eq!(drain(&mut r, 5), vec![(2, 3), (2, 4), (2, 5)]);
    assert_eq!(
        drain(&mut r, 5),
        vec![],
        "nothing until the next is produced"
    );
    assert_eq!(drain(&mut r, 6), vec![(2, 6)]);
}

#[test]
fn after_the_leader_dies_the_successor_replays_from_its_height_in_order() {
    let mut r = router();
    r.leadership(0, "ch", true, 10);
    r.height(0, 0, Some(1));
    assert_eq!(drain(&mut r, 4).len(), 4);
    assert_eq!(r.leaders(0, 0), vec![0]);
    r.killed(0, 100);
    assert_eq!(r.leaders(0, 0), Vec::<usize>::new());
    assert_eq!(drain(&mut r, 9), vec![], "held while org 0 has no leader");
    // An event of the dead node from before the kill arrives late: stale.
    assert!(!r.leadership(0, "ch", true, 90));
    assert!(r.leadership(2, "ch", true, 200));
    r.height(2, 0, Some(3)); // it had committed 1 and 2 by gossip
    assert_eq!(
        drain(&mut r, 9),
        (3..=9).map(|s| (2, s)).collect::<Vec<_>>()
    );
    assert_eq!(r.leaders(0, 0), vec![2]);
}

#[test]
fn a_leader_is_handed_blocks_no_further_ahead_of_its_in_order_delivery_than_the_bound() {
    let mut r = router().with_ahead_max_blocks(20);
    r.leadership(0, "ch", true, 1);
    r.height(0, 0, Some(101));
    let first = drain(&mut r, 500);
    assert_eq!(
        first,
        (101..121).map(|s| (0, s)).collect::<Vec<_>>(),
        "20 blocks past its height, then it waits as a blocking deliver client"
    );
    r.in_order(0, "ch", 110);
    assert_eq!(
        drain(&mut r, 500),
        (121..131).map(|s| (0, s)).collect::<Vec<_>>()
    );
    r.in_order(0, "ch", 400);
    assert_eq!(
        drain(&mut r, 415).len(),
        415 - 130,
        "up to the newest produced"
    );
}

#[test]
fn every_org_has_its_own_leader_and_each_gets_every_block() {
    let mut r = router();
    r.leadership(0, "ch", true, 1);
    r.leadership(1, "ch", true, 1);
    r.height(0, 0, Some(1));
    r.height(1, 0, Some(1));
    let sent = drain(&mut r, 2);
    assert_eq!(sent, vec![(0, 1), (0, 2), (1, 1), (1, 2)]);
    assert_eq!((r.leaders(0, 0), r.leaders(1, 0)), (vec![0], vec![1]));
}

#[test]
fn older_news_is_ignored_and_stepping_down_ends_the_cursor() {
    let mut r = router();
    assert!(r.leadership(0, "ch", true, 50));
    assert!(
        !r.leadership(0, "ch", false, 40),
        "a poll sent before the event"
    );
    assert_eq!(r.cursor(0, 0), Some(Cursor::AwaitingHeight));
    assert!(!r.leadership(0, "ch", true, 60), "no change");
    assert!(r.leadership(0, "ch", false, 70));
    assert_eq!(r.cursor(0, 0), None);
    assert!(!r.leadership(0, "other", true, 80), "unknown channel");
    assert!(!r.leadership(9, "ch", true, 80), "unknown node");
}

#[test]
fn without_a_ledger_height_the_cursor_starts_after_its_in_order_deliveries() {
    let mut r = router();
    r.in_order(3, "ch", 1);
    r.in_order(3, "ch", 2);
    r.leadership(3, "ch", true, 1);
    r.height(3, 0, None);
    assert_eq!(r.cursor(3, 0), Some(Cursor::Next(3)));
    r.leadership(1, "ch", true, 1);
    r.height(1, 0, None);
    assert_eq!(
        r.cursor(1, 0),
        Some(Cursor::Next(1)),
        "nothing delivered: from 1"
    );
}

#[test]
fn a_refused_block_is_skipped_and_an_unreachable_leader_loses_its_cursor() {
    let mut r = router();
    r.leadership(0, "ch", true, 1);
    r.height(0, 0, Some(1));
    r.sent(0, 0, 1, SendOutcome::Refused);
    assert_eq!(r.cursor(0, 0), Some(Cursor::Next(2)));
    r.sent(0, 0, 7, SendOutcome::Taken);
    assert_eq!(
        r.cursor(0, 0),
        Some(Cursor::Next(2)),
        "not its next block: ignored"
    );
    r.sent(0, 0, 2, SendOutcome::Unreachable);
    assert_eq!(r.cursor(0, 0), None);
    // A later poll that finds it leader again starts a new cursor at its height.
    assert!(r.leadership(0, "ch", true, 2));
    assert_eq!(r.cursor(0, 0), Some(Cursor::AwaitingHeight));
}

#[test]
fn leadership_lines_parse_and_other_lines_do_not() {
    let line = r#"{"event":"leadership","channel":"ch","leader":true,"unix_ns":42}"#;
    assert_eq!(
        parse_leadership(3, &format!("{line}\n")),
        Some(LeadershipEvent {
            node: 3,
            channel: "ch".into(),
            leader: true,
            unix_ns: 42
        })
    );
    let block = r#"{"event":"block","channel":"leadership","seq":1,"received_unix_ns":5}"#;
    assert_eq!(parse_leadership(0, block), None);
    assert_eq!(parse_leadership(0, r#"{"ok":true,"leader":true}"#), None);
    assert_eq!(parse_leadership(0, "not json \"leadership\""), None);
}
