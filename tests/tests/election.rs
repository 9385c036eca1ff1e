//! Leader election (spec 3.10) on the engine's node: each scenario of `gossip_harness::election`
//! on the simulator over 200 seeds with Fabric's default timings, and the simultaneous start and
//! the leader's death once on tonic over loopback (with the election's timings shortened, see
//! `election::fast_election`, so the real-time run stays short).

use std::time::Duration;

use gossip_harness::election;
use gossip_harness::engine::EngineNode;
use gossip_harness::scenario::{run_seeds, secs};
use gossip_harness::transport::tonic::run_tonic;

const SEEDS: std::ops::Range<u64> = 0..200;

/// Two orgs of three: one leader per org, its lowest PKI-ID.
#[test]
fn simultaneous_start_elects_the_lowest_per_org() {
    let s = election::simultaneous::<EngineNode>(election::election_gossip(), 2, 3, secs(30));
    run_seeds(&s, SEEDS);
}

#[test]
fn staggered_start_has_one_leader_the_first_or_a_lower_joiner() {
    run_seeds(&election::staggered::<EngineNode>(), SEEDS);
}

#[test]
fn leader_death_gives_one_successor_within_fabric_timings() {
    let s = election::leader_death::<EngineNode>(election::election_gossip(), secs(30));
    run_seeds(&s, SEEDS);
}

#[test]
fn yield_hands_the_leadership_over() {
    run_seeds(&election::yield_hands_over::<EngineNode>(), SEEDS);
}

#[test]
fn partition_gives_a_leader_per_side_and_heal_the_lower() {
    run_seeds(&election::partition_heal::<EngineNode>(), SEEDS);
}

#[test]
fn tonic_simultaneous_start_elects_the_lowest() {
    let s = election::simultaneous::<EngineNode>(election::fast_election(), 1, 3, secs(3));
    run_tonic(&s);
}

#[test]
fn tonic_leader_death_gives_a_successor() {
    let s = election::leader_death::<EngineNode>(election::fast_election(), Duration::from_secs(2));
    run_tonic(&s);
}
