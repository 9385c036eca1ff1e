//! Mixed clusters: which kind of peer each node runs, and the figures split by kind (latency and
//! time-to-all at that kind's receivers, completeness, CPU, memory, bytes).

use serde_json::{Map, Value, json};

use crate::measure::collect::{Collector, new_histogram, quantile_ms};
use crate::measure::traffic::{TrafficInput, traffic_figures};
use crate::scenario::PeerKind;

/// The kind name of a node running gossip-node (or whatever `--node-bin` names) that does not
/// say what it is.
pub const OURS_KIND: &str = "gossip-node";
/// The kind name of a node configured to run the Fabric peer that does not say what it is.
pub const FABRIC_KIND: &str = "fabric-node";

/// A node's kind: the first word of the `implementation` field of its `stats` when it reports
/// one (fabric-node: `"fabric-node (Fabric <commit>)"`), else what the scenario made it run.
pub fn node_kind_label(configured: PeerKind, stats: &Value) -> String {
    let reported = stats
        .get("implementation")
        .and_then(Value::as_str)
        .and_then(|s| s.split_whitespace().next());
    match (reported, configured) {
        (Some(word), _) => word.to_string(),
        (None, PeerKind::Ours) => OURS_KIND.into(),
        (None, PeerKind::Fabric) => FABRIC_KIND.into(),
    }
}

/// The distinct kinds in order of first appearance, and each node's index into them.
pub fn kind_groups(labels: &[String]) -> (Vec<String>, Vec<usize>) {
    let mut kinds: Vec<String> = Vec::new();
    let groups = labels
        .iter()
        .map(|l| match kinds.iter().position(|k| k == l) {
            Some(g) => g,
            None => {
                kinds.push(l.clone());
                kinds.len() - 1
            }
        })
        .collect();
    (kinds, groups)
}

/// One node's CPU and memory, the inputs of the per-kind and overall cost figures.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct NodeCost {
    /// CPU seconds over the injection window (0 where the node was down at either end).
    pub cpu_s_window: f64,
    /// CPU over the quiet window, % of one core (`None` where unreadable).
    pub cpu_pct_idle: Option<f64>,
    /// Largest `VmHWM` over the samples, bytes.
    pub peak_rss_bytes: u64,
}

const MIB: f64 = 1024.0 * 1024.0;

/// CPU and memory figures of `nodes` over an injection window of `window_s` seconds:
/// `cpu_s_total`, `cpu_s_per_node_max`, `cpu_pct_per_node_mean` (every node counts, a node
/// down counts 0), `cpu_pct_per_node_idle_mean` / `_max` (nodes with a reading; absent when
/// none has one), `peak_rss_mib_max`, `peak_rss_mib_mean`. Nothing for an empty set.
pub fn cost_figures(nodes: &[NodeCost], window_s: f64, f: &mut Map<String, Value>) {
    if nodes.is_empty() {
        return;
    }
    let mut put = |k: &str, v: f64| {
        f.insert(k.into(), json!(v));
    };
    let n = nodes.len() as f64;
    let cpu_total: f64 = nodes.iter().map(|c| c.cpu_s_window).sum();
    put("cpu_s_total", cpu_total);
    put(
        "cpu_s_per_node_max",
        nodes.iter().map(|c| c.cpu_s_window).fold(0.0, f64::max),
    );
    put(
        "cpu_pct_per_node_mean",
        cpu_total / window_s.max(1e-3) / n * 100.0,
    );
    let idle: Vec<f64> = nodes.iter().filter_map(|c| c.cpu_pct_idle).collect();
    if !idle.is_empty() {
        put(
            "cpu_pct_per_node_idle_mean",
            idle.iter().sum::<f64>() / idle.len() as f64,
        );
        put(
            "cpu_pct_per_node_idle_max",
            idle.iter().copied().fold(0.0, f64::max),
        );
    }
    let peaks = nodes.iter().map(|c| c.peak_rss_bytes);
    put(
        "peak_rss_mib_max",
        peaks.clone().max().unwrap_or(0) as f64 / MIB,
    );
    put("peak_rss_mib_mean", peaks.sum::<u64>() as f64 / n / MIB);
}

/// Everything the per-kind figures are made from, per node (indexed by node).
pub struct KindInputs<'a> {
    /// Kind of each node ([`node_kind_label`]).
    pub labels: &'a [String],
    /// `implementation` of each node's stats, when reported.
    pub implementations: &'a [Option<String>],
    /// Injecting nodes.
    pub injectors: &'a [usize],
    /// Deliveries, grouped by kind in the same order as [`kind_groups`] of `labels`.
    pub collector: &'a Collector,
    /// CPU and memory per node.
    pub costs: &'a [NodeCost],
    /// Bytes per node.
    pub traffic: &'a [TrafficInput],
    /// Injection window, s.
    pub window_s: f64,
    /// Quiet window, s.
    pub idle_s: f64,
    /// Blocks injected in the window, all channels.
    pub blocks: u64,
}

