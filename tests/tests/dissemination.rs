//! Fabric's dissemination scenarios (TestDissemination, TestDisseminateAll2All,
//! TestNoMessagesSelfLoop) plus lossy and duplicating variants, on the engine's node, at Fabric's
//! default push fan-out (`propagatePeerNum` = 3). Beyond 4 peers push alone misses blocks; the
//! block puller repairs them, so completeness is asserted at 8 peers too.

use gossip_engine::config::GossipConfig;
use gossip_harness::engine::EngineNode;
use gossip_harness::fabric;
use gossip_harness::on_both_transports;
use gossip_harness::scenario::run_seeds;

const SEEDS: std::ops::Range<u64> = 0..200;

/// Fabric's timer-only pull rounds (no repair at once on a gap), at the suite's timings.
fn timer_only() -> GossipConfig {
    GossipConfig {
        pull_on_gap: false,
        ..fabric::fast_gossip()
    }
}

on_both_transports! {
    blocks_from_one_source_reach_everyone_in_order: fabric::dissemination::<EngineNode>(4, 10), SEEDS;
    one_block_from_each_peer_reaches_everyone: fabric::all_to_all::<EngineNode>(4), SEEDS;
    no_block_is_echoed_to_its_sender: fabric::no_self_loop::<EngineNode>(), SEEDS;
    /// 8 peers: push at fan-out 3 misses some, pull repairs them.
    eight_peers_all_receive_every_block: fabric::dissemination::<EngineNode>(8, 10), SEEDS;
    /// 8 peers, one block each: push at fan-out 3 misses some, pull repairs them.
    eight_sources_all_reach_everyone: fabric::all_to_all::<EngineNode>(8), SEEDS;
    /// The same with Fabric's timer-only pull rounds: slower repair, same completeness.
    eight_peers_with_timer_only_pull: fabric::dissemination::<EngineNode>(8, 10).gossip(timer_only()), SEEDS;
}

/// Sim-only: loss, duplication and jitter need the simulated network.
#[test]
fn lossy_network_still_delivers_everything_in_order() {
    run_seeds(&fabric::dissemination_lossy::<EngineNode>(6, 10), SEEDS);
}

/// Sim-only: duplication and jitter need the simulated network.
#[test]
fn duplicating_reordering_network_still_delivers_all_in_order() {
    run_seeds(&fabric::dissemination_duplicating::<EngineNode>(10), SEEDS);
}
