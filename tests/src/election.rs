//! Leader election scenarios (spec 3.10, Fabric's `gossip/election` tests on the whole stack):
//! simultaneous start, staggered start (TestInitPeersStartAtIntervals), the leader's death, yield,
//! and partition and heal. The simulator runs them with Fabric's default timings on virtual time
//! over many seeds; the tonic versions ([`fast_election`], [`tonic_elections`]) shorten the
//! election's timings so a real-time run stays short.
//!
//! Three of them need more than the scenario DSL's steps (joins in PKI-ID order, a yield by
//! whoever leads, a partition checked side by side): an [`Election`] is a scenario's plain steps
//! plus a check written over any [`Cluster`], played on the simulator as a custom step and on
//! tonic after the steps ([`try_run_tonic_then`]).

use std::cmp::Reverse;
use std::sync::Arc;
use std::time::Duration;

use gossip_engine::config::{ElectionConfig, GossipConfig};
use gossip_engine::event::{ChannelConfig, Command};
use gossip_engine::types::OrgId;

use crate::node::{SimNode, channel_bytes};
use crate::scenario::{LeaderRule, Nodes, Op, Scenario, secs};
use crate::sim::Sim;
use crate::transport::Cluster;
use crate::transport::tonic::{TonicOutcome, run_tonic_then, try_run_tonic_then};

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
    let mut scenario = simultaneous(gossip, 1, 4, Duration::ZERO);
    scenario.name = "election-leader-death";
    scenario
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

/// A check over whichever cluster plays an [`Election`]; an `Err` is a liveness failure.
pub type ClusterCheck<N> = Arc<dyn Fn(&mut dyn Cluster<N>) -> Result<(), String> + Send + Sync>;

/// An election scenario for both transports: its plain steps, then (when it has one) a check over
/// the cluster that played them.
pub struct Election<N> {
    /// The plain steps (they run on either transport).
    pub scenario: Scenario<N>,
    /// What follows them.
    pub then: Option<ClusterCheck<N>>,
}

impl<N> From<Scenario<N>> for Election<N> {
    fn from(scenario: Scenario<N>) -> Self {
        Self {
            scenario,
            then: None,
        }
    }
}

impl<N> Election<N> {
    /// The scenario's name.
    pub fn name(&self) -> &'static str {
        self.scenario.name
    }

    /// Runs once on a tonic cluster (see [`try_run_tonic_then`]).
    pub fn try_on_tonic(&self) -> Result<TonicOutcome, String> {
        try_run_tonic_then(&self.scenario, |cluster| match &self.then {
            Some(check) => check(cluster),
            None => Ok(()),
        })
    }

    /// Runs once on a tonic cluster; panics with `TONIC FAILED scenario=<name>` and the
    /// violations on a broken invariant (see [`run_tonic_then`]).
    pub fn on_tonic(&self) -> TonicOutcome {
        run_tonic_then(&self.scenario, |cluster| match &self.then {
            Some(check) => check(cluster),
            None => Ok(()),
        })
    }
}

impl<N: SimNode + 'static> Election<N> {
    /// The scenario for the simulator: the steps, then the check as a custom step.
    pub fn on_sim(self) -> Scenario<N> {
        match self.then {
            Some(check) => {
                (self.scenario).step(Op::Custom(Arc::new(move |sim: &mut Sim<N>| check(sim))))
            }
            None => self.scenario,
        }
    }
}

/// Every election scenario at [`fast_election`] timings, for tonic runs: simultaneous start
/// (one org of three), the leader's death, staggered start, yield, partition and heal.
pub fn tonic_elections<N: 'static>() -> Vec<Election<N>> {
    let fast = fast_election();
    vec![
        simultaneous(fast.clone(), 1, 3, secs(3)).into(),
        leader_death(fast.clone(), secs(2)).into(),
        staggered_with(fast.clone()),
        yield_with(fast.clone(), secs(2)),
        partition_heal_with(fast.clone(), fast.alive_expiration_timeout),
    ]
}

