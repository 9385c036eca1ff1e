//! Discovery unit tests: self alive, learning, expiry and purge, disclosure in responses,
//! bootstrap connects.

use std::sync::OnceLock;
use std::time::Duration;

use gossip_proto::gossip::MembershipResponse;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::*;
use crate::event::IoResult;
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

/// Discovery of peer `p` of org `o`, knowing every test identity.
fn disc(o: usize, p: usize, external: &str) -> Discovery {
    let pki = pki();
    let signer = Arc::new(pki.orgs[o].peers[p].signer().unwrap());
    let mut discovery = Discovery::new(
        GossipConfig::default(),
        signer,
        external.to_owned(),
        format!("10.0.{o}.{p}:7051"),
        at_s(0),
    );
    for peer in pki.peers() {
        discovery.learn_identity(
            IdentityChange::learned(peer.signer().unwrap().identity()),
            &mut crate::outbox::Outbox::default(),
        );
    }
    discovery
}

fn alive_of(d: &mut Discovery, now: Instant) -> (Envelope, GossipMessage) {
    d.new_alive(true, now).unwrap()
}

fn alive_content(m: &GossipMessage) -> &AliveMessage {
    match &m.content {
        Some(Content::AliveMsg(a)) => a,
        _ => panic!("not alive"),
    }
}

#[test]
fn self_alive_counts_up_and_embeds_identity_only_early() {
    let mut d = disc(0, 0, "");
    let (env1, m1) = alive_of(&mut d, at_s(1));
    let (_, m2) = alive_of(&mut d, at_s(11));
    let (a1, a2) = (alive_content(&m1), alive_content(&m2));
    let t1 = a1.timestamp.unwrap();
    let t2 = a2.timestamp.unwrap();
    assert_eq!(t1.inc_num, at_s(0).as_nanos());
    assert_eq!((t1.seq_num, t2.seq_num), (1, 2));
    assert!(!a1.identity.is_empty(), "within publish_cert_period");
    assert!(a2.identity.is_empty(), "after publish_cert_period");
    let secret = env1.secret_envelope.as_ref().expect("secret attached");
    assert_eq!(internal_endpoint(secret).as_deref(), Some("10.0.0.0:7051"));
    assert_eq!(m1.tag, Tag::Empty as i32);
}

#[test]
fn learns_forwards_expires_and_purges() {
    let mut a = disc(0, 0, "");
    let mut b = disc(0, 1, "");
    let b_id = b.me().pki_id;
    let mut out = Outbox::default();
    let (env, msg) = alive_of(&mut b, at_s(1));
    a.handle_alive(b_id, &env, &msg, at_s(1), &mut out);
    a.refresh();
    assert_eq!(a.alive_members().len(), 1);
    let m = &a.alive_members()[0];
    assert_eq!(m.internal_endpoint, "10.0.0.1:7051");
    assert_eq!(m.org.as_deref(), Some("Org1MSP"));
    assert!(matches!(
        out.events.pop_front(),
        Some(Event::MemberAlive(_))
    ));
    assert_eq!(out.emits.len(), 1, "forwarded");
    assert_eq!(out.emits[0].source, Some(b_id));
    // The same message again is stale.
    a.handle_alive(b_id, &env, &msg, at_s(1), &mut out);
    assert_eq!(out.drops.get(&DropReason::Stale), Some(&1));

    let mut rng = ChaCha8Rng::seed_from_u64(1);
    a.handle_timeout(at_s(20), &mut rng, &mut out);
    a.refresh();
    assert_eq!(a.alive_members().len(), 1, "not yet expired");
    a.handle_timeout(at_s(30), &mut rng, &mut out);
    a.refresh();
    assert!(a.alive_members().is_empty());
    assert_eq!(a.dead_members().len(), 1);
    assert!(out.io.contains(&IoRequest::CloseConn(b_id)));
    assert!(
        out.events
            .iter()
            .any(|e| matches!(e, Event::MemberDead(p) if *p == b_id))
    );
    // Reconnect probes the dead member; an answer sends it a membership request.
    a.handle_timeout(at_s(60), &mut rng, &mut out);
    assert!(
        out.io
            .iter()
            .any(|r| matches!(r, IoRequest::Probe { pki_id, .. } if *pki_id == b_id))
    );
    out.transmits.clear();
    a.handle_probe(&b_id, true, at_s(60), &mut out);
    assert_eq!(out.transmits.len(), 1);
    // After the alive TTL (500 s), the member is forgotten.
    a.handle_timeout(at_s(502), &mut rng, &mut out);
    assert!(a.lookup(&b_id).is_none());
    assert!(
        out.events
            .iter()
            .any(|e| matches!(e, Event::MemberPurged(p) if *p == b_id))
    );
}

