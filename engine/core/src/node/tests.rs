//! A small hand-wired cluster: nodes, their ingress, zero-latency delivery, and the driver's IO
//! answered inline. Checks membership convergence, in-order block delivery to the channel's
//! peers only, and that internal endpoints never reach another org.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use gossip_proto::gossip::gossip_message::{Content, Tag};
use gossip_proto::gossip::{DataMessage, Envelope, GossipMessage, Payload, PullMsgType};
use prost::Message;

use super::*;
use crate::event::AnchorPeer;
use crate::ingress::{
    IDENTITIES_LEN_MAX_DEFAULT, IdentityStore, Ingress, IngressConfig, NestedSignerPolicy,
};
use crate::testpki::{TestPki, TestPkiSpec};
use crate::types::OrgId;

mod identity;
mod lifecycle;

const START_UNIX_S: u64 = 1_700_000_000;

fn at_s(s: f64) -> Instant {
    Instant::from_nanos(START_UNIX_S * 1_000_000_000 + (s * 1e9) as u64)
}

struct Peer {
    node: Node,
    ingress: Ingress,
    identities: Arc<IdentityStore>,
    signer: Arc<LocalSigner>,
    org: OrgId,
    internal: String,
    external: String,
    blocks: BTreeMap<Bytes, Vec<u64>>,
    received: Vec<Envelope>,
}

struct Cluster {
    peers: Vec<Peer>,
    now: Instant,
    /// Transmits by (carries a block, lane).
    lanes: BTreeMap<(bool, Lane), u64>,
    /// Every transmit: (from, to, kind), identity pull messages apart.
    log: Vec<(usize, usize, ContentKind)>,
    /// Every identity pull transmit: (from, to, kind).
    identity_log: Vec<(usize, usize, ContentKind)>,
    /// Links that lose everything sent over them, (from, to).
    cut: std::collections::BTreeSet<(usize, usize)>,
    /// Every connection close a node asked for: (node, peer).
    closed: Vec<(usize, PkiId)>,
}

impl Cluster {
    /// `orgs[i]` peers in org i; every peer of an org bootstraps to the org's first peer.
    fn new(orgs: &[usize], with_external: bool, seed: u64) -> Cluster {
        Self::with_config(orgs, with_external, seed, GossipConfig::default())
    }

    fn with_config(
        orgs: &[usize],
        with_external: bool,
        seed: u64,
        config: GossipConfig,
    ) -> Cluster {
        Self::with_pki(&Self::pki(orgs), with_external, seed, config)
    }

    /// A fresh PKI with `orgs[i]` peers in org i.
    fn pki(orgs: &[usize]) -> TestPki {
        TestPki::generate(&TestPkiSpec {
            peers_per_org: orgs.to_vec(),
            ..TestPkiSpec::uniform(0, 0, START_UNIX_S as i64)
        })
        .unwrap()
    }

    /// A cluster of `pki`'s peers (fresh keys make PKI-IDs, and so their order, differ from one
    /// PKI to the next: a replay needs the same PKI).
    fn with_pki(pki: &TestPki, with_external: bool, seed: u64, config: GossipConfig) -> Cluster {
        let now = at_s(0.0);
        let msp = Arc::new(pki.msp_manager().unwrap());
        let mut peers = Vec::new();
        for (o, org) in pki.orgs.iter().enumerate() {
            for (p, test_peer) in org.peers.iter().enumerate() {
                let signer = Arc::new(test_peer.signer().unwrap());
                let identities = Arc::new(IdentityStore::new(
                    Arc::clone(&msp),
                    IDENTITIES_LEN_MAX_DEFAULT,
                ));
                identities
                    .put(signer.pki_id().as_bytes(), signer.identity().clone(), now)
                    .unwrap();
                let ingress = Ingress::new(
                    IngressConfig {
                        nested_signer_policy: NestedSignerPolicy::DropItem,
                        ..Default::default()
                    },
                    Arc::clone(&msp),
                    Arc::clone(&identities),
                );
                let internal = format!("10.0.{o}.{p}:7051");
                let external = if with_external {
                    format!("peer{p}.org{o}.example.com:7051")
                } else {
                    String::new()
                };
                let bootstrap = if p == 0 {
                    Vec::new()
                } else {
                    vec![format!("10.0.{o}.0:7051")]
                };
                let node = Node::new(
                    NodeParams {
                        config: config.clone(),
                        external_endpoint: external.clone(),
                        internal_endpoint: internal.clone(),
                        bootstrap,
                        signer: Arc::clone(&signer),
                        rng_seed: seed.wrapping_mul(1_000).wrapping_add(peers.len() as u64),
                    },
                    now,
                );
                peers.push(Peer {
                    node,
                    ingress,
                    identities,
                    org: OrgId::from(org.mspid.as_str()),
                    signer,
                    internal,
                    external,
                    blocks: BTreeMap::new(),
                    received: Vec::new(),
                });
            }
        }
        let mut c = Cluster {
            peers,
            now,
            lanes: BTreeMap::new(),
            log: Vec::new(),
            identity_log: Vec::new(),
            cut: Default::default(),
            closed: Vec::new(),
        };
        c.settle();
        c
    }

