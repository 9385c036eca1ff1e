//! The batching emitter (Fabric's `batchingEmitter`), sans-IO.
//!
//! Messages wait in a buffer of `{item, iterations_left}`. The buffer is emitted whole when it
//! reaches `burst_len_max` entries, and on every tick of a fixed period `burst_latency`. After each
//! emission every entry's `iterations_left` drops by one and entries at zero leave the buffer, so
//! each message is pushed `iterations` times.
//!
//! Fabric's emitter runs a goroutine that sleeps `burst_latency` and emits, forever. The ticks are
//! on a fixed grid, independent of when messages arrive, so every message waits a uniformly
//! distributed part of the period (5 ms on average at the default 10 ms) at every hop.
//!
//! By default ([`EmitterConfig::flush_when_idle`]) we emit on the leading edge instead, paced by
//! [`EmitterConfig::interval_min`] (half of `burst_latency` unless configured): a message that
//! arrives when nothing was emitted for `interval_min` goes out at once, and the messages that
//! follow it wait until `interval_min` after that emission (or for a burst). No message waits
//! longer than `interval_min`, so Fabric's bound of `burst_latency` holds, and apart from full
//! bursts there is at most one emission per `interval_min` (two per Fabric period by default: see
//! [`crate::config::GossipConfig::emitter_interval_min`]). At low and medium rates the per-hop
//! wait disappears; under a steady load a message waits `interval_min / 2` on average. A shorter
//! `interval_min` keeps a block's arrival times at its peers closer together, which matters at
//! high rates where `maxBlockCountToStore`'s window drops late blocks (`engine/ALGORITHM.md`,
//! "Leading-edge emitter").
//!
//! With `flush_when_idle` off the emitter keeps Fabric's grid: deadlines are multiples of
//! `burst_latency` since the driver's epoch plus a per-node phase ([`EmitterConfig::tick_phase`]).
//! Either way [`Emitter::poll_timeout`] only reports a deadline while the buffer holds something.

use std::time::Duration;

use crate::config::EMIT_INTERVAL_DEFAULT_PER_PERIOD;
use crate::time::Instant;

/// Emitter settings (Fabric's `maxPropagationBurstSize`, `maxPropagationBurstLatency`,
/// `propagateIterations`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EmitterConfig {
    /// Buffer length that triggers an immediate emission (default 10).
    pub burst_len_max: usize,
    /// Period of the emission tick (default 10 ms).
    pub burst_latency: Duration,
    /// How many times each message is emitted (default 1; 0 disables emission, as in Fabric).
    pub iterations: u32,
    /// Offset of this emitter's tick grid, below `burst_latency`. Give every node its own (the
    /// node draws it from its seeded RNG): with one shared grid every node would tick at the
    /// same instant, and a message forwarded on a tick would reach the next node just after its
    /// tick and wait a whole period there, instead of half a period on average as with Fabric's
    /// free-running per-peer loops.
    pub tick_phase: Duration,
    /// Emit a message at once when nothing was emitted for `interval_min` (leading edge);
    /// `false` keeps Fabric's fixed tick grid.
    pub flush_when_idle: bool,
    /// Leading-edge mode: the least time between two emissions other than full bursts, and so
    /// the longest any message waits. Clamped to `1 ns..=burst_latency`; unused on the grid.
    pub interval_min: Duration,
}

impl Default for EmitterConfig {
    fn default() -> Self {
        let burst_latency = Duration::from_millis(10);
        Self {
            burst_len_max: 10,
            burst_latency,
            iterations: 1,
            tick_phase: Duration::ZERO,
            flush_when_idle: true,
            interval_min: burst_latency / EMIT_INTERVAL_DEFAULT_PER_PERIOD,
        }
    }
}

#[derive(Debug)]
struct Entry<T> {
    item: T,
    iterations_left: u32,
}

/// The batching emitter. `T` is cheap to clone (an envelope of `Bytes`), since a message with
/// several iterations is emitted several times.
#[derive(Debug)]
pub struct Emitter<T> {
    config: EmitterConfig,
    buffer: Vec<Entry<T>>,
    /// Reused between emissions so emitting allocates nothing.
    spare: Vec<Entry<T>>,
    /// When the last emission happened (leading-edge mode).
    last_emit_at: Option<Instant>,
}

impl<T: Clone> Emitter<T> {
    /// An empty emitter. A zero `burst_latency` or `interval_min` is treated as 1 ns.
    pub fn new(config: EmitterConfig) -> Self {
        let burst_latency = config.burst_latency.max(Duration::from_nanos(1));
        let interval_min = config
            .interval_min
            .clamp(Duration::from_nanos(1), burst_latency);
        let burst_len_max = config.burst_len_max.max(1);
        Self {
            config: EmitterConfig {
                burst_latency,
                burst_len_max,
                interval_min,
                ..config
            },
            buffer: Vec::with_capacity(burst_len_max),
            spare: Vec::with_capacity(burst_len_max),
            last_emit_at: None,
        }
    }

    /// Messages waiting.
    pub fn len(&self) -> usize {
        self.buffer.len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.buffer.is_empty()
    }

