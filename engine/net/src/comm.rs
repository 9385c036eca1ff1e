//! The public comm API ([`Comm`]) and the state its tasks share.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use gossip_proto::gossip::Envelope;
use parking_lot::Mutex;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::client::{
    self, DialError, client_handshake, outbound_conn, record_handshake_failure, record_opened,
};
use super::conn::{Conn, run_reader};
use super::conn_store::{ConnStore, Registration};
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

/// Presumed-dead notices waiting for their consumer (Fabric: 100); more are dropped and counted.
pub const PRESUMED_DEAD_QUEUE_LEN_MAX: usize = 100;
/// Identity-switch notices waiting for their consumer; more are dropped and counted.
pub const IDENTITY_SWITCH_QUEUE_LEN_MAX: usize = 16;
/// Remote identities remembered from handshakes (for the same-org identity-switch check).
const KNOWN_IDENTITIES_LEN_MAX: usize = 4096;
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

/// State shared by every task of one comm.
pub(crate) struct Shared {
    pub(crate) config: CommConfig,
    pub(crate) signer: Arc<LocalSigner>,
    pub(crate) tls: Option<TlsState>,
    pub(crate) store: ConnStore,
    pub(crate) ingress: Arc<Ingress>,
    /// Signature checks of received messages; `None` verifies on the connection tasks.
    pub(crate) verifier_pool: Option<VerifierPool>,
    /// Messages whose signature checks are running now (inline or on the pool).
    pub(crate) verifying_count: AtomicUsize,
    /// When the last verification started (Unix ns), for the inline-when-rare rule.
    pub(crate) verify_started_last_ns: AtomicU64,
    pub(crate) inbound: Arc<AsyncQueue<crate::inbound::Queued>>,
    pub(crate) stats: Stats,
    runtime: tokio::runtime::Handle,
    presumed_dead_tx: mpsc::Sender<PkiId>,
    identity_switch_tx: mpsc::Sender<PkiId>,
    known_identities: Mutex<HashMap<PkiId, Identity>>,
    /// Repeated warnings about the same remote are logged once a minute.
    pub(crate) warn_limiter: crate::warn_limit::WarnLimiter,
    next_conn_id: AtomicU64,
    stopped: AtomicBool,
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

impl Shared {
    pub(crate) fn spawn<F>(&self, task: F) -> JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.runtime.spawn(task)
    }