    fn index_of(&self, to: &RemotePeer) -> Option<usize> {
        self.peers.iter().position(|p| match to.pki_id {
            Some(id) => p.signer.pki_id() == id,
            None => p.internal == to.endpoint || p.external == to.endpoint,
        })
    }

    /// Puts each side's identity in the other's store (what the handshake does).
    fn link(&self, a: usize, b: usize) {
        let (pa, pb) = (&self.peers[a], &self.peers[b]);
        for (x, y) in [(pa, pb), (pb, pa)] {
            let _ = x.identities.put(
                y.signer.pki_id().as_bytes(),
                y.signer.identity().clone(),
                self.now,
            );
        }
    }

    /// Drains every node until nothing moves: transmits are delivered at once, IO answered.
    fn settle(&mut self) {
        let now = self.now;
        loop {
            let mut moved = false;
            for i in 0..self.peers.len() {
                while let Some(t) = self.peers[i].node.poll_transmit() {
                    moved = true;
                    let message = GossipMessage::decode(t.envelope.payload.clone()).unwrap();
                    let kind = ContentKind::of(&message);
                    let pull_type = wire::pull_msg_type(&message);
                    let is_block = kind == ContentKind::DataMsg
                        || (kind == ContentKind::DataUpdate
                            && pull_type == Some(PullMsgType::BlockMsg as i32));
                    let identity_pull = pull_type == Some(PullMsgType::IdentityMsg as i32);
                    *self.lanes.entry((is_block, t.lane)).or_default() += 1;
                    let Some(j) = self.index_of(&t.to) else {
                        continue;
                    };
                    if self.cut.contains(&(i, j)) {
                        continue;
                    }
                    if identity_pull {
                        self.identity_log.push((i, j, kind));
                    } else {
                        self.log.push((i, j, kind));
                    }
                    self.link(i, j);
                    let from = self.peers[i].signer.pki_id();
                    self.peers[j].received.push(t.envelope.clone());
                    if let Ok(v) = self.peers[j].ingress.receive_inline(from, t.envelope, now) {
                        let peer = &mut self.peers[j];
                        peer.identities
                            .take_changes(|change| peer.node.handle_identity(change, now));
                        peer.node.handle_message(v, now);
                    }
                }
                while let Some(io) = self.peers[i].node.poll_io() {
                    moved = true;
                    let answer = match io {
                        IoRequest::Handshake { endpoint, token } => {
                            let to = RemotePeer {
                                pki_id: None,
                                endpoint,
                            };
                            let result = match self.index_of(&to) {
                                Some(j) => {
                                    self.link(i, j);
                                    let p = &self.peers[j];
                                    Ok((p.signer.pki_id(), p.org.clone()))
                                }
                                None => Err("unreachable".to_owned()),
                            };
                            Some(IoResult::Handshake { token, result })
                        }
                        IoRequest::Probe { pki_id, .. } => Some(IoResult::Probe {
                            pki_id,
                            alive: true,
                        }),
                        IoRequest::CloseConn(p) => {
                            self.closed.push((i, p));
                            None
                        }
                        IoRequest::ReadBlocks { token, .. } => Some(IoResult::Blocks {
                            token,
                            blocks: Vec::new(),
                        }),
                    };
                    if let Some(answer) = answer {
                        self.peers[i].node.handle_io(answer, now);
                    }
                }
                while let Some(e) = self.peers[i].node.poll_event() {
                    moved = true;
                    if let Event::Block {
                        channel, payload, ..
                    } = e
                    {
                        let list = self.peers[i].blocks.entry(channel).or_default();
                        list.push(payload.seq_num);
                    }
                }
            }
            if !moved {
                break;
            }
        }
    }

