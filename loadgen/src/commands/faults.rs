//! A run's fault schedule and how each step is applied: partitions and heals on the proxies'
//! link table, kills (SIGKILL) and restarts of node processes.
//!
//! A kill reads the node's stats first (its counters die with it), then records the kill in the
//! collector. A restart starts the process again with the same spec and, from a thread (the node
//! needs time to come up): reads its ledger height per channel, hands that to the main loop
//! ([`Feed::Restarted`]), subscribes, and only then rejoins the channels, so that no block event of
//! the new process is missed or comes before the news of the restart.

use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::Value;

use crate::cluster::Cluster;
use crate::cluster::control::{self, ControlClient, Feed};
use crate::cluster::launcher::{Launcher, NodeHandle};
use crate::cluster::proxy::LinkMode;
use crate::commands::reliability::{FloodProc, renew_cert, spare_for, start_flood};
use crate::commands::run::{anchors, connect_retry};
use crate::measure::collect::{Collector, Restarted};
use crate::measure::inject::unix_now_ns;
use crate::scenario::{PartitionMode, Scenario, SpareUse};

/// A scheduled fault action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Set links between the two sides (both directions) to the mode.
    Partition(Vec<usize>, Vec<usize>, LinkMode),
    /// Reopen links between the two sides.
    Heal(Vec<usize>, Vec<usize>),
    /// SIGKILL a node.
    Kill(usize),
    /// Start a killed node again with the same spec.
    Restart(usize),
    /// Start killed node `.0` again with a renewed certificate (the spare of `faults.kills[.1]`).
    RestartRenewed(usize, usize),
    /// Start the hostile flooder of `faults.floods[.0]`.
    Flood(usize),
}

impl Action {
    /// Applies a link action to `links`; `None` for process actions (the runner does those).
    pub fn apply_links(&self, links: &crate::cluster::proxy::Links) -> Option<String> {
        match self {
            Action::Partition(x, y, mode) => {
                links.set_between(x, y, *mode);
                Some(format!("partition {x:?} | {y:?} ({mode:?})"))
            }
            Action::Heal(x, y) => {
                links.set_between(x, y, LinkMode::Open);
                Some(format!("heal {x:?} | {y:?}"))
            }
            _ => None,
        }
    }
}

/// The fault schedule of `s`: (ns after block 1's due time, action), sorted by time.
pub fn fault_plan(s: &Scenario) -> Vec<(u64, Action)> {
    let mut plan = Vec::new();
    let all: Vec<usize> = (0..s.nodes).collect();
    for p in &s.faults.partitions {
        let b: Vec<usize> = if p.b.is_empty() {
            all.iter().copied().filter(|k| !p.a.contains(k)).collect()
        } else {
            p.b.clone()
        };
        let mode = match p.mode {
            PartitionMode::Cut => LinkMode::Cut,
            PartitionMode::BlackHole => LinkMode::BlackHole,
        };
        plan.push((
            secs(p.at_s),
            Action::Partition(p.a.clone(), b.clone(), mode),
        ));
        plan.push((secs(p.at_s + p.duration_s), Action::Heal(p.a.clone(), b)));
    }
    for (i, k) in s.faults.kills.iter().enumerate() {
        plan.push((secs(k.at_s), Action::Kill(k.node)));
        if let Some(r) = k.restart_after_s {
            let restart = if k.renew_cert {
                Action::RestartRenewed(k.node, i)
            } else {
                Action::Restart(k.node)
            };
            plan.push((secs(k.at_s + r), restart));
        }
    }
    for (i, f) in s.faults.floods.iter().enumerate() {
        plan.push((secs(f.at_s), Action::Flood(i)));
    }
    plan.sort_by_key(|(t, _)| *t);
    plan
}

fn secs(s: f64) -> u64 {
    (s.max(0.0) * 1e9) as u64
}

/// A restarted node's control connection, once its rejoin thread has it.
pub type Rejoined = Option<(usize, ControlClient)>;

