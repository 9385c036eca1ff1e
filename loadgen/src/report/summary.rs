//! What a reader came for, first: the headline table (latency, time-to-all, completeness, CPU,
//! memory, bytes; a column per kind of peer when the cluster is mixed), then every other figure in
//! groups (latency, delivery, cost, traffic, harness, other). The printed summary and report.html
//! both show it this way.

use std::fmt::Write as _;

use serde_json::Value;

/// Headline rows: label (with unit), figure name, divisor, decimals.
const HEADLINE: &[(&str, &str, f64, usize)] = &[
    ("latency p50, ms", "latency_p50_ms", 1.0, 2),
    ("latency p99, ms", "latency_p99_ms", 1.0, 2),
    ("time to all p50, ms", "time_to_all_p50_ms", 1.0, 2),
    ("time to all p99, ms", "time_to_all_p99_ms", 1.0, 2),
    ("completeness", "completeness", 1.0, 4),
    ("CPU per node injecting, %", "cpu_pct_per_node_mean", 1.0, 2),
    ("CPU per node idle, %", "cpu_pct_per_node_idle_mean", 1.0, 3),
    ("peak RSS per node mean, MiB", "peak_rss_mib_mean", 1.0, 1),
    ("peak RSS per node max, MiB", "peak_rss_mib_max", 1.0, 1),
    (
        "sent per peer, KiB/s",
        "bytes_sent_per_peer_per_s",
        1024.0,
        1,
    ),
    (
        "received per peer, KiB/s",
        "bytes_received_per_peer_per_s",
        1024.0,
        1,
    ),
    (
        "received per block per receiver, KiB",
        "bytes_received_per_block_per_receiver",
        1024.0,
        1,
    ),
];

/// The groups the other figures are shown in, in order; a figure in none goes to `other`.
const GROUPS: &[(&str, &[&str])] = &[
    (
        "latency",
        &[
            "latency_p50_ms",
            "latency_p90_ms",
            "latency_p99_ms",
            "latency_p999_ms",
            "latency_max_ms",
            "latency_mean_ms",
            "latency_p99_first_third_ms",
            "latency_p99_last_third_ms",
            "latency_samples",
            "deliveries_via_push",
            "latency_via_push_p50_ms",
            "latency_via_push_p99_ms",
            "deliveries_via_pull",
            "latency_via_pull_p50_ms",
            "latency_via_pull_p99_ms",
            "deliveries_via_state",
            "latency_via_state_p50_ms",
            "latency_via_state_p99_ms",
            "deliveries_via_unknown",
            "latency_via_unknown_p50_ms",
            "latency_via_unknown_p99_ms",
            "time_to_all_p50_ms",
            "time_to_all_p99_ms",
            "time_to_all_max_ms",
            "warmup_latency_p99_ms",
            "warmup_deliveries",
        ],
    ),
    (
        "delivery",
        &[
            "completeness",
            "blocks_measured",
            "blocks_complete",
            "blocks_complete_per_s",
            "deliveries_measured",
            "deliveries_expected",
            "in_order_share",
            "order_violations",
            "redeliveries",
        ],
    ),
    (
        "kills",
        &[
            "kills",
            "restarts",
            "restarts_caught_up",
            "catch_up_max_ms",
            "catch_up_mean_ms",
            "lost_on_kill_blocks",
        ],
    ),
    (
        "cost",
        &[
            "cpu_pct_per_node_mean",
            "cpu_s_total",
            "cpu_s_per_node_max",
            "cpu_pct_per_node_idle_mean",
            "cpu_pct_per_node_idle_max",
            "peak_rss_mib_mean",
            "peak_rss_mib_max",
            "rss_anon_mib_max",
            "pss_mib_mean",
        ],
    ),
    (
        "traffic",
        &[
            "bytes_sent_per_peer_per_s",
            "bytes_received_per_peer_per_s",
            "bytes_per_peer_per_s",
            "bytes_received_per_block_per_receiver",
            "bytes_idle_per_peer_per_s",
            "proxy_bytes_per_peer_per_s",
            "copies_per_peer_per_block",
            "duplicates_per_peer_per_block",
            "msgs_received_per_peer_per_block_upper",
            "stale_drops_per_peer_per_block",
        ],
    ),
    (
        "harness",
        &[
            "blocks_injected",
            "inject_errors",
            "inject_lag_p99_ms",
            "converge_s",
        ],
    ),
];