    pub(crate) fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    pub(crate) fn next_conn_id(&self) -> u64 {
        self.next_conn_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Reports a peer presumed dead; never blocks (a full channel drops and counts).
    pub(crate) fn presumed_dead(&self, peer: PkiId) {
        if self.presumed_dead_tx.try_send(peer).is_err() {
            Stats::incr(&self.stats.presumed_dead_dropped);
        }
    }

    pub(crate) fn learn_identity(&self, identity: &Identity) {
        let mut known = self.known_identities.lock();
        if known.len() >= KNOWN_IDENTITIES_LEN_MAX && !known.contains_key(&identity.pki_id) {
            known.clear();
        }
        known.insert(identity.pki_id, identity.clone());
        drop(known);
        // The handshake validated it; the ingress store lets this peer's signed messages verify.
        let now = super::clock::now();
        if let Err(e) =
            self.ingress
                .identities()
                .put(identity.pki_id.as_bytes(), identity.clone(), now)
            && self
                .warn_limiter
                .allow(crate::warn_limit::WarnKey::peer(&identity.pki_id), now)
        {
            tracing::warn!(peer = %identity.pki_id, error = %e, "handshake identity not stored");
        }
    }

    /// Retires `old`, which `new` replaced, and moves the envelopes it never wrote onto `new`, so a
    /// replacement (a reconnect, or the simultaneous-dial tie-break) loses nothing that was queued;
    /// `old`'s reader goes on until the remote ends it, so nothing the remote wrote on it before
    /// switching is lost either.
    pub(crate) fn hand_over(&self, old: &Conn, new: &Conn) {
        old.retire();
        for (lane, envelope) in old.lanes.take_pending() {
            self.enqueue(new, lane, envelope);
        }
    }

    /// Queues on an open connection without waiting; a full lane drops and counts.
    pub(crate) fn enqueue(&self, conn: &Conn, lane: Lane, envelope: Envelope) {
        let mut replacement: Option<Arc<Conn>> = None;
        for _ in 0..REPLACED_RETRIES_MAX {
            let target = replacement.as_deref().unwrap_or(conn);
            match target.lanes.try_push(lane, envelope.clone()) {
                Ok(()) => return,
                Err(EnqueueError::Full) => {
                    self.stats.overflow(target.pki_id());
                    tracing::debug!(peer = %target.pki_id(), "send buffer overflow, message dropped");
                    return;
                }
                Err(EnqueueError::Closed) => match self.replacement_of(target) {
                    Some(next) => replacement = Some(next),
                    None => break,
                },
            }
        }
        tracing::debug!(peer = %conn.pki_id(), "send on a closed connection, message dropped");
    }

    /// The open connection that replaced `conn` (a reconnect, or the simultaneous-dial
    /// tie-break), if any. The store registers the replacement before closing the old one, so a
    /// sender that finds its connection closed finds the new one here.
    pub(crate) fn replacement_of(&self, conn: &Conn) -> Option<Arc<Conn>> {
        self.store
            .get(&conn.pki_id())
            .filter(|current| current.id != conn.id)
    }

    /// The connection to `peer`, dialling it if needed (one dial per destination at a time). A
    /// failure to obtain one marks the peer presumed dead.
    pub(crate) async fn get_or_create(
        self: &Arc<Self>,
        peer: &RemotePeer,
    ) -> Result<Arc<Conn>, CommError> {
        if let Some(conn) = self.store.get(&peer.pki_id) {
            return Ok(conn);
        }
        let lock = self.store.dial_lock(&peer.pki_id);
        let result = {
            let _guard = lock.lock().await;
            match self.store.get(&peer.pki_id) {
                Some(conn) => Ok(conn),
                None => self.connect(peer).await,
            }
        };
        self.store.release_dial_lock(&peer.pki_id, lock);
        if let Err(e) = &result {
            tracing::warn!(peer = %peer.pki_id, endpoint = %peer.endpoint, error = %e, "could not connect");
            if !matches!(e, CommError::Stopped) {
                self.presumed_dead(peer.pki_id);
            }
        }
        result
    }

    /// Dial, Ping, handshake, register (spec 2.2, client side).
    async fn connect(self: &Arc<Self>, peer: &RemotePeer) -> Result<Arc<Conn>, CommError> {
        if self.is_stopped() {
            return Err(CommError::Stopped);
        }
        let mut dialed = client::dial(
            &peer.endpoint,
            self.tls.as_ref().map(|t| t.client.clone()),
            &self.config,
            self.stats.wire.clone(),
        )
        .await?;
        client::ping(&mut dialed, &peer.endpoint, &self.config).await?;
        let hs = client_handshake(self, dialed, false, self.config.conn_timeout)
            .await
            .and_then(|hs| self.check_expected(peer, hs))
            .inspect_err(|e| record_handshake_failure(self, &peer.endpoint, e))?;
        let switched = hs.remote.pki_id != peer.pki_id;
        self.learn_identity(&hs.remote.identity);
        let (conn, inbound) = outbound_conn(self, hs);
        if self.is_stopped() {
            conn.close();
            return Err(CommError::Stopped);
        }
        if switched {
            if let Some(old) = self.store.insert_replace(conn.clone()) {
                self.hand_over(&old, &conn);
            }
        } else {
            match self.store.register(conn.clone(), self.signer.pki_id()) {
                Registration::Registered { replaced } => {
                    if let Some(old) = replaced {
                        tracing::debug!(peer = %peer.pki_id, "our dial wins the simultaneous-dial tie-break");
                        self.hand_over(&old, &conn);
                    }
                }
                Registration::KeptExisting(existing) => {
                    tracing::debug!(peer = %peer.pki_id, "inbound connection appeared during dial and wins the tie-break, closing ours");
                    conn.close();
                    return Ok(existing);
                }
            }
        }
        record_opened(self);
        tracing::debug!(peer = %conn.pki_id(), endpoint = %peer.endpoint, "outbound connection registered");
        self.spawn(run_reader(self.clone(), conn.clone(), inbound));
        Ok(conn)
    }

    /// A dialled peer with another PKI-ID than expected: the same org means an identity switch
    /// (the old PKI-ID is published), another org fails the connection.
    fn check_expected(
        &self,
        peer: &RemotePeer,
        hs: client::ClientHandshake,
    ) -> Result<client::ClientHandshake, HandshakeError> {
        if hs.remote.pki_id == peer.pki_id {
            return Ok(hs);
        }
        let old_org = self
            .known_identities
            .lock()
            .get(&peer.pki_id)
            .map(|i| i.mspid.clone());
        if old_org.as_deref() == Some(hs.remote.identity.mspid.as_str()) {
            tracing::info!(old = %peer.pki_id, new = %hs.remote.pki_id, "peer changed its identity");
            if self.identity_switch_tx.try_send(peer.pki_id).is_err() {
                Stats::incr(&self.stats.identity_switches_dropped);
            }
            return Ok(hs);
        }
        hs.lanes.close();
        Err(HandshakeError::AuthenticationFailure {
            expected: peer.pki_id,
            actual: hs.remote.pki_id,
        })
    }
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
