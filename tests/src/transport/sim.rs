//! The simulator as a [`Cluster`]: every step keeps the simulated timing it always had (commands
//! at once then 1 ms, blocks 20 ms apart, conditions every 500 ms of simulated time), so seeds
//! replay as before.

use std::time::Duration;

use bytes::Bytes;
use gossip_engine::event::{AnchorPeer, Command};
use gossip_engine::types::PkiId;
use gossip_proto::gossip::GossipMessage;
use gossip_proto::gossip::gossip_message::Content;

use super::{Cluster, INJECT_SPACING};
use crate::checkers::Checkers;
use crate::node::SimNode;
use crate::scenario::Op;
use crate::sim::{PeerSpec, Sim};

/// How often liveness conditions are evaluated, in simulated time.
const CHECK_EVERY: Duration = Duration::from_millis(500);

/// The time a command step lets pass.
const SETTLE: Duration = Duration::from_millis(1);

/// How often a blocked injection retries (Fabric's `enqueueRetryInterval`).
const INJECT_RETRY_INTERVAL: Duration = Duration::from_millis(100);

/// The longest an injection waits for its source to catch up before it goes in anyway.
pub const INJECT_BLOCKING_MAX: Duration = Duration::from_secs(60);

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

    /// Blocks enter the source as an orderer's deliver client hands them over: in order, and
    /// blocking (Fabric's `AddPayload` in blocking mode waits, retrying every 100 ms, while the
    /// source is `2 × blockBufferSize` blocks or more behind the block), so the one peer that
    /// has a new block never drops it. Bounded by [`INJECT_BLOCKING_MAX`].
    fn inject(&mut self, from: usize, messages: Vec<GossipMessage>) {
        let lead_max = 2 * self.gossip().state_block_buffer_len;
        for message in messages {
            let seq = match &message.content {
                Some(Content::DataMsg(d)) => d.payload.as_ref().map_or(0, |p| p.seq_num),
                _ => 0,
            };
            let channel = String::from_utf8_lossy(&message.channel).into_owned();
            let mut blocked = Duration::ZERO;
            while blocked < INJECT_BLOCKING_MAX && self.is_up(from) {
                let height = self
                    .checkers()
                    .delivered(from, &channel)
                    .and_then(|d| d.last())
                    .map_or(1, |s| s + 1);
                if seq < height + lead_max {
                    break;
                }
                self.run_for(INJECT_RETRY_INTERVAL);
                blocked += INJECT_RETRY_INTERVAL;
            }
            self.command_in(Duration::ZERO, from, Command::Gossip(message));
            self.run_for(INJECT_SPACING);
        }
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

    fn is_leader(&mut self, i: usize, channel: &[u8]) -> Option<bool> {
        self.node(i).and_then(|n| n.is_leader(channel))
    }

    fn alive_metadata(&self, to: usize, about: usize) -> Option<Bytes> {
        Sim::alive_metadata(self, to, about).cloned()
    }

    fn partition(&mut self, groups: &[Vec<usize>]) {
        self.partition_in(Duration::ZERO, groups.to_vec());
        self.run_for(SETTLE);
    }

    fn heal(&mut self) {
        self.heal_in(Duration::ZERO);
        self.run_for(SETTLE);
    }

    fn same_side(&self, a: usize, b: usize) -> bool {
        Sim::same_side(self, a, b)
    }

    fn sim_only(&mut self, step: &Op<N>) -> Result<(), String> {
        match step {
            Op::SetLink(link) => self.set_default_link(*link),
            Op::Custom(f) => return f(self),
            _ => return Err("not a sim-only step".into()),
        }
        Ok(())
    }
}
