//! Block authentication (issue 19, item 1): blocks built as an etcdraft orderer builds them pass
//! Fabric's `VerifyBlock` checks in ingress, and hostile blocks are each rejected and counted by
//! reason, without keeping the genuine block out.

use std::sync::Arc;

use bytes::Bytes;
use gossip_engine::crypto::{LocalSigner, MspManager};
use gossip_engine::ingress::{
    BlockReject, BlockVerifier, Ingress, IngressConfig, OrdererBlockPolicy, Reject,
};
use gossip_engine::time::Instant;
use gossip_engine::types::PkiId;
use gossip_node::block::{BlockNonces, NONCE_LEN_BYTES, SignedBlockBuilder};
use gossip_node::control::block_message;
use gossip_proto::common::{Block, Envelope as TxEnvelope, Metadata};
use gossip_proto::gossip::Envelope;
use gossip_testkit::testpki::{TestPki, TestPkiSpec};
use prost::Message;

const NOW_UNIX_S: i64 = 1_800_000_000;
const CHANNEL: &str = "mychannel";

fn now() -> Instant {
    Instant::from_nanos(NOW_UNIX_S as u64 * 1_000_000_000)
}

struct Fixture {
    pki: TestPki,
    orderer: SignedBlockBuilder,
    policy: Arc<OrdererBlockPolicy>,
}

fn fixture() -> Fixture {
    let pki = TestPki::generate(&TestPkiSpec::uniform(1, 2, NOW_UNIX_S - 3600)).expect("pki");
    let mut orderers = MspManager::new();
    orderers.add_org(pki.orderer_org.msp().expect("orderer msp"));
    let orderer = SignedBlockBuilder::new(pki.orderer().signer().expect("signer"));
    Fixture {
        pki,
        orderer,
        policy: Arc::new(OrdererBlockPolicy::new(orderers, 1)),
    }
}

fn nonces(k: u8) -> BlockNonces {
    BlockNonces {
        tx: [k; NONCE_LEN_BYTES],
        signature: [k ^ 0x5a; NONCE_LEN_BYTES],
    }
}

fn build(builder: &mut SignedBlockBuilder, channel: &str, seq: u64) -> Bytes {
    builder
        .build(channel, seq, 256, NOW_UNIX_S, &nonces(seq as u8))
        .expect("build")
}

/// The data message gossiping `block` as block `seq` of `channel`, as an envelope.
fn envelope(channel: &str, seq: u64, block: Bytes) -> Envelope {
    let message = block_message(channel, seq, block);
    Envelope {
        payload: message.encode_to_vec().into(),
        signature: Bytes::new(),
        secret_envelope: None,
    }
}

fn ingress(policy: &Arc<OrdererBlockPolicy>) -> Ingress {
    let msp = Arc::new(MspManager::new());
    Ingress::with_msp(IngressConfig::default(), msp)
        .with_block_verifier(Arc::clone(policy) as Arc<dyn BlockVerifier>)
}

fn edit(block: &Bytes, f: impl FnOnce(&mut Block)) -> Bytes {
    let mut decoded = Block::decode(block.clone()).expect("block");
    f(&mut decoded);
    decoded.encode_to_vec().into()
}

fn reason(result: Result<impl std::fmt::Debug, Reject>) -> &'static str {
    match result {
        Ok(_) => "accepted",
        Err(reject) => reject.reason(),
    }
}

#[test]
fn an_orderer_signed_block_passes_and_its_signature_is_checked() {
    let mut f = fixture();
    let block = build(&mut f.orderer, CHANNEL, 1);
    let decoded = Block::decode(block.clone()).expect("block");
    let checks = f
        .policy
        .precheck(CHANNEL.as_bytes(), 1, &decoded, now())
        .expect("well formed");
    assert_eq!(checks.len(), 1);
    assert_eq!(checks[0].run(), Ok(()));
    let ingress = ingress(&f.policy);
    let from = PkiId([7; 32]);
    let accepted = ingress.receive_inline(from, envelope(CHANNEL, 1, block.clone()), now());
    // Channels skip their own structural check for what ingress authenticated.
    assert!(accepted.as_ref().is_ok_and(|m| m.blocks_authenticated));
    assert_eq!(reason(accepted), "accepted");
    // Without a block verifier nothing is authenticated here, and channels check the structure.
    let unverified = Ingress::with_msp(IngressConfig::default(), Arc::new(MspManager::new()));
    let accepted = unverified.receive_inline(from, envelope(CHANNEL, 1, block), now());
    assert!(accepted.is_ok_and(|m| !m.blocks_authenticated));
}

