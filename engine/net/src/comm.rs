//! The public comm API ([`Comm`]); the state its tasks share is in `shared`.

mod shared;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use gossip_proto::gossip::Envelope;
use parking_lot::Mutex;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::client::{self, DialError, client_handshake, record_handshake_failure};
use super::conn_store::ConnStore;
use super::handshake::HandshakeError;
use super::inbound::Inbound;
use super::lanes::{EnqueueError, Lane};
use super::queue::AsyncQueue;
use super::server::{self, ServerTasks};
use super::stats::{CommStats, Stats};
use super::tls::{TlsMaterial, TlsSetupError, TlsState};
use crate::config::{CommConfig, ConfigError};
use crate::crypto::{Identity, LocalSigner};
use crate::ingress::Ingress;
use crate::pool::{PoolConfig, VerifierPool};
use crate::types::PkiId;
pub(crate) use shared::Shared;

/// Presumed-dead notices waiting for their consumer (Fabric: 100); more are dropped and counted.
pub const PRESUMED_DEAD_QUEUE_LEN_MAX: usize = 100;
/// Identity-switch notices waiting for their consumer; more are dropped and counted.
pub const IDENTITY_SWITCH_QUEUE_LEN_MAX: usize = 16;
/// How often a send follows a connection that was replaced under it before giving up.
const REPLACED_RETRIES_MAX: usize = 3;
/// How long `stop` waits for the server to drain before aborting it.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// What [`Comm::start`] needs.
#[derive(Clone, Debug)]
pub struct CommParams {
    /// Timeouts, buffer lengths, message limits, keepalive.
    pub config: CommConfig,
    /// Where to listen; port 0 picks a free port (see [`Comm::local_addr`]).
    pub listen: SocketAddr,
    /// This peer's identity and key.
    pub signer: Arc<LocalSigner>,
    /// The ingress pipeline, shared with the node that consumes the messages: its identity store
    /// learns every handshake's remote identity, and its MSP manager validates identities and
    /// provides the TLS roots.
    pub ingress: Arc<Ingress>,
    /// Mutual TLS material; `None` runs plaintext.
    pub tls: Option<TlsMaterial>,
}

/// A destination: where to dial and whom we expect there.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RemotePeer {
    /// `host:port`.
    pub endpoint: String,
    /// The PKI-ID expected at the endpoint.
    pub pki_id: PkiId,
}

