//! [`NodeConfig`]: what `gossip-node` reads from `core.yaml` (spec 4.1 and 4.2), with Fabric's
//! defaults and `GetDurationOrDefault` semantics (0 or unset means the default), plus the
//! startup diagnostics operators asked for (operations.md A.4 item 1).

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::NodeConfigError;
use super::raw::{RawConfig, env_name};
use gossip_engine::config::{CommConfig, ElectionConfig, GossipConfig, StateConfig};

use crate::config_keys::PEER_CHILDREN_KNOWN;
pub use crate::config_keys::{GOSSIP_KEYS_IGNORED, GOSSIP_KEYS_USED, PEER_KEYS_USED};
use crate::ops::config::{OPERATIONS_KEYS_USED, OperationsConfig};

/// How loud a diagnostic is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    /// Worth knowing.
    Info,
    /// Probably a mistake.
    Warn,
}

/// One startup finding, logged once by the binary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// How loud.
    pub severity: Severity,
    /// What, naming the key.
    pub message: String,
}

/// `peer.tls.*` file names, resolved against the config file's folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// `peer.tls.cert.file`.
    pub cert_file: PathBuf,
    /// `peer.tls.key.file`.
    pub key_file: PathBuf,
    /// `peer.tls.rootcert.file` and `peer.tls.clientRootCAs.files`: extra TLS trust anchors.
    pub root_cert_files: Vec<(String, PathBuf)>,
    /// `peer.tls.clientAuthRequired` (the comm always requires client certificates).
    pub client_auth_required: bool,
}

/// Everything the node needs from `core.yaml`.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// The file read, if any.
    pub config_file: Option<PathBuf>,
    /// `peer.id`.
    pub peer_id: String,
    /// `peer.localMspId`.
    pub mspid: String,
    /// `peer.mspConfigPath`, resolved against the config file's folder.
    pub msp_dir: PathBuf,
    /// `peer.listenAddress` (or `peer.address` when unset), `host:port`.
    pub listen_addr: String,
    /// `peer.gossip.endpoint`, or `peer.address` when empty.
    pub internal_endpoint: String,
    /// `peer.gossip.externalEndpoint`; may be empty.
    pub external_endpoint: String,
    /// `peer.gossip.bootstrap`, without entries pointing at this peer.
    pub bootstrap: Vec<String>,
    /// The protocol settings.
    pub gossip: GossipConfig,
    /// The comm settings.
    pub comm: CommConfig,
    /// `peer.tls.*` when `peer.tls.enabled`.
    pub tls: Option<TlsFiles>,
    /// `peer.fileSystemPath` (default [`FILE_SYSTEM_PATH_DEFAULT`]), resolved against the config
    /// file's folder: the ledger's folder ([`crate::ledger`]).
    pub file_system_path: PathBuf,
    /// `operations.*` and `metrics.provider`: the operations endpoint ([`crate::ops`]).
    pub operations: OperationsConfig,
    /// Findings to log once at startup.
    pub diagnostics: Vec<Diagnostic>,
}

/// Fabric's default `peer.fileSystemPath`.
pub const FILE_SYSTEM_PATH_DEFAULT: &str = "/var/hyperledger/production";

/// Top-level sections of Fabric's core.yaml besides `peer`.
const SECTIONS_KNOWN: &[&str] = &["vm", "chaincode", "ledger", "operations", "metrics"];

impl NodeConfig {
    /// Every key gossip-node reads, for matching `CORE_*` variables absent from the file.
    pub fn known_keys() -> Vec<String> {
        GOSSIP_KEYS_USED
            .iter()
            .map(|k| format!("peer.gossip.{k}"))
            .chain(PEER_KEYS_USED.iter().map(|k| (*k).to_owned()))
            .chain(OPERATIONS_KEYS_USED.iter().map(|k| (*k).to_owned()))
            .collect()
    }

