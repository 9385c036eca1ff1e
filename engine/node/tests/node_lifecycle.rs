//! The identity lifecycle with real gossip-node processes (issue 21 item 3): a node restarted at
//! the same endpoint with a renewed certificate in its MSP folder is re-learnt under its new
//! PKI-ID and the old one is forgotten (what loadgen's renewal scenario relies on); a CRL dropped
//! into an MSP folder's `crls/` cuts the revoked peer off on SIGHUP; `leave_channel` drops a node
//! out of the other's `peers_of_channel`.
#![allow(clippy::disallowed_methods)] // bounded waits on the real clock

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{Control, Node, WAIT, core_yaml, free_port, start, wait_exit};
use gossip_engine::clock;
use gossip_testkit::testpki::{TestPki, TestPkiSpec};
use serde_json::{Value, json};

/// A one-org PKI of two peers written under `root`, each with its core.yaml; returns the PKI and
/// each peer's folder.
fn two_peers(root: &Path) -> (TestPki, Vec<PathBuf>) {
    let spec = TestPkiSpec::uniform(1, 2, clock::now().as_unix_secs());
    let pki = TestPki::generate(&spec).expect("pki");
    pki.write_msp_dirs(root).expect("msp dirs");
    let org = &pki.orgs[0];
    let ports = [free_port(), free_port()];
    let dirs: Vec<PathBuf> = org
        .peers
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let dir = root.join(&org.domain).join("peers").join(&p.name);
            let yaml = core_yaml(&p.name, ports[i], ports[1 - i]);
            std::fs::write(dir.join("core.yaml"), yaml).expect("core.yaml");
            dir
        })
        .collect();
    (pki, dirs)
}

/// The PKI-IDs `control`'s node lists as alive and as dead.
fn members(control: &mut Control) -> (Vec<String>, Vec<String>) {
    let r = control.ok(json!({"op": "peers"}));
    let ids = |key: &str| -> Vec<String> {
        r[key]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|m| m["pki_id"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    (ids("alive"), ids("dead"))
}

/// Polls `cond` every 200 ms until it holds; panics with both logs after [`WAIT`].
fn wait_for(what: &str, nodes: &[&Node], mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !cond() {
        if Instant::now() > deadline {
            let logs: Vec<String> = nodes.iter().map(|n| n.log_text()).collect();
            panic!("{what} not within {WAIT:?}\n{}", logs.join("\n----\n"));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn one_alive(control: &mut Control) -> Option<String> {
    let (alive, _) = members(control);
    alive.first().cloned()
}

#[test]
fn a_node_restarted_with_a_renewed_certificate_is_relearnt_under_its_new_pki_id() {
    let bin = Path::new(env!("CARGO_BIN_EXE_gossip-node"));
    let tmp = tempfile::tempdir().expect("tempdir");
    let (pki, dirs) = two_peers(tmp.path());
    let a = start(bin, &dirs[0], "peer0");
    let mut b = start(bin, &dirs[1], "peer1");
    let mut ca = Control::connect(&a);
    wait_for("A sees B", &[&a, &b], || one_alive(&mut ca).is_some());
    let old = one_alive(&mut ca).expect("B");
    // Stop B, renew its enrollment certificate (new key, same name) in its MSP folder, restart
    // it at the same endpoint.
    Control::connect(&b).ok(json!({"op": "shutdown"}));
    assert!(wait_exit(&mut b).success(), "{}", b.log_text());
    let org = &pki.orgs[0];
    let renewed = org
        .issue_peer(&org.peers[1].name, clock::now().as_unix_secs(), 3600)
        .expect("renewed");
    let msp = dirs[1].join("msp");
    let cert = msp
        .join("signcerts")
        .join(format!("{}-cert.pem", org.peers[1].name));
    std::fs::write(cert, &renewed.enrollment.cert_pem).expect("cert");
    std::fs::write(msp.join("keystore/priv_sk"), &renewed.enrollment.key_pem).expect("key");
    let b = start(bin, &dirs[1], "peer1");
    wait_for("A knows B by its new PKI-ID only", &[&a, &b], || {
        let (alive, dead) = members(&mut ca);
        alive.len() == 1 && alive[0] != old && !dead.contains(&old)
    });
    // And B knows A.
    let mut cb = Control::connect(&b);
    wait_for("B sees A", &[&a, &b], || one_alive(&mut cb).is_some());
}

#[test]
fn a_crl_read_on_sighup_cuts_the_revoked_peer_off() {
    let bin = Path::new(env!("CARGO_BIN_EXE_gossip-node"));
    let tmp = tempfile::tempdir().expect("tempdir");
    let (pki, dirs) = two_peers(tmp.path());
    let a = start(bin, &dirs[0], "peer0");
    let b = start(bin, &dirs[1], "peer1");
    let mut ca = Control::connect(&a);
    wait_for("A sees B", &[&a, &b], || one_alive(&mut ca).is_some());
    let org = &pki.orgs[0];
    let crl = org
        .crl_pem(&[&org.peers[1]], clock::now().as_unix_secs())
        .expect("crl");
    let crls = dirs[0].join("msp").join("crls");
    std::fs::create_dir_all(&crls).expect("crls/");
    std::fs::write(crls.join("crl.pem"), crl).expect("crl file");
    let status = std::process::Command::new("kill")
        .args(["-HUP", &a.child.id().to_string()])
        .status()
        .expect("kill -HUP");
    assert!(status.success());
    wait_for("A forgets the revoked B", &[&a, &b], || {
        let (alive, dead) = members(&mut ca);
        alive.is_empty() && dead.is_empty()
    });
    assert!(
        a.log_text().contains("SIGHUP: MSP folders reloaded"),
        "{}",
        a.log_text()
    );
    // B keeps dialling; A keeps refusing it.
    std::thread::sleep(Duration::from_secs(3));
    let (alive, dead) = members(&mut ca);
    assert!(
        alive.is_empty() && dead.is_empty(),
        "B came back: {alive:?} {dead:?}"
    );
}

#[test]
fn leave_channel_drops_the_node_from_the_others_peers_of_channel() {
    let bin = Path::new(env!("CARGO_BIN_EXE_gossip-node"));
    let tmp = tempfile::tempdir().expect("tempdir");
    let (_pki, dirs) = two_peers(tmp.path());
    let a = start(bin, &dirs[0], "peer0");
    let b = start(bin, &dirs[1], "peer1");
    let (mut ca, mut cb) = (Control::connect(&a), Control::connect(&b));
    let join = json!({"op": "join_channel", "channel": "mychannel", "orgs": ["Org1MSP"]});
    ca.ok(join.clone());
    cb.ok(join);
    let listed = |c: &mut Control| -> usize {
        let r: Value = c.ok(json!({"op": "peers_of_channel", "channel": "mychannel"}));
        r["peers"].as_array().map_or(0, Vec::len)
    };
    wait_for("A lists B in the channel", &[&a, &b], || {
        listed(&mut ca) == 1
    });
    let r = cb.request(json!({"op": "leave_channel", "channel": "other"}));
    assert_eq!(r["ok"], json!(false), "{r}");
    cb.ok(json!({"op": "leave_channel", "channel": "mychannel"}));
    wait_for("A drops B from the channel", &[&a, &b], || {
        listed(&mut ca) == 0
    });
    assert_eq!(listed(&mut cb), 0);
    // Still a member.
    assert!(one_alive(&mut ca).is_some());
}
