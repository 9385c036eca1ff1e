//! The identity lifecycle fixture (`testdata/sim_lifecycle_pki.json`), committed like the main
//! one so PKI-IDs replay: org `Org5MSP` (index [`LIFECYCLE_ORG`]) with four long-lived peers, a
//! short-lived certificate and a renewed certificate for peer 3's host, and a CRL of the org's CA
//! revoking peer 3's long-lived certificate.

use gossip_engine::crypto::crl::Crl;
use gossip_engine::crypto::{IdentityError, MspManager, OrgMsp};
use gossip_testkit::testpki::certs::TEN_YEARS_S;
use gossip_testkit::testpki::{TestPki, TestPkiSpec};
use serde::{Deserialize, Serialize};

use super::{FixtureOrg, FixturePeer, SIM_EPOCH_UNIX_S};

/// The org index of the lifecycle org in [`super::SimPki`].
pub const LIFECYCLE_ORG: usize = 4;
/// Fixture peers 0..=3: long-lived, `peer<k>.org5.example.com`.
pub const LONG_LIVED_LEN: usize = 4;
/// Fixture peer 4: peer 3's host with a certificate ending [`SHORT_VALIDITY_S`] after the epoch.
pub const SHORT_LIVED: usize = 4;
/// Fixture peer 5: peer 3's host with a renewed (new key, ten years) certificate.
pub const RENEWED: usize = 5;
/// The fixture peer the CRL revokes.
pub const REVOKED: usize = 3;
/// Validity of the short-lived certificate after the sim epoch, seconds.
pub const SHORT_VALIDITY_S: i64 = 120;

pub(super) const LIFECYCLE_JSON: &str = include_str!("../../testdata/sim_lifecycle_pki.json");

/// The lifecycle org and its CRL.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct LifecycleFixture {
    pub(super) org: FixtureOrg,
    /// A CRL (PEM) of the org's CA revoking fixture peer [`REVOKED`].
    pub(super) crl_pem: String,
}

impl LifecycleFixture {
    /// The org's MSP with the CRL.
    pub(super) fn revoking_msp(&self) -> Result<OrgMsp, IdentityError> {
        OrgMsp::from_pems(
            &self.org.mspid,
            &[self.org.ca_cert_pem.as_bytes()],
            &[],
            &[],
        )?
        .with_crls(Crl::from_pem_or_der(self.crl_pem.as_bytes())?)
    }
}

/// `base` with the lifecycle org's MSP replaced by the one with the CRL.
pub(super) fn with_crl(
    base: &MspManager,
    fixture: &LifecycleFixture,
) -> Result<MspManager, IdentityError> {
    let mut msp = base.clone();
    msp.add_org(fixture.revoking_msp()?);
    Ok(msp)
}

/// Generates a fresh lifecycle fixture (keys from the OS RNG) as JSON.
pub fn generate_lifecycle_fixture_json() -> String {
    let mut spec = TestPkiSpec::uniform(0, 0, SIM_EPOCH_UNIX_S);
    spec.peers_per_org = vec![0, 0, 0, 0, LONG_LIVED_LEN];
    let pki = TestPki::generate(&spec).expect("generate test PKI");
    let org = &pki.orgs[LIFECYCLE_ORG];
    let host = &org.peers[3].name;
    let short = org
        .issue_peer(host, SIM_EPOCH_UNIX_S, SHORT_VALIDITY_S)
        .expect("short-lived");
    let renewed = org
        .issue_peer(host, SIM_EPOCH_UNIX_S, TEN_YEARS_S)
        .expect("renewed");
    let crl_pem = org
        .crl_pem(&[&org.peers[REVOKED]], SIM_EPOCH_UNIX_S)
        .expect("crl");
    let peers = org
        .peers
        .iter()
        .chain([&short, &renewed])
        .map(|p| FixturePeer {
            name: p.name.clone(),
            cert_pem: p.enrollment.cert_pem.clone(),
            key_pem: p.enrollment.key_pem.clone(),
        })
        .collect();
    let fixture = LifecycleFixture {
        org: FixtureOrg {
            mspid: org.mspid.clone(),
            ca_cert_pem: org.ca.cert_pem.clone(),
            peers,
        },
        crl_pem,
    };
    serde_json::to_string(&fixture).expect("serialize fixture")
}
