//! `FABRIC_LOGGING_SPEC` → `tracing_subscriber` filter directives (`EnvFilter` or `Targets`).
//!
//! Fabric's grammar is `[<logger>[,<logger>...]=]<level>[:[<logger>[,<logger>...]=]<level>...]`:
//! a term without loggers sets the default level, a term with loggers sets those loggers (and
//! their children: `gossip` covers `gossip.comm`). Levels are FATAL, PANIC, ERROR, WARNING (or
//! WARN), INFO, DEBUG, case-insensitive. Our tracing targets are Fabric's logger names
//! (`gossip.comm`, `gossip.discovery`, ...), so a logger maps to a target prefix.
//!
//! tracing has no FATAL or PANIC: both map to `error`. `EnvFilter` and `Targets` match a target
//! directive by string prefix, so the directive `gossip=debug` covers the targets `gossip.comm`,
//! `gossip.discovery`, ... as Fabric's logger hierarchy does.

/// Why a spec was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogSpecError {
    /// A level word is not one of Fabric's.
    #[error("invalid logging level {0:?} (expected FATAL, PANIC, ERROR, WARNING, INFO or DEBUG)")]
    Level(String),
    /// A logger name is empty or has characters tracing cannot match.
    #[error("invalid logger name {0:?}")]
    Logger(String),
    /// tracing-subscriber refused the translated directives.
    #[error("directives {directives:?}: {reason}")]
    Directives {
        /// The translation.
        directives: String,
        /// Why.
        reason: String,
    },
    /// The running filter could not be swapped (the subscriber is gone); the old one stays.
    #[error("swapping the log filter: {0}")]
    Reload(String),
}

/// Translates a spec into a `Targets` filter.
pub fn to_targets(spec: &str) -> Result<Targets, LogSpecError> {
    let directives = to_env_filter(spec)?;
    directives
        .parse()
        .map_err(
            |e: tracing_subscriber::filter::ParseError| LogSpecError::Directives {
                directives,
                reason: e.to_string(),
            },
        )
}

/// The running log filter, for `GET`/`PUT /logspec`: the spec it was built from and the reload
/// handle that swaps it.
pub struct LiveLogSpec {
    spec: parking_lot::Mutex<String>,
    handle: reload::Handle<Targets, Registry>,
}

impl std::fmt::Debug for LiveLogSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveLogSpec")
            .field("spec", &*self.spec.lock())
            .finish()
    }
}

impl LiveLogSpec {
    /// The filter installed from `spec`, swapped through `handle`.
    pub fn new(spec: String, handle: reload::Handle<Targets, Registry>) -> Self {
        Self {
            spec: parking_lot::Mutex::new(spec),
            handle,
        }
    }

    /// The spec in force.
    pub fn spec(&self) -> String {
        self.spec.lock().clone()
    }

    /// Installs `spec`; on an error the spec in force stays.
    pub fn set(&self, spec: &str) -> Result<(), LogSpecError> {
        let targets = to_targets(spec)?;
        let mut current = self.spec.lock();
        self.handle
            .reload(targets)
            .map_err(|e| LogSpecError::Reload(e.to_string()))?;
        *current = spec.trim().to_owned();
        Ok(())
    }
}

use tracing_subscriber::filter::Targets;
use tracing_subscriber::{Registry, reload};

/// Maps a Fabric level word to a tracing level name.
pub fn level(word: &str) -> Result<&'static str, LogSpecError> {
    match word.trim().to_ascii_lowercase().as_str() {
        "fatal" | "panic" | "error" => Ok("error"),
        "warning" | "warn" => Ok("warn"),
        "info" => Ok("info"),
        "debug" => Ok("debug"),
        _ => Err(LogSpecError::Level(word.to_owned())),
    }
}

