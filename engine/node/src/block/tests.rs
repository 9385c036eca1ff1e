use gossip_proto::gossip::Payload as GossipPayload;

use super::*;
use gossip_engine::components::channel::verify_block;
use gossip_testkit::testpki::{TestPki, TestPkiSpec};

const NOW_UNIX_S: i64 = 1_800_000_000;

fn builder() -> SignedBlockBuilder {
    let pki = TestPki::generate(&TestPkiSpec::uniform(1, 1, NOW_UNIX_S)).expect("pki");
    SignedBlockBuilder::new(pki.orderer().signer().expect("signer"))
}

fn nonces(k: u8) -> BlockNonces {
    BlockNonces {
        tx: [k; NONCE_LEN_BYTES],
        signature: [k.wrapping_add(1); NONCE_LEN_BYTES],
    }
}

fn header(number: u64) -> BlockHeader {
    BlockHeader {
        number,
        previous_hash: Bytes::new(),
        data_hash: Bytes::new(),
    }
}

#[test]
fn header_numbers_are_minimal_twos_complement_integers() {
    let cases: [(u64, &[u8]); 8] = [
        (0, &[0x02, 0x01, 0x00]),
        (1, &[0x02, 0x01, 0x01]),
        (127, &[0x02, 0x01, 0x7f]),
        (128, &[0x02, 0x02, 0x00, 0x80]),
        (255, &[0x02, 0x02, 0x00, 0xff]),
        (256, &[0x02, 0x02, 0x01, 0x00]),
        (
            1 << 63,
            &[
                0x02, 0x09, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            ],
        ),
        (
            u64::MAX,
            &[
                0x02, 0x09, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            ],
        ),
    ];
    for (number, integer) in cases {
        let der = header_asn1(&header(number));
        // SEQUENCE { INTEGER, OCTET STRING "", OCTET STRING "" }
        let mut expected = vec![0x30, (integer.len() + 4) as u8];
        expected.extend_from_slice(integer);
        expected.extend_from_slice(&[0x04, 0x00, 0x04, 0x00]);
        assert_eq!(der, expected, "{number}");
    }
    let full = BlockHeader {
        number: 5,
        previous_hash: Bytes::from(vec![0xaa; 32]),
        data_hash: Bytes::from(vec![0xbb; 32]),
    };
    let der = header_asn1(&full);
    assert_eq!(&der[..5], &[0x30, 3 + 34 + 34, 0x02, 0x01, 0x05]);
    assert_eq!(&der[5..7], &[0x04, 32]);
    assert_eq!(der.len(), 2 + 3 + 34 + 34);
    // Long-form lengths beyond 127 bytes.
    let long = BlockHeader {
        number: 1,
        previous_hash: Bytes::from(vec![1; 200]),
        data_hash: Bytes::new(),
    };
    let der = header_asn1(&long);
    assert_eq!(&der[..4], &[0x30, 0x81, 3 + 3 + 200 + 2, 0x02]);
    assert_eq!(&der[5..9], &[0x01, 0x04, 0x81, 200]);
}

struct Decoded {
    block: Block,
    envelope: Envelope,
    payload: Payload,
    channel_header: ChannelHeader,
    signature_header: SignatureHeader,
}

fn decode(bytes: &Bytes) -> Decoded {
    let block = Block::decode(bytes.clone()).expect("block");
    let data = &block.data.as_ref().expect("data").data;
    assert_eq!(data.len(), 1);
    let envelope = Envelope::decode(data[0].clone()).expect("envelope");
    // Fabric's VerifyTransactionsAreWellFormed: the canonical re-marshalling is the entry.
    assert_eq!(envelope.encode_to_vec(), data[0].to_vec());
    let payload = Payload::decode(envelope.payload.clone()).expect("payload");
    let header = payload.header.as_ref().expect("header");
    let channel_header = ChannelHeader::decode(header.channel_header.clone()).expect("ch");
    let signature_header = SignatureHeader::decode(header.signature_header.clone()).expect("sh");
    Decoded {
        block,
        envelope,
        payload,
        channel_header,
        signature_header,
    }
}

