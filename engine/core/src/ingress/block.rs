//! Block authentication, as Fabric's `MessageCryptoService.VerifyBlock` does it
//! (`peer/gossip/mcs.go`): a block is taken only when it is well formed for its channel and
//! number and carries enough orderer signatures.
//!
//! The embedder provides the policy as a [`BlockVerifier`]; [`OrdererBlockPolicy`] is Fabric's
//! `/Channel/Orderer/BlockValidation` for etcdraft channels: `signatures_required` distinct
//! members of the orderer orgs ("ANY Writers" is 1). Ingress runs [`BlockVerifier::precheck`] on
//! the connection task and the signature checks it returns on the verifier pool, like every other
//! signature: a block that fails is never stored, forwarded, marked as seen or delivered.
//!
//! Where this is stricter than Fabric: every signature in the SIGNATURES metadata must verify
//! (Fabric's policy evaluation skips a bad one when enough good ones remain), and every data entry
//! must be an `Envelope` naming the channel (Fabric reads the channel from the first entry only).
//! BFT blocks (signatures identified by consenter id, not by a signature header) are refused.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use gossip_proto::common::{
    Block, BlockHeader, ChannelHeader, Envelope, Header, Metadata, Payload, SignatureHeader,
};
use parking_lot::Mutex;
use prost::Message;

use super::SignatureCheck;
use crate::crypto::{Identity, IdentityError, MspManager, der, sha256_concat};
use crate::time::Instant;

/// What [`update_checks`] found in a block pull update.
#[derive(Debug, Default)]
pub(super) struct UpdateChecks {
    /// The orderer signature checks of the items kept.
    pub checks: Vec<SignatureCheck>,
    /// Items left out because their block was taken already.
    pub seen: u64,
}

/// A block pull update (`DataUpdate` with BLOCK_MSG): every item must be a data message of the
/// update's channel (the resolver checked it is a data message with a payload); an item whose
/// block was taken already (marked seen) is removed from the decoded message before anything is
/// paid for it, as Fabric's channel skips blocks its store would refuse before `VerifyBlock`;
/// with a `verifier`, every other item's block is authenticated like a pushed one, and one that
/// fails rejects the whole update (Fabric aborts it). The envelope stays as received.
pub(super) fn update_checks(
    verifier: Option<&dyn BlockVerifier>,
    seen: &super::SeenCache,
    message: &mut gossip_proto::gossip::GossipMessage,
    now: Instant,
) -> Result<UpdateChecks, super::Reject> {
    use gossip_proto::gossip::gossip_message::Content;
    use gossip_proto::gossip::{GossipMessage, PullMsgType};
    let mut found = UpdateChecks::default();
    let channel = message.channel.clone();
    let Some(Content::DataUpdate(update)) = &mut message.content else {
        return Ok(found);
    };
    if update.msg_type != PullMsgType::BlockMsg as i32 {
        return Ok(found);
    }
    let mut kept = Vec::with_capacity(update.data.len());
    for item in std::mem::take(&mut update.data) {
        let inner = GossipMessage::decode(item.payload.clone())
            .map_err(|_| super::Reject::Invalid("nested envelope does not decode"))?;
        if inner.channel != channel {
            return Err(super::Reject::Invalid(
                "block update item of another channel",
            ));
        }
        let seq = match &inner.content {
            Some(Content::DataMsg(d)) => d.payload.as_ref().map(|p| p.seq_num),
            _ => None,
        }
        .ok_or(super::Reject::Invalid(
            "block update item is not a data message",
        ))?;
        if seen.contains(&super::SeenKey::of_block(&channel, seq)) {
            found.seen += 1;
            continue;
        }
        if let Some(verifier) = verifier {
            found
                .checks
                .extend(super::block_checks(verifier, &inner, now)?);
        }
        kept.push(item);
    }
    update.data = kept;
    Ok(found)
}

/// A state response: with a `verifier`, every payload's block is authenticated like a pushed
/// one, and one that fails rejects the whole response (Fabric's `VerifyBlock` loop over the
/// payloads). Payloads whose block was taken already are removed from the decoded message first.
pub(super) fn state_response_checks(
    verifier: Option<&dyn BlockVerifier>,
    seen: &super::SeenCache,
    message: &mut gossip_proto::gossip::GossipMessage,
    now: Instant,
) -> Result<UpdateChecks, super::Reject> {
    use gossip_proto::gossip::gossip_message::Content;
    let mut found = UpdateChecks::default();
    let channel = message.channel.clone();
    let Some(Content::StateResponse(response)) = &mut message.content else {
        return Ok(found);
    };
    let mut kept = Vec::with_capacity(response.payloads.len());
    for payload in std::mem::take(&mut response.payloads) {
        if seen.contains(&super::SeenKey::of_block(&channel, payload.seq_num)) {
            found.seen += 1;
            continue;
        }
        if let Some(verifier) = verifier {
            found
                .checks
                .extend(payload_checks(verifier, &channel, &payload, now)?);
        }
        kept.push(payload);
    }
    response.payloads = kept;
    Ok(found)
}

