use super::*;
use crate::golden::{Golden, NOW_UNIX_S, now};

const PEERS: [&str; 3] = [
    "peer0.org1.example.com",
    "peer1.org1.example.com",
    "peer0.org2.example.com",
];

fn store(golden: &Golden, identities_len_max: usize) -> IdentityStore {
    IdentityStore::new(Arc::new(golden.msp_manager()), identities_len_max)
}

fn identity(golden: &Golden, peer: &str) -> Identity {
    Identity::from_serialized(golden.serialized_identity(peer)).expect("golden identity")
}

#[test]
fn put_get_remove() {
    let Some(golden) = Golden::load() else { return };
    let store = store(&golden, 8);
    let id = identity(&golden, PEERS[0]);
    let pki = id.pki_id;
    assert!(store.get(&pki, now()).is_none());
    let stored = store.put(pki.as_bytes(), id.clone(), now()).expect("put");
    assert_eq!(stored.pki_id, pki);
    assert_eq!(
        store.get(&pki, now()).expect("get").serialized,
        id.serialized
    );
    // First wins; a second put is a no-op.
    store.put(pki.as_bytes(), id, now()).expect("put again");
    assert_eq!(store.len(), 1);
    assert!(store.remove(&pki).is_some());
    assert!(store.remove(&pki).is_none());
    assert!(store.is_empty());
}

#[test]
fn put_refuses_bad_identities() {
    let Some(golden) = Golden::load() else { return };
    let store = store(&golden, 8);
    let id = identity(&golden, PEERS[0]);
    let other = identity(&golden, PEERS[1]);
    // (claimed PKI-ID, now, expected error)
    let expired_at = Instant::from_nanos((NOW_UNIX_S + 20 * 365 * 86_400) * 1_000_000_000);
    let too_early = Instant::from_nanos((NOW_UNIX_S - 365 * 86_400) * 1_000_000_000);
    type Want = fn(&IdentityStoreError) -> bool;
    let cases: [(&[u8], Instant, Want); 5] = [
        (other.pki_id.as_bytes(), now(), |e| {
            matches!(e, IdentityStoreError::Invalid(IdentityError::PkiIdMismatch))
        }),
        (b"", now(), |e| {
            matches!(e, IdentityStoreError::Invalid(IdentityError::PkiIdMismatch))
        }),
        (&id.pki_id.0[..31], now(), |e| {
            matches!(e, IdentityStoreError::Invalid(IdentityError::PkiIdMismatch))
        }),
        (id.pki_id.as_bytes(), expired_at, |e| {
            matches!(
                e,
                IdentityStoreError::Invalid(IdentityError::Expired { .. })
            )
        }),
        (id.pki_id.as_bytes(), too_early, |e| {
            matches!(
                e,
                IdentityStoreError::Invalid(IdentityError::NotYetValid { .. })
            )
        }),
    ];
    for (i, (claimed, at, want)) in cases.into_iter().enumerate() {
        let err = store.put(claimed, id.clone(), at).expect_err("refused");
        assert!(want(&err), "case {i}: {err:?}");
    }
    // An MSP that does not know Org2 refuses its identity.
    let mut only_org1 = MspManager::new();
    only_org1.add_org(golden.msp_manager().org("Org1MSP").expect("org1").clone());
    let org1_store = IdentityStore::new(Arc::new(only_org1), 8);
    let org2 = identity(&golden, PEERS[2]);
    let org2_pki = org2.pki_id;
    assert!(matches!(
        org1_store.put(org2_pki.as_bytes(), org2, now()),
        Err(IdentityStoreError::Invalid(IdentityError::UnknownMsp(_)))
    ));
    assert!(store.is_empty() && org1_store.is_empty());
}

