//! Our decoded prost messages as `serde_json::Value`, following the golden README's conventions:
//! `.proto` field names (`channel_MAC`, `privateReq`, `internalEndpoint` kept as written), bytes as
//! lowercase hex, enums by value name, u64 as exact JSON integers, absent sub-messages as `null` and
//! present empty ones as `{}`, defaults listed, a oneof showing only its set member, and every
//! nested `Envelope` / `SecretEnvelope` given a `payload_decoded` key holding its decoded payload.

use gossip_proto::common::{
    MspPrincipal, SignaturePolicy, SignaturePolicyEnvelope, msp_principal, signature_policy,
};
use gossip_proto::gossip::gossip_message::{Content, Tag};
use gossip_proto::gossip::{self as g, PullMsgType};
use gossip_proto::protos::{
    ApplicationPolicy, CollectionConfig, CollectionConfigPackage, CollectionPolicyConfig,
    StaticCollectionConfig, application_policy, collection_config, collection_policy_config,
};
use prost::Message;
use serde_json::{Map, Value, json};

/// Bytes as lowercase hex.
pub fn hex(bytes: &[u8]) -> Value {
    Value::String(hex::encode(bytes))
}

fn hex_list(items: &[bytes::Bytes]) -> Value {
    Value::Array(items.iter().map(|b| hex(b)).collect())
}

fn opt<T>(value: &Option<T>, f: impl Fn(&T) -> Value) -> Value {
    value.as_ref().map_or(Value::Null, f)
}

fn list<T>(items: &[T], f: impl Fn(&T) -> Value) -> Value {
    Value::Array(items.iter().map(f).collect())
}

/// An enum by its value name; an unknown value stays a number.
fn enum_name(name: Option<&'static str>, value: i32) -> Value {
    name.map_or_else(|| json!(value), |n| json!(n))
}

/// `GossipMessage.tag` by name.
pub fn tag_name(tag: i32) -> Value {
    enum_name(Tag::try_from(tag).ok().map(|t| t.as_str_name()), tag)
}

fn pull_type(value: i32) -> Value {
    enum_name(
        PullMsgType::try_from(value).ok().map(|t| t.as_str_name()),
        value,
    )
}

/// The `.proto` name and field number of a content variant.
pub fn variant_of(content: &Content) -> (&'static str, u32) {
    match content {
        Content::AliveMsg(_) => ("alive_msg", 5),
        Content::MemReq(_) => ("mem_req", 6),
        Content::MemRes(_) => ("mem_res", 7),
        Content::DataMsg(_) => ("data_msg", 8),
        Content::Hello(_) => ("hello", 9),
        Content::DataDig(_) => ("data_dig", 10),
        Content::DataReq(_) => ("data_req", 11),
        Content::DataUpdate(_) => ("data_update", 12),
        Content::Empty(_) => ("empty", 13),
        Content::Conn(_) => ("conn", 14),
        Content::StateInfo(_) => ("state_info", 15),
        Content::StateSnapshot(_) => ("state_snapshot", 16),
        Content::StateInfoPullReq(_) => ("state_info_pull_req", 17),
        Content::StateRequest(_) => ("state_request", 18),
        Content::StateResponse(_) => ("state_response", 19),
        Content::LeadershipMsg(_) => ("leadership_msg", 20),
        Content::PeerIdentity(_) => ("peer_identity", 21),
        Content::Ack(_) => ("ack", 22),
        Content::PrivateReq(_) => ("privateReq", 23),
        Content::PrivateRes(_) => ("privateRes", 24),
        Content::PrivateData(_) => ("private_data", 25),
    }
}

