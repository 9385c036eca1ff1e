//! Rate-limited warnings: a warning about the same remote (an identity refused at a handshake, a
//! handshake identity the store did not take) is logged at most once per [`WARN_INTERVAL`], so a
//! peer with an expired, untrusted or client certificate that redials every few seconds cannot
//! flood the log. Every occurrence is still counted (`handshake_failures`, `comm.identities`).
//!
//! Keyed by the remote's PKI-ID where it is known, else by the cause and the remote host. The map
//! is bounded: when [`WARN_KEYS_LEN_MAX`] keys are held, the ones older than the interval go, and
//! if all are recent the map is emptied (a burst of at most that many warnings).

use std::collections::HashMap;
use std::time::Duration;

use parking_lot::Mutex;

use crate::crypto::sha256_concat;
use crate::time::Instant;
use crate::types::PkiId;

/// The least time between two warnings with the same key.
pub const WARN_INTERVAL: Duration = Duration::from_secs(60);
/// Keys remembered at most.
pub const WARN_KEYS_LEN_MAX: usize = 4_096;

/// The key of a warning about a remote.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct WarnKey([u8; 32]);

impl WarnKey {
    /// A warning about the identity `pki_id`.
    pub fn peer(pki_id: &PkiId) -> Self {
        Self(pki_id.0)
    }

    /// A warning with `cause` about a remote at `endpoint` (`host:port`; the port is left out, so
    /// an inbound peer's new source port is the same remote).
    pub fn endpoint(cause: &str, endpoint: &str) -> Self {
        let host = endpoint
            .rsplit_once(':')
            .map_or(endpoint, |(host, _port)| host);
        Self(sha256_concat([cause.as_bytes(), b"\0", host.as_bytes()]))
    }
}

/// When each key last warned.
#[derive(Debug, Default)]
pub struct WarnLimiter {
    last_warned: Mutex<HashMap<WarnKey, Instant>>,
}

impl WarnLimiter {
    /// Whether a warning with `key` may be logged at `now` (and, if so, remembers it).
    pub fn allow(&self, key: WarnKey, now: Instant) -> bool {
        let mut last_warned = self.last_warned.lock();
        if let Some(&at) = last_warned.get(&key) {
            if now < at + WARN_INTERVAL {
                return false;
            }
        } else if last_warned.len() >= WARN_KEYS_LEN_MAX {
            last_warned.retain(|_, at| now < *at + WARN_INTERVAL);
            if last_warned.len() >= WARN_KEYS_LEN_MAX {
                last_warned.clear();
            }
        }
        last_warned.insert(key, now);
        true
    }

    /// Keys remembered.
    pub fn len(&self) -> usize {
        self.last_warned.lock().len()
    }

    /// Whether no key is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at_s(s: u64) -> Instant {
        Instant::from_nanos(s * 1_000_000_000)
    }

    #[test]
    fn once_a_minute_per_key() {
        let limiter = WarnLimiter::default();
        let a = WarnKey::peer(&PkiId([1; 32]));
        let b = WarnKey::endpoint("identity_expired", "10.0.0.1:40001");
        assert!(limiter.allow(a, at_s(100)));
        assert!(!limiter.allow(a, at_s(159)), "repeated within the minute");
        assert!(limiter.allow(b, at_s(120)), "another remote");
        assert!(
            !limiter.allow(
                WarnKey::endpoint("identity_expired", "10.0.0.1:40002"),
                at_s(121)
            ),
            "the same host on a new port"
        );
        assert!(limiter.allow(a, at_s(160)), "a minute later");
    }

    #[test]
    fn bounded() {
        let limiter = WarnLimiter::default();
        for n in 0..(WARN_KEYS_LEN_MAX as u32 + 10) {
            let mut id = [0; 32];
            id[..4].copy_from_slice(&n.to_be_bytes());
            assert!(limiter.allow(WarnKey::peer(&PkiId(id)), at_s(100)));
            assert!(limiter.len() <= WARN_KEYS_LEN_MAX);
        }
    }
}
