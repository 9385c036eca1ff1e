//! Org membership: the CA roots of each org (an MSP), identity validation against them (chain,
//! expiry, NodeOU roles), and org lookup by identity (Fabric's `SecurityAdvisor.OrgByPeerIdentity`).
//!
//! NodeOUs (an MSP's `config.yaml`, `NodeOUs.Enable: true`) follow Fabric's MSP v1.4.3 rules
//! (`validateIdentityOUsV142`): a valid identity carries exactly one of the org's role OUs
//! (client, peer, admin, orderer), and a role OU pinned to a CA certificate must have been issued
//! by that CA. Fabric names the pinned CA by a hash of its chain; here the pinned certificate must
//! be the identity's direct issuer, which is the same test for the chains cryptogen and Fabric CA
//! make. Fabric's older `OrganizationalUnitIdentifiers` list is not read.
//!
//! Gossip is stricter than Fabric's `ValidateIdentity` in one point ([`MspManager::validate_peer`]):
//! an identity presented as a gossip peer must have the `peer` role when its org enables NodeOUs;
//! Fabric's gossip takes a client certificate of a trusted CA as a peer.

use std::collections::HashMap;

use bytes::Bytes;

use super::IdentityError;
use super::crl::Crl;
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
    /// The NodeOU roles (`config.yaml`); `None`: NodeOUs disabled.
    pub node_ous: Option<NodeOus>,
    /// Revocation lists (`crls/`), each signed by a CA of this org ([`OrgMsp::with_crls`]).
    pub crls: Vec<Crl>,
}

/// A NodeOU role (Fabric's `MSPRole_CLIENT`, `PEER`, `ADMIN`, `ORDERER`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NodeRole {
    /// An application client.
    Client,
    /// A peer.
    Peer,
    /// An org admin.
    Admin,
    /// An orderer.
    Orderer,
}

impl std::fmt::Display for NodeRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NodeRole::Client => "client",
            NodeRole::Peer => "peer",
            NodeRole::Admin => "admin",
            NodeRole::Orderer => "orderer",
        })
    }
}

/// One role's OU (`config.yaml`'s `PeerOUIdentifier` and its kind).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeOuIdentifier {
    /// `OrganizationalUnitIdentifier`, e.g. `peer`.
    pub ou: String,
    /// `Certificate`, DER: the CA that must have issued identities of this role; `None`: any CA
    /// of the org.
    pub certifier_der: Option<Bytes>,
}

/// An org's NodeOU roles; a role left `None` is not recognised (as in Fabric's `config.yaml`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeOus {
    /// `ClientOUIdentifier`.
    pub client: Option<NodeOuIdentifier>,
    /// `PeerOUIdentifier`.
    pub peer: Option<NodeOuIdentifier>,
    /// `AdminOUIdentifier`.
    pub admin: Option<NodeOuIdentifier>,
    /// `OrdererOUIdentifier`.
    pub orderer: Option<NodeOuIdentifier>,
}

impl NodeOus {
    /// cryptogen's roles (`client`, `peer`, `admin`, `orderer`), each pinned to `ca_der` when
    /// given.
    pub fn cryptogen(ca_der: Option<Bytes>) -> Self {
        let id = |ou: &str| {
            Some(NodeOuIdentifier {
                ou: ou.to_owned(),
                certifier_der: ca_der.clone(),
            })
        };
        Self {
            client: id("client"),
            peer: id("peer"),
            admin: id("admin"),
            orderer: id("orderer"),
        }
    }

    fn roles(&self) -> impl Iterator<Item = (NodeRole, &NodeOuIdentifier)> {
        [
            (NodeRole::Client, &self.client),
            (NodeRole::Peer, &self.peer),
            (NodeRole::Admin, &self.admin),
            (NodeRole::Orderer, &self.orderer),
        ]
        .into_iter()
        .filter_map(|(role, id)| id.as_ref().map(|id| (role, id)))
    }

