//! [`GossipHandle`]: the public API of a running gossip instance (Fabric's `Gossip` interface,
//! spec 3.3). It starts [`Comm`] and the [driver](super::driver) task that owns the node, and
//! talks to that task over a bounded request queue; it never touches the node itself.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use gossip_proto::gossip::{GossipMessage, Properties};
use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::clock;
use super::comm::{Comm, CommError, CommParams};
use super::commit::{LedgerLink, read_height};
use super::driver::{
    Driver, DriverStats, QueryCtx, REQUEST_QUEUE_LEN_MAX, Request, TransmitFilter,
};
use super::fanout::{AcceptPredicate, Accepted, Fanout, SubscribeError};
use super::stats::CommStats;
use super::tls::TlsMaterial;
use crate::config::{CommConfig, ConfigError, GossipConfig};
use crate::crypto::{Identity, LocalSigner, MspManager};
use crate::event::{ChannelConfig, Command, Event, RemotePeer};
use crate::ingress::{BlockVerifier, Ingress, IngressConfig, NestedSignerPolicy};
use crate::ledger::Ledger;
use crate::node::{Node, NodeParams, NodeStats};
use crate::types::{NetworkMember, OrgId, PkiId};

/// The comm half of [`GossipParams`] (a [`CommParams`] without the shared parts).
#[derive(Clone, Debug)]
pub struct CommSettings {
    /// Timeouts, buffer lengths, message limits, keepalive.
    pub config: CommConfig,
    /// Where to listen; port 0 picks a free port (see [`GossipHandle::local_addr`]).
    pub listen: SocketAddr,
    /// Mutual TLS material; `None` runs plaintext.
    pub tls: Option<TlsMaterial>,
}

/// The node half of [`GossipParams`] (a [`NodeParams`] without the shared parts).
#[derive(Clone, Debug)]
pub struct NodeSettings {
    /// `peer.gossip.*`.
    pub config: GossipConfig,
    /// `peer.gossip.externalEndpoint`; may be empty (then this peer is not known outside its org).
    pub external_endpoint: String,
    /// `peer.gossip.endpoint`; empty means the bound listen address.
    pub internal_endpoint: String,
    /// `peer.gossip.bootstrap`: same-org endpoints.
    pub bootstrap: Vec<String>,
    /// Seed of the node's RNG.
    pub rng_seed: u64,
}

/// What [`GossipHandle::start`] needs.
#[derive(Clone, Debug)]
pub struct GossipParams {
    /// Comm settings.
    pub comm: CommSettings,
    /// Node settings.
    pub node: NodeSettings,
    /// This peer's identity and key (comm and node share it).
    pub signer: Arc<LocalSigner>,
    /// The MSPs that validate identities and provide the TLS roots.
    pub msp: Arc<MspManager>,
    /// Ingress limits. [`GossipParams::ingress_config`] gives the node's (nested items with an
    /// unknown signer dropped, as Fabric's discovery does).
    pub ingress: IngressConfig,
}

/// The optional parts of a gossip instance ([`GossipHandle::start_with`]).
#[derive(Default)]
pub struct StartOptions {
    /// A filter on the transmit path (fault injection).
    pub transmit_filter: Option<TransmitFilter>,
    /// The channels' block validation policy: every block is authenticated with it before it is
    /// stored, forwarded or delivered, unless `skip_block_verification` is set. `None`: blocks
    /// are taken on their structure alone (header number and data hash).
    pub block_verifier: Option<Arc<dyn BlockVerifier>>,
    /// Where delivered blocks are committed and state requests are served from (module
    /// [`ledger`](crate::ledger)). With one, the node's `state.commit_backlog_len_max` is set to
    /// twice `state_block_buffer_len` and the driver acknowledges every commit; the embedder
    /// should not call [`GossipHandle::update_ledger_height`] itself. `None`: a delivered block
    /// counts as committed and state requests are answered with no blocks.
    pub ledger: Option<Arc<dyn Ledger>>,
}

impl std::fmt::Debug for StartOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StartOptions")
            .field("transmit_filter", &self.transmit_filter.is_some())
            .field("block_verifier", &self.block_verifier)
            .field("ledger", &self.ledger.is_some())
            .finish()
    }
}

