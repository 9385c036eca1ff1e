//! Tests of the core.yaml loader and the material loader.

use std::path::Path;
use std::time::Duration;

use super::*;
use crate::material;
use gossip_testkit::testpki::{TestPki, TestPkiSpec};

const SAMPLE: &str = include_str!("../tests/data/core.yaml");

fn load_text(text: &str, env: &[(&str, &str)]) -> Result<NodeConfig, NodeConfigError> {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("core.yaml");
    std::fs::write(&file, text).expect("write");
    let env = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned()));
    NodeConfig::load(Some(&file), None, env, None)
}

fn warnings(cfg: &NodeConfig) -> Vec<&str> {
    cfg.diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Warn)
        .map(|d| d.message.as_str())
        .collect()
}

#[test]
fn sample_core_yaml_gives_fabric_defaults() {
    let cfg = load_text(SAMPLE, &[]).expect("sample loads");
    let mut fabric = GossipConfig::default();
    // The sample sets `orgLeader: true`; the code default of an absent key is false.
    fabric.election.org_leader = true;
    assert_eq!(cfg.gossip, fabric);
    assert_eq!(cfg.comm, CommConfig::default());
    assert_eq!(cfg.mspid, "SampleOrg");
    assert_eq!(cfg.peer_id, "jdoe");
    let base = cfg
        .config_file
        .as_ref()
        .and_then(|f| f.parent())
        .expect("dir");
    assert_eq!(
        cfg.msp_dir,
        base.join("msp"),
        "relative to the config folder"
    );
    assert_eq!(cfg.internal_endpoint, "peer0.org1.example.com:7051");
    assert_eq!(cfg.listen_addr, "0.0.0.0:7051");
    assert!(cfg.external_endpoint.is_empty());
    assert!(cfg.tls.is_none());
    // 127.0.0.1:7051 is this peer (listening on 0.0.0.0:7051): noted and skipped.
    assert!(cfg.bootstrap.is_empty());
    let w = warnings(&cfg);
    assert!(
        w.iter()
            .any(|m| m.contains("externalEndpoint is empty") && m.contains("invisible"))
    );
    assert!(w.iter().any(|m| m.contains("bootstrap is empty")));
    assert!(
        cfg.diagnostics
            .iter()
            .any(|d| d.severity == Severity::Info && d.message.contains("is this peer itself"))
    );
    // Ignored keys are each named exactly once, grouped by reason.
    let pvt: Vec<_> = w
        .iter()
        .filter(|m| m.contains("pvtData.pullRetryThreshold"))
        .collect();
    assert_eq!(pvt.len(), 1, "{w:#?}");
    assert!(pvt[0].contains("private data") && pvt[0].contains("reconcileSleepInterval"));
    assert!(
        !w.iter().any(|m| m.contains("state.")),
        "every state.* key is used: {w:#?}"
    );
    assert!(
        !w.iter()
            .any(|m| m.contains("leaderAliveThreshold") || m.contains("election.")),
        "used, not ignored: {w:#?}"
    );
    assert_eq!(
        cfg.gossip.state,
        gossip_engine::config::StateConfig::default()
    );
    for key in ["digestWaitTime", "requestWaitTime", "responseWaitTime"] {
        assert!(
            !w.iter().any(|m| m.contains(key)),
            "{key}: used, not ignored"
        );
    }
    assert!(w.iter().any(|m| m.contains("membershipTrackerInterval")));
    assert!(!w.iter().any(|m| m.contains("unknown key")), "{w:#?}");
    assert!(cfg.diagnostics.iter().any(|d| d.severity == Severity::Info
        && d.message.contains("sections not used")
        && d.message.contains("chaincode")
        && d.message.contains("peer.bccsp")));
}

