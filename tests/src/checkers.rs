//! Safety invariants, checked on every delivery, transmit and event as the simulation runs:
//!
//! - **verified only**: every message a node handles came out of its ingress (structural: the
//!   node's input type is `Verified<_>`); the checker also counts, per node, what ingress accepted
//!   and rejected, and that both tallies agree with the ingress's own counters;
//! - **in-order blocks**: `Event::Block` sequence numbers strictly increase per node and channel;
//! - **no channel leak**: a node not joined to channel C never gets `Event::Block` for C, and never
//!   even receives a data message (pushed or pulled) of C;
//! - **no endpoint leak**: no envelope delivered to a node of another org carries a secret envelope
//!   or, anywhere in its bytes, an internal endpoint of a peer outside the receiver's org;
//! - **no echo**: a block is never sent back to the peer it was first received from (forwarding
//!   excludes the sender of the first copy, as Fabric's does; a first copy beyond the node's
//!   admission bound is relayed that way, and a later copy the store takes is not forwarded
//!   again);
//! - **no disclosure** ([`disclosure`]): no delivered message tells a node about a peer of an org
//!   that shares no channel with the node's, about a foreign peer without external endpoint, or
//!   (membership and identities) about a peer of a third org.
//!
//! Liveness (convergence, completeness) is checked by the scenario after the safety phase.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::hash::{DefaultHasher, Hash, Hasher};

use bytes::Bytes;
use gossip_engine::types::PkiId;
use gossip_proto::gossip::gossip_message::Content;
use gossip_proto::gossip::{Envelope, GossipMessage, PullMsgType};
use prost::Message;

use crate::node::channel_bytes;

pub mod disclosure;

/// A broken invariant, with what the checker saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Violation {
    /// A block event out of order or repeated.
    BlockOrder {
        /// The node.
        node: usize,
        /// The channel.
        channel: String,
        /// Highest sequence delivered before.
        previous_seq: u64,
        /// The sequence delivered now.
        seq: u64,
    },
    /// A node outside a channel got one of its blocks (event) or data messages (wire).
    ChannelLeak {
        /// The node.
        node: usize,
        /// The channel.
        channel: String,
        /// `"event"` or the content kind that carried it.
        via: &'static str,
    },
    /// A cross-org envelope carried a secret envelope or an internal endpoint.
    EndpointLeak {
        /// Sender node.
        from: usize,
        /// Receiver node (another org).
        to: usize,
        /// The leaked endpoint, or `"secret_envelope"`.
        what: String,
    },
    /// A block went back to the peer it was first received from.
    Echo {
        /// The node that sent it back.
        node: usize,
        /// The peer it came from.
        to: usize,
    },
    /// A node handled a different number of messages than its ingress accepted.
    UnverifiedDelivery {
        /// The node.
        node: usize,
        /// Messages handed to the node.
        handled: u64,
        /// Messages ingress reports accepted.
        accepted: u64,
    },
    /// A delivered message told a node about a peer it may not learn of.
    Disclosure {
        /// Sender node.
        from: usize,
        /// Receiver node.
        to: usize,
        /// The peer the message told about.
        about: usize,
        /// The content that carried it (see [`disclosure::subjects`]).
        via: &'static str,
        /// Which rule it broke.
        why: &'static str,
    },
    /// A liveness expectation failed at its deadline.
    Liveness(String),
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::BlockOrder {
                node,
                channel,
                previous_seq,
                seq,
            } => write!(
                f,
                "block order: node {node} channel {channel} got seq {seq} after {previous_seq}"
            ),
            Violation::ChannelLeak { node, channel, via } => {
                write!(
                    f,
                    "channel leak: node {node} outside {channel} got it via {via}"
                )
            }
            Violation::EndpointLeak { from, to, what } => {
                write!(
                    f,
                    "endpoint leak: {from} -> {to} (other org) carried {what}"
                )
            }
            Violation::Echo { node, to } => {
                write!(f, "echo: node {node} sent a block back to {to}, its source")
            }
            Violation::UnverifiedDelivery {
                node,
                handled,
                accepted,
            } => write!(
                f,
                "unverified delivery: node {node} handled {handled}, ingress accepted {accepted}"
            ),
            Violation::Disclosure {
                from,
                to,
                about,
                via,
                why,
            } => write!(
                f,
                "disclosure: {from} -> {to} told about node {about} in {via}, but {why}"
            ),
            Violation::Liveness(what) => write!(f, "liveness: {what}"),
        }
    }
}

/// Who a node is, as the checkers need it.
#[derive(Clone, Debug)]
pub struct PeerFacts {
    /// Org index.
    pub org: usize,
    /// Internal endpoint.
    pub internal_endpoint: String,
    /// PKI-ID.
    pub pki_id: PkiId,
    /// Whether it publishes an external endpoint.
    pub external: bool,
}