    /// Advances simulated time to `until`, firing timers in order.
    fn run_until(&mut self, until: Instant) {
        loop {
            let next = self
                .peers
                .iter()
                .filter_map(|p| p.node.poll_timeout())
                .min()
                .unwrap();
            if next > until {
                break;
            }
            self.now = next.max(self.now);
            let now = self.now;
            for p in &mut self.peers {
                if p.node.poll_timeout().is_some_and(|t| t <= now) {
                    p.node.handle_timeout(now);
                }
            }
            self.settle();
        }
        self.now = until;
    }

    fn command(&mut self, i: usize, cmd: Command) {
        let now = self.now;
        self.peers[i].node.handle_command(cmd, now);
        self.settle();
    }

    /// Delivers a crafted, NoopSigned message from `from` to `to` through `to`'s ingress.
    fn inject(&mut self, from: usize, to: usize, message: &GossipMessage) {
        let (now, sender) = (self.now, self.peers[from].signer.pki_id());
        self.link(from, to);
        let envelope = crate::crypto::envelope::noop_sign(message.encode_to_vec().into());
        let verified = self.peers[to].ingress.receive_inline(sender, envelope, now);
        let peer = &mut self.peers[to];
        peer.identities
            .take_changes(|change| peer.node.handle_identity(change, now));
        peer.node.handle_message(verified.unwrap(), now);
        self.settle();
    }

    /// Transmits of `kind` from `from` to `to` so far, identity pull aside.
    fn sent(&self, from: usize, to: usize, kind: ContentKind) -> usize {
        self.log.iter().filter(|e| **e == (from, to, kind)).count()
    }
}

fn block(channel: &Bytes, seq: u64) -> GossipMessage {
    let data = crate::components::channel::verify_block_fixture(seq);
    GossipMessage {
        nonce: 0,
        channel: channel.clone(),
        tag: Tag::ChanAndOrg as i32,
        content: Some(Content::DataMsg(DataMessage {
            payload: Some(Payload {
                seq_num: seq,
                data,
                private_data: Vec::new(),
            }),
        })),
    }
}

fn join(org: &OrgId, channel: &Bytes, anchors: Vec<AnchorPeer>) -> Command {
    Command::JoinChan(ChannelConfig {
        channel: channel.clone(),
        sequence: 1,
        orgs: vec![(org.clone(), anchors)],
    })
}

#[test]
fn membership_converges_and_blocks_arrive_in_order() {
    // Fabric's defaults: with 4 peers the originator's fan-out of 3 reaches every other peer
    // directly, so completeness does not depend on repair (forwarders may pick the source and skip
    // it, which pull repairs in Fabric).
    let mut c = Cluster::new(&[4], false, 7);
    c.run_until(at_s(15.0));
    for p in &c.peers {
        assert_eq!(p.node.peers().len(), 3, "{:?}", p.node);
    }
    let ch = Bytes::from_static(b"testchannel");
    let org = c.peers[0].org.clone();
    for i in 0..c.peers.len() {
        c.command(i, join(&org, &ch, Vec::new()));
    }
    c.run_until(at_s(25.0));
    for p in &c.peers {
        assert_eq!(p.node.peers_of_channel(&ch).len(), 3, "{:?}", p.node);
    }
    // Out of order at the source: 3, 1, 2, then 4, 5.
    for seq in [3, 1, 2, 4, 5] {
        c.command(0, Command::Gossip(block(&ch, seq)));
    }
    c.run_until(at_s(26.0));
    for p in &c.peers {
        assert_eq!(
            p.blocks.get(&ch).cloned().unwrap_or_default(),
            [1, 2, 3, 4, 5]
        );
        assert_eq!(p.node.stats().blocks_delivered, 5);
    }
    // A duplicate is neither delivered nor forwarded again.
    c.command(0, Command::Gossip(block(&ch, 5)));
    c.run_until(at_s(27.0));
    assert!(c.peers.iter().all(|p| p.blocks[&ch].len() == 5));
    // Blocks went on the data lane, everything else (alive, membership, StateInfo) on control.
    let lanes: Vec<_> = c.lanes.keys().copied().collect();
    assert_eq!(lanes, [(false, Lane::Control), (true, Lane::Data)]);
}

