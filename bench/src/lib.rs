//! Shared fixtures for the criterion suites (`benches/suites/`): messages of every kind at chosen
//! sizes, encoded the way Fabric encodes them, and a signer from the test PKI; [`egress`] fixtures;
//! [`pull`], two block pull engines running rounds against each other; and [`icount`], the
//! instruction-count workloads of the CI gate (`src/bin/icount.rs`).
//!
//! Everything is deterministic except ECDSA signatures (ring draws signing nonces from the OS), which
//! only changes signature bytes, never sizes beyond DER's one-byte wobble.

use bytes::Bytes;
use gossip_engine::crypto::envelope::{noop_sign, sign_envelope, sign_secret};
use gossip_engine::crypto::{LocalSigner, MspManager, SignatureError};
use gossip_proto::common::{
    MspPrincipal, SignaturePolicy, SignaturePolicyEnvelope, signature_policy,
};
use gossip_proto::gossip::gossip_message::{Content, Tag};
use gossip_proto::gossip::{
    AliveMessage, Chaincode, ConnEstablish, DataMessage, DataUpdate, Envelope, GossipMessage,
    LeadershipMessage, Member, MembershipResponse, Payload, PeerTime, PrivateDataMessage,
    PrivatePayload, Properties, PullMsgType, RemoteStateResponse, StateInfo,
};
use gossip_proto::protos::{
    CollectionConfig, CollectionConfigPackage, CollectionPolicyConfig, StaticCollectionConfig,
    collection_config, collection_policy_config,
};
use gossip_testkit::testpki::{TestPki, TestPkiSpec};
use prost::Message;

pub mod egress;
pub mod icount;
pub mod pull;

/// 1 KiB.
pub const KIB: usize = 1024;
/// 1 MiB.
pub const MIB: usize = 1024 * 1024;
/// Unix seconds of 2027-01-01: the test PKI's `now` and the validation time.
pub const NOW_UNIX_S: i64 = 1_798_761_600;
/// The channel every channel-scoped fixture uses.
pub const CHANNEL: &[u8] = b"mychannel";

/// A test PKI of 2 orgs × 2 peers, the first peer's signer, and an MSP manager for both orgs.
pub struct Fixture {
    /// The generated PKI.
    pub pki: TestPki,
    /// Signers of every peer, org by org.
    pub signers: Vec<LocalSigner>,
    /// Verifying MSPs of both orgs.
    pub msp: MspManager,
}

impl Fixture {
    /// Generates the PKI and loads the signers.
    pub fn new() -> Self {
        let pki = TestPki::generate(&TestPkiSpec::uniform(2, 2, NOW_UNIX_S)).expect("test PKI");
        let signers = pki.peers().map(|p| p.signer().expect("signer")).collect();
        let msp = pki.msp_manager().expect("MSP manager");
        Self { pki, signers, msp }
    }

    /// The first peer's signer.
    pub fn signer(&self) -> &LocalSigner {
        &self.signers[0]
    }
}

impl Default for Fixture {
    fn default() -> Self {
        Self::new()
    }
}

/// `len` deterministic, incompressible-looking bytes (xorshift), seeded by `seed`.
pub fn filler(len: usize, seed: u64) -> Bytes {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out.into()
}

fn message(tag: Tag, channel: &[u8], nonce: u64, content: Content) -> GossipMessage {
    GossipMessage {
        nonce,
        channel: Bytes::copy_from_slice(channel),
        tag: tag as i32,
        content: Some(content),
    }
}

fn time(seq_num: u64) -> Option<PeerTime> {
    Some(PeerTime {
        inc_num: 1_700_000_000_000_000_000,
        seq_num,
    })
}

fn pki_id(signer: &LocalSigner) -> Bytes {
    Bytes::copy_from_slice(signer.pki_id().as_bytes())
}

/// A block `Payload` whose `data` is `len` bytes.
pub fn block_payload(seq_num: u64, len: usize) -> Payload {
    Payload {
        seq_num,
        data: filler(len, seq_num),
        private_data: Vec::new(),
    }
}

/// A `DataMessage` carrying a block of `len` bytes (tag CHAN_AND_ORG, as the leader gossips it).
pub fn data_message(seq_num: u64, len: usize) -> GossipMessage {
    let content = Content::DataMsg(DataMessage {
        payload: Some(block_payload(seq_num, len)),
    });
    message(Tag::ChanAndOrg, CHANNEL, 0, content)
}

/// An alive message; `identity` carries the serialized identity, `metadata_len` pads the metadata.
pub fn alive_message(signer: &LocalSigner, identity: bool, metadata_len: usize) -> GossipMessage {
    let content = Content::AliveMsg(AliveMessage {
        membership: Some(Member {
            endpoint: "peer0.org1.example.com:7051".into(),
            metadata: filler(metadata_len, 7),
            pki_id: pki_id(signer),
        }),
        timestamp: time(7),
        identity: if identity {
            signer.identity().serialized.clone()
        } else {
            Bytes::new()
        },
    });
    message(Tag::Empty, b"", 0, content)
}