#[test]
fn a_full_store_refuses_only_when_everything_is_pinned() {
    let Some(golden) = Golden::load() else { return };
    let store = store(&golden, 2);
    for peer in &PEERS[..2] {
        store.put_own(identity(&golden, peer), now()).expect("room");
    }
    let third = identity(&golden, PEERS[2]);
    assert_eq!(
        store.put(&third.pki_id.0, third.clone(), now()),
        Err(IdentityStoreError::Full {
            identities_len_max: 2
        })
    );
    assert_eq!((store.len(), store.refused_full_count()), (2, 1));
    // A PKI-ID already present is not refused even when full.
    let first = identity(&golden, PEERS[0]);
    let first_pki = first.pki_id;
    store
        .put(&first_pki.0, first, now())
        .expect("present already");
}

const S: u64 = 1_000_000_000;

fn at_s(unix_s: u64) -> Instant {
    Instant::from_nanos(unix_s * S)
}

/// A distinct identity (fabricated PKI-ID `n`) valid until `not_after_unix_s`: the store's
/// bookkeeping only reads the PKI-ID and the expiry.
fn fake(template: &Identity, n: u32, not_after_unix_s: i64) -> Arc<Identity> {
    let mut id = template.clone();
    id.pki_id = PkiId([0; 32]);
    id.pki_id.0[..4].copy_from_slice(&n.to_be_bytes());
    id.pki_id.0[4] = 1;
    id.cert.not_after_unix_s = not_after_unix_s;
    Arc::new(id)
}

#[test]
fn a_full_store_evicts_expired_identities_first() {
    let Some(golden) = Golden::load() else { return };
    let template = identity(&golden, PEERS[0]);
    let len_max = 64;
    let store = store(&golden, len_max);
    let t0 = NOW_UNIX_S;
    // Half expire at t0 + 10, half live long; the long-lived are seen *before* the others, so
    // LRU alone would pick them.
    for n in 0..len_max as u32 {
        let not_after = if n % 2 == 0 { t0 + 1_000_000 } else { t0 + 10 };
        store
            .insert_validated(
                fake(&template, n, not_after as i64),
                at_s(t0 + u64::from(n % 2)),
            )
            .expect("room");
    }
    assert_eq!(store.len(), len_max);
    let newcomer = fake(&template, 1000, (t0 + 1_000_000) as i64);
    store
        .insert_validated(Arc::clone(&newcomer), at_s(t0 + 20))
        .expect("an expired identity makes room");
    assert!(store.get(&newcomer.pki_id, at_s(t0 + 20)).is_some());
    let stats = store.stats();
    assert_eq!((stats.evicted_expired, stats.evicted_lru), (32, 0));
    assert_eq!(store.len(), len_max / 2 + 1);
    for n in (0..len_max as u32).step_by(2) {
        assert!(
            store.contains(&fake(&template, n, 0).pki_id),
            "live {n} kept"
        );
    }
    let mut removed = 0;
    store.take_changes(|c| {
        removed += usize::from(matches!(c, IdentityChange::Invalidated(_)));
    });
    assert_eq!(
        removed, 32,
        "the node learns of every eviction, as invalidated"
    );
}

#[test]
fn a_full_store_evicts_the_least_recently_seen() {
    let Some(golden) = Golden::load() else { return };
    let template = identity(&golden, PEERS[0]);
    let len_max = 64;
    let store = store(&golden, len_max);
    let t0 = NOW_UNIX_S;
    let long = (t0 + 1_000_000) as i64;
    let own = fake(&template, 999, long);
    store.put_own((*own).clone(), at_s(t0)).expect("own");
    for n in 0..(len_max - 1) as u32 {
        store
            .insert_validated(fake(&template, n, long), at_s(t0 + 1 + u64::from(n)))
            .expect("room");
    }
    // Identity 0 was inserted first, but a signer lookup has just seen it: 1 is now the least
    // recently seen (own identity, older still, is pinned).
    assert!(
        store
            .get(&fake(&template, 0, long).pki_id, at_s(t0 + 100))
            .is_some()
    );
    for (i, n) in [1000u32, 1001].into_iter().enumerate() {
        store
            .insert_validated(fake(&template, n, long), at_s(t0 + 200 + i as u64))
            .expect("LRU makes room");
    }
    let contains = |n| store.contains(&fake(&template, n, long).pki_id);
    assert!(contains(0), "recently seen kept");
    assert!(
        !contains(1) && !contains(2),
        "least recently seen evicted, in order"
    );
    assert!(contains(3) && contains(1000) && contains(1001));
    assert!(store.contains(&own.pki_id), "own identity never evicted");
    let stats = store.stats();
    assert_eq!((stats.evicted_lru, stats.evicted_expired), (2, 0));
    assert_eq!(store.len(), len_max);
}

