//! Election unit tests: each rule on one instance, then Fabric's `election_test.go` scenarios on
//! several instances over a seeded in-memory network (instant membership, as Fabric's tests have
//! it; message delays 1–50 ms), each over 200 seeds, with Fabric's default timings.

use std::collections::{BTreeMap, BTreeSet};

use gossip_proto::gossip::gossip_message::Content;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;
use crate::config::ElectionConfig;

const SEEDS: std::ops::Range<u64> = 0..200;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn at_ms(ms: u64) -> Instant {
    Instant::from_nanos(1_700_000_000_000_000_000 + ms * 1_000_000)
}

fn id(b: u8) -> PkiId {
    PkiId([b; 32])
}

fn dynamic() -> GossipConfig {
    GossipConfig {
        election: ElectionConfig {
            use_leader_election: true,
            ..ElectionConfig::default()
        },
        ..GossipConfig::default()
    }
}

struct Peers(BTreeSet<PkiId>);

impl View for Peers {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn contains(&self, pki_id: &PkiId) -> bool {
        self.0.contains(pki_id)
    }
}

fn view(ids: &[u8]) -> Peers {
    Peers(ids.iter().map(|&b| id(b)).collect())
}

/// `(is_declaration, seq_num, inc_num, pki_id)` of every pending message.
fn sent(e: &mut Election) -> Vec<(bool, u64, u64, PkiId)> {
    e.take_messages()
        .map(|m| {
            assert_eq!(m.tag, Tag::ChanAndOrg as i32);
            assert_eq!(m.nonce, 0);
            let Some(Content::LeadershipMsg(l)) = m.content else {
                panic!("not leadership")
            };
            let t = l.timestamp.unwrap();
            let p = PkiId::from_slice(&l.pki_id).unwrap();
            (l.is_declaration, t.seq_num, t.inc_num, p)
        })
        .collect()
}

fn changes(out: &mut Outbox) -> Vec<bool> {
    out.events
        .drain(..)
        .filter_map(|e| match e {
            Event::LeadershipChanged { leader, .. } => Some(leader),
            _ => None,
        })
        .collect()
}

/// Runs one instance through its timers up to `until` with a fixed view.
fn run(e: &mut Election, me: PkiId, v: &Peers, until: Instant, out: &mut Outbox) {
    while e.poll_timeout() <= until {
        let t = e.poll_timeout();
        e.handle_timeout(me, v, t, out);
    }
}

#[test]
fn static_modes_never_change() {
    let mut c = GossipConfig::default();
    c.election.org_leader = true;
    let e = Election::new("ch".into(), &c, at_ms(0));
    assert!(e.is_leader() && !e.is_running());
    assert_eq!(e.poll_timeout(), Instant::MAX);
    let e = Election::new("ch".into(), &GossipConfig::default(), at_ms(0));
    assert!(!e.is_leader());
    c.election.use_leader_election = true;
    assert_eq!(
        c.validate(),
        Err(crate::config::ConfigError::ElectionAndOrgLeader)
    );
}

#[test]
fn alone_becomes_leader_after_sampling_and_election_and_redeclares() {
    let (me, mut out) = (id(5), Outbox::default());
    let mut e = Election::new("ch".into(), &dynamic(), at_ms(0));
    // First sample at 1 s equals the initial (empty) view: propose at once.
    run(&mut e, me, &view(&[]), at_ms(1_000), &mut out);
    let start_ns = at_ms(0).as_nanos();
    assert_eq!(sent(&mut e), vec![(false, 1, start_ns, me)]);
    assert!(!e.is_leader());
    run(&mut e, me, &view(&[]), at_ms(6_000), &mut out);
    assert!(e.is_leader());
    assert_eq!(changes(&mut out), vec![true]);
    // Declares at once, then every leaderAliveThreshold / 2; one counter for both kinds.
    run(&mut e, me, &view(&[]), at_ms(16_000), &mut out);
    assert_eq!(
        sent(&mut e),
        vec![
            (true, 2, start_ns, me),
            (true, 3, start_ns, me),
            (true, 4, start_ns, me)
        ]
    );
}

