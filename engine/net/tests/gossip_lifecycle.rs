//! The identity lifecycle over real tonic with mutual TLS on 127.0.0.1 (issue 21 item 3; the
//! simulator runs the same over 200 seeds in `tests/tests/lifecycle.rs`): Fabric's
//! TestIdentityExpiration (a peer whose certificate expires is cut off by everyone) and
//! TestCertificateChange (a peer restarted with a renewed certificate at the same endpoint: its
//! new PKI-ID replaces the old one, which lingers neither in membership nor in the channel).

mod gossip_cluster;

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use gossip_cluster::{Cluster, WAIT, eventually, fast_gossip, init_tracing};
use gossip_engine::config::CommConfig;
use gossip_engine::types::PkiId;
use gossip_engine::{
    CommSettings, GossipHandle, GossipParams, NodeSettings, StartOptions, TlsMaterial, clock,
};
use gossip_testkit::testpki::TestPeer;

const CHANNEL: &str = "lifecycle";

/// Starts `peer` listening on `listen`, bootstrapping to `bootstrap`.
async fn start_as(
    cluster: &Cluster,
    peer: &TestPeer,
    listen: SocketAddr,
    bootstrap: Vec<String>,
) -> GossipHandle {
    GossipHandle::start_with(
        GossipParams {
            comm: CommSettings {
                config: CommConfig::for_test(),
                listen,
                tls: Some(TlsMaterial {
                    cert_chain_pem: peer.tls.cert_pem.clone(),
                    key_pem: peer.tls.key_pem.clone(),
                }),
            },
            node: NodeSettings {
                config: fast_gossip(),
                external_endpoint: listen.to_string(),
                internal_endpoint: listen.to_string(),
                bootstrap,
                rng_seed: 7,
            },
            signer: Arc::new(peer.signer().expect("signer")),
            msp: Arc::clone(&cluster.msp),
            ingress: GossipParams::ingress_config(),
        },
        StartOptions::default(),
    )
    .await
    .expect("gossip starts")
}

