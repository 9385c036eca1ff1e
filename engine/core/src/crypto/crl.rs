//! Certificate revocation lists, as Fabric's MSP reads them from an MSP folder's `crls/`: X.509
//! CRLs (PEM or DER), each signed by a CA of the org. A certificate is revoked when a CRL issued
//! by its direct issuer lists its serial number (Fabric's `validateCertAgainstChain`, which
//! matches the CRL to the issuer and checks the CRL's signature with the issuer's key).
//!
//! A CRL is checked once, when the MSP is built ([`Crl::verified_by`]): a CRL that no CA of the
//! org signed is refused there, so validation only compares names and serials.

use std::collections::BTreeSet;

use bytes::Bytes;
use x509_parser::prelude::*;

use super::IdentityError;
use super::identity::{Certificate, OID_ECDSA_SHA256, OID_ECDSA_SHA384, verify_issuer_signature};

/// Serial numbers listed by one CRL at most (a bound on what a CRL file may make us hold).
pub const REVOKED_LEN_MAX: usize = 1 << 20;

/// A parsed CRL: who issued it and which serials it revokes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Crl {
    /// The raw DER of the issuer name (compared with a certificate's issuer).
    pub issuer_raw: Bytes,
    /// The revoked serial numbers (DER content bytes, as [`Certificate::serial`]).
    pub revoked_serials: BTreeSet<Bytes>,
    tbs_raw: Bytes,
    signature: Bytes,
    signature_alg_oid: String,
}

impl Crl {
    /// Parses a DER CRL.
    pub fn from_der(der: &[u8]) -> Result<Self, IdentityError> {
        let bad = |e: String| IdentityError::BadCrl(e);
        let (rest, crl) = parse_x509_crl(der).map_err(|e| bad(e.to_string()))?;
        if !rest.is_empty() {
            return Err(bad("trailing bytes after the CRL".into()));
        }
        let mut revoked_serials = BTreeSet::new();
        for r in crl.iter_revoked_certificates() {
            if revoked_serials.len() >= REVOKED_LEN_MAX {
                return Err(bad(format!("more than {REVOKED_LEN_MAX} revoked serials")));
            }
            revoked_serials.insert(Bytes::copy_from_slice(r.raw_serial()));
        }
        Ok(Self {
            issuer_raw: Bytes::copy_from_slice(crl.issuer().as_raw()),
            revoked_serials,
            tbs_raw: Bytes::copy_from_slice(crl.tbs_cert_list.as_ref()),
            signature: Bytes::copy_from_slice(&crl.signature_value.data),
            signature_alg_oid: crl.signature_algorithm.algorithm.to_id_string(),
        })
    }

    /// Parses every CRL of a PEM text (`-----BEGIN X509 CRL-----` blocks), or the text as one
    /// DER CRL when it holds no PEM block.
    pub fn from_pem_or_der(data: &[u8]) -> Result<Vec<Self>, IdentityError> {
        match ::pem::parse_many(data) {
            Ok(blocks) if !blocks.is_empty() => blocks
                .iter()
                .filter(|b| b.tag() == "X509 CRL")
                .map(|b| Self::from_der(b.contents()))
                .collect(),
            _ => Self::from_der(data).map(|c| vec![c]),
        }
    }

    /// Checks that `ca` issued and signed this CRL.
    pub fn verified_by(&self, ca: &Certificate) -> Result<(), IdentityError> {
        if self.issuer_raw != ca.subject_raw {
            return Err(IdentityError::UnknownIssuer);
        }
        if self.signature_alg_oid != OID_ECDSA_SHA256 && self.signature_alg_oid != OID_ECDSA_SHA384
        {
            return Err(IdentityError::UnsupportedKey);
        }
        verify_issuer_signature(&self.signature_alg_oid, &self.tbs_raw, &self.signature, ca)
    }

    /// Whether this CRL revokes `cert` (issued by this CRL's issuer, serial listed).
    pub fn revokes(&self, cert: &Certificate) -> bool {
        cert.issuer_raw == self.issuer_raw && self.revoked_serials.contains(&cert.serial)
    }
}
