//! Engine configuration, mirroring Fabric's `peer.gossip.*` keys with Fabric's defaults (spec 4.1).
//! Units are in the field names or the types.

use std::time::Duration;

/// Timed emitter flushes per `maxPropagationBurstLatency` when `peer.gossip.emitIntervalMin` is
/// not set ([`GossipConfig::emitter_interval_min`]).
pub const EMIT_INTERVAL_DEFAULT_PER_PERIOD: u32 = 2;

/// Why a configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A length or count must be at least one.
    #[error("{0} must be at least 1")]
    Zero(&'static str),
    /// A timeout must be positive.
    #[error("{0} must be positive")]
    ZeroDuration(&'static str),
    /// Fabric's servers disconnect clients that ping more often than every 60 s.
    #[error("keepalive_interval below 60s would be refused by Fabric peers (too_many_pings)")]
    KeepaliveTooFrequent,
    /// `useLeaderElection` and `orgLeader` are both true (Fabric aborts on it).
    #[error(
        "Setting both orgLeader and useLeaderElection to true isn't supported, aborting execution"
    )]
    ElectionAndOrgLeader,
}

/// The protocol settings of `peer.gossip.*` (spec 4.1), with Fabric's defaults. Derived values
/// (expiry check interval, message TTLs) are methods, as in Fabric they are not configurable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GossipConfig {
    /// `propagatePeerNum`: fan-out per push (3).
    pub propagate_peer_num: usize,
    /// `propagateIterations`: pushes per message (1).
    pub propagate_iterations: u32,
    /// `maxPropagationBurstSize`: emitter length that forces a flush (10).
    pub max_propagation_burst_len: usize,
    /// `maxPropagationBurstLatency`: emitter flush period (10 ms).
    pub max_propagation_burst_latency: Duration,
    /// Not a Fabric setting (`peer.gossip.emitWhenIdle` in gossip-node's core.yaml, default
    /// true): the emitter sends a message at once when it emitted nothing for
    /// [`GossipConfig::emitter_interval_min`], instead of waiting for its next tick. `false` gives
    /// Fabric's fixed tick grid (`egress::emitter`, `engine/ALGORITHM.md`, "Leading-edge emitter").
    pub emit_when_idle: bool,
    /// Not a Fabric setting (`peer.gossip.emitIntervalMin`): with `emit_when_idle`, the least
    /// time between two emissions other than full bursts, and so the longest a message waits in
    /// the emitter. `None`: half of `max_propagation_burst_latency`
    /// ([`GossipConfig::emitter_interval_min`]).
    pub emit_interval_min: Option<Duration>,
    /// `maxBlockCountToStore`: in-memory block window per channel (10).
    pub max_block_count_to_store: u64,
    /// `state.blockBufferSize`: how far past the ledger height a gossiped block may wait for its
    /// predecessors (20). A block at `height + state_block_buffer_len` or beyond is dropped, as
    /// Fabric's state provider drops it in non-blocking mode; this also bounds the blocks held
    /// per channel while a gap lasts.
    pub state_block_buffer_len: u64,
    /// `pullInterval`: pull rounds and discovery sync period (4 s).
    pub pull_interval: Duration,
    /// `pullPeerNum`: peers per pull round, membership sync and StateInfo pull (3).
    pub pull_peer_num: usize,
    /// `requestStateInfoInterval` (4 s).
    pub request_state_info_interval: Duration,
    /// `publishStateInfoInterval` (4 s).
    pub publish_state_info_interval: Duration,
    /// `publishCertPeriod`: alive messages embed the identity this long after start (10 s).
    pub publish_cert_period: Duration,
    /// `aliveTimeInterval`: heartbeat period (5 s).
    pub alive_time_interval: Duration,
    /// `aliveExpirationTimeout`: silence after which a member is dead (25 s).
    pub alive_expiration_timeout: Duration,
    /// `reconnectInterval`: probing of dead members and connect back-off (25 s).
    pub reconnect_interval: Duration,
    /// `maxConnectionAttempts` for bootstrap and anchor peers (120).
    pub max_connection_attempts: u32,
    /// `msgExpirationFactor`: alive-message TTL = expiration timeout × factor (20).
    pub msg_expiration_factor: u32,
    /// `skipBlockVerification` (false; read but unused by Fabric).
    pub skip_block_verification: bool,
    /// `digestWaitTime`: how long a pull round collects digests before it requests (1 s).
    pub digest_wait_time: Duration,
    /// `requestWaitTime`: how long a hello's nonce stays valid at its responder for the request
    /// that follows (1500 ms).
    pub request_wait_time: Duration,
    /// `responseWaitTime`: how long a pull round accepts updates after its requests (2 s).
    pub response_wait_time: Duration,
    /// Not a Fabric setting (`peer.gossip.pullOnGap` in gossip-node's core.yaml, default true):
    /// block repair does not wait for the pull timer. A block that arrives ahead of a missing
    /// predecessor starts a pull round at once (at most one such extra round per
    /// `digest_wait_time`), a round requests as soon as every peer it said hello to answered, and
    /// it ends as soon as every requested block arrived. `false` gives Fabric's timer-only rounds
    /// (`engine/ALGORITHM.md`, "Where we differ from Fabric"). The messages are Fabric's either way.
    pub pull_on_gap: bool,
    /// The least time between the starts of a round and a gap round after it (`pull_on_gap`;
    /// gossip-node's `peer.gossip.pullGapInterval`, 25 ms). Blocks leave every peer's store after
    /// `maxBlockCountToStore` newer ones (0.5 s at 20 blocks/s, 0.1 s at 100), so a gap must be
    /// repaired within that: at Fabric's `digestWaitTime` (1 s) spacing, scenario A at N = 25
    /// reached 0.715 of its blocks at every peer, at 100 ms all of them ("Fourteenth round" of
    /// `results/cluster-runs.md`); at 100 blocks/s a 100 ms spacing left room for one try, and a
    /// peer whose try came too early stopped at the gap for good (0 of 4 runs complete), at 25 ms
    /// 3 of 3 ("Eighteenth round").
    pub pull_gap_interval: Duration,
    /// `election.leaderAliveThreshold` (10 s); ×10 gives the leadership-message TTL, ×6 the
    /// yield time; a leader declares every half of it.
    pub leader_alive_threshold: Duration,
    /// `useLeaderElection`, `orgLeader` and the other `election.*` keys.
    pub election: ElectionConfig,
    /// `state.*`: state transfer (anti-entropy) and the commit hand-off.
    pub state: StateConfig,
}

