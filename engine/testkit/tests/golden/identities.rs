//! Identities: serialized identities, PKI-IDs, channel MACs and TLS certificate hashes recompute to
//! the listed values, every hex string the vectors mark as a known value matches, and every peer
//! certificate validates against its own org's CA only, and only within its validity.

use bytes::Bytes;
use gossip_engine::crypto::identity::serialize_identity;
use gossip_engine::crypto::{
    Certificate, Identity, IdentityError, MspManager, OrgMsp, channel_mac, pki_id_of, tls_cert_hash,
};

use super::assert_no_failures;
use super::vectors::{
    CHANNEL, NOW_2027_UNIX_S, PeerIdentity, identities, identity, read, resolve, vectors,
};

fn pem_der(relative: &str) -> Vec<u8> {
    pem::parse(read(relative))
        .unwrap_or_else(|e| panic!("{relative}: {e}"))
        .into_contents()
}

fn golden_identity(peer: &PeerIdentity) -> Identity {
    Identity::from_pem(&peer.mspid, &read(&peer.cert_file)).expect("golden identity parses")
}

/// The verifying MSP of one golden org, from its enrollment and TLS CA files.
fn org_msp(mspid: &str) -> OrgMsp {
    let peer = identities()
        .values()
        .find(|p| p.mspid == mspid)
        .expect("org has a peer");
    OrgMsp::from_pems(
        mspid,
        &[&read(&peer.ca_cert_file)],
        &[],
        &[&read(&peer.tls_ca_cert_file)],
    )
    .expect("org MSP")
}

fn manager(mspids: &[&str]) -> MspManager {
    let mut manager = MspManager::new();
    for mspid in mspids {
        manager.add_org(org_msp(mspid));
    }
    manager
}

#[test]
fn identities_recompute_to_the_listed_values() {
    assert_eq!(identities().len(), 3);
    for (name, peer) in identities() {
        let pem_text = read(&peer.cert_file);
        let serialized = serialize_identity(&peer.mspid, &pem_text);
        assert_eq!(
            hex::encode(&serialized),
            peer.serialized_identity_hex,
            "{name}: serialized identity"
        );
        let parsed = Identity::from_serialized(serialized.clone()).expect("parses");
        assert_eq!(parsed.mspid, peer.mspid);
        assert_eq!(
            parsed.id_bytes[..],
            pem_text[..],
            "{name}: id_bytes is the PEM file, newline included"
        );
        assert_eq!(parsed.pki_id.to_hex(), peer.pki_id_hex, "{name}: PKI-ID");
        assert_eq!(pki_id_of(&peer.mspid, &pem_text).to_hex(), peer.pki_id_hex);
        // The PKI-ID hashes the PEM text, not the DER.
        assert_ne!(
            pki_id_of(&peer.mspid, &pem_der(&peer.cert_file)).to_hex(),
            peer.pki_id_hex
        );
        assert_eq!(
            hex::encode(&parsed.cert.der),
            peer.cert_der_hex,
            "{name}: DER"
        );
        assert_eq!(
            hex::encode(parsed.public_key().sec1()),
            peer.public_key_sec1_uncompressed_hex
        );
        assert_eq!(
            hex::encode(channel_mac(&parsed.pki_id, CHANNEL.as_bytes())),
            peer.channel_mac_mychannel_hex
        );
        assert_eq!(
            hex::encode(tls_cert_hash(&pem_der(&peer.tls_cert_file))),
            peer.tls_cert_hash_hex,
            "{name}: TLS"
        );
        assert_eq!(
            parsed.cert.organizational_units,
            vec!["peer".to_owned()],
            "{name}: NodeOU"
        );
        assert!(
            peer.endpoint.starts_with(name.as_str()),
            "{name}: endpoint {}",
            peer.endpoint
        );
    }
}

