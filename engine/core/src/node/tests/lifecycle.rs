//! The identity lifecycle through ingress and the node (spec 3.11, 3.5): Fabric's
//! TestIdentityExpiration (expired and revoked identities are cut off everywhere, their
//! connections closed), TestCertificateChange (a renewed certificate's new PKI-ID replaces the old
//! one at once) and TestLeaveChannel.

use super::*;
use crate::crypto::crl::Crl;
use crate::crypto::{IdentityError, MspManager};
use crate::testpki::TestPeer;

const CHANNEL: &[u8] = b"testchannel";

/// One org of `peers` peers whose last peer is `last` instead (short-lived, say), joined to
/// [`CHANNEL`] and converged.
fn converged(
    peers: usize,
    seed: u64,
    last: impl FnOnce(&TestPki) -> TestPeer,
) -> (Cluster, TestPki) {
    let mut pki = Cluster::pki(&[peers]);
    let replaced = last(&pki);
    pki.orgs[0].peers[peers - 1] = replaced;
    let mut c = Cluster::with_pki(&pki, false, seed, GossipConfig::default());
    let org = c.peers[0].org.clone();
    let ch = Bytes::from_static(CHANNEL);
    for i in 0..peers {
        c.command(i, join(&org, &ch, Vec::new()));
    }
    c.run_until(at_s(30.0));
    for p in &c.peers {
        assert_eq!(p.node.peers().len(), peers - 1, "{:?}", p.node);
        assert_eq!(p.node.peers_of_channel(CHANNEL).len(), peers - 1);
    }
    (c, pki)
}

fn alive(c: &Cluster, i: usize) -> Vec<PkiId> {
    c.peers[i].node.peers().iter().map(|m| m.pki_id).collect()
}

fn dead(c: &Cluster, i: usize) -> Vec<PkiId> {
    c.peers[i]
        .node
        .dead_peers()
        .iter()
        .map(|m| m.pki_id)
        .collect()
}

fn in_channel(c: &Cluster, i: usize) -> Vec<PkiId> {
    c.peers[i]
        .node
        .peers_of_channel(CHANNEL)
        .iter()
        .map(|(m, _)| m.pki_id)
        .collect()
}

/// Whether `i` forgot `gone` entirely: not alive, not dead, not in the channel.
fn forgot(c: &Cluster, i: usize, gone: &PkiId) -> bool {
    !alive(c, i).contains(gone) && !dead(c, i).contains(gone) && !in_channel(c, i).contains(gone)
}

#[test]
fn an_expired_identity_is_cut_off_everywhere_at_its_not_after() {
    // Peer 3's certificate ends 90 s after the start; the others' in ten years.
    let (mut c, _) = converged(4, 11, |pki| {
        let org = &pki.orgs[0];
        org.issue_peer(&org.peers[3].name, START_UNIX_S as i64, 90)
            .unwrap()
    });
    let gone = c.peers[3].signer.pki_id();
    c.run_until(at_s(90.5));
    assert!(
        alive(&c, 0).contains(&gone),
        "still valid within its last second"
    );
    // No lookup needed: the expiry timer purges it once its NotAfter second has passed.
    c.run_until(at_s(91.1));
    for i in 0..3 {
        assert!(
            forgot(&c, i, &gone),
            "peer {i} still knows the expired peer"
        );
        assert!(
            c.closed.contains(&(i, gone)),
            "peer {i} kept its connection"
        );
        assert_eq!(c.peers[i].node.stats().discovery.identities_cut_off, 1);
    }
    // It keeps talking; nobody takes it back.
    c.run_until(at_s(150.0));
    for i in 0..3 {
        assert!(
            forgot(&c, i, &gone),
            "peer {i} learnt the expired peer again"
        );
        assert_eq!(alive(&c, i).len(), 2);
    }
}

