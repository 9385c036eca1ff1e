//! One scenario suite, two transports (ARCHITECTURE.md, testing tier 3). A [`Scenario`]'s steps
//! are played by one runner against a [`Cluster`]: the deterministic simulator ([`Sim`], in
//! [`sim`]) or a real cluster of `GossipHandle`s over tonic with mutual TLS on 127.0.0.1
//! ([`tonic`]). Liveness conditions (convergence, death, metadata, channel views, blocks) are
//! written once here, over what both transports can answer.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use gossip_engine::event::{AnchorPeer, ChannelConfig, Command};
use gossip_engine::types::{OrgId, PkiId};
use gossip_proto::gossip::GossipMessage;

use crate::checkers::Checkers;
use crate::node::channel_bytes;
use crate::scenario::{LeaderRule, Nodes, Op, Scenario, block};
use crate::sim::PeerSpec;

pub mod sim;
pub mod tonic;

/// Spacing of the blocks of one `InjectBlocks` step.
pub const INJECT_SPACING: Duration = Duration::from_millis(20);

/// What the runner needs from a transport. Queries take `&mut self`: the tonic cluster folds what
/// its peers reported (events, verified messages, transmits) into its checkers as it goes.
pub trait Cluster<N> {
    /// Number of nodes.
    fn node_count(&self) -> usize;
    /// The setup of node `i`.
    fn spec(&self, i: usize) -> &PeerSpec;
    /// Whether node `i` is up.
    fn is_up(&self, i: usize) -> bool;
    /// PKI-ID of node `i`.
    fn pki_id(&self, i: usize) -> PkiId;
    /// Node index of a PKI-ID.
    fn index_of(&self, pki_id: &PkiId) -> Option<usize>;
    /// Time since the start (simulated or real).
    fn elapsed(&self) -> Duration;
    /// How often liveness conditions are evaluated.
    fn check_every(&self) -> Duration;
    /// The invariant checkers (joined channels, delivered blocks, violations).
    fn checkers(&self) -> &Checkers;
    /// Records a liveness failure.
    fn fail(&mut self, what: String);
    /// The anchor-peer entry of node `i` (its external endpoint).
    fn anchor(&self, i: usize) -> AnchorPeer;
    /// Lets time pass.
    fn wait(&mut self, duration: Duration);
    /// Hands every command to its node at once, then lets a moment pass.
    fn commands(&mut self, commands: Vec<(usize, Command)>);
    /// `from` gossips each message, [`INJECT_SPACING`] apart.
    fn inject(&mut self, from: usize, messages: Vec<GossipMessage>);
    /// Crashes node `i`.
    fn crash(&mut self, i: usize);
    /// Restarts a crashed node `i` (fresh node, same identity and endpoints).
    fn restart(&mut self, i: usize);
    /// PKI-IDs of node `i`'s alive members, sorted; `None` when it is down.
    fn alive_members(&mut self, i: usize) -> Option<Vec<PkiId>>;
    /// PKI-IDs of node `i`'s dead members, sorted; `None` when it is down.
    fn dead_members(&mut self, i: usize) -> Option<Vec<PkiId>>;
    /// PKI-IDs of the peers node `i` knows in `channel`, sorted; `None` when it is down.
    fn channel_members(&mut self, i: usize, channel: &[u8]) -> Option<Vec<PkiId>>;
    /// Metadata of the newest alive message about `about` that `to` accepted.
    fn alive_metadata(&self, to: usize, about: usize) -> Option<Bytes>;
    /// Whether node `i` leads `channel` (its own answer); `None` when it is down or not joined.
    fn is_leader(&mut self, i: usize, channel: &[u8]) -> Option<bool>;
    /// Cuts the network into `groups` (nodes in no group form one more group), replacing any
    /// previous partition ([`Op::Partition`]).
    fn partition(&mut self, groups: &[Vec<usize>]);
    /// Removes every partition ([`Op::Heal`]).
    fn heal(&mut self);
    /// Whether nodes `a` and `b` are on the same side of the current partition (always without
    /// one).
    fn same_side(&self, a: usize, b: usize) -> bool;
    /// Plays a sim-only step (see [`Op::sim_only_reason`]).
    fn sim_only(&mut self, step: &Op<N>) -> Result<(), String>;
}

