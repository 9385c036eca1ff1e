//! Whole-core simulation: the dissemination scenario of `gossip_harness::figures` (one org, peers
//! bootstrapping to peer 0, membership and channel settling, 10 blocks from peer 0) at 4 to 128
//! nodes, every node a real engine `Node` with real ECDSA, no IO. Throughput is simulated
//! messages (every kind) per wall-clock second.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group};
use gossip_harness::engine::EngineNode;
use gossip_harness::figures::{dissemination_figures, dissemination_scenario};

/// Cluster sizes.
const NODES: [usize; 4] = [4, 16, 64, 128];
/// Blocks per run.
const BLOCKS: u64 = 10;
/// The seed of every run (runs are deterministic: every iteration does the same work).
const SEED: u64 = 1;

/// Cluster sizes to run: `SIM_BENCH_NODES=4,16` picks some (each size first runs once untimed,
/// whatever criterion's filter says, and the 128-node run takes minutes); default all of `NODES`.
fn sizes() -> Vec<usize> {
    match std::env::var("SIM_BENCH_NODES") {
        Ok(list) => list
            .split(',')
            .filter_map(|n| n.trim().parse().ok())
            .collect(),
        Err(_) => NODES.to_vec(),
    }
}

fn sim(c: &mut Criterion) {
    let mut group = c.benchmark_group("sim/dissemination");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    for nodes in sizes() {
        // A first run gives the message count (the same in every run of this seed).
        let figures = dissemination_figures::<EngineNode>(nodes, BLOCKS, SEED);
        eprintln!(
            "sim/dissemination/{nodes}: {} msgs, time-to-all {:?}, {:.1} data msgs/block, \
             {:.0} data bytes/block, completeness {:.3}, violations {}",
            figures.all_msgs,
            figures.time_to_all,
            figures.msgs_per_block(),
            figures.bytes_per_block(),
            figures.completeness(),
            figures.violations
        );
        group.throughput(Throughput::Elements(figures.all_msgs));
        let scenario = dissemination_scenario::<EngineNode>(nodes, BLOCKS);
        group.bench_function(format!("{nodes}_nodes"), |b| {
            b.iter(|| black_box(scenario.run(SEED).0.stats.transmits()))
        });
    }
    group.finish();
}

criterion_group!(benches, sim);
