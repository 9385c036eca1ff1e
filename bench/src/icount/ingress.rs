//! The ingress workloads: block envelopes through [`Ingress`] as a connection task runs it,
//! without a block verifier (`ingress_block`) and with Fabric's `VerifyBlock` as an etcdraft
//! channel deploys it (`ingress_block_authenticated`).

use std::hint::black_box;
use std::sync::Arc;

use bytes::Bytes;
use gossip_engine::crypto::MspManager;
use gossip_engine::crypto::envelope::noop_sign;
use gossip_engine::ingress::{BlockVerifier, Ingress, OrdererBlockPolicy, Prechecked};
use gossip_engine::time::Instant;
use gossip_engine::types::PkiId;
use gossip_node::block::{BlockNonces, NONCE_LEN_BYTES, SignedBlockBuilder};
use gossip_node::control::block_message;
use gossip_proto::gossip::Envelope;
use gossip_testkit::testpki::{TestPki, TestPkiSpec};
use prost::Message;

use crate::{KIB, NOW_UNIX_S, data_message};

/// Block envelopes decoded and prechecked, in each workload.
pub const INGRESS_BLOCKS: u64 = 256;

/// Bytes of payload data in each block.
const BLOCK_DATA_LEN_BYTES: usize = 10 * KIB;

/// The peer the blocks come from.
const FROM: PkiId = PkiId([7; 32]);

/// The channel of the orderer-signed blocks.
const BLOCK_CHANNEL: &str = "mychannel";

// ---- without a block verifier ------------------------------------------------------------------

/// What both markers count, inlined into each: decode each wire, precheck it and, where `keep`
/// takes the outcome, accept it with `Ok(())` as its checks' outcome. Returns the blocks
/// accepted.
#[inline(always)]
fn ingest(
    ingress: &Ingress,
    from: PkiId,
    wires: &[Bytes],
    now: Instant,
    keep: impl Fn(&Prechecked) -> bool,
) -> u64 {
    let mut accepted = 0;
    for wire in wires {
        let Ok(envelope) = Envelope::decode(wire.clone()) else {
            continue;
        };
        let Ok(prechecked) = ingress.precheck(from, envelope, now) else {
            continue;
        };
        if !keep(&prechecked) {
            continue;
        }
        if let Ok(message) = ingress.accept(prechecked, Ok(()), now) {
            black_box(&message);
            accepted += 1;
        }
    }
    accepted
}

#[inline(never)]
fn icount_marker_ingress_block(ingress: &Ingress, from: PkiId, wires: &[Bytes]) -> u64 {
    ingest(ingress, from, wires, Instant::ZERO, |_| true)
}

/// `ingress_block`: [`INGRESS_BLOCKS`] data messages of 10 KiB of filler, no block verifier.
pub(crate) fn run_ingress_block() -> u64 {
    let ingress = Ingress::default();
    let wires: Vec<Bytes> = (1..=INGRESS_BLOCKS)
        .map(|seq| {
            let payload = data_message(seq, BLOCK_DATA_LEN_BYTES)
                .encode_to_vec()
                .into();
            noop_sign(payload).encode_to_vec().into()
        })
        .collect();
    let accepted = icount_marker_ingress_block(&ingress, FROM, black_box(&wires));
    assert_eq!(accepted, INGRESS_BLOCKS, "every block passes ingress");
    accepted
}

// ---- with the orderer block policy -------------------------------------------------------------

/// Like [`icount_marker_ingress_block`], but each block's signature checks were run (and passed)
/// before the marker, so `Ok(())` is their outcome here: what is counted is everything ingress
/// does for an authenticated block but ring's ECDSA verification.
#[inline(never)]
fn icount_marker_ingress_block_authenticated(
    ingress: &Ingress,
    from: PkiId,
    wires: &[Bytes],
    now: Instant,
) -> u64 {
    // A distinct block has one check, its orderer signature: none is skipped as verified.
    ingest(ingress, from, wires, now, |p| p.checks().len() == 1)
}

/// `ingress_block_authenticated`: [`INGRESS_BLOCKS`] distinct blocks of 10 KiB of data, built
/// and signed as an etcdraft orderer does, through an ingress whose block verifier is an
/// [`OrdererBlockPolicy`] of the orderer org, one signature required.
///
/// Outside the marker, a warm-up ingress sharing the policy prechecks every block and runs its
/// signature checks, asserting they pass: that is what entitles the marker to pass `Ok(())`, and
/// it leaves the orderer's validated identity in the policy's signer cache, as on a peer that
/// took a block before. The measured ingress is fresh: its verified-signature and seen caches
/// hold none of the blocks, as for first copies.
pub(crate) fn run_ingress_block_authenticated() -> u64 {
    let pki = TestPki::generate(&TestPkiSpec::uniform(1, 1, NOW_UNIX_S)).expect("test PKI");
    let mut orderers = MspManager::new();
    orderers.add_org(pki.orderer_org.msp().expect("orderer MSP"));
    let policy: Arc<dyn BlockVerifier> = Arc::new(OrdererBlockPolicy::new(orderers, 1));
    let mut builder = SignedBlockBuilder::new(pki.orderer().signer().expect("orderer signer"));
    let now = Instant::from_nanos(NOW_UNIX_S as u64 * 1_000_000_000);
    let wires: Vec<Bytes> = (1..=INGRESS_BLOCKS)
        .map(|seq| {
            let nonces = BlockNonces {
                tx: [seq as u8; NONCE_LEN_BYTES],
                signature: [!(seq as u8); NONCE_LEN_BYTES],
            };
            let block = builder
                .build(
                    BLOCK_CHANNEL,
                    seq,
                    BLOCK_DATA_LEN_BYTES,
                    NOW_UNIX_S,
                    &nonces,
                )
                .expect("block signs");
            let payload = block_message(BLOCK_CHANNEL, seq, block).encode_to_vec();
            noop_sign(payload.into()).encode_to_vec().into()
        })
        .collect();
    let warm_up = Ingress::default().with_block_verifier(Arc::clone(&policy));
    for wire in &wires {
        let envelope = Envelope::decode(wire.clone()).expect("envelope decodes");
        let prechecked = warm_up
            .precheck(FROM, envelope, now)
            .expect("block prechecks");
        assert_eq!(prechecked.checks().len(), 1, "one orderer signature");
        assert_eq!(
            prechecked.run_checks(),
            Ok(()),
            "the orderer signature verifies"
        );
    }
    let ingress = Ingress::default().with_block_verifier(policy);
    let accepted =
        icount_marker_ingress_block_authenticated(&ingress, FROM, black_box(&wires), now);
    assert_eq!(accepted, INGRESS_BLOCKS, "every block is authenticated");
    accepted
}
