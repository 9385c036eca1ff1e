//! `operations.*` and `metrics.provider`: where the operations endpoint listens, its TLS, and
//! whether it serves `/metrics`. Read from core.yaml with `CORE_OPERATIONS_*` /
//! `CORE_METRICS_PROVIDER` overrides, like every other key.

use std::path::{Path, PathBuf};

use crate::NodeConfigError;
use crate::peer::resolve;
use crate::raw::RawConfig;

/// Fabric's default `operations.listenAddress`.
pub const LISTEN_ADDRESS_DEFAULT: &str = "127.0.0.1:9443";

/// The keys this module reads (for `CORE_*` overrides of keys absent from the file).
pub const OPERATIONS_KEYS_USED: &[&str] = &[
    "operations.listenAddress",
    "operations.tls.enabled",
    "operations.tls.cert.file",
    "operations.tls.key.file",
    "operations.tls.clientAuthRequired",
    "operations.tls.clientRootCAs.files",
    "metrics.provider",
];

/// `metrics.provider`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricsProvider {
    /// `/metrics` in the Prometheus text format.
    Prometheus,
    /// No `/metrics` (Fabric's default).
    Disabled,
}

/// `operations.tls.*` when `operations.tls.enabled`, paths resolved against the config folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperationsTls {
    /// `operations.tls.cert.file`.
    pub cert_file: PathBuf,
    /// `operations.tls.key.file`.
    pub key_file: PathBuf,
    /// `operations.tls.clientAuthRequired`: clients must present a certificate issued by one of
    /// `client_root_ca_files`.
    pub client_auth_required: bool,
    /// `operations.tls.clientRootCAs.files`.
    pub client_root_ca_files: Vec<PathBuf>,
}

/// The operations endpoint's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperationsConfig {
    /// `operations.listenAddress` (`host:port`; default [`LISTEN_ADDRESS_DEFAULT`]). `None` when
    /// the key is set to an empty string: no operations endpoint (many nodes on one machine).
    pub listen_addr: Option<String>,
    /// `operations.tls.*` when enabled.
    pub tls: Option<OperationsTls>,
    /// `metrics.provider`.
    pub metrics_provider: MetricsProvider,
}

impl Default for OperationsConfig {
    fn default() -> Self {
        Self {
            listen_addr: Some(LISTEN_ADDRESS_DEFAULT.to_owned()),
            tls: None,
            metrics_provider: MetricsProvider::Disabled,
        }
    }
}

impl OperationsConfig {
    /// Reads the keys; relative file names resolve against `base` (the config file's folder).
    pub fn from_raw(raw: &RawConfig, base: &Path) -> Result<Self, NodeConfigError> {
        const LISTEN: &str = "operations.listenAddress";
        let listen_addr = match raw.string(LISTEN) {
            Some(addr) => {
                check_host_port(LISTEN, &addr)?;
                Some(addr)
            }
            // Present but empty: disabled. Absent: Fabric's default.
            None if raw.source(LISTEN).is_some() => None,
            None => Some(LISTEN_ADDRESS_DEFAULT.to_owned()),
        };
        let metrics_provider = match raw.string("metrics.provider") {
            None => MetricsProvider::Disabled,
            Some(p) => match p.to_ascii_lowercase().as_str() {
                "prometheus" => MetricsProvider::Prometheus,
                "disabled" => MetricsProvider::Disabled,
                "statsd" => {
                    return Err(NodeConfigError::Invalid(
                        "metrics.provider: statsd is not supported by gossip-node \
                         (use prometheus or disabled)"
                            .into(),
                    ));
                }
                _ => {
                    return Err(NodeConfigError::BadValue {
                        key: "metrics.provider".into(),
                        value: p,
                        expected: "prometheus, statsd or disabled",
                    });
                }
            },
        };
        let tls = if raw.bool("operations.tls.enabled")?.unwrap_or(false) {
            Some(tls(raw, base)?)
        } else {
            None
        };
        Ok(Self {
            listen_addr,
            tls,
            metrics_provider,
        })
    }
}

fn tls(raw: &RawConfig, base: &Path) -> Result<OperationsTls, NodeConfigError> {
    let file = |key: &'static str, why: &'static str| {
        raw.string(key)
            .map(|f| resolve(base, &f))
            .ok_or(NodeConfigError::Missing { key, why })
    };
    let cert_file = file(
        "operations.tls.cert.file",
        "operations.tls.enabled is true, and the endpoint needs a server certificate",
    )?;
    let key_file = file(
        "operations.tls.key.file",
        "operations.tls.enabled is true, and the endpoint needs the certificate's key",
    )?;
    let client_auth_required = raw
        .bool("operations.tls.clientAuthRequired")?
        .unwrap_or(false);
    let client_root_ca_files: Vec<PathBuf> = raw
        .list("operations.tls.clientRootCAs.files")
        .iter()
        .map(|f| resolve(base, f))
        .collect();
    if client_auth_required && client_root_ca_files.is_empty() {
        return Err(NodeConfigError::Missing {
            key: "operations.tls.clientRootCAs.files",
            why: "operations.tls.clientAuthRequired is true, and client certificates are checked \
                  against these CAs",
        });
    }
    Ok(OperationsTls {
        cert_file,
        key_file,
        client_auth_required,
        client_root_ca_files,
    })
}

