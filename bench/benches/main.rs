//! Criterion micro-benchmarks per pipeline stage. Each suite lives in `suites/`.
//!
//! Run: `cargo bench -p gossip-bench -- --warm-up-time 1 --measurement-time 3`.

mod suites;

criterion::criterion_main!(suites::codec::benches, suites::crypto::benches);
