//! The simulator's identities: a committed test PKI (`testdata/sim_pki.json`), so that PKI-IDs, and
//! with them every peer-selection decision, are the same in every process. A PKI generated at run
//! time would draw its keys from the OS RNG and a failing seed would not replay in another process.
//!
//! The fixture is valid from [`SIM_EPOCH_UNIX_S`] for ten years; simulated time starts at that
//! epoch, so the certificates never expire under the simulator whatever the wall clock says.

mod lifecycle;

use std::sync::{Arc, OnceLock};

use gossip_engine::crypto::{IdentityError, LocalSigner, MspManager, OrgMsp};
use gossip_testkit::testpki::{TestPki, TestPkiSpec};
use serde::{Deserialize, Serialize};

/// Simulated time zero, as Unix seconds (2025-06-15); the fixture certificates are valid from an
/// hour before it for ten years.
pub const SIM_EPOCH_UNIX_S: i64 = 1_750_000_000;

/// Peers per org in the fixture: a large first org for the dissemination bench, three small ones.
pub const FIXTURE_PEERS_PER_ORG: [usize; 4] = [128, 16, 16, 16];

const FIXTURE_JSON: &str = include_str!("../testdata/sim_pki.json");

pub use lifecycle::{
    LIFECYCLE_ORG, LONG_LIVED_LEN, RENEWED, REVOKED, SHORT_LIVED, SHORT_VALIDITY_S,
    generate_lifecycle_fixture_json,
};

/// One peer of the fixture.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FixturePeer {
    /// Host name, e.g. `peer0.org1.example.com`.
    pub name: String,
    /// Enrollment certificate, PEM.
    pub cert_pem: String,
    /// PKCS#8 key, PEM.
    pub key_pem: String,
}

/// One org of the fixture.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FixtureOrg {
    /// MSP id, e.g. `Org1MSP`.
    pub mspid: String,
    /// The enrollment CA certificate, PEM.
    pub ca_cert_pem: String,
    /// The org's peers.
    pub peers: Vec<FixturePeer>,
}

/// The loaded fixture: the MSP manager that knows every org, and each peer's signer.
#[derive(Debug)]
pub struct SimPki {
    /// Every org's verifying MSP.
    pub msp: Arc<MspManager>,
    /// `signers[org][peer]`; org [`LIFECYCLE_ORG`] is the lifecycle fixture's.
    pub signers: Vec<Vec<Arc<LocalSigner>>>,
    /// [`Self::msp`] with a CRL of the lifecycle org revoking its peer [`REVOKED`].
    pub msp_revoking: Arc<MspManager>,
}

impl SimPki {
    /// The fixture, parsed once per process.
    pub fn get() -> &'static SimPki {
        static PKI: OnceLock<SimPki> = OnceLock::new();
        PKI.get_or_init(|| {
            Self::load(FIXTURE_JSON, lifecycle::LIFECYCLE_JSON).expect("testdata fixtures load")
        })
    }

    fn load(json: &str, lifecycle_json: &str) -> Result<SimPki, FixtureError> {
        let mut orgs: Vec<FixtureOrg> = serde_json::from_str(json)?;
        let lifecycle: lifecycle::LifecycleFixture = serde_json::from_str(lifecycle_json)?;
        orgs.push(lifecycle.org.clone());
        let mut msp = MspManager::new();
        let mut signers = Vec::with_capacity(orgs.len());
        for org in &orgs {
            msp.add_org(OrgMsp::from_pems(
                &org.mspid,
                &[org.ca_cert_pem.as_bytes()],
                &[],
                &[],
            )?);
            let mut org_signers = Vec::with_capacity(org.peers.len());
            for peer in &org.peers {
                org_signers.push(Arc::new(
                    gossip_engine::signing_key::local_signer_from_pems(
                        &org.mspid,
                        peer.cert_pem.as_bytes(),
                        peer.key_pem.as_bytes(),
                    )?,
                ));
            }
            signers.push(org_signers);
        }
        Ok(SimPki {
            msp_revoking: Arc::new(lifecycle::with_crl(&msp, &lifecycle)?),
            msp: Arc::new(msp),
            signers,
        })
    }

    /// The signer of peer `peer` of org `org` (both from zero).
    pub fn signer(&self, org: usize, peer: usize) -> Arc<LocalSigner> {
        Arc::clone(&self.signers[org][peer])
    }
}

