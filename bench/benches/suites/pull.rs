//! Block pull: one full round between two parties' pull engines (hello, digest, request, update,
//! the initiator taking each block) with 10, 100 and 1,000 blocks to move, at Fabric's pull
//! settings (`gossip_bench::pull`). Throughput is blocks moved per second, so the per-block cost
//! reads directly.
//!
//! - `pull_round`: 1 KiB blocks, each in an allocation of its own (a store of received blocks):
//!   building the update copies each block's handle.
//! - `pull_round_ids`: empty blocks, whose copies touch no memory: the engines and the maps only.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
use gossip_bench::pull::{PULL_BLOCK_LEN_BYTES, PullPair};

/// Blocks the responder holds and the initiator lacks, per round.
const ITEMS: [u64; 3] = [10, 100, 1_000];

fn pull(c: &mut Criterion) {
    for (group, block_len_bytes) in [("pull_round", PULL_BLOCK_LEN_BYTES), ("pull_round_ids", 0)] {
        let mut group = c.benchmark_group(group);
        for items in ITEMS {
            group.throughput(Throughput::Elements(items));
            group.bench_function(BenchmarkId::from_parameter(format!("{items}_items")), |b| {
                let mut pair = PullPair::new(items, block_len_bytes);
                b.iter(|| black_box(pair.round()))
            });
        }
        group.finish();
    }
}

criterion_group!(benches, pull);