/// The orderer signature checks of one block payload of `channel`, after its structural checks.
pub(super) fn payload_checks(
    verifier: &dyn BlockVerifier,
    channel: &[u8],
    payload: &gossip_proto::gossip::Payload,
    now: Instant,
) -> Result<Vec<SignatureCheck>, super::Reject> {
    let block = Block::decode(payload.data.clone())
        .map_err(|_| super::Reject::BadBlock(BlockReject::Malformed("not a block")))?;
    verifier
        .precheck(channel, payload.seq_num, &block, now)
        .map_err(super::Reject::BadBlock)
}

/// Index of the SIGNATURES entry in a block's metadata (`common.BlockMetadataIndex`).
pub const SIGNATURES_INDEX: usize = 0;

/// Orderer identities remembered once validated (an orderer org has a handful of members).
const SIGNERS_CACHED_MAX: usize = 64;

/// Why a block was refused. Each reason has its own counter (`block_*` in the comm's rejects).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockReject {
    /// Not a `common.Block`, or a part Fabric requires is missing or does not decode.
    #[error("malformed block: {0}")]
    Malformed(&'static str),
    /// A data entry names another channel than the message's.
    #[error("block of another channel")]
    WrongChannel,
    /// `header.number` differs from the gossip payload's `seq_num`.
    #[error("header number {header} is not the payload's seq_num {seq}")]
    NumberMismatch {
        /// The header's number.
        header: u64,
        /// The gossip payload's sequence number.
        seq: u64,
    },
    /// `header.data_hash` is not the SHA-256 of the data entries.
    #[error("data hash mismatch")]
    DataHash,
    /// No signature in the SIGNATURES metadata.
    #[error("block carries no orderer signature")]
    Unsigned,
    /// A signer's identity does not parse or does not validate under the orderer MSPs.
    #[error("block signer: {0}")]
    BadSigner(IdentityError),
    /// Fewer distinct valid orderer signers than the policy requires.
    #[error("{signers} orderer signers, the policy requires {required}")]
    TooFewSignatures {
        /// Distinct signers found.
        signers: usize,
        /// Required by the policy.
        required: usize,
    },
    /// An orderer signature does not verify (reported after the verifier pool ran the checks).
    #[error("orderer signature does not verify")]
    BadSignature,
}

impl BlockReject {
    /// A short stable name for counters and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            BlockReject::Malformed(_) => "block_malformed",
            BlockReject::WrongChannel => "block_wrong_channel",
            BlockReject::NumberMismatch { .. } => "block_number_mismatch",
            BlockReject::DataHash => "block_data_hash",
            BlockReject::Unsigned => "block_unsigned",
            BlockReject::BadSigner(_) => "block_bad_signer",
            BlockReject::TooFewSignatures { .. } => "block_too_few_signatures",
            BlockReject::BadSignature => "block_bad_signature",
        }
    }
}

/// A channel's block validation policy, provided by the embedder.
pub trait BlockVerifier: Send + Sync + std::fmt::Debug {
    /// Every check of block `seq` of `channel` but the signatures themselves, which it returns:
    /// the block is authentic when all of them pass. Runs on a connection task; `now` dates the
    /// signers' certificates.
    fn precheck(
        &self,
        channel: &[u8],
        seq: u64,
        block: &Block,
        now: Instant,
    ) -> Result<Vec<SignatureCheck>, BlockReject>;
}

/// Fabric's block validation for etcdraft channels: `signatures_required` distinct members of
/// the orderer orgs sign `value ‖ signature_header ‖ ASN.1(header)` of the SIGNATURES metadata.
#[derive(Debug)]
pub struct OrdererBlockPolicy {
    orderers: MspManager,
    signatures_required: usize,
    /// Validated signers by serialized identity.
    signers: Mutex<HashMap<Bytes, Arc<Identity>>>,
}

impl OrdererBlockPolicy {
    /// The policy over the orderer orgs' MSPs; `signatures_required` is at least 1.
    pub fn new(orderers: MspManager, signatures_required: usize) -> Self {
        Self {
            orderers,
            signatures_required: signatures_required.max(1),
            signers: Mutex::new(HashMap::new()),
        }
    }

    /// A validated orderer identity for `creator` (cached once valid; expiry checked each time).
    fn signer(&self, creator: Bytes, now: Instant) -> Result<Arc<Identity>, BlockReject> {
        if let Some(identity) = self.signers.lock().get(&creator) {
            if now.as_unix_secs() <= identity.cert.not_after_unix_s {
                return Ok(Arc::clone(identity));
            }
            return Err(BlockReject::BadSigner(IdentityError::Expired {
                not_after_unix_s: identity.cert.not_after_unix_s,
            }));
        }
        let identity =
            Identity::from_serialized(creator.clone()).map_err(BlockReject::BadSigner)?;
        self.orderers
            .validate(&identity, now.as_unix_secs())
            .map_err(BlockReject::BadSigner)?;
        let identity = Arc::new(identity);
        let mut signers = self.signers.lock();
        if signers.len() >= SIGNERS_CACHED_MAX {
            signers.clear();
        }
        signers.insert(creator, Arc::clone(&identity));
        Ok(identity)
    }
}