#[test]
fn signed_block_has_fabrics_layout_and_its_signatures_verify() {
    let mut b = builder();
    let signer_key = b.signer().identity().public_key().clone();
    let creator = b.signer().identity().serialized.clone();
    for (seq, size) in [(1u64, 0usize), (2, 10), (3, 10_240)] {
        let bytes = b
            .build("mychannel", seq, size, NOW_UNIX_S, &nonces(seq as u8))
            .expect("builds");
        let d = decode(&bytes);
        // The payload: the filler, under an ENDORSER_TRANSACTION header.
        assert_eq!(d.payload.data.to_vec(), block_data(seq, size));
        assert_eq!(
            d.channel_header.r#type,
            HeaderType::EndorserTransaction as i32
        );
        assert_eq!(d.channel_header.version, 0);
        assert_eq!(d.channel_header.epoch, 0);
        assert_eq!(d.channel_header.channel_id, "mychannel");
        let ts = d.channel_header.timestamp.expect("timestamp");
        assert_eq!((ts.seconds, ts.nanos), (NOW_UNIX_S, 0));
        assert_eq!(d.signature_header.creator, creator);
        assert_eq!(d.signature_header.nonce.len(), NONCE_LEN_BYTES);
        let tx_id = hex::encode(sha256(
            &[&d.signature_header.nonce[..], &creator[..]].concat(),
        ));
        assert_eq!(d.channel_header.tx_id, tx_id);
        signer_key
            .verify(&d.envelope.payload, &d.envelope.signature)
            .expect("envelope signature verifies");
        // The header.
        let header = d.block.header.clone().expect("header");
        assert_eq!(header.number, seq);
        let entry = &d.block.data.as_ref().expect("data").data[0];
        assert_eq!(header.data_hash.to_vec(), sha256(entry).to_vec());
        // The metadata.
        let md = &d.block.metadata.as_ref().expect("metadata").metadata;
        assert_eq!(md.len(), 5);
        assert!(
            md[1..].iter().all(Bytes::is_empty),
            "LAST_CONFIG and the rest are empty"
        );
        let sigs = Metadata::decode(md[0].clone()).expect("signatures metadata");
        let value = OrdererBlockMetadata::decode(sigs.value.clone()).expect("value");
        assert_eq!(value.last_config, Some(LastConfig { index: 0 }));
        let consenter = Metadata::decode(value.consenter_metadata.clone()).expect("consenter");
        let raft = etcdraft::BlockMetadata::decode(consenter.value).expect("raft");
        assert_eq!(
            raft,
            etcdraft::BlockMetadata {
                consenter_ids: vec![1],
                next_consenter_id: 2,
                raft_index: seq,
            }
        );
        assert_eq!(sigs.signatures.len(), 1);
        let ms = &sigs.signatures[0];
        assert!(ms.identifier_header.is_empty());
        let sh = SignatureHeader::decode(ms.signature_header.clone()).expect("sig header");
        assert_eq!(sh.creator, creator);
        assert_eq!(sh.nonce.len(), NONCE_LEN_BYTES);
        let signed = [
            &sigs.value[..],
            &ms.signature_header[..],
            &header_asn1(&header),
        ]
        .concat();
        signer_key
            .verify(&signed, &ms.signature)
            .expect("block signature verifies (low S included)");
        assert!(signer_key.verify(&sigs.value, &ms.signature).is_err());
        // The engine's own block check passes, and events report the entry's size.
        let gossip = GossipPayload {
            seq_num: seq,
            data: bytes.clone(),
            private_data: Vec::new(),
        };
        assert_eq!(verify_block(&gossip), Ok(()));
        assert_eq!(super::super::control::block_data_len(&bytes), entry.len());
        assert!(entry.len() > size);
    }
}

#[test]
fn previous_hash_chains_consecutive_blocks_per_channel() {
    let mut b = builder();
    let first = decode(&b.build("a", 1, 8, NOW_UNIX_S, &nonces(1)).expect("1"));
    let h1 = first.block.header.expect("header");
    assert!(h1.previous_hash.is_empty(), "no block built before");
    let second = decode(&b.build("a", 2, 8, NOW_UNIX_S, &nonces(2)).expect("2"));
    let h2 = second.block.header.expect("header");
    assert_eq!(h2.previous_hash.to_vec(), header_hash(&h1).to_vec());
    // Another channel has its own chain.
    let other = decode(&b.build("b", 3, 8, NOW_UNIX_S, &nonces(3)).expect("b3"));
    assert!(other.block.header.expect("header").previous_hash.is_empty());
    let third = decode(&b.build("a", 3, 8, NOW_UNIX_S, &nonces(4)).expect("3"));
    let h3 = third.block.header.expect("header");
    assert_eq!(h3.previous_hash.to_vec(), header_hash(&h2).to_vec());
    // A gap: this process built no block 9.
    let gap = decode(&b.build("a", 10, 8, NOW_UNIX_S, &nonces(5)).expect("10"));
    assert!(gap.block.header.expect("header").previous_hash.is_empty());
}
