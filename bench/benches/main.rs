//! criterion main: one group of suites per pipeline stage (`cargo bench -p gossip-bench -- <name>`).

use criterion::{criterion_group, criterion_main};

mod suites {
    pub mod egress;
    pub mod pool;
}

criterion_group!(egress, suites::egress::benches);
criterion_group!(pool, suites::pool::benches);
criterion_main!(egress, pool);