#[test]
fn blocks_stay_in_channel_and_secrets_stay_in_org() {
    let mut c = Cluster::new(&[3, 2], true, 11);
    let ch = Bytes::from_static(b"org1only");
    let org1 = c.peers[0].org.clone();
    let org2 = c.peers[3].org.clone();
    let shared = Bytes::from_static(b"shared");
    let anchor = |host: &str| AnchorPeer {
        host: host.to_owned(),
        port: 7051,
    };
    // Org2 learns org1 through org1's anchor on a shared channel.
    let shared_cfg = Command::JoinChan(ChannelConfig {
        channel: shared.clone(),
        sequence: 1,
        orgs: vec![
            (org1.clone(), vec![anchor("peer0.org0.example.com")]),
            (org2.clone(), vec![anchor("peer0.org1.example.com")]),
        ],
    });
    for i in 0..c.peers.len() {
        c.command(i, shared_cfg.clone());
    }
    for i in 0..3 {
        c.command(i, join(&org1, &ch, Vec::new()));
    }
    c.run_until(at_s(30.0));
    for p in &c.peers {
        assert_eq!(p.node.peers().len(), 4, "{:?} sees all", p.node);
    }
    for seq in 1..=3 {
        c.command(0, Command::Gossip(block(&ch, seq)));
    }
    c.run_until(at_s(31.0));
    for p in &c.peers[..3] {
        assert_eq!(p.blocks[&ch], [1, 2, 3]);
    }
    let org1_ids: Vec<PkiId> = c.peers[..3].iter().map(|p| p.signer.pki_id()).collect();
    for p in &c.peers[3..] {
        assert!(!p.blocks.contains_key(&ch));
        for env in &p.received {
            let m = GossipMessage::decode(env.payload.clone()).unwrap();
            assert!(
                !matches!(m.content, Some(Content::DataMsg(_))),
                "block leaked"
            );
            let mut alive: Vec<&Envelope> = match &m.content {
                Some(Content::MemRes(r)) => r.alive.iter().chain(r.dead.iter()).collect(),
                Some(Content::MemReq(r)) => r.self_information.iter().collect(),
                _ => Vec::new(),
            };
            alive.push(env);
            for e in alive {
                let inner = GossipMessage::decode(e.payload.clone()).unwrap();
                if let Some(Content::AliveMsg(a)) = inner.content {
                    let about = PkiId::from_slice(&a.membership.unwrap().pki_id).unwrap();
                    if org1_ids.contains(&about) {
                        assert!(e.secret_envelope.is_none(), "org1 secret reached org2");
                    }
                }
            }
        }
        // Org1's internal endpoints are unknown to org2; external ones are known.
        for m in p
            .node
            .peers()
            .iter()
            .filter(|m| m.org.as_ref() == Some(&org1))
        {
            assert!(m.internal_endpoint.is_empty(), "{m:?}");
            assert!(!m.endpoint.is_empty());
        }
    }
}

#[test]
fn same_seed_replays_the_same_membership_traffic() {
    let pki = Cluster::pki(&[4]);
    let run = |seed| {
        let mut c = Cluster::with_pki(&pki, false, seed, GossipConfig::default());
        c.run_until(at_s(12.0));
        c.peers
            .iter()
            .map(|p| (p.node.stats().transmits, p.node.stats().emitted))
            .collect::<Vec<_>>()
    };
    assert_eq!(run(3), run(3));
}

#[test]
fn timeouts_are_idempotent_when_early() {
    let mut c = Cluster::new(&[2], false, 1);
    let before = c.peers[0].node.stats();
    let early = c.peers[0].node.poll_timeout().unwrap() - Duration::from_millis(1);
    c.peers[0].node.handle_timeout(early);
    assert!(c.peers[0].node.poll_transmit().is_none());
    assert_eq!(c.peers[0].node.stats().emitted, before.emitted);
}

fn hello(channel: &Bytes, nonce: u64) -> GossipMessage {
    GossipMessage {
        nonce: 0,
        channel: channel.clone(),
        tag: Tag::ChanAndOrg as i32,
        content: Some(Content::Hello(gossip_proto::gossip::GossipHello {
            nonce,
            metadata: Bytes::new(),
            msg_type: gossip_proto::gossip::PullMsgType::BlockMsg as i32,
        })),
    }
}