#[test]
fn sampling_continues_while_the_view_grows_until_the_grace_period_ends() {
    let (me, mut out) = (id(5), Outbox::default());
    let mut e = Election::new("ch".into(), &dynamic(), at_ms(0));
    for s in 1..=15u64 {
        let ids: Vec<u8> = (10..10 + s as u8).collect();
        e.handle_timeout(me, &view(&ids), at_ms(s * 1_000), &mut out);
        assert!(sent(&mut e).is_empty(), "still sampling at {s} s");
    }
    // 16 s is past the grace period: the election starts although the view grew again.
    let ids: Vec<u8> = (10..30).collect();
    e.handle_timeout(me, &view(&ids), at_ms(16_000), &mut out);
    assert_eq!(sent(&mut e).len(), 1);
}

#[test]
fn a_declaration_during_sampling_ends_it_and_makes_a_follower() {
    let (me, mut out) = (id(5), Outbox::default());
    let mut e = Election::new("ch".into(), &dynamic(), at_ms(0));
    e.handle_timeout(me, &view(&[9]), at_ms(1_000), &mut out);
    e.handle_message(me, id(9), true, &view(&[9, 10]), at_ms(1_500), &mut out);
    e.handle_timeout(me, &view(&[9, 10, 11]), at_ms(2_000), &mut out);
    assert!(sent(&mut e).is_empty(), "a known leader: no proposal");
    assert!(!e.is_leader());
    assert_eq!(
        e.poll_timeout(),
        at_ms(12_000),
        "follower waits leaderAliveThreshold"
    );
}

#[test]
fn a_lower_proposal_keeps_me_follower_a_higher_one_does_not() {
    for (other, leads) in [(1u8, false), (9, true)] {
        let (me, mut out) = (id(5), Outbox::default());
        let mut e = Election::new("ch".into(), &dynamic(), at_ms(0));
        e.handle_timeout(me, &view(&[other]), at_ms(1_000), &mut out);
        e.handle_timeout(me, &view(&[other]), at_ms(2_000), &mut out);
        e.handle_message(
            me,
            id(other),
            false,
            &view(&[other]),
            at_ms(3_000),
            &mut out,
        );
        run(&mut e, me, &view(&[other]), at_ms(7_000), &mut out);
        assert_eq!(e.is_leader(), leads, "other {other}");
    }
}

#[test]
fn messages_from_outside_the_view_are_ignored() {
    let (me, mut out) = (id(5), Outbox::default());
    let mut e = Election::new("ch".into(), &dynamic(), at_ms(0));
    run(&mut e, me, &view(&[]), at_ms(1_000), &mut out);
    e.handle_message(me, id(1), false, &view(&[]), at_ms(2_000), &mut out);
    e.handle_message(me, id(1), true, &view(&[]), at_ms(2_000), &mut out);
    run(&mut e, me, &view(&[]), at_ms(6_000), &mut out);
    assert!(e.is_leader());
    assert_eq!(out.drops.get(&DropReason::NotEligible), Some(&2));
}

#[test]
fn a_declaration_cuts_the_election_short() {
    let (me, mut out) = (id(5), Outbox::default());
    let mut e = Election::new("ch".into(), &dynamic(), at_ms(0));
    run(&mut e, me, &view(&[9]), at_ms(2_000), &mut out);
    assert_eq!(sent(&mut e).len(), 1);
    // A higher peer declares: some peer leads, so this one follows at once.
    e.handle_message(me, id(9), true, &view(&[9]), at_ms(2_500), &mut out);
    assert!(!e.is_leader());
    assert_eq!(e.poll_timeout(), at_ms(12_500));
}

