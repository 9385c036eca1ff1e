//! The engine's `Node` behind the simulator's [`SimNode`] contract.

use gossip_engine::event::{Command, Event, IoRequest, IoResult, Transmit};
use gossip_engine::ingress::{IdentityChange, ReceivedMessage, Verified};
use gossip_engine::node::Node;
use gossip_engine::time::Instant;
use gossip_engine::types::PkiId;

use crate::node::{NodeSetup, SimNode};

/// The engine's node, as the simulator runs it.
pub type EngineNode = Node;

fn sorted(mut ids: Vec<PkiId>) -> Vec<PkiId> {
    ids.sort_unstable();
    ids
}

impl SimNode for Node {
    fn start(setup: NodeSetup, now: Instant) -> Self {
        Node::new(setup, now)
    }

    fn handle_message(&mut self, message: Verified<ReceivedMessage>, now: Instant) {
        Node::handle_message(self, message, now);
    }

    fn handle_timeout(&mut self, now: Instant) {
        Node::handle_timeout(self, now);
    }

    fn handle_command(&mut self, command: Command, now: Instant) {
        Node::handle_command(self, command, now);
    }

    fn handle_io(&mut self, result: IoResult, now: Instant) {
        Node::handle_io(self, result, now);
    }

    fn handle_identity(&mut self, change: IdentityChange, now: Instant) {
        Node::handle_identity(self, change, now);
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        Node::poll_transmit(self)
    }

    fn poll_event(&mut self) -> Option<Event> {
        Node::poll_event(self)
    }

    fn poll_io(&mut self) -> Option<IoRequest> {
        Node::poll_io(self)
    }

    fn poll_timeout(&self) -> Option<Instant> {
        Node::poll_timeout(self)
    }

    fn alive_members(&self) -> Vec<PkiId> {
        sorted(self.peers().into_iter().map(|m| m.pki_id).collect())
    }

    fn dead_members(&self) -> Vec<PkiId> {
        sorted(self.dead_peers().into_iter().map(|m| m.pki_id).collect())
    }

    fn is_leader(&self, channel: &[u8]) -> Option<bool> {
        Node::is_leader(self, channel)
    }

    fn channel_members(&self, channel: &[u8]) -> Vec<PkiId> {
        sorted(
            self.peers_of_channel(channel)
                .into_iter()
                .map(|(m, _)| m.pki_id)
                .collect(),
        )
    }
}
