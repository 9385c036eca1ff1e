//! A test PKI generator writing what Fabric's `cryptogen` writes with `EnableNodeOUs: true`, so the
//! same folders serve gossip-node and a Fabric peer (fabric-node) alike.
//!
//! What [`TestPki::generate`] makes:
//!
//! - Peer orgs `Org1MSP`, `Org2MSP`, ... (domains `org1.example.com`, ...), each with an
//!   enrollment CA `ca.<domain>`, a TLS CA `tlsca.<domain>`, its peers `peer0.<domain>`, ...
//!   (enrollment certificate `OU=peer`), an admin `Admin@<domain>` (`OU=admin`) and a client user
//!   `User1@<domain>` (`OU=client`; kept in memory, not written, not a member).
//! - The orderer org [`ORDERER_MSPID`] (domain [`ORDERER_DOMAIN`]) with its two CAs, one orderer
//!   `orderer.<domain>` (`OU=orderer`) and an admin. It signs blocks (`--orderer-signer`); it is
//!   not a gossip member.
//! - For every member a TLS certificate (server and client) for its name, its short name,
//!   `localhost` and 127.0.0.1.
//!
//! Every certificate, CA ones included, carries a low-S ECDSA signature (see [`certs`]): Fabric's
//! MSP re-encodes a high-S certificate before serializing an identity, which would change its
//! PKI-ID.
//!
//! [`TestPki::write_msp_dirs`] writes, under `root` (see [`layout`]):
//!
//! ```text
//! <domain>/msp/{cacerts/ca.<domain>-cert.pem, tlscacerts/tlsca.<domain>-cert.pem, config.yaml}
//! <domain>/peers/<peer>/msp/{signcerts/<peer>-cert.pem, keystore/priv_sk, cacerts/, tlscacerts/, config.yaml}
//! <domain>/peers/<peer>/tls/{server.crt, server.key, ca.crt}
//! <domain>/users/Admin@<domain>/{msp,tls}/...       (same layout as a peer)
//! example.com/msp/...                               (the orderer org's verifying MSP)
//! example.com/orderers/orderer.example.com/{msp,tls}/...
//! example.com/users/Admin@example.com/{msp,tls}/...
//! ```
//!
//! `config.yaml` enables NodeOUs exactly as cryptogen writes it (client, peer, admin and orderer
//! OUs, each pinned to `cacerts/ca.<domain>-cert.pem`); `admincerts/` is not written, as cryptogen
//! does not with NodeOUs.
//!
//! Keys come from the OS RNG (through rcgen and ring); validity periods come from the caller's
//! `now`, so the generator itself reads no clock.

pub mod certs;
pub mod layout;
pub mod lifecycle;

use std::path::PathBuf;

use self::certs::{Ca, LeafKind, TEN_YEARS_S, new_ca, new_leaf};
use gossip_core::crypto::msp::{MspManager, NodeOus, OrgMsp};
use gossip_core::crypto::{IdentityError, LocalSigner};

/// The orderer org's MSP id.
pub const ORDERER_MSPID: &str = "OrdererMSP";
/// The orderer org's domain.
pub const ORDERER_DOMAIN: &str = "example.com";