    /// Reads `path` (or `$FABRIC_CFG_PATH/core.yaml`), applies `env` overrides and builds the
    /// config. `listen_override` replaces `peer.listenAddress` (`--listen`).
    pub fn load<I>(
        path: Option<&Path>,
        fabric_cfg_path: Option<&Path>,
        env: I,
        listen_override: Option<&str>,
    ) -> Result<Self, NodeConfigError>
    where
        I: IntoIterator<Item = (String, String)>,
    {
        let file = match (path, fabric_cfg_path) {
            (Some(p), _) => p.to_path_buf(),
            (None, Some(dir)) => dir.join("core.yaml"),
            (None, None) => return Err(NodeConfigError::NoConfigFile),
        };
        let text = std::fs::read_to_string(&file).map_err(|source| NodeConfigError::ReadFile {
            path: file.clone(),
            source,
        })?;
        let mut raw = RawConfig::from_yaml(&text).map_err(|e| match e {
            NodeConfigError::Yaml { reason, .. } => NodeConfigError::Yaml {
                file: file.display().to_string(),
                reason,
            },
            other => other,
        })?;
        let known = Self::known_keys();
        let known_refs: Vec<&str> = known.iter().map(String::as_str).collect();
        let unmatched = raw.apply_env(env, &known_refs);
        let base = file.parent().unwrap_or(Path::new(".")).to_path_buf();
        let mut cfg = Self::from_raw(&raw, &base, listen_override)?;
        cfg.config_file = Some(file);
        for name in unmatched {
            let upper = name.to_ascii_uppercase();
            if [
                "CORE_PEER_GOSSIP_",
                "CORE_PEER_TLS_",
                "CORE_PEER_KEEPALIVE_",
                "CORE_OPERATIONS_",
                "CORE_METRICS_PROVIDER",
            ]
            .iter()
            .any(|p| upper.starts_with(p))
            {
                cfg.warn(format!("{name}: unknown key, ignored"));
            }
        }
        Ok(cfg)
    }

    fn warn(&mut self, message: String) {
        self.diagnostics.push(Diagnostic {
            severity: Severity::Warn,
            message,
        });
    }

    fn info(&mut self, message: String) {
        self.diagnostics.push(Diagnostic {
            severity: Severity::Info,
            message,
        });
    }

