//! The interop suite: a mixed cluster of gossip-node and Fabric's own gossip peer
//! (`../shared/tools/fabric-node`, Fabric's code), laid out by loadgen's cluster builder and
//! started through its launcher, exactly as `loadgen run` starts nodes.
//!
//! Six nodes, two orgs, each org with both kinds (node `k` is in org `k % 2`):
//!
//! | node | org | kind | endpoints |
//! |---|---|---|---|
//! | 0 | 1 | ours (injector, anchor) | internal `localhost:P`, external `127.0.0.1:P` |
//! | 1 | 2 | Fabric (injector, anchor) | internal `localhost:P`, external `127.0.0.1:P` |
//! | 2 | 1 | Fabric | as above |
//! | 3 | 2 | ours | as above |
//! | 4 | 1 | ours | internal only (no external endpoint) |
//! | 5 | 2 | Fabric | internal only |
//!
//! Fabric nodes run Fabric's strict block check (`VerifyBlock` against the orderer org) with
//! their NodeOU synthesis off, so they load loadgen's PKI as a Fabric peer would. Checked, in
//! order: the handshake and membership both ways (every node sees exactly the members Fabric
//! allows it to see, by the PKI-IDs computed from the certificate files); no internal endpoint
//! and no peer without an external endpoint visible across orgs; channel membership; push from
//! ours to Fabric and from Fabric to ours; blocks stay in their org; Fabric's strict check accepts
//! every block ours signed; ledger heights in StateInfo both ways; a restarted peer of each kind
//! re-admitted and caught up by block pull from the other kind (Fabric's pull mediator and ours
//! answering each other).
//!
//! The tests are `#[ignore]`d: they need the fabric-node binary, which is not part of this
//! repository. `.ci/run` runs them with `--ignored` where the binary exists and says in one line
//! that it skipped them where it does not. `FABRIC_NODE_BIN` names another binary.
//! Every wait is bounded; nothing asserts on timing.

#![allow(clippy::disallowed_methods)] // bounded waits on the real clock

mod common;
mod interop_common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use common::node_bin;
use gossip_engine::clock;
use gossip_engine::crypto::identity::pki_id_of;
use interop_common::{fabric_bin, only_file};
use loadgen::cluster::control::ControlClient;
use loadgen::cluster::launcher::{Launcher, LocalLauncher, NodeHandle};
use loadgen::cluster::{self, Cluster};
use loadgen::scenario::Scenario;
use serde_json::{Value, json};

const CHANNEL: &str = "mychannel";
const NODES: usize = 6;
const FABRIC: [usize; 3] = [1, 2, 5];
const INTERNAL_ONLY: [usize; 2] = [4, 5];
const BLOCKS: u64 = 5;
/// Upper bound of every wait (Fabric's default timings: alive messages every 5 s, StateInfo every
/// 4 s, a dead peer noticed after 25 s).
const WAIT: Duration = Duration::from_secs(90);

fn is_fabric(k: usize) -> bool {
    FABRIC.contains(&k)
}

fn has_external(k: usize) -> bool {
    !INTERNAL_ONLY.contains(&k)
}

fn org(k: usize) -> usize {
    k % 2
}

/// What node `k` may see (Fabric's disclosure rules, spec 2.4): every other member of its org,
/// and, when both have an external endpoint, members of the other org. A peer without one
/// neither is seen by nor sees the other org.
fn visible_to(k: usize) -> BTreeSet<usize> {
    (0..NODES)
        .filter(|&j| j != k && (org(j) == org(k) || (has_external(j) && has_external(k))))
        .collect()
}

/// Rewrites node `k`'s core.yaml: internal endpoint `localhost:P` (a name only the own org may
/// learn), external endpoint `127.0.0.1:P` or none.
fn set_endpoints(c: &Cluster, k: usize) {
    let path = c.nodes[k].dir.join("core.yaml");
    let text = std::fs::read_to_string(&path).expect("core.yaml");
    let mut yaml: Value = serde_norway::from_str(&text).expect("core.yaml parses");
    let port = c.nodes[k].listen.port();
    cluster::set_dotted(
        &mut yaml,
        "peer.gossip.endpoint",
        json!(format!("localhost:{port}")),
    );
    let external = if has_external(k) {
        format!("127.0.0.1:{port}")
    } else {
        String::new()
    };
    cluster::set_dotted(&mut yaml, "peer.gossip.externalEndpoint", json!(external));
    std::fs::write(&path, serde_norway::to_string(&yaml).expect("yaml")).expect("write");
}

