//! gRPC framing of `gossip.Gossip` straight over tonic's HTTP/2 transport, without tonic's codec.
//!
//! tonic's codec copies every message into a per-stream encode buffer (which starts small and
//! reallocates as a block grows it) and every received DATA chunk into a per-stream decode buffer;
//! those buffers were a fifth of a node's heap. Here a message is encoded once into an allocation
//! of its exact framed size (a block's payload not even that: [`encode_batch`] hands it over as
//! the buffer it already is), handed to HTTP/2 as it is, and a received message is sliced out of
//! the DATA chunks it arrived in: small ones copied into their own allocation (so a stored alive
//! message does not keep HTTP/2's read buffer alive), large ones (blocks) not copied at all, even
//! when they span chunks ([`pieces`]).
//!
//! The wire format is gRPC's: each message is a 1-byte compressed flag (always 0: gossip does not
//! compress), a 4-byte big-endian length and the protobuf bytes; the server's response ends with
//! `grpc-status` trailers. tonic's transport (hyper, h2) still does HTTP/2, TLS hand-off, keepalive
//! and flow control.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use futures_util::Stream;
use gossip_proto::gossip::Envelope;
use http::{HeaderMap, HeaderValue, header};
use http_body::{Body as _, Frame};
use prost::Message;
use prost::encoding::WireType;
use tonic::body::Body;

mod pieces;

use pieces::{Pieces, SLICE_LEN_MIN};

/// The `GossipStream` method's path.
pub(crate) const PATH_GOSSIP_STREAM: &str = "/gossip.Gossip/GossipStream";
/// The `Ping` method's path.
pub(crate) const PATH_PING: &str = "/gossip.Gossip/Ping";
/// The framing before each message: compressed flag and length.
const PREFIX_LEN: usize = 5;
/// A large message arriving in more DATA chunks than this is gathered into one allocation rather
/// than kept as pieces: a peer sending tiny frames must not make each byte hold a read buffer.
/// Ours sends a block in two or three chunks, grpc-go a 100 KiB one in seven.
const PIECES_LEN_MAX: usize = 8;
/// The largest first message of a stream, read before the remote is authenticated (its
/// ConnEstablish, or a Ping's `Empty`). A signed ConnEstablish is about 1 KiB with an 870-byte
/// PEM certificate (spec 7); 64 KiB leaves room for far larger certificates and keys while a
/// stranger can no longer make us wait for, or hold, up to the 100 MiB receive limit.
pub const FIRST_FRAME_LEN_MAX_BYTES: usize = 64 * 1024;
/// A message gathered from many DATA chunks reserves at most this much beyond what has arrived;
/// it grows as its bytes arrive rather than allocating the announced size up front.
const GATHER_RESERVE_LEN_MAX_BYTES: usize = 64 * 1024;
/// `content-type` of gRPC requests and responses.
const CONTENT_TYPE_GRPC: &str = "application/grpc";

/// Why a message stream could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The HTTP/2 stream failed (reset, connection lost, keepalive timeout).
    #[error("transport: {0}")]
    Transport(String),
    /// The peer ended the call with a non-OK `grpc-status`.
    #[error("grpc-status {code}: {message}")]
    Status {
        /// The `grpc-status` code.
        code: i32,
        /// The `grpc-message`, if any.
        message: String,
    },
    /// A message announced more bytes than the receive limit (for a stream's first message,
    /// [`FIRST_FRAME_LEN_MAX_BYTES`]).
    #[error("message of {len_bytes} bytes over the limit")]
    Oversize {
        /// The announced length.
        len_bytes: usize,
    },
    /// A message was marked compressed; gossip never compresses.
    #[error("compressed message")]
    Compressed,
    /// The stream ended inside a message.
    #[error("stream ended inside a message")]
    Truncated,
    /// A message did not decode.
    #[error("decode: {0}")]
    Decode(String),
}

impl FrameError {
    /// The reject reason counted for a stream that failed this way after the handshake
    /// ([`crate::CommStats::rejects`]): bytes the peer sent that are not a gossip message. `None`
    /// for a stream the transport or the peer ended (a reset, a lost connection, a non-OK
    /// status), which is no input of the peer's to reject.
    pub fn reject_reason(&self) -> Option<&'static str> {
        match self {
            FrameError::Transport(_) | FrameError::Status { .. } => None,
            FrameError::Oversize { .. } => Some("oversize"),
            FrameError::Compressed => Some("frame_compressed"),
            FrameError::Truncated => Some("frame_truncated"),
            FrameError::Decode(_) => Some("frame_undecodable"),
        }
    }
}

