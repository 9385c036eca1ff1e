//! The targets. Each takes any bytes; it returns normally for every input, valid or not, and
//! panics (an `assert!`) only where a property of the code under test fails: a decoder that
//! accepts what does not re-encode to itself, a handler whose bounded state grows past its bound.

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use gossip_core::config::GossipConfig;
use gossip_core::crypto::{LocalSigner, MspManager};
use gossip_core::event::{ChannelConfig, Command};
use gossip_core::ingress::{
    IDENTITIES_LEN_MAX_DEFAULT, Ingress, IngressConfig, NestedSignerPolicy, block as ingress_block,
};
use gossip_core::node::{Node, NodeParams};
use gossip_core::time::Instant;
use gossip_core::types::{OrgId, PkiId};
use gossip_core::wire;
use gossip_proto::common::Block;
use gossip_proto::gossip::gossip_message::Content;
use gossip_proto::gossip::{Envelope, GossipMessage, Payload};
use gossip_testkit::golden::{self, Golden};
use prost::Message;

/// The channel the node target has joined (the golden vectors' channel).
pub const CHANNEL: &[u8] = b"mychannel";
/// The golden peer the node target runs as.
pub const SELF_PEER: &str = "peer1.org1.example.com";
/// The golden peers whose identities the node target knows; the first is every message's sender.
pub const KNOWN_PEERS: [&str; 2] = ["peer0.org1.example.com", "peer0.org2.example.com"];
/// Messages one node-target input may carry (each framed by a 2-byte little-endian length).
pub const NODE_MESSAGES_LEN_MAX: usize = 16;

/// What every target shares: the golden MSP and signers, loaded once.
pub struct Fixture {
    pub msp: Arc<MspManager>,
    pub self_signer: Arc<LocalSigner>,
    pub known: Vec<LocalSigner>,
    pub now: Instant,
}

/// The fixture, loaded on first use.
pub fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let golden = Golden::load().expect("golden vectors");
        Fixture {
            msp: Arc::new(golden.msp_manager()),
            self_signer: Arc::new(golden.signer(SELF_PEER)),
            known: KNOWN_PEERS.iter().map(|p| golden.signer(p)).collect(),
            now: golden::now(),
        }
    })
}

fn new_ingress(f: &Fixture) -> Ingress {
    let config = IngressConfig {
        nested_signer_policy: NestedSignerPolicy::DropItem,
        ..IngressConfig::default()
    };
    let ingress = Ingress::with_msp(config, Arc::clone(&f.msp));
    for signer in &f.known {
        ingress
            .identities()
            .put(signer.pki_id().as_bytes(), signer.identity().clone(), f.now)
            .expect("golden identity");
    }
    ingress
}

/// Envelope and message decoding: whatever decodes re-encodes to a value that decodes the same;
/// the tag and kind checks take any decoded message; the size limit holds.
pub fn wire(data: &[u8]) {
    let buffer = Bytes::copy_from_slice(data);
    let limited = wire::decode_envelope_limited(buffer.clone(), data.len().saturating_sub(1));
    assert!(
        data.is_empty() || limited.is_err(),
        "over the limit but decoded"
    );
    let Ok(envelope) = wire::decode_envelope(buffer) else {
        return;
    };
    let again = Envelope::decode(envelope.encode_to_vec().as_slice()).expect("re-encoded decodes");
    assert_eq!(again, envelope, "envelope round trip");
    let Ok(message) = wire::decode_message(&envelope) else {
        return;
    };
    let again =
        GossipMessage::decode(message.encode_to_vec().as_slice()).expect("re-encoded decodes");
    assert_eq!(again, message, "message round trip");
    let _ = wire::check_tag(&message);
    let _ = wire::tag_of(&message);
    let _ = wire::pull_msg_type(&message);
}

/// The ingress pipeline (decode, pre-checks, signature checks, accept) from a known peer: an
/// accepted message or a reject with a reason; the identity store within its bound.
pub fn ingress(data: &[u8]) {
    let f = fixture();
    let ingress = new_ingress(f);
    let envelope = Envelope {
        payload: Bytes::copy_from_slice(data),
        signature: Bytes::new(),
        secret_envelope: None,
    };
    for envelope in [
        wire::decode_envelope(Bytes::copy_from_slice(data)).ok(),
        Some(envelope),
    ]
    .into_iter()
    .flatten()
    {
        match ingress.receive_inline(f.known[0].pki_id(), envelope, f.now) {
            Ok(_) => {}
            Err(reject) => assert!(!reject.reason().is_empty()),
        }
    }
    assert!(ingress.identities().len() <= IDENTITIES_LEN_MAX_DEFAULT);
}

/// The server half of the ConnEstablish check, with and without TLS.
pub fn conn_establish(data: &[u8]) {
    let f = fixture();
    let Ok(envelope) = wire::decode_envelope(Bytes::copy_from_slice(data)) else {
        return;
    };
    let leaf: &[u8] = data.get(..data.len().min(64)).unwrap_or_default();
    for (tls_on, remote_leaf) in [(false, None), (true, Some(leaf)), (true, None)] {
        let result = gossip_engine::handshake::verify_conn_establish(
            &envelope,
            &f.msp,
            tls_on,
            remote_leaf,
            f.now,
        );
        if let Err(e) = result {
            assert!(!e.cause().is_empty());
        }
    }
}

