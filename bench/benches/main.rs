//! criterion main: one group of suites per pipeline stage (`cargo bench -p gossip-bench -- <name>`).

use criterion::{criterion_group, criterion_main};

mod suites {
    pub mod egress;
}

criterion_group!(egress, suites::egress::benches);
criterion_main!(egress);
