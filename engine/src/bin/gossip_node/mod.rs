//! Modules of the `gossip-node` binary.

pub mod control;
pub mod logging;
pub mod run;
