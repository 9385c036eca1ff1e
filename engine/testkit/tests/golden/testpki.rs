//! Our test-PKI generator (2 orgs × 2 peers) passes the checks the golden cryptogen PKI passes:
//! identity validation against its own org only and within validity, NodeOU `peer`, sign/verify
//! round trips through envelopes, and MSP folders that load back.

use bytes::Bytes;
use gossip_engine::crypto::Sign;
use gossip_engine::crypto::envelope::{sign_envelope, sign_secret, verify_envelope};
use gossip_engine::crypto::{
    Certificate, Identity, IdentityError, LocalSigner, SignatureError, der,
};
use gossip_proto::gossip::gossip_message::{Content, Tag};
use gossip_proto::gossip::{AliveMessage, Envelope, GossipMessage, Member, PeerTime};
use gossip_testkit::testpki::{TestPki, TestPkiSpec};
use prost::Message;

use super::vectors::NOW_2027_UNIX_S;

fn pki() -> TestPki {
    TestPki::generate(&TestPkiSpec::uniform(2, 2, NOW_2027_UNIX_S)).expect("test PKI generates")
}

fn alive_payload(signer: &LocalSigner, endpoint: &str) -> Bytes {
    GossipMessage {
        tag: Tag::Empty as i32,
        content: Some(Content::AliveMsg(AliveMessage {
            membership: Some(Member {
                endpoint: endpoint.to_owned(),
                metadata: Bytes::new(),
                pki_id: Bytes::copy_from_slice(signer.pki_id().as_bytes()),
            }),
            timestamp: Some(PeerTime {
                inc_num: 1_700_000_000_000_000_000,
                seq_num: 7,
            }),
            identity: signer.identity().serialized.clone(),
        })),
        ..Default::default()
    }
    .encode_to_vec()
    .into()
}

#[test]
fn generated_identities_validate_like_cryptogen_ones() {
    let pki = pki();
    let manager = pki.msp_manager().expect("MSP manager");
    assert_eq!(pki.orgs.len(), 2);
    assert_eq!(pki.peers().count(), 4);
    for org in &pki.orgs {
        let other = pki
            .orgs
            .iter()
            .find(|o| o.mspid != org.mspid)
            .expect("two orgs");
        for peer in &org.peers {
            let id = Identity::from_pem(&peer.mspid, peer.enrollment.cert_pem.as_bytes())
                .expect("parses");
            manager
                .validate(&id, NOW_2027_UNIX_S)
                .unwrap_or_else(|e| panic!("{}: {e}", peer.name));
            assert_eq!(
                id.cert.organizational_units,
                vec!["peer".to_owned()],
                "{}: NodeOU",
                peer.name
            );
            // Round trip through the wire form, as a remote peer would receive it.
            assert_eq!(
                Identity::from_serialized(id.serialized.clone()).expect("re-parses"),
                id
            );
            let claimed =
                Identity::from_pem(&other.mspid, peer.enrollment.cert_pem.as_bytes()).unwrap();
            assert_eq!(
                manager.validate(&claimed, NOW_2027_UNIX_S),
                Err(IdentityError::UnknownIssuer)
            );
            let not_after = id.cert.not_after_unix_s;
            assert_eq!(
                manager.validate(&id, not_after + 1),
                Err(IdentityError::Expired {
                    not_after_unix_s: not_after
                })
            );
            assert!(matches!(
                manager.validate(&id, id.cert.not_before_unix_s - 1),
                Err(IdentityError::NotYetValid { .. })
            ));
            let tls = Certificate::from_pem(peer.tls.cert_pem.as_bytes()).expect("TLS cert");
            let tls_ca = Certificate::from_pem(org.tls_ca.cert_pem.as_bytes()).expect("TLS CA");
            tls.verify_signed_by(&tls_ca)
                .expect("TLS cert chains to the TLS CA");
        }
    }
}