#[test]
fn a_leader_steps_down_only_on_a_lower_declaration() {
    let (me, mut out) = (id(5), Outbox::default());
    let mut e = Election::new("ch".into(), &dynamic(), at_ms(0));
    // The view grew at the first sample (0 → 2), so the election starts at 2 s.
    run(&mut e, me, &view(&[1, 9]), at_ms(7_000), &mut out);
    assert!(e.is_leader());
    let _ = sent(&mut e);
    // Proposals and higher declarations never pre-empt; a declaration re-declares at once.
    e.handle_message(me, id(1), false, &view(&[1, 9]), at_ms(8_000), &mut out);
    e.handle_message(me, id(9), true, &view(&[1, 9]), at_ms(8_100), &mut out);
    assert!(e.is_leader());
    assert_eq!(sent(&mut e).iter().filter(|m| m.0).count(), 1);
    e.handle_message(me, id(1), true, &view(&[1, 9]), at_ms(8_200), &mut out);
    assert!(!e.is_leader());
    assert_eq!(changes(&mut out), vec![true, false]);
}

#[test]
fn a_follower_without_declarations_elects_again() {
    let (me, mut out) = (id(5), Outbox::default());
    let mut e = Election::new("ch".into(), &dynamic(), at_ms(0));
    run(&mut e, me, &view(&[1]), at_ms(1_000), &mut out);
    e.handle_message(me, id(1), true, &view(&[1]), at_ms(1_500), &mut out);
    // The sample at 2 s sees a leader: follower from 2 s; 1 declares at 6 s, then dies.
    run(&mut e, me, &view(&[1]), at_ms(2_000), &mut out);
    e.handle_message(me, id(1), true, &view(&[1]), at_ms(6_000), &mut out);
    run(&mut e, me, &view(&[1]), at_ms(12_000), &mut out);
    let s = sent(&mut e);
    assert!(s.is_empty(), "a leader was known: {s:?} {:?}", e.phase);
    // The round from 12 s sees no declaration: proposal at 22 s, leader at 27 s.
    run(&mut e, me, &view(&[]), at_ms(26_999), &mut out);
    assert!(!e.is_leader());
    run(&mut e, me, &view(&[]), at_ms(27_000), &mut out);
    assert!(e.is_leader());
}

#[test]
fn yield_steps_down_and_stays_out_of_elections_for_six_thresholds() {
    let (me, mut out) = (id(1), Outbox::default());
    let mut e = Election::new("ch".into(), &dynamic(), at_ms(0));
    run(&mut e, me, &view(&[]), at_ms(6_000), &mut out);
    assert!(e.is_leader());
    let _ = sent(&mut e);
    e.yield_leadership(at_ms(7_000), &mut out);
    assert!(!e.is_leader());
    assert_eq!(changes(&mut out), vec![true, false]);
    run(&mut e, me, &view(&[]), at_ms(66_999), &mut out);
    assert!(!e.is_leader());
    assert!(sent(&mut e).is_empty(), "no proposal while yielding");
    run(&mut e, me, &view(&[]), at_ms(100_000), &mut out);
    assert!(e.is_leader(), "the yield ended after 60 s");
    // Yield ends early once another leader is known.
    let _ = sent(&mut e);
    e.yield_leadership(at_ms(100_000), &mut out);
    e.handle_message(me, id(9), true, &view(&[9]), at_ms(101_000), &mut out);
    run(&mut e, me, &view(&[9]), at_ms(120_000), &mut out);
    let proposals = sent(&mut e).iter().filter(|m| !m.0).count();
    assert_eq!(
        proposals, 1,
        "proposes after the follower round without declarations"
    );
}

#[test]
fn stop_steps_down_and_ends_the_loop() {
    let (me, mut out) = (id(1), Outbox::default());
    let mut e = Election::new("ch".into(), &dynamic(), at_ms(0));
    run(&mut e, me, &view(&[]), at_ms(6_000), &mut out);
    e.stop(&mut out);
    assert!(!e.is_leader() && !e.is_running());
    assert_eq!(changes(&mut out), vec![true, false]);
    assert_eq!(e.poll_timeout(), Instant::MAX);
}

