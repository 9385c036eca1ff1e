//! Ingress tests over Fabric's golden vectors (skipped when the vectors are absent) plus
//! no-panic fuzzing over random and truncated inputs.

use std::sync::Arc;

use bytes::Bytes;
use gossip_proto::gossip::gossip_message::{Content, Tag};
use gossip_proto::gossip::{Envelope, GossipMessage};
use prost::Message;

use super::*;
use crate::crypto::SignatureError;
use crate::golden::{Golden, now};

const PEER0_ORG1: &str = "peer0.org1.example.com";
const PEER1_ORG1: &str = "peer1.org1.example.com";
const PEER0_ORG2: &str = "peer0.org2.example.com";
const PEERS: [&str; 3] = [PEER0_ORG1, PEER1_ORG1, PEER0_ORG2];

fn ingress_with(golden: &Golden, config: IngressConfig, known: &[&str]) -> Ingress {
    let msp = Arc::new(golden.msp_manager());
    let store = Arc::new(IdentityStore::new(Arc::clone(&msp), 64));
    for peer in known {
        let identity =
            Identity::from_serialized(golden.serialized_identity(peer)).expect("identity");
        let claimed = identity.pki_id;
        store.put(&claimed.0, identity, now()).expect("put");
    }
    Ingress::new(config, msp, store)
}

fn ingress(golden: &Golden, known: &[&str]) -> Ingress {
    ingress_with(golden, IngressConfig::default(), known)
}

fn pki(golden: &Golden, peer: &str) -> PkiId {
    Identity::from_serialized(golden.serialized_identity(peer))
        .expect("identity")
        .pki_id
}

fn envelope(golden: &Golden, name: &str) -> Envelope {
    wire::decode_envelope(golden.envelope_bytes(name)).expect(name)
}

/// Re-encodes an envelope's payload after `edit` (the signature no longer matches if signed).
fn edited(envelope: &Envelope, edit: impl FnOnce(&mut GossipMessage)) -> Envelope {
    let mut message = wire::decode_message(envelope).expect("decode");
    edit(&mut message);
    Envelope {
        payload: message.encode_to_vec().into(),
        ..envelope.clone()
    }
}

