//! Fabric's dissemination scenarios (TestDissemination, TestDisseminateAll2All,
//! TestNoMessagesSelfLoop) plus lossy and duplicating variants, on the engine's node, at Fabric's
//! default push fan-out (`propagatePeerNum` = 3).
//!
//! Without pull or state transfer (not in the core yet), completeness holds by construction only
//! where the fan-out reaches every other channel member (4 peers). Larger clusters run twice: a
//! test that checks safety only (in-order delivery of whatever arrives, no duplicates, no leak,
//! no echo) and an ignored test that asserts completeness, until repair exists (issue 19).

use gossip_harness::engine::EngineNode;
use gossip_harness::fabric;
use gossip_harness::on_both_transports;
use gossip_harness::scenario::run_seeds;
use gossip_harness::transport::tonic::run_tonic;

const SEEDS: std::ops::Range<u64> = 0..200;

on_both_transports! {
    blocks_from_one_source_reach_everyone_in_order: fabric::dissemination::<EngineNode>(4, 10), SEEDS;
    one_block_from_each_peer_reaches_everyone: fabric::all_to_all::<EngineNode>(4), SEEDS;
    no_block_is_echoed_to_its_sender: fabric::no_self_loop::<EngineNode>(), SEEDS;
    /// 8 peers: what push delivers is in order, once, and stays in its channel.
    eight_peers_deliver_safely: fabric::dissemination::<EngineNode>(8, 10).safety_only(), SEEDS;
    /// 8 peers, one block each: what push delivers is in order, once, and stays in its channel.
    eight_sources_deliver_safely: fabric::all_to_all::<EngineNode>(8).safety_only(), SEEDS;
}

#[test]
#[ignore = "needs repair (pull / state transfer, issue 19): push with propagatePeerNum=3 alone \
            misses blocks (8 peers, seed 0: node 2 lacks blocks 6 to 10 after 10 s)"]
fn eight_peers_all_receive_every_block() {
    run_seeds(&fabric::dissemination::<EngineNode>(8, 10), SEEDS);
}

#[test]
#[ignore = "needs repair (pull / state transfer, issue 19): push with propagatePeerNum=3 alone \
            misses blocks (8 peers, seed 0: node 2 lacks blocks 6 to 8 after 10 s)"]
fn eight_sources_all_reach_everyone() {
    run_seeds(&fabric::all_to_all::<EngineNode>(8), SEEDS);
}

#[test]
#[ignore = "needs repair (pull / state transfer, issue 19): push with propagatePeerNum=3 alone \
            misses blocks in some tonic runs too (8 peers, one run: node 6 lacked blocks 1 to 10 \
            after 10 s)"]
fn eight_peers_all_receive_every_block_over_tonic() {
    run_tonic(&fabric::dissemination::<EngineNode>(8, 10));
}

#[test]
#[ignore = "needs repair (pull / state transfer, issue 19): push with propagatePeerNum=3 alone \
            misses blocks in some tonic runs too (8 peers, one run: node 6 lacked blocks 2 to 8 \
            after 10 s)"]
fn eight_sources_all_reach_everyone_over_tonic() {
    run_tonic(&fabric::all_to_all::<EngineNode>(8));
}

/// Sim-only: loss, duplication and jitter need the simulated network.
#[test]
fn lossy_network_keeps_order_and_channels() {
    run_seeds(&fabric::dissemination_lossy::<EngineNode>(6, 10), SEEDS);
}

/// Sim-only: duplication and jitter need the simulated network.
#[test]
fn duplicating_reordering_network_still_delivers_all_in_order() {
    run_seeds(&fabric::dissemination_duplicating::<EngineNode>(10), SEEDS);
}
