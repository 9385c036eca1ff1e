//! Which blocks a channel takes now: the embedder asks before it gossips one (gossip-node's
//! `inject_block` answers an error for a block the channel would drop).

use super::Node;

impl Node {
    /// The first block number `channel` takes now, from the embedder or from peers: its delivery
    /// height plus twice `state.blockBufferSize`. `None` when not joined.
    pub fn admitted_end(&self, channel: &[u8]) -> Option<u64> {
        self.channels.get(channel).map(|ch| ch.admitted_end())
    }
}
