//! The scenarios of the CI dissemination gate (`loadgen sim-gate`, ARCHITECTURE.md testing tier 7)
//! and the statistics over seeds that the gate compares.
//!
//! One seed of one scenario is noisy: which 3 peers a node picks, link jitter and loss move every
//! figure by 10 % or more from seed to seed. The gate therefore runs each scenario over many seeds
//! and compares the **median** of each figure with a baseline; [`Spread`] keeps the rest of the
//! distribution for the report. Every run is a pure function of (commit, scenario, seed).
//!
//! The scenarios run Fabric's default gossip settings ([`GossipConfig::default`]: fan-out 3,
//! alive every 5 s, StateInfo every 4 s, ...) except for what each one is about:
//!
//! | name | shape | network |
//! |---|---|---|
//! | `fanout3` | 1 org × 16 peers, channel A | clean LAN (1 ms + up to 4 ms jitter) |
//! | `orgs2_channels2` | 2 orgs × 8 peers, channels A and B joined by all | clean LAN |
//! | `loss5` | 1 org × 16 peers, channel A | 5 % of messages lost on every link, from the start |
//!
//! Peers bootstrap to peer 0 of their org and every peer publishes an external endpoint (so each
//! is an anchor peer of its org). After [`MEMBERSHIP_SETTLE`] every peer joins its channels, after
//! [`CHANNEL_SETTLE`] more the org leaders gossip [`BLOCKS_PER_CHANNEL`] blocks per channel 20 ms
//! apart, and the run ends [`TAIL`] later. Blocks are data messages tagged CHAN_AND_ORG, which never
//! cross orgs: as in Fabric, each org's leader gossips every block it gets from the orderer, so in
//! `orgs2_channels2` peer 0 of each org injects channel A's blocks and peer 1 of each org channel
//! B's (B's 10 ms after A's).
//!
//! The block puller repairs what push at fan-out 3 misses (at once on a gap, else on the pull
//! timer, `pullInterval` 4 s), so completeness approaches 1 within the tail; blocks carried by
//! pull are counted apart (`pull_bytes_per_block`), not in the data-message figures. State
//! transfer is not implemented.

use std::sync::Arc;
use std::time::Duration;

use gossip_engine::config::GossipConfig;
use gossip_engine::event::Command;
use gossip_engine::wire::ContentKind;

use crate::faults::LinkConfig;
use crate::figures::DisseminationFigures;
use crate::node::SimNode;
use crate::scenario::{Nodes, Op, Scenario, block};
use crate::sim::Sim;

/// Simulated time from the start to the channel joins: membership converges (alive every 5 s,
/// bootstrap by peer 0's membership response; full views at 4.5–5.5 s in probes of 3 seeds).
pub const MEMBERSHIP_SETTLE: Duration = Duration::from_secs(10);
/// Simulated time from the joins to the first block: two StateInfo publish and request rounds
/// (4 s each), so blocks are routed to the channel's peers (channel views exact 5.4–7.8 s after
/// the joins in probes of 3 seeds per shape).
pub const CHANNEL_SETTLE: Duration = Duration::from_secs(10);
/// Simulated time after the first block until the run ends: push settles within a second, pull
/// repairs what it missed (with 5 % loss the last seeds complete within about 10 s).
pub const TAIL: Duration = Duration::from_secs(15);
/// Blocks each channel's leaders gossip.
pub const BLOCKS_PER_CHANNEL: u64 = 10;
/// Time between two blocks of one channel.
pub const BLOCK_PERIOD: Duration = Duration::from_millis(20);
/// Time from a channel's block to the next channel's block of the same number.
pub const CHANNEL_OFFSET: Duration = Duration::from_millis(10);
/// Peers in each gate scenario.
pub const GATE_NODES: usize = 16;

/// One scenario of the gate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GateScenario {
    /// Fabric's fan-out of 3 on one channel of one org.
    Fanout3,
    /// Two orgs sharing two channels.
    Orgs2Channels2,
    /// One channel of one org over links that lose 5 % of messages.
    Loss5,
}

/// What a gate scenario is made of.
#[derive(Clone, Debug, PartialEq)]
pub struct GateShape {
    /// Orgs.
    pub orgs: usize,
    /// Peers per org.
    pub peers_per_org: usize,
    /// Channels, each joined by every peer.
    pub channels: Vec<&'static str>,
    /// Every link's behaviour.
    pub link: LinkConfig,
    /// Protocol settings of every peer.
    pub gossip: GossipConfig,
}

