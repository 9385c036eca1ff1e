use super::*;
use gossip_proto::gossip::Envelope;

fn envelope(payload_len: usize, tag: u8) -> Envelope {
    Envelope {
        payload: Bytes::from(vec![tag; payload_len]),
        signature: Bytes::from_static(b"sig"),
        secret_envelope: None,
    }
}

/// A body delivering `bytes` in chunks cut at `cuts` (ascending offsets), then `trailers`.
fn chunked(bytes: &[u8], cuts: &[usize], trailers: Option<HeaderMap>) -> Body {
    let mut chunks = Vec::new();
    let mut start = 0;
    for &cut in cuts.iter().chain(std::iter::once(&bytes.len())) {
        chunks.push(Bytes::copy_from_slice(&bytes[start..cut]));
        start = cut;
    }
    Body::new(FramedBody {
        stream: Box::pin(futures_util::stream::iter(chunks)),
        trailers,
    })
}

fn ok_trailers() -> HeaderMap {
    let mut t = HeaderMap::new();
    t.insert("grpc-status", HeaderValue::from_static("0"));
    t
}

async fn read_all(body: Body, len_max: usize) -> Result<Vec<Envelope>, FrameError> {
    let mut reader = FrameReader::new(body, len_max);
    let mut out = Vec::new();
    while let Some(e) = reader.message::<Envelope>().await? {
        out.push(e);
    }
    Ok(out)
}

#[test]
fn a_batch_is_its_frames_one_by_one_with_block_payloads_not_copied() {
    let mut signed_block = envelope(SHARED_PAYLOAD_LEN_MIN + 1, 4);
    signed_block.secret_envelope = Some(gossip_proto::gossip::SecretEnvelope {
        payload: Bytes::from_static(b"secret"),
        signature: Bytes::from_static(b"secret-sig"),
    });
    let mut unsigned_block = envelope(10_240, 5);
    unsigned_block.signature = Bytes::new();
    let batch = [
        envelope(300, 1),
        signed_block,
        envelope(SHARED_PAYLOAD_LEN_MIN - 1, 2),
        unsigned_block,
        envelope(0, 3),
    ];
    let chunks = encode_batch(&batch);
    assert_eq!(chunks.concat(), encode_frames(&batch));
    // Small messages share one chunk; each block payload is its own, the very same buffer.
    assert_eq!(chunks.len(), 5);
    for (chunk, block) in [(&chunks[1], &batch[1]), (&chunks[3], &batch[3])] {
        assert_eq!(chunk.as_ptr(), block.payload.as_ptr());
        assert_eq!(chunk.len(), block.payload.len());
    }
    // Without a block the batch is one chunk.
    assert_eq!(encode_batch(&batch[..1]), vec![encode_frame(&batch[0])]);
}

#[tokio::test]
async fn messages_survive_every_chunk_boundary() {
    let sent = [envelope(300, 1), envelope(20_000, 2), envelope(0, 3)];
    let wire: Vec<u8> = sent.iter().flat_map(|e| encode_frame(e).to_vec()).collect();
    // A writer batch is the same bytes as the frames one by one.
    assert_eq!(encode_frames(&sent), wire);
    // One cut anywhere, two cuts in the prefixes' neighbourhoods.
    for cut in (0..=wire.len())
        .step_by(97)
        .chain([1, 2, 4, 5, 6, 311, 312, 313])
    {
        let got = read_all(chunked(&wire, &[cut], Some(ok_trailers())), 1 << 20)
            .await
            .expect("reads");
        assert_eq!(got, sent, "cut at {cut}");
    }
    let got = read_all(chunked(&wire, &[3, 4, 310, 314, 20_000], None), 1 << 20)
        .await
        .expect("reads");
    assert_eq!(got, sent);
}