/// The largest HTTP/2 frame we accept (SETTINGS_MAX_FRAME_SIZE, both sides): a writer batch of
/// up to 32 KiB then goes out as one DATA frame, one TLS write and one `writev`, where HTTP/2's
/// default of 16 KiB made it two or three. A peer may still send smaller frames (grpc-go does).
pub const HTTP2_FRAME_LEN_MAX: u32 = 40 * 1024;

/// Encodes `message` as one gRPC frame, in an allocation of exactly its framed size.
pub(crate) fn encode_frame<M: Message>(message: &M) -> Bytes {
    let len = message.encoded_len();
    let mut buf = BytesMut::with_capacity(PREFIX_LEN + len);
    put_prefix(&mut buf, len);
    message.encode_raw(&mut buf);
    buf.freeze()
}

/// The framed size of `message`.
pub(crate) fn framed_len<M: Message>(message: &M) -> usize {
    PREFIX_LEN + message.encoded_len()
}

/// Encodes `messages` as consecutive gRPC frames in one allocation of exactly their framed size.
#[cfg(test)]
pub(crate) fn encode_frames<M: Message>(messages: &[M]) -> Bytes {
    let total: usize = messages.iter().map(|m| PREFIX_LEN + m.encoded_len()).sum();
    let mut buf = BytesMut::with_capacity(total);
    for message in messages {
        put_prefix(&mut buf, message.encoded_len());
        message.encode_raw(&mut buf);
    }
    buf.freeze()
}

fn put_prefix(buf: &mut BytesMut, len: usize) {
    buf.put_u8(0);
    // Callers keep messages under the send limit, far below 4 GiB.
    buf.put_u32(u32::try_from(len).unwrap_or(u32::MAX));
}

/// Envelope payloads of at least this many bytes (blocks) are handed to HTTP/2 as they are rather
/// than copied into the batch.
pub(crate) const SHARED_PAYLOAD_LEN_MIN: usize = 4 * 1024;

/// Encodes a writer batch as the chunks of consecutive gRPC frames: everything small in one
/// allocation, split around each envelope payload of at least [`SHARED_PAYLOAD_LEN_MIN`] bytes,
/// which goes out as the `Bytes` it already is (a forwarded block is the slice of the buffer it
/// arrived in). Concatenated, the chunks are exactly the frames one by one; HTTP/2 sends each
/// chunk as a DATA frame, and TLS copies a shared payload straight into its record, saving the
/// copy into the batch.
pub(crate) fn encode_batch(envelopes: &[Envelope]) -> Vec<Bytes> {
    let is_shared = |e: &Envelope| e.payload.len() >= SHARED_PAYLOAD_LEN_MIN;
    let mut owned_len = 0;
    let mut shared_count = 0;
    for e in envelopes {
        owned_len += PREFIX_LEN + e.encoded_len();
        if is_shared(e) {
            owned_len -= e.payload.len();
            shared_count += 1;
        }
    }
    let mut buf = BytesMut::with_capacity(owned_len);
    let mut chunks = Vec::with_capacity(1 + 2 * shared_count);
    for e in envelopes {
        put_prefix(&mut buf, e.encoded_len());
        if !is_shared(e) {
            e.encode_raw(&mut buf);
            continue;
        }
        // Field 1 (`payload`) comes first on the wire: its key and length, the payload itself,
        // then the other fields exactly as prost encodes them (an empty `payload` is omitted).
        prost::encoding::encode_key(1, WireType::LengthDelimited, &mut buf);
        prost::encoding::encode_varint(e.payload.len() as u64, &mut buf);
        chunks.push(buf.split().freeze());
        chunks.push(e.payload.clone());
        let rest = Envelope {
            payload: Bytes::new(),
            signature: e.signature.clone(),
            secret_envelope: e.secret_envelope.clone(),
        };
        rest.encode_raw(&mut buf);
    }
    if !buf.is_empty() {
        chunks.push(buf.freeze());
    }
    chunks
}

