//! Identities, signatures and org membership, as Fabric's MSP and bccsp define them.
//!
//! - [`Identity`]: a serialized identity (`mspid` + PEM certificate) with its PKI-ID.
//! - [`PublicKey`]: ECDSA P-256 (P-384 too) verification with SHA-2, DER, low S; [`Sign`]: the
//!   embedder's signer (the core holds no private key material of its own).
//! - [`MspManager`]: org CA roots; validates identities (chain, expiry) and names their org.
//! - [`envelope`]: signing and verifying envelopes and secret envelopes over the exact bytes.
//! - [`LocalSigner`]: this peer's identity and key.

pub mod crl;
pub mod der;
pub mod ecdsa;
pub mod envelope;
pub mod identity;
pub mod msp;

use std::sync::Arc;

use bytes::Bytes;

pub use ecdsa::{Curve, PublicKey, Sign};
pub use identity::{
    Certificate, Identity, channel_mac, pki_id_of, sha256, sha256_concat, tls_cert_hash,
};
pub use msp::{MspManager, NodeOuIdentifier, NodeOus, NodeRole, OrgMsp};

use crate::types::PkiId;

/// Why a signature was rejected. Nothing is retained from a rejected message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The signature field is empty where one is required.
    #[error("signature missing")]
    Missing,
    /// The signed payload is empty.
    #[error("signed payload is empty")]
    EmptyPayload,
    /// The signature is not `SEQUENCE { INTEGER r, INTEGER s }` in strict DER.
    #[error("signature is not valid DER")]
    MalformedDer,
    /// r or s is zero or negative.
    #[error("signature r or s is not positive")]
    NonPositive,
    /// s is above half the group order; Fabric accepts only low-S signatures.
    #[error("invalid S: must be smaller than half the order")]
    HighS,
    /// The ECDSA check failed.
    #[error("signature does not verify")]
    Invalid,
    /// The secret envelope's signature failed.
    #[error("secret envelope signature does not verify")]
    SecretInvalid,
    /// The key is not ECDSA P-256 or P-384.
    #[error("unsupported key")]
    UnsupportedKey,
    /// ring failed to sign.
    #[error("signing failed")]
    SigningFailed,
}

/// Why an identity was rejected. A rejected identity is not stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// The bytes are not a `msp.SerializedIdentity`.
    #[error("not a serialized identity: {0}")]
    BadSerializedIdentity(String),
    /// `id_bytes` is not exactly one PEM certificate block.
    #[error("bad PEM: {0}")]
    BadPem(String),
    /// The certificate does not parse.
    #[error("bad certificate: {0}")]
    BadCertificate(String),
    /// The certificate's key is not ECDSA P-256 or P-384.
    #[error("unsupported certificate key or signature algorithm")]
    UnsupportedKey,
    /// The identity's MSP id is not among the known orgs.
    #[error("unknown MSP {0:?}")]
    UnknownMsp(String),
    /// No CA of the org issued the certificate.
    #[error("certificate not issued by a CA of its MSP")]
    UnknownIssuer,
    /// A CA's signature on the chain does not verify.
    #[error("certificate chain signature does not verify")]
    BadChainSignature,
    /// A certificate on the chain has expired.
    #[error("certificate expired at {not_after_unix_s}")]
    Expired {
        /// The end of validity, Unix seconds.
        not_after_unix_s: i64,
    },
    /// A certificate on the chain is not valid yet.
    #[error("certificate not valid before {not_before_unix_s}")]
    NotYetValid {
        /// The start of validity, Unix seconds.
        not_before_unix_s: i64,
    },
    /// A claimed PKI-ID differs from the one computed from the identity.
    #[error("identity doesn't match the computed pkiID")]
    PkiIdMismatch,
    /// NodeOUs are enabled and the certificate carries none of the org's role OUs (client,
    /// peer, admin, orderer).
    #[error(
        "the identity does not have an OU that resolves to client, peer, orderer, or admin role"
    )]
    NoNodeOu,
    /// NodeOUs are enabled and the certificate carries more than one role OU.
    #[error(
        "the identity must have a client, a peer, an orderer, or an admin OU role, not several"
    )]
    SeveralNodeOus,
    /// A role OU is pinned to a CA certificate that did not issue the identity.
    #[error("certifiersIdentifier does not match for NodeOU {ou:?}")]
    NodeOuCertifierMismatch {
        /// The role OU.
        ou: String,
    },
    /// A CRL of the MSP revokes the certificate.
    #[error("the certificate has been revoked")]
    Revoked,
    /// A CRL does not parse, or no CA of its org signed it.
    #[error("bad CRL: {0}")]
    BadCrl(String),
    /// Gossip takes peer identities only: NodeOUs are enabled and the identity's role is not
    /// `peer` (a client, admin or orderer certificate presented as a gossip peer).
    #[error("not a peer identity: its NodeOU role is {role}")]
    NotAPeer {
        /// The identity's role.
        role: NodeRole,
    },
    /// Reading MSP files failed.
    #[error("reading MSP files: {0}")]
    Io(String),
}

/// This peer's identity and the signer of its messages.
#[derive(Debug, Clone)]
pub struct LocalSigner {
    identity: Identity,
    key: Arc<dyn Sign>,
}

impl LocalSigner {
    /// Pairs an identity with its signer; fails if the signer's key does not match the
    /// certificate.
    pub fn new(identity: Identity, key: Arc<dyn Sign>) -> Result<Self, IdentityError> {
        if key.public_key() != *identity.public_key() {
            return Err(IdentityError::BadCertificate(
                "private key does not match the certificate".into(),
            ));
        }
        Ok(Self { identity, key })
    }

    /// This peer's identity.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// This peer's PKI-ID.
    pub fn pki_id(&self) -> PkiId {
        self.identity.pki_id
    }

    /// The signer.
    pub fn key(&self) -> &dyn Sign {
        &*self.key
    }

    /// Signs `message`: a low-S DER ECDSA signature.
    pub fn sign(&self, message: &[u8]) -> Result<Bytes, SignatureError> {
        self.key.sign(message)
    }
}