#[test]
fn env_overrides_apply_like_viper() {
    let cfg = load_text(
        SAMPLE,
        &[
            (
                "CORE_PEER_GOSSIP_EXTERNALENDPOINT",
                "peer0.org1.example.com:7051",
            ),
            (
                "CORE_PEER_GOSSIP_BOOTSTRAP",
                "peer1.org1.example.com:7051 peer2.org1.example.com:7051",
            ),
            ("CORE_PEER_GOSSIP_PULLINTERVAL", "1500ms"),
            ("CORE_PEER_GOSSIP_ALIVETIMEINTERVAL", "1m30s"),
            ("CORE_PEER_GOSSIP_PROPAGATEPEERNUM", "5"),
            ("CORE_PEER_GOSSIP_ELECTION_LEADERALIVETHRESHOLD", "2h"),
            ("CORE_PEER_LOCALMSPID", "Org1MSP"),
            ("CORE_PEER_TLS_ENABLED", "true"),
            ("CORE_PEER_MAXRECVMSGSIZE", "1048576"),
            ("CORE_PEER_GOSSIP_NOSUCHTHING", "1"),
            ("CORE_VM_ENDPOINT", "unix:///x"),
            ("HOME", "/root"),
        ],
    )
    .expect("loads");
    assert_eq!(cfg.external_endpoint, "peer0.org1.example.com:7051");
    assert_eq!(
        cfg.bootstrap,
        ["peer1.org1.example.com:7051", "peer2.org1.example.com:7051"]
    );
    assert_eq!(cfg.gossip.pull_interval, Duration::from_millis(1500));
    assert_eq!(cfg.gossip.alive_time_interval, Duration::from_secs(90));
    assert_eq!(cfg.gossip.propagate_peer_num, 5);
    assert_eq!(cfg.gossip.leader_alive_threshold, Duration::from_secs(7200));
    assert_eq!(cfg.mspid, "Org1MSP");
    assert_eq!(cfg.comm.recv_message_len_max, 1 << 20);
    let tls = cfg.tls.as_ref().expect("tls on");
    let base = cfg
        .config_file
        .as_ref()
        .and_then(|f| f.parent())
        .expect("dir");
    assert_eq!(tls.cert_file, base.join("tls/server.crt"));
    assert_eq!(tls.root_cert_files.len(), 2);
    let w = warnings(&cfg);
    assert_eq!(
        w.iter()
            .filter(|m| m.contains("CORE_PEER_GOSSIP_NOSUCHTHING"))
            .count(),
        1
    );
    assert!(!w.iter().any(|m| m.contains("CORE_VM_ENDPOINT")));
    assert!(!w.iter().any(|m| m.contains("externalEndpoint is empty")));
}

#[test]
fn unknown_keys_and_bare_durations_warn_once() {
    let text = "peer:\n  address: 10.0.0.1:7051\n  localMspId: O\n  mspConfigPath: /msp\n  \
                typoKey: 1\n  gossip:\n    pullIntervall: 4s\n    aliveTimeInterval: 5\n    \
                bootstrap: [10.0.0.2:7051]\n    externalEndpoint: 10.0.0.1:7051\nmystery:\n  a: 1\n";
    let cfg = load_text(text, &[]).expect("loads");
    let w = warnings(&cfg);
    for key in ["peer.typoKey", "peer.gossip.pullIntervall", "mystery.a"] {
        let hits = w
            .iter()
            .filter(|m| m.starts_with(key) && m.contains("unknown key"))
            .count();
        assert_eq!(hits, 1, "{key}: {w:#?}");
    }
    assert_eq!(
        cfg.gossip.alive_time_interval,
        Duration::from_nanos(5),
        "viper: bare = ns"
    );
    assert!(
        w.iter()
            .any(|m| m.contains("aliveTimeInterval") && m.contains("5 ns"))
    );
    assert_eq!(cfg.bootstrap, ["10.0.0.2:7051"]);
    assert_eq!(cfg.msp_dir, Path::new("/msp"), "absolute stays absolute");
}

#[test]
fn zero_or_unset_means_default_and_derived_defaults_follow_fabric() {
    let text = "peer:\n  address: h:1\n  localMspId: O\n  mspConfigPath: m\n  gossip:\n    \
                pullInterval: 0\n    aliveTimeInterval: 2s\n    propagatePeerNum: 0\n";
    let cfg = load_text(text, &[]).expect("loads");
    assert_eq!(cfg.gossip.pull_interval, Duration::from_secs(4));
    assert_eq!(cfg.gossip.propagate_peer_num, 3);
    assert_eq!(
        cfg.gossip.alive_expiration_timeout,
        Duration::from_secs(10),
        "5 × alive"
    );
    assert_eq!(
        cfg.gossip.reconnect_interval,
        Duration::from_secs(10),
        "= expiration"
    );
    assert_eq!(
        cfg.listen_addr, "h:1",
        "listenAddress falls back to peer.address"
    );
}

