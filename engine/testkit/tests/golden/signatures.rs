//! Signatures over the bytes as received: every signed vector, its secret envelope and every nested
//! signed envelope verify with the signer's certificate key; the three negative vectors fail with
//! Fabric's error kind.

use std::collections::BTreeSet;

use bytes::Bytes;
use gossip_engine::crypto::envelope::{internal_endpoint, verify_envelope, verify_secret};
use gossip_engine::crypto::{Certificate, PublicKey, SignatureError, der};
use gossip_proto::gossip::Envelope;

use super::vectors::{identities, identity, resolve, unhex, vector, vectors};
use super::{assert_no_failures, decode, nested_envelopes};

/// The negative vectors, the error kind we must return, and a substring of Fabric's error.
const NEGATIVES: [(&str, SignatureError, &str); 3] = [
    (
        "alive_msg_high_s_signature",
        SignatureError::HighS,
        "Invalid S. Must be smaller than half the order",
    ),
    (
        "alive_msg_tampered_payload",
        SignatureError::Invalid,
        "The signature is invalid",
    ),
    (
        "alive_msg_tampered_secret_envelope",
        SignatureError::SecretInvalid,
        "The signature is invalid",
    ),
];

/// The signer's public key, taken from its certificate DER in `identities.json`.
fn signer_key(peer: &str) -> PublicKey {
    let id = identity(peer);
    let cert = Certificate::from_der(unhex(&id.cert_der_hex, peer)).expect("certificate parses");
    assert_eq!(
        hex::encode(cert.public_key.sec1()),
        id.public_key_sec1_uncompressed_hex,
        "{peer} key"
    );
    cert.public_key
}

fn expected_outcome(name: &str, expected_valid: bool) -> Result<(), SignatureError> {
    match NEGATIVES.iter().find(|(n, _, _)| *n == name) {
        Some((_, kind, _)) => {
            assert!(!expected_valid, "{name} is a negative vector");
            Err(kind.clone())
        }
        None => {
            assert!(
                expected_valid,
                "{name} is invalid but not among the known negative vectors"
            );
            Ok(())
        }
    }
}

#[test]
fn signed_vectors_verify_over_the_received_bytes() {
    let mut failures = Vec::new();
    let (mut checked, mut with_secret) = (0, 0);
    for v in vectors().iter().filter(|v| v.signed) {
        let signer = v
            .signer
            .as_deref()
            .unwrap_or_else(|| panic!("{}: signed without signer", v.name));
        let d = decode(v);
        let got = verify_envelope(&d.envelope, &signer_key(signer));
        let want = expected_outcome(&v.name, v.expected_valid);
        if got != want {
            failures.push(format!(
                "{}: verify gave {got:?}, expected {want:?}",
                v.name
            ));
        }
        // Keys bind: a valid message never verifies under another peer's key.
        for other in identities()
            .keys()
            .filter(|p| *p != signer && v.expected_valid)
        {
            let got = verify_envelope(&d.envelope, &signer_key(other));
            if got != Err(SignatureError::Invalid) {
                failures.push(format!("{}: verifies under {other}'s key: {got:?}", v.name));
            }
        }
        let len = d.envelope.signature.len();
        if !(69..=72).contains(&len) {
            failures.push(format!("{}: DER signature of {len} bytes", v.name));
        }
        checked += 1;
        with_secret += usize::from(d.envelope.secret_envelope.is_some());
    }
    println!("verified {checked} signed vectors ({with_secret} with a secret envelope)");
    assert_no_failures("signatures", &failures);
    assert_eq!(checked, 13);
    assert!(with_secret >= 2);
}

#[test]
fn negative_vectors_are_exactly_the_three_known_ones() {
    let invalid: BTreeSet<&str> = vectors()
        .iter()
        .filter(|v| !v.expected_valid)
        .map(|v| v.name.as_str())
        .collect();
    let known: BTreeSet<&str> = NEGATIVES.iter().map(|(n, _, _)| *n).collect();
    assert_eq!(invalid, known);
    for (name, _, fabric_error) in NEGATIVES {
        let v = vector(name);
        assert!(v.signed);
        let error = v
            .expected_error
            .as_deref()
            .expect("negative vectors name Fabric's error");
        assert!(error.contains(fabric_error), "{name}: {error:?}");
    }
    assert!(
        vectors()
            .iter()
            .filter(|v| v.expected_valid)
            .all(|v| v.expected_error.is_none())
    );
}

