//! Fabric's membership scenarios (TestMembership, TestMembershipConvergence, TestExpiration and
//! resurrection, partition and heal) on the engine's node.

use gossip_harness::engine::EngineNode;
use gossip_harness::fabric;
use gossip_harness::scenario::run_seeds;

const SEEDS: std::ops::Range<u64> = 0..200;

#[test]
fn membership_converges_and_metadata_propagates() {
    run_seeds(&fabric::membership::<EngineNode>(10), SEEDS);
}

#[test]
fn membership_survives_the_bridge_dying() {
    run_seeds(&fabric::membership_convergence::<EngineNode>(), SEEDS);
}

#[test]
fn expiration_then_resurrection() {
    run_seeds(&fabric::expiration::<EngineNode>(), SEEDS);
}

#[test]
fn partition_then_heal_reconverges() {
    run_seeds(&fabric::partition_heal::<EngineNode>(), SEEDS);
}

#[test]
fn membership_request_spoofing_is_ignored() {
    run_seeds(&fabric::membership_request_spoofing::<EngineNode>(), SEEDS);
}
