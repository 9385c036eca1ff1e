//! The benchmark suites: wire codec and crypto.

pub mod codec;
pub mod crypto;
