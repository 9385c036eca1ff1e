//! The subcommands' bodies: one run end to end (`run`, `job`), rate sweeps (`sweep`), and the
//! deterministic simulator's figures for the CI gates (`figures`).

pub mod faults;
pub mod figures;
pub mod flood;
pub mod job;
pub mod reliability;
pub mod run;
mod run_feed;
pub mod sweep;
