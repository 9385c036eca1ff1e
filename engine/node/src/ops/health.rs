//! `/healthz` in Fabric's format (`core/operations/system.go`, `healthz.HealthHandler`): 200
//! `{"status":"OK","time":"..."}`, or 503 `{"status":"Service Unavailable","time":"...",
//! "failed_checks":[{"component":"...","reason":"..."}]}`.
//!
//! Checks:
//! - `gossip`: the gossip instance answers (its driver task runs, so its server serves).
//! - `gossip.membership`: no peer is alive, and the node has bootstrap peers or knew peers that
//!   it now presumes dead (none sent an alive message within `aliveExpirationTimeout`): it is cut
//!   off from the network. A node without bootstrap peers that never knew one (the first of a
//!   network, or a network of one) passes. A node with bootstrap peers fails until it reaches one.
//! - `ledger:<channel>`: our ledger height lags, by more than [`ledger_lag_max_blocks`] blocks,
//!   the height that most of the channel's peers advertise in their StateInfo (the highest
//!   height a strict majority of them reach, `ChannelSummary::peers_ledger_height_majority`).
//!   The threshold is twice `peer.gossip.state.blockBufferSize` (2 × 20 = 40 by default), the
//!   most a peer can trail while blocks still arrive through its reorder buffer; beyond that it
//!   depends on state transfer catching up, which is what an operator wants to hear about. Not
//!   the highest advertised height: a StateInfo's height is its signer's own claim, and one
//!   faulty or hostile member advertising a height it does not have would otherwise fail this
//!   check on every peer of the channel (and restart them all, where `/healthz` is a liveness
//!   probe).

use gossip_engine::node::ChannelSummary;
use serde::Serialize;

/// Fabric's status words.
pub const STATUS_OK: &str = "OK";
/// Fabric's status words.
pub const STATUS_UNAVAILABLE: &str = "Service Unavailable";

/// One failed check, as Fabric writes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FailedCheck {
    /// What failed (`gossip`, `ledger:<channel>`).
    pub component: String,
    /// Why.
    pub reason: String,
}

/// The `/healthz` body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HealthStatus {
    /// [`STATUS_OK`] or [`STATUS_UNAVAILABLE`].
    pub status: &'static str,
    /// RFC 3339 UTC.
    pub time: String,
    /// Absent when OK.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failed_checks: Vec<FailedCheck>,
}

impl HealthStatus {
    /// OK without failed checks, else Service Unavailable.
    pub fn new(failed_checks: Vec<FailedCheck>, time: String) -> Self {
        let status = if failed_checks.is_empty() {
            STATUS_OK
        } else {
            STATUS_UNAVAILABLE
        };
        Self {
            status,
            time,
            failed_checks,
        }
    }

    /// Whether every check passed.
    pub fn is_ok(&self) -> bool {
        self.failed_checks.is_empty()
    }
}

/// The `gossip.membership` check over the counts of alive and dead members (self excluded) and
/// whether bootstrap peers are configured.
pub fn membership_check(
    members_alive: usize,
    members_dead: usize,
    has_bootstrap_peers: bool,
) -> Option<FailedCheck> {
    if members_alive > 0 || (members_dead == 0 && !has_bootstrap_peers) {
        return None;
    }
    Some(FailedCheck {
        component: "gossip.membership".into(),
        reason: format!(
            "cut off: no peer alive ({members_dead} known peers presumed dead: no alive message \
             within aliveExpirationTimeout)"
        ),
    })
}

/// The ledger-lag threshold: `2 × state.blockBufferSize` blocks.
pub fn ledger_lag_max_blocks(state_block_buffer_len: u64) -> u64 {
    state_block_buffer_len.saturating_mul(2)
}

/// The `ledger:<channel>` checks.
pub fn ledger_lag_checks(channels: &[ChannelSummary], lag_max_blocks: u64) -> Vec<FailedCheck> {
    channels
        .iter()
        .filter_map(|ch| {
            let lag = ch
                .peers_ledger_height_majority
                .saturating_sub(ch.ledger_height);
            (lag > lag_max_blocks).then(|| FailedCheck {
                component: format!("ledger:{}", String::from_utf8_lossy(&ch.channel)),
                reason: format!(
                    "ledger height {} lags by {lag} blocks (more than {lag_max_blocks}) the \
                     height {} that most of the channel's {} peers advertise",
                    ch.ledger_height, ch.peers_ledger_height_majority, ch.peers_known
                ),
            })
        })
        .collect()
}

