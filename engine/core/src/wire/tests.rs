use bytes::Bytes;
use gossip_proto::gossip::gossip_message::Content;
use gossip_proto::gossip::*;
use prost::Message;

use super::*;
use crate::golden::Golden;

fn message(tag: Tag, content: Option<Content>) -> GossipMessage {
    GossipMessage {
        nonce: 0,
        channel: Bytes::new(),
        tag: tag as i32,
        content,
    }
}

fn content_of(kind: ContentKind, msg_type: PullMsgType) -> Option<Content> {
    let t = msg_type as i32;
    Some(match kind {
        ContentKind::AliveMsg => Content::AliveMsg(AliveMessage::default()),
        ContentKind::MemReq => Content::MemReq(MembershipRequest::default()),
        ContentKind::MemRes => Content::MemRes(MembershipResponse::default()),
        ContentKind::DataMsg => Content::DataMsg(DataMessage::default()),
        ContentKind::Hello => Content::Hello(GossipHello {
            msg_type: t,
            ..Default::default()
        }),
        ContentKind::DataDig => Content::DataDig(DataDigest {
            msg_type: t,
            ..Default::default()
        }),
        ContentKind::DataReq => Content::DataReq(DataRequest {
            msg_type: t,
            ..Default::default()
        }),
        ContentKind::DataUpdate => Content::DataUpdate(DataUpdate {
            msg_type: t,
            ..Default::default()
        }),
        ContentKind::Empty => Content::Empty(Empty {}),
        ContentKind::Conn => Content::Conn(ConnEstablish::default()),
        ContentKind::StateInfo => Content::StateInfo(StateInfo::default()),
        ContentKind::StateSnapshot => Content::StateSnapshot(StateInfoSnapshot::default()),
        ContentKind::StateInfoPullReq => Content::StateInfoPullReq(StateInfoPullRequest::default()),
        ContentKind::StateRequest => Content::StateRequest(RemoteStateRequest::default()),
        ContentKind::StateResponse => Content::StateResponse(RemoteStateResponse::default()),
        ContentKind::LeadershipMsg => Content::LeadershipMsg(LeadershipMessage::default()),
        ContentKind::PeerIdentity => Content::PeerIdentity(PeerIdentity::default()),
        ContentKind::Ack => Content::Ack(Acknowledgement::default()),
        ContentKind::PrivateReq => Content::PrivateReq(RemotePvtDataRequest::default()),
        ContentKind::PrivateRes => Content::PrivateRes(RemotePvtDataResponse::default()),
        ContentKind::PrivateData => Content::PrivateData(PrivateDataMessage::default()),
        ContentKind::None => return None,
    })
}

const TAGS: [Tag; 6] = [
    Tag::Undefined,
    Tag::Empty,
    Tag::OrgOnly,
    Tag::ChanOnly,
    Tag::ChanAndOrg,
    Tag::ChanOrOrg,
];

/// Spec 1.4 as a table: the one legal tag per kind (and pull msg_type), `None` where no tag is legal.
const LEGAL: &[(ContentKind, PullMsgType, Option<Tag>)] = &[
    (
        ContentKind::DataMsg,
        PullMsgType::Undefined,
        Some(Tag::ChanAndOrg),
    ),
    (
        ContentKind::AliveMsg,
        PullMsgType::Undefined,
        Some(Tag::Empty),
    ),
    (
        ContentKind::MemReq,
        PullMsgType::Undefined,
        Some(Tag::Empty),
    ),
    (
        ContentKind::MemRes,
        PullMsgType::Undefined,
        Some(Tag::Empty),
    ),
    (
        ContentKind::PeerIdentity,
        PullMsgType::Undefined,
        Some(Tag::OrgOnly),
    ),
    (
        ContentKind::Hello,
        PullMsgType::BlockMsg,
        Some(Tag::ChanAndOrg),
    ),
    (
        ContentKind::DataDig,
        PullMsgType::BlockMsg,
        Some(Tag::ChanAndOrg),
    ),
    (
        ContentKind::DataReq,
        PullMsgType::BlockMsg,
        Some(Tag::ChanAndOrg),
    ),
    (
        ContentKind::DataUpdate,
        PullMsgType::BlockMsg,
        Some(Tag::ChanAndOrg),
    ),
    (
        ContentKind::Hello,
        PullMsgType::IdentityMsg,
        Some(Tag::Empty),
    ),
    (
        ContentKind::DataDig,
        PullMsgType::IdentityMsg,
        Some(Tag::Empty),
    ),
    (
        ContentKind::DataReq,
        PullMsgType::IdentityMsg,
        Some(Tag::Empty),
    ),
    (
        ContentKind::DataUpdate,
        PullMsgType::IdentityMsg,
        Some(Tag::Empty),
    ),
    (ContentKind::Hello, PullMsgType::Undefined, None),
    (ContentKind::DataDig, PullMsgType::Undefined, None),
    (ContentKind::DataReq, PullMsgType::Undefined, None),
    (ContentKind::DataUpdate, PullMsgType::Undefined, None),
    (
        ContentKind::StateInfo,
        PullMsgType::Undefined,
        Some(Tag::ChanOrOrg),
    ),
    (
        ContentKind::StateInfoPullReq,
        PullMsgType::Undefined,
        Some(Tag::ChanOrOrg),
    ),
    (
        ContentKind::StateSnapshot,
        PullMsgType::Undefined,
        Some(Tag::ChanOrOrg),
    ),
    (
        ContentKind::StateRequest,
        PullMsgType::Undefined,
        Some(Tag::ChanOrOrg),
    ),
    (
        ContentKind::StateResponse,
        PullMsgType::Undefined,
        Some(Tag::ChanOrOrg),
    ),
    (
        ContentKind::LeadershipMsg,
        PullMsgType::Undefined,
        Some(Tag::ChanAndOrg),
    ),
    (ContentKind::Empty, PullMsgType::Undefined, None),
    (ContentKind::Conn, PullMsgType::Undefined, None),
    (ContentKind::Ack, PullMsgType::Undefined, None),
    (ContentKind::PrivateReq, PullMsgType::Undefined, None),
    (ContentKind::PrivateRes, PullMsgType::Undefined, None),
    (ContentKind::PrivateData, PullMsgType::Undefined, None),
    (ContentKind::None, PullMsgType::Undefined, None),
];

