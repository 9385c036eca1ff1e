//! Channel unit tests: StateInfo checks, eligibility, blocks, leadership, leave.

use std::sync::{Arc, OnceLock};

use gossip_proto::gossip::gossip_message::{Content, Tag};
use gossip_proto::gossip::{DataMessage, LeadershipMessage, Payload, PullMsgType, StateInfo};
use prost::Message;

use super::*;
use crate::crypto::LocalSigner;
use crate::crypto::envelope::noop_sign;
use crate::ingress::IdentityChange;
use crate::testpki::{TestPki, TestPkiSpec};

const START_UNIX_S: u64 = 1_700_000_000;

fn at_s(s: u64) -> Instant {
    Instant::from_nanos((START_UNIX_S + s) * 1_000_000_000)
}

fn pki() -> &'static TestPki {
    static PKI: OnceLock<TestPki> = OnceLock::new();
    PKI.get_or_init(|| TestPki::generate(&TestPkiSpec::uniform(2, 2, START_UNIX_S as i64)).unwrap())
}

struct Fixture {
    discovery: Discovery,
    signer: Arc<LocalSigner>,
    others: Vec<Arc<LocalSigner>>,
    config: GossipConfig,
}

/// Peer 0 of org 1, which knows every identity and sees every other peer alive.
impl Fixture {
    /// The channel's context over this fixture at `now`.
    fn ctx_at(&self, now: Instant) -> Ctx<'_> {
        Ctx {
            discovery: &self.discovery,
            signer: &self.signer,
            config: &self.config,
            now,
            blocks_authenticated: false,
        }
    }
}

fn fixture() -> Fixture {
    let pki = pki();
    let signers: Vec<Arc<LocalSigner>> =
        pki.peers().map(|p| Arc::new(p.signer().unwrap())).collect();
    let config = GossipConfig::default();
    let mut discovery = Discovery::new(
        config.clone(),
        Arc::clone(&signers[0]),
        String::new(),
        "10.0.0.0:7051".into(),
        at_s(0),
    );
    for s in &signers {
        discovery.learn_identity(
            IdentityChange::learned(s.identity()),
            &mut crate::outbox::Outbox::default(),
        );
    }
    let mut out = Outbox::default();
    for (i, s) in signers.iter().enumerate().skip(1) {
        let mut d = Discovery::new(
            config.clone(),
            Arc::clone(s),
            String::new(),
            format!("10.0.9.{i}:7051"),
            at_s(0),
        );
        let (env, msg) = d.new_alive(true, at_s(1)).unwrap();
        discovery.handle_alive(s.pki_id(), &env, &msg, at_s(1), &mut out);
    }
    discovery.refresh();
    Fixture {
        discovery,
        signer: Arc::clone(&signers[0]),
        others: signers[1..].to_vec(),
        config,
    }
}

fn org1_channel(f: &Fixture) -> Channel {
    let cfg = ChannelConfig {
        channel: Bytes::from_static(b"ch"),
        sequence: 1,
        orgs: vec![("Org1MSP".into(), Vec::new())],
    };
    Channel::new(&cfg, &f.config, at_s(0))
}

fn state_info(about: &LocalSigner, channel: &[u8], mac_ok: bool) -> (Envelope, GossipMessage) {
    state_info_at(about, channel, mac_ok, 9, 2)
}

/// A StateInfo of `about` advertising `height`, its timestamp's sequence number `seq_num`.
fn state_info_at(
    about: &LocalSigner,
    channel: &[u8],
    mac_ok: bool,
    height: u64,
    seq_num: u64,
) -> (Envelope, GossipMessage) {
    let pki_id = about.pki_id();
    let mut mac = channel_mac(&pki_id, channel);
    if !mac_ok {
        mac[0] ^= 1;
    }
    let message = GossipMessage {
        nonce: 0,
        channel: Bytes::new(),
        tag: Tag::ChanOrOrg as i32,
        content: Some(Content::StateInfo(StateInfo {
            timestamp: Some(gossip_proto::gossip::PeerTime {
                inc_num: 1,
                seq_num,
            }),
            pki_id: Bytes::copy_from_slice(pki_id.as_bytes()),
            channel_mac: Bytes::copy_from_slice(&mac),
            properties: Some(Properties {
                ledger_height: height,
                ..Default::default()
            }),
        })),
    };
    (noop_sign(message.encode_to_vec().into()), message)
}