/// Translates a spec into `EnvFilter` directives, e.g. `gossip=debug:info` → `info,gossip=debug`.
/// An empty spec is `info` (Fabric's default). Later terms win, as in Fabric.
pub fn to_env_filter(spec: &str) -> Result<String, LogSpecError> {
    let mut default = "info";
    let mut loggers: Vec<(String, &'static str)> = Vec::new();
    for term in spec.split(':') {
        let term = term.trim();
        if term.is_empty() {
            continue;
        }
        match term.split_once('=') {
            None => default = level(term)?,
            Some((names, lvl)) => {
                let lvl = level(lvl)?;
                for name in names.split(',') {
                    let name = name.trim();
                    if name.is_empty()
                        || !name
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || "._-/".contains(c))
                    {
                        return Err(LogSpecError::Logger(name.to_owned()));
                    }
                    loggers.retain(|(n, _)| n != name);
                    loggers.push((name.to_owned(), lvl));
                }
            }
        }
    }
    let mut out = default.to_owned();
    for (name, lvl) in loggers {
        out.push(',');
        out.push_str(&name);
        out.push('=');
        out.push_str(lvl);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn translates_fabric_specs() {
        let table: &[(&str, &str)] = &[
            ("", "info"),
            ("info", "info"),
            ("DEBUG", "debug"),
            ("warning", "warn"),
            ("Fatal", "error"),
            ("panic", "error"),
            ("gossip=debug:info", "info,gossip=debug"),
            (
                "gossip.comm,gossip.discovery=debug:warning",
                "warn,gossip.comm=debug,gossip.discovery=debug",
            ),
            ("info:gossip=debug", "info,gossip=debug"),
            (
                "gossip=warning:gossip.comm=debug:ERROR",
                "error,gossip=warn,gossip.comm=debug",
            ),
            ("gossip=debug:gossip=info", "info,gossip=info"),
        ];
        for (spec, want) in table {
            assert_eq!(to_env_filter(spec).as_deref(), Ok(*want), "{spec:?}");
        }
    }

    #[test]
    fn refuses_bad_specs() {
        assert_eq!(
            to_env_filter("verbose"),
            Err(LogSpecError::Level("verbose".into()))
        );
        assert!(matches!(
            to_env_filter("gossip=loud"),
            Err(LogSpecError::Level(_))
        ));
        assert!(matches!(
            to_env_filter("=debug"),
            Err(LogSpecError::Logger(_))
        ));
        assert!(matches!(
            to_env_filter("a b=debug"),
            Err(LogSpecError::Logger(_))
        ));
    }

    #[test]
    fn output_parses_as_env_filter_directives() {
        // Each directive has the `target=level` or `level` form EnvFilter accepts.
        let out = to_env_filter("gossip.comm,gossip.state=debug:warning").expect("spec");
        for d in out.split(',') {
            let lvl = d.rsplit('=').next().expect("level");
            assert!(["error", "warn", "info", "debug"].contains(&lvl), "{d}");
        }
    }

    #[test]
    fn live_spec_swaps_the_filter_and_keeps_it_on_errors() {
        use tracing::Level;
        let (_layer, handle) =
            reload::Layer::<Targets, Registry>::new(to_targets("info").expect("spec"));
        let live = LiveLogSpec::new("info".into(), handle.clone());
        let enabled = |target: &str, level: &Level| {
            handle
                .with_current(|t| t.would_enable(target, level))
                .expect("filter")
        };
        assert!(!enabled("gossip.comm", &Level::DEBUG));
        live.set("gossip.comm=debug:warning").expect("set");
        assert_eq!(live.spec(), "gossip.comm=debug:warning");
        assert!(enabled("gossip.comm", &Level::DEBUG));
        assert!(!enabled("gossip.state", &Level::INFO));
        assert!(matches!(live.set("loud"), Err(LogSpecError::Level(_))));
        assert_eq!(live.spec(), "gossip.comm=debug:warning");
        assert!(enabled("gossip.comm", &Level::DEBUG));
    }

    #[test]
    fn targets_filter_by_logger_prefix() {
        // gossip-node installs the translation as tracing-subscriber's `Targets`.
        use tracing::Level;
        use tracing_subscriber::filter::Targets;
        let t: Targets = to_env_filter("gossip.comm=debug:warning")
            .expect("spec")
            .parse()
            .expect("Targets accepts the directives");
        assert!(t.would_enable("gossip.comm", &Level::DEBUG));
        assert!(
            t.would_enable("gossip.comm.conn", &Level::DEBUG),
            "child logger"
        );
        assert!(!t.would_enable("gossip.discovery", &Level::INFO));
        assert!(t.would_enable("gossip.discovery", &Level::WARN));
        assert!(!t.would_enable("gossip_node", &Level::INFO));
    }
}