/// The block checks: the payload's structure as a channel's delivery checks it, and the
/// structural part of the orderer-signature check.
pub fn block(data: &[u8]) {
    let (seq, bytes) = match data.split_first() {
        Some((seq, rest)) => (u64::from(*seq), rest),
        None => (0, data),
    };
    let payload = Payload {
        seq_num: seq,
        data: Bytes::copy_from_slice(bytes),
        private_data: vec![],
    };
    let _ = gossip_core::components::channel::verify_block(&payload);
    if let Ok(block) = Block::decode(bytes) {
        if let Ok(header) = ingress_block::check_structure(CHANNEL, seq, &block) {
            assert_eq!(header.number, seq, "a block of another number passed");
        }
        let _ = ingress_block::header_asn1(block.header.as_ref().unwrap_or(&Default::default()));
    }
}

/// A node joined to [`CHANNEL`] takes up to [`NODE_MESSAGES_LEN_MAX`] envelopes from a known
/// peer through ingress, with a timer run between them; its bounded state stays bounded.
pub fn node(data: &[u8]) {
    node_run(data);
}

/// [`node`], returning how many messages ingress passed to the node's handlers.
pub fn node_run(data: &[u8]) -> usize {
    let mut handled = 0;
    let f = fixture();
    let ingress = new_ingress(f);
    let config = GossipConfig::default();
    let mut now = f.now;
    let mut node = Node::new(
        NodeParams {
            config: config.clone(),
            external_endpoint: "peer1.org1.example.com:8051".into(),
            internal_endpoint: "peer1.org1.example.com:8051".into(),
            bootstrap: vec![],
            signer: Arc::clone(&f.self_signer),
            rng_seed: 1,
        },
        now,
    );
    let orgs = ["Org1MSP", "Org2MSP"].map(|o| (OrgId::from(o), vec![]));
    node.handle_command(
        Command::JoinChan(ChannelConfig {
            channel: Bytes::from_static(CHANNEL),
            sequence: 1,
            orgs: orgs.to_vec(),
        }),
        now,
    );
    let from: PkiId = f.known[0].pki_id();
    for message in split_messages(data) {
        if let Ok(envelope) = wire::decode_envelope(Bytes::copy_from_slice(message))
            && let Ok(verified) = ingress.receive_inline(from, envelope, now)
        {
            ingress
                .identities()
                .take_changes(|change| node.handle_identity(change, now));
            node.handle_message(verified, now);
            handled += 1;
        }
        drain(&mut node);
        now = now + Duration::from_millis(250);
        node.handle_timeout(now);
        drain(&mut node);
        check_bounds(&node, &config);
    }
    handled
}

/// Up to [`NODE_MESSAGES_LEN_MAX`] pieces of `data`, each framed by a 2-byte little-endian length
/// (a short last piece is taken as it is).
pub fn split_messages(mut data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while out.len() < NODE_MESSAGES_LEN_MAX && data.len() >= 2 {
        let len = usize::from(u16::from_le_bytes([data[0], data[1]]));
        let rest = &data[2..];
        let (piece, tail) = rest.split_at(len.min(rest.len()));
        out.push(piece);
        data = tail;
    }
    out
}

/// Frames `messages` as [`split_messages`] reads them.
pub fn join_messages(messages: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for m in messages {
        let len = u16::try_from(m.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&m[..usize::from(len)]);
    }
    out
}

fn drain(node: &mut Node) {
    while node.poll_transmit().is_some() {}
    while node.poll_event().is_some() {}
    while node.poll_io().is_some() {}
}

fn check_bounds(node: &Node, config: &GossipConfig) {
    let stats = node.stats();
    assert!(
        stats.members_alive + stats.members_dead <= IDENTITIES_LEN_MAX_DEFAULT,
        "members {} + {}",
        stats.members_alive,
        stats.members_dead
    );
    for summary in node.channel_summaries() {
        let bound = config.state_block_buffer_len.saturating_mul(2);
        assert!(
            summary.buffered_len as u64 <= bound,
            "{} blocks buffered, bound {bound}",
            summary.buffered_len
        );
    }
}

/// The control protocol's request parser (`gossip-node --control`, one JSON line).
pub fn control(data: &[u8]) {
    let line = String::from_utf8_lossy(data);
    if let Ok(request) = gossip_node::control::parse_request(&line) {
        let _ = format!("{request:?}");
    }
}

/// The `core.yaml` loader: the YAML layer, its typed getters, and the node config built from it.
pub fn core_yaml(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let Ok(raw) = gossip_node::RawConfig::from_yaml(&text) else {
        return;
    };
    let keys: Vec<String> = raw.keys().map(str::to_owned).collect();
    for key in &keys {
        let _ = raw.duration(key);
        let _ = raw.uint(key);
        let _ = raw.bool(key);
        let _ = raw.list(key);
    }
    let _ = gossip_node::NodeConfig::from_raw(&raw, Path::new("/nonexistent"), None);
}

/// Whether a decoded message is of a kind that carries no signature (its mutations still reach
/// the handlers past ingress).
pub fn is_unsigned(message: &GossipMessage) -> bool {
    matches!(
        message.content,
        Some(
            Content::DataMsg(_)
                | Content::Hello(_)
                | Content::DataDig(_)
                | Content::DataReq(_)
                | Content::DataUpdate(_)
                | Content::StateRequest(_)
                | Content::StateResponse(_)
                | Content::StateInfoPullReq(_)
        )
    )
}