#[test]
fn generated_keys_sign_envelopes_that_verify_and_bind_to_their_peer() {
    let pki = pki();
    let signers: Vec<LocalSigner> = pki.peers().map(|p| p.signer().expect("signer")).collect();
    for (i, signer) in signers.iter().enumerate() {
        let payload = alive_payload(signer, &format!("peer{i}:7051"));
        let mut envelope = sign_envelope(payload.clone(), signer.key()).expect("signs");
        envelope.secret_envelope =
            Some(sign_secret("10.0.0.1:7051", signer.key()).expect("signs secret"));
        let wire = Bytes::from(envelope.encode_to_vec());
        let received = Envelope::decode(wire).expect("decodes");
        let key = signer.identity().public_key();
        verify_envelope(&received, key).expect("verifies");
        der::check_low_s(&received.signature, key.curve()).expect("signs low S");
        for (j, other) in signers.iter().enumerate().filter(|(j, _)| *j != i) {
            let got = verify_envelope(&received, other.identity().public_key());
            assert_eq!(
                got,
                Err(SignatureError::Invalid),
                "peer {i}'s envelope under peer {j}'s key"
            );
        }
        let mut tampered = received.clone();
        let mut bytes = tampered.payload.to_vec();
        *bytes.last_mut().unwrap() ^= 1;
        tampered.payload = bytes.into();
        assert_eq!(
            verify_envelope(&tampered, key),
            Err(SignatureError::Invalid)
        );
        let mut bad_secret = received.clone();
        bad_secret.secret_envelope =
            Some(sign_secret("10.0.0.1:7051", signers[(i + 1) % 4].key()).unwrap());
        assert_eq!(
            verify_envelope(&bad_secret, key),
            Err(SignatureError::SecretInvalid)
        );
    }
}

#[test]
fn written_msp_folders_load_back() {
    let pki = pki();
    let dir = tempfile::tempdir().expect("temp dir");
    let root = pki.write_msp_dirs(dir.path()).expect("writes MSP folders");
    let mut manager = gossip_engine::crypto::MspManager::new();
    for org in &pki.orgs {
        let msp = gossip_engine::msp_dir::org_msp(&org.mspid, &root.join(&org.domain).join("msp"))
            .expect("org MSP loads");
        assert_eq!(msp.root_cas.len(), 1);
        assert_eq!(msp.tls_root_cas_der.len(), 1);
        assert_eq!(
            msp.tls_root_cas_der[0],
            Certificate::from_pem(org.tls_ca.cert_pem.as_bytes())
                .unwrap()
                .der
        );
        manager.add_org(msp);
    }
    let mut loaded = 0;
    for org in &pki.orgs {
        for peer in &org.peers {
            let peer_dir = root.join(&org.domain).join("peers").join(&peer.name);
            let signer = gossip_engine::msp_dir::local_signer(&peer.mspid, &peer_dir.join("msp"))
                .expect("local MSP loads");
            assert_eq!(signer.identity(), peer.signer().unwrap().identity());
            manager
                .validate(signer.identity(), NOW_2027_UNIX_S)
                .expect("loaded identity validates");
            let message = b"loaded from disk";
            signer
                .identity()
                .public_key()
                .verify(message, &signer.sign(message).unwrap())
                .expect("round trip");
            // The peer's own MSP folder also serves as a verifying MSP for its org.
            let own = gossip_engine::msp_dir::org_msp(&peer.mspid, &peer_dir.join("msp"))
                .expect("peer MSP as org MSP");
            assert_eq!(own.root_cas, manager.org(&peer.mspid).unwrap().root_cas);
            let server = std::fs::read(peer_dir.join("tls/server.crt")).expect("tls/server.crt");
            let ca = std::fs::read(peer_dir.join("tls/ca.crt")).expect("tls/ca.crt");
            let server = Certificate::from_pem(&server).expect("server cert");
            server
                .verify_signed_by(&Certificate::from_pem(&ca).unwrap())
                .expect("TLS chain");
            let key = std::fs::read(peer_dir.join("tls/server.key")).expect("tls/server.key");
            let tls_key = gossip_engine::crypto::SigningKey::from_pkcs8_pem(&key).expect("TLS key");
            assert_eq!(
                tls_key.public_key(),
                server.public_key,
                "TLS key matches its certificate"
            );
            loaded += 1;
        }
    }
    assert_eq!(loaded, 4);
}
