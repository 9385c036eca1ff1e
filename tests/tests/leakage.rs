//! Fabric's confidentiality scenarios (TestConfidentiality, TestMultipleOrgEndpointLeakage,
//! TestDataLeakage) on the engine's node, on the simulator over 200 seeds and once on tonic over
//! loopback with mutual TLS; the same checkers (endpoint leak, disclosure, channel leak) watch
//! every delivery on both.

use gossip_harness::engine::EngineNode;
use gossip_harness::fabric;
use gossip_harness::on_both_transports;

const SEEDS: std::ops::Range<u64> = 0..200;

on_both_transports! {
    internal_endpoints_never_cross_orgs: fabric::endpoint_leakage::<EngineNode>(), SEEDS;
    blocks_reach_only_their_channel: fabric::data_leakage::<EngineNode>(), SEEDS;
    /// TestConfidentiality: 4 orgs × 3 peers (2 with an external endpoint) on 4 channels; no
    /// message ever tells an org about an org it shares no channel with, and every view settles.
    no_org_learns_of_an_org_it_shares_no_channel_with: fabric::confidentiality::<EngineNode>(3), SEEDS;
}
