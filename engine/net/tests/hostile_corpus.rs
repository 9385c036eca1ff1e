//! The hostile-input corpus (issue 20 item 3, spec/operations.md E.2 R5), over real connections:
//! a victim `GossipHandle` and an honest peer of the same org on 127.0.0.1 over tonic with mutual
//! TLS, and a hostile client that speaks raw gRPC bytes to the victim. Each case of [`CASES`]
//! sends its inputs and names the counters (by reason) that must count every one of them; then the
//! victim must still be running, no task may have panicked, and the honest peer's membership and
//! blocks must still flow. Adding a case is one entry in [`CASES`].
//!
//! The table "case -> rejected, reason counts" is written straight to the process's stderr, so it
//! shows in `cargo test` output without `--nocapture`.

mod common;
mod gossip_cluster;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::io::Write;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use common::{client_tls, conn_establish, good_conn_establish, msp, tls_hash_of};
use gossip_cluster::{Cluster, Delivered, block, eventually, fast_gossip};
use gossip_engine::bounds::{HANDSHAKES_IN_FLIGHT_MAX, HTTP2_STREAMS_PER_CONN_MAX};
use gossip_engine::client::{self, Dialed};
use gossip_engine::config::CommConfig;
use gossip_engine::crypto::LocalSigner;
use gossip_engine::{
    CommSettings, GossipHandle, GossipParams, GossipStats, NodeSettings, StartOptions, TlsMaterial,
    clock,
};
use gossip_proto::gossip::gossip_message::{Content, Tag};
use gossip_proto::gossip::{
    AliveMessage, DataMessage, Envelope, GossipMessage, Member, MembershipRequest,
    MembershipResponse, Payload, PeerTime,
};
use gossip_testkit::testpki::{TestPeer, TestPki, TestPkiSpec};
use http_body::Frame;
use prost::Message;
use tokio::sync::mpsc;
use tower::ServiceExt;

/// The victim's receive limit: small, so the oversized case announces just over it.
const RECV_MESSAGE_LEN_MAX_BYTES: usize = 1 << 20;
const CHANNEL: &str = "hostile";
/// Org 1's peers: the victim, the honest peer, the hostile insider (a peer of a trusted CA).
const VICTIM: usize = 0;
const HONEST: usize = 1;
const HOSTILE: usize = 2;

/// Panics on any thread of this test process (the victim's tasks included).
static PANICS: AtomicUsize = AtomicUsize::new(0);

/// Everything a case needs.
struct Ctx {
    cluster: Cluster,
    /// A CA the victim does not trust (its own PKI).
    stranger_pki: TestPki,
    victim_addr: String,
}

impl Ctx {
    fn victim(&self) -> &GossipHandle {
        &self.cluster.nodes[VICTIM]
    }
    fn peer(&self, i: usize) -> &TestPeer {
        &self.cluster.pki.orgs[0].peers[i]
    }
    fn hostile(&self) -> &TestPeer {
        self.peer(HOSTILE)
    }
    fn hostile_signer(&self) -> LocalSigner {
        self.hostile().signer().expect("signer")
    }
}

type CaseFuture<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// One hostile input class: what it sends, and the counters (`kind.reason`, see [`counters`])
/// that must rise by at least the given number of inputs.
struct Case {
    name: &'static str,
    expect: &'static [(&'static str, u64)],
    run: for<'a> fn(&'a Ctx) -> CaseFuture<'a>,
}

/// Inputs of the stream flood: three times the per-connection stream bound.
const STREAM_FLOOD: u64 = 3 * HTTP2_STREAMS_PER_CONN_MAX as u64;
/// Replayed inputs of each replay case.
const REPLAYS: u64 = 20;
/// Connections of the handshake flood over the bound.
const HANDSHAKE_FLOOD_EXTRA: u64 = 8;