impl BlockVerifier for OrdererBlockPolicy {
    fn precheck(
        &self,
        channel: &[u8],
        seq: u64,
        block: &Block,
        now: Instant,
    ) -> Result<Vec<SignatureCheck>, BlockReject> {
        let header = check_structure(channel, seq, block)?;
        let metadata = block
            .metadata
            .as_ref()
            .and_then(|m| m.metadata.get(SIGNATURES_INDEX))
            .ok_or(BlockReject::Malformed("no SIGNATURES metadata"))?;
        let metadata = Metadata::decode(metadata.clone())
            .map_err(|_| BlockReject::Malformed("SIGNATURES metadata"))?;
        if metadata.signatures.is_empty() {
            return Err(BlockReject::Unsigned);
        }
        let header_der = header_asn1(header);
        let mut checks = Vec::with_capacity(metadata.signatures.len());
        let mut signers: Vec<Bytes> = Vec::new();
        for signature in &metadata.signatures {
            if signature.signature_header.is_empty() {
                return Err(BlockReject::Malformed(
                    "signature without a signature header (BFT)",
                ));
            }
            let signature_header = SignatureHeader::decode(signature.signature_header.clone())
                .map_err(|_| BlockReject::Malformed("signature header"))?;
            let signer = self.signer(signature_header.creator.clone(), now)?;
            let mut signed = Vec::with_capacity(
                metadata.value.len() + signature.signature_header.len() + header_der.len(),
            );
            signed.extend_from_slice(&metadata.value);
            signed.extend_from_slice(&signature.signature_header);
            signed.extend_from_slice(&header_der);
            checks.push(SignatureCheck::block(
                signer.public_key().clone(),
                Bytes::from(signed),
                signature.signature.clone(),
            ));
            if !signers.contains(&signature_header.creator) {
                signers.push(signature_header.creator);
            }
        }
        if signers.len() < self.signatures_required {
            return Err(BlockReject::TooFewSignatures {
                signers: signers.len(),
                required: self.signatures_required,
            });
        }
        Ok(checks)
    }
}

/// The checks of `VerifyBlock` before the policy: header, data and metadata present, every data
/// entry an envelope of `channel`, `header.number == seq`, `header.data_hash` the SHA-256 of the
/// data entries. Returns the header.
pub fn check_structure<'a>(
    channel: &[u8],
    seq: u64,
    block: &'a Block,
) -> Result<&'a BlockHeader, BlockReject> {
    let header = block
        .header
        .as_ref()
        .ok_or(BlockReject::Malformed("no header"))?;
    let data = block
        .data
        .as_ref()
        .ok_or(BlockReject::Malformed("no data"))?;
    if block
        .metadata
        .as_ref()
        .is_none_or(|m| m.metadata.is_empty())
    {
        return Err(BlockReject::Malformed("no metadata"));
    }
    if header.number != seq {
        return Err(BlockReject::NumberMismatch {
            header: header.number,
            seq,
        });
    }
    if data.data.is_empty() {
        return Err(BlockReject::Malformed("no data entries"));
    }
    for entry in &data.data {
        if channel_of_entry(entry)?.as_bytes() != channel {
            return Err(BlockReject::WrongChannel);
        }
    }
    if header.data_hash[..] != sha256_concat(data.data.iter().map(|d| &d[..]))[..] {
        return Err(BlockReject::DataHash);
    }
    Ok(header)
}

/// The channel a data entry names: `Envelope.payload.header.channel_header.channel_id`.
fn channel_of_entry(entry: &Bytes) -> Result<String, BlockReject> {
    let envelope =
        Envelope::decode(entry.clone()).map_err(|_| BlockReject::Malformed("data entry"))?;
    let payload =
        Payload::decode(envelope.payload).map_err(|_| BlockReject::Malformed("entry payload"))?;
    let header: Header = payload
        .header
        .ok_or(BlockReject::Malformed("entry without a header"))?;
    let channel_header = ChannelHeader::decode(header.channel_header)
        .map_err(|_| BlockReject::Malformed("channel header"))?;
    Ok(channel_header.channel_id)
}

/// `protoutil.BlockHeaderBytes`: Go's `encoding/asn1` of `SEQUENCE { Number INTEGER, PreviousHash
/// OCTET STRING, DataHash OCTET STRING }`, the number a minimal two's complement INTEGER.
pub fn header_asn1(header: &BlockHeader) -> Vec<u8> {
    let mut body = Vec::with_capacity(16 + header.previous_hash.len() + header.data_hash.len());
    der::write_integer(&mut body, &header.number.to_be_bytes());
    for octets in [&header.previous_hash, &header.data_hash] {
        body.push(0x04);
        der::write_len(&mut body, octets.len());
        body.extend_from_slice(octets);
    }
    let mut out = Vec::with_capacity(body.len() + 6);
    out.push(0x30);
    der::write_len(&mut out, body.len());
    out.extend_from_slice(&body);
    out
}
