//! Loading MSP folders in Fabric's layout: a verifying MSP (`cacerts/`, `intermediatecerts/`,
//! `tlscacerts/`, `crls/`, `config.yaml` with its NodeOUs) and a local signing MSP (`signcerts/`,
//! `keystore/`). These are the library's only file reads; the core takes the parsed material
//! ([`OrgMsp::from_pems`], [`OrgMsp::with_node_ous`], [`LocalSigner::from_pems`]).

use std::path::{Path, PathBuf};

use bytes::Bytes;
use gossip_core::crypto::crl::Crl;
use gossip_core::crypto::{
    Certificate, IdentityError, LocalSigner, NodeOuIdentifier, NodeOus, OrgMsp,
};
use serde::Deserialize;

/// `config.yaml` of an MSP folder: only `NodeOUs` is read.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct MspConfigYaml {
    #[serde(rename = "NodeOUs")]
    node_ous: Option<NodeOusYaml>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct NodeOusYaml {
    #[serde(default)]
    enable: bool,
    #[serde(rename = "ClientOUIdentifier")]
    client: Option<OuYaml>,
    #[serde(rename = "PeerOUIdentifier")]
    peer: Option<OuYaml>,
    #[serde(rename = "AdminOUIdentifier")]
    admin: Option<OuYaml>,
    #[serde(rename = "OrdererOUIdentifier")]
    orderer: Option<OuYaml>,
}

#[derive(Debug, Deserialize)]
struct OuYaml {
    #[serde(rename = "Certificate", default)]
    certificate: String,
    #[serde(rename = "OrganizationalUnitIdentifier")]
    ou: String,
}

/// The NodeOUs of `dir/config.yaml`: `None` when the file is absent or does not enable them.
/// A role's `Certificate` is a path relative to `dir`.
pub fn node_ous(dir: &Path) -> Result<Option<NodeOus>, IdentityError> {
    let path = dir.join("config.yaml");
    if !path.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path).map_err(|e| io_error(&path, e))?;
    let config: MspConfigYaml = serde_norway::from_str(&text)
        .map_err(|e| IdentityError::Io(format!("{}: {e}", path.display())))?;
    let Some(yaml) = config.node_ous.filter(|n| n.enable) else {
        return Ok(None);
    };
    let id = |ou: Option<OuYaml>| -> Result<Option<NodeOuIdentifier>, IdentityError> {
        let Some(ou) = ou else { return Ok(None) };
        let certifier_der = if ou.certificate.is_empty() {
            None
        } else {
            let cert_path = dir.join(&ou.certificate);
            let pem_text = std::fs::read(&cert_path).map_err(|e| io_error(&cert_path, e))?;
            Some(certifier_der(&pem_text)?)
        };
        Ok(Some(NodeOuIdentifier {
            ou: ou.ou,
            certifier_der,
        }))
    };
    Ok(Some(NodeOus {
        client: id(yaml.client)?,
        peer: id(yaml.peer)?,
        admin: id(yaml.admin)?,
        orderer: id(yaml.orderer)?,
    }))
}

/// The DER of the first certificate of a PEM text.
fn certifier_der(pem_text: &[u8]) -> Result<Bytes, IdentityError> {
    let block = pem::parse_many(pem_text)
        .map_err(|e| IdentityError::BadPem(e.to_string()))?
        .into_iter()
        .next()
        .ok_or_else(|| IdentityError::BadPem("no certificate".into()))?;
    Ok(Certificate::from_der(Bytes::copy_from_slice(block.contents()))?.der)
}

fn io_error(path: &Path, e: std::io::Error) -> IdentityError {
    IdentityError::Io(format!("{}: {e}", path.display()))
}

/// The regular files of `dir`, sorted by name.
fn files_sorted(dir: &Path) -> Result<Vec<PathBuf>, IdentityError> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| io_error(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    Ok(files)
}

/// Every file of `dir/sub`, read; none when the folder is absent.
fn read_all(dir: &Path, sub: &str) -> Result<Vec<Vec<u8>>, IdentityError> {
    let path = dir.join(sub);
    if !path.is_dir() {
        return Ok(Vec::new());
    }
    files_sorted(&path)?
        .iter()
        .map(|p| std::fs::read(p).map_err(|e| io_error(p, e)))
        .collect()
}

/// Loads an org's verifying MSP folder: `cacerts/`, `intermediatecerts/` (optional),
/// `tlscacerts/` (optional) and `crls/` (optional: X.509 CRLs, PEM or DER, each signed by a CA of
/// the org), every file in each, and the NodeOUs of `config.yaml` (optional).
pub fn org_msp(mspid: &str, dir: &Path) -> Result<OrgMsp, IdentityError> {
    let (roots, inter, tls) = (
        read_all(dir, "cacerts")?,
        read_all(dir, "intermediatecerts")?,
        read_all(dir, "tlscacerts")?,
    );
    if roots.is_empty() {
        return Err(IdentityError::Io(format!(
            "{}: no certificate in cacerts/",
            dir.display()
        )));
    }
    fn refs(v: &[Vec<u8>]) -> Vec<&[u8]> {
        v.iter().map(Vec::as_slice).collect()
    }
    let msp = OrgMsp::from_pems(mspid, &refs(&roots), &refs(&inter), &refs(&tls))?;
    let mut crls = Vec::new();
    for file in read_all(dir, "crls")? {
        crls.extend(Crl::from_pem_or_der(&file)?);
    }
    let msp = msp.with_crls(crls)?;
    Ok(match node_ous(dir)? {
        Some(node_ous) => msp.with_node_ous(node_ous),
        None => msp,
    })
}

/// Loads a peer's local MSP folder: the first certificate in `signcerts/` and the first key in
/// `keystore/` (by file name).
pub fn local_signer(mspid: &str, dir: &Path) -> Result<LocalSigner, IdentityError> {
    let first = |sub: &str| -> Result<Vec<u8>, IdentityError> {
        let path = dir.join(sub);
        let files = files_sorted(&path)?;
        let first = files
            .first()
            .ok_or_else(|| IdentityError::Io(format!("{}: empty", path.display())))?;
        std::fs::read(first).map_err(|e| io_error(first, e))
    };
    crate::signing_key::local_signer_from_pems(mspid, &first("signcerts")?, &first("keystore")?)
}