const CASES: &[Case] = &[
    // Frame and protobuf level, after an authenticated handshake.
    case("garbage_frame", &[("reject.frame_undecodable", 1)], |c| {
        Box::pin(after_handshake(c, vec![frame(&[0x0a, 0x7f, 0x01])]))
    }),
    case("garbage_payload", &[("reject.malformed", 1)], |c| {
        Box::pin(after_handshake(
            c,
            vec![envelope_frame(&unsigned(Bytes::from_static(
                b"\xff\xff\xff\xff",
            )))],
        ))
    }),
    case("truncated_payload", &[("reject.malformed", 1)], |c| {
        let payload = alive(c, 1, 1).payload;
        let cut = payload.slice(..payload.len() - 3);
        Box::pin(after_handshake(c, vec![envelope_frame(&unsigned(cut))]))
    }),
    case("truncated_frame", &[("reject.frame_truncated", 1)], |c| {
        let mut bytes = prefix(100).to_vec();
        bytes.extend_from_slice(&[0u8; 10]);
        Box::pin(after_handshake(c, vec![Bytes::from(bytes)]))
    }),
    case("compressed_frame", &[("reject.frame_compressed", 1)], |c| {
        let mut bytes = envelope_frame(&alive(c, 1, 1)).to_vec();
        bytes[0] = 1;
        Box::pin(after_handshake(c, vec![Bytes::from(bytes)]))
    }),
    case("wrong_wire_type", &[("reject.malformed", 1)], |c| {
        // GossipMessage.nonce (field 1, varint) sent length-delimited.
        let payload = Bytes::from_static(&[0x0a, 0x02, 0x01, 0x02]);
        Box::pin(after_handshake(c, vec![envelope_frame(&unsigned(payload))]))
    }),
    case("deeply_nested", &[("reject.malformed", 1)], |c| {
        // 300 nested groups of an unknown field: past prost's recursion limit of 100.
        let mut payload = [0xa3u8, 0x06].repeat(300);
        payload.extend([0xa4u8, 0x06].repeat(300));
        Box::pin(after_handshake(
            c,
            vec![envelope_frame(&unsigned(payload.into()))],
        ))
    }),
    case("nested_envelopes_64_deep", &[("reject.invalid", 1)], |c| {
        // A membership response whose item is an envelope of a membership response whose item
        // is ..., 64 levels: only one level is ever decoded, and it is no alive message.
        let mut inner = unsigned(Bytes::new());
        for _ in 0..64 {
            let message = GossipMessage {
                tag: Tag::Empty as i32,
                content: Some(Content::MemRes(MembershipResponse {
                    alive: vec![inner],
                    dead: vec![],
                })),
                ..Default::default()
            };
            inner = unsigned(message.encode_to_vec().into());
        }
        Box::pin(after_handshake(c, vec![envelope_frame(&inner)]))
    }),
    case(
        "too_many_nested_items",
        &[("reject.too_many_items", 1)],
        |c| {
            let items_len = GossipParams::ingress_config().nested_items_len_max + 1;
            let message = GossipMessage {
                tag: Tag::Empty as i32,
                content: Some(Content::MemRes(MembershipResponse {
                    alive: vec![unsigned(Bytes::from_static(b"x")); items_len],
                    dead: vec![],
                })),
                ..Default::default()
            };
            Box::pin(after_handshake(
                c,
                vec![envelope_frame(&unsigned(message.encode_to_vec().into()))],
            ))
        },
    ),
    case("oversized_frame", &[("reject.oversize", 1)], |c| {
        let mut bytes = prefix(RECV_MESSAGE_LEN_MAX_BYTES + 1).to_vec();
        bytes.extend_from_slice(&[0u8; 64 * 1024]);
        Box::pin(after_handshake(c, vec![Bytes::from(bytes)]))
    }),
    case(
        "dribbled_garbage_frame",
        &[("reject.frame_undecodable", 1)],
        |c| {
            let bytes = frame(&[0x0a, 0x7f, 0x01, 0x02, 0x03]);
            Box::pin(after_handshake(c, one_byte_chunks(&bytes)))
        },
    ),
    case(
        "dribbled_bad_signature",
        &[("reject.bad_signature", 1)],
        |c| {
            let mut env = alive(c, 1, 10);
            env.signature = c.hostile_signer().sign(b"other bytes").expect("sign");
            Box::pin(after_handshake(c, one_byte_chunks(&envelope_frame(&env))))
        },
    ),
    // Signatures and identities.
    case("bad_signature", &[("reject.bad_signature", 1)], |c| {
        let mut env = alive(c, 1, 11);
        env.signature = c.hostile_signer().sign(b"other bytes").expect("sign");
        Box::pin(after_handshake(c, vec![envelope_frame(&env)]))
    }),
    case(
        "membership_request_spoofing_another_peer",
        &[("reject.spoofed", 1)],
        |c| {
            // A request whose self information is the honest peer's alive message.
            let honest = c.peer(HONEST).signer().expect("signer");
            let about = signed(&honest, alive_message(&honest, 1, 1));
            let message = GossipMessage {
                nonce: 7,
                tag: Tag::Empty as i32,
                content: Some(Content::MemReq(MembershipRequest {
                    self_information: Some(about),
                    known: vec![],
                })),
                ..Default::default()
            };
            let env = signed(&c.hostile_signer(), message);
            Box::pin(after_handshake(c, vec![envelope_frame(&env)]))
        },
    ),
    case("unknown_channel", &[("drop.UnknownChannel", 1)], |c| {
        let message = GossipMessage {
            channel: Bytes::from_static(b"no-such-channel"),
            tag: Tag::ChanAndOrg as i32,
            content: Some(Content::DataMsg(DataMessage {
                payload: Some(Payload {
                    seq_num: 1,
                    data: Bytes::from_static(b"block"),
                    private_data: vec![],
                }),
            })),
            ..Default::default()
        };
        Box::pin(after_handshake(
            c,
            vec![envelope_frame(&unsigned(message.encode_to_vec().into()))],
        ))
    }),
    // Honest traffic is also dropped as stale or duplicate now and then: these cases send
    // REPLAYS inputs each, so that they count well above that background.
    case("replayed_alive_old_seq", &[("drop.Stale", REPLAYS)], |c| {
        let newest = envelope_frame(&alive(c, 2, 1000));
        let older = (0..REPLAYS).map(|seq| envelope_frame(&alive(c, 2, seq + 1)));
        Box::pin(after_handshake(
            c,
            std::iter::once(newest).chain(older).collect(),
        ))
    }),
    case(
        "replayed_alive_same_bytes",
        &[("reject.duplicate", REPLAYS)],
        |c| {
            let env = envelope_frame(&alive(c, 3, 1));
            Box::pin(after_handshake(c, vec![env; REPLAYS as usize + 1]))
        },
    ),
    // The handshake (ConnEstablish and TLS).
    case(
        "handshake_garbage_first_frame",
        &[("handshake.malformed", 1)],
        |c| Box::pin(first_frames(c, vec![frame(&[0x0a, 0x7f, 0x01])])),
    ),
    case(
        "handshake_dribbled_past_the_timeout",
        &[("handshake.timeout", 1)],
        |c| {
            // A valid ConnEstablish, a byte every 50 ms: it would take a minute; the handshake
            // gives up after conn_timeout.
            Box::pin(async move {
                let dialed = dial(c, client_tls(&c.cluster.msp, Some(c.hostile())))
                    .await
                    .expect("dial");
                let first = envelope_frame(&good_conn_establish(c.hostile(), true));
                let pace = Duration::from_millis(50);
                open_stream_paced(&dialed, one_byte_chunks(&first), pace).await;
            })
        },
    ),
    case(
        "handshake_wrong_first_message",
        &[("handshake.wrong_first_message", 1)],
        |c| Box::pin(first_frames(c, vec![envelope_frame(&alive(c, 4, 1))])),
    ),
    case(
        "handshake_bad_signature",
        &[("handshake.bad_signature", 1)],
        |c| {
            let mut env = good_conn_establish(c.hostile(), true);
            env.signature = c.hostile_signer().sign(b"other bytes").expect("sign");
            Box::pin(first_frames(c, vec![envelope_frame(&env)]))
        },
    ),
    case(
        "handshake_pki_id_mismatch",
        &[("handshake.pki_id_mismatch", 1)],
        |c| {
            let signer = c.hostile_signer();
            let honest_pki_id = c.peer(HONEST).signer().expect("signer").pki_id();
            let env = conn_establish(
                honest_pki_id.as_bytes(),
                signer.identity().serialized.clone(),
                &tls_hash_of(c.hostile()),
                false,
                &signer,
            );
            Box::pin(first_frames(c, vec![envelope_frame(&env)]))
        },
    ),
    case(
        "handshake_tls_cert_hash_mismatch",
        &[("handshake.tls_cert_hash_mismatch", 1)],
        |c| {
            let signer = c.hostile_signer();
            let env = conn_establish(
                signer.pki_id().as_bytes(),
                signer.identity().serialized.clone(),
                &tls_hash_of(c.peer(HONEST)),
                false,
                &signer,
            );
            Box::pin(first_frames(c, vec![envelope_frame(&env)]))
        },
    ),
    case(
        "identity_of_an_unknown_ca",
        &[("handshake.identity_unknown_ca", 1)],
        |c| {
            // A trusted TLS certificate, but a signing identity of a CA the victim does not know.
            let stranger = c.stranger_pki.orgs[0].peers[0].signer().expect("signer");
            let env = conn_establish(
                stranger.pki_id().as_bytes(),
                stranger.identity().serialized.clone(),
                &tls_hash_of(c.hostile()),
                false,
                &stranger,
            );
            Box::pin(first_frames(c, vec![envelope_frame(&env)]))
        },
    ),
    case(
        "client_identity_not_a_peer",
        &[("handshake.identity_not_a_peer", 1)],
        |c| {
            // The org's client certificate (NodeOU client), over the hostile peer's TLS.
            let client = c.cluster.pki.orgs[0].client.signer().expect("signer");
            let env = conn_establish(
                client.pki_id().as_bytes(),
                client.identity().serialized.clone(),
                &tls_hash_of(c.hostile()),
                false,
                &client,
            );
            Box::pin(first_frames(c, vec![envelope_frame(&env)]))
        },
    ),
    case(
        "tls_cert_of_an_unknown_ca",
        &[("handshake.tls_rejected", 1)],
        |c| {
            Box::pin(async move {
                let stranger = &c.stranger_pki.orgs[0].peers[0];
                let tls = client_tls(&c.cluster.msp, Some(stranger));
                if let Ok(dialed) = dial(c, tls).await {
                    let stream = open_stream(
                        &dialed,
                        vec![envelope_frame(&good_conn_establish(stranger, true))],
                    );
                    let _ = tokio::time::timeout(Duration::from_secs(5), stream).await;
                }
            })
        },
    ),
    case("cross_org_bootstrap", &[("drop.NotInMyOrg", 1)], |_| {
        // The victim lists a peer of the other org as a bootstrap peer (see `start`): its probe
        // handshake succeeds, the org does not match, the connect is refused and retried.
        Box::pin(async {})
    }),
    // Floods.
    case(
        "stream_flood",
        &[("handshake.malformed", STREAM_FLOOD)],
        |c| {
            Box::pin(async move {
                let dialed = dial(c, client_tls(&c.cluster.msp, Some(c.hostile())))
                    .await
                    .expect("dial");
                let garbage = || vec![frame(&[0x0a, 0x7f, 0x01])];
                // One stream first: its answer comes after the server's SETTINGS, so the client
                // knows the bound of HTTP2_STREAMS_PER_CONN_MAX and holds the streams over it
                // until earlier ones end: every one reaches the server in turn. (A client that
                // ignores the bound has its extra streams refused by HTTP/2 itself,
                // REFUSED_STREAM, before the gossip service sees them: not counted.)
                open_stream(&dialed, garbage()).await;
                let streams = (1..STREAM_FLOOD).map(|_| open_stream(&dialed, garbage()));
                futures_util::future::join_all(streams).await;
            })
        },
    ),
    case(
        "handshake_flood",
        &[
            ("refusal.handshakes_full", HANDSHAKE_FLOOD_EXTRA),
            ("handshake.tls_rejected", HANDSHAKES_IN_FLIGHT_MAX as u64),
        ],
        |c| {
            Box::pin(async move {
                // TCP connections that never send a ClientHello, then close.
                let mut idle = Vec::new();
                for _ in 0..HANDSHAKES_IN_FLIGHT_MAX as u64 + HANDSHAKE_FLOOD_EXTRA {
                    let tcp = tokio::net::TcpStream::connect(&c.victim_addr)
                        .await
                        .expect("connect");
                    idle.push(tcp);
                }
                let refused = || async {
                    counters(&c.victim().stats().await.expect("stats"))
                        .get("refusal.handshakes_full")
                        .is_some_and(|n| *n >= HANDSHAKE_FLOOD_EXTRA)
                };
                eventually(refused).await;
            })
        },
    ),
];

