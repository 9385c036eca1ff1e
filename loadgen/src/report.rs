//! Turning a [`RunOutput`] into `results/<name>/`: `run.json` (schema `loadgen.run/v1`),
//! `timeseries.csv`, `latency.hgrm`, `report.html`, and the summary table.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

use hdrhistogram::Histogram;
use serde_json::{Map, Value, json};

use crate::collect::hgrm;
use crate::procfs::Machine;
use crate::run::{RunOutput, Sample};

/// Schema tag of run.json.
pub const SCHEMA: &str = "loadgen.run/v1";

/// One second of the time series.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SecondRow {
    /// Seconds since block 1 was due.
    pub t_s: u64,
    /// Blocks due in this second (per channel counted once per channel).
    pub blocks_injected: u64,
    /// Deliveries at non-injector peers received in this second.
    pub deliveries: u64,
    /// Median latency of those deliveries, ms.
    pub p50_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Gossip bytes in this second, all nodes (see `bytes_source`).
    pub bytes: u64,
    /// CPU of all nodes, percent of one core.
    pub cpu_pct: f64,
    /// Resident memory of all nodes, bytes.
    pub rss_bytes: u64,
    /// Per node CPU, percent of one core.
    pub node_cpu_pct: Vec<f64>,
    /// Per node RSS, bytes.
    pub node_rss_bytes: Vec<u64>,
}

fn ms(h: &Histogram<u64>, q: f64) -> f64 {
    if h.is_empty() {
        0.0
    } else {
        h.value_at_quantile(q) as f64 / 1000.0
    }
}

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
        .map(|(b, a)| {
            let (mut fb, mut fa) = (BTreeMap::new(), BTreeMap::new());
            flatten(b, "", &mut fb);
            flatten(a, "", &mut fa);
            fa.iter()
                .map(|(k, v)| (k.clone(), v - fb.get(k).copied().unwrap_or(0.0)))
                .collect()
        })
        .collect()
}

/// Stats keys that count received data (block) messages, most specific first.
const DATA_RECEIVED_KEYS: &[&str] = &[
    "data_msgs_received",
    "received_data_msgs",
    "received_by_kind.data_msg",
    "received_by_kind.DataMsg",
    "messages_received_by_kind.data_msg",
];

/// Whether the run's byte counts come from the fault proxies (every gossip byte) rather than
/// `/proc/<pid>/io`.
fn proxied(samples: &[Sample]) -> bool {
    samples.iter().any(|s| s.proxy_bytes > 0)
}

/// Bytes moved between samples `a` and `b`: through the proxies when `proxied`, else the growth
/// of each of the first `nodes` nodes' `rchar + wchar` (nodes down at either sample count 0).
fn bytes_between(a: &Sample, b: &Sample, nodes: usize, proxied: bool) -> u64 {
    if proxied {
        return b.proxy_bytes.saturating_sub(a.proxy_bytes);
    }
    (0..nodes)
        .map(|k| {
            match (
                a.procs.get(k).copied().flatten(),
                b.procs.get(k).copied().flatten(),
            ) {
                (Some(pa), Some(pb)) => pb.io_bytes.saturating_sub(pa.io_bytes),
                _ => 0,
            }
        })
        .sum()
}

/// Builds the time series.
pub fn timeseries(out: &RunOutput) -> Vec<SecondRow> {
    let n = out.scenario.nodes;
    let last_t = out.samples.last().map_or(0.0, |s| s.t_s).max(0.0).ceil() as u64;
    let mut rows: Vec<SecondRow> = (0..=last_t)
        .map(|t| SecondRow {
            t_s: t,
            node_cpu_pct: vec![0.0; n],
            node_rss_bytes: vec![0; n],
            ..SecondRow::default()
        })
        .collect();
    let mut due: BTreeSet<(usize, u64)> = BTreeSet::new();
    for i in &out.injections {
        if due.insert((i.channel, i.seq)) {
            let t = i.due_ns.saturating_sub(out.schedule.start_unix_ns) / 1_000_000_000;
            if let Some(r) = rows.get_mut(t as usize) {
                r.blocks_injected += 1;
            }
        }
    }
    for (t, b) in &out.collector.seconds {
        if let Some(r) = rows.get_mut(*t as usize) {
            r.deliveries = b.deliveries;
            r.p50_ms = ms(&b.latency, 0.5);
            r.p99_ms = ms(&b.latency, 0.99);
        }
    }
    let proxied = proxied(&out.samples);
    for smp in out.samples.iter().filter(|x| x.t_s >= 0.0) {
        if let Some(r) = rows.get_mut(smp.t_s.floor() as usize) {
            for (k, p) in smp.procs.iter().enumerate().take(n) {
                r.node_rss_bytes[k] = p.map_or(0, |p| p.rss_bytes);
            }
            r.rss_bytes = r.node_rss_bytes.iter().sum();
        }
    }
    for w in out.samples.windows(2) {
        let (a, b) = (&w[0], &w[1]);
        if b.t_s < 0.0 {
            continue;
        }
        let dt = (b.t_s - a.t_s).max(1e-3);
        let Some(r) = rows.get_mut(b.t_s.floor() as usize) else {
            continue;
        };
        for k in 0..n {
            let (Some(pa), Some(pb)) = (
                a.procs.get(k).copied().flatten(),
                b.procs.get(k).copied().flatten(),
            ) else {
                continue;
            };
            let cpu = ((pb.cpu_s - pa.cpu_s) / dt * 100.0).max(0.0);
            r.node_cpu_pct[k] = cpu;
            r.node_rss_bytes[k] = pb.rss_bytes;
        }
        r.bytes += bytes_between(a, b, n, proxied);
        r.cpu_pct = r.node_cpu_pct.iter().sum();
        r.rss_bytes = r.node_rss_bytes.iter().sum();
    }
    rows
}

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

