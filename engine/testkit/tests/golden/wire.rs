//! Wire conformance: every vector decodes to what the vector says, matches `fields` completely and
//! re-encodes byte for byte; all 21 content variants are covered; decoding is zero-copy.

use std::collections::BTreeMap;

use bytes::Bytes;
use gossip_proto::common::Block;
use gossip_proto::gossip::gossip_message::{Content, Tag};
use gossip_proto::gossip::{GossipMessage, PullMsgType, PvtDataPayload, Secret};
use gossip_proto::rwset::{CollectionPvtReadWriteSet, TxPvtReadWriteSet};
use prost::Message;
use serde_json::Value;

use super::diff::diff;
use super::json::{self, variant_of};
use super::vectors::{unhex, vector, vectors};
use super::{assert_no_failures, decode, nested_envelopes};

/// The 21 `GossipMessage.content` members, by `.proto` name.
const ALL_VARIANTS: [&str; 21] = [
    "alive_msg",
    "mem_req",
    "mem_res",
    "data_msg",
    "hello",
    "data_dig",
    "data_req",
    "data_update",
    "empty",
    "conn",
    "state_info",
    "state_snapshot",
    "state_info_pull_req",
    "state_request",
    "state_response",
    "leadership_msg",
    "peer_identity",
    "ack",
    "privateReq",
    "privateRes",
    "private_data",
];

#[test]
fn envelopes_and_messages_decode_as_the_vectors_say() {
    let mut failures = Vec::new();
    for v in vectors() {
        let d = decode(v);
        let mut check = |ok: bool, what: String| {
            if !ok {
                failures.push(format!("{}: {what}", v.name));
            }
        };
        check(
            d.envelope.payload[..] == v.message_bytes()[..],
            "envelope payload != gossip_message_hex".into(),
        );
        let signature = v
            .signature_hex
            .as_deref()
            .map(|s| unhex(s, &v.name))
            .unwrap_or_default();
        check(
            d.envelope.signature[..] == signature[..],
            "signature != signature_hex".into(),
        );
        match (&d.envelope.secret_envelope, &v.secret_envelope) {
            (None, None) => {}
            (Some(se), Some(sv)) => {
                check(
                    se.payload[..] == unhex(&sv.payload_hex, &v.name)[..],
                    "secret payload".into(),
                );
                check(
                    se.signature[..] == unhex(&sv.signature_hex, &v.name)[..],
                    "secret signature".into(),
                );
                let endpoint = gossip_engine::crypto::envelope::internal_endpoint(se);
                check(
                    endpoint.as_deref() == Some(sv.internal_endpoint.as_str()),
                    format!("internal endpoint {endpoint:?}"),
                );
            }
            (ours, theirs) => check(
                false,
                format!("secret envelope: ours {ours:?}, vector {theirs:?}"),
            ),
        }
        let m = &d.message;
        let Some(content) = &m.content else {
            check(false, "no content".into());
            continue;
        };
        let (variant, number) = variant_of(content);
        check(
            variant == v.content_variant,
            format!("variant {variant} != {}", v.content_variant),
        );
        check(
            number == v.content_field_number,
            format!("field number {number} != {}", v.content_field_number),
        );
        check(
            m.tag == v.tag_value,
            format!("tag {} != {}", m.tag, v.tag_value),
        );
        check(
            json::tag_name(m.tag) == v.tag.as_str(),
            format!("tag name {} != {}", json::tag_name(m.tag), v.tag),
        );
        check(
            m.nonce == v.nonce,
            format!("nonce {} != {}", m.nonce, v.nonce),
        );
        let channel = v.channel.as_deref().unwrap_or("");
        check(
            m.channel[..] == *channel.as_bytes(),
            format!("channel {:?} != {channel:?}", m.channel),
        );
        check(
            v.channel.as_deref() != Some(""),
            "a vector channel is null, never empty text".into(),
        );
    }
    assert_no_failures("decode", &failures);
}

#[test]
fn inner_messages_match_fields_completely() {
    let mut failures = Vec::new();
    let mut compared = 0;
    for v in vectors() {
        let d = decode(v);
        let ours = json::content(d.message.content.as_ref().expect("content"));
        failures.extend(
            diff("fields", &v.fields, &ours)
                .into_iter()
                .map(|m| format!("{}: {m}", v.name)),
        );
        compared += 1;
    }
    println!("compared `fields` of {compared} vectors");
    assert_no_failures("fields", &failures);
    assert_eq!(compared, 34);
}

/// Changes one leaf of a JSON value: the first string gets a character, the first number grows by
/// one, the first bool flips. Returns the path of the changed leaf.
fn mutate_first_leaf(value: &mut Value, path: String) -> Option<String> {
    match value {
        Value::String(s) => s.push('0'),
        Value::Number(n) => *value = Value::from(n.as_u64()?.wrapping_add(1)),
        Value::Bool(b) => *b = !*b,
        Value::Null => *value = Value::Object(Default::default()),
        Value::Array(items) => {
            return items
                .iter_mut()
                .enumerate()
                .find_map(|(i, x)| mutate_first_leaf(x, format!("{path}[{i}]")));
        }
        Value::Object(map) => {
            return map
                .iter_mut()
                .find_map(|(k, x)| mutate_first_leaf(x, format!("{path}.{k}")));
        }
    }
    Some(path)
}