/// The nodes that lead [`CHANNEL`] by their own answers (down or not joined: not leading).
fn leaders<N>(c: &mut dyn Cluster<N>) -> Vec<usize> {
    let channel = channel_bytes(CHANNEL);
    (0..c.node_count())
        .filter(|&i| c.is_leader(i, &channel) == Some(true))
        .collect()
}

/// Evaluates `holds` every check period until it is true or `within` passed; returns whether
/// it held.
fn wait_until<N>(
    c: &mut dyn Cluster<N>,
    within: Duration,
    mut holds: impl FnMut(&mut dyn Cluster<N>) -> bool,
) -> bool {
    let deadline = c.elapsed() + within;
    loop {
        if holds(c) {
            return true;
        }
        let now = c.elapsed();
        if now >= deadline {
            return false;
        }
        c.wait(c.check_every().min(deadline - now));
    }
}

/// Checks `ok` now and every check period for `hold`; the first failure ends it.
fn hold_for<N>(
    c: &mut dyn Cluster<N>,
    hold: Duration,
    mut ok: impl FnMut(&mut dyn Cluster<N>) -> Result<(), String>,
) -> Result<(), String> {
    let end = c.elapsed() + hold;
    loop {
        ok(c)?;
        let left = end.saturating_sub(c.elapsed());
        if left.is_zero() {
            return Ok(());
        }
        c.wait(c.check_every().min(left));
    }
}

/// Fabric's TestInitPeersStartAtIntervals on the whole stack, with Fabric's timings (see
/// [`staggered_with`]).
pub fn staggered<N: SimNode + 'static>() -> Scenario<N> {
    staggered_with(election_gossip()).on_sim()
}

/// Fabric's TestInitPeersStartAtIntervals on the whole stack: peers join the channel
/// `startupGracePeriod + leaderAliveThreshold / 2` apart (20 s with Fabric's timings), the
/// highest PKI-ID first. There is exactly one leader after each join settles.
///
/// Unlike Fabric's unit test (instant membership), a joiner's view fills only with the StateInfo
/// exchange (2–4 s with Fabric's timings), and its first election ends 6 s after its join: when
/// the incumbent's declaration reaches it in between, the first to start keeps the leadership;
/// otherwise the joiner (lower) declares and the incumbent steps down. fabric-node's README
/// describes the same for Fabric peers ("No pre-emption"). So the leader is the first to start or
/// a lower joiner, and there is always exactly one.
pub fn staggered_with<N: 'static>(gossip: GossipConfig) -> Election<N> {
    let interval = gossip.election.startup_grace_period + gossip.leader_alive_threshold / 2;
    let scenario = Scenario::new("election-staggered")
        .orgs(1)
        .peers_per_org(4)
        .gossip(gossip)
        .step(Op::AwaitConverged { within: secs(30) });
    let check = move |c: &mut dyn Cluster<N>| {
        let mut order: Vec<usize> = (0..c.node_count()).collect();
        order.sort_by_key(|&i| Reverse(c.pki_id(i)));
        let config = ChannelConfig {
            channel: channel_bytes(CHANNEL),
            sequence: 1,
            orgs: vec![(
                OrgId::from(format!("Org{}MSP", c.spec(0).org + 1)),
                Vec::new(),
            )],
        };
        for (k, &i) in order.iter().enumerate() {
            c.commands(vec![(i, Command::JoinChan(config.clone()))]);
            c.wait(interval);
            let leaders = leaders(c);
            let joined = &order[..=k];
            let ok = leaders.len() == 1
                && joined.contains(&leaders[0])
                && (leaders[0] == order[0] || c.pki_id(leaders[0]) < c.pki_id(order[0]));
            if !ok {
                return Err(format!(
                    "after {} joins ({joined:?}) at {:?}: leaders {leaders:?}",
                    k + 1,
                    c.elapsed()
                ));
            }
        }
        Ok(())
    };
    Election {
        scenario,
        then: Some(Arc::new(check)),
    }
}

