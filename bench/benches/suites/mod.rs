//! The benchmark suites: wire codec, crypto, the verifier pool and the egress stages.

pub mod codec;
pub mod crypto;
pub mod egress;
pub mod pool;