#[test]
fn a_revoked_identity_is_cut_off_when_the_crl_arrives() {
    let (mut c, pki) = converged(4, 12, |pki| pki.orgs[0].peers[3].clone());
    let gone = c.peers[3].signer.pki_id();
    let org = &pki.orgs[0];
    let crl_pem = org.crl_pem(&[&org.peers[3]], START_UNIX_S as i64).unwrap();
    let crls = Crl::from_pem_or_der(crl_pem.as_bytes()).unwrap();
    let mut msp = MspManager::new();
    msp.add_org(org.msp().unwrap().with_crls(crls).unwrap());
    let msp = Arc::new(msp);
    let now = c.now;
    for i in 0..3 {
        let peer = &mut c.peers[i];
        assert_eq!(peer.identities.replace_msp(Arc::clone(&msp), now), [gone]);
        peer.identities
            .take_changes(|change| peer.node.handle_identity(change, now));
    }
    c.settle();
    for i in 0..3 {
        assert!(
            forgot(&c, i, &gone),
            "peer {i} still knows the revoked peer: {} {} {}",
            alive(&c, i).contains(&gone),
            dead(&c, i).contains(&gone),
            in_channel(&c, i).contains(&gone)
        );
        assert!(c.closed.contains(&(i, gone)));
        assert_eq!(c.peers[i].identities.stats().purged_revoked, 1);
    }
    // Its handshakes and messages are refused from now on.
    c.run_until(at_s(90.0));
    for i in 0..3 {
        assert!(
            forgot(&c, i, &gone),
            "peer {i} learnt the revoked peer again"
        );
        assert!(c.peers[i].identities.get(&gone, c.now).is_none());
    }
}

#[test]
fn a_crl_signed_by_no_ca_of_the_org_is_refused() {
    let pki = Cluster::pki(&[1, 1]);
    let (org1, org2) = (&pki.orgs[0], &pki.orgs[1]);
    let foreign = org2
        .crl_pem(&[&org1.peers[0]], START_UNIX_S as i64)
        .unwrap();
    let crls = Crl::from_pem_or_der(foreign.as_bytes()).unwrap();
    assert!(matches!(
        org1.msp().unwrap().with_crls(crls),
        Err(IdentityError::BadCrl(_))
    ));
    assert!(Crl::from_pem_or_der(b"not a crl").is_err());
    // A CRL of the right CA that lists someone else revokes nobody here.
    let other = org1.crl_pem(&[&org1.client], START_UNIX_S as i64).unwrap();
    let crls = Crl::from_pem_or_der(other.as_bytes()).unwrap();
    let msp = org1.msp().unwrap().with_crls(crls).unwrap();
    let mut manager = MspManager::new();
    manager.add_org(msp);
    let peer = org1.peers[0].signer().unwrap();
    assert_eq!(
        manager.validate_peer(peer.identity(), START_UNIX_S as i64),
        Ok(())
    );
}

/// Replaces peer `i` by a fresh node of `test_peer` at the same endpoints (a restart, with
/// another certificate or the same), which takes `commands` before it meets anyone. Not settled.
fn restart_as(c: &mut Cluster, i: usize, test_peer: &TestPeer, commands: Vec<Command>) {
    let now = c.now;
    let msp = c.peers[0].identities.msp();
    let signer = Arc::new(test_peer.signer().unwrap());
    let identities = Arc::new(IdentityStore::new(
        Arc::clone(&msp),
        IDENTITIES_LEN_MAX_DEFAULT,
    ));
    identities
        .put(signer.pki_id().as_bytes(), signer.identity().clone(), now)
        .unwrap();
    let ingress = Ingress::new(IngressConfig::default(), msp, Arc::clone(&identities));
    let old = &c.peers[i];
    let mut node = Node::new(
        NodeParams {
            config: GossipConfig::default(),
            external_endpoint: old.external.clone(),
            internal_endpoint: old.internal.clone(),
            bootstrap: vec![c.peers[0].internal.clone()],
            signer: Arc::clone(&signer),
            rng_seed: 99,
        },
        now,
    );
    for command in commands {
        node.handle_command(command, now);
    }
    let peer = Peer {
        node,
        ingress,
        identities,
        signer,
        org: old.org.clone(),
        internal: old.internal.clone(),
        external: old.external.clone(),
        blocks: BTreeMap::new(),
        received: Vec::new(),
    };
    c.peers[i] = peer;
}