#[test]
fn golden_vectors_table() {
    let Some(golden) = Golden::load() else { return };
    use Expect::*;
    #[derive(Debug)]
    enum Expect {
        Accept,
        Rejected(&'static str),
        BadSig(SignatureError),
    }
    // (vector, sender, identities known beforehand, expected outcome). A fresh pipeline per row.
    let all: &[&str] = &PEERS;
    let table: &[(&str, &str, &[&str], Expect)] = &[
        ("alive_msg", PEER0_ORG1, &[], Accept),
        ("alive_msg_with_secret_envelope", PEER0_ORG1, &[], Accept),
        (
            "alive_msg_no_identity_with_metadata",
            PEER1_ORG1,
            all,
            Accept,
        ),
        (
            "alive_msg_no_identity_with_metadata",
            PEER1_ORG1,
            &[],
            Rejected("unknown_signer"),
        ),
        ("alive_msg_org2", PEER0_ORG2, &[], Accept),
        (
            "alive_msg_high_s_signature",
            PEER0_ORG1,
            all,
            BadSig(SignatureError::HighS),
        ),
        (
            "alive_msg_tampered_payload",
            PEER0_ORG1,
            all,
            BadSig(SignatureError::Invalid),
        ),
        (
            "alive_msg_tampered_secret_envelope",
            PEER0_ORG1,
            all,
            BadSig(SignatureError::SecretInvalid),
        ),
        ("mem_req", PEER1_ORG1, all, Accept),
        ("mem_req", PEER0_ORG1, all, Rejected("spoofed")),
        ("mem_req", PEER1_ORG1, &[], Rejected("unknown_signer")),
        ("mem_res", PEER0_ORG1, all, Accept),
        ("mem_res", PEER0_ORG1, &[PEER1_ORG1], Accept),
        ("mem_res", PEER0_ORG1, &[], Rejected("unknown_signer")),
        ("data_msg", PEER0_ORG1, &[], Accept),
        ("hello_block", PEER0_ORG1, &[], Accept),
        ("data_dig_block", PEER0_ORG1, &[], Accept),
        ("data_req_block", PEER0_ORG1, &[], Accept),
        ("data_update_block", PEER0_ORG1, &[], Accept),
        ("peer_identity", PEER0_ORG1, all, Rejected("illegal_tag")),
        ("hello_identity", PEER0_ORG1, &[], Accept),
        ("data_dig_identity", PEER0_ORG1, &[], Accept),
        ("data_req_identity", PEER0_ORG1, &[], Accept),
        ("data_update_identity", PEER0_ORG1, &[], Accept),
        ("empty", PEER0_ORG1, &[], Accept),
        ("conn", PEER0_ORG1, &[], Accept),
        ("conn_probe", PEER1_ORG1, &[], Accept),
        ("state_info", PEER0_ORG1, all, Accept),
        ("state_info", PEER0_ORG1, &[], Rejected("unknown_signer")),
        ("state_snapshot", PEER0_ORG1, all, Accept),
        (
            "state_snapshot",
            PEER0_ORG1,
            &[PEER0_ORG1],
            Rejected("unknown_signer"),
        ),
        ("state_info_pull_req", PEER0_ORG1, &[], Accept),
        ("state_request", PEER0_ORG1, &[], Accept),
        ("state_response", PEER0_ORG1, &[], Accept),
        ("leadership_msg_declaration", PEER0_ORG1, all, Accept),
        ("leadership_msg_proposal", PEER1_ORG1, all, Accept),
        (
            "leadership_msg_proposal",
            PEER1_ORG1,
            &[PEER0_ORG1],
            Rejected("unknown_signer"),
        ),
        ("private_req", PEER0_ORG1, &[], Accept),
        ("private_res", PEER0_ORG1, &[], Accept),
        ("private_data", PEER0_ORG1, &[], Accept),
        ("ack", PEER0_ORG1, &[], Accept),
        ("ack_with_error", PEER0_ORG1, &[], Accept),
    ];
    for v in &golden.vectors {
        let name = v["name"].as_str().expect("name");
        assert!(
            table.iter().any(|row| row.0 == name),
            "vector {name} missing from the table"
        );
    }
    for (name, from, known, expect) in table {
        let ingress = ingress(&golden, known);
        let outcome = ingress.receive_inline(pki(&golden, from), envelope(&golden, name), now());
        let row = format!("{name} from {from} knowing {known:?}");
        match (expect, &outcome) {
            (Accept, Ok(verified)) => {
                assert_eq!(
                    verified.kind.name(),
                    golden.vector(name)["content_variant"]
                        .as_str()
                        .expect("variant"),
                    "{row}"
                );
                assert_eq!(
                    verified.envelope.encode_to_vec(),
                    golden.envelope_bytes(name).to_vec(),
                    "{row}"
                );
            }
            (Rejected(reason), Err(reject)) => {
                assert_eq!(reject.reason(), *reason, "{row}: {reject}")
            }
            (BadSig(e), Err(reject)) => {
                assert_eq!(reject, &Reject::BadSignature(e.clone()), "{row}")
            }
            _ => panic!("{row}: expected {expect:?}, got {outcome:?}"),
        }
        if let Err(reject) = &outcome {
            assert!(!reject.closes_connection(), "{row}");
        }
        let stats = ingress.stats().snapshot();
        assert_eq!(
            stats.accepted + stats.rejected_total(),
            1,
            "{row}: counted once"
        );
    }
}

#[test]
fn signed_vectors_need_their_checks() {
    let Some(golden) = Golden::load() else { return };
    // (vector, checks: envelope + secret)
    let table = [
        ("alive_msg", 1),
        ("alive_msg_with_secret_envelope", 2),
        ("conn", 1),
        ("state_info", 1),
        ("leadership_msg_declaration", 1),
        ("mem_req", 2),
        ("mem_res", 5),
        ("state_snapshot", 2),
        ("data_update_identity", 2),
        ("data_msg", 0),
        ("hello_block", 0),
    ];
    for (name, checks_len) in table {
        let ingress = ingress(&golden, &PEERS);
        let pre = ingress
            .precheck(pki(&golden, PEER1_ORG1), envelope(&golden, name), now())
            .expect(name);
        assert_eq!(pre.checks().len(), checks_len, "{name}");
        assert_eq!(pre.run_checks(), Ok(()), "{name}");
    }
}

#[test]
fn identities_are_learnt_only_after_verification() {
    let Some(golden) = Golden::load() else { return };
    let ingress = ingress(&golden, &[]);
    let peer0 = pki(&golden, PEER0_ORG1);
    // A forged alive message carrying a valid identity teaches nothing.
    let reject = ingress
        .receive_inline(
            peer0,
            envelope(&golden, "alive_msg_high_s_signature"),
            now(),
        )
        .expect_err("high S");
    assert_eq!(reject.reason(), "bad_signature");
    assert!(ingress.identities().get(&peer0, now()).is_none());
    // The precheck alone doesn't store the identity either.
    let pre = ingress
        .precheck(peer0, envelope(&golden, "alive_msg"), now())
        .expect("precheck");
    assert!(ingress.identities().get(&peer0, now()).is_none());
    ingress.accept(pre, Ok(()), now()).expect("accept");
    assert!(ingress.identities().get(&peer0, now()).is_some());
    // Now peer0's state info verifies.
    ingress
        .receive_inline(peer0, envelope(&golden, "state_info"), now())
        .expect("state info");
    // An identity update teaches both identities it carries.
    ingress
        .receive_inline(peer0, envelope(&golden, "data_update_identity"), now())
        .expect("update");
    for peer in PEERS {
        assert!(
            ingress
                .identities()
                .get(&pki(&golden, peer), now())
                .is_some(),
            "{peer}"
        );
    }
    assert_eq!(ingress.stats().snapshot().identities_learned, 3);
}

#[test]
fn a_block_is_remembered_only_once_its_channel_took_it() {
    let Some(golden) = Golden::load() else { return };
    let ingress = ingress(&golden, &PEERS);
    let from = pki(&golden, PEER0_ORG1);
    let block = envelope(&golden, "data_msg");
    let message = GossipMessage::decode(block.payload.clone()).expect("decodes");
    let Some(Content::DataMsg(data)) = &message.content else {
        panic!("data_msg vector holds a data message")
    };
    let seq_num = data.payload.as_ref().expect("payload").seq_num;
    // Passing ingress is not enough: the block may still fail its channel's checks (a forged
    // block N must not turn the genuine block N into a duplicate).
    for _ in 0..2 {
        ingress
            .receive_inline(from, block.clone(), now())
            .expect("a data message passes ingress until its block was taken");
    }
    ingress.mark_block_seen(&message.channel, seq_num, now());
    assert_eq!(
        ingress.precheck(from, block, now()).expect_err("taken"),
        Reject::Duplicate
    );
}

#[test]
fn duplicates_are_dropped_and_forgeries_do_not_poison() {
    let Some(golden) = Golden::load() else { return };
    let ingress = ingress(&golden, &PEERS);
    let from = pki(&golden, PEER0_ORG1);
    // A forged copy first: rejected on its signature, not remembered.
    for forged in [
        "alive_msg_tampered_secret_envelope",
        "alive_msg_high_s_signature",
    ] {
        assert_eq!(
            ingress
                .receive_inline(from, envelope(&golden, forged), now())
                .expect_err(forged)
                .reason(),
            "bad_signature"
        );
    }
    ingress
        .receive_inline(from, envelope(&golden, "alive_msg"), now())
        .expect("genuine");
    // Any later copy (secret stripped or not) is a duplicate, caught before verification.
    for copy in ["alive_msg", "alive_msg_with_secret_envelope"] {
        let reject = ingress
            .precheck(from, envelope(&golden, copy), now())
            .expect_err(copy);
        assert_eq!(reject, Reject::Duplicate);
        assert!(!reject.closes_connection());
    }
    // Two copies racing through verification: the second to be accepted is the duplicate.
    let a = ingress
        .precheck(from, envelope(&golden, "state_info"), now())
        .expect("a");
    let b = ingress
        .precheck(from, envelope(&golden, "state_info"), now())
        .expect("b");
    ingress.accept(a, Ok(()), now()).expect("first");
    assert_eq!(
        ingress.accept(b, Ok(()), now()).expect_err("second"),
        Reject::Duplicate
    );
    // Requests are never deduplicated.
    for _ in 0..2 {
        ingress
            .receive_inline(
                pki(&golden, PEER1_ORG1),
                envelope(&golden, "mem_req"),
                now(),
            )
            .expect("mem_req");
    }
    let stats = ingress.stats().snapshot();
    assert_eq!(
        (stats.duplicate, stats.bad_signature, stats.accepted),
        (3, 2, 4)
    );
}

#[test]
fn nested_unknown_signer_policy() {
    let Some(golden) = Golden::load() else { return };
    let from = pki(&golden, PEER0_ORG1);
    let strict = ingress(&golden, &[]);
    assert_eq!(
        strict
            .receive_inline(from, envelope(&golden, "mem_res"), now())
            .expect_err("strict"),
        Reject::UnknownSigner
    );
    let config = IngressConfig {
        nested_signer_policy: NestedSignerPolicy::DropItem,
        ..IngressConfig::default()
    };
    let lenient = ingress_with(&golden, config, &[]);
    let verified = lenient
        .receive_inline(from, envelope(&golden, "mem_res"), now())
        .expect("lenient");
    let Some(Content::MemRes(res)) = &verified.message.content else {
        panic!("mem_res")
    };
    assert_eq!(
        (res.alive.len(), res.dead.len()),
        (1, 1),
        "peer1's alive (no identity carried) dropped"
    );
    assert_eq!(
        verified.envelope.encode_to_vec(),
        golden.envelope_bytes("mem_res").to_vec(),
        "envelope as received"
    );
    let stats = lenient.stats().snapshot();
    assert_eq!(
        (stats.nested_items_dropped, stats.identities_learned),
        (1, 2)
    );
}

#[test]
fn nested_failures_reject_the_whole_message() {
    let Some(golden) = Golden::load() else { return };
    let from = pki(&golden, PEER0_ORG1);
    let original = envelope(&golden, "mem_res");
    // (edit of the outer message, expected reason)
    type Edit = fn(&mut GossipMessage);
    let cases: [(Edit, &str); 4] = [
        (
            |m| {
                let Some(Content::MemRes(r)) = &mut m.content else {
                    return;
                };
                let mut sig = r.alive[0].signature.to_vec();
                let last = sig.len() - 1;
                sig[last] ^= 1;
                r.alive[0].signature = sig.into();
            },
            "bad_signature",
        ),
        (
            |m| {
                let Some(Content::MemRes(r)) = &mut m.content else {
                    return;
                };
                r.dead[0].payload = Bytes::from_static(&[0xff, 0xff]);
            },
            "invalid",
        ),
        (
            |m| {
                let Some(Content::MemRes(r)) = &mut m.content else {
                    return;
                };
                r.alive[1].signature = Bytes::new();
            },
            "bad_signature",
        ),
        (
            |m| {
                let Some(Content::MemRes(r)) = &mut m.content else {
                    return;
                };
                let hello = GossipMessage {
                    content: Some(Content::Hello(Default::default())),
                    ..Default::default()
                };
                r.alive[0].payload = hello.encode_to_vec().into();
            },
            "invalid",
        ),
    ];
    for (i, (edit, reason)) in cases.into_iter().enumerate() {
        let ingress = ingress(&golden, &PEERS);
        let reject = ingress
            .receive_inline(from, edited(&original, edit), now())
            .expect_err("rejected");
        assert_eq!(reject.reason(), reason, "case {i}: {reject}");
    }
}

#[test]
fn a_signature_by_another_key_fails() {
    let Some(golden) = Golden::load() else { return };
    let ingress = ingress(&golden, &PEERS);
    // peer0.org2 signs a state info that claims to be peer0.org1's.
    let forged = edited(&envelope(&golden, "state_info"), |m| m.nonce = 1);
    let signature = golden
        .signer(PEER0_ORG2)
        .sign(&forged.payload)
        .expect("sign");
    let forged = Envelope {
        signature,
        ..forged
    };
    let from = pki(&golden, PEER0_ORG2);
    assert_eq!(
        ingress
            .receive_inline(from, forged.clone(), now())
            .expect_err("wrong key"),
        Reject::BadSignature(SignatureError::Invalid)
    );
    // Signed by the right key, the same edited message passes.
    let signature = golden
        .signer(PEER0_ORG1)
        .sign(&forged.payload)
        .expect("sign");
    ingress
        .receive_inline(
            from,
            Envelope {
                signature,
                ..forged
            },
            now(),
        )
        .expect("right key");
}

#[test]
fn cheap_rejects() {
    let Some(golden) = Golden::load() else { return };
    let from = pki(&golden, PEER0_ORG1);
    let alive = envelope(&golden, "alive_msg");
    let ingress = ingress_with(
        &golden,
        IngressConfig {
            envelope_len_max_bytes: 4096,
            nested_items_len_max: 2,
            ..IngressConfig::default()
        },
        &PEERS,
    );
    // (envelope, reason, closes the connection)
    let big = Envelope {
        payload: Bytes::from(vec![0u8; 5000]),
        ..Default::default()
    };
    let garbage = Envelope {
        payload: Bytes::from_static(&[0x2a, 0x10, 0x01]),
        ..Default::default()
    };
    let bad_tag = edited(&alive, |m| m.tag = Tag::ChanAndOrg as i32);
    let undefined_tag = edited(&alive, |m| m.tag = Tag::Undefined as i32);
    let no_content = edited(&alive, |m| m.content = None);
    let unsigned_alive = Envelope {
        signature: Bytes::new(),
        ..alive.clone()
    };
    let no_membership = edited(&alive, |m| {
        if let Some(Content::AliveMsg(a)) = &mut m.content {
            a.membership = None;
        }
    });
    let wrong_claim = edited(&alive, |m| {
        if let Some(Content::AliveMsg(a)) = &mut m.content {
            a.membership.as_mut().expect("membership").pki_id = Bytes::from(vec![7u8; 32]);
        }
    });
    let table = [
        (big, "too_large", true),
        (garbage, "malformed", true),
        (bad_tag, "illegal_tag", false),
        (undefined_tag, "illegal_tag", false),
        (no_content, "illegal_tag", false),
        (unsigned_alive, "bad_signature", false),
        (no_membership, "invalid", false),
        (wrong_claim, "bad_identity", false),
        (envelope(&golden, "mem_res"), "too_many_items", false),
    ];
    for (i, (env, reason, closes)) in table.into_iter().enumerate() {
        let reject = ingress.precheck(from, env, now()).expect_err("rejected");
        assert_eq!(
            (reject.reason(), reject.closes_connection()),
            (reason, closes),
            "row {i}: {reject}"
        );
    }
    let stats = ingress.stats().snapshot();
    assert_eq!(stats.rejected_total(), 9);
    assert_eq!(
        (stats.illegal_tag, stats.malformed, stats.too_large),
        (3, 1, 1)
    );
}

#[test]
fn default_ingress_rejects_signed_and_passes_unsigned() {
    let ingress = Ingress::default();
    let hello = GossipMessage {
        tag: Tag::Empty as i32,
        content: Some(Content::Hello(gossip_proto::gossip::GossipHello {
            msg_type: 2,
            ..Default::default()
        })),
        ..Default::default()
    };
    let env = Envelope {
        payload: hello.encode_to_vec().into(),
        ..Default::default()
    };
    ingress
        .receive_inline(PkiId::default(), env, Instant::ZERO)
        .expect("unsigned hello");
    let Some(golden) = Golden::load() else { return };
    let reject = ingress
        .receive_inline(PkiId::default(), envelope(&golden, "state_info"), now())
        .expect_err("no identities");
    assert_eq!(reject, Reject::UnknownSigner);
}

/// xorshift64*: a deterministic byte source for fuzzing.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

/// Runs one input through the whole pipeline; only a panic fails.
fn feed(ingress: &Ingress, from: PkiId, buffer: Bytes) {
    let Ok(env) = wire::decode_envelope(buffer) else {
        return;
    };
    if let Ok(pre) = ingress.precheck(from, env, now()) {
        let outcome = pre.run_checks();
        let _ = ingress.accept(pre, outcome, now());
    }
}

#[test]
fn no_panic_on_random_or_truncated_input() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let bare = Ingress::default();
    for i in 0..2000 {
        let buffer = Bytes::from(rng.bytes(i % 300));
        feed(&bare, PkiId::default(), buffer.clone());
        let env = Envelope {
            payload: buffer,
            signature: Bytes::from(rng.bytes(71)),
            secret_envelope: None,
        };
        feed(&bare, PkiId::default(), env.encode_to_vec().into());
    }
    let Some(golden) = Golden::load() else { return };
    // Fresh per vector so duplicates don't hide later stages; every identity known so truncated
    // vectors reach signer resolution.
    for v in &golden.vectors {
        let name = v["name"].as_str().expect("name");
        let ingress = ingress(&golden, &PEERS[..1]);
        let from = pki(&golden, PEER1_ORG1);
        let whole = golden.envelope_bytes(name);
        for len in 0..whole.len() {
            feed(&ingress, from, whole.slice(..len));
        }
        let env = envelope(&golden, name);
        for len in 0..env.payload.len() {
            let cut = Envelope {
                payload: env.payload.slice(..len),
                ..env.clone()
            };
            feed(&ingress, from, cut.encode_to_vec().into());
        }
        for _ in 0..200 {
            let mut mutated = whole.to_vec();
            let at = rng.next() as usize % mutated.len();
            mutated[at] ^= 1 << (rng.next() % 8);
            feed(&ingress, from, mutated.into());
        }
    }
}