impl GossipParams {
    /// The ingress configuration a gossip node uses: defaults with
    /// [`NestedSignerPolicy::DropItem`].
    pub fn ingress_config() -> IngressConfig {
        IngressConfig {
            nested_signer_policy: NestedSignerPolicy::DropItem,
            ..IngressConfig::default()
        }
    }
}

/// Why [`GossipHandle::start`] failed; nothing is left running.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The gossip or ingress configuration is invalid.
    #[error("config: {0}")]
    Config(#[from] ConfigError),
    /// Comm could not start (bind, TLS, verifier pool).
    #[error("comm: {0}")]
    Comm(#[from] CommError),
    /// The ledger's committer thread could not start.
    #[error("ledger committer thread: {0}")]
    Ledger(#[source] std::io::Error),
}

/// Why a [`GossipHandle`] call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum GossipError {
    /// The instance is stopped; the call had no effect.
    #[error("gossip stopped")]
    Stopped,
    /// The subscription was refused.
    #[error("subscribe: {0}")]
    Subscribe(#[from] SubscribeError),
}

/// A known peer's identity (Fabric's `PeerIdentityInfo`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerIdentityInfo {
    /// The PKI-ID.
    pub pki_id: PkiId,
    /// The org (MSP id).
    pub org: OrgId,
    /// The identity.
    pub identity: Arc<Identity>,
}

/// Every counter of one instance.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GossipStats {
    /// The node's counters.
    pub node: NodeStats,
    /// The comm layer's counters.
    pub comm: CommStats,
    /// The driver's counters.
    pub driver: DriverStats,
}

struct Inner {
    requests: mpsc::Sender<Request>,
    fanout: Arc<Fanout>,
    pki_id: PkiId,
    local_addr: SocketAddr,
    driver: Mutex<Option<JoinHandle<()>>>,
    ledger: Option<Arc<dyn Ledger>>,
}

/// A running gossip instance: cloneable, `Send + Sync`. The instance stops on
/// [`stop`](Self::stop), or when every clone is dropped.
#[derive(Clone)]
pub struct GossipHandle {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for GossipHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GossipHandle")
            .field("pki_id", &self.inner.pki_id)
            .field("local_addr", &self.inner.local_addr)
            .finish()
    }
}

impl GossipHandle {
    /// Starts comm (listening) and the driver task. Must run inside a tokio runtime.
    pub async fn start(params: GossipParams) -> Result<GossipHandle, StartError> {
        Self::start_with_transmit_filter(params, None).await
    }

    /// [`start`](Self::start) with a [`TransmitFilter`] on the transmit path (fault injection).
    pub async fn start_with_transmit_filter(
        params: GossipParams,
        transmit_filter: Option<TransmitFilter>,
    ) -> Result<GossipHandle, StartError> {
        Self::start_with(
            params,
            StartOptions {
                transmit_filter,
                ..StartOptions::default()
            },
        )
        .await
    }

