//! Fabric's gossip test scenarios (spec section 6), ported to the scenario DSL and written once:
//! `tests/tests/*.rs` run each on the simulator over many seeds and, unless it is sim-only
//! ([`Scenario::sim_only_reason`]), once on tonic over loopback with mutual TLS
//! ([`crate::transport::tonic::run_tonic`]). Each is generic over the simulator's node.
//!
//! Timers are shortened the way Fabric's own tests shorten them (alive every second, dead after
//! five), so a seed needs only tens of simulated seconds and a tonic run tens of real ones.
//!
//! Push runs at Fabric's default fan-out (`propagatePeerNum` = 3), and the block puller repairs
//! what push misses (spec 3.6), so block completeness is asserted at every size. [`pull_only`]
//! turns push forwarding off (Fabric's TestPull), [`late_joiner`] and [`pull_byzantine`] check
//! pull on its own.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use gossip_engine::config::GossipConfig;
use gossip_engine::crypto::envelope::{noop_sign, sign_envelope};
use gossip_proto::gossip::gossip_message::{Content, Tag};
use gossip_proto::gossip::{AliveMessage, GossipMessage, Member, MembershipRequest, PeerTime};
use prost::Message;

use crate::faults::LinkConfig;
use crate::node::SimNode;
use crate::scenario::{Bootstrap, Externals, Nodes, Op, Scenario, secs};
use crate::sim::Sim;

/// Fabric's defaults with the timers of its tests: alive every 1 s, dead after 5 s, StateInfo
/// every 1 s, pull (blocks and membership sync) every 2 s, reconnect every 2 s. Membership sync
/// is the costliest traffic (a response carries every member's signed alive message), hence 2 s.
/// A pull round's waits are cut in proportion (digests 0.5 s, requests 0.75 s, responses 1 s),
/// so a round ends before the next starts, as Fabric requires of its settings.
pub fn fast_gossip() -> GossipConfig {
    GossipConfig {
        alive_time_interval: secs(1),
        alive_expiration_timeout: secs(5),
        reconnect_interval: secs(2),
        pull_interval: secs(2),
        digest_wait_time: Duration::from_millis(500),
        request_wait_time: Duration::from_millis(750),
        response_wait_time: secs(1),
        publish_state_info_interval: secs(1),
        request_state_info_interval: secs(1),
        ..GossipConfig::default()
    }
}

pub(crate) fn base<N: SimNode>(name: &'static str, peers: usize) -> Scenario<N> {
    Scenario::new(name)
        .orgs(1)
        .peers_per_org(peers)
        .gossip(fast_gossip())
}

/// TestMembership: `peers` nodes bootstrapping to node 0 reach full views; a metadata update of
/// one node then reaches every other node.
pub fn membership<N: SimNode>(peers: usize) -> Scenario<N> {
    base("membership", peers)
        .step(Op::AwaitConverged { within: secs(30) })
        .step(Op::UpdateMetadata {
            node: 1,
            metadata: b"updated-metadata",
        })
        .step(Op::AwaitMetadata {
            node: 1,
            metadata: b"updated-metadata",
            within: secs(20),
        })
        .step(Op::AwaitConverged { within: secs(5) })
}

/// TestMembershipConvergence: three bootstrap groups of two, a bridge node bootstrapping to
/// each group's head joins them; the bridge dies, is detected dead everywhere, and the others stay
/// converged.
pub fn membership_convergence<N: SimNode>() -> Scenario<N> {
    let bridge = 6;
    let mut lists: Vec<Vec<usize>> = (0..6)
        .map(|i| if i % 2 == 0 { vec![] } else { vec![i - 1] })
        .collect();
    lists.push(vec![0, 2, 4]);
    base("membership-convergence", 7)
        .bootstrap(Bootstrap::Explicit(lists))
        .step(Op::AwaitConverged { within: secs(30) })
        .step(Op::Crash(bridge))
        .step(Op::AwaitDead {
            node: bridge,
            within: secs(15),
        })
        .step(Op::AwaitConverged { within: secs(5) })
        .step(Op::Wait(secs(5)))
        .step(Op::AwaitConverged { within: secs(1) })
}