/// Reads gRPC messages from a request or response body.
pub(crate) struct FrameReader {
    body: Body,
    /// The unread part of the last DATA chunk.
    chunk: Bytes,
    /// A message that spans chunks, being collected.
    partial: Partial,
    /// The limit of the next message's announced length: [`FIRST_FRAME_LEN_MAX_BYTES`] (or
    /// `len_max` if lower) until the first message's prefix is read, `len_max` from then on.
    next_len_max: usize,
    len_max: usize,
    ended: bool,
}

/// A message that spans DATA chunks, collected until its last byte arrives.
enum Partial {
    /// Not inside a message.
    None,
    /// A message under [`SLICE_LEN_MIN`] bytes, gathered into one allocation of its size.
    Gather { buf: BytesMut, missing: usize },
    /// A larger message (a block), kept as the pieces of the chunks it arrived in.
    Pieces { pieces: Pieces, missing: usize },
}

impl Partial {
    /// Gathering: `received` copied into one allocation that grows as the rest arrives (reserving
    /// at most [`GATHER_RESERVE_LEN_MAX_BYTES`] ahead, never the announced size up front).
    fn gather(received: impl Buf, missing: usize) -> Self {
        let reserve = missing.min(GATHER_RESERVE_LEN_MAX_BYTES);
        let mut buf = BytesMut::with_capacity(received.remaining() + reserve);
        buf.put(received);
        Partial::Gather { buf, missing }
    }
}

impl FrameReader {
    /// Reads `body`, refusing messages over `len_max` bytes, and a first message over
    /// [`FIRST_FRAME_LEN_MAX_BYTES`], before buffering them.
    pub(crate) fn new(body: Body, len_max: usize) -> Self {
        Self {
            body,
            chunk: Bytes::new(),
            partial: Partial::None,
            next_len_max: len_max.min(FIRST_FRAME_LEN_MAX_BYTES),
            len_max,
            ended: false,
        }
    }

    /// The next message: `Ok(None)` when the stream ended cleanly.
    pub(crate) async fn message<M: Message + Default>(&mut self) -> Result<Option<M>, FrameError> {
        loop {
            if let Some(pieces) = self.take_message()? {
                return M::decode(pieces)
                    .map(Some)
                    .map_err(|e| FrameError::Decode(e.to_string()));
            }
            if self.ended {
                return if !matches!(self.partial, Partial::None) || !self.chunk.is_empty() {
                    Err(FrameError::Truncated)
                } else {
                    Ok(None)
                };
            }
            let frame = std::future::poll_fn(|cx| Pin::new(&mut self.body).poll_frame(cx)).await;
            match frame {
                None => self.ended = true,
                Some(Err(status)) => return Err(FrameError::Transport(status.to_string())),
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => self.push_chunk(data),
                    Err(frame) => {
                        if let Ok(trailers) = frame.into_trailers() {
                            check_status(&trailers)?;
                        }
                        self.ended = true;
                    }
                },
            }
        }
    }

    fn push_chunk(&mut self, data: Bytes) {
        if self.chunk.is_empty() {
            self.chunk = data;
        } else {
            // A prefix split across chunks: rare, join the few bytes.
            let mut joined = BytesMut::with_capacity(self.chunk.len() + data.len());
            joined.put(std::mem::take(&mut self.chunk));
            joined.put(data);
            self.chunk = joined.freeze();
        }
    }

    /// The next complete message's bytes, if buffered: a message under [`SLICE_LEN_MIN`] bytes
    /// in an allocation of its own, a larger one as slices of the chunks it arrived in.
    fn take_message(&mut self) -> Result<Option<Pieces>, FrameError> {
        match &mut self.partial {
            Partial::None => {}
            Partial::Gather { buf, missing } => {
                let n = (*missing).min(self.chunk.len());
                buf.put(self.chunk.split_to(n));
                *missing -= n;
                if *missing > 0 {
                    return Ok(None);
                }
                let message = std::mem::take(buf).freeze();
                self.partial = Partial::None;
                return Ok(Some(Pieces::detached(message)));
            }
            Partial::Pieces { pieces, missing } => {
                let n = (*missing).min(self.chunk.len());
                pieces.push(self.chunk.split_to(n));
                *missing -= n;
                if *missing > 0 {
                    if pieces.pieces_len() > PIECES_LEN_MAX {
                        // Many small DATA frames: each piece could keep a read buffer alive, so
                        // gather the message instead (its size is within the receive limit).
                        self.partial = Partial::gather(std::mem::take(pieces), *missing);
                    }
                    return Ok(None);
                }
                let message = std::mem::take(pieces);
                self.partial = Partial::None;
                return Ok(Some(message));
            }
        }
        if self.chunk.len() < PREFIX_LEN {
            return Ok(None);
        }
        let compressed = self.chunk[0];
        let len = u32::from_be_bytes([self.chunk[1], self.chunk[2], self.chunk[3], self.chunk[4]]);
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        if compressed != 0 {
            return Err(FrameError::Compressed);
        }
        if len > self.next_len_max {
            return Err(FrameError::Oversize { len_bytes: len });
        }
        self.next_len_max = self.len_max;
        self.chunk.advance(PREFIX_LEN);
        let sliced = len >= SLICE_LEN_MIN;
        if self.chunk.len() >= len {
            let message = self.chunk.split_to(len);
            if !sliced {
                return Ok(Some(Pieces::detached(Bytes::copy_from_slice(&message))));
            }
            return Ok(Some(Pieces::one(message)));
        }
        // The message continues in later chunks.
        let first = std::mem::take(&mut self.chunk);
        let missing = len - first.len();
        self.partial = if sliced {
            Partial::Pieces {
                pieces: Pieces::one(first),
                missing,
            }
        } else {
            Partial::gather(first, missing)
        };
        Ok(None)
    }
}

