//! Laying out a local cluster: PKI, ports, proxies, one Fabric core.yaml per node, node specs.
//!
//! Topology (all on 127.0.0.1). Node `k` listens for gossip on its real port `L_k`
//! (`peer.listenAddress`) and for control on `C_k`. Without the proxy it advertises `L_k`
//! (`peer.address`, `peer.gossip.endpoint`, `peer.gossip.externalEndpoint`) and bootstraps to its
//! org leader's `L` (a star; the leader has no bootstrap). With the proxy, every node advertises an *ingress proxy* port `E_k → L_k`, so
//! every gossip connection to `k` (learned from membership or anchors) passes the proxy, which
//! finds the dialing node from `/proc`; each bootstrap address is a *per-link proxy* `B_{k→j} → L_j`
//! whose source is known statically. Delay, jitter and partitions apply per directed link
//! `src → dst` in both kinds of proxy.

pub mod control;
pub mod launcher;
pub mod ops;
pub mod proxy;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use gossip_testkit::testpki::{TestPki, TestPkiSpec};
use serde_json::{Value, json};

use crate::cluster::launcher::NodeSpec;
use crate::cluster::proxy::{Delay, Links, Proxy, Source};
use crate::scenario::{PeerKind, Scenario, ScenarioError, Spare};

/// Building the cluster layout failed.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// PKI generation or writing.
    #[error("pki: {0}")]
    Pki(#[from] gossip_testkit::testpki::TestPkiError),
    /// Files or ports.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why.
        source: std::io::Error,
    },
    /// Proxy start.
    #[error(transparent)]
    Proxy(#[from] crate::cluster::proxy::ProxyError),
    /// YAML writing.
    #[error("core.yaml: {0}")]
    Yaml(String),
    /// The scenario names Fabric peers but their binary is missing.
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
}

/// One node's place in the cluster.
#[derive(Clone, Debug)]
pub struct NodeLayout {
    /// Index.
    pub index: usize,
    /// peer.id.
    pub name: String,
    /// MSP id of its org.
    pub mspid: String,
    /// Org index.
    pub org: usize,
    /// Real gossip listen address.
    pub listen: SocketAddr,
    /// Advertised gossip endpoint (an ingress proxy when the proxy is on).
    pub endpoint: SocketAddr,
    /// Control address.
    pub control: SocketAddr,
    /// Operations endpoint (`operations.listenAddress`: `/metrics`, `/healthz`, ...) of a
    /// gossip-node; `None` for a node running Fabric's binary.
    pub ops: Option<SocketAddr>,
    /// Its folder (core.yaml, msp/, tls/, node.log).
    pub dir: PathBuf,
    /// How to start it.
    pub spec: NodeSpec,
}

/// A laid-out cluster: node layouts plus the running proxies.
pub struct Cluster {
    /// Nodes.
    pub nodes: Vec<NodeLayout>,
    /// MSP ids, in org order.
    pub orgs: Vec<String>,
    /// Link table the proxies obey (all open when there are no proxies).
    pub links: Arc<Links>,
    /// Running proxies (empty without faults that need them).
    pub proxies: Vec<Proxy>,
    /// The spare identities ([`Scenario::spares`]), in that order.
    pub spares: Vec<SpareLayout>,
    /// `--org-msp` values: every peer org's verifying MSP folder, `MSPID=dir`.
    pub org_msp_args: Vec<String>,
}

/// A spare identity's folder: `msp/`, `tls/` and, for a flooder, a core.yaml.
#[derive(Clone, Debug)]
pub struct SpareLayout {
    /// What it is for.
    pub spare: Spare,
    /// Its name (peer.id).
    pub name: String,
    /// Its folder in the PKI.
    pub dir: PathBuf,
    /// Its core.yaml (its own listen port, no bootstrap): what `loadgen flood` loads.
    pub core: PathBuf,
}

/// Listen ports come from below Linux's default ephemeral range (32768–60999). A port picked by
/// binding port 0 is itself ephemeral, and between picking it and the node binding it an outgoing
/// connection of another node may take it ("Address already in use" at start-up, seen at N = 25).
pub(crate) const LISTEN_PORTS: std::ops::Range<u16> = 20_000..32_000;