#[test]
fn a_restarted_peer_asks_for_state_info_as_soon_as_it_meets_a_channel_peer() {
    let (mut c, pki) = converged(4, 14, |pki| pki.orgs[0].peers[3].clone());
    let ch = Bytes::from_static(CHANNEL);
    let org = c.peers[0].org.clone();
    let restarted_at = c.now;
    let asked_by = |c: &Cluster| -> usize {
        (0..3)
            .map(|j| c.sent(3, j, ContentKind::StateInfoPullReq))
            .sum()
    };
    let asked_before = asked_by(&c);
    // Joined before it knows any peer, as gossip-node rejoins its channels at start.
    restart_as(
        &mut c,
        3,
        &pki.orgs[0].peers[3],
        vec![join(&org, &ch, Vec::new())],
    );
    // It knows their identities (the harness checks nested signatures against a peer's store).
    for j in 0..3 {
        c.link(3, j);
    }
    c.settle();
    assert_eq!(c.now, restarted_at, "no timer ran");
    let asked = asked_by(&c) - asked_before;
    assert!(
        (1..=GossipConfig::default().pull_peer_num).contains(&asked),
        "asked {asked}"
    );
    assert_eq!(
        in_channel(&c, 3).len(),
        3,
        "every channel peer's StateInfo, before the first requestStateInfoInterval tick"
    );
    // Asked once: the next requests are the periodic ones.
    c.run_until(restarted_at + Duration::from_secs(1));
    assert_eq!(asked_by(&c) - asked_before, asked);
}

#[test]
fn a_renewed_certificate_replaces_the_old_pki_id_at_once() {
    let (mut c, pki) = converged(4, 13, |pki| pki.orgs[0].peers[3].clone());
    let old = c.peers[3].signer.pki_id();
    let org = &pki.orgs[0];
    let renewed = org
        .issue_peer(&org.peers[3].name, START_UNIX_S as i64, 3600)
        .unwrap();
    restart_as(&mut c, 3, &renewed, Vec::new());
    c.settle();
    let new = c.peers[3].signer.pki_id();
    assert_ne!(old, new);
    let ch = Bytes::from_static(CHANNEL);
    let org_id = c.peers[0].org.clone();
    c.command(3, join(&org_id, &ch, Vec::new()));
    // Within one StateInfo round, well before the old one would even be declared dead (25 s).
    c.run_until(at_s(45.0));
    for i in 0..3 {
        assert!(forgot(&c, i, &old), "peer {i} still knows the old PKI-ID");
        assert!(
            alive(&c, i).contains(&new),
            "peer {i} did not learn the new one"
        );
        assert!(in_channel(&c, i).contains(&new));
        assert!(c.closed.contains(&(i, old)));
        assert!(c.peers[i].node.stats().discovery.superseded >= 1);
    }
    // A stale alive message of the old incarnation, still in flight, does not bring it back.
    c.run_until(at_s(120.0));
    for i in 0..3 {
        assert!(forgot(&c, i, &old));
        assert_eq!(alive(&c, i).len(), 3);
    }
}

#[test]
fn a_peer_that_leaves_disappears_from_peers_of_channel_and_stops_pulling() {
    // Fabric's TestLeaveChannel.
    let (mut c, _) = converged(4, 14, |pki| pki.orgs[0].peers[3].clone());
    let leaver = c.peers[3].signer.pki_id();
    c.command(3, Command::LeaveChan(Bytes::from_static(CHANNEL)));
    c.run_until(at_s(40.0));
    let hellos_then: usize = (0..3).map(|j| c.sent(3, j, ContentKind::Hello)).sum();
    c.run_until(at_s(80.0));
    for i in 0..3 {
        assert!(
            !in_channel(&c, i).contains(&leaver),
            "peer {i} lists the leaver"
        );
        assert_eq!(in_channel(&c, i).len(), 2);
        assert!(alive(&c, i).contains(&leaver), "it is still a member");
    }
    assert!(in_channel(&c, 3).is_empty());
    let hellos_now: usize = (0..3).map(|j| c.sent(3, j, ContentKind::Hello)).sum();
    assert_eq!(hellos_now, hellos_then, "the leaver still pulls blocks");
    // Blocks still flow among the others, and not to the leaver.
    c.command(0, Command::Gossip(block(&Bytes::from_static(CHANNEL), 1)));
    c.run_until(at_s(90.0));
    for i in 1..3 {
        assert_eq!(
            c.peers[i].blocks.get(CHANNEL).cloned().unwrap_or_default(),
            [1]
        );
    }
    assert!(!c.peers[3].blocks.contains_key(CHANNEL));
    // Nobody spends a push on it either.
    let pushed: usize = (0..3).map(|i| c.sent(i, 3, ContentKind::DataMsg)).sum();
    assert_eq!(pushed, 0, "blocks pushed to the leaver");
}
