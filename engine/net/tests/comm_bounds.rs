//! Bounds on what a remote peer can make us hold (issue 20): HTTP/2 streams per connection, the
//! first frame before authentication, handshakes in flight, the losing stream of a simultaneous
//! dial, and sends waiting for a dial. Each test drives the bound over real sockets and checks its
//! refusal counter; a normal peer still connects afterwards.

mod common;

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use common::*;
use gossip_engine::bounds::{HANDSHAKES_IN_FLIGHT_MAX, HTTP2_STREAMS_PER_CONN_MAX};
use gossip_engine::client::{self, Dialed};
use gossip_engine::config::CommConfig;
use gossip_engine::{Comm, RemotePeer};
use http_body::Frame;
use tokio::sync::mpsc;
use tower::ServiceExt;

/// A request body fed by the test, chunk by chunk: raw gRPC bytes, not messages.
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

type Response = http::Response<tonic::body::Body>;

/// Opens a `GossipStream` on `dialed` whose request body is whatever the test sends on the
/// returned sender. The future resolves with the server's response headers.
fn open_stream(
    dialed: &Dialed,
) -> (
    mpsc::Sender<Bytes>,
    impl std::future::Future<Output = Result<Response, tonic::transport::Error>> + use<>,
) {
    let (tx, rx) = mpsc::channel(64);
    let mut request = http::Request::new(tonic::body::Body::new(ChanBody(rx)));
    *request.method_mut() = http::Method::POST;
    *request.uri_mut() = http::Uri::from_static("/gossip.Gossip/GossipStream");
    let headers = request.headers_mut();
    headers.insert(
        "content-type",
        http::HeaderValue::from_static("application/grpc"),
    );
    headers.insert("te", http::HeaderValue::from_static("trailers"));
    (tx, dialed.channel.clone().oneshot(request))
}

/// Reads a response body until it ends or fails; false if it is still open after `wait`.
async fn ends_within(response: Response, wait: Duration) -> bool {
    let mut body = response.into_body();
    let read_to_end = async {
        loop {
            let frame =
                std::future::poll_fn(|cx| http_body::Body::poll_frame(Pin::new(&mut body), cx))
                    .await;
            if !matches!(frame, Some(Ok(_))) {
                return;
            }
        }
    };
    tokio::time::timeout(wait, read_to_end).await.is_ok()
}

async fn dial_plain(comm: &Comm) -> Dialed {
    let wire = Default::default();
    client::dial(
        &comm.local_addr().to_string(),
        None,
        &CommConfig::for_test(),
        wire,
    )
    .await
    .expect("dial")
}

/// A handshake that waits long enough for every test step to run while it is pending.
fn slow_handshake_config() -> CommConfig {
    CommConfig {
        conn_timeout: Duration::from_secs(10),
        ..CommConfig::for_test()
    }
}