#[test]
fn tag_legality_table() {
    for &(kind, msg_type, legal) in LEGAL {
        for tag in TAGS {
            let m = message(tag, content_of(kind, msg_type));
            let got = check_tag(&m);
            let want_ok = Some(tag) == legal && tag != Tag::Undefined;
            assert_eq!(got.is_ok(), want_ok, "{kind} {msg_type:?} {tag:?}: {got:?}");
            if let Ok(k) = got {
                assert_eq!(k, kind);
            }
            if tag == Tag::Undefined {
                assert_eq!(got, Err(TagError::Undefined { kind }));
            }
        }
    }
    // Every kind appears in the table.
    for kind in ContentKind::ALL {
        assert!(
            LEGAL.iter().any(|(k, _, _)| *k == kind),
            "{kind} missing from the table"
        );
    }
}

#[test]
fn tag_errors_are_specific() {
    let hello = |t: i32| {
        Some(Content::Hello(GossipHello {
            msg_type: t,
            ..Default::default()
        }))
    };
    assert_eq!(
        check_tag(&message(Tag::Empty, hello(7))),
        Err(TagError::BadPullType {
            kind: ContentKind::Hello,
            msg_type: 7
        })
    );
    assert_eq!(
        check_tag(&message(
            Tag::ChanAndOrg,
            content_of(ContentKind::AliveMsg, PullMsgType::Undefined)
        )),
        Err(TagError::Mismatch {
            kind: ContentKind::AliveMsg,
            required: Tag::Empty,
            got: Tag::ChanAndOrg
        })
    );
    let mut m = message(
        Tag::Empty,
        content_of(ContentKind::AliveMsg, PullMsgType::Undefined),
    );
    m.tag = 42;
    assert_eq!(
        check_tag(&m),
        Err(TagError::UnknownTag {
            kind: ContentKind::AliveMsg,
            tag_value: 42
        })
    );
    assert_eq!(
        check_tag(&message(Tag::Empty, None)),
        Err(TagError::UnknownType {
            kind: ContentKind::None
        })
    );
}

#[test]
fn routes_and_signed_kinds() {
    // (kind, route, signed)
    let table: &[(ContentKind, Route, bool)] = &[
        (ContentKind::Conn, Route::Bypass(Bypass::Handshake), true),
        (ContentKind::Empty, Route::Bypass(Bypass::Empty), false),
        (ContentKind::Ack, Route::Bypass(Bypass::Ack), false),
        (
            ContentKind::PrivateData,
            Route::Bypass(Bypass::PrivateData),
            false,
        ),
        (
            ContentKind::PrivateReq,
            Route::Bypass(Bypass::PrivateData),
            false,
        ),
        (
            ContentKind::PrivateRes,
            Route::Bypass(Bypass::PrivateData),
            false,
        ),
        (ContentKind::AliveMsg, Route::TagChecked, true),
        (ContentKind::StateInfo, Route::TagChecked, true),
        (ContentKind::LeadershipMsg, Route::TagChecked, true),
        (ContentKind::PeerIdentity, Route::TagChecked, true),
        (ContentKind::MemReq, Route::TagChecked, false),
        (ContentKind::MemRes, Route::TagChecked, false),
        (ContentKind::DataMsg, Route::TagChecked, false),
        (ContentKind::Hello, Route::TagChecked, false),
        (ContentKind::DataDig, Route::TagChecked, false),
        (ContentKind::DataReq, Route::TagChecked, false),
        (ContentKind::DataUpdate, Route::TagChecked, false),
        (ContentKind::StateSnapshot, Route::TagChecked, false),
        (ContentKind::StateInfoPullReq, Route::TagChecked, false),
        (ContentKind::StateRequest, Route::TagChecked, false),
        (ContentKind::StateResponse, Route::TagChecked, false),
        (ContentKind::None, Route::TagChecked, false),
    ];
    assert_eq!(table.len(), ContentKind::ALL.len());
    for &(kind, want_route, signed) in table {
        assert_eq!(route(kind), want_route, "{kind}");
        assert_eq!(is_signed_kind(kind), signed, "{kind}");
    }
}