#[test]
fn state_info_is_checked_cached_forwarded_and_makes_peers_eligible() {
    let f = fixture();
    let ctx = f.ctx_at(at_s(2));
    let mut ch = org1_channel(&f);
    let mut out = Outbox::default();
    let (same_org, foreign) = (&f.others[0], &f.others[1]);
    let (env, msg) = state_info(foreign, b"ch", true);
    ch.handle_state_info(foreign.pki_id(), &env, &msg, &ctx, &mut out);
    assert_eq!(out.drops.get(&DropReason::OrgNotInChannel), Some(&1));
    let (env, msg) = state_info(same_org, b"ch", false);
    ch.handle_state_info(same_org.pki_id(), &env, &msg, &ctx, &mut out);
    assert_eq!(out.drops.get(&DropReason::BadMac), Some(&1));
    assert!(ch.peers(f.discovery.alive_members()).is_empty());
    let (env, msg) = state_info(same_org, b"ch", true);
    ch.handle_state_info(same_org.pki_id(), &env, &msg, &ctx, &mut out);
    assert_eq!(out.emits.len(), 1, "forwarded");
    assert!(matches!(
        out.events.pop_front(),
        Some(Event::ChannelPeerUpdated { .. })
    ));
    let peers = ch.peers(f.discovery.alive_members());
    assert_eq!(peers.len(), 1);
    assert_eq!(peers[0].1.ledger_height, 9);
    ch.handle_state_info(same_org.pki_id(), &env, &msg, &ctx, &mut out);
    assert_eq!(out.drops.get(&DropReason::Stale), Some(&1));
    ch.leave();
    assert!(ch.peers(f.discovery.alive_members()).is_empty());
}

#[test]
fn bad_blocks_and_left_channels_drop() {
    let f = fixture();
    let ctx = f.ctx_at(at_s(2));
    let mut ch = org1_channel(&f);
    let mut out = Outbox::default();
    let data = |seq: u64, data: Bytes| GossipMessage {
        nonce: 0,
        channel: Bytes::from_static(b"ch"),
        tag: Tag::ChanAndOrg as i32,
        content: Some(Content::DataMsg(DataMessage {
            payload: Some(Payload {
                seq_num: seq,
                data,
                private_data: Vec::new(),
            }),
        })),
    };
    let from = f.others[0].pki_id();
    let bad = data(1, blocks::block_fixture(2));
    ch.handle_data(
        from,
        &noop_sign(bad.encode_to_vec().into()),
        &bad,
        &ctx,
        &mut out,
    );
    assert_eq!(out.drops.get(&DropReason::BadBlock), Some(&1));
    let good = data(1, blocks::block_fixture(1));
    let env = noop_sign(good.encode_to_vec().into());
    ch.handle_data(from, &env, &good, &ctx, &mut out);
    assert_eq!(ch.blocks_delivered(), 1);
    assert_eq!(ch.next_expected_seq(), 2);
    ch.handle_data(from, &env, &good, &ctx, &mut out);
    assert_eq!(out.drops.get(&DropReason::Stale), Some(&1));
    ch.leave();
    let next = data(2, blocks::block_fixture(2));
    ch.handle_data(from, &env, &next, &ctx, &mut out);
    assert_eq!(out.drops.get(&DropReason::LeftChannel), Some(&1));
}

