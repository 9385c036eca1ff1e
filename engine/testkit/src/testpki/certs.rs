//! Certificate generation for the test PKI: CAs and leaves as cryptogen makes them, every one with a
//! low-S ECDSA signature.
//!
//! rcgen signs through ring, whose ECDSA signatures have a random S, above half the group order
//! half the time. Fabric's MSP replaces such a certificate by a re-encoded low-S copy before it
//! serializes the identity, so its PKI-ID would no longer be SHA-256 over the file we wrote. Each
//! certificate is therefore signed again (same TBS, fresh ECDSA nonce) until its S is low: each
//! try succeeds with probability one half, [`LOW_S_TRIES_MAX`] bounds them.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SanType,
};
use time::OffsetDateTime;

use super::{CertKey, TestPkiError};
use gossip_core::crypto::identity::Certificate;
use gossip_core::crypto::{Curve, der};

/// How many times a certificate is signed before giving up on a low S (each try: 1/2).
pub const LOW_S_TRIES_MAX: usize = 64;

/// CAs are valid for ten years.
pub const TEN_YEARS_S: i64 = 10 * 365 * 24 * 3600;
/// Every certificate is valid from one hour before `now`.
const BACKDATE_S: i64 = 3600;

/// A CA: its certificate and key, and the issuer that signs with it.
pub struct Ca {
    /// The self-signed certificate and its key.
    pub cert_key: CertKey,
    /// The issuer for leaves.
    pub issuer: Issuer<'static, KeyPair>,
}

/// What a leaf certificate is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeafKind<'a> {
    /// An enrollment (signing) certificate with this NodeOU (`peer`, `orderer`, `admin`, ...).
    Enrollment(&'a str),
    /// A TLS server and client certificate for the host name, `localhost` and 127.0.0.1.
    Tls,
}

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

/// Whether a certificate's (issuer's) ECDSA signature has S at most n/2.
pub fn has_low_s(cert_der: &[u8]) -> Result<bool, TestPkiError> {
    let cert = Certificate::from_der(bytes::Bytes::copy_from_slice(cert_der))?;
    Ok(der::check_low_s(&cert.signature, Curve::P256).is_ok())
}

/// Calls `sign` until the certificate it returns has a low S.
fn low_s(
    name: &str,
    mut sign: impl FnMut() -> Result<rcgen::Certificate, rcgen::Error>,
) -> Result<rcgen::Certificate, TestPkiError> {
    for _ in 0..LOW_S_TRIES_MAX {
        let cert = sign()?;
        if has_low_s(cert.der())? {
            return Ok(cert);
        }
    }
    Err(TestPkiError::HighS {
        name: name.to_owned(),
        tries: LOW_S_TRIES_MAX,
    })
}

/// The parameters [`new_ca`] signs its certificate with (the subject name and usages an issuer
/// needs).
fn ca_params(domain: &str, cn: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = dn(domain, None, cn);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
    ];
    params
}

/// The CA `cn` of `domain` that [`new_ca`] made, again from its certificate and key, to issue
/// more certificates (a renewal) or a CRL.
pub fn ca_again(domain: &str, cn: &str, cert_key: &CertKey) -> Result<Ca, TestPkiError> {
    let key = KeyPair::from_pem(&cert_key.key_pem)?;
    Ok(Ca {
        cert_key: cert_key.clone(),
        issuer: Issuer::new(ca_params(domain, cn), key),
    })
}

/// A CRL of `ca` revoking the certificates with these serial numbers (DER content bytes), issued
/// at `now_unix_s`, next update in a day; PEM.
pub fn new_crl(
    ca: &Ca,
    revoked_serials: &[&[u8]],
    now_unix_s: i64,
) -> Result<String, TestPkiError> {
    let revoked_certs = revoked_serials
        .iter()
        .map(|serial| {
            Ok(rcgen::RevokedCertParams {
                serial_number: rcgen::SerialNumber::from_slice(serial),
                revocation_time: at(now_unix_s)?,
                reason_code: Some(rcgen::RevocationReason::KeyCompromise),
                invalidity_date: None,
            })
        })
        .collect::<Result<Vec<_>, TestPkiError>>()?;
    let params = rcgen::CertificateRevocationListParams {
        this_update: at(now_unix_s)?,
        next_update: at(now_unix_s + 24 * 3600)?,
        crl_number: rcgen::SerialNumber::from(1u64),
        issuing_distribution_point: None,
        revoked_certs,
        key_identifier_method: rcgen::KeyIdMethod::Sha256,
    };
    Ok(params.signed_by(&ca.issuer)?.pem()?)
}

/// A self-signed CA named `cn` for `domain`, valid ten years from `now_unix_s` (less the backdate).
pub fn new_ca(domain: &str, cn: &str, now_unix_s: i64) -> Result<Ca, TestPkiError> {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let mut params = CertificateParams::default();
    params.distinguished_name = dn(domain, None, cn);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
    ];
    params.not_before = at(now_unix_s - BACKDATE_S)?;
    params.not_after = at(now_unix_s + TEN_YEARS_S)?;
    let cert = low_s(cn, || params.self_signed(&key))?;
    let cert_key = CertKey {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    };
    Ok(Ca {
        cert_key,
        issuer: Issuer::new(params, key),
    })
}

/// A leaf for host or user `name` of `domain`, issued by `ca`, valid from `now_unix_s` (less the
/// backdate) for `validity_s`.
pub fn new_leaf(
    ca: &Ca,
    domain: &str,
    name: &str,
    kind: LeafKind<'_>,
    now_unix_s: i64,
    validity_s: i64,
) -> Result<CertKey, TestPkiError> {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let mut params = CertificateParams::default();
    let ou = match kind {
        LeafKind::Enrollment(ou) => Some(ou),
        LeafKind::Tls => None,
    };
    params.distinguished_name = dn(domain, ou, name);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.not_before = at(now_unix_s - BACKDATE_S)?;
    params.not_after = at(now_unix_s + validity_s)?;
    params.use_authority_key_identifier_extension = true;
    if kind == LeafKind::Tls {
        params.key_usages.push(KeyUsagePurpose::KeyEncipherment);
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let short = name.split(['.', '@']).next().unwrap_or(name);
        let mut sans = vec![SanType::DnsName(name.replace('@', ".").try_into()?)];
        if short != name {
            sans.push(SanType::DnsName(short.try_into()?));
        }
        sans.push(SanType::DnsName("localhost".try_into()?));
        sans.push(SanType::IpAddress([127, 0, 0, 1].into()));
        params.subject_alt_names = sans;
    }
    let cert = low_s(name, || params.signed_by(&key, &ca.issuer))?;
    Ok(CertKey {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}