#[test]
fn hostile_blocks_are_rejected_by_reason_and_the_genuine_block_still_passes() {
    let mut f = fixture();
    let genuine = build(&mut f.orderer, CHANNEL, 1);
    // A peer of the channel's own org signing as if it were an orderer.
    let peer_signer: LocalSigner = f.pki.orgs[0].peers[0].signer().expect("peer signer");
    let mut impostor = SignedBlockBuilder::new(peer_signer);
    let mut other_channel = fixture().orderer;
    let garbage = Bytes::from_static(b"\x0a\x03not a block at all");
    let cases: Vec<(&str, u64, Bytes, &str)> = vec![
        ("garbage", 1, garbage, "block_malformed"),
        (
            "signed by a peer, not an orderer",
            1,
            build(&mut impostor, CHANNEL, 1),
            "block_bad_signer",
        ),
        (
            "a huge sequence number, signed by a peer",
            1_000_000_000_000_000,
            build(&mut impostor, CHANNEL, 1_000_000_000_000_000),
            "block_bad_signer",
        ),
        (
            "header number not the gossiped seq",
            2,
            genuine.clone(),
            "block_number_mismatch",
        ),
        (
            "another channel's block",
            1,
            build(&mut other_channel, "otherchannel", 1),
            "block_wrong_channel",
        ),
        (
            "data replaced",
            1,
            edit(&genuine, |b| {
                b.data.as_mut().unwrap().data[0] = Bytes::from_static(b"forged");
            }),
            "block_malformed",
        ),
        (
            "transaction tampered, data hash left",
            1,
            edit(&genuine, |b| {
                let entry = &mut b.data.as_mut().unwrap().data[0];
                let mut tx = TxEnvelope::decode(entry.clone()).unwrap();
                tx.signature = Bytes::from_static(b"not the creator's signature");
                *entry = tx.encode_to_vec().into();
            }),
            "block_data_hash",
        ),
        (
            "header rewritten (previous hash), signature kept",
            1,
            edit(&genuine, |b| {
                let header = b.header.as_mut().unwrap();
                header.previous_hash = Bytes::from_static(b"rewritten history");
            }),
            "block_bad_signature",
        ),
        (
            "signature removed",
            1,
            edit(&genuine, |b| {
                let meta = &mut b.metadata.as_mut().unwrap().metadata[0];
                let mut m = Metadata::decode(meta.clone()).unwrap();
                m.signatures.clear();
                *meta = m.encode_to_vec().into();
            }),
            "block_unsigned",
        ),
        (
            "signature bytes flipped",
            1,
            edit(&genuine, |b| {
                let meta = &mut b.metadata.as_mut().unwrap().metadata[0];
                let mut m = Metadata::decode(meta.clone()).unwrap();
                let mut sig = m.signatures[0].signature.to_vec();
                let last = sig.len() - 1;
                sig[last] ^= 1;
                m.signatures[0].signature = sig.into();
                *meta = m.encode_to_vec().into();
            }),
            "block_bad_signature",
        ),
    ];
    let ingress = ingress(&f.policy);
    let from = PkiId([9; 32]);
    for (what, seq, block, expected) in cases {
        let got = reason(ingress.receive_inline(from, envelope(CHANNEL, seq, block), now()));
        assert_eq!(got, expected, "{what}");
    }
    let stats = ingress.stats().snapshot();
    assert_eq!(stats.bad_block, 10);
    assert_eq!(stats.accepted, 0);
    // None of them kept the genuine block out.
    let accepted = ingress.receive_inline(from, envelope(CHANNEL, 1, genuine), now());
    assert_eq!(reason(accepted), "accepted");
}

#[test]
fn a_block_signed_by_an_expired_orderer_is_refused() {
    let f = fixture();
    let mut orderer = f.orderer;
    let block = build(&mut orderer, CHANNEL, 1);
    let ingress = ingress(&f.policy);
    let after_expiry = Instant::from_nanos((NOW_UNIX_S as u64 + 20 * 365 * 86_400) * 1_000_000_000);
    let got =
        reason(ingress.receive_inline(PkiId([1; 32]), envelope(CHANNEL, 1, block), after_expiry));
    assert_eq!(got, "block_bad_signer");
}

