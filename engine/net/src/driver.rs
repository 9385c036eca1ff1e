//! The driver: one tokio task that owns the sans-IO [`Node`] (no lock around it) and connects it
//! to [`Comm`], in the way quinn's `EndpointDriver` pumps `quinn-proto`.
//!
//! ```text
//!  comm's inbound queue (verified; pass-through subs ◄─) ┐
//!  one timer: node.poll_timeout(), commit batch due      │            poll_transmit ─► comm.send
//!  requests from GossipHandle (bounded mpsc)             ├─► Node ─►  poll_io ─► IO tasks (JoinSet)
//!  presumed-dead / identity-switch notices               │            poll_event ─► Fanout
//!  finished IO tasks (handshake, probe, block reads)    │            (blocks ─► committer)
//!  heights the committer reports (with a ledger)        ─┘
//! ```
//!
//! Work per wake-up is bounded ([`INBOUND_BURST_LEN_MAX`], [`REQUEST_BURST_LEN_MAX`]); a wake-up
//! that hit a bound yields to the runtime before the next one. After every `handle_*` call the
//! outputs are drained in the node's order (transmits, IO, events).
//!
//! With a [`Ledger`](crate::ledger::Ledger) (module [`ledger`](crate::ledger)), each block the node
//! delivers goes to the committer thread ([`commit`](crate::commit)) as well as to subscribers,
//! the heights it commits come back as `UpdateLedgerHeight`, `ReadBlocks` is served from the
//! ledger, and a `JoinChan` is followed by the ledger's height for the channel.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

use super::clock;
use super::comm::{Comm, RemotePeer as CommPeer};
use super::fanout::Fanout;
use super::inbound::Inbound;
use crate::commit::{LedgerLink, serve_blocks};
use crate::crypto::Identity;
use crate::event::{ChannelConfig, Command, Event, IoRequest, IoResult, Transmit};
use crate::histogram::Histogram;
use crate::ingress::{IdentityStore, ReceivedMessage, UNUSED_THRESHOLD_DEFAULT, Verified};
use crate::node::Node;
use crate::types::{OrgId, PkiId};
use crate::wire::ContentKind;

/// Inbound messages handled per wake-up before the driver yields.
pub const INBOUND_BURST_LEN_MAX: usize = 256;
/// Handle requests handled per wake-up before the driver yields.
pub const REQUEST_BURST_LEN_MAX: usize = 64;
/// Requests queued from handles to the driver (`GossipHandle` calls wait for room).
pub const REQUEST_QUEUE_LEN_MAX: usize = 1_024;
/// Handshakes, probes and identity-learning handshakes in flight at once; more are answered as
/// failed right away (the node retries on its own schedule).
pub const IO_TASKS_LEN_MAX: usize = 128;
/// Refused-IO results waiting to be fed back to the node; more are dropped (counted).
const DEFERRED_RESULTS_LEN_MAX: usize = 1_024;
/// The timer when the node has no deadline.
const IDLE_WAKE_INTERVAL: Duration = Duration::from_secs(3_600);
/// How often, at most, a timer wake-up purges the identity store of expired identities and of
/// those unused for [`UNUSED_THRESHOLD_DEFAULT`] (Fabric checks unused ones every tenth of it).
const IDENTITY_PURGE_INTERVAL: Duration = Duration::from_secs(1);

pub use crate::driver_stats::DriverStats;

/// What a query closure sees on the driver task.
pub(crate) struct QueryCtx<'a> {
    pub(crate) node: &'a Node,
    pub(crate) comm: &'a Comm,
    pub(crate) identities: &'a IdentityStore,
    pub(crate) self_identity: &'a Identity,
    pub(crate) stats: DriverStats,
}

