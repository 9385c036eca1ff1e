//! The accepting side: a TCP listener feeding TLS (or plain) streams to tonic as a custom incoming,
//! the `gossip.Gossip` service (`Ping` answered at once, `GossipStream` running the server half of
//! the handshake), and registration of authenticated inbound connections. The service is a plain
//! tower service over tonic's transport with our own gRPC framing ([`super::grpc`]).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use gossip_proto::gossip::Empty;
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio::task::JoinHandle;
use tonic::Status;
use tonic::body::Body;
use tonic::server::NamedService;

use super::bounds::{
    HANDSHAKES_IN_FLIGHT_MAX, HTTP2_STREAMS_PER_CONN_MAX, StreamSlot, StreamsPerConn,
};
use super::client::{read_first, record_handshake_failure, record_opened};
use super::clock;
use super::comm::Shared;
use super::conn::{Conn, Direction, run_reader, writer_stream};
use super::conn_store::Registration;
use super::grpc::{self, FrameReader, FramedBody, HTTP2_FRAME_LEN_MAX};
use super::handshake::{build_conn_establish, check_tls_presence, verify_conn_establish};
use super::lanes::Lanes;
use super::read_ahead::ReadAheadTcp;
use super::tls::{NetIo, PeerInfo};

/// Accepted streams waiting for tonic to pick them up.
const ACCEPTED_QUEUE_LEN_MAX: usize = 64;
/// A server-side TLS handshake must finish within this (Fabric's `grpc.ConnectionTimeout`).
const TLS_ACCEPT_TIMEOUT: Duration = Duration::from_secs(5);
/// Pause after a failed `accept` (e.g. out of file descriptors) before trying again.
const ACCEPT_RETRY_DELAY: Duration = Duration::from_millis(50);
/// [`crate::CommStats::handshake_failures`] cause of a failed server-side TLS handshake.
const TLS_REJECTED: &str = "tls_rejected";
/// [`crate::CommStats::handshake_failures`] cause of a TLS handshake over [`TLS_ACCEPT_TIMEOUT`].
const TLS_TIMEOUT: &str = "tls_timeout";
/// Fabric servers ping idle clients after two hours.
const SERVER_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(7200);

/// The `gossip.Gossip` service.
#[derive(Clone)]
pub(crate) struct GossipService {
    shared: Arc<Shared>,
    /// [`HANDSHAKES_IN_FLIGHT_MAX`] slots, shared with the accept loop's TLS accepts.
    handshakes: Arc<Semaphore>,
    /// Open `GossipStream`s per connection (counted at the bound).
    streams: Arc<StreamsPerConn>,
}

/// A slot for one handshake, or `None` (counted as `handshakes_full`) when all are taken.
fn handshake_slot(shared: &Shared, handshakes: &Arc<Semaphore>) -> Option<OwnedSemaphorePermit> {
    let slot = handshakes.clone().try_acquire_owned().ok();
    if slot.is_none() {
        shared.stats.refuse("handshakes_full");
    }
    slot
}

impl NamedService for GossipService {
    const NAME: &'static str = "gossip.Gossip";
}

impl tower::Service<http::Request<Body>> for GossipService {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<http::Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let response = match request.uri().path() {
            grpc::PATH_GOSSIP_STREAM => self
                .gossip_stream(request)
                .unwrap_or_else(|status| status.into_http()),
            grpc::PATH_PING => {
                let reply =
                    futures_util::stream::once(std::future::ready(grpc::encode_frame(&Empty {})));
                grpc::response(FramedBody::response(reply))
            }
            _ => Status::unimplemented("").into_http(),
        };
        std::future::ready(Ok(response))
    }
}

