//! Logging: `FABRIC_LOGGING_SPEC` (Fabric's grammar, translated by
//! [`gossip_node::logspec`]) into a reloadable `Targets` filter (target-prefix matching, no
//! regex engine in the binary), `FABRIC_LOGGING_FORMAT=json`
//! for JSON lines, everything to stderr. Targets are Fabric's logger names (`gossip.comm`, ...).

use anyhow::{Context, Result};
use gossip_node::logspec;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Registry, fmt, reload};

/// Swaps the filter at runtime (`/logspec`).
pub type LogSpecHandle = reload::Handle<Targets, Registry>;

/// Installs the global subscriber. `spec` is `FABRIC_LOGGING_SPEC` (default `info`), `format`
/// is `FABRIC_LOGGING_FORMAT` (`json` for JSON, anything else for text).
pub fn init(spec: Option<&str>, format: Option<&str>) -> Result<LogSpecHandle> {
    let directives = logspec::to_env_filter(spec.unwrap_or("info"))
        .with_context(|| format!("FABRIC_LOGGING_SPEC={:?}", spec.unwrap_or("")))?;
    let filter: Targets = directives
        .parse()
        .with_context(|| format!("FABRIC_LOGGING_SPEC translated to {directives:?}"))?;
    let (filter, handle) = reload::Layer::new(filter);
    let json = format.is_some_and(|f| f.trim().eq_ignore_ascii_case("json"));
    let registry = tracing_subscriber::registry().with(filter);
    if json {
        registry
            .with(fmt::layer().json().with_writer(std::io::stderr))
            .try_init()
    } else {
        registry
            .with(
                fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_ansi(false)
                    .with_target(true),
            )
            .try_init()
    }
    .context("installing the log subscriber")?;
    Ok(handle)
}