/// TestExpiration and resurrection: a crashed node is dead everywhere after the expiration
/// timeout; restarted, it is alive everywhere again.
pub fn expiration<N: SimNode>() -> Scenario<N> {
    base("expiration", 5)
        .step(Op::AwaitConverged { within: secs(20) })
        .step(Op::Crash(3))
        .step(Op::AwaitDead {
            node: 3,
            within: secs(15),
        })
        .step(Op::AwaitDeadListed {
            node: 3,
            within: secs(1),
        })
        .step(Op::Restart(3))
        .step(Op::AwaitConverged { within: secs(20) })
}

pub(crate) fn join_all<N: SimNode>(s: Scenario<N>, channel: &'static str) -> Scenario<N> {
    s.step(Op::JoinChan {
        channel,
        nodes: Nodes::All,
    })
    // Blocks are routed to peers known in the channel: StateInfo must spread first.
    .step(Op::AwaitChannelViews { within: secs(20) })
}

/// TestDissemination: `blocks` blocks from node 0 reach every peer, in order, once (push at
/// fan-out 3, pull repairing what it misses).
pub fn dissemination<N: SimNode>(peers: usize, blocks: u64) -> Scenario<N> {
    let s = base("dissemination", peers).step(Op::AwaitConverged { within: secs(30) });
    join_all(s, "A")
        .step(Op::InjectBlocks {
            from: 0,
            channel: "A",
            count: blocks,
        })
        .step(Op::AwaitBlocks {
            channel: "A",
            within: secs(10),
        })
}

/// Dissemination over a lossy (5 %), duplicating, reordering network: pull repairs what push
/// and loss miss (pull messages are lost too), so every block still reaches every peer, in order,
/// once. Sim-only.
pub fn dissemination_lossy<N: SimNode>(peers: usize, blocks: u64) -> Scenario<N> {
    let s = base("dissemination-lossy", peers).step(Op::AwaitConverged { within: secs(30) });
    join_all(s, "A")
        .step(Op::SetLink(LinkConfig {
            loss_probability: 0.05,
            duplicate_probability: 0.05,
            latency_jitter: Duration::from_millis(50),
            ..LinkConfig::default()
        }))
        .step(Op::InjectBlocks {
            from: 0,
            channel: "A",
            count: blocks,
        })
        .step(Op::AwaitBlocks {
            channel: "A",
            within: secs(20),
        })
}

/// Dissemination with duplication and heavy reordering but no loss, on 4 peers (the fan-out
/// reaches everyone): still complete, in order, without duplicates. Sim-only.
pub fn dissemination_duplicating<N: SimNode>(blocks: u64) -> Scenario<N> {
    let s = base("dissemination-duplicating", 4).step(Op::AwaitConverged { within: secs(30) });
    join_all(s, "A")
        .step(Op::SetLink(LinkConfig {
            duplicate_probability: 0.2,
            latency_jitter: Duration::from_millis(100),
            ..LinkConfig::default()
        }))
        .step(Op::InjectBlocks {
            from: 0,
            channel: "A",
            count: blocks,
        })
        .step(Op::AwaitBlocks {
            channel: "A",
            within: secs(20),
        })
}

/// TestDisseminateAll2All: one block from each peer (peer i injects block i + 1).
pub fn all_to_all<N: SimNode>(peers: usize) -> Scenario<N> {
    let s = base("all-to-all", peers).step(Op::AwaitConverged { within: secs(30) });
    let mut s = join_all(s, "A");
    for from in 0..peers {
        s = s.step(Op::InjectBlocks {
            from,
            channel: "A",
            count: 1,
        });
    }
    s.step(Op::AwaitBlocks {
        channel: "A",
        within: secs(10),
    })
}