    /// [`start`](Self::start) with the optional parts of a gossip instance.
    pub async fn start_with(
        mut params: GossipParams,
        options: StartOptions,
    ) -> Result<GossipHandle, StartError> {
        let StartOptions {
            transmit_filter,
            block_verifier,
            ledger,
        } = options;
        params.node.config.validate()?;
        params.ingress.validate()?;
        // With a ledger the driver acknowledges commits, and the node holds back delivery at
        // Fabric's blocking bound (spec 3.9, addPayload).
        if ledger.is_some() {
            let config = &mut params.node.config;
            config.state.commit_backlog_len_max = 2 * config.state_block_buffer_len;
        }
        let policy = commit_policy(&params.node.config);
        let ledger_link = ledger
            .clone()
            .map(|l| LedgerLink::start(l, policy))
            .transpose()
            .map_err(StartError::Ledger)?;
        let mut ingress = Ingress::with_msp(params.ingress, Arc::clone(&params.msp));
        // `skipBlockVerification` turns authentication off even where a policy is given.
        if let Some(verifier) = block_verifier
            && !params.node.config.skip_block_verification
        {
            ingress = ingress.with_block_verifier(verifier);
        }
        let ingress = Arc::new(ingress);
        let identities = Arc::clone(ingress.identities());
        let comm = Arc::new(
            Comm::start(CommParams {
                config: params.comm.config,
                listen: params.comm.listen,
                signer: Arc::clone(&params.signer),
                ingress,
                tls: params.comm.tls,
            })
            .await?,
        );
        let local_addr = comm.local_addr();
        let internal_endpoint = if params.node.internal_endpoint.is_empty() {
            local_addr.to_string()
        } else {
            params.node.internal_endpoint
        };
        let inbound = comm.inbound();
        let self_identity = params.signer.identity().clone();
        // Our own identity is pinned: never evicted or purged (the store is empty: no refusal).
        if let Err(e) = identities.put_own(self_identity.clone(), clock::now()) {
            tracing::warn!(error = %e, "own identity not stored");
        }
        let node = Node::new(
            NodeParams {
                config: params.node.config,
                external_endpoint: params.node.external_endpoint,
                internal_endpoint,
                bootstrap: params.node.bootstrap,
                signer: params.signer,
                rng_seed: params.node.rng_seed,
            },
            clock::now(),
        );
        let pki_id = node.pki_id();
        let (tx, rx) = mpsc::channel(REQUEST_QUEUE_LEN_MAX);
        let fanout = Arc::new(Fanout::default());
        let driver = Driver::new(
            node,
            comm,
            inbound,
            rx,
            Arc::clone(&fanout),
            identities,
            self_identity,
        )
        .with_transmit_filter(transmit_filter)
        .with_ledger(ledger_link);
        let task = tokio::spawn(driver.run());
        tracing::info!(target: "gossip.service", %pki_id, %local_addr, "gossip started");
        Ok(GossipHandle {
            inner: Arc::new(Inner {
                requests: tx,
                fanout,
                pki_id,
                local_addr,
                driver: Mutex::new(Some(task)),
                ledger,
            }),
        })
    }

    async fn request(&self, request: Request) -> Result<(), GossipError> {
        self.inner
            .requests
            .send(request)
            .await
            .map_err(|_| GossipError::Stopped)
    }

    async fn command(&self, command: Command) -> Result<(), GossipError> {
        self.request(Request::Command(Box::new(command))).await
    }