/// The checkers' state.
#[derive(Debug, Default)]
pub struct Checkers {
    peers: Vec<PeerFacts>,
    by_pki: HashMap<PkiId, usize>,
    /// Whether every peer is of one org (the disclosure check has nothing to do).
    single_org: bool,
    /// (org, org) pairs listed together by some joined channel config, both ways.
    org_links: BTreeSet<(usize, usize)>,
    /// Subjects of cross-org deliveries inspected, per carrying content.
    cross_org_subjects: BTreeMap<&'static str, u64>,
    /// Channels each node joined.
    joined: Vec<BTreeSet<Bytes>>,
    /// Highest block seq per (node, channel) and every seq delivered.
    delivered: BTreeMap<(usize, Bytes), BTreeSet<u64>>,
    /// (node, block payload digest) → the peer it first came from.
    first_source: HashMap<(usize, u64), usize>,
    /// Per node: messages handled, ingress accepted, ingress rejected per reason.
    handled: Vec<u64>,
    accepted: Vec<u64>,
    rejects: BTreeMap<&'static str, u64>,
    violations: Vec<Violation>,
}

/// How many violations are kept (the first ones matter).
const VIOLATIONS_LEN_MAX: usize = 32;

impl Checkers {
    /// Checkers for these peers.
    pub fn new(peers: Vec<PeerFacts>) -> Self {
        let n = peers.len();
        Self {
            by_pki: peers
                .iter()
                .enumerate()
                .map(|(i, p)| (p.pki_id, i))
                .collect(),
            single_org: peers.iter().all(|p| p.org == peers[0].org),
            peers,
            joined: vec![BTreeSet::new(); n],
            handled: vec![0; n],
            accepted: vec![0; n],
            ..Self::default()
        }
    }

    fn violate(&mut self, v: Violation) {
        if self.violations.len() < VIOLATIONS_LEN_MAX {
            self.violations.push(v);
        }
    }

    /// The violations seen so far, first first.
    pub fn violations(&self) -> &[Violation] {
        &self.violations
    }

    /// Records a liveness failure.
    pub fn liveness_failed(&mut self, what: String) {
        self.violate(Violation::Liveness(what));
    }

    /// A node joined a channel.
    pub fn on_join(&mut self, node: usize, channel: &str) {
        self.joined[node].insert(channel_bytes(channel));
    }

    /// A node left a channel.
    pub fn on_leave(&mut self, node: usize, channel: &[u8]) {
        self.joined[node].remove(channel);
    }

    /// A node restarted: it has joined nothing yet. What it delivered before stays: its ledger
    /// survived, so it must go on from there, every block still exactly once and in order.
    pub fn on_restart(&mut self, node: usize) {
        self.joined[node].clear();
        self.first_source.retain(|(n, _), _| *n != node);
    }

    /// Channels `node` is joined to.
    pub fn joined(&self, node: usize) -> &BTreeSet<Bytes> {
        &self.joined[node]
    }

    /// Block seqs `node` delivered in `channel`.
    pub fn delivered(&self, node: usize, channel: &str) -> Option<&BTreeSet<u64>> {
        self.delivered.get(&(node, channel_bytes(channel)))
    }