#[test]
fn leadership_must_be_from_and_about_my_org() {
    let f = fixture();
    let ctx = f.ctx_at(at_s(2));
    let mut ch = org1_channel(&f);
    let mut out = Outbox::default();
    let leadership = |about: &LocalSigner, seq: u64| GossipMessage {
        nonce: 0,
        channel: Bytes::from_static(b"ch"),
        tag: Tag::ChanAndOrg as i32,
        content: Some(Content::LeadershipMsg(LeadershipMessage {
            pki_id: Bytes::copy_from_slice(about.pki_id().as_bytes()),
            timestamp: Some(gossip_proto::gossip::PeerTime {
                inc_num: 1,
                seq_num: seq,
            }),
            is_declaration: true,
        })),
    };
    let (mine, foreign) = (&f.others[0], &f.others[1]);
    ch.handle_leadership(foreign.pki_id(), &leadership(foreign, 1), &ctx, &mut out);
    ch.handle_leadership(mine.pki_id(), &leadership(foreign, 1), &ctx, &mut out);
    assert_eq!(out.drops.get(&DropReason::NotInMyOrg), Some(&2));
    ch.handle_leadership(mine.pki_id(), &leadership(mine, 1), &ctx, &mut out);
    assert!(matches!(
        out.events.pop_front(),
        Some(Event::Leadership { .. })
    ));
    ch.handle_leadership(mine.pki_id(), &leadership(mine, 1), &ctx, &mut out);
    assert_eq!(out.drops.get(&DropReason::Stale), Some(&1));
}

#[test]
fn spread_timers_desynchronize_channels_joined_together_within_half_an_interval() {
    use rand::SeedableRng;
    let f = fixture();
    let interval = f.config.publish_state_info_interval;
    let fabric_first = org1_channel(&f).poll_timeout();
    assert_eq!(
        fabric_first,
        at_s(0) + interval,
        "without spreading: Fabric's first tick"
    );
    let firsts: Vec<Instant> = (0..8u64)
        .map(|seed| {
            let mut ch = org1_channel(&f);
            ch.spread_timers(&f.config, &mut rand_chacha::ChaCha8Rng::seed_from_u64(seed));
            ch.poll_timeout()
        })
        .collect();
    for &t in &firsts {
        assert!(t >= at_s(0) + interval / 2 && t <= fabric_first, "{t:?}");
    }
    let distinct: std::collections::BTreeSet<Instant> = firsts.iter().copied().collect();
    assert!(
        distinct.len() > 4,
        "peers joined together spread apart: {firsts:?}"
    );
}

/// A data message of channel `ch` carrying a block that verifies (number and data hash).
fn data_block(seq: u64) -> (Envelope, GossipMessage) {
    let message = GossipMessage {
        nonce: 0,
        channel: Bytes::from_static(b"ch"),
        tag: Tag::ChanAndOrg as i32,
        content: Some(Content::DataMsg(DataMessage {
            payload: Some(Payload {
                seq_num: seq,
                data: blocks::block_fixture(seq),
                private_data: Vec::new(),
            }),
        })),
    };
    (noop_sign(message.encode_to_vec().into()), message)
}

/// Blocks raised as delivered, drained.
fn delivered_seqs(out: &mut Outbox) -> Vec<u64> {
    let seqs = out
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Block { payload, .. } => Some(payload.seq_num),
            _ => None,
        })
        .collect();
    out.events.clear();
    seqs
}

/// Blocks raised as received (the driver marks exactly those seen), drained.
fn received_seqs(out: &Outbox) -> Vec<u64> {
    out.events
        .iter()
        .filter_map(|e| match e {
            Event::BlockReceived { seq_num, .. } => Some(*seq_num),
            _ => None,
        })
        .collect()
}

/// Forwarded block numbers, drained.
fn forwarded_seqs(out: &mut Outbox) -> Vec<u64> {
    out.emits
        .drain(..)
        .filter_map(|e| match e.message.content {
            Some(Content::DataMsg(d)) => d.payload.map(|p| p.seq_num),
            _ => None,
        })
        .collect()
}

/// The pull messages sent (hello, digest, request): their nonce and block numbers; drained.
fn pull_items(out: &mut Outbox) -> Vec<(u64, Vec<u64>)> {
    let items = |ids: &[Bytes]| -> Vec<u64> {
        ids.iter()
            .map(|id| std::str::from_utf8(id).unwrap().parse().unwrap())
            .collect()
    };
    out.transmits
        .drain(..)
        .filter_map(
            |t| match GossipMessage::decode(t.envelope.payload).ok()?.content? {
                Content::DataDig(d) => Some((d.nonce, items(&d.digests))),
                Content::DataReq(r) => Some((r.nonce, items(&r.digests))),
                Content::Hello(h) => Some((h.nonce, Vec::new())),
                _ => None,
            },
        )
        .collect()
}

