//! When a running round may be given up for a gap or quiet round (`eager` engines).
//!
//! A round waiting on a silent peer (Fabric's responder says nothing when its store is empty, and
//! a hello, digest or update may be lost) would otherwise hold every repair for
//! `digestWaitTime` or `responseWaitTime`, while missed blocks leave every peer's store. But a
//! round must not be given up before its answers can arrive: on a WAN link the answers take a
//! round trip, and a threshold below it gives up every round just before its answers come (a
//! livelock: under 5 % loss and 50 ms delay, no block was ever repaired, results/reliability.md,
//! R1 with Fabric's defaults).
//!
//! So the threshold follows the round trip: a phase (digests after the hellos, updates after the
//! requests) is given up `max(gap_interval, 3 × rtt)` after it began, `rtt` being the answer
//! delay seen: each round's first digest and first update, and an answer that comes late for the
//! last round given up (it says the threshold was too short). The estimate follows a longer
//! sample at once and a shorter one slowly (one eighth of the way).

use std::time::Duration;

use crate::time::Instant;

/// How many round trips a phase is given before it may be given up.
pub const RTT_FACTOR: u32 = 3;

/// The round given up last: when its phase began and its nonces.
#[derive(Debug)]
struct GivenUp {
    phase_began: Instant,
    nonces: Vec<u64>,
}

/// The answer-delay estimate and the round given up last.
#[derive(Debug, Default)]
pub struct Supersede {
    rtt: Option<Duration>,
    given_up: Option<GivenUp>,
}

impl Supersede {
    /// How long a phase runs before it may be given up.
    pub fn threshold(&self, gap_interval: Duration) -> Duration {
        self.rtt
            .map_or(gap_interval, |rtt| gap_interval.max(rtt * RTT_FACTOR))
    }

    /// An answer came `delay` after its phase began.
    pub fn sample(&mut self, delay: Duration) {
        self.rtt = Some(match self.rtt {
            Some(rtt) if delay < rtt => (rtt * 7 + delay) / 8,
            _ => delay,
        });
    }

    /// A round is given up: its phase began at `phase_began`, its nonces are `nonces`.
    pub fn given_up(&mut self, phase_began: Instant, nonces: Vec<u64>) {
        self.given_up = Some(GivenUp {
            phase_began,
            nonces,
        });
    }

    /// A message with an unknown `nonce` came at `now`: one of the round given up last is a late
    /// answer, sampled (once per round).
    pub fn late(&mut self, nonce: u64, now: Instant) {
        let Some(g) = &self.given_up else {
            return;
        };
        if g.nonces.contains(&nonce) {
            let delay = now.saturating_duration_since(g.phase_began);
            self.given_up = None;
            self.sample(delay);
        }
    }

    /// The estimate (`None` until an answer was seen).
    pub fn rtt(&self) -> Option<Duration> {
        self.rtt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GAP: Duration = Duration::from_millis(100);

    #[test]
    fn the_threshold_follows_the_round_trip_and_never_drops_below_the_gap_interval() {
        let mut s = Supersede::default();
        assert_eq!(s.threshold(GAP), GAP, "no estimate yet");
        s.sample(Duration::from_millis(2));
        assert_eq!(s.threshold(GAP), GAP, "a LAN round trip");
        s.sample(Duration::from_millis(120));
        assert_eq!(s.rtt(), Some(Duration::from_millis(120)), "longer: at once");
        assert_eq!(s.threshold(GAP), Duration::from_millis(360));
        s.sample(Duration::from_millis(40));
        assert_eq!(
            s.rtt(),
            Some(Duration::from_millis(110)),
            "shorter: an eighth"
        );
    }

    #[test]
    fn a_late_answer_to_the_round_given_up_is_sampled_once() {
        let mut s = Supersede::default();
        let began = Instant::from_nanos(1_000_000_000);
        s.given_up(began, vec![7, 8]);
        s.late(9, began + Duration::from_millis(500));
        assert_eq!(s.rtt(), None, "not its nonce");
        s.late(8, began + Duration::from_millis(150));
        assert_eq!(s.rtt(), Some(Duration::from_millis(150)));
        s.late(7, began + Duration::from_millis(900));
        assert_eq!(s.rtt(), Some(Duration::from_millis(150)), "once per round");
    }
}