#[test]
fn bad_configs_say_what_is_wrong() {
    let err = |text: &str| load_text(text, &[]).expect_err("refused").to_string();
    let e = err("peer:\n  address: h:1\n  mspConfigPath: m\n");
    assert!(e.contains("peer.localMspId"), "{e}");
    let e = err("peer:\n  address: h:1\n  localMspId: O\n");
    assert!(e.contains("peer.mspConfigPath"), "{e}");
    let e = err("peer:\n  localMspId: O\n  mspConfigPath: m\n");
    assert!(e.contains("peer.address"), "{e}");
    let e = err(
        "peer:\n  address: h:1\n  localMspId: O\n  mspConfigPath: m\n  tls:\n    enabled: true\n",
    );
    assert!(
        e.contains("peer.tls.cert.file") && e.contains("enabled"),
        "{e}"
    );
    let base = "peer:\n  address: h:1\n  localMspId: O\n  mspConfigPath: m\n  gossip:\n";
    let e = err(&format!(
        "{base}    useLeaderElection: true\n    orgLeader: true\n"
    ));
    assert!(
        e.contains("useLeaderElection") && e.contains("orgLeader"),
        "{e}"
    );
    let e = err(&format!("{base}    pullInterval: soon\n"));
    assert!(
        e.contains("peer.gossip.pullInterval") && e.contains("soon"),
        "{e}"
    );
    let e = err(&format!("{base}    sendBuffSize: -3\n"));
    assert!(e.contains("peer.gossip.sendBuffSize"), "{e}");
    let e = err(
        "peer:\n  address: h:1\n  localMspId: O\n  mspConfigPath: m\n  keepalive:\n    client:\n      interval: 10s\n",
    );
    assert!(e.contains("keepalive"), "{e}");
    let e = err("peer: [unclosed");
    assert!(e.contains("core.yaml does not parse"), "{e}");
    let e = NodeConfig::load(
        Some(Path::new("/no/such/core.yaml")),
        None,
        Vec::new(),
        None,
    )
    .expect_err("missing file")
    .to_string();
    assert!(e.contains("/no/such/core.yaml"), "{e}");
    let e = NodeConfig::load(None, None, Vec::new(), None)
        .expect_err("none")
        .to_string();
    assert!(e.contains("FABRIC_CFG_PATH"), "{e}");
}

#[test]
fn fabric_cfg_path_and_listen_override() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("core.yaml"), SAMPLE).expect("write");
    let cfg = NodeConfig::load(None, Some(dir.path()), Vec::new(), Some("127.0.0.1:9999"))
        .expect("loads");
    assert_eq!(cfg.listen_addr, "127.0.0.1:9999");
    assert_eq!(cfg.msp_dir, dir.path().join("msp"));
}

fn pki_cfg(root: &Path, tls: bool) -> NodeConfig {
    let peer = root.join("org1.example.com/peers/peer0.org1.example.com");
    let text = format!(
        "peer:\n  address: 127.0.0.1:7051\n  localMspId: Org1MSP\n  mspConfigPath: msp\n  \
         tls:\n    enabled: {tls}\n    cert:\n      file: tls/server.crt\n    key:\n      \
         file: tls/server.key\n    rootcert:\n      file: tls/ca.crt\n"
    );
    std::fs::write(peer.join("core.yaml"), text).expect("write");
    NodeConfig::load(Some(&peer.join("core.yaml")), None, Vec::new(), None).expect("loads")
}