/// A free port on 127.0.0.1 outside the ephemeral range. Runs in parallel processes start at
/// different offsets (by process id) and skip ports that are taken.
fn free_port() -> Result<SocketAddr, ClusterError> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let span = u32::from(LISTEN_PORTS.end - LISTEN_PORTS.start);
    let _ = NEXT.compare_exchange(
        u32::MAX,
        std::process::id().wrapping_mul(97) % span,
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
    for _ in 0..span {
        let offset = NEXT.fetch_add(1, Ordering::Relaxed) % span;
        let port = LISTEN_PORTS.start + offset as u16;
        if let Ok(l) = TcpListener::bind(("127.0.0.1", port)) {
            return l.local_addr().map_err(|source| ClusterError::Io {
                what: "picking a free port".into(),
                source,
            });
        }
    }
    Err(ClusterError::Io {
        what: format!("picking a free port in {LISTEN_PORTS:?}"),
        source: std::io::Error::from(std::io::ErrorKind::AddrInUse),
    })
}

/// Fabric's `peer.gossip` defaults (sampleconfig core.yaml, spec 4.1).
pub fn fabric_gossip_defaults() -> Value {
    json!({
        "bootstrap": ["127.0.0.1:7051"],
        "useLeaderElection": false,
        "orgLeader": true,
        "membershipTrackerInterval": "5s",
        "endpoint": "",
        "maxBlockCountToStore": 10,
        "maxPropagationBurstLatency": "10ms",
        "maxPropagationBurstSize": 10,
        "propagateIterations": 1,
        "propagatePeerNum": 3,
        "pullInterval": "4s",
        "pullPeerNum": 3,
        "requestStateInfoInterval": "4s",
        "publishStateInfoInterval": "4s",
        "stateInfoRetentionInterval": "",
        "publishCertPeriod": "10s",
        "skipBlockVerification": false,
        "dialTimeout": "3s",
        "connTimeout": "2s",
        "recvBuffSize": 20,
        "sendBuffSize": 200,
        "digestWaitTime": "1s",
        "requestWaitTime": "1500ms",
        "responseWaitTime": "2s",
        "aliveTimeInterval": "5s",
        "aliveExpirationTimeout": "25s",
        "reconnectInterval": "25s",
        "maxConnectionAttempts": 120,
        "msgExpirationFactor": 20,
        "externalEndpoint": "",
        "election": {
            "startupGracePeriod": "15s",
            "membershipSampleInterval": "1s",
            "leaderAliveThreshold": "10s",
            "leaderElectionDuration": "5s"
        },
        "pvtData": { "pullRetryThreshold": "60s" }
    })
}

/// Sets `key` (dotted for nesting) in a JSON object tree.
pub fn set_dotted(root: &mut Value, key: &str, value: Value) {
    let mut cur = root;
    let parts: Vec<&str> = key.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        if !cur.is_object() {
            *cur = json!({});
        }
        let Some(obj) = cur.as_object_mut() else {
            return;
        };
        if i + 1 == parts.len() {
            obj.insert((*part).to_string(), value);
            return;
        }
        cur = obj.entry((*part).to_string()).or_insert_with(|| json!({}));
    }
}

/// The core.yaml of one node, as a JSON tree (written as YAML).
#[allow(clippy::too_many_arguments)]
pub fn core_yaml(
    s: &Scenario,
    name: &str,
    mspid: &str,
    listen: SocketAddr,
    endpoint: SocketAddr,
    bootstrap: &[SocketAddr],
    is_leader: bool,
    client_root_cas: &[String],
    ops: Option<SocketAddr>,
) -> Value {
    let mut gossip = fabric_gossip_defaults();
    let boot: Vec<String> = bootstrap.iter().map(ToString::to_string).collect();
    set_dotted(&mut gossip, "bootstrap", json!(boot));
    set_dotted(&mut gossip, "orgLeader", json!(is_leader));
    set_dotted(&mut gossip, "endpoint", json!(endpoint.to_string()));
    set_dotted(&mut gossip, "externalEndpoint", json!(endpoint.to_string()));
    set_dotted(
        &mut gossip,
        "skipBlockVerification",
        json!(s.skip_block_verification),
    );
    for (k, v) in &s.gossip {
        set_dotted(
            &mut gossip,
            k,
            serde_json::to_value(v).unwrap_or(Value::Null),
        );
    }
    // Each node its own operations port (Fabric's default 127.0.0.1:9443 would collide), with
    // Prometheus metrics; an empty address turns the endpoint off.
    let operations = json!({
        "listenAddress": ops.map(|a| a.to_string()).unwrap_or_default(),
    });
    json!({
        "operations": operations,
        "metrics": {"provider": "prometheus"},
        "peer": {
            "id": name,
            "networkId": "loadgen",
            "listenAddress": listen.to_string(),
            "address": endpoint.to_string(),
            "localMspId": mspid,
            "mspConfigPath": "msp",
            // gossip-node's ledger: relative, so each node's lives in its own folder
            // (`production/` beside this core.yaml), and a restart finds it again.
            "fileSystemPath": "production",
            "gossip": gossip,
            "tls": {
                "enabled": s.tls,
                "clientAuthRequired": s.tls,
                "cert": {"file": "tls/server.crt"},
                "key": {"file": "tls/server.key"},
                "rootcert": {"file": "tls/ca.crt"},
                "clientRootCAs": {"files": client_root_cas},
                "clientKey": {"file": ""},
                "clientCert": {"file": ""}
            }
        }
    })
}

