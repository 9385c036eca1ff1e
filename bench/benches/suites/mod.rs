//! The benchmark suites: wire codec, crypto, the verifier pool, the egress stages and the
//! whole-core simulation.

pub mod codec;
pub mod crypto;
pub mod egress;
pub mod pool;
pub mod sim;
