//! Egress stages: the batching emitter, the partitioner and peer selection.

use std::hint::black_box;

use bytes::Bytes;
use criterion::{BatchSize, Criterion, Throughput, criterion_group};
use gossip_engine::egress::{
    Emitter, EmitterConfig, InOrg, NotSame, Partition, Routable, RouteClass, combine, select_peers,
};
use gossip_engine::time::Instant;
use gossip_engine::types::{NetworkMember, PkiId};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Messages per emitter and partition iteration.
const BATCH_LEN: usize = 1_000;

#[derive(Clone)]
struct Emitted {
    class: RouteClass,
    channel: Bytes,
    _payload: Bytes,
}

impl Routable for Emitted {
    fn route_class(&self) -> RouteClass {
        self.class
    }
    fn channel(&self) -> &Bytes {
        &self.channel
    }
}

/// A mixed batch: mostly blocks over two channels, plus every other class.
fn mixed_batch() -> Vec<Emitted> {
    let channels = [
        Bytes::from_static(b"mychannel"),
        Bytes::from_static(b"otherchannel"),
    ];
    let classes = [
        RouteClass::Block,
        RouteClass::Block,
        RouteClass::Block,
        RouteClass::Leadership,
        RouteClass::StateInfo,
        RouteClass::OrgRestricted,
        RouteClass::Alive,
        RouteClass::Block,
    ];
    (0..BATCH_LEN)
        .map(|i| Emitted {
            class: classes[i % classes.len()],
            channel: channels[i % 2].clone(),
            _payload: Bytes::from_static(&[0u8; 64]),
        })
        .collect()
}

fn members(n: usize) -> Vec<NetworkMember> {
    (0..n)
        .map(|i| {
            let mut id = [0u8; 32];
            id[..8].copy_from_slice(&(i as u64).to_be_bytes());
            NetworkMember {
                pki_id: PkiId(id),
                endpoint: format!("peer{i}.example.com:7051"),
                internal_endpoint: String::new(),
                org: Some(if i % 2 == 0 {
                    "Org1MSP".into()
                } else {
                    "Org2MSP".into()
                }),
            }
        })
        .collect()
}

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
