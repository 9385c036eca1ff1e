//! Fabric's confidentiality scenarios (TestConfidentiality, TestMultipleOrgEndpointLeakage,
//! TestDataLeakage) on the engine's node.

use gossip_harness::engine::EngineNode;
use gossip_harness::fabric;
use gossip_harness::scenario::run_seeds;

const SEEDS: std::ops::Range<u64> = 0..200;

#[test]
fn internal_endpoints_never_cross_orgs() {
    run_seeds(&fabric::endpoint_leakage::<EngineNode>(), SEEDS);
}

#[test]
fn blocks_reach_only_their_channel() {
    run_seeds(&fabric::data_leakage::<EngineNode>(), SEEDS);
}
