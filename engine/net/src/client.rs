//! The dialling side: a custom connector (TCP with TCP_NODELAY, then rustls with the endpoint host as
//! SNI) that records the server's leaf certificate, the Ping, and the client half of the handshake.
//! Calls go through tonic's [`Channel`] with our own gRPC framing ([`super::grpc`]).

use std::sync::Arc;

use bytes::Bytes;
use gossip_proto::gossip::{Empty, Envelope};
use parking_lot::Mutex;
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tonic::body::Body;
use tonic::transport::{Channel, Endpoint};
use tower::ServiceExt;

use super::clock;
use super::comm::Shared;
use super::conn::{Conn, Direction, writer_stream};
use super::grpc::{self, FrameError, FrameReader, FramedBody, HTTP2_FRAME_LEN_MAX};
use super::handshake::{
    HandshakeError, RemotePeerInfo, build_conn_establish, verify_conn_establish,
};
use super::lanes::Lanes;
use super::read_ahead::{ReadAheadTcp, WireBytes};
use super::stats::Stats;
use super::tls::NetIo;
use crate::config::CommConfig;

/// Why a dial failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DialError {
    /// The endpoint is not `host:port`.
    #[error("bad endpoint {0:?}")]
    BadEndpoint(String),
    /// TCP connect or TLS handshake failed or timed out.
    #[error("connecting to {endpoint}: {reason}")]
    Connect {
        /// The endpoint dialled.
        endpoint: String,
        /// What went wrong.
        reason: String,
    },
    /// The Ping RPC failed or timed out.
    #[error("ping to {endpoint} failed: {reason}")]
    Ping {
        /// The endpoint dialled.
        endpoint: String,
        /// What went wrong.
        reason: String,
    },
}

/// A dialled gRPC channel with what the TLS session showed.
#[derive(Debug, Clone)]
pub struct Dialed {
    /// The HTTP/2 channel (one connection) that calls go over.
    pub channel: Channel,
    /// The server's leaf certificate DER (`None` without TLS).
    pub server_leaf: Option<Bytes>,
    /// `CommConfig::recv_message_len_max`: the largest message read from this channel.
    recv_message_len_max: usize,
}

fn split_endpoint(endpoint: &str) -> Result<(String, u16), DialError> {
    let bad = || DialError::BadEndpoint(endpoint.to_owned());
    let (host, port) = endpoint.rsplit_once(':').ok_or_else(bad)?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(bad());
    }
    Ok((host.to_owned(), port.parse().map_err(|_| bad())?))
}

