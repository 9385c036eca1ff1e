//! Membership views over time, and what they show after faults: how long every live peer takes
//! to drop a killed peer from its alive view and to learn it again after its restart (also with a
//! renewed certificate: same endpoint, new PKI-ID), and how long the views take to become whole
//! again after a partition heals. Also the height convergence after a heal, from the in-order
//! deliveries.
//!
//! A poller thread asks every node for its `peers` (control protocol) every `period`, on
//! connections of its own, and keeps each answer: the alive members' endpoints and PKI-IDs. A node
//! that is down simply gives no answer until it is back. Figures are exact to one poll period.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::Serialize;

use crate::cluster::control::ControlClient;
use crate::measure::inject::unix_now_ns;

/// One alive member in a view: (endpoint, PKI-ID hex).
pub type Member = (String, String);

/// One node's alive view at one moment.
#[derive(Clone, Debug, PartialEq)]
pub struct ViewPoll {
    /// The node polled.
    pub node: usize,
    /// When the answer came.
    pub unix_ns: u64,
    /// Its alive members.
    pub alive: Vec<Member>,
}

/// The running poller.
pub struct MembershipPoller {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Vec<ViewPoll>>,
}

impl MembershipPoller {
    /// Polls the control ports `addrs` (node `k` at `addrs[k]`) every `period` until stopped.
    pub fn start(addrs: Vec<SocketAddr>, period: Duration) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("membership-poll".into())
            .spawn(move || poll_loop(&addrs, period, &flag))?;
        Ok(Self { stop, thread })
    }

    /// Stops and returns every answer, in time order per node.
    pub fn finish(self) -> Vec<ViewPoll> {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().unwrap_or_default()
    }
}

fn poll_loop(addrs: &[SocketAddr], period: Duration, stop: &AtomicBool) -> Vec<ViewPoll> {
    let mut clients: Vec<Option<ControlClient>> = addrs.iter().map(|_| None).collect();
    let mut out = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        let round = crate::measure::inject::mono_now();
        for (k, addr) in addrs.iter().enumerate() {
            if clients[k].is_none() {
                clients[k] = ControlClient::connect(*addr, Duration::from_millis(200)).ok();
            }
            let Some(c) = clients[k].as_mut() else {
                continue;
            };
            match c.alive_members() {
                Ok(alive) => out.push(ViewPoll {
                    node: k,
                    unix_ns: unix_now_ns(),
                    alive,
                }),
                // Down or restarted: connect again next round.
                Err(_) => clients[k] = None,
            }
        }
        if let Some(rest) = period.checked_sub(round.elapsed()) {
            std::thread::sleep(rest);
        }
    }
    out
}

/// How far before an event an observer must have answered a poll to count as up at the event,
/// in poll periods: an observer that was down itself (killed, restarting) has no view to judge.
pub const UP_LOOKBACK_POLLS: u64 = 3;

/// Per observer, the first poll in `(from_ns, until_ns)` whose view passes `test`, as ms after
/// `from_ns`; `None` for an observer with polls in the window but none passing. Observers with
/// no poll in the window, or none in the `up_lookback_ns` before `from_ns` (down themselves at
/// the event), are left out.
pub fn first_passing(
    polls: &[ViewPoll],
    observers: &[usize],
    (from_ns, until_ns, up_lookback_ns): (u64, u64, u64),
    test: impl Fn(&ViewPoll) -> bool,
) -> Vec<(usize, Option<f64>)> {
    let mut out = Vec::new();
    for &o in observers {
        let up = polls
            .iter()
            .any(|p| p.node == o && p.unix_ns <= from_ns && p.unix_ns + up_lookback_ns >= from_ns);
        if !up {
            continue;
        }
        let mut window = polls
            .iter()
            .filter(|p| p.node == o && p.unix_ns > from_ns && p.unix_ns < until_ns)
            .peekable();
        if window.peek().is_none() {
            continue;
        }
        let first = window
            .find(|p| test(p))
            .map(|p| (p.unix_ns - from_ns) as f64 / 1e6);
        out.push((o, first));
    }
    out
}

/// The slowest observer: `None` when any never passed (or none was polled).
pub fn slowest(per_observer: &[(usize, Option<f64>)]) -> Option<f64> {
    if per_observer.is_empty() {
        return None;
    }
    per_observer
        .iter()
        .map(|(_, t)| *t)
        .try_fold(0.0f64, |acc, t| t.map(|t| acc.max(t)))
}

