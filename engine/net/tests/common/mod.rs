//! Shared helpers for the comm integration tests: a generated 2-org PKI, peers on 127.0.0.1:0,
//! data envelopes, and a raw client that speaks the handshake by hand.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use gossip_engine::client::{self, Dialed};
use gossip_engine::config::CommConfig;
use gossip_engine::crypto::{LocalSigner, MspManager};
use gossip_engine::ingress::{Ingress, IngressConfig, ReceivedMessage, Verified};
use gossip_engine::{Comm, CommParams, Inbound, RemotePeer, TlsMaterial, clock};
use gossip_proto::gossip::gossip_client::GossipClient;
use gossip_proto::gossip::{DataMessage, Envelope, GossipMessage, Payload, gossip_message};
use gossip_testkit::testpki::{TestPeer, TestPki, TestPkiSpec};
use prost::Message;
use tonic::Streaming;

/// A bound on every wait in these tests, so a bug fails instead of hanging.
pub const WAIT: Duration = Duration::from_secs(20);

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

pub fn now_unix_s() -> i64 {
    clock::now().as_unix_secs()
}

/// Two orgs with two peers each, valid from now.
pub fn pki() -> TestPki {
    TestPki::generate(&TestPkiSpec::uniform(2, 2, now_unix_s())).expect("test PKI")
}

pub fn msp(pki: &TestPki) -> Arc<MspManager> {
    Arc::new(pki.msp_manager().expect("msp manager"))
}

pub fn tls_of(peer: &TestPeer) -> TlsMaterial {
    TlsMaterial {
        cert_chain_pem: peer.tls.cert_pem.clone(),
        key_pem: peer.tls.key_pem.clone(),
    }
}

pub fn signer_of(peer: &TestPeer) -> Arc<LocalSigner> {
    Arc::new(peer.signer().expect("signer"))
}

/// Starts a peer of `pki` (org `org`, peer `idx`) on 127.0.0.1:0.
pub async fn start_peer(
    pki: &TestPki,
    org: usize,
    idx: usize,
    tls: bool,
    config: CommConfig,
) -> Comm {
    let peer = &pki.orgs[org].peers[idx];
    Comm::start(CommParams {
        config,
        listen: "127.0.0.1:0".parse().expect("addr"),
        signer: signer_of(peer),
        ingress: ingress(msp(pki)),
        tls: tls.then(|| tls_of(peer)),
    })
    .await
    .expect("comm starts")
}

pub fn remote(comm: &Comm) -> RemotePeer {
    RemotePeer {
        endpoint: comm.local_addr().to_string(),
        pki_id: comm.pki_id(),
    }
}

/// An unsigned data message (tag CHAN_AND_ORG) carrying `seq`.
pub fn data_envelope(seq: u64) -> Envelope {
    let message = GossipMessage {
        nonce: 0,
        channel: Bytes::from_static(b"testchannel"),
        tag: gossip_message::Tag::ChanAndOrg as i32,
        content: Some(gossip_message::Content::DataMsg(DataMessage {
            payload: Some(Payload {
                seq_num: seq,
                data: Bytes::from(format!("block {seq}")),
                private_data: vec![],
            }),
        })),
    };
    Envelope {
        payload: message.encode_to_vec().into(),
        signature: Bytes::new(),
        secret_envelope: None,
    }
}

pub fn seq_of(message: &Verified<ReceivedMessage>) -> Option<u64> {
    match &message.message.content {
        Some(gossip_message::Content::DataMsg(DataMessage { payload: Some(p) })) => Some(p.seq_num),
        _ => None,
    }
}

/// Receives one message or fails after [`WAIT`].
pub async fn recv(sub: &Inbound) -> Verified<ReceivedMessage> {
    tokio::time::timeout(WAIT, sub.recv())
        .await
        .expect("message within the wait")
        .expect("subscription open")
}

/// Polls `cond` until it holds or [`WAIT`] passes.
pub async fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::sleep(WAIT);
    tokio::pin!(deadline);
    loop {
        if cond() {
            return true;
        }
        tokio::select! {
            () = &mut deadline => return cond(),
            () = tokio::time::sleep(Duration::from_millis(20)) => {}
        }
    }
}

/// A raw client stream: whatever envelopes the test wants to send, and the server's replies.
pub struct RawStream {
    pub tx: tokio::sync::mpsc::Sender<Envelope>,
    pub inbound: Streaming<Envelope>,
    pub dialed: Dialed,
}

