//! One benchmark run: lay out and launch the cluster, converge, inject on schedule while applying
//! faults and sampling resources, then hand everything measured to the report.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use serde_json::Value;

use super::run_feed::{cpu_readings, record, sample, wait_until};
use crate::cluster::control::{self, ControlClient, ControlError, Feed};
use crate::cluster::launcher::{Launcher, NodeHandle};
use crate::cluster::{self, Cluster};
use crate::commands::faults::FaultRunner;
pub use crate::commands::faults::{Action, fault_plan};
use crate::commands::reliability::{self, Reliability};
use crate::measure::collect::{Collector, Schedule};
use crate::measure::inject::{Injection, Injector, mono_now, unix_now_ns};
use crate::measure::leader::{self, LeaderFollower, LeaderLog};
use crate::measure::membership::{Heights, MembershipPoller};
use crate::measure::procfs::{CpuWindow, ProcSample};
use crate::measure::traffic::ByteCounters;
use crate::scenario::Scenario;

/// A run failed before it could measure.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Layout.
    #[error(transparent)]
    Cluster(#[from] cluster::ClusterError),
    /// Launch.
    #[error(transparent)]
    Launch(#[from] crate::cluster::launcher::LaunchError),
    /// Control.
    #[error(transparent)]
    Control(#[from] ControlError),
    /// Other IO.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A node exited early.
    #[error("node {0} exited during start-up; see {1}")]
    NodeExited(usize, String),
}

/// Resources of every node at one moment.
#[derive(Clone, Debug)]
pub struct Sample {
    /// Seconds since block 1 was due (negative before).
    pub t_s: f64,
    /// Per node, `None` while it is down.
    pub procs: Vec<Option<ProcSample>>,
    /// Per node, its tokio runtime's alive tasks (`gossip_engine_tokio_tasks_alive` of its
    /// `/metrics`, scraped right after the `/proc` sample); `None` while it is down, without an
    /// operations endpoint (fabric-node) or when it did not answer in time.
    pub tokio_tasks: Vec<Option<u64>>,
    /// Bytes through the proxies so far (0 without proxies).
    pub proxy_bytes: u64,
    /// Per node, its wire counters (`comm.wire_bytes_*` of its stats; `None` where it reports
    /// none or did not answer), read right after the `/proc` sample. Only the samples that bound
    /// the injection window have them (stats requests cost the nodes CPU); `None` elsewhere.
    pub wire: Option<Vec<Option<ByteCounters>>>,
}

/// Something the fault schedule did, for the report.
#[derive(Clone, Debug, serde::Serialize)]
pub struct FaultEvent {
    /// Seconds since block 1 was due.
    pub t_s: f64,
    /// What happened.
    pub what: String,
}

/// Everything measured.
pub struct RunOutput {
    /// The scenario.
    pub scenario: Scenario,
    /// The schedule.
    pub schedule: Schedule,
    /// Deliveries.
    pub collector: Collector,
    /// Injection outcomes.
    pub injections: Vec<Injection>,
    /// Resource samples.
    pub samples: Vec<Sample>,
    /// Index in `samples` of the one taken when injection ended (one interval after the last
    /// block was due); `None` when the run stopped before that.
    pub inject_end_sample: Option<usize>,
    /// Node stats just before injection, then at the end (Null where unreadable).
    pub stats_before: Vec<Value>,
    /// See `stats_before`.
    pub stats_after: Vec<Value>,
    /// Stats of a quiet window of `quiet_s` before injection (background traffic estimate).
    pub stats_quiet_start: Vec<Value>,
    /// Length of the quiet window, s (the scenario's `idle_s`).
    pub quiet_s: f64,
    /// Per node, CPU over the quiet window (`None` where unreadable or the node was down).
    pub idle_cpu: Vec<Option<CpuWindow>>,
    /// Per node, its stats read just before each of its kills (`Null` where unreadable): a
    /// restarted node's counters start again from zero.
    pub stats_at_kill: Vec<Vec<Value>>,
    /// Seconds between `stats_before` and `stats_after`.
    pub stats_window_s: f64,
    /// Seconds from launch to convergence.
    pub converge_s: f64,
    /// Whether membership and channel views converged within the limit.
    pub converged: bool,
    /// Faults applied.
    pub faults: Vec<FaultEvent>,
    /// Node names.
    pub node_names: Vec<String>,
    /// Node log files.
    pub logs: Vec<std::path::PathBuf>,
    /// Per node, the binary it ran.
    pub node_bins: Vec<std::path::PathBuf>,
    /// Per node, its kind ([`crate::report::kinds::node_kind_label`]): `gossip-node`, `fabric-node`, ...
    pub node_kinds: Vec<String>,
    /// Per node, the `implementation` field of its stats, when it reports one.
    pub node_implementations: Vec<Option<String>>,
    /// Membership views after faults, and floods (run.json's `membership` and `floods`).
    pub reliability: Reliability,
    /// With leader election on: what following the leaders recorded.
    pub leader: Option<LeaderLog>,
}

/// Progress reporting (a bar on a terminal, lines under CI).
pub trait Progress {
    /// Injection progress: blocks due so far of `total`, deliveries so far.
    fn tick(&mut self, due: u64, total: u64, deliveries: u64);
    /// A phase message.
    fn phase(&mut self, msg: &str);
}

/// Connects to a control port, retrying every 100 ms for up to `limit`.
pub(crate) fn connect_retry(
    addr: SocketAddr,
    limit: Duration,
) -> Result<ControlClient, ControlError> {
    let start = unix_now_ns();
    let mut last = None;
    for _ in 0..10_000 {
        match ControlClient::connect(addr, Duration::from_secs(5)) {
            Ok(c) => return Ok(c),
            Err(e) => last = Some(e),
        }
        if unix_now_ns() - start > limit.as_nanos() as u64 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(last.unwrap_or(ControlError::Closed(addr)))
}

/// The anchor peers every node joins its channels with: each org's leader.
pub(crate) fn anchors(c: &Cluster, s: &Scenario) -> Vec<(String, SocketAddr)> {
    (0..s.orgs.min(s.nodes))
        .map(|o| (c.nodes[o].mspid.clone(), c.nodes[o].endpoint))
        .collect()
}

fn join_all(client: &mut ControlClient, c: &Cluster, s: &Scenario) -> Result<(), ControlError> {
    for ch in &s.channels {
        client.join_channel(ch, &c.orgs, &anchors(c, s))?;
    }
    Ok(())
}

/// How long the nodes get to exit after the `shutdown` op before they are killed.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Asks every node to shut down (a clean exit flushes logs and lets profilers write their
/// output), then kills whatever still runs after [`SHUTDOWN_GRACE`].
fn stop_cluster(clients: &mut [ControlClient], handles: &mut [Option<Box<dyn NodeHandle>>]) {
    for c in clients.iter_mut() {
        // A node that is gone or does not answer is killed below.
        let _ = c.shutdown();
    }
    let deadline = mono_now() + SHUTDOWN_GRACE;
    while mono_now() < deadline && handles.iter_mut().flatten().any(|h| h.is_running()) {
        std::thread::sleep(Duration::from_millis(20));
    }
    for h in handles.iter_mut().flatten() {
        h.kill();
    }
}

pub(super) fn stats_all(clients: &mut [ControlClient]) -> Vec<Value> {
    clients
        .iter_mut()
        .map(|c| c.stats().unwrap_or(Value::Null))
        .collect()
}

/// Adds `"ops_metrics":{"gossip_comm_messages_sent":N,...}` to each gossip-node's final stats,
/// read from its operations endpoint's `/metrics` (Fabric's counter names); a node whose
/// endpoint does not answer gets none.
fn add_ops_counters(cluster: &Cluster, stats: &mut [Value]) {
    for (n, s) in cluster.nodes.iter().zip(stats.iter_mut()) {
        let (Some(addr), Value::Object(map)) = (n.ops, s) else {
            continue;
        };
        if let Ok(text) = cluster::ops::scrape(addr) {
            let counters = cluster::ops::counters(&text, cluster::ops::COUNTERS_READ);
            map.insert("ops_metrics".into(), serde_json::json!(counters));
        }
    }
}

/// Runs `s` with node processes from `launcher`; `work` receives PKI, configs and logs.
pub fn run(
    s: &Scenario,
    launcher: &mut dyn Launcher,
    bin: &Path,
    work: &Path,
    progress: &mut dyn Progress,
) -> Result<RunOutput, RunError> {
    let launch_ns = unix_now_ns();
    progress.phase(&format!("generating PKI and configs for {} nodes", s.nodes));
    let cluster = cluster::build(s, work, bin, (launch_ns / 1_000_000_000) as i64 - 3600)?;
    let mut handles: Vec<Option<Box<dyn NodeHandle>>> = Vec::new();
    for n in &cluster.nodes {
        if n.index > 0 {
            std::thread::sleep(Duration::from_millis(s.start_stagger_ms));
        }
        let h = launcher.start(&n.spec)?;
        cluster.links.set_pid(n.index, h.pid());
        handles.push(Some(h));
    }
    progress.phase("waiting for control ports");
    let mut clients = Vec::new();
    for n in &cluster.nodes {
        match connect_retry(n.control, Duration::from_secs(30)) {
            Ok(c) => clients.push(c),
            Err(e) => {
                if let Some(h) = handles[n.index].as_mut()
                    && !h.is_running()
                {
                    return Err(RunError::NodeExited(
                        n.index,
                        n.spec.log.display().to_string(),
                    ));
                }
                return Err(e.into());
            }
        }
    }
    progress.phase("converging: membership, join channel, channel views");
    let deadline = launch_ns + (s.converge_timeout_s * 1e9) as u64;
    let org_size = |k: usize| (0..s.nodes).filter(|&j| s.org_of(j) == s.org_of(k)).count();
    wait_until(deadline, || {
        clients
            .iter_mut()
            .enumerate()
            .all(|(k, c)| c.peers().is_ok_and(|(alive, _)| alive + 1 >= org_size(k)))
    });
    for c in clients.iter_mut() {
        join_all(c, &cluster, s)?;
    }
    let converged = wait_until(deadline, || {
        clients.iter_mut().all(|c| {
            c.peers().is_ok_and(|(alive, _)| alive + 1 >= s.nodes)
                && s.channels
                    .iter()
                    .all(|ch| c.peers_of_channel(ch).is_ok_and(|p| p + 1 >= s.nodes))
        })
    });
    let converge_s = (unix_now_ns() - launch_ns) as f64 / 1e9;
    if !converged {
        let views: Vec<String> = clients
            .iter_mut()
            .enumerate()
            .map(|(k, c)| {
                let alive = c.peers().map_or(-1, |(a, _)| a as i64);
                let chans: Vec<i64> = s
                    .channels
                    .iter()
                    .map(|ch| c.peers_of_channel(ch).map_or(-1, |p| p as i64))
                    .collect();
                format!("node {k}: alive {alive}, channel peers {chans:?}")
            })
            .collect();
        progress.phase(&format!(
            "views at the convergence limit (want alive and channel peers = {}): {}",
            s.nodes - 1,
            views.join("; ")
        ));
    }
    progress.phase(&format!(
        "{} after {converge_s:.1} s",
        if converged {
            "converged"
        } else {
            "NOT converged (continuing)"
        }
    ));

    let (tx, rx) = mpsc::channel::<Feed>();
    for n in &cluster.nodes {
        control::subscribe(n.index, n.control, tx.clone())?;
    }
    if s.leader_election() {
        progress.phase("leader election: waiting for a leader in every org");
        let limit = unix_now_ns() + (s.converge_timeout_s * 1e9) as u64;
        let missing = leader::wait_for_leaders(&mut clients, s, limit);
        if !missing.is_empty() {
            progress.phase(&format!(
                "no leader yet (channel, org): {missing:?}; blocks for them are held"
            ));
        }
    }
    // A quiet window before injection estimates background (non-data) traffic and measures idle
    // CPU. Alive messages come every aliveTimeInterval (5 s by default): a window of one period
    // averages them. The CPU readings sit inside the stats requests, which cost the nodes CPU.
    let quiet_s = s.idle_s;
    let stats_quiet_start = stats_all(&mut clients);
    let node_kinds: Vec<String> = stats_quiet_start
        .iter()
        .enumerate()
        .map(|(k, st)| crate::report::kinds::node_kind_label(s.kind_of(k), st))
        .collect();
    let node_implementations: Vec<Option<String>> = stats_quiet_start
        .iter()
        .map(|st| st["implementation"].as_str().map(String::from))
        .collect();
    let cpu_idle_start = cpu_readings(&handles);
    std::thread::sleep(Duration::from_secs_f64(quiet_s));
    let cpu_idle_end = cpu_readings(&handles);
    let stats_before = stats_all(&mut clients);
    let idle_cpu = cpu_idle_start
        .iter()
        .zip(&cpu_idle_end)
        .map(|(a, b)| CpuWindow::between(a.as_ref()?, b.as_ref()?))
        .collect();
    let before_ns = unix_now_ns();

    let schedule = Schedule {
        start_unix_ns: unix_now_ns() + 300_000_000,
        interval_ns: s.interval_ns(),
        jitter_ns: ((s.arrival_jitter_ms * 1e6) as u64).min(s.interval_ns().saturating_sub(1)),
        blocks: s.block_count(),
        warmup_blocks: s.warmup_blocks(),
    };
    let mut collector = Collector::new(schedule, s.nodes, s.channels.clone(), s.injector_nodes())
        .with_groups(crate::report::kinds::kind_groups(&node_kinds).1);
    let mut heights = if s.membership_poll_ms > 0 && !s.faults.partitions.is_empty() {
        Heights::new(s.channels.len())
    } else {
        Heights::off()
    };
    let poller = match s.membership_poll_ms {
        0 => None,
        ms => Some(MembershipPoller::start(
            cluster.nodes.iter().map(|n| n.control).collect(),
            Duration::from_millis(ms),
        )?),
    };
    let stop = Arc::new(AtomicBool::new(false));
    let mut injectors = Vec::new();
    for k in s.injector_nodes() {
        injectors.push(Injector::start(
            k,
            cluster.nodes[k].control,
            s.channels.clone(),
            schedule,
            s.block_size_bytes,
            stop.clone(),
        )?);
    }
    let mut follower = match s.leader_election() {
        true => Some(LeaderFollower::start(
            s,
            cluster.nodes.iter().map(|n| n.control).collect(),
            schedule,
            s.block_size_bytes,
        )?),
        false => None,
    };
    let mut plan: Vec<(u64, Action)> = fault_plan(s)
        .into_iter()
        .map(|(t, a)| (t + schedule.start_unix_ns, a))
        .collect();
    let mut faults = Vec::new();
    let mut samples = Vec::new();
    let last_due = schedule.due_ns(schedule.blocks);
    let end_ns = last_due + (s.drain_s * 1e9) as u64;
    let t_of = |ns: u64| (ns as f64 - schedule.start_unix_ns as f64) / 1e9;
    let mut next_sample = schedule.start_unix_ns - s.sample_ms * 1_000_000;
    // The injection window's CPU and bytes end here, not after the drain.
    let inject_end_ns = last_due + schedule.interval_ns;
    let mut inject_end_sample = None;
    let mut window_opened = false;
    let mut fault_runner = FaultRunner {
        cluster: &cluster,
        launcher,
        tx: &tx,
        scenario: s,
        rejoins: Vec::new(),
        stats_at_kill: vec![Vec::new(); s.nodes],
        floods: Vec::new(),
        now_s: 0.0,
    };
    // Main loop: deliveries, faults, samples, progress; bounded by `end_ns`.
    for _ in 0..100_000_000u64 {
        let now = unix_now_ns();
        if now >= end_ns {
            break;
        }
        if now > last_due
            && collector.all_delivered()
            && injectors.iter().all(Injector::finished)
            && plan.is_empty()
            && !collector.catching_up()
        {
            break;
        }
        while let Ok(feed) = rx.recv_timeout(Duration::from_millis(20)) {
            record(
                &mut collector,
                &mut heights,
                &s.channels,
                follower.as_ref(),
                feed,
            );
            if unix_now_ns() >= now + 50_000_000 {
                break;
            }
        }
        let now = unix_now_ns();
        while plan.first().is_some_and(|(at, _)| *at <= now) {
            let (_, action) = plan.remove(0);
            fault_runner.now_s = t_of(now);
            let what = fault_runner.apply(&action, &mut handles, &mut clients, &mut collector);
            faults.push(FaultEvent {
                t_s: t_of(now),
                what,
            });
        }
        if let Some(f) = follower.as_mut() {
            for h in f.take_injected() {
                collector.record_injected(h.node, h.channel, h.seq, h.taken_unix_ns);
            }
            for (kill, node) in f.due_kills(now) {
                let what = match node {
                    Some(k) => {
                        if let Some(r) = kill.restart_after_s {
                            plan.push((now + (r * 1e9) as u64, Action::Restart(k)));
                            plan.sort_by_key(|(t, _)| *t);
                        }
                        let a = Action::Kill(k);
                        let what =
                            fault_runner.apply(&a, &mut handles, &mut clients, &mut collector);
                        format!("{what}: the leader of org {}", kill.org)
                    }
                    None => format!("leader kill of org {} skipped: no leader known", kill.org),
                };
                faults.push(FaultEvent {
                    t_s: t_of(now),
                    what,
                });
            }
        }
        if now >= inject_end_ns && inject_end_sample.is_none() {
            inject_end_sample = Some(samples.len());
            samples.push(sample(&handles, &cluster, t_of(now), Some(&mut clients)));
        }
        if now >= next_sample {
            // The first sample at or after block 1's due time opens the injection window: it
            // reads the wire counters too.
            let t = t_of(now);
            let opens_window = t >= 0.0 && !window_opened;
            window_opened |= opens_window;
            samples.push(sample(
                &handles,
                &cluster,
                t,
                opens_window.then_some(&mut clients[..]),
            ));
            next_sample += s.sample_ms * 1_000_000;
            let due = if now < schedule.start_unix_ns {
                0
            } else {
                ((now - schedule.start_unix_ns) / schedule.interval_ns + 1).min(schedule.blocks)
            };
            progress.tick(due, schedule.blocks, collector.measured_deliveries());
        }
    }
    stop.store(true, Ordering::SeqCst);
    let mut injections = Vec::new();
    for i in injectors {
        injections.extend(i.join());
    }
    // A restarted node's new control connection replaces the dead one, for the final stats.
    for t in std::mem::take(&mut fault_runner.rejoins) {
        if let Ok(Some((k, client))) = t.join() {
            clients[k] = client;
        }
    }
    while let Ok(feed) = rx.try_recv() {
        record(
            &mut collector,
            &mut heights,
            &s.channels,
            follower.as_ref(),
            feed,
        );
    }
    let mut floods = Vec::new();
    for p in std::mem::take(&mut fault_runner.floods) {
        floods.push(p.finish(Duration::from_secs(5)));
    }
    let leader_log = follower.map(|f| {
        let (handed, log, fresh) = f.finish();
        for h in fresh {
            collector.record_injected(h.node, h.channel, h.seq, h.taken_unix_ns);
        }
        injections.extend(handed);
        log
    });
    samples.push(sample(
        &handles,
        &cluster,
        t_of(unix_now_ns()),
        Some(&mut clients),
    ));
    let mut stats_after = stats_all(&mut clients);
    add_ops_counters(&cluster, &mut stats_after);
    let stats_window_s = (unix_now_ns() - before_ns) as f64 / 1e9;
    let end_ns = unix_now_ns();
    let membership = poller.map_or(Value::Null, |p| {
        let polls = p.finish();
        reliability::membership_json(s, &cluster, &schedule, &faults, &polls, &heights, end_ns)
    });
    let floods = floods
        .into_iter()
        .map(|(i, at_s, report)| {
            let f = &s.faults.floods[i];
            serde_json::json!({
                "flood": f,
                "started_at_s": at_s,
                "flooder": report.as_ref().ok(),
                "flooder_error": report.as_ref().err(),
                "rss": reliability::flood_rss(&samples, f.victim, at_s, f.duration_s),
            })
        })
        .collect();
    let rss_slope_mib_per_h = reliability::rss_slopes(&samples, s.nodes, s.warmup_s);
    stop_cluster(&mut clients, &mut handles);
    Ok(RunOutput {
        scenario: s.clone(),
        schedule,
        collector,
        injections,
        samples,
        inject_end_sample,
        stats_before,
        stats_after,
        stats_at_kill: fault_runner.stats_at_kill,
        stats_quiet_start,
        quiet_s,
        idle_cpu,
        stats_window_s,
        converge_s,
        converged,
        faults,
        node_names: cluster.nodes.iter().map(|n| n.name.clone()).collect(),
        logs: cluster.nodes.iter().map(|n| n.spec.log.clone()).collect(),
        node_bins: cluster.nodes.iter().map(|n| n.spec.bin.clone()).collect(),
        node_kinds,
        node_implementations,
        reliability: Reliability {
            membership,
            floods,
            rss_slope_mib_per_h,
            proxy_unidentified_connections: (!cluster.proxies.is_empty())
                .then(|| cluster.links.unidentified_connections()),
        },
        leader: leader_log,
    })
}