#[test]
fn material_loads_and_errors_name_the_file_and_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = TestPki::generate(&TestPkiSpec::uniform(2, 1, 1_700_000_000)).expect("pki");
    pki.write_msp_dirs(dir.path()).expect("dirs");
    let cfg = pki_cfg(dir.path(), true);
    let org2 = (
        "Org2MSP".to_owned(),
        dir.path().join("org2.example.com/msp"),
    );
    let m = material::load(&cfg, std::slice::from_ref(&org2)).expect("material");
    assert_eq!(m.msp.orgs().count(), 2);
    assert!(m.tls.is_some());
    assert_eq!(m.signer.identity().mspid, "Org1MSP");

    let mut no_key = cfg.clone();
    if let Some(t) = no_key.tls.as_mut() {
        t.key_file = dir.path().join("missing.key");
    }
    let e = material::load(&no_key, &[])
        .expect_err("no key")
        .to_string();
    assert!(
        e.contains("peer.tls.key.file") && e.contains("missing.key"),
        "{e}"
    );

    let mut no_msp = cfg.clone();
    no_msp.msp_dir = dir.path().join("nowhere");
    let e = material::load(&no_msp, &[])
        .expect_err("no msp")
        .to_string();
    assert!(
        e.contains("peer.mspConfigPath") && e.contains("nowhere"),
        "{e}"
    );

    let bad_org = ("Org9MSP".to_owned(), dir.path().join("nope"));
    let e = material::load(&cfg, &[bad_org])
        .expect_err("bad org")
        .to_string();
    assert!(e.contains("--org-msp") && e.contains("Org9MSP"), "{e}");

    assert!(material::parse_org_msp_arg("Org1MSP=/x").is_ok());
    assert!(material::parse_org_msp_arg("Org1MSP").is_err());
    assert!(material::parse_org_msp_arg("=/x").is_err());
}

#[test]
fn emit_when_idle_is_our_key_and_defaults_on() {
    let cfg = load_text(SAMPLE, &[]).expect("sample loads");
    assert!(cfg.gossip.emit_when_idle, "leading-edge emitter by default");
    let cfg = load_text(SAMPLE, &[("CORE_PEER_GOSSIP_EMITWHENIDLE", "false")]).expect("loads");
    assert!(
        !cfg.gossip.emit_when_idle,
        "false restores Fabric's tick grid"
    );
    assert!(
        !warnings(&cfg).iter().any(|m| m.contains("EMITWHENIDLE")),
        "a known key: no unknown-key warning"
    );
    let text = SAMPLE.replacen("  gossip:\n", "  gossip:\n    emitWhenIdle: false\n", 1);
    assert_ne!(text, SAMPLE, "the sample has a peer.gossip section");
    let cfg = load_text(&text, &[]).expect("loads");
    assert!(!cfg.gossip.emit_when_idle);
}

#[test]
fn pull_waits_are_read_and_pull_on_gap_is_our_key() {
    let cfg = load_text(SAMPLE, &[]).expect("sample loads");
    let d = GossipConfig::default();
    assert_eq!(cfg.gossip.digest_wait_time, d.digest_wait_time);
    assert_eq!(cfg.gossip.request_wait_time, d.request_wait_time);
    assert_eq!(cfg.gossip.response_wait_time, d.response_wait_time);
    assert!(cfg.gossip.pull_on_gap, "repair at once by default");
    let cfg = load_text(
        SAMPLE,
        &[
            ("CORE_PEER_GOSSIP_DIGESTWAITTIME", "250ms"),
            ("CORE_PEER_GOSSIP_REQUESTWAITTIME", "400ms"),
            ("CORE_PEER_GOSSIP_RESPONSEWAITTIME", "3s"),
            ("CORE_PEER_GOSSIP_PULLONGAP", "false"),
        ],
    )
    .expect("loads");
    assert_eq!(cfg.gossip.digest_wait_time, Duration::from_millis(250));
    assert_eq!(cfg.gossip.request_wait_time, Duration::from_millis(400));
    assert_eq!(cfg.gossip.response_wait_time, Duration::from_secs(3));
    assert!(!cfg.gossip.pull_on_gap, "false restores timer-only rounds");
    assert!(
        !warnings(&cfg).iter().any(|m| m.contains("PULLONGAP")),
        "a known key: no unknown-key warning"
    );
}

#[test]
fn emit_interval_min_is_our_key_and_defaults_to_half_the_burst_latency() {
    let cfg = load_text(SAMPLE, &[]).expect("sample loads");
    assert_eq!(cfg.gossip.emit_interval_min, None);
    assert_eq!(
        cfg.gossip.emitter_interval_min(),
        Duration::from_millis(5),
        "two timed flushes per maxPropagationBurstLatency"
    );
    let cfg = load_text(
        SAMPLE,
        &[
            ("CORE_PEER_GOSSIP_EMITINTERVALMIN", "2500us"),
            ("CORE_PEER_GOSSIP_MAXPROPAGATIONBURSTLATENCY", "20ms"),
        ],
    )
    .expect("loads");
    assert_eq!(
        cfg.gossip.emitter_interval_min(),
        Duration::from_micros(2_500)
    );
    assert!(
        !warnings(&cfg).iter().any(|m| m.contains("EMITINTERVALMIN")),
        "a known key: no unknown-key warning"
    );
    let cfg = load_text(
        SAMPLE,
        &[("CORE_PEER_GOSSIP_MAXPROPAGATIONBURSTLATENCY", "20ms")],
    )
    .expect("loads");
    assert_eq!(
        cfg.gossip.emitter_interval_min(),
        Duration::from_millis(10),
        "follows the burst latency"
    );
    let cfg = load_text(SAMPLE, &[("CORE_PEER_GOSSIP_EMITINTERVALMIN", "1s")]).expect("loads");
    assert_eq!(
        cfg.gossip.emitter_interval_min(),
        Duration::from_millis(10),
        "never longer than maxPropagationBurstLatency"
    );
}

