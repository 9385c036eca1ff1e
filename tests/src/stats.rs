//! Traffic counters of one simulation run.

use std::collections::BTreeMap;

use gossip_engine::wire::ContentKind;

/// The kind name under which identity pull messages are counted.
pub const IDENTITY_PULL: &str = "identity_pull";

/// Bound on [`SimStats::conns_closed`].
pub const CONNS_CLOSED_LEN_MAX: usize = 65_536;

/// What the simulated network carried.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SimStats {
    /// Handshakes refused because a side's identity did not validate (expired, revoked).
    pub handshakes_refused: u64,
    /// Connection closes the nodes asked for: (node, peer), the first
    /// [`CONNS_CLOSED_LEN_MAX`].
    pub conns_closed: Vec<(usize, gossip_engine::types::PkiId)>,
    /// Messages the nodes transmitted, per content kind name; identity pull messages (hello,
    /// digest, request and update) together under [`IDENTITY_PULL`], so that `data_update` is
    /// block pull alone.
    pub transmits_by_kind: BTreeMap<&'static str, u64>,
    /// Envelope bytes the nodes transmitted, per content kind name (signature lengths vary by a
    /// byte or two between runs; data messages are unsigned and exact).
    pub bytes_by_kind: BTreeMap<&'static str, u64>,
    /// Envelopes that reached a live node (duplicates included).
    pub delivered: u64,
    /// Envelopes dropped by link loss.
    pub lost: u64,
    /// Envelopes the link duplicated.
    pub duplicated: u64,
    /// Envelopes in flight to a node that went down.
    pub dropped_down: u64,
    /// Envelopes in flight across a partition cut after they were sent.
    pub dropped_partition: u64,
    /// Sends to a down or partitioned node (answered `PresumedDead`).
    pub send_failures: u64,
    /// Sends to a PKI-ID or endpoint no node has.
    pub unroutable: u64,
    /// Sends a node addressed to itself.
    pub self_sends: u64,
    /// Logical handshakes (first send on a link).
    pub handshakes: u64,
    /// Timer firings.
    pub timers: u64,
    /// `Event::Block` raised, all nodes.
    pub blocks_delivered: u64,
    /// Simulated time of the last `Event::Block`, nanoseconds since the start.
    pub last_block_at_ns: u64,
    /// Every `Event::BlockReceived` (a block's first receipt at a node, before in-order
    /// delivery): `(node, seq_num, nanoseconds since the start)`, in order of occurrence.
    pub block_receipts: Vec<BlockReceipt>,
    /// Membership requests and responses per `(source, target, kind name)` (only these kinds,
    /// to keep large runs cheap).
    pub membership_by_link: BTreeMap<(usize, usize, &'static str), u64>,
}

/// One first receipt of a block at a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockReceipt {
    /// The receiving node.
    pub node: usize,
    /// The block number.
    pub seq_num: u64,
    /// When, nanoseconds of simulated time since the start.
    pub at_ns: u64,
}

impl SimStats {
    pub(crate) fn record_transmit(
        &mut self,
        kind: ContentKind,
        identity_pull: bool,
        len_bytes: usize,
    ) {
        let name = if identity_pull {
            IDENTITY_PULL
        } else {
            kind.name()
        };
        *self.transmits_by_kind.entry(name).or_default() += 1;
        *self.bytes_by_kind.entry(name).or_default() += len_bytes as u64;
    }

    /// The counters that are exact functions of the seed: everything but the byte counts of
    /// kinds that carry signatures (ECDSA DER signatures vary in length by a byte or two).
    pub fn exact(&self) -> SimStats {
        let mut exact = self.clone();
        exact
            .bytes_by_kind
            .retain(|kind, _| *kind == ContentKind::DataMsg.name());
        exact
    }

    pub(crate) fn record_link(&mut self, from: usize, to: usize, kind: ContentKind) {
        if matches!(kind, ContentKind::MemReq | ContentKind::MemRes) {
            *self
                .membership_by_link
                .entry((from, to, kind.name()))
                .or_default() += 1;
        }
    }

    /// Membership messages (`"mem_req"` or `"mem_res"`) sent from `from` to `to`.
    pub fn link_transmits(&self, from: usize, to: usize, kind: &str) -> u64 {
        self.membership_by_link
            .iter()
            .filter(|((f, t, k), _)| *f == from && *t == to && *k == kind)
            .map(|(_, n)| *n)
            .sum()
    }

    /// Messages transmitted, all kinds.
    pub fn transmits(&self) -> u64 {
        self.transmits_by_kind.values().sum()
    }

    /// Messages transmitted of one kind.
    pub fn transmits_of(&self, kind: ContentKind) -> u64 {
        self.transmits_by_kind
            .get(kind.name())
            .copied()
            .unwrap_or(0)
    }

    /// Bytes transmitted of one kind.
    pub fn bytes_of(&self, kind: ContentKind) -> u64 {
        self.bytes_by_kind.get(kind.name()).copied().unwrap_or(0)
    }
}
