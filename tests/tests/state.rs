//! State transfer (spec 3.9) on the simulator: Fabric's TestLargeBlockGap, a restart that
//! resumes from the ledger and catches up, and the fault sweep.

use gossip_harness::engine::EngineNode;
use gossip_harness::scenario::run_seeds;
use gossip_harness::state_transfer;

const SEEDS: std::ops::Range<u64> = 0..200;

#[test]
fn a_peer_far_behind_catches_up_by_state_transfer() {
    run_seeds(&state_transfer::large_block_gap::<EngineNode>(), SEEDS);
}

#[test]
fn a_restarted_peer_resumes_from_its_ledger_and_catches_up() {
    run_seeds(&state_transfer::restart_catches_up::<EngineNode>(), SEEDS);
}

/// The fault sweep over 1,000 seeds (`SIM_SEED=n` replays one): loss, duplication, a partition
/// that heals, a crash and restart; after healing every live peer has every block exactly once,
/// in order.
#[test]
fn after_faults_heal_every_peer_has_every_block_once_in_order() {
    run_seeds(&state_transfer::fault_sweep::<EngineNode>(), 0..1_000);
}
