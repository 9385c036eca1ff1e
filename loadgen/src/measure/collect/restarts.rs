//! Kills and restarts: what a SIGKILLed node kept (its ledger) and lost, and how long it took to
//! catch up after its restart.
//!
//! A node killed with SIGKILL keeps the blocks its ledger had committed and loses the rest: blocks
//! it had received but not delivered in order, and blocks delivered whose commit had not finished
//! (commits trail delivery). When it is back, loadgen reads its ledger height `h` per channel
//! (before it joins the channel, so nothing moves meanwhile) and the collector makes its view of
//! the node match the ledger: blocks below `h` are held (also those whose event lines died with
//! the process), blocks from `h` on are not, until the node reports them again. A restarted node
//! therefore ends complete only when it holds every block again, and a block it committed before
//! the kill is never counted missing.
//!
//! **Catching up**: the node has caught up at its first in-order delivery after the restart at
//! which it holds every block due by then (injection is open loop, so every block due had been
//! injected): delivered block `s` at time `t` with `s >= due_by(t)`. The catch-up time is `t`
//! minus the restart (when loadgen started the process). Pushed blocks are usually delivered
//! within one injection interval, so the instant is exact to about one interval.

use gossip_engine::event::Arrival;

use super::{Collector, path_index};

/// A killed node is back: what loadgen read from it before it rejoined its channels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Restarted {
    /// Node index.
    pub node: usize,
    /// When loadgen started the process again, Unix ns.
    pub started_unix_ns: u64,
    /// Per channel, its `ledger_height` (the number of the next block it commits); `None` where
    /// it did not answer (fabric-node keeps no ledger).
    pub heights: Vec<(String, Option<u64>)>,
}

/// One kill, and for a restarted node what it kept, lost and how it caught up.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KillRecord {
    /// Node index.
    pub node: usize,
    /// When loadgen sent SIGKILL, Unix ns.
    pub killed_unix_ns: u64,
    /// When loadgen started it again, Unix ns (`None`: still down).
    pub restarted_unix_ns: Option<u64>,
    /// Per channel (the collector's order): its ledger height at the restart (`None`: unknown).
    pub heights: Vec<Option<u64>>,
    /// Per channel: the newest block due at the restart ([`super::Schedule::due_by`]).
    pub due_at_restart: Vec<u64>,
    /// Blocks (all channels) loadgen had seen the node receive before the kill that its ledger did
    /// not hold after it: received but not yet committed, so lost with the process.
    pub lost_blocks: u64,
    /// Blocks (all channels) in its ledger whose receipt loadgen never saw (the event lines died
    /// with the process): counted as received at the kill.
    pub held_without_event_blocks: u64,
    /// Per channel: when (Unix ns) and at which block it first held every block due by then.
    pub caught_up: Vec<Option<(u64, u64)>>,
    /// Receipts the node reported after the restart, by path in [`super::PATHS`] order.
    pub via_after_restart: [u64; 4],
    /// The part of `via_after_restart` before it had caught up (on the receipt's channel).
    pub via_until_caught_up: [u64; 4],
    /// Its first receipt after the restart (any path), Unix ns: when blocks reached it again.
    pub first_receipt_unix_ns: Option<u64>,
    /// Its first receipt by state transfer after the restart, Unix ns.
    pub first_state_receipt_unix_ns: Option<u64>,
    /// Its in-order deliveries from the restart to catching up, each with the newest block due
    /// then: how it closed (or did not close) the distance to the head.
    pub trace: Vec<TracePoint>,
}

/// One in-order delivery of a restarted node before it caught up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TracePoint {
    /// When, Unix ns.
    pub unix_ns: u64,
    /// Channel index.
    pub channel: usize,
    /// The block it delivered up to (its ledger height − 1 once committed).
    pub height_seq: u64,
    /// The newest block due then.
    pub due_seq: u64,
}

impl KillRecord {
    /// Blocks (all channels) it lacked at the restart: due then, at or above its height.
    pub fn behind_at_restart_blocks(&self) -> u64 {
        self.heights
            .iter()
            .zip(&self.due_at_restart)
            .map(|(h, due)| h.map_or(0, |h| (due + 1).saturating_sub(h)))
            .sum()
    }

    /// When every channel had caught up, Unix ns: `None` until then or when it was not restarted.
    pub fn caught_up_unix_ns(&self) -> Option<u64> {
        self.restarted_unix_ns?;
        self.caught_up
            .iter()
            .map(|c| c.map(|(t, _)| t))
            .try_fold(0, |max, t| Some(max.max(t?)))
    }

    /// Restart to caught up, ns.
    pub fn catch_up_ns(&self) -> Option<u64> {
        Some(
            self.caught_up_unix_ns()?
                .saturating_sub(self.restarted_unix_ns?),
        )
    }