/// Several elections over a seeded in-memory network: instant membership (every started, up
/// peer in the same group), messages 1–50 ms late.
struct Cluster {
    now: Instant,
    ids: Vec<PkiId>,
    elections: Vec<Option<Election>>,
    outs: Vec<Outbox>,
    group: Vec<u8>,
    queue: BTreeMap<(Instant, u64), (usize, PkiId, bool)>,
    seq: u64,
    rng: ChaCha8Rng,
}

impl Cluster {
    /// `n` peers with random distinct PKI-IDs, none started.
    fn new(n: usize, seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut ids = BTreeSet::new();
        while ids.len() < n {
            ids.insert(PkiId(rng.random()));
        }
        let mut ids: Vec<PkiId> = ids.into_iter().collect();
        // Shuffle, so index order is not id order.
        for i in (1..n).rev() {
            ids.swap(i, rng.random_range(0..=i));
        }
        Self {
            now: at_ms(0),
            ids,
            elections: (0..n).map(|_| None).collect(),
            outs: (0..n).map(|_| Outbox::default()).collect(),
            group: vec![0; n],
            queue: BTreeMap::new(),
            seq: 0,
            rng,
        }
    }

    fn start(&mut self, i: usize) {
        self.elections[i] = Some(Election::new("ch".into(), &dynamic(), self.now));
    }

    fn kill(&mut self, i: usize) {
        self.elections[i] = None;
    }

    fn view(&self, i: usize) -> Peers {
        Peers(
            (0..self.ids.len())
                .filter(|&j| {
                    j != i && self.elections[j].is_some() && self.group[j] == self.group[i]
                })
                .map(|j| self.ids[j])
                .collect(),
        )
    }

    fn flush(&mut self, i: usize) {
        let Some(e) = self.elections[i].as_mut() else {
            return;
        };
        let messages: Vec<bool> = e
            .take_messages()
            .map(|m| matches!(m.content, Some(Content::LeadershipMsg(l)) if l.is_declaration))
            .collect();
        let targets: Vec<usize> = (0..self.ids.len())
            .filter(|&j| self.view(i).contains(&self.ids[j]))
            .collect();
        for is_declaration in messages {
            for &j in &targets {
                let delay = Duration::from_millis(self.rng.random_range(1..=50));
                self.seq += 1;
                self.queue.insert(
                    (self.now + delay, self.seq),
                    (j, self.ids[i], is_declaration),
                );
            }
        }
        self.outs[i].events.clear();
    }

    fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        loop {
            let timer = (0..self.ids.len())
                .filter_map(|i| Some((self.elections[i].as_ref()?.poll_timeout(), i)))
                .min();
            let message = self.queue.keys().next().copied();
            let next = match (timer, message) {
                (Some((t, _)), Some((m, _))) => t.min(m),
                (Some((t, _)), None) => t,
                (None, Some((m, _))) => m,
                (None, None) => break,
            };
            if next > until {
                break;
            }
            self.now = next;
            if let Some((t, i)) = timer.filter(|(t, _)| *t == next) {
                let v = self.view(i);
                let me = self.ids[i];
                if let Some(e) = self.elections[i].as_mut() {
                    e.handle_timeout(me, &v, t, &mut self.outs[i]);
                }
                self.flush(i);
                continue;
            }
            let Some((_, (j, creator, is_declaration))) = self.queue.pop_first() else {
                break;
            };
            let v = self.view(j);
            let me = self.ids[j];
            if let Some(e) = self.elections[j].as_mut() {
                e.handle_message(me, creator, is_declaration, &v, self.now, &mut self.outs[j]);
            }
            self.flush(j);
        }
        self.now = until;
    }

    fn leaders(&self, among: &[usize]) -> Vec<usize> {
        among
            .iter()
            .copied()
            .filter(|&i| self.elections[i].as_ref().is_some_and(Election::is_leader))
            .collect()
    }

    fn lowest(&self, among: &[usize]) -> usize {
        *among.iter().min_by_key(|&&i| self.ids[i]).unwrap()
    }
}