impl GossipService {
    /// Answers at once with our ConnEstablish first on the response stream; the remote's is read
    /// and checked by [`serve_inbound`], which drops the connection when it fails.
    fn gossip_stream(&self, request: http::Request<Body>) -> Result<http::Response<Body>, Status> {
        let shared = self.shared.clone();
        if shared.is_stopped() {
            return Err(Status::unavailable("comm stopped"));
        }
        let peer = request.extensions().get::<PeerInfo>().cloned();
        let remote_addr = peer.as_ref().and_then(|p| p.remote_addr);
        let remote_leaf = peer.and_then(|p| p.tls_leaf);
        let endpoint = remote_addr.map(|a| a.to_string()).unwrap_or_default();
        // Held by the stream's task until it ends.
        let stream_slot = remote_addr.map(|addr| {
            let (slot, at_bound) = self.streams.open(addr);
            if at_bound {
                shared.stats.refuse("streams_per_conn_at_bound");
            }
            slot
        });
        if let Err(e) = check_tls_presence(shared.tls.is_some(), remote_leaf.as_deref()) {
            record_handshake_failure(&shared, &endpoint, &e);
            return Err(Status::unauthenticated(e.to_string()));
        }
        let Some(slot) = handshake_slot(&shared, &self.handshakes) else {
            tracing::debug!(endpoint, "too many handshakes running, stream refused");
            return Err(Status::resource_exhausted("too many handshakes"));
        };
        let first = build_conn_establish(
            &shared.signer,
            shared.tls.as_ref().map(|t| t.own_cert_hash),
            false,
        )
        .map_err(|e| Status::internal(e.to_string()))?;
        let lanes = Arc::new(Lanes::new(shared.config.send_buff_len_max));
        let outbound = writer_stream(first, lanes.clone(), shared.clone());
        let inbound = FrameReader::new(request.into_body(), shared.config.recv_message_len_max);
        shared.spawn(serve_inbound(
            shared.clone(),
            lanes,
            inbound,
            remote_leaf,
            endpoint,
            slot,
            stream_slot,
        ));
        Ok(grpc::response(FramedBody::response(outbound)))
    }
}

/// Reads and checks the remote's ConnEstablish, then registers and services the connection.
async fn serve_inbound(
    shared: Arc<Shared>,
    lanes: Arc<Lanes>,
    mut inbound: FrameReader,
    remote_leaf: Option<bytes::Bytes>,
    endpoint: String,
    handshake_slot: OwnedSemaphorePermit,
    // Released when this task ends, with the stream.
    _stream_slot: Option<StreamSlot>,
) {
    let remote = read_first(&mut inbound, shared.config.conn_timeout)
        .await
        .and_then(|envelope| {
            verify_conn_establish(
                &envelope,
                &shared.ingress.identities().msp(),
                shared.tls.is_some(),
                remote_leaf.as_deref(),
                clock::now(),
            )
        });
    drop(handshake_slot);
    let remote = match remote {
        Ok(remote) => remote,
        Err(e) => {
            record_handshake_failure(&shared, &endpoint, &e);
            lanes.close();
            return;
        }
    };
    if remote.probe {
        tracing::debug!(peer = %remote.pki_id, endpoint, "probe handshake answered");
        lanes.close();
        return;
    }
    if shared.is_stopped() {
        lanes.close();
        return;
    }
    shared.learn_identity(&remote.identity);
    let conn = Arc::new(Conn::new(
        shared.next_conn_id(),
        remote,
        Direction::Inbound,
        lanes,
        None,
    ));
    match shared.store.register(conn.clone(), shared.signer.pki_id()) {
        Registration::Registered {
            replaced: Some(old),
        } => {
            tracing::debug!(peer = %conn.pki_id(), "inbound connection replaces an existing one");
            shared.hand_over(&old, &conn);
        }
        Registration::Registered { replaced: None } => {}
        Registration::KeptExisting(_) => {
            // Our own dial wins the simultaneous-dial tie-break. The remote computes the same and
            // closes this connection (its losing dial) itself. It is retired at once: our half
            // ends now, and what the remote already sent on it is read for at most
            // `conn_timeout`, so a peer cannot keep such streams open (each with its reader task
            // and buffers) by never closing them. Nothing is sent here: it is not registered.
            shared.stats.refuse("stream_tie_break_lost");
            tracing::debug!(peer = %conn.pki_id(), "our dial wins the simultaneous-dial tie-break; draining this inbound one for at most conn_timeout");
            conn.retire();
            run_reader(shared, conn, inbound).await;
            return;
        }
    }
    record_opened(&shared);
    tracing::debug!(peer = %conn.pki_id(), endpoint, "inbound connection registered");
    run_reader(shared, conn, inbound).await;
}

