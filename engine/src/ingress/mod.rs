//! Stage 1 of the pipeline: what a received envelope passes before anything acts on it.
//!
//! ```text
//!  envelope ─► precheck (decode, size, tag legality, seen-before, resolve signers)
//!           ─► signature checks (pure CPU: inline, or on the verifier pool)
//!           ─► accept (mark seen, learn identities) ─► Verified<ReceivedMessage>
//! ```
//!
//! The split lets the connection task run the cheap part inline and hand the expensive part to
//! [`crate::crypto::pool`] while the same code runs inline in the simulator.

use bytes::Bytes;
use gossip_proto::gossip::{Envelope, GossipMessage};
use prost::Message;

use crate::crypto::PublicKey;
use crate::time::Instant;
use crate::types::PkiId;

/// A message that passed every ingress check. Only this module constructs it.
#[derive(Clone, Debug)]
pub struct Verified<T>(T);

impl<T> Verified<T> {
    pub(crate) fn new(inner: T) -> Self {
        Self(inner)
    }

    /// The verified value.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for Verified<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// A received message: the envelope exactly as it arrived, its decoded payload, and who sent it.
#[derive(Clone, Debug)]
pub struct ReceivedMessage {
    /// PKI-ID of the connection's authenticated remote peer.
    pub from: PkiId,
    /// The envelope as received: forward this, never a re-encoding.
    pub envelope: Envelope,
    /// The decoded `GossipMessage` (payload fields are zero-copy slices of the envelope).
    pub message: GossipMessage,
    /// Encoded length of the envelope, bytes.
    pub envelope_len_bytes: usize,
}

/// One signature to check: `key` over `message`.
#[derive(Clone, Debug)]
pub struct SignatureCheck {
    /// The signer's public key.
    pub key: PublicKey,
    /// The signed bytes, exactly as received.
    pub message: Bytes,
    /// The DER signature.
    pub signature: Bytes,
}

impl SignatureCheck {
    /// Runs the check (low-S rule included).
    pub fn run(&self) -> Result<(), crate::crypto::SignatureError> {
        self.key.verify(&self.message, &self.signature)
    }
}

/// Why a received envelope was rejected. Each reason has its own counter; the envelope is dropped
/// and nothing from it is kept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Reject {
    /// The payload is not a `GossipMessage` (the stream that sent it is closed, as Fabric does).
    #[error("malformed message: {0}")]
    Malformed(String),
}

impl Reject {
    /// A short stable name for counters and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            Reject::Malformed(_) => "malformed",
        }
    }

    /// Whether the connection that sent it should be closed (the peer is broken or hostile).
    pub fn closes_connection(&self) -> bool {
        matches!(self, Reject::Malformed(_))
    }
}

/// A message that passed the cheap checks and waits for its signature checks.
#[derive(Debug)]
pub struct Prechecked {
    received: ReceivedMessage,
    checks: Vec<SignatureCheck>,
}

impl Prechecked {
    /// The signature checks this message needs (empty for unsigned kinds).
    pub fn checks(&self) -> &[SignatureCheck] {
        &self.checks
    }

    /// Runs every signature check inline.
    pub fn run_checks(&self) -> Result<(), crate::crypto::SignatureError> {
        self.checks.iter().try_for_each(SignatureCheck::run)
    }
}

/// The ingress pipeline, shared by every connection task (`&self` everywhere, internally
/// synchronised).
#[derive(Debug, Default)]
pub struct Ingress {}

impl Ingress {
    /// Stage 1a: decode and cheap checks. Never panics on any input.
    pub fn precheck(
        &self,
        from: PkiId,
        envelope: Envelope,
        _now: Instant,
    ) -> Result<Prechecked, Reject> {
        let envelope_len_bytes = envelope.encoded_len();
        let message = GossipMessage::decode(envelope.payload.clone())
            .map_err(|e| Reject::Malformed(e.to_string()))?;
        Ok(Prechecked {
            received: ReceivedMessage {
                from,
                envelope,
                message,
                envelope_len_bytes,
            },
            checks: Vec::new(),
        })
    }

    /// Stage 1c: takes the outcome of the signature checks and admits the message.
    pub fn accept(
        &self,
        prechecked: Prechecked,
        checks_result: Result<(), crate::crypto::SignatureError>,
        _now: Instant,
    ) -> Result<Verified<ReceivedMessage>, Reject> {
        checks_result.map_err(|e| Reject::Malformed(e.to_string()))?;
        Ok(Verified::new(prechecked.received))
    }
}