/// Plays `scenario`'s steps on `cluster`, stopping at the first broken invariant; a failed
/// liveness step is recorded as a violation.
pub fn run_steps<N, C: Cluster<N>>(scenario: &Scenario<N>, cluster: &mut C) {
    let mut runner = Runner {
        scenario,
        injected: BTreeMap::new(),
    };
    for step in scenario.steps() {
        if let Err(what) = runner.apply(cluster, step) {
            cluster.fail(what);
        }
        if !cluster.checkers().violations().is_empty() {
            break;
        }
    }
}

/// Evaluates `cond` every [`Cluster::check_every`] until it holds or `within` passed; returns
/// its last answer.
fn await_cond<N, C: Cluster<N>>(
    cluster: &mut C,
    within: Duration,
    mut cond: impl FnMut(&mut C) -> Result<(), String>,
) -> Result<(), String> {
    let deadline = cluster.elapsed() + within;
    loop {
        let answer = cond(cluster);
        let now = cluster.elapsed();
        if answer.is_ok() || now >= deadline {
            return answer;
        }
        cluster.wait(cluster.check_every().min(deadline - now));
    }
}

/// The mutable state of one run: blocks injected per channel.
struct Runner<'a, N> {
    scenario: &'a Scenario<N>,
    injected: BTreeMap<&'static str, Vec<u64>>,
}

impl<N> Runner<'_, N> {
    fn apply<C: Cluster<N>>(&mut self, c: &mut C, step: &Op<N>) -> Result<(), String> {
        match step {
            Op::Wait(d) => c.wait(*d),
            Op::JoinChan { channel, nodes } => {
                let config = self.channel_config(c, channel, nodes);
                let commands = self.scenario.nodes(nodes).into_iter();
                c.commands(
                    commands
                        .map(|n| (n, Command::JoinChan(config.clone())))
                        .collect(),
                );
            }
            Op::InjectBlocks {
                from,
                channel,
                count,
            } => {
                let seqs = self.injected.entry(channel).or_default();
                let first = seqs.last().map_or(self.scenario.first_seq(), |s| s + 1);
                seqs.extend(first..first + count);
                c.inject(
                    *from,
                    (first..first + count)
                        .map(|seq| block(channel, seq))
                        .collect(),
                );
            }
            Op::Crash(n) => c.crash(*n),
            Op::Restart(n) => c.restart(*n),
            Op::UpdateMetadata { node, metadata } => {
                let command = Command::UpdateMetadata(Bytes::from_static(metadata));
                c.commands(vec![(*node, command)]);
            }
            Op::AwaitConverged { within } => await_cond(c, *within, |c| converged(c))?,
            Op::AwaitDead { node, within } => {
                let target = c.pki_id(*node);
                await_cond(c, *within, |c| {
                    let holders: Vec<usize> = (0..c.node_count())
                        .filter(|&i| i != *node)
                        .filter(|&i| c.alive_members(i).is_some_and(|a| a.contains(&target)))
                        .collect();
                    check(holders.is_empty(), || {
                        format!("node {node} still alive at {holders:?} after {within:?}")
                    })
                })?;
            }
            Op::AwaitDeadListed { node, within } => {
                let target = c.pki_id(*node);
                await_cond(c, *within, |c| {
                    let missing: Vec<usize> = (0..c.node_count())
                        .filter(|&i| i != *node)
                        .filter(|&i| c.dead_members(i).is_some_and(|d| !d.contains(&target)))
                        .collect();
                    check(missing.is_empty(), || {
                        format!("node {node} not in the dead list of {missing:?}")
                    })
                })?;
            }
            Op::AwaitMetadata {
                node,
                metadata,
                within,
            } => await_cond(c, *within, |c| {
                let lagging: Vec<usize> = (0..c.node_count())
                    .filter(|&i| i != *node && c.is_up(i))
                    .filter(|&i| c.alive_metadata(i, *node).as_deref() != Some(*metadata))
                    .collect();
                check(lagging.is_empty(), || {
                    format!("metadata update of node {node} not received by {lagging:?}")
                })
            })?,
            Op::AwaitChannelViews { within } => await_cond(c, *within, |c| channel_views(c))?,
            Op::AwaitLeaders {
                channel,
                rule,
                within,
            } => await_cond(c, *within, |c| leaders_follow(c, channel, rule))?,
            Op::CrashLeaders { channel } => {
                let ch = channel_bytes(channel);
                let leaders: Vec<usize> = (0..c.node_count())
                    .filter(|&i| c.is_leader(i, &ch) == Some(true))
                    .collect();
                check(!leaders.is_empty(), || {
                    format!("no leader of {channel} to crash")
                })?;
                leaders.into_iter().for_each(|i| c.crash(i));
            }
            Op::HoldLeaders {
                channel,
                rule,
                duration,
            } => {
                let end = c.elapsed() + *duration;
                while c.elapsed() < end {
                    leaders_follow(c, channel, rule)?;
                    let step = c.check_every().min(end - c.elapsed());
                    c.wait(step);
                }
                leaders_follow(c, channel, rule)?;
            }
            Op::ExpectCrossOrgSubjects(kinds) => {
                let seen = c.checkers().cross_org_subjects();
                let missing: Vec<&str> = kinds
                    .iter()
                    .copied()
                    .filter(|k| !seen.contains_key(k))
                    .collect();
                check(missing.is_empty(), || {
                    format!("the disclosure checker saw no cross-org {missing:?} (saw {seen:?})")
                })?;
            }
            Op::AwaitBlocks { channel, within } => {
                let want = self.injected.get(channel).cloned().unwrap_or_default();
                let got = await_cond(c, *within, |c| blocks_complete(c, channel, &want));
                if self.scenario.is_safety_only() {
                    return Ok(());
                }
                return got.map_err(|e| match self.scenario.repair_needed() {
                    Some(why) => format!("{e} (needs repair: {why})"),
                    None => e,
                });
            }
            Op::Partition(groups) => c.partition(groups),
            Op::Heal => c.heal(),
            Op::SetLink(_) | Op::Custom(_) => c.sim_only(step)?,
        }
        Ok(())
    }

    fn channel_config<C: Cluster<N>>(&self, c: &C, channel: &str, nodes: &Nodes) -> ChannelConfig {
        let mut orgs: BTreeMap<usize, Vec<AnchorPeer>> = BTreeMap::new();
        for n in self.scenario.nodes(nodes) {
            let spec = c.spec(n);
            let anchors = orgs.entry(spec.org).or_default();
            if spec.external {
                anchors.push(c.anchor(n));
            }
        }
        ChannelConfig {
            channel: channel_bytes(channel),
            sequence: 1,
            orgs: orgs
                .into_iter()
                .map(|(org, anchors)| (OrgId::from(format!("Org{}MSP", org + 1)), anchors))
                .collect(),
        }
    }
}

