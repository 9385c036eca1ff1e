//! Starts two real `gossip-node` processes of one org (mutual TLS), drives them over the control
//! protocol (engine/CONTROL.md): join a channel on both, inject 5 blocks on one, see all 5 block
//! events in order on the other, both ledger heights reach 6 in the other's StateInfo, wire bytes
//! are counted, then `shutdown` both and check they exit 0. Every wait is
//! bounded; nothing asserts on timing.

#![allow(clippy::disallowed_methods)] // bounded waits on the real clock

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{
    Control, Node, WAIT, core_yaml, free_port, one_org_peers, start, start_with, wait_exit,
};
use serde_json::{Value, json};

/// Joins both nodes to `mychannel`, subscribes to B's events, and waits until A sees B in the
/// channel, so a push has a target (gossip-node does not pull yet).
fn join_and_subscribe(a: &Node, b: &Node) -> (Control, Control) {
    let mut ca = Control::connect(a);
    let mut cb = Control::connect(b);
    let join =
        json!({"op": "join_channel", "channel": "mychannel", "orgs": ["Org1MSP"], "anchors": []});
    ca.ok(join.clone());
    cb.ok(join);
    cb.ok(json!({"op": "subscribe"}));
    let deadline = Instant::now() + WAIT;
    loop {
        let r = ca.ok(json!({"op": "peers_of_channel", "channel": "mychannel"}));
        if r["peers"].as_array().is_some_and(|p| !p.is_empty()) {
            return (ca, cb);
        }
        assert!(
            Instant::now() < deadline,
            "A never saw B in the channel\nA:\n{}\nB:\n{}",
            a.log_text(),
            b.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn two_processes_disseminate_blocks_over_control_protocol() {
    let bin = Path::new(env!("CARGO_BIN_EXE_gossip-node"));
    let tmp = tempfile::tempdir().expect("tempdir");
    let peers = one_org_peers(tmp.path(), 2);
    let ports = [free_port(), free_port()];
    let dirs: Vec<PathBuf> = peers.iter().map(|(_, dir)| dir.clone()).collect();
    for (i, dir) in dirs.iter().enumerate() {
        let yaml = core_yaml(&peers[i].0, ports[i], ports[1 - i]);
        std::fs::write(dir.join("core.yaml"), yaml).expect("core.yaml");
    }
    let mut a = start(bin, &dirs[0], "peer0");
    let mut b = start(bin, &dirs[1], "peer1");
    let (mut ca, mut cb) = join_and_subscribe(&a, &b);

    for seq in 1..=5u64 {
        let r = ca.ok(
            json!({"op": "inject_block", "channel": "mychannel", "seq": seq, "size_bytes": 1024}),
        );
        assert!(r["injected_unix_ns"].as_u64().is_some(), "{r}");
    }
    let deadline = Instant::now() + WAIT;
    let mut blocks: Vec<Value> = Vec::new();
    while blocks.len() < 5 {
        assert!(
            Instant::now() < deadline,
            "B saw {blocks:?}\nA:\n{}\nB:\n{}",
            a.log_text(),
            b.log_text()
        );
        blocks.extend(cb.events.drain(..).filter(|e| e["event"] == "block"));
        if let Some(v) = cb.line()
            && v["event"] == "block"
        {
            blocks.push(v);
        }
    }
    let seqs: Vec<u64> = blocks.iter().filter_map(|e| e["seq"].as_u64()).collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5], "in order, first delivery only");
    for e in &blocks {
        assert_eq!(e["channel"], json!("mychannel"));
        assert_eq!(e["size_bytes"], json!(1024));
        assert!(e["received_unix_ns"].as_u64().is_some());
    }

    let stats = ca.ok(json!({"op": "stats"}));
    assert!(
        stats["stats"]["comm"]["messages_sent"].as_u64() > Some(0),
        "{stats}"
    );
    assert_eq!(stats["stats"]["fault_dropped"], json!(0));
    let wire = |stats: &Value, dir: &str| stats["stats"]["comm"][dir].as_u64().unwrap_or(0);
    // Each block crossed the wire (as TLS records) at least once in each node's counters.
    let stats_b = cb.ok(json!({"op": "stats"}));
    for (name, s) in [("A", &stats), ("B", &stats_b)] {
        for dir in ["wire_bytes_sent", "wire_bytes_received"] {
            assert!(wire(s, dir) > 5 * 1024, "{name} {dir}: {s}");
        }
    }
    assert!(
        wire(&stats_b, "wire_bytes_received") > wire(&stats_b, "wire_bytes_sent"),
        "B mostly receives blocks: {stats_b}"
    );

    // Delivering blocks 1-5 in order raised both ledger heights to 6, and each node sees the
    // other's in its StateInfo (republished every publishStateInfoInterval, 1 s here).
    for (name, ctl) in [("A", &mut ca), ("B", &mut cb)] {
        let deadline = Instant::now() + WAIT;
        loop {
            let r = ctl.ok(json!({"op": "peers_of_channel", "channel": "mychannel"}));
            let heights: Vec<u64> = r["peers"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| p["ledger_height"].as_u64())
                .collect();
            if heights == [6] {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{name} sees heights {heights:?}, not [6]: {r}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    let peers = cb.ok(json!({"op": "peers"}));
    assert_eq!(peers["alive"].as_array().map(Vec::len), Some(1), "{peers}");
    let bad = cb.request(json!({"op": "no_such_op"}));
    assert_eq!(bad["ok"], json!(false));

    ca.ok(json!({"op": "shutdown"}));
    cb.ok(json!({"op": "shutdown"}));
    let sa = wait_exit(&mut a);
    let sb = wait_exit(&mut b);
    assert!(sa.success(), "A exit {sa}\n{}", a.log_text());
    assert!(sb.success(), "B exit {sb}\n{}", b.log_text());
    assert!(a.log_text().contains("stopped"), "{}", a.log_text());
}

/// A launcher's pipe on stdin: closing it stops the node cleanly, as when the launcher dies.
/// Also: `stats` reports the runtime the node was started with and the commit it was built from.
#[test]
fn node_exits_when_its_stdin_closes() {
    let bin = Path::new(env!("CARGO_BIN_EXE_gossip-node"));
    let tmp = tempfile::tempdir().expect("tempdir");
    let (name, dir) = one_org_peers(tmp.path(), 1).remove(0);
    let port = free_port();
    std::fs::write(dir.join("core.yaml"), core_yaml(&name, port, port)).expect("core.yaml");
    let args = [
        "--exit-on-stdin-eof",
        "--worker-threads",
        "1",
        "--verifier-threads",
        "0",
    ];
    let mut node = start_with(bin, &dir, "peer0", &args, Stdio::piped());
    let mut control = Control::connect(&node);
    let stats = control.ok(json!({"op": "stats"}));
    assert_eq!(
        stats["stats"]["runtime"],
        json!({
            "scheduler": "current_thread",
            "worker_threads": 1,
            "verifier_threads": 0,
            "commit": gossip_node::ops::COMMIT_SHA,
        }),
        "{stats}"
    );
    drop(node.child.stdin.take());
    let status = wait_exit(&mut node);
    assert!(status.success(), "exit {status}\n{}", node.log_text());
    let log = node.log_text();
    assert!(
        log.contains("stdin closed") && log.contains("stopped"),
        "{log}"
    );
}

#[test]
fn config_errors_exit_nonzero_with_a_message() {
    let bin = Path::new(env!("CARGO_BIN_EXE_gossip-node"));
    let tmp = tempfile::tempdir().expect("tempdir");
    let core = tmp.path().join("core.yaml");
    std::fs::write(
        &core,
        "peer:\n  address: 127.0.0.1:7051\n  localMspId: Org1MSP\n  mspConfigPath: nosuchmsp\n",
    )
    .expect("write");
    let out = Command::new(bin)
        .arg("--config")
        .arg(&core)
        .env_remove("FABRIC_CFG_PATH")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("peer.mspConfigPath") && stderr.contains("nosuchmsp"),
        "{stderr}"
    );

    let out = Command::new(bin)
        .arg("--config")
        .arg(&core)
        .args(["--fault-drop-share", "0.1"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--enable-fault-hooks"));
}

/// A config file that is missing, a folder or not YAML: exit 2 and one line on stderr naming the
/// file, each cause once (no "X: X" repetition, no log line besides), backtrace or not.
#[test]
fn config_file_errors_are_printed_once() {
    let bin = Path::new(env!("CARGO_BIN_EXE_gossip-node"));
    let tmp = tempfile::tempdir().expect("tempdir");
    let bad_yaml = tmp.path().join("core.yaml");
    std::fs::write(&bad_yaml, "peer: [unclosed\n").expect("write");
    let missing = tmp.path().join("nonexistent.yaml");
    let cases = [
        (missing.as_path(), "No such file or directory"),
        (tmp.path(), "Is a directory"),
        (bad_yaml.as_path(), "does not parse"),
    ];
    for (config, cause) in cases {
        let out = Command::new(bin)
            .arg("--config")
            .arg(config)
            .env_remove("FABRIC_CFG_PATH")
            .env("RUST_BACKTRACE", "1")
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        assert_eq!(stderr.matches(cause).count(), 1, "cause once: {stderr}");
        assert!(
            stderr.starts_with("gossip-node: configuration error: ")
                && stderr.contains(&config.display().to_string()),
            "{stderr}"
        );
    }
}

/// `--orderer-signer`: blocks A injects are orderer-signed (their single data entry, an envelope,
/// is larger than `size_bytes`) and B, which does not check orderer signatures yet, delivers them
/// in order. A signer folder that does not load stops the node at startup with exit 2.
#[test]
fn orderer_signed_blocks_flow_and_a_bad_signer_folder_refuses_to_start() {
    let bin = Path::new(env!("CARGO_BIN_EXE_gossip-node"));
    let tmp = tempfile::tempdir().expect("tempdir");
    let peers = one_org_peers(tmp.path(), 2);
    let ports = [free_port(), free_port()];
    for (i, (name, dir)) in peers.iter().enumerate() {
        std::fs::write(
            dir.join("core.yaml"),
            core_yaml(name, ports[i], ports[1 - i]),
        )
        .expect("core.yaml");
    }
    let orderer_msp = format!(
        "OrdererMSP={}",
        tmp.path().join("example.com/msp").display()
    );
    let signer = tmp
        .path()
        .join("example.com/orderers/orderer.example.com/msp")
        .display()
        .to_string();

    let missing = tmp.path().join("no/such/msp").display().to_string();
    let out = Command::new(bin)
        .arg("--config")
        .arg(peers[0].1.join("core.yaml"))
        .args(["--orderer-msp", &orderer_msp, "--orderer-signer", &missing])
        .env_remove("FABRIC_CFG_PATH")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--orderer-signer"), "{stderr}");

    let a_args = ["--orderer-msp", &orderer_msp, "--orderer-signer", &signer];
    let mut a = start_with(bin, &peers[0].1, "peer0", &a_args, Stdio::null());
    let mut b = start_with(bin, &peers[1].1, "peer1", &a_args[..2], Stdio::null());
    let (mut ca, mut cb) = join_and_subscribe(&a, &b);
    for seq in 1..=2u64 {
        ca.ok(
            json!({"op": "inject_block", "channel": "mychannel", "seq": seq, "size_bytes": 1024}),
        );
    }
    let deadline = Instant::now() + WAIT;
    let mut blocks: Vec<Value> = Vec::new();
    while blocks.len() < 2 {
        assert!(
            Instant::now() < deadline,
            "B saw {blocks:?}\n{}",
            b.log_text()
        );
        blocks.extend(cb.events.drain(..).filter(|e| e["event"] == "block"));
        if let Some(v) = cb.line()
            && v["event"] == "block"
        {
            blocks.push(v);
        }
    }
    let seqs: Vec<u64> = blocks.iter().filter_map(|e| e["seq"].as_u64()).collect();
    assert_eq!(seqs, [1, 2]);
    for e in &blocks {
        assert!(
            e["size_bytes"].as_u64() > Some(1024),
            "the envelope's size: {e}"
        );
    }
    ca.ok(json!({"op": "shutdown"}));
    cb.ok(json!({"op": "shutdown"}));
    assert!(wait_exit(&mut a).success(), "{}", a.log_text());
    assert!(wait_exit(&mut b).success(), "{}", b.log_text());
}