#[test]
fn file_system_path_is_read_and_resolved_like_other_paths() {
    let cfg = load_text(SAMPLE, &[]).expect("sample loads");
    assert_eq!(
        cfg.file_system_path,
        Path::new("/var/hyperledger/production")
    );
    let cfg = load_text(SAMPLE, &[("CORE_PEER_FILESYSTEMPATH", "production")]).expect("loads");
    let base = cfg
        .config_file
        .as_ref()
        .and_then(|f| f.parent())
        .expect("dir");
    assert_eq!(
        cfg.file_system_path,
        base.join("production"),
        "relative to the config folder"
    );
    let text = SAMPLE.replacen("  fileSystemPath: /var/hyperledger/production\n", "", 1);
    assert_ne!(text, SAMPLE, "the sample sets it");
    let cfg = load_text(&text, &[]).expect("loads");
    assert_eq!(cfg.file_system_path, Path::new(FILE_SYSTEM_PATH_DEFAULT));
    assert!(
        !warnings(&cfg).iter().any(|m| m.contains("fileSystemPath")),
        "{:#?}",
        cfg.diagnostics
    );
}

#[test]
fn commit_linger_is_our_key_and_defaults_to_250_ms() {
    let cfg = load_text(SAMPLE, &[]).expect("sample loads");
    assert_eq!(cfg.gossip.state.commit_linger, Duration::from_millis(250));
    let cfg = load_text(SAMPLE, &[("CORE_PEER_GOSSIP_STATE_COMMITLINGER", "40ms")]).expect("loads");
    assert_eq!(cfg.gossip.state.commit_linger, Duration::from_millis(40));
    let cfg = load_text(SAMPLE, &[("CORE_PEER_GOSSIP_STATE_COMMITLINGER", "0")]).expect("loads");
    assert_eq!(
        cfg.gossip.state.commit_linger,
        Duration::from_millis(250),
        "zero means the default, as for Fabric's durations"
    );
}

#[test]
fn election_keys_are_read_with_fabric_defaults() {
    let cfg = load_text(SAMPLE, &[]).expect("sample loads");
    let e = &cfg.gossip.election;
    assert!(
        !e.use_leader_election && e.org_leader,
        "sample: static org leader"
    );
    assert_eq!(e.startup_grace_period, Duration::from_secs(15));
    assert_eq!(e.membership_sample_interval, Duration::from_secs(1));
    assert_eq!(e.leader_election_duration, Duration::from_secs(5));
    assert_eq!(cfg.gossip.leader_alive_threshold, Duration::from_secs(10));
    let env = [
        ("CORE_PEER_GOSSIP_USELEADERELECTION", "true"),
        ("CORE_PEER_GOSSIP_ORGLEADER", "false"),
        ("CORE_PEER_GOSSIP_ELECTION_LEADERELECTIONDURATION", "2s"),
        ("CORE_PEER_GOSSIP_ELECTION_STARTUPGRACEPERIOD", "7s"),
    ];
    let cfg = load_text(SAMPLE, &env).expect("loads");
    let e = &cfg.gossip.election;
    assert!(e.use_leader_election && !e.org_leader);
    assert_eq!(e.leader_election_duration, Duration::from_secs(2));
    assert_eq!(e.startup_grace_period, Duration::from_secs(7));
    let both = [("CORE_PEER_GOSSIP_USELEADERELECTION", "true")];
    let refused = load_text(SAMPLE, &both).expect_err("both true").to_string();
    assert!(
        refused.contains("orgLeader and useLeaderElection"),
        "{refused}"
    );
}