#[test]
fn own_identity_is_never_evicted_nor_purged() {
    let Some(golden) = Golden::load() else { return };
    let template = identity(&golden, PEERS[0]);
    let store = store(&golden, 2);
    let t0 = NOW_UNIX_S;
    let own = fake(&template, 7, (t0 + 10) as i64);
    store.put_own((*own).clone(), at_s(t0)).expect("own");
    for n in 0..10 {
        store
            .insert_validated(
                fake(&template, n, (t0 + 1_000) as i64),
                at_s(t0 + 100 + u64::from(n)),
            )
            .expect("evicts the other, never own");
        assert!(store.contains(&own.pki_id), "own kept at insert {n}");
    }
    assert!(
        store.purge_expired(at_s(t0 + 500)).is_empty(),
        "own expired, not purged"
    );
    assert!(
        store
            .purge_unused(at_s(t0 + 100_000), UNUSED_THRESHOLD_DEFAULT)
            .len()
            == 1
    );
    assert!(store.remove(&own.pki_id).is_none());
    assert!(store.contains(&own.pki_id));
}

#[test]
fn unused_identities_are_purged_after_the_threshold() {
    let Some(golden) = Golden::load() else { return };
    let template = identity(&golden, PEERS[0]);
    let store = store(&golden, 16);
    let t0 = NOW_UNIX_S;
    let long = (t0 + 1_000_000) as i64;
    for n in 0..4 {
        store
            .insert_validated(fake(&template, n, long), at_s(t0))
            .expect("room");
    }
    // 0 and 1 are seen half-way; the threshold then passes for 2 and 3 only.
    for n in 0..2 {
        assert!(
            store
                .get(&fake(&template, n, long).pki_id, at_s(t0 + 1800))
                .is_some()
        );
    }
    let purged = store.purge_unused(at_s(t0 + 3601), UNUSED_THRESHOLD_DEFAULT);
    let mut want = vec![
        fake(&template, 2, long).pki_id,
        fake(&template, 3, long).pki_id,
    ];
    want.sort_unstable();
    assert_eq!(purged, want);
    assert_eq!((store.len(), store.stats().purged_unused), (2, 2));
}

#[test]
fn an_expired_identity_verifies_nothing() {
    let Some(golden) = Golden::load() else { return };
    let template = identity(&golden, PEERS[0]);
    let store = store(&golden, 4);
    let t0 = NOW_UNIX_S;
    let id = fake(&template, 1, (t0 + 10) as i64);
    store
        .insert_validated(Arc::clone(&id), at_s(t0))
        .expect("room");
    assert!(store.get(&id.pki_id, at_s(t0 + 10)).is_some());
    assert!(
        store.get(&id.pki_id, at_s(t0 + 11)).is_none(),
        "expired: no key"
    );
    assert!(
        store.contains(&id.pki_id),
        "still held until purged or evicted"
    );
    assert_eq!(store.purge_expired(at_s(t0 + 11)), vec![id.pki_id]);
    assert_eq!(store.stats().purged_expired, 1);
}

