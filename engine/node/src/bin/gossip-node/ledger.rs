//! The node's ledger height: gossip-node has no ledger, so a block delivered in order counts as
//! committed, and the new height is published in the channel's StateInfo (Fabric's state provider
//! calls `UpdateLedgerHeight(seq + 1)` after each commit; Fabric peers choose pull and
//! state-transfer partners by that height).
//!
//! Heights are coalesced: the event fan-out records the newest height per channel without
//! waiting, and one task hands the latest to the gossip instance. Under load many deliveries
//! become one command, and a busy driver never holds up the event fan-out.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use gossip_engine::GossipHandle;
use parking_lot::Mutex;
use tokio::sync::Notify;

/// Heights committed and not yet handed to the gossip instance.
#[derive(Debug, Default)]
pub struct Heights {
    pending: Mutex<BTreeMap<Bytes, u64>>,
    changed: Notify,
}

impl Heights {
    /// Block `seq_num` of `channel` was delivered in order: the height is now `seq_num + 1`.
    pub fn committed(&self, channel: &Bytes, seq_num: u64) {
        let height = seq_num.saturating_add(1);
        let mut pending = self.pending.lock();
        let entry = pending.entry(channel.clone()).or_insert(height);
        *entry = (*entry).max(height);
        drop(pending);
        self.changed.notify_one();
    }

    /// The heights recorded since the last call, newest per channel.
    fn take(&self) -> BTreeMap<Bytes, u64> {
        std::mem::take(&mut *self.pending.lock())
    }
}

/// Publishes recorded heights until the gossip instance stops.
pub async fn publish(handle: GossipHandle, heights: Arc<Heights>) {
    loop {
        heights.changed.notified().await;
        for (channel, height) in heights.take() {
            if let Err(e) = handle.update_ledger_height(channel, height).await {
                tracing::debug!(target: "gossip-node", error = %e, "ledger height not published: gossip stopped");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_height_per_channel_wins_and_is_taken_once() {
        let heights = Heights::default();
        let (a, b) = (Bytes::from_static(b"a"), Bytes::from_static(b"b"));
        heights.committed(&a, 1);
        heights.committed(&a, 3);
        heights.committed(&a, 2);
        heights.committed(&b, 7);
        let taken = heights.take();
        assert_eq!(taken.get(&a), Some(&4));
        assert_eq!(taken.get(&b), Some(&8));
        assert!(heights.take().is_empty());
    }
}
