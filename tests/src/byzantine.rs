//! Byzantine pull responders for the simulator: the engine's node, except that when it is the
//! liar ([`LIAR`], node 1 of org 1) its answers to pull messages are its [`Lie`]'s, never its
//! honest node's. Everything else it does, pulling for itself included, is honest, so it
//! completes like the others; the scenario checks that its lies never stop the honest peers.
//!
//! Lies, each answering every hello at once with a digest of blocks 1 to [`ADVERTISED_MAX`]
//! (whatever it holds, from the start):
//! - [`EmptyPromises`]: requests get no answer: nothing it advertises is ever served;
//! - [`GarbageUpdates`]: a request gets, under its nonce, blocks that do not verify (each claims
//!   its number but holds the next block's bytes);
//! - [`WrongNonces`]: the digest echoes a nonce the initiator never sent.
//!
//! [`far_future_blocks`] is a hostile pusher instead: a channel peer sending every other peer
//! blocks that verify (as an orderer-signed one would) but lie far beyond the channel's height.
//! [`inflated_height`] is a peer whose StateInfo advertises a ledger height it does not have.

use std::collections::VecDeque;
use std::marker::PhantomData;
use std::sync::Arc;

use bytes::Bytes;
use gossip_engine::crypto::envelope::noop_sign;
use gossip_engine::event::{Command, Event, IoRequest, IoResult, Lane, RemotePeer, Transmit};
use gossip_engine::ingress::{IdentityChange, ReceivedMessage, Verified};
use gossip_engine::node::Node;
use gossip_engine::outbox::DropReason;
use gossip_engine::time::Instant;
use gossip_engine::types::PkiId;
use gossip_proto::gossip::gossip_message::Content;
use gossip_proto::gossip::{DataDigest, DataUpdate, GossipMessage, PullMsgType};
use prost::Message;

use crate::engine::EngineNode;
use crate::fabric;
use crate::node::{NodeSetup, SimNode, channel_bytes};
use crate::scenario::{Op, Scenario, block, secs};
use crate::sim::{Sim, internal_endpoint};

/// The lying node: peer 1 of org 1.
pub const LIAR: usize = 1;

/// A liar's digests advertise blocks 1 to this number.
pub const ADVERTISED_MAX: u64 = 40;

/// What a liar answers to a pull message it received (`None`: nothing).
pub trait Lie: Send + Sync + 'static {
    /// A short name for the scenario.
    const NAME: &'static str;
    /// The answer to a request (a hello is answered by [`lying_digest`]).
    fn answer_request(request: &GossipMessage) -> Option<GossipMessage>;
    /// The nonce its digest echoes for a hello's `nonce`.
    fn digest_nonce(nonce: u64) -> u64 {
        nonce
    }
}

/// The digest a liar answers `hello` with: blocks 1 to [`ADVERTISED_MAX`].
pub fn lying_digest(hello: &GossipMessage, nonce: u64) -> GossipMessage {
    GossipMessage {
        content: Some(Content::DataDig(DataDigest {
            nonce,
            digests: (1..=ADVERTISED_MAX)
                .map(|s| Bytes::from(s.to_string()))
                .collect(),
            msg_type: PullMsgType::BlockMsg as i32,
        })),
        ..hello.clone()
    }
}

/// Advertises what it cannot serve, serves nothing.
#[derive(Debug)]
pub struct EmptyPromises;

impl Lie for EmptyPromises {
    const NAME: &'static str = "pull-liar-empty-promises";
    fn answer_request(_: &GossipMessage) -> Option<GossipMessage> {
        None
    }
}

/// Advertises everything, answers with blocks that do not verify.
#[derive(Debug)]
pub struct GarbageUpdates;

impl Lie for GarbageUpdates {
    const NAME: &'static str = "pull-liar-garbage-updates";
    fn answer_request(request: &GossipMessage) -> Option<GossipMessage> {
        let Some(Content::DataReq(r)) = &request.content else {
            return None;
        };
        let channel = String::from_utf8_lossy(&request.channel).into_owned();
        let data = r
            .digests
            .iter()
            .filter_map(|d| std::str::from_utf8(d).ok()?.parse::<u64>().ok())
            .map(|seq| {
                let mut forged = block(&channel, seq + 1);
                if let Some(Content::DataMsg(d)) = &mut forged.content
                    && let Some(p) = &mut d.payload
                {
                    p.seq_num = seq;
                }
                noop_sign(forged.encode_to_vec().into())
            })
            .collect();
        Some(GossipMessage {
            content: Some(Content::DataUpdate(DataUpdate {
                nonce: r.nonce,
                data,
                msg_type: PullMsgType::BlockMsg as i32,
            })),
            ..request.clone()
        })
    }
}

/// Echoes nonces the initiator never sent.
#[derive(Debug)]
pub struct WrongNonces;

