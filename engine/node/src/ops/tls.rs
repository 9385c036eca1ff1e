//! The operations endpoint's TLS: `operations.tls.cert.file` / `key.file` as the server
//! identity, and with `clientAuthRequired` a client certificate chaining to one of
//! `operations.tls.clientRootCAs.files`. PEM parsing is the gossip comm's
//! ([`gossip_engine::tls`]); the crypto provider is ring's, as for gossip.

use std::path::Path;
use std::sync::Arc;

use gossip_engine::tls::{parse_cert_chain, parse_key};
use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;
use tokio_rustls::TlsAcceptor;

use super::OpsError;
use super::config::OperationsTls;

fn read(key: &'static str, path: &Path) -> Result<String, OpsError> {
    std::fs::read_to_string(path).map_err(|e| OpsError::Tls {
        key,
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}

/// The acceptor for `cfg`.
pub(super) fn acceptor(cfg: &OperationsTls) -> Result<TlsAcceptor, OpsError> {
    let bad = |key: &'static str, path: &Path| {
        let path = path.display().to_string();
        move |e: &dyn std::fmt::Display| OpsError::Tls {
            key,
            path: path.clone(),
            reason: e.to_string(),
        }
    };
    const CERT: &str = "operations.tls.cert.file";
    const KEY: &str = "operations.tls.key.file";
    const CAS: &str = "operations.tls.clientRootCAs.files";
    let chain = parse_cert_chain(&read(CERT, &cfg.cert_file)?)
        .map_err(|e| bad(CERT, &cfg.cert_file)(&e))?;
    let key = parse_key(&read(KEY, &cfg.key_file)?).map_err(|e| bad(KEY, &cfg.key_file)(&e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(CERT, &cfg.cert_file)(&e))?;
    let builder = if cfg.client_auth_required {
        let mut roots = RootCertStore::empty();
        for file in &cfg.client_root_ca_files {
            for cert in parse_cert_chain(&read(CAS, file)?).map_err(|e| bad(CAS, file)(&e))? {
                roots.add(cert).map_err(|e| bad(CAS, file)(&e))?;
            }
        }
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| OpsError::Tls {
                key: CAS,
                path: String::new(),
                reason: e.to_string(),
            })?;
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|e| bad(KEY, &cfg.key_file)(&e))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