/// The PKI-IDs `endpoint` had in the views polled in `(from_ns, until_ns)`, each once.
pub fn pki_ids_of(polls: &[ViewPoll], endpoint: &str, from_ns: u64, until_ns: u64) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for p in polls
        .iter()
        .filter(|p| p.unix_ns > from_ns && p.unix_ns < until_ns)
    {
        for (e, id) in &p.alive {
            if e == endpoint && !out.contains(id) {
                out.push(id.clone());
            }
        }
    }
    out
}

/// A kill's failure detection and re-learning, as run.json's `membership.kills` shows it.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct KillViews {
    /// The node killed.
    pub node: usize,
    /// Whether it restarted with a renewed certificate.
    pub renewed_cert: bool,
    /// Per observer, ms from the kill to the first view without the node's endpoint (`None`:
    /// still there at the restart or the end).
    pub removed_ms: Vec<(usize, Option<f64>)>,
    /// The slowest observer's `removed_ms` (`None` when one never removed it).
    pub removed_all_ms: Option<f64>,
    /// Per observer, ms from the restart to the first view that lists the endpoint with a PKI-ID
    /// other than the old one's when the certificate was renewed, any otherwise.
    pub relearned_ms: Vec<(usize, Option<f64>)>,
    /// The slowest observer's `relearned_ms`.
    pub relearned_all_ms: Option<f64>,
    /// The PKI-IDs views showed at the endpoint before the kill and after the restart.
    pub pki_ids_before: Vec<String>,
    /// See `pki_ids_before`.
    pub pki_ids_after: Vec<String>,
    /// Observers whose last view still listed the old PKI-ID after a restart with a renewed
    /// certificate (a stale identity kept alive).
    pub stale_old_pki_at_end: Vec<usize>,
}

/// Inputs of [`kill_views`].
pub struct KillSpan<'a> {
    /// The node killed.
    pub node: usize,
    /// Its advertised endpoint (what views list).
    pub endpoint: &'a str,
    /// Kill time.
    pub killed_ns: u64,
    /// Restart time, if it restarted.
    pub restarted_ns: Option<u64>,
    /// Whether the restart renewed its certificate.
    pub renewed: bool,
    /// End of the polls.
    pub end_ns: u64,
    /// See [`first_passing`].
    pub up_lookback_ns: u64,
}

/// Detection and re-learning of one kill, seen by `observers` (every other node).
pub fn kill_views(polls: &[ViewPoll], observers: &[usize], k: &KillSpan<'_>) -> KillViews {
    let has = |p: &ViewPoll| p.alive.iter().any(|(e, _)| e == k.endpoint);
    let until = k.restarted_ns.unwrap_or(k.end_ns);
    let removed_ms = first_passing(
        polls,
        observers,
        (k.killed_ns, until, k.up_lookback_ns),
        |p| !has(p),
    );
    let before = pki_ids_of(polls, k.endpoint, 0, k.killed_ns);
    let (relearned_ms, after, stale) = match k.restarted_ns {
        Some(r) => {
            let old = before.clone();
            let renewed = k.renewed;
            let window = (r, k.end_ns + 1, k.up_lookback_ns);
            let relearned = first_passing(polls, observers, window, |p| {
                p.alive
                    .iter()
                    .any(|(e, id)| e == k.endpoint && !(renewed && old.contains(id)))
            });
            let after = pki_ids_of(polls, k.endpoint, r, k.end_ns + 1);
            let stale = if renewed {
                observers
                    .iter()
                    .copied()
                    .filter(|&o| {
                        polls.iter().rev().find(|p| p.node == o).is_some_and(|p| {
                            p.alive
                                .iter()
                                .any(|(e, id)| e == k.endpoint && old.contains(id))
                        })
                    })
                    .collect()
            } else {
                Vec::new()
            };
            (relearned, after, stale)
        }
        None => (Vec::new(), Vec::new(), Vec::new()),
    };
    KillViews {
        node: k.node,
        renewed_cert: k.renewed,
        removed_all_ms: slowest(&removed_ms),
        removed_ms,
        relearned_all_ms: k.restarted_ns.and_then(|_| slowest(&relearned_ms)),
        relearned_ms,
        pki_ids_before: before,
        pki_ids_after: after,
        stale_old_pki_at_end: stale,
    }
}

