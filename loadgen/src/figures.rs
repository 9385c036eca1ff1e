//! `sim-figures`: the deterministic dissemination figures of the simulator
//! (`gossip_harness::figures`) as a `figures` JSON that `compare` reads, for the CI gate.

use gossip_harness::engine::EngineNode;
use gossip_harness::figures::{DisseminationFigures, dissemination_figures};
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