/// The headline table: one column for the whole cluster, plus one per kind of peer when there is
/// more than one kind.
#[derive(Clone, Debug, PartialEq)]
pub struct Headline {
    /// Column titles: `all`, then the kinds (mixed clusters only).
    pub columns: Vec<String>,
    /// Label, then one formatted cell per column (`-` where the figure is absent).
    pub rows: Vec<(String, Vec<String>)>,
}

/// The kinds of run.json's `kinds` (none in files written before it existed).
fn kinds(doc: &Value) -> Vec<(&String, &Value)> {
    doc["kinds"]
        .as_object()
        .map(|m| m.iter().collect())
        .unwrap_or_default()
}

/// The headline table of a run.json document.
pub fn headline(doc: &Value) -> Headline {
    let kinds = kinds(doc);
    let mixed = kinds.len() > 1;
    let mut columns = vec![match (mixed, kinds.first()) {
        (false, Some((k, _))) => format!("all ({k})"),
        _ => "all".to_string(),
    }];
    let mut sources: Vec<(&Value, &Value)> = vec![(&doc["figures"], &doc["bytes_source"])];
    if mixed {
        for (k, v) in &kinds {
            columns.push((*k).clone());
            sources.push((&v["figures"], &v["bytes_source"]));
        }
    }
    let mut rows: Vec<(String, Vec<String>)> = HEADLINE
        .iter()
        .map(|(label, key, div, digits)| {
            let cells = sources
                .iter()
                .map(|(f, _)| {
                    f[*key]
                        .as_f64()
                        .map_or("-".into(), |v| format!("{:.digits$}", v / div))
                })
                .collect();
            ((*label).to_string(), cells)
        })
        .collect();
    rows.push((
        "bytes from".into(),
        sources
            .iter()
            .map(|(_, s)| s.as_str().unwrap_or("-").to_string())
            .collect(),
    ));
    if mixed {
        let mut cells = vec![node_count(&doc["nodes"], doc)];
        for (_, v) in &kinds {
            let n = v["nodes"].as_array().map_or(0, Vec::len);
            let inj = v["injectors"].as_array().map_or(0, Vec::len);
            cells.push(format!("{n} ({inj})"));
        }
        rows.push(("nodes (injectors)".into(), cells));
    }
    Headline { columns, rows }
}

fn node_count(nodes: &Value, doc: &Value) -> String {
    let n = nodes.as_array().map_or(0, Vec::len);
    let inj = nodes.as_array().map_or(0, |a| {
        a.iter()
            .filter(|n| n["injector"].as_bool() == Some(true))
            .count()
    });
    match doc["scenario"]["nodes"].as_u64() {
        Some(_) if n > 0 => format!("{n} ({inj})"),
        _ => "-".into(),
    }
}

