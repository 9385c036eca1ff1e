//! The wire layer: what kind of message a `GossipMessage` is, which tag it must carry (spec 1.4),
//! whether it is signed (spec 1.5), and zero-copy decoding of envelopes and their payloads.
//!
//! Decoding goes through `bytes::Bytes`: every `bytes` field of the decoded message is a slice of
//! the received buffer, never a copy. Strings are checked for UTF-8 as Go's protobuf does.

pub mod kind;
pub mod size;

use bytes::Bytes;
use gossip_proto::gossip::{Envelope, GossipMessage};
use prost::Message;

pub use gossip_proto::gossip::PullMsgType;
pub use gossip_proto::gossip::gossip_message::Tag;
pub use kind::{Bypass, ContentKind, Route, TagError, check_tag, is_signed_kind, route};

/// Why bytes did not decode. The stream that sent them is broken or hostile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The bytes are not a `gossip.Envelope`.
    #[error("envelope does not decode: {0}")]
    Envelope(prost::DecodeError),
    /// The envelope's payload is not a `gossip.GossipMessage`.
    #[error("payload does not decode as GossipMessage: {0}")]
    Message(prost::DecodeError),
    /// The encoded envelope is longer than the configured maximum; nothing was decoded.
    #[error("envelope of {len_bytes} bytes exceeds the {len_max_bytes}-byte limit")]
    TooLarge {
        /// Encoded length, bytes.
        len_bytes: usize,
        /// The limit, bytes.
        len_max_bytes: usize,
    },
}

/// Decodes an envelope from a received buffer; `payload`, `signature` and the secret envelope's
/// fields are slices of `buffer`.
pub fn decode_envelope(buffer: Bytes) -> Result<Envelope, WireError> {
    Envelope::decode(buffer).map_err(WireError::Envelope)
}

/// Like [`decode_envelope`], refusing a buffer longer than `len_max_bytes` before decoding.
pub fn decode_envelope_limited(buffer: Bytes, len_max_bytes: usize) -> Result<Envelope, WireError> {
    if buffer.len() > len_max_bytes {
        return Err(WireError::TooLarge {
            len_bytes: buffer.len(),
            len_max_bytes,
        });
    }
    decode_envelope(buffer)
}

/// Decodes the `GossipMessage` inside an envelope. Its `bytes` fields (channel, block data, PKI-IDs,
/// nested envelopes' payloads) are slices of the envelope's payload buffer.
pub fn decode_message(envelope: &Envelope) -> Result<GossipMessage, WireError> {
    GossipMessage::decode(envelope.payload.clone()).map_err(WireError::Message)
}

/// The message's tag, `None` when the number is not a known `Tag` value.
pub fn tag_of(message: &GossipMessage) -> Option<Tag> {
    Tag::try_from(message.tag).ok()
}

/// "Channel restricted": tag ∈ {CHAN_AND_ORG, CHAN_ONLY, CHAN_OR_ORG}.
pub fn is_channel_restricted(tag: Tag) -> bool {
    matches!(tag, Tag::ChanAndOrg | Tag::ChanOnly | Tag::ChanOrOrg)
}

/// "Org restricted": tag ∈ {CHAN_AND_ORG, ORG_ONLY}.
pub fn is_org_restricted(tag: Tag) -> bool {
    matches!(tag, Tag::ChanAndOrg | Tag::OrgOnly)
}

/// The pull message type of a hello, digest, request or update; `None` for other kinds.
pub fn pull_msg_type(message: &GossipMessage) -> Option<i32> {
    use gossip_proto::gossip::gossip_message::Content;
    match message.content.as_ref()? {
        Content::Hello(m) => Some(m.msg_type),
        Content::DataDig(m) => Some(m.msg_type),
        Content::DataReq(m) => Some(m.msg_type),
        Content::DataUpdate(m) => Some(m.msg_type),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