#[test]
fn restriction_helpers() {
    // (tag, channel restricted, org restricted)
    let table = [
        (Tag::Undefined, false, false),
        (Tag::Empty, false, false),
        (Tag::OrgOnly, false, true),
        (Tag::ChanOnly, true, false),
        (Tag::ChanAndOrg, true, true),
        (Tag::ChanOrOrg, true, false),
    ];
    for (tag, chan, org) in table {
        assert_eq!(is_channel_restricted(tag), chan, "{tag:?}");
        assert_eq!(is_org_restricted(tag), org, "{tag:?}");
    }
}

#[test]
fn kind_names_and_numbers_follow_the_proto() {
    for (i, kind) in ContentKind::ALL.iter().enumerate().take(21) {
        assert_eq!(kind.field_number(), 5 + i as u32);
    }
    assert_eq!(ContentKind::None.field_number(), 0);
    assert_eq!(ContentKind::PrivateReq.name(), "privateReq");
    assert_eq!(
        ContentKind::StateInfoPullReq.to_string(),
        "state_info_pull_req"
    );
}

#[test]
fn decoding_is_zero_copy() {
    let inner = GossipMessage {
        nonce: 9,
        channel: Bytes::from_static(b"mychannel"),
        tag: Tag::ChanAndOrg as i32,
        content: Some(Content::DataMsg(DataMessage {
            payload: Some(Payload {
                seq_num: 5,
                data: Bytes::from(vec![0xAB; 4096]),
                private_data: vec![],
            }),
        })),
    };
    let envelope = Envelope {
        payload: inner.encode_to_vec().into(),
        signature: Bytes::new(),
        secret_envelope: None,
    };
    let buffer = Bytes::from(envelope.encode_to_vec());
    let range = buffer.as_ptr() as usize..buffer.as_ptr() as usize + buffer.len();
    let decoded = decode_envelope(buffer.clone()).expect("envelope");
    assert!(
        range.contains(&(decoded.payload.as_ptr() as usize)),
        "payload copied"
    );
    let message = decode_message(&decoded).expect("message");
    assert_eq!(message, inner);
    let Some(Content::DataMsg(DataMessage { payload: Some(p) })) = &message.content else {
        panic!("content")
    };
    assert!(
        range.contains(&(p.data.as_ptr() as usize)),
        "block data copied"
    );
    assert!(
        range.contains(&(message.channel.as_ptr() as usize)),
        "channel copied"
    );
}

#[test]
fn decode_errors_are_typed() {
    assert!(matches!(
        decode_envelope(Bytes::from_static(&[0x0a, 0x05, 1])),
        Err(WireError::Envelope(_))
    ));
    let bad = Envelope {
        payload: Bytes::from_static(&[0x2a, 0x10]),
        ..Default::default()
    };
    assert!(matches!(decode_message(&bad), Err(WireError::Message(_))));
    assert_eq!(
        decode_envelope_limited(Bytes::from(vec![0u8; 11]), 10),
        Err(WireError::TooLarge {
            len_bytes: 11,
            len_max_bytes: 10
        })
    );
}

#[test]
fn golden_vectors_decode_and_match_fabric_tag_rules() {
    let Some(golden) = Golden::load() else { return };
    for v in &golden.vectors {
        let name = v["name"].as_str().expect("name");
        let envelope = decode_envelope(golden.envelope_bytes(name)).expect(name);
        assert_eq!(
            hex::encode(&envelope.payload),
            v["gossip_message_hex"].as_str().expect("hex"),
            "{name}"
        );
        let message = decode_message(&envelope).expect(name);
        let kind = ContentKind::of(&message);
        assert_eq!(
            kind.name(),
            v["content_variant"].as_str().expect("variant"),
            "{name}"
        );
        assert_eq!(
            u64::from(kind.field_number()),
            v["content_field_number"].as_u64().expect("number"),
            "{name}"
        );
        assert_eq!(
            message.tag as i64,
            v["tag_value"].as_i64().expect("tag"),
            "{name}"
        );
        assert_eq!(
            check_tag(&message).is_ok(),
            v["fabric_is_tag_legal"].as_bool().expect("legal"),
            "{name}"
        );
        assert_eq!(
            is_signed_kind(kind),
            v["signed"].as_bool().expect("signed"),
            "{name}"
        );
        let reencoded = envelope.encode_to_vec();
        assert_eq!(
            hex::encode(reencoded),
            v["envelope_hex"].as_str().expect("hex"),
            "{name}"
        );
        let computed = size::envelope_len_bytes(
            envelope.payload.len(),
            envelope.signature.len(),
            envelope.secret_envelope.as_ref(),
        );
        assert_eq!(computed, envelope.encoded_len(), "{name}");
    }
}
