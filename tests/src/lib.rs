//! # gossip-harness
//!
//! A deterministic simulator of N sans-IO gossip nodes (ARCHITECTURE.md, testing tier 2):
//!
//! - [`sim`]: the discrete-event loop: one priority queue ordered by (simulated time, insertion
//!   sequence), logical connections and handshakes, per-node ingress, IO answered by the simulator;
//! - [`faults`]: latency, jitter, loss, duplication, partitions, all drawn from one seeded RNG;
//! - [`checkers`]: the safety invariants checked as the simulation runs;
//! - [`scenario`]: the DSL for cluster tests and `run_seeds`, which prints
//!   `SIM FAILED seed=... scenario=...` and replays one seed with `SIM_SEED=<seed>`;
//! - [`transport`]: the one runner of a scenario's steps, over the simulator or over a real
//!   tonic cluster with mutual TLS on 127.0.0.1 (`transport::tonic::run_tonic`), so each scenario
//!   is written once and runs on both transports;
//! - [`figures`]: deterministic figures of a fixed scenario and seed for regression gates;
//! - [`gate`]: the CI gate's scenarios (many seeds each) and the statistics over seeds;
//! - [`rate`]: what push gossip itself delivers at an injection rate, with zero processing cost;
//! - [`node`]: the node contract as a trait; [`toy`]: a small node that tests the simulator itself;
//! - [`byzantine`]: the engine's node with a lying pull responder, for pull's Byzantine scenarios;
//! - [`pki`]: the committed test PKI, so PKI-IDs are the same in every process.
//!
//! The simulator has no tokio, no clock, no threads: a run is a pure function of its seed. Only
//! the tonic runner ([`transport::tonic`]) uses tokio and real time.

pub mod alive_seen;
pub mod byzantine;
pub mod checkers;
pub mod election;
pub mod engine;
pub mod fabric;
pub mod faults;
pub mod figures;
pub mod gate;
pub mod lifecycle;
pub mod node;
pub mod pki;
pub mod rate;
pub mod scenario;
pub mod sim;
pub mod state_transfer;
pub mod stats;
pub mod toy;
pub mod transport;

#[cfg(test)]
mod tests;
