//! ECDSA verification with ring, under Fabric's rules: SHA-256 (SHA-384 on P-384) over the exact
//! message bytes, DER signatures, low S on verify; and [`Sign`], what a signer provides.
//!
//! The core never signs with a key of its own: signing needs a random nonce per signature, and the
//! core draws no randomness from the OS. The embedder hands it a [`Sign`] (gossip-engine's
//! software key, an HSM, ...) through [`super::LocalSigner`].

use bytes::Bytes;
use ring::signature::{self, UnparsedPublicKey};

use super::SignatureError;
use super::der;

/// The curves Fabric's software BCCSP accepts for peer identities.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Curve {
    /// NIST P-256 with SHA-256: what cryptogen and Fabric CAs issue.
    P256,
    /// NIST P-384 with SHA-384.
    P384,
}

impl Curve {
    fn verify_alg(self) -> &'static signature::EcdsaVerificationAlgorithm {
        match self {
            Curve::P256 => &signature::ECDSA_P256_SHA256_ASN1,
            Curve::P384 => &signature::ECDSA_P384_SHA384_ASN1,
        }
    }

    /// The curve of an uncompressed SEC1 point by its length.
    pub fn from_point_len(len: usize) -> Option<Curve> {
        match len {
            65 => Some(Curve::P256),
            97 => Some(Curve::P384),
            _ => None,
        }
    }
}

/// An ECDSA public key: the uncompressed SEC1 point `04 ‖ X ‖ Y`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PublicKey {
    curve: Curve,
    point: Bytes,
}

impl PublicKey {
    /// Wraps an uncompressed SEC1 point; the curve follows from its length.
    pub fn from_sec1(point: impl Into<Bytes>) -> Result<Self, SignatureError> {
        let point = point.into();
        let curve = Curve::from_point_len(point.len()).ok_or(SignatureError::UnsupportedKey)?;
        if point[0] != 0x04 {
            return Err(SignatureError::UnsupportedKey);
        }
        Ok(Self { curve, point })
    }

    /// The curve of this key.
    pub fn curve(&self) -> Curve {
        self.curve
    }

    /// The uncompressed SEC1 point.
    pub fn sec1(&self) -> &[u8] {
        &self.point
    }

    /// Verifies a DER signature over `message` as Fabric does: `s > n/2` and non-positive values
    /// are rejected before the ECDSA check.
    pub fn verify(&self, message: &[u8], signature_der: &[u8]) -> Result<(), SignatureError> {
        if signature_der.is_empty() {
            return Err(SignatureError::Missing);
        }
        der::check_low_s(signature_der, self.curve)?;
        UnparsedPublicKey::new(self.curve.verify_alg(), &self.point[..])
            .verify(message, signature_der)
            .map_err(|_| SignatureError::Invalid)
    }
}

/// A signer of this peer's messages: ECDSA over the curve's SHA-2 of the exact bytes, a DER
/// signature with low S (Fabric's BCCSP `Sign` after `SignatureToLowS`).
pub trait Sign: Send + Sync + std::fmt::Debug {
    /// The public key signatures verify under.
    fn public_key(&self) -> PublicKey;
    /// Signs `message`: a low-S DER ECDSA signature.
    fn sign(&self, message: &[u8]) -> Result<Bytes, SignatureError>;
}
