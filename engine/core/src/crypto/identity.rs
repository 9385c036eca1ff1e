//! Peer identities: the serialized `msp.SerializedIdentity {mspid, id_bytes = PEM certificate}`, its
//! PKI-ID, and the hashes derived from identities (TLS certificate hash, channel MAC).

use bytes::Bytes;
use gossip_proto::msp::SerializedIdentity;
use prost::Message;
use ring::digest;
use x509_parser::prelude::*;

use super::ecdsa::PublicKey;
use super::{IdentityError, der};
use crate::types::PkiId;

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    sha256_concat([data])
}

/// SHA-256 over the concatenation of `parts`, without building the concatenation.
pub fn sha256_concat<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> [u8; 32] {
    let mut ctx = digest::Context::new(&digest::SHA256);
    for part in parts {
        ctx.update(part);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// PKI-ID = SHA-256(mspid ‖ id_bytes), a plain concatenation (spec 2.1).
pub fn pki_id_of(mspid: &str, id_bytes: &[u8]) -> PkiId {
    PkiId(sha256_concat([mspid.as_bytes(), id_bytes]))
}

/// SHA-256 over the DER of a TLS leaf certificate, as carried in `ConnEstablish.tls_cert_hash`.
pub fn tls_cert_hash(cert_der: &[u8]) -> [u8; 32] {
    sha256(cert_der)
}

/// The channel MAC of a peer: SHA-256(pki_id ‖ channel), used by StateInfo and its pull request.
pub fn channel_mac(pki_id: &PkiId, channel: &[u8]) -> [u8; 32] {
    sha256_concat([pki_id.as_bytes(), channel])
}

/// Marshals `SerializedIdentity {mspid, id_bytes}` the way Fabric's MSP does.
pub fn serialize_identity(mspid: &str, id_bytes: &[u8]) -> Bytes {
    SerializedIdentity {
        mspid: mspid.to_owned(),
        id_bytes: Bytes::copy_from_slice(id_bytes),
    }
    .encode_to_vec()
    .into()
}

/// A parsed X.509 certificate, kept in owned form with what validation needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Certificate {
    /// The DER bytes.
    pub der: Bytes,
    /// The raw DER of the subject name.
    pub subject_raw: Bytes,
    /// The raw DER of the issuer name.
    pub issuer_raw: Bytes,
    /// The raw `tbsCertificate`, which the issuer signed.
    pub tbs_raw: Bytes,
    /// The serial number's DER content bytes (what a CRL lists).
    pub serial: Bytes,
    /// The issuer's signature over `tbs_raw`.
    pub signature: Bytes,
    /// The signature algorithm OID, dotted.
    pub signature_alg_oid: String,
    /// The subject's ECDSA public key.
    pub public_key: PublicKey,
    /// Start of validity, Unix seconds.
    pub not_before_unix_s: i64,
    /// End of validity, Unix seconds.
    pub not_after_unix_s: i64,
    /// Whether the basic-constraints extension marks it as a CA.
    pub is_ca: bool,
    /// The subject's organizational units (Fabric NodeOUs: `peer`, `client`, `admin`, ...).
    pub organizational_units: Vec<String>,
}

/// OID of ecdsa-with-SHA256.
pub const OID_ECDSA_SHA256: &str = "1.2.840.10045.4.3.2";
/// OID of ecdsa-with-SHA384.
pub const OID_ECDSA_SHA384: &str = "1.2.840.10045.4.3.3";

impl Certificate {
    /// Parses a DER certificate with an ECDSA public key.
    pub fn from_der(der: impl Into<Bytes>) -> Result<Self, IdentityError> {
        let der: Bytes = der.into();
        let (rest, cert) = parse_x509_certificate(&der)
            .map_err(|e| IdentityError::BadCertificate(e.to_string()))?;
        if !rest.is_empty() {
            return Err(IdentityError::BadCertificate(
                "trailing bytes after the certificate".into(),
            ));
        }
        let spki = &cert.tbs_certificate.subject_pki;
        let public_key =
            PublicKey::from_sec1(Bytes::copy_from_slice(&spki.subject_public_key.data))
                .map_err(|_| IdentityError::UnsupportedKey)?;
        let signature_alg_oid = cert.signature_algorithm.algorithm.to_id_string();
        let signature = Bytes::copy_from_slice(&cert.signature_value.data);
        if signature_alg_oid == OID_ECDSA_SHA256 || signature_alg_oid == OID_ECDSA_SHA384 {
            // Fabric's MSP requires the CA's ECDSA signature in canonical DER.
            der::parse_signature(&signature).map_err(|_| {
                IdentityError::BadCertificate("CA signature is not canonical DER".into())
            })?;
        }
        let is_ca = cert
            .basic_constraints()
            .ok()
            .flatten()
            .is_some_and(|bc| bc.value.ca);
        let organizational_units = cert
            .subject()
            .iter_organizational_unit()
            .filter_map(|ou| ou.as_str().ok().map(str::to_owned))
            .collect();
        let slice = |s: &[u8]| der.slice_ref(s);
        Ok(Self {
            subject_raw: slice(cert.subject().as_raw()),
            issuer_raw: slice(cert.issuer().as_raw()),
            tbs_raw: slice(cert.tbs_certificate.as_ref()),
            serial: slice(cert.tbs_certificate.raw_serial()),
            signature,
            signature_alg_oid,
            public_key,
            not_before_unix_s: cert.validity().not_before.timestamp(),
            not_after_unix_s: cert.validity().not_after.timestamp(),
            is_ca,
            organizational_units,
            der: der.clone(),
        })
    }

    /// Parses a PEM text holding exactly one certificate block and nothing else but white space,
    /// as Fabric's MSP requires of `id_bytes`.
    pub fn from_pem(pem_text: &[u8]) -> Result<Self, IdentityError> {
        let blocks =
            ::pem::parse_many(pem_text).map_err(|e| IdentityError::BadPem(e.to_string()))?;
        if blocks.len() != 1 {
            return Err(IdentityError::BadPem(format!(
                "expected one PEM block, found {}",
                blocks.len()
            )));
        }
        let text =
            std::str::from_utf8(pem_text).map_err(|_| IdentityError::BadPem("not UTF-8".into()))?;
        let end = text
            .rfind("-----END")
            .ok_or_else(|| IdentityError::BadPem("no END line".into()))?;
        let after_marker = text[end..].split_once('\n').map_or("", |(_, rest)| rest);
        if !after_marker.trim().is_empty()
            || !text[..text.find("-----BEGIN").unwrap_or(0)]
                .trim()
                .is_empty()
        {
            return Err(IdentityError::BadPem("bytes outside the PEM block".into()));
        }
        let block = &blocks[0];
        if block.tag() != "CERTIFICATE" && !block.tag().is_empty() {
            return Err(IdentityError::BadPem(format!(
                "block type {:?}",
                block.tag()
            )));
        }
        Self::from_der(Bytes::copy_from_slice(block.contents()))
    }

    /// Checks that `issuer` signed this certificate.
    pub fn verify_signed_by(&self, issuer: &Certificate) -> Result<(), IdentityError> {
        if self.issuer_raw != issuer.subject_raw {
            return Err(IdentityError::UnknownIssuer);
        }
        verify_issuer_signature(
            &self.signature_alg_oid,
            &self.tbs_raw,
            &self.signature,
            issuer,
        )
    }

    /// Fails unless `now_unix_s` lies within the validity period.
    pub fn check_validity(&self, now_unix_s: i64) -> Result<(), IdentityError> {
        if now_unix_s < self.not_before_unix_s {
            return Err(IdentityError::NotYetValid {
                not_before_unix_s: self.not_before_unix_s,
            });
        }
        if now_unix_s > self.not_after_unix_s {
            return Err(IdentityError::Expired {
                not_after_unix_s: self.not_after_unix_s,
            });
        }
        Ok(())
    }
}

/// A peer identity, parsed and with its PKI-ID computed. Parsing checks well-formedness only; use
/// [`super::MspManager::validate`] for the chain and expiry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The MSP id (the org, for gossip purposes).
    pub mspid: String,
    /// The marshaled `SerializedIdentity`, byte for byte as received or built.
    pub serialized: Bytes,
    /// `id_bytes`: the PEM certificate.
    pub id_bytes: Bytes,
    /// The parsed certificate.
    pub cert: Certificate,
    /// SHA-256(mspid ‖ id_bytes).
    pub pki_id: PkiId,
}

