//! The cadence of new items: when a stream that has been bringing a new item every so often
//! goes quiet for longer than usual, the newest item may have been missed by push.
//!
//! A missed block is otherwise noticed only when its successor arrives (a gap), one block
//! interval later, and when the successor is missed too, not before the block after it. The
//! cadence notices the silence itself: it follows the interval between new items (the newest
//! number seen so far, arriving by push or from the embedder) as a moving average, and a
//! silence of [`QUIET_WAIT_PER_MILLE`]/1000 of that average (clamped to [`QUIET_WAIT_MIN`] and
//! the pull interval) makes one pull round due. One round per silence: the next new item arms it
//! again, so a stream that stops costs one round per peer, not one per interval.
//!
//! Not in Fabric, which repairs only on its 4 s pull timer; only the timing is ours, the round is
//! Fabric's (`pull_on_gap`, module [`super`]).

use std::time::Duration;

use crate::time::Instant;

/// A silence this long, in thousandths of the average interval between new items, makes a round
/// due. 1.5 intervals: push latency varies by a few milliseconds against an interval of tens, so
/// a block on time never looks missed, and a missed one is asked for half an interval late.
pub const QUIET_WAIT_PER_MILLE: u32 = 1_500;
/// The shortest silence that makes a round due, however fast items come (at high rates a gap is
/// seen sooner anyway).
pub const QUIET_WAIT_MIN: Duration = Duration::from_millis(20);
/// Weight of a new interval in the moving average, in eighths.
const AVERAGE_NEW_WEIGHT_EIGHTHS: u32 = 1;
/// Intervals longer than this are pauses, not the cadence, and are left out of the average.
const INTERVAL_SAMPLE_MAX: Duration = Duration::from_secs(4);

/// The cadence of one stream of numbered items (module doc).
#[derive(Clone, Debug, Default)]
pub struct Cadence {
    /// When the newest item arrived.
    last_new: Option<Instant>,
    /// The average interval between new items that arrived on their own.
    interval_avg: Option<Duration>,
    /// Whether a silence after `last_new` would make a round due.
    armed: bool,
}

impl Cadence {
    /// A new newest item arrived at `now`. `sample`: it came on its own (push, the embedder), so
    /// the time since the last one is an interval of the stream; a pulled item re-arms the
    /// silence check without being an interval.
    pub fn newest(&mut self, now: Instant, sample: bool) {
        if let (true, Some(last)) = (sample, self.last_new) {
            let interval = now.saturating_duration_since(last);
            if interval <= INTERVAL_SAMPLE_MAX {
                self.interval_avg = Some(match self.interval_avg {
                    None => interval,
                    Some(avg) => {
                        (avg * (8 - AVERAGE_NEW_WEIGHT_EIGHTHS)
                            + interval * AVERAGE_NEW_WEIGHT_EIGHTHS)
                            / 8
                    }
                });
            }
        }
        self.last_new = Some(now);
        self.armed = true;
    }

    /// When the silence makes a round due (`None`: not armed, or no interval known yet); the wait
    /// is at most `wait_max`.
    pub fn quiet_at(&self, wait_max: Duration) -> Option<Instant> {
        if !self.armed {
            return None;
        }
        let avg = self.interval_avg?;
        let wait = (avg * QUIET_WAIT_PER_MILLE / 1_000).clamp(QUIET_WAIT_MIN, wait_max);
        Some(self.last_new? + wait)
    }

    /// A round started: the silence so far is covered.
    pub fn disarm(&mut self) {
        self.armed = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> Instant {
        Instant::from_nanos(ms * 1_000_000)
    }

    const MAX: Duration = Duration::from_secs(4);

    #[test]
    fn a_silence_of_one_and_a_half_intervals_is_due_once() {
        let mut c = Cadence::default();
        c.newest(at(0), true);
        assert_eq!(c.quiet_at(MAX), None, "no interval known yet");
        c.newest(at(50), true);
        assert_eq!(c.quiet_at(MAX), Some(at(125)));
        c.newest(at(100), true);
        assert_eq!(c.quiet_at(MAX), Some(at(175)));
        c.disarm();
        assert_eq!(c.quiet_at(MAX), None, "one round per silence");
        // A pulled newest item re-arms without changing the average.
        c.newest(at(180), false);
        assert_eq!(c.quiet_at(MAX), Some(at(255)));
    }

    #[test]
    fn the_average_moves_slowly_and_pauses_are_left_out() {
        let mut c = Cadence::default();
        c.newest(at(0), true);
        c.newest(at(80), true);
        c.newest(at(80), true); // two at once: an interval of 0 pulls the average down by 1/8
        assert_eq!(c.quiet_at(MAX), Some(at(80 + 105)));
        c.newest(at(10_080), true); // a pause of 10 s
        assert_eq!(c.quiet_at(MAX), Some(at(10_080 + 105)));
    }

    #[test]
    fn the_wait_is_clamped() {
        let mut c = Cadence::default();
        c.newest(at(0), true);
        c.newest(at(1), true);
        assert_eq!(c.quiet_at(MAX), Some(at(1) + QUIET_WAIT_MIN));
        c.newest(at(3_001), true);
        c.newest(at(6_001), true);
        let wait_max = Duration::from_secs(1);
        assert_eq!(c.quiet_at(wait_max), Some(at(6_001) + wait_max));
    }
}
