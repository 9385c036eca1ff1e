//! What the simulator needs from a node: the sans-IO `Node` contract (`handle_*` in, `poll_*` out)
//! as a trait, so the simulator is tested with a small toy node of its own ([`crate::toy`]) and runs
//! the engine's `Node` through the same code.

use std::sync::Arc;

use bytes::Bytes;
use gossip_engine::config::GossipConfig;
use gossip_engine::crypto::LocalSigner;
use gossip_engine::event::{Command, Event, IoRequest, IoResult, Transmit};
use gossip_engine::ingress::{IdentityStore, ReceivedMessage, Verified};
use gossip_engine::time::Instant;
use gossip_engine::types::PkiId;

/// Everything a node is built from (the engine's `NodeParams`, field for field).
#[derive(Clone, Debug)]
pub struct NodeSetup {
    /// Protocol settings.
    pub config: GossipConfig,
    /// External endpoint (empty: invisible to other orgs).
    pub external_endpoint: String,
    /// Internal endpoint, `peerX.orgY:7051`.
    pub internal_endpoint: String,
    /// Bootstrap endpoints.
    pub bootstrap: Vec<String>,
    /// The node's identity and key.
    pub signer: Arc<LocalSigner>,
    /// The identity store the node shares with its ingress (and the simulated handshake).
    pub identities: Arc<IdentityStore>,
    /// The node's RNG seed, derived from the master seed.
    pub rng_seed: u64,
}

/// The sans-IO node contract. After any `handle_*` the simulator drains `poll_transmit`,
/// `poll_io` and `poll_event` until `None`, then re-arms `poll_timeout`.
pub trait SimNode: Sized {
    /// Starts a node at `now`.
    fn start(setup: NodeSetup, now: Instant) -> Self;
    /// A message that passed ingress.
    fn handle_message(&mut self, message: Verified<ReceivedMessage>, now: Instant);
    /// The deadline of `poll_timeout` passed.
    fn handle_timeout(&mut self, now: Instant);
    /// An application command.
    fn handle_command(&mut self, command: Command, now: Instant);
    /// The outcome of an IO request, or a comm notification.
    fn handle_io(&mut self, result: IoResult, now: Instant);
    /// Next message to send.
    fn poll_transmit(&mut self) -> Option<Transmit>;
    /// Next event for the application.
    fn poll_event(&mut self) -> Option<Event>;
    /// Next IO request.
    fn poll_io(&mut self) -> Option<IoRequest>;
    /// Next deadline.
    fn poll_timeout(&self) -> Option<Instant>;
    /// PKI-IDs of the alive members, sorted.
    fn alive_members(&self) -> Vec<PkiId>;
    /// PKI-IDs of the dead members, sorted.
    fn dead_members(&self) -> Vec<PkiId>;
    /// PKI-IDs of the peers known to be in `channel`, sorted.
    fn channel_members(&self, channel: &[u8]) -> Vec<PkiId>;
}

/// A node's channel name as `Bytes`.
pub fn channel_bytes(name: &str) -> Bytes {
    Bytes::copy_from_slice(name.as_bytes())
}
