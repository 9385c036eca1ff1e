//! Modules of the `gossip-node` binary.

pub mod control;
pub mod ledger;
pub mod logging;
pub mod run;