/// Why the fixture did not load.
#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    /// The JSON is malformed.
    #[error("fixture json: {0}")]
    Json(#[from] serde_json::Error),
    /// A certificate or key did not load.
    #[error("fixture identity: {0}")]
    Identity(#[from] IdentityError),
}

/// Generates a fresh fixture (keys from the OS RNG) as JSON.
pub fn generate_fixture_json() -> String {
    let mut spec = TestPkiSpec::uniform(0, 0, SIM_EPOCH_UNIX_S);
    spec.peers_per_org = FIXTURE_PEERS_PER_ORG.to_vec();
    let pki = TestPki::generate(&spec).expect("generate test PKI");
    let orgs: Vec<FixtureOrg> = pki
        .orgs
        .iter()
        .map(|org| FixtureOrg {
            mspid: org.mspid.clone(),
            ca_cert_pem: org.ca.cert_pem.clone(),
            peers: org
                .peers
                .iter()
                .map(|p| FixturePeer {
                    name: p.name.clone(),
                    cert_pem: p.enrollment.cert_pem.clone(),
                    key_pem: p.enrollment.key_pem.clone(),
                })
                .collect(),
        })
        .collect();
    serde_json::to_string(&orgs).expect("serialize fixture")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[ignore = "rewrites testdata/sim_pki.json with new keys; run by hand only"]
    fn regenerate_fixture() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/sim_pki.json");
        std::fs::write(path, generate_fixture_json()).expect("write fixture");
    }

    #[test]
    #[ignore = "rewrites testdata/sim_lifecycle_pki.json with new keys; run by hand only"]
    fn regenerate_lifecycle_fixture() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/testdata/sim_lifecycle_pki.json"
        );
        std::fs::write(path, generate_lifecycle_fixture_json()).expect("write fixture");
    }

    #[test]
    fn fixture_loads_and_validates() {
        let pki = SimPki::get();
        assert_eq!(
            pki.signers[..LIFECYCLE_ORG]
                .iter()
                .map(Vec::len)
                .collect::<Vec<_>>(),
            FIXTURE_PEERS_PER_ORG
        );
        // The lifecycle org: the short-lived certificate ends on time, the CRL revokes one peer.
        let at = |s: i64| SIM_EPOCH_UNIX_S + s;
        let short = pki.signer(LIFECYCLE_ORG, SHORT_LIVED);
        assert!(
            pki.msp
                .validate(short.identity(), at(SHORT_VALIDITY_S))
                .is_ok()
        );
        assert!(
            pki.msp
                .validate(short.identity(), at(SHORT_VALIDITY_S + 1))
                .is_err()
        );
        let revoked = pki.signer(LIFECYCLE_ORG, REVOKED);
        assert!(pki.msp.validate(revoked.identity(), at(0)).is_ok());
        assert_eq!(
            pki.msp_revoking.validate(revoked.identity(), at(0)),
            Err(IdentityError::Revoked)
        );
        let renewed = pki.signer(LIFECYCLE_ORG, RENEWED);
        assert!(pki.msp_revoking.validate(renewed.identity(), at(0)).is_ok());
        assert_ne!(renewed.pki_id(), revoked.pki_id());
        let signer = pki.signer(1, 3);
        assert_eq!(signer.identity().mspid, "Org2MSP");
        pki.msp
            .validate(signer.identity(), SIM_EPOCH_UNIX_S)
            .expect("valid at the sim epoch");
    }
}