/// Whether `node` knows `pki_id` at all: alive, dead, or in the channel.
async fn knows(node: &GossipHandle, pki_id: &PkiId) -> bool {
    let alive = node.peers().await.unwrap_or_default();
    let dead = node.dead_peers().await.unwrap_or_default();
    let channel = node
        .peers_of_channel(Bytes::from_static(CHANNEL.as_bytes()))
        .await
        .unwrap_or_default();
    alive.iter().any(|m| m.pki_id == *pki_id)
        || dead.iter().any(|m| m.pki_id == *pki_id)
        || channel.iter().any(|(m, _)| m.pki_id == *pki_id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_identity_is_cut_off_over_tonic() {
    init_tracing();
    let mut cluster = Cluster::start(2, fast_gossip()).await;
    // Peer 2's certificate ends 30 s from now (whole seconds); the others' in ten years.
    let org = &cluster.pki.orgs[0];
    let short = org
        .issue_peer("peer2.org1.example.com", clock::now().as_unix_secs(), 30)
        .expect("short-lived peer");
    cluster.pki.orgs[0].peers.push(short);
    let bootstrap = vec![cluster.nodes[0].local_addr().to_string()];
    let node = cluster
        .start_peer_with(2, fast_gossip(), bootstrap, StartOptions::default())
        .await;
    cluster.nodes.push(node);
    cluster.join(CHANNEL, &[0, 1, 2]).await;
    assert!(
        eventually(|| cluster.channel_converged(CHANNEL, &[0, 1, 2])).await,
        "no channel view within {WAIT:?}"
    );
    let gone = cluster.nodes[2].pki_id();
    // The expiry is 30 s away: wait for it (bounded), then for both others to forget it.
    let forgotten = async {
        loop {
            let mut all = true;
            for node in &cluster.nodes[..2] {
                all &= !knows(node, &gone).await;
            }
            if all {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    };
    tokio::time::timeout(WAIT + std::time::Duration::from_secs(30), forgotten)
        .await
        .expect("the expired peer is still known");
    for node in &cluster.nodes[..2] {
        let stats = node.stats().await.expect("stats");
        assert!(stats.node.discovery.identities_cut_off >= 1, "{stats:?}");
    }
    // It keeps dialling and sending; it stays out, and the other two stay together.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    for node in &cluster.nodes[..2] {
        assert!(!knows(node, &gone).await, "the expired peer came back");
    }
    assert!(cluster.channel_converged(CHANNEL, &[0, 1]).await);
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewed_certificate_replaces_the_old_pki_id_over_tonic() {
    init_tracing();
    let mut cluster = Cluster::start(3, fast_gossip()).await;
    cluster.join(CHANNEL, &[0, 1, 2]).await;
    assert!(
        eventually(|| cluster.channel_converged(CHANNEL, &[0, 1, 2])).await,
        "no channel view within {WAIT:?}"
    );
    let old = cluster.nodes[2].pki_id();
    let listen = cluster.nodes[2].local_addr();
    cluster.nodes[2].stop().await;
    let org = &cluster.pki.orgs[0];
    let renewed = org
        .issue_peer(&org.peers[2].name, clock::now().as_unix_secs(), 3600)
        .expect("renewed peer");
    let bootstrap = vec![cluster.nodes[0].local_addr().to_string()];
    let node = start_as(&cluster, &renewed, listen, bootstrap).await;
    let new = node.pki_id();
    assert_ne!(old, new);
    cluster.nodes[2] = node;
    cluster.join(CHANNEL, &[2]).await;
    // The old PKI-ID goes as soon as the new one is learnt: it is neither dead nor lingering
    // until its alive message expires (100 s with these timings), and the new one is in the
    // channel.
    let replaced = || async {
        let mut all = cluster.channel_converged(CHANNEL, &[0, 1, 2]).await;
        for node in &cluster.nodes[..2] {
            all &= !knows(node, &old).await;
        }
        all
    };
    assert!(
        eventually(replaced).await,
        "the old PKI-ID lingers or the new one is not learnt within {WAIT:?}"
    );
    // Whichever purged it (discovery on the new alive message, or comm's identity switch when a
    // dial by endpoint met the new PKI-ID), stale alive messages do not bring it back.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    for node in &cluster.nodes[..2] {
        assert!(!knows(node, &old).await, "the old PKI-ID came back");
    }
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_identity_is_cut_off_and_refused_over_tonic() {
    init_tracing();
    let cluster = Cluster::start(3, fast_gossip()).await;
    cluster.join(CHANNEL, &[0, 1, 2]).await;
    assert!(
        eventually(|| cluster.channel_converged(CHANNEL, &[0, 1, 2])).await,
        "no channel view within {WAIT:?}"
    );
    let gone = cluster.nodes[2].pki_id();
    let org = &cluster.pki.orgs[0];
    let crl = org
        .crl_pem(&[&org.peers[2]], clock::now().as_unix_secs())
        .expect("crl");
    let crls = gossip_engine::crypto::crl::Crl::from_pem_or_der(crl.as_bytes()).expect("parse");
    for node in &cluster.nodes[..2] {
        let mut msp = gossip_engine::crypto::MspManager::new();
        msp.add_org(
            org.msp()
                .expect("msp")
                .with_crls(crls.clone())
                .expect("crl"),
        );
        assert_eq!(node.replace_msp(msp).await.expect("replace"), [gone]);
    }
    let forgotten = || async {
        let mut all = true;
        for node in &cluster.nodes[..2] {
            all &= !knows(node, &gone).await;
        }
        all
    };
    assert!(
        eventually(forgotten).await,
        "the revoked peer is still known"
    );
    // It keeps dialling; its handshakes are refused and it stays out.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    for node in &cluster.nodes[..2] {
        assert!(!knows(node, &gone).await, "the revoked peer came back");
    }
    assert!(cluster.channel_converged(CHANNEL, &[0, 1]).await);
    cluster.stop().await;
}