struct Mixed {
    cluster: Cluster,
    handles: Vec<Box<dyn NodeHandle>>,
    clients: Vec<ControlClient>,
    pki_ids: Vec<String>,
    launcher: LocalLauncher,
}

impl Mixed {
    fn start(work: &Path) -> Mixed {
        let s = Scenario::from_toml(&format!(
            "name = \"interop\"\nnodes = {NODES}\norgs = 2\ntls = true\n"
        ))
        .expect("scenario");
        let mut cluster = cluster::build(&s, work, &node_bin(), clock::now().as_unix_secs())
            .expect("cluster layout");
        let fabric = fabric_bin();
        let mut pki_ids = Vec::new();
        for k in 0..NODES {
            set_endpoints(&cluster, k);
            let node = &mut cluster.nodes[k];
            let cert = std::fs::read(only_file(&node.dir.join("msp/signcerts"))).expect("cert");
            pki_ids.push(pki_id_of(&node.mspid, &cert).to_string());
            if is_fabric(k) {
                // loadgen gives every node the orderer org (`--orderer-msp`) and the orderer's
                // signing folder (`--orderer-signer`): Fabric nodes sign what they inject and
                // check what they receive with Fabric's own VerifyBlock.
                node.spec.bin = fabric.clone();
                node.spec.args.push("--strict-block-verification".into());
            }
        }
        let mut launcher = LocalLauncher;
        let mut handles = Vec::new();
        for node in &cluster.nodes {
            handles.push(launcher.start(&node.spec).expect("start node"));
            std::thread::sleep(Duration::from_millis(250));
        }
        let mut mixed = Mixed {
            cluster,
            handles,
            clients: Vec::new(),
            pki_ids,
            launcher,
        };
        for k in 0..NODES {
            let client = mixed.connect(k);
            mixed.clients.push(client);
            mixed.join(k);
        }
        mixed
    }

