//! Early probes of a member that just died: at 1, 2, 4, 8 and 16 s after its death (doubling
//! while below `reconnectInterval`), before the periodic probe of every dead member
//! (`reconnectInterval`, 25 s, Fabric's `periodicalReconnectToDead`) takes over.
//!
//! Fabric probes a dead member only on that 25 s tick, so a peer cut off for a few seconds (a
//! restarted switch, a partition that heals, a peer restarted in place) waits up to 25 s to be
//! seen again, and its blocks wait with it: in R2 (`results/reliability.md`) the cut side's
//! heights caught up 22–25 s after the heal. With doubling waits a member back after an outage of
//! `t` seconds is probed again within about `t` more (and never later than Fabric would). The
//! probes are Fabric's (a dial and a `Ping`); only their timing is ours, and it costs five dials
//! per death. Bounded: one entry per member (discovery's own bound), and none past
//! `reconnectInterval`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::time::Instant;
use crate::types::PkiId;

/// The first early probe's delay after a member died; each next one doubles it.
pub const REPROBE_FIRST_WAIT: Duration = Duration::from_secs(1);

/// The early probes due, by member.
#[derive(Debug, Default)]
pub(super) struct Reprobes {
    /// Member → (when its next early probe is due, the wait that led to it).
    by_member: BTreeMap<PkiId, (Instant, Duration)>,
    /// (due, member), for the earliest deadline.
    by_due: BTreeSet<(Instant, PkiId)>,
}

impl Reprobes {
    /// `pki_id` died at `now`: its first early probe is due [`REPROBE_FIRST_WAIT`] later, unless
    /// that is not sooner than the periodic probe (`reconnect_interval`).
    pub(super) fn died(&mut self, pki_id: PkiId, now: Instant, reconnect_interval: Duration) {
        self.forget(&pki_id);
        if REPROBE_FIRST_WAIT < reconnect_interval {
            self.schedule(pki_id, now + REPROBE_FIRST_WAIT, REPROBE_FIRST_WAIT);
        }
    }

    /// `pki_id` is alive again, or was purged: no more early probes.
    pub(super) fn forget(&mut self, pki_id: &PkiId) {
        if let Some((due, _)) = self.by_member.remove(pki_id) {
            self.by_due.remove(&(due, *pki_id));
        }
    }

    /// The earliest early probe.
    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        self.by_due.first().map(|(due, _)| *due)
    }

    /// The members whose early probe is due at `now`; each gets its next one at twice the wait,
    /// while that stays below `reconnect_interval`.
    pub(super) fn take_due(&mut self, now: Instant, reconnect_interval: Duration) -> Vec<PkiId> {
        let mut due = Vec::new();
        while let Some(&(at, pki_id)) = self.by_due.first() {
            if at > now {
                break;
            }
            let wait = self.by_member.get(&pki_id).map_or(Duration::ZERO, |w| w.1);
            self.forget(&pki_id);
            let next_wait = wait * 2;
            if next_wait < reconnect_interval {
                self.schedule(pki_id, now + next_wait, next_wait);
            }
            due.push(pki_id);
        }
        due
    }

    fn schedule(&mut self, pki_id: PkiId, at: Instant, wait: Duration) {
        self.by_member.insert(pki_id, (at, wait));
        self.by_due.insert((at, pki_id));
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.by_member.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at_ms(ms: u64) -> Instant {
        Instant::from_nanos(ms * 1_000_000)
    }

    const RECONNECT: Duration = Duration::from_secs(25);

    #[test]
    fn probes_double_until_the_periodic_probe_takes_over() {
        let mut r = Reprobes::default();
        let p = PkiId([1; 32]);
        r.died(p, at_ms(0), RECONNECT);
        let mut probed_at = Vec::new();
        while let Some(next) = r.poll_timeout() {
            assert_eq!(r.take_due(next, RECONNECT), vec![p]);
            probed_at.push(next.as_nanos() / 1_000_000);
        }
        assert_eq!(probed_at, [1_000, 3_000, 7_000, 15_000, 31_000]);
        assert_eq!(r.len(), 0, "the periodic probe takes over");
    }

    #[test]
    fn alive_again_or_purged_ends_the_probes_and_nothing_is_early_when_reconnect_is_short() {
        let mut r = Reprobes::default();
        let (p, q) = (PkiId([1; 32]), PkiId([2; 32]));
        r.died(p, at_ms(0), RECONNECT);
        r.died(q, at_ms(500), RECONNECT);
        assert!(r.take_due(at_ms(999), RECONNECT).is_empty());
        r.forget(&p);
        assert_eq!(r.poll_timeout(), Some(at_ms(1_500)));
        assert_eq!(r.take_due(at_ms(1_500), RECONNECT), vec![q]);
        r.forget(&q);
        assert_eq!(r.poll_timeout(), None);
        r.died(p, at_ms(0), Duration::from_secs(1));
        assert_eq!(
            r.poll_timeout(),
            None,
            "reconnectInterval 1 s: no early probe"
        );
    }
}
