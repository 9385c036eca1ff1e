//! The ConnEstablish handshake (spec 2.2): building our own signed ConnEstablish and checking the
//! remote's, in Fabric's order. Pure functions; the async read with its timeout lives in the
//! server and client.

use bytes::Bytes;
use gossip_proto::gossip::{ConnEstablish, Envelope, GossipMessage, gossip_message};
use prost::Message;

use crate::crypto::{
    Identity, IdentityError, LocalSigner, MspManager, SignatureError, envelope, tls_cert_hash,
};
use crate::time::Instant;
use crate::types::PkiId;

/// Why a handshake failed. The stream is closed and nothing about the remote is kept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    /// TLS is on and the remote presented no certificate.
    #[error("no TLS certificate")]
    NoTlsCertificate,
    /// The remote's ConnEstablish did not arrive within `conn_timeout`.
    #[error("timed out waiting for ConnEstablish")]
    Timeout,
    /// The stream ended before the remote's ConnEstablish.
    #[error("stream ended before ConnEstablish")]
    StreamEnded,
    /// The remote's first message announced more than
    /// [`crate::grpc::FIRST_FRAME_LEN_MAX_BYTES`]; refused before any of it was buffered.
    #[error("first message of {len_bytes} bytes over the pre-handshake limit")]
    FirstFrameOversize {
        /// The announced length.
        len_bytes: usize,
    },
    /// The stream failed (gRPC status or transport error).
    #[error("stream error: {0}")]
    Stream(String),
    /// The first envelope's payload is not a `GossipMessage`.
    #[error("malformed ConnEstablish: {0}")]
    Malformed(String),
    /// The first message is not a ConnEstablish.
    #[error("wrong type: first message is not ConnEstablish")]
    WrongFirstMessage,
    /// The ConnEstablish carries no PKI-ID.
    #[error("empty PKI-ID")]
    EmptyPkiId,
    /// The identity bytes do not parse.
    #[error("bad identity: {0}")]
    BadIdentity(IdentityError),
    /// The identity does not validate with the MSP as a peer's (unknown MSP or CA, bad chain,
    /// expired, NodeOU role not `peer`).
    #[error("identity rejected by the MSP: {0}")]
    InvalidIdentity(IdentityError),
    /// The claimed PKI-ID differs from the one computed from the identity.
    #[error("identity doesn't match the computed pkiID")]
    PkiIdMismatch,
    /// The TLS hash in ConnEstablish differs from the certificate in this TLS session.
    #[error("TLS certificate hash mismatch")]
    TlsCertHashMismatch,
    /// The ConnEstablish signature does not verify with the claimed identity.
    #[error("bad ConnEstablish signature: {0}")]
    BadSignature(SignatureError),
    /// We could not sign our own ConnEstablish.
    #[error("signing our ConnEstablish: {0}")]
    Signing(SignatureError),
    /// The dialled peer has another PKI-ID than expected and belongs to another org.
    #[error("authentication failure: expected {expected}, got {actual} of another org")]
    AuthenticationFailure {
        /// The PKI-ID we dialled for.
        expected: PkiId,
        /// The PKI-ID that answered.
        actual: PkiId,
    },
}

impl HandshakeError {
    /// A short stable name for counters and logs.
    pub fn cause(&self) -> &'static str {
        match self {
            HandshakeError::NoTlsCertificate => "no_tls_certificate",
            HandshakeError::Timeout => "timeout",
            HandshakeError::StreamEnded => "stream_ended",
            HandshakeError::FirstFrameOversize { .. } => "first_frame_oversize",
            HandshakeError::Stream(_) => "stream_error",
            HandshakeError::Malformed(_) => "malformed",
            HandshakeError::WrongFirstMessage => "wrong_first_message",
            HandshakeError::EmptyPkiId => "empty_pki_id",
            HandshakeError::BadIdentity(_) => "bad_identity",
            HandshakeError::InvalidIdentity(IdentityError::Expired { .. }) => "identity_expired",
            HandshakeError::InvalidIdentity(IdentityError::NotAPeer { .. }) => {
                "identity_not_a_peer"
            }
            HandshakeError::InvalidIdentity(
                IdentityError::UnknownIssuer
                | IdentityError::UnknownMsp(_)
                | IdentityError::BadChainSignature,
            ) => "identity_unknown_ca",
            HandshakeError::InvalidIdentity(_) => "identity_invalid",
            HandshakeError::PkiIdMismatch => "pki_id_mismatch",
            HandshakeError::TlsCertHashMismatch => "tls_cert_hash_mismatch",
            HandshakeError::BadSignature(_) => "bad_signature",
            HandshakeError::Signing(_) => "signing",
            HandshakeError::AuthenticationFailure { .. } => "authentication_failure",
        }
    }
}

