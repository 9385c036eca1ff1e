//! Interop of identity pull (Fabric's cert store, spec 3.11) between gossip-node and Fabric's own
//! gossip peer (`../shared/tools/fabric-node`), both directions.
//!
//! One org, two stars that never meet, alive messages without identities
//! (`publishCertPeriod` 1 ms, so no alive message this peer builds carries one; Fabric reads 0
//! as its 10 s default):
//!
//! | node | kind | bootstrap |
//! |---|---|---|
//! | 0 | ours (hub) | none |
//! | 1, 2 | Fabric | node 0 |
//! | 3 | Fabric (hub) | none |
//! | 4, 5 | ours | node 3 |
//!
//! Leaves of a star never dial each other first: a peer dials only members it learnt from an
//! alive message it could verify, and it can verify one only with the sender's identity, which
//! it gets from a handshake (only with its hub) or from identity pull. The first identity of a
//! leaf that reaches the other leaf is the one the hub pulled from its owner and served on: when
//! Fabric's nodes 1 and 2 see each other alive, Fabric pulled an identity from ours; when ours'
//! nodes 4 and 5 do, ours pulled one from Fabric (their stats also count the pulled items).
//!
//! `#[ignore]`d like the rest of the interop suite: it needs the fabric-node binary
//! (`FABRIC_NODE_BIN` names another). Every wait is bounded; nothing asserts on timing.

#![allow(clippy::disallowed_methods)] // bounded waits on the real clock

mod common;
mod interop_common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::node_bin;
use gossip_engine::clock;
use gossip_engine::crypto::identity::pki_id_of;
use interop_common::{fabric_bin, logs, only_file};
use loadgen::cluster::control::ControlClient;
use loadgen::cluster::launcher::{Launcher, LocalLauncher, NodeHandle};
use loadgen::cluster::{self, Cluster};
use loadgen::scenario::Scenario;
use serde_json::{Value, json};

const NODES: usize = 6;
const FABRIC: [usize; 3] = [1, 2, 3];
/// Each node's bootstrap node (the hubs have none).
const BOOTSTRAP: [Option<usize>; NODES] = [None, Some(0), Some(0), None, Some(3), Some(3)];
/// Upper bound of every wait: a hub pulls a leaf's identity in its first rounds (`pullInterval`
/// 4 s), the other leaf pulls it in one of its next, then the leaf's alive messages (every 5 s)
/// verify.
const WAIT: Duration = Duration::from_secs(90);

/// The members node `k` should see: the other nodes of its star.
fn star_of(k: usize) -> BTreeSet<usize> {
    let hub = BOOTSTRAP[k].unwrap_or(k);
    (0..NODES)
        .filter(|&j| j != k && BOOTSTRAP[j].unwrap_or(j) == hub)
        .collect()
}

/// Rewrites node `k`'s bootstrap list to its hub (or none).
fn set_bootstrap(c: &Cluster, k: usize) {
    let path = c.nodes[k].dir.join("core.yaml");
    let text = std::fs::read_to_string(&path).expect("core.yaml");
    let mut yaml: Value = serde_norway::from_str(&text).expect("core.yaml parses");
    let boot: Vec<String> = BOOTSTRAP[k]
        .map(|h| c.nodes[h].listen.to_string())
        .into_iter()
        .collect();
    cluster::set_dotted(&mut yaml, "peer.gossip.bootstrap", json!(boot));
    std::fs::write(&path, serde_norway::to_string(&yaml).expect("yaml")).expect("write");
}

#[test]
#[ignore = "needs Fabric's fabric-node (../shared/tools/fabric-node); .ci/run runs it when present"]
fn identities_are_pulled_both_ways() {
    let fabric = fabric_bin();
    assert!(
        fabric.is_file(),
        "fabric-node not found at {} (set FABRIC_NODE_BIN)",
        fabric.display()
    );
    let work = tempfile::tempdir().expect("tempdir");
    let s = Scenario::from_toml(&format!(
        "name = \"interop-identity\"\nnodes = {NODES}\norgs = 1\ntls = true\n\
         [gossip]\npublishCertPeriod = \"1ms\"\n"
    ))
    .expect("scenario");
    let mut c = cluster::build(&s, work.path(), &node_bin(), clock::now().as_unix_secs())
        .expect("cluster layout");
    let mut pki_ids = Vec::new();
    for k in 0..NODES {
        set_bootstrap(&c, k);
        let node = &mut c.nodes[k];
        let cert = std::fs::read(only_file(&node.dir.join("msp/signcerts"))).expect("cert");
        pki_ids.push(pki_id_of(&node.mspid, &cert).to_string());
        if FABRIC.contains(&k) {
            node.spec.bin = fabric.clone();
        }
    }
    let mut launcher = LocalLauncher;
    let mut handles: Vec<Box<dyn NodeHandle>> = Vec::new();
    // Hubs first, so the leaves' first dial finds them.
    for k in [0, 3, 1, 2, 4, 5] {
        handles.push(launcher.start(&c.nodes[k].spec).expect("start node"));
        std::thread::sleep(Duration::from_millis(250));
    }
    let deadline = Instant::now() + WAIT;
    let mut clients: Vec<ControlClient> = (0..NODES)
        .map(|k| {
            loop {
                match ControlClient::connect(c.nodes[k].control, Duration::from_secs(10)) {
                    Ok(client) => break client,
                    Err(e) if Instant::now() > deadline => {
                        panic!("node {k} control: {e}\n{}", logs(&c))
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(200)),
                }
            }
        })
        .collect();
    let seen = |client: &mut ControlClient| -> BTreeSet<usize> {
        let r = client.request(&json!({"op": "peers"})).expect("peers");
        r["alive"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| {
                let p = m["pki_id"].as_str()?;
                pki_ids.iter().position(|x| x == p)
            })
            .collect()
    };
    loop {
        let complaints: Vec<String> = (0..NODES)
            .filter_map(|k| {
                let (got, want) = (seen(&mut clients[k]), star_of(k));
                (got != want).then(|| format!("node {k} sees {got:?}, expected {want:?}"))
            })
            .collect();
        if complaints.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "identity pull both ways:\n{}\n{}",
            complaints.join("\n"),
            logs(&c)
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    // Ours' pullers: the hub pulled Fabric's leaves (1, 2); the leaves pulled from Fabric's hub
    // (3) its own identity and the other leaf's.
    for k in [0, 4, 5] {
        let stats = clients[k].request(&json!({"op": "stats"})).expect("stats")["stats"].clone();
        let pulled = stats["node"]["certstore"]["identities_pulled"].as_u64();
        assert!(
            pulled >= Some(2),
            "node {k}: {}",
            stats["node"]["certstore"]
        );
    }
    // Fabric's cert store took every identity update ours sent (it logs a warning and drops the
    // whole update otherwise).
    for k in FABRIC {
        let log = std::fs::read_to_string(&c.nodes[k].spec.log).unwrap_or_default();
        for warning in [
            "Failed validating identity message",
            "Data update contains an invalid message",
            "Got a non-identity message",
        ] {
            assert!(
                !log.contains(warning),
                "fabric-node {k}: {warning}\n{}",
                logs(&c)
            );
        }
    }
    drop(handles);
}