fn io_err(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

/// Dials `endpoint` (`host:port`): TCP with TCP_NODELAY, then TLS when `tls` is given, all within
/// `dial_timeout`. The server's leaf certificate is recorded for the handshake's TLS-hash check.
/// The connection's socket bytes are counted in `wire`.
pub async fn dial(
    endpoint: &str,
    tls: Option<Arc<ClientConfig>>,
    config: &CommConfig,
    wire: Arc<WireBytes>,
) -> Result<Dialed, DialError> {
    let (host, port) = split_endpoint(endpoint)?;
    let connect_err = |reason: String| DialError::Connect {
        endpoint: endpoint.to_owned(),
        reason,
    };
    let leaf_slot: Arc<Mutex<Option<Bytes>>> = Arc::default();
    let slot = leaf_slot.clone();
    let dial_timeout = config.dial_timeout;
    let connector = tower::service_fn(move |_uri: tonic::codegen::http::Uri| {
        let (host, tls, slot, wire) = (host.clone(), tls.clone(), slot.clone(), wire.clone());
        async move {
            let tcp = tokio::time::timeout(dial_timeout, TcpStream::connect((host.as_str(), port)))
                .await
                .map_err(|_| io_err("TCP connect timed out"))??;
            tcp.set_nodelay(true)?;
            let tcp = ReadAheadTcp::new(tcp, wire);
            let Some(tls) = tls else {
                return Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(NetIo::Plain(tcp)));
            };
            let server_name = ServerName::try_from(host).map_err(io_err)?;
            let stream = tokio::time::timeout(
                dial_timeout,
                tokio_rustls::TlsConnector::from(tls).connect(server_name, tcp),
            )
            .await
            .map_err(|_| io_err("TLS handshake timed out"))??;
            let io = NetIo::TlsClient(Box::new(stream));
            *slot.lock() = io.peer_leaf();
            Ok(hyper_util::rt::TokioIo::new(io))
        }
    });
    let uri = format!("http://{endpoint}");
    let keepalive_interval = config
        .keepalive_interval
        .max(std::time::Duration::from_secs(60));
    let channel = Endpoint::from_shared(uri)
        .map_err(|_| DialError::BadEndpoint(endpoint.to_owned()))?
        .connect_timeout(config.dial_timeout)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(keepalive_interval)
        .keep_alive_timeout(config.keepalive_timeout)
        .keep_alive_while_idle(true)
        .max_frame_size(HTTP2_FRAME_LEN_MAX)
        .connect_with_connector(connector)
        .await
        .map_err(|e| connect_err(error_chain(&e)))?;
    let server_leaf = leaf_slot.lock().take();
    Ok(Dialed {
        channel,
        server_leaf,
        recv_message_len_max: config.recv_message_len_max,
    })
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

impl Dialed {
    /// Calls `path` with `body` and returns the response's message reader.
    pub(crate) async fn call(
        &self,
        path: &'static str,
        body: Body,
    ) -> Result<FrameReader, FrameError> {
        let response = self
            .channel
            .clone()
            .oneshot(grpc::request(path, body))
            .await
            .map_err(|e| FrameError::Transport(error_chain(&e)))?;
        let body = grpc::response_body(response)?;
        Ok(FrameReader::new(body, self.recv_message_len_max))
    }

    /// Calls `Ping` (`Empty` in, `Empty` out).
    async fn ping(&self) -> Result<(), FrameError> {
        let request = futures_util::stream::once(std::future::ready(grpc::encode_frame(&Empty {})));
        let mut reader = self
            .call(grpc::PATH_PING, FramedBody::request(request))
            .await?;
        match reader.message::<Empty>().await? {
            Some(Empty {}) => Ok(()),
            None => Err(FrameError::Truncated),
        }
    }

    /// Opens `GossipStream` with `outbound` (gRPC frames) as the request stream.
    pub(crate) async fn gossip_stream(
        &self,
        outbound: impl futures_util::Stream<Item = Bytes> + Send + 'static,
    ) -> Result<FrameReader, FrameError> {
        self.call(grpc::PATH_GOSSIP_STREAM, FramedBody::request(outbound))
            .await
    }
}

/// Calls `Ping` within `conn_timeout`.
pub async fn ping(
    dialed: &mut Dialed,
    endpoint: &str,
    config: &CommConfig,
) -> Result<(), DialError> {
    let ping_err = |reason: String| DialError::Ping {
        endpoint: endpoint.to_owned(),
        reason,
    };
    match tokio::time::timeout(config.conn_timeout, dialed.ping()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(ping_err(e.to_string())),
        Err(_) => Err(ping_err("timed out".into())),
    }
}

/// Reads the remote's first envelope within `timeout`.
pub(crate) async fn read_first(
    inbound: &mut FrameReader,
    timeout: std::time::Duration,
) -> Result<Envelope, HandshakeError> {
    match tokio::time::timeout(timeout, inbound.message::<Envelope>()).await {
        Err(_) => Err(HandshakeError::Timeout),
        Ok(Ok(Some(envelope))) => Ok(envelope),
        Ok(Ok(None)) => Err(HandshakeError::StreamEnded),
        Ok(Err(FrameError::Oversize { len_bytes })) => {
            Err(HandshakeError::FirstFrameOversize { len_bytes })
        }
        // Bytes that are not an envelope are a malformed ConnEstablish, as a payload that is not
        // a GossipMessage is.
        Ok(Err(FrameError::Decode(e))) => Err(HandshakeError::Malformed(e)),
        Ok(Err(e)) => Err(HandshakeError::Stream(e.to_string())),
    }
}

/// What a client handshake produced.
pub(crate) struct ClientHandshake {
    pub(crate) remote: RemotePeerInfo,
    pub(crate) lanes: Arc<Lanes>,
    pub(crate) inbound: FrameReader,
    pub(crate) channel: Channel,
}

/// Opens a `GossipStream` on a dialled channel and runs the client half of the handshake: send our
/// ConnEstablish at once, read theirs within `timeout`, check it.
pub(crate) async fn client_handshake(
    shared: &Arc<Shared>,
    dialed: Dialed,
    probe: bool,
    timeout: std::time::Duration,
) -> Result<ClientHandshake, HandshakeError> {
    let own_hash = shared.tls.as_ref().map(|t| t.own_cert_hash);
    let first = build_conn_establish(&shared.signer, own_hash, probe)?;
    let lanes = Arc::new(Lanes::new(shared.config.send_buff_len_max));
    let outbound = writer_stream(first, lanes.clone(), shared.clone());
    let opened = async {
        let mut inbound = dialed
            .gossip_stream(outbound)
            .await
            .map_err(|e| HandshakeError::Stream(e.to_string()))?;
        let envelope = read_first(&mut inbound, timeout).await?;
        Ok::<_, HandshakeError>((envelope, inbound))
    };
    let result = match tokio::time::timeout(timeout, opened).await {
        Err(_) => Err(HandshakeError::Timeout),
        Ok(r) => r,
    }
    .and_then(|(envelope, inbound)| {
        let remote = verify_conn_establish(
            &envelope,
            &shared.ingress.identities().msp(),
            shared.tls.is_some(),
            dialed.server_leaf.as_deref(),
            clock::now(),
        )?;
        Ok((remote, inbound))
    });
    match result {
        Ok((remote, inbound)) => Ok(ClientHandshake {
            remote,
            lanes,
            inbound,
            channel: dialed.channel,
        }),
        Err(e) => {
            lanes.close();
            Err(e)
        }
    }
}

/// Wraps a finished client handshake into a connection (not yet registered).
pub(crate) fn outbound_conn(shared: &Shared, hs: ClientHandshake) -> (Arc<Conn>, FrameReader) {
    let conn = Conn::new(
        shared.next_conn_id(),
        hs.remote,
        Direction::Outbound,
        hs.lanes,
        Some(hs.channel),
    );
    (Arc::new(conn), hs.inbound)
}

/// Counts and logs a failed handshake.
pub(crate) fn record_handshake_failure(shared: &Shared, endpoint: &str, error: &HandshakeError) {
    shared.stats.handshake_failure(error.cause());
    if let HandshakeError::FirstFrameOversize { .. } = error {
        shared.stats.refuse("first_frame_oversize");
    }
    let key = crate::warn_limit::WarnKey::endpoint(error.cause(), endpoint);
    if shared.warn_limiter.allow(key, clock::now()) {
        tracing::warn!(endpoint, cause = error.cause(), %error, "handshake failed");
    } else {
        tracing::debug!(endpoint, cause = error.cause(), %error, "handshake failed");
    }
}

/// Counts a newly registered connection.
pub(crate) fn record_opened(shared: &Shared) {
    Stats::incr(&shared.stats.connections_opened);
}