    /// The role of a certificate issued by `issuer` (Fabric's `validateIdentityOUsV142`): exactly
    /// one role OU, its certifier (if pinned) the issuer.
    pub fn role_of(
        &self,
        leaf: &Certificate,
        issuer: &Certificate,
    ) -> Result<NodeRole, IdentityError> {
        let mut found = None;
        for ou in &leaf.organizational_units {
            let Some((role, id)) = self.roles().find(|(_, id)| &id.ou == ou) else {
                continue;
            };
            if id.certifier_der.as_ref().is_some_and(|c| *c != issuer.der) {
                return Err(IdentityError::NodeOuCertifierMismatch { ou: ou.clone() });
            }
            if found.replace(role).is_some() {
                return Err(IdentityError::SeveralNodeOus);
            }
        }
        found.ok_or(IdentityError::NoNodeOu)
    }
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
            node_ous: None,
            crls: Vec::new(),
        })
    }

    /// The same org with these revocation lists, each of which a root or intermediate CA of the
    /// org must have issued and signed ([`IdentityError::BadCrl`] otherwise: Fabric's MSP
    /// refuses to set up with such a CRL).
    pub fn with_crls(mut self, crls: Vec<Crl>) -> Result<Self, IdentityError> {
        for crl in &crls {
            let signed = self
                .root_cas
                .iter()
                .chain(&self.intermediate_cas)
                .any(|ca| crl.verified_by(ca).is_ok());
            if !signed {
                return Err(IdentityError::BadCrl(format!(
                    "not signed by a CA of {}",
                    self.mspid
                )));
            }
        }
        self.crls = crls;
        Ok(self)
    }

    /// The same org with NodeOUs enabled.
    pub fn with_node_ous(mut self, node_ous: NodeOus) -> Self {
        self.node_ous = Some(node_ous);
        self
    }

    /// Validates a certificate of this org ([`Self::validate_chain`]) and, with NodeOUs enabled,
    /// returns its role.
    fn validate_leaf(
        &self,
        leaf: &Certificate,
        now_unix_s: i64,
    ) -> Result<Option<NodeRole>, IdentityError> {
        let issuer = self.validate_chain(leaf, now_unix_s)?;
        self.node_ous
            .as_ref()
            .map(|n| n.role_of(leaf, issuer))
            .transpose()
    }

    /// Validates a certificate of this org: it is not a CA certificate, it chains to a root through
    /// the intermediates, and every certificate on the chain is within its validity period at
    /// `now_unix_s`. Returns the leaf's direct issuer.
    fn validate_chain<'a>(
        &'a self,
        leaf: &Certificate,
        now_unix_s: i64,
    ) -> Result<&'a Certificate, IdentityError> {
        if leaf.is_ca {
            // Fabric's MSP refuses CA certificates as identities (a root would otherwise validate
            // as "signed by itself").
            return Err(IdentityError::BadCertificate(
                "an X509 certificate with Basic Constraint CA=true cannot be used as an identity"
                    .into(),
            ));
        }
        leaf.check_validity(now_unix_s)?;
        if self.crls.iter().any(|crl| crl.revokes(leaf)) {
            return Err(IdentityError::Revoked);
        }
        let mut current = leaf;
        let mut issuer = None;
        for _ in 0..CHAIN_LEN_MAX {
            if let Some(root) = self
                .root_cas
                .iter()
                .find(|r| r.subject_raw == current.issuer_raw)
            {
                current.verify_signed_by(root)?;
                root.check_validity(now_unix_s)?;
                return Ok(issuer.unwrap_or(root));
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
            issuer.get_or_insert(parent);
            current = parent;
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
    /// to that MSP's roots, nothing on the chain is expired or not yet valid at `now_unix_s`, and
    /// with NodeOUs enabled it has exactly one role.
    pub fn validate(&self, identity: &Identity, now_unix_s: i64) -> Result<(), IdentityError> {
        self.validate_role(identity, now_unix_s).map(drop)
    }

    /// [`Self::validate`], returning the identity's NodeOU role (`None`: its org has NodeOUs
    /// disabled).
    pub fn validate_role(
        &self,
        identity: &Identity,
        now_unix_s: i64,
    ) -> Result<Option<NodeRole>, IdentityError> {
        let org = self
            .orgs
            .get(&identity.mspid)
            .ok_or_else(|| IdentityError::UnknownMsp(identity.mspid.clone()))?;
        org.validate_leaf(&identity.cert, now_unix_s)
    }

    /// Validates an identity presented as a gossip peer (handshake, alive message, identity pull
    /// item): [`Self::validate`], and when its org enables NodeOUs with a peer OU, the `peer` role
    /// ([`IdentityError::NotAPeer`] otherwise: a client certificate is no peer).
    pub fn validate_peer(&self, identity: &Identity, now_unix_s: i64) -> Result<(), IdentityError> {
        match self.validate_role(identity, now_unix_s)? {
            Some(role)
                if role != NodeRole::Peer
                    && self
                        .orgs
                        .get(&identity.mspid)
                        .and_then(|o| o.node_ous.as_ref())
                        .is_some_and(|n| n.peer.is_some()) =>
            {
                Err(IdentityError::NotAPeer { role })
            }
            _ => Ok(()),
        }
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
