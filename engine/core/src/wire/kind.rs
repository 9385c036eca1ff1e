//! Message kinds and the tag rules of spec 1.4 and 1.5.

use gossip_proto::gossip::GossipMessage;
use gossip_proto::gossip::gossip_message::{Content, Tag};

use super::{PullMsgType, pull_msg_type};

/// The `GossipMessage.content` oneof member, or `None` when no content is set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ContentKind {
    /// `alive_msg` (5).
    AliveMsg,
    /// `mem_req` (6).
    MemReq,
    /// `mem_res` (7).
    MemRes,
    /// `data_msg` (8).
    DataMsg,
    /// `hello` (9).
    Hello,
    /// `data_dig` (10).
    DataDig,
    /// `data_req` (11).
    DataReq,
    /// `data_update` (12).
    DataUpdate,
    /// `empty` (13).
    Empty,
    /// `conn` (14).
    Conn,
    /// `state_info` (15).
    StateInfo,
    /// `state_snapshot` (16).
    StateSnapshot,
    /// `state_info_pull_req` (17).
    StateInfoPullReq,
    /// `state_request` (18).
    StateRequest,
    /// `state_response` (19).
    StateResponse,
    /// `leadership_msg` (20).
    LeadershipMsg,
    /// `peer_identity` (21).
    PeerIdentity,
    /// `ack` (22).
    Ack,
    /// `privateReq` (23).
    PrivateReq,
    /// `privateRes` (24).
    PrivateRes,
    /// `private_data` (25).
    PrivateData,
    /// No content set.
    None,
}

impl ContentKind {
    /// Every kind, in field-number order, `None` last.
    pub const ALL: [ContentKind; 22] = [
        ContentKind::AliveMsg,
        ContentKind::MemReq,
        ContentKind::MemRes,
        ContentKind::DataMsg,
        ContentKind::Hello,
        ContentKind::DataDig,
        ContentKind::DataReq,
        ContentKind::DataUpdate,
        ContentKind::Empty,
        ContentKind::Conn,
        ContentKind::StateInfo,
        ContentKind::StateSnapshot,
        ContentKind::StateInfoPullReq,
        ContentKind::StateRequest,
        ContentKind::StateResponse,
        ContentKind::LeadershipMsg,
        ContentKind::PeerIdentity,
        ContentKind::Ack,
        ContentKind::PrivateReq,
        ContentKind::PrivateRes,
        ContentKind::PrivateData,
        ContentKind::None,
    ];

    /// The kind of a message's content.
    pub fn of(message: &GossipMessage) -> Self {
        Self::of_content(message.content.as_ref())
    }

    /// The kind of a content oneof value.
    pub fn of_content(content: Option<&Content>) -> Self {
        let Some(content) = content else {
            return ContentKind::None;
        };
        match content {
            Content::AliveMsg(_) => ContentKind::AliveMsg,
            Content::MemReq(_) => ContentKind::MemReq,
            Content::MemRes(_) => ContentKind::MemRes,
            Content::DataMsg(_) => ContentKind::DataMsg,
            Content::Hello(_) => ContentKind::Hello,
            Content::DataDig(_) => ContentKind::DataDig,
            Content::DataReq(_) => ContentKind::DataReq,
            Content::DataUpdate(_) => ContentKind::DataUpdate,
            Content::Empty(_) => ContentKind::Empty,
            Content::Conn(_) => ContentKind::Conn,
            Content::StateInfo(_) => ContentKind::StateInfo,
            Content::StateSnapshot(_) => ContentKind::StateSnapshot,
            Content::StateInfoPullReq(_) => ContentKind::StateInfoPullReq,
            Content::StateRequest(_) => ContentKind::StateRequest,
            Content::StateResponse(_) => ContentKind::StateResponse,
            Content::LeadershipMsg(_) => ContentKind::LeadershipMsg,
            Content::PeerIdentity(_) => ContentKind::PeerIdentity,
            Content::Ack(_) => ContentKind::Ack,
            Content::PrivateReq(_) => ContentKind::PrivateReq,
            Content::PrivateRes(_) => ContentKind::PrivateRes,
            Content::PrivateData(_) => ContentKind::PrivateData,
        }
    }

    /// The `.proto` field name of the oneof member (`"none"` for no content).
    pub fn name(self) -> &'static str {
        match self {
            ContentKind::AliveMsg => "alive_msg",
            ContentKind::MemReq => "mem_req",
            ContentKind::MemRes => "mem_res",
            ContentKind::DataMsg => "data_msg",
            ContentKind::Hello => "hello",
            ContentKind::DataDig => "data_dig",
            ContentKind::DataReq => "data_req",
            ContentKind::DataUpdate => "data_update",
            ContentKind::Empty => "empty",
            ContentKind::Conn => "conn",
            ContentKind::StateInfo => "state_info",
            ContentKind::StateSnapshot => "state_snapshot",
            ContentKind::StateInfoPullReq => "state_info_pull_req",
            ContentKind::StateRequest => "state_request",
            ContentKind::StateResponse => "state_response",
            ContentKind::LeadershipMsg => "leadership_msg",
            ContentKind::PeerIdentity => "peer_identity",
            ContentKind::Ack => "ack",
            ContentKind::PrivateReq => "privateReq",
            ContentKind::PrivateRes => "privateRes",
            ContentKind::PrivateData => "private_data",
            ContentKind::None => "none",
        }
    }

    /// The `.proto` field number of the oneof member (0 for no content).
    pub fn field_number(self) -> u32 {
        match self {
            ContentKind::None => 0,
            other => {
                5 + ContentKind::ALL
                    .iter()
                    .position(|k| *k == other)
                    .unwrap_or(0) as u32
            }
        }
    }

    /// Whether this kind is one of the four pull messages (hello, digest, request, update).
    pub fn is_pull(self) -> bool {
        matches!(
            self,
            ContentKind::Hello
                | ContentKind::DataDig
                | ContentKind::DataReq
                | ContentKind::DataUpdate
        )
    }
}