/// Why a comm operation failed.
#[derive(Debug, thiserror::Error)]
pub enum CommError {
    /// The configuration is invalid.
    #[error("config: {0}")]
    Config(#[from] ConfigError),
    /// TLS could not be set up.
    #[error("TLS setup: {0}")]
    Tls(#[from] TlsSetupError),
    /// Binding the listener failed.
    #[error("binding {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The IO error.
        source: std::io::Error,
    },
    /// Dial or Ping failed.
    #[error(transparent)]
    Dial(#[from] DialError),
    /// The handshake failed.
    #[error(transparent)]
    Handshake(#[from] HandshakeError),
    /// The envelope could not be queued.
    #[error("send to {peer}: {source}")]
    Send {
        /// The destination.
        peer: PkiId,
        /// Why.
        source: EnqueueError,
    },
    /// The remote answering a probe handshake is not the expected peer.
    #[error("probe: expected {expected}, got {actual}")]
    UnexpectedPeer {
        /// The PKI-ID asked for.
        expected: PkiId,
        /// The PKI-ID that answered.
        actual: PkiId,
    },
    /// The comm is stopped.
    #[error("comm stopped")]
    Stopped,
    /// The verifier pool's threads could not start.
    #[error("verifier pool: {0}")]
    VerifierPool(#[from] crate::pool::PoolError),
}

/// The verifier pool the config asks for: one worker per core by default, none for 0.
fn start_verifier_pool(config: &CommConfig) -> Result<Option<VerifierPool>, CommError> {
    let workers_count = config.verifier_threads();
    if workers_count == 0 {
        return Ok(None);
    }
    let pool = VerifierPool::new(&PoolConfig {
        workers_count,
        queue_len_max: config.verifier_queue_len_max,
        ..PoolConfig::default()
    })?;
    Ok(Some(pool))
}

/// The async comm layer of one peer: a `gossip.Gossip` server, outbound connections, send lanes,
/// and the inbound queue. Cheap to share behind an `Arc`.
pub struct Comm {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    server: Mutex<Option<ServerTasks>>,
    presumed_dead_rx: Mutex<Option<mpsc::Receiver<PkiId>>>,
    identity_switch_rx: Mutex<Option<mpsc::Receiver<PkiId>>>,
}

impl std::fmt::Debug for Comm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Comm")
            .field("pki_id", &self.pki_id())
            .field("local_addr", &self.local_addr)
            .finish()
    }
}

impl Comm {
    /// Binds the listener and starts the server. Must run inside a tokio runtime.
    pub async fn start(params: CommParams) -> Result<Comm, CommError> {
        params.config.validate()?;
        let msp = params.ingress.identities().msp();
        let tls = params
            .tls
            .as_ref()
            .map(|m| TlsState::new(&msp, m))
            .transpose()?;
        let (listener, local_addr) =
            server::bind(params.listen)
                .await
                .map_err(|source| CommError::Bind {
                    addr: params.listen,
                    source,
                })?;
        let verifier_pool = start_verifier_pool(&params.config)?;
        let (presumed_dead_tx, presumed_dead_rx) = mpsc::channel(PRESUMED_DEAD_QUEUE_LEN_MAX);
        let (identity_switch_tx, identity_switch_rx) = mpsc::channel(IDENTITY_SWITCH_QUEUE_LEN_MAX);
        let shared = Arc::new(Shared {
            inbound: Arc::new(AsyncQueue::new(params.config.inbound_queue_len_max)),
            config: params.config,
            signer: params.signer,
            tls,
            store: ConnStore::default(),
            ingress: params.ingress,
            verifier_pool,
            verifying_count: AtomicUsize::new(0),
            verify_started_last_ns: AtomicU64::new(0),
            stats: Stats::default(),
            runtime: tokio::runtime::Handle::current(),
            presumed_dead_tx,
            identity_switch_tx,
            known_identities: Mutex::new(HashMap::new()),
            warn_limiter: crate::warn_limit::WarnLimiter::default(),
            next_conn_id: AtomicU64::new(1),
            stopped: AtomicBool::new(false),
        });
        let server = server::start(shared.clone(), listener);
        tracing::info!(%local_addr, pki_id = %shared.signer.pki_id(), tls = shared.tls.is_some(), "comm started");
        Ok(Comm {
            shared,
            local_addr,
            server: Mutex::new(Some(server)),
            presumed_dead_rx: Mutex::new(Some(presumed_dead_rx)),
            identity_switch_rx: Mutex::new(Some(identity_switch_rx)),
        })
    }

    /// The bound listen address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// This peer's PKI-ID.
    pub fn pki_id(&self) -> PkiId {
        self.shared.signer.pki_id()
    }

    /// Sends `envelope` to every peer on the data lane without ever blocking: an open connection
    /// gets it queued now (a full lane drops and counts); a missing one is dialled in the
    /// background (one dial, a bounded queue: see [`super::pending_dial`]) and gets it once
    /// connected. The envelope's `Bytes` are shared, not copied.
    pub fn send(&self, envelope: Envelope, peers: &[RemotePeer]) {
        self.send_on(Lane::Data, envelope, peers);
    }

    /// As [`Comm::send`], on the control lane (drained before data).
    pub fn send_control(&self, envelope: Envelope, peers: &[RemotePeer]) {
        self.send_on(Lane::Control, envelope, peers);
    }

    /// As [`Comm::send`], on `lane`.
    pub fn send_on(&self, lane: Lane, envelope: Envelope, peers: &[RemotePeer]) {
        if self.shared.is_stopped() {
            return;
        }
        for peer in peers {
            if let Some(conn) = self.shared.store.get(&peer.pki_id) {
                self.shared.enqueue(&conn, lane, envelope.clone());
                continue;
            }
            super::pending_dial::send_dialling(&self.shared, peer, lane, envelope.clone());
        }
    }

    /// Sends to one peer, connecting first if needed and waiting for room in the data lane or for
    /// the connection to close (Fabric's blocking send, used for responses).
    pub async fn send_blocking(
        &self,
        envelope: Envelope,
        peer: &RemotePeer,
    ) -> Result<(), CommError> {
        if self.shared.is_stopped() {
            return Err(CommError::Stopped);
        }
        let mut conn = self.shared.get_or_create(peer).await?;
        let mut attempts = 1;
        loop {
            match conn.lanes.push_wait(Lane::Data, envelope.clone()).await {
                Ok(()) => return Ok(()),
                // Replaced while we held it: the envelope goes on the replacement.
                Err(EnqueueError::Closed) if attempts < REPLACED_RETRIES_MAX => {
                    match self.shared.replacement_of(&conn) {
                        Some(next) => conn = next,
                        None => {
                            return Err(CommError::Send {
                                peer: conn.pki_id(),
                                source: EnqueueError::Closed,
                            });
                        }
                    }
                    attempts += 1;
                }
                Err(source) => {
                    return Err(CommError::Send {
                        peer: conn.pki_id(),
                        source,
                    });
                }
            }
        }
    }

    /// The inbound queue: every message that passed ingress, from every connection, for one
    /// consumer (the driver). It ends once the comm has stopped and the queue is drained.
    pub fn inbound(&self) -> Inbound {
        Inbound {
            queue: Arc::clone(&self.shared.inbound),
            wait: Arc::clone(&self.shared.stats.inbound_wait),
        }
    }

    /// The presumed-dead channel (capacity [`PRESUMED_DEAD_QUEUE_LEN_MAX`]); the first call takes it.
    pub fn presumed_dead(&self) -> Option<mpsc::Receiver<PkiId>> {
        self.presumed_dead_rx.lock().take()
    }

    /// The identity-switch channel (old PKI-IDs); the first call takes it.
    pub fn identity_switches(&self) -> Option<mpsc::Receiver<PkiId>> {
        self.identity_switch_rx.lock().take()
    }

    /// Probe handshake (Fabric's `Handshake`): dial, Ping, a stream with `probe = true`, the remote's
    /// ConnEstablish checked, then closed. Returns the remote's identity; fails if `expected` is
    /// given and differs. Registers nothing.
    pub async fn handshake(
        &self,
        endpoint: &str,
        expected: Option<PkiId>,
    ) -> Result<Identity, CommError> {
        let shared = &self.shared;
        let dialed = self.dial_and_ping(endpoint).await?;
        let hs = client_handshake(shared, dialed, true, shared.config.handshake_timeout)
            .await
            .inspect_err(|e| record_handshake_failure(shared, endpoint, e))?;
        hs.lanes.close();
        let identity = hs.remote.identity;
        match expected {
            Some(expected) if expected != identity.pki_id => Err(CommError::UnexpectedPeer {
                expected,
                actual: identity.pki_id,
            }),
            _ => Ok(identity),
        }
    }

    /// Liveness probe (Fabric's `Probe`): dial and Ping only.
    pub async fn probe(&self, endpoint: &str) -> Result<(), CommError> {
        self.dial_and_ping(endpoint).await.map(drop)
    }

    /// Dials `endpoint` (TLS when on) and checks it answers `Ping` within the conn timeout.
    async fn dial_and_ping(&self, endpoint: &str) -> Result<client::Dialed, CommError> {
        let shared = &self.shared;
        let mut dialed = client::dial(
            endpoint,
            shared.tls.as_ref().map(|t| t.client.clone()),
            &shared.config,
            shared.stats.wire.clone(),
        )
        .await?;
        client::ping(&mut dialed, endpoint, &shared.config).await?;
        Ok(dialed)
    }

    /// Closes and forgets the connection to `peer`; a later send reconnects.
    pub fn close_conn(&self, peer: &PkiId) {
        if let Some(conn) = self.shared.store.remove(peer) {
            conn.close();
        }
    }

    /// PKI-IDs of every open connection.
    pub fn connected_peers(&self) -> Vec<PkiId> {
        self.shared.store.peers()
    }

    /// Block `seq_num` of `channel` was taken by its channel: later copies are duplicates at
    /// ingress (see [`Ingress::mark_block_seen`]).
    pub fn mark_block_seen(&self, channel: &[u8], seq_num: u64) {
        self.shared
            .ingress
            .mark_block_seen(channel, seq_num, crate::clock::now());
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> CommStats {
        self.shared.stats.snapshot(&self.shared)
    }

    /// Closes every connection, ends the server and closes the inbound queue. Idempotent. Once
    /// it returns the listening socket is closed, so the address can be bound again (a peer
    /// restarted on its endpoint).
    pub async fn stop(&self) {
        if let Some((accept_loop, mut server)) = self.stop_now() {
            // Aborting only asks: the listener goes when the task is dropped, which the await
            // waits for (it was seen still open after `stop` under load, and a rebind failed).
            let _ = tokio::time::timeout(STOP_GRACE, accept_loop).await;
            if tokio::time::timeout(STOP_GRACE, &mut server).await.is_err() {
                server.abort();
            }
        }
    }

    /// The synchronous part of `stop`: everything is signalled, nothing is awaited. Returns the
    /// (aborted) accept loop and the server task.
    fn stop_now(&self) -> Option<(JoinHandle<()>, JoinHandle<()>)> {
        self.shared.stopped.store(true, Ordering::Release);
        for conn in self.shared.store.drain() {
            conn.close();
        }
        self.shared.inbound.close();
        self.server.lock().take().map(|tasks| {
            tasks.accept_loop.abort();
            let _ = tasks.shutdown.send(());
            (tasks.accept_loop, tasks.server)
        })
    }
}

impl Drop for Comm {
    fn drop(&mut self) {
        if let Some((_, server)) = self.stop_now() {
            server.abort();
        }
    }
}
