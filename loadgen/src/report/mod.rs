//! Turning a [`RunOutput`] into `results/<name>/`: `run.json` (schema `loadgen.run/v1`),
//! `timeseries.csv`, `latency.hgrm`, `report.html`, and the summary table.

pub mod compare;
pub mod html;
pub mod kills;
pub mod kinds;
pub mod leader;
pub mod resources;
pub mod stages;
pub mod summary;
pub mod timeseries;

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Map, Value, json};

use crate::commands::run::{RunOutput, Sample};
use crate::measure::collect::{Collector, PATHS, hgrm, path_name, quantile_ms as ms};
use crate::measure::procfs::Machine;
use crate::measure::traffic::{ByteCounters, TrafficInput, node_traffic, traffic_figures};
use crate::report::kinds::{KindInputs, NodeCost, cost_figures, kinds_json};
pub use crate::report::summary::summary;
use crate::report::timeseries::proxied;
pub use crate::report::timeseries::{SecondRow, timeseries, timeseries_csv};

/// Schema tag of run.json.
pub const SCHEMA: &str = "loadgen.run/v1";

/// Flattens numeric leaves of a JSON tree into dotted keys.
pub fn flatten(v: &Value, prefix: &str, out: &mut BTreeMap<String, f64>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(v, &key, out);
            }
        }
        Value::Number(n) => {
            if let Some(f) = n.as_f64() {
                out.insert(prefix.to_string(), f);
            }
        }
        _ => {}
    }
}

fn stat_delta(before: &[Value], after: &[Value]) -> Vec<BTreeMap<String, f64>> {
    before
        .iter()
        .zip(after)
        .map(|(b, a)| node_stat_delta(b, &[], a))
        .collect()
}

/// The growth of one node's counters from `before` to `after`, across its kills: the process
/// killed first grew from `before` to the stats read just before its kill, each restarted one
/// from zero to the stats before its own kill or to `after`. Stats unreadable at a kill (`Null`)
/// lose that process's part.
fn node_stat_delta(before: &Value, at_kills: &[Value], after: &Value) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    let mut start = before;
    for end in at_kills.iter().chain([after]) {
        let (mut fs, mut fe) = (BTreeMap::new(), BTreeMap::new());
        flatten(start, "", &mut fs);
        flatten(end, "", &mut fe);
        for (k, v) in fe {
            *out.entry(k.clone()).or_insert(0.0) += v - fs.get(&k).copied().unwrap_or(0.0);
        }
        start = &Value::Null;
    }
    out
}

/// How the byte figures are measured (run.json's `methods.bytes`).
const BYTES_METHOD: &str = "per node, bytes sent and received over the injection window (as cpu): the growth of comm.wire_bytes_sent / comm.wire_bytes_received of the node's stats (bytes on its gossip connections' sockets, TLS records and handshakes included, control connection not), read right after the /proc samples that bound the window; where a node reports no such counters, wchar / rchar of /proc/<pid>/io (all read/write-like syscalls, logs and control included, recvfrom/sendto missed: not a bound). Per node bytes_source says which, run.json's bytes_source and each kind's say which for the set. bytes_sent_per_peer_per_s / bytes_received_per_peer_per_s: mean over the nodes with a reading, per second of the window; bytes_per_peer_per_s: their sum; bytes_received_per_block_per_receiver: bytes received by the non-injector nodes over the window divided by them and by the blocks (all channels) injected in it, background (alive, state-info) traffic included; bytes_idle_per_peer_per_s: sent + received per second over the quiet window before injection, nodes with wire counters only; proxy_bytes_per_peer_per_s (with the fault proxies): bytes through the proxies / nodes / s, a cross-check";

/// Stats keys that count received data (block) messages, most specific first.
const DATA_RECEIVED_KEYS: &[&str] = &[
    "data_msgs_received",
    "received_data_msgs",
    "received_by_kind.data_msg",
    "received_by_kind.DataMsg",
    "messages_received_by_kind.data_msg",
];

/// The samples bounding the injection window: the first taken at or after block 1's due time, and
/// the one taken when injection ended (one interval after the last block was due), or the last
/// sample when the run stopped before that.
fn injection_window(
    samples: &[Sample],
    inject_end_sample: Option<usize>,
) -> (Option<&Sample>, Option<&Sample>) {
    let first = samples.iter().find(|x| x.t_s >= 0.0).or(samples.first());
    let last = inject_end_sample
        .and_then(|i| samples.get(i))
        .or(samples.last());
    (first, last)
}

