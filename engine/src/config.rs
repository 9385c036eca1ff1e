//! Engine configuration, mirroring Fabric's `peer.gossip.*` keys with Fabric's defaults (spec 4.1).
//! Units are in the field names or the types.

use std::time::Duration;

/// Comm-layer settings (`peer.gossip.dialTimeout`, `connTimeout`, `sendBuffSize`, `recvBuffSize`,
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
    /// `recvBuffSize`: per-connection receive queue length (default 20).
    pub recv_buff_len_max: usize,
    /// Length of the inbound queue from all connections to the consumer.
    pub inbound_queue_len_max: usize,
    /// Length of each demux subscriber's queue.
    pub subscriber_queue_len_max: usize,
    /// `peer.maxRecvMsgSize` (100 MiB).
    pub recv_message_len_max: usize,
    /// `peer.maxSendMsgSize` (100 MiB).
    pub send_message_len_max: usize,
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
            recv_buff_len_max: 20,
            inbound_queue_len_max: 4096,
            subscriber_queue_len_max: 1024,
            recv_message_len_max: gossip_proto::MAX_MESSAGE_LEN_BYTES,
            send_message_len_max: gossip_proto::MAX_MESSAGE_LEN_BYTES,
            keepalive_interval: Duration::from_secs(60),
            keepalive_timeout: Duration::from_secs(20),
        }
    }
}

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

    /// Checks the constraints between fields.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (name, v) in [
            ("send_buff_len_max", self.send_buff_len_max),
            ("recv_buff_len_max", self.recv_buff_len_max),
            ("inbound_queue_len_max", self.inbound_queue_len_max),
            ("subscriber_queue_len_max", self.subscriber_queue_len_max),
            ("recv_message_len_max", self.recv_message_len_max),
            ("send_message_len_max", self.send_message_len_max),
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