/// The leader yields, with Fabric's timings (see [`yield_with`]).
pub fn yield_hands_over<N: SimNode + 'static>() -> Scenario<N> {
    yield_with(election_gossip(), secs(60)).on_sim()
}

/// The leader yields (its deliver client lost the orderer): another peer leads within
/// `2 × leaderAliveThreshold + leaderElectionDuration` and a second (26 s with Fabric's timings),
/// and for `hold` after that there is exactly that one leader, not the yielder.
pub fn yield_with<N: 'static>(gossip: GossipConfig, hold: Duration) -> Election<N> {
    let handover =
        2 * gossip.leader_alive_threshold + gossip.election.leader_election_duration + secs(1);
    let mut scenario = simultaneous(gossip, 1, 4, Duration::ZERO);
    scenario.name = "election-yield";
    let check = move |c: &mut dyn Cluster<N>| {
        let leader = *leaders(c).first().ok_or("no leader to yield")?;
        c.commands(vec![(
            leader,
            Command::YieldLeadership(channel_bytes(CHANNEL)),
        )]);
        c.wait(handover);
        hold_for(c, hold, |c| {
            let now = leaders(c);
            if now.len() != 1 || now[0] == leader {
                return Err(format!(
                    "{:?} after {leader} yielded: leaders {now:?}",
                    c.elapsed()
                ));
            }
            Ok(())
        })
    };
    Election {
        scenario,
        then: Some(Arc::new(check)),
    }
}

/// Partition and heal, with Fabric's timings (see [`partition_heal_with`]).
pub fn partition_heal<N: SimNode + 'static>() -> Scenario<N> {
    partition_heal_with(election_gossip(), secs(20)).on_sim()
}

/// Partition and heal: nodes {0, 1} and {2, 3} split; each side has exactly one leader within
/// 60 s and keeps it for `split_hold`; after the heal the higher of the two steps down on the
/// lower one's declaration (the only way a leader steps down) within 90 s, leaving exactly one,
/// the lower. A `split_hold` past `alive_expiration_timeout` (as with Fabric's timings, where the
/// leaderless side takes 25 s to elect) lets each side's members expire on the other, so the heal
/// also needs the views to recover.
pub fn partition_heal_with<N: 'static>(gossip: GossipConfig, split_hold: Duration) -> Election<N> {
    let mut scenario = simultaneous(gossip, 1, 4, Duration::ZERO);
    scenario.name = "election-partition-heal";
    let check = move |c: &mut dyn Cluster<N>| {
        let sides = [[0usize, 1], [2, 3]];
        let per_side = |c: &mut dyn Cluster<N>| {
            let leaders = leaders(c);
            sides.map(|side| -> Vec<usize> {
                side.into_iter().filter(|i| leaders.contains(i)).collect()
            })
        };
        let one_each = |l: &[Vec<usize>; 2]| l.iter().all(|side| side.len() == 1);
        c.partition(&[sides[0].to_vec()]);
        if !wait_until(c, secs(60), |c| one_each(&per_side(c))) {
            return Err(format!(
                "{:?} partitioned: leaders {:?}",
                c.elapsed(),
                per_side(c)
            ));
        }
        hold_for(c, split_hold, |c| {
            let now = per_side(c);
            if !one_each(&now) {
                return Err(format!("{:?} partitioned: leaders {now:?}", c.elapsed()));
            }
            Ok(())
        })?;
        let pair = per_side(c).concat();
        let lower = *pair.iter().min_by_key(|&&i| c.pki_id(i)).ok_or("none")?;
        c.heal();
        if wait_until(c, secs(90), |c| leaders(c) == [lower]) {
            return Ok(());
        }
        Err(format!(
            "{:?} healed: leaders {:?}, expected [{lower}]",
            c.elapsed(),
            leaders(c)
        ))
    };
    Election {
        scenario,
        then: Some(Arc::new(check)),
    }
}