/// The authenticated remote side of a handshake.
#[derive(Clone, Debug)]
pub struct RemotePeerInfo {
    /// The remote's PKI-ID (checked against its identity).
    pub pki_id: PkiId,
    /// The remote's validated identity.
    pub identity: Identity,
    /// Whether the remote asked for a probe handshake only.
    pub probe: bool,
    /// The signed ConnEstablish payload as received (the peer's proof of identity).
    pub auth_payload: Bytes,
    /// Its signature.
    pub auth_signature: Bytes,
}

/// Builds our signed ConnEstablish envelope: nonce 0, tag EMPTY, no channel.
pub fn build_conn_establish(
    signer: &LocalSigner,
    own_tls_cert_hash: Option<[u8; 32]>,
    probe: bool,
) -> Result<Envelope, HandshakeError> {
    let message = GossipMessage {
        nonce: 0,
        channel: Bytes::new(),
        tag: gossip_message::Tag::Empty as i32,
        content: Some(gossip_message::Content::Conn(ConnEstablish {
            pki_id: Bytes::copy_from_slice(signer.pki_id().as_bytes()),
            identity: signer.identity().serialized.clone(),
            tls_cert_hash: own_tls_cert_hash
                .map(|h| Bytes::copy_from_slice(&h))
                .unwrap_or_default(),
            probe,
        })),
    };
    envelope::sign_envelope(message.encode_to_vec().into(), signer.key())
        .map_err(HandshakeError::Signing)
}

/// Checks the remote's first envelope (spec 2.2, receiver checks 2 to 6; check 1, no TLS
/// certificate, is [`check_tls_presence`] and runs before anything is sent). `remote_leaf` is the
/// remote's leaf TLS certificate DER in this session.
pub fn verify_conn_establish(
    received: &Envelope,
    msp: &MspManager,
    tls_on: bool,
    remote_leaf: Option<&[u8]>,
    now: Instant,
) -> Result<RemotePeerInfo, HandshakeError> {
    check_tls_presence(tls_on, remote_leaf)?;
    let message = GossipMessage::decode(received.payload.clone())
        .map_err(|e| HandshakeError::Malformed(e.to_string()))?;
    let Some(gossip_message::Content::Conn(conn)) = message.content else {
        return Err(HandshakeError::WrongFirstMessage);
    };
    if conn.pki_id.is_empty() {
        return Err(HandshakeError::EmptyPkiId);
    }
    let identity =
        Identity::from_serialized(conn.identity.clone()).map_err(HandshakeError::BadIdentity)?;
    // A gossip peer: with NodeOUs, a client (admin, orderer) certificate is refused.
    msp.validate_peer(&identity, now.as_unix_secs())
        .map_err(HandshakeError::InvalidIdentity)?;
    if identity.pki_id.as_bytes().as_slice() != conn.pki_id.as_ref() {
        return Err(HandshakeError::PkiIdMismatch);
    }
    if tls_on {
        let leaf = remote_leaf.ok_or(HandshakeError::NoTlsCertificate)?;
        if tls_cert_hash(leaf).as_slice() != conn.tls_cert_hash.as_ref() {
            return Err(HandshakeError::TlsCertHashMismatch);
        }
    }
    if received.signature.is_empty() {
        return Err(HandshakeError::BadSignature(SignatureError::Missing));
    }
    identity
        .public_key()
        .verify(&received.payload, &received.signature)
        .map_err(HandshakeError::BadSignature)?;
    Ok(RemotePeerInfo {
        pki_id: identity.pki_id,
        identity,
        probe: conn.probe,
        auth_payload: received.payload.clone(),
        auth_signature: received.signature.clone(),
    })
}

/// Receiver check 1: with TLS on, the remote must have presented a certificate.
pub fn check_tls_presence(tls_on: bool, remote_leaf: Option<&[u8]>) -> Result<(), HandshakeError> {
    if tls_on && remote_leaf.is_none() {
        return Err(HandshakeError::NoTlsCertificate);
    }
    Ok(())
}
