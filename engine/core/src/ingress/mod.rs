//! Stage 1 of the pipeline: what a received envelope passes before anything acts on it.
//!
//! ```text
//!  envelope ─► precheck (size, decode, tag legality, seen-before, resolve signers)
//!           ─► signature checks (pure CPU: inline, or on the verifier pool)
//!           ─► accept (mark seen, learn identities) ─► Verified<ReceivedMessage>
//! ```
//!
//! The split lets the connection task run the cheap part inline and hand the expensive part to
//! [`crate::crypto::pool`] while the same code runs inline in the simulator:
//!
//! ```ignore
//! let prechecked = ingress.precheck(from, envelope, now)?;          // Reject: count, maybe close
//! if prechecked.checks().is_empty() {
//!     deliver(ingress.accept(prechecked, Ok(()), now));
//! } else {
//!     let job = VerifyJob::new(prechecked.checks().to_vec(), move |outcome| {
//!         deliver(ingress.accept(prechecked, outcome, now));          // on a verifier thread
//!     });
//!     pool.submit(job)?;                                              // PoolFull: drop and count
//! }
//! ```
//!
//! Rejects are counted in [`IngressStats`]; only [`Reject::closes_connection`] ones end the stream.
//! Pieces: [`identity_store`] (PKI-ID → identity), [`seen`] (duplicates), `signers` (which key
//! signed what), [`stats`].

pub mod block;
pub mod identity_store;
pub mod seen;
mod signers;
pub mod stats;
mod verified;

use std::sync::Arc;

use bytes::Bytes;
use gossip_proto::gossip::gossip_message::Content;
use gossip_proto::gossip::{Envelope, GossipMessage, SecretEnvelope};
use prost::Message;

pub use block::{BlockReject, BlockVerifier, OrdererBlockPolicy};
pub use identity_store::{
    IDENTITIES_LEN_MAX_DEFAULT, IdentityChange, IdentityStore, IdentityStoreError,
    IdentityStoreStats, UNUSED_THRESHOLD_DEFAULT,
};
pub use seen::{SEEN_LEN_MAX_DEFAULT, SEEN_TTL_DEFAULT, SeenCache, SeenKey};
pub use signers::NestedSignerPolicy;
pub use stats::{IngressStats, IngressStatsSnapshot};

use crate::crypto::{Identity, IdentityError, MspManager, PublicKey, SignatureError};
use crate::time::Instant;
use crate::types::PkiId;
use crate::wire::{self, ContentKind, Route, TagError};

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
    /// The decoded `GossipMessage` (payload fields are zero-copy slices of the envelope). Nested
    /// items with an unknown signer are missing from it under [`NestedSignerPolicy::DropItem`].
    pub message: GossipMessage,
    /// Encoded length of the envelope, bytes.
    pub envelope_len_bytes: usize,
    /// The content kind of `message`.
    pub kind: ContentKind,
    /// Every block `message` carries (a data message, a block pull update, a state response)
    /// passed Fabric's whole `VerifyBlock` here: structure, number, data hash and orderer
    /// signatures. Channels then skip their own structural check, which this one contains.
    pub blocks_authenticated: bool,
}

/// Which signature a [`SignatureCheck`] covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckTarget {
    /// An envelope's signature over its payload.
    Envelope,
    /// A secret envelope's signature over its payload, by the same key as its envelope.
    Secret,
    /// An orderer's signature over a block ([`block`]).
    Block,
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
    /// What is signed (decides the error a failure reports).
    pub target: CheckTarget,
}

impl SignatureCheck {
    /// A check of an envelope's signature.
    pub fn envelope(key: PublicKey, message: Bytes, signature: Bytes) -> Self {
        Self {
            key,
            message,
            signature,
            target: CheckTarget::Envelope,
        }
    }

    /// A check of a secret envelope's signature.
    pub fn secret(key: PublicKey, message: Bytes, signature: Bytes) -> Self {
        Self {
            key,
            message,
            signature,
            target: CheckTarget::Secret,
        }
    }

