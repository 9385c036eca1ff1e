//! Identity pull (the cert store, spec 3.11) through ingress and the node: a peer learns an
//! identity it never handshook with; forged updates are dropped whole and counted; an update
//! seen before costs no signature check; foreign orgs are offered only what Fabric's filter allows.

use gossip_proto::gossip::{DataUpdate, GossipHello, PeerIdentity, PullMsgType};

use super::*;
use crate::crypto::envelope::sign_envelope;

/// Fabric's defaults without identities in alive messages (`publishCertPeriod` 0): a peer learns
/// another's identity from a handshake or from identity pull, nothing else.
fn no_cert_in_alive() -> GossipConfig {
    GossipConfig {
        publish_cert_period: Duration::ZERO,
        ..GossipConfig::default()
    }
}

/// A `PeerIdentity{pki_id: claimed, cert}` signed by `signer`.
fn identity_item(signer: &LocalSigner, claimed: &[u8], cert: &Bytes) -> Envelope {
    let message = GossipMessage {
        nonce: 0,
        channel: Bytes::new(),
        tag: Tag::Empty as i32,
        content: Some(Content::PeerIdentity(PeerIdentity {
            pki_id: Bytes::copy_from_slice(claimed),
            cert: cert.clone(),
            metadata: Bytes::new(),
        })),
    };
    sign_envelope(message.encode_to_vec().into(), signer.key()).unwrap()
}

/// A signer's own, genuine identity item.
fn genuine(signer: &LocalSigner) -> Envelope {
    identity_item(
        signer,
        signer.pki_id().as_bytes(),
        &signer.identity().serialized,
    )
}

fn update(nonce: u64, data: Vec<Envelope>) -> Envelope {
    let message = GossipMessage {
        nonce: 0,
        channel: Bytes::new(),
        tag: Tag::Empty as i32,
        content: Some(Content::DataUpdate(DataUpdate {
            nonce,
            data,
            msg_type: PullMsgType::IdentityMsg as i32,
        })),
    };
    crate::crypto::envelope::noop_sign(message.encode_to_vec().into())
}

fn knows(c: &Cluster, i: usize, j: usize) -> bool {
    let pki_id = c.peers[j].signer.pki_id();
    c.peers[i].identities.get(&pki_id, c.now).is_some()
}

fn between(c: &Cluster, a: usize, b: usize) -> usize {
    c.log
        .iter()
        .chain(&c.identity_log)
        .filter(|(f, t, _)| (*f, *t) == (a, b) || (*f, *t) == (b, a))
        .count()
}

/// Identity pull transmits of `kind` from `from` to `to` so far.
fn sent_identity(c: &Cluster, from: usize, to: usize, kind: ContentKind) -> usize {
    let entry = (from, to, kind);
    c.identity_log.iter().filter(|e| **e == entry).count()
}

#[test]
fn a_peer_learns_an_identity_only_through_identity_pull() {
    // Peers 1 and 2 bootstrap to peer 0 and never reach each other: their link is cut. Alive
    // messages carry no identity, so each can learn the other's only by pulling it from peer 0,
    // which holds it only because it pulled it from its owner first.
    let mut c = Cluster::with_config(&[3], false, 21, no_cert_in_alive());
    c.cut.extend([(1, 2), (2, 1)]);
    c.run_until(at_s(3.0));
    assert!(
        !knows(&c, 1, 2) && !knows(&c, 2, 1),
        "before any pull round"
    );
    assert_eq!(
        c.peers[1].node.peers().len(),
        1,
        "2's alive messages unverifiable"
    );
    c.run_until(at_s(20.0));
    assert!(knows(&c, 1, 2) && knows(&c, 2, 1));
    assert_eq!(between(&c, 1, 2), 0, "never a message between 1 and 2");
    // With the identity, the other's alive messages (relayed by peer 0) verify.
    for i in 0..3 {
        assert_eq!(c.peers[i].node.peers().len(), 2, "{:?}", c.peers[i].node);
    }
    let stats = |i: usize| c.peers[i].node.stats().certstore;
    assert_eq!(stats(0).identities_pulled, 2, "from their owners");
    assert_eq!(stats(1).identities_pulled, 2, "peer 0's and peer 2's");
    assert_eq!(stats(2).identities_pulled, 2, "peer 0's and peer 1's");
    for i in 0..3 {
        assert_eq!(stats(i).items_len, 3);
        assert!(stats(i).pull.rounds > 0);
    }
    // Identity pull messages travel unsigned on the control lane.
    assert!(sent_identity(&c, 0, 1, ContentKind::DataUpdate) > 0);
    assert_eq!(
        c.lanes.keys().copied().collect::<Vec<_>>(),
        [(false, Lane::Control)]
    );
}