/// A partition's effect on the views, as run.json's `membership.partitions` shows it.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct PartitionViews {
    /// Seconds after block 1's due time.
    pub at_s: f64,
    /// See `at_s`.
    pub healed_at_s: f64,
    /// ms from the partition until every node's view held at most its own side (`None`: some
    /// node never dropped the other side while it lasted).
    pub split_all_ms: Option<f64>,
    /// Per node, `split` ms: for a peer cut off alone, the others' entries are the times they
    /// dropped it from their views (failure detection of a hung peer).
    pub split_ms: Vec<(usize, Option<f64>)>,
    /// ms from the heal until every node's view held all `nodes − 1` others again.
    pub whole_all_ms: Option<f64>,
    /// Per node, `whole` ms.
    pub whole_ms: Vec<(usize, Option<f64>)>,
    /// ms from the heal until every node had delivered in order every block due before the heal
    /// (the same height everywhere); `None` when some node never did.
    pub height_converged_ms: Option<f64>,
}

/// Views and heights around one partition of `sides` (node lists) from `at_ns` to `heal_ns`
/// (polls end at `end_ns`; `lookback_ns` as [`first_passing`]'s). `heights` gives the in-order
/// deliveries; `due_seq` is the newest block due at the heal.
pub fn partition_views(
    polls: &[ViewPoll],
    sides: (&[usize], &[usize]),
    nodes: usize,
    (at_ns, heal_ns, end_ns, lookback_ns): (u64, u64, u64, u64),
    heights: &Heights,
    due_seq: u64,
) -> PartitionViews {
    let all: Vec<usize> = (0..nodes).collect();
    let side_len = |k: usize| {
        if sides.0.contains(&k) {
            sides.0.len()
        } else if sides.1.contains(&k) {
            sides.1.len()
        } else {
            nodes
        }
    };
    let split = first_passing(polls, &all, (at_ns, heal_ns, lookback_ns), |p| {
        p.alive.len() < side_len(p.node)
    });
    let whole_ms = first_passing(polls, &all, (heal_ns, end_ns + 1, lookback_ns), |p| {
        p.alive.len() + 1 >= nodes
    });
    PartitionViews {
        at_s: 0.0,
        healed_at_s: 0.0,
        split_all_ms: slowest(&split),
        split_ms: split,
        whole_all_ms: slowest(&whole_ms),
        whole_ms,
        height_converged_ms: heights.converged_after(nodes, heal_ns, due_seq),
    }
}

/// In-order deliveries per (node, channel): `(seq, unix_ns)` in arrival order.
#[derive(Clone, Debug, Default)]
pub struct Heights {
    reached: HashMap<(usize, usize), Vec<(u64, u64)>>,
    channels: usize,
    off: bool,
}

impl Heights {
    /// For `channels` channels.
    pub fn new(channels: usize) -> Self {
        Self {
            reached: HashMap::new(),
            channels,
            off: false,
        }
    }

    /// Keeps nothing (a run without partitions to judge: an hour's soak would keep every
    /// delivery for nothing).
    pub fn off() -> Self {
        Self {
            off: true,
            ..Self::default()
        }
    }

    /// Node `node` delivered block `seq` of channel `ch` in order at `unix_ns`.
    pub fn record(&mut self, node: usize, ch: usize, seq: u64, unix_ns: u64) {
        if self.off {
            return;
        }
        self.reached
            .entry((node, ch))
            .or_default()
            .push((seq, unix_ns));
    }

