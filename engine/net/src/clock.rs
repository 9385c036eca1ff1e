//! The one place that reads the real clock. Everything else takes `now` as an argument.
//!
//! `now` is monotonic: the wall-clock time read once, at the first call, plus the monotonic time
//! elapsed since. Timers and deadlines (heartbeats, expirations, retries) therefore run on a clock
//! that a wall-clock step cannot move: a step backwards does not postpone the next heartbeat, a
//! step forwards does not fire every timer at once. Wire timestamps taken from it (an alive
//! message's `inc_num`, the start time in ns; StateInfo's time-based `seq_num`) and certificate
//! validity checks stay in Unix time, off by at most the wall-clock steps since start.

use std::sync::OnceLock;
use std::time::Duration;

use crate::time::Instant;

/// A reading of the monotonic clock for timing a stage (the histograms of
/// [`crate::histogram`]): `.elapsed()` on it is the stage's duration. Never a timer or deadline.
#[allow(clippy::disallowed_methods)]
pub fn stopwatch() -> std::time::Instant {
    std::time::Instant::now()
}

/// Where a [`Clock`] reads time: the real clocks, or a test's.
pub trait TimeSource {
    /// The wall clock, in ns since the Unix epoch.
    fn wall_unix_ns(&self) -> u64;
    /// A monotonic reading: time since an arbitrary origin that never moves backwards.
    fn monotonic(&self) -> Duration;
}

/// The system's clocks: `SystemTime` for the wall, `std::time::Instant` for monotonic time.
#[derive(Debug)]
pub struct SystemTimeSource {
    origin: std::time::Instant,
}

impl SystemTimeSource {
    /// Monotonic readings count from now.
    #[allow(clippy::disallowed_methods)]
    pub fn new() -> Self {
        Self {
            origin: std::time::Instant::now(),
        }
    }
}

impl Default for SystemTimeSource {
    fn default() -> Self {
        Self::new()
    }
}

impl TimeSource for SystemTimeSource {
    #[allow(clippy::disallowed_methods)]
    fn wall_unix_ns(&self) -> u64 {
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        u64::try_from(since_epoch.as_nanos()).unwrap_or(u64::MAX)
    }

    fn monotonic(&self) -> Duration {
        self.origin.elapsed()
    }
}

/// A monotonic clock anchored once to the wall clock (see the module doc).
#[derive(Debug)]
pub struct Clock<S> {
    source: S,
    anchor_unix_ns: u64,
    anchor_monotonic: Duration,
}

impl<S: TimeSource> Clock<S> {
    /// Anchors the clock at `source`'s wall time now.
    pub fn new(source: S) -> Self {
        let anchor_monotonic = source.monotonic();
        let anchor_unix_ns = source.wall_unix_ns();
        Self {
            source,
            anchor_unix_ns,
            anchor_monotonic,
        }
    }

    /// The anchor's wall time plus the monotonic time elapsed since.
    pub fn now(&self) -> Instant {
        let elapsed = self
            .source
            .monotonic()
            .saturating_sub(self.anchor_monotonic);
        Instant::from_nanos(self.anchor_unix_ns) + elapsed
    }

    /// The time source.
    pub fn source(&self) -> &S {
        &self.source
    }
}

static CLOCK: OnceLock<Clock<SystemTimeSource>> = OnceLock::new();

/// The process's clock: ns since the Unix epoch at the first call, monotonic from then on.
pub fn now() -> Instant {
    CLOCK
        .get_or_init(|| Clock::new(SystemTimeSource::new()))
        .now()
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    /// A hand-driven clock pair.
    #[derive(Default)]
    struct FakeSource {
        wall_unix_ns: AtomicU64,
        monotonic_ns: AtomicU64,
    }

    impl TimeSource for FakeSource {
        fn wall_unix_ns(&self) -> u64 {
            self.wall_unix_ns.load(Ordering::Relaxed)
        }
        fn monotonic(&self) -> Duration {
            Duration::from_nanos(self.monotonic_ns.load(Ordering::Relaxed))
        }
    }

    const HOUR_NS: u64 = 3_600_000_000_000;
    const SECOND_NS: u64 = 1_000_000_000;

    #[test]
    fn a_backwards_wall_clock_step_does_not_postpone_the_next_tick() {
        let source = FakeSource::default();
        source
            .wall_unix_ns
            .store(1_700_000_000 * SECOND_NS, Ordering::Relaxed);
        source.monotonic_ns.store(42 * SECOND_NS, Ordering::Relaxed);
        let clock = Clock::new(source);
        let start = clock.now();
        assert_eq!(
            start.as_nanos(),
            1_700_000_000 * SECOND_NS,
            "anchored at the wall time"
        );
        // The node asks to be woken in 5 s (a heartbeat); the driver sleeps until then.
        let tick = start + Duration::from_secs(5);
        // One second later the wall clock is stepped back by an hour.
        let s = clock.source();
        s.monotonic_ns.fetch_add(SECOND_NS, Ordering::Relaxed);
        s.wall_unix_ns.fetch_add(SECOND_NS, Ordering::Relaxed);
        s.wall_unix_ns.fetch_sub(HOUR_NS, Ordering::Relaxed);
        assert_eq!(
            tick.saturating_duration_since(clock.now()),
            Duration::from_secs(4),
            "the driver's next sleep is still 4 s, not an hour and 4 s"
        );
        s.monotonic_ns.fetch_add(4 * SECOND_NS, Ordering::Relaxed);
        assert!(clock.now() >= tick, "the tick is due 5 s after it was set");
    }

    #[test]
    fn a_forwards_wall_clock_step_does_not_fire_timers_early() {
        let source = FakeSource::default();
        source
            .wall_unix_ns
            .store(1_700_000_000 * SECOND_NS, Ordering::Relaxed);
        let clock = Clock::new(source);
        let tick = clock.now() + Duration::from_secs(5);
        clock
            .source()
            .wall_unix_ns
            .fetch_add(HOUR_NS, Ordering::Relaxed);
        assert!(clock.now() < tick);
    }

    #[test]
    fn the_process_clock_never_goes_backwards() {
        let first = now();
        let second = now();
        assert!(second >= first);
    }
}