#[test]
fn a_forged_identity_update_is_dropped_whole_and_counted() {
    let mut c = Cluster::with_config(&[3], false, 4, no_cert_in_alive());
    c.cut.extend([(1, 2), (2, 1)]);
    assert!(!knows(&c, 1, 2));
    let (me, other) = (&c.peers[0].signer, &c.peers[2].signer);
    let stranger_pki = TestPki::generate(&TestPkiSpec::uniform(1, 1, START_UNIX_S as i64)).unwrap();
    let stranger = stranger_pki.orgs[0].peers[0].signer().unwrap();
    let cert = other.identity().serialized.clone();
    let forged = [
        // Another peer's PKI-ID on this certificate.
        identity_item(other, me.pki_id().as_bytes(), &cert),
        // Signed by a key that is not the certificate's.
        identity_item(me, other.pki_id().as_bytes(), &cert),
        // A certificate of a CA no MSP knows, genuinely signed.
        genuine(&stranger),
    ];
    let from = c.peers[0].signer.pki_id();
    let before = c.peers[1].ingress.stats().snapshot();
    for (i, item) in forged.into_iter().enumerate() {
        // The genuine item of peer 2 first: it is not learnt either.
        let envelope = update(7, vec![genuine(other), item]);
        let rejected = c.peers[1].ingress.receive_inline(from, envelope, c.now);
        assert!(rejected.is_err(), "case {i}");
        assert!(
            !knows(&c, 1, 2),
            "case {i}: nothing of a dropped update is learnt"
        );
    }
    let s = c.peers[1].ingress.stats().snapshot();
    assert_eq!(
        (s.bad_identity, s.bad_signature),
        (before.bad_identity + 2, before.bad_signature + 1)
    );
    assert_eq!(s.identities_learned, before.identities_learned);
    // The genuine item alone is learnt by ingress (as Fabric's mediator consumes every item of
    // an update), but an update under no nonce of a round is not stored by the node.
    let verified = c.peers[1]
        .ingress
        .receive_inline(from, update(7, vec![genuine(other)]), c.now)
        .expect("genuine update");
    assert!(knows(&c, 1, 2));
    let peer = &mut c.peers[1];
    let now = c.now;
    peer.identities
        .take_changes(|change| peer.node.handle_identity(change, now));
    peer.node.handle_message(verified, now);
    let stats = peer.node.stats();
    assert_eq!(stats.dropped(DropReason::UnknownNonce), 1);
    assert_eq!(stats.certstore.identities_pulled, 0);
}

#[test]
fn an_identity_update_seen_before_is_not_verified_again() {
    let pki = TestPki::generate(&TestPkiSpec::uniform(1, 3, START_UNIX_S as i64)).unwrap();
    let msp = Arc::new(pki.msp_manager().unwrap());
    let store = Arc::new(IdentityStore::new(Arc::clone(&msp), 16));
    // The generic cache of verified signatures is off: only the cert store's check is at work.
    let config = IngressConfig {
        verified_len_max: 0,
        ..IngressConfig::default()
    };
    let ingress = Ingress::new(config, msp, Arc::clone(&store));
    let signers: Vec<LocalSigner> = (0..3)
        .map(|p| pki.orgs[0].peers[p].signer().unwrap())
        .collect();
    let (from, now) = (signers[0].pki_id(), at_s(1.0));
    let checks = |envelope: Envelope| {
        let prechecked = ingress.precheck(from, envelope, now).expect("precheck");
        let n = prechecked.checks().len();
        let outcome = prechecked.run_checks();
        (n, ingress.accept(prechecked, outcome, now).is_ok())
    };
    let items = vec![genuine(&signers[1]), genuine(&signers[2])];
    assert_eq!(checks(update(1, items.clone())), (2, true));
    // The same update again, under any nonce: decoded and digested, never verified.
    assert_eq!(checks(update(2, items.clone())), (0, true));
    assert_eq!(checks(update(3, items.clone())), (0, true));
    assert_eq!(ingress.stats().snapshot().peer_identities_known, 4);
    // Other bytes for a known identity are verified: signed anew (ECDSA signatures differ), or
    // the known payload under a broken signature, which drops the update.
    assert_eq!(checks(update(4, vec![genuine(&signers[1])])), (1, true));
    let mut broken = items[0].clone();
    let mut signature = broken.signature.to_vec();
    let last = signature.len() - 1;
    signature[last] ^= 1;
    broken.signature = signature.into();
    assert_eq!(checks(update(5, vec![broken])), (1, false));
    // What was remembered leaves with the identity.
    store.remove(&signers[2].pki_id());
    assert_eq!(checks(update(6, items)), (1, true));
}

#[test]
fn a_foreign_org_is_offered_only_what_fabrics_filter_allows() {
    // No peer publishes an external endpoint: a peer of another org is offered no identity at
    // all, a peer of this org every valid one.
    let mut c = Cluster::new(&[2, 1], false, 3);
    c.run_until(at_s(10.0));
    let hello = |nonce| GossipMessage {
        nonce: 0,
        channel: Bytes::new(),
        tag: Tag::Empty as i32,
        content: Some(Content::Hello(GossipHello {
            nonce,
            metadata: Bytes::new(),
            msg_type: PullMsgType::IdentityMsg as i32,
        })),
    };
    let digests = |c: &Cluster| [1, 2].map(|j| sent_identity(c, 0, j, ContentKind::DataDig));
    let before = digests(&c);
    c.inject(2, 0, &hello(11));
    assert_eq!(digests(&c), before, "nothing for org 2");
    c.inject(1, 0, &hello(12));
    assert_eq!(digests(&c), [before[0] + 1, before[1]]);
    let digest = c.peers[1]
        .received
        .iter()
        .rev()
        .find_map(
            |e| match GossipMessage::decode(e.payload.clone()).ok()?.content {
                Some(Content::DataDig(d)) if d.nonce == 12 => Some(d),
                _ => None,
            },
        )
        .expect("digest to peer 1");
    let offered: Vec<&[u8]> = digest.digests.iter().map(|d| &d[..]).collect();
    let org1: Vec<PkiId> = c.peers[..2].iter().map(|p| p.signer.pki_id()).collect();
    assert!(
        org1.iter().all(|p| offered.contains(&&p.as_bytes()[..])),
        "{offered:?}"
    );
    assert_eq!(digest.msg_type, PullMsgType::IdentityMsg as i32);
}
