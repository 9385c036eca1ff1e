//! The simulator as a [`Cluster`]: every step keeps the simulated timing it always had (commands
//! at once then 1 ms, blocks 20 ms apart, conditions every 500 ms of simulated time), so seeds
//! replay as before.

use std::time::Duration;

use bytes::Bytes;
use gossip_engine::event::{AnchorPeer, Command};
use gossip_engine::types::PkiId;
use gossip_proto::gossip::GossipMessage;

use super::{Cluster, INJECT_SPACING};
use crate::checkers::Checkers;
use crate::node::SimNode;
use crate::scenario::Op;
use crate::sim::{PeerSpec, Sim};

/// How often liveness conditions are evaluated, in simulated time.
const CHECK_EVERY: Duration = Duration::from_millis(500);

/// The time a command step lets pass.
const SETTLE: Duration = Duration::from_millis(1);

impl<N: SimNode> Cluster<N> for Sim<N> {
    fn node_count(&self) -> usize {
        Sim::len(self)
    }

    fn spec(&self, i: usize) -> &PeerSpec {
        Sim::spec(self, i)
    }

    fn is_up(&self, i: usize) -> bool {
        Sim::is_up(self, i)
    }

    fn pki_id(&self, i: usize) -> PkiId {
        Sim::pki_id(self, i)
    }

    fn index_of(&self, pki_id: &PkiId) -> Option<usize> {
        Sim::index_of(self, pki_id)
    }

    fn elapsed(&self) -> Duration {
        Sim::elapsed(self)
    }

    fn check_every(&self) -> Duration {
        CHECK_EVERY
    }

    fn checkers(&self) -> &Checkers {
        Sim::checkers(self)
    }

    fn fail(&mut self, what: String) {
        self.fail_liveness(what);
    }

    fn anchor(&self, i: usize) -> AnchorPeer {
        let spec = Sim::spec(self, i);
        AnchorPeer {
            host: format!("peer{}.org{}.example.com", spec.peer, spec.org + 1),
            port: 7051,
        }
    }

    fn wait(&mut self, duration: Duration) {
        self.run_for(duration);
    }

    fn commands(&mut self, commands: Vec<(usize, Command)>) {
        for (node, command) in commands {
            self.command_in(Duration::ZERO, node, command);
        }
        self.run_for(SETTLE);
    }

    fn inject(&mut self, from: usize, messages: Vec<GossipMessage>) {
        let count = messages.len() as u32;
        for (k, message) in messages.into_iter().enumerate() {
            self.command_in(INJECT_SPACING * k as u32, from, Command::Gossip(message));
        }
        self.run_for(INJECT_SPACING * count);
    }

    fn crash(&mut self, i: usize) {
        self.crash_in(Duration::ZERO, i);
        self.run_for(SETTLE);
    }

    fn restart(&mut self, i: usize) {
        self.restart_in(Duration::ZERO, i);
        self.run_for(SETTLE);
    }

    fn alive_members(&mut self, i: usize) -> Option<Vec<PkiId>> {
        self.node(i).map(SimNode::alive_members)
    }

    fn dead_members(&mut self, i: usize) -> Option<Vec<PkiId>> {
        self.node(i).map(SimNode::dead_members)
    }

    fn channel_members(&mut self, i: usize, channel: &[u8]) -> Option<Vec<PkiId>> {
        self.node(i).map(|n| n.channel_members(channel))
    }

    fn alive_metadata(&self, to: usize, about: usize) -> Option<Bytes> {
        Sim::alive_metadata(self, to, about).cloned()
    }

    fn sim_only(&mut self, step: &Op<N>) -> Result<(), String> {
        match step {
            Op::Partition(groups) => {
                self.partition_in(Duration::ZERO, groups.clone());
                self.run_for(SETTLE);
            }
            Op::Heal => {
                self.heal_in(Duration::ZERO);
                self.run_for(SETTLE);
            }
            Op::SetLink(link) => self.set_default_link(*link),
            Op::Custom(f) => return f(self),
            _ => return Err("not a sim-only step".into()),
        }
        Ok(())
    }
}
