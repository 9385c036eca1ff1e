//! Writing a [`TestPki`] in cryptogen's folder layout (see the module doc of [`super`]), and the
//! paths of what it writes.

use std::path::{Path, PathBuf};

use super::{TestOrg, TestPeer, TestPki, TestPkiError};

/// The file name of an org's enrollment CA certificate in `cacerts/`.
pub fn ca_file(org: &TestOrg) -> String {
    format!("ca.{}-cert.pem", org.domain)
}

/// The file name of an org's TLS CA certificate in `tlscacerts/`.
pub fn tlsca_file(org: &TestOrg) -> String {
    format!("tlsca.{}-cert.pem", org.domain)
}

/// `<root>/<domain>/msp`: the org's verifying MSP (`--org-msp`, `--orderer-msp`).
pub fn org_msp_dir(root: &Path, org: &TestOrg) -> PathBuf {
    root.join(&org.domain).join("msp")
}

/// `<root>/<domain>/peers/<name>`: a peer's folder (`msp/`, `tls/`).
pub fn peer_dir(root: &Path, org: &TestOrg, peer: &TestPeer) -> PathBuf {
    root.join(&org.domain).join("peers").join(&peer.name)
}

/// `<root>/<domain>/orderers/<name>`: an orderer's folder (`msp/`, `tls/`).
pub fn orderer_dir(root: &Path, org: &TestOrg, orderer: &TestPeer) -> PathBuf {
    root.join(&org.domain).join("orderers").join(&orderer.name)
}

/// `<root>/<domain>/users/Admin@<domain>`: the admin's folder (`msp/`, `tls/`).
pub fn admin_dir(root: &Path, org: &TestOrg) -> PathBuf {
    root.join(&org.domain).join("users").join(&org.admin.name)
}

/// The NodeOUs `config.yaml` cryptogen writes into every MSP folder of an org.
pub fn node_ous_config_yaml(org: &TestOrg) -> String {
    let ca = ca_file(org);
    let mut text = String::from("NodeOUs:\n  Enable: true\n");
    for (key, ou) in [
        ("ClientOUIdentifier", "client"),
        ("PeerOUIdentifier", "peer"),
        ("AdminOUIdentifier", "admin"),
        ("OrdererOUIdentifier", "orderer"),
    ] {
        text.push_str(&format!(
            "  {key}:\n    Certificate: cacerts/{ca}\n    OrganizationalUnitIdentifier: {ou}\n"
        ));
    }
    text
}

impl TestPki {
    /// Writes every org, the orderer org included, under `root` in cryptogen's layout. Returns
    /// the root.
    pub fn write_msp_dirs(&self, root: &Path) -> Result<PathBuf, TestPkiError> {
        for org in self.all_orgs() {
            write_verifying_msp(&org_msp_dir(root, org), org)?;
            for peer in &org.peers {
                write_member(&peer_dir(root, org, peer), org, peer)?;
            }
            for orderer in &org.orderers {
                write_member(&orderer_dir(root, org, orderer), org, orderer)?;
            }
            write_member(&admin_dir(root, org), org, &org.admin)?;
        }
        Ok(root.to_path_buf())
    }

    /// The orderer org's verifying MSP folder under `root`, for `--orderer-msp`.
    pub fn orderer_org_msp_dir(&self, root: &Path) -> PathBuf {
        org_msp_dir(root, &self.orderer_org)
    }

    /// The orderer's MSP folder under `root`, for `--orderer-signer`.
    pub fn orderer_signer_dir(&self, root: &Path) -> PathBuf {
        orderer_dir(root, &self.orderer_org, self.orderer()).join("msp")
    }
}

/// `cacerts/`, `tlscacerts/` and `config.yaml`.
fn write_verifying_msp(msp: &Path, org: &TestOrg) -> Result<(), TestPkiError> {
    write(&msp.join("cacerts").join(ca_file(org)), &org.ca.cert_pem)?;
    write(
        &msp.join("tlscacerts").join(tlsca_file(org)),
        &org.tls_ca.cert_pem,
    )?;
    write(&msp.join("config.yaml"), &node_ous_config_yaml(org))
}

/// `msp/` (the verifying part plus `signcerts/` and `keystore/`) and `tls/`.
fn write_member(dir: &Path, org: &TestOrg, member: &TestPeer) -> Result<(), TestPkiError> {
    let msp = dir.join("msp");
    write_verifying_msp(&msp, org)?;
    write(
        &msp.join("signcerts")
            .join(format!("{}-cert.pem", member.name)),
        &member.enrollment.cert_pem,
    )?;
    write(&msp.join("keystore/priv_sk"), &member.enrollment.key_pem)?;
    write(&dir.join("tls/server.crt"), &member.tls.cert_pem)?;
    write(&dir.join("tls/server.key"), &member.tls.key_pem)?;
    write(&dir.join("tls/ca.crt"), &org.tls_ca.cert_pem)
}

fn write(path: &Path, text: &str) -> Result<(), TestPkiError> {
    let io = |source| TestPkiError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    std::fs::write(path, text).map_err(io)
}