    /// A check of an orderer's signature over a block.
    pub fn block(key: PublicKey, message: Bytes, signature: Bytes) -> Self {
        Self {
            key,
            message,
            signature,
            target: CheckTarget::Block,
        }
    }

    /// Runs the check (low-S rule included). The signed bytes must be non-empty.
    pub fn run(&self) -> Result<(), SignatureError> {
        match self.target {
            CheckTarget::Envelope | CheckTarget::Block => {
                if self.message.is_empty() {
                    return Err(SignatureError::EmptyPayload);
                }
                self.key.verify(&self.message, &self.signature)
            }
            CheckTarget::Secret => crate::crypto::envelope::verify_secret(
                &SecretEnvelope {
                    payload: self.message.clone(),
                    signature: self.signature.clone(),
                },
                &self.key,
            ),
        }
    }
}

/// Why a received envelope was rejected. Each reason has its own counter; the envelope is dropped
/// and nothing from it is kept (no identity learnt, nothing marked seen).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Reject {
    /// The payload is not a `GossipMessage` (the stream that sent it is closed, as Fabric does).
    #[error("malformed message: {0}")]
    Malformed(String),
    /// The envelope is over the size limit (gRPC would have failed the stream).
    #[error("envelope of {len_bytes} bytes exceeds {len_max_bytes}")]
    TooLarge {
        /// Encoded length, bytes.
        len_bytes: usize,
        /// The limit, bytes.
        len_max_bytes: usize,
    },
    /// The tag is illegal for the content (spec 1.4).
    #[error("illegal tag: {0}")]
    IllegalTag(TagError),
    /// The same broadcast message was accepted before.
    #[error("duplicate message")]
    Duplicate,
    /// The identity of a signer is not known (nor carried in the message).
    #[error("unknown signer")]
    UnknownSigner,
    /// An identity carried in the message is invalid or does not match its PKI-ID.
    #[error("bad identity: {0}")]
    BadIdentity(IdentityError),
    /// A membership request whose self information is about another peer than its sender.
    #[error("membership request self information is not about its sender")]
    Spoofed,
    /// The content breaks a structural rule (missing field, wrong nested kind).
    #[error("invalid message: {0}")]
    Invalid(&'static str),
    /// More nested envelopes than `nested_items_len_max`.
    #[error("{items_len} nested items exceed {items_len_max}")]
    TooManyItems {
        /// Nested envelopes in the message.
        items_len: usize,
        /// The limit.
        items_len_max: usize,
    },
    /// A signature check failed.
    #[error("bad signature: {0}")]
    BadSignature(SignatureError),
    /// A block failed authentication ([`block`]).
    #[error("bad block: {0}")]
    BadBlock(BlockReject),
}

impl Reject {
    /// A short stable name for counters and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            Reject::Malformed(_) => "malformed",
            Reject::TooLarge { .. } => "too_large",
            Reject::IllegalTag(_) => "illegal_tag",
            Reject::Duplicate => "duplicate",
            Reject::UnknownSigner => "unknown_signer",
            Reject::BadIdentity(IdentityError::NotAPeer { .. }) => "not_a_peer",
            Reject::BadIdentity(_) => "bad_identity",
            Reject::Spoofed => "spoofed",
            Reject::Invalid(_) => "invalid",
            Reject::TooManyItems { .. } => "too_many_items",
            Reject::BadSignature(_) => "bad_signature",
            Reject::BadBlock(b) => b.reason(),
        }
    }

    /// Whether the connection that sent it should be closed (the peer is broken or hostile):
    /// only for bytes that are not a message at all, as Fabric's comm does. Everything else is
    /// dropped and counted, the stream stays.
    pub fn closes_connection(&self) -> bool {
        matches!(self, Reject::Malformed(_) | Reject::TooLarge { .. })
    }
}