    async fn query<T, F>(&self, f: F) -> Result<T, GossipError>
    where
        T: Send + 'static,
        F: FnOnce(&QueryCtx<'_>) -> T + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let query = Box::new(move |ctx: &QueryCtx<'_>| {
            let _ = tx.send(f(ctx));
        });
        self.request(Request::Query(query)).await?;
        rx.await.map_err(|_| GossipError::Stopped)
    }

    /// Gossips a message to peers (Fabric's `Gossip`): a data message is NoopSigned, stored in its
    /// channel and delivered locally; anything else is signed and emitted.
    pub async fn gossip(&self, message: GossipMessage) -> Result<(), GossipError> {
        self.command(Command::Gossip(message)).await
    }

    /// The first block number `channel` takes now ([`Node::admitted_end`]); `None` when not
    /// joined. A block gossiped at or beyond it is dropped.
    pub async fn admitted_end(&self, channel: Bytes) -> Result<Option<u64>, GossipError> {
        self.query(move |ctx| ctx.node.admitted_end(&channel)).await
    }

    /// Sends a message directly to peers (Fabric's `Send`).
    pub async fn send(
        &self,
        message: GossipMessage,
        peers: Vec<RemotePeer>,
    ) -> Result<(), GossipError> {
        self.command(Command::Send { message, peers }).await
    }

    /// Joins (or reconfigures) a channel (Fabric's `JoinChan`). With a ledger, the node then
    /// takes the ledger's height of the channel as its own (delivery resumes there); a height that
    /// cannot be read is logged, and the channel is joined at the node's own height.
    pub async fn join_chan(&self, config: ChannelConfig) -> Result<(), GossipError> {
        let height = match &self.inner.ledger {
            Some(ledger) => read_height(ledger, &config.channel).await,
            None => None,
        };
        self.request(Request::JoinChan {
            config: Box::new(config),
            height,
        })
        .await
    }

    /// Leaves a channel (Fabric's `LeaveChan`).
    pub async fn leave_chan(&self, channel: Bytes) -> Result<(), GossipError> {
        self.command(Command::LeaveChan(channel)).await
    }

    /// Publishes this peer's ledger height in a channel (Fabric's `UpdateLedgerHeight`). With a
    /// ledger ([`StartOptions::ledger`]) the driver does this after every commit.
    pub async fn update_ledger_height(
        &self,
        channel: Bytes,
        height: u64,
    ) -> Result<(), GossipError> {
        self.command(Command::UpdateLedgerHeight { channel, height })
            .await
    }

    /// Replaces this peer's alive-message metadata (Fabric's `UpdateMetadata`).
    pub async fn update_metadata(&self, metadata: Bytes) -> Result<(), GossipError> {
        self.command(Command::UpdateMetadata(metadata)).await
    }

    /// Replaces this peer's chaincodes in a channel's StateInfo (Fabric's
    /// `UpdateChaincodes`/`UpdateChannelMetadata`): `(name, version)` pairs.
    pub async fn update_channel_metadata(
        &self,
        channel: Bytes,
        chaincodes: Vec<(String, String)>,
    ) -> Result<(), GossipError> {
        self.command(Command::UpdateChaincodes {
            channel,
            chaincodes,
        })
        .await
    }

    /// Subscribes to messages (Fabric's `Accept`), each subscriber with a queue of
    /// [`SUBSCRIBER_QUEUE_LEN_MAX`](super::fanout::SUBSCRIBER_QUEUE_LEN_MAX) whose overflow is dropped and counted
    /// ([`DriverStats::events_dropped`], [`DriverStats::pass_through_dropped`]).
    ///
    /// `pass_through = false`: what the node delivers, as [`Accepted::Delivered`]: blocks in
    /// order ([`Event::Block`]) and leadership messages ([`Event::Leadership`]); `predicate` sees
    /// their message form (a data message, a leadership message).
    /// `pass_through = true`: every verified message from comm matching `predicate`, as
    /// [`Accepted::PassThrough`] (state transfer, private data, ...).
    pub fn accept<F>(
        &self,
        predicate: F,
        pass_through: bool,
    ) -> Result<mpsc::Receiver<Accepted>, GossipError>
    where
        F: Fn(&GossipMessage) -> bool + Send + Sync + 'static,
    {
        let predicate: AcceptPredicate = Arc::new(predicate);
        if !pass_through {
            return Ok(self.inner.fanout.subscribe_accept(predicate)?);
        }
        Ok(self.inner.fanout.subscribe_pass_through(predicate)?)
    }

    /// Every event of the node in order (blocks, membership, channel peers, leadership), on a
    /// queue of [`SUBSCRIBER_QUEUE_LEN_MAX`](super::fanout::SUBSCRIBER_QUEUE_LEN_MAX) whose overflow is dropped and counted.
    pub fn events(&self) -> Result<mpsc::Receiver<Event>, GossipError> {
        Ok(self.inner.fanout.subscribe_events()?)
    }

    /// Alive members (Fabric's `Peers`).
    pub async fn peers(&self) -> Result<Vec<NetworkMember>, GossipError> {
        self.query(|ctx| ctx.node.peers()).await
    }

    /// Dead members.
    pub async fn dead_peers(&self) -> Result<Vec<NetworkMember>, GossipError> {
        self.query(|ctx| ctx.node.dead_peers()).await
    }

    /// How many members are alive and dead now.
    pub async fn members_len(&self) -> Result<(usize, usize), GossipError> {
        self.query(|ctx| ctx.node.members_len()).await
    }

    /// Alive peers of a joined channel with their StateInfo properties (Fabric's
    /// `PeersOfChannel`).
    pub async fn peers_of_channel(
        &self,
        channel: Bytes,
    ) -> Result<Vec<(NetworkMember, Properties)>, GossipError> {
        self.query(move |ctx| ctx.node.peers_of_channel(&channel))
            .await
    }

    /// This peer as a member (Fabric's `SelfMembershipInfo`).
    pub async fn self_member(&self) -> Result<NetworkMember, GossipError> {
        self.query(|ctx| ctx.node.self_member()).await
    }

    /// The next block number a joined channel will deliver; `None` if not joined.
    pub async fn next_block_seq(&self, channel: Bytes) -> Result<Option<u64>, GossipError> {
        self.query(move |ctx| ctx.node.next_block_seq(&channel))
            .await
    }

    /// Whether this peer leads a joined channel now (its leader election's decision, or static
    /// `orgLeader` with election off; Fabric's `IsLeader`); `None` when not joined.
    pub async fn is_leader(&self, channel: Bytes) -> Result<Option<bool>, GossipError> {
        self.query(move |ctx| ctx.node.is_leader(&channel)).await
    }

    /// Fabric's `Yield` of a channel's leader election (the deliver client lost the orderer).
    pub async fn yield_leadership(&self, channel: Bytes) -> Result<(), GossipError> {
        self.command(Command::YieldLeadership(channel)).await
    }

    /// This peer and every alive member whose identity is known (Fabric's `IdentityInfo`).
    pub async fn identity_info(&self) -> Result<Vec<PeerIdentityInfo>, GossipError> {
        self.query(|ctx| {
            let now = clock::now();
            let me = Arc::new(ctx.self_identity.clone());
            let mut infos = vec![info_of(me)];
            for member in ctx.node.peers() {
                if let Some(identity) = ctx.identities.get(&member.pki_id, now) {
                    infos.push(info_of(identity));
                }
            }
            infos
        })
        .await
    }

    /// Validates identities against `msp` from now on (an MSP or CRL update: gossip-node re-reads
    /// its MSP folders on SIGHUP) and removes every stored identity that no longer validates
    /// (Fabric's `SuspectPeers`); returns their PKI-IDs. The node cuts those peers off (membership,
    /// channels, connections) at its next wake-up.
    pub async fn replace_msp(
        &self,
        msp: crate::crypto::MspManager,
    ) -> Result<Vec<PkiId>, GossipError> {
        let msp = Arc::new(msp);
        self.query(move |ctx| ctx.identities.replace_msp(msp, clock::now()))
            .await
    }

    /// Every joined channel with its height and its peers' highest (the operations endpoint's
    /// `gossip_state_height` and ledger-lag health check).
    pub async fn channel_summaries(
        &self,
    ) -> Result<Vec<gossip_core::node::ChannelSummary>, GossipError> {
        self.query(|ctx| ctx.node.channel_summaries()).await
    }

    /// Node, comm and driver counters.
    pub async fn stats(&self) -> Result<GossipStats, GossipError> {
        self.query(|ctx| GossipStats {
            node: ctx.node.stats(),
            comm: ctx.comm.stats(),
            driver: ctx.stats.clone(),
        })
        .await
    }

    /// The bound listen address.
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr
    }

    /// This peer's PKI-ID.
    pub fn pki_id(&self) -> PkiId {
        self.inner.pki_id
    }

    /// Stops the driver and comm and waits for them; every subscription ends. Idempotent; other
    /// clones see [`GossipError::Stopped`] afterwards.
    pub async fn stop(&self) {
        let (ack, acked) = oneshot::channel();
        if self.request(Request::Stop(ack)).await.is_ok() {
            let _ = acked.await;
        }
        let task = self.inner.driver.lock().take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

fn info_of(identity: Arc<Identity>) -> PeerIdentityInfo {
    PeerIdentityInfo {
        pki_id: identity.pki_id,
        org: OrgId::from(identity.mspid.as_str()),
        identity,
    }
}

/// The committer's grouping for a node with `config`: a batch goes after `state.commit_linger`,
/// or at once when it holds `state.blockBufferSize` blocks (half the unacknowledged bound).
fn commit_policy(config: &gossip_core::config::GossipConfig) -> crate::commit::CommitPolicy {
    crate::commit::CommitPolicy {
        linger: config.state.commit_linger,
        close_len: usize::try_from(config.state_block_buffer_len).unwrap_or(usize::MAX),
    }
}
