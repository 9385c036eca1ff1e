//! Golden-vector conformance against Hyperledger Fabric (`engine/testkit/testdata/fabric-golden/`, copied from `shared/testdata/fabric-golden/`).
//!
//! - [`vectors`]: loading `vectors.json`, `identities.json` and the PKI files.
//! - [`json`]: our decoded messages as JSON in the vectors' `fields` conventions.
//! - [`diff`]: path-precise JSON comparison.
//! - `wire`: decode, `fields`, byte-exact re-encode, variant coverage, zero-copy.
//! - `signatures`: envelope, secret and nested signatures; the negative vectors.
//! - `identities`: PKI-IDs, serialized identities, channel MACs, TLS hashes, MSP validation.
//! - `testpki`: our generator's certificates pass the same checks.

pub mod diff;
pub mod json;
pub mod vectors;

mod identities;
mod signatures;
mod testpki;
mod wire;

use bytes::Bytes;
use gossip_proto::gossip::gossip_message::Content;
use gossip_proto::gossip::{Envelope, GossipMessage};
use prost::Message;

use self::vectors::Vector;

/// A vector decoded the way the engine decodes: from one `Bytes` buffer, payloads sliced from it.
pub struct Decoded {
    /// The received bytes.
    pub buffer: Bytes,
    /// The outer envelope.
    pub envelope: Envelope,
    /// Its payload, decoded.
    pub message: GossipMessage,
}

/// Decodes a vector's envelope and the `GossipMessage` inside it, panicking with the vector's name.
pub fn decode(v: &Vector) -> Decoded {
    let buffer = Bytes::from(v.envelope_bytes());
    let envelope = Envelope::decode(buffer.clone())
        .unwrap_or_else(|e| panic!("{}: envelope does not decode: {e}", v.name));
    let message = GossipMessage::decode(envelope.payload.clone())
        .unwrap_or_else(|e| panic!("{}: GossipMessage does not decode: {e}", v.name));
    Decoded {
        buffer,
        envelope,
        message,
    }
}

/// The envelopes nested in a message, with their paths in the vector's notation (`fields.alive[1]`),
/// recursing into their decoded payloads (`fields.data[0].payload_decoded.<variant>...`).
pub fn nested_envelopes(content: &Content, prefix: &str) -> Vec<(String, Envelope)> {
    let mut found: Vec<(String, Envelope)> = Vec::new();
    let mut push_all = |field: &str, list: &[Envelope]| {
        for (i, e) in list.iter().enumerate() {
            found.push((format!("{prefix}.{field}[{i}]"), e.clone()));
        }
    };
    match content {
        Content::MemReq(m) => {
            if let Some(e) = &m.self_information {
                found.push((format!("{prefix}.self_information"), e.clone()));
            }
        }
        Content::MemRes(m) => {
            push_all("alive", &m.alive);
            push_all("dead", &m.dead);
        }
        Content::DataUpdate(m) => push_all("data", &m.data),
        Content::StateSnapshot(m) => push_all("elements", &m.elements),
        _ => {}
    }
    let mut deeper = Vec::new();
    for (path, envelope) in &found {
        if let Ok(GossipMessage {
            content: Some(inner),
            ..
        }) = GossipMessage::decode(envelope.payload.clone())
        {
            let inner_prefix = format!("{path}.payload_decoded.{}", json::variant_of(&inner).0);
            deeper.extend(nested_envelopes(&inner, &inner_prefix));
        }
    }
    found.extend(deeper);
    found
}

/// Fails the test with every collected problem, one per line.
pub fn assert_no_failures(what: &str, failures: &[String]) {
    assert!(
        failures.is_empty(),
        "{what}: {} failure(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}