/// How far past the height the first far-future block is.
const FAR_AHEAD_LEN: u64 = 1_000;
/// The second far-future block: 10^15.
const FAR_SEQ: u64 = 1_000_000_000_000_000;

/// The org1 channel with `same_org` eligible for block pull and blocks 1..=5 delivered from it.
fn channel_at_height_6(f: &Fixture, ctx: &Ctx<'_>, out: &mut Outbox) -> Channel {
    let same_org = &f.others[0];
    let mut ch = org1_channel(f);
    let (env, msg) = state_info(same_org, b"ch", true);
    ch.handle_state_info(same_org.pki_id(), &env, &msg, ctx, out);
    for seq in 1..=5 {
        let (env, msg) = data_block(seq);
        ch.handle_data(same_org.pki_id(), &env, &msg, ctx, out);
    }
    assert_eq!(delivered_seqs(out), [1, 2, 3, 4, 5]);
    assert_eq!(ch.next_expected_seq(), 6);
    out.emits.clear();
    out.events.clear();
    ch
}

#[test]
fn a_pushed_block_far_beyond_the_height_is_relayed_once_and_cannot_move_the_store_window() {
    let f = fixture();
    let ctx = f.ctx_at(at_s(2));
    let mut out = Outbox::default();
    let mut ch = channel_at_height_6(&f, &ctx, &mut out);
    let from = f.others[0].pki_id();
    for far in [6 + FAR_AHEAD_LEN, FAR_SEQ] {
        let (env, msg) = data_block(far);
        ch.handle_data(from, &env, &msg, &ctx, &mut out);
    }
    assert_eq!(out.drops.get(&DropReason::BlockBeyondWindow), Some(&2));
    assert_eq!(
        forwarded_seqs(&mut out),
        [6 + FAR_AHEAD_LEN, FAR_SEQ],
        "relayed, so a lagging peer does not starve its neighbours"
    );
    assert!(
        out.events.is_empty(),
        "not received (so not marked seen), not delivered"
    );
    // A second copy is not relayed again.
    let (env, msg) = data_block(FAR_SEQ);
    ch.handle_data(from, &env, &msg, &ctx, &mut out);
    assert!(forwarded_seqs(&mut out).is_empty(), "relayed once");
    assert_eq!(out.drops.get(&DropReason::Stale), Some(&1));
    assert_eq!(out.drops.get(&DropReason::BlockBeyondWindow), Some(&3));
    // The store still holds the honest blocks: a hello gets them all in the digest.
    ch.handle_pull(from, &hello_message(41), &ctx, &mut out);
    assert_eq!(pull_items(&mut out), [(41, vec![1, 2, 3, 4, 5])]);
    // The honest blocks that follow (block 6 late, within the store's window) are stored,
    // forwarded and delivered in order.
    let last = 6 + 2 * f.config.state_block_buffer_len - 1;
    let arrivals = (7..=15).chain([6]).chain(16..=last);
    for seq in arrivals {
        let (env, msg) = data_block(seq);
        ch.handle_data(from, &env, &msg, &ctx, &mut out);
    }
    let mut forwarded = forwarded_seqs(&mut out);
    forwarded.sort_unstable();
    assert_eq!(forwarded, (6..=last).collect::<Vec<_>>());
    let mut received = received_seqs(&out);
    received.sort_unstable();
    assert_eq!(received, (6..=last).collect::<Vec<_>>());
    assert_eq!(delivered_seqs(&mut out), (6..=last).collect::<Vec<_>>());
    assert_eq!(ch.next_expected_seq(), last + 1);
    assert_eq!(
        out.drops.get(&DropReason::Stale),
        Some(&1),
        "the far copy only"
    );
    assert_eq!(out.drops.get(&DropReason::BlockBeyondWindow), Some(&3));
    ch.handle_pull(from, &hello_message(42), &ctx, &mut out);
    let window = f.config.max_block_count_to_store;
    assert_eq!(
        pull_items(&mut out),
        [(42, (last - window..=last).collect())],
        "the window follows the honest blocks"
    );
}