/// Why generating or writing a test PKI failed.
#[derive(Debug, thiserror::Error)]
pub enum TestPkiError {
    /// rcgen refused the parameters.
    #[error("generating certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// A time was out of range.
    #[error("validity period out of range")]
    Time,
    /// Every signature of a certificate had a high S (each try has a chance of one half).
    #[error("certificate {name}: no low-S signature in {tries} tries")]
    HighS {
        /// The certificate's common name.
        name: String,
        /// How many signatures were tried.
        tries: usize,
    },
    /// Writing the MSP folders failed.
    #[error("writing {path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
    /// The generated material did not load back.
    #[error("generated identity does not load: {0}")]
    Identity(#[from] IdentityError),
}

/// A certificate and its PKCS#8 private key, both PEM.
#[derive(Clone, Debug)]
pub struct CertKey {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The PKCS#8 private key, PEM (`BEGIN PRIVATE KEY`).
    pub key_pem: String,
}

/// One generated member of an org: a peer, an orderer or an admin user.
#[derive(Clone, Debug)]
pub struct TestPeer {
    /// Host or user name, e.g. `peer0.org1.example.com`, `Admin@org1.example.com`.
    pub name: String,
    /// MSP id of its org.
    pub mspid: String,
    /// Enrollment (signing) certificate and key.
    pub enrollment: CertKey,
    /// TLS certificate and key (used as both server and client certificate).
    pub tls: CertKey,
}

impl TestPeer {
    /// The member's signer, loaded from the generated PEMs.
    pub fn signer(&self) -> Result<LocalSigner, IdentityError> {
        gossip_engine::signing_key::local_signer_from_pems(
            &self.mspid,
            self.enrollment.cert_pem.as_bytes(),
            self.enrollment.key_pem.as_bytes(),
        )
    }
}

/// One generated org.
#[derive(Clone, Debug)]
pub struct TestOrg {
    /// MSP id, e.g. `Org1MSP`.
    pub mspid: String,
    /// Domain, e.g. `org1.example.com`.
    pub domain: String,
    /// Enrollment CA certificate and key.
    pub ca: CertKey,
    /// TLS CA certificate and key.
    pub tls_ca: CertKey,
    /// The org's peers (none in the orderer org).
    pub peers: Vec<TestPeer>,
    /// The org's orderers (none in a peer org).
    pub orderers: Vec<TestPeer>,
    /// The org's admin, `Admin@<domain>` (`OU=admin`).
    pub admin: TestPeer,
    /// A client user, `User1@<domain>` (`OU=client`): a valid identity of the org that is no
    /// peer (not among [`TestOrg::members`]).
    pub client: TestPeer,
}

impl TestOrg {
    /// The org's verifying MSP, NodeOUs enabled as the written `config.yaml` enables them.
    pub fn msp(&self) -> Result<OrgMsp, IdentityError> {
        let msp = OrgMsp::from_pems(
            &self.mspid,
            &[self.ca.cert_pem.as_bytes()],
            &[],
            &[self.tls_ca.cert_pem.as_bytes()],
        )?;
        let ca_der = msp.root_cas.first().map(|c| c.der.clone());
        Ok(msp.with_node_ous(NodeOus::cryptogen(ca_der)))
    }

    /// Every member: peers, orderers, then the admin.
    pub fn members(&self) -> impl Iterator<Item = &TestPeer> {
        self.peers
            .iter()
            .chain(&self.orderers)
            .chain(std::iter::once(&self.admin))
    }
}

/// A generated PKI: peer orgs `Org1MSP`, `Org2MSP`, ... with domains `org1.example.com`, ...,
/// and the orderer org [`ORDERER_MSPID`].
#[derive(Clone, Debug)]
pub struct TestPki {
    /// The peer orgs, in order.
    pub orgs: Vec<TestOrg>,
    /// The orderer org, with one orderer.
    pub orderer_org: TestOrg,
}

/// What to generate.
#[derive(Clone, Debug)]
pub struct TestPkiSpec {
    /// Peers per org, one entry per org.
    pub peers_per_org: Vec<usize>,
    /// Start of validity, Unix seconds (certificates are valid from one hour before it).
    pub now_unix_s: i64,
    /// Length of validity for member certificates, seconds (CAs get ten years).
    pub peer_validity_s: i64,
}

impl TestPkiSpec {
    /// `orgs` orgs of `peers` peers each, valid for ten years from `now_unix_s`.
    pub fn uniform(orgs: usize, peers: usize, now_unix_s: i64) -> Self {
        Self {
            peers_per_org: vec![peers; orgs],
            now_unix_s,
            peer_validity_s: TEN_YEARS_S,
        }
    }
}

/// One org's CAs and the way it issues members.
struct OrgIssuer<'a> {
    mspid: &'a str,
    domain: &'a str,
    ca: Ca,
    tls_ca: Ca,
    spec: &'a TestPkiSpec,
}

