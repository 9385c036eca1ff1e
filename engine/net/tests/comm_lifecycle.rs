//! Connection lifecycle: close and reconnect, a malformed envelope, one connection for concurrent
//! senders, probe handshake, presumed dead, identity switch and authentication failure.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;

use bytes::Bytes;
use common::*;
use gossip_engine::PkiId;
use gossip_engine::config::CommConfig;
use gossip_engine::{CommError, HandshakeError, RemotePeer};
use gossip_proto::gossip::Envelope;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_conn_then_send_reconnects() {
    init_tracing();
    let pki = pki();
    let a = start_peer(&pki, 0, 0, true, CommConfig::for_test()).await;
    let b = start_peer(&pki, 1, 0, true, CommConfig::for_test()).await;
    let sub_b = b.inbound();
    a.send(data_envelope(1), &[remote(&b)]);
    assert_eq!(seq_of(&recv(&sub_b).await), Some(1));

    a.close_conn(&b.pki_id());
    assert!(a.connected_peers().is_empty());
    assert!(
        eventually(|| b.connected_peers().is_empty()).await,
        "B saw the stream end"
    );

    a.send(data_envelope(2), &[remote(&b)]);
    assert_eq!(seq_of(&recv(&sub_b).await), Some(2));
    assert_eq!(a.stats().connections_opened, 2);
    assert_eq!(b.stats().connections_opened, 2);
    assert!(a.stats().connections_closed >= 1);
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_envelope_closes_only_that_stream() {
    init_tracing();
    let pki = pki();
    let msp = msp(&pki);
    let server = start_peer(&pki, 0, 0, true, CommConfig::for_test()).await;
    let good = start_peer(&pki, 1, 0, true, CommConfig::for_test()).await;
    let sub = server.inbound();
    good.send(data_envelope(1), &[remote(&server)]);
    assert_eq!(seq_of(&recv(&sub).await), Some(1));

    // A raw peer authenticates properly, then sends a payload that is not a GossipMessage.
    let bad_peer = &pki.orgs[1].peers[1];
    let mut raw = raw_stream(
        &server.local_addr().to_string(),
        Some(client_tls(&msp, Some(bad_peer))),
        good_conn_establish(bad_peer, true),
    )
    .await
    .expect("stream");
    let bad_pki_id = bad_peer.signer().expect("signer").pki_id();
    assert!(eventually(|| server.connected_peers().contains(&bad_pki_id)).await);
    raw.tx
        .send(Envelope {
            payload: Bytes::from_static(&[0xff, 0xff, 0xff]),
            ..Default::default()
        })
        .await
        .expect("queue garbage");
    // Only the server's ConnEstablish comes back before the stream ends.
    assert_eq!(drain_until_end(&mut raw.inbound).await, 1);
    assert!(
        eventually(|| server.stats().rejects_of("malformed") == 1).await,
        "{:?}",
        server.stats()
    );
    assert!(eventually(|| !server.connected_peers().contains(&bad_pki_id)).await);

    // The other peer's connection is unaffected.
    good.send(data_envelope(2), &[remote(&server)]);
    assert_eq!(seq_of(&recv(&sub).await), Some(2));
    assert!(server.connected_peers().contains(&good.pki_id()));
    assert_eq!(good.stats().connections_opened, 1);
    server.stop().await;
    good.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_senders_to_a_new_peer_open_one_connection() {
    init_tracing();
    const SENDERS: u64 = 16;
    let pki = pki();
    let a = Arc::new(start_peer(&pki, 0, 0, true, CommConfig::for_test()).await);
    let b = start_peer(&pki, 1, 0, true, CommConfig::for_test()).await;
    let sub_b = b.inbound();
    let target = remote(&b);
    let tasks: Vec<_> = (0..SENDERS)
        .map(|seq| {
            let (a, target) = (a.clone(), target.clone());
            tokio::spawn(async move { a.send_blocking(data_envelope(seq), &target).await })
        })
        .collect();
    for task in tasks {
        task.await.expect("task").expect("send");
    }
    for _ in 0..SENDERS {
        recv(&sub_b).await;
    }
    assert_eq!(a.stats().connections_opened, 1);
    assert_eq!(b.stats().connections_opened, 1);
    assert_eq!(a.connected_peers(), vec![b.pki_id()]);
    a.stop().await;
    b.stop().await;
}

/// Two peers that dial each other at the same moment settle on exactly one connection between
/// them (the one dialled by the lower PKI-ID, on both sides), and traffic then flows both ways.
/// Before the tie-break each side could close the connection the other kept, again and again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simultaneous_dials_settle_on_one_connection() {
    init_tracing();
    const ROUNDS: u64 = 8;
    let pki = pki();
    for round in 0..ROUNDS {
        let a = Arc::new(start_peer(&pki, 0, 0, true, CommConfig::for_test()).await);
        let b = Arc::new(start_peer(&pki, 1, 0, true, CommConfig::for_test()).await);
        let (sub_a, sub_b) = (a.inbound(), b.inbound());
        let (to_a, to_b) = (remote(&a), remote(&b));
        // Both dial at once.
        a.send(data_envelope(1), std::slice::from_ref(&to_b));
        b.send(data_envelope(2), std::slice::from_ref(&to_a));
        assert!(
            eventually(|| a.connected_peers() == vec![b.pki_id()]
                && b.connected_peers() == vec![a.pki_id()])
            .await,
            "round {round}: one connection on each side"
        );
        for seq in 10..20 {
            a.send_blocking(data_envelope(seq), &to_b)
                .await
                .expect("A sends");
            b.send_blocking(data_envelope(seq + 100), &to_a)
                .await
                .expect("B sends");
        }
        let mut got_b = BTreeSet::new();
        while got_b.len() < 10 {
            if let Some(seq) = seq_of(&recv(&sub_b).await).filter(|s| (10..20).contains(s)) {
                got_b.insert(seq);
            }
        }
        let mut got_a = BTreeSet::new();
        while got_a.len() < 10 {
            if let Some(seq) = seq_of(&recv(&sub_a).await).filter(|s| (110..120).contains(s)) {
                got_a.insert(seq);
            }
        }
        assert!(a.connected_peers() == vec![b.pki_id()] && b.connected_peers() == vec![a.pki_id()]);
        a.stop().await;
        b.stop().await;
    }
}

/// Two peers that dial each other at the same moment lose nothing sent while they sort out which
/// connection to keep: a replaced connection is half-closed (`Conn::retire`: no more sends on it,
/// but its reader drains what the remote wrote before it switched, until the remote ends it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simultaneous_dials_lose_nothing_in_flight() {
    init_tracing();
    const ROUNDS: u64 = 8;
    let pki = pki();
    for round in 0..ROUNDS {
        let a = Arc::new(start_peer(&pki, 0, 0, true, CommConfig::for_test()).await);
        let b = Arc::new(start_peer(&pki, 1, 0, true, CommConfig::for_test()).await);
        let (sub_a, sub_b) = (a.inbound(), b.inbound());
        let (to_a, to_b) = (remote(&a), remote(&b));
        // Both dial at once: each blocking send waits for its own connection.
        let (ra, rb) = tokio::join!(
            a.send_blocking(data_envelope(1), &to_b),
            b.send_blocking(data_envelope(2), &to_a),
        );
        ra.expect("A's first send");
        rb.expect("B's first send");
        assert_eq!(seq_of(&recv(&sub_b).await), Some(1), "round {round}");
        assert_eq!(seq_of(&recv(&sub_a).await), Some(2), "round {round}");
        // Settled: one connection each way of looking, and later traffic uses it.
        assert!(
            eventually(|| a.connected_peers() == vec![b.pki_id()]
                && b.connected_peers() == vec![a.pki_id()])
            .await,
            "round {round}: one connection on each side"
        );
        for seq in 10..20 {
            a.send_blocking(data_envelope(seq), &to_b)
                .await
                .expect("A sends");
            b.send_blocking(data_envelope(seq + 100), &to_a)
                .await
                .expect("B sends");
        }
        for seq in 10..20 {
            assert_eq!(seq_of(&recv(&sub_b).await), Some(seq), "round {round}");
            assert_eq!(
                seq_of(&recv(&sub_a).await),
                Some(seq + 100),
                "round {round}"
            );
        }
        assert!(a.connected_peers() == vec![b.pki_id()] && b.connected_peers() == vec![a.pki_id()]);
        a.stop().await;
        b.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_handshake_returns_identity_and_registers_nothing() {
    init_tracing();
    let pki = pki();
    let a = start_peer(&pki, 0, 0, true, CommConfig::for_test()).await;
    let b = start_peer(&pki, 1, 0, true, CommConfig::for_test()).await;
    let endpoint = b.local_addr().to_string();
    let identity = a
        .handshake(&endpoint, Some(b.pki_id()))
        .await
        .expect("probe handshake");
    assert_eq!(identity.pki_id, b.pki_id());
    assert_eq!(identity.mspid, "Org2MSP");
    let identity = a
        .handshake(&endpoint, None)
        .await
        .expect("probe handshake without expectation");
    assert_eq!(identity.pki_id, b.pki_id());
    let wrong = a.handshake(&endpoint, Some(a.pki_id())).await;
    assert!(
        matches!(wrong, Err(CommError::UnexpectedPeer { .. })),
        "{wrong:?}"
    );
    a.probe(&endpoint).await.expect("ping probe");
    assert_eq!(b.stats().connections_opened, 0);
    assert_eq!(a.stats().connections_opened, 0);
    assert!(b.connected_peers().is_empty());
    assert!(a.connected_peers().is_empty());
    a.stop().await;
    b.stop().await;
}

/// An endpoint where nothing listens.
async fn dead_endpoint() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    addr.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sending_to_a_dead_endpoint_presumes_the_peer_dead() {
    init_tracing();
    let pki = pki();
    let a = start_peer(&pki, 0, 0, true, CommConfig::for_test()).await;
    let mut dead_rx = a.presumed_dead().expect("first take");
    assert!(a.presumed_dead().is_none());
    let dead = RemotePeer {
        endpoint: dead_endpoint().await,
        pki_id: PkiId([9; 32]),
    };
    a.send(data_envelope(1), std::slice::from_ref(&dead));
    let reported = tokio::time::timeout(WAIT, dead_rx.recv())
        .await
        .expect("reported in time");
    assert_eq!(reported, Some(dead.pki_id));
    assert!(a.probe(&dead.endpoint).await.is_err());
    assert!(a.connected_peers().is_empty());
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unexpected_pki_id_same_org_switches_and_other_org_fails() {
    init_tracing();
    let pki = pki();
    let a = start_peer(&pki, 0, 0, true, CommConfig::for_test()).await;
    let c = start_peer(&pki, 1, 0, true, CommConfig::for_test()).await;
    let d = start_peer(&pki, 1, 1, true, CommConfig::for_test()).await;
    let mut switches = a.identity_switches().expect("first take");
    let mut dead_rx = a.presumed_dead().expect("first take");
    let sub_d = d.inbound();

    // A learns C's identity, then finds D (same org) at the endpoint it expected C at.
    a.send_blocking(data_envelope(1), &remote(&c))
        .await
        .expect("send to C");
    // As if C restarted with a new identity: the old connection is gone.
    a.close_conn(&c.pki_id());
    let moved = RemotePeer {
        endpoint: d.local_addr().to_string(),
        pki_id: c.pki_id(),
    };
    a.send_blocking(data_envelope(2), &moved)
        .await
        .expect("identity switch is accepted");
    assert_eq!(seq_of(&recv(&sub_d).await), Some(2));
    let old = tokio::time::timeout(WAIT, switches.recv())
        .await
        .expect("switch in time");
    assert_eq!(old, Some(c.pki_id()));

    // An unknown PKI-ID expected at D's endpoint: not the same org, so authentication fails.
    let stranger = RemotePeer {
        endpoint: d.local_addr().to_string(),
        pki_id: PkiId([3; 32]),
    };
    let err = a.send_blocking(data_envelope(3), &stranger).await;
    assert!(
        matches!(
            err,
            Err(CommError::Handshake(
                HandshakeError::AuthenticationFailure { .. }
            ))
        ),
        "{err:?}"
    );
    assert_eq!(a.stats().handshake_failures_of("authentication_failure"), 1);
    let reported = tokio::time::timeout(WAIT, dead_rx.recv())
        .await
        .expect("reported in time");
    assert_eq!(reported, Some(stranger.pki_id));
    a.stop().await;
    c.stop().await;
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_closes_subscriptions_and_connections() {
    init_tracing();
    let pki = pki();
    let a = start_peer(&pki, 0, 0, false, CommConfig::for_test()).await;
    let b = start_peer(&pki, 1, 0, false, CommConfig::for_test()).await;
    let sub_b = b.inbound();
    a.send_blocking(data_envelope(1), &remote(&b))
        .await
        .expect("send");
    assert_eq!(seq_of(&recv(&sub_b).await), Some(1));
    b.stop().await;
    assert!(
        tokio::time::timeout(WAIT, sub_b.recv())
            .await
            .expect("ends in time")
            .is_none()
    );
    assert!(b.connected_peers().is_empty());
    assert!(
        eventually(|| a.connected_peers().is_empty()).await,
        "A saw B go away"
    );
    a.stop().await;
}
