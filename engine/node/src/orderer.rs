//! The orderer flags: `--orderer-msp MSPID=DIR` (an orderer org's verifying MSP, repeatable) and
//! `--orderer-signer [MSPID=]DIR` (an orderer member's MSP folder, `signcerts/` and `keystore/`),
//! with the same syntax and meaning as fabric-node's.
//!
//! The signer signs the blocks `inject_block` builds ([`super::block`]). The orderer orgs are
//! loaded and kept, but gossip-node does not verify blocks against them yet. Orderer orgs are not
//! gossip members: they never join the MSP manager that validates peers.

use std::path::{Path, PathBuf};

use super::NodeConfigError;
use super::material::parse_org_msp_arg;
use gossip_engine::crypto::msp::{MspManager, OrgMsp};
use gossip_engine::crypto::{Identity, LocalSigner};

/// What the orderer flags name.
#[derive(Debug, Default)]
pub struct OrdererMaterial {
    /// The `--orderer-msp` orgs, in the order given.
    pub msps: Vec<OrgMsp>,
    /// The `--orderer-signer` identity.
    pub signer: Option<LocalSigner>,
    /// Things worth a warning at startup (a signer outside the orderer orgs, ...).
    pub warnings: Vec<String>,
}

fn error(flag: &'static str, arg: &str, reason: impl Into<String>) -> NodeConfigError {
    NodeConfigError::Orderer {
        flag,
        arg: arg.to_owned(),
        reason: reason.into(),
    }
}

/// Splits `[MSPID=]DIR`. A `=` inside a path is read as the separator only when what comes
/// before it has no `/`.
pub fn parse_signer_arg(arg: &str) -> Result<(Option<String>, PathBuf), NodeConfigError> {
    let bad = |reason: &str| error("--orderer-signer", arg, reason);
    let (mspid, dir) = match arg.split_once('=') {
        Some((mspid, dir)) if !mspid.contains('/') => {
            if mspid.trim().is_empty() {
                return Err(bad("expected [MSPID=]DIR with a non-empty MSPID"));
            }
            (Some(mspid.trim().to_owned()), dir)
        }
        _ => (None, arg),
    };
    if dir.trim().is_empty() {
        return Err(bad("expected [MSPID=]DIR with a non-empty DIR"));
    }
    Ok((mspid, PathBuf::from(dir.trim())))
}

/// Loads the orderer flags. `peer_orgs` are the MSPs gossip already trusts (the local org and
/// the `--org-msp` ones) and `peer_org_order` their MSP ids in the order the signer's org is
/// looked for among them (`--org-msp` ones, then the local one); `now_unix_s` is for validity.
///
/// Without `MSPID=`, the signer's org is the first, among the `--orderer-msp` orgs then the peer
/// orgs, whose MSP validates the folder's certificate.
pub fn load(
    orderer_msp_args: &[String],
    signer_arg: Option<&str>,
    peer_orgs: &MspManager,
    peer_org_order: &[String],
    now_unix_s: i64,
) -> Result<OrdererMaterial, NodeConfigError> {
    let mut out = OrdererMaterial::default();
    let mut all = peer_orgs.clone();
    for arg in orderer_msp_args {
        let (mspid, dir) = parse_org_msp_arg(arg)
            .map_err(|_| error("--orderer-msp", arg, "expected MSPID=DIR"))?;
        let org = gossip_engine::msp_dir::org_msp(&mspid, &dir)
            .map_err(|e| error("--orderer-msp", arg, e.to_string()))?;
        all.add_org(org.clone());
        out.msps.push(org);
    }
    let Some(arg) = signer_arg else {
        return Ok(out);
    };
    let (mspid, dir) = parse_signer_arg(arg)?;
    let mspid = match mspid {
        Some(m) => m,
        None => {
            let order: Vec<&str> = out
                .msps
                .iter()
                .map(|o| o.mspid.as_str())
                .chain(peer_org_order.iter().map(String::as_str))
                .collect();
            signer_org(&dir, &order, &all, now_unix_s)
                .map_err(|reason| error("--orderer-signer", arg, reason))?
        }
    };
    let signer = gossip_engine::msp_dir::local_signer(&mspid, &dir)
        .map_err(|e| error("--orderer-signer", arg, e.to_string()))?;
    if !out.msps.iter().any(|o| o.mspid == mspid) {
        out.warnings.push(format!(
            "--orderer-signer {arg}: {mspid} is not among the --orderer-msp orgs; Fabric peers \
             will reject the blocks it signs"
        ));
    } else if let Err(e) = all.validate(signer.identity(), now_unix_s) {
        out.warnings.push(format!(
            "--orderer-signer {arg}: {mspid} does not validate the signer ({e}); Fabric peers \
             will reject the blocks it signs"
        ));
    }
    out.signer = Some(signer);
    Ok(out)
}