#[test]
fn a_block_the_embedder_gossips_far_beyond_the_height_is_dropped_not_stored_or_emitted() {
    let f = fixture();
    let ctx = f.ctx_at(at_s(2));
    let mut out = Outbox::default();
    let mut ch = channel_at_height_6(&f, &ctx, &mut out);
    let end = ch.admitted_end();
    assert_eq!(end, 6 + 2 * f.config.state_block_buffer_len);
    let (env, msg) = data_block(end);
    ch.gossip_local(env, msg, ctx.now, &mut out);
    assert_eq!(out.drops.get(&DropReason::BlockBeyondWindow), Some(&1));
    assert!(out.emits.is_empty(), "not gossiped");
    let from = f.others[0].pki_id();
    ch.handle_pull(from, &hello_message(44), &ctx, &mut out);
    assert_eq!(
        pull_items(&mut out),
        [(44, vec![1, 2, 3, 4, 5])],
        "not stored: the store's window did not move"
    );
    // The block below the bound is taken, stored and gossiped.
    let (env, msg) = data_block(end - 1);
    ch.gossip_local(env, msg, ctx.now, &mut out);
    assert_eq!(forwarded_seqs(&mut out), [end - 1]);
}

#[test]
fn pulled_blocks_far_beyond_the_height_are_neither_requested_nor_taken() {
    use rand::SeedableRng;
    let f = fixture();
    let mut out = Outbox::default();
    let mut ctx = f.ctx_at(at_s(2));
    let mut ch = channel_at_height_6(&f, &ctx, &mut out);
    let from = f.others[0].pki_id();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    // The pull round's hello goes to the one eligible peer of this org.
    let mut hellos = Vec::new();
    for s in 2..20 {
        ctx.now = at_s(s);
        ch.handle_timeout(&ctx, &mut rng, &mut out);
        hellos = pull_items(&mut out);
        if !hellos.is_empty() {
            break;
        }
    }
    let [(nonce, _)] = hellos[..] else {
        panic!("one hello expected: {hellos:?}");
    };
    let far = [6 + FAR_AHEAD_LEN, FAR_SEQ];
    let digest = pull_message(Content::DataDig(gossip_proto::gossip::DataDigest {
        nonce,
        digests: [6, far[0], 7, far[1]]
            .map(|s| Bytes::from(s.to_string()))
            .to_vec(),
        msg_type: PullMsgType::BlockMsg as i32,
    }));
    ch.handle_pull(from, &digest, &ctx, &mut out);
    ch.handle_timeout(&ctx, &mut rng, &mut out);
    assert_eq!(
        pull_items(&mut out),
        [(nonce, vec![6, 7])],
        "far ones not requested"
    );
    // A responder sending them anyway: skipped and counted, the others taken.
    let update = pull_message(Content::DataUpdate(gossip_proto::gossip::DataUpdate {
        nonce,
        data: [6, far[0], far[1], 7].map(|s| data_block(s).0).to_vec(),
        msg_type: PullMsgType::BlockMsg as i32,
    }));
    ch.handle_pull(from, &update, &ctx, &mut out);
    assert_eq!(out.drops.get(&DropReason::BlockBeyondWindow), Some(&2));
    assert_eq!(received_seqs(&out), [6, 7]);
    assert_eq!(delivered_seqs(&mut out), [6, 7]);
    assert_eq!(ch.blocks_pulled(), 2);
    ch.handle_pull(from, &hello_message(43), &ctx, &mut out);
    assert_eq!(pull_items(&mut out), [(43, (1..=7).collect())]);
}

/// A block pull message of channel `ch` (the nonce travels in `content`).
fn pull_message(content: Content) -> GossipMessage {
    GossipMessage {
        nonce: 0,
        channel: Bytes::from_static(b"ch"),
        tag: Tag::ChanAndOrg as i32,
        content: Some(content),
    }
}

fn hello_message(nonce: u64) -> GossipMessage {
    pull_message(Content::Hello(gossip_proto::gossip::GossipHello {
        nonce,
        metadata: Bytes::new(),
        msg_type: PullMsgType::BlockMsg as i32,
    }))
}

/// The ranges of the state requests in `out` (drained).
fn state_requests(out: &mut Outbox) -> Vec<(u64, u64)> {
    out.transmits
        .drain(..)
        .filter_map(
            |t| match GossipMessage::decode(t.envelope.payload).ok()?.content? {
                Content::StateRequest(r) => Some((r.start_seq_num, r.end_seq_num)),
                _ => None,
            },
        )
        .collect()
}

