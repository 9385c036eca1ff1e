//! Deterministic figures of a fixed scenario and seed, for the CI regression gate: the same commit
//! gives the same numbers on any machine (they are counts in simulated time, not wall time).

use std::time::Duration;

use gossip_engine::wire::ContentKind;

use crate::fabric::fast_gossip;
use crate::node::SimNode;
use crate::scenario::{Nodes, Op, Scenario, secs};

/// What one dissemination run cost and achieved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DisseminationFigures {
    /// Nodes in the run.
    pub nodes: usize,
    /// Blocks injected.
    pub blocks: u64,
    /// Simulated time from the first injected block to the last block event anywhere.
    pub time_to_all: Duration,
    /// Data messages transmitted, all nodes.
    pub data_msgs: u64,
    /// Data-message bytes transmitted (data messages are unsigned, so this is exact).
    pub data_bytes: u64,
    /// Pull-update bytes transmitted: the blocks the block puller carried (pulled blocks are not
    /// in `data_msgs` or `data_bytes`; the pull rounds' other messages are in `all_msgs`).
    pub pull_bytes: u64,
    /// Messages of every kind transmitted during the whole run.
    pub all_msgs: u64,
    /// Block events raised, all nodes.
    pub blocks_delivered: u64,
    /// Block events expected (`nodes × blocks`).
    pub blocks_expected: u64,
    /// Safety violations (should be 0).
    pub violations: usize,
}

impl DisseminationFigures {
    /// Data messages per block.
    pub fn msgs_per_block(&self) -> f64 {
        self.data_msgs as f64 / self.blocks.max(1) as f64
    }

    /// Data bytes per block.
    pub fn bytes_per_block(&self) -> f64 {
        self.data_bytes as f64 / self.blocks.max(1) as f64
    }

    /// Pull-update bytes per block.
    pub fn pull_bytes_per_block(&self) -> f64 {
        self.pull_bytes as f64 / self.blocks.max(1) as f64
    }

    /// Delivered fraction of the expected block events, `0.0..=1.0`.
    pub fn completeness(&self) -> f64 {
        self.blocks_delivered as f64 / self.blocks_expected.max(1) as f64
    }
}

/// Settling time before blocks: membership, then StateInfo.
pub const SETTLE: Duration = Duration::from_secs(12);

/// The fixed dissemination scenario of the figures: one org of `nodes` peers bootstrapping to
/// peer 0, `SETTLE` of membership and channel settling, `blocks` blocks from peer 0 20 ms apart,
/// then 20 s to spread.
pub fn dissemination_scenario<N: SimNode>(nodes: usize, blocks: u64) -> Scenario<N> {
    Scenario::new("figures-dissemination")
        .orgs(1)
        .peers_per_org(nodes)
        .gossip(fast_gossip())
        .step(Op::Wait(SETTLE - secs(4)))
        .step(Op::JoinChan {
            channel: "A",
            nodes: Nodes::All,
        })
        .step(Op::Wait(secs(4)))
        .step(Op::InjectBlocks {
            from: 0,
            channel: "A",
            count: blocks,
        })
        .step(Op::Wait(secs(20)))
}

/// Runs [`dissemination_scenario`] with `seed` and returns its figures.
pub fn dissemination_figures<N: SimNode>(
    nodes: usize,
    blocks: u64,
    seed: u64,
) -> DisseminationFigures {
    let scenario = dissemination_scenario::<N>(nodes, blocks);
    let (outcome, _) = scenario.run(seed);
    // Blocks start right after SETTLE plus the 1 ms the JoinChan step runs.
    let inject_at = SETTLE + Duration::from_millis(1);
    let last = Duration::from_nanos(outcome.stats.last_block_at_ns);
    DisseminationFigures {
        nodes,
        blocks,
        time_to_all: last.saturating_sub(inject_at),
        data_msgs: outcome.stats.transmits_of(ContentKind::DataMsg),
        data_bytes: outcome.stats.bytes_of(ContentKind::DataMsg),
        pull_bytes: outcome.stats.bytes_of(ContentKind::DataUpdate),
        all_msgs: outcome.stats.transmits(),
        blocks_delivered: outcome.stats.blocks_delivered,
        blocks_expected: nodes as u64 * blocks,
        violations: outcome.violations.len(),
    }
}
