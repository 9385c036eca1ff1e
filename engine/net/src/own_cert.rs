//! Warnings that this peer's own enrollment certificate is about to expire (Fabric's
//! `TrackExpiration` warns once when a week or less is left). Here the log says so at each of
//! [`EXPIRY_WARNING_LEADS`] ahead of the certificate's NotAfter, and once more when it expired:
//! at most six lines over a certificate's life, however often the driver checks. A peer started
//! with less time left warns once for the most urgent lead it is past, then at the later ones.

use std::time::Duration;

use crate::time::Instant;

/// How long before NotAfter each warning goes out: a week, a day, an hour, ten minutes, a
/// minute.
pub const EXPIRY_WARNING_LEADS: [Duration; 5] = [
    Duration::from_secs(7 * 24 * 3600),
    Duration::from_secs(24 * 3600),
    Duration::from_secs(3600),
    Duration::from_secs(600),
    Duration::from_secs(60),
];

/// How urgent the expiry is at `now_unix_s`: `None` while more than the first lead is left,
/// `Some(i)` once within lead `i`, `Some(EXPIRY_WARNING_LEADS.len())` once expired.
pub fn expiry_stage(not_after_unix_s: i64, now_unix_s: i64) -> Option<usize> {
    let left_s = not_after_unix_s.saturating_sub(now_unix_s);
    if left_s < 0 {
        return Some(EXPIRY_WARNING_LEADS.len());
    }
    EXPIRY_WARNING_LEADS
        .iter()
        .rposition(|lead| left_s as u64 <= lead.as_secs())
}

/// The driver's watch on its own certificate.
#[derive(Debug)]
pub(crate) struct OwnCertWatch {
    not_after_unix_s: i64,
    warned: Option<usize>,
}

impl OwnCertWatch {
    pub(crate) fn new(not_after_unix_s: i64) -> Self {
        Self {
            not_after_unix_s,
            warned: None,
        }
    }

    /// Logs a warning if `now` entered a more urgent stage than the last one warned about.
    pub(crate) fn check(&mut self, now: Instant) {
        let Some(stage) = expiry_stage(self.not_after_unix_s, now.as_unix_secs()) else {
            return;
        };
        if self.warned.is_some_and(|w| w >= stage) {
            return;
        }
        self.warned = Some(stage);
        let not_after_unix_s = self.not_after_unix_s;
        if stage == EXPIRY_WARNING_LEADS.len() {
            tracing::error!(target: "gossip.comm", not_after_unix_s,
                "this peer's enrollment certificate has expired: other peers cut it off; renew it and restart");
        } else {
            let left_s = not_after_unix_s.saturating_sub(now.as_unix_secs());
            tracing::warn!(target: "gossip.comm", not_after_unix_s, left_s,
                "this peer's enrollment certificate expires in {}; renew it before then", human(left_s));
        }
    }
}

fn human(left_s: i64) -> String {
    match left_s {
        s if s >= 2 * 24 * 3600 => format!("{} days", s / (24 * 3600)),
        s if s >= 2 * 3600 => format!("{} hours", s / 3600),
        s if s >= 120 => format!("{} minutes", s / 60),
        s => format!("{s} seconds"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_follow_the_leads_and_warn_once_each() {
        let day = 24 * 3600;
        assert_eq!(expiry_stage(100 * day, 0), None);
        assert_eq!(expiry_stage(7 * day + 1, 0), None);
        assert_eq!(expiry_stage(7 * day, 0), Some(0));
        assert_eq!(expiry_stage(3 * day, 0), Some(0));
        assert_eq!(expiry_stage(day, 0), Some(1));
        assert_eq!(expiry_stage(3600, 0), Some(2));
        assert_eq!(expiry_stage(599, 0), Some(3));
        assert_eq!(expiry_stage(30, 0), Some(4));
        assert_eq!(expiry_stage(0, 0), Some(4));
        assert_eq!(expiry_stage(0, 1), Some(5));
        let at = |s: i64| Instant::from_nanos(s as u64 * 1_000_000_000);
        let mut watch = OwnCertWatch::new(10 * day);
        let mut warned = Vec::new();
        // Checked every minute over eleven days: one warning per stage.
        for minute in 0..(11 * 24 * 60) {
            watch.check(at(minute * 60));
            if warned.last() != watch.warned.as_ref() {
                warned.extend(watch.warned);
            }
        }
        assert_eq!(warned, [0, 1, 2, 3, 4, 5]);
    }
}
