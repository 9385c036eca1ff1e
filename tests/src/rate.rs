//! What gossip itself delivers at an injection rate, with zero processing cost (push, and the
//! block puller repairing what push misses once the run's rounds come).
//!
//! The simulator runs one org of `nodes` peers, every link with the same latency model, and one
//! injector (peer 0, an org leader handing blocks to gossip as it receives them from the orderer)
//! gossiping blocks at a constant rate. No node ever takes time to decode, verify or send, so
//! whatever is lost here is lost by the protocol and its settings. Until the twenty-second round
//! (`results/twenty-second-round/README.md`) that was above all the block stores' window
//! (`maxBlockCountToStore`, 10 blocks: 17 ms at 600 blocks/s): a first copy later than that was
//! refused as stale and a missed block pull could not fetch in time stopped delivery in order,
//! so every peer stopped at 600 blocks/s at N = 25. Now the store keeps what delivery needs and
//! gap repair fetches by state request what left every store; up to 2,000 blocks/s every block
//! reaches every peer.
//!
//! A real cluster can only do worse. `loadgen sim-rate` prints these figures beside a capacity
//! sweep's, so a coverage drop can be told apart: the protocol's (present here too) or the
//! engine's (overload: present only in the real run).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use gossip_engine::config::GossipConfig;
use gossip_engine::event::Command;

use crate::engine::EngineNode;
use crate::faults::LinkConfig;
use crate::scenario::{Nodes, Op, Scenario, block, secs};
use crate::sim::Sim;

/// The channel the blocks go to.
const CHANNEL: &str = "A";
/// Number of the first injected block (a new channel's height is 1).
const FIRST_SEQ: u64 = 1;
/// Time after the last injection for the last blocks to spread.
pub const DRAIN: Duration = Duration::from_secs(2);
/// Most blocks one run injects (every block is a scheduled command and every receipt is kept).
pub const BLOCKS_MAX: u64 = 1_000_000;

/// One simulated run at one rate.
#[derive(Clone, Debug)]
pub struct RateSetup {
    /// Peers (one org); peer 0 injects.
    pub nodes: usize,
    /// Blocks per second.
    pub rate_per_s: f64,
    /// How long blocks are injected.
    pub duration: Duration,
    /// Every link's latency model.
    pub link: LinkConfig,
    /// Every node's protocol settings.
    pub gossip: GossipConfig,
    /// The master seed.
    pub seed: u64,
}

/// What one run delivered. Receipts are first receipts (`BlockReceived`) at the peers other than
/// the injector, as `loadgen run` counts them.
#[derive(Clone, Debug, PartialEq)]
pub struct RateFigures {
    /// Blocks per second.
    pub rate_per_s: f64,
    /// Blocks injected.
    pub blocks: u64,
    /// Receipts / ((nodes - 1) × blocks).
    pub coverage: f64,
    /// Share of blocks that reached every peer.
    pub completeness: f64,
    /// Receipt time minus the block's injection time, median, ms.
    pub latency_p50_ms: f64,
    /// The same, 99th percentile, ms.
    pub latency_p99_ms: f64,
    /// The same, maximum, ms.
    pub latency_max_ms: f64,
    /// Safety violations the simulator's checkers found (should be 0).
    pub violations: usize,
}

/// Time between injections at `rate_per_s`, at least 1 µs.
fn period(rate_per_s: f64) -> Duration {
    Duration::from_secs_f64(1.0 / rate_per_s.max(1e-3)).max(Duration::from_micros(1))
}

/// Blocks injected in `duration` at `rate_per_s` (at least one).
pub fn block_count(rate_per_s: f64, duration: Duration) -> u64 {
    ((rate_per_s * duration.as_secs_f64()).round() as u64).max(1)
}

