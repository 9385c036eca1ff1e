//! Leader election scenarios (spec 3.10, Fabric's `gossip/election` tests on the whole stack):
//! simultaneous start, staggered start (TestInitPeersStartAtIntervals), the leader's death, yield,
//! and partition and heal. The simulator runs them with Fabric's default timings on virtual time
//! over many seeds; the tonic versions ([`fast_election`]) shorten the election's timings so a
//! real-time run stays short.

use std::sync::Arc;
use std::time::Duration;

use gossip_engine::config::{ElectionConfig, GossipConfig};
use gossip_engine::event::Command;

use crate::node::{SimNode, channel_bytes};
use crate::scenario::{LeaderRule, Nodes, Op, Scenario, secs};
use crate::sim::Sim;

/// The channel every election scenario uses.
pub const CHANNEL: &str = "election";

/// Fabric's defaults with `useLeaderElection: true`.
pub fn election_gossip() -> GossipConfig {
    GossipConfig {
        election: ElectionConfig {
            use_leader_election: true,
            ..ElectionConfig::default()
        },
        ..GossipConfig::default()
    }
}

/// For real-time (tonic) runs only: the election's timings shortened (grace 5 s, alive
/// threshold 2 s, election 1 s) so a run takes seconds instead of a minute, and StateInfo every
/// 500 ms so that, as with Fabric's defaults, the views are complete (two equal samples, 1 s
/// apart) before the first proposal: a proposal from outside a view is ignored, and with the
/// StateInfo exchange as slow as the election the lowest PKI-ID would not reliably win (no
/// pre-emption). The rules are the same; only the clock is faster.
pub fn fast_election() -> GossipConfig {
    let mut g = election_gossip();
    g.election.startup_grace_period = secs(5);
    g.election.leader_election_duration = secs(1);
    g.leader_alive_threshold = secs(2);
    g.publish_state_info_interval = Duration::from_millis(500);
    g.request_state_info_interval = Duration::from_millis(500);
    g
}

/// A node's leadership of [`CHANNEL`] (`false` when down or not joined).
fn leads<N: SimNode>(sim: &Sim<N>, i: usize) -> bool {
    sim.node(i)
        .and_then(|n| n.is_leader(&channel_bytes(CHANNEL)))
        .unwrap_or(false)
}

/// Peers that join together: after the transient of the first rounds (proposals sent before the
/// StateInfo exchange filled the views), each org has exactly one leader, its lowest PKI-ID, and
/// keeps it.
pub fn simultaneous<N>(
    gossip: GossipConfig,
    orgs: usize,
    peers: usize,
    hold: Duration,
) -> Scenario<N> {
    Scenario::new("election-simultaneous")
        .orgs(orgs)
        .peers_per_org(peers)
        .gossip(gossip)
        .step(Op::AwaitConverged { within: secs(30) })
        .step(Op::JoinChan {
            channel: CHANNEL,
            nodes: Nodes::All,
        })
        .step(Op::AwaitLeaders {
            channel: CHANNEL,
            rule: LeaderRule::Lowest,
            within: secs(60),
        })
        .step(Op::HoldLeaders {
            channel: CHANNEL,
            rule: LeaderRule::Lowest,
            duration: hold,
        })
}

/// The leader dies: the survivors elect exactly one successor within Fabric's bound
/// (`2 × leaderAliveThreshold + leaderElectionDuration`, 25 s, plus a second for delivery) and
/// keep it.
pub fn leader_death<N>(gossip: GossipConfig, hold: Duration) -> Scenario<N> {
    let bound = 2 * gossip.leader_alive_threshold + gossip.election.leader_election_duration;
    simultaneous(gossip, 1, 4, Duration::ZERO)
        .step(Op::CrashLeaders { channel: CHANNEL })
        .step(Op::AwaitLeaders {
            channel: CHANNEL,
            rule: LeaderRule::One,
            within: bound + secs(1),
        })
        .step(Op::HoldLeaders {
            channel: CHANNEL,
            rule: LeaderRule::One,
            duration: hold,
        })
}

