//! The fault hook of `--fault-drop-share`: drops a share of outgoing messages, each (message,
//! destination) pair decided independently by a seeded ChaCha8 RNG, above the socket. Over TCP
//! gossip loses messages only through overflow and broken connections, so benchmarks inject loss
//! here. Dropped messages are counted (`fault_dropped` in the control protocol's stats).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Why a fault setting was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FaultError {
    /// The share is not within 0..=1.
    #[error("--fault-drop-share {0} is not between 0 and 1")]
    Share(f64),
}

/// Drops a configured share of the messages it is asked about.
#[derive(Debug)]
pub struct DropFilter {
    share: f64,
    rng: ChaCha8Rng,
    dropped: Arc<AtomicU64>,
}

impl DropFilter {
    /// A filter dropping `share` (0..=1) of messages, seeded with `seed`.
    pub fn new(share: f64, seed: u64) -> Result<Self, FaultError> {
        if !(0.0..=1.0).contains(&share) {
            return Err(FaultError::Share(share));
        }
        Ok(Self {
            share,
            rng: ChaCha8Rng::seed_from_u64(seed),
            dropped: Arc::new(AtomicU64::new(0)),
        })
    }

    /// The drop counter, shared with whoever reports stats.
    pub fn dropped_counter(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.dropped)
    }

    /// Whether to send one message to one destination; a `false` is counted as dropped.
    pub fn keep(&mut self) -> bool {
        if self.share <= 0.0 {
            return true;
        }
        let drop = self.rng.random::<f64>() < self.share;
        if drop {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        !drop
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_share_is_close_to_configured() {
        for (share, seed) in [(0.05, 1), (0.2, 7), (0.5, 42)] {
            let mut f = DropFilter::new(share, seed).expect("share");
            let counter = f.dropped_counter();
            let total = 10_000;
            let kept = (0..total).filter(|_| f.keep()).count();
            let dropped = counter.load(Ordering::Relaxed) as usize;
            assert_eq!(kept + dropped, total);
            let measured = dropped as f64 / total as f64;
            assert!(
                (measured - share).abs() <= 0.02,
                "share {share}: measured {measured}"
            );
        }
    }

    #[test]
    fn zero_keeps_all_one_drops_all_and_seed_replays() {
        let mut none = DropFilter::new(0.0, 3).expect("0");
        assert!((0..1000).all(|_| none.keep()));
        let mut all = DropFilter::new(1.0, 3).expect("1");
        assert!((0..1000).all(|_| !all.keep()));
        let run = |seed| {
            let mut f = DropFilter::new(0.3, seed).expect("share");
            (0..200).map(|_| f.keep()).collect::<Vec<_>>()
        };
        assert_eq!(run(9), run(9));
        assert_ne!(run(9), run(10));
        assert!(DropFilter::new(1.5, 0).is_err());
        assert!(DropFilter::new(-0.1, 0).is_err());
        assert!(DropFilter::new(f64::NAN, 0).is_err());
    }
}