/// An alive payload of `len` encoded bytes or a byte or two more where a length prefix grows (no
/// identity, metadata padded): what the crypto suite signs and verifies.
pub fn alive_payload_of_len(signer: &LocalSigner, len: usize) -> Bytes {
    let base = alive_message(signer, false, 0).encoded_len();
    let mut pad = len.saturating_sub(base + 4);
    loop {
        let m = alive_message(signer, false, pad);
        if m.encoded_len() >= len {
            return m.encode_to_vec().into();
        }
        pad += 1;
    }
}

/// A signed alive envelope with the identity and a signed secret envelope (as sent inside the org).
pub fn signed_alive(signer: &LocalSigner) -> Result<Envelope, SignatureError> {
    let payload = alive_message(signer, true, 0).encode_to_vec().into();
    let mut envelope = sign_envelope(payload, signer.key())?;
    envelope.secret_envelope = Some(sign_secret("10.10.1.11:7051", signer.key())?);
    Ok(envelope)
}

/// A signed state info with two chaincodes.
pub fn state_info(signer: &LocalSigner) -> GossipMessage {
    let mac = gossip_engine::crypto::channel_mac(&signer.pki_id(), CHANNEL);
    let chaincode = |name: &str| Chaincode {
        name: name.into(),
        version: "1.0".into(),
        metadata: filler(32, 3),
    };
    let content = Content::StateInfo(StateInfo {
        timestamp: time(11),
        pki_id: pki_id(signer),
        channel_mac: Bytes::copy_from_slice(&mac),
        properties: Some(Properties {
            ledger_height: 1_000,
            left_channel: false,
            chaincodes: vec![chaincode("marbles"), chaincode("_lifecycle")],
        }),
    });
    message(Tag::ChanOrOrg, b"", 0, content)
}

/// A leadership declaration.
pub fn leadership(signer: &LocalSigner) -> GossipMessage {
    let content = Content::LeadershipMsg(LeadershipMessage {
        pki_id: pki_id(signer),
        timestamp: time(3),
        is_declaration: true,
    });
    message(Tag::ChanAndOrg, CHANNEL, 0, content)
}

/// The handshake message with a TLS certificate hash.
pub fn conn(signer: &LocalSigner) -> GossipMessage {
    let content = Content::Conn(ConnEstablish {
        pki_id: pki_id(signer),
        identity: signer.identity().serialized.clone(),
        tls_cert_hash: filler(32, 5),
        probe: false,
    });
    message(Tag::Empty, b"", 0, content)
}

/// A membership response with `count` signed alive envelopes (with identity and secret).
pub fn mem_res(signer: &LocalSigner, count: usize) -> Result<GossipMessage, SignatureError> {
    let alive = (0..count)
        .map(|_| signed_alive(signer))
        .collect::<Result<_, _>>()?;
    Ok(message(
        Tag::Empty,
        b"",
        0,
        Content::MemRes(MembershipResponse {
            alive,
            dead: Vec::new(),
        }),
    ))
}

/// A block pull `DataUpdate` with `count` unsigned data-message envelopes of `len`-byte blocks.
pub fn data_update(count: usize, len: usize) -> GossipMessage {
    let data = (0..count as u64)
        .map(|i| noop_sign(data_message(i, len).encode_to_vec().into()))
        .collect();
    let update = DataUpdate {
        nonce: 0x1234_5678_9abc_def0,
        data,
        msg_type: PullMsgType::BlockMsg as i32,
    };
    message(Tag::ChanAndOrg, CHANNEL, 0, Content::DataUpdate(update))
}

/// A state-transfer response with `count` block payloads of `len` bytes.
pub fn state_response(count: usize, len: usize) -> GossipMessage {
    let payloads = (0..count as u64).map(|i| block_payload(i, len)).collect();
    message(
        Tag::ChanOrOrg,
        CHANNEL,
        u64::MAX - 7,
        Content::StateResponse(RemoteStateResponse { payloads }),
    )
}

