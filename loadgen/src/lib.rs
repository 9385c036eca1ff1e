//! `loadgen` library, grouped by role:
//!
//! - [`scenario`]: scenario files (TOML), the input of every run.
//! - [`cluster`]: laying out a cluster (PKI, ports, one core.yaml per node), the [`cluster::launcher`]
//!   of node processes, the [`cluster::control`] protocol client, the fault-injecting
//!   [`cluster::proxy`].
//! - [`measure`]: open-loop [`measure::inject`]ion, the [`measure::collect`]ors of deliveries and
//!   resources, [`measure::procfs`] readings, byte figures from wire counters
//!   ([`measure::traffic`]).
//! - [`report`]: `results/<name>/` (run.json, timeseries.csv, latency.hgrm, report.html), the
//!   [`report::summary`](mod@report::summary) table, figures by peer [`report::kinds`], and [`report::compare`] (the
//!   verdicts CI gates on).
//! - [`commands`]: the subcommands' bodies: [`commands::run`] and [`commands::job`] (one scenario
//!   end to end), [`commands::sweep`], [`commands::figures`] (the simulator's figures).

pub mod cluster;
pub mod commands;
pub mod measure;
pub mod report;
pub mod scenario;
