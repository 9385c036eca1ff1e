//! The network fault model: per-link latency (base + uniform jitter, so messages reorder), loss and
//! duplication probabilities, and partitions. Every random draw comes from the simulator's one
//! network RNG, seeded by the master seed.

use std::collections::BTreeMap;
use std::time::Duration;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Behaviour of one directed link.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LinkConfig {
    /// Fixed one-way latency.
    pub latency_base: Duration,
    /// Extra latency drawn uniformly from `[0, latency_jitter]` per message.
    pub latency_jitter: Duration,
    /// Probability that a message is lost, `0.0..=1.0`.
    pub loss_probability: f64,
    /// Probability that a delivered message is delivered twice, `0.0..=1.0`.
    pub duplicate_probability: f64,
}

impl Default for LinkConfig {
    /// A clean LAN link: 1 ms ± 4 ms jitter, no loss, no duplicates.
    fn default() -> Self {
        Self {
            latency_base: Duration::from_millis(1),
            latency_jitter: Duration::from_millis(4),
            loss_probability: 0.0,
            duplicate_probability: 0.0,
        }
    }
}

impl LinkConfig {
    /// A link that loses `loss_probability` of its messages.
    pub fn lossy(loss_probability: f64) -> Self {
        Self {
            loss_probability,
            ..Self::default()
        }
    }

    /// One-way latency of one message.
    pub fn draw_latency(&self, rng: &mut ChaCha8Rng) -> Duration {
        let jitter_ns = self.latency_jitter.as_nanos() as u64;
        let extra_ns = if jitter_ns == 0 {
            0
        } else {
            rng.random_range(0..=jitter_ns)
        };
        self.latency_base + Duration::from_nanos(extra_ns)
    }

    /// How many copies of one message arrive: 0 (lost), 1 or 2 (duplicated).
    pub fn draw_copies(&self, rng: &mut ChaCha8Rng) -> usize {
        if self.loss_probability > 0.0 && rng.random_bool(self.loss_probability.min(1.0)) {
            return 0;
        }
        if self.duplicate_probability > 0.0 && rng.random_bool(self.duplicate_probability.min(1.0))
        {
            return 2;
        }
        1
    }
}

/// The whole network: a default link, per-link overrides, and the current partition.
#[derive(Clone, Debug, Default)]
pub struct Network {
    /// Every link not overridden.
    pub default_link: LinkConfig,
    /// Directed overrides, `(source, target)` node indexes.
    pub links: BTreeMap<(usize, usize), LinkConfig>,
    /// Partition component of each node; two nodes talk only within one component. Absent means
    /// component 0 (no partition).
    component: BTreeMap<usize, u32>,
}

impl Network {
    /// A network whose links all behave like `default_link`.
    pub fn new(default_link: LinkConfig) -> Self {
        Self {
            default_link,
            ..Self::default()
        }
    }

    /// The link from `source` to `target`.
    pub fn link(&self, source: usize, target: usize) -> &LinkConfig {
        self.links
            .get(&(source, target))
            .unwrap_or(&self.default_link)
    }

    /// Cuts the network: each group becomes its own component; nodes in no group stay together in
    /// component 0. Replaces any previous partition.
    pub fn partition(&mut self, groups: &[Vec<usize>]) {
        self.component.clear();
        for (i, group) in groups.iter().enumerate() {
            for &node in group {
                self.component.insert(node, i as u32 + 1);
            }
        }
    }

    /// Removes every partition.
    pub fn heal(&mut self) {
        self.component.clear();
    }

    /// Whether `a` and `b` can exchange messages.
    pub fn connected(&self, a: usize, b: usize) -> bool {
        self.component.get(&a).copied().unwrap_or(0) == self.component.get(&b).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn partition_groups_and_heal() {
        let mut net = Network::default();
        assert!(net.connected(0, 5));
        net.partition(&[vec![0, 1], vec![2]]);
        assert!(net.connected(0, 1));
        assert!(!net.connected(0, 2));
        assert!(!net.connected(1, 3));
        assert!(net.connected(3, 4));
        net.heal();
        assert!(net.connected(0, 2));
    }

    #[test]
    fn loss_and_duplication_rates_follow_probabilities() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let link = LinkConfig {
            loss_probability: 0.25,
            duplicate_probability: 0.5,
            ..LinkConfig::default()
        };
        let mut counts = [0usize; 3];
        for _ in 0..10_000 {
            counts[link.draw_copies(&mut rng)] += 1;
        }
        assert!((2_200..2_800).contains(&counts[0]), "{counts:?}");
        assert!((3_400..4_100).contains(&counts[2]), "{counts:?}");
        let latency = link.draw_latency(&mut rng);
        assert!(latency >= link.latency_base && latency <= link.latency_base + link.latency_jitter);
    }
}
