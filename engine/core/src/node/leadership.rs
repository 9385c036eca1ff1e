//! The node's leader-election surface: which channels this peer leads, and Fabric's `Yield`.
//! Each joined channel runs its own election (`components::election`, wired in the channel).

use super::Node;
use crate::components::channel;
use crate::time::Instant;

impl Node {
    /// Whether this peer leads a joined channel now (its election's decision, or static
    /// `orgLeader` with election off); `None` when not joined.
    pub fn is_leader(&self, channel: &[u8]) -> Option<bool> {
        self.channels.get(channel).map(|ch| ch.is_leader())
    }

    /// Fabric's `Yield` of a channel's election: a leader steps down and stays out of elections
    /// for `leaderAliveThreshold × 6`. Anything else ignores it.
    pub(super) fn yield_leadership(&mut self, channel: &[u8], now: Instant) {
        let ctx = channel::Ctx::new(&self.discovery, &self.signer, &self.config, now);
        if let Some(ch) = self.channels.get_mut(channel) {
            ch.yield_leadership(&ctx, &mut self.out);
        }
    }
}
