//! The async comm layer (feature `net`): the only async code in the crate.
//!
//! ```text
//!  TCP ─► TLS (rustls, ring) ─► tonic gossip.Gossip ─► handshake (spec 2.2) ─► conn store
//!  per connection: reader ─► ingress precheck ─► verify_checks ─► accept ─► inbound queue ─► demux
//!                  writer ◄─ control lane, then data lane ◄─ Comm::send / send_blocking
//! ```
//!
//! - [`comm`]: the public [`Comm`] API.
//! - [`handshake`]: building and checking ConnEstablish, typed [`HandshakeError`]s.
//! - [`tls`]: TLS material, rustls configs, the [`tls::NetIo`] byte stream.
//! - [`client`]: the custom connector, Ping, the client half of the handshake.
//! - `server`: the listener, the custom incoming and the `gossip.Gossip` service.
//! - `conn`, `conn_store`, `lanes`, `queue`, `demux`: connections, the store, send lanes, the
//!   bounded async queues and the subscriber demux.
//! - [`clock`]: the only real clock read.

pub mod client;
pub mod clock;
pub mod comm;
mod conn;
mod conn_store;
pub mod demux;
pub mod handshake;
pub mod lanes;
mod queue;
mod server;
pub mod stats;
pub mod tls;

pub use comm::{
    Comm, CommError, CommParams, IDENTITY_SWITCH_QUEUE_LEN_MAX, PRESUMED_DEAD_QUEUE_LEN_MAX,
    RemotePeer,
};
pub use conn::Direction;
pub use demux::Subscription;
pub use handshake::{HandshakeError, RemotePeerInfo};
pub use lanes::{EnqueueError, Lane};
pub use stats::CommStats;
pub use tls::{TlsMaterial, TlsSetupError};
