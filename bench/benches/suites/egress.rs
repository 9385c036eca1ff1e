//! Egress stages: the batching emitter, the partitioner and peer selection.

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group};
use gossip_bench::egress::{BATCH_LEN, members, mixed_batch};
use gossip_engine::egress::{
    Emitter, EmitterConfig, InOrg, NotSame, Partition, combine, select_peers,
};
use gossip_engine::time::Instant;
use gossip_engine::types::NetworkMember;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn egress(c: &mut Criterion) {
    let batch = mixed_batch();

    let mut group = c.benchmark_group("emitter");
    group.throughput(Throughput::Elements(BATCH_LEN as u64));
    group.bench_function("add_flush_1000_burst10", |b| {
        let mut emitter = Emitter::new(EmitterConfig::default());
        let mut out = Vec::with_capacity(BATCH_LEN);
        b.iter(|| {
            out.clear();
            for msg in &batch {
                emitter.add(msg.clone(), Instant::ZERO, &mut out);
            }
            emitter.handle_timeout(Instant::ZERO, &mut out);
            black_box(out.len())
        })
    });
    group.finish();

    let mut group = c.benchmark_group("partition");
    group.throughput(Throughput::Elements(BATCH_LEN as u64));
    group.bench_function("mixed_batch_1000", |b| {
        let mut partition = Partition::default();
        b.iter(|| {
            partition.split(black_box(&batch));
            black_box(partition.blocks.len())
        })
    });
    group.finish();

    let mut group = c.benchmark_group("filter");
    group.throughput(Throughput::Elements(1));
    let pool = members(1_000);
    let filter = combine(InOrg("Org1MSP".into()), NotSame(pool[0].pki_id));
    group.bench_function("select_peers_3_of_1000_combined", |b| {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut out = Vec::with_capacity(3);
        b.iter(|| {
            out.clear();
            black_box(select_peers(
                3,
                black_box(&pool),
                &filter,
                &mut rng,
                &mut out,
            ))
        })
    });
    group.bench_function("select_peers_3_of_1000_rare_match", |b| {
        // 1 in 100 members passes: exercises the dense fallback.
        let rare = |m: &NetworkMember| m.pki_id.0[7].is_multiple_of(100);
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let mut out = Vec::with_capacity(3);
        b.iter_batched_ref(
            || (),
            |_| {
                out.clear();
                black_box(select_peers(3, black_box(&pool), &rare, &mut rng, &mut out))
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, egress);