#[test]
fn expired_identities_vanish_and_purge() {
    let Some(golden) = Golden::load() else { return };
    let store = store(&golden, 8);
    for peer in PEERS {
        let id = identity(&golden, peer);
        let id_pki = id.pki_id;
        store.put(&id_pki.0, id, now()).expect("put");
    }
    let first = identity(&golden, PEERS[0]);
    let after = Instant::from_nanos(((first.cert.not_after_unix_s + 1) as u64) * 1_000_000_000);
    assert!(store.get(&first.pki_id, now()).is_some());
    assert!(
        store.get(&first.pki_id, after).is_none(),
        "expired identities are not served"
    );
    assert!(store.purge_expired(now()).is_empty());
    let purged = store.purge_expired(after);
    assert_eq!(purged.len(), 3);
    assert!(purged.windows(2).all(|w| w[0] < w[1]), "sorted");
    assert!(store.is_empty());
}

mod node_ous {
    use super::*;
    use crate::crypto::NodeRole;
    use crate::testpki::{TestPeer, TestPki, TestPkiSpec};

    fn pki() -> TestPki {
        TestPki::generate(&TestPkiSpec::uniform(1, 1, NOW_UNIX_S as i64)).expect("test PKI")
    }

    fn identity_of(member: &TestPeer) -> Identity {
        member.signer().expect("signer").identity().clone()
    }

    #[test]
    fn a_client_certificate_is_refused_as_a_peer_and_counted() {
        let pki = pki();
        let store = IdentityStore::new(Arc::new(pki.msp_manager().expect("msp")), 8);
        let org = &pki.orgs[0];
        let peer = identity_of(&org.peers[0]);
        store
            .put(&peer.pki_id.0, peer.clone(), now())
            .expect("a peer is accepted");
        for (member, role) in [
            (&org.client, NodeRole::Client),
            (&org.admin, NodeRole::Admin),
        ] {
            let id = identity_of(member);
            assert_eq!(
                store.put(&id.pki_id.0, id.clone(), now()),
                Err(IdentityStoreError::Invalid(IdentityError::NotAPeer {
                    role
                }))
            );
            assert!(!store.contains(&id.pki_id));
        }
        let stats = store.stats();
        assert_eq!(
            (stats.len, stats.refused_not_a_peer, stats.refused_invalid),
            (1, 2, 0)
        );
    }

    #[test]
    fn node_ou_roles_follow_fabric() {
        let pki = pki();
        let org = &pki.orgs[0];
        let msp = pki.msp_manager().expect("msp");
        let client = identity_of(&org.client);
        // Fabric's ValidateIdentity takes a client (one role OU); gossip wants a peer.
        assert_eq!(
            msp.validate_role(&client, NOW_UNIX_S as i64),
            Ok(Some(NodeRole::Client))
        );
        assert_eq!(
            msp.validate_role(&identity_of(&org.peers[0]), NOW_UNIX_S as i64),
            Ok(Some(NodeRole::Peer))
        );
        // NodeOUs disabled: no role, a client certificate passes as a peer (Fabric before
        // NodeOUs).
        let mut plain = MspManager::new();
        let mut org_msp = org.msp().expect("org msp");
        org_msp.node_ous = None;
        plain.add_org(org_msp.clone());
        assert_eq!(plain.validate_peer(&client, NOW_UNIX_S as i64), Ok(()));
        // A role pinned to another CA refuses; no role OU refuses.
        let other_ca = pki.orderer_org.msp().expect("orderer msp").root_cas[0]
            .der
            .clone();
        let mut pinned = MspManager::new();
        pinned.add_org(
            org_msp
                .clone()
                .with_node_ous(crate::crypto::NodeOus::cryptogen(Some(other_ca))),
        );
        assert!(matches!(
            pinned.validate(&client, NOW_UNIX_S as i64),
            Err(IdentityError::NodeOuCertifierMismatch { .. })
        ));
        let mut renamed = crate::crypto::NodeOus::cryptogen(None);
        renamed.client = None;
        let mut no_client_role = MspManager::new();
        no_client_role.add_org(org_msp.with_node_ous(renamed));
        assert_eq!(
            no_client_role.validate(&client, NOW_UNIX_S as i64),
            Err(IdentityError::NoNodeOu)
        );
    }
}
