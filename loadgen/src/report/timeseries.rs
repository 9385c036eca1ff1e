//! The per-second time series of a run (`timeseries.csv` and the report's plots).

use std::collections::BTreeSet;
use std::fmt::Write as _;

use crate::commands::run::{RunOutput, Sample};
use crate::measure::collect::quantile_ms as ms;

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
    /// Bytes in this second, all nodes: through the fault proxies when they are on, else
    /// `rchar + wchar` of `/proc/<pid>/io` (the shape over time; the byte figures of run.json come
    /// from the nodes' wire counters, which are read only at the ends of the windows).
    pub bytes: u64,
    /// CPU of all nodes, percent of one core.
    pub cpu_pct: f64,
    /// Resident memory of all nodes, bytes.
    pub rss_bytes: u64,
    /// Open file descriptors of all nodes (`/proc/<pid>/fd`), at the second's last sample.
    pub fd_count: u64,
    /// Tokio tasks alive in all nodes that reported them (their `/metrics`), at the second's
    /// last sample; `None` when none did.
    pub tokio_tasks: Option<u64>,
    /// Per node CPU, percent of one core.
    pub node_cpu_pct: Vec<f64>,
    /// Per node RSS, bytes.
    pub node_rss_bytes: Vec<u64>,
}

/// Whether the run's byte counts come from the fault proxies (every gossip byte) rather than
/// `/proc/<pid>/io`.
pub fn proxied(samples: &[Sample]) -> bool {
    samples.iter().any(|s| s.proxy_bytes > 0)
}

/// Bytes moved between samples `a` and `b`: through the proxies when `proxied`, else the growth
/// of each of the first `nodes` nodes' `rchar + wchar` (nodes down at either sample count 0).
pub fn bytes_between(a: &Sample, b: &Sample, nodes: usize, proxied: bool) -> u64 {
    if proxied {
        return b.proxy_bytes.saturating_sub(a.proxy_bytes);
    }
    (0..nodes)
        .map(|k| {
            match (
                a.procs.get(k).copied().flatten(),
                b.procs.get(k).copied().flatten(),
            ) {
                (Some(pa), Some(pb)) => pb.io_bytes().saturating_sub(pa.io_bytes()),
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
            r.fd_count = smp
                .procs
                .iter()
                .take(n)
                .flatten()
                .filter_map(|p| p.fd_count)
                .sum();
            let tasks = smp.tokio_tasks.iter().take(n).flatten();
            r.tokio_tasks = tasks.clone().next().map(|_| tasks.sum());
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

/// The CSV time series.
pub fn timeseries_csv(rows: &[SecondRow]) -> String {
    let mut out = String::from(
        "t_s,blocks_injected,deliveries,latency_p50_ms,latency_p99_ms,bytes,cpu_pct,rss_bytes,fd_count,tokio_tasks\n",
    );
    for r in rows {
        let _ = writeln!(
            out,
            "{},{},{},{:.3},{:.3},{},{:.1},{},{},{}",
            r.t_s,
            r.blocks_injected,
            r.deliveries,
            r.p50_ms,
            r.p99_ms,
            r.bytes,
            r.cpu_pct,
            r.rss_bytes,
            r.fd_count,
            r.tokio_tasks.map_or(String::new(), |n| n.to_string())
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_has_fd_and_task_columns_and_leaves_tasks_empty_without_a_reading() {
        let rows = [
            SecondRow {
                t_s: 0,
                rss_bytes: 1024,
                fd_count: 120,
                tokio_tasks: Some(300),
                ..SecondRow::default()
            },
            SecondRow {
                t_s: 1,
                fd_count: 118,
                ..SecondRow::default()
            },
        ];
        let csv = timeseries_csv(&rows);
        let mut lines = csv.lines();
        assert!(
            lines
                .next()
                .unwrap()
                .ends_with(",rss_bytes,fd_count,tokio_tasks")
        );
        assert_eq!(lines.next(), Some("0,0,0,0.000,0.000,0,0.0,1024,120,300"));
        assert_eq!(lines.next(), Some("1,0,0,0.000,0.000,0,0.0,0,118,"));
    }
}