    /// Builds the config from flattened keys; relative paths are resolved against `base`.
    pub fn from_raw(
        raw: &RawConfig,
        base: &Path,
        listen_override: Option<&str>,
    ) -> Result<Self, NodeConfigError> {
        let mut diags = Vec::new();
        let g = |k: &str| format!("peer.gossip.{k}");
        let mut dur = |key: String, default: Duration| -> Result<Duration, NodeConfigError> {
            match raw.duration(&key)? {
                Some((d, bare)) if !d.is_zero() => {
                    if bare {
                        diags.push(Diagnostic {
                            severity: Severity::Warn,
                            message: format!(
                                "{key}: bare number read as {} ns (viper's rule); write a unit, e.g. {}s",
                                d.as_nanos(),
                                d.as_nanos()
                            ),
                        });
                    }
                    Ok(d)
                }
                _ => Ok(default),
            }
        };
        let d = GossipConfig::default();
        let alive_time_interval = dur(g("aliveTimeInterval"), d.alive_time_interval)?;
        let alive_expiration_timeout = dur(g("aliveExpirationTimeout"), alive_time_interval * 5)?;
        let gossip = GossipConfig {
            max_propagation_burst_latency: dur(
                g("maxPropagationBurstLatency"),
                d.max_propagation_burst_latency,
            )?,
            pull_interval: dur(g("pullInterval"), d.pull_interval)?,
            request_state_info_interval: dur(
                g("requestStateInfoInterval"),
                d.request_state_info_interval,
            )?,
            publish_state_info_interval: dur(
                g("publishStateInfoInterval"),
                d.publish_state_info_interval,
            )?,
            publish_cert_period: dur(g("publishCertPeriod"), d.publish_cert_period)?,
            alive_time_interval,
            alive_expiration_timeout,
            reconnect_interval: dur(g("reconnectInterval"), alive_expiration_timeout)?,
            digest_wait_time: dur(g("digestWaitTime"), d.digest_wait_time)?,
            request_wait_time: dur(g("requestWaitTime"), d.request_wait_time)?,
            response_wait_time: dur(g("responseWaitTime"), d.response_wait_time)?,
            leader_alive_threshold: dur(
                g("election.leaderAliveThreshold"),
                d.leader_alive_threshold,
            )?,
            // An absent flag is false, as viper's GetBool reads it in a Fabric peer.
            election: ElectionConfig {
                use_leader_election: raw.bool(&g("useLeaderElection"))?.unwrap_or(false),
                org_leader: raw.bool(&g("orgLeader"))?.unwrap_or(false),
                startup_grace_period: dur(
                    g("election.startupGracePeriod"),
                    d.election.startup_grace_period,
                )?,
                membership_sample_interval: dur(
                    g("election.membershipSampleInterval"),
                    d.election.membership_sample_interval,
                )?,
                leader_election_duration: dur(
                    g("election.leaderElectionDuration"),
                    d.election.leader_election_duration,
                )?,
            },
            propagate_peer_num: uint_or(raw, &g("propagatePeerNum"), d.propagate_peer_num)?,
            propagate_iterations: uint_or(raw, &g("propagateIterations"), d.propagate_iterations)?,
            max_propagation_burst_len: uint_or(
                raw,
                &g("maxPropagationBurstSize"),
                d.max_propagation_burst_len,
            )?,
            max_block_count_to_store: uint_or(
                raw,
                &g("maxBlockCountToStore"),
                d.max_block_count_to_store,
            )?,
            state_block_buffer_len: uint_or(
                raw,
                &g("state.blockBufferSize"),
                d.state_block_buffer_len,
            )?,
            pull_peer_num: uint_or(raw, &g("pullPeerNum"), d.pull_peer_num)?,
            max_connection_attempts: uint_or(
                raw,
                &g("maxConnectionAttempts"),
                d.max_connection_attempts,
            )?,
            msg_expiration_factor: uint_or(
                raw,
                &g("msgExpirationFactor"),
                d.msg_expiration_factor,
            )?,
            skip_block_verification: raw.bool(&g("skipBlockVerification"))?.unwrap_or(false),
            emit_when_idle: raw.bool(&g("emitWhenIdle"))?.unwrap_or(d.emit_when_idle),
            pull_on_gap: raw.bool(&g("pullOnGap"))?.unwrap_or(d.pull_on_gap),
            pull_gap_interval: dur(g("pullGapInterval"), d.pull_gap_interval)?,
            emit_interval_min: Some(dur(g("emitIntervalMin"), Duration::ZERO)?)
                .filter(|d| !d.is_zero()),
            state: StateConfig {
                enabled: raw.bool(&g("state.enabled"))?.unwrap_or(d.state.enabled),
                check_interval: dur(g("state.checkInterval"), d.state.check_interval)?,
                response_timeout: dur(g("state.responseTimeout"), d.state.response_timeout)?,
                response_timeout_min: dur(
                    g("state.responseTimeoutMin"),
                    d.state.response_timeout_min,
                )?,
                batch_size: uint_or(raw, &g("state.batchSize"), d.state.batch_size)?,
                max_retries: uint_or(raw, &g("state.maxRetries"), d.state.max_retries)?,
                channel_size: uint_or(raw, &g("state.channelSize"), d.state.channel_size)?,
                height_gap_delay: dur(g("state.heightGapDelay"), d.state.height_gap_delay)?,
                commit_linger: dur(g("state.commitLinger"), d.state.commit_linger)?,
                gap_repair: raw
                    .bool(&g("state.gapRepair"))?
                    .unwrap_or(d.state.gap_repair),
                ..d.state.clone()
            },
        };
        let c = CommConfig::default();
        let comm = CommConfig {
            dial_timeout: dur(g("dialTimeout"), c.dial_timeout)?,
            conn_timeout: dur(g("connTimeout"), c.conn_timeout)?,
            keepalive_interval: dur(
                "peer.keepalive.client.interval".into(),
                c.keepalive_interval,
            )?,
            keepalive_timeout: dur("peer.keepalive.client.timeout".into(), c.keepalive_timeout)?,
            send_buff_len_max: uint_or(raw, &g("sendBuffSize"), c.send_buff_len_max)?,
            recv_message_len_max: uint_or(raw, "peer.maxRecvMsgSize", c.recv_message_len_max)?,
            send_message_len_max: uint_or(raw, "peer.maxSendMsgSize", c.send_message_len_max)?,
            ..c
        };
        gossip
            .validate()
            .map_err(|e| NodeConfigError::Invalid(format!("peer.gossip: {e}")))?;
        comm.validate().map_err(|e| {
            NodeConfigError::Invalid(format!("peer.gossip / peer.keepalive.client: {e}"))
        })?;

        let mspid = raw
            .string("peer.localMspId")
            .ok_or(NodeConfigError::Missing {
                key: "peer.localMspId",
                why: "the MSP id is this peer's org in gossip",
            })?;
        let msp_dir = resolve(
            base,
            &raw.string("peer.mspConfigPath")
                .ok_or(NodeConfigError::Missing {
                    key: "peer.mspConfigPath",
                    why: "the local MSP folder holds this peer's signing identity",
                })?,
        );
        let address = raw.string("peer.address");
        let internal_endpoint = raw
            .string(&g("endpoint"))
            .or_else(|| address.clone())
            .ok_or(NodeConfigError::Missing {
                key: "peer.address",
                why: "with peer.gossip.endpoint empty it is the endpoint advertised to the org",
            })?;
        let listen_addr = listen_override
            .map(str::to_owned)
            .or_else(|| raw.string("peer.listenAddress"))
            .or(address)
            .ok_or(NodeConfigError::Missing {
                key: "peer.listenAddress",
                why: "gossip needs an address to listen on (or set peer.address or --listen)",
            })?;
        let tls = if raw.bool("peer.tls.enabled")?.unwrap_or(false) {
            Some(tls_files(raw, base, &mut diags)?)
        } else {
            diags.push(Diagnostic {
                severity: Severity::Warn,
                message: "peer.tls.enabled is false: gossip runs in plaintext, and Fabric peers \
                          with TLS on cannot talk to this node"
                    .into(),
            });
            None
        };
        let mut cfg = NodeConfig {
            config_file: None,
            peer_id: raw
                .string("peer.id")
                .unwrap_or_else(|| "gossip-node".into()),
            mspid,
            msp_dir,
            listen_addr,
            internal_endpoint,
            external_endpoint: raw.string(&g("externalEndpoint")).unwrap_or_default(),
            bootstrap: raw.list(&g("bootstrap")),
            gossip,
            comm,
            tls,
            file_system_path: resolve(
                base,
                &raw.string("peer.fileSystemPath")
                    .unwrap_or_else(|| FILE_SYSTEM_PATH_DEFAULT.to_owned()),
            ),
            operations: OperationsConfig::from_raw(raw, base)?,
            diagnostics: diags,
        };
        cfg.check_keys(raw);
        cfg.check_endpoints();
        Ok(cfg)
    }

