//! Criterion micro-benchmarks per pipeline stage. Each suite lives in `suites/`.
//!
//! Run: `cargo bench -p gossip-bench -- --warm-up-time 1 --measurement-time 3`, or one suite with a
//! filter: `cargo bench -p gossip-bench -- emitter`.

mod suites;

criterion::criterion_main!(
    suites::codec::benches,
    suites::crypto::benches,
    suites::pool::benches,
    suites::egress::benches,
    suites::ops::benches,
    suites::pull::benches,
    suites::sim::benches,
    suites::transport::benches,
);