/// Ingress limits and policies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IngressConfig {
    /// Largest envelope accepted (`peer.maxRecvMsgSize`, 100 MiB).
    pub envelope_len_max_bytes: usize,
    /// Broadcast messages remembered for duplicate suppression.
    pub seen_len_max: usize,
    /// How long each is remembered at most (see `ingress::seen`).
    pub seen_ttl: std::time::Duration,
    /// Nested envelopes one message may carry (membership response entries, snapshot elements,
    /// update items).
    pub nested_items_len_max: usize,
    /// What a nested item with an unknown signer does to its message.
    pub nested_signer_policy: NestedSignerPolicy,
    /// Signature checks remembered as passed, so that the same signed item received again (a
    /// member's alive message in every membership response, StateInfo in every snapshot) is not
    /// verified again (0 disables; see `ingress::verified`).
    pub verified_len_max: usize,
}

impl Default for IngressConfig {
    fn default() -> Self {
        Self {
            envelope_len_max_bytes: gossip_proto::MAX_MESSAGE_LEN_BYTES,
            seen_len_max: SEEN_LEN_MAX_DEFAULT,
            seen_ttl: SEEN_TTL_DEFAULT,
            nested_items_len_max: 16_384,
            nested_signer_policy: NestedSignerPolicy::default(),
            verified_len_max: 4_096,
        }
    }
}

impl IngressConfig {
    /// Checks the constraints between fields.
    pub fn validate(&self) -> Result<(), crate::config::ConfigError> {
        for (name, v) in [
            ("envelope_len_max_bytes", self.envelope_len_max_bytes),
            ("seen_len_max", self.seen_len_max),
            ("nested_items_len_max", self.nested_items_len_max),
        ] {
            if v == 0 {
                return Err(crate::config::ConfigError::Zero(name));
            }
        }
        if self.seen_ttl.is_zero() {
            return Err(crate::config::ConfigError::ZeroDuration("seen_ttl"));
        }
        Ok(())
    }
}

/// A message that passed the cheap checks and waits for its signature checks.
#[derive(Debug)]
pub struct Prechecked {
    received: ReceivedMessage,
    checks: Vec<SignatureCheck>,
    /// Digests of `checks`, remembered once they pass.
    check_digests: Vec<verified::CheckDigest>,
    seen_key: Option<SeenKey>,
    learn: Vec<Arc<Identity>>,
    /// Identity pull items checked here, remembered by the store once the checks passed.
    peer_identities: Vec<(PkiId, identity_store::PeerIdentityDigest)>,
}

impl Prechecked {
    /// The signature checks this message needs (empty for unsigned kinds without signed items).
    pub fn checks(&self) -> &[SignatureCheck] {
        &self.checks
    }

    /// Runs every signature check inline.
    pub fn run_checks(&self) -> Result<(), SignatureError> {
        self.checks.iter().try_for_each(SignatureCheck::run)
    }

    /// The message as it will be delivered.
    pub fn received(&self) -> &ReceivedMessage {
        &self.received
    }

    /// Its content kind.
    pub fn kind(&self) -> ContentKind {
        self.received.kind
    }
}

/// The ingress pipeline, shared by every connection task (`&self` everywhere, internally
/// synchronised).
#[derive(Debug)]
pub struct Ingress {
    config: IngressConfig,
    identities: Arc<IdentityStore>,
    seen: SeenCache,
    verified: verified::VerifiedSignatures,
    stats: IngressStats,
    /// The block validation policy; `None` takes blocks without authentication
    /// (`peer.gossip.skipBlockVerification`, or an embedder without orderer material).
    block_verifier: Option<Arc<dyn BlockVerifier>>,
}

impl Default for Ingress {
    /// Default limits, no MSP: every signed message is rejected (`UnknownSigner` / `BadIdentity`).
    fn default() -> Self {
        let msp = Arc::new(MspManager::new());
        let identities = Arc::new(IdentityStore::new(
            Arc::clone(&msp),
            IDENTITIES_LEN_MAX_DEFAULT,
        ));
        Self::new(IngressConfig::default(), msp, identities)
    }
}

impl Ingress {
    /// A pipeline with its own identity store over `msp` (the usual construction: the node and
    /// the comm layer then share this `Ingress`, and so its store).
    pub fn with_msp(config: IngressConfig, msp: Arc<MspManager>) -> Self {
        let identities = Arc::new(IdentityStore::new(
            Arc::clone(&msp),
            IDENTITIES_LEN_MAX_DEFAULT,
        ));
        Self::new(config, msp, identities)
    }

