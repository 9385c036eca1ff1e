//! Figures of the deterministic simulator:
//! - `sim-gate`: the CI gate: each scenario of `gossip_harness::gate` over many seeds, the median
//!   of each figure as a `figures` JSON that `compare` reads, and the spread over seeds beside it;
//! - `sim-figures`: the dissemination figures (`gossip_harness::figures`) of one seed;
//! - `sim-rate`: what push gossip itself delivers at each injection rate with zero processing
//!   cost (`gossip_harness::rate`), to tell a capacity sweep's protocol losses from overload.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use gossip_harness::engine::EngineNode;
use gossip_harness::figures::{DisseminationFigures, dissemination_figures};
use gossip_harness::gate::{self, GateScenario, Spread, gate_figures, gated_figures};
use gossip_harness::rate::{RateFigures, RateSetup, rate_figures};
use serde_json::{Value, json};

/// Schema tag of the sim-figures file.
pub const SCHEMA: &str = "loadgen.sim-figures/v1";

/// Runs the fixed simulated scenario and returns its JSON document.
pub fn sim_figures(nodes: usize, blocks: u64, seed: u64) -> Value {
    let f = dissemination_figures::<EngineNode>(nodes, blocks, seed);
    to_json(&f, seed)
}

/// The JSON document of computed figures.
pub fn to_json(f: &DisseminationFigures, seed: u64) -> Value {
    json!({
        "schema": SCHEMA,
        "scenario": {
            "name": "figures-dissemination",
            "nodes": f.nodes,
            "blocks": f.blocks,
            "seed": seed,
        },
        "figures": {
            "time_to_all_sim_ms": f.time_to_all.as_secs_f64() * 1e3,
            "data_msgs": f.data_msgs,
            "data_msgs_per_block": f.msgs_per_block(),
            "data_bytes": f.data_bytes,
            "data_bytes_per_block": f.bytes_per_block(),
            "pull_bytes": f.pull_bytes,
            "pull_bytes_per_block": f.pull_bytes_per_block(),
            "all_msgs": f.all_msgs,
            "blocks_delivered": f.blocks_delivered,
            "blocks_expected": f.blocks_expected,
            "completeness": f.completeness(),
            "violations": f.violations,
        }
    })
}

/// Schema tag of the sim-gate file.
pub const GATE_SCHEMA: &str = "loadgen.sim-gate/v1";

/// Runs every `(scenario, seed)` of the gate on `threads` threads (each run is a pure function of
/// its inputs, so the thread count changes nothing but the wall time). Results are in
/// `scenarios` order, then seed order.
pub fn run_gate(
    scenarios: &[GateScenario],
    seeds: std::ops::Range<u64>,
    threads: usize,
) -> Vec<(GateScenario, Vec<DisseminationFigures>)> {
    let jobs: Vec<(usize, u64)> = (0..scenarios.len())
        .flat_map(|s| seeds.clone().map(move |seed| (s, seed)))
        .collect();
    let next = AtomicUsize::new(0);
    let done = Mutex::new(vec![None; jobs.len()]);
    std::thread::scope(|scope| {
        for _ in 0..threads.clamp(1, jobs.len().max(1)) {
            scope.spawn(|| {
                loop {
                    let j = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&(s, seed)) = jobs.get(j) else { break };
                    let f = gate_figures::<EngineNode>(scenarios[s], seed);
                    // A poisoned lock means another run panicked; the scope re-raises that panic.
                    if let Ok(mut d) = done.lock() {
                        d[j] = Some(f);
                    }
                }
            });
        }
    });
    let mut done = done
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .map(|f| f.expect("every run finished"));
    scenarios
        .iter()
        .map(|&s| (s, done.by_ref().take(seeds.clone().count()).collect()))
        .collect()
}

/// The sim-gate JSON document: per scenario and figure, the median over seeds under
/// `figures.<scenario>.<figure>` (violations: the sum over seeds, so one anywhere shows), and the
/// distribution under `spread`; with `per_seed`, every run's figures under `runs`.
pub fn gate_json(
    runs: &[(GateScenario, Vec<DisseminationFigures>)],
    seeds: &std::ops::Range<u64>,
    per_seed: bool,
) -> Value {
    let mut figures = serde_json::Map::new();
    let mut spread = serde_json::Map::new();
    let mut scenarios = serde_json::Map::new();
    let mut by_seed = serde_json::Map::new();
    for (scenario, results) in runs {
        let shape = scenario.shape();
        scenarios.insert(
            scenario.name().into(),
            json!({
                "orgs": shape.orgs,
                "peers_per_org": shape.peers_per_org,
                "channels": shape.channels,
                "blocks_per_channel": gate::BLOCKS_PER_CHANNEL,
                "link_latency_base_ms": shape.link.latency_base.as_secs_f64() * 1e3,
                "link_latency_jitter_ms": shape.link.latency_jitter.as_secs_f64() * 1e3,
                "link_loss_probability": shape.link.loss_probability,
                "propagate_peer_num": shape.gossip.propagate_peer_num,
            }),
        );
        let rows: Vec<[(&str, f64); 7]> = results.iter().map(gated_figures).collect();
        if per_seed {
            let list = rows.iter().zip(seeds.clone()).map(|(row, seed)| {
                let mut m: serde_json::Map<String, Value> =
                    row.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
                m.insert("seed".into(), json!(seed));
                Value::Object(m)
            });
            by_seed.insert(scenario.name().into(), Value::Array(list.collect()));
        }
        let Some(first) = rows.first() else { continue };
        for (i, (name, _)) in first.iter().enumerate() {
            let values: Vec<f64> = rows.iter().map(|r| r[i].1).collect();
            let Some(s) = Spread::of(&values) else {
                continue;
            };
            let key = format!("{}.{name}", scenario.name());
            let gated = if *name == "violations" {
                s.sum
            } else {
                s.median
            };
            figures.insert(key.clone(), json!(gated));
            if *name == "completeness" {
                // Every block at every peer in every seed: the worst seed is gated too.
                figures.insert(format!("{key}_min"), json!(s.min));
            }
            spread.insert(
                key,
                json!({"min": s.min, "p25": s.p25, "median": s.median, "p75": s.p75, "max": s.max}),
            );
        }
    }
    let mut doc = json!({
        "schema": GATE_SCHEMA,
        "seeds": {"first": seeds.start, "count": seeds.end - seeds.start},
        "setup": {
            "nodes": gate::GATE_NODES,
            "membership_settle_s": gate::MEMBERSHIP_SETTLE.as_secs_f64(),
            "channel_settle_s": gate::CHANNEL_SETTLE.as_secs_f64(),
            "tail_s": gate::TAIL.as_secs_f64(),
            "block_period_ms": gate::BLOCK_PERIOD.as_secs_f64() * 1e3,
            "gossip": "Fabric's defaults (GossipConfig::default)",
        },
        "scenarios": scenarios,
        "figures": figures,
        "spread": spread,
    });
    if per_seed {
        doc["runs"] = Value::Object(by_seed);
    }
    doc
}

