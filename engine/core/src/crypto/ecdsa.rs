//! ECDSA signing and verification with ring, under Fabric's rules: SHA-256 (SHA-384 on P-384) over
//! the exact message bytes, DER signatures, low S on sign and on verify.

use bytes::Bytes;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair, UnparsedPublicKey};

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

    fn signing_alg(self) -> &'static signature::EcdsaSigningAlgorithm {
        match self {
            Curve::P256 => &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
            Curve::P384 => &signature::ECDSA_P384_SHA384_ASN1_SIGNING,
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

/// A private signing key. Signatures are DER and always low-S.
///
/// ECDSA needs a random nonce per signature; it comes from ring's `SystemRandom`. That randomness
/// never reaches protocol decisions, so the sans-IO core stays deterministic in everything it does.
pub struct SigningKey {
    curve: Curve,
    key_pair: EcdsaKeyPair,
    rng: SystemRandom,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("curve", &self.curve)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Loads a PKCS#8 DER private key (what cryptogen writes to `keystore/`, PEM `PRIVATE KEY`).
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, SignatureError> {
        let rng = SystemRandom::new();
        for curve in [Curve::P256, Curve::P384] {
            if let Ok(key_pair) = EcdsaKeyPair::from_pkcs8(curve.signing_alg(), der, &rng) {
                return Ok(Self {
                    curve,
                    key_pair,
                    rng,
                });
            }
        }
        Err(SignatureError::UnsupportedKey)
    }

    /// Loads a PEM `PRIVATE KEY` (PKCS#8) block.
    pub fn from_pkcs8_pem(pem_text: &[u8]) -> Result<Self, SignatureError> {
        let block = pem::parse(pem_text).map_err(|_| SignatureError::UnsupportedKey)?;
        if block.tag() != "PRIVATE KEY" {
            return Err(SignatureError::UnsupportedKey);
        }
        Self::from_pkcs8_der(block.contents())
    }

    /// The curve of this key.
    pub fn curve(&self) -> Curve {
        self.curve
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey {
            curve: self.curve,
            point: Bytes::copy_from_slice(self.key_pair.public_key().as_ref()),
        }
    }

    /// Signs `message` (hashed with the curve's SHA-2) and returns a low-S DER signature.
    pub fn sign(&self, message: &[u8]) -> Result<Bytes, SignatureError> {
        let sig = self
            .key_pair
            .sign(&self.rng, message)
            .map_err(|_| SignatureError::SigningFailed)?;
        Ok(Bytes::from(der::normalize_low_s(sig.as_ref(), self.curve)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fresh_key() -> SigningKey {
        let rng = SystemRandom::new();
        let doc =
            EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        SigningKey::from_pkcs8_der(doc.as_ref()).unwrap()
    }

    #[test]
    fn sign_verify_and_always_low_s() {
        let key = fresh_key();
        let public = key.public_key();
        for i in 0..64u32 {
            let msg = i.to_be_bytes();
            let sig = key.sign(&msg).unwrap();
            der::check_low_s(&sig, Curve::P256).unwrap();
            public.verify(&msg, &sig).unwrap();
            assert_eq!(public.verify(b"other", &sig), Err(SignatureError::Invalid));
        }
        assert_eq!(public.verify(b"x", &[]), Err(SignatureError::Missing));
    }
}
