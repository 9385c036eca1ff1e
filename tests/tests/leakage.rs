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

/// TestConfidentiality: 4 orgs × 3 peers (2 with an external endpoint) on 4 channels; no message
/// ever tells an org about an org it shares no channel with, and every view settles.
#[test]
fn no_org_learns_of_an_org_it_shares_no_channel_with() {
    run_seeds(&fabric::confidentiality::<EngineNode>(3), SEEDS);
}
