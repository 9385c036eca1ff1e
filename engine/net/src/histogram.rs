//! Fixed-bucket histograms of the engine's stages, read by the operations endpoint.
//!
//! Written by hand rather than taken from a metrics crate: the engine exposes point-in-time
//! snapshots ([`crate::handle::GossipStats`]) and leaves the export format to the embedder, so it
//! must not own a metrics registry. An observation is a bucket search over a dozen bounds and
//! two relaxed atomic adds; nothing allocates after construction.
//!
//! Buckets are Prometheus's: an observation counts in the first bucket whose upper bound is at
//! or above it, and one past the last bound counts in the `+Inf` bucket.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Prometheus's default buckets, seconds. Fabric sets no buckets of its own, so its histograms
/// (`gossip_state_commit_duration`) have these.
pub const DEFAULT_BOUNDS_S: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Buckets for the engine's per-stage latencies, seconds: 10 µs to 1 s (a stage is a queue
/// wait or one message's handling, usually tens of microseconds).
pub const STAGE_BOUNDS_S: &[f64] = &[
    1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 1.0,
];

/// Buckets for lengths (jobs per verification batch): powers of two up to the pool's default
/// batch of 32, and one above.
pub const LEN_BOUNDS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0];

/// What a histogram's observations measure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HistogramUnit {
    /// Durations; bounds are seconds, the sum is kept in nanoseconds.
    Seconds,
    /// Plain counts (lengths).
    Count,
}

/// A histogram over fixed bounds; share it behind an `Arc`.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    unit: HistogramUnit,
    /// One per bound, then `+Inf`; not cumulative.
    buckets: Box<[AtomicU64]>,
    /// Nanoseconds for [`HistogramUnit::Seconds`], the values for [`HistogramUnit::Count`].
    sum: AtomicU64,
}

impl Histogram {
    /// A histogram of durations over `bounds_s` (ascending seconds).
    pub fn seconds(bounds_s: &'static [f64]) -> Self {
        Self::new(bounds_s, HistogramUnit::Seconds)
    }

    /// A histogram of lengths over `bounds` (ascending).
    pub fn count(bounds: &'static [f64]) -> Self {
        Self::new(bounds, HistogramUnit::Count)
    }

    fn new(bounds: &'static [f64], unit: HistogramUnit) -> Self {
        debug_assert!(bounds.windows(2).all(|w| w[0] < w[1]), "ascending bounds");
        Self {
            bounds,
            unit,
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0),
        }
    }

    /// Records a duration (a [`HistogramUnit::Seconds`] histogram).
    pub fn observe_duration(&self, d: Duration) {
        self.observe_duration_times(d, 1);
    }

    /// Records the same duration `times` times (each block of one transaction).
    pub fn observe_duration_times(&self, d: Duration, times: u64) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.record(d.as_secs_f64(), ns.saturating_mul(times), times);
    }

    /// Records a length (a [`HistogramUnit::Count`] histogram).
    pub fn observe_len(&self, len: usize) {
        let len = u64::try_from(len).unwrap_or(u64::MAX);
        self.record(len as f64, len, 1);
    }

    fn record(&self, value: f64, sum_units: u64, times: u64) {
        let i = self.bounds.partition_point(|bound| *bound < value);
        self.buckets[i].fetch_add(times, Ordering::Relaxed);
        self.sum.fetch_add(sum_units, Ordering::Relaxed);
    }

    /// The counts now (each bucket read on its own: a snapshot taken during observations may
    /// be off by those in flight).
    pub fn snapshot(&self) -> HistogramSnapshot {
        HistogramSnapshot {
            bounds: self.bounds,
            unit: self.unit,
            counts: self
                .buckets
                .iter()
                .map(|b| b.load(Ordering::Relaxed))
                .collect(),
            sum_units: self.sum.load(Ordering::Relaxed),
        }
    }
}

impl Default for Histogram {
    /// A histogram of stage durations ([`STAGE_BOUNDS_S`]).
    fn default() -> Self {
        Self::seconds(STAGE_BOUNDS_S)
    }
}

/// A point-in-time copy of a [`Histogram`].
#[derive(Clone, Debug)]
pub struct HistogramSnapshot {
    /// Upper bounds, ascending (seconds or counts, per `unit`).
    pub bounds: &'static [f64],
    /// What the observations measure.
    pub unit: HistogramUnit,
    /// Observations per bucket, one per bound and a last for `+Inf`; not cumulative.
    pub counts: Vec<u64>,
    /// The sum of the observations in nanoseconds ([`HistogramUnit::Seconds`]) or as counted.
    pub sum_units: u64,
}

/// Bounds compare bit for bit (they are constants, never NaN), so equality is total.
impl PartialEq for HistogramSnapshot {
    fn eq(&self, other: &Self) -> bool {
        let bits = |b: &[f64]| b.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        bits(self.bounds) == bits(other.bounds)
            && self.unit == other.unit
            && self.counts == other.counts
            && self.sum_units == other.sum_units
    }
}

impl Eq for HistogramSnapshot {}

impl Default for HistogramSnapshot {
    /// An empty stage-duration histogram.
    fn default() -> Self {
        Histogram::default().snapshot()
    }
}

impl HistogramSnapshot {
    /// Observations in all.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The sum of the observations in the histogram's unit (seconds or counts).
    pub fn sum(&self) -> f64 {
        match self.unit {
            HistogramUnit::Seconds => self.sum_units as f64 / 1e9,
            HistogramUnit::Count => self.sum_units as f64,
        }
    }

    /// `(upper bound, observations at or below it)` for each bound; `+Inf` is [`Self::count`].
    pub fn cumulative(&self) -> impl Iterator<Item = (f64, u64)> + '_ {
        self.bounds
            .iter()
            .zip(self.counts.iter().scan(0, |acc, n| {
                *acc += n;
                Some(*acc)
            }))
            .map(|(bound, n)| (*bound, n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_observation_counts_in_the_first_bucket_at_or_above_it() {
        let h = Histogram::seconds(DEFAULT_BOUNDS_S);
        h.observe_duration(Duration::from_millis(5)); // on a bound: that bucket
        h.observe_duration(Duration::from_millis(6)); // next bucket (0.01)
        h.observe_duration(Duration::from_secs(11)); // past the last: +Inf
        h.observe_duration(Duration::ZERO);
        let s = h.snapshot();
        assert_eq!(s.counts.len(), DEFAULT_BOUNDS_S.len() + 1);
        assert_eq!(s.counts[0], 2);
        assert_eq!(s.counts[1], 1);
        assert_eq!(*s.counts.last().unwrap(), 1);
        assert_eq!(s.count(), 4);
        assert_eq!(s.sum_units, 11_011_000_000);
        assert!((s.sum() - 11.011).abs() < 1e-9);
        let cumulative: Vec<_> = s.cumulative().collect();
        assert_eq!(cumulative[0], (0.005, 2));
        assert_eq!(cumulative[1], (0.01, 3));
        assert_eq!(cumulative.last(), Some(&(10.0, 3)));
    }

    #[test]
    fn lengths_sum_as_counted() {
        let h = Histogram::count(LEN_BOUNDS);
        for len in [1, 3, 32, 100] {
            h.observe_len(len);
        }
        let s = h.snapshot();
        assert_eq!(s.counts, vec![1, 0, 1, 0, 0, 1, 0, 1]);
        assert_eq!(s.sum(), 136.0);
        assert_eq!(s.unit, HistogramUnit::Count);
    }
}
