//! Fabric's membership scenarios (TestMembership, TestMembershipConvergence, TestExpiration and
//! resurrection, partition and heal, TestMembershipRequestSpoofing) on the engine's node: each
//! written once in `gossip_harness::fabric`, run on the simulator over 200 seeds and, unless it
//! needs the simulated network, once on tonic over loopback with mutual TLS (partitions run on
//! both).

use gossip_harness::engine::EngineNode;
use gossip_harness::fabric;
use gossip_harness::on_both_transports;
use gossip_harness::scenario::run_seeds;
use gossip_harness::transport::tonic::try_run_tonic;

const SEEDS: std::ops::Range<u64> = 0..200;

on_both_transports! {
    membership_converges_and_metadata_propagates: fabric::membership::<EngineNode>(10), SEEDS;
    membership_survives_the_bridge_dying: fabric::membership_convergence::<EngineNode>(), SEEDS;
    expiration_then_resurrection: fabric::expiration::<EngineNode>(), SEEDS;
    /// On tonic the partition is every node's transmit filter.
    partition_then_heal_reconverges: fabric::partition_heal::<EngineNode>(), SEEDS;
}

/// Sim-only: it injects crafted envelopes on a link.
#[test]
fn membership_request_spoofing_is_ignored() {
    run_seeds(&fabric::membership_request_spoofing::<EngineNode>(), SEEDS);
}

/// The tonic runner refuses a sim-only scenario, saying which step, and starts nothing.
#[test]
fn tonic_refuses_sim_only_scenarios() {
    for scenario in [
        fabric::membership_request_spoofing::<EngineNode>(),
        fabric::dissemination_lossy::<EngineNode>(6, 10),
    ] {
        let refused = try_run_tonic(&scenario).expect_err("sim-only scenario refused");
        assert!(
            refused.contains("simulator only") && refused.contains("step"),
            "{refused}"
        );
    }
}