#[test]
fn high_s_twin_is_plain_ecdsa_valid_but_fabric_invalid() {
    let v = vector("alive_msg_high_s_signature");
    let aux = |k: &str| v.aux_str(k).unwrap_or_else(|| panic!("aux.{k}"));
    let d = decode(v);
    let key = signer_key(v.signer.as_deref().unwrap());
    let high = der::parse_signature(&d.envelope.signature).expect("strict DER");
    assert_eq!(hex::encode(high.r), aux("r_hex"));
    assert_eq!(hex::encode(high.s), aux("s_high_hex"));
    // ring, like OpenSSL, accepts high S: only Fabric's rule rejects this signature.
    ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_ASN1, key.sec1())
        .verify(&d.envelope.payload, &d.envelope.signature)
        .expect("plain ECDSA accepts the high-S twin");
    assert_eq!(
        key.verify(&d.envelope.payload, &d.envelope.signature),
        Err(SignatureError::HighS)
    );
    // n - s_high = s_low: normalising gives back the original low-S signature, which verifies.
    let original = unhex(&aux("original_signature_hex"), &v.name);
    let low = der::normalize_low_s(&d.envelope.signature, key.curve()).expect("normalises");
    assert_eq!(low, original);
    assert_eq!(
        hex::encode(der::parse_signature(&low).unwrap().s),
        aux("s_low_hex")
    );
    key.verify(&d.envelope.payload, &original)
        .expect("the original low-S signature verifies");
}

#[test]
fn tampered_payload_differs_by_one_bit_from_a_valid_one() {
    let v = vector("alive_msg_tampered_payload");
    let aux = |k: &str| v.aux_str(k).unwrap_or_else(|| panic!("aux.{k}"));
    let d = decode(v);
    let mut original = d.envelope.payload.to_vec();
    let offset: usize = aux("flipped_byte_offset_in_payload").parse().unwrap();
    original[offset] ^= aux("xor_mask").parse::<u8>().unwrap();
    assert_eq!(hex::encode(&original), aux("original_payload_hex"));
    let key = signer_key(v.signer.as_deref().unwrap());
    key.verify(&original, &d.envelope.signature)
        .expect("the untampered payload verifies");
    assert_eq!(
        key.verify(&d.envelope.payload, &d.envelope.signature),
        Err(SignatureError::Invalid)
    );
}

#[test]
fn tampered_secret_fails_alone_while_the_outer_signature_holds() {
    let v = vector("alive_msg_tampered_secret_envelope");
    let signer = v.signer.as_deref().unwrap();
    let key = signer_key(signer);
    let d = decode(v);
    key.verify(&d.envelope.payload, &d.envelope.signature)
        .expect("outer signature is intact");
    let secret = d
        .envelope
        .secret_envelope
        .as_ref()
        .expect("secret envelope");
    assert_eq!(
        verify_secret(secret, &key),
        Err(SignatureError::SecretInvalid)
    );
    assert_ne!(
        internal_endpoint(secret).as_deref(),
        Some(identity(signer).internal_endpoint.as_str())
    );
    // The genuine secret of the same peer verifies.
    let genuine = decode(vector("alive_msg_with_secret_envelope"))
        .envelope
        .secret_envelope
        .expect("secret");
    verify_secret(&genuine, &key).expect("genuine secret verifies");
    assert_eq!(
        internal_endpoint(&genuine).as_deref(),
        Some(identity(signer).internal_endpoint.as_str())
    );
}

#[test]
fn stripping_the_secret_envelope_keeps_the_outer_signature_valid() {
    let plain = decode(vector("alive_msg")).envelope;
    let with_secret = decode(vector("alive_msg_with_secret_envelope")).envelope;
    assert_eq!(plain.payload, with_secret.payload);
    assert_eq!(plain.signature, with_secret.signature);
    assert!(plain.secret_envelope.is_none() && with_secret.secret_envelope.is_some());
    let stripped = Envelope {
        secret_envelope: None,
        ..with_secret
    };
    verify_envelope(&stripped, &signer_key("peer0.org1.example.com"))
        .expect("stripped envelope verifies");
}