impl GateScenario {
    /// Every scenario, in report order.
    pub const ALL: [GateScenario; 3] = [
        GateScenario::Fanout3,
        GateScenario::Orgs2Channels2,
        GateScenario::Loss5,
    ];

    /// The name: the prefix of its figures (`fanout3.completeness`).
    pub fn name(self) -> &'static str {
        match self {
            GateScenario::Fanout3 => "fanout3",
            GateScenario::Orgs2Channels2 => "orgs2_channels2",
            GateScenario::Loss5 => "loss5",
        }
    }

    /// The scenario of a name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Its shape.
    pub fn shape(self) -> GateShape {
        let gossip = GossipConfig::default();
        match self {
            GateScenario::Fanout3 => GateShape {
                orgs: 1,
                peers_per_org: GATE_NODES,
                channels: vec!["A"],
                link: LinkConfig::default(),
                gossip,
            },
            GateScenario::Orgs2Channels2 => GateShape {
                orgs: 2,
                peers_per_org: GATE_NODES / 2,
                channels: vec!["A", "B"],
                link: LinkConfig::default(),
                gossip,
            },
            GateScenario::Loss5 => GateShape {
                orgs: 1,
                peers_per_org: GATE_NODES,
                channels: vec!["A"],
                link: LinkConfig::lossy(0.05),
                gossip,
            },
        }
    }
}

impl GateShape {
    /// Nodes in the run.
    pub fn nodes(&self) -> usize {
        self.orgs * self.peers_per_org
    }

    /// Distinct blocks injected (all channels).
    pub fn blocks(&self) -> u64 {
        self.channels.len() as u64 * BLOCKS_PER_CHANNEL
    }

    /// Block events expected: every peer delivers every block of every channel (all peers join
    /// every channel).
    pub fn blocks_expected(&self) -> u64 {
        self.nodes() as u64 * self.blocks()
    }

    /// The injectors of channel number `c`: peer `c` of each org (its leader for that channel).
    fn sources(&self, c: usize) -> Vec<usize> {
        (0..self.orgs)
            .map(|org| org * self.peers_per_org + c % self.peers_per_org)
            .collect()
    }
}

/// The scenario of `gate` and the simulated time of its first block.
pub fn gate_scenario<N: SimNode>(gate: GateScenario) -> (Scenario<N>, Duration) {
    let shape = gate.shape();
    let mut s = Scenario::new(gate.name())
        .orgs(shape.orgs)
        .peers_per_org(shape.peers_per_org)
        .gossip(shape.gossip.clone())
        .link(shape.link)
        .step(Op::Wait(MEMBERSHIP_SETTLE));
    let mut inject_at = MEMBERSHIP_SETTLE;
    for &channel in &shape.channels {
        s = s.step(Op::JoinChan {
            channel,
            nodes: Nodes::All,
        });
        // A join step runs 1 ms.
        inject_at += Duration::from_millis(1);
    }
    inject_at += CHANNEL_SETTLE;
    let inject = Op::Custom(Arc::new(move |sim: &mut Sim<N>| {
        for (c, &channel) in shape.channels.iter().enumerate() {
            for k in 0..BLOCKS_PER_CHANNEL {
                let delay = BLOCK_PERIOD * k as u32 + CHANNEL_OFFSET * c as u32;
                for &source in &shape.sources(c) {
                    let command = Command::Gossip(block(channel, k + 1));
                    sim.command_in(delay, source, command);
                }
            }
        }
        sim.run_for(TAIL);
        Ok(())
    }));
    (s.step(Op::Wait(CHANNEL_SETTLE)).step(inject), inject_at)
}

/// Runs `gate` with `seed` and returns its figures.
pub fn gate_figures<N: SimNode>(gate: GateScenario, seed: u64) -> DisseminationFigures {
    let shape = gate.shape();
    let (scenario, inject_at) = gate_scenario::<N>(gate);
    let (outcome, _) = scenario.run(seed);
    let last = Duration::from_nanos(outcome.stats.last_block_at_ns);
    DisseminationFigures {
        nodes: shape.nodes(),
        blocks: shape.blocks(),
        time_to_all: last.saturating_sub(inject_at),
        data_msgs: outcome.stats.transmits_of(ContentKind::DataMsg),
        data_bytes: outcome.stats.bytes_of(ContentKind::DataMsg),
        pull_bytes: outcome.stats.bytes_of(ContentKind::DataUpdate),
        all_msgs: outcome.stats.transmits(),
        blocks_delivered: outcome.stats.blocks_delivered,
        blocks_expected: shape.blocks_expected(),
        violations: outcome.violations.len(),
    }
}

