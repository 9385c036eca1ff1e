//! The benchmark suites: wire codec, crypto, the verifier pool, the egress stages, block pull
//! rounds, the whole-core simulation, the TLS transport and the operations endpoint's `/metrics`.

pub mod codec;
pub mod crypto;
pub mod egress;
pub mod ops;
pub mod pool;
pub mod pull;
pub mod sim;
pub mod transport;