/// Latency per arrival path ([`PATHS`]): `deliveries_via_<path>` always, and
/// `latency_via_<path>_p50_ms` / `_p99_ms` when any receipt came that way (a path no block took
/// has no latency, rather than a 0 that reads as fast).
fn path_figures(c: &Collector, put: &mut impl FnMut(&str, f64)) {
    for (via, h) in PATHS.into_iter().zip(&c.by_path) {
        let name = path_name(via);
        put(&format!("deliveries_via_{name}"), h.len() as f64);
        if !h.is_empty() {
            put(&format!("latency_via_{name}_p50_ms"), ms(h, 0.5));
            put(&format!("latency_via_{name}_p99_ms"), ms(h, 0.99));
        }
    }
}

/// The commit the nodes' binary was built from: `runtime.commit` of the first node whose `stats`
/// report one (gossip-node does; fabric-node and older gossip-node builds do not, which is
/// unknown: `None`).
pub fn node_commit(stats: &[Value]) -> Option<&str> {
    stats.iter().find_map(|v| v["runtime"]["commit"].as_str())
}

/// The run.json document. `git_commit` is the nodes' build commit ([`node_commit`]);
/// `loadgen_git` is loadgen's checkout commit at run time, recorded as `loadgen_git_commit`.
pub fn run_json(out: &RunOutput, machine: &Machine, loadgen_git: Option<&str>) -> Value {
    let s = &out.scenario;
    let c = &out.collector;
    let lat = &c.latency;
    let tta = c.time_to_all();
    let window_s = out.stats_window_s.max(1e-3);
    let mut f = Map::new();
    let mut put = |k: &str, v: f64| {
        f.insert(k.into(), json!(v));
    };
    for (name, q) in [("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p999", 0.999)] {
        put(&format!("latency_{name}_ms"), ms(lat, q));
    }
    put("latency_max_ms", lat.max() as f64 / 1000.0);
    put("latency_mean_ms", lat.mean() / 1000.0);
    put("latency_samples", lat.len() as f64);
    put("warmup_latency_p99_ms", ms(&c.warmup_latency, 0.99));
    put("warmup_deliveries", c.warmup_latency.len() as f64);
    put("latency_p99_first_third_ms", ms(&c.thirds[0], 0.99));
    put("latency_p99_last_third_ms", ms(&c.thirds[2], 0.99));
    path_figures(c, &mut put);
    kills::kill_figures(c, &mut put);
    if let Some(log) = &out.leader {
        leader::leader_figures(log, &out.injections, &out.schedule, &mut put);
    }
    stages::stage_figures(&out.stats_after, &mut put);
    crate::commands::reliability::figures(&out.reliability, &mut put);
    let node_resources = resources::node_resources(&out.samples, s.nodes, s.warmup_s);
    resources::resource_figures(&node_resources, &mut put);
    put("time_to_all_p50_ms", ms(&tta, 0.5));
    put("time_to_all_p99_ms", ms(&tta, 0.99));
    put("time_to_all_max_ms", tta.max() as f64 / 1000.0);
    put("completeness", c.completeness());
    put("blocks_measured", c.measured_blocks() as f64);
    put("blocks_complete", c.complete_blocks() as f64);
    put("deliveries_measured", c.measured_deliveries() as f64);
    let injector_nodes = s.injector_nodes();
    let receivers = (0..s.nodes).filter(|n| !injector_nodes.contains(n)).count();
    put(
        "deliveries_expected",
        (c.measured_blocks() * receivers as u64) as f64,
    );
    put("in_order_share", c.in_order_share());
    put("order_violations", c.order_violations as f64);
    put("redeliveries", c.redeliveries as f64);
    let mut lag = crate::measure::collect::new_histogram();
    for i in &out.injections {
        lag.saturating_record((i.sent_ns.saturating_sub(i.due_ns) / 1000).max(1));
    }
    put("inject_lag_p99_ms", ms(&lag, 0.99));
    put(
        "inject_errors",
        out.injections.iter().filter(|i| i.error.is_some()).count() as f64,
    );
    put("blocks_injected", out.injections.len() as f64);
    put("converge_s", out.converge_s);

    // Redundancy: data messages received per receiving peer per block.
    let deltas: Vec<BTreeMap<String, f64>> = (0..s.nodes)
        .map(|k| {
            let at_kills = out.stats_at_kill.get(k).map_or(&[][..], Vec::as_slice);
            let null = Value::Null;
            let (before, after) = (
                out.stats_before.get(k).unwrap_or(&null),
                out.stats_after.get(k).unwrap_or(&null),
            );
            node_stat_delta(before, at_kills, after)
        })
        .collect();
    let quiet = stat_delta(&out.stats_quiet_start, &out.stats_before);
    // Every node counts: injectors receive echoes of their own blocks, which is redundancy too.
    let receivers: Vec<usize> = (0..s.nodes).collect();
    let blocks = (s.block_count() * s.channels.len() as u64).max(1) as f64;
    let key = DATA_RECEIVED_KEYS
        .iter()
        .find(|k| deltas.iter().any(|d| d.contains_key(**k)));
    // Per receiving peer per block, with the background (quiet-window) rate subtracted.
    let per_peer_per_block = |k: &str| -> f64 {
        let total: f64 = receivers
            .iter()
            .map(|&r| {
                let d = deltas[r].get(k).copied().unwrap_or(0.0);
                let bg = quiet[r].get(k).copied().unwrap_or(0.0) / out.quiet_s.max(1e-3);
                (d - bg * window_s).max(0.0)
            })
            .sum();
        total / (receivers.len().max(1) as f64 * blocks)
    };
    let duplicates = per_peer_per_block("comm.rejects.duplicate");
    // Upper bound: every message received (accepted or duplicate) in the window, no subtraction.
    let raw: f64 = receivers
        .iter()
        .map(|&r| {
            let d = &deltas[r];
            d.get("comm.messages_received").copied().unwrap_or(0.0)
                + d.get("comm.rejects.duplicate").copied().unwrap_or(0.0)
        })
        .sum();
    put(
        "msgs_received_per_peer_per_block_upper",
        raw / (receivers.len().max(1) as f64 * blocks),
    );
    put("duplicates_per_peer_per_block", duplicates);
    let (method, copies) = match key {
        Some(k) => {
            let total: f64 = receivers
                .iter()
                .map(|&r| deltas[r].get(*k).copied().unwrap_or(0.0))
                .sum();
            (
                format!("Δ{k} over the injection window"),
                total / (receivers.len().max(1) as f64 * blocks),
            )
        }
        None => (
            format!(
                "(Δcomm.messages_received + Δcomm.rejects.duplicate) over the injection window, each minus its background rate in a {}s quiet window before it, per node per block (channels × blocks). Duplicates are rejected at ingress, before messages_received counts; the background subtraction removes alive/state-info traffic. An estimate: the node has no per-kind receive counter",
                out.quiet_s
            ),
            per_peer_per_block("comm.messages_received") + duplicates,
        ),
    };
    put(
        "stale_drops_per_peer_per_block",
        per_peer_per_block("node.dropped.Stale"),
    );
    put("copies_per_peer_per_block", copies);

    // CPU and bytes over the injection window (not the drain after it), peak RSS over the run.
    let (first, last) = injection_window(&out.samples, out.inject_end_sample);
    let window = last
        .map_or(1.0, |l| l.t_s - first.map_or(0.0, |f| f.t_s))
        .max(1e-3);
    if proxied(&out.samples)
        && let (Some(a), Some(b)) = (first, last)
    {
        let proxy_bytes = b.proxy_bytes.saturating_sub(a.proxy_bytes);
        put(
            "proxy_bytes_per_peer_per_s",
            proxy_bytes as f64 / s.nodes as f64 / window,
        );
    }
    let wire_at = |x: Option<&Sample>, k: usize| {
        x.and_then(|x| x.wire.as_ref())
            .and_then(|w| w.get(k).copied().flatten())
    };
    let wire_of = |v: &[Value], k: usize| v.get(k).and_then(ByteCounters::from_stats);
    let mut nodes = Vec::new();
    let (mut costs, mut traffic) = (Vec::new(), Vec::new());
    let (mut anon_max, mut pss_peaks) = (0u64, Vec::new());
    for k in 0..s.nodes {
        let a = first.and_then(|x| x.procs.get(k).copied().flatten());
        let b = last.and_then(|x| x.procs.get(k).copied().flatten());
        let node_samples = || {
            out.samples
                .iter()
                .filter_map(move |x| x.procs.get(k).copied().flatten())
        };
        let peak = node_samples().map(|p| p.peak_rss_bytes).max().unwrap_or(0);
        let anon = node_samples().map(|p| p.rss_anon_bytes).max().unwrap_or(0);
        let pss = node_samples().filter_map(|p| p.pss_bytes).max();
        let cpu = match (a, b) {
            (Some(a), Some(b)) => (b.cpu_s - a.cpu_s).max(0.0),
            _ => 0.0,
        };
        let idle = out.idle_cpu.get(k).copied().flatten();
        let t = TrafficInput {
            window: node_traffic(
                (wire_at(first, k), wire_at(last, k)),
                (a.as_ref(), b.as_ref()),
            ),
            idle: node_traffic(
                (
                    wire_of(&out.stats_quiet_start, k),
                    wire_of(&out.stats_before, k),
                ),
                (None, None),
            ),
            receiver: !injector_nodes.contains(&k),
        };
        costs.push(NodeCost {
            cpu_s_window: cpu,
            cpu_pct_idle: idle.map(|w| w.pct_of_core()),
            peak_rss_bytes: peak,
        });
        traffic.push(t);
        anon_max = anon_max.max(anon);
        pss_peaks.extend(pss);
        let h = &c.per_node[k];
        nodes.push(json!({
            "index": k,
            "name": out.node_names.get(k),
            "kind": out.node_kinds.get(k),
            "implementation": out.node_implementations.get(k),
            "bin": out.node_bins.get(k),
            "injector": injector_nodes.contains(&k),
            "cpu_s_window": cpu,
            "cpu_s_lifetime": b.map_or(0.0, |p| p.cpu_s),
            "cpu_pct_idle": idle.map(|w| w.pct_of_core()),
            "peak_rss_bytes": peak,
            "rss_anon_bytes_max": anon,
            "pss_bytes_max": pss,
            "bytes_source": t.window.map(|w| w.source.as_str()),
            "bytes_sent_window": t.window.map(|w| w.bytes.sent_bytes),
            "bytes_received_window": t.window.map(|w| w.bytes.received_bytes),
            "latency_p50_ms": ms(h, 0.5),
            "latency_p99_ms": ms(h, 0.99),
            "latency_samples": h.len(),
            "blocks_received_measured": c.delivered.get(k),
            "blocks_delivered_in_order_measured": c.delivered_in_order.get(k),
            "deliveries_via": c.per_node_via.get(k).map(kills::via_json),
            "kills": c.kills().iter().filter(|x| x.node == k).count(),
            "resources": node_resources.get(k).map(|r| r.to_json()),
            "stats_delta": deltas.get(k),
        }));
    }
    let blocks_in_window = s.block_count() * s.channels.len() as u64;
    cost_figures(&costs, window, &mut f);
    let traffic_all = traffic_figures(&traffic, window, out.quiet_s, blocks_in_window);
    traffic_all.put(&mut f);
    let mut put = |k: &str, v: f64| {
        f.insert(k.into(), json!(v));
    };
    put("rss_anon_mib_max", anon_max as f64 / 1048576.0);
    // Nodes whose smaps_rollup was never readable are left out; no figure when none was.
    if !pss_peaks.is_empty() {
        put(
            "pss_mib_mean",
            pss_peaks.iter().sum::<u64>() as f64 / pss_peaks.len() as f64 / 1048576.0,
        );
    }
    put("blocks_complete_per_s", c.complete_blocks() as f64 / window);
    let idle_source = match out.idle_cpu.iter().flatten().next().map(|w| w.source) {
        Some(crate::measure::procfs::CpuSource::StatTicks) => {
            "utime+stime ticks of /proc/<pid>/stat (10 ms resolution; schedstat was unreadable)"
        }
        _ => {
            "the first field of /proc/<pid>/task/<tid>/schedstat (se.sum_exec_runtime, ns), per thread: a thread present at both reads counts its growth, one started in between all of its run time, one that exited in between nothing (its run time is gone with it)"
        }
    };

    json!({
        "schema": SCHEMA,
        "scenario": s,
        "git_commit": node_commit(&out.stats_before),
        "loadgen_git_commit": loadgen_git,
        "machine": machine,
        "allocator": if cfg!(feature = "system-alloc") { "system" } else { "mimalloc" },
        "node_allocator": out.stats_before.iter().find_map(|v| v.get("allocator").cloned()),
        "node_runtime": out.stats_before.iter().find_map(|v| v.get("runtime").cloned()),
        "converged": out.converged,
        "warmup": {"blocks_per_channel": out.schedule.warmup_blocks, "seconds": s.warmup_s,
                   "note": "warm-up blocks are excluded from every figure except warmup_*"},
        "schedule": {"start_unix_ns": out.schedule.start_unix_ns, "interval_ns": out.schedule.interval_ns, "jitter_ns": out.schedule.jitter_ns,
                     "blocks_per_channel": out.schedule.blocks},
        "methods": {
            "latency": "received_unix_ns of the first receipt (block_received event, before in-order delivery) at each non-injector peer minus the block's scheduled (due) time; HdrHistogram in µs, 3 significant digits",
            "latency_via": "latency split by the path each receipt came by, the via field of its block_received event: push (a gossiped data message), pull (a block pull update), state (a state-transfer response), unknown (no via: fabric-node); deliveries_via_<path> counts the measured receipts, latency_via_<path>_p50_ms/_p99_ms are left out when it is 0",
            "time_to_all": "per complete block: the latest first delivery at any peer minus the due time",
            "completeness": "share of post-warm-up blocks (all channels) held at the end by every non-injector node: received by gossip, and for a killed and restarted node in its ledger at the restart or received after it (a block received before the kill but not committed was lost with the process and must come again)",
            "kills": "per kill: the node's ledger height read at its restart (before it rejoined its channels), the blocks due then it lacked (behind_at_restart_blocks), blocks received before the kill that its ledger did not hold (lost_on_kill_blocks), blocks in its ledger whose events loadgen never saw (held_without_event_blocks, counted as received at the kill); catch_up_ms: from the restart (process start) to its first in-order delivery of a block s at a time t with s >= the newest block due at t, i.e. it held every block injected so far (exact to about one injection interval); receipts_*_via: its block_received events after the restart by path; catch_up_trace: per channel, every 500 ms from the restart until it caught up, [ms since restart, the block it had delivered up to in order, the newest block due]. Latency counts a block's first receipt at a node once, also when a crash lost it and it came again. A node's stats_delta adds up its processes: before injection to its kill, then from zero to the next kill or the end",
            "leader": "with leader election on (gossip.useLeaderElection): loadgen hands every block, as the orderer's deliver service, to each org's current leader (leadership events, and the leader request every second), a new leader first from its ledger_height up to the newest produced, in order; blocks are held while an org has none. A node holds a block handed to it from the moment it took it (no latency recorded). leader.kills: per leader kill, elected_ms (kill to the first leadership news of another node of the org), takeover_ms (kill to the injected_unix_ns of the first block that node took), held_blocks (due meanwhile), replayed_blocks (its first blocks handed over more than one interval late), repair_receipts_pull/_state and repair_blocks (block_received by pull or state transfer at any node from the kill to the next leader kill or the end); leader_takeover_ms and leader_elected_ms are the longest over the kills",
            "in_order_share": "share of (post-warm-up block, node) pairs delivered to the application in order; without pull or state transfer a missed block holds back every later one at that node",
            "copies_per_peer_per_block": method,
            "bytes": BYTES_METHOD,
            "kinds": "a node's kind is the first word of the implementation field of its stats, else what the scenario made it run (gossip-node, or fabric-node for the [fabric] nodes); kinds.<kind>.figures: latency over the deliveries at that kind's receivers, time_to_all and completeness over that kind's receivers (complete when every non-injector node of the kind has the block), CPU, memory and bytes over that kind's nodes, injectors included",
            "cpu": "utime+stime of /proc/<pid>/stat over the injection window: from the first sample at or after block 1's due time to the sample taken one injection interval after the last block's due time (the drain after it is not counted); cpu_pct_per_node_mean divides by that window's wall time",
            "cpu_idle": format!(
                "CPU of each node over the {}s quiet window after convergence and before injection (idle_s: alive and state-info traffic only), read at its start and end (inside the stats requests that bound it) as {idle_source}; divided by the monotonic wall time between the reads, as % of one core. cpu_pct_per_node_idle_mean/_max: mean/max over nodes",
                out.quiet_s
            ),
            "peak_rss": "VmHWM of /proc/<pid>/status",
            "rss_anon": "RssAnon of /proc/<pid>/status (private anonymous memory: heap, stacks), sampled every sample_ms; rss_anon_mib_max is the max over samples and nodes",
            "pss": "Pss of /proc/<pid>/smaps_rollup (resident pages, each shared page such as the binary's code divided among the processes mapping it), sampled every sample_ms; pss_mib_mean is the mean over nodes of each node's max over samples",
            "fd_count": "open file descriptors of each node: the entries of /proc/<pid>/fd, sampled every sample_ms (before that sample's /metrics scrape, so its connection is not counted); fd_count_max is the max over samples and nodes; fd_slope_per_h_max the largest over nodes of each node's least-squares slope over the samples after warm-up (warmup_s), descriptors per hour, given only when they span 10 minutes or more (as rss_slope_mib_per_h_max)",
            "tokio_tasks": "gossip_engine_tokio_tasks_alive of each gossip-node's /metrics (tokio's num_alive_tasks: tasks spawned and not finished, the scrape's own connection task included), scraped every sample_ms right after the /proc sample with a 500 ms limit (each scrape costs the node about 0.2 ms of CPU, mostly the connection's set-up, inside its cpu figures; all nodes are scraped within milliseconds, so the once-a-sample burst can show in the latency tail) (a node slower than that, down, or without an operations endpoint such as fabric-node has no reading in that sample); tokio_tasks_max is the max over samples and nodes, tokio_tasks_slope_per_h_max the largest per-node least-squares slope after warm-up, tasks per hour, for spans of 10 minutes or more; per node in nodes[].resources",
        },
        "figures": f,
        "bytes_source": traffic_all.source,
        "kinds": kinds_json(&KindInputs {
            labels: &out.node_kinds,
            implementations: &out.node_implementations,
            injectors: &injector_nodes,
            collector: c,
            costs: &costs,
            traffic: &traffic,
            window_s: window,
            idle_s: out.quiet_s,
            blocks: blocks_in_window,
        }),
        "nodes": nodes,
        "faults": out.faults,
        "kills": kills::kills_json(c),
        "membership": out.reliability.membership,
        "floods": out.reliability.floods,
        "leader": out.leader.as_ref().map(|log| leader::leader_json(log, &out.injections, &out.schedule)),
        "stats_delta_total": sum_maps(&deltas),
    })
}

