//! Simulator self-tests with the toy node: determinism, faults, checkers that fire.

use std::time::Duration;

use bytes::Bytes;
use gossip_engine::crypto::envelope::sign_envelope;
use gossip_proto::gossip::gossip_message::{Content, Tag};
use gossip_proto::gossip::{AliveMessage, GossipMessage, Member, MembershipRequest, PeerTime};
use prost::Message;

use crate::checkers::Violation;
use crate::faults::LinkConfig;
use crate::scenario::{Nodes, Op, Scenario, run_seed, secs};
use crate::toy::ToyNode;

fn toy(name: &'static str) -> Scenario<ToyNode> {
    Scenario::new(name).orgs(1).peers_per_org(5)
}

fn flood() -> Scenario<ToyNode> {
    toy("toy-flood")
        .link(LinkConfig {
            duplicate_probability: 0.1,
            latency_jitter: Duration::from_millis(30),
            ..LinkConfig::default()
        })
        .step(Op::Wait(secs(3)))
        .step(Op::JoinChan {
            channel: "A",
            nodes: Nodes::All,
        })
        .step(Op::AwaitConverged { within: secs(5) })
        .step(Op::InjectBlocks {
            from: 2,
            channel: "A",
            count: 10,
        })
        .step(Op::AwaitBlocks {
            channel: "A",
            within: secs(2),
        })
}

#[test]
fn same_seed_same_trace_other_seed_other_trace() {
    let a = run_seed(&flood(), 11);
    let b = run_seed(&flood(), 11);
    let c = run_seed(&flood(), 12);
    assert_eq!(a.trace, b.trace);
    assert_eq!(a.stats.exact(), b.stats.exact());
    assert_ne!(a.trace.0, c.trace.0);
    assert!(a.stats.duplicated > 0, "{:?}", a.stats);
    assert_eq!(a.stats.blocks_delivered, 50);
}

#[test]
fn crash_is_detected_and_restart_resurrects() {
    let s = toy("toy-crash")
        .step(Op::AwaitConverged { within: secs(5) })
        .step(Op::Crash(3))
        .step(Op::AwaitDead {
            node: 3,
            within: secs(10),
        })
        .step(Op::AwaitConverged { within: secs(1) })
        .step(Op::Restart(3))
        .step(Op::AwaitConverged { within: secs(5) });
    for seed in 0..5 {
        let outcome = run_seed(&s, seed);
        assert!(outcome.stats.dropped_down + outcome.stats.send_failures > 0);
    }
}

#[test]
fn partition_then_heal_reconverges() {
    let s = toy("toy-partition")
        .step(Op::AwaitConverged { within: secs(5) })
        .step(Op::Partition(vec![vec![0, 1]]))
        .step(Op::Wait(secs(8)))
        .step(Op::Heal)
        .step(Op::AwaitConverged { within: secs(10) });
    let (outcome, sim) = s.run(3);
    assert!(outcome.violations.is_empty(), "{:?}", outcome.violations);
    assert!(outcome.stats.send_failures > 0);
    assert!(sim.node(0).is_some());
}

#[test]
fn loss_drops_messages_but_never_reorders_delivery() {
    let s = toy("toy-lossy")
        .step(Op::AwaitConverged { within: secs(5) })
        .step(Op::JoinChan {
            channel: "A",
            nodes: Nodes::All,
        })
        .step(Op::SetLink(LinkConfig {
            latency_jitter: Duration::from_millis(100),
            ..LinkConfig::lossy(0.2)
        }))
        .step(Op::InjectBlocks {
            from: 0,
            channel: "A",
            count: 20,
        })
        .step(Op::Wait(secs(2)));
    for seed in 0..10 {
        let outcome = run_seed(&s, seed);
        assert!(outcome.stats.lost > 0);
    }
}