/// The run.json document.
pub fn run_json(out: &RunOutput, machine: &Machine, git: Option<&str>) -> Value {
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
    let mut lag = crate::collect::new_histogram();
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
    let deltas = stat_delta(&out.stats_before, &out.stats_after);
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
    let proxied = proxied(&out.samples);
    let bytes_source = if proxied { "proxy" } else { "proc_io" };
    let window = last
        .map_or(1.0, |l| l.t_s - first.map_or(0.0, |f| f.t_s))
        .max(1e-3);
    let bytes = match (first, last) {
        (Some(a), Some(b)) => bytes_between(a, b, s.nodes, proxied),
        _ => 0,
    };
    put(
        "bytes_per_peer_per_s",
        bytes as f64 / s.nodes as f64 / window,
    );
    let mut nodes = Vec::new();
    let (mut cpu_total, mut cpu_max, mut rss_max, mut rss_sum) = (0.0f64, 0.0f64, 0u64, 0u64);
    let (mut anon_max, mut pss_peaks) = (0u64, Vec::new());
    let mut idle_pcts = Vec::new();
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
        idle_pcts.extend(idle.map(|w| w.pct_of_core()));
        cpu_total += cpu;
        cpu_max = cpu_max.max(cpu);
        rss_max = rss_max.max(peak);
        rss_sum += peak;
        anon_max = anon_max.max(anon);
        pss_peaks.extend(pss);
        let h = &c.per_node[k];
        nodes.push(json!({
            "index": k,
            "name": out.node_names.get(k),
            "cpu_s_window": cpu,
            "cpu_s_lifetime": b.map_or(0.0, |p| p.cpu_s),
            "cpu_pct_idle": idle.map(|w| w.pct_of_core()),
            "peak_rss_bytes": peak,
            "rss_anon_bytes_max": anon,
            "pss_bytes_max": pss,
            "latency_p50_ms": ms(h, 0.5),
            "latency_p99_ms": ms(h, 0.99),
            "latency_samples": h.len(),
            "blocks_received_measured": c.delivered.get(k),
            "blocks_delivered_in_order_measured": c.delivered_in_order.get(k),
            "stats_delta": deltas.get(k),
        }));
    }
    put("cpu_s_total", cpu_total);
    put("cpu_s_per_node_max", cpu_max);
    put(
        "cpu_pct_per_node_mean",
        cpu_total / window / s.nodes as f64 * 100.0,
    );
    put("peak_rss_mib_max", rss_max as f64 / 1048576.0);
    put(
        "peak_rss_mib_mean",
        rss_sum as f64 / s.nodes as f64 / 1048576.0,
    );
    put("rss_anon_mib_max", anon_max as f64 / 1048576.0);
    // Nodes whose smaps_rollup was never readable are left out; no figure when none was.
    if !pss_peaks.is_empty() {
        put(
            "pss_mib_mean",
            pss_peaks.iter().sum::<u64>() as f64 / pss_peaks.len() as f64 / 1048576.0,
        );
    }
    if !idle_pcts.is_empty() {
        put(
            "cpu_pct_per_node_idle_mean",
            idle_pcts.iter().sum::<f64>() / idle_pcts.len() as f64,
        );
        put(
            "cpu_pct_per_node_idle_max",
            idle_pcts.iter().copied().fold(0.0, f64::max),
        );
    }
    put("blocks_complete_per_s", c.complete_blocks() as f64 / window);
    let idle_source = match out.idle_cpu.iter().flatten().next().map(|w| w.source) {
        Some(crate::procfs::CpuSource::StatTicks) => {
            "utime+stime ticks of /proc/<pid>/stat (10 ms resolution; schedstat was unreadable)"
        }
        _ => {
            "the first field of /proc/<pid>/task/<tid>/schedstat (se.sum_exec_runtime, ns), per thread: a thread present at both reads counts its growth, one started in between all of its run time, one that exited in between nothing (its run time is gone with it)"
        }
    };

    json!({
        "schema": SCHEMA,
        "scenario": s,
        "git_commit": git,
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
            "time_to_all": "per complete block: the latest first delivery at any peer minus the due time",
            "completeness": "share of post-warm-up blocks (all channels) received by gossip by every non-injector node",
            "in_order_share": "share of (post-warm-up block, node) pairs delivered to the application in order; without pull or state transfer a missed block holds back every later one at that node",
            "copies_per_peer_per_block": method,
            "bytes_per_peer_per_s": match bytes_source {
                "proxy" => "bytes forwarded by the fault proxies (every gossip byte) over the injection window (as cpu), / nodes / seconds",
                _ => "rchar+wchar of /proc/<pid>/io (all socket and file IO of the node, control included) over the injection window (as cpu), / nodes / seconds",
            },
            "cpu": "utime+stime of /proc/<pid>/stat over the injection window: from the first sample at or after block 1's due time to the sample taken one injection interval after the last block's due time (the drain after it is not counted); cpu_pct_per_node_mean divides by that window's wall time",
            "cpu_idle": format!(
                "CPU of each node over the {}s quiet window after convergence and before injection (idle_s: alive and state-info traffic only), read at its start and end (inside the stats requests that bound it) as {idle_source}; divided by the monotonic wall time between the reads, as % of one core. cpu_pct_per_node_idle_mean/_max: mean/max over nodes",
                out.quiet_s
            ),
            "peak_rss": "VmHWM of /proc/<pid>/status",
            "rss_anon": "RssAnon of /proc/<pid>/status (private anonymous memory: heap, stacks), sampled every sample_ms; rss_anon_mib_max is the max over samples and nodes",
            "pss": "Pss of /proc/<pid>/smaps_rollup (resident pages, each shared page such as the binary's code divided among the processes mapping it), sampled every sample_ms; pss_mib_mean is the mean over nodes of each node's max over samples",
        },
        "figures": f,
        "nodes": nodes,
        "faults": out.faults,
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

/// The CSV time series.
pub fn timeseries_csv(rows: &[SecondRow]) -> String {
    let mut out = String::from(
        "t_s,blocks_injected,deliveries,latency_p50_ms,latency_p99_ms,bytes,cpu_pct,rss_bytes\n",
    );
    for r in rows {
        let _ = writeln!(
            out,
            "{},{},{},{:.3},{:.3},{},{:.1},{}",
            r.t_s,
            r.blocks_injected,
            r.deliveries,
            r.p50_ms,
            r.p99_ms,
            r.bytes,
            r.cpu_pct,
            r.rss_bytes
        );
    }
    out
}

/// The summary table printed at the end of a run.
pub fn summary(doc: &Value) -> String {
    let f = &doc["figures"];
    let g = |k: &str| f[k].as_f64().unwrap_or(f64::NAN);
    let mut out = String::new();
    let _ = writeln!(out, "{:<28} {:>12}", "figure", "value");
    for k in [
        "latency_p50_ms",
        "latency_p99_ms",
        "latency_p999_ms",
        "latency_max_ms",
        "latency_p99_first_third_ms",
        "latency_p99_last_third_ms",
        "time_to_all_p50_ms",
        "time_to_all_p99_ms",
        "completeness",
        "blocks_measured",
        "order_violations",
        "copies_per_peer_per_block",
        "bytes_per_peer_per_s",
        "cpu_s_total",
        "cpu_pct_per_node_mean",
        "cpu_pct_per_node_idle_mean",
        "cpu_pct_per_node_idle_max",
        "peak_rss_mib_max",
        "peak_rss_mib_mean",
        "rss_anon_mib_max",
        "pss_mib_mean",
        "inject_lag_p99_ms",
        "converge_s",
    ] {
        let _ = writeln!(out, "{k:<28} {:>12.3}", g(k));
    }
    out
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
        crate::html::report(doc, &rows, &out.collector.time_to_all(), &out.node_names),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(t_s: f64) -> Sample {
        Sample {
            t_s,
            procs: Vec::new(),
            proxy_bytes: 0,
        }
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
}