const fn case(
    name: &'static str,
    expect: &'static [(&'static str, u64)],
    run: for<'a> fn(&'a Ctx) -> CaseFuture<'a>,
) -> Case {
    Case { name, expect, run }
}

/// Every counter of the victim, as `kind.reason`: `reject` (ingress and frame rejects),
/// `handshake` (failed handshakes), `refusal` (bounds reached), `drop` (the node's drops).
fn counters(stats: &GossipStats) -> BTreeMap<String, u64> {
    let comm = &stats.comm;
    let named = |kind: &str, map: &BTreeMap<&'static str, u64>| {
        map.iter()
            .map(move |(k, v)| (format!("{kind}.{k}"), *v))
            .collect::<Vec<_>>()
    };
    let mut all: BTreeMap<String, u64> = BTreeMap::new();
    all.extend(named("reject", &comm.rejects));
    all.extend(named("handshake", &comm.handshake_failures));
    all.extend(named("refusal", &comm.refusals));
    all.extend(
        stats
            .node
            .dropped
            .iter()
            .map(|(k, v)| (format!("drop.{k:?}"), *v)),
    );
    all
}

fn delta(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0)))
        .filter(|(_, d)| *d > 0)
        .collect()
}

// ---- inputs ----

fn prefix(len_bytes: usize) -> [u8; 5] {
    let mut p = [0u8; 5];
    p[1..].copy_from_slice(&u32::try_from(len_bytes).expect("fits").to_be_bytes());
    p
}

