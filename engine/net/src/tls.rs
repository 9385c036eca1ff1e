//! TLS material and the byte streams gossip runs over: rustls (ring provider only) for mutual TLS,
//! or plain TCP. The server requests a client certificate but lets a connection without one through
//! the TLS layer (Fabric's `RequestClientCert`); the gossip handshake then rejects it.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::read_ahead::ReadAheadTcp;
use crate::crypto::{MspManager, tls_cert_hash};

/// This peer's TLS certificate chain and key, PEM. The same certificate serves as server and
/// client certificate, as Fabric peers do by default.
#[derive(Clone, Debug)]
pub struct TlsMaterial {
    /// Leaf first, then any intermediates.
    pub cert_chain_pem: String,
    /// PKCS#8, SEC1 or PKCS#1 private key.
    pub key_pem: String,
}

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    /// The certificate chain PEM holds no certificate or does not parse.
    #[error("bad TLS certificate PEM: {0}")]
    BadCertificate(String),
    /// The key PEM does not parse.
    #[error("bad TLS key PEM: {0}")]
    BadKey(String),
    /// No org TLS CA is known, so no peer could be verified.
    #[error("no TLS root CA in the MSP manager")]
    NoRoots,
    /// rustls refused the configuration.
    #[error("rustls: {0}")]
    Rustls(#[from] rustls::Error),
    /// The client-certificate verifier could not be built.
    #[error("client verifier: {0}")]
    Verifier(String),
}

/// Everything TLS a running comm needs.
#[derive(Debug, Clone)]
pub(crate) struct TlsState {
    pub(crate) server: Arc<ServerConfig>,
    pub(crate) client: Arc<ClientConfig>,
    /// SHA-256 of our own leaf certificate DER, sent in every ConnEstablish.
    pub(crate) own_cert_hash: [u8; 32],
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

const ALPN_H2: &[u8] = b"h2";

/// Parses a PEM certificate chain.
pub fn parse_cert_chain(pem_text: &str) -> Result<Vec<CertificateDer<'static>>, TlsSetupError> {
    let chain = CertificateDer::pem_slice_iter(pem_text.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsSetupError::BadCertificate(e.to_string()))?;
    if chain.is_empty() {
        return Err(TlsSetupError::BadCertificate("no certificate".into()));
    }
    Ok(chain)
}

/// Parses a PEM private key (PKCS#8, SEC1 or PKCS#1).
pub fn parse_key(pem_text: &str) -> Result<PrivateKeyDer<'static>, TlsSetupError> {
    PrivateKeyDer::from_pem_slice(pem_text.as_bytes())
        .map_err(|e| TlsSetupError::BadKey(e.to_string()))
}

/// The org TLS CAs as a rustls root store.
pub fn root_store(msp: &MspManager) -> Result<RootCertStore, TlsSetupError> {
    let mut roots = RootCertStore::empty();
    for der in msp.tls_roots_der() {
        roots.add(CertificateDer::from(der.to_vec()))?;
    }
    if roots.is_empty() {
        return Err(TlsSetupError::NoRoots);
    }
    Ok(roots)
}

/// A client configuration verifying servers against the org TLS CAs; presents `client_cert` when
/// given (gossip always does; tests leave it out to check the rejection).
pub fn client_config(
    msp: &MspManager,
    client_cert: Option<&TlsMaterial>,
) -> Result<ClientConfig, TlsSetupError> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(root_store(msp)?);
    let mut config = match client_cert {
        Some(m) => builder
            .with_client_auth_cert(parse_cert_chain(&m.cert_chain_pem)?, parse_key(&m.key_pem)?)?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    Ok(config)
}

fn server_config(msp: &MspManager, material: &TlsMaterial) -> Result<ServerConfig, TlsSetupError> {
    let verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::new(root_store(msp)?), provider())
            .allow_unauthenticated()
            .build()
            .map_err(|e| TlsSetupError::Verifier(e.to_string()))?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            parse_cert_chain(&material.cert_chain_pem)?,
            parse_key(&material.key_pem)?,
        )?;
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    Ok(config)
}

impl TlsState {
    pub(crate) fn new(msp: &MspManager, material: &TlsMaterial) -> Result<Self, TlsSetupError> {
        let chain = parse_cert_chain(&material.cert_chain_pem)?;
        let own_cert_hash = chain
            .first()
            .map(|leaf| tls_cert_hash(leaf))
            .ok_or(TlsSetupError::NoRoots)?;
        Ok(Self {
            server: Arc::new(server_config(msp, material)?),
            client: Arc::new(client_config(msp, Some(material))?),
            own_cert_hash,
        })
    }
}

/// What the server learns about an accepted connection (tonic puts it in request extensions).
#[derive(Clone, Debug)]
pub struct PeerInfo {
    /// The remote socket address.
    pub remote_addr: Option<SocketAddr>,
    /// DER of the client's leaf TLS certificate; `None` without TLS or without a client cert.
    pub tls_leaf: Option<Bytes>,
}

/// A gossip byte stream: plain TCP or TLS over TCP, either side.
#[derive(Debug)]
pub enum NetIo {
    /// Plain TCP (TLS off).
    Plain(ReadAheadTcp),
    /// TLS, this side dialled.
    TlsClient(Box<tokio_rustls::client::TlsStream<ReadAheadTcp>>),
    /// TLS, this side accepted.
    TlsServer(Box<tokio_rustls::server::TlsStream<ReadAheadTcp>>),
}

impl NetIo {
    /// The remote's leaf certificate DER as seen in this TLS session.
    pub fn peer_leaf(&self) -> Option<Bytes> {
        let certs = match self {
            NetIo::Plain(_) => None,
            NetIo::TlsClient(s) => s.get_ref().1.peer_certificates(),
            NetIo::TlsServer(s) => s.get_ref().1.peer_certificates(),
        };
        certs
            .and_then(|c| c.first())
            .map(|c| Bytes::copy_from_slice(c))
    }

    fn tcp(&self) -> &TcpStream {
        match self {
            NetIo::Plain(s) => s.get_ref(),
            NetIo::TlsClient(s) => s.get_ref().0.get_ref(),
            NetIo::TlsServer(s) => s.get_ref().0.get_ref(),
        }
    }
}

impl tonic::transport::server::Connected for NetIo {
    type ConnectInfo = PeerInfo;

    fn connect_info(&self) -> PeerInfo {
        PeerInfo {
            remote_addr: self.tcp().peer_addr().ok(),
            tls_leaf: self.peer_leaf(),
        }
    }
}

impl AsyncRead for NetIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            NetIo::Plain(s) => Pin::new(s).poll_read(cx, buf),
            NetIo::TlsClient(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            NetIo::TlsServer(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for NetIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            NetIo::Plain(s) => Pin::new(s).poll_write(cx, buf),
            NetIo::TlsClient(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            NetIo::TlsServer(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            NetIo::Plain(s) => Pin::new(s).poll_flush(cx),
            NetIo::TlsClient(s) => Pin::new(s.as_mut()).poll_flush(cx),
            NetIo::TlsServer(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            NetIo::Plain(s) => Pin::new(s).poll_shutdown(cx),
            NetIo::TlsClient(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            NetIo::TlsServer(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            NetIo::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            NetIo::TlsClient(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
            NetIo::TlsServer(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            NetIo::Plain(s) => s.is_write_vectored(),
            NetIo::TlsClient(s) => s.is_write_vectored(),
            NetIo::TlsServer(s) => s.is_write_vectored(),
        }
    }
}