/// What a `known_values` description says a hex string is, computed from `identities.json`.
fn known_value(description: &str) -> Option<String> {
    let (kind, peer) = description.rsplit_once(" of ")?;
    let peer = peer.strip_suffix(" for mychannel").unwrap_or(peer);
    let id = identities().get(peer)?;
    Some(match kind {
        "pki_id" => id.pki_id_hex.clone(),
        "serialized_identity" => id.serialized_identity_hex.clone(),
        "tls_cert_hash" => id.tls_cert_hash_hex.clone(),
        "channel_MAC" => id.channel_mac_mychannel_hex.clone(),
        _ => return None,
    })
}

/// `known_values` entries of `data_msg` that name paths of `state_response` (`fields.payloads[0]...`)
/// and so resolve nowhere in `data_msg`: a defect of the vector file, pinned here so any change to
/// it is noticed. The same facts are checked on `state_response` and by `block_5_matches_its_facts`.
const UNRESOLVABLE_KNOWN_VALUES: [(&str, &str); 2] = [
    ("data_msg", "fields.payloads[0].data"),
    ("data_msg", "fields.payloads[0].private_data[0]"),
];

#[test]
fn known_values_in_messages_match_the_identities() {
    let mut failures = Vec::new();
    let mut unresolvable = Vec::new();
    let mut identity_values = 0;
    for v in vectors() {
        for (path, description) in v.known_values() {
            let Some(actual) = resolve(&v.raw, &path).and_then(|x| x.as_str()) else {
                unresolvable.push((v.name.as_str(), path.clone()));
                continue;
            };
            if let Some(expected) = known_value(&description) {
                identity_values += 1;
                if actual != expected {
                    failures.push(format!("{}: {path} is not the {description}", v.name));
                }
            } else if !description.contains("marshaled")
                && !description.contains("private write set")
            {
                failures.push(format!(
                    "{}: {path}: unrecognised description {description:?}",
                    v.name
                ));
            }
        }
    }
    println!("{identity_values} identity-derived values in messages match identities.json");
    assert_no_failures("known values", &failures);
    let pinned: Vec<(&str, String)> = UNRESOLVABLE_KNOWN_VALUES
        .iter()
        .map(|(n, p)| (*n, (*p).to_owned()))
        .collect();
    assert_eq!(unresolvable, pinned);
    assert!(
        identity_values >= 30,
        "only {identity_values} identity values"
    );
}

#[test]
fn channel_macs_in_state_messages_recompute() {
    for (name, signer) in [
        ("state_info", "peer0.org1.example.com"),
        ("state_info_pull_req", "peer1.org1.example.com"),
    ] {
        let v = super::vectors::vector(name);
        let pki = Identity::from_pem(&identity(signer).mspid, &read(&identity(signer).cert_file))
            .unwrap()
            .pki_id;
        let mac = hex::encode(channel_mac(&pki, CHANNEL.as_bytes()));
        assert_eq!(
            v.fields["channel_MAC"].as_str(),
            Some(mac.as_str()),
            "{name}"
        );
        assert_eq!(
            v.aux_str("channel_mac_hex").as_deref(),
            Some(mac.as_str()),
            "{name}"
        );
    }
}