/// A read-only question answered on the driver task.
pub(crate) type Query = Box<dyn FnOnce(&QueryCtx<'_>) + Send>;

/// What a [`GossipHandle`](super::GossipHandle) asks of the driver.
pub(crate) enum Request {
    Command(Box<Command>),
    /// `JoinChan`, then `UpdateLedgerHeight` at `height` (the ledger's, read by the handle) with
    /// no input in between.
    JoinChan {
        config: Box<ChannelConfig>,
        height: Option<u64>,
    },
    Query(Query),
    Stop(oneshot::Sender<()>),
}

/// What an IO task reports.
enum IoOutcome {
    Result(IoResult),
    /// An unidentified transmit was handed to comm (or dropped: the handshake failed).
    Sent,
}

/// A hook on the transmit path, above the socket: called for each message to each peer before it
/// is handed to comm; `false` drops it. For fault injection in benchmarks (`gossip-node
/// --fault-drop-share`); the filter counts what it drops.
pub type TransmitFilter = Box<dyn FnMut(&Transmit) -> bool + Send>;

/// Everything the driver task owns.
pub(crate) struct Driver {
    pub(crate) node: Node,
    pub(crate) comm: Arc<Comm>,
    pub(crate) inbound: Inbound,
    pub(crate) requests: mpsc::Receiver<Request>,
    pub(crate) presumed_dead: Option<mpsc::Receiver<PkiId>>,
    pub(crate) identity_switches: Option<mpsc::Receiver<PkiId>>,
    pub(crate) fanout: Arc<Fanout>,
    pub(crate) identities: Arc<IdentityStore>,
    pub(crate) self_identity: Identity,
    io_tasks: JoinSet<IoOutcome>,
    deferred: VecDeque<IoResult>,
    stats: DriverStats,
    transmit_filter: Option<TransmitFilter>,
    ledger: Option<LedgerLink>,
    /// When the timer next purges the identity store.
    identity_purge_at: crate::time::Instant,
    /// How long the node took over each inbound message (its outputs handed on included).
    handle_time: Histogram,
    /// Warns ahead of this peer's own certificate expiry.
    own_cert: crate::own_cert::OwnCertWatch,
}

/// Whether the driver feeds a received message to the node: everything but handshakes, empty
/// messages and private data (those go to pass-through subscribers only).
pub(crate) fn is_for_node(m: &ReceivedMessage) -> bool {
    !matches!(
        m.kind,
        ContentKind::Conn
            | ContentKind::Empty
            | ContentKind::None
            | ContentKind::PrivateReq
            | ContentKind::PrivateRes
            | ContentKind::PrivateData
    )
}

/// Why the loop ended.
enum Exit {
    Stop(Option<oneshot::Sender<()>>),
    CommClosed,
}

/// One wake-up's cause (a stack value, built once per wake-up: its size does not matter).
#[allow(clippy::large_enum_variant)]
enum Wake {
    Inbound(Option<Verified<ReceivedMessage>>),
    Timer,
    Request(Option<Request>),
    PresumedDead(PkiId),
    IdentitySwitch(PkiId),
    Io(Result<IoOutcome, tokio::task::JoinError>),
    Committed,
}

async fn recv_opt(rx: &mut Option<mpsc::Receiver<PkiId>>) -> PkiId {
    match rx {
        Some(r) => match r.recv().await {
            Some(p) => p,
            None => {
                *rx = None;
                std::future::pending().await
            }
        },
        None => std::future::pending().await,
    }
}

async fn committed_opt(ledger: &Option<LedgerLink>) {
    match ledger {
        Some(l) => l.committed().await,
        None => std::future::pending().await,
    }
}

impl Driver {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        node: Node,
        comm: Arc<Comm>,
        inbound: Inbound,
        requests: mpsc::Receiver<Request>,
        fanout: Arc<Fanout>,
        identities: Arc<IdentityStore>,
        self_identity: Identity,
    ) -> Driver {
        let presumed_dead = comm.presumed_dead();
        let identity_switches = comm.identity_switches();
        let own_cert = crate::own_cert::OwnCertWatch::new(self_identity.cert.not_after_unix_s);
        Driver {
            own_cert,
            node,
            comm,
            inbound,
            requests,
            presumed_dead,
            identity_switches,
            fanout,
            identities,
            self_identity,
            io_tasks: JoinSet::new(),
            deferred: VecDeque::new(),
            identity_purge_at: crate::time::Instant::ZERO,
            handle_time: Histogram::default(),
            stats: DriverStats::default(),
            transmit_filter: None,
            ledger: None,
        }
    }

    /// Installs a [`TransmitFilter`].
    pub(crate) fn with_transmit_filter(mut self, filter: Option<TransmitFilter>) -> Driver {
        self.transmit_filter = filter;
        self
    }

    /// Connects a ledger (its committer thread is running).
    pub(crate) fn with_ledger(mut self, ledger: Option<LedgerLink>) -> Driver {
        self.ledger = ledger;
        self
    }

    /// Runs until stopped (a `Stop` request, every handle dropped, or comm closed), then stops
    /// comm, aborts IO tasks and ends every subscription.
    pub(crate) async fn run(mut self) {
        // Node::new queued the bootstrap handshakes.
        self.drain();
        let exit = loop {
            while let Some(result) = self.deferred.pop_front() {
                self.node.handle_io(result, clock::now());
                self.drain();
            }
            let now = clock::now();
            let commit_due = self.ledger.as_ref().and_then(LedgerLink::flush_due_at);
            let delay = self
                .node
                .poll_timeout()
                .map_or(IDLE_WAKE_INTERVAL, |d| d.saturating_duration_since(now))
                .min(commit_due.map_or(Duration::MAX, |d| d.saturating_duration_since(now)));
            let wake = {
                let Driver {
                    inbound,
                    requests,
                    presumed_dead,
                    identity_switches,
                    io_tasks,
                    ledger,
                    ..
                } = &mut self;
                tokio::select! {
                    m = inbound.recv() => Wake::Inbound(m),
                    () = tokio::time::sleep(delay) => Wake::Timer,
                    r = requests.recv() => Wake::Request(r),
                    p = recv_opt(presumed_dead) => Wake::PresumedDead(p),
                    p = recv_opt(identity_switches) => Wake::IdentitySwitch(p),
                    Some(r) = io_tasks.join_next(), if !io_tasks.is_empty() => Wake::Io(r),
                    () = committed_opt(ledger) => Wake::Committed,
                }
            };
            self.sync_identities();
            let limited = match wake {
                Wake::Inbound(None) => break Exit::CommClosed,
                Wake::Inbound(Some(first)) => self.handle_inbound(first),
                Wake::Timer => {
                    let now = clock::now();
                    if let Some(ledger) = self.ledger.as_mut()
                        && ledger.flush_due_at().is_some_and(|d| d <= now)
                    {
                        ledger.flush();
                    }
                    if self.node.poll_timeout().is_none_or(|d| d <= now) {
                        self.stats.timeouts += 1;
                        self.purge_identities();
                        self.node.handle_timeout(now);
                        self.drain();
                    }
                    false
                }
                Wake::Request(None) => break Exit::Stop(None),
                Wake::Request(Some(first)) => match self.handle_requests(first) {
                    Ok(limited) => limited,
                    Err(ack) => break Exit::Stop(Some(ack)),
                },
                Wake::PresumedDead(p) => self.io_result(IoResult::PresumedDead(p)),
                Wake::IdentitySwitch(p) => self.io_result(IoResult::IdentitySwitch(p)),
                Wake::Io(Ok(IoOutcome::Result(r))) => self.io_result(r),
                Wake::Io(Ok(IoOutcome::Sent)) => false,
                Wake::Io(Err(_)) => {
                    self.stats.io_tasks_failed += 1;
                    false
                }
                Wake::Committed => {
                    self.acknowledge_commits();
                    false
                }
            };
            if limited {
                self.stats.bursts_limited += 1;
                tokio::task::yield_now().await;
            }
        };
        self.shutdown(exit).await;
    }

    async fn shutdown(mut self, exit: Exit) {
        if matches!(exit, Exit::CommClosed) {
            tracing::info!(target: "gossip.service", "comm closed, driver stopping");
        }
        self.comm.stop().await;
        self.io_tasks.shutdown().await;
        if let Some(ledger) = self.ledger.as_mut() {
            // Blocks delivered before the stop are committed before it completes.
            ledger.stop().await;
        }
        self.fanout.close();
        self.requests.close();
        drop(self.requests);
        if let Exit::Stop(Some(ack)) = exit {
            let _ = ack.send(());
        }
    }

    /// Fabric's identity purges (expired, unused), at most every [`IDENTITY_PURGE_INTERVAL`]; the
    /// node learns of them at the next [`Self::sync_identities`].
    fn purge_identities(&mut self) {
        let now = clock::now();
        if now < self.identity_purge_at {
            return;
        }
        self.identity_purge_at = now + IDENTITY_PURGE_INTERVAL;
        self.own_cert.check(now);
        for pki_id in self.identities.purge_expired(now) {
            // Once per identity: it is gone from the store (and refused if it comes back).
            tracing::info!(target: "gossip.identity", %pki_id,
                "identity expired: purged, its member cut off and its connection closed");
        }
        self.identities.purge_unused(now, UNUSED_THRESHOLD_DEFAULT);
        self.sync_identities();
    }

    /// Hands the node every change of the identity store since the last call (the node holds no
    /// reference to the store: identity changes are inputs).
    fn sync_identities(&mut self) {
        let (identities, node) = (&self.identities, &mut self.node);
        // Called before every inbound message: read the clock only when there is a change.
        let mut now = None;
        identities.take_changes(|change| {
            node.handle_identity(change, *now.get_or_insert_with(clock::now));
        });
    }

    /// `first` and up to [`INBOUND_BURST_LEN_MAX`] - 1 more queued messages; `true` when the
    /// bound was hit.
    fn handle_inbound(&mut self, first: Verified<ReceivedMessage>) -> bool {
        let mut next = Some(first);
        let mut handled = 0;
        while let Some(m) = next {
            // Pass-through subscribers get it from here, without waiting (full queues drop and
            // count); the node gets what it acts on.
            self.fanout.offer(&m);
            handled += 1;
            if is_for_node(&m) {
                // Identities that this message's checks stored reach the node before it.
                self.sync_identities();
                let started = crate::clock::stopwatch();
                self.node.handle_message(m, clock::now());
                self.drain();
                self.handle_time.observe_duration(started.elapsed());
            }
            if handled >= INBOUND_BURST_LEN_MAX {
                break;
            }
            next = self.inbound.try_recv();
        }
        self.stats.messages_handled += handled as u64;
        handled >= INBOUND_BURST_LEN_MAX
    }

    /// `first` and up to [`REQUEST_BURST_LEN_MAX`] - 1 more; `Err(ack)` on a stop request.
    fn handle_requests(&mut self, first: Request) -> Result<bool, oneshot::Sender<()>> {
        let mut next = Some(first);
        let mut handled = 0;
        while let Some(request) = next {
            match request {
                Request::Command(cmd) => {
                    self.stats.commands += 1;
                    self.node.handle_command(*cmd, clock::now());
                    self.drain();
                }
                Request::JoinChan { config, height } => self.join_chan(*config, height),
                Request::Query(query) => query(&QueryCtx {
                    node: &self.node,
                    comm: &self.comm,
                    identities: &self.identities,
                    self_identity: &self.self_identity,
                    stats: self.stats(),
                }),
                Request::Stop(ack) => return Err(ack),
            }
            handled += 1;
            if handled >= REQUEST_BURST_LEN_MAX {
                break;
            }
            next = self.requests.try_recv().ok();
        }
        Ok(handled >= REQUEST_BURST_LEN_MAX)
    }

    /// `JoinChan`, followed with a ledger by `UpdateLedgerHeight` at the ledger's height (or a
    /// higher one acknowledged already), so delivery resumes where the ledger stands.
    fn join_chan(&mut self, config: ChannelConfig, height: Option<u64>) {
        self.stats.commands += 1;
        let channel = config.channel.clone();
        let now = clock::now();
        self.node.handle_command(Command::JoinChan(config), now);
        let height = self
            .ledger
            .as_mut()
            .and_then(|l| l.join_height(&channel, height));
        if let Some(height) = height {
            self.stats.ledger_heights_acknowledged += 1;
            self.node
                .handle_command(Command::UpdateLedgerHeight { channel, height }, now);
        }
        self.drain();
    }

    /// Acknowledges the heights the committer reported.
    fn acknowledge_commits(&mut self) {
        let Some(ledger) = self.ledger.as_mut() else {
            return;
        };
        let heights = ledger.take_heights();
        let now = clock::now();
        for (channel, height) in heights {
            self.stats.ledger_heights_acknowledged += 1;
            self.node
                .handle_command(Command::UpdateLedgerHeight { channel, height }, now);
        }
        self.drain();
    }

    fn io_result(&mut self, result: IoResult) -> bool {
        self.node.handle_io(result, clock::now());
        self.drain();
        false
    }

    fn stats(&self) -> DriverStats {
        let mut stats = DriverStats {
            events_dropped: self.fanout.dropped.load(Ordering::Relaxed),
            pass_through_dropped: self.fanout.pass_through_dropped.load(Ordering::Relaxed),
            handle_seconds: self.handle_time.snapshot(),
            ..self.stats.clone()
        };
        if let Some(ledger) = &self.ledger {
            ledger.counters.fill(&mut stats);
            stats.ledger_commit_waiting_len = ledger.waiting_len() as u64;
        }
        stats
    }

    /// Drains the node's outputs in its order: transmits, IO, events.
    fn drain(&mut self) {
        while let Some(t) = self.node.poll_transmit() {
            self.transmit(t);
        }
        while let Some(io) = self.node.poll_io() {
            self.start_io(io);
        }
        while let Some(event) = self.node.poll_event() {
            // A block is remembered as seen only once its channel took it (never on arrival).
            if let Event::BlockReceived {
                channel, seq_num, ..
            } = &event
            {
                self.comm.mark_block_seen(channel, *seq_num);
            }
            if let (
                Some(ledger),
                Event::Block {
                    channel, payload, ..
                },
            ) = (&mut self.ledger, &event)
            {
                ledger.submit(channel, payload);
            }
            self.fanout.publish(&event);
        }
    }

    fn transmit(&mut self, t: Transmit) {
        if let Some(filter) = self.transmit_filter.as_mut()
            && !filter(&t)
        {
            return;
        }
        self.stats.transmits += 1;
        if let Some(pki_id) = t.to.pki_id {
            let peer = CommPeer {
                endpoint: t.to.endpoint,
                pki_id,
            };
            return self
                .comm
                .send_on(t.lane, t.envelope, std::slice::from_ref(&peer));
        }
        // Not produced by the node today (every target it addresses is identified), but the type
        // allows it: learn the identity with a probe handshake, then send.
        self.stats.transmits_unidentified += 1;
        if self.io_tasks.len() >= IO_TASKS_LEN_MAX {
            self.stats.io_refused += 1;
            return;
        }
        let comm = Arc::clone(&self.comm);
        self.stats.io_started += 1;
        self.io_tasks.spawn(async move {
            let endpoint = t.to.endpoint;
            match comm.handshake(&endpoint, None).await {
                Ok(identity) => {
                    let peer = CommPeer {
                        endpoint,
                        pki_id: identity.pki_id,
                    };
                    comm.send_on(t.lane, t.envelope, std::slice::from_ref(&peer));
                }
                Err(e) => {
                    tracing::debug!(%endpoint, error = %e, "unidentified transmit dropped");
                }
            }
            IoOutcome::Sent
        });
    }

    fn start_io(&mut self, io: IoRequest) {
        if let IoRequest::CloseConn(pki_id) = io {
            return self.comm.close_conn(&pki_id);
        }
        if self.io_tasks.len() >= IO_TASKS_LEN_MAX {
            self.stats.io_refused += 1;
            let refused = match io {
                IoRequest::Handshake { token, .. } => IoResult::Handshake {
                    token,
                    result: Err("too many IO tasks".to_owned()),
                },
                IoRequest::Probe { pki_id, .. } => IoResult::Probe {
                    pki_id,
                    alive: false,
                },
                IoRequest::CloseConn(_) => return,
                IoRequest::ReadBlocks { token, .. } => IoResult::Blocks {
                    token,
                    blocks: Vec::new(),
                },
            };
            if self.deferred.len() >= DEFERRED_RESULTS_LEN_MAX {
                self.stats.io_results_dropped += 1;
            } else {
                self.deferred.push_back(refused);
            }
            return;
        }
        self.stats.io_started += 1;
        let comm = Arc::clone(&self.comm);
        match io {
            IoRequest::Handshake { endpoint, token } => self.io_tasks.spawn(async move {
                let result = comm
                    .handshake(&endpoint, None)
                    .await
                    .map(|identity| (identity.pki_id, OrgId::from(identity.mspid.as_str())))
                    .map_err(|e| e.to_string());
                IoOutcome::Result(IoResult::Handshake { token, result })
            }),
            IoRequest::Probe { pki_id, endpoint } => self.io_tasks.spawn(async move {
                let alive = comm.probe(&endpoint).await.is_ok();
                IoOutcome::Result(IoResult::Probe { pki_id, alive })
            }),
            IoRequest::CloseConn(_) => return,
            IoRequest::ReadBlocks {
                channel,
                start_seq,
                end_seq,
                token,
            } => {
                let read = serve_blocks(self.ledger.as_ref(), channel, start_seq, end_seq, token);
                self.io_tasks
                    .spawn(async move { IoOutcome::Result(read.await) })
            }
        };
    }
}
