//! Fabric's dissemination scenarios (TestDissemination, TestDisseminateAll2All,
//! TestNoMessagesSelfLoop) plus lossy and duplicating variants, on the engine's node.

use gossip_harness::engine::EngineNode;
use gossip_harness::fabric;
use gossip_harness::scenario::run_seeds;

const SEEDS: std::ops::Range<u64> = 0..200;

#[test]
fn blocks_from_one_source_reach_everyone_in_order() {
    run_seeds(&fabric::dissemination::<EngineNode>(8, 10), SEEDS);
}

#[test]
fn one_block_from_each_peer_reaches_everyone() {
    run_seeds(&fabric::all_to_all::<EngineNode>(6), SEEDS);
}

#[test]
fn no_block_is_echoed_to_its_sender() {
    run_seeds(&fabric::no_self_loop::<EngineNode>(), SEEDS);
}

#[test]
fn lossy_network_keeps_order_and_channels() {
    run_seeds(&fabric::dissemination_lossy::<EngineNode>(8, 10), SEEDS);
}

#[test]
fn duplicating_reordering_network_still_delivers_all_in_order() {
    run_seeds(&fabric::dissemination_duplicating::<EngineNode>(8, 10), SEEDS);
}
