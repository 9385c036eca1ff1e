//! Encode and decode per message kind. Decode is measured the way the engine decodes: the envelope
//! from the received `Bytes`, then the `GossipMessage` from its payload, slicing (not copying) every
//! `bytes` field. Throughput is the envelope's wire size.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
use gossip_bench::{Fixture, codec_cases, decode_like_engine};

fn codec(c: &mut Criterion) {
    let fx = Fixture::new();
    let cases = codec_cases(&fx);
    let mut decode = c.benchmark_group("decode");
    for case in &cases {
        decode.throughput(Throughput::Bytes(case.wire.len() as u64));
        decode.bench_with_input(
            BenchmarkId::from_parameter(&case.name),
            &case.wire,
            |b, wire| b.iter(|| decode_like_engine(black_box(wire)).expect("decodes")),
        );
    }
    decode.finish();
    let mut encode = c.benchmark_group("encode");
    for case in &cases {
        encode.throughput(Throughput::Bytes(case.wire.len() as u64));
        encode.bench_with_input(BenchmarkId::from_parameter(&case.name), case, |b, case| {
            b.iter(|| black_box(case).encode())
        });
    }
    encode.finish();
}

criterion_group!(benches, codec);