    /// A pipeline sharing `identities` with the comm layer (whose handshake stores the remote's
    /// identity). Identities are validated against the store's MSP manager, whatever it is at the
    /// time ([`IdentityStore::replace_msp`]); `msp` must be the store's own (kept for callers).
    pub fn new(
        config: IngressConfig,
        msp: Arc<MspManager>,
        identities: Arc<IdentityStore>,
    ) -> Self {
        drop(msp);
        let seen = SeenCache::new(config.seen_len_max, config.seen_ttl);
        let verified = verified::VerifiedSignatures::new(config.verified_len_max);
        Self {
            config,
            identities,
            seen,
            verified,
            stats: IngressStats::default(),
            block_verifier: None,
        }
    }

    /// Authenticates every block with `verifier` before it is accepted.
    pub fn with_block_verifier(mut self, verifier: Arc<dyn BlockVerifier>) -> Self {
        self.block_verifier = Some(verifier);
        self
    }

    /// Whether blocks are authenticated.
    pub fn verifies_blocks(&self) -> bool {
        self.block_verifier.is_some()
    }

    /// The identity store.
    pub fn identities(&self) -> &Arc<IdentityStore> {
        &self.identities
    }

    /// The counters.
    pub fn stats(&self) -> &IngressStats {
        &self.stats
    }

    /// The configuration.
    pub fn config(&self) -> &IngressConfig {
        &self.config
    }

    /// Stage 1a: decode and cheap checks. Never panics on any input.
    pub fn precheck(
        &self,
        from: PkiId,
        envelope: Envelope,
        now: Instant,
    ) -> Result<Prechecked, Reject> {
        self.precheck_inner(from, envelope, now)
            .inspect_err(|r| self.stats.record_reject(r))
    }

    fn precheck_inner(
        &self,
        from: PkiId,
        envelope: Envelope,
        now: Instant,
    ) -> Result<Prechecked, Reject> {
        let envelope_len_bytes = envelope.encoded_len();
        if envelope_len_bytes > self.config.envelope_len_max_bytes {
            return Err(Reject::TooLarge {
                len_bytes: envelope_len_bytes,
                len_max_bytes: self.config.envelope_len_max_bytes,
            });
        }
        let mut message =
            wire::decode_message(&envelope).map_err(|e| Reject::Malformed(e.to_string()))?;
        let kind = ContentKind::of(&message);
        if wire::route(kind) == Route::TagChecked {
            wire::check_tag(&message).map_err(Reject::IllegalTag)?;
        }
        let seen_key = SeenKey::of(&message);
        if seen_key.as_ref().is_some_and(|k| self.seen.contains(k)) {
            return Err(Reject::Duplicate);
        }
        let items_len = signers::nested_items_len(&message);
        if items_len > self.config.nested_items_len_max {
            return Err(Reject::TooManyItems {
                items_len,
                items_len_max: self.config.nested_items_len_max,
            });
        }
        let msp = self.identities.msp();
        let mut resolver = signers::Resolver::new(
            &msp,
            &self.identities,
            now,
            self.config.nested_signer_policy,
        );
        resolver.resolve(from, &envelope, &mut message)?;
        if resolver.nested_dropped > 0 {
            self.stats.add_nested_dropped(resolver.nested_dropped);
        }
        self.stats
            .add_peer_identities_known(resolver.peer_identities_known);
        let mut checks = resolver.checks;
        if kind == ContentKind::DataMsg
            && let Some(verifier) = &self.block_verifier
        {
            checks.extend(block_checks(verifier.as_ref(), &message, now)?);
        }
        if kind == ContentKind::DataUpdate {
            let verifier = self.block_verifier.as_deref();
            let update = block::update_checks(verifier, &self.seen, &mut message, now)?;
            checks.extend(update.checks);
            self.stats.add_block_items_seen(update.seen);
        }
        if kind == ContentKind::StateResponse {
            let verifier = self.block_verifier.as_deref();
            let found = block::state_response_checks(verifier, &self.seen, &mut message, now)?;
            checks.extend(found.checks);
            self.stats.add_block_items_seen(found.seen);
        }
        let checks_len = checks.len();
        let check_digests = self.verified.retain_unverified(&mut checks);
        self.stats
            .add_checks_skipped_verified((checks_len - checks.len()) as u64);
        Ok(Prechecked {
            received: ReceivedMessage {
                from,
                envelope,
                message,
                envelope_len_bytes,
                kind,
                blocks_authenticated: self.block_verifier.is_some(),
            },
            checks,
            check_digests,
            seen_key,
            learn: resolver.learn,
            peer_identities: resolver.peer_identities,
        })
    }