/// TestPull: push forwarding off (`propagateIterations` = 0: the emitter sends nothing, so alive
/// messages and StateInfo spread by membership sync and StateInfo pull alone), 6 peers, 10
/// blocks from node 0: every block reaches every peer by pull alone. `pullPeerNum` is 5 (every
/// other peer; Fabric's test uses 20) so that membership, refreshed by sync alone, never lets a
/// peer expire.
pub fn pull_only<N: SimNode>() -> Scenario<N> {
    let gossip = GossipConfig {
        propagate_iterations: 0,
        pull_peer_num: 5,
        ..fast_gossip()
    };
    let s = Scenario::new("pull-only")
        .orgs(1)
        .peers_per_org(6)
        .gossip(gossip)
        .step(Op::AwaitConverged { within: secs(30) });
    join_all(s, "A")
        .step(Op::InjectBlocks {
            from: 0,
            channel: "A",
            count: 10,
        })
        .step(Op::AwaitBlocks {
            channel: "A",
            within: secs(20),
        })
}

/// A late joiner: node 5 joins channel A after its 5 blocks reached nodes 0 to 4 (push and pull)
/// and no block follows; it catches up, by pull alone, every block still in the others' block
/// stores (all 5: a store keeps `maxBlockCountToStore` = 10).
pub fn late_joiner<N: SimNode>() -> Scenario<N> {
    join_late(base("late-joiner", 6), 5, secs(10))
}

/// On six nodes (`s`): nodes 0 to 4 join channel A and `blocks` blocks reach them; then node 5
/// joins, no block follows, and it must hold every block within `catch_up`.
pub(crate) fn join_late<N: SimNode>(
    s: Scenario<N>,
    blocks: u64,
    catch_up: Duration,
) -> Scenario<N> {
    s.step(Op::AwaitConverged { within: secs(30) })
        .step(Op::JoinChan {
            channel: "A",
            nodes: Nodes::List(vec![0, 1, 2, 3, 4]),
        })
        .step(Op::AwaitChannelViews { within: secs(20) })
        .step(Op::InjectBlocks {
            from: 0,
            channel: "A",
            count: blocks,
        })
        .step(Op::AwaitBlocks {
            channel: "A",
            within: secs(10),
        })
        .step(Op::JoinChan {
            channel: "A",
            nodes: Nodes::List(vec![5]),
        })
        .step(Op::AwaitChannelViews { within: secs(20) })
        .step(Op::AwaitBlocks {
            channel: "A",
            within: catch_up,
        })
}

/// TestNoMessagesSelfLoop: blocks from two sources among three peers; the echo checker (no block
/// is sent back to the peer it came from) and the order checker (the source never delivers its
/// own block twice) run throughout.
pub fn no_self_loop<N: SimNode>() -> Scenario<N> {
    let s = base("no-self-loop", 3).step(Op::AwaitConverged { within: secs(20) });
    join_all(s, "A")
        .step(Op::InjectBlocks {
            from: 0,
            channel: "A",
            count: 3,
        })
        .step(Op::InjectBlocks {
            from: 1,
            channel: "A",
            count: 3,
        })
        .step(Op::AwaitBlocks {
            channel: "A",
            within: secs(10),
        })
}

fn alive_of<N: SimNode>(sim: &Sim<N>, about: usize) -> GossipMessage {
    GossipMessage {
        tag: Tag::Empty as i32,
        content: Some(Content::AliveMsg(AliveMessage {
            membership: Some(Member {
                endpoint: sim.internal_endpoint_of(about).to_owned(),
                metadata: Bytes::new(),
                pki_id: Bytes::copy_from_slice(sim.pki_id(about).as_bytes()),
            }),
            timestamp: Some(PeerTime {
                inc_num: 1,
                seq_num: 1,
            }),
            identity: Bytes::new(),
        })),
        ..GossipMessage::default()
    }
}

/// A membership request from `from` whose self information is `about`'s alive message, signed
/// by `about`.
pub fn membership_request<N: SimNode>(
    sim: &Sim<N>,
    about: usize,
    nonce: u64,
) -> Result<gossip_proto::gossip::Envelope, String> {
    let info = sign_envelope(
        alive_of(sim, about).encode_to_vec().into(),
        sim.signer(about).key(),
    )
    .map_err(|e| e.to_string())?;
    let request = GossipMessage {
        tag: Tag::Empty as i32,
        nonce,
        content: Some(Content::MemReq(MembershipRequest {
            self_information: Some(info),
            known: Vec::new(),
        })),
        ..GossipMessage::default()
    };
    Ok(noop_sign(request.encode_to_vec().into()))
}