    /// Adds a message at `now`. When the buffer reaches `burst_len_max`, the whole buffer is
    /// emitted into `out` at once (Fabric's `Add`); in leading-edge mode so is a message that finds
    /// the emitter idle for `interval_min`. With `iterations == 0` the message is dropped.
    pub fn add(&mut self, item: T, now: Instant, out: &mut Vec<T>) {
        if self.config.iterations == 0 {
            return;
        }
        self.buffer.push(Entry {
            item,
            iterations_left: self.config.iterations,
        });
        let idle = self.config.flush_when_idle
            && self.buffer.len() == 1
            && self
                .last_emit_at
                .is_none_or(|at| now >= at + self.config.interval_min);
        if idle || self.buffer.len() >= self.config.burst_len_max {
            self.emit(now, out);
        }
    }

    /// When the buffer must next be emitted, or `None` when it is empty.
    pub fn poll_timeout(&self, now: Instant) -> Option<Instant> {
        if self.buffer.is_empty() {
            return None;
        }
        if self.config.flush_when_idle {
            let due = self
                .last_emit_at
                .map_or(now, |at| at + self.config.interval_min);
            return Some(due);
        }
        let period = self.config.burst_latency.as_nanos().min(u64::MAX as u128) as u64;
        let phase = (self.config.tick_phase.as_nanos() % u128::from(period)) as u64;
        let Some(since_phase) = now.as_nanos().checked_sub(phase) else {
            return Some(Instant::from_nanos(phase));
        };
        let next = (since_phase / period)
            .saturating_add(1)
            .saturating_mul(period)
            .saturating_add(phase);
        Some(Instant::from_nanos(next))
    }

    /// Emits the whole buffer into `out` (the periodic tick); call when `poll_timeout` is due.
    pub fn handle_timeout(&mut self, now: Instant, out: &mut Vec<T>) {
        self.emit(now, out);
    }

