//! What the simulator needs from a node: the sans-IO `Node` contract (`handle_*` in, `poll_*` out)
//! as a trait, so the simulator is tested with a small toy node of its own ([`crate::toy`]) and runs
//! the engine's `Node` through the same code.

use bytes::Bytes;
use gossip_engine::event::{Command, Event, IoRequest, IoResult, Transmit};
use gossip_engine::ingress::{IdentityChange, ReceivedMessage, Verified};
use gossip_engine::time::Instant;
use gossip_engine::types::PkiId;

/// Everything a node is built from: the engine's own parameters, so the simulator starts real
/// nodes and toy nodes from the same value.
pub use gossip_engine::node::NodeParams as NodeSetup;

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
    /// A change of the node's identity store (the simulator hands them over before each
    /// message, as the tokio driver does). Required, so that a wrapper cannot forget to forward
    /// them (a node that never learns identities routes nothing to other orgs' peers).
    fn handle_identity(&mut self, change: IdentityChange, now: Instant);
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
    /// Whether the node leads `channel`; `None` when not joined (or no leader election).
    fn is_leader(&self, _channel: &[u8]) -> Option<bool> {
        None
    }
}

/// A node's channel name as `Bytes`.
pub fn channel_bytes(name: &str) -> Bytes {
    Bytes::copy_from_slice(name.as_bytes())
}