/// run.json's `kinds`: per kind its nodes, injectors, the `implementation` its nodes reported,
/// where its byte figures came from, and its `figures` (latency and time-to-all at its
/// receivers, completeness, cost, bytes; names as in the overall `figures`).
pub fn kinds_json(x: &KindInputs) -> Value {
    let (kinds, groups) = kind_groups(x.labels);
    let mut out = Map::new();
    for (g, kind) in kinds.iter().enumerate() {
        let members: Vec<usize> = (0..groups.len()).filter(|&k| groups[k] == g).collect();
        let mut f = Map::new();
        let mut lat = new_histogram();
        for &k in &members {
            if let Some(h) = x.collector.per_node.get(k) {
                // Same bounds everywhere: adding cannot fail.
                let _ = lat.add(h);
            }
        }
        let tta = x.collector.group_time_to_all(g);
        let mut put = |k: &str, v: f64| {
            f.insert(k.into(), json!(v));
        };
        if !lat.is_empty() {
            put("latency_p50_ms", quantile_ms(&lat, 0.5));
            put("latency_p99_ms", quantile_ms(&lat, 0.99));
        }
        put("latency_samples", lat.len() as f64);
        if let Some(c) = x.collector.group_completeness(g) {
            put("completeness", c);
            put("time_to_all_p50_ms", quantile_ms(&tta, 0.5));
            put("time_to_all_p99_ms", quantile_ms(&tta, 0.99));
        }
        put("nodes", members.len() as f64);
        let costs: Vec<NodeCost> = members
            .iter()
            .filter_map(|&k| x.costs.get(k).copied())
            .collect();
        cost_figures(&costs, x.window_s, &mut f);
        let traffic: Vec<TrafficInput> = members
            .iter()
            .filter_map(|&k| x.traffic.get(k).copied())
            .collect();
        let traffic = traffic_figures(&traffic, x.window_s, x.idle_s, x.blocks);
        traffic.put(&mut f);
        let implementation = members
            .iter()
            .find_map(|&k| x.implementations.get(k).cloned().flatten());
        let injectors: Vec<usize> = members
            .iter()
            .copied()
            .filter(|k| x.injectors.contains(k))
            .collect();
        out.insert(
            kind.clone(),
            json!({
                "nodes": members,
                "injectors": injectors,
                "implementation": implementation,
                "bytes_source": traffic.source,
                "figures": f,
            }),
        );
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::control::{Delivery, DeliveryKind};
    use crate::measure::collect::Schedule;
    use crate::measure::traffic::{ByteCounters, BytesSource, NodeTraffic};

    #[test]
    fn kind_comes_from_the_reported_implementation_else_the_configuration() {
        let fabric = json!({"implementation": "fabric-node (Fabric 0c423ac4)"});
        assert_eq!(node_kind_label(PeerKind::Fabric, &fabric), "fabric-node");
        assert_eq!(
            node_kind_label(PeerKind::Ours, &fabric),
            "fabric-node",
            "--node-bin fabric-node: the node says what it is"
        );
        assert_eq!(node_kind_label(PeerKind::Ours, &json!({})), "gossip-node");
        assert_eq!(
            node_kind_label(PeerKind::Fabric, &Value::Null),
            "fabric-node"
        );
        assert_eq!(
            node_kind_label(PeerKind::Ours, &json!({"implementation": " "})),
            "gossip-node"
        );
        let labels: Vec<String> = ["b", "a", "b", "c"].map(String::from).to_vec();
        assert_eq!(
            kind_groups(&labels),
            (vec!["b".into(), "a".into(), "c".into()], vec![0, 1, 0, 2])
        );
    }

    #[test]
    fn cost_figures_average_over_the_set() {
        let nodes = [
            NodeCost {
                cpu_s_window: 1.0,
                cpu_pct_idle: Some(0.5),
                peak_rss_bytes: 10 << 20,
            },
            NodeCost {
                cpu_s_window: 3.0,
                cpu_pct_idle: None,
                peak_rss_bytes: 30 << 20,
            },
        ];
        let mut f = Map::new();
        cost_figures(&nodes, 4.0, &mut f);
        let g = |k: &str| f[k].as_f64().unwrap();
        assert_eq!(g("cpu_s_total"), 4.0);
        assert_eq!(g("cpu_s_per_node_max"), 3.0);
        assert_eq!(g("cpu_pct_per_node_mean"), 50.0, "4 s over 4 s and 2 nodes");
        assert_eq!(g("cpu_pct_per_node_idle_mean"), 0.5, "nodes with a reading");
        assert_eq!(g("peak_rss_mib_max"), 30.0);
        assert_eq!(g("peak_rss_mib_mean"), 20.0);
        let mut empty = Map::new();
        cost_figures(&[], 4.0, &mut empty);
        assert!(empty.is_empty());
    }

    #[test]
    fn figures_split_by_kind() {
        let s = Schedule {
            start_unix_ns: 0,
            interval_ns: 100_000_000,
            jitter_ns: 0,
            blocks: 2,
            warmup_blocks: 0,
        };
        // Nodes 0 (injector) and 2 are ours, 1 (injector) and 3, 4 Fabric's.
        let labels: Vec<String> = ["ours", "fabric", "ours", "fabric", "fabric"]
            .map(String::from)
            .to_vec();
        let (_, groups) = kind_groups(&labels);
        let mut c = Collector::new(s, 5, vec!["c".into()], vec![0, 1]).with_groups(groups);
        let got = |node, seq, ms: u64| Delivery {
            kind: DeliveryKind::Received,
            node,
            channel: "c".into(),
            seq,
            received_unix_ns: s.due_ns(seq) + ms * 1_000_000,
            via: None,
        };
        // Block 1 reaches everyone; block 2 misses node 4 (Fabric).
        for d in [
            got(2, 1, 2),
            got(3, 1, 10),
            got(4, 1, 20),
            got(2, 2, 4),
            got(3, 2, 30),
        ] {
            c.record(&d);
        }
        let wire = |sent, received| TrafficInput {
            window: Some(NodeTraffic {
                source: BytesSource::WireCounters,
                bytes: ByteCounters {
                    sent_bytes: sent,
                    received_bytes: received,
                },
            }),
            idle: None,
            receiver: true,
        };
        let proc_io = TrafficInput {
            window: Some(NodeTraffic {
                source: BytesSource::ProcIo,
                bytes: ByteCounters {
                    sent_bytes: 100,
                    received_bytes: 300,
                },
            }),
            idle: None,
            receiver: true,
        };
        let traffic = [
            TrafficInput {
                receiver: false,
                ..proc_io
            },
            TrafficInput {
                receiver: false,
                ..wire(900, 100)
            },
            proc_io,
            wire(100, 800),
            wire(100, 600),
        ];
        let cost = |cpu| NodeCost {
            cpu_s_window: cpu,
            cpu_pct_idle: None,
            peak_rss_bytes: 1 << 20,
        };
        let costs = [cost(2.0), cost(1.0), cost(1.0), cost(0.5), cost(0.0)];
        let impls = [
            None,
            Some("fabric-node (Fabric x)".to_string()),
            None,
            None,
            None,
        ];
        let doc = kinds_json(&KindInputs {
            labels: &labels,
            implementations: &impls,
            injectors: &[0, 1],
            collector: &c,
            costs: &costs,
            traffic: &traffic,
            window_s: 1.0,
            idle_s: 1.0,
            blocks: 2,
        });
        let ours = &doc["ours"];
        let fabric = &doc["fabric"];
        assert_eq!(ours["nodes"], json!([0, 2]));
        assert_eq!(fabric["injectors"], json!([1]));
        assert_eq!(fabric["implementation"], "fabric-node (Fabric x)");
        assert_eq!(ours["bytes_source"], "proc_io");
        assert_eq!(fabric["bytes_source"], "wire_counters");
        let g = |k: &Value, f: &str| k["figures"][f].as_f64().unwrap();
        assert_eq!(g(ours, "completeness"), 1.0, "node 2 got both");
        assert_eq!(g(fabric, "completeness"), 0.5, "node 4 missed block 2");
        assert_eq!(g(ours, "latency_samples"), 2.0);
        assert_eq!(g(fabric, "latency_samples"), 3.0);
        assert!((3.9..4.1).contains(&g(ours, "latency_p99_ms")));
        assert!((29.9..30.1).contains(&g(fabric, "latency_p99_ms")));
        assert!(
            (19.9..20.1).contains(&g(fabric, "time_to_all_p99_ms")),
            "block 1 at its last Fabric receiver (node 4); block 2 incomplete there"
        );
        assert!((3.9..4.1).contains(&g(ours, "time_to_all_p99_ms")));
        assert_eq!(g(ours, "cpu_pct_per_node_mean"), 150.0);
        assert_eq!(g(fabric, "cpu_pct_per_node_mean"), 50.0);
        assert_eq!(
            g(fabric, "bytes_received_per_block_per_receiver"),
            (800.0 + 600.0) / 2.0 / 2.0
        );
        assert_eq!(g(fabric, "bytes_sent_per_peer_per_s"), 1100.0 / 3.0);
    }
}