/// Dials `endpoint` with `tls` (None: plaintext) and opens a GossipStream whose first envelope is
/// `first`.
pub async fn raw_stream(
    endpoint: &str,
    tls: Option<Arc<rustls::ClientConfig>>,
    first: Envelope,
) -> Result<RawStream, tonic::Status> {
    let config = CommConfig::for_test();
    let wire = Default::default();
    let dialed = client::dial(endpoint, tls, &config, wire)
        .await
        .expect("dial");
    // tonic's generated client: an independent gRPC implementation against our framing.
    let mut client = GossipClient::new(dialed.channel.clone());
    let (tx, rx) = tokio::sync::mpsc::channel::<Envelope>(16);
    tx.send(first).await.expect("queue first");
    let outbound =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|e| (e, rx)) });
    let response = tokio::time::timeout(WAIT, client.gossip_stream(outbound))
        .await
        .expect("stream opens in time")?;
    Ok(RawStream {
        tx,
        inbound: response.into_inner(),
        dialed,
    })
}

/// Builds a ConnEstablish envelope by hand, signed by `signer` over the payload.
pub fn conn_establish(
    pki_id: &[u8],
    identity: Bytes,
    tls_cert_hash: &[u8],
    probe: bool,
    signer: &LocalSigner,
) -> Envelope {
    let message = conn_message(pki_id, identity, tls_cert_hash, probe);
    let payload: Bytes = message.encode_to_vec().into();
    let signature = signer.sign(&payload).expect("sign");
    Envelope {
        payload,
        signature,
        secret_envelope: None,
    }
}

pub fn conn_message(
    pki_id: &[u8],
    identity: Bytes,
    tls_cert_hash: &[u8],
    probe: bool,
) -> GossipMessage {
    GossipMessage {
        nonce: 0,
        channel: Bytes::new(),
        tag: gossip_message::Tag::Empty as i32,
        content: Some(gossip_message::Content::Conn(
            gossip_proto::gossip::ConnEstablish {
                pki_id: Bytes::copy_from_slice(pki_id),
                identity,
                tls_cert_hash: Bytes::copy_from_slice(tls_cert_hash),
                probe,
            },
        )),
    }
}

/// SHA-256 of a test peer's TLS leaf DER.
pub fn tls_hash_of(peer: &TestPeer) -> [u8; 32] {
    let chain = gossip_engine::tls::parse_cert_chain(&peer.tls.cert_pem).expect("tls cert");
    gossip_engine::crypto::tls_cert_hash(&chain[0])
}

/// A valid ConnEstablish for `peer` (its own identity, PKI-ID and TLS hash).
pub fn good_conn_establish(peer: &TestPeer, tls: bool) -> Envelope {
    let signer = peer.signer().expect("signer");
    let hash: &[u8] = if tls { &tls_hash_of(peer) } else { &[] };
    conn_establish(
        signer.pki_id().as_bytes(),
        signer.identity().serialized.clone(),
        hash,
        false,
        &signer,
    )
}

/// A TLS client config presenting `peer`'s TLS certificate.
pub fn client_tls(msp: &MspManager, peer: Option<&TestPeer>) -> Arc<rustls::ClientConfig> {
    let material = peer.map(tls_of);
    Arc::new(gossip_engine::tls::client_config(msp, material.as_ref()).expect("client tls"))
}

/// An ingress pipeline over `msp`, as the node and its comm share it.
pub fn ingress(msp: Arc<MspManager>) -> Arc<Ingress> {
    Arc::new(Ingress::with_msp(IngressConfig::default(), msp))
}

/// Starts a comm with explicit parts.
pub async fn start_with(
    signer: Arc<LocalSigner>,
    msp: Arc<MspManager>,
    tls: Option<TlsMaterial>,
    config: CommConfig,
) -> Comm {
    Comm::start(CommParams {
        config,
        listen: "127.0.0.1:0".parse().expect("addr"),
        signer,
        ingress: ingress(msp),
        tls,
    })
    .await
    .expect("comm starts")
}

/// Reads until the stream ends or fails; returns how many envelopes came before that.
pub async fn drain_until_end(inbound: &mut Streaming<Envelope>) -> usize {
    let mut count = 0;
    loop {
        match tokio::time::timeout(WAIT, inbound.message())
            .await
            .expect("stream ends in time")
        {
            Ok(Some(_)) => count += 1,
            Ok(None) | Err(_) => return count,
        }
    }
}