    /// Whether the node is back but not caught up yet.
    fn catching_up(&self) -> bool {
        self.restarted_unix_ns.is_some() && self.caught_up_unix_ns().is_none()
    }
}

impl Collector {
    /// Every kill so far, in order.
    pub fn kills(&self) -> &[KillRecord] {
        &self.kills
    }

    /// Whether a restarted node has not caught up yet.
    pub fn catching_up(&self) -> bool {
        self.kills.iter().any(KillRecord::catching_up)
    }

    /// `node` was killed (SIGKILL) at `unix_ns`.
    pub fn record_kill(&mut self, node: usize, unix_ns: u64) {
        let channels = self.channels.len();
        self.kills.push(KillRecord {
            node,
            killed_unix_ns: unix_ns,
            heights: vec![None; channels],
            due_at_restart: vec![0; channels],
            caught_up: vec![None; channels],
            ..KillRecord::default()
        });
    }

    /// A killed node is back at the ledger heights `r` gives: from now on the collector counts
    /// at it what its ledger holds (module docs). Call before any event of the new process.
    pub fn record_restart(&mut self, r: &Restarted) {
        let Some(i) = self
            .kills
            .iter()
            .rposition(|k| k.node == r.node && k.restarted_unix_ns.is_none())
        else {
            return; // not killed: nothing to reconcile
        };
        let killed_ns = self.kills[i].killed_unix_ns;
        let due_at_restart = self.schedule.due_by(r.started_unix_ns);
        let (mut lost, mut held_without_event) = (0, 0);
        let mut heights = vec![None; self.channels.len()];
        let mut caught_up = vec![None; self.channels.len()];
        for (name, height) in &r.heights {
            let Some(ch) = self.channels.iter().position(|c| c == name) else {
                continue;
            };
            heights[ch] = *height;
            let Some(height) = *height else {
                continue;
            };
            let (l, h) = self.reconcile(r.node, ch, height, killed_ns);
            lost += l;
            held_without_event += h;
            // Its in-order delivery resumes at `height`.
            self.last_seq.insert((r.node, ch), height.saturating_sub(1));
            if height > due_at_restart {
                caught_up[ch] = Some((r.started_unix_ns, height - 1));
            }
        }
        let k = &mut self.kills[i];
        k.restarted_unix_ns = Some(r.started_unix_ns);
        k.heights = heights;
        k.due_at_restart = vec![due_at_restart; self.channels.len()];
        k.caught_up = caught_up;
        k.lost_blocks = lost;
        k.held_without_event_blocks = held_without_event;
    }

    /// Makes `node`'s blocks of channel `ch` what a ledger of `height` holds; returns the blocks
    /// it lost (seen received, not in the ledger) and those held without a receipt seen.
    fn reconcile(&mut self, node: usize, ch: usize, height: u64, killed_ns: u64) -> (u64, u64) {
        let receiver = !self.injectors.contains(&node);
        let (mut lost, mut held_without_event) = (0, 0);
        for seq in 1..=self.schedule.blocks {
            if seq < height {
                self.set_in_order(node, ch, seq);
                let latest_ns = killed_ns.saturating_sub(self.schedule.due_ns(seq));
                if receiver && self.set_receipt(node, ch, seq, latest_ns) {
                    held_without_event += 1;
                }
            } else {
                self.clear_in_order(node, ch, seq);
                if receiver && self.clear_receipt(node, ch, seq) {
                    lost += 1;
                }
            }
        }
        (lost, held_without_event)
    }

    /// A receipt at `node` on channel `ch` at `unix_ns`: counted by path for its restart, if any.
    pub(super) fn note_received(
        &mut self,
        node: usize,
        ch: usize,
        via: Option<Arrival>,
        unix_ns: u64,
    ) {
        let Some(k) = self.active_restart(node) else {
            return;
        };
        k.first_receipt_unix_ns.get_or_insert(unix_ns);
        if via == Some(Arrival::StateTransfer) {
            k.first_state_receipt_unix_ns.get_or_insert(unix_ns);
        }
        let path = path_index(via);
        k.via_after_restart[path] += 1;
        if k.caught_up.get(ch).is_some_and(Option::is_none) {
            k.via_until_caught_up[path] += 1;
        }
    }

    /// `node` delivered in order up to `height_seq` on channel `ch` at `unix_ns`: whether it has
    /// caught up since its restart.
    pub(super) fn note_in_order(&mut self, node: usize, ch: usize, height_seq: u64, unix_ns: u64) {
        if self.kills.is_empty() {
            return;
        }
        let due = self.schedule.due_by(unix_ns);
        let Some(k) = self.active_restart(node) else {
            return;
        };
        if let Some(c @ None) = k.caught_up.get_mut(ch) {
            k.trace.push(TracePoint {
                unix_ns,
                channel: ch,
                height_seq,
                due_seq: due,
            });
            if height_seq >= due {
                *c = Some((unix_ns, height_seq));
            }
        }
    }