#[tokio::test]
async fn frame_prefix_is_flag_and_big_endian_length() {
    let frame = encode_frame(&envelope(300, 1));
    let len = frame.len() - PREFIX_LEN;
    assert_eq!(frame[0], 0);
    assert_eq!(
        u32::from_be_bytes([frame[1], frame[2], frame[3], frame[4]]) as usize,
        len
    );
    assert_eq!(frame.len(), PREFIX_LEN + envelope(300, 1).encoded_len());
    assert_eq!(
        Envelope::decode(&frame[PREFIX_LEN..]).expect("decodes"),
        envelope(300, 1)
    );
}

#[tokio::test]
async fn an_oversize_message_is_refused_from_its_prefix() {
    let big = encode_frame(&envelope(5_000, 1));
    // Only the prefix arrives: the reader refuses without waiting for the rest.
    let err = read_all(chunked(&big[..PREFIX_LEN], &[], None), 1_000).await;
    assert_eq!(
        err,
        Err(FrameError::Oversize {
            len_bytes: big.len() - PREFIX_LEN
        })
    );
}

#[tokio::test]
async fn compressed_truncated_and_failed_streams_are_errors() {
    let mut compressed = encode_frame(&envelope(10, 1)).to_vec();
    compressed[0] = 1;
    assert_eq!(
        read_all(chunked(&compressed, &[], None), 1 << 20).await,
        Err(FrameError::Compressed)
    );

    let whole = encode_frame(&envelope(10, 1));
    for cut in [3, whole.len() - 1] {
        assert_eq!(
            read_all(chunked(&whole[..cut], &[], None), 1 << 20).await,
            Err(FrameError::Truncated),
            "cut at {cut}"
        );
    }

    let mut failed = HeaderMap::new();
    failed.insert("grpc-status", HeaderValue::from_static("14"));
    failed.insert("grpc-message", HeaderValue::from_static("going away"));
    let mut reader = FrameReader::new(chunked(&whole, &[], Some(failed)), 1 << 20);
    assert_eq!(
        reader.message::<Envelope>().await,
        Ok(Some(envelope(10, 1)))
    );
    assert_eq!(
        reader.message::<Envelope>().await,
        Err(FrameError::Status {
            code: 14,
            message: "going away".into()
        })
    );
}

/// Every way a peer's bytes fail to be a message has a reject reason of its own; a stream the
/// transport or the peer ended has none (it is no input to reject).
#[tokio::test]
async fn failures_of_the_peers_bytes_have_a_reject_reason() {
    // Field 1 (payload, length-delimited) announcing more bytes than the frame holds.
    let garbage = [0x0a, 0x7f, 0x01];
    let mut framed = vec![0u8];
    framed.extend_from_slice(&(garbage.len() as u32).to_be_bytes());
    framed.extend_from_slice(&garbage);
    let undecodable = read_all(chunked(&framed, &[], None), 1 << 20)
        .await
        .expect_err("not an envelope");
    assert!(
        matches!(undecodable, FrameError::Decode(_)),
        "{undecodable:?}"
    );
    let mut compressed = encode_frame(&envelope(10, 1)).to_vec();
    compressed[0] = 1;
    let whole = encode_frame(&envelope(10, 1));
    let cases = [
        (undecodable, Some("frame_undecodable")),
        (
            read_all(chunked(&compressed, &[], None), 1 << 20)
                .await
                .expect_err("compressed"),
            Some("frame_compressed"),
        ),
        (
            read_all(chunked(&whole[..3], &[], None), 1 << 20)
                .await
                .expect_err("truncated"),
            Some("frame_truncated"),
        ),
        (FrameError::Oversize { len_bytes: 1 }, Some("oversize")),
        (FrameError::Transport("reset".into()), None),
        (
            FrameError::Status {
                code: 14,
                message: String::new(),
            },
            None,
        ),
    ];
    for (error, reason) in cases {
        assert_eq!(error.reject_reason(), reason, "{error:?}");
    }
}

/// Any bytes a peer sends, cut into DATA chunks anywhere: the reader yields envelopes until a
/// typed error or the end, never panics, and never takes a message over its limit.
mod arbitrary_streams {
    use proptest::prelude::*;

    use super::*;

    const LEN_MAX_BYTES: usize = 4096;

