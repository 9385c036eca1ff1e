//! The software signer: an ECDSA private key in memory, signing with ring (Fabric's software
//! BCCSP). It is the only place the library draws OS randomness: ECDSA needs a fresh nonce per
//! signature, from ring's `SystemRandom`.
//!
//! Written against `gossip_core` paths only, so the core's unit tests compile this file too (the
//! core itself has no signer; see its `lib.rs`).

use std::sync::Arc;

use bytes::Bytes;
use gossip_core::crypto::{
    Curve, Identity, IdentityError, LocalSigner, PublicKey, Sign, SignatureError, der,
};
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair};

fn signing_alg(curve: Curve) -> &'static signature::EcdsaSigningAlgorithm {
    match curve {
        Curve::P256 => &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
        Curve::P384 => &signature::ECDSA_P384_SHA384_ASN1_SIGNING,
    }
}

/// A private signing key. Signatures are DER and always low-S.
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
            if let Ok(key_pair) = EcdsaKeyPair::from_pkcs8(signing_alg(curve), der, &rng) {
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
    #[allow(dead_code)] // used by gossip-engine; this file is also compiled into the core's tests
    pub fn curve(&self) -> Curve {
        self.curve
    }
}

impl Sign for SigningKey {
    /// The matching public key.
    fn public_key(&self) -> PublicKey {
        PublicKey::from_sec1(Bytes::copy_from_slice(self.key_pair.public_key().as_ref()))
            .expect("ring's own public key is a valid SEC1 point")
    }

    /// Signs `message` (hashed with the curve's SHA-2) and returns a low-S DER signature.
    fn sign(&self, message: &[u8]) -> Result<Bytes, SignatureError> {
        let sig = self
            .key_pair
            .sign(&self.rng, message)
            .map_err(|_| SignatureError::SigningFailed)?;
        Ok(Bytes::from(der::normalize_low_s(sig.as_ref(), self.curve)?))
    }
}

/// Builds a [`LocalSigner`] from an MSP id, a PEM certificate and a PEM PKCS#8 key, signing with a
/// [`SigningKey`].
pub fn local_signer_from_pems(
    mspid: &str,
    cert_pem: &[u8],
    key_pem: &[u8],
) -> Result<LocalSigner, IdentityError> {
    let identity = Identity::from_pem(mspid, cert_pem)?;
    let key = SigningKey::from_pkcs8_pem(key_pem).map_err(|_| IdentityError::UnsupportedKey)?;
    LocalSigner::new(identity, Arc::new(key))
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