/// Peer `a` that learnt peer `b` at 1 s and then presumed it dead at `died`.
fn a_with_b_presumed_dead(died: Instant) -> (Discovery, Discovery, PkiId, Outbox) {
    let mut a = disc(0, 0, "");
    let mut b = disc(0, 1, "");
    let b_id = b.me().pki_id;
    let mut out = Outbox::default();
    let (env, msg) = alive_of(&mut b, at_s(1));
    a.handle_alive(b_id, &env, &msg, at_s(1), &mut out);
    a.handle_presumed_dead(&b_id, died, &mut out);
    (a, b, b_id, out)
}

#[test]
fn resurrects_on_newer_alive() {
    let (mut a, mut b, b_id, mut out) = a_with_b_presumed_dead(at_s(1));
    a.refresh();
    assert!(a.alive_members().is_empty());
    let (env, msg) = alive_of(&mut b, at_s(2));
    a.handle_alive(b_id, &env, &msg, at_s(2), &mut out);
    a.refresh();
    assert_eq!(a.alive_members().len(), 1);
    assert_eq!(a.stats().became_alive, 2);
}

fn response_of(out: &mut Outbox) -> (RemotePeer, MembershipResponse) {
    let t = out.transmits.pop_front().expect("a response");
    let m = GossipMessage::decode(t.envelope.payload).unwrap();
    match m.content {
        Some(Content::MemRes(r)) => (t.to, r),
        _ => panic!("not a response"),
    }
}

#[test]
fn membership_response_discloses_per_policy_and_puts_self_last() {
    // a: org1 with external endpoint; b: org1; c: org2 requester with external endpoint.
    let mut a = disc(0, 0, "a.org1:7051");
    let mut b = disc(0, 1, "");
    let mut c = disc(1, 0, "c.org2:7051");
    let (b_id, c_id) = (b.me().pki_id, c.me().pki_id);
    let mut out = Outbox::default();
    let (env, msg) = alive_of(&mut b, at_s(1));
    a.handle_alive(b_id, &env, &msg, at_s(1), &mut out);

    // Same-org request: everything, secrets kept, own alive last.
    let (b_info, _) = alive_of(&mut b, at_s(2));
    let req = GossipMessage::decode(Discovery::membership_request(b_info, 42).payload).unwrap();
    a.handle_membership_request(b_id, &req, at_s(2), &mut out);
    let (to, res) = response_of(&mut out);
    assert_eq!(
        to.endpoint, "10.0.0.1:7051",
        "internal endpoint from the secret"
    );
    assert_eq!(res.alive.len(), 2);
    assert!(res.alive.iter().all(|e| e.secret_envelope.is_some()));
    let last = GossipMessage::decode(res.alive[1].payload.clone()).unwrap();
    assert_eq!(
        alive_content(&last).membership.as_ref().unwrap().pki_id[..],
        a.me().pki_id.as_bytes()[..]
    );

    // Foreign request: b (no external endpoint) is hidden, a is disclosed without its secret.
    let (c_info, _) = c.new_alive(false, at_s(3)).unwrap();
    let req = GossipMessage::decode(Discovery::membership_request(c_info, 7).payload).unwrap();
    a.handle_membership_request(c_id, &req, at_s(3), &mut out);
    let (to, res) = response_of(&mut out);
    assert_eq!(to.endpoint, "c.org2:7051");
    let about = |e: &Envelope| {
        let m = GossipMessage::decode(e.payload.clone()).unwrap();
        PkiId::from_slice(&alive_content(&m).membership.as_ref().unwrap().pki_id).unwrap()
    };
    let disclosed: Vec<PkiId> = res.alive.iter().map(about).collect();
    assert_eq!(
        disclosed,
        [c_id, a.me().pki_id],
        "the requester itself, then a; never b"
    );
    assert!(res.alive.iter().all(|e| e.secret_envelope.is_none()));

    // A peer without an external endpoint may not be disclosed to another org: close instead.
    let (c_info, _) = c.new_alive(false, at_s(4)).unwrap();
    let req = GossipMessage::decode(Discovery::membership_request(c_info, 8).payload).unwrap();
    b.handle_membership_request(c_id, &req, at_s(4), &mut out);
    assert!(out.transmits.is_empty());
    assert!(out.io.contains(&IoRequest::CloseConn(c_id)));
}

