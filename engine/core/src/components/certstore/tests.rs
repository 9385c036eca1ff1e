//! Cert store unit tests: the egress filter's table, the own signed identity, and the store
//! letting go of removed identities.

use std::sync::Arc;

use super::*;
use crate::crypto::envelope::verify_envelope;
use crate::testpki::{TestPki, TestPkiSpec};

const START_UNIX_S: i64 = 1_700_000_000;

fn at_s(s: u64) -> Instant {
    Instant::from_nanos((START_UNIX_S as u64 + s) * 1_000_000_000)
}

#[test]
fn the_egress_filter_is_fabrics_same_org_or_our_org_filter() {
    let (mine, theirs, third) = (
        OrgId::from("Org1MSP"),
        OrgId::from("Org2MSP"),
        OrgId::from("Org3MSP"),
    );
    // (requester org, item org, item has an external endpoint) -> served
    let cases = [
        // The requester's org is unknown: nothing.
        (None, Some(&mine), true, false),
        // A requester of this org: everything, even unknown orgs and internal-only peers.
        (Some(&mine), Some(&theirs), false, true),
        (Some(&mine), None, false, true),
        // A foreign requester: identities of this org or of its own org, with an external
        // endpoint only.
        (Some(&theirs), Some(&mine), true, true),
        (Some(&theirs), Some(&theirs), true, true),
        (Some(&theirs), Some(&third), true, false),
        (Some(&theirs), Some(&mine), false, false),
        (Some(&theirs), Some(&theirs), false, false),
        (Some(&theirs), None, true, false),
    ];
    for (i, (requester, item, external, want)) in cases.into_iter().enumerate() {
        assert_eq!(
            may_serve(&mine, requester, item, external),
            want,
            "case {i}"
        );
    }
}

#[test]
fn the_own_identity_message_is_a_signed_peer_identity_with_tag_empty() {
    let pki = TestPki::generate(&TestPkiSpec::uniform(1, 1, START_UNIX_S)).unwrap();
    let signer = pki.orgs[0].peers[0].signer().unwrap();
    let envelope = own_identity_message(&signer).expect("signed");
    verify_envelope(&envelope, signer.identity().public_key()).expect("verifies");
    let message = GossipMessage::decode(envelope.payload.clone()).unwrap();
    assert_eq!(message.tag, Tag::Empty as i32);
    assert!(message.channel.is_empty() && message.nonce == 0);
    let Some(Content::PeerIdentity(p)) = message.content else {
        panic!("not a peer identity");
    };
    assert_eq!(p.pki_id[..], signer.pki_id().as_bytes()[..]);
    assert_eq!(p.cert, signer.identity().serialized);
    assert!(p.metadata.is_empty());
}

#[test]
fn a_removed_identity_leaves_but_the_own_stays() {
    let pki = TestPki::generate(&TestPkiSpec::uniform(1, 2, START_UNIX_S)).unwrap();
    let me = Arc::new(pki.orgs[0].peers[0].signer().unwrap());
    let other = pki.orgs[0].peers[1].signer().unwrap();
    let config = GossipConfig::default();
    let mut store = CertStore::new(me.pki_id(), own_identity_message(&me), &config, at_s(0));
    store
        .items
        .insert(other.pki_id(), own_identity_message(&other).unwrap());
    assert_eq!(store.stats().items_len, 2);
    store.handle_identity(&IdentityChange::Removed(other.pki_id()));
    store.handle_identity(&IdentityChange::Removed(me.pki_id()));
    assert!(store.holds(&me.pki_id()) && !store.holds(&other.pki_id()));
    assert_eq!(store.poll_timeout(), at_s(0) + config.pull_interval);
}