/// The first org in `order` whose MSP validates the certificate of the MSP folder `dir`.
fn signer_org(
    dir: &Path,
    order: &[&str],
    all: &MspManager,
    now_unix_s: i64,
) -> Result<String, String> {
    // Any MSP id will do to read the folder; the certificate is what is matched.
    let probe = gossip_engine::msp_dir::local_signer("", dir).map_err(|e| e.to_string())?;
    let pem = &probe.identity().id_bytes;
    for mspid in order {
        let id = Identity::from_pem(mspid, pem).map_err(|e| e.to_string())?;
        if all.validate(&id, now_unix_s).is_ok() {
            return Ok((*mspid).to_owned());
        }
    }
    Err(format!(
        "no org among {order:?} validates the certificate in signcerts/; name it as MSPID=DIR"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use gossip_testkit::testpki::{ORDERER_MSPID, TestPki, TestPkiSpec};

    const NOW_UNIX_S: i64 = 1_800_000_000;

    #[test]
    fn signer_arg_syntax() {
        assert_eq!(
            parse_signer_arg("OrdererMSP=/x/msp").unwrap(),
            (Some("OrdererMSP".into()), PathBuf::from("/x/msp"))
        );
        assert_eq!(
            parse_signer_arg("/x/msp").unwrap(),
            (None, PathBuf::from("/x/msp"))
        );
        assert_eq!(
            parse_signer_arg("/a=b/msp").unwrap(),
            (None, PathBuf::from("/a=b/msp"))
        );
        for bad in ["", "=/x", "M=", " "] {
            assert!(parse_signer_arg(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn signer_org_is_found_and_bad_folders_are_errors() {
        let pki = TestPki::generate(&TestPkiSpec::uniform(1, 1, NOW_UNIX_S)).expect("pki");
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = pki.write_msp_dirs(tmp.path()).expect("writes");
        let peer_orgs = pki.msp_manager().expect("manager");
        let order = vec!["Org1MSP".to_owned()];
        let orderer_msp = format!(
            "{ORDERER_MSPID}={}",
            pki.orderer_org_msp_dir(&root).display()
        );
        let signer_dir = pki.orderer_signer_dir(&root).display().to_string();
        let got = load(
            std::slice::from_ref(&orderer_msp),
            Some(&signer_dir),
            &peer_orgs,
            &order,
            NOW_UNIX_S,
        )
        .expect("loads");
        assert_eq!(got.msps.len(), 1);
        assert!(got.warnings.is_empty(), "{:?}", got.warnings);
        let signer = got.signer.expect("signer");
        assert_eq!(signer.identity().mspid, ORDERER_MSPID);
        assert_eq!(signer.pki_id(), pki.orderer().signer().unwrap().pki_id());
        // Without --orderer-msp nothing validates the orderer's certificate.
        let e = load(&[], Some(&signer_dir), &peer_orgs, &order, NOW_UNIX_S).unwrap_err();
        assert!(e.to_string().contains("name it as MSPID=DIR"), "{e}");
        // Named explicitly, it loads with a warning.
        let named = format!("{ORDERER_MSPID}={signer_dir}");
        let got = load(&[], Some(&named), &peer_orgs, &order, NOW_UNIX_S).expect("loads");
        assert_eq!(got.warnings.len(), 1);
        // Missing and malformed folders are errors, not panics.
        let missing = tmp.path().join("nope").display().to_string();
        assert!(
            load(
                &[],
                Some(&format!("X={missing}")),
                &peer_orgs,
                &order,
                NOW_UNIX_S
            )
            .is_err()
        );
        let no_key = root.join("example.com/msp").display().to_string();
        assert!(
            load(
                &[],
                Some(&format!("X={no_key}")),
                &peer_orgs,
                &order,
                NOW_UNIX_S
            )
            .is_err()
        );
        assert!(
            load(
                &[format!("O={missing}")],
                None,
                &peer_orgs,
                &order,
                NOW_UNIX_S
            )
            .is_err()
        );
        assert!(load(&["nodir".into()], None, &peer_orgs, &order, NOW_UNIX_S).is_err());
    }
}
