//! Fabric's dissemination scenarios (TestDissemination, TestDisseminateAll2All,
//! TestNoMessagesSelfLoop) plus lossy and duplicating variants, on the engine's node.
//!
//! Completeness is asserted with a push fan-out covering every peer (`push_to_all`): with
//! Fabric's fan-out of 3, push alone does not reach everyone and Fabric relies on pull, which
//! the core does not have yet (see the ignored test).

use gossip_harness::engine::EngineNode;
use gossip_harness::fabric::{self, fast_gossip, push_to_all};
use gossip_harness::scenario::run_seeds;

const SEEDS: std::ops::Range<u64> = 0..200;

#[test]
fn blocks_from_one_source_reach_everyone_in_order() {
    run_seeds(
        &fabric::dissemination::<EngineNode>(6, 10, push_to_all(6)),
        SEEDS,
    );
}

#[test]
#[ignore = "needs pull (not in core yet): push with propagatePeerNum=3 alone misses blocks \
            (8 peers, seed 0: node 4 lacks blocks 9 and 10 after 20 s)"]
fn blocks_reach_everyone_with_fabric_fan_out() {
    run_seeds(
        &fabric::dissemination::<EngineNode>(8, 10, fast_gossip()),
        SEEDS,
    );
}

#[test]
fn one_block_from_each_peer_reaches_everyone() {
    run_seeds(&fabric::all_to_all::<EngineNode>(6, push_to_all(6)), SEEDS);
}

#[test]
fn no_block_is_echoed_to_its_sender() {
    run_seeds(&fabric::no_self_loop::<EngineNode>(), SEEDS);
}

#[test]
fn lossy_network_keeps_order_and_channels() {
    run_seeds(&fabric::dissemination_lossy::<EngineNode>(6, 10), SEEDS);
}

#[test]
fn duplicating_reordering_network_still_delivers_all_in_order() {
    run_seeds(
        &fabric::dissemination_duplicating::<EngineNode>(6, 10),
        SEEDS,
    );
}