    /// The latest kill of `node` when it has been restarted since.
    fn active_restart(&mut self, node: usize) -> Option<&mut KillRecord> {
        self.kills
            .iter_mut()
            .rev()
            .find(|k| k.node == node)
            .filter(|k| k.restarted_unix_ns.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::super::Schedule;
    use super::*;
    use crate::cluster::control::{Delivery, DeliveryKind};

    const MS: u64 = 1_000_000;

    /// 20 blocks, one every 100 ms from t = 1 s, none warm-up, 4 nodes, node 0 injects.
    fn collector() -> Collector {
        let s = Schedule {
            start_unix_ns: 1_000 * MS,
            interval_ns: 100 * MS,
            jitter_ns: 0,
            blocks: 20,
            warmup_blocks: 0,
        };
        Collector::new(s, 4, vec!["c".into()], vec![0])
    }

    fn event(
        kind: DeliveryKind,
        node: usize,
        seq: u64,
        at_ns: u64,
        via: Option<Arrival>,
    ) -> Delivery {
        Delivery {
            kind,
            node,
            channel: "c".into(),
            seq,
            received_unix_ns: at_ns,
            via,
        }
    }

    /// `node` receives `seq` 5 ms after its due time by `via` and delivers it in order.
    fn gets(c: &mut Collector, node: usize, seq: u64, via: Arrival) {
        let at = c.schedule.due_ns(seq) + 5 * MS;
        c.record(&event(DeliveryKind::Received, node, seq, at, Some(via)));
        c.record(&event(DeliveryKind::InOrder, node, seq, at, None));
    }

    fn restart(c: &mut Collector, node: usize, at_ns: u64, height: Option<u64>) {
        c.record_restart(&Restarted {
            node,
            started_unix_ns: at_ns,
            heights: vec![("c".into(), height)],
        });
    }

    #[test]
    fn due_by_is_the_newest_block_due() {
        let c = collector();
        let s = c.schedule;
        assert_eq!(s.due_by(0), 0, "before block 1");
        assert_eq!(s.due_by(s.due_ns(1)), 1);
        assert_eq!(s.due_by(s.due_ns(7) - 1), 6);
        assert_eq!(s.due_by(s.due_ns(7) + 99 * MS), 7);
        assert_eq!(s.due_by(u64::MAX), 20, "at most every block");
        let jittered = Schedule {
            jitter_ns: 60 * MS,
            ..s
        };
        for seq in 1..=20 {
            assert_eq!(jittered.due_by(jittered.due_ns(seq)), seq);
            assert_eq!(jittered.due_by(jittered.due_ns(seq) - 1), seq - 1);
        }
    }

    #[test]
    fn blocks_in_the_ledger_stay_delivered_and_the_rest_count_again() {
        let mut c = collector();
        for node in [1, 3] {
            for seq in 1..=6 {
                gets(&mut c, node, seq, Arrival::Push);
            }
        }
        // Node 2 delivered 1-6, but loadgen saw the events of 1-4 only (those of 5 and 6 died
        // with the process), and it received 8 out of order (7 is missing).
        for seq in 1..=4 {
            gets(&mut c, 2, seq, Arrival::Push);
        }
        let at8 = c.schedule.due_ns(8) + 5 * MS;
        c.record(&event(
            DeliveryKind::Received,
            2,
            8,
            at8,
            Some(Arrival::Push),
        ));
        let kill_ns = c.schedule.due_ns(9);
        c.record_kill(2, kill_ns);
        assert_eq!(c.delivered[2], 5, "1-4 and 8");
        // Its ledger committed 1-6 (the events of 5 and 6 died with it): height 7.
        let back_ns = c.schedule.due_ns(12) + 50 * MS;
        restart(&mut c, 2, back_ns, Some(7));
        let k = &c.kills()[0];
        assert_eq!(k.lost_blocks, 1, "block 8 was received, never committed");
        assert_eq!(k.held_without_event_blocks, 2, "5 and 6");
        assert_eq!(k.due_at_restart, vec![12]);
        assert_eq!(k.behind_at_restart_blocks(), 6, "7-12");
        assert_eq!(c.delivered[2], 6, "1-6");
        assert_eq!(c.delivered_in_order[2], 6);
        assert_eq!(c.complete_blocks(), 6, "1-6 everywhere");
        assert!(c.catching_up());
        // The node catches up by state transfer (7-13), then by push; no order violation and no
        // redelivery: it resumes at its ledger height.
        let violations = c.order_violations;
        let burst_ns = c.schedule.due_ns(13) + 20 * MS;
        for seq in 7..=13 {
            c.record(&event(
                DeliveryKind::Received,
                2,
                seq,
                burst_ns,
                Some(Arrival::StateTransfer),
            ));
            c.record(&event(DeliveryKind::InOrder, 2, seq, burst_ns, None));
        }
        assert_eq!((c.order_violations, c.redeliveries), (violations, 0));
        let k = &c.kills()[0];
        assert_eq!(
            k.caught_up,
            vec![Some((burst_ns, 13))],
            "13 was the newest due"
        );
        assert_eq!(
            (k.first_receipt_unix_ns, k.first_state_receipt_unix_ns),
            (Some(burst_ns), Some(burst_ns))
        );
        assert_eq!(k.catch_up_ns(), Some(burst_ns - back_ns));
        assert_eq!(k.via_after_restart, [0, 0, 7, 0]);
        assert_eq!(
            k.via_until_caught_up,
            [0, 0, 7, 0],
            "13's receipt came before its delivery"
        );
        assert!(!c.catching_up());
        gets(&mut c, 2, 14, Arrival::Push);
        let k = &c.kills()[0];
        assert_eq!(k.via_after_restart, [1, 0, 7, 0]);
        assert_eq!(k.via_until_caught_up, [0, 0, 7, 0]);
        // Block 8's receipt is measured once (its first), but the node holds it again.
        assert_eq!(c.per_node[2].len(), 4 + 1 + 6 + 1, "1-4, 8, 7 and 9-13, 14");
        assert_eq!(c.per_node_via[2], [6, 0, 6, 0]);
        assert_eq!(c.delivered[2], 14);
    }

    #[test]
    fn a_node_behind_catches_up_only_when_it_holds_every_block_due() {
        let mut c = collector();
        for seq in 1..=3 {
            gets(&mut c, 1, seq, Arrival::Push);
        }
        c.record_kill(1, c.schedule.due_ns(4));
        let back_ns = c.schedule.due_ns(8);
        restart(&mut c, 1, back_ns, Some(4));
        assert_eq!(c.kills()[0].behind_at_restart_blocks(), 5, "4-8");
        // A pull brings 4-9 at 9's due time + 60 ms: block 10 is not due yet, so it is caught up.
        // A delivery of 4-8 alone at that time would not be: 9 was due.
        let at = c.schedule.due_ns(9) + 60 * MS;
        for seq in 4..=8 {
            c.record(&event(DeliveryKind::InOrder, 1, seq, at, None));
        }
        assert_eq!(c.kills()[0].catch_up_ns(), None, "9 was due and not held");
        c.record(&event(DeliveryKind::InOrder, 1, 9, at, None));
        assert_eq!(c.kills()[0].catch_up_ns(), Some(at - back_ns));
        c.record(&event(DeliveryKind::InOrder, 1, 10, at + 50 * MS, None));
        let trace: Vec<(u64, u64)> = c.kills()[0]
            .trace
            .iter()
            .map(|p| (p.height_seq, p.due_seq))
            .collect();
        assert_eq!(
            trace,
            [(4, 9), (5, 9), (6, 9), (7, 9), (8, 9), (9, 9)],
            "up to catching up, not after"
        );
    }

    #[test]
    fn restart_edge_cases() {
        let mut c = collector();
        // A restart without a kill changes nothing.
        restart(&mut c, 1, 5_000 * MS, Some(3));
        assert!(c.kills().is_empty() && !c.catching_up());
        // Killed before injection, back before block 1 was due: caught up at the restart.
        c.record_kill(1, 100 * MS);
        restart(&mut c, 1, 500 * MS, Some(1));
        assert_eq!(c.kills()[0].catch_up_ns(), Some(0));
        assert_eq!(c.kills()[0].behind_at_restart_blocks(), 0);
        // Still down: no catch-up; unknown height: nothing reconciled, caught up by events.
        c.record_kill(3, 1_500 * MS);
        assert_eq!(c.kills()[1].catch_up_ns(), None);
        assert!(!c.catching_up(), "down is not catching up");
        restart(&mut c, 3, 1_600 * MS, None);
        assert!(c.catching_up());
        assert_eq!(c.kills()[1].behind_at_restart_blocks(), 0, "unknown");
        let at = c.schedule.due_ns(7) + MS;
        for seq in 1..=7 {
            c.record(&event(DeliveryKind::InOrder, 3, seq, at, None));
        }
        assert_eq!(c.kills()[1].catch_up_ns(), Some(at - 1_600 * MS));
        // An injector's kill reconciles in-order deliveries only: it is no receiver.
        c.record_kill(0, 2_000 * MS);
        restart(&mut c, 0, 2_100 * MS, Some(12));
        assert_eq!(c.delivered_in_order[0], 11);
        assert_eq!(
            (
                c.kills()[2].lost_blocks,
                c.kills()[2].held_without_event_blocks
            ),
            (0, 0)
        );
        assert_eq!(c.delivered[0], 0);
    }
}