    /// Unknown and ignored keys, each named once.
    fn check_keys(&mut self, raw: &RawConfig) {
        let used: Vec<String> = Self::known_keys()
            .iter()
            .map(|k| k.to_ascii_lowercase())
            .collect();
        let mut ignored: Vec<(&str, Vec<String>)> = Vec::new();
        let mut unused_sections: Vec<String> = Vec::new();
        let mut unknown = Vec::new();
        for key in raw.keys() {
            if used.iter().any(|u| u == key) {
                continue;
            }
            if let Some(rest) = key.strip_prefix("peer.gossip.") {
                match GOSSIP_KEYS_IGNORED
                    .iter()
                    .find(|(k, _)| key_matches(rest, &k.to_ascii_lowercase()))
                {
                    Some((_, why)) => match ignored.iter_mut().find(|(w, _)| w == why) {
                        Some((_, keys)) => keys.push(raw.spelled(key).to_owned()),
                        None => ignored.push((why, vec![raw.spelled(key).to_owned()])),
                    },
                    None => unknown.push(raw.spelled(key).to_owned()),
                }
            } else if let Some(rest) = key.strip_prefix("peer.") {
                let child = rest.split('.').next().unwrap_or(rest);
                if !PEER_CHILDREN_KNOWN.contains(&child) {
                    unknown.push(raw.spelled(key).to_owned());
                } else if !unused_sections
                    .iter()
                    .any(|s| s == &format!("peer.{child}"))
                {
                    unused_sections.push(format!("peer.{child}"));
                }
            } else {
                let top = key.split('.').next().unwrap_or(key);
                if SECTIONS_KNOWN.contains(&top) {
                    if !unused_sections.iter().any(|s| s == top) {
                        unused_sections.push(top.to_owned());
                    }
                } else {
                    unknown.push(raw.spelled(key).to_owned());
                }
            }
        }
        for key in unknown {
            self.warn(format!("{key}: unknown key, ignored"));
        }
        for (why, keys) in ignored {
            self.warn(format!(
                "ignored by gossip-node ({why}): {}",
                keys.join(", ")
            ));
        }
        if !unused_sections.is_empty() {
            self.info(format!(
                "sections not used by gossip-node: {}",
                unused_sections.join(", ")
            ));
        }
    }