/// `body` as one uncompressed gRPC frame.
fn frame(body: &[u8]) -> Bytes {
    let mut bytes = prefix(body.len()).to_vec();
    bytes.extend_from_slice(body);
    bytes.into()
}

fn envelope_frame(envelope: &Envelope) -> Bytes {
    frame(&envelope.encode_to_vec())
}

fn one_byte_chunks(bytes: &[u8]) -> Vec<Bytes> {
    bytes
        .iter()
        .map(|b| Bytes::copy_from_slice(&[*b]))
        .collect()
}

fn unsigned(payload: Bytes) -> Envelope {
    Envelope {
        payload,
        signature: Bytes::new(),
        secret_envelope: None,
    }
}

fn signed(signer: &LocalSigner, message: GossipMessage) -> Envelope {
    let payload: Bytes = message.encode_to_vec().into();
    let signature = signer.sign(&payload).expect("sign");
    Envelope {
        payload,
        signature,
        secret_envelope: None,
    }
}

fn alive_message(signer: &LocalSigner, inc_num: u64, seq_num: u64) -> GossipMessage {
    GossipMessage {
        tag: Tag::Empty as i32,
        content: Some(Content::AliveMsg(AliveMessage {
            membership: Some(Member {
                endpoint: String::new(),
                metadata: Bytes::new(),
                pki_id: Bytes::copy_from_slice(signer.pki_id().as_bytes()),
            }),
            timestamp: Some(PeerTime { inc_num, seq_num }),
            identity: Bytes::new(),
        })),
        ..Default::default()
    }
}