/// Schema tag of the sim-rate file.
pub const RATE_SCHEMA: &str = "loadgen.sim-rate/v1";

/// Runs the simulator once per rate (`gossip_harness::rate`): what push gossip itself delivers at
/// each rate with zero processing cost, for comparison with a capacity sweep of real nodes.
pub fn sim_rate(base: &RateSetup, rates: &[f64]) -> Vec<RateFigures> {
    rates
        .iter()
        .map(|&rate_per_s| {
            rate_figures(&RateSetup {
                rate_per_s,
                ..base.clone()
            })
        })
        .collect()
}

/// The sim-rate JSON document: the setup and one entry per rate.
pub fn sim_rate_json(base: &RateSetup, figures: &[RateFigures]) -> Value {
    json!({
        "schema": RATE_SCHEMA,
        "setup": {
            "nodes": base.nodes,
            "duration_s": base.duration.as_secs_f64(),
            "link_latency_base_us": base.link.latency_base.as_micros() as u64,
            "link_latency_jitter_us": base.link.latency_jitter.as_micros() as u64,
            "max_block_count_to_store": base.gossip.max_block_count_to_store,
            "max_propagation_burst_latency_ms": base.gossip.max_propagation_burst_latency.as_secs_f64() * 1e3,
            "max_propagation_burst_size": base.gossip.max_propagation_burst_len,
            "emit_interval_min_us": base.gossip.emitter_interval_min().as_micros() as u64,
            "propagate_peer_num": base.gossip.propagate_peer_num,
            "seed": base.seed,
        },
        "rates": figures.iter().map(|f| json!({
            "rate_per_s": f.rate_per_s,
            "blocks": f.blocks,
            "coverage": f.coverage,
            "completeness": f.completeness,
            "latency_p50_ms": f.latency_p50_ms,
            "latency_p99_ms": f.latency_p99_ms,
            "latency_max_ms": f.latency_max_ms,
            "violations": f.violations,
        })).collect::<Vec<_>>(),
    })
}

/// A Markdown table of the figures, one row per rate.
pub fn sim_rate_table(figures: &[RateFigures]) -> String {
    let mut out = String::from(
        "| rate/s | blocks | coverage | completeness | p50 ms | p99 ms | max ms | violations |\n\
         |---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for f in figures {
        out += &format!(
            "| {} | {} | {:.4} | {:.3} | {:.2} | {:.2} | {:.2} | {} |\n",
            f.rate_per_s,
            f.blocks,
            f.coverage,
            f.completeness,
            f.latency_p50_ms,
            f.latency_p99_ms,
            f.latency_max_ms,
            f.violations
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gate_json_has_a_median_and_a_spread_per_figure_whatever_the_threads() {
        let seeds = 3..5;
        let one = gate_json(
            &run_gate(&[GateScenario::Loss5], seeds.clone(), 1),
            &seeds,
            true,
        );
        let two = gate_json(
            &run_gate(&[GateScenario::Loss5], seeds.clone(), 2),
            &seeds,
            true,
        );
        assert_eq!(one, two);
        let figures = one["figures"].as_object().unwrap();
        assert_eq!(figures.len(), 8);
        for (key, median) in figures {
            assert!(key.starts_with("loss5."), "{key}");
            if let Some(of) = key.strip_suffix("_min") {
                assert_eq!(median, &one["spread"][of]["min"], "{key}");
                continue;
            }
            let spread = &one["spread"][key];
            let (min, max) = (
                spread["min"].as_f64().unwrap(),
                spread["max"].as_f64().unwrap(),
            );
            if key != "loss5.violations" {
                assert!((min..=max).contains(&median.as_f64().unwrap()), "{key}");
            }
        }
        assert_eq!(one["runs"]["loss5"].as_array().unwrap().len(), 2);
        assert_eq!(one["runs"]["loss5"][1]["seed"], 4);
    }
}