#[test]
fn fields_comparison_catches_a_changed_leaf_in_every_vector() {
    for v in vectors()
        .iter()
        .filter(|v| v.fields != serde_json::json!({}))
    {
        let ours = json::content(decode(v).message.content.as_ref().expect("content"));
        let mut changed = v.fields.clone();
        let path = mutate_first_leaf(&mut changed, "fields".into()).expect("a leaf to change");
        let found = diff("fields", &changed, &ours);
        assert_eq!(found.len(), 1, "{}: {found:?}", v.name);
        assert!(
            found[0].starts_with(&format!("{path}:")),
            "{}: {found:?} for {path}",
            v.name
        );
    }
    // `Empty{}` against a vector claiming a field.
    let ours = json::content(
        decode(vector("empty"))
            .message
            .content
            .as_ref()
            .expect("content"),
    );
    assert_eq!(
        diff("fields", &serde_json::json!({"x": 0}), &ours),
        vec!["fields.x: missing in our decoding (expected 0)"]
    );
}

#[test]
fn reencoding_is_byte_exact_at_every_level() {
    let mut failures = Vec::new();
    let mut nested = 0;
    for v in vectors() {
        let d = decode(v);
        if d.message.encode_to_vec() != v.message_bytes() {
            failures.push(format!("{}: GossipMessage re-encodes differently", v.name));
        }
        if d.envelope.encode_to_vec() != v.envelope_bytes() {
            failures.push(format!("{}: Envelope re-encodes differently", v.name));
        }
        let mut secrets: Vec<(String, Bytes)> = Vec::new();
        if let Some(se) = &d.envelope.secret_envelope {
            secrets.push(("secret_envelope".into(), se.payload.clone()));
        }
        for (path, e) in nested_envelopes(d.message.content.as_ref().expect("content"), "fields") {
            nested += 1;
            match GossipMessage::decode(e.payload.clone()) {
                Ok(m) if m.encode_to_vec()[..] == e.payload[..] => {}
                Ok(_) => failures.push(format!(
                    "{}: {path}: nested GossipMessage re-encodes differently",
                    v.name
                )),
                Err(err) => failures.push(format!(
                    "{}: {path}: nested payload does not decode: {err}",
                    v.name
                )),
            }
            if let Some(se) = &e.secret_envelope {
                secrets.push((format!("{path}.secret_envelope"), se.payload.clone()));
            }
        }
        for (path, payload) in secrets {
            match Secret::decode(payload.clone()) {
                Ok(s) if s.encode_to_vec()[..] == payload[..] => {}
                _ => failures.push(format!("{}: {path}: Secret does not round-trip", v.name)),
            }
        }
    }
    println!("re-encoded 34 envelopes, 34 messages and {nested} nested envelopes byte for byte");
    assert_no_failures("re-encode", &failures);
    assert!(
        nested >= 8,
        "expected the nested envelopes of mem_req, mem_res, data_update and state_snapshot"
    );
}

#[test]
fn all_21_variants_are_covered() {
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for v in vectors() {
        let (variant, _) = variant_of(decode(v).message.content.as_ref().expect("content"));
        *seen.entry(variant).or_default() += 1;
    }
    println!(
        "{} vectors cover {} variants: {seen:?}",
        vectors().len(),
        seen.len()
    );
    assert_eq!(vectors().len(), 34);
    for variant in ALL_VARIANTS {
        assert!(seen.contains_key(variant), "no vector for {variant}");
    }
    assert_eq!(seen.len(), 21, "unexpected variants: {seen:?}");
}

#[test]
fn decoding_is_zero_copy() {
    let d = decode(vector("data_msg"));
    let range = d.buffer.as_ptr_range();
    let Some(Content::DataMsg(data)) = &d.message.content else {
        panic!("data_msg")
    };
    let block = &data.payload.as_ref().expect("payload").data;
    assert!(block.len() > 1000);
    assert!(
        range.contains(&block.as_ptr()),
        "Payload.data was copied out of the received buffer"
    );
    assert!(range.contains(&block[block.len() - 1..].as_ptr()));
    assert!(range.contains(&d.envelope.signature.as_ptr()) || d.envelope.signature.is_empty());
}