impl Identity {
    /// Parses a marshaled `SerializedIdentity` as received on the wire.
    pub fn from_serialized(serialized: Bytes) -> Result<Self, IdentityError> {
        let sid = SerializedIdentity::decode(serialized.clone())
            .map_err(|e| IdentityError::BadSerializedIdentity(e.to_string()))?;
        let cert = Certificate::from_pem(&sid.id_bytes)?;
        let pki_id = pki_id_of(&sid.mspid, &sid.id_bytes);
        Ok(Self {
            mspid: sid.mspid,
            serialized,
            id_bytes: sid.id_bytes,
            cert,
            pki_id,
        })
    }

    /// Builds an identity from an MSP id and a PEM certificate (the `signcerts/` file).
    pub fn from_pem(mspid: &str, cert_pem: &[u8]) -> Result<Self, IdentityError> {
        Self::from_serialized(serialize_identity(mspid, cert_pem))
    }

    /// The identity's public key, which verifies its messages.
    pub fn public_key(&self) -> &PublicKey {
        &self.cert.public_key
    }
}

/// Checks an issuer's ECDSA signature `signature` (algorithm `alg_oid`) over `tbs` (a
/// certificate's or a CRL's to-be-signed bytes).
pub(crate) fn verify_issuer_signature(
    alg_oid: &str,
    tbs: &[u8],
    signature: &[u8],
    issuer: &Certificate,
) -> Result<(), IdentityError> {
    let alg: &dyn ring::signature::VerificationAlgorithm =
        match (alg_oid, issuer.public_key.curve()) {
            (OID_ECDSA_SHA256, super::Curve::P256) => &ring::signature::ECDSA_P256_SHA256_ASN1,
            (OID_ECDSA_SHA384, super::Curve::P256) => &ring::signature::ECDSA_P256_SHA384_ASN1,
            (OID_ECDSA_SHA256, super::Curve::P384) => &ring::signature::ECDSA_P384_SHA256_ASN1,
            (OID_ECDSA_SHA384, super::Curve::P384) => &ring::signature::ECDSA_P384_SHA384_ASN1,
            _ => return Err(IdentityError::UnsupportedKey),
        };
    ring::signature::UnparsedPublicKey::new(alg, issuer.public_key.sec1())
        .verify(tbs, signature)
        .map_err(|_| IdentityError::BadChainSignature)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_concat_hashes_the_joined_parts() {
        let parts: [&[u8]; 4] = [b"block ", b"", b"data ", b"entries"];
        assert_eq!(sha256_concat(parts), sha256(&parts.concat()));
        assert_eq!(sha256_concat(std::iter::empty::<&[u8]>()), sha256(b""));
        assert_ne!(sha256_concat([&b"ab"[..]]), sha256(b"ba"));
    }
}