    /// Ingress rejects per reason, all nodes.
    pub fn rejects(&self) -> &BTreeMap<&'static str, u64> {
        &self.rejects
    }

    /// An envelope arrives at `to` from `from`, before ingress.
    pub fn on_wire(&mut self, from: usize, to: usize, envelope: &Envelope) {
        if self.peers[from].org != self.peers[to].org {
            self.check_endpoint_leak(from, to, envelope);
        }
        let Ok(message) = GossipMessage::decode(envelope.payload.clone()) else {
            return;
        };
        self.check_disclosure(from, to, &message);
        match &message.content {
            Some(Content::DataMsg(_)) => self.check_channel(to, &message.channel, "data_msg"),
            Some(Content::DataUpdate(update))
                if update.msg_type == PullMsgType::BlockMsg as i32 =>
            {
                for item in &update.data {
                    if let Ok(inner) = GossipMessage::decode(item.payload.clone()) {
                        self.check_channel(to, &inner.channel, "data_update");
                    }
                }
            }
            _ => {}
        }
    }

    fn check_channel(&mut self, node: usize, channel: &Bytes, via: &'static str) {
        if !self.joined[node].contains(channel) {
            self.violate(Violation::ChannelLeak {
                node,
                channel: String::from_utf8_lossy(channel).into_owned(),
                via,
            });
        }
    }

    fn check_endpoint_leak(&mut self, from: usize, to: usize, envelope: &Envelope) {
        if envelope.secret_envelope.is_some() {
            self.violate(Violation::EndpointLeak {
                from,
                to,
                what: "secret_envelope".into(),
            });
        }
        let receiver_org = self.peers[to].org;
        // Endpoints are ASCII: the lossy text keeps every ASCII run of the payload, and `str`'s
        // substring search is far cheaper than a byte-window scan in debug builds.
        let text = String::from_utf8_lossy(&envelope.payload);
        let leaked = self
            .peers
            .iter()
            .filter(|p| p.org != receiver_org)
            .find(|p| contains(&text, &p.internal_endpoint))
            .map(|p| p.internal_endpoint.clone());
        if let Some(what) = leaked {
            self.violate(Violation::EndpointLeak { from, to, what });
        }
    }

    /// Ingress at `to` accepted a message from `from` (it goes to the node next).
    pub fn on_accepted(&mut self, from: usize, to: usize, envelope: &Envelope, is_block: bool) {
        self.handled[to] += 1;
        if is_block {
            self.first_source
                .entry((to, digest(&envelope.payload)))
                .or_insert(from);
        }
    }

    /// Ingress at `to` rejected a message.
    pub fn on_rejected(&mut self, reason: &'static str) {
        *self.rejects.entry(reason).or_default() += 1;
    }

    /// `node` transmits a block envelope to `to`.
    pub fn on_block_transmit(&mut self, node: usize, to: usize, envelope: &Envelope) {
        if self.first_source.get(&(node, digest(&envelope.payload))) == Some(&to) {
            self.violate(Violation::Echo { node, to });
        }
    }

    /// A node raised `Event::Block`.
    pub fn on_block_event(&mut self, node: usize, channel: &Bytes, seq: u64) {
        if !self.joined[node].contains(channel) {
            self.violate(Violation::ChannelLeak {
                node,
                channel: String::from_utf8_lossy(channel).into_owned(),
                via: "event",
            });
        }
        let seqs = self.delivered.entry((node, channel.clone())).or_default();
        let previous_seq = seqs.last().copied();
        seqs.insert(seq);
        if let Some(previous_seq) = previous_seq.filter(|&p| p >= seq) {
            self.violate(Violation::BlockOrder {
                node,
                channel: String::from_utf8_lossy(channel).into_owned(),
                previous_seq,
                seq,
            });
        }
    }

    /// Compares the handled tally of `node`'s current incarnation with its ingress counter.
    pub fn check_ingress_tally(&mut self, node: usize, accepted_by_ingress: u64) {
        self.accepted[node] = accepted_by_ingress;
        if self.handled[node] != accepted_by_ingress {
            self.violate(Violation::UnverifiedDelivery {
                node,
                handled: self.handled[node],
                accepted: accepted_by_ingress,
            });
        }
    }

    /// A node's ingress was replaced (restart): its tally starts over.
    pub fn reset_tally(&mut self, node: usize) {
        self.handled[node] = 0;
        self.accepted[node] = 0;
    }
}

/// A deterministic 64-bit digest (SipHash with fixed keys).
pub fn digest(bytes: &[u8]) -> u64 {
    let mut hasher = DefaultHasher::new();
    bytes.hash(&mut hasher);
    hasher.finish()
}

fn contains(haystack: &str, needle: &str) -> bool {
    !needle.is_empty() && haystack.contains(needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> Vec<PeerFacts> {
        (0..3)
            .map(|i| PeerFacts {
                org: usize::from(i == 2),
                internal_endpoint: format!("peer{i}.org:7051"),
                pki_id: PkiId([i as u8; 32]),
                external: true,
            })
            .collect()
    }

    #[test]
    fn block_order_and_channel_membership() {
        let mut c = Checkers::new(facts());
        let ch = channel_bytes("a");
        c.on_join(0, "a");
        c.on_block_event(0, &ch, 1);
        c.on_block_event(0, &ch, 2);
        assert!(c.violations().is_empty());
        c.on_block_event(0, &ch, 2);
        c.on_block_event(1, &ch, 1);
        assert_eq!(c.violations().len(), 2);
        assert!(matches!(
            c.violations()[0],
            Violation::BlockOrder { seq: 2, .. }
        ));
        assert!(matches!(
            c.violations()[1],
            Violation::ChannelLeak { node: 1, .. }
        ));
    }

    #[test]
    fn endpoint_leak_only_across_orgs() {
        let mut c = Checkers::new(facts());
        let env = Envelope {
            payload: Bytes::from_static(b"xx peer1.org:7051 yy"),
            ..Envelope::default()
        };
        c.on_wire(0, 1, &env);
        assert!(c.violations().is_empty());
        c.on_wire(0, 2, &env);
        assert_eq!(
            c.violations(),
            &[Violation::EndpointLeak {
                from: 0,
                to: 2,
                what: "peer1.org:7051".into()
            }]
        );
    }

    #[test]
    fn echo_is_sending_back_to_first_source() {
        let mut c = Checkers::new(facts());
        let env = Envelope {
            payload: Bytes::from_static(b"block"),
            ..Envelope::default()
        };
        c.on_accepted(1, 0, &env, true);
        c.on_accepted(2, 0, &env, true);
        c.on_block_transmit(0, 2, &env);
        assert!(c.violations().is_empty());
        c.on_block_transmit(0, 1, &env);
        assert_eq!(c.violations(), &[Violation::Echo { node: 0, to: 1 }]);
    }
}