#[test]
fn a_late_joiner_pulls_the_stored_blocks_and_never_forwards_them() {
    let mut c = Cluster::new(&[4], false, 5);
    c.run_until(at_s(15.0));
    let ch = Bytes::from_static(b"late");
    let org = c.peers[0].org.clone();
    for i in 0..3 {
        c.command(i, join(&org, &ch, Vec::new()));
    }
    c.run_until(at_s(25.0));
    for seq in 1..=3 {
        c.command(0, Command::Gossip(block(&ch, seq)));
    }
    c.run_until(at_s(26.0));
    assert!(c.peers[3].blocks.is_empty(), "not in the channel yet");
    c.command(3, join(&org, &ch, Vec::new()));
    // StateInfo both ways (4 s), then a pull round (4 s) and its waits.
    c.run_until(at_s(40.0));
    let late = &c.peers[3];
    assert_eq!(late.blocks.get(&ch).cloned().unwrap_or_default(), [1, 2, 3]);
    assert_eq!(late.node.stats().blocks_pulled, 3);
    assert!(late.node.stats().pull.rounds > 0);
    for j in 0..3 {
        assert_eq!(
            c.sent(3, j, ContentKind::DataMsg),
            0,
            "pulled blocks are not pushed"
        );
    }
    let updates: usize = (0..3).map(|j| c.sent(j, 3, ContentKind::DataUpdate)).sum();
    assert!(updates > 0);
    // Pull updates carry blocks: they travel on the data lane, the other pull messages on control.
    let lanes: Vec<_> = c.lanes.keys().copied().collect();
    assert_eq!(lanes, [(false, Lane::Control), (true, Lane::Data)]);
}

#[test]
fn block_pull_is_intra_org_and_needs_a_state_info() {
    let mut c = Cluster::new(&[3, 2], true, 9);
    let ch = Bytes::from_static(b"shared");
    let (org1, org2) = (c.peers[0].org.clone(), c.peers[3].org.clone());
    let anchor = |host: &str| AnchorPeer {
        host: host.to_owned(),
        port: 7051,
    };
    let cfg = Command::JoinChan(ChannelConfig {
        channel: ch.clone(),
        sequence: 1,
        orgs: vec![
            (org1.clone(), vec![anchor("peer0.org0.example.com")]),
            (org2.clone(), vec![anchor("peer0.org1.example.com")]),
        ],
    });
    // Peer 2 (org1) stays out of the channel.
    for i in [0, 1, 3, 4] {
        c.command(i, cfg.clone());
    }
    c.run_until(at_s(30.0));
    assert_eq!(
        c.peers[0].node.peers_of_channel(&ch).len(),
        3,
        "org2 peers too"
    );
    c.command(0, Command::Gossip(block(&ch, 1)));
    c.run_until(at_s(45.0));
    assert_eq!(c.peers[1].blocks[&ch], [1]);
    for org2_peer in [3, 4] {
        assert!(
            !c.peers[org2_peer].blocks.contains_key(&ch),
            "blocks stay in org1"
        );
        for org1_peer in [0, 1] {
            for kind in [
                ContentKind::Hello,
                ContentKind::DataDig,
                ContentKind::DataReq,
            ] {
                assert_eq!(c.sent(org1_peer, org2_peer, kind), 0, "{kind}");
                assert_eq!(c.sent(org2_peer, org1_peer, kind), 0, "{kind}");
            }
        }
    }
    // A hello from another org is dropped unanswered, as is one from a peer of this org that has
    // no StateInfo in the channel.
    let dropped = |c: &Cluster, reason| c.peers[0].node.stats().dropped(reason);
    let (not_in_org, not_eligible) = (
        dropped(&c, DropReason::NotInMyOrg),
        dropped(&c, DropReason::NotEligible),
    );
    let digests = |c: &Cluster| [1, 2, 3].map(|j| c.sent(0, j, ContentKind::DataDig));
    let before = digests(&c);
    c.inject(3, 0, &hello(&ch, 77));
    c.inject(2, 0, &hello(&ch, 78));
    assert_eq!(dropped(&c, DropReason::NotInMyOrg), not_in_org + 1);
    assert_eq!(dropped(&c, DropReason::NotEligible), not_eligible + 1);
    assert_eq!(digests(&c), before, "no digest");
    // A same-org, eligible peer gets the digest; an update echoing a nonce never sent is dropped.
    c.inject(1, 0, &hello(&ch, 79));
    assert_eq!(digests(&c), [before[0] + 1, before[1], before[2]]);
    let mut update = hello(&ch, 80);
    update.content = Some(Content::DataUpdate(gossip_proto::gossip::DataUpdate {
        nonce: 80,
        data: Vec::new(),
        msg_type: gossip_proto::gossip::PullMsgType::BlockMsg as i32,
    }));
    let unknown = dropped(&c, DropReason::UnknownNonce);
    c.inject(1, 0, &update);
    assert_eq!(dropped(&c, DropReason::UnknownNonce), unknown + 1);
}
