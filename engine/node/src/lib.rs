//! Library side of the `gossip-node` binary (feature `node`): loading Fabric's `core.yaml` with
//! `CORE_*` overrides, the `FABRIC_LOGGING_SPEC` translator, the control protocol's messages and
//! block builder, and the fault hook. This module reads files and the environment, so it is **not**
//! part of the sans-IO core; the core never depends on it.
//!
//! - [`raw`]: viper's layer: flattened case-insensitive keys, env overrides, Go durations.
//! - [`peer`]: [`NodeConfig`] from the keys, with startup diagnostics.
//! - [`material`]: reading the MSP and TLS files a [`NodeConfig`] names.
//! - [`orderer`]: `--orderer-msp` and `--orderer-signer`.
//! - [`logspec`]: `FABRIC_LOGGING_SPEC` → `EnvFilter` directives.
//! - [`control`]: the control protocol of `engine/CONTROL.md`.
//! - [`block`]: the orderer-signed block `inject_block` builds with `--orderer-signer`.
//! - [`fault`]: the seeded drop filter of `--fault-drop-share`.
//! - [`ledger`]: the durable block store (redb) under `peer.fileSystemPath`.
//! - [`ops`]: the operations endpoint (`/metrics`, `/healthz`, `/logspec`, `/version`).

pub mod block;
pub mod config_keys;
pub mod control;
pub mod fault;
pub mod ledger;
pub mod logspec;
pub mod material;
pub mod ops;
pub mod orderer;
pub mod peer;
pub mod raw;

use std::path::PathBuf;

pub use peer::{Diagnostic, NodeConfig, Severity, TlsFiles};
pub use raw::{RawConfig, RawValue, Source, parse_go_duration};

/// Why the node's configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum NodeConfigError {
    /// The config file could not be read.
    #[error("reading config file {path}: {source}")]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
    /// No config file was given and `FABRIC_CFG_PATH` is not set.
    #[error("no config file: pass --config FILE or set FABRIC_CFG_PATH to the folder of core.yaml")]
    NoConfigFile,
    /// The YAML does not parse.
    #[error("{file} does not parse: {reason}")]
    Yaml {
        /// The file (`core.yaml` where the text came from elsewhere).
        file: String,
        /// The parser's message.
        reason: String,
    },
    /// A key has a value of the wrong type or form.
    #[error("{key}: {value:?} is not {expected}")]
    BadValue {
        /// The key.
        key: String,
        /// The value as given.
        value: String,
        /// What was expected.
        expected: &'static str,
    },
    /// A required key is unset.
    #[error("{key} is not set: {why}")]
    Missing {
        /// The key.
        key: &'static str,
        /// Why it is needed.
        why: &'static str,
    },
    /// The values are inconsistent.
    #[error("{0}")]
    Invalid(String),
    /// A file named by a key cannot be read or parsed.
    #[error("{key} = {path}: {reason}")]
    File {
        /// The key that names the file (or folder).
        key: String,
        /// The path.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// An `--org-msp MSPID=DIR` argument is malformed or its folder does not load.
    #[error("--org-msp {arg}: {reason}")]
    OrgMsp {
        /// The argument.
        arg: String,
        /// Why.
        reason: String,
    },
    /// An `--orderer-msp` or `--orderer-signer` argument is malformed or its folder does not load.
    #[error("{flag} {arg}: {reason}")]
    Orderer {
        /// The flag.
        flag: &'static str,
        /// The argument.
        arg: String,
        /// Why.
        reason: String,
    },
}

/// An error and its causes as one line, for a binary to print once: each cause joined with `: `,
/// except a cause whose text is already in the line (this project's errors spell their cause in
/// their own message, and also return it from `source()`, so printing both, as anyhow's `{:#}`
/// does, repeats it).
pub fn error_chain_text<'a>(
    chain: impl IntoIterator<Item = &'a (dyn std::error::Error + 'static)>,
) -> String {
    let mut line = String::new();
    for cause in chain {
        let text = cause.to_string();
        let text = text.trim_end();
        if text.is_empty() || line.contains(text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(text);
    }
    line
}

#[cfg(test)]
mod error_chain_tests {
    use super::*;

    #[test]
    fn a_cause_already_in_the_message_is_printed_once() {
        let io = std::io::Error::from(std::io::ErrorKind::NotFound);
        let io_text = io.to_string();
        let e = NodeConfigError::ReadFile {
            path: "/nonexistent.yaml".into(),
            source: io,
        };
        let text = error_chain_text(anyhow::Error::from(e).chain());
        assert_eq!(text.matches(&io_text).count(), 1, "{text}");
        assert!(
            text.starts_with("reading config file /nonexistent.yaml: "),
            "{text}"
        );
        let wrapped = anyhow::Error::from(std::io::Error::other("disk on fire")).context("saving");
        assert_eq!(error_chain_text(wrapped.chain()), "saving: disk on fire");
    }
}