impl OrgIssuer<'_> {
    fn new<'a>(
        mspid: &'a str,
        domain: &'a str,
        spec: &'a TestPkiSpec,
    ) -> Result<OrgIssuer<'a>, TestPkiError> {
        Ok(OrgIssuer {
            mspid,
            domain,
            ca: new_ca(domain, &format!("ca.{domain}"), spec.now_unix_s)?,
            tls_ca: new_ca(domain, &format!("tlsca.{domain}"), spec.now_unix_s)?,
            spec,
        })
    }

    fn member(&self, name: String, ou: &str) -> Result<TestPeer, TestPkiError> {
        let (now, validity) = (self.spec.now_unix_s, self.spec.peer_validity_s);
        let enrollment = new_leaf(
            &self.ca,
            self.domain,
            &name,
            LeafKind::Enrollment(ou),
            now,
            validity,
        )?;
        let tls = new_leaf(
            &self.tls_ca,
            self.domain,
            &name,
            LeafKind::Tls,
            now,
            validity,
        )?;
        Ok(TestPeer {
            name,
            mspid: self.mspid.to_owned(),
            enrollment,
            tls,
        })
    }

    fn org(self, peers: Vec<TestPeer>, orderers: Vec<TestPeer>) -> Result<TestOrg, TestPkiError> {
        let admin = self.member(format!("Admin@{}", self.domain), "admin")?;
        let client = self.member(format!("User1@{}", self.domain), "client")?;
        Ok(TestOrg {
            mspid: self.mspid.to_owned(),
            domain: self.domain.to_owned(),
            ca: self.ca.cert_key,
            tls_ca: self.tls_ca.cert_key,
            peers,
            orderers,
            admin,
            client,
        })
    }
}

impl TestPki {
    /// Generates the PKI described by `spec`.
    pub fn generate(spec: &TestPkiSpec) -> Result<Self, TestPkiError> {
        let mut orgs = Vec::with_capacity(spec.peers_per_org.len());
        for (i, &peer_count) in spec.peers_per_org.iter().enumerate() {
            let domain = format!("org{}.example.com", i + 1);
            let mspid = format!("Org{}MSP", i + 1);
            let issuer = OrgIssuer::new(&mspid, &domain, spec)?;
            let peers = (0..peer_count)
                .map(|p| issuer.member(format!("peer{p}.{domain}"), "peer"))
                .collect::<Result<Vec<_>, _>>()?;
            orgs.push(issuer.org(peers, Vec::new())?);
        }
        let issuer = OrgIssuer::new(ORDERER_MSPID, ORDERER_DOMAIN, spec)?;
        let orderer = issuer.member(format!("orderer.{ORDERER_DOMAIN}"), "orderer")?;
        let orderer_org = issuer.org(Vec::new(), vec![orderer])?;
        Ok(Self { orgs, orderer_org })
    }

    /// An MSP manager that knows every peer org (the gossip members; not the orderer org).
    pub fn msp_manager(&self) -> Result<MspManager, IdentityError> {
        let mut manager = MspManager::new();
        for org in &self.orgs {
            manager.add_org(org.msp()?);
        }
        Ok(manager)
    }

    /// Every peer, org by org.
    pub fn peers(&self) -> impl Iterator<Item = &TestPeer> {
        self.orgs.iter().flat_map(|o| o.peers.iter())
    }

    /// The orderer that signs blocks.
    pub fn orderer(&self) -> &TestPeer {
        &self.orderer_org.orderers[0]
    }

    /// Every org, the peer orgs then the orderer org.
    pub fn all_orgs(&self) -> impl Iterator<Item = &TestOrg> {
        self.orgs.iter().chain(std::iter::once(&self.orderer_org))
    }
}