/// The inner message of a content variant: what a vector's `fields` holds.
pub fn content(content: &Content) -> Value {
    match content {
        Content::AliveMsg(m) => alive(m),
        Content::MemReq(m) => json!({
            "self_information": opt(&m.self_information, envelope),
            "known": hex_list(&m.known),
        }),
        Content::MemRes(m) => {
            json!({ "alive": list(&m.alive, envelope), "dead": list(&m.dead, envelope) })
        }
        Content::DataMsg(m) => json!({ "payload": opt(&m.payload, payload) }),
        Content::Hello(m) => {
            json!({ "nonce": m.nonce, "metadata": hex(&m.metadata), "msg_type": pull_type(m.msg_type) })
        }
        Content::DataDig(m) => {
            json!({ "nonce": m.nonce, "digests": hex_list(&m.digests), "msg_type": pull_type(m.msg_type) })
        }
        Content::DataReq(m) => {
            json!({ "nonce": m.nonce, "digests": hex_list(&m.digests), "msg_type": pull_type(m.msg_type) })
        }
        Content::DataUpdate(m) => {
            json!({ "nonce": m.nonce, "data": list(&m.data, envelope), "msg_type": pull_type(m.msg_type) })
        }
        Content::Empty(g::Empty {}) => json!({}),
        Content::Conn(m) => json!({
            "pki_id": hex(&m.pki_id),
            "identity": hex(&m.identity),
            "tls_cert_hash": hex(&m.tls_cert_hash),
            "probe": m.probe,
        }),
        Content::StateInfo(m) => json!({
            "timestamp": opt(&m.timestamp, peer_time),
            "pki_id": hex(&m.pki_id),
            "channel_MAC": hex(&m.channel_mac),
            "properties": opt(&m.properties, properties),
        }),
        Content::StateSnapshot(m) => json!({ "elements": list(&m.elements, envelope) }),
        Content::StateInfoPullReq(m) => json!({ "channel_MAC": hex(&m.channel_mac) }),
        Content::StateRequest(m) => {
            json!({ "start_seq_num": m.start_seq_num, "end_seq_num": m.end_seq_num })
        }
        Content::StateResponse(m) => json!({ "payloads": list(&m.payloads, payload) }),
        Content::LeadershipMsg(m) => json!({
            "pki_id": hex(&m.pki_id),
            "timestamp": opt(&m.timestamp, peer_time),
            "is_declaration": m.is_declaration,
        }),
        Content::PeerIdentity(m) => {
            json!({ "pki_id": hex(&m.pki_id), "cert": hex(&m.cert), "metadata": hex(&m.metadata) })
        }
        Content::Ack(m) => json!({ "error": m.error }),
        Content::PrivateReq(m) => json!({ "digests": list(&m.digests, pvt_digest) }),
        Content::PrivateRes(m) => json!({
            "elements": list(&m.elements, |e| json!({ "digest": opt(&e.digest, pvt_digest), "payload": hex_list(&e.payload) })),
        }),
        Content::PrivateData(m) => json!({ "payload": opt(&m.payload, private_payload) }),
    }
}

/// A whole `GossipMessage`, as a nested envelope's `payload_decoded` shows it.
pub fn gossip_message(m: &g::GossipMessage) -> Value {
    let mut out = Map::new();
    out.insert("nonce".into(), json!(m.nonce));
    out.insert("channel".into(), hex(&m.channel));
    out.insert("tag".into(), tag_name(m.tag));
    if let Some(c) = &m.content {
        out.insert(variant_of(c).0.into(), content(c));
    }
    Value::Object(out)
}

/// A `gossip.Envelope` plus `payload_decoded` (`null` when the payload does not decode).
pub fn envelope(e: &g::Envelope) -> Value {
    json!({
        "payload": hex(&e.payload),
        "signature": hex(&e.signature),
        "secret_envelope": opt(&e.secret_envelope, secret_envelope),
        "payload_decoded": g::GossipMessage::decode(e.payload.clone()).map_or(Value::Null, |m| gossip_message(&m)),
    })
}

fn secret_envelope(s: &g::SecretEnvelope) -> Value {
    let decoded =
        g::Secret::decode(s.payload.clone()).map_or(Value::Null, |secret| match secret.content {
            Some(g::secret::Content::InternalEndpoint(ep)) => json!({ "internalEndpoint": ep }),
            None => json!({}),
        });
    json!({ "payload": hex(&s.payload), "signature": hex(&s.signature), "payload_decoded": decoded })
}

