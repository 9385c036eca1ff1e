//! State transfer (spec 3.9): Fabric's TestLargeBlockGap and a restart that resumes from the
//! ledger and catches up, on both transports (over tonic each node commits to a ledger that
//! outlives its restarts); the fault sweep on the simulator.

use gossip_harness::engine::EngineNode;
use gossip_harness::on_both_transports;
use gossip_harness::scenario::run_seeds;
use gossip_harness::state_transfer;

const SEEDS: std::ops::Range<u64> = 0..200;

on_both_transports! {
    /// TestLargeBlockGap: 100 blocks behind, 90 of them gone from every block store.
    a_peer_far_behind_catches_up_by_state_transfer:
        state_transfer::large_block_gap::<EngineNode>(), SEEDS;
    /// A peer killed while 60 blocks pass resumes from its ledger and catches up.
    a_restarted_peer_resumes_from_its_ledger_and_catches_up:
        state_transfer::restart_catches_up::<EngineNode>(), SEEDS;
}

/// Sim-only: with anti-entropy off, gap repair alone brings a restarted peer the 60 blocks that
/// left every block store; without it (the second half) the peer stops at the gap.
#[test]
fn gap_repair_alone_brings_a_restarted_peer_what_no_store_holds() {
    run_seeds(
        &state_transfer::restart_catches_up_by_gap_repair::<EngineNode>(),
        0..64,
    );
    let without = state_transfer::restart_catches_up_by_gap_repair::<EngineNode>()
        .gossip(state_transfer::gap_repair_gossip(false));
    for seed in 0..4 {
        let (outcome, _) = without.run(seed);
        assert!(
            !outcome.violations.is_empty(),
            "seed {seed}: the restarted peer caught up without gap repair or anti-entropy"
        );
    }
}

/// The fault sweep over 1,000 seeds (`SIM_SEED=n` replays one): loss, duplication, a partition
/// that heals, a crash and restart; after healing every live peer has every block exactly once,
/// in order.
#[test]
fn after_faults_heal_every_peer_has_every_block_once_in_order() {
    run_seeds(&state_transfer::fault_sweep::<EngineNode>(), 0..1_000);
}