impl Lie for WrongNonces {
    const NAME: &'static str = "pull-liar-wrong-nonces";
    fn answer_request(_: &GossipMessage) -> Option<GossipMessage> {
        None
    }
    fn digest_nonce(nonce: u64) -> u64 {
        nonce ^ 1
    }
}

/// The engine's node, lying as `L` when it is [`LIAR`].
pub struct LiarNode<L> {
    inner: Node,
    lying: bool,
    lies: VecDeque<Transmit>,
    _lie: PhantomData<L>,
}

impl<L> LiarNode<L> {
    /// The engine's node inside.
    pub fn inner(&self) -> &Node {
        &self.inner
    }
}

impl<L: Lie> SimNode for LiarNode<L> {
    fn start(setup: NodeSetup, now: Instant) -> Self {
        let lying = setup.internal_endpoint == internal_endpoint(0, LIAR);
        Self {
            inner: Node::new(setup, now),
            lying,
            lies: VecDeque::new(),
            _lie: PhantomData,
        }
    }
    fn handle_message(&mut self, message: Verified<ReceivedMessage>, now: Instant) {
        if self.lying {
            let received = &message.message;
            let lie = match &received.content {
                Some(Content::Hello(h)) => Some(lying_digest(received, L::digest_nonce(h.nonce))),
                Some(Content::DataReq(_)) => L::answer_request(received),
                _ => None,
            };
            if let Some(lie) = lie {
                self.lies.push_back(Transmit {
                    to: RemotePeer {
                        pki_id: Some(message.from),
                        endpoint: String::new(),
                    },
                    lane: Lane::of(&lie),
                    envelope: noop_sign(lie.encode_to_vec().into()),
                });
            }
        }
        self.inner.handle_message(message, now);
    }
    fn handle_timeout(&mut self, now: Instant) {
        self.inner.handle_timeout(now);
    }
    fn handle_command(&mut self, command: Command, now: Instant) {
        self.inner.handle_command(command, now);
    }
    fn handle_io(&mut self, result: IoResult, now: Instant) {
        self.inner.handle_io(result, now);
    }
    fn handle_identity(&mut self, change: IdentityChange, now: Instant) {
        self.inner.handle_identity(change, now);
    }
    fn poll_transmit(&mut self) -> Option<Transmit> {
        if let Some(lie) = self.lies.pop_front() {
            return Some(lie);
        }
        loop {
            let t = self.inner.poll_transmit()?;
            if !self.lying {
                return Some(t);
            }
            // The honest answers never leave the liar.
            let honest_answer = GossipMessage::decode(t.envelope.payload.clone()).is_ok_and(|m| {
                matches!(
                    m.content,
                    Some(Content::DataDig(_) | Content::DataUpdate(_))
                )
            });
            if !honest_answer {
                return Some(t);
            }
        }
    }
    fn poll_event(&mut self) -> Option<Event> {
        self.inner.poll_event()
    }
    fn poll_io(&mut self) -> Option<IoRequest> {
        self.inner.poll_io()
    }
    fn poll_timeout(&self) -> Option<Instant> {
        self.inner.poll_timeout()
    }
    fn alive_members(&self) -> Vec<PkiId> {
        SimNode::alive_members(&self.inner)
    }
    fn dead_members(&self) -> Vec<PkiId> {
        SimNode::dead_members(&self.inner)
    }
    fn channel_members(&self, channel: &[u8]) -> Vec<PkiId> {
        SimNode::channel_members(&self.inner, channel)
    }
}

/// Fabric's TestPull ([`fabric::pull_only`]: every block by pull alone) with [`LIAR`] lying as
/// `L`: every honest peer still gets every block, and what the lie must cost the honest peers
/// was paid (`WrongNonces`: nonces refused; `GarbageUpdates`: blocks refused). Sim-only.
pub fn liar_among_pullers<L: Lie>() -> Scenario<LiarNode<L>> {
    let mut s = fabric::pull_only::<LiarNode<L>>();
    s.name = L::NAME;
    let counted = Arc::new(|sim: &mut Sim<LiarNode<L>>| {
        // A few more rounds, so the liar answered rounds of every peer.
        sim.run_for(secs(5));
        let reason = if L::NAME == WrongNonces::NAME {
            DropReason::UnknownNonce
        } else if L::NAME == GarbageUpdates::NAME {
            DropReason::BadBlock
        } else {
            return Ok(());
        };
        let refused: u64 = (0..sim.len())
            .filter(|&i| i != LIAR)
            .filter_map(|i| sim.node(i))
            .map(|n| n.inner().stats().dropped(reason))
            .sum();
        (refused > 0).then_some(()).ok_or(format!(
            "no honest peer refused the liar's answers ({reason:?})"
        ))
    });
    s.step(Op::Custom(counted))
}

/// The far-future blocks [`far_future_blocks`] pushes: one 1,000 past the channel's height
/// then, and one at 10^15.
pub const FAR_FUTURE_SEQS: [u64; 2] = [5 + 1_000, 1_000_000_000_000_000];