/// TestMembershipRequestSpoofing: node 1 sends node 0 a membership request carrying node 2's
/// (validly signed) alive message; node 0 ignores it (no response). A genuine request from node 1
/// gets a response (the control). Sim-only: it injects crafted envelopes on a link.
pub fn membership_request_spoofing<N: SimNode>() -> Scenario<N> {
    base("membership-request-spoofing", 3)
        .step(Op::AwaitConverged { within: secs(20) })
        .step(Op::Custom(Arc::new(|sim: &mut Sim<N>| {
            let responses_before = sim.stats().link_transmits(0, 1, "mem_res");
            let spoofed = membership_request(sim, 2, 0x5eed)?;
            sim.inject(1, 0, spoofed);
            sim.run_for(Duration::from_millis(200));
            let after_spoof = sim.stats().link_transmits(0, 1, "mem_res");
            if after_spoof != responses_before {
                return Err("node 0 answered a spoofed membership request".into());
            }
            if sim.checkers().rejects().get("spoofed") != Some(&1) {
                return Err(format!(
                    "spoofed request not rejected: {:?}",
                    sim.checkers().rejects()
                ));
            }
            let genuine = membership_request(sim, 1, 0x600d)?;
            sim.inject(1, 0, genuine);
            sim.run_for(Duration::from_millis(200));
            let after_genuine = sim.stats().link_transmits(0, 1, "mem_res");
            (after_genuine > after_spoof)
                .then_some(())
                .ok_or("node 0 did not answer a genuine membership request".into())
        })))
}

/// Identity pull (Fabric's cert store, spec 3.11; its TestPull-like certstore tests): alive
/// messages carry no identity (`publishCertPeriod` 0) and every peer bootstraps to peer 0 only,
/// so the only identities a peer learns from its own connections are peer 0's and those of the
/// peers that dial it. It can verify the alive messages of the others only once it has pulled
/// their identities (from peer 0, which pulled them from their owners, or from any peer that did):
/// converged views mean identities travelled by pull.
pub fn identity_pull<N: SimNode>(peers: usize) -> Scenario<N> {
    base("identity-pull", peers)
        .gossip(GossipConfig {
            publish_cert_period: Duration::ZERO,
            ..fast_gossip()
        })
        .step(Op::AwaitConverged { within: secs(30) })
}

/// TestMultipleOrgEndpointLeakage / TestConfidentiality: 2 orgs × 5 peers, peers 0 and 1 of each
/// org have external endpoints; after joining a shared channel, external peers see each other
/// across orgs, internal-only peers stay invisible to the other org, and no internal endpoint or
/// secret envelope ever crosses orgs (checked on every delivery).
pub fn endpoint_leakage<N: SimNode>() -> Scenario<N> {
    Scenario::new("endpoint-leakage")
        .orgs(2)
        .peers_per_org(5)
        .gossip(fast_gossip())
        .externals(Externals::FirstTwoOfEachOrg)
        .step(Op::AwaitConverged { within: secs(20) })
        .step(Op::JoinChan {
            channel: "A",
            nodes: Nodes::All,
        })
        .step(Op::AwaitConverged { within: secs(30) })
        .step(Op::Wait(secs(5)))
        .step(Op::AwaitConverged { within: secs(1) })
}