/// What applying faults needs from the run, and what it leaves for the end of the run.
pub struct FaultRunner<'a> {
    /// The cluster.
    pub cluster: &'a Cluster,
    /// Starts restarted nodes.
    pub launcher: &'a mut dyn Launcher,
    /// The main loop's feed: subscriptions and restarts.
    pub tx: &'a mpsc::Sender<Feed>,
    /// The scenario.
    pub scenario: &'a Scenario,
    /// Rejoin threads of restarted nodes; each ends with the node's new control connection.
    pub rejoins: Vec<JoinHandle<Rejoined>>,
    /// Per node, its stats read just before each kill (`Null` where unreadable).
    pub stats_at_kill: Vec<Vec<Value>>,
    /// Flooders started.
    pub floods: Vec<FloodProc>,
    /// Seconds after block 1's due time, now (for the flooders' start times).
    pub now_s: f64,
}

impl FaultRunner<'_> {
    /// Applies `a`; returns what happened, for the report.
    pub fn apply(
        &mut self,
        a: &Action,
        handles: &mut [Option<Box<dyn NodeHandle>>],
        clients: &mut [ControlClient],
        collector: &mut Collector,
    ) -> String {
        let c = self.cluster;
        if let Some(what) = a.apply_links(&c.links) {
            return what;
        }
        match a {
            Action::Partition(..) | Action::Heal(..) => String::new(),
            Action::Flood(i) => match start_flood(c, self.scenario, *i, self.now_s) {
                Ok(p) => {
                    self.floods.push(p);
                    let f = &self.scenario.faults.floods[*i];
                    format!(
                        "flood node {} at {} msgs/s for {} s",
                        f.victim, f.rate_per_s, f.duration_s
                    )
                }
                Err(e) => format!("flood {i} failed to start: {e}"),
            },
            Action::RestartRenewed(k, i) => {
                let renewed = spare_for(c, SpareUse::RenewedCert(*i))
                    .ok_or_else(|| "no spare identity".to_owned())
                    .and_then(|sp| renew_cert(&c.nodes[*k].dir, sp).map_err(|e| e.to_string()));
                match renewed {
                    Ok(()) => {
                        let what = self.apply(&Action::Restart(*k), handles, clients, collector);
                        format!("{what} with a renewed certificate")
                    }
                    Err(e) => format!("restart node {k} failed: renewing its certificate: {e}"),
                }
            }
            Action::Kill(k) => {
                let stats = clients
                    .get_mut(*k)
                    .and_then(|cl| cl.stats().ok())
                    .unwrap_or(Value::Null);
                self.stats_at_kill[*k].push(stats);
                if let Some(mut h) = handles[*k].take() {
                    h.kill();
                }
                collector.record_kill(*k, unix_now_ns());
                c.links.set_pid(*k, None);
                format!("kill node {k} (SIGKILL)")
            }
            Action::Restart(k) => {
                let started_unix_ns = unix_now_ns();
                match self.launcher.start(&c.nodes[*k].spec) {
                    Ok(h) => {
                        c.links.set_pid(*k, h.pid());
                        handles[*k] = Some(h);
                        self.rejoin(*k, started_unix_ns);
                        format!("restart node {k}")
                    }
                    Err(e) => format!("restart node {k} failed: {e}"),
                }
            }
        }
    }

    /// Starts the thread that brings restarted node `k` back into the run (module docs).
    fn rejoin(&mut self, k: usize, started_unix_ns: u64) {
        let n = &self.cluster.nodes[k];
        let (addr, tx) = (n.control, self.tx.clone());
        let channels = self.scenario.channels.clone();
        let orgs = self.cluster.orgs.clone();
        let anchors = anchors(self.cluster, self.scenario);
        let thread = std::thread::Builder::new()
            .name(format!("rejoin-{k}"))
            .spawn(move || {
                let mut cl = connect_retry(addr, Duration::from_secs(20)).ok()?;
                let heights = channels
                    .iter()
                    .map(|ch| (ch.clone(), cl.ledger_height(ch).ok()))
                    .collect();
                let restarted = Restarted {
                    node: k,
                    started_unix_ns,
                    heights,
                };
                tx.send(Feed::Restarted(restarted)).ok()?;
                let _ = control::subscribe(k, addr, tx);
                for ch in &channels {
                    let _ = cl.join_channel(ch, &orgs, &anchors);
                }
                Some((k, cl))
            });
        if let Ok(t) = thread {
            self.rejoins.push(t);
        }
    }
}