    /// ms after `from_ns` until every node had delivered block `seq` (or a later one) of every
    /// channel in order: 0 for a node that had before `from_ns`; `None` when one never did.
    pub fn converged_after(&self, nodes: usize, from_ns: u64, seq: u64) -> Option<f64> {
        if seq == 0 {
            return Some(0.0);
        }
        let mut worst = 0u64;
        for node in 0..nodes {
            for ch in 0..self.channels {
                let t = self
                    .reached
                    .get(&(node, ch))?
                    .iter()
                    .find(|(s, _)| *s >= seq)?
                    .1;
                worst = worst.max(t.saturating_sub(from_ns));
            }
        }
        Some(worst as f64 / 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn poll(node: usize, ms: u64, alive: &[(&str, &str)]) -> ViewPoll {
        ViewPoll {
            node,
            unix_ns: ms * 1_000_000,
            alive: alive
                .iter()
                .map(|(e, id)| ((*e).to_owned(), (*id).to_owned()))
                .collect(),
        }
    }

    #[test]
    fn a_kill_is_detected_when_the_last_observer_drops_it_and_relearned_with_a_new_pki_id() {
        let polls = vec![
            poll(0, 500, &[("e2", "old"), ("e1", "p1")]),
            poll(1, 500, &[("e2", "old"), ("e0", "p0")]),
            // killed at 1000
            poll(0, 2000, &[("e1", "p1")]),
            poll(1, 2000, &[("e2", "old"), ("e0", "p0")]),
            poll(1, 4000, &[("e0", "p0")]),
            poll(0, 4500, &[("e1", "p1")]),
            // restarted at 5000 with a renewed certificate
            poll(0, 5500, &[("e1", "p1"), ("e2", "old")]),
            poll(0, 6000, &[("e1", "p1"), ("e2", "new")]),
            poll(1, 7000, &[("e0", "p0"), ("e2", "new"), ("e2", "old")]),
        ];
        let span = KillSpan {
            node: 2,
            endpoint: "e2",
            killed_ns: 1_000_000_000,
            restarted_ns: Some(5_000_000_000),
            renewed: true,
            end_ns: 8_000_000_000,
            up_lookback_ns: 1_000_000_000,
        };
        let v = kill_views(&polls, &[0, 1], &span);
        assert_eq!(v.removed_ms, vec![(0, Some(1000.0)), (1, Some(3000.0))]);
        assert_eq!(v.removed_all_ms, Some(3000.0));
        // The old PKI-ID coming back does not count as re-learning the renewed peer.
        assert_eq!(v.relearned_ms, vec![(0, Some(1000.0)), (1, Some(2000.0))]);
        assert_eq!(v.relearned_all_ms, Some(2000.0));
        assert_eq!(v.pki_ids_before, vec!["old".to_owned()]);
        assert_eq!(v.pki_ids_after, vec!["old".to_owned(), "new".to_owned()]);
        assert_eq!(v.stale_old_pki_at_end, vec![1]);
    }

    #[test]
    fn an_observer_that_never_drops_the_peer_leaves_detection_open() {
        let polls = vec![
            poll(0, 900, &[("e2", "x")]),
            poll(1, 900, &[("e2", "x")]),
            poll(0, 2000, &[("e2", "x")]),
            poll(1, 2000, &[]),
            poll(4, 1500, &[]),
        ];
        let span = KillSpan {
            node: 2,
            endpoint: "e2",
            killed_ns: 1_000_000_000,
            restarted_ns: None,
            renewed: false,
            end_ns: 3_000_000_000,
            up_lookback_ns: 1_000_000_000,
        };
        let v = kill_views(&polls, &[0, 1, 3, 4], &span);
        assert_eq!(
            v.removed_ms,
            vec![(0, None), (1, Some(1000.0))],
            "3 had no poll, 4 was down at the kill"
        );
        assert_eq!(v.removed_all_ms, None);
        assert_eq!(v.relearned_all_ms, None);
        assert!(slowest(&[]).is_none());
    }

    #[test]
    fn a_partition_splits_then_heals_views_and_heights() {
        let polls = vec![
            poll(0, 900, &[("e1", "1"), ("e2", "2")]),
            poll(1, 900, &[("e0", "0"), ("e2", "2")]),
            poll(2, 900, &[("e0", "0"), ("e1", "1")]),
            poll(0, 1500, &[("e1", "1")]),
            poll(1, 1500, &[("e0", "0")]),
            poll(2, 1200, &[("e0", "0")]),
            poll(2, 1800, &[]),
            poll(0, 2900, &[("e1", "1")]),
            poll(1, 2900, &[("e0", "0")]),
            poll(2, 2900, &[]),
            poll(0, 3500, &[("e1", "1"), ("e2", "2")]),
            poll(1, 3500, &[("e0", "0"), ("e2", "2")]),
            poll(2, 4000, &[("e0", "0"), ("e1", "1")]),
        ];
        let mut h = Heights::new(1);
        for n in 0..2 {
            h.record(n, 0, 5, 2_500_000_000);
        }
        h.record(2, 0, 3, 2_000_000_000);
        h.record(2, 0, 5, 3_700_000_000);
        let v = partition_views(
            &polls,
            (&[0, 1], &[2]),
            3,
            (1_000_000_000, 3_000_000_000, 5_000_000_000, 500_000_000),
            &h,
            5,
        );
        assert_eq!(v.split_all_ms, Some(800.0));
        assert_eq!(v.whole_all_ms, Some(1000.0));
        assert_eq!(v.height_converged_ms, Some(700.0));
        assert_eq!(h.converged_after(3, 3_000_000_000, 6), None);
        let mut off = Heights::off();
        off.record(0, 0, 5, 1);
        assert_eq!(
            off.converged_after(1, 0, 5),
            Some(0.0),
            "no channels kept, nothing to wait for"
        );
    }
}