/// Runs one rate: membership converges, every peer joins the channel, StateInfo settles, then
/// peer 0 gossips `block_count` blocks (at most [`BLOCKS_MAX`]) one `period` apart, and the run
/// ends `DRAIN` after the last.
pub fn rate_figures(setup: &RateSetup) -> RateFigures {
    let blocks = block_count(setup.rate_per_s, setup.duration).min(BLOCKS_MAX);
    let step = period(setup.rate_per_s);
    let step_ns = step.as_nanos() as u64;
    let inject_started_ns = Arc::new(AtomicU64::new(0));
    let started = inject_started_ns.clone();
    let scenario = Scenario::<EngineNode>::new("rate")
        .orgs(1)
        .peers_per_org(setup.nodes)
        .gossip(setup.gossip.clone())
        .link(setup.link)
        .step(Op::AwaitConverged { within: secs(60) })
        .step(Op::JoinChan {
            channel: CHANNEL,
            nodes: Nodes::All,
        })
        // Two StateInfo publications, so every peer knows every other one is in the channel.
        .step(Op::Wait(
            setup.gossip.publish_state_info_interval * 2 + secs(1),
        ))
        .step(Op::Custom(Arc::new(move |sim: &mut Sim<EngineNode>| {
            started.store(sim.elapsed().as_nanos() as u64, Ordering::Relaxed);
            for k in 0..blocks {
                let command = Command::Gossip(block(CHANNEL, FIRST_SEQ + k));
                sim.command_in(Duration::from_nanos(step_ns * k), 0, command);
            }
            sim.run_for(Duration::from_nanos(step_ns * blocks) + DRAIN);
            Ok(())
        })));
    let (outcome, _) = scenario.run(setup.seed);
    let t0_ns = inject_started_ns.load(Ordering::Relaxed);
    let mut latencies_ns = Vec::new();
    let mut reached = vec![0usize; blocks as usize];
    for r in &outcome.stats.block_receipts {
        let k = r.seq_num.wrapping_sub(FIRST_SEQ);
        if r.node == 0 || k >= blocks {
            continue;
        }
        reached[k as usize] += 1;
        latencies_ns.push(r.at_ns.saturating_sub(t0_ns + k * step_ns));
    }
    latencies_ns.sort_unstable();
    let expected = (setup.nodes.saturating_sub(1) as u64 * blocks).max(1);
    let complete = reached.iter().filter(|&&n| n + 1 >= setup.nodes).count();
    RateFigures {
        rate_per_s: setup.rate_per_s,
        blocks,
        coverage: latencies_ns.len() as f64 / expected as f64,
        completeness: complete as f64 / blocks as f64,
        latency_p50_ms: percentile_ms(&latencies_ns, 0.50),
        latency_p99_ms: percentile_ms(&latencies_ns, 0.99),
        latency_max_ms: latencies_ns.last().map_or(0.0, |&ns| ns as f64 / 1e6),
        violations: outcome.violations.len(),
    }
}

/// The `q` quantile (nearest rank) of sorted nanoseconds, in ms; 0 when empty.
fn percentile_ms(sorted_ns: &[u64], q: f64) -> f64 {
    if sorted_ns.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted_ns.len() as f64).ceil() as usize).clamp(1, sorted_ns.len());
    sorted_ns[rank - 1] as f64 / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let ns: Vec<u64> = (1..=100).map(|v| v * 1_000_000).collect();
        assert_eq!(percentile_ms(&ns, 0.50), 50.0);
        assert_eq!(percentile_ms(&ns, 0.99), 99.0);
        assert_eq!(percentile_ms(&[], 0.5), 0.0);
    }

    #[test]
    fn block_count_follows_rate_and_duration() {
        assert_eq!(block_count(500.0, secs(10)), 5000);
        assert_eq!(block_count(0.01, secs(1)), 1);
        assert_eq!(period(500.0), Duration::from_millis(2));
    }

    /// A slow rate on a small cluster: push reaches nearly every peer (not all: it stops at peers
    /// that already have the block), and the latency is a few link delays.
    #[test]
    fn a_slow_rate_reaches_nearly_every_peer() {
        let f = rate_figures(&RateSetup {
            nodes: 6,
            rate_per_s: 20.0,
            duration: secs(1),
            link: LinkConfig::default(),
            gossip: crate::fabric::fast_gossip(),
            seed: 3,
        });
        assert_eq!(f.blocks, 20);
        assert_eq!(f.violations, 0);
        assert!(f.coverage > 0.8, "{f:?}");
        assert!(
            f.latency_p50_ms > 0.0 && f.latency_p50_ms <= f.latency_p99_ms,
            "{f:?}"
        );
    }
}