#[test]
fn the_policy_counts_distinct_signers() {
    let f = fixture();
    let mut orderers = MspManager::new();
    orderers.add_org(f.pki.orderer_org.msp().expect("orderer msp"));
    let two = OrdererBlockPolicy::new(orderers, 2);
    let mut orderer = f.orderer;
    let block = Block::decode(build(&mut orderer, CHANNEL, 1)).expect("block");
    assert_eq!(
        two.precheck(CHANNEL.as_bytes(), 1, &block, now()).err(),
        Some(BlockReject::TooFewSignatures {
            signers: 1,
            required: 2
        })
    );
}

/// A block pull update (`DataUpdate`, BLOCK_MSG) of `items`, each `(seq, block)` gossiped in
/// `channel`, answering `nonce`.
fn update(channel: &str, items: Vec<(&str, u64, Bytes)>, nonce: u64) -> Envelope {
    use gossip_proto::gossip::gossip_message::{Content, Tag};
    use gossip_proto::gossip::{DataUpdate, GossipMessage, PullMsgType};
    let message = GossipMessage {
        nonce: 0,
        channel: Bytes::copy_from_slice(channel.as_bytes()),
        tag: Tag::ChanAndOrg as i32,
        content: Some(Content::DataUpdate(DataUpdate {
            nonce,
            data: items
                .into_iter()
                .map(|(ch, seq, block)| envelope(ch, seq, block))
                .collect(),
            msg_type: PullMsgType::BlockMsg as i32,
        })),
    };
    Envelope {
        payload: message.encode_to_vec().into(),
        signature: Bytes::new(),
        secret_envelope: None,
    }
}

fn items_of(accepted: &gossip_engine::ingress::ReceivedMessage) -> usize {
    use gossip_proto::gossip::gossip_message::Content;
    match &accepted.message.content {
        Some(Content::DataUpdate(u)) => u.data.len(),
        _ => 0,
    }
}

#[test]
fn pulled_blocks_are_authenticated_like_pushed_ones() {
    let mut f = fixture();
    let (one, two) = (
        build(&mut f.orderer, CHANNEL, 1),
        build(&mut f.orderer, CHANNEL, 2),
    );
    let peer_signer: LocalSigner = f.pki.orgs[0].peers[0].signer().expect("peer signer");
    let forged = build(&mut SignedBlockBuilder::new(peer_signer), CHANNEL, 3);
    let flipped = edit(&two, |b| {
        let meta = &mut b.metadata.as_mut().unwrap().metadata[0];
        let mut m = Metadata::decode(meta.clone()).unwrap();
        let mut sig = m.signatures[0].signature.to_vec();
        sig[4] ^= 1;
        m.signatures[0].signature = sig.into();
        *meta = m.encode_to_vec().into();
    });
    let ingress = ingress(&f.policy);
    let from = PkiId([3; 32]);
    // One bad block rejects the whole update (Fabric aborts it), whatever else it carries.
    let cases = [
        (
            vec![(CHANNEL, 1, one.clone()), (CHANNEL, 3, forged)],
            "block_bad_signer",
        ),
        (
            vec![(CHANNEL, 1, one.clone()), (CHANNEL, 2, flipped)],
            "block_bad_signature",
        ),
        (vec![(CHANNEL, 2, one.clone())], "block_number_mismatch"),
        (vec![("otherchannel", 1, one.clone())], "invalid"),
    ];
    for (items, expected) in cases {
        let got = reason(ingress.receive_inline(from, update(CHANNEL, items, 5), now()));
        assert_eq!(got, expected);
    }
    assert_eq!(ingress.stats().snapshot().accepted, 0);
    // Genuine blocks pass; one already taken is left out before its signature is paid for.
    ingress.mark_block_seen(CHANNEL.as_bytes(), 1, now());
    let items = vec![(CHANNEL, 1, one), (CHANNEL, 2, two)];
    let accepted = ingress
        .receive_inline(from, update(CHANNEL, items, 6), now())
        .expect("genuine blocks pass");
    assert_eq!(items_of(&accepted), 1, "block 1 was taken already");
    assert_eq!(ingress.stats().snapshot().block_items_seen, 1);
}