#[test]
fn a_gap_every_store_let_go_is_fetched_at_once_and_its_late_copy_still_taken() {
    use rand::SeedableRng;
    let f = fixture();
    let ctx = f.ctx_at(at_s(2));
    let mut out = Outbox::default();
    let mut ch = channel_at_height_6(&f, &ctx, &mut out);
    let from = f.others[0].pki_id();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
    let window = f.config.max_block_count_to_store;
    assert!(f.config.state.gap_repair && !f.config.state.enabled);
    // Block 6 is missed; while at most `window` newer ones arrived, pull may still bring it.
    let push = |ch: &mut Channel, seq: u64, out: &mut Outbox| {
        let (env, msg) = data_block(seq);
        ch.handle_data(from, &env, &msg, &ctx, out);
    };
    for seq in 7..=6 + window {
        push(&mut ch, seq, &mut out);
    }
    ch.handle_timeout(&ctx, &mut rng, &mut out);
    assert!(
        state_requests(&mut out).is_empty(),
        "pull may still bring it"
    );
    // One more: block 6 is below every store's window (each keeps `window` below its newest).
    push(&mut ch, 7 + window, &mut out);
    ch.handle_timeout(&ctx, &mut rng, &mut out);
    assert_eq!(
        state_requests(&mut out),
        [(6, 6)],
        "asked at once, the missing block only"
    );
    // Its first copy, late, is still taken and forwarded: delivery needs it.
    out.emits.clear();
    push(&mut ch, 6, &mut out);
    assert_eq!(forwarded_seqs(&mut out), [6]);
    assert_eq!(
        delivered_seqs(&mut out),
        (6..=7 + window).collect::<Vec<_>>()
    );
    assert_eq!(out.drops.get(&DropReason::Stale), None);
}

#[test]
fn a_relayed_block_the_store_takes_later_is_not_forwarded_again() {
    let f = fixture();
    let ctx = f.ctx_at(at_s(2));
    let mut out = Outbox::default();
    let mut ch = channel_at_height_6(&f, &ctx, &mut out);
    let (a, b) = (f.others[0].pki_id(), f.others[1].pki_id());
    let end = ch.admitted_end();
    let (env, msg) = data_block(end);
    ch.handle_data(a, &env, &msg, &ctx, &mut out);
    assert_eq!(forwarded_seqs(&mut out), [end], "relayed");
    // Block 6 moves the bound past it; another copy of it is stored, not forwarded twice.
    let (env6, msg6) = data_block(6);
    ch.handle_data(a, &env6, &msg6, &ctx, &mut out);
    assert_eq!(forwarded_seqs(&mut out), [6]);
    ch.handle_data(b, &env, &msg, &ctx, &mut out);
    assert!(
        forwarded_seqs(&mut out).is_empty(),
        "forwarded once, by the relay"
    );
    ch.handle_pull(a, &hello_message(45), &ctx, &mut out);
    let [(45, ref items)] = pull_items(&mut out)[..] else {
        panic!("one digest expected");
    };
    assert!(items.contains(&end), "stored: {items:?}");
}

/// `who` advertises ledger height `height` on channel `ch` at `now`.
fn advertise(
    f: &Fixture,
    ch: &mut Channel,
    who: &LocalSigner,
    height: u64,
    seq_num: u64,
    now: Instant,
) {
    let (env, msg) = state_info_at(who, b"ch", true, height, seq_num);
    let mut out = Outbox::default();
    ch.handle_state_info(who.pki_id(), &env, &msg, &f.ctx_at(now), &mut out);
    assert!(out.drops.is_empty(), "{:?}", out.drops);
}

