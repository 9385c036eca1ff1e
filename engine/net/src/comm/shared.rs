//! [`Shared`]: the state every task of one comm shares, and what those tasks do with it (queue on
//! a connection, hand a replaced connection's envelopes over, dial and register a connection).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use gossip_proto::gossip::Envelope;
use parking_lot::Mutex;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::{CommError, REPLACED_RETRIES_MAX, RemotePeer};
use crate::client::{
    self, client_handshake, outbound_conn, record_handshake_failure, record_opened,
};
use crate::config::CommConfig;
use crate::conn::{Conn, run_reader};
use crate::conn_store::{ConnStore, Registration};
use crate::crypto::{Identity, LocalSigner};
use crate::handshake::HandshakeError;
use crate::ingress::Ingress;
use crate::lanes::{EnqueueError, Lane};
use crate::pool::VerifierPool;
use crate::queue::AsyncQueue;
use crate::stats::Stats;
use crate::tls::TlsState;
use crate::types::PkiId;

/// Remote identities remembered from handshakes (for the same-org identity-switch check).
const KNOWN_IDENTITIES_LEN_MAX: usize = 4096;

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
    pub(super) runtime: tokio::runtime::Handle,
    pub(super) presumed_dead_tx: mpsc::Sender<PkiId>,
    pub(super) identity_switch_tx: mpsc::Sender<PkiId>,
    pub(super) known_identities: Mutex<HashMap<PkiId, Identity>>,
    /// Repeated warnings about the same remote are logged once a minute.
    pub(crate) warn_limiter: crate::warn_limit::WarnLimiter,
    pub(super) next_conn_id: AtomicU64,
    pub(super) stopped: AtomicBool,
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
        let now = crate::clock::now();
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