#[test]
fn checkers_catch_a_node_that_leaks_blocks_to_other_channels() {
    let s = toy("toy-leak")
        .step(Op::AwaitConverged { within: secs(5) })
        .step(Op::JoinChan {
            channel: "A",
            nodes: Nodes::List(vec![0, 1]),
        })
        .step(Op::InjectBlocks {
            from: 0,
            channel: "A",
            count: 1,
        })
        .step(Op::Wait(secs(1)));
    let (outcome, _) = s.run(0);
    assert!(
        outcome.violations.iter().any(|v| matches!(
            v,
            Violation::ChannelLeak {
                via: "data_msg",
                ..
            }
        )),
        "{:?}",
        outcome.violations
    );
}

#[test]
fn checkers_catch_internal_endpoints_crossing_orgs() {
    // The toy gossips alive messages with its internal endpoint to everyone it knows; bootstrapping
    // across orgs makes it leak.
    let s = Scenario::<ToyNode>::new("toy-endpoint-leak")
        .orgs(2)
        .peers_per_org(2)
        .bootstrap(crate::scenario::Bootstrap::Explicit(vec![
            vec![],
            vec![0],
            vec![0],
            vec![2],
        ]))
        .step(Op::Wait(secs(3)));
    let (outcome, _) = s.run(0);
    assert!(
        outcome
            .violations
            .iter()
            .any(|v| matches!(v, Violation::EndpointLeak { .. })),
        "{:?}",
        outcome.violations
    );
}

#[test]
fn injected_spoofed_membership_request_is_rejected_by_ingress() {
    let s = toy("toy-spoof")
        .step(Op::AwaitConverged { within: secs(5) })
        .step(Op::Custom(std::sync::Arc::new(|sim| {
            // Node 1 sends node 0 a membership request whose self information is node 2's alive
            // message (signed by node 2, so only the sender check can catch it).
            let alive = GossipMessage {
                tag: Tag::Empty as i32,
                content: Some(Content::AliveMsg(AliveMessage {
                    membership: Some(Member {
                        endpoint: sim.internal_endpoint_of(2).to_owned(),
                        metadata: Bytes::new(),
                        pki_id: Bytes::copy_from_slice(sim.pki_id(2).as_bytes()),
                    }),
                    timestamp: Some(PeerTime {
                        inc_num: 1,
                        seq_num: 1,
                    }),
                    identity: Bytes::new(),
                })),
                ..GossipMessage::default()
            };
            let info = sign_envelope(alive.encode_to_vec().into(), sim.signer(2).key())
                .map_err(|e| e.to_string())?;
            let request = GossipMessage {
                tag: Tag::Empty as i32,
                nonce: 7,
                content: Some(Content::MemReq(MembershipRequest {
                    self_information: Some(info),
                    known: Vec::new(),
                })),
                ..GossipMessage::default()
            };
            let envelope =
                gossip_engine::crypto::envelope::noop_sign(request.encode_to_vec().into());
            sim.inject(1, 0, envelope);
            sim.run_for(secs(1));
            Ok(())
        })));
    let outcome = run_seed(&s, 0);
    assert_eq!(
        outcome.rejects.get("spoofed"),
        Some(&1),
        "{:?}",
        outcome.rejects
    );
}

#[test]
fn dissemination_figures_are_a_function_of_the_seed() {
    let a = crate::figures::dissemination_figures::<ToyNode>(4, 5, 1);
    let b = crate::figures::dissemination_figures::<ToyNode>(4, 5, 1);
    assert_eq!(a, b);
    assert_eq!(a.violations, 0);
    assert_eq!(a.blocks_delivered, 20);
    assert!(
        a.time_to_all > Duration::ZERO && a.time_to_all < secs(1),
        "{a:?}"
    );
    // The toy floods: the source sends to 3 peers, each forwards to the 2 others; the source
    // accepts its own block when it comes back and floods once more (2 messages).
    assert!((9.0..=11.0).contains(&a.msgs_per_block()), "{a:?}");
}