#[test]
fn simultaneous_start_elects_the_lowest_id() {
    for seed in SEEDS {
        let mut c = Cluster::new(5, seed);
        for i in 0..5 {
            c.start(i);
            let jitter = Duration::from_millis(c.rng.random_range(0..100));
            c.run_for(jitter);
        }
        c.run_for(secs(20));
        let all: Vec<usize> = (0..5).collect();
        for _ in 0..6 {
            assert_eq!(c.leaders(&all), vec![c.lowest(&all)], "seed {seed}");
            c.run_for(secs(5));
        }
    }
}

/// Fabric's TestInitPeersStartAtIntervals: peers start `startupGracePeriod +
/// leaderAliveThreshold / 2` apart, highest id first; the first keeps the leadership.
#[test]
fn staggered_start_keeps_the_first_to_start() {
    for seed in SEEDS {
        let mut c = Cluster::new(4, seed);
        let mut order: Vec<usize> = (0..4).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(c.ids[i]));
        for &i in &order {
            c.start(i);
            c.run_for(secs(20));
        }
        let all: Vec<usize> = (0..4).collect();
        assert_eq!(c.leaders(&all), vec![order[0]], "seed {seed}");
    }
}

#[test]
fn leader_death_gives_one_successor_within_fabric_timings() {
    for seed in SEEDS {
        let mut c = Cluster::new(4, seed);
        (0..4).for_each(|i| c.start(i));
        c.run_for(secs(30));
        let all: Vec<usize> = (0..4).collect();
        let leader = c.lowest(&all);
        assert_eq!(c.leaders(&all), vec![leader], "seed {seed}");
        c.kill(leader);
        let survivors: Vec<usize> = all.into_iter().filter(|&i| i != leader).collect();
        // 2 × leaderAliveThreshold + leaderElectionDuration, plus message delays.
        c.run_for(secs(26));
        assert_eq!(c.leaders(&survivors).len(), 1, "seed {seed}");
        let successor = c.leaders(&survivors)[0];
        c.run_for(secs(30));
        assert_eq!(
            c.leaders(&survivors),
            vec![successor],
            "seed {seed}: stable"
        );
    }
}

#[test]
fn yielding_leader_hands_over_and_does_not_come_back_while_yielding() {
    for seed in SEEDS {
        let mut c = Cluster::new(4, seed);
        (0..4).for_each(|i| c.start(i));
        c.run_for(secs(30));
        let all: Vec<usize> = (0..4).collect();
        let leader = c.lowest(&all);
        let now = c.now;
        c.elections[leader]
            .as_mut()
            .unwrap()
            .yield_leadership(now, &mut c.outs[leader]);
        c.run_for(secs(40));
        let leaders = c.leaders(&all);
        assert_eq!(leaders.len(), 1, "seed {seed}: {leaders:?}");
        assert_ne!(leaders[0], leader, "seed {seed}");
    }
}

#[test]
fn partition_gives_a_leader_per_side_and_heal_one_the_lowest() {
    for seed in SEEDS {
        let mut c = Cluster::new(4, seed);
        (0..4).for_each(|i| c.start(i));
        c.run_for(secs(30));
        let all: Vec<usize> = (0..4).collect();
        let (a, b): (Vec<usize>, Vec<usize>) = all.iter().partition(|&&i| i < 2);
        for &i in &b {
            c.group[i] = 1;
        }
        c.run_for(secs(30));
        assert_eq!(c.leaders(&a).len(), 1, "seed {seed}: side a");
        assert_eq!(c.leaders(&b).len(), 1, "seed {seed}: side b");
        let sides = [c.leaders(&a)[0], c.leaders(&b)[0]];
        c.group = vec![0; 4];
        c.run_for(secs(15));
        assert_eq!(c.leaders(&all), vec![c.lowest(&sides)], "seed {seed}");
    }
}
