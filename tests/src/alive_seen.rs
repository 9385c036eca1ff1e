//! What each node learned about the others' alive messages, as both transports observe it: per
//! (receiver, subject), the newest accepted alive message's timestamp and metadata, from alive
//! messages themselves and from the ones a membership response carries.

use std::collections::BTreeMap;

use bytes::Bytes;
use gossip_engine::types::PkiId;
use gossip_proto::gossip::gossip_message::Content;
use gossip_proto::gossip::{AliveMessage, GossipMessage};
use prost::Message;

/// (receiver, subject) → (inc_num, seq_num, metadata) of the newest alive message seen.
#[derive(Debug, Default)]
pub struct AliveSeen {
    newest: BTreeMap<(usize, usize), (u64, u64, Bytes)>,
}

impl AliveSeen {
    /// Records the alive messages in a message node `to` accepted; `index_of` maps a PKI-ID to
    /// its node (unknown subjects are skipped).
    pub fn observe(
        &mut self,
        to: usize,
        message: &GossipMessage,
        index_of: impl Fn(&PkiId) -> Option<usize>,
    ) {
        match &message.content {
            Some(Content::AliveMsg(alive)) => self.observe_alive(to, alive, &index_of),
            Some(Content::MemRes(res)) => {
                for envelope in &res.alive {
                    if let Ok(GossipMessage {
                        content: Some(Content::AliveMsg(alive)),
                        ..
                    }) = GossipMessage::decode(envelope.payload.clone())
                    {
                        self.observe_alive(to, &alive, &index_of);
                    }
                }
            }
            _ => {}
        }
    }

    fn observe_alive(
        &mut self,
        to: usize,
        alive: &AliveMessage,
        index_of: &impl Fn(&PkiId) -> Option<usize>,
    ) {
        let (Some(member), Some(ts)) = (&alive.membership, &alive.timestamp) else {
            return;
        };
        let Some(about) = PkiId::from_slice(&member.pki_id).and_then(|p| index_of(&p)) else {
            return;
        };
        let entry = self.newest.entry((to, about)).or_default();
        if (ts.inc_num, ts.seq_num) >= (entry.0, entry.1) {
            *entry = (ts.inc_num, ts.seq_num, member.metadata.clone());
        }
    }

    /// The metadata of the newest alive message about `about` that `to` accepted.
    pub fn metadata(&self, to: usize, about: usize) -> Option<&Bytes> {
        self.newest.get(&(to, about)).map(|(_, _, m)| m)
    }
}