    /// The misconfigurations of operations.md A.4 item 1.
    fn check_endpoints(&mut self) {
        if self.external_endpoint.is_empty() {
            self.warn(
                "peer.gossip.externalEndpoint is empty: this peer is invisible to other orgs \
                 and to service discovery (set it to a host:port other orgs can dial)"
                    .into(),
            );
        }
        if self.internal_endpoint.starts_with("0.0.0.0:") {
            self.warn(format!(
                "peer.gossip.endpoint / peer.address is {}: peers of the org cannot dial 0.0.0.0; \
                 advertise a routable host:port",
                self.internal_endpoint
            ));
        }
        let listen_port = self.listen_addr.rsplit(':').next().unwrap_or("").to_owned();
        let is_self = |b: &str| {
            b == self.internal_endpoint
                || b == self.external_endpoint
                || b == self.listen_addr
                || (["127.0.0.1", "localhost", "0.0.0.0"]
                    .iter()
                    .any(|h| b == format!("{h}:{listen_port}"))
                    && (self.listen_addr.starts_with("0.0.0.0:")
                        || self.listen_addr.starts_with("127.0.0.1:")
                        || self.listen_addr.starts_with("localhost:")))
        };
        let (selfish, others): (Vec<String>, Vec<String>) =
            self.bootstrap.iter().cloned().partition(|b| is_self(b));
        for b in &selfish {
            self.info(format!(
                "peer.gossip.bootstrap entry {b} is this peer itself; skipped"
            ));
        }
        self.bootstrap = others;
        if self.bootstrap.is_empty() {
            self.warn(
                "peer.gossip.bootstrap is empty: this peer finds its org only when others dial \
                 it or through anchor peers of a joined channel"
                    .into(),
            );
        }
    }

    /// The key's environment variable name, for messages.
    pub fn env_name(key: &str) -> String {
        env_name(key)
    }
}

fn key_matches(rest: &str, pattern: &str) -> bool {
    if pattern.ends_with('.') {
        rest.starts_with(pattern)
    } else {
        rest == pattern
    }
}

/// `p` as given when absolute, else relative to `base` (the config file's folder), as Fabric
/// resolves paths in core.yaml.
pub(crate) fn resolve(base: &Path, p: &str) -> PathBuf {
    let path = Path::new(p);
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    }
}

fn uint_or<T>(raw: &RawConfig, key: &str, default: T) -> Result<T, NodeConfigError>
where
    T: TryFrom<u64>,
{
    match raw.uint(key)? {
        None | Some(0) => Ok(default),
        Some(v) => T::try_from(v).map_err(|_| NodeConfigError::BadValue {
            key: key.to_owned(),
            value: v.to_string(),
            expected: "a smaller integer",
        }),
    }
}

fn tls_files(
    raw: &RawConfig,
    base: &Path,
    diags: &mut Vec<Diagnostic>,
) -> Result<TlsFiles, NodeConfigError> {
    let cert = raw
        .string("peer.tls.cert.file")
        .ok_or(NodeConfigError::Missing {
            key: "peer.tls.cert.file",
            why: "peer.tls.enabled is true, and gossip's mutual TLS needs this peer's certificate",
        })?;
    let key = raw
        .string("peer.tls.key.file")
        .ok_or(NodeConfigError::Missing {
            key: "peer.tls.key.file",
            why: "peer.tls.enabled is true, and gossip's mutual TLS needs this peer's key",
        })?;
    let mut roots = Vec::new();
    if let Some(r) = raw.string("peer.tls.rootcert.file") {
        roots.push(("peer.tls.rootcert.file".to_owned(), resolve(base, &r)));
    }
    for r in raw.list("peer.tls.clientRootCAs.files") {
        roots.push(("peer.tls.clientRootCAs.files".to_owned(), resolve(base, &r)));
    }
    let cert_file = resolve(base, &cert);
    let key_file = resolve(base, &key);
    for (k, own) in [
        ("peer.tls.clientCert.file", &cert_file),
        ("peer.tls.clientKey.file", &key_file),
    ] {
        if let Some(v) = raw.string(k)
            && resolve(base, &v) != *own
        {
            diags.push(Diagnostic {
                severity: Severity::Warn,
                message: format!(
                    "{k}: ignored; gossip-node presents the server certificate as its client \
                     certificate, as Fabric peers do by default"
                ),
            });
        }
    }
    Ok(TlsFiles {
        cert_file,
        key_file,
        root_cert_files: roots,
        client_auth_required: raw.bool("peer.tls.clientAuthRequired")?.unwrap_or(false),
    })
}

#[cfg(test)]
#[path = "peer_tests.rs"]
mod tests;
