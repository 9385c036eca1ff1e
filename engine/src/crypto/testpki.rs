//! A test PKI generator: per org an enrollment CA and a TLS CA, per peer an enrollment certificate
//! (`OU=peer`, like cryptogen with NodeOUs) and a TLS certificate for `localhost`, `127.0.0.1` and the
//! peer's host name. [`TestPki::write_msp_dirs`] writes Fabric's MSP folder layout (`signcerts/`,
//! `keystore/`, `cacerts/`, `tlscacerts/`, plus `tls/` with `server.crt`, `server.key` and `ca.crt`), so
//! the same files would serve a Fabric peer.
//!
//! Keys come from the OS RNG (through rcgen and ring); validity periods come from the caller's
//! `now`, so the generator itself reads no clock.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SanType,
};
use time::OffsetDateTime;

use super::msp::{MspManager, OrgMsp};
use super::{IdentityError, LocalSigner};

/// Why generating or writing a test PKI failed.
#[derive(Debug, thiserror::Error)]
pub enum TestPkiError {
    /// rcgen refused the parameters.
    #[error("generating certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// A time was out of range.
    #[error("validity period out of range")]
    Time,
    /// Writing the MSP folders failed.
    #[error("writing {path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
    /// The generated material did not load back.
    #[error("generated identity does not load: {0}")]
    Identity(#[from] IdentityError),
}

/// A certificate and its PKCS#8 private key, both PEM.
#[derive(Clone, Debug)]
pub struct CertKey {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The PKCS#8 private key, PEM (`BEGIN PRIVATE KEY`).
    pub key_pem: String,
}

/// One generated peer.
#[derive(Clone, Debug)]
pub struct TestPeer {
    /// Host name, e.g. `peer0.org1.example.com`.
    pub name: String,
    /// MSP id of its org.
    pub mspid: String,
    /// Enrollment (signing) certificate and key.
    pub enrollment: CertKey,
    /// TLS certificate and key (used as both server and client certificate).
    pub tls: CertKey,
}

impl TestPeer {
    /// The peer's signer, loaded from the generated PEMs.
    pub fn signer(&self) -> Result<LocalSigner, IdentityError> {
        LocalSigner::from_pems(
            &self.mspid,
            self.enrollment.cert_pem.as_bytes(),
            self.enrollment.key_pem.as_bytes(),
        )
    }
}

/// One generated org.
#[derive(Clone, Debug)]
pub struct TestOrg {
    /// MSP id, e.g. `Org1MSP`.
    pub mspid: String,
    /// Domain, e.g. `org1.example.com`.
    pub domain: String,
    /// Enrollment CA certificate and key.
    pub ca: CertKey,
    /// TLS CA certificate and key.
    pub tls_ca: CertKey,
    /// The org's peers.
    pub peers: Vec<TestPeer>,
}

impl TestOrg {
    /// The org's verifying MSP.
    pub fn msp(&self) -> Result<OrgMsp, IdentityError> {
        OrgMsp::from_pems(
            &self.mspid,
            &[self.ca.cert_pem.as_bytes()],
            &[],
            &[self.tls_ca.cert_pem.as_bytes()],
        )
    }
}

/// A generated PKI: orgs `Org1MSP`, `Org2MSP`, ... with domains `org1.example.com`, ...
#[derive(Clone, Debug)]
pub struct TestPki {
    /// The orgs, in order.
    pub orgs: Vec<TestOrg>,
}

/// What to generate.
#[derive(Clone, Debug)]
pub struct TestPkiSpec {
    /// Peers per org, one entry per org.
    pub peers_per_org: Vec<usize>,
    /// Start of validity, Unix seconds (certificates are valid from one hour before it).
    pub now_unix_s: i64,
    /// Length of validity for peer certificates, seconds (CAs get ten years).
    pub peer_validity_s: i64,
}

impl TestPkiSpec {
    /// `orgs` orgs of `peers` peers each, valid for ten years from `now_unix_s`.
    pub fn uniform(orgs: usize, peers: usize, now_unix_s: i64) -> Self {
        Self {
            peers_per_org: vec![peers; orgs],
            now_unix_s,
            peer_validity_s: TEN_YEARS_S,
        }
    }
}

const TEN_YEARS_S: i64 = 10 * 365 * 24 * 3600;
const BACKDATE_S: i64 = 3600;

fn at(unix_s: i64) -> Result<OffsetDateTime, TestPkiError> {
    OffsetDateTime::from_unix_timestamp(unix_s).map_err(|_| TestPkiError::Time)
}

fn dn(org: &str, ou: Option<&str>, cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CountryName, "US");
    dn.push(DnType::StateOrProvinceName, "California");
    dn.push(DnType::LocalityName, "San Francisco");
    dn.push(DnType::OrganizationName, org);
    if let Some(ou) = ou {
        dn.push(DnType::OrganizationalUnitName, ou);
    }
    dn.push(DnType::CommonName, cn);
    dn
}