/// Dissemination among 6 peers (push at fan-out 3, pull repairing) where, after 5 honest blocks,
/// peer [`LIAR`] pushes every other peer the blocks [`FAR_FUTURE_SEQS`], which verify (here no
/// orderer policy is set, so they pass as an orderer-signed block would): every peer refuses to
/// store them and counts them (`BlockBeyondWindow`; it relays each once), they move no block
/// store's window, and the 10 honest
/// blocks that follow still reach every peer, in order, once. Sim-only.
pub fn far_future_blocks() -> Scenario<EngineNode> {
    let s = fabric::base("far-future-blocks", 6).step(Op::AwaitConverged { within: secs(30) });
    let push_far = Arc::new(|sim: &mut Sim<EngineNode>| {
        for to in (0..sim.len()).filter(|&i| i != LIAR) {
            for seq in FAR_FUTURE_SEQS {
                sim.inject(LIAR, to, noop_sign(block("A", seq).encode_to_vec().into()));
            }
        }
        sim.run_for(secs(1));
        Ok(())
    });
    let counted = Arc::new(|sim: &mut Sim<EngineNode>| {
        for i in (0..sim.len()).filter(|&i| i != LIAR) {
            let node = sim.node(i).ok_or(format!("node {i} is down"))?;
            let refused = node.stats().dropped(DropReason::BlockBeyondWindow);
            if refused < FAR_FUTURE_SEQS.len() as u64 {
                return Err(format!("node {i} refused {refused} far-future blocks"));
            }
        }
        Ok(())
    });
    fabric::join_all(s, "A")
        .step(Op::InjectBlocks {
            from: 0,
            channel: "A",
            count: 5,
        })
        .step(Op::AwaitBlocks {
            channel: "A",
            within: secs(10),
        })
        .step(Op::Custom(push_far))
        .step(Op::InjectBlocks {
            from: 0,
            channel: "A",
            count: 10,
        })
        .step(Op::AwaitBlocks {
            channel: "A",
            within: secs(20),
        })
        .step(Op::Custom(counted))
}

/// The ledger height peer [`LIAR`] advertises in [`inflated_height`].
pub const INFLATED_HEIGHT: u64 = 1_000_000_000_000_000;

/// 6 peers (push at fan-out 3, pull repairing); after 5 honest blocks peer [`LIAR`] advertises
/// ledger height [`INFLATED_HEIGHT`] in its StateInfo (signed by itself, so valid: a StateInfo's
/// height is its signer's own word). Every other peer sees the lie as its channel's highest
/// advertised height, while the height a majority of its peers advertise stays the honest one
/// (what gossip-node's `/healthz` ledger check compares with), and the 10 honest blocks that
/// follow still reach every honest peer, in order, once. Sim-only.
pub fn inflated_height() -> Scenario<EngineNode> {
    let s = fabric::base("inflated-height", 6).step(Op::AwaitConverged { within: secs(30) });
    let lie = Arc::new(|sim: &mut Sim<EngineNode>| {
        let command = Command::UpdateLedgerHeight {
            channel: channel_bytes("A"),
            height: INFLATED_HEIGHT,
        };
        sim.command_in(std::time::Duration::ZERO, LIAR, command);
        sim.run_for(secs(10));
        for i in (0..sim.len()).filter(|&i| i != LIAR) {
            let node = sim.node(i).ok_or(format!("node {i} is down"))?;
            let summaries = node.channel_summaries();
            let ch = summaries
                .iter()
                .find(|c| &c.channel[..] == b"A")
                .ok_or(format!("node {i} is not in channel A"))?;
            if ch.peers_ledger_height_max != INFLATED_HEIGHT {
                return Err(format!("node {i} never saw the lie: {ch:?}"));
            }
            if ch.peers_ledger_height_majority > ch.ledger_height + 1 {
                return Err(format!(
                    "node {i}: the lie moved the majority height: {ch:?}"
                ));
            }
        }
        Ok(())
    });
    let honest_complete = Arc::new(|sim: &mut Sim<EngineNode>| {
        let want = sim
            .checkers()
            .delivered(0, "A")
            .cloned()
            .unwrap_or_default();
        if want.len() != 15 {
            return Err(format!("the injector delivered {want:?}"));
        }
        for i in (1..sim.len()).filter(|&i| i != LIAR) {
            let got = sim.checkers().delivered(i, "A");
            if got != Some(&want) {
                return Err(format!("node {i} delivered {got:?}, not {want:?}"));
            }
        }
        Ok(())
    });
    fabric::join_all(s, "A")
        .step(Op::InjectBlocks {
            from: 0,
            channel: "A",
            count: 5,
        })
        .step(Op::AwaitBlocks {
            channel: "A",
            within: secs(10),
        })
        .step(Op::Custom(lie))
        .step(Op::InjectBlocks {
            from: 0,
            channel: "A",
            count: 10,
        })
        .step(Op::Wait(secs(20)))
        .step(Op::Custom(honest_complete))
}