/// A figure's value as the tables show it.
pub fn format_value(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else if v.abs() >= 1000.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

/// The overall figures not in the headline, by group (empty groups left out), each group in its
/// listed order, `other` alphabetical.
pub fn figure_groups(doc: &Value) -> Vec<(&'static str, Vec<(String, f64)>)> {
    let Some(figures) = doc["figures"].as_object() else {
        return Vec::new();
    };
    let in_headline = |k: &str| HEADLINE.iter().any(|(_, key, _, _)| *key == k);
    let mut out: Vec<(&'static str, Vec<(String, f64)>)> = GROUPS
        .iter()
        .map(|(group, names)| {
            let rows = names
                .iter()
                .filter(|k| !in_headline(k))
                .filter_map(|k| Some(((*k).to_string(), figures.get(*k)?.as_f64()?)))
                .collect();
            (*group, rows)
        })
        .collect();
    let other: Vec<(String, f64)> = figures
        .iter()
        .filter(|(k, _)| !in_headline(k) && !GROUPS.iter().any(|(_, ns)| ns.contains(&k.as_str())))
        .filter_map(|(k, v)| Some((k.clone(), v.as_f64()?)))
        .collect();
    out.push(("other", other));
    out.retain(|(_, rows)| !rows.is_empty());
    out
}

/// The summary printed at the end of a run: the headline table, then the other figures by group.
pub fn summary(doc: &Value) -> String {
    let h = headline(doc);
    let mut out = String::new();
    let label_w = h
        .rows
        .iter()
        .map(|(l, _)| l.len())
        .max()
        .unwrap_or(0)
        .max(6);
    let col_w = h
        .columns
        .iter()
        .map(String::len)
        .chain(h.rows.iter().flat_map(|(_, c)| c.iter().map(String::len)))
        .max()
        .unwrap_or(8)
        .max(10);
    let _ = write!(out, "{:<label_w$}", "");
    for c in &h.columns {
        let _ = write!(out, "  {c:>col_w$}");
    }
    out.push('\n');
    for (label, cells) in &h.rows {
        let _ = write!(out, "{label:<label_w$}");
        for c in cells {
            let _ = write!(out, "  {c:>col_w$}");
        }
        out.push('\n');
    }
    let groups = figure_groups(doc);
    let w = groups
        .iter()
        .flat_map(|(_, rows)| rows.iter().map(|(k, _)| k.len()))
        .max()
        .unwrap_or(0);
    for (group, rows) in groups {
        let _ = writeln!(out, "\n{group}");
        for (k, v) in rows {
            let _ = writeln!(out, "  {k:<w$}  {:>14}", format_value(v));
        }
    }
    out.push_str(&crate::report::kills::kills_text(doc));
    out.push_str(&crate::report::leader::leader_text(doc));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn mixed_doc() -> Value {
        json!({
            "scenario": {"nodes": 4},
            "figures": {"latency_p50_ms": 2.5, "latency_p99_ms": 9.0, "completeness": 1.0,
                        "bytes_sent_per_peer_per_s": 2048.0, "converge_s": 3.25,
                        "order_violations": 0.0, "zz_new_figure": 7.0},
            "bytes_source": "wire_counters+proc_io",
            "nodes": [{"injector": true}, {"injector": true}, {}, {}],
            "kinds": {
                "gossip-node": {"nodes": [0, 2], "injectors": [0], "bytes_source": "proc_io",
                                "figures": {"latency_p50_ms": 2.0, "completeness": 1.0}},
                "fabric-node": {"nodes": [1, 3], "injectors": [1], "bytes_source": "wire_counters",
                                "figures": {"latency_p50_ms": 3.0, "completeness": 0.5,
                                            "bytes_sent_per_peer_per_s": 1024.0}},
            },
        })
    }

    #[test]
    fn headline_has_a_column_per_kind_when_mixed() {
        let h = headline(&mixed_doc());
        assert_eq!(h.columns, ["all", "fabric-node", "gossip-node"]);
        let row = |label: &str| h.rows.iter().find(|(l, _)| l == label).unwrap().1.clone();
        assert_eq!(row("latency p50, ms"), ["2.50", "3.00", "2.00"]);
        assert_eq!(row("completeness"), ["1.0000", "0.5000", "1.0000"]);
        assert_eq!(row("sent per peer, KiB/s"), ["2.0", "1.0", "-"]);
        assert_eq!(
            row("bytes from"),
            ["wire_counters+proc_io", "wire_counters", "proc_io"]
        );
        assert_eq!(row("nodes (injectors)"), ["4 (2)", "2 (1)", "2 (1)"]);
        assert_eq!(
            h.rows[0].0, "latency p50, ms",
            "latency first, as a reader asks"
        );
    }

    #[test]
    fn an_old_run_json_gets_one_column_and_its_figures_grouped() {
        let doc = json!({"figures": {"latency_p50_ms": 1.0, "latency_max_ms": 4.0,
                                      "bytes_per_peer_per_s": 5e5, "inject_lag_p99_ms": 0.1}});
        let h = headline(&doc);
        assert_eq!(h.columns, ["all"]);
        assert!(h.rows.iter().all(|(_, c)| c.len() == 1));
        let groups = figure_groups(&doc);
        let names: Vec<&str> = groups.iter().map(|(g, _)| *g).collect();
        assert_eq!(names, ["latency", "traffic", "harness"]);
        assert_eq!(groups[0].1, [("latency_max_ms".to_string(), 4.0)]);
        let text = summary(&doc);
        assert!(text.find("latency p50").unwrap() < text.find("latency_max_ms").unwrap());
        assert!(text.contains("500000"), "{text}");
    }

    #[test]
    fn other_figures_are_grouped_after_the_headline_and_unknown_ones_last() {
        let doc = mixed_doc();
        let groups = figure_groups(&doc);
        let names: Vec<&str> = groups.iter().map(|(g, _)| *g).collect();
        assert_eq!(names, ["delivery", "harness", "other"]);
        assert_eq!(groups[2].1, [("zz_new_figure".to_string(), 7.0)]);
        let text = summary(&doc);
        assert!(!text.contains("latency_p50_ms"), "headline figures once");
        assert_eq!(format_value(3.25), "3.250");
        assert_eq!(format_value(12345.678), "12345.7");
        assert_eq!(format_value(4.0), "4");
    }
}