/// TestDataLeakage: channels A (peers 0–2) and B (peers 3–5) in one org; blocks of each reach
/// exactly that channel's peers (the fan-out of 3 covers a 3-member channel: complete by
/// construction), and never a peer of the other channel (the channel-leak checker, on the wire
/// and on delivery).
pub fn data_leakage<N: SimNode>() -> Scenario<N> {
    base("data-leakage", 6)
        .step(Op::AwaitConverged { within: secs(20) })
        .step(Op::JoinChan {
            channel: "A",
            nodes: Nodes::List(vec![0, 1, 2]),
        })
        .step(Op::JoinChan {
            channel: "B",
            nodes: Nodes::List(vec![3, 4, 5]),
        })
        .step(Op::AwaitChannelViews { within: secs(20) })
        .step(Op::InjectBlocks {
            from: 0,
            channel: "A",
            count: 5,
        })
        .step(Op::InjectBlocks {
            from: 3,
            channel: "B",
            count: 5,
        })
        .step(Op::AwaitBlocks {
            channel: "A",
            within: secs(10),
        })
        .step(Op::AwaitBlocks {
            channel: "B",
            within: secs(10),
        })
}

/// Membership after a partition heals: two halves lose each other (each node's view converges
/// on its own half: the other declared dead), and reconverge after the heal.
pub fn partition_heal<N: SimNode>() -> Scenario<N> {
    base("partition-heal", 6)
        .step(Op::AwaitConverged { within: secs(20) })
        .step(Op::Partition(vec![vec![0, 1, 2]]))
        .step(Op::AwaitConverged { within: secs(15) })
        .step(Op::Heal)
        .step(Op::AwaitConverged { within: secs(30) })
}

/// TestConfidentiality's channels over orgs A, B, C, D (0–3), as (channel, orgs):
///
/// ```text
///  [A]-C0-[B]-C3-[D]
///   |     /
///   C1  C2
///   |   /
///   [C]
/// ```
pub const CONFIDENTIALITY_CHANNELS: [(&str, [usize; 2]); 4] = [
    ("C0", [0, 1]),
    ("C1", [0, 2]),
    ("C2", [1, 2]),
    ("C3", [1, 3]),
];

/// Contents that must have carried cross-org subjects in a confidentiality run, so the disclosure
/// checker inspected each kind at least once.
const CONFIDENTIALITY_CROSS_ORG_KINDS: [&str; 6] = [
    "alive_msg",
    "mem_req",
    "mem_res_alive",
    "state_snapshot",
    "identity_digest",
    "identity_update",
];

/// TestConfidentiality: 4 orgs of `peers_per_org` peers, peers 0 and 1 of each with an external
/// endpoint, on [`CONFIDENTIALITY_CHANNELS`] (every external peer is an anchor of its org).
/// Membership and channel views settle to exactly what each peer may see (D's peers know only B's,
/// A and C never learn of D), and throughout the run the disclosure checker
/// ([`crate::checkers::disclosure`]) sees every delivery: nothing about an org reaches an org that
/// shares no channel with it, no foreign peer without external endpoint is disclosed, and no org
/// vouches for a third one.
pub fn confidentiality<N: SimNode>(peers_per_org: usize) -> Scenario<N> {
    let nodes_of = |orgs: [usize; 2]| {
        let nodes = orgs
            .iter()
            .flat_map(|o| (0..peers_per_org).map(move |p| o * peers_per_org + p));
        Nodes::List(nodes.collect())
    };
    let mut s = Scenario::new("confidentiality")
        .orgs(4)
        .peers_per_org(peers_per_org)
        .gossip(fast_gossip())
        .externals(Externals::FirstTwoOfEachOrg);
    for (channel, orgs) in CONFIDENTIALITY_CHANNELS {
        s = s.step(Op::JoinChan {
            channel,
            nodes: nodes_of(orgs),
        });
    }
    s.step(Op::AwaitConverged { within: secs(30) })
        .step(Op::AwaitChannelViews { within: secs(20) })
        // Settled views must stay exact: more alive heartbeats, StateInfo and identity pull
        // rounds (identities cross orgs by pull from the second round on).
        .step(Op::Wait(secs(5)))
        .step(Op::AwaitConverged { within: secs(1) })
        .step(Op::AwaitChannelViews { within: secs(1) })
        .step(Op::ExpectCrossOrgSubjects(&CONFIDENTIALITY_CROSS_ORG_KINDS))
}