    /// Well-formed frames of small envelopes, arbitrary bytes, or a mix, as one stream.
    fn stream() -> impl Strategy<Value = Vec<u8>> {
        let frames = prop::collection::vec((0usize..64, any::<u8>()), 0..6).prop_map(|es| {
            es.iter()
                .flat_map(|&(len, tag)| encode_frame(&envelope(len, tag)).to_vec())
                .collect::<Vec<u8>>()
        });
        let garbage = prop::collection::vec(any::<u8>(), 0..256);
        (frames, garbage, 0..3u8).prop_map(|(f, g, mix)| match mix {
            0 => f,
            1 => g,
            _ => [f, g].concat(),
        })
    }

    proptest! {
        #[test]
        fn any_bytes_in_any_chunks_read_to_envelopes_or_a_typed_error(
            bytes in stream(),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
        ) {
            let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
            cuts.sort_unstable();
            let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
            let result = runtime.block_on(async {
                let mut reader = FrameReader::new(chunked(&bytes, &cuts, None), LEN_MAX_BYTES);
                let mut read = Vec::new();
                loop {
                    match reader.message::<Envelope>().await {
                        Ok(Some(e)) => read.push(e),
                        Ok(None) => return Ok(read),
                        Err(e) => return Err(e),
                    }
                }
            });
            match result {
                Ok(read) => prop_assert!(read.iter().all(|e| e.encoded_len() <= LEN_MAX_BYTES)),
                // Every failure of the peer's bytes is one a reject is counted for.
                Err(e) => prop_assert!(e.reject_reason().is_some(), "{e:?}"),
            }
        }
    }
}

fn inside(chunk: &Bytes, b: &Bytes) -> bool {
    let range = chunk.as_ptr() as usize..chunk.as_ptr() as usize + chunk.len();
    range.contains(&(b.as_ptr() as usize))
}

#[tokio::test]
async fn small_messages_are_detached_and_large_ones_sliced() {
    let small = encode_frame(&envelope(100, 1));
    let large = encode_frame(&envelope(SLICE_LEN_MIN + 100, 2));
    let wire: Bytes = [small.clone(), large.clone()].concat().into();
    let mut reader = FrameReader::new(chunked(&wire, &[], None), 1 << 20);
    reader.push_chunk(wire.clone());
    let a = reader.take_message().expect("ok").expect("small");
    let b = reader.take_message().expect("ok").expect("large");
    assert!(
        !inside(&wire, &a.chunk_bytes()),
        "a small message has its own allocation"
    );
    assert!(
        inside(&wire, &b.chunk_bytes()),
        "a large message is a slice of its chunk"
    );
}

#[tokio::test]
async fn a_block_spanning_chunks_decodes_with_its_payload_not_copied() {
    let mut block = envelope(10_240, 6);
    block.signature = Bytes::from(vec![3u8; 70]);
    let small = envelope(200, 7);
    let chunks = encode_batch(&[block.clone(), small.clone(), block.clone()]);
    assert_eq!(chunks.len(), 5, "payloads travel as chunks of their own");
    let body = Body::new(FramedBody {
        stream: Box::pin(futures_util::stream::iter(chunks.clone())),
        trailers: Some(ok_trailers()),
    });
    let mut reader = FrameReader::new(body, 1 << 20);
    let first: Envelope = reader.message().await.expect("ok").expect("block");
    let second: Envelope = reader.message().await.expect("ok").expect("small");
    let third: Envelope = reader.message().await.expect("ok").expect("block");
    assert_eq!((&first, &second, &third), (&block, &small, &block));
    assert!(
        inside(&chunks[1], &first.payload),
        "the payload is its chunk"
    );
    assert!(
        inside(&chunks[3], &third.payload),
        "the payload is its chunk"
    );
    assert!(
        !inside(&chunks[2], &first.signature),
        "a small field is copied"
    );
    assert!(
        !inside(&chunks[2], &second.payload),
        "a small message is copied"
    );
    assert!(reader.message::<Envelope>().await.expect("ok").is_none());
}