#[test]
fn bootstrap_must_be_same_org_and_is_acked_by_nonce() {
    let mut a = disc(0, 0, "");
    let b = disc(0, 1, "");
    let c = disc(1, 0, "");
    let mut out = Outbox::default();
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    a.connect("10.0.0.0:7051", ConnectKind::Bootstrap, &mut out);
    a.connect("localhost:7051", ConnectKind::Bootstrap, &mut out);
    assert!(out.io.is_empty(), "own endpoints are skipped");
    a.connect("10.0.9.9:7051", ConnectKind::Bootstrap, &mut out);
    let Some(IoRequest::Handshake { token, .. }) = out.io.pop_front() else {
        panic!("handshake expected");
    };
    // A foreign-org answer is refused and retried after reconnect_interval.
    let foreign = Ok((c.me().pki_id, c.me().org.clone()));
    a.handle_handshake(token, &foreign, at_s(1), &mut rng, &mut out);
    assert!(out.transmits.is_empty());
    assert_eq!(out.drops.get(&DropReason::NotInMyOrg), Some(&1), "counted");
    assert_eq!(a.poll_timeout(), at_s(2) + Duration::from_millis(500));
    a.handle_timeout(at_s(26), &mut rng, &mut out);
    assert!(
        out.io
            .iter()
            .any(|r| matches!(r, IoRequest::Handshake { token: t, .. } if *t == token))
    );
    let same = Ok((b.me().pki_id, b.me().org.clone()));
    a.handle_handshake(token, &same, at_s(26), &mut rng, &mut out);
    let t = out
        .transmits
        .iter()
        .find(|t| t.to.pki_id == Some(b.me().pki_id))
        .expect("membership request");
    let req = GossipMessage::decode(t.envelope.payload.clone()).unwrap();
    assert_ne!(req.nonce, 0);
    let Some(Content::MemReq(r)) = &req.content else {
        panic!("not a request");
    };
    assert!(
        r.self_information
            .as_ref()
            .unwrap()
            .secret_envelope
            .is_some()
    );
    assert_eq!(a.connects_len(), 1);
    let res = GossipMessage {
        nonce: req.nonce,
        channel: Bytes::new(),
        tag: Tag::Empty as i32,
        content: Some(Content::MemRes(MembershipResponse::default())),
    };
    a.handle_membership_response(&res, at_s(27), &mut out);
    assert_eq!(a.connects_len(), 0, "acked");
    let _ = IoResult::PresumedDead(b.me().pki_id);
}

/// A member presumed dead is probed 1, 3, 7, 15 and 31 s later (before the 25 s periodic probe,
/// doubling), and no more once it is alive again.
#[test]
fn a_member_that_just_died_is_probed_early_with_doubling_waits() {
    let (mut a, mut b, b_id, mut out) = a_with_b_presumed_dead(at_s(2));
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let probed = |out: &mut Outbox| {
        let n = out
            .io
            .iter()
            .filter(|r| matches!(r, IoRequest::Probe { pki_id, .. } if *pki_id == b_id))
            .count();
        out.io.clear();
        n
    };
    out.io.clear();
    let mut probes_at = Vec::new();
    for s in 2..=20 {
        a.handle_timeout(at_s(s), &mut rng, &mut out);
        if probed(&mut out) > 0 {
            probes_at.push(s);
        }
    }
    assert_eq!(probes_at, [3, 5, 9, 17], "1, 3, 7 and 15 s after the death");
    assert!(a.poll_timeout() <= at_s(33), "the fifth early probe is due");
    // Alive again: no more early probes.
    let (env, msg) = alive_of(&mut b, at_s(21));
    a.handle_alive(b_id, &env, &msg, at_s(21), &mut out);
    for s in 21..=40 {
        a.handle_timeout(at_s(s), &mut rng, &mut out);
        assert_eq!(probed(&mut out), 0, "probed at {s} s while alive");
    }
}