#[test]
fn unsigned_vectors_carry_no_signature_field() {
    let mut failures = Vec::new();
    for v in vectors().iter().filter(|v| !v.signed) {
        let d = decode(v);
        let ok = v.signer.is_none()
            && v.signature_hex.is_none()
            && v.secret_envelope.is_none()
            && v.expected_valid
            && d.envelope.signature.is_empty()
            && d.envelope.secret_envelope.is_none()
            // The envelope is exactly field 1 (payload): tag 0x0a, a length, the payload, nothing else.
            && d.buffer.first() == Some(&0x0a)
            && d.buffer.ends_with(&d.envelope.payload);
        if !ok {
            failures.push(format!(
                "{}: unsigned vector has signature material",
                v.name
            ));
        }
    }
    assert_no_failures("unsigned", &failures);
}

#[test]
fn nested_signatures_verify_and_none_is_left_unlisted() {
    let mut failures = Vec::new();
    let mut checked = 0;
    for v in vectors() {
        let d = decode(v);
        let nested = nested_envelopes(d.message.content.as_ref().expect("content"), "fields");
        let signed: BTreeSet<&str> = nested
            .iter()
            .filter(|(_, e)| !e.signature.is_empty())
            .map(|(p, _)| p.as_str())
            .collect();
        let listed: BTreeSet<&str> = v
            .nested_signatures
            .iter()
            .map(|n| n.path.as_str())
            .collect();
        if signed != listed {
            failures.push(format!(
                "{}: signed nested envelopes {signed:?}, listed {listed:?}",
                v.name
            ));
        }
        for entry in &v.nested_signatures {
            let Some((_, envelope)) = nested.iter().find(|(p, _)| *p == entry.path) else {
                failures.push(format!(
                    "{}: {} is not an envelope we decoded",
                    v.name, entry.path
                ));
                continue;
            };
            let in_vector = resolve(&v.raw, &entry.path)
                .and_then(|e| e.get("payload"))
                .and_then(|p| p.as_str());
            if in_vector != Some(hex::encode(&envelope.payload).as_str()) {
                failures.push(format!(
                    "{}: {} payload differs from the vector's",
                    v.name, entry.path
                ));
            }
            let got = verify_envelope(envelope, &signer_key(&entry.signer));
            if got.is_ok() != entry.expected_valid {
                failures.push(format!(
                    "{}: {} by {}: {got:?}",
                    v.name, entry.path, entry.signer
                ));
            }
            // The nested payload's own claims name the same signer where they carry a PKI-ID.
            let raw_pki = resolve(&v.raw, &format!("{}.payload_decoded", entry.path))
                .and_then(claimed_pki_id);
            if let Some(pki) = raw_pki
                && pki != identity(&entry.signer).pki_id_hex
            {
                failures.push(format!(
                    "{}: {} claims PKI-ID {pki}, signed by {}",
                    v.name, entry.path, entry.signer
                ));
            }
            checked += 1;
        }
    }
    println!("verified {checked} nested signatures");
    assert_no_failures("nested signatures", &failures);
    assert_eq!(checked, 8);
}

/// The PKI-ID a decoded nested message claims (alive membership, state info, peer identity).
fn claimed_pki_id(decoded: &serde_json::Value) -> Option<String> {
    let pki = decoded
        .pointer("/alive_msg/membership/pki_id")
        .or_else(|| decoded.pointer("/state_info/pki_id"))
        .or_else(|| decoded.pointer("/peer_identity/pki_id"))?;
    Some(pki.as_str()?.to_owned())
}

#[test]
fn secret_payload_is_the_marshaled_secret_verified_on_its_own() {
    let v = vector("alive_msg_with_secret_envelope");
    let sv = v.secret_envelope.as_ref().expect("secret");
    let secret = gossip_proto::gossip::SecretEnvelope {
        payload: Bytes::from(unhex(&sv.payload_hex, &v.name)),
        signature: Bytes::from(unhex(&sv.signature_hex, &v.name)),
    };
    let key = signer_key(v.signer.as_deref().unwrap());
    verify_secret(&secret, &key).expect("secret verifies");
    // The secret's signature is not a signature over the outer payload, nor the reverse.
    let outer = decode(v).envelope;
    assert_eq!(
        key.verify(&outer.payload, &secret.signature),
        Err(SignatureError::Invalid)
    );
    assert_eq!(
        key.verify(&secret.payload, &outer.signature),
        Err(SignatureError::Invalid)
    );
}
