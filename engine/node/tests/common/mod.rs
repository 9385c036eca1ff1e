//! Helpers of the `gossip-node` process tests: a one-org test PKI in Fabric's MSP layout, a
//! trimmed core.yaml, starting a node with a control listener, and a control connection. Every
//! wait is bounded.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use gossip_engine::clock;
use gossip_testkit::testpki::{TestPki, TestPkiSpec};
use serde_json::{Value, json};

pub const WAIT: Duration = Duration::from_secs(60);

pub fn free_port() -> u16 {
    gossip_testkit::ports::free_local_port()
}

pub struct Node {
    pub child: Child,
    pub control: SocketAddr,
    pub log: PathBuf,
}

impl Node {
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// How much of a node's log a failing test prints (its end).
const LOG_TAIL_LEN_BYTES: usize = 16 * 1024;

impl Drop for Node {
    /// Kills the node; when the test is failing, prints the end of its log first (the log lives in
    /// the test's temporary folder, which goes with the test).
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = self.log_text();
            let from = log.len().saturating_sub(LOG_TAIL_LEN_BYTES);
            let from = (from..log.len())
                .find(|&i| log.is_char_boundary(i))
                .unwrap_or(log.len());
            eprintln!(
                "--- end of node log {} ---\n{}",
                self.log.display(),
                &log[from..]
            );
        }
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub fn core_yaml(name: &str, port: u16, bootstrap_port: u16) -> String {
    format!(
        r#"# Trimmed Fabric core.yaml (relative paths resolve against this folder).
peer:
  id: {name}
  networkId: dev
  listenAddress: 127.0.0.1:{port}
  address: 127.0.0.1:{port}
  localMspId: Org1MSP
  mspConfigPath: msp
  fileSystemPath: production
  gossip:
    bootstrap: 127.0.0.1:{bootstrap_port}
    useLeaderElection: false
    orgLeader: true
    endpoint:
    externalEndpoint: 127.0.0.1:{port}
    pullInterval: 1s
    requestStateInfoInterval: 1s
    publishStateInfoInterval: 1s
    aliveTimeInterval: 1s
    maxPropagationBurstLatency: 10ms
    pvtData:
      pullRetryThreshold: 60s
    state:
      enabled: false
  tls:
    enabled: true
    clientAuthRequired: true
    cert:
      file: tls/server.crt
    key:
      file: tls/server.key
    rootcert:
      file: tls/ca.crt
  keepalive:
    client:
      interval: 60s
      timeout: 20s
ledger:
  state:
    stateDatabase: goleveldb
# No operations endpoint: several nodes run at once (ops_endpoint.rs turns it on).
operations:
  listenAddress: ""
"#
    )
}

pub fn start(bin: &Path, dir: &Path, name: &str) -> Node {
    start_with(bin, dir, name, &[], Stdio::null())
}

pub fn start_with(bin: &Path, dir: &Path, name: &str, extra_args: &[&str], stdin: Stdio) -> Node {
    let control = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let log = dir.join("node.log");
    // Appended: a restarted node's log follows the earlier run's.
    let stderr = std::fs::File::options()
        .create(true)
        .append(true)
        .open(&log)
        .expect("log file");
    let child = Command::new(bin)
        .arg("--config")
        .arg(dir.join("core.yaml"))
        .arg("--control-addr")
        .arg(control.to_string())
        .args(extra_args)
        .env("FABRIC_LOGGING_SPEC", "gossip=info:info")
        .env_remove("FABRIC_CFG_PATH")
        .stdin(stdin)
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {name}: {e}"));
    Node {
        child,
        control,
        log,
    }
}

/// A control connection: requests get their reply; event lines are collected on the side.
pub struct Control {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    /// Event lines read while waiting for replies.
    pub events: Vec<Value>,
}

impl Control {
    pub fn connect(node: &Node) -> Control {
        let deadline = Instant::now() + WAIT;
        loop {
            match TcpStream::connect(node.control) {
                Ok(s) => {
                    s.set_read_timeout(Some(Duration::from_secs(2)))
                        .expect("timeout");
                    return Control {
                        reader: BufReader::new(s.try_clone().expect("clone")),
                        writer: s,
                        events: Vec::new(),
                    };
                }
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(100))
                }
                Err(e) => panic!("control {}: {e}\n{}", node.control, node.log_text()),
            }
        }
    }

    /// Reads one line; `None` on read timeout.
    pub fn line(&mut self) -> Option<Value> {
        let mut text = String::new();
        match self.reader.read_line(&mut text) {
            Ok(0) => panic!("control connection closed"),
            Ok(_) => Some(serde_json::from_str(&text).expect("json line")),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                None
            }
            Err(e) => panic!("control read: {e}"),
        }
    }

    pub fn request(&mut self, req: Value) -> Value {
        let mut text = req.to_string();
        text.push('\n');
        self.writer.write_all(text.as_bytes()).expect("write");
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if let Some(v) = self.line() {
                if v.get("event").is_some() {
                    self.events.push(v);
                } else {
                    return v;
                }
            }
        }
        panic!("no reply to {req}");
    }

    pub fn ok(&mut self, req: Value) -> Value {
        let reply = self.request(req.clone());
        assert_eq!(reply["ok"], json!(true), "{req} -> {reply}");
        reply
    }
}

pub fn wait_exit(node: &mut Node) -> std::process::ExitStatus {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(status) = node.child.try_wait().expect("try_wait") {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "node did not exit\n{}",
            node.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Writes a one-org test PKI in Fabric's MSP layout under `root`; returns each peer's name and
/// folder (where its core.yaml goes).
pub fn one_org_peers(root: &Path, peers: usize) -> Vec<(String, PathBuf)> {
    let spec = TestPkiSpec::uniform(1, peers, clock::now().as_unix_secs());
    let pki = TestPki::generate(&spec).expect("pki");
    pki.write_msp_dirs(root).expect("msp dirs");
    let org = &pki.orgs[0];
    org.peers
        .iter()
        .map(|p| {
            let dir = root.join(&org.domain).join("peers").join(&p.name);
            (p.name.clone(), dir)
        })
        .collect()
}

/// The channel of the ledger tests.
pub const CHANNEL: &str = "mychannel";

/// The node's ledger height of [`CHANNEL`] (control `ledger_height`).
pub fn ledger_height(ctl: &mut Control) -> u64 {
    let reply = ctl.ok(json!({"op": "ledger_height", "channel": CHANNEL}));
    reply["height"]
        .as_u64()
        .unwrap_or_else(|| panic!("{reply}"))
}

/// Polls `ledger_height` until it is `height`.
pub fn wait_height(ctl: &mut Control, node: &Node, height: u64) {
    let deadline = Instant::now() + WAIT;
    loop {
        let got = ledger_height(ctl);
        if got == height {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "height {got}, not {height}\n{}",
            node.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Joins [`CHANNEL`] with org `Org1MSP`, no anchors.
pub fn join(ctl: &mut Control) {
    ctl.ok(json!({"op": "join_channel", "channel": CHANNEL, "orgs": ["Org1MSP"], "anchors": []}));
}

/// Injects block `seq` of [`CHANNEL`] (512 bytes) at the node.
pub fn inject(ctl: &mut Control, seq: u64) {
    ctl.ok(json!({"op": "inject_block", "channel": CHANNEL, "seq": seq, "size_bytes": 512}));
}