impl std::fmt::Display for ContentKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Kinds that comm or the gossip core take aside before the tag check (spec 1.4): Fabric's
/// `IsTagLegal` would call them illegal, yet Fabric sends exactly these bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Bypass {
    /// `conn`: the handshake message; comm consumes it.
    Handshake,
    /// `empty`: filtered out by the gossip core's message selector.
    Empty,
    /// `ack`: tag UNDEFINED; comm intercepts it for `SendWithAck`.
    Ack,
    /// `private_data`, `privateReq`, `privateRes`: tag CHAN_ONLY, delivered to the private-data
    /// and state modules through pass-through subscriptions.
    PrivateData,
}

/// Where a received message goes before anything else looks at it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Route {
    /// A gossip-core message: its tag must pass [`check_tag`].
    TagChecked,
    /// Taken aside before the tag check.
    Bypass(Bypass),
}

/// How a kind is routed (spec 1.4: conn, empty, ack and private data never reach `IsTagLegal`).
pub fn route(kind: ContentKind) -> Route {
    match kind {
        ContentKind::Conn => Route::Bypass(Bypass::Handshake),
        ContentKind::Empty => Route::Bypass(Bypass::Empty),
        ContentKind::Ack => Route::Bypass(Bypass::Ack),
        ContentKind::PrivateData | ContentKind::PrivateReq | ContentKind::PrivateRes => {
            Route::Bypass(Bypass::PrivateData)
        }
        _ => Route::TagChecked,
    }
}

/// Why a message's tag is illegal for its content. The message is dropped; the stream stays.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TagError {
    /// Tag UNDEFINED is always illegal.
    #[error("tag UNDEFINED is illegal ({kind})")]
    Undefined {
        /// The message's kind.
        kind: ContentKind,
    },
    /// The tag number is not a `Tag` value.
    #[error("unknown tag value {tag_value} ({kind})")]
    UnknownTag {
        /// The message's kind.
        kind: ContentKind,
        /// The raw tag number.
        tag_value: i32,
    },
    /// The tag is not the one the kind requires.
    #[error("{kind} requires tag {required:?}, got {got:?}")]
    Mismatch {
        /// The message's kind.
        kind: ContentKind,
        /// The tag the kind requires.
        required: Tag,
        /// The tag it carries.
        got: Tag,
    },
    /// A pull message whose `msg_type` is neither BLOCK_MSG nor IDENTITY_MSG.
    #[error("{kind} with pull msg_type {msg_type} is illegal")]
    BadPullType {
        /// The message's kind.
        kind: ContentKind,
        /// The raw `msg_type`.
        msg_type: i32,
    },
    /// A kind the tag check does not know: no content, or a kind that is routed aside
    /// ([`route`]) and never tag-checked ("Unknown message type" in Fabric).
    #[error("unknown message type {kind}")]
    UnknownType {
        /// The message's kind.
        kind: ContentKind,
    },
}

/// The tag a kind requires; `None` for pull kinds (it depends on `msg_type`) and for kinds the tag
/// check does not know.
fn required_tag(kind: ContentKind) -> Option<Tag> {
    match kind {
        ContentKind::DataMsg | ContentKind::LeadershipMsg => Some(Tag::ChanAndOrg),
        ContentKind::AliveMsg | ContentKind::MemReq | ContentKind::MemRes => Some(Tag::Empty),
        ContentKind::PeerIdentity => Some(Tag::OrgOnly),
        ContentKind::StateInfo
        | ContentKind::StateInfoPullReq
        | ContentKind::StateSnapshot
        | ContentKind::StateRequest
        | ContentKind::StateResponse => Some(Tag::ChanOrOrg),
        _ => None,
    }
}

/// Fabric's `IsTagLegal` (spec 1.4): returns the message's kind when its tag is legal.
///
/// Kinds that [`route`] takes aside (conn, empty, ack, private data) are illegal here, exactly as in
/// Fabric; route them before calling this.
pub fn check_tag(message: &GossipMessage) -> Result<ContentKind, TagError> {
    let kind = ContentKind::of(message);
    let tag = Tag::try_from(message.tag).map_err(|_| TagError::UnknownTag {
        kind,
        tag_value: message.tag,
    })?;
    if tag == Tag::Undefined {
        return Err(TagError::Undefined { kind });
    }
    let required = if kind.is_pull() {
        let msg_type = pull_msg_type(message).unwrap_or_default();
        match PullMsgType::try_from(msg_type) {
            Ok(PullMsgType::BlockMsg) => Tag::ChanAndOrg,
            Ok(PullMsgType::IdentityMsg) => Tag::Empty,
            _ => return Err(TagError::BadPullType { kind, msg_type }),
        }
    } else {
        required_tag(kind).ok_or(TagError::UnknownType { kind })?
    };
    if tag != required {
        return Err(TagError::Mismatch {
            kind,
            required,
            got: tag,
        });
    }
    Ok(kind)
}

/// Whether messages of this kind are signed with the sender's MSP key (spec 1.5): conn, alive
/// (plus its secret envelope), state_info, leadership and peer_identity. Every other kind travels
/// with an empty signature; signed items nested inside them keep their own signatures.
pub fn is_signed_kind(kind: ContentKind) -> bool {
    matches!(
        kind,
        ContentKind::Conn
            | ContentKind::AliveMsg
            | ContentKind::StateInfo
            | ContentKind::LeadershipMsg
            | ContentKind::PeerIdentity
    )
}