/// `b` sends to `a` and `a` receives it.
async fn still_connects(a: &Comm, b: &Comm, seq: u64) {
    let sub = a.inbound();
    b.send(data_envelope(seq), &[remote(a)]);
    assert_eq!(seq_of(&recv(&sub).await), Some(seq));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_frame_over_the_pre_handshake_bound_is_refused_and_counted() {
    init_tracing();
    let pki = pki();
    let a = start_peer(&pki, 0, 0, true, CommConfig::for_test()).await;
    let stranger = &pki.orgs[1].peers[0];
    let tls = client_tls(&msp(&pki), Some(stranger));
    let dialed = client::dial(
        &a.local_addr().to_string(),
        Some(tls),
        &CommConfig::for_test(),
        Default::default(),
    )
    .await
    .expect("dial");
    let (tx, response) = open_stream(&dialed);
    // A frame announcing 100 MiB, then its bytes dribbled in small chunks.
    let mut prefix = vec![0u8];
    prefix.extend_from_slice(&(100u32 * 1024 * 1024).to_be_bytes());
    tx.send(Bytes::from(prefix)).await.expect("prefix queued");
    let dribble = tokio::spawn(async move {
        while tx.send(Bytes::from_static(&[0u8; 64])).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    let response = tokio::time::timeout(WAIT, response)
        .await
        .expect("answered in time")
        .expect("response");
    assert!(ends_within(response, WAIT).await, "the stream is dropped");
    assert!(
        eventually(|| a.stats().refusals_of("first_frame_oversize") == 1).await,
        "refused from its prefix, not after the handshake timeout: {:?}",
        a.stats()
    );
    assert_eq!(a.stats().handshake_failures_of("first_frame_oversize"), 1);
    dribble.abort();

    let b = start_peer(&pki, 0, 1, true, CommConfig::for_test()).await;
    still_connects(&a, &b, 1).await;
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_over_the_per_connection_bound_wait_for_a_slot() {
    init_tracing();
    let pki = pki();
    let a = start_peer(&pki, 0, 0, false, slow_handshake_config()).await;
    let dialed = dial_plain(&a).await;
    // Streams that never send their ConnEstablish: each holds a stream slot until it ends.
    let mut open = Vec::new();
    for _ in 0..HTTP2_STREAMS_PER_CONN_MAX {
        let (tx, response) = open_stream(&dialed);
        let response = tokio::time::timeout(WAIT, response)
            .await
            .expect("a stream within the bound opens")
            .expect("response");
        open.push((tx, response));
    }
    assert!(
        eventually(|| a.stats().refusals_of("streams_per_conn_at_bound") == 1).await,
        "reaching the bound is counted once: {:?}",
        a.stats().refusals
    );
    let (_tx, over) = open_stream(&dialed);
    let mut over = Box::pin(over);
    assert!(
        tokio::time::timeout(Duration::from_secs(2), &mut over)
            .await
            .is_err(),
        "a stream over {HTTP2_STREAMS_PER_CONN_MAX} is not served while they are open"
    );
    // The client ends its streams: their handshakes fail at once and free the slots.
    drop(open);
    tokio::time::timeout(WAIT, over)
        .await
        .expect("served once a slot frees")
        .expect("response");
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gossip_streams_over_the_handshake_bound_are_refused_and_counted() {
    init_tracing();
    let pki = pki();
    let a = start_peer(&pki, 0, 0, false, slow_handshake_config()).await;
    let extra = 5;
    let streams = HANDSHAKES_IN_FLIGHT_MAX + extra;
    let per_conn = HTTP2_STREAMS_PER_CONN_MAX as usize;
    let mut open = Vec::new();
    for _ in 0..streams.div_ceil(per_conn) {
        let dialed = dial_plain(&a).await;
        for _ in 0..per_conn.min(streams - open.len()) {
            let (tx, response) = open_stream(&dialed);
            let response = tokio::time::timeout(WAIT, response)
                .await
                .expect("answered in time")
                .expect("response");
            open.push((tx, response, dialed.clone()));
        }
    }
    assert_eq!(
        a.stats().refusals_of("handshakes_full"),
        extra as u64,
        "{HANDSHAKES_IN_FLIGHT_MAX} handshakes waiting, the rest refused"
    );
    drop(open);
    let b = start_peer(&pki, 0, 1, false, CommConfig::for_test()).await;
    still_connects(&a, &b, 1).await;
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_accepts_over_the_handshake_bound_are_refused_and_counted() {
    init_tracing();
    let pki = pki();
    let a = start_peer(&pki, 0, 0, true, CommConfig::for_test()).await;
    let extra = 5;
    // TCP connections that never send a ClientHello.
    let mut idle = Vec::new();
    for _ in 0..HANDSHAKES_IN_FLIGHT_MAX + extra {
        idle.push(
            tokio::net::TcpStream::connect(a.local_addr())
                .await
                .expect("connect"),
        );
    }
    assert!(
        eventually(|| a.stats().refusals_of("handshakes_full") == extra as u64).await,
        "{:?}",
        a.stats().refusals
    );
    drop(idle);
    // The accepted ones fail their TLS handshake when the client goes: counted too.
    let failed = HANDSHAKES_IN_FLIGHT_MAX as u64;
    assert!(
        eventually(|| a.stats().handshake_failures_of("tls_rejected") == failed).await,
        "{:?}",
        a.stats().handshake_failures
    );
    let b = start_peer(&pki, 0, 1, true, CommConfig::for_test()).await;
    still_connects(&a, &b, 1).await;
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inbound_stream_losing_the_tie_break_is_closed_within_conn_timeout() {
    init_tracing();
    let pki = pki();
    let (p, q) = (&pki.orgs[0].peers[0], &pki.orgs[0].peers[1]);
    // Our outbound connection wins when our PKI-ID is the lower one.
    let (low, high) = if signer_of(p).pki_id() < signer_of(q).pki_id() {
        ((0, 0), q)
    } else {
        ((0, 1), p)
    };
    let a = start_peer(&pki, low.0, low.1, false, CommConfig::for_test()).await;
    let b = start_with(signer_of(high), msp(&pki), None, CommConfig::for_test()).await;
    a.send(data_envelope(1), &[remote(&b)]);
    assert_eq!(seq_of(&recv(&b.inbound()).await), Some(1));

    // The high peer's own dial arriving now: authenticated, but the registered one wins.
    let mut raw = raw_stream(
        &a.local_addr().to_string(),
        None,
        good_conn_establish(high, false),
    )
    .await
    .expect("stream opens");
    let first = tokio::time::timeout(WAIT, raw.inbound.message())
        .await
        .expect("ConnEstablish in time");
    assert!(matches!(first, Ok(Some(_))), "A's ConnEstablish first");
    assert!(
        eventually(|| a.stats().refusals_of("stream_tie_break_lost") == 1).await,
        "{:?}",
        a.stats().refusals
    );
    let conn_timeout = CommConfig::for_test().conn_timeout;
    let ended = tokio::time::timeout(conn_timeout * 3, async {
        while let Ok(Some(_)) = raw.inbound.message().await {}
    })
    .await;
    assert!(
        ended.is_ok(),
        "A ends the losing stream itself, without waiting for the peer"
    );
    assert_eq!(a.connected_peers(), vec![b.pki_id()], "the winner stays");
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_waiting_for_a_dial_are_bounded_and_counted() {
    init_tracing();
    let pki = pki();
    let config = CommConfig::for_test();
    let a = start_peer(&pki, 0, 0, false, config.clone()).await;
    // A peer that accepts TCP (the kernel's backlog) and never answers: the dial hangs.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let target = RemotePeer {
        endpoint: silent.local_addr().expect("addr").to_string(),
        pki_id: signer_of(&pki.orgs[1].peers[0]).pki_id(),
    };
    let sends = 3 * config.send_buff_len_max;
    for seq in 0..sends {
        a.send(data_envelope(seq as u64), std::slice::from_ref(&target));
    }
    assert_eq!(
        a.stats().refusals_of("pending_dial_full"),
        (sends - config.send_buff_len_max) as u64,
        "one dial, send_buff_len_max envelopes waiting for it, the rest dropped"
    );
    let mut presumed_dead = a.presumed_dead().expect("channel");
    let dead = tokio::time::timeout(WAIT, presumed_dead.recv())
        .await
        .expect("the dial fails in time");
    assert_eq!(dead, Some(target.pki_id));
    // The queue goes with the failed dial: then a new send starts a new one.
    let refused = || a.stats().refusals_of("pending_dial_full");
    assert!(
        eventually(|| {
            let before = refused();
            a.send(data_envelope(0), std::slice::from_ref(&target));
            refused() == before
        })
        .await
    );
    a.stop().await;
}