#[tokio::test]
async fn a_large_message_in_many_tiny_chunks_is_gathered_not_kept_as_pieces() {
    let large = encode_frame(&envelope(SLICE_LEN_MIN + 100, 8));
    let mut reader = FrameReader::new(chunked(&large, &[], None), 1 << 20);
    // The prefix with one byte, 39 one-byte chunks, then the rest.
    reader.push_chunk(large.slice(..PREFIX_LEN + 1));
    assert!(reader.take_message().expect("ok").is_none());
    for at in PREFIX_LEN + 1..PREFIX_LEN + 40 {
        reader.push_chunk(large.slice(at..at + 1));
        assert!(reader.take_message().expect("ok").is_none());
        assert!(
            match &reader.partial {
                Partial::Pieces { pieces, .. } => pieces.pieces_len() <= PIECES_LEN_MAX,
                Partial::Gather { .. } => true,
                Partial::None => false,
            },
            "never more than PIECES_LEN_MAX pieces held"
        );
    }
    assert!(matches!(reader.partial, Partial::Gather { .. }));
    reader.push_chunk(large.slice(PREFIX_LEN + 40..));
    let message = reader.take_message().expect("ok").expect("complete");
    let decoded = Envelope::decode(message).expect("decodes");
    assert_eq!(decoded, envelope(SLICE_LEN_MIN + 100, 8));
}

#[tokio::test]
async fn a_first_message_over_the_first_frame_bound_is_refused_from_its_prefix() {
    let prefix = |len: u32| {
        let mut p = vec![0u8];
        p.extend_from_slice(&len.to_be_bytes());
        p
    };
    // A stranger announces 100 MiB before any handshake: refused at once, nothing buffered.
    let announced = 100 * 1024 * 1024;
    let err = read_all(chunked(&prefix(announced), &[], None), announced as usize).await;
    assert_eq!(
        err,
        Err(FrameError::Oversize {
            len_bytes: announced as usize
        })
    );
    // After a first message within the bound, the receive limit applies.
    let small = encode_frame(&envelope(100, 1));
    let large = encode_frame(&envelope(FIRST_FRAME_LEN_MAX_BYTES + 10, 2));
    let both = [small.as_ref(), large.as_ref()].concat();
    let read = read_all(chunked(&both, &[7, small.len() + 3], None), 1 << 20).await;
    assert_eq!(
        read.expect("both read"),
        vec![
            envelope(100, 1),
            envelope(FIRST_FRAME_LEN_MAX_BYTES + 10, 2)
        ]
    );
}

#[tokio::test]
async fn a_message_gathered_from_tiny_chunks_grows_as_its_bytes_arrive() {
    let announced_len = 50 * 1024 * 1024;
    let mut reader = FrameReader::new(chunked(&[], &[], None), announced_len + 100);
    reader.next_len_max = reader.len_max; // past the first message
    let mut head = vec![0u8];
    head.extend_from_slice(&u32::try_from(announced_len).expect("fits").to_be_bytes());
    head.extend_from_slice(&[0u8; SLICE_LEN_MIN]);
    reader.push_chunk(Bytes::from(head));
    assert!(reader.take_message().expect("ok").is_none());
    for _ in 0..2 * PIECES_LEN_MAX {
        reader.push_chunk(Bytes::from_static(&[0u8; 16]));
        assert!(reader.take_message().expect("ok").is_none());
    }
    let Partial::Gather { buf, missing } = &reader.partial else {
        panic!("many tiny chunks are gathered");
    };
    assert!(*missing > announced_len / 2);
    assert!(
        buf.capacity() <= buf.len() + GATHER_RESERVE_LEN_MAX_BYTES,
        "{} bytes reserved for {} received: the announced size was allocated up front",
        buf.capacity(),
        buf.len()
    );
}