/// Generates the PKI and configs under `work`, starts proxies when the scenario needs them, and
/// returns the layout. `now_unix_s` is the certificates' validity start.
pub fn build(
    s: &Scenario,
    work: &Path,
    bin: &Path,
    now_unix_s: i64,
) -> Result<Cluster, ClusterError> {
    let io = |what: String| move |source| ClusterError::Io { what, source };
    let spec = TestPkiSpec {
        peers_per_org: s.peers_per_org(),
        ..TestPkiSpec::uniform(s.orgs, 1, now_unix_s)
    };
    let pki = TestPki::generate(&spec)?;
    let crypto = work.join("crypto");
    pki.write_msp_dirs(&crypto)?;
    let orgs: Vec<String> = pki.orgs.iter().map(|o| o.mspid.clone()).collect();
    let tls_cas: Vec<PathBuf> = pki
        .orgs
        .iter()
        .map(|o| {
            crypto
                .join(&o.domain)
                .join("peers")
                .join(&o.peers[0].name)
                .join("tls/ca.crt")
        })
        .collect();
    let links = Links::new(s.nodes);
    let proxied = s.faults.uses_proxy();
    let delay = Delay {
        base: Duration::from_secs_f64(s.faults.delay_ms / 1e3),
        jitter: Duration::from_secs_f64(s.faults.jitter_ms / 1e3),
        seed: s.faults.fault_seed,
    };
    // Node k is the (k / orgs)-th peer of org k % orgs.
    let mut listens = Vec::new();
    for _ in 0..s.nodes {
        listens.push(free_port()?);
    }
    let mut proxies = Vec::new();
    let mut endpoints = listens.clone();
    if proxied {
        for (k, listen) in listens.iter().enumerate() {
            let p = Proxy::start(
                "127.0.0.1:0".parse().expect("literal"),
                *listen,
                k,
                Source::Lookup,
                links.clone(),
                delay,
            )?;
            endpoints[k] = p.addr();
            proxies.push(p);
        }
    }
    let org_msp_args: Vec<String> = pki
        .orgs
        .iter()
        .map(|org| {
            let dir = crypto.join(&org.domain).join("msp");
            format!("{}={}", org.mspid, dir.display())
        })
        .collect();
    let mut nodes = Vec::new();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = s.node_threads(cores);
    // Nodes the scenario puts on the Fabric peer run its binary; the others run `bin`.
    let fabric_bin = s.fabric_bin()?;
    for k in 0..s.nodes {
        let org = s.org_of(k);
        let o = &pki.orgs[org];
        let peer = &o.peers[k / s.orgs];
        let dir = crypto.join(&o.domain).join("peers").join(&peer.name);
        // Bootstrap: a star on the org leader (node `org`), which has none itself. Mutual
        // bootstrap entries make both ends dial each other at once, and gossip-node's comm then
        // may close both connections (seen with proxy delay); a star avoids that start-up race.
        let boot_to = org;
        let mut bootstrap = Vec::new();
        if boot_to != k {
            if proxied {
                let p = Proxy::start(
                    "127.0.0.1:0".parse().expect("literal"),
                    listens[boot_to],
                    boot_to,
                    Source::Fixed(k),
                    links.clone(),
                    delay,
                )?;
                bootstrap.push(p.addr());
                proxies.push(p);
            } else {
                bootstrap.push(listens[boot_to]);
            }
        }
        let cas: Vec<String> = tls_cas.iter().map(|p| p.display().to_string()).collect();
        let is_leader = s.injector_nodes().contains(&k);
        let ops = match (s.kind_of(k), &fabric_bin) {
            (PeerKind::Fabric, Some(_)) => None,
            _ => Some(free_port()?),
        };
        let yaml = core_yaml(
            s,
            &peer.name,
            &o.mspid,
            listens[k],
            endpoints[k],
            &bootstrap,
            is_leader,
            &cas,
            ops,
        );
        let text = serde_norway::to_string(&yaml).map_err(|e| ClusterError::Yaml(e.to_string()))?;
        let core = dir.join("core.yaml");
        std::fs::write(&core, text).map_err(io(format!("writing {}", core.display())))?;
        let control = free_port()?;
        let mut args: Vec<OsString> = vec![
            "--config".into(),
            core.clone().into(),
            "--control-addr".into(),
            control.to_string().into(),
        ];
        for arg in &org_msp_args {
            args.push("--org-msp".into());
            args.push(arg.into());
        }
        // Injected blocks are orderer-signed (Fabric-real); fabric-node's strict verification
        // accepts them, and every node may be an injector.
        args.extend([
            "--orderer-msp".into(),
            format!(
                "{}={}",
                pki.orderer_org.mspid,
                pki.orderer_org_msp_dir(&crypto).display()
            )
            .into(),
            "--orderer-signer".into(),
            pki.orderer_signer_dir(&crypto).into(),
        ]);
        if s.faults.drop_share > 0.0 {
            args.extend([
                "--enable-fault-hooks".into(),
                "--fault-drop-share".into(),
                s.faults.drop_share.to_string().into(),
                "--fault-seed".into(),
                (s.faults.fault_seed + k as u64).to_string().into(),
            ]);
        }
        args.extend(["--worker-threads".into(), threads.worker.to_string().into()]);
        if let Some(n) = threads.verifier {
            args.extend(["--verifier-threads".into(), n.to_string().into()]);
        }
        let env: BTreeMap<String, String> = s.env.clone();
        nodes.push(NodeLayout {
            index: k,
            name: peer.name.clone(),
            mspid: o.mspid.clone(),
            org,
            listen: listens[k],
            endpoint: endpoints[k],
            control,
            ops,
            dir: dir.clone(),
            spec: NodeSpec {
                index: k,
                name: peer.name.clone(),
                bin: match (s.kind_of(k), &fabric_bin) {
                    (PeerKind::Fabric, Some(f)) => f.clone(),
                    _ => bin.to_path_buf(),
                },
                args,
                env,
                workdir: dir.clone(),
                log: dir.join("node.log"),
            },
        });
    }
    // Spares follow each org's nodes in the PKI, in [`Scenario::spares`] order.
    let mut spares = Vec::new();
    let mut next = s.peers_per_org();
    for (o, n) in next.iter_mut().enumerate() {
        *n -= s.spares().iter().filter(|sp| sp.org == o).count();
    }
    for spare in s.spares() {
        let o = &pki.orgs[spare.org];
        let peer = &o.peers[next[spare.org]];
        next[spare.org] += 1;
        let dir = crypto.join(&o.domain).join("peers").join(&peer.name);
        let cas: Vec<String> = tls_cas.iter().map(|p| p.display().to_string()).collect();
        let listen = free_port()?;
        let yaml = core_yaml(
            s,
            &peer.name,
            &o.mspid,
            listen,
            listen,
            &[],
            false,
            &cas,
            None,
        );
        let text = serde_norway::to_string(&yaml).map_err(|e| ClusterError::Yaml(e.to_string()))?;
        let core = dir.join("core.yaml");
        std::fs::write(&core, text).map_err(io(format!("writing {}", core.display())))?;
        spares.push(SpareLayout {
            spare,
            name: peer.name.clone(),
            dir,
            core,
        });
    }
    Ok(Cluster {
        nodes,
        orgs,
        links,
        proxies,
        spares,
        org_msp_args,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_land_in_core_yaml() {
        let mut s = Scenario::default();
        s.gossip
            .insert("propagatePeerNum".into(), toml::Value::Integer(5));
        s.gossip.insert(
            "election.leaderAliveThreshold".into(),
            toml::Value::String("3s".into()),
        );
        let a: SocketAddr = "127.0.0.1:7051".parse().unwrap();
        let v = core_yaml(&s, "peer0", "Org1MSP", a, a, &[a], true, &[], Some(a));
        let g = &v["peer"]["gossip"];
        assert_eq!(g["propagatePeerNum"], json!(5));
        assert_eq!(g["election"]["leaderAliveThreshold"], json!("3s"));
        assert_eq!(
            g["election"]["startupGracePeriod"],
            json!("15s"),
            "defaults kept"
        );
        assert_eq!(g["pullInterval"], json!("4s"));
        assert_eq!(v["peer"]["fileSystemPath"], json!("production"), "per node");
        assert_eq!(
            v["operations"]["listenAddress"],
            json!(a.to_string()),
            "own port"
        );
        assert_eq!(v["metrics"]["provider"], json!("prometheus"));
        let off = core_yaml(&s, "peer0", "Org1MSP", a, a, &[a], true, &[], None);
        assert_eq!(
            off["operations"]["listenAddress"],
            json!(""),
            "endpoint off"
        );
        let text = serde_norway::to_string(&v).unwrap();
        assert!(text.contains("propagatePeerNum: 5"), "{text}");
    }
}