/// Leader election (spec 3.10): `peer.gossip.useLeaderElection`, `peer.gossip.orgLeader` and
/// `peer.gossip.election.*` but `leaderAliveThreshold` (in [`GossipConfig`], as it also sets the
/// leadership-message TTL). An absent flag is false, as Fabric's config reader has it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ElectionConfig {
    /// `useLeaderElection`: elect one leader per org and channel (false).
    pub use_leader_election: bool,
    /// `orgLeader`: with election off, this peer is the leader of every channel (false when
    /// absent; Fabric's sample core.yaml sets it true).
    pub org_leader: bool,
    /// `election.startupGracePeriod`: longest wait for a stable view before the first election
    /// (15 s).
    pub startup_grace_period: Duration,
    /// `election.membershipSampleInterval`: view sampling period during start-up (1 s).
    pub membership_sample_interval: Duration,
    /// `election.leaderElectionDuration`: wait between proposing and declaring (5 s).
    pub leader_election_duration: Duration,
}

impl Default for ElectionConfig {
    fn default() -> Self {
        Self {
            use_leader_election: false,
            org_leader: false,
            startup_grace_period: Duration::from_secs(15),
            membership_sample_interval: Duration::from_secs(1),
            leader_election_duration: Duration::from_secs(5),
        }
    }
}

