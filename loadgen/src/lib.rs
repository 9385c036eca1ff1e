//! `loadgen` library: scenario files, a launcher for node processes, the control-protocol client,
//! a fault-injecting TCP proxy, open-loop injection, measurement, reports and comparison.

pub mod cluster;
pub mod collect;
pub mod compare;
pub mod control;
pub mod figures;
pub mod html;
pub mod inject;
pub mod job;
pub mod kinds;
pub mod launcher;
pub mod procfs;
pub mod proxy;
pub mod report;
pub mod run;
pub mod scenario;
pub mod summary;
pub mod sweep;
pub mod timeseries;
pub mod traffic;