fn check(holds: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if holds { Ok(()) } else { Err(what()) }
}

fn names<N, C: Cluster<N>>(c: &C, ids: &[PkiId]) -> Vec<usize> {
    ids.iter()
        .map(|p| c.index_of(p).unwrap_or(usize::MAX))
        .collect()
}

/// Whom node `i` should see alive: up peers on its side of a partition, of its org, and of orgs
/// it shares a channel with when both have external endpoints.
fn expected_view<N, C: Cluster<N>>(c: &C, i: usize) -> Vec<PkiId> {
    let me = c.spec(i);
    let joined = |n: usize| c.checkers().joined(n);
    let mut view: Vec<PkiId> = (0..c.node_count())
        .filter(|&j| j != i && c.is_up(j) && c.same_side(i, j))
        .filter(|&j| {
            let other = c.spec(j);
            other.org == me.org
                || (me.external
                    && other.external
                    && joined(i).iter().any(|ch| joined(j).contains(ch)))
        })
        .map(|j| c.pki_id(j))
        .collect();
    view.sort_unstable();
    view
}

/// Every up node's alive view is exactly [`expected_view`].
fn converged<N, C: Cluster<N>>(c: &mut C) -> Result<(), String> {
    for i in 0..c.node_count() {
        let Some(view) = c.alive_members(i) else {
            continue;
        };
        let expected = expected_view(c, i);
        if view != expected {
            return Err(format!(
                "not converged at {:?}: node {i} sees {:?}, expected {:?}",
                c.elapsed(),
                names(c, &view),
                names(c, &expected)
            ));
        }
    }
    Ok(())
}