#[test]
fn peer_certificates_validate_against_their_own_org_only() {
    let both = manager(&["Org1MSP", "Org2MSP"]);
    for (name, peer) in identities() {
        let id = golden_identity(peer);
        both.validate(&id, NOW_2027_UNIX_S)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(both.org_of(&id), Some(peer.mspid.as_str()));
        let other = if peer.mspid == "Org1MSP" {
            "Org2MSP"
        } else {
            "Org1MSP"
        };
        // Only the other org is known: the identity's MSP is unknown.
        assert_eq!(
            manager(&[other]).validate(&id, NOW_2027_UNIX_S),
            Err(IdentityError::UnknownMsp(peer.mspid.clone()))
        );
        // The same certificate claiming the other org is not issued by that org's CA.
        let claimed = Identity::from_pem(other, &read(&peer.cert_file)).unwrap();
        assert_eq!(
            both.validate(&claimed, NOW_2027_UNIX_S),
            Err(IdentityError::UnknownIssuer),
            "{name}"
        );
        // An MSP under the right name but with the other org's CA rejects it too.
        let mut wrong = org_msp(other);
        wrong.mspid = peer.mspid.clone();
        let mut impostor = MspManager::new();
        impostor.add_org(wrong);
        assert_eq!(
            impostor.validate(&id, NOW_2027_UNIX_S),
            Err(IdentityError::UnknownIssuer),
            "{name}"
        );
        // Validity: cryptogen's ten years from 2026-11-21.
        let not_after = id.cert.not_after_unix_s;
        assert!(not_after > NOW_2027_UNIX_S);
        both.validate(&id, not_after)
            .unwrap_or_else(|e| panic!("{name} at its last second: {e}"));
        assert_eq!(
            both.validate(&id, not_after + 1),
            Err(IdentityError::Expired {
                not_after_unix_s: not_after
            })
        );
        let before = id.cert.not_before_unix_s - 1;
        assert!(
            matches!(
                both.validate(&id, before),
                Err(IdentityError::NotYetValid { .. })
            ),
            "{name}"
        );
    }
}

#[test]
fn tls_certificates_chain_to_their_tls_ca_not_the_enrollment_ca() {
    for (name, peer) in identities() {
        let tls = Certificate::from_pem(&read(&peer.tls_cert_file)).expect("TLS cert parses");
        let tls_ca = Certificate::from_pem(&read(&peer.tls_ca_cert_file)).expect("TLS CA parses");
        let ca = Certificate::from_pem(&read(&peer.ca_cert_file)).expect("CA parses");
        tls.verify_signed_by(&tls_ca)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            tls.verify_signed_by(&ca).is_err(),
            "{name}: TLS cert must not chain to the enrollment CA"
        );
        assert!(org_msp(&peer.mspid).tls_root_cas_der.contains(&tls_ca.der));
        assert!(ca.is_ca && tls_ca.is_ca && !tls.is_ca);
    }
}

#[test]
fn golden_keys_sign_what_their_certificates_verify() {
    let message = Bytes::from_static(b"golden signer round trip");
    for (name, peer) in identities() {
        let signer = gossip_engine::signing_key::local_signer_from_pems(
            &peer.mspid,
            &read(&peer.cert_file),
            &read(&peer.private_key_file),
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(signer.pki_id().to_hex(), peer.pki_id_hex);
        let signature = signer.sign(&message).expect("signs");
        golden_identity(peer)
            .public_key()
            .verify(&message, &signature)
            .expect("verifies");
        for (other, other_peer) in identities().iter().filter(|(o, _)| *o != name) {
            let got = golden_identity(other_peer)
                .public_key()
                .verify(&message, &signature);
            assert!(
                got.is_err(),
                "{name}'s signature verifies under {other}'s key"
            );
        }
    }
    // A key that does not belong to the certificate is refused.
    let a = identity("peer0.org1.example.com");
    let b = identity("peer1.org1.example.com");
    assert!(
        gossip_engine::signing_key::local_signer_from_pems(
            &a.mspid,
            &read(&a.cert_file),
            &read(&b.private_key_file)
        )
        .is_err()
    );
}

#[test]
fn a_ca_certificate_is_not_a_valid_identity() {
    // Fabric's MSP refuses to validate a certificate with Basic Constraints CA=true as an identity.
    let both = manager(&["Org1MSP", "Org2MSP"]);
    for peer in identities().values() {
        let ca = Identity::from_pem(&peer.mspid, &read(&peer.ca_cert_file))
            .expect("CA certificate parses");
        assert!(ca.cert.is_ca);
        let got = both.validate(&ca, NOW_2027_UNIX_S);
        assert!(
            matches!(&got, Err(IdentityError::BadCertificate(why)) if why.contains("CA=true")),
            "{}: {got:?}",
            peer.ca_cert_file
        );
    }
}