fn alive(m: &g::AliveMessage) -> Value {
    json!({
        "membership": opt(&m.membership, |mb| json!({
            "endpoint": mb.endpoint,
            "metadata": hex(&mb.metadata),
            "pki_id": hex(&mb.pki_id),
        })),
        "timestamp": opt(&m.timestamp, peer_time),
        "identity": hex(&m.identity),
    })
}

fn peer_time(t: &g::PeerTime) -> Value {
    json!({ "inc_num": t.inc_num, "seq_num": t.seq_num })
}

fn properties(p: &g::Properties) -> Value {
    json!({
        "ledger_height": p.ledger_height,
        "left_channel": p.left_channel,
        "chaincodes": list(&p.chaincodes, |c| json!({
            "name": c.name,
            "version": c.version,
            "metadata": hex(&c.metadata),
        })),
    })
}

fn payload(p: &g::Payload) -> Value {
    json!({ "seq_num": p.seq_num, "data": hex(&p.data), "private_data": hex_list(&p.private_data) })
}

fn pvt_digest(d: &g::PvtDataDigest) -> Value {
    json!({
        "tx_id": d.tx_id,
        "namespace": d.namespace,
        "collection": d.collection,
        "block_seq": d.block_seq,
        "seq_in_block": d.seq_in_block,
    })
}

fn private_payload(p: &g::PrivatePayload) -> Value {
    json!({
        "collection_name": p.collection_name,
        "namespace": p.namespace,
        "tx_id": p.tx_id,
        "private_rwset": hex(&p.private_rwset),
        "private_sim_height": p.private_sim_height,
        "collection_configs": opt(&p.collection_configs, collection_configs),
    })
}

fn collection_configs(p: &CollectionConfigPackage) -> Value {
    json!({ "config": list(&p.config, collection_config) })
}

fn collection_config(c: &CollectionConfig) -> Value {
    match &c.payload {
        Some(collection_config::Payload::StaticCollectionConfig(s)) => {
            json!({ "static_collection_config": static_collection_config(s) })
        }
        None => json!({}),
    }
}

fn static_collection_config(s: &StaticCollectionConfig) -> Value {
    json!({
        "name": s.name,
        "member_orgs_policy": opt(&s.member_orgs_policy, collection_policy),
        "required_peer_count": s.required_peer_count,
        "maximum_peer_count": s.maximum_peer_count,
        "block_to_live": s.block_to_live,
        "member_only_read": s.member_only_read,
        "member_only_write": s.member_only_write,
        "endorsement_policy": opt(&s.endorsement_policy, application_policy),
    })
}

fn collection_policy(p: &CollectionPolicyConfig) -> Value {
    match &p.payload {
        Some(collection_policy_config::Payload::SignaturePolicy(s)) => {
            json!({ "signature_policy": signature_policy_envelope(s) })
        }
        None => json!({}),
    }
}

fn application_policy(p: &ApplicationPolicy) -> Value {
    match &p.r#type {
        Some(application_policy::Type::SignaturePolicy(s)) => {
            json!({ "signature_policy": signature_policy_envelope(s) })
        }
        Some(application_policy::Type::ChannelConfigPolicyReference(r)) => {
            json!({ "channel_config_policy_reference": r })
        }
        None => json!({}),
    }
}

fn signature_policy_envelope(e: &SignaturePolicyEnvelope) -> Value {
    json!({
        "version": e.version,
        "rule": opt(&e.rule, signature_policy),
        "identities": list(&e.identities, msp_principal),
    })
}

fn signature_policy(p: &SignaturePolicy) -> Value {
    match &p.r#type {
        Some(signature_policy::Type::SignedBy(i)) => json!({ "signed_by": i }),
        Some(signature_policy::Type::NOutOf(n)) => {
            json!({ "n_out_of": { "n": n.n, "rules": list(&n.rules, signature_policy) } })
        }
        None => json!({}),
    }
}

fn msp_principal(p: &MspPrincipal) -> Value {
    let class = msp_principal::Classification::try_from(p.principal_classification)
        .ok()
        .map(|c| c.as_str_name());
    json!({
        "principal_classification": enum_name(class, p.principal_classification),
        "principal": hex(&p.principal),
    })
}