/// An error unless `grpc-status` is absent or 0.
pub(crate) fn check_status(headers: &HeaderMap) -> Result<(), FrameError> {
    let Some(code) = headers.get("grpc-status") else {
        return Ok(());
    };
    let code = code
        .to_str()
        .ok()
        .and_then(|c| c.parse::<i32>().ok())
        .unwrap_or(2);
    if code == 0 {
        return Ok(());
    }
    let message = headers
        .get("grpc-message")
        .and_then(|m| m.to_str().ok())
        .unwrap_or("")
        .to_owned();
    Err(FrameError::Status { code, message })
}

/// An HTTP body of already-framed messages from `stream`, ending with `trailers` (a server's
/// `grpc-status`) or with no trailers (a client's request).
pub(crate) struct FramedBody<S> {
    stream: Pin<Box<S>>,
    trailers: Option<HeaderMap>,
}

impl<S: Stream<Item = Bytes> + Send + 'static> FramedBody<S> {
    /// A client request body.
    pub(crate) fn request(stream: S) -> Body {
        Body::new(FramedBody {
            stream: Box::pin(stream),
            trailers: None,
        })
    }

    /// A server response body, ending with `grpc-status: 0`.
    pub(crate) fn response(stream: S) -> Body {
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", HeaderValue::from_static("0"));
        Body::new(FramedBody {
            stream: Box::pin(stream),
            trailers: Some(trailers),
        })
    }
}

impl<S: Stream<Item = Bytes>> http_body::Body for FramedBody<S> {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.stream.as_mut().poll_next(cx) {
            Poll::Ready(Some(data)) => Poll::Ready(Some(Ok(Frame::data(data)))),
            Poll::Ready(None) => Poll::Ready(self.trailers.take().map(|t| Ok(Frame::trailers(t)))),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// A gRPC request for `path` with `body` (the channel adds scheme and authority).
pub(crate) fn request(path: &'static str, body: Body) -> http::Request<Body> {
    let mut request = http::Request::new(body);
    *request.method_mut() = http::Method::POST;
    *request.uri_mut() = http::Uri::from_static(path);
    let headers = request.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(CONTENT_TYPE_GRPC),
    );
    headers.insert(header::TE, HeaderValue::from_static("trailers"));
    request
}

/// A `200` gRPC response with `body`.
pub(crate) fn response(body: Body) -> http::Response<Body> {
    let mut response = http::Response::new(body);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(CONTENT_TYPE_GRPC),
    );
    response
}

/// Checks a response's HTTP status and any trailers-only `grpc-status`, and returns its body.
pub(crate) fn response_body(response: http::Response<Body>) -> Result<Body, FrameError> {
    if response.status() != http::StatusCode::OK {
        return Err(FrameError::Transport(format!(
            "HTTP status {}",
            response.status()
        )));
    }
    check_status(response.headers())?;
    Ok(response.into_body())
}

#[cfg(test)]
mod tests;
