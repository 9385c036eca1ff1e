//! Loading MSP folders in Fabric's layout: a verifying MSP (`cacerts/`, `intermediatecerts/`,
//! `tlscacerts/`) and a local signing MSP (`signcerts/`, `keystore/`). These are the library's only
//! file reads; the core takes the parsed material ([`OrgMsp::from_pems`], [`LocalSigner::from_pems`]).

use std::path::{Path, PathBuf};

use gossip_core::crypto::{IdentityError, LocalSigner, OrgMsp};

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

/// Loads an org's verifying MSP folder: `cacerts/`, `intermediatecerts/` (optional) and
/// `tlscacerts/` (optional), every file in each.
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
    OrgMsp::from_pems(mspid, &refs(&roots), &refs(&inter), &refs(&tls))
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
