//! Figures of the deterministic simulator:
//! - `sim-figures`: the dissemination figures (`gossip_harness::figures`) as a `figures` JSON that
//!   `compare` reads, for the CI gate;
//! - `sim-rate`: what push gossip itself delivers at each injection rate with zero processing
//!   cost (`gossip_harness::rate`), to tell a capacity sweep's protocol losses from overload.

use gossip_harness::engine::EngineNode;
use gossip_harness::figures::{DisseminationFigures, dissemination_figures};
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
            "all_msgs": f.all_msgs,
            "blocks_delivered": f.blocks_delivered,
            "blocks_expected": f.blocks_expected,
            "completeness": f.completeness(),
            "violations": f.violations,
        }
    })
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