/// A private data push with a `len`-byte write set and a one-collection config package.
pub fn private_data(len: usize) -> GossipMessage {
    let member_policy = SignaturePolicyEnvelope {
        version: 0,
        rule: Some(SignaturePolicy {
            r#type: Some(signature_policy::Type::NOutOf(signature_policy::NOutOf {
                n: 1,
                rules: vec![SignaturePolicy {
                    r#type: Some(signature_policy::Type::SignedBy(0)),
                }],
            })),
        }),
        identities: vec![MspPrincipal {
            principal_classification: 0,
            principal: Bytes::from_static(b"\n\x07Org1MSP"),
        }],
    };
    let config = StaticCollectionConfig {
        name: "collectionMarblePrivateDetails".into(),
        member_orgs_policy: Some(CollectionPolicyConfig {
            payload: Some(collection_policy_config::Payload::SignaturePolicy(
                member_policy,
            )),
        }),
        required_peer_count: 1,
        maximum_peer_count: 3,
        block_to_live: 1_000_000,
        member_only_read: true,
        member_only_write: true,
        endorsement_policy: None,
    };
    let payload = PrivatePayload {
        collection_name: "collectionMarblePrivateDetails".into(),
        namespace: "marbles".into(),
        tx_id: "e84f1a8b5e9f1bf964a89e488d2fceb5e31af3d6cb8bb0eef3aaa440f90c0f22".into(),
        private_rwset: filler(len, 9),
        private_sim_height: 5,
        collection_configs: Some(CollectionConfigPackage {
            config: vec![CollectionConfig {
                payload: Some(collection_config::Payload::StaticCollectionConfig(config)),
            }],
        }),
    };
    let content = Content::PrivateData(PrivateDataMessage {
        payload: Some(payload),
    });
    message(Tag::ChanOnly, CHANNEL, 0x0123_4567_89ab_cdef, content)
}

/// One message kind for the codec suite: the message, the envelope that carries it (signature and
/// secret already made), and that envelope's wire bytes.
pub struct CodecCase {
    /// Benchmark id, e.g. `data_msg/100KiB`.
    pub name: String,
    /// The decoded message.
    pub message: GossipMessage,
    /// The envelope as sent (payload = `message` encoded).
    pub envelope: Envelope,
    /// `envelope` encoded: what the stream carries.
    pub wire: Bytes,
}

impl CodecCase {
    fn signed(name: &str, message: GossipMessage, signer: &LocalSigner) -> Self {
        let envelope = sign_envelope(message.encode_to_vec().into(), signer.key()).expect("signs");
        Self::from_envelope(name, message, envelope)
    }

    fn unsigned(name: &str, message: GossipMessage) -> Self {
        let envelope = noop_sign(message.encode_to_vec().into());
        Self::from_envelope(name, message, envelope)
    }

    fn from_envelope(name: &str, message: GossipMessage, envelope: Envelope) -> Self {
        let wire = envelope.encode_to_vec().into();
        Self {
            name: name.into(),
            message,
            envelope,
            wire,
        }
    }

    /// Encodes as a sender does: the message into a payload, then the envelope around it, reusing
    /// this case's signature and secret envelope.
    pub fn encode(&self) -> Vec<u8> {
        let envelope = Envelope {
            payload: self.message.encode_to_vec().into(),
            signature: self.envelope.signature.clone(),
            secret_envelope: self.envelope.secret_envelope.clone(),
        };
        envelope.encode_to_vec()
    }
}

/// Every codec case: each message kind at the sizes the suite reports.
pub fn codec_cases(fx: &Fixture) -> Vec<CodecCase> {
    let s = fx.signer();
    let alive = signed_alive(s).expect("signs");
    let alive_message = GossipMessage::decode(alive.payload.clone()).expect("decodes");
    let mut cases = vec![
        CodecCase::unsigned("data_msg/1KiB", data_message(1, KIB)),
        CodecCase::unsigned("data_msg/100KiB", data_message(1, 100 * KIB)),
        CodecCase::unsigned("data_msg/1MiB", data_message(1, MIB)),
        CodecCase::from_envelope("alive_signed_with_secret", alive_message, alive),
        CodecCase::signed("state_info", state_info(s), s),
        CodecCase::signed("leadership", leadership(s), s),
        CodecCase::signed("conn", conn(s), s),
        CodecCase::unsigned("mem_res/10_alive", mem_res(s, 10).expect("signs")),
        CodecCase::unsigned("data_update/10x100KiB", data_update(10, 100 * KIB)),
        CodecCase::unsigned("state_response/10x100KiB", state_response(10, 100 * KIB)),
        CodecCase::unsigned("private_data/1KiB", private_data(KIB)),
        CodecCase::unsigned("private_data/100KiB", private_data(100 * KIB)),
    ];
    cases.shrink_to_fit();
    cases
}

/// Decodes the way the engine's ingress does: the envelope from the received `Bytes`, then the
/// `GossipMessage` from a clone of its payload, so every `bytes` field slices the one buffer.
pub fn decode_like_engine(wire: &Bytes) -> Result<(Envelope, GossipMessage), prost::DecodeError> {
    let envelope = Envelope::decode(wire.clone())?;
    let message = GossipMessage::decode(envelope.payload.clone())?;
    Ok((envelope, message))
}

#[cfg(test)]
mod tests;
