//! Org membership: the CA roots of each org (an MSP), identity validation against them (chain and
//! expiry), and org lookup by identity (Fabric's `SecurityAdvisor.OrgByPeerIdentity`).

use std::collections::HashMap;

use bytes::Bytes;

use super::IdentityError;
use super::identity::{Certificate, Identity};

/// One org's verifying MSP: its enrollment CA roots and intermediates, and its TLS CA roots.
#[derive(Clone, Debug)]
pub struct OrgMsp {
    /// The MSP id, e.g. `Org1MSP`.
    pub mspid: String,
    /// Self-signed enrollment CA certificates (`cacerts/`).
    pub root_cas: Vec<Certificate>,
    /// Intermediate enrollment CAs (`intermediatecerts/`).
    pub intermediate_cas: Vec<Certificate>,
    /// TLS CA certificates, DER (`tlscacerts/`): trust anchors for gossip's mutual TLS.
    pub tls_root_cas_der: Vec<Bytes>,
}

/// The longest chain accepted from a leaf to a root (leaf, intermediates, root).
const CHAIN_LEN_MAX: usize = 5;

impl OrgMsp {
    /// Builds an org MSP from PEM texts (each may hold several certificates).
    pub fn from_pems(
        mspid: &str,
        root_ca_pems: &[&[u8]],
        intermediate_pems: &[&[u8]],
        tls_root_ca_pems: &[&[u8]],
    ) -> Result<Self, IdentityError> {
        let certs = |pems: &[&[u8]]| -> Result<Vec<Certificate>, IdentityError> {
            let mut out = Vec::new();
            for pem_text in pems {
                for block in
                    pem::parse_many(pem_text).map_err(|e| IdentityError::BadPem(e.to_string()))?
                {
                    out.push(Certificate::from_der(Bytes::copy_from_slice(
                        block.contents(),
                    ))?);
                }
            }
            Ok(out)
        };
        Ok(Self {
            mspid: mspid.to_owned(),
            root_cas: certs(root_ca_pems)?,
            intermediate_cas: certs(intermediate_pems)?,
            tls_root_cas_der: certs(tls_root_ca_pems)?
                .into_iter()
                .map(|c| c.der)
                .collect(),
        })
    }

    /// Validates a certificate of this org: it is not a CA certificate, it chains to a root through
    /// the intermediates, and every certificate on the chain is within its validity period at
    /// `now_unix_s`.
    fn validate_chain(&self, leaf: &Certificate, now_unix_s: i64) -> Result<(), IdentityError> {
        if leaf.is_ca {
            // Fabric's MSP refuses CA certificates as identities (a root would otherwise validate
            // as "signed by itself").
            return Err(IdentityError::BadCertificate(
                "an X509 certificate with Basic Constraint CA=true cannot be used as an identity"
                    .into(),
            ));
        }
        leaf.check_validity(now_unix_s)?;
        let mut current = leaf.clone();
        for _ in 0..CHAIN_LEN_MAX {
            if let Some(root) = self
                .root_cas
                .iter()
                .find(|r| r.subject_raw == current.issuer_raw)
            {
                current.verify_signed_by(root)?;
                return root.check_validity(now_unix_s);
            }
            let Some(parent) = self
                .intermediate_cas
                .iter()
                .find(|c| c.subject_raw == current.issuer_raw)
            else {
                return Err(IdentityError::UnknownIssuer);
            };
            current.verify_signed_by(parent)?;
            parent.check_validity(now_unix_s)?;
            current = parent.clone();
        }
        Err(IdentityError::UnknownIssuer)
    }
}

/// The verifying MSPs of every org this peer knows (its own and those of its channels).
#[derive(Clone, Debug, Default)]
pub struct MspManager {
    orgs: HashMap<String, OrgMsp>,
}

impl MspManager {
    /// An empty manager; add orgs with [`MspManager::add_org`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces an org.
    pub fn add_org(&mut self, org: OrgMsp) {
        self.orgs.insert(org.mspid.clone(), org);
    }

    /// The org with this MSP id.
    pub fn org(&self, mspid: &str) -> Option<&OrgMsp> {
        self.orgs.get(mspid)
    }

    /// Every known org.
    pub fn orgs(&self) -> impl Iterator<Item = &OrgMsp> {
        self.orgs.values()
    }

    /// Validates an identity (Fabric's `ValidateIdentity`): its MSP is known, its certificate chains
    /// to that MSP's roots, and nothing on the chain is expired or not yet valid at `now_unix_s`.
    pub fn validate(&self, identity: &Identity, now_unix_s: i64) -> Result<(), IdentityError> {
        let org = self
            .orgs
            .get(&identity.mspid)
            .ok_or_else(|| IdentityError::UnknownMsp(identity.mspid.clone()))?;
        org.validate_chain(&identity.cert, now_unix_s)
    }

    /// The org of a validated identity (Fabric's `OrgByPeerIdentity`): its MSP id when that MSP
    /// is known, `None` otherwise.
    pub fn org_of<'a>(&self, identity: &'a Identity) -> Option<&'a str> {
        self.orgs
            .contains_key(&identity.mspid)
            .then_some(identity.mspid.as_str())
    }

    /// DER of every org's TLS CA certificates: the trust anchors for gossip TLS.
    pub fn tls_roots_der(&self) -> impl Iterator<Item = &Bytes> {
        self.orgs.values().flat_map(|o| o.tls_root_cas_der.iter())
    }
}