/// The hostile peer's own alive message, signed.
fn alive(c: &Ctx, inc_num: u64, seq_num: u64) -> Envelope {
    let signer = c.hostile_signer();
    signed(&signer, alive_message(&signer, inc_num, seq_num))
}

// ---- the hostile client: raw gRPC bytes over mutual TLS ----

/// A request body fed chunk by chunk: raw gRPC bytes, not messages.
struct ChanBody(mpsc::Receiver<Bytes>);

impl http_body::Body for ChanBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|c| c.map(|c| Ok(Frame::data(c))))
    }
}

async fn dial(
    c: &Ctx,
    tls: Arc<rustls::ClientConfig>,
) -> Result<Dialed, gossip_engine::client::DialError> {
    client::dial(
        &c.victim_addr,
        Some(tls),
        &CommConfig::for_test(),
        Default::default(),
    )
    .await
}

/// Opens a `GossipStream` on `dialed`, sends `chunks` as DATA frames, one each, ends the request
/// and reads the response to its end (or for at most 5 s: the victim keeps an authenticated
/// stream open).
async fn open_stream(dialed: &Dialed, chunks: Vec<Bytes>) {
    open_stream_paced(dialed, chunks, Duration::from_millis(1)).await;
}

/// [`open_stream`], with single-byte chunks `pace` apart (a dribble).
async fn open_stream_paced(dialed: &Dialed, chunks: Vec<Bytes>, pace: Duration) {
    let (tx, rx) = mpsc::channel(8);
    let feeder = tokio::spawn(async move {
        for chunk in chunks {
            let dribble = chunk.len() == 1;
            if tx.send(chunk).await.is_err() {
                return;
            }
            if dribble {
                tokio::time::sleep(pace).await;
            }
        }
    });
    let mut request = http::Request::new(tonic::body::Body::new(ChanBody(rx)));
    *request.method_mut() = http::Method::POST;
    *request.uri_mut() = http::Uri::from_static("/gossip.Gossip/GossipStream");
    let headers = request.headers_mut();
    headers.insert(
        "content-type",
        http::HeaderValue::from_static("application/grpc"),
    );
    headers.insert("te", http::HeaderValue::from_static("trailers"));
    let Ok(Ok(response)) = tokio::time::timeout(
        Duration::from_secs(10),
        dialed.channel.clone().oneshot(request),
    )
    .await
    else {
        return;
    };
    let mut body = response.into_body();
    let read_to_end = async {
        while let Some(Ok(_)) =
            std::future::poll_fn(|cx| http_body::Body::poll_frame(Pin::new(&mut body), cx)).await
        {
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), read_to_end).await;
    feeder.abort();
}

