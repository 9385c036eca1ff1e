//! Block pull (spec 3.6): Fabric's TestPull (push forwarding off, every block by pull alone) and a
//! late joiner on both transports; Byzantine responders and a peer pushing far-future blocks on
//! the simulator.

use gossip_harness::byzantine::{self, EmptyPromises, GarbageUpdates, WrongNonces};
use gossip_harness::engine::EngineNode;
use gossip_harness::fabric;
use gossip_harness::on_both_transports;
use gossip_harness::scenario::run_seeds;

const SEEDS: std::ops::Range<u64> = 0..200;

on_both_transports! {
    /// TestPull: forwarding off, 6 peers, 10 blocks: everyone gets every block by pull.
    blocks_reach_everyone_by_pull_alone: fabric::pull_only::<EngineNode>(), SEEDS;
    /// A peer joining the channel after its blocks pulls those still in the others' stores.
    late_joiner_catches_up_by_pull: fabric::late_joiner::<EngineNode>(), SEEDS;
}

/// Sim-only: a responder advertising blocks it never serves does not stop the others.
#[test]
fn a_responder_that_advertises_what_it_cannot_serve_does_not_stop_the_others() {
    run_seeds(&byzantine::liar_among_pullers::<EmptyPromises>(), SEEDS);
}

/// Sim-only: a responder answering with blocks that do not verify does not stop the others.
#[test]
fn a_responder_with_garbage_updates_does_not_stop_the_others() {
    run_seeds(&byzantine::liar_among_pullers::<GarbageUpdates>(), SEEDS);
}

/// Sim-only: answers under nonces never sent are refused and counted; the others complete.
#[test]
fn answers_with_wrong_nonces_are_refused() {
    run_seeds(&byzantine::liar_among_pullers::<WrongNonces>(), SEEDS);
}

/// Sim-only: blocks that verify but lie far beyond the height (height + 1,000 and 10^15), pushed
/// to every peer, are refused and counted; they move no store's window, and the honest blocks
/// that follow reach every peer.
#[test]
fn far_future_blocks_from_a_peer_do_not_stop_the_honest_blocks() {
    run_seeds(&byzantine::far_future_blocks(), SEEDS);
}

/// Sim-only: a peer whose StateInfo advertises a ledger height it does not have (10^15) is every
/// other peer's highest advertised height but not the height most peers advertise (what
/// `/healthz` compares with); the honest blocks that follow reach every honest peer.
#[test]
fn a_peer_advertising_a_height_it_does_not_have_moves_no_majority() {
    run_seeds(&byzantine::inflated_height(), 0..64);
}
