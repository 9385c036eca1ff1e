//! Reading the files a [`NodeConfig`] names: the local MSP (signing identity and org CAs), extra
//! org MSPs given with `--org-msp MSPID=DIR`, and the TLS certificate, key and extra roots. Every
//! error names the file and the key (or flag) that pointed at it.
//!
//! Which orgs a node trusts: its own (from `peer.mspConfigPath`) plus each `--org-msp`. A Fabric
//! peer learns the other orgs from channel configs; a standalone gossip node has no config
//! blocks, so the operator (or loadgen) lists them.

use std::path::{Path, PathBuf};

use super::{NodeConfig, NodeConfigError};
use gossip_engine::crypto::msp::MspManager;
use gossip_engine::crypto::{IdentityError, LocalSigner};

/// The PEM contents of this peer's TLS certificate and key.
#[derive(Clone, Debug)]
pub struct TlsPems {
    /// Leaf first, then any intermediates.
    pub cert_chain_pem: String,
    /// The private key.
    pub key_pem: String,
}

/// What the files hold.
#[derive(Debug)]
pub struct Material {
    /// This peer's signing identity.
    pub signer: LocalSigner,
    /// Every trusted org: the local one (with extra TLS roots) and the `--org-msp` ones.
    pub msp: MspManager,
    /// The TLS pair when TLS is on.
    pub tls: Option<TlsPems>,
}

/// One `--org-msp MSPID=DIR` argument.
pub fn parse_org_msp_arg(arg: &str) -> Result<(String, PathBuf), NodeConfigError> {
    let bad = |reason: &str| NodeConfigError::OrgMsp {
        arg: arg.to_owned(),
        reason: reason.to_owned(),
    };
    let (mspid, dir) = arg
        .split_once('=')
        .ok_or_else(|| bad("expected MSPID=DIR"))?;
    if mspid.trim().is_empty() || dir.trim().is_empty() {
        return Err(bad("expected MSPID=DIR with both parts non-empty"));
    }
    Ok((mspid.trim().to_owned(), PathBuf::from(dir.trim())))
}

fn read_file(key: &str, path: &Path) -> Result<String, NodeConfigError> {
    std::fs::read_to_string(path).map_err(|e| NodeConfigError::File {
        key: key.to_owned(),
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

fn identity_error(key: &str, path: &Path, e: IdentityError) -> NodeConfigError {
    NodeConfigError::File {
        key: key.to_owned(),
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

/// Loads everything; `org_msps` are the `--org-msp` pairs.
pub fn load(cfg: &NodeConfig, org_msps: &[(String, PathBuf)]) -> Result<Material, NodeConfigError> {
    let key = "peer.mspConfigPath";
    if !cfg.msp_dir.is_dir() {
        return Err(NodeConfigError::File {
            key: key.into(),
            path: cfg.msp_dir.clone(),
            reason: "not a folder (expected Fabric's MSP layout: signcerts/, keystore/, cacerts/)"
                .into(),
        });
    }
    let signer = gossip_engine::msp_dir::local_signer(&cfg.mspid, &cfg.msp_dir)
        .map_err(|e| identity_error(key, &cfg.msp_dir, e))?;
    let mut local = gossip_engine::msp_dir::org_msp(&cfg.mspid, &cfg.msp_dir)
        .map_err(|e| identity_error(key, &cfg.msp_dir, e))?;
    if local.root_cas.is_empty() {
        return Err(NodeConfigError::File {
            key: key.into(),
            path: cfg.msp_dir.join("cacerts"),
            reason: "no CA certificate: the org's identities could not be validated".into(),
        });
    }
    let tls = match &cfg.tls {
        None => None,
        Some(files) => {
            let cert_chain_pem = read_file("peer.tls.cert.file", &files.cert_file)?;
            if pem::parse_many(&cert_chain_pem).map_or(true, |v| v.is_empty()) {
                return Err(NodeConfigError::File {
                    key: "peer.tls.cert.file".into(),
                    path: files.cert_file.clone(),
                    reason: "holds no PEM certificate".into(),
                });
            }
            let key_pem = read_file("peer.tls.key.file", &files.key_file)?;
            if pem::parse_many(&key_pem).map_or(true, |v| v.is_empty()) {
                return Err(NodeConfigError::File {
                    key: "peer.tls.key.file".into(),
                    path: files.key_file.clone(),
                    reason: "holds no PEM key".into(),
                });
            }
            for (root_key, path) in &files.root_cert_files {
                let text = read_file(root_key, path)?;
                let blocks = pem::parse_many(&text).map_err(|e| NodeConfigError::File {
                    key: root_key.clone(),
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
                for b in blocks {
                    let der = bytes::Bytes::copy_from_slice(b.contents());
                    if !local.tls_root_cas_der.contains(&der) {
                        local.tls_root_cas_der.push(der);
                    }
                }
            }
            if local.tls_root_cas_der.is_empty() {
                return Err(NodeConfigError::File {
                    key: "peer.tls.rootcert.file".into(),
                    path: cfg.msp_dir.join("tlscacerts"),
                    reason: "TLS is on but no TLS CA is known (MSP tlscacerts/ is empty and \
                             peer.tls.rootcert.file is unset)"
                        .into(),
                });
            }
            Some(TlsPems {
                cert_chain_pem,
                key_pem,
            })
        }
    };
    let mut msp = MspManager::new();
    msp.add_org(local);
    for (mspid, dir) in org_msps {
        let org =
            gossip_engine::msp_dir::org_msp(mspid, dir).map_err(|e| NodeConfigError::OrgMsp {
                arg: format!("{mspid}={}", dir.display()),
                reason: e.to_string(),
            })?;
        if org.root_cas.is_empty() {
            return Err(NodeConfigError::OrgMsp {
                arg: format!("{mspid}={}", dir.display()),
                reason: "no CA certificate in cacerts/".into(),
            });
        }
        msp.add_org(org);
    }
    Ok(Material { signer, msp, tls })
}