#[test]
fn shared_across_threads() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<Ingress>();
    send_sync::<IdentityStore>();
    send::<Prechecked>();
    send::<Reject>();
}

#[test]
fn checks_that_passed_are_not_run_again_and_failures_are_not_remembered() {
    let Some(golden) = Golden::load() else { return };
    let from = pki(&golden, PEER0_ORG1);
    let original = envelope(&golden, "mem_res");
    let tampered = edited(&original, |m| {
        if let Some(Content::MemRes(r)) = &mut m.content {
            let mut sig = r.alive[0].signature.to_vec();
            let last = sig.len() - 1;
            sig[last] ^= 1;
            r.alive[0].signature = sig.into();
        }
    });
    let ingress = ingress(&golden, &PEERS);
    for _ in 0..2 {
        let reject = ingress
            .receive_inline(from, tampered.clone(), now())
            .expect_err("tampered");
        assert_eq!(
            reject.reason(),
            "bad_signature",
            "a failure is never remembered"
        );
    }
    assert_eq!(ingress.stats().snapshot().checks_skipped_verified, 0);

    ingress
        .receive_inline(from, original.clone(), now())
        .expect("first copy verified");
    let again = ingress
        .precheck(from, original.clone(), now())
        .expect("second copy");
    assert!(again.checks().is_empty(), "all 5 checks passed before");
    assert_eq!(ingress.stats().snapshot().checks_skipped_verified, 5);
    ingress
        .accept(again, Ok(()), now())
        .expect("accepted without checks");

    // The tampered copy differs only in one nested signature: that check alone runs, and fails.
    let pre = ingress.precheck(from, tampered, now()).expect("precheck");
    assert_eq!(pre.checks().len(), 1);
    assert!(pre.run_checks().is_err());

    let off = ingress_with(
        &golden,
        IngressConfig {
            verified_len_max: 0,
            ..IngressConfig::default()
        },
        &PEERS,
    );
    off.receive_inline(from, original.clone(), now())
        .expect("verified");
    let pre = off.precheck(from, original, now()).expect("precheck");
    assert_eq!(pre.checks().len(), 5, "disabled: every check runs");
}