/// `peer.gossip.state.*` (spec 3.9), with Fabric's defaults, and the commit hand-off.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateConfig {
    /// `state.enabled`: anti-entropy state transfer (false since Fabric 2.2). Serving state
    /// requests does not depend on it, as in Fabric.
    pub enabled: bool,
    /// `state.checkInterval`: anti-entropy period (10 s).
    pub check_interval: Duration,
    /// `state.responseTimeout`: wait per state request (3 s); with answers seen, the upper
    /// bound of the adaptive wait ([`StateConfig::response_timeout_min`]).
    pub response_timeout: Duration,
    /// Not a Fabric setting: the least wait per state request (200 ms). A request waits four
    /// times the smoothed answer time (1 s before any answer was timed), at least this and at
    /// most `response_timeout`, doubled at each retry of the same range: a lost request or
    /// answer then stalls the transfer for about that long instead of `responseTimeout`. Equal to
    /// `response_timeout`: Fabric's fixed wait.
    pub response_timeout_min: Duration,
    /// `state.batchSize`: blocks per request; the range is inclusive, so up to `batch_size + 1`
    /// blocks (10).
    pub batch_size: u64,
    /// `state.maxRetries`: tries per range before the round gives up (3).
    pub max_retries: u32,
    /// `state.channelSize`: state requests being served at once per channel (100); more are
    /// dropped.
    pub channel_size: usize,
    /// Not a Fabric setting: how long a gap announced by a peer's advertised ledger height may
    /// last before anti-entropy runs without waiting for `check_interval` (100 ms). A push or pull
    /// in flight usually closes the gap first.
    pub height_gap_delay: Duration,
    /// Not a Fabric setting: blocks the embedder may hold delivered and not yet committed
    /// (acknowledged with `UpdateLedgerHeight`). 0: the embedder acknowledges nothing and a
    /// delivered block counts as committed. A driver with a ledger sets it to twice
    /// `blockBufferSize`, Fabric's blocking bound (spec 3.9, addPayload).
    pub commit_backlog_len_max: u64,
    /// Not a Fabric setting (gossip-node's `peer.gossip.state.commitLinger`, 250 ms): how long a
    /// driver with a ledger lets a delivered block wait for others to share its ledger
    /// transaction (group commit; `engine/net/src/commit.rs`). A crash loses at most this much of
    /// what was delivered, fetched again from peers after the restart. 0: one transaction per
    /// delivery (gossip-node reads a zero as the default, as for every duration).
    pub commit_linger: Duration,
    /// Not a Fabric setting: the most block bytes one state response carries (the blocks of a
    /// range that do not fit are left to the next request). Below the gRPC message limit.
    pub response_len_max_bytes: usize,
    /// Not a Fabric setting (gossip-node's `peer.gossip.state.gapRepair`, on by default): a peer
    /// whose gap left every block store (its first missing block more than
    /// `maxBlockCountToStore` below its newest, or a pushed block refused beyond its admission
    /// window) fetches the gap by state request, whether or not anti-entropy (`enabled`) is on
    /// (`components::state`, "Gap repair"). Without it, with anti-entropy off, such a peer stops
    /// at its gap for good.
    pub gap_repair: bool,
}

impl Default for StateConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            check_interval: Duration::from_secs(10),
            response_timeout: Duration::from_secs(3),
            response_timeout_min: Duration::from_millis(200),
            batch_size: 10,
            max_retries: 3,
            channel_size: 100,
            height_gap_delay: Duration::from_millis(100),
            commit_backlog_len_max: 0,
            commit_linger: Duration::from_millis(250),
            response_len_max_bytes: gossip_proto::MAX_MESSAGE_LEN_BYTES / 2,
            gap_repair: true,
        }
    }
}

impl Default for GossipConfig {
    fn default() -> Self {
        Self {
            propagate_peer_num: 3,
            propagate_iterations: 1,
            max_propagation_burst_len: 10,
            max_propagation_burst_latency: Duration::from_millis(10),
            emit_when_idle: true,
            emit_interval_min: None,
            max_block_count_to_store: 10,
            state_block_buffer_len: 20,
            pull_interval: Duration::from_secs(4),
            pull_peer_num: 3,
            request_state_info_interval: Duration::from_secs(4),
            publish_state_info_interval: Duration::from_secs(4),
            publish_cert_period: Duration::from_secs(10),
            alive_time_interval: Duration::from_secs(5),
            alive_expiration_timeout: Duration::from_secs(25),
            reconnect_interval: Duration::from_secs(25),
            max_connection_attempts: 120,
            msg_expiration_factor: 20,
            skip_block_verification: false,
            digest_wait_time: Duration::from_secs(1),
            request_wait_time: Duration::from_millis(1500),
            response_wait_time: Duration::from_secs(2),
            pull_on_gap: true,
            pull_gap_interval: Duration::from_millis(25),
            leader_alive_threshold: Duration::from_secs(10),
            election: ElectionConfig::default(),
            state: StateConfig::default(),
        }
    }
}

