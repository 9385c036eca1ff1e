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
    /// Anti-entropy off: a peer restarted after the last block learns of its gap only from the
    /// heights its peers advertise, and catches up.
    a_peer_restarted_after_the_stream_stopped_catches_up:
        state_transfer::restart_after_the_stream_stopped::<EngineNode>(), 0..64;
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

/// The fault sweep (issue 19), over 1,000 seeds (`SIM_SEED=n` replays one), at Fabric's defaults
/// (anti-entropy off): loss, duplication, a partition that heals after 60 blocks, a crash and
/// restart, and no block after the healing. Every live peer ends with every block exactly once,
/// in order: gap repair brings what push and pull cannot.
#[test]
fn after_faults_heal_every_peer_has_every_block_once_in_order() {
    run_seeds(
        &state_transfer::fault_sweep_defaults::<EngineNode>(),
        0..1_000,
    );
}

/// The fault sweep with anti-entropy on (the setting under test) and blocks after the healing,
/// over 400 seeds: the sweep above holds the 1,000 that issue 19 asks for, and CI's 25 minutes
/// do not hold 1,000 of each.
#[test]
fn after_faults_heal_with_anti_entropy_every_peer_has_every_block_once_in_order() {
    run_seeds(&state_transfer::fault_sweep::<EngineNode>(), 0..400);
}

/// At 600 blocks/s a missed block leaves every peer's block store (`maxBlockCountToStore`, 10
/// blocks: 17 ms) before a pull round can fetch it, and delivery in order stops at that gap.
/// With Fabric's defaults and ours (gap repair on), every peer still gets every block: the gap is
/// fetched by state request at once. Without gap repair the peers stop (the second half).
#[test]
fn beyond_the_block_stores_reach_gap_repair_brings_every_block() {
    use gossip_engine::config::{GossipConfig, StateConfig};
    use gossip_harness::faults::LinkConfig;
    use gossip_harness::rate::{RateSetup, rate_figures};
    use std::time::Duration;

    let setup = |seed: u64, gap_repair: bool| RateSetup {
        nodes: 12,
        rate_per_s: 600.0,
        duration: Duration::from_secs(1),
        link: LinkConfig {
            latency_base: Duration::from_micros(300),
            latency_jitter: Duration::from_micros(600),
            ..LinkConfig::default()
        },
        gossip: GossipConfig {
            state: StateConfig {
                gap_repair,
                ..StateConfig::default()
            },
            ..GossipConfig::default()
        },
        seed,
    };
    for seed in 0..4 {
        let f = rate_figures(&setup(seed, true));
        assert_eq!(f.violations, 0, "seed {seed}: {f:?}");
        assert_eq!(f.completeness, 1.0, "seed {seed}: {f:?}");
    }
    let f = rate_figures(&setup(0, false));
    assert!(f.completeness < 1.0, "without gap repair: {f:?}");
}
