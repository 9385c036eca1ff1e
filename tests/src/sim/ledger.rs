//! The simulated peers' ledgers: what each node committed, per channel. A ledger outlives its
//! node's crashes, as a durable one does, so a restarted node resumes from its height.

use std::collections::BTreeMap;

use bytes::Bytes;
use gossip_proto::gossip::Payload;

/// One node's committed blocks.
#[derive(Debug, Default)]
pub struct SimLedger {
    channels: BTreeMap<Bytes, BTreeMap<u64, Payload>>,
}

impl SimLedger {
    /// Commits a block delivered in order; returns the new height (`seq + 1`).
    pub fn commit(&mut self, channel: &Bytes, payload: &Payload) -> u64 {
        let blocks = self.channels.entry(channel.clone()).or_default();
        blocks.insert(payload.seq_num, payload.clone());
        payload.seq_num + 1
    }

    /// The height of a channel: one past the newest block, 1 when none.
    pub fn height(&self, channel: &[u8]) -> u64 {
        self.channels
            .get(channel)
            .and_then(|b| b.last_key_value())
            .map_or(1, |(s, _)| s + 1)
    }

    /// The committed blocks `start..=end` of a channel.
    pub fn blocks(&self, channel: &[u8], start: u64, end: u64) -> Vec<Payload> {
        self.channels.get(channel).map_or_else(Vec::new, |b| {
            b.range(start..=end).map(|(_, p)| p.clone()).collect()
        })
    }
}