    fn connect(&self, k: usize) -> ControlClient {
        let deadline = Instant::now() + WAIT;
        loop {
            match ControlClient::connect(self.cluster.nodes[k].control, Duration::from_secs(10)) {
                Ok(c) => return c,
                Err(e) if Instant::now() > deadline => {
                    panic!("node {k} control: {e}\n{}", self.logs())
                }
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    }

    fn join(&mut self, k: usize) {
        let anchors: Vec<_> = (0..2)
            .map(|o| {
                (
                    self.cluster.nodes[o].mspid.clone(),
                    self.cluster.nodes[o].endpoint,
                )
            })
            .collect();
        let orgs = self.cluster.orgs.clone();
        self.clients[k]
            .join_channel(CHANNEL, &orgs, &anchors)
            .unwrap_or_else(|e| panic!("node {k} join_channel: {e}"));
    }

    fn request(&mut self, k: usize, req: Value) -> Value {
        self.clients[k]
            .request(&req)
            .unwrap_or_else(|e| panic!("node {k} {req}: {e}\n{}", self.logs()))
    }

    fn index_of(&self, pki_id: &str) -> Option<usize> {
        self.pki_ids.iter().position(|p| p == pki_id)
    }

    /// Members in a `peers` / `peers_of_channel` list: node index (`None`: a PKI-ID no node
    /// has), endpoint, ledger height.
    fn members(&self, list: &Value) -> Vec<(Option<usize>, String, Option<u64>)> {
        list.as_array()
            .into_iter()
            .flatten()
            .map(|m| {
                (
                    self.index_of(m["pki_id"].as_str().unwrap_or("")),
                    m["endpoint"].as_str().unwrap_or("").to_owned(),
                    m["ledger_height"].as_u64(),
                )
            })
            .collect()
    }

    fn alive(&mut self, k: usize) -> Vec<(Option<usize>, String, Option<u64>)> {
        let r = self.request(k, json!({"op": "peers"}));
        self.members(&r["alive"])
    }

    fn in_channel(&mut self, k: usize) -> Vec<(Option<usize>, String, Option<u64>)> {
        let r = self.request(k, json!({"op": "peers_of_channel", "channel": CHANNEL}));
        self.members(&r["peers"])
    }

    fn stats(&mut self, k: usize) -> Value {
        self.request(k, json!({"op": "stats"}))["stats"].clone()
    }

    fn delivered(&mut self, k: usize) -> u64 {
        self.stats(k)["node"]["blocks_delivered"]
            .as_u64()
            .unwrap_or(0)
    }

    /// Polls `check` until it returns `Ok`, or fails with its last complaint and the node logs.
    fn wait(&mut self, what: &str, mut check: impl FnMut(&mut Self) -> Result<(), String>) {
        let deadline = Instant::now() + WAIT;
        loop {
            match check(self) {
                Ok(()) => return,
                Err(why) if Instant::now() > deadline => {
                    panic!("{what}: {why}\n{}", self.logs())
                }
                Err(_) => std::thread::sleep(Duration::from_millis(500)),
            }
        }
    }

    fn inject(&mut self, k: usize) {
        for seq in 1..=BLOCKS {
            self.clients[k]
                .inject_block(CHANNEL, seq, 10 * 1024)
                .unwrap_or_else(|e| panic!("node {k} inject_block {seq}: {e}"));
        }
    }

    fn restart(&mut self, k: usize) {
        self.handles[k].kill();
        self.handles[k] = self
            .launcher
            .start(&self.cluster.nodes[k].spec)
            .expect("restart");
        self.clients[k] = self.connect(k);
        self.join(k);
    }

    fn logs(&self) -> String {
        interop_common::logs(&self.cluster)
    }
}

/// Checks that node `k` sees exactly the members it may see, with no internal endpoint of the
/// other org.
fn membership_ok(
    k: usize,
    members: &[(Option<usize>, String, Option<u64>)],
    listen_ports: &[u16],
) -> Result<(), String> {
    let seen: BTreeSet<usize> = members.iter().filter_map(|m| m.0).collect();
    if members.iter().any(|m| m.0.is_none()) {
        return Err(format!("node {k} sees a PKI-ID no node has: {members:?}"));
    }
    for (j, endpoint, _) in members {
        let j = j.expect("checked");
        if org(j) != org(k) && endpoint != &format!("127.0.0.1:{}", listen_ports[j]) {
            return Err(format!(
                "node {k} sees node {j} of the other org at {endpoint:?}, not its external endpoint"
            ));
        }
    }
    let expected = visible_to(k);
    if seen != expected {
        return Err(format!("node {k} sees {seen:?}, expected {expected:?}"));
    }
    Ok(())
}

/// Runs `check` on every node; the complaints of all that fail, one per line.
fn every_node(mut check: impl FnMut(usize) -> Result<(), String>) -> Result<(), String> {
    let complaints: Vec<String> = (0..NODES).filter_map(|k| check(k).err()).collect();
    if complaints.is_empty() {
        Ok(())
    } else {
        Err(complaints.join("\n"))
    }
}

#[test]
#[ignore = "needs Fabric's fabric-node (../shared/tools/fabric-node); .ci/run runs it when present"]
fn mixed_cluster_interoperates_both_ways() {
    let fabric = fabric_bin();
    assert!(
        fabric.is_file(),
        "fabric-node not found at {} (set FABRIC_NODE_BIN)",
        fabric.display()
    );
    let work = tempfile::tempdir().expect("tempdir");
    let mut m = Mixed::start(work.path());
    let ports: Vec<u16> = m.cluster.nodes.iter().map(|n| n.listen.port()).collect();

    m.wait("membership both ways, org boundaries kept", |m| {
        every_node(|k| membership_ok(k, &m.alive(k), &ports))
    });
    m.wait(
        "channel membership (StateInfo both ways) at height 1",
        |m| {
            every_node(|k| {
                let members = m.in_channel(k);
                membership_ok(k, &members, &ports)?;
                match members.iter().find(|x| x.2 != Some(1)) {
                    Some(x) => Err(format!("node {k}: {x:?} not at height 1")),
                    None => Ok(()),
                }
            })
        },
    );

    // Ours injects in org 1: Fabric's node 2 (strict check) and ours' node 4 deliver; org 2
    // gets nothing (data messages are org-scoped).
    m.inject(0);
    m.wait("push ours -> Fabric in org 1", |m| {
        [2, 4].into_iter().try_for_each(|k| match m.delivered(k) {
            BLOCKS => Ok(()),
            n => Err(format!("node {k} delivered {n} of {BLOCKS}")),
        })
    });
    for k in [1, 3, 5] {
        assert_eq!(m.delivered(k), 0, "org 2 node {k} got org 1's blocks");
    }
    let strict = m.stats(2)["block_verification"].clone();
    assert_eq!(strict["mode"], json!("strict"), "{strict}");
    assert_eq!(
        strict["failed"],
        json!(0),
        "Fabric rejected our blocks: {strict}"
    );
    assert!(strict["passed"].as_u64() >= Some(BLOCKS), "{strict}");

    // Fabric injects in org 2: ours' node 3 and Fabric's node 5 deliver.
    m.inject(1);
    m.wait("push Fabric -> ours in org 2", |m| {
        [3, 5].into_iter().try_for_each(|k| match m.delivered(k) {
            BLOCKS => Ok(()),
            n => Err(format!("node {k} delivered {n} of {BLOCKS}")),
        })
    });
    for k in FABRIC {
        let v = m.stats(k)["block_verification"].clone();
        assert_eq!(v["failed"], json!(0), "node {k}: {v}");
    }

    let height = BLOCKS + 1;
    m.wait("ledger heights in StateInfo, both ways", |m| {
        every_node(|k| {
            let members = m.in_channel(k);
            membership_ok(k, &members, &ports)?;
            match members.iter().find(|x| x.2 != Some(height)) {
                Some(x) => Err(format!("node {k}: {x:?} not at height {height}")),
                None => Ok(()),
            }
        })
    });

    // A restarted peer of each kind is re-admitted by both kinds.
    let wire: BTreeMap<usize, u64> = [0, 3]
        .into_iter()
        .map(|k| {
            let s = m.stats(k);
            (k, s["comm"]["wire_bytes_received"].as_u64().unwrap_or(0))
        })
        .collect();
    assert!(
        wire.values().all(|&b| b > BLOCKS * 10 * 1024),
        "wire bytes counted: {wire:?}"
    );
    // Killed, they are declared dead (aliveExpirationTimeout, 25 s) by every node that saw them;
    // restarted with the same identity (and an empty ledger), every node takes them back, and
    // each catches up by block pull from its org's peers of the other kind (the blocks are still
    // in their block stores): Fabric's node 2 from ours' 0 and 4, ours' node 3 from Fabric's 1
    // and 5. Their StateInfo of the new incarnation then carries the height again.
    let restarted = [2, 3];
    for k in restarted {
        m.handles[k].kill();
    }
    m.wait("killed peers declared dead", |m| {
        every_node(|k| {
            if restarted.contains(&k) {
                return Ok(());
            }
            let r = m.request(k, json!({"op": "peers"}));
            let dead: BTreeSet<usize> = m.members(&r["dead"]).iter().filter_map(|x| x.0).collect();
            let expected: BTreeSet<usize> = restarted
                .into_iter()
                .filter(|j| visible_to(k).contains(j))
                .collect();
            if dead == expected {
                Ok(())
            } else {
                Err(format!("node {k}: dead {dead:?}, expected {expected:?}"))
            }
        })
    });
    for k in restarted {
        // gossip-node keeps its ledger across a restart and would resume at the height it had
        // (engine/node/README.md; tested in engine/node/tests/ledger_restart.rs). Removed, it
        // restarts empty like fabric-node (no ledger), so both catch up by pull.
        if !is_fabric(k) {
            let ledger = m.cluster.nodes[k].dir.join("production");
            std::fs::remove_dir_all(&ledger).expect("the node's ledger folder");
        }
        m.restart(k);
    }
    m.wait(
        "restarted peers re-admitted and caught up by pull, both ways",
        |m| {
            for k in restarted {
                match m.delivered(k) {
                    BLOCKS => {}
                    n => return Err(format!("restarted node {k} delivered {n} of {BLOCKS}")),
                }
            }
            every_node(|k| {
                let members = m.in_channel(k);
                membership_ok(k, &members, &ports)?;
                membership_ok(k, &m.alive(k), &ports)?;
                match members.iter().find(|x| x.2 != Some(height)) {
                    Some(x) => Err(format!("node {k}: {x:?} not at height {height}")),
                    None => Ok(()),
                }
            })
        },
    );
    let pulled = m.stats(3)["node"]["blocks_pulled"].as_u64();
    assert_eq!(pulled, Some(BLOCKS), "ours' node 3 pulled from Fabric");
    for k in FABRIC {
        let v = m.stats(k)["block_verification"].clone();
        assert_eq!(v["failed"], json!(0), "node {k}: {v}");
    }
    for k in FABRIC {
        let log = std::fs::read_to_string(&m.cluster.nodes[k].spec.log).unwrap_or_default();
        assert!(
            !log.contains("NodeOUs synthesized"),
            "fabric-node {k} had to synthesize NodeOUs: loadgen's PKI lacks a config.yaml"
        );
    }
}

/// fabric-node with its NodeOU synthesis off (`FABRIC_REF_NODEOUS=off`: every MSP set up from
/// its folder alone, as MSP 1.3) loads loadgen's peer PKI, and both kinds compute the same
/// PKI-IDs, those of the certificate files. The orderer signer is left out here: MSP 1.3 knows
/// only the `client` and `peer` OUs, so it refuses an orderer certificate (`OU=orderer`);
/// the strict-check test above runs fabric-node as a v3 peer would load the same folders.
#[test]
#[ignore = "needs Fabric's fabric-node (../shared/tools/fabric-node); .ci/run runs it when present"]
fn fabric_loads_the_pki_without_nodeou_synthesis() {
    let fabric = fabric_bin();
    assert!(
        fabric.is_file(),
        "fabric-node not found at {}",
        fabric.display()
    );
    let work = tempfile::tempdir().expect("tempdir");
    let s = Scenario::from_toml("name = \"interop-off\"\nnodes = 2\norgs = 1\ntls = true\n")
        .expect("scenario");
    let mut cluster = cluster::build(&s, work.path(), &node_bin(), clock::now().as_unix_secs())
        .expect("cluster layout");
    let pki_ids: Vec<String> = cluster
        .nodes
        .iter()
        .map(|n| {
            let cert = std::fs::read(only_file(&n.dir.join("msp/signcerts"))).expect("cert");
            pki_id_of(&n.mspid, &cert).to_string()
        })
        .collect();
    let spec = &mut cluster.nodes[1].spec;
    spec.bin = fabric;
    spec.env.insert("FABRIC_REF_NODEOUS".into(), "off".into());
    if let Some(i) = spec.args.iter().position(|a| a == "--orderer-signer") {
        spec.args.drain(i..i + 2);
    }
    let mut launcher = LocalLauncher;
    let _handles: Vec<_> = cluster
        .nodes
        .iter()
        .map(|n| launcher.start(&n.spec).expect("start node"))
        .collect();
    let log = |k: usize| std::fs::read_to_string(&cluster.nodes[k].spec.log).unwrap_or_default();
    let deadline = Instant::now() + WAIT;
    let mut seen = vec![Vec::new(); 2];
    for k in 0..2 {
        let mut client = loop {
            match ControlClient::connect(cluster.nodes[k].control, Duration::from_secs(10)) {
                Ok(c) => break c,
                Err(e) if Instant::now() > deadline => panic!("node {k}: {e}\n{}", log(k)),
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        };
        loop {
            let r = client.request(&json!({"op": "peers"})).expect("peers");
            seen[k] = r["alive"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|m| m["pki_id"].as_str().map(str::to_owned))
                .collect();
            if seen[k] == [pki_ids[1 - k].clone()] {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "node {k} sees {:?}, expected [{}]\nours:\n{}\nfabric:\n{}",
                seen[k],
                pki_ids[1 - k],
                log(0),
                log(1)
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }
    assert!(!log(1).contains("NodeOUs synthesized"), "{}", log(1));
}