/// The gated figures of one run, by name, in report order.
pub fn gated_figures(f: &DisseminationFigures) -> [(&'static str, f64); 7] {
    [
        ("time_to_all_sim_ms", f.time_to_all.as_secs_f64() * 1e3),
        ("data_msgs_per_block", f.msgs_per_block()),
        ("data_bytes_per_block", f.bytes_per_block()),
        ("pull_bytes_per_block", f.pull_bytes_per_block()),
        (
            "all_msgs_per_block",
            f.all_msgs as f64 / f.blocks.max(1) as f64,
        ),
        ("completeness", f.completeness()),
        ("violations", f.violations as f64),
    ]
}

/// The distribution of one figure over seeds. Quartiles interpolate linearly between the sorted
/// values (the "type 7" definition: `p` at index `p × (n − 1)`), so the median of an even count is
/// the mean of the middle two.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spread {
    /// Smallest value.
    pub min: f64,
    /// 25th percentile.
    pub p25: f64,
    /// Median.
    pub median: f64,
    /// 75th percentile.
    pub p75: f64,
    /// Largest value.
    pub max: f64,
    /// Sum of the values (the gate sums violations: one in any seed is a bug).
    pub sum: f64,
    /// Number of values.
    pub count: usize,
}

impl Spread {
    /// The spread of `values`; `None` when there are none or one is NaN.
    pub fn of(values: &[f64]) -> Option<Spread> {
        if values.is_empty() || values.iter().any(|v| v.is_nan()) {
            return None;
        }
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let at = |p: f64| {
            let x = p * (sorted.len() - 1) as f64;
            let (lo, hi) = (x.floor() as usize, x.ceil() as usize);
            sorted[lo] + (sorted[hi] - sorted[lo]) * (x - lo as f64)
        };
        Some(Spread {
            min: sorted[0],
            p25: at(0.25),
            median: at(0.5),
            p75: at(0.75),
            max: sorted[sorted.len() - 1],
            sum: sorted.iter().sum(),
            count: sorted.len(),
        })
    }

    /// Interquartile range.
    pub fn iqr(&self) -> f64 {
        self.p75 - self.p25
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::EngineNode;

    #[test]
    fn every_scenario_replays_and_reaches_both_orgs_without_violations() {
        for gate in GateScenario::ALL {
            let a = gate_figures::<EngineNode>(gate, 1);
            assert_eq!(a, gate_figures::<EngineNode>(gate, 1), "{}", gate.name());
            assert_eq!(a.violations, 0, "{}: {a:?}", gate.name());
            // Blocks never cross orgs: both orgs' leaders must have gossiped for more than half.
            assert!(a.completeness() > 0.5, "{}: {a:?}", gate.name());
            assert_eq!(a.blocks_expected, gate.shape().blocks_expected());
        }
    }

    #[test]
    fn spread_of_an_even_and_an_odd_count() {
        let s = Spread::of(&[4.0, 1.0, 3.0, 2.0]).unwrap();
        assert_eq!(
            (s.min, s.median, s.max, s.sum, s.count),
            (1.0, 2.5, 4.0, 10.0, 4)
        );
        assert_eq!((s.p25, s.p75), (1.75, 3.25));
        let s = Spread::of(&[5.0, 1.0, 3.0]).unwrap();
        assert_eq!((s.p25, s.median, s.p75, s.iqr()), (2.0, 3.0, 4.0, 2.0));
        assert_eq!(Spread::of(&[7.0]).unwrap().median, 7.0);
        assert!(Spread::of(&[]).is_none());
        assert!(Spread::of(&[1.0, f64::NAN]).is_none());
    }

    #[test]
    fn names_round_trip_and_shapes_add_up() {
        for s in GateScenario::ALL {
            assert_eq!(GateScenario::from_name(s.name()), Some(s));
            let shape = s.shape();
            assert_eq!(shape.nodes(), GATE_NODES);
            assert_eq!(shape.gossip.propagate_peer_num, 3, "Fabric's default");
        }
        let two = GateScenario::Orgs2Channels2.shape();
        assert_eq!((two.blocks(), two.blocks_expected()), (20, 320));
        assert_eq!((two.sources(0), two.sources(1)), (vec![0, 8], vec![1, 9]));
        assert_eq!(GateScenario::from_name("nope"), None);
    }
}
