//! The one place that reads the real clock. Everything else takes `now` as an argument.

use crate::time::Instant;

/// The current wall-clock time as nanoseconds since the Unix epoch (identity expiry checks compare
/// it with certificate validity in Unix seconds).
#[allow(clippy::disallowed_methods)]
pub fn now() -> Instant {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Instant::from_nanos(u64::try_from(since_epoch.as_nanos()).unwrap_or(u64::MAX))
}
