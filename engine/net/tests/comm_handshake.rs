//! Handshake rejections (spec 2.2): each bad variant is injected by a raw client and the server
//! counts the specific cause; the pure check returns the specific typed error.

mod common;

use common::*;
use gossip_engine::config::CommConfig;
use gossip_engine::crypto::{IdentityError, OrgMsp};
use gossip_engine::handshake::verify_conn_establish;
use gossip_engine::{Comm, HandshakeError};
use gossip_proto::gossip::Envelope;
use gossip_testkit::testpki::{TestPki, TestPkiSpec};

/// Sends `first` from a raw TLS client presenting `client_peer`'s certificate and waits until the
/// server has counted a failure of `cause`; checks nothing was registered.
async fn expect_server_rejects(
    server: &Comm,
    client_tls_cfg: std::sync::Arc<rustls::ClientConfig>,
    first: Envelope,
    cause: &str,
) {
    let endpoint = server.local_addr().to_string();
    if let Ok(mut raw) = raw_stream(&endpoint, Some(client_tls_cfg), first).await {
        // The server's own ConnEstablish may arrive; then the stream ends.
        let _ = drain_until_end(&mut raw.inbound).await;
    }
    assert!(
        eventually(|| server.stats().handshake_failures_of(cause) == 1).await,
        "expected one handshake failure {cause:?}, got {:?}",
        server.stats().handshake_failures
    );
    assert_eq!(server.stats().connections_opened, 0);
    assert!(server.connected_peers().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_signature_is_rejected() {
    init_tracing();
    let pki = pki();
    let msp = msp(&pki);
    let server = start_peer(&pki, 0, 0, true, CommConfig::for_test()).await;
    let client = &pki.orgs[1].peers[0];
    let mut env = good_conn_establish(client, true);
    // A valid signature, but over other bytes.
    env.signature = client
        .signer()
        .expect("signer")
        .sign(b"something else")
        .expect("sign");
    let err = verify_conn_establish(
        &env,
        &msp,
        true,
        Some(&leaf_der(client)),
        gossip_engine::clock::now(),
    );
    assert!(
        matches!(err, Err(HandshakeError::BadSignature(_))),
        "{err:?}"
    );
    expect_server_rejects(
        &server,
        client_tls(&msp, Some(client)),
        env,
        "bad_signature",
    )
    .await;
    server.stop().await;
}

fn leaf_der(peer: &gossip_testkit::testpki::TestPeer) -> Vec<u8> {
    gossip_engine::tls::parse_cert_chain(&peer.tls.cert_pem).expect("cert")[0].to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_cert_hash_mismatch_is_rejected() {
    init_tracing();
    let pki = pki();
    let msp = msp(&pki);
    let server = start_peer(&pki, 0, 0, true, CommConfig::for_test()).await;
    let client = &pki.orgs[1].peers[0];
    let signer = client.signer().expect("signer");
    // Claims the TLS hash of another peer's certificate.
    let wrong_hash = tls_hash_of(&pki.orgs[1].peers[1]);
    let env = conn_establish(
        signer.pki_id().as_bytes(),
        signer.identity().serialized.clone(),
        &wrong_hash,
        false,
        &signer,
    );
    let err = verify_conn_establish(
        &env,
        &msp,
        true,
        Some(&leaf_der(client)),
        gossip_engine::clock::now(),
    );
    assert_eq!(err.err(), Some(HandshakeError::TlsCertHashMismatch));
    expect_server_rejects(
        &server,
        client_tls(&msp, Some(client)),
        env,
        "tls_cert_hash_mismatch",
    )
    .await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_first_message_is_rejected() {
    init_tracing();
    let pki = pki();
    let msp = msp(&pki);
    let server = start_peer(&pki, 0, 0, true, CommConfig::for_test()).await;
    let client = &pki.orgs[1].peers[0];
    let env = data_envelope(1);
    let err = verify_conn_establish(
        &env,
        &msp,
        true,
        Some(&leaf_der(client)),
        gossip_engine::clock::now(),
    );
    assert_eq!(err.err(), Some(HandshakeError::WrongFirstMessage));
    expect_server_rejects(
        &server,
        client_tls(&msp, Some(client)),
        env,
        "wrong_first_message",
    )
    .await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pki_id_mismatch_is_rejected() {
    init_tracing();
    let pki = pki();
    let msp = msp(&pki);
    let server = start_peer(&pki, 0, 0, true, CommConfig::for_test()).await;
    let client = &pki.orgs[1].peers[0];
    let signer = client.signer().expect("signer");
    let other_pki_id = pki.orgs[1].peers[1].signer().expect("signer").pki_id();
    let env = conn_establish(
        other_pki_id.as_bytes(),
        signer.identity().serialized.clone(),
        &tls_hash_of(client),
        false,
        &signer,
    );
    let err = verify_conn_establish(
        &env,
        &msp,
        true,
        Some(&leaf_der(client)),
        gossip_engine::clock::now(),
    );
    assert_eq!(err.err(), Some(HandshakeError::PkiIdMismatch));
    expect_server_rejects(
        &server,
        client_tls(&msp, Some(client)),
        env,
        "pki_id_mismatch",
    )
    .await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_from_unknown_ca_is_rejected() {
    init_tracing();
    let pki = pki();
    let msp = msp(&pki);
    let server = start_peer(&pki, 0, 0, true, CommConfig::for_test()).await;
    // Same MSP id "Org1MSP", but issued by a CA of another, unrelated PKI.
    let stranger_pki = TestPki::generate(&TestPkiSpec::uniform(1, 1, now_unix_s())).expect("pki");
    let stranger = stranger_pki.orgs[0].peers[0].signer().expect("signer");
    let tls_peer = &pki.orgs[1].peers[0];
    let env = conn_establish(
        stranger.pki_id().as_bytes(),
        stranger.identity().serialized.clone(),
        &tls_hash_of(tls_peer),
        false,
        &stranger,
    );
    let err = verify_conn_establish(
        &env,
        &msp,
        true,
        Some(&leaf_der(tls_peer)),
        gossip_engine::clock::now(),
    );
    // The stranger CA has the same subject name as Org1's, so the chain check fails on its signature.
    assert!(
        matches!(
            err,
            Err(HandshakeError::InvalidIdentity(
                IdentityError::BadChainSignature | IdentityError::UnknownIssuer
            ))
        ),
        "{err:?}"
    );
    expect_server_rejects(
        &server,
        client_tls(&msp, Some(tls_peer)),
        env,
        "identity_unknown_ca",
    )
    .await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_identity_is_rejected() {
    init_tracing();
    let pki = pki();
    // An org whose peer certificate was valid for one hour, three days ago (its CA is still valid).
    let three_days_s = 3 * 24 * 3600;
    let old_pki = TestPki::generate(&TestPkiSpec {
        peers_per_org: vec![1],
        now_unix_s: now_unix_s() - three_days_s,
        peer_validity_s: 3600,
    })
    .expect("pki");
    let old_org = &old_pki.orgs[0];
    let mut manager = pki.msp_manager().expect("msp");
    manager.add_org(
        OrgMsp::from_pems(
            "ExpiredOrgMSP",
            &[old_org.ca.cert_pem.as_bytes()],
            &[],
            &[old_org.tls_ca.cert_pem.as_bytes()],
        )
        .expect("org msp"),
    );
    let msp = std::sync::Arc::new(manager);
    let server_peer = &pki.orgs[0].peers[0];
    let server = start_with(
        signer_of(server_peer),
        msp.clone(),
        Some(tls_of(server_peer)),
        CommConfig::for_test(),
    )
    .await;
    let old_peer = &old_org.peers[0];
    let expired = gossip_engine::signing_key::local_signer_from_pems(
        "ExpiredOrgMSP",
        old_peer.enrollment.cert_pem.as_bytes(),
        old_peer.enrollment.key_pem.as_bytes(),
    )
    .expect("signer");
    let tls_peer = &pki.orgs[1].peers[0];
    let env = conn_establish(
        expired.pki_id().as_bytes(),
        expired.identity().serialized.clone(),
        &tls_hash_of(tls_peer),
        false,
        &expired,
    );
    let err = verify_conn_establish(
        &env,
        &msp,
        true,
        Some(&leaf_der(tls_peer)),
        gossip_engine::clock::now(),
    );
    assert!(
        matches!(
            err,
            Err(HandshakeError::InvalidIdentity(
                IdentityError::Expired { .. }
            ))
        ),
        "{err:?}"
    );
    expect_server_rejects(
        &server,
        client_tls(&msp, Some(tls_peer)),
        env,
        "identity_expired",
    )
    .await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_client_certificate_is_rejected_while_tls_is_on() {
    init_tracing();
    let pki = pki();
    let msp = msp(&pki);
    let server = start_peer(&pki, 0, 0, true, CommConfig::for_test()).await;
    let client = &pki.orgs[1].peers[0];
    let env = good_conn_establish(client, true);
    let err = verify_conn_establish(&env, &msp, true, None, gossip_engine::clock::now());
    assert_eq!(err.err(), Some(HandshakeError::NoTlsCertificate));
    // The TLS layer lets the connection through (RequestClientCert); the gossip layer refuses it.
    expect_server_rejects(&server, client_tls(&msp, None), env, "no_tls_certificate").await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valid_raw_handshake_is_accepted_and_answered() {
    init_tracing();
    let pki = pki();
    let msp = msp(&pki);
    let server = start_peer(&pki, 0, 0, true, CommConfig::for_test()).await;
    let client = &pki.orgs[1].peers[0];
    let mut raw = raw_stream(
        &server.local_addr().to_string(),
        Some(client_tls(&msp, Some(client))),
        good_conn_establish(client, true),
    )
    .await
    .expect("stream");
    let reply = tokio::time::timeout(WAIT, raw.inbound.message())
        .await
        .expect("reply in time")
        .expect("ok")
        .expect("some");
    // The server's ConnEstablish carries the hash of the server certificate we saw.
    let seen_leaf = raw.dialed.server_leaf.clone().expect("server leaf");
    let remote = verify_conn_establish(
        &reply,
        &msp,
        true,
        Some(&seen_leaf),
        gossip_engine::clock::now(),
    )
    .expect("server handshake verifies");
    assert_eq!(remote.pki_id, server.pki_id());
    assert!(
        eventually(|| server.connected_peers() == vec![client.signer().expect("s").pki_id()]).await
    );
    server.stop().await;
}