/// The running server's tasks.
pub(crate) struct ServerTasks {
    pub(crate) accept_loop: JoinHandle<()>,
    pub(crate) server: JoinHandle<()>,
    pub(crate) shutdown: oneshot::Sender<()>,
}

/// Binds the listener.
pub(crate) async fn bind(listen: SocketAddr) -> std::io::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(listen).await?;
    let local = listener.local_addr()?;
    Ok((listener, local))
}

/// Starts the accept loop and the tonic server on `listener`.
pub(crate) fn start(shared: Arc<Shared>, listener: TcpListener) -> ServerTasks {
    let (accepted_tx, accepted_rx) = mpsc::channel::<NetIo>(ACCEPTED_QUEUE_LEN_MAX);
    let handshakes = Arc::new(Semaphore::new(HANDSHAKES_IN_FLIGHT_MAX));
    let accept_loop = shared.spawn(accept_loop(
        shared.clone(),
        listener,
        accepted_tx,
        handshakes.clone(),
    ));
    let incoming = futures_util::stream::unfold(accepted_rx, |mut rx| async move {
        rx.recv().await.map(|io| (Ok::<_, std::io::Error>(io), rx))
    });
    let service = GossipService {
        shared: shared.clone(),
        handshakes,
        streams: Arc::default(),
    };
    let (shutdown, shutdown_rx) = oneshot::channel::<()>();
    let router = tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(SERVER_KEEPALIVE_INTERVAL))
        .http2_keepalive_timeout(Some(shared.config.keepalive_timeout))
        .max_frame_size(Some(HTTP2_FRAME_LEN_MAX))
        .max_concurrent_streams(Some(HTTP2_STREAMS_PER_CONN_MAX))
        .add_service(service);
    let server = shared.spawn(async move {
        let signal = async move {
            let _ = shutdown_rx.await;
        };
        if let Err(e) = router.serve_with_incoming_shutdown(incoming, signal).await {
            tracing::warn!(error = %e, "gossip server ended with an error");
        }
    });
    ServerTasks {
        accept_loop,
        server,
        shutdown,
    }
}

async fn accept_loop(
    shared: Arc<Shared>,
    listener: TcpListener,
    accepted: mpsc::Sender<NetIo>,
    handshakes: Arc<Semaphore>,
) {
    loop {
        let (tcp, addr) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::debug!(error = %e, "accept failed");
                tokio::time::sleep(ACCEPT_RETRY_DELAY).await;
                continue;
            }
        };
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(%addr, error = %e, "setting TCP_NODELAY failed");
        }
        let tcp = ReadAheadTcp::new(tcp, shared.stats.wire.clone());
        let Some(tls) = &shared.tls else {
            if accepted.send(NetIo::Plain(tcp)).await.is_err() {
                return;
            }
            continue;
        };
        let Some(slot) = handshake_slot(&shared, &handshakes) else {
            tracing::debug!(%addr, "too many handshakes running, connection refused");
            continue;
        };
        let acceptor = tokio_rustls::TlsAcceptor::from(tls.server.clone());
        let accepted = accepted.clone();
        let task_shared = shared.clone();
        shared.spawn(async move {
            let tls_accepted = tokio::time::timeout(TLS_ACCEPT_TIMEOUT, acceptor.accept(tcp)).await;
            drop(slot);
            match tls_accepted {
                Ok(Ok(stream)) => {
                    let _ = accepted.send(NetIo::TlsServer(Box::new(stream))).await;
                }
                Ok(Err(e)) => {
                    // Not TLS, a client certificate of no trusted TLS CA, or a connection closed
                    // mid-handshake: counted, as every other handshake failure.
                    task_shared.stats.handshake_failure(TLS_REJECTED);
                    tracing::debug!(%addr, error = %e, "TLS accept failed");
                }
                Err(_) => {
                    task_shared.stats.handshake_failure(TLS_TIMEOUT);
                    tracing::debug!(%addr, "TLS accept timed out");
                }
            }
        });
    }
}
