//! State transfer scenarios (spec 3.9): anti-entropy repairs what push and pull cannot (blocks
//! gone from every peer's block store), a restarted peer resumes from its ledger and catches up,
//! and a fault sweep (loss, duplication, a partition that heals, a crash and restart) ends with
//! every live peer holding every block exactly once and in order (the order checker and the
//! ledger-surviving delivery record of [`crate::checkers`] run throughout).
//!
//! Most turn `state.enabled` on (the setting under test; Fabric's default is off) and keep
//! every other `state.*` value at Fabric's default, on the shortened timers of
//! [`fabric::fast_gossip`]; those named for gap repair keep anti-entropy off, as Fabric does.

use std::time::Duration;

use gossip_engine::config::{GossipConfig, StateConfig};

use crate::fabric::{self, join_all};
use crate::faults::LinkConfig;
use crate::node::SimNode;
use crate::scenario::{Op, Scenario, secs};

/// [`fabric::fast_gossip`] with state transfer on.
pub fn state_gossip() -> GossipConfig {
    GossipConfig {
        state: StateConfig {
            enabled: true,
            ..StateConfig::default()
        },
        ..fabric::fast_gossip()
    }
}

fn base<N: SimNode>(name: &'static str, peers: usize) -> Scenario<N> {
    fabric::base(name, peers).gossip(state_gossip())
}

/// Fabric's TestLargeBlockGap: node 5 joins channel A after 100 blocks went to nodes 0 to 4.
/// The block stores keep only the last `maxBlockCountToStore` (10), so pull alone cannot bring
/// the first 90; state transfer, started by the advertised heights, brings all 100 in order.
pub fn large_block_gap<N: SimNode>() -> Scenario<N> {
    fabric::join_late(base("large-block-gap", 6), 100, secs(20))
}

/// A peer killed while 60 blocks pass restarts from its ledger's height (it never delivers a
/// block twice or out of order: the checkers keep its record across the restart) and catches up
/// by state transfer; blocks injected after its return reach it as well.
pub fn restart_catches_up<N: SimNode>() -> Scenario<N> {
    restart_scenario(base("restart-catches-up", 6))
}

/// [`restart_catches_up`] with anti-entropy off (Fabric's default) and gap repair
/// (`state.gapRepair`, ours) on: the restarted peer's first pushed block lies beyond its
/// admission window, and that alone fetches the 60 blocks no block store holds any more.
pub fn restart_catches_up_by_gap_repair<N: SimNode>() -> Scenario<N> {
    restart_scenario(fabric::base("restart-gap-repair", 6).gossip(gap_repair_gossip(true)))
}

/// [`restart_catches_up_by_gap_repair`] once the stream has stopped: node 3 restarts after the
/// last block and no block follows, so no pushed block shows it the gap; the peers' StateInfo
/// (their ledger heights) is all it learns. With anti-entropy off, it catches up all the same.
pub fn restart_after_the_stream_stopped<N: SimNode>() -> Scenario<N> {
    let s = fabric::base("restart-after-the-stream", 6).gossip(gap_repair_gossip(true));
    crash_while_60_blocks_pass(s)
        .step(Op::Wait(secs(2)))
        .step(Op::Restart(3))
        .step(Op::AwaitBlocks {
            channel: "A",
            within: secs(30),
        })
}

/// [`fabric::fast_gossip`] with anti-entropy off and gap repair as given.
pub fn gap_repair_gossip(gap_repair: bool) -> GossipConfig {
    GossipConfig {
        state: StateConfig {
            enabled: false,
            gap_repair,
            ..StateConfig::default()
        },
        ..fabric::fast_gossip()
    }
}

/// Node 3 crashes while 60 blocks pass, restarts, and 10 more blocks follow.
fn restart_scenario<N: SimNode>(s: Scenario<N>) -> Scenario<N> {
    crash_while_60_blocks_pass(s)
        .step(Op::Restart(3))
        .step(Op::AwaitConverged { within: secs(30) })
        .step(Op::InjectBlocks {
            from: 1,
            channel: "A",
            count: 10,
        })
        .step(Op::AwaitBlocks {
            channel: "A",
            within: secs(30),
        })
}

/// Converged, every node in channel A with its first 20 blocks; then node 3 crashes while 60 more
/// pass.
fn crash_while_60_blocks_pass<N: SimNode>(s: Scenario<N>) -> Scenario<N> {
    let s = s.step(Op::AwaitConverged { within: secs(30) });
    join_all(s, "A")
        .step(Op::InjectBlocks {
            from: 0,
            channel: "A",
            count: 20,
        })
        .step(Op::AwaitBlocks {
            channel: "A",
            within: secs(10),
        })
        .step(Op::Crash(3))
        .step(Op::InjectBlocks {
            from: 0,
            channel: "A",
            count: 60,
        })
}

/// The fault sweep: 8 peers, converged, then on links that lose 5 % and duplicate 2 % of
/// messages; blocks flow
/// while the cluster is cut in two for 8 s (the far side misses 40 blocks, more than any block
/// store keeps), and one peer in eight (node 6, on the far side) crashes during the cut and comes
/// back after it. After healing, blocks keep coming, and every live peer ends with every block,
/// exactly once, in order. Blocks enter at peers that have every earlier one, as an orderer
/// feeds an org's leader.
pub fn fault_sweep<N: SimNode>() -> Scenario<N> {
    fault_sweep_with(base("fault-sweep", 8), 20)
        .step(Op::InjectBlocks {
            from: 2,
            channel: "A",
            count: 20,
        })
        .step(Op::AwaitBlocks {
            channel: "A",
            within: secs(60),
        })
}

/// [`fault_sweep`] at Fabric's defaults (anti-entropy off; gap repair, ours, on), 60 blocks
/// during the cut (more than the far side's admission window, `2 × blockBufferSize`, so no pull
/// can reach them) and no block after the healing: the far side and the restarted peer learn
/// what they lack only from the heights their peers advertise.
pub fn fault_sweep_defaults<N: SimNode>() -> Scenario<N> {
    let s = fabric::base("fault-sweep-defaults", 8).gossip(gap_repair_gossip(true));
    fault_sweep_with(s, 40).step(Op::AwaitBlocks {
        channel: "A",
        within: secs(60),
    })
}

/// The faults of [`fault_sweep`], up to the healing and the restart; `after_crash` blocks pass
/// between the crash and the healing.
fn fault_sweep_with<N: SimNode>(s: Scenario<N>, after_crash: u64) -> Scenario<N> {
    let link = LinkConfig {
        loss_probability: 0.05,
        duplicate_probability: 0.02,
        ..LinkConfig::default()
    };
    let s = s.step(Op::AwaitConverged { within: secs(30) });
    join_all(s, "A")
        .step(Op::SetLink(link))
        .step(Op::InjectBlocks {
            from: 0,
            channel: "A",
            count: 20,
        })
        .step(Op::Partition(vec![vec![0, 1, 2, 3], vec![4, 5, 6, 7]]))
        .step(Op::InjectBlocks {
            from: 1,
            channel: "A",
            count: 20,
        })
        .step(Op::Crash(6))
        .step(Op::InjectBlocks {
            from: 1,
            channel: "A",
            count: after_crash,
        })
        .step(Op::Wait(Duration::from_secs(6)))
        .step(Op::Heal)
        .step(Op::Restart(6))
}