#[test]
fn trailers_only_and_http_errors_are_refused() {
    let ok = response(Body::empty());
    assert!(response_body(ok).is_ok());
    let mut refused = response(Body::empty());
    refused
        .headers_mut()
        .insert("grpc-status", HeaderValue::from_static("16"));
    assert_eq!(
        response_body(refused).err(),
        Some(FrameError::Status {
            code: 16,
            message: String::new()
        })
    );
    let mut not_found = response(Body::empty());
    *not_found.status_mut() = http::StatusCode::NOT_FOUND;
    assert!(matches!(
        response_body(not_found),
        Err(FrameError::Transport(_))
    ));
}

mod against_tonic {
    //! Our client framing against tonic's generated server: an independent gRPC implementation.

    use std::pin::Pin;

    use futures_util::StreamExt;
    use gossip_proto::gossip::Empty;
    use gossip_proto::gossip::gossip_server::{Gossip, GossipServer};
    use tonic::{Request, Response, Status, Streaming};

    use super::*;
    use crate::client;
    use crate::config::CommConfig;

    type Echoed = Pin<Box<dyn Stream<Item = Result<Envelope, Status>> + Send>>;

    /// Echoes every envelope of a `GossipStream` back.
    struct Echo;

    #[tonic::async_trait]
    impl Gossip for Echo {
        type GossipStreamStream = Echoed;

        async fn gossip_stream(
            &self,
            request: Request<Streaming<Envelope>>,
        ) -> Result<Response<Echoed>, Status> {
            let echoed = futures_util::stream::unfold(request.into_inner(), |mut inbound| async {
                match inbound.message().await {
                    Ok(Some(e)) => Some((Ok(e), inbound)),
                    _ => None,
                }
            });
            Ok(Response::new(Box::pin(echoed)))
        }

        async fn ping(&self, _request: Request<Empty>) -> Result<Response<Empty>, Status> {
            Ok(Response::new(Empty {}))
        }
    }

    async fn tonic_server() -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let incoming = futures_util::stream::unfold(listener, |listener| async move {
            let accepted = listener.accept().await.map(|(tcp, _)| tcp);
            Some((accepted, listener))
        });
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(GossipServer::new(Echo))
                .serve_with_incoming(incoming),
        );
        addr.to_string()
    }

    #[tokio::test]
    async fn ping_and_a_stream_round_trip_through_a_tonic_server() {
        let endpoint = tonic_server().await;
        let config = CommConfig::for_test();
        let mut dialed = client::dial(&endpoint, None, &config, Default::default())
            .await
            .expect("dial");
        client::ping(&mut dialed, &endpoint, &config)
            .await
            .expect("tonic answers our Ping");
        // Small, block-sized and multi-frame (over HTTP/2's 16 KiB frames) messages.
        let sent = vec![envelope(300, 1), envelope(10_240, 2), envelope(100_000, 3)];
        let frames: Vec<Bytes> = sent.iter().map(encode_frame).collect();
        let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
        let outbound =
            futures_util::stream::unfold(
                rx,
                |mut rx| async move { rx.recv().await.map(|b| (b, rx)) },
            );
        let mut inbound = dialed.gossip_stream(outbound).await.expect("stream opens");
        for frame in frames {
            tx.send(frame).await.expect("queue");
        }
        let mut echoed = Vec::new();
        for _ in 0..sent.len() {
            echoed.push(
                inbound
                    .message::<Envelope>()
                    .await
                    .expect("reads")
                    .expect("echo"),
            );
        }
        assert_eq!(echoed, sent);
        // Our request stream ends: tonic ends its response with grpc-status 0.
        drop(tx);
        assert_eq!(inbound.message::<Envelope>().await, Ok(None));
    }

    #[tokio::test]
    async fn a_grpc_error_status_from_tonic_is_an_error() {
        let endpoint = tonic_server().await;
        let dialed = client::dial(&endpoint, None, &CommConfig::for_test(), Default::default())
            .await
            .expect("dial");
        let body = FramedBody::request(futures_util::stream::empty::<Bytes>().boxed());
        let err = dialed.call("/gossip.Gossip/NoSuchMethod", body).await.err();
        assert!(
            matches!(err, Some(FrameError::Status { code: 12, .. })),
            "UNIMPLEMENTED expected, got {err:?}"
        );
    }
}