    /// Stage 1c: takes the outcome of the signature checks and admits the message: marks it seen
    /// (a copy that raced it through verification is rejected as `Duplicate` here) and stores the
    /// identities it carried. A data message is not marked here: it carries no signature, and its
    /// block is checked later, by its channel; the driver marks it once the channel took it
    /// ([`Ingress::mark_block_seen`]), so a forged block N cannot make the genuine block N a
    /// duplicate.
    pub fn accept(
        &self,
        prechecked: Prechecked,
        checks_result: Result<(), SignatureError>,
        now: Instant,
    ) -> Result<Verified<ReceivedMessage>, Reject> {
        let is_block = matches!(
            prechecked.received.kind,
            ContentKind::DataMsg | ContentKind::StateResponse
        ) || is_block_update(&prechecked.received.message);
        let admitted = checks_result
            .map_err(|e| {
                // A data message, and a block update with its items, are unsigned: a failed check
                // is an orderer's block signature.
                if is_block {
                    Reject::BadBlock(BlockReject::BadSignature)
                } else {
                    Reject::BadSignature(e)
                }
            })
            .and_then(|()| match prechecked.seen_key {
                Some(key)
                    if prechecked.received.kind != ContentKind::DataMsg
                        && !self.seen.insert(key, now) =>
                {
                    Err(Reject::Duplicate)
                }
                _ => Ok(()),
            });
        if let Err(reject) = admitted {
            self.stats.record_reject(&reject);
            return Err(reject);
        }
        self.verified.insert_all(&prechecked.check_digests);
        for identity in prechecked.learn {
            let learned = self.identities.insert_validated(identity, now).is_ok();
            self.stats.record_identity_learned(learned);
        }
        for (pki_id, digest) in prechecked.peer_identities {
            self.identities.mark_peer_identity_verified(&pki_id, digest);
        }
        self.stats.record_accepted();
        Ok(Verified::new(prechecked.received))
    }

    /// Block `seq_num` of `channel` passed its channel's checks and was taken: later copies are
    /// dropped as duplicates before they are decoded further.
    pub fn mark_block_seen(&self, channel: &[u8], seq_num: u64, now: Instant) {
        self.seen.insert(SeenKey::of_block(channel, seq_num), now);
    }

    /// All three stages inline: precheck, run the checks, accept (the simulator's path).
    pub fn receive_inline(
        &self,
        from: PkiId,
        envelope: Envelope,
        now: Instant,
    ) -> Result<Verified<ReceivedMessage>, Reject> {
        let prechecked = self.precheck(from, envelope, now)?;
        let outcome = prechecked.run_checks();
        self.accept(prechecked, outcome, now)
    }
}

/// Whether `message` is a block pull update.
fn is_block_update(message: &GossipMessage) -> bool {
    matches!(&message.content, Some(Content::DataUpdate(u))
        if u.msg_type == gossip_proto::gossip::PullMsgType::BlockMsg as i32)
}

/// The orderer signature checks of a data message's block, after its structural checks.
fn block_checks(
    verifier: &dyn BlockVerifier,
    message: &GossipMessage,
    now: Instant,
) -> Result<Vec<SignatureCheck>, Reject> {
    let Some(Content::DataMsg(data)) = &message.content else {
        return Err(Reject::Invalid("data message without content"));
    };
    let payload = data
        .payload
        .as_ref()
        .ok_or(Reject::Invalid("data message without payload"))?;
    block::payload_checks(verifier, &message.channel, payload, now)
}

#[cfg(test)]
mod tests;
