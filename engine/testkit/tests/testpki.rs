use gossip_core::crypto::identity::Certificate;
use gossip_core::crypto::{Curve, Identity, der};
use gossip_testkit::testpki::layout::{
    admin_dir, ca_file, node_ous_config_yaml, orderer_dir, org_msp_dir, peer_dir,
};
use gossip_testkit::testpki::*;

const NOW_UNIX_S: i64 = 1_800_000_000;

fn pki() -> TestPki {
    TestPki::generate(&TestPkiSpec::uniform(2, 2, NOW_UNIX_S)).expect("test PKI")
}

fn every_cert(pki: &TestPki) -> Vec<(String, &str)> {
    let mut out = Vec::new();
    for org in pki.all_orgs() {
        out.push((format!("ca.{}", org.domain), org.ca.cert_pem.as_str()));
        out.push((
            format!("tlsca.{}", org.domain),
            org.tls_ca.cert_pem.as_str(),
        ));
        for m in org.members() {
            out.push((m.name.clone(), m.enrollment.cert_pem.as_str()));
            out.push((format!("{} tls", m.name), m.tls.cert_pem.as_str()));
        }
    }
    out
}

#[test]
fn every_certificate_has_a_low_s_signature() {
    // Several PKIs: a high S would show up about every other certificate.
    for _ in 0..3 {
        let pki = pki();
        let certs = every_cert(&pki);
        // Three orgs' two CAs; per peer org two peers and an admin, in the orderer org one
        // orderer and an admin; each member an enrollment and a TLS certificate.
        let members = 2 * 3 + 2;
        assert_eq!(certs.len(), 3 * 2 + members * 2);
        for (name, pem) in certs {
            let cert = Certificate::from_pem(pem.as_bytes()).expect("parses");
            der::check_low_s(&cert.signature, Curve::P256)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
}

#[test]
fn members_carry_their_node_ou_and_validate_in_their_org() {
    let pki = pki();
    for org in pki.all_orgs() {
        let msp = org.msp().expect("msp");
        let mut manager = gossip_core::crypto::MspManager::new();
        manager.add_org(msp);
        for m in org.members() {
            let id = Identity::from_pem(&m.mspid, m.enrollment.cert_pem.as_bytes()).expect("id");
            manager.validate(&id, NOW_UNIX_S).expect("validates");
            let expected = if m.name.starts_with("Admin@") {
                "admin"
            } else if m.name.starts_with("orderer.") {
                "orderer"
            } else {
                "peer"
            };
            assert_eq!(
                id.cert.organizational_units,
                vec![expected.to_owned()],
                "{}",
                m.name
            );
        }
    }
    assert_eq!(pki.orderer_org.mspid, ORDERER_MSPID);
    assert_eq!(pki.orderer().name, "orderer.example.com");
    assert!(pki.orderer_org.peers.is_empty());
    // The orderer org is not a gossip member.
    let manager = pki.msp_manager().expect("manager");
    assert!(manager.org(ORDERER_MSPID).is_none());
}

#[test]
fn folders_hold_node_ous_config_and_load_back() {
    let pki = pki();
    let dir = tempfile::tempdir().expect("tempdir");
    let root = pki.write_msp_dirs(dir.path()).expect("writes");
    for org in pki.all_orgs() {
        let config = node_ous_config_yaml(org);
        assert!(config.contains(&format!("Certificate: cacerts/{}", ca_file(org))));
        for ou in ["client", "peer", "admin", "orderer"] {
            assert!(
                config.contains(&format!("OrganizationalUnitIdentifier: {ou}\n")),
                "{ou}"
            );
        }
        let mut msp_dirs = vec![org_msp_dir(&root, org)];
        let mut members = Vec::new();
        for p in &org.peers {
            members.push((peer_dir(&root, org, p).join("msp"), p));
        }
        for o in &org.orderers {
            members.push((orderer_dir(&root, org, o).join("msp"), o));
        }
        members.push((admin_dir(&root, org).join("msp"), &org.admin));
        msp_dirs.extend(members.iter().map(|(d, _)| d.clone()));
        for msp in &msp_dirs {
            let text = std::fs::read_to_string(msp.join("config.yaml")).expect("config.yaml");
            assert_eq!(text, config);
            assert!(msp.join("cacerts").join(ca_file(org)).is_file());
            gossip_engine::msp_dir::org_msp(&org.mspid, msp).expect("verifying MSP loads");
        }
        for (msp, member) in members {
            let signer =
                gossip_engine::msp_dir::local_signer(&org.mspid, &msp).expect("signer loads");
            assert_eq!(signer.pki_id(), member.signer().expect("signer").pki_id());
            assert!(
                msp.parent()
                    .expect("parent")
                    .join("tls/server.crt")
                    .is_file()
            );
        }
    }
    let signer_dir = pki.orderer_signer_dir(&root);
    assert_eq!(
        signer_dir,
        root.join("example.com/orderers/orderer.example.com/msp")
    );
    assert_eq!(pki.orderer_org_msp_dir(&root), root.join("example.com/msp"));
}