impl GossipConfig {
    /// The leading-edge emitter's pacing: `emit_interval_min`, else half of
    /// `max_propagation_burst_latency` (5 ms at Fabric's default), never more than the latter.
    ///
    /// Half the period, measured (`results/cluster-runs.md`, "Ninth round"; `engine/ALGORITHM.md`):
    /// a message waits at most 5 ms per hop instead of 10, so a block's arrival times at its peers
    /// stay inside `maxBlockCountToStore`'s window at high rates. In the simulator with zero
    /// processing cost (`results/sim-rate-n25/`) coverage up to 600 blocks/s is that of 20
    /// blocks/s, where one flush per period loses 1.8–2.0 points at 500 and 3.5–3.8 at 600; on
    /// the 2-core cluster of 25 nodes, 500 blocks/s gained 1 point of coverage and lost 3 ms of
    /// p50 for 5–10 % more CPU per node.
    pub fn emitter_interval_min(&self) -> Duration {
        self.emit_interval_min
            .unwrap_or(self.max_propagation_burst_latency / EMIT_INTERVAL_DEFAULT_PER_PERIOD)
            .min(self.max_propagation_burst_latency)
    }

    /// How often alive members are checked for expiry (`aliveExpirationTimeout / 10`).
    pub fn alive_expiration_check_interval(&self) -> Duration {
        self.alive_expiration_timeout / 10
    }

    /// TTL of stored alive messages (`aliveExpirationTimeout × msgExpirationFactor`, 500 s).
    pub fn alive_msg_ttl(&self) -> Duration {
        self.alive_expiration_timeout * self.msg_expiration_factor
    }

    /// TTL of stored blocks (`pullInterval × 100`, 400 s).
    pub fn block_ttl(&self) -> Duration {
        self.pull_interval * 100
    }

    /// Period of the StateInfo cache sweep (`pullInterval × 5`, 20 s).
    pub fn state_info_sweep_interval(&self) -> Duration {
        self.pull_interval * 5
    }

    /// TTL of the node-level StateInfo store (`publishStateInfoInterval × 100`, 400 s).
    pub fn node_state_info_ttl(&self) -> Duration {
        self.publish_state_info_interval * 100
    }

    /// TTL of stored leadership messages (`leaderAliveThreshold × 10`, 100 s).
    pub fn leadership_msg_ttl(&self) -> Duration {
        self.leader_alive_threshold * 10
    }

    /// Checks the constraints between fields.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.election.use_leader_election && self.election.org_leader {
            return Err(ConfigError::ElectionAndOrgLeader);
        }
        for (name, v) in [
            ("propagate_peer_num", self.propagate_peer_num),
            ("max_propagation_burst_len", self.max_propagation_burst_len),
            ("pull_peer_num", self.pull_peer_num),
            (
                "max_block_count_to_store",
                self.max_block_count_to_store as usize,
            ),
            (
                "state_block_buffer_len",
                self.state_block_buffer_len as usize,
            ),
            ("state.batch_size", self.state.batch_size as usize),
            ("state.channel_size", self.state.channel_size),
            (
                "state.response_len_max_bytes",
                self.state.response_len_max_bytes,
            ),
        ] {
            if v == 0 {
                return Err(ConfigError::Zero(name));
            }
        }
        for (name, d) in [
            (
                "max_propagation_burst_latency",
                self.max_propagation_burst_latency,
            ),
            ("pull_interval", self.pull_interval),
            ("alive_time_interval", self.alive_time_interval),
            ("alive_expiration_timeout", self.alive_expiration_timeout),
            ("reconnect_interval", self.reconnect_interval),
            (
                "publish_state_info_interval",
                self.publish_state_info_interval,
            ),
            (
                "request_state_info_interval",
                self.request_state_info_interval,
            ),
            ("digest_wait_time", self.digest_wait_time),
            ("request_wait_time", self.request_wait_time),
            ("response_wait_time", self.response_wait_time),
            ("state.check_interval", self.state.check_interval),
            ("state.response_timeout", self.state.response_timeout),
            (
                "state.response_timeout_min",
                self.state.response_timeout_min,
            ),
            ("leader_alive_threshold", self.leader_alive_threshold),
            (
                "election.startup_grace_period",
                self.election.startup_grace_period,
            ),
            (
                "election.membership_sample_interval",
                self.election.membership_sample_interval,
            ),
            (
                "election.leader_election_duration",
                self.election.leader_election_duration,
            ),
        ] {
            if d.is_zero() {
                return Err(ConfigError::ZeroDuration(name));
            }
        }
        Ok(())
    }
}