fn sum_maps(maps: &[BTreeMap<String, f64>]) -> BTreeMap<String, f64> {
    let mut total = BTreeMap::new();
    for m in maps {
        for (k, v) in m {
            *total.entry(k.clone()).or_insert(0.0) += v;
        }
    }
    total
}

/// Writes `run.json`, `timeseries.csv`, `latency.hgrm` and `report.html` into `dir`.
pub fn write_all(dir: &Path, out: &RunOutput, doc: &Value) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let rows = timeseries(out);
    std::fs::write(
        dir.join("run.json"),
        serde_json::to_string_pretty(doc).unwrap_or_default(),
    )?;
    std::fs::write(dir.join("timeseries.csv"), timeseries_csv(&rows))?;
    std::fs::write(
        dir.join("latency.hgrm"),
        hgrm(&out.collector.latency, 1000.0),
    )?;
    std::fs::write(
        dir.join("report.html"),
        crate::report::html::report(doc, &rows, &out.collector.time_to_all(), &out.node_names),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::control::{Delivery, DeliveryKind};
    use crate::measure::collect::Schedule;
    use gossip_engine::event::Arrival;

    fn at(t_s: f64) -> Sample {
        Sample {
            t_s,
            procs: Vec::new(),
            tokio_tasks: Vec::new(),
            proxy_bytes: 0,
            wire: None,
        }
    }

    #[test]
    fn the_commit_is_the_first_one_a_node_reports() {
        let fabric = json!({"implementation": "fabric-node 2.5"});
        let old_gossip = json!({"runtime": {"worker_threads": 1}});
        let gossip = json!({"runtime": {"worker_threads": 1, "commit": "abc123"}});
        assert_eq!(node_commit(&[]), None);
        assert_eq!(
            node_commit(&[Value::Null, fabric.clone(), old_gossip]),
            None
        );
        assert_eq!(node_commit(&[fabric, Value::Null, gossip]), Some("abc123"));
    }

    #[test]
    fn a_restarted_nodes_stats_delta_adds_up_its_processes() {
        let before = json!({"sent": 10, "fault_dropped": 1});
        let at_kill = json!({"sent": 25, "fault_dropped": 3});
        let after = json!({"sent": 7, "fault_dropped": 2});
        let d = node_stat_delta(&before, std::slice::from_ref(&at_kill), &after);
        assert_eq!(d["sent"], 15.0 + 7.0, "to the kill, then from zero");
        assert_eq!(d["fault_dropped"], 2.0 + 2.0);
        let lost = node_stat_delta(&before, &[Value::Null], &after);
        assert_eq!(lost["sent"], 7.0, "the killed process's part is unknown");
        assert_eq!(node_stat_delta(&before, &[], &at_kill)["sent"], 15.0);
    }

    #[test]
    fn injection_window_ends_at_the_injection_end_sample_not_after_the_drain() {
        let samples: Vec<Sample> = [-1.0, 0.01, 1.0, 2.0, 2.05, 3.0, 4.0]
            .into_iter()
            .map(at)
            .collect();
        let (a, b) = injection_window(&samples, Some(4));
        assert_eq!(a.map(|x| x.t_s), Some(0.01));
        assert_eq!(b.map(|x| x.t_s), Some(2.05));
        // A run that stopped before injection ended: up to its last sample.
        let (_, b) = injection_window(&samples, None);
        assert_eq!(b.map(|x| x.t_s), Some(4.0));
        assert_eq!(injection_window(&[], None).0.map(|x| x.t_s), None);
    }

    #[test]
    fn path_figures_report_each_path_and_leave_out_latency_of_an_unused_one() {
        let schedule = Schedule {
            start_unix_ns: 0,
            interval_ns: 1_000_000_000,
            jitter_ns: 0,
            blocks: 3,
            warmup_blocks: 0,
        };
        let mut c = Collector::new(schedule, 3, vec!["c".into()], vec![0]);
        let got = |node, seq, ms: u64, via| Delivery {
            kind: DeliveryKind::Received,
            node,
            channel: "c".into(),
            seq,
            received_unix_ns: schedule.due_ns(seq) + ms * 1_000_000,
            via,
        };
        for seq in 1..=3 {
            c.record(&got(1, seq, 4, Some(Arrival::Push)));
        }
        c.record(&got(2, 1, 4, Some(Arrival::Push)));
        c.record(&got(2, 2, 1_500, Some(Arrival::Pull)));
        c.record(&got(2, 3, 20, None));
        let mut f = BTreeMap::new();
        path_figures(&c, &mut |k: &str, v: f64| {
            f.insert(k.to_string(), v);
        });
        let near = |k: &str, want: f64| {
            let v = f[k];
            assert!((v - want).abs() <= want * 0.01, "{k}: {v}, want {want}");
        };
        assert_eq!(f["deliveries_via_push"], 4.0);
        assert_eq!(f["deliveries_via_pull"], 1.0);
        assert_eq!(f["deliveries_via_state"], 0.0);
        assert_eq!(f["deliveries_via_unknown"], 1.0);
        near("latency_via_push_p50_ms", 4.0);
        near("latency_via_push_p99_ms", 4.0);
        near("latency_via_pull_p50_ms", 1_500.0);
        near("latency_via_pull_p99_ms", 1_500.0);
        near("latency_via_unknown_p99_ms", 20.0);
        assert!(
            !f.contains_key("latency_via_state_p50_ms")
                && !f.contains_key("latency_via_state_p99_ms"),
            "no block came by state transfer: no latency figure"
        );
        // The summary shows them in the latency group, in path order.
        let figures: serde_json::Map<String, Value> =
            f.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
        let text = summary(&json!({ "figures": figures }));
        let at = |k: &str| text.find(k).unwrap_or_else(|| panic!("{k} in {text}"));
        assert!(at("\nlatency\n") < at("deliveries_via_push"), "{text}");
        assert!(at("deliveries_via_push") < at("latency_via_push_p99_ms"));
        assert!(at("latency_via_push_p99_ms") < at("deliveries_via_pull"));
        assert!(at("latency_via_pull_p99_ms") < at("deliveries_via_state"));
        assert!(at("deliveries_via_state") < at("latency_via_unknown_p50_ms"));
    }
}
