//! Comm-layer settings (`peer.gossip.dialTimeout`, `connTimeout`, `sendBuffSize`,
//! the gRPC message limits and the verifier pool), re-exported as `config::CommConfig`.

use std::time::Duration;

use gossip_core::config::ConfigError;

/// Comm-layer settings (`peer.gossip.dialTimeout`, `connTimeout`, `sendBuffSize`,
/// and the gRPC message limits).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommConfig {
    /// `dialTimeout`: TCP connect plus TLS handshake (default 3 s).
    pub dial_timeout: Duration,
    /// `connTimeout`: Ping RPC timeout and the wait for the remote's ConnEstablish (default 2 s).
    pub conn_timeout: Duration,
    /// Timeout of a whole probe handshake (Fabric's `handshakeTimeout`, 10 s).
    pub handshake_timeout: Duration,
    /// `sendBuffSize`: per-connection send queue length; a full queue drops and counts (core.yaml
    /// ships 200).
    pub send_buff_len_max: usize,
    /// Length of the inbound queue from all connections to the consumer.
    pub inbound_queue_len_max: usize,
    /// `peer.maxRecvMsgSize` (100 MiB).
    pub recv_message_len_max: usize,
    /// `peer.maxSendMsgSize` (100 MiB).
    pub send_message_len_max: usize,
    /// Verifier-pool threads that check signatures of received messages: `None` for one per core
    /// (resolved when the comm starts), `Some(0)` to verify on the connection tasks instead.
    pub verifier_workers_count: Option<usize>,
    /// Signature-check jobs waiting for the verifier pool; when full, checks run inline.
    pub verifier_queue_len_max: usize,
    /// HTTP/2 keepalive ping period of client connections (`peer.keepalive.client.interval`, 60 s;
    /// Fabric servers disconnect clients that ping more often).
    pub keepalive_interval: Duration,
    /// HTTP/2 keepalive ping timeout (`peer.keepalive.client.timeout`, 20 s).
    pub keepalive_timeout: Duration,
}

impl Default for CommConfig {
    fn default() -> Self {
        Self {
            dial_timeout: Duration::from_secs(3),
            conn_timeout: Duration::from_secs(2),
            handshake_timeout: Duration::from_secs(10),
            send_buff_len_max: 200,
            inbound_queue_len_max: 4096,
            recv_message_len_max: gossip_proto::MAX_MESSAGE_LEN_BYTES,
            send_message_len_max: gossip_proto::MAX_MESSAGE_LEN_BYTES,
            verifier_workers_count: None,
            verifier_queue_len_max: 4096,
            keepalive_interval: Duration::from_secs(60),
            keepalive_timeout: Duration::from_secs(20),
        }
    }
}

impl CommConfig {
    /// A config with short timeouts for tests on loopback.
    pub fn for_test() -> Self {
        Self {
            dial_timeout: Duration::from_secs(2),
            conn_timeout: Duration::from_secs(2),
            ..Self::default()
        }
    }

    /// Verifier-pool threads the comm starts: `verifier_workers_count`, else one per core.
    pub fn verifier_threads(&self) -> usize {
        self.verifier_workers_count
            .unwrap_or_else(|| crate::pool::PoolConfig::default().workers_count)
    }

    /// Checks the constraints between fields.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (name, v) in [
            ("send_buff_len_max", self.send_buff_len_max),
            ("inbound_queue_len_max", self.inbound_queue_len_max),
            ("recv_message_len_max", self.recv_message_len_max),
            ("send_message_len_max", self.send_message_len_max),
            ("verifier_queue_len_max", self.verifier_queue_len_max),
        ] {
            if v == 0 {
                return Err(ConfigError::Zero(name));
            }
        }
        for (name, d) in [
            ("dial_timeout", self.dial_timeout),
            ("conn_timeout", self.conn_timeout),
            ("handshake_timeout", self.handshake_timeout),
        ] {
            if d.is_zero() {
                return Err(ConfigError::ZeroDuration(name));
            }
        }
        if self.keepalive_interval < Duration::from_secs(60) {
            return Err(ConfigError::KeepaliveTooFrequent);
        }
        Ok(())
    }
}
