//! Identity pull (Fabric's cert store, spec 3.11): peers learn the identities of peers they never
//! handshook with, on the simulator over 200 seeds and once on tonic over loopback with mutual
//! TLS. (Identity pull across orgs is watched by the disclosure checker in `leakage.rs`.)

use gossip_harness::engine::EngineNode;
use gossip_harness::fabric;
use gossip_harness::on_both_transports;

const SEEDS: std::ops::Range<u64> = 0..200;

on_both_transports! {
    /// 6 peers bootstrapping to peer 0, no identity in alive messages: full views by pull.
    identities_travel_by_pull_alone: fabric::identity_pull::<EngineNode>(6), SEEDS;
}
