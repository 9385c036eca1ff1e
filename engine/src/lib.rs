//! # gossip-engine
//!
//! Hyperledger Fabric's gossip subsystem in Rust, wire-compatible with Fabric peers: the same
//! `gossip.Gossip` gRPC service and `message.proto` bytes, the same ConnEstablish handshake over
//! mutual TLS, the same ECDSA P-256 identities and PKI-IDs.
//!
//! ## Layout and data flow
//!
//! ```text
//!  net/conn ──► ingress/ ─────────────► components/ ──► egress/ ──────────► net/conn
//!  (tonic,      decode → pre-check →    (sans-IO state   emitter → partition
//!   mTLS,       verify → demux          machines)        → filter → send lanes
//!   handshake)
//! ```
//!
//! - [`crypto`]: identities, PKI-IDs, ECDSA with Fabric's low-S rule, MSP validation, envelopes.
//! - [`wire`]: message kinds, tag legality, which messages are signed.
//! - [`ingress`]: the checks a received envelope passes before anything acts on it.
//! - `net` (feature `net`, on by default): the only async code: tonic server and client, TLS,
//!   the handshake, the connection store, send lanes and the demux.
//!
//! ## The sans-IO contract
//!
//! Everything outside `net/` and `bin/` is synchronous and deterministic: no tokio, no tonic, no
//! clock reads, no OS randomness in protocol decisions (ECDSA signing nonces come from ring's
//! `SystemRandom`, which never affects control flow). Time is an argument ([`time::Instant`]).
//! The crate builds with `--no-default-features`, and CI checks that.

pub mod bounded;
pub mod components;
pub mod config;
pub mod crypto;
pub mod egress;
pub mod event;
pub mod ingress;
#[cfg(feature = "net")]
pub mod net;
pub mod node;
#[cfg(feature = "node")]
pub mod nodecfg;
pub mod outbox;
pub mod time;
pub mod types;
pub mod wire;

pub use node::{Node, NodeParams, NodeStats};
pub use types::PkiId;