/// Sends `first` as the first bytes of a stream, over the hostile peer's trusted TLS certificate.
async fn first_frames(c: &Ctx, first: Vec<Bytes>) {
    let dialed = dial(c, client_tls(&c.cluster.msp, Some(c.hostile())))
        .await
        .expect("dial");
    open_stream(&dialed, first).await;
}

/// Authenticates as the hostile peer (a valid ConnEstablish), then sends `chunks`.
async fn after_handshake(c: &Ctx, chunks: Vec<Bytes>) {
    let mut all = vec![envelope_frame(&good_conn_establish(c.hostile(), true))];
    all.extend(chunks);
    first_frames(c, all).await;
}

// ---- the cluster ----

async fn start_peer(
    pki: &TestPki,
    msp: &Arc<gossip_engine::crypto::MspManager>,
    i: usize,
    bootstrap: Vec<String>,
) -> GossipHandle {
    let peer = &pki.orgs[0].peers[i];
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let listen = listener.local_addr().expect("addr");
    drop(listener);
    let comm = CommConfig {
        recv_message_len_max: RECV_MESSAGE_LEN_MAX_BYTES,
        ..CommConfig::for_test()
    };
    GossipHandle::start_with(
        GossipParams {
            comm: CommSettings {
                config: comm,
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
                rng_seed: i as u64 + 1,
            },
            signer: Arc::new(peer.signer().expect("signer")),
            msp: Arc::clone(msp),
            ingress: GossipParams::ingress_config(),
        },
        StartOptions::default(),
    )
    .await
    .expect("gossip starts")
}

