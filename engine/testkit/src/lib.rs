//! # gossip-testkit
//!
//! What tests and benchmarks of every crate share:
//!
//! - [`testpki`]: a test PKI generator writing what Fabric's `cryptogen` writes (NodeOUs, admins,
//!   an orderer org), every certificate low-S, so gossip-node and a Fabric peer load the same
//!   folders.
//! - [`ports`]: free ports for test peers, outside the ephemeral range.
//! - [`golden`]: Fabric's golden wire vectors (`testdata/fabric-golden`, copied into this crate
//!   from the project's shared folder so a clone of the repository is enough to run the tests).
//!
//! Not part of any shipped binary: it generates keys from the OS RNG and reads files.

pub mod golden;
pub mod ports;
pub mod testpki;