/// Fabric's TestInitPeersStartAtIntervals on the whole stack: peers join the channel
/// `startupGracePeriod + leaderAliveThreshold / 2` (20 s) apart, the highest PKI-ID first. There
/// is exactly one leader after each join settles. Sim-only (the join order needs the PKI-IDs).
///
/// Unlike Fabric's unit test (instant membership), a joiner's view fills only with the StateInfo
/// exchange (2–4 s), and its first election ends 6 s after its join: when the incumbent's
/// declaration reaches it in between, the first to start keeps the leadership; otherwise the
/// joiner (lower) declares and the incumbent steps down. fabric-node's README describes the same
/// for Fabric peers ("No pre-emption"). So the leader is the first to start or a lower joiner, and
/// there is always exactly one.
pub fn staggered<N: SimNode>() -> Scenario<N> {
    Scenario::new("election-staggered")
        .orgs(1)
        .peers_per_org(4)
        .gossip(election_gossip())
        .step(Op::AwaitConverged { within: secs(30) })
        .step(Op::Custom(Arc::new(|sim: &mut Sim<N>| {
            let mut order: Vec<usize> = (0..sim.len()).collect();
            order.sort_by_key(|&i| std::cmp::Reverse(sim.pki_id(i)));
            let config = gossip_engine::event::ChannelConfig {
                channel: channel_bytes(CHANNEL),
                sequence: 1,
                orgs: vec![(sim.org_id(0), Vec::new())],
            };
            let interval = sim.gossip().election.startup_grace_period
                + sim.gossip().leader_alive_threshold / 2;
            for (k, &i) in order.iter().enumerate() {
                sim.command_in(Duration::ZERO, i, Command::JoinChan(config.clone()));
                sim.run_for(interval);
                let leaders: Vec<usize> = (0..sim.len()).filter(|&j| leads(sim, j)).collect();
                let joined = &order[..=k];
                let ok = leaders.len() == 1
                    && joined.contains(&leaders[0])
                    && (leaders[0] == order[0] || sim.pki_id(leaders[0]) < sim.pki_id(order[0]));
                if !ok {
                    return Err(format!(
                        "after {} joins ({joined:?}): leaders {leaders:?}",
                        k + 1
                    ));
                }
            }
            Ok(())
        })))
}

/// The leader yields (its deliver client lost the orderer): another peer leads within one
/// follower round and an election, and the yielder stays out while the new leader declares.
pub fn yield_hands_over<N: SimNode>() -> Scenario<N> {
    simultaneous(election_gossip(), 1, 4, Duration::ZERO).step(Op::Custom(Arc::new(
        |sim: &mut Sim<N>| {
            let leader = (0..sim.len()).find(|&i| leads(sim, i)).ok_or("no leader")?;
            sim.command_in(
                Duration::ZERO,
                leader,
                Command::YieldLeadership(channel_bytes(CHANNEL)),
            );
            sim.run_for(secs(26));
            for _ in 0..60 {
                let leaders: Vec<usize> = (0..sim.len()).filter(|&j| leads(sim, j)).collect();
                if leaders.len() != 1 || leaders[0] == leader {
                    return Err(format!("after {leader} yielded: leaders {leaders:?}"));
                }
                sim.run_for(secs(1));
            }
            Ok(())
        },
    )))
}

/// Partition and heal: each side has exactly one leader while split; after the heal the higher of
/// the two steps down on the lower one's declaration (the only way a leader steps down), leaving
/// exactly one, the lower.
pub fn partition_heal<N: SimNode>() -> Scenario<N> {
    simultaneous(election_gossip(), 1, 4, Duration::ZERO)
        .step(Op::Partition(vec![vec![0, 1]]))
        .step(Op::Custom(Arc::new(|sim: &mut Sim<N>| {
            let sides = [[0usize, 1], [2, 3]];
            let one_per_side = |sim: &Sim<N>| {
                sides
                    .iter()
                    .map(|side| side.iter().copied().filter(|&i| leads(sim, i)).collect())
                    .collect::<Vec<Vec<usize>>>()
            };
            let ok = sim.run_until(secs(60), Duration::from_millis(500), |s| {
                one_per_side(s).iter().all(|l| l.len() == 1)
            });
            if !ok {
                return Err(format!("partitioned: leaders {:?}", one_per_side(sim)));
            }
            for _ in 0..20 {
                sim.run_for(secs(1));
                if !one_per_side(sim).iter().all(|l| l.len() == 1) {
                    return Err(format!("partitioned: leaders {:?}", one_per_side(sim)));
                }
            }
            let pair: Vec<usize> = one_per_side(sim).concat();
            let lower = *pair.iter().min_by_key(|&&i| sim.pki_id(i)).ok_or("none")?;
            sim.heal_in(Duration::ZERO);
            let ok = sim.run_until(secs(90), Duration::from_millis(500), |s| {
                (0..s.len()).filter(|&i| leads(s, i)).eq([lower])
            });
            let leaders: Vec<usize> = (0..sim.len()).filter(|&i| leads(sim, i)).collect();
            ok.then_some(())
                .ok_or(format!("healed: leaders {leaders:?}, expected [{lower}]"))
        })))
}