fn new_ca(
    domain: &str,
    cn: &str,
    from: i64,
) -> Result<(CertKey, Issuer<'static, KeyPair>), TestPkiError> {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let mut params = CertificateParams::default();
    params.distinguished_name = dn(domain, None, cn);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
    ];
    params.not_before = at(from - BACKDATE_S)?;
    params.not_after = at(from + TEN_YEARS_S)?;
    let cert = params.self_signed(&key)?;
    let cert_key = CertKey {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    };
    Ok((cert_key, Issuer::new(params, key)))
}

fn new_leaf(
    issuer: &Issuer<'static, KeyPair>,
    domain: &str,
    name: &str,
    ou: Option<&str>,
    tls: bool,
    spec: &TestPkiSpec,
) -> Result<CertKey, TestPkiError> {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let mut params = CertificateParams::default();
    params.distinguished_name = dn(domain, ou, name);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.not_before = at(spec.now_unix_s - BACKDATE_S)?;
    params.not_after = at(spec.now_unix_s + spec.peer_validity_s)?;
    params.use_authority_key_identifier_extension = true;
    if tls {
        params.key_usages.push(KeyUsagePurpose::KeyEncipherment);
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let short = name.split('.').next().unwrap_or(name);
        params.subject_alt_names = vec![
            SanType::DnsName(name.try_into()?),
            SanType::DnsName(short.try_into()?),
            SanType::DnsName("localhost".try_into()?),
            SanType::IpAddress([127, 0, 0, 1].into()),
        ];
    }
    let cert = params.signed_by(&key, issuer)?;
    Ok(CertKey {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

impl TestPki {
    /// Generates the PKI described by `spec`.
    pub fn generate(spec: &TestPkiSpec) -> Result<Self, TestPkiError> {
        let mut orgs = Vec::with_capacity(spec.peers_per_org.len());
        for (i, &peer_count) in spec.peers_per_org.iter().enumerate() {
            let domain = format!("org{}.example.com", i + 1);
            let mspid = format!("Org{}MSP", i + 1);
            let (ca, ca_issuer) = new_ca(&domain, &format!("ca.{domain}"), spec.now_unix_s)?;
            let (tls_ca, tls_issuer) =
                new_ca(&domain, &format!("tlsca.{domain}"), spec.now_unix_s)?;
            let mut peers = Vec::with_capacity(peer_count);
            for p in 0..peer_count {
                let name = format!("peer{p}.{domain}");
                peers.push(TestPeer {
                    enrollment: new_leaf(&ca_issuer, &domain, &name, Some("peer"), false, spec)?,
                    tls: new_leaf(&tls_issuer, &domain, &name, None, true, spec)?,
                    mspid: mspid.clone(),
                    name,
                });
            }
            orgs.push(TestOrg {
                mspid,
                domain,
                ca,
                tls_ca,
                peers,
            });
        }
        Ok(Self { orgs })
    }

    /// An MSP manager that knows every org.
    pub fn msp_manager(&self) -> Result<MspManager, IdentityError> {
        let mut manager = MspManager::new();
        for org in &self.orgs {
            manager.add_org(org.msp()?);
        }
        Ok(manager)
    }

    /// Every peer, org by org.
    pub fn peers(&self) -> impl Iterator<Item = &TestPeer> {
        self.orgs.iter().flat_map(|o| o.peers.iter())
    }

    /// Writes `<root>/<domain>/msp/` (the org's verifying MSP) and, per peer,
    /// `<root>/<domain>/peers/<name>/{msp,tls}/` in Fabric's layout. Returns the root.
    pub fn write_msp_dirs(&self, root: &Path) -> Result<PathBuf, TestPkiError> {
        for org in &self.orgs {
            let org_dir = root.join(&org.domain);
            let ca_file = format!("ca.{}-cert.pem", org.domain);
            let tlsca_file = format!("tlsca.{}-cert.pem", org.domain);
            write(
                &org_dir.join("msp/cacerts").join(&ca_file),
                &org.ca.cert_pem,
            )?;
            write(
                &org_dir.join("msp/tlscacerts").join(&tlsca_file),
                &org.tls_ca.cert_pem,
            )?;
            for peer in &org.peers {
                let dir = org_dir.join("peers").join(&peer.name);
                write(
                    &dir.join("msp/signcerts")
                        .join(format!("{}-cert.pem", peer.name)),
                    &peer.enrollment.cert_pem,
                )?;
                write(&dir.join("msp/keystore/priv_sk"), &peer.enrollment.key_pem)?;
                write(&dir.join("msp/cacerts").join(&ca_file), &org.ca.cert_pem)?;
                write(
                    &dir.join("msp/tlscacerts").join(&tlsca_file),
                    &org.tls_ca.cert_pem,
                )?;
                write(&dir.join("tls/server.crt"), &peer.tls.cert_pem)?;
                write(&dir.join("tls/server.key"), &peer.tls.key_pem)?;
                write(&dir.join("tls/ca.crt"), &org.tls_ca.cert_pem)?;
            }
        }
        Ok(root.to_path_buf())
    }
}

fn write(path: &Path, text: &str) -> Result<(), TestPkiError> {
    let io = |source| TestPkiError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    std::fs::write(path, text).map_err(io)
}
