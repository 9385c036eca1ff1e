//! Time as a value. The sans-IO core never reads a clock: callers pass `now` in.

use std::ops::{Add, Sub};
use std::time::Duration;

/// A point in time, in nanoseconds since an arbitrary epoch chosen by the driver (the tokio driver
/// uses the Unix epoch, read once at start and advanced by a monotonic clock from then on, so a
/// wall-clock step never moves a timer; the simulator uses zero at start), so simulated runs print
/// stable times.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant(pub u64);

impl Instant {
    /// The epoch itself.
    pub const ZERO: Instant = Instant(0);
    /// Never: the deadline of a timer that is not armed.
    pub const MAX: Instant = Instant(u64::MAX);

    /// Builds an instant from nanoseconds since the epoch.
    pub fn from_nanos(nanos: u64) -> Self {
        Self(nanos)
    }

    /// Nanoseconds since the epoch.
    pub fn as_nanos(self) -> u64 {
        self.0
    }

    /// Whole seconds since the epoch (for certificate validity checks when the epoch is Unix).
    pub fn as_unix_secs(self) -> i64 {
        (self.0 / 1_000_000_000) as i64
    }

    /// Time elapsed from `earlier` to `self`, zero when `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, rhs: Duration) -> Instant {
        Instant(
            self.0
                .saturating_add(rhs.as_nanos().min(u64::MAX as u128) as u64),
        )
    }
}

impl Sub<Duration> for Instant {
    type Output = Instant;
    fn sub(self, rhs: Duration) -> Instant {
        Instant(
            self.0
                .saturating_sub(rhs.as_nanos().min(u64::MAX as u128) as u64),
        )
    }
}
