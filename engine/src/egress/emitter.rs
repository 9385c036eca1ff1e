//! The batching emitter (Fabric's `batchingEmitter`), sans-IO.
//!
//! Messages wait in a buffer of `{item, iterations_left}`. The buffer is emitted whole when it
//! reaches `burst_len_max` entries, and on every tick of a fixed period `burst_latency`. After each
//! emission every entry's `iterations_left` drops by one and entries at zero leave the buffer, so
//! each message is pushed `iterations` times.
//!
//! Fabric's emitter runs a goroutine that sleeps `burst_latency` and emits, forever. The ticks are
//! on a fixed grid, independent of when messages arrive, so a message waits a uniformly distributed
//! part of the period. We keep that grid: deadlines are multiples of `burst_latency` since the
//! driver's epoch plus a per-node phase ([`EmitterConfig::tick_phase`]), and
//! [`Emitter::poll_timeout`] only reports one while the buffer holds something.

use std::time::Duration;

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
}

impl Default for EmitterConfig {
    fn default() -> Self {
        Self {
            burst_len_max: 10,
            burst_latency: Duration::from_millis(10),
            iterations: 1,
            tick_phase: Duration::ZERO,
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
}

impl<T: Clone> Emitter<T> {
    /// An empty emitter. A zero `burst_latency` is treated as 1 ns.
    pub fn new(config: EmitterConfig) -> Self {
        let burst_latency = config.burst_latency.max(Duration::from_nanos(1));
        let burst_len_max = config.burst_len_max.max(1);
        Self {
            config: EmitterConfig {
                burst_latency,
                burst_len_max,
                ..config
            },
            buffer: Vec::with_capacity(burst_len_max),
            spare: Vec::with_capacity(burst_len_max),
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

    /// Adds a message. When the buffer reaches `burst_len_max`, the whole buffer is emitted into
    /// `out` at once (Fabric's `Add`). With `iterations == 0` the message is dropped.
    pub fn add(&mut self, item: T, out: &mut Vec<T>) {
        if self.config.iterations == 0 {
            return;
        }
        self.buffer.push(Entry {
            item,
            iterations_left: self.config.iterations,
        });
        if self.buffer.len() >= self.config.burst_len_max {
            self.emit(out);
        }
    }

    /// The next tick at which the buffer must be emitted, or `None` when it is empty.
    pub fn poll_timeout(&self, now: Instant) -> Option<Instant> {
        if self.buffer.is_empty() {
            return None;
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
    pub fn handle_timeout(&mut self, out: &mut Vec<T>) {
        self.emit(out);
    }

    /// Emits every entry in arrival order; entries with iterations left stay, in order.
    fn emit(&mut self, out: &mut Vec<T>) {
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
            e.add(1u8, &mut Vec::new());
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
        e.add(1, &mut out);
        e.add(2, &mut out);
        assert!(out.is_empty());
        e.add(3, &mut out);
        assert_eq!(out, vec![1, 2, 3], "arrival order kept");
        assert!(e.is_empty());
        assert_eq!(e.poll_timeout(Instant::ZERO), None);
    }

    #[test]
    fn ticks_are_on_a_fixed_grid() {
        let mut e = Emitter::new(cfg(10, 1));
        let mut out = Vec::new();
        e.add(7, &mut out);
        // 23 ms after the epoch: the next tick is at 30 ms.
        let now = Instant::from_nanos(23_000_000);
        assert_eq!(e.poll_timeout(now), Some(Instant::from_nanos(30_000_000)));
        // Exactly on a tick: the next one.
        assert_eq!(
            e.poll_timeout(Instant::from_nanos(30_000_000)),
            Some(Instant::from_nanos(40_000_000))
        );
        e.handle_timeout(&mut out);
        assert_eq!(out, vec![7]);
    }

    #[test]
    fn iterations_repeat_then_expire() {
        let mut e = Emitter::new(cfg(10, 3));
        let mut out = Vec::new();
        e.add("a", &mut out);
        for round in 1..=3 {
            e.handle_timeout(&mut out);
            assert_eq!(out.len(), round);
        }
        e.handle_timeout(&mut out);
        assert_eq!(out, vec!["a"; 3]);
        assert!(e.is_empty());
    }

    #[test]
    fn zero_iterations_never_emits() {
        let mut e = Emitter::new(cfg(1, 0));
        let mut out = Vec::new();
        e.add(1, &mut out);
        e.handle_timeout(&mut out);
        assert!(out.is_empty());
    }
}