    /// Emits every entry in arrival order; entries with iterations left stay, in order.
    fn emit(&mut self, now: Instant, out: &mut Vec<T>) {
        self.last_emit_at = Some(now);
        out.reserve(self.buffer.len());
        std::mem::swap(&mut self.buffer, &mut self.spare);
        for mut entry in self.spare.drain(..) {
            if entry.iterations_left <= 1 {
                out.push(entry.item);
            } else {
                entry.iterations_left -= 1;
                out.push(entry.item.clone());
                self.buffer.push(entry);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(burst_len_max: usize, iterations: u32) -> EmitterConfig {
        EmitterConfig {
            burst_len_max,
            burst_latency: Duration::from_millis(10),
            iterations,
            tick_phase: Duration::ZERO,
            flush_when_idle: false,
            interval_min: Duration::from_millis(10),
        }
    }

    #[test]
    fn ticks_follow_the_phase_of_this_node() {
        let at_ms = |ms: u64| Instant::from_nanos(ms * 1_000_000);
        let phased = |phase_ms| {
            let mut e = Emitter::new(EmitterConfig {
                tick_phase: Duration::from_millis(phase_ms),
                ..cfg(10, 1)
            });
            e.add(1u8, Instant::ZERO, &mut Vec::new());
            e
        };
        let e = phased(3);
        assert_eq!(
            e.poll_timeout(at_ms(0)),
            Some(at_ms(3)),
            "before the first tick"
        );
        assert_eq!(
            e.poll_timeout(at_ms(3)),
            Some(at_ms(13)),
            "on a tick: the next one"
        );
        assert_eq!(e.poll_timeout(at_ms(21)), Some(at_ms(23)));
        // A phase of a whole period or more wraps.
        assert_eq!(phased(13).poll_timeout(at_ms(21)), Some(at_ms(23)));
    }

    #[test]
    fn burst_size_triggers_emission() {
        let mut e = Emitter::new(cfg(3, 1));
        let mut out = Vec::new();
        e.add(1, Instant::ZERO, &mut out);
        e.add(2, Instant::ZERO, &mut out);
        assert!(out.is_empty());
        e.add(3, Instant::ZERO, &mut out);
        assert_eq!(out, vec![1, 2, 3], "arrival order kept");
        assert!(e.is_empty());
        assert_eq!(e.poll_timeout(Instant::ZERO), None);
    }

    #[test]
    fn ticks_are_on_a_fixed_grid() {
        let mut e = Emitter::new(cfg(10, 1));
        let mut out = Vec::new();
        e.add(7, Instant::ZERO, &mut out);
        // 23 ms after the epoch: the next tick is at 30 ms.
        let now = Instant::from_nanos(23_000_000);
        assert_eq!(e.poll_timeout(now), Some(Instant::from_nanos(30_000_000)));
        // Exactly on a tick: the next one.
        assert_eq!(
            e.poll_timeout(Instant::from_nanos(30_000_000)),
            Some(Instant::from_nanos(40_000_000))
        );
        e.handle_timeout(Instant::ZERO, &mut out);
        assert_eq!(out, vec![7]);
    }

    #[test]
    fn iterations_repeat_then_expire() {
        let mut e = Emitter::new(cfg(10, 3));
        let mut out = Vec::new();
        e.add("a", Instant::ZERO, &mut out);
        for round in 1..=3 {
            e.handle_timeout(Instant::ZERO, &mut out);
            assert_eq!(out.len(), round);
        }
        e.handle_timeout(Instant::ZERO, &mut out);
        assert_eq!(out, vec!["a"; 3]);
        assert!(e.is_empty());
    }

    #[test]
    fn zero_iterations_never_emits() {
        let mut e = Emitter::new(cfg(1, 0));
        let mut out = Vec::new();
        e.add(1, Instant::ZERO, &mut out);
        e.handle_timeout(Instant::ZERO, &mut out);
        assert!(out.is_empty());
    }

    fn leading(burst_len_max: usize, iterations: u32) -> Emitter<u32> {
        Emitter::new(EmitterConfig {
            flush_when_idle: true,
            ..cfg(burst_len_max, iterations)
        })
    }

    fn ms(ms: u64) -> Instant {
        Instant::from_nanos(ms * 1_000_000)
    }

    #[test]
    fn leading_edge_emits_an_idle_message_at_once_and_batches_what_follows() {
        let mut e = leading(10, 1);
        let mut out = Vec::new();
        e.add(1, ms(3), &mut out);
        assert_eq!(out, vec![1], "idle emitter: out at once");
        assert_eq!(e.poll_timeout(ms(3)), None);
        // Within the period: waits for its end (3 + 10 ms).
        e.add(2, ms(5), &mut out);
        e.add(3, ms(8), &mut out);
        assert_eq!(out, vec![1]);
        assert_eq!(e.poll_timeout(ms(8)), Some(ms(13)));
        e.handle_timeout(ms(13), &mut out);
        assert_eq!(out, vec![1, 2, 3]);
        // 10 ms after that emission the emitter is idle again.
        e.add(4, ms(22), &mut out);
        assert_eq!(
            out.len(),
            3,
            "still within the period of the 13 ms emission"
        );
        e.handle_timeout(ms(23), &mut out);
        e.add(5, ms(40), &mut out);
        assert_eq!(out, vec![1, 2, 3, 4, 5]);
    }

    #[test]
    fn leading_edge_keeps_the_burst_rule_and_at_most_one_tick_per_period() {
        let mut e = leading(3, 1);
        let mut out = Vec::new();
        e.add(1, ms(0), &mut out);
        for v in 2..=4 {
            e.add(v, ms(1), &mut out);
        }
        assert_eq!(out, vec![1, 2, 3, 4], "a full buffer is a burst");
        e.add(5, ms(2), &mut out);
        assert_eq!(out.len(), 4, "a burst starts a new period");
        assert_eq!(e.poll_timeout(ms(2)), Some(ms(11)));
    }

    #[test]
    fn leading_edge_repeats_iterations_once_per_period() {
        let mut e = leading(10, 2);
        let mut out = Vec::new();
        e.add(1, ms(0), &mut out);
        assert_eq!(out, vec![1]);
        assert_eq!(e.poll_timeout(ms(0)), Some(ms(10)));
        e.handle_timeout(ms(10), &mut out);
        assert_eq!(out, vec![1, 1]);
        assert!(e.is_empty());
    }

    fn paced(interval_min: Duration) -> Emitter<u32> {
        Emitter::new(EmitterConfig {
            interval_min,
            ..leading(10, 1).config
        })
    }

    #[test]
    fn leading_edge_paces_emissions_by_interval_min() {
        let mut e = paced(Duration::from_micros(2_500));
        let at_us = |us: u64| Instant::from_nanos(us * 1_000);
        let mut out = Vec::new();
        e.add(1, at_us(0), &mut out);
        assert_eq!(out, vec![1], "idle: out at once");
        e.add(2, at_us(1_000), &mut out);
        assert_eq!(
            out,
            vec![1],
            "within interval_min of the last emission: waits"
        );
        assert_eq!(
            e.poll_timeout(at_us(1_000)),
            Some(at_us(2_500)),
            "due interval_min after the last emission, not a whole burst_latency"
        );
        e.handle_timeout(at_us(2_500), &mut out);
        assert_eq!(out, vec![1, 2]);
        // Idle again once interval_min has passed since that emission.
        e.add(3, at_us(5_000), &mut out);
        assert_eq!(out, vec![1, 2, 3]);
    }

    #[test]
    fn interval_min_is_clamped_to_burst_latency_and_unused_on_the_grid() {
        let mut e = paced(Duration::from_secs(1));
        let mut out = Vec::new();
        e.add(1, ms(0), &mut out);
        e.add(2, ms(1), &mut out);
        assert_eq!(
            e.poll_timeout(ms(1)),
            Some(ms(10)),
            "never waits longer than burst_latency"
        );
        let mut grid = Emitter::new(EmitterConfig {
            interval_min: Duration::from_millis(1),
            ..cfg(10, 1)
        });
        grid.add(1, ms(3), &mut out);
        assert_eq!(grid.poll_timeout(ms(3)), Some(ms(10)), "Fabric's grid");
    }
}