fn write_table(rows: &[(String, bool, BTreeMap<String, u64>)]) {
    let mut out = String::from("\nhostile corpus: case -> rejected, reason counts\n");
    for (name, ok, counts) in rows {
        let counts: Vec<String> = counts.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let verdict = if *ok { "rejected" } else { "NOT COUNTED" };
        out += &format!("  {name:<42} {verdict:<12} {}\n", counts.join(" "));
    }
    let rejected = rows.iter().filter(|r| r.1).count();
    out += &format!(
        "hostile corpus: {rejected}/{} cases rejected and counted, {} panics\n",
        rows.len(),
        PANICS.load(Ordering::Relaxed)
    );
    // Straight to the process's stderr: libtest captures only the print macros.
    let _ = std::io::stderr().write_all(out.as_bytes());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_hostile_input_is_rejected_and_counted_and_honest_peers_are_unaffected() {
    gossip_cluster::init_tracing();
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, Ordering::Relaxed);
        default_hook(info);
    }));
    let now_unix_s = clock::now().as_unix_secs();
    let pki = TestPki::generate(&TestPkiSpec::uniform(2, 3, now_unix_s)).expect("test PKI");
    let stranger_pki = TestPki::generate(&TestPkiSpec::uniform(1, 1, now_unix_s)).expect("PKI");
    let msp = msp(&pki);
    // A peer of the other org, listed by the victim as a bootstrap peer.
    let foreign = common::start_peer(&pki, 1, 0, true, CommConfig::for_test()).await;
    let honest = start_peer(&pki, &msp, HONEST, vec![]).await;
    let victim = start_peer(
        &pki,
        &msp,
        VICTIM,
        vec![
            foreign.local_addr().to_string(),
            honest.local_addr().to_string(),
        ],
    )
    .await;
    let victim_addr = victim.local_addr().to_string();
    let cluster = Cluster {
        pki,
        msp,
        nodes: vec![victim, honest],
    };
    let members = [VICTIM, HONEST];
    cluster.join(CHANNEL, &members).await;
    assert!(
        eventually(|| cluster.channel_converged(CHANNEL, &members)).await,
        "the victim and the honest peer never met"
    );
    let ctx = Ctx {
        cluster,
        stranger_pki,
        victim_addr,
    };

    let mut rows = Vec::new();
    for case in CASES {
        let before = counters(&ctx.victim().stats().await.expect("victim runs"));
        (case.run)(&ctx).await;
        let counted = || async {
            let now = counters(&ctx.victim().stats().await.expect("victim runs"));
            let d = delta(&before, &now);
            case.expect
                .iter()
                .all(|(key, n)| d.get(*key).is_some_and(|got| got >= n))
        };
        let ok = eventually(counted).await;
        let after = counters(&ctx.victim().stats().await.expect("victim runs"));
        rows.push((case.name.to_string(), ok, delta(&before, &after)));
    }
    write_table(&rows);

    // The honest peer is unaffected: still a member of the victim's view and of the channel, and
    // its blocks reach the victim.
    let mut events = ctx.victim().events().expect("events");
    assert!(
        eventually(|| ctx.cluster.channel_converged(CHANNEL, &members)).await,
        "membership did not hold after the corpus"
    );
    for seq in 1..=3 {
        ctx.cluster.nodes[HONEST]
            .gossip(block(CHANNEL, seq))
            .await
            .expect("gossip");
    }
    let mut delivered = Delivered::default();
    let all_delivered = eventually(|| {
        delivered.absorb(&mut events);
        let done = delivered.of(CHANNEL) == [1, 2, 3];
        async move { done }
    })
    .await;
    assert!(
        all_delivered,
        "the honest peer's blocks did not reach the victim: {delivered:?}"
    );

    let not_counted: Vec<_> = rows.iter().filter(|r| !r.1).map(|r| &r.0).collect();
    assert!(
        not_counted.is_empty(),
        "rejected but not counted as expected: {not_counted:?}"
    );
    assert_eq!(PANICS.load(Ordering::Relaxed), 0, "a task panicked");
    ctx.cluster.stop().await;
    foreign.stop().await;
}