/// Every up node's view of each channel it joined is exactly the other up members of the channel
/// it may see: its org's, and, when both publish an external endpoint, the other orgs'.
fn channel_views<N, C: Cluster<N>>(c: &mut C) -> Result<(), String> {
    for i in 0..c.node_count() {
        if !c.is_up(i) {
            continue;
        }
        let me = c.spec(i).clone();
        let channels: Vec<Bytes> = c.checkers().joined(i).iter().cloned().collect();
        for channel in channels {
            let expected: Vec<usize> = (0..c.node_count())
                .filter(|&j| j != i && c.is_up(j) && c.checkers().joined(j).contains(&channel))
                .filter(|&j| {
                    let other = c.spec(j);
                    other.org == me.org || (me.external && other.external)
                })
                .collect();
            let view = c.channel_members(i, &channel).unwrap_or_default();
            let mut seen = names(c, &view);
            seen.sort_unstable();
            if seen != expected {
                return Err(format!(
                    "channel {} not settled at {:?}: node {i} sees {seen:?}, expected {expected:?}",
                    String::from_utf8_lossy(&channel),
                    c.elapsed()
                ));
            }
        }
    }
    Ok(())
}

/// Among the up nodes joined to `channel`, each org's leaders follow `rule`.
fn leaders_follow<N, C: Cluster<N>>(
    c: &mut C,
    channel: &str,
    rule: &LeaderRule,
) -> Result<(), String> {
    let ch = channel_bytes(channel);
    let mut orgs: BTreeMap<usize, (Vec<usize>, Vec<usize>)> = BTreeMap::new();
    for i in 0..c.node_count() {
        let Some(leader) = c.is_leader(i, &ch) else {
            continue;
        };
        let (members, leaders) = orgs.entry(c.spec(i).org).or_default();
        members.push(i);
        if leader {
            leaders.push(i);
        }
    }
    for (org, (members, leaders)) in &orgs {
        let lowest = members.iter().copied().min_by_key(|&i| c.pki_id(i));
        let ok = leaders.len() == 1
            && match rule {
                LeaderRule::Lowest => lowest == Some(leaders[0]),
                LeaderRule::One => true,
                LeaderRule::NoneOf(nodes) => !nodes.contains(&leaders[0]),
                LeaderRule::Nodes(nodes) => nodes
                    .iter()
                    .filter(|&&n| c.spec(n).org == *org)
                    .all(|&n| n == leaders[0]),
            };
        if !ok {
            return Err(format!(
                "leaders of {channel} in org {org} at {:?}: {leaders:?} of {members:?} \
                 (lowest {lowest:?}), expected {rule:?}",
                c.elapsed()
            ));
        }
    }
    Ok(())
}

/// Every up node joined to `channel` delivered every block of `want`.
fn blocks_complete<N, C: Cluster<N>>(c: &C, channel: &str, want: &[u64]) -> Result<(), String> {
    let ch = channel_bytes(channel);
    for i in (0..c.node_count()).filter(|&i| c.is_up(i)) {
        if !c.checkers().joined(i).contains(&ch) {
            continue;
        }
        let got = c.checkers().delivered(i, channel);
        let missing: Vec<u64> = want
            .iter()
            .filter(|s| !got.is_some_and(|g| g.contains(s)))
            .copied()
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "blocks of {channel} missing at {:?}: node {i} lacks {missing:?}",
                c.elapsed()
            ));
        }
    }
    Ok(())
}

/// Defines, per `name: scenario, seeds;`, a module `name` with two tests: `sim` runs the scenario
/// on the simulator over `seeds` ([`run_seeds`](crate::scenario::run_seeds)), `tonic` runs it
/// once on a tonic cluster ([`run_tonic`](tonic::run_tonic)). Attributes (docs) go on the module.
/// The scenario expression is evaluated in the module, which sees its parent's items.
#[macro_export]
macro_rules! on_both_transports {
    ($($(#[$attr:meta])* $name:ident: $scenario:expr, $seeds:expr;)+) => {$(
        $(#[$attr])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[test]
            fn sim() {
                $crate::scenario::run_seeds(&$scenario, $seeds);
            }

            #[test]
            fn tonic() {
                $crate::transport::tonic::run_tonic(&$scenario);
            }
        }
    )+};
}
