//! # gossip-engine
//!
//! Hyperledger Fabric's gossip subsystem in Rust, wire-compatible with Fabric peers: the same
//! `gossip.Gossip` gRPC service and `message.proto` bytes, the same ConnEstablish handshake over
//! mutual TLS, the same ECDSA P-256 identities and PKI-IDs.
//!
//! This crate is the network driver around the sans-IO core ([`gossip_core`], re-exported here
//! module by module so embedders need one dependency): comm, gRPC framing, TLS, the handshake,
//! the driver task that owns the [`Node`], [`GossipHandle`], the verifier pool and MSP folder
//! loading. It is the only crate with async code.
//!
//! ```text
//!  TCP ─► TLS (rustls, ring) ─► HTTP/2 (tonic transport) ─► gRPC framing (grpc) ─► handshake (spec 2.2) ─► conn store
//!  per connection: reader ─► ingress precheck ─► verify_checks ─► accept ─► inbound queue ─► driver
//!                  writer ◄─ control lane, then data lane ◄─ Comm::send / send_blocking
//!                  (what is queued goes out as one chunk of frames, up to 32 KiB)
//! ```
//!
//! - [`comm`]: the public [`Comm`] API.
//! - [`handshake`]: building and checking ConnEstablish, typed [`HandshakeError`]s.
//! - [`tls`]: TLS material, rustls configs, the [`tls::NetIo`] byte stream;
//!   [`read_ahead`]: the TCP stream under TLS, which reads the socket in large pieces.
//! - [`client`]: the custom connector, Ping, the client half of the handshake.
//! - `server`: the listener, the custom incoming and the `gossip.Gossip` service.
//! - [`grpc`]: gRPC message framing over tonic's HTTP/2 transport (no tonic codec).
//! - `conn`, `conn_store`, `lanes`, `queue`, [`inbound`]: connections, the store, send lanes
//!   (the core picks each transmit's lane: blocks on data, the rest on control), the bounded
//!   async queues and the one inbound queue the driver pops.
//! - [`clock`]: the only real clock read.
//! - [`pool`]: the verifier pool (threads that check signatures in batches).
//! - [`msp_dir`]: loading MSP folders (the only file reads of the library).
//! - [`handle`]: [`GossipHandle`], the public API of a running instance; [`driver`]: the task that
//!   owns the node and pumps it; [`fanout`]: events to application subscribers.
//! - [`ledger`]: the [`Ledger`] an embedder may give (blocks committed, heights acknowledged,
//!   state requests served) and [`MemLedger`]; [`commit`]: the driver's committer thread.
//!
//! Where this differs from Fabric's comm (on purpose, for now):
//! - One shared inbound queue (`inbound_queue_len_max`) replaces Fabric's per-connection `msgChan`
//!   (Fabric's `recvBuffSize` is reported as ignored at start-up); a full queue back-pressures only the reader that is pushing.
//! - A peer is presumed dead when a dial, Ping or handshake fails, or when its transport fails while
//!   envelopes are still queued for it (Fabric: when `stream.Send` fails).
//! - The client always uses the `http` URI scheme: TLS is done by our connector, below tonic.
//! - A handshake rejection ends the server's response stream without a gRPC error status.

pub use gossip_core::{
    Node, NodeParams, NodeStats, PkiId, bounded, components, egress, event, ingress, node, outbox,
    time, types, wire,
};

/// The core's crypto, plus this crate's software signer.
pub mod crypto {
    pub use crate::signing_key::{SigningKey, local_signer_from_pems};
    pub use gossip_core::crypto::*;
}

/// The core's protocol settings and this crate's comm settings, in one place.
pub mod config {
    pub use crate::comm_config::*;
    pub use gossip_core::config::*;
}

pub mod bounds;
pub mod client;
pub mod clock;
pub mod comm;
mod comm_config;
pub mod commit;
mod conn;
mod conn_store;
pub mod driver;
mod driver_stats;
pub mod fanout;
pub mod grpc;
pub mod handle;
pub mod handshake;
pub mod histogram;
pub mod inbound;
pub mod lanes;
pub mod ledger;
pub mod msp_dir;
pub mod own_cert;
mod pending_dial;
pub mod pool;
mod queue;
pub mod read_ahead;
mod server;
pub mod signing_key;
pub mod stats;
pub mod tls;
pub mod uncommitted;
pub mod warn_limit;

pub use comm::{
    Comm, CommError, CommParams, IDENTITY_SWITCH_QUEUE_LEN_MAX, PRESUMED_DEAD_QUEUE_LEN_MAX,
    RemotePeer,
};
pub use conn::Direction;
pub use driver::{DriverStats, TransmitFilter};
pub use fanout::{Accepted, SubscribeError};
pub use handle::{
    CommSettings, GossipError, GossipHandle, GossipParams, GossipStats, NodeSettings,
    PeerIdentityInfo, StartError, StartOptions,
};
pub use handshake::{HandshakeError, RemotePeerInfo};
pub use inbound::Inbound;
pub use lanes::{EnqueueError, Lane};
pub use ledger::{Ledger, LedgerError, MemLedger};
pub use stats::CommStats;
pub use tls::{TlsMaterial, TlsSetupError};
