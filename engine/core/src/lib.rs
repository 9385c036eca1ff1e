//! # gossip-core
//!
//! The sans-IO core of Hyperledger Fabric's gossip: every protocol decision, and nothing else. The
//! network driver (`gossip-engine`) and the deterministic simulator (`gossip-harness`) run the same
//! [`Node`].
//!
//! ## Layout and data flow
//!
//! ```text
//!  driver ──► ingress/ ─────────────► components/ ──► egress/ ──────────► driver
//!  (reader    decode → pre-check →    (state           emitter → partition
//!   task)     verify → accept          machines)        → filter → transmits
//! ```
//!
//! - [`crypto`]: identities, PKI-IDs, ECDSA verification with Fabric's low-S rule, MSP validation,
//!   envelopes, and the [`crypto::Sign`] trait the embedder's signer implements.
//! - [`wire`]: message kinds, tag legality, which messages are signed.
//! - [`ingress`]: the checks a received envelope passes before anything acts on it.
//! - [`components`]: discovery, channels, the message store.
//! - [`egress`]: emitter, partition, routing filters.
//! - [`node`]: [`Node`], where the stages are wired.
//!
//! ## The sans-IO contract, by construction
//!
//! This crate depends on no async runtime, spawns no thread, opens no file, reads no clock and
//! draws no OS randomness: its dependencies are the protobuf types, `bytes`, `ring` (verification
//! and hashing only), x509 parsing, `parking_lot` and `crossbeam-queue` (the ingress caches the
//! driver's reader tasks share), and a seeded RNG. Time is an argument ([`time::Instant`]);
//! signatures come from the embedder's [`crypto::Sign`]; identity changes are inputs
//! ([`Node::handle_identity`]). `cargo tree -p gossip-core -e normal` shows it.

pub mod bounded;
pub mod components;
pub mod config;
pub mod crypto;
pub mod egress;
pub mod event;
pub mod ingress;
pub mod node;
pub mod outbox;
pub mod time;
pub mod types;
pub mod wire;

pub use node::{Node, NodeParams, NodeStats};
pub use types::PkiId;

// The test kit's PKI generator and golden vectors, compiled into this crate's own unit tests: a
// dev-dependency on `gossip-testkit` would link a second copy of this crate, whose types differ
// from the ones under test. The test kit names this crate `gossip_core`, hence the alias.
#[cfg(test)]
extern crate self as gossip_core;
// gossip-engine's software signer, for the same tests (the core has no signer of its own).
#[cfg(test)]
extern crate self as gossip_engine;
#[cfg(test)]
#[allow(dead_code)]
#[path = "../../testkit/src/golden.rs"]
pub(crate) mod golden;
#[cfg(test)]
#[path = "../../net/src/signing_key.rs"]
pub(crate) mod signing_key;
#[cfg(test)]
#[allow(dead_code)]
#[path = "../../testkit/src/testpki/mod.rs"]
pub(crate) mod testpki;