#[test]
fn block_5_matches_its_facts() {
    let v = vector("data_msg");
    let Some(Content::DataMsg(data)) = decode(v).message.content else {
        panic!("data_msg")
    };
    let bytes = data.payload.expect("payload").data;
    let fact = |k: &str| v.aux_str(k).unwrap_or_else(|| panic!("aux.{k}"));
    // Despite its name, `block_hex_len` counts bytes (6,524 hex characters are 3,262 bytes).
    assert_eq!(bytes.len(), fact("block_hex_len").parse::<usize>().unwrap());
    let block = Block::decode(bytes.clone()).expect("block decodes");
    assert_eq!(
        block.encode_to_vec()[..],
        bytes[..],
        "block re-encodes byte for byte"
    );
    let header = block.header.as_ref().expect("header");
    assert_eq!(header.number.to_string(), fact("block_number"));
    assert_eq!(
        hex::encode(&header.previous_hash),
        fact("previous_hash_hex")
    );
    assert_eq!(hex::encode(&header.data_hash), fact("data_hash_hex"));
    let txs = &block.data.as_ref().expect("data").data;
    assert_eq!(txs.len().to_string(), fact("tx_count"));
    // Fabric's BlockDataHash: SHA-256 over the concatenated transaction envelopes.
    assert_eq!(
        gossip_engine::crypto::sha256(&txs.concat())[..],
        header.data_hash[..]
    );
    let metadata = &block.metadata.as_ref().expect("metadata").metadata;
    assert_eq!(metadata.len().to_string(), fact("metadata_entries"));
    assert_eq!(
        metadata.iter().filter(|m| m.is_empty()).count(),
        4,
        "four empty metadata entries, kept"
    );
    let tx = String::from_utf8_lossy(&txs[0]);
    assert!(tx.contains(&fact("tx_id")) && tx.contains(&fact("channel_id_from_first_tx")));
    // The same bytes travel in data_update_block and state_response.
    for (name, path) in [
        (
            "data_update_block",
            "fields.data[0].payload_decoded.data_msg.payload.data",
        ),
        ("state_response", "fields.payloads[0].data"),
    ] {
        let text = super::vectors::resolve(&vector(name).raw, path).and_then(|x| x.as_str());
        assert_eq!(text, Some(hex::encode(&bytes).as_str()), "{name} {path}");
    }
}

#[test]
fn private_payloads_decode_as_their_rwset_types() {
    let Some(Content::StateResponse(res)) = decode(vector("state_response")).message.content else {
        panic!()
    };
    let pvt =
        PvtDataPayload::decode(res.payloads[0].private_data[0].clone()).expect("PvtDataPayload");
    assert_eq!(pvt.tx_seq_in_block, 0);
    let tx = TxPvtReadWriteSet::decode(pvt.payload.clone()).expect("TxPvtReadWriteSet");
    assert_eq!(tx.encode_to_vec()[..], pvt.payload[..]);
    let Some(Content::PrivateRes(res)) = decode(vector("private_res")).message.content else {
        panic!()
    };
    let coll = CollectionPvtReadWriteSet::decode(res.elements[0].payload[0].clone())
        .expect("collection rwset");
    assert_eq!(coll.collection_name, "collectionMarblePrivateDetails");
    assert_eq!(coll.encode_to_vec()[..], res.elements[0].payload[0][..]);
}

/// Fabric's tag rule per content kind (spec 1; README "fabric_is_tag_legal"): the tag a message must
/// carry, or `None` for kinds the gossip layer's tag check does not know.
fn legal_tag(content: &Content) -> Option<Tag> {
    Some(match content {
        Content::DataMsg(_) | Content::LeadershipMsg(_) => Tag::ChanAndOrg,
        Content::AliveMsg(_) | Content::MemReq(_) | Content::MemRes(_) => Tag::Empty,
        Content::PeerIdentity(_) => Tag::OrgOnly,
        Content::Hello(m) => pull_tag(m.msg_type)?,
        Content::DataDig(m) => pull_tag(m.msg_type)?,
        Content::DataReq(m) => pull_tag(m.msg_type)?,
        Content::DataUpdate(m) => pull_tag(m.msg_type)?,
        Content::StateInfo(_)
        | Content::StateSnapshot(_)
        | Content::StateInfoPullReq(_)
        | Content::StateRequest(_)
        | Content::StateResponse(_) => Tag::ChanOrOrg,
        Content::Empty(_) | Content::Conn(_) | Content::Ack(_) => return None,
        Content::PrivateReq(_) | Content::PrivateRes(_) | Content::PrivateData(_) => return None,
    })
}

fn pull_tag(msg_type: i32) -> Option<Tag> {
    match PullMsgType::try_from(msg_type).ok()? {
        PullMsgType::BlockMsg => Some(Tag::ChanAndOrg),
        PullMsgType::IdentityMsg => Some(Tag::Empty),
        PullMsgType::Undefined => None,
    }
}

#[test]
fn fabric_tag_legality_follows_the_per_kind_rule() {
    let mut failures = Vec::new();
    for v in vectors() {
        let m = decode(v).message;
        let content = m.content.as_ref().expect("content");
        let legal =
            m.tag != Tag::Undefined as i32 && legal_tag(content).is_some_and(|t| t as i32 == m.tag);
        if legal != v.fabric_is_tag_legal {
            failures.push(format!(
                "{}: rule says {legal}, Fabric says {}",
                v.name, v.fabric_is_tag_legal
            ));
        }
    }
    assert_no_failures("tag legality", &failures);
    let illegal: Vec<&str> = vectors()
        .iter()
        .filter(|v| !v.fabric_is_tag_legal)
        .map(|v| v.name.as_str())
        .collect();
    assert_eq!(illegal.len(), 9, "{illegal:?}");
}