/// A channel of both orgs at height 1 whose three peers advertise: two honest ones height 1,
/// `others[0]` 10^15 (a minority's height, which starts no repair).
fn channel_beside_a_liar(f: &Fixture, rng: &mut impl rand::Rng) -> Channel {
    let cfg = ChannelConfig {
        channel: Bytes::from_static(b"ch"),
        sequence: 1,
        orgs: vec![
            ("Org1MSP".into(), Vec::new()),
            ("Org2MSP".into(), Vec::new()),
        ],
    };
    let mut ch = Channel::new(&cfg, &f.config, at_s(0));
    assert!(f.config.state.gap_repair && !f.config.state.enabled);
    let [liar, b, c] = [0, 1, 2].map(|i| &f.others[i]);
    advertise(f, &mut ch, b, 1, 2, at_s(2));
    advertise(f, &mut ch, c, 1, 2, at_s(2));
    advertise(f, &mut ch, liar, FAR_SEQ, 2, at_s(2));
    let mut out = Outbox::default();
    ch.handle_timeout(&f.ctx_at(at_s(3)), rng, &mut out);
    assert!(
        state_requests(&mut out).is_empty(),
        "a minority's height is not repaired"
    );
    ch
}

/// The state requests' ranges and the number of pull hellos in `out` (drained).
fn requests_and_hellos(out: &mut Outbox) -> (Vec<(u64, u64)>, usize) {
    let mut hellos = 0;
    let requests = out
        .transmits
        .drain(..)
        .filter_map(
            |t| match GossipMessage::decode(t.envelope.payload).ok()?.content? {
                Content::StateRequest(r) => Some((r.start_seq_num, r.end_seq_num)),
                Content::Hello(_) => {
                    hellos += 1;
                    None
                }
                _ => None,
            },
        )
        .collect();
    (requests, hellos)
}

#[test]
fn a_height_the_majority_advertises_beyond_pulls_reach_is_fetched_and_one_liar_cannot_raise_it() {
    use rand::SeedableRng;
    let f = fixture();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    let mut ch = channel_beside_a_liar(&f, &mut rng);
    let delay = f.config.state.height_gap_delay;
    // One honest peer moves on to height 20: two of the three advertise at least 20, and block 1
    // is more than `maxBlockCountToStore` below their newest (19), beyond every store's reach.
    let window = f.config.max_block_count_to_store;
    assert!(1 + window < 19);
    advertise(&f, &mut ch, &f.others[1], 20, 3, at_s(4));
    let mut tick = |now: Instant| {
        let mut out = Outbox::default();
        ch.handle_timeout(&f.ctx_at(now), &mut rng, &mut out);
        state_requests(&mut out)
    };
    assert!(
        tick(at_s(4)).is_empty(),
        "not before heightGapDelay: a push may close it first"
    );
    assert_eq!(
        tick(at_s(4) + delay),
        [(1, 1 + f.config.state.batch_size)],
        "the first batch towards the majority's height (Fabric's ranges hold batchSize + 1)"
    );
}

#[test]
fn a_short_gap_behind_the_majority_is_left_to_pull_then_to_state_transfer() {
    use rand::SeedableRng;
    let f = fixture();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    let mut ch = channel_beside_a_liar(&f, &mut rng);
    let delay = f.config.state.height_gap_delay;
    // Height 9: block 1 is within every store's reach, so a pull gap round goes first.
    advertise(&f, &mut ch, &f.others[1], 9, 3, at_s(4));
    let mut out = Outbox::default();
    ch.handle_timeout(&f.ctx_at(at_s(4) + delay), &mut rng, &mut out);
    assert_eq!(
        requests_and_hellos(&mut out),
        (Vec::new(), 1),
        "a pull gap round, no state request"
    );
    // Nobody answers the pull. A periodic check notes the gap, the next finds it still open and
    // hands it to state transfer, `heightGapDelay` later.
    let interval = f.config.request_state_info_interval;
    let step = Duration::from_millis(100);
    let mut now = at_s(4) + delay;
    let requests = loop {
        now = now + step;
        assert!(now < at_s(4) + 3 * interval, "no state request");
        let mut out = Outbox::default();
        ch.handle_timeout(&f.ctx_at(now), &mut rng, &mut out);
        let (requests, _) = requests_and_hellos(&mut out);
        if !requests.is_empty() {
            break requests;
        }
    };
    assert_eq!(requests, [(1, 8)], "up to the majority's height");
    assert!(
        now >= at_s(4) + interval,
        "pull had a requestStateInfoInterval to close it"
    );
}