/// Unix seconds and nanoseconds → RFC 3339 UTC with nanoseconds (Go's `time.RFC3339Nano`, as
/// Fabric writes `time`).
pub fn rfc3339_utc(unix_ns: u64) -> String {
    let secs = unix_ns / 1_000_000_000;
    let nanos = unix_ns % 1_000_000_000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (h, m, s) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let frac = if nanos == 0 {
        String::new()
    } else {
        format!(".{nanos:09}").trim_end_matches('0').to_owned()
    };
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}{frac}Z")
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn channel(name: &'static str, height: u64, peers_max: u64) -> ChannelSummary {
        ChannelSummary {
            channel: Bytes::from_static(name.as_bytes()),
            ledger_height: height,
            buffered_len: 0,
            peers_known: 1,
            peers_ledger_height_max: peers_max,
            peers_ledger_height_majority: peers_max,
            leader: false,
        }
    }

    #[test]
    fn one_peer_claiming_a_huge_height_fails_no_check() {
        // Two honest peers at 12 and 13, one advertising 10^15 (a StateInfo is its signer's
        // own claim); we are at 12.
        let heights = [12, 13, 1_000_000_000_000_000];
        let ch = ChannelSummary {
            peers_known: heights.len(),
            peers_ledger_height_max: 1_000_000_000_000_000,
            peers_ledger_height_majority: gossip_engine::node::majority_height(heights),
            ..channel("mychannel", 12, 0)
        };
        assert_eq!(ledger_lag_checks(std::slice::from_ref(&ch), 40), Vec::new());
        // Most peers really ahead: the check fails, and says against what.
        let ahead = ChannelSummary {
            peers_ledger_height_majority: gossip_engine::node::majority_height([60, 61, 12]),
            ..ch
        };
        let failed = ledger_lag_checks(&[ahead], 40);
        assert_eq!(failed.len(), 1);
        assert!(
            failed[0].reason.contains(
                "lags by 48 blocks (more than 40) the height 60 that most of the channel's 3 peers"
            ),
            "{}",
            failed[0].reason
        );
    }

    #[test]
    fn a_lagging_channel_fails_its_check() {
        let lag_max = ledger_lag_max_blocks(100);
        assert_eq!(lag_max, 200);
        let channels = [
            channel("ok", 10, 210),
            channel("ahead", 50, 3),
            channel("behind", 10, 211),
        ];
        let failed = ledger_lag_checks(&channels, lag_max);
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].component, "ledger:behind");
        assert!(
            failed[0].reason.contains("by 201 blocks"),
            "{}",
            failed[0].reason
        );
    }

    #[test]
    fn a_node_with_no_peer_alive_is_cut_off_unless_it_never_expected_one() {
        assert_eq!(membership_check(0, 0, false), None, "a network of one");
        assert_eq!(membership_check(2, 3, true), None, "some peers alive");
        let failed = membership_check(0, 3, false).expect("cut off");
        assert_eq!(failed.component, "gossip.membership");
        assert!(
            failed.reason.contains("3 known peers presumed dead"),
            "{}",
            failed.reason
        );
        assert!(
            membership_check(0, 0, true).is_some(),
            "bootstrap peers configured, none reached"
        );
    }

    #[test]
    fn bodies_are_fabrics() {
        let ok = HealthStatus::new(Vec::new(), "2024-01-02T03:04:05Z".into());
        assert!(ok.is_ok());
        assert_eq!(
            serde_json::to_string(&ok).expect("json"),
            r#"{"status":"OK","time":"2024-01-02T03:04:05Z"}"#
        );
        let bad = HealthStatus::new(
            vec![FailedCheck {
                component: "gossip".into(),
                reason: "stopped".into(),
            }],
            "t".into(),
        );
        assert_eq!(
            serde_json::to_string(&bad).expect("json"),
            r#"{"status":"Service Unavailable","time":"t","failed_checks":[{"component":"gossip","reason":"stopped"}]}"#
        );
    }

    #[test]
    fn times_are_rfc3339_utc() {
        assert_eq!(rfc3339_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339_utc(1_700_000_000_123_000_000),
            "2023-11-14T22:13:20.123Z"
        );
        assert_eq!(rfc3339_utc(951_782_400_000_000_000), "2000-02-29T00:00:00Z");
    }
}