/// `host:port` with a numeric port (the host may be a name, resolved when the node starts).
fn check_host_port(key: &str, addr: &str) -> Result<(), NodeConfigError> {
    let port_ok = addr
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
    if port_ok {
        Ok(())
    } else {
        Err(NodeConfigError::BadValue {
            key: key.to_owned(),
            value: addr.to_owned(),
            expected: "host:port (or an empty string to turn the endpoint off)",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raw::{RawValue, Source};

    fn raw(yaml: &str, env: &[(&str, &str)]) -> RawConfig {
        let mut raw = RawConfig::from_yaml(yaml).expect("yaml");
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let _ = raw.apply_env(env, OPERATIONS_KEYS_USED);
        raw
    }

    fn load(yaml: &str, env: &[(&str, &str)]) -> Result<OperationsConfig, NodeConfigError> {
        OperationsConfig::from_raw(&raw(yaml, env), Path::new("/cfg"))
    }

    #[test]
    fn defaults_are_fabrics() {
        let c = load("peer:\n  id: a\n", &[]).expect("config");
        assert_eq!(c, OperationsConfig::default());
        assert_eq!(c.listen_addr.as_deref(), Some("127.0.0.1:9443"));
    }

    #[test]
    fn reads_file_and_env_overrides() {
        let yaml = "operations:\n  listenAddress: 127.0.0.1:9443\n  tls:\n    enabled: true\n    \
                    cert:\n      file: tls/ops.crt\n    key:\n      file: /abs/ops.key\n    \
                    clientAuthRequired: true\n    clientRootCAs:\n      files:\n        - tls/ca.crt\n\
                    metrics:\n  provider: disabled\n";
        let c = load(
            yaml,
            &[
                ("CORE_OPERATIONS_LISTENADDRESS", "0.0.0.0:10443"),
                ("CORE_METRICS_PROVIDER", "prometheus"),
            ],
        )
        .expect("config");
        assert_eq!(c.listen_addr.as_deref(), Some("0.0.0.0:10443"));
        assert_eq!(c.metrics_provider, MetricsProvider::Prometheus);
        assert_eq!(
            c.tls,
            Some(OperationsTls {
                cert_file: PathBuf::from("/cfg/tls/ops.crt"),
                key_file: PathBuf::from("/abs/ops.key"),
                client_auth_required: true,
                client_root_ca_files: vec![PathBuf::from("/cfg/tls/ca.crt")],
            })
        );
    }

    #[test]
    fn env_keys_absent_from_the_file_apply() {
        let c = load(
            "peer:\n  id: a\n",
            &[
                ("CORE_OPERATIONS_LISTENADDRESS", "127.0.0.1:0"),
                ("CORE_METRICS_PROVIDER", "Prometheus"),
            ],
        )
        .expect("config");
        assert_eq!(c.listen_addr.as_deref(), Some("127.0.0.1:0"));
        assert_eq!(c.metrics_provider, MetricsProvider::Prometheus);
    }

    #[test]
    fn an_empty_listen_address_turns_the_endpoint_off() {
        let c = load("operations:\n  listenAddress: \"\"\n", &[]).expect("config");
        assert_eq!(c.listen_addr, None);
        let c = load("peer:\n  id: a\n", &[("CORE_OPERATIONS_LISTENADDRESS", "")]).expect("config");
        assert_eq!(c.listen_addr, None);
        let mut r = raw("peer:\n  id: a\n", &[]);
        r.set(
            "operations.listenAddress",
            RawValue::Str(String::new()),
            Source::File,
        );
        let c = OperationsConfig::from_raw(&r, Path::new("/cfg")).expect("config");
        assert_eq!(c.listen_addr, None);
    }

    #[test]
    fn bad_values_name_their_key() {
        let e = load("metrics:\n  provider: statsd\n", &[]).expect_err("statsd");
        let text = e.to_string();
        assert!(
            text.contains("metrics.provider") && text.contains("not supported"),
            "{text}"
        );
        let e = load("metrics:\n  provider: graphite\n", &[]).expect_err("unknown");
        assert!(e.to_string().contains("metrics.provider"), "{e}");
        for bad in ["9443", "localhost", ":9443", "127.0.0.1:99999"] {
            let e =
                load(&format!("operations:\n  listenAddress: \"{bad}\"\n"), &[]).expect_err(bad);
            assert!(e.to_string().contains("operations.listenAddress"), "{e}");
        }
        let e = load("operations:\n  tls:\n    enabled: true\n", &[]).expect_err("no cert");
        assert!(e.to_string().contains("operations.tls.cert.file"), "{e}");
        let e = load("operations:\n  tls:\n    enabled: maybe\n", &[]).expect_err("bad bool");
        assert!(e.to_string().contains("operations.tls.enabled"), "{e}");
        let e = load(
            "operations:\n  tls:\n    enabled: true\n    cert:\n      file: a\n    key:\n      \
             file: b\n    clientAuthRequired: true\n",
            &[],
        )
        .expect_err("no client CAs");
        assert!(
            e.to_string().contains("operations.tls.clientRootCAs.files"),
            "{e}"
        );
    }
}
