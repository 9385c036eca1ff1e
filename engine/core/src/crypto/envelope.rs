//! Signing and verifying `gossip.Envelope`s and their secret envelopes, over the exact payload
//! bytes (spec 2.3). Verification never re-encodes: it checks the bytes as received.

use bytes::Bytes;
use gossip_proto::gossip::{Envelope, Secret, SecretEnvelope, secret};
use prost::Message;

use super::SignatureError;
use super::ecdsa::{PublicKey, Sign};

/// Signs an encoded `GossipMessage` into an envelope (Fabric's `SignedGossipMessage.Sign`).
pub fn sign_envelope(payload: Bytes, key: &dyn Sign) -> Result<Envelope, SignatureError> {
    let signature = key.sign(&payload)?;
    Ok(Envelope {
        payload,
        signature,
        secret_envelope: None,
    })
}

/// Wraps an encoded `GossipMessage` with no signature (Fabric's `NoopSign`): the `signature` field
/// is absent on the wire.
pub fn noop_sign(payload: Bytes) -> Envelope {
    Envelope {
        payload,
        signature: Bytes::new(),
        secret_envelope: None,
    }
}

/// Builds the signed `Secret{internalEndpoint}` that alive messages carry for their own org.
pub fn sign_secret(
    internal_endpoint: &str,
    key: &dyn Sign,
) -> Result<SecretEnvelope, SignatureError> {
    let payload: Bytes = Secret {
        content: Some(secret::Content::InternalEndpoint(
            internal_endpoint.to_owned(),
        )),
    }
    .encode_to_vec()
    .into();
    let signature = key.sign(&payload)?;
    Ok(SecretEnvelope { payload, signature })
}

/// Verifies a signed envelope with the signer's key (Fabric's `SignedGossipMessage.Verify`): the
/// payload and signature are non-empty and the signature holds over the payload bytes; a secret
/// envelope, when present, must be non-empty and signed by the same key.
pub fn verify_envelope(envelope: &Envelope, key: &PublicKey) -> Result<(), SignatureError> {
    if envelope.payload.is_empty() {
        return Err(SignatureError::EmptyPayload);
    }
    key.verify(&envelope.payload, &envelope.signature)?;
    if let Some(secret) = &envelope.secret_envelope {
        verify_secret(secret, key)?;
    }
    Ok(())
}

/// Verifies a secret envelope's signature over its own payload.
pub fn verify_secret(secret: &SecretEnvelope, key: &PublicKey) -> Result<(), SignatureError> {
    if secret.payload.is_empty() {
        return Err(SignatureError::EmptyPayload);
    }
    key.verify(&secret.payload, &secret.signature)
        .map_err(|e| match e {
            SignatureError::Missing => SignatureError::Missing,
            _ => SignatureError::SecretInvalid,
        })
}

/// The internal endpoint inside a secret envelope, if it decodes.
pub fn internal_endpoint(secret: &SecretEnvelope) -> Option<String> {
    match Secret::decode(secret.payload.clone()).ok()?.content? {
        secret::Content::InternalEndpoint(ep) => Some(ep),
    }
}
