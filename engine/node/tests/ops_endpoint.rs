//! Starts one real `gossip-node` with its operations endpoint on a free port and
//! `metrics.provider: prometheus`, joins a channel over the control protocol, then checks
//! `/metrics` (Fabric's names and ours), `/healthz` (200, Fabric's body), `/logspec` (GET, PUT,
//! GET again; a bad spec is 400), `/version`, and that the node stops cleanly. Two more tests:
//! live values in the commit-duration and stage histograms of a node that received and
//! committed blocks; TLS with client authentication. The HTTP client is a raw HTTP/1.1 request
//! over a TcpStream (in rustls for TLS). Every wait is bounded.

#![allow(clippy::disallowed_methods)] // bounded waits on the real clock

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use common::{
    Control, WAIT, core_yaml, free_port, inject, join, one_org_peers, start, wait_exit, wait_height,
};
use serde_json::{Value, json};

/// One request with `Connection: close`; returns the status code and the body.
fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut reply = String::new();
    s.read_to_string(&mut reply)?;
    let status = reply
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = reply
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

fn json_of(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// A core.yaml with the operations endpoint on `ops` and `metrics.provider: prometheus`.
fn ops_yaml(name: &str, port: u16, bootstrap_port: u16, ops: SocketAddr) -> String {
    core_yaml(name, port, bootstrap_port).replace(
        "listenAddress: \"\"",
        &format!("listenAddress: {ops}\nmetrics:\n  provider: prometheus"),
    )
}

/// The value of the sample `series` (exact, labels included) in a `/metrics` text.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter_map(|l| l.split_once(' '))
        .find(|(s, _)| *s == series)
        .and_then(|(_, v)| v.trim().parse().ok())
}

/// Calls `attempt` every 100 ms until it gives `Ok`; panics with its last error and the node's
/// log after [`WAIT`].
fn poll<T>(node: &common::Node, mut attempt: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        match attempt() {
            Ok(v) => return v,
            Err(e) => assert!(Instant::now() < deadline, "{e}\n{}", node.log_text()),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `/metrics` of `ops`, polled until the endpoint answers.
fn scrape(ops: SocketAddr, node: &common::Node) -> String {
    poll(node, || match http(ops, "GET", "/metrics", "") {
        Ok((200, text)) => Ok(text),
        other => Err(format!("no /metrics: {other:?}")),
    })
}

/// Two nodes: blocks injected at the first reach the second, which commits them. The second's
/// `/metrics` then shows Fabric's commit-duration histogram with one observation per committed
/// block, and live values in our stage histograms and queue gauges.
#[test]
fn metrics_show_commit_durations_and_stage_histograms_with_live_values() {
    let bin = Path::new(env!("CARGO_BIN_EXE_gossip-node"));
    let tmp = tempfile::tempdir().expect("tempdir");
    let peers = one_org_peers(tmp.path(), 2);
    let ports = [free_port(), free_port()];
    let ops = SocketAddr::from(([127, 0, 0, 1], free_port()));
    for (i, (name, dir)) in peers.iter().enumerate() {
        let yaml = if i == 1 {
            ops_yaml(name, ports[1], ports[0], ops)
        } else {
            core_yaml(name, ports[0], ports[0])
        };
        std::fs::write(dir.join("core.yaml"), yaml).expect("core.yaml");
    }
    let nodes: Vec<common::Node> = peers
        .iter()
        .map(|(name, dir)| start(bin, dir, name))
        .collect();
    let mut ctls: Vec<Control> = nodes.iter().map(Control::connect).collect();
    for ctl in &mut ctls {
        join(ctl);
    }
    for seq in 1..=5 {
        inject(&mut ctls[0], seq);
    }
    wait_height(&mut ctls[1], &nodes[1], 6);

    let text = scrape(ops, &nodes[1]);
    assert!(
        text.contains("# TYPE gossip_state_commit_duration histogram\n"),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"gossip_state_commit_duration_count{channel="mychannel"}"#
        ),
        Some(5.0),
        "one observation per committed block\n{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"gossip_state_commit_duration_bucket{channel="mychannel",le="+Inf"}"#
        ),
        Some(5.0),
        "{text}"
    );
    for positive in [
        "gossip_engine_commit_seconds_count",
        "gossip_engine_handle_seconds_count",
        "gossip_engine_inbound_wait_seconds_count",
    ] {
        assert!(
            sample(&text, positive).is_some_and(|v| v > 0.0),
            "{positive}\n{text}"
        );
    }
    for present in [
        r#"gossip_engine_queue_len{queue="inbound"}"#,
        r#"gossip_engine_queue_len{queue="send_lanes"}"#,
        r#"gossip_engine_queue_len{queue="commit"}"#,
        "gossip_engine_verify_pool_seconds_count",
        "gossip_engine_identities",
    ] {
        assert!(sample(&text, present).is_some(), "{present}\n{text}");
    }
}

#[test]
fn operations_endpoint_serves_metrics_health_logspec_and_version() {
    let bin = Path::new(env!("CARGO_BIN_EXE_gossip-node"));
    let tmp = tempfile::tempdir().expect("tempdir");
    let peers = one_org_peers(tmp.path(), 1);
    let (name, dir) = &peers[0];
    let port = free_port();
    let ops = SocketAddr::from(([127, 0, 0, 1], free_port()));
    std::fs::write(dir.join("core.yaml"), ops_yaml(name, port, port, ops)).expect("core.yaml");
    let mut node = start(bin, dir, name);

    // Up once /healthz answers.
    let (status, body) = poll(&node, || {
        http(ops, "GET", "/healthz", "").map_err(|e| format!("no operations endpoint: {e}"))
    });
    assert_eq!(status, 200, "{body}");
    let health = json_of(&body);
    assert_eq!(health["status"], "OK");
    assert!(
        health["time"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{body}"
    );
    assert!(health.get("failed_checks").is_none(), "{body}");

    let mut ctl = Control::connect(&node);
    ctl.ok(
        json!({"op": "join_channel", "channel": "mychannel", "orgs": ["Org1MSP"], "anchors": []}),
    );

    let (status, text) = http(ops, "GET", "/metrics", "").expect("metrics");
    assert_eq!(status, 200, "{text}");
    for needle in [
        "# TYPE gossip_comm_messages_sent counter\n",
        "# TYPE gossip_comm_messages_received counter\n",
        "# TYPE gossip_comm_overflow_count counter\n",
        "gossip_state_height{channel=\"mychannel\"} 1\n",
        "gossip_membership_total_peers_known{channel=\"mychannel\"} 0\n",
        "# TYPE gossip_engine_wire_sent_bytes_total counter\n",
        "gossip_engine_channels 1\n",
    ] {
        assert!(text.contains(needle), "{needle:?} missing:\n{text}");
    }
    // The process's own gauges: at least this scrape's connection task, and the node's
    // listeners and connections among its descriptors.
    let tasks = sample(&text, "gossip_engine_tokio_tasks_alive");
    assert!(tasks.is_some_and(|n| n >= 1.0), "{tasks:?}\n{text}");
    let fds = sample(&text, "gossip_engine_open_fds");
    if cfg!(target_os = "linux") {
        assert!(fds.is_some_and(|n| n >= 3.0), "{fds:?}\n{text}");
    } else {
        assert_eq!(fds, None, "{text}");
    }

    let (status, body) = http(ops, "GET", "/logspec", "").expect("logspec");
    assert_eq!(
        (status, json_of(&body)),
        (200, json!({"spec": "gossip=info:info"}))
    );
    let (status, body) =
        http(ops, "PUT", "/logspec", r#"{"spec":"gossip=debug:info"}"#).expect("put logspec");
    assert_eq!(status, 204, "{body}");
    let (status, body) = http(ops, "GET", "/logspec", "").expect("logspec");
    assert_eq!(
        (status, json_of(&body)),
        (200, json!({"spec": "gossip=debug:info"}))
    );
    let (status, body) =
        http(ops, "PUT", "/logspec", r#"{"spec":"gossip=loud"}"#).expect("bad spec");
    assert_eq!(status, 400, "{body}");
    assert!(
        json_of(&body)["Error"]
            .as_str()
            .is_some_and(|e| e.contains("loud")),
        "{body}"
    );
    let (status, _) = http(ops, "PUT", "/logspec", "not json").expect("bad body");
    assert_eq!(status, 400);

    let (status, body) = http(ops, "GET", "/version", "").expect("version");
    assert_eq!(status, 200, "{body}");
    let v = json_of(&body);
    assert_eq!(v["CommitSHA"], gossip_node::ops::COMMIT_SHA, "{body}");
    assert!(v["Version"].is_string(), "{body}");

    let (status, _) = http(ops, "GET", "/nope", "").expect("404");
    assert_eq!(status, 404);

    ctl.ok(json!({"op": "shutdown"}));
    assert!(wait_exit(&mut node).success(), "{}", node.log_text());
}

/// `GET /healthz` over TLS, trusting `ca`, presenting `client` (certificate and key files) if
/// given; the reply's status line, or the error that ended the exchange.
fn tls_healthz(
    ops: SocketAddr,
    ca: &Path,
    client: Option<(&Path, &Path)>,
) -> Result<String, String> {
    use gossip_engine::tls::{parse_cert_chain, parse_key};
    let read = |p: &Path| std::fs::read_to_string(p).expect("pem");
    let mut roots = rustls::RootCertStore::empty();
    for cert in parse_cert_chain(&read(ca)).expect("ca") {
        roots.add(cert).expect("root");
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots);
    let config = match client {
        Some((cert, key)) => builder
            .with_client_auth_cert(
                parse_cert_chain(&read(cert)).expect("cert"),
                parse_key(&read(key)).expect("key"),
            )
            .expect("client cert"),
        None => builder.with_no_client_auth(),
    };
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let conn = rustls::ClientConnection::new(std::sync::Arc::new(config), name)
        .map_err(|e| e.to_string())?;
    let tcp = TcpStream::connect(ops).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    write!(
        tls,
        "GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut reply = String::new();
    tls.read_to_string(&mut reply).map_err(|e| e.to_string())?;
    Ok(reply.lines().next().unwrap_or_default().to_owned())
}

/// `operations.tls` with `clientAuthRequired`: a client with a certificate of the org's TLS CA
/// gets `/healthz`; a client without a certificate, and one whose certificate another CA issued,
/// are refused at the TLS handshake and get no reply.
#[test]
fn operations_tls_requires_a_client_certificate_of_a_trusted_ca() {
    let bin = Path::new(env!("CARGO_BIN_EXE_gossip-node"));
    let tmp = tempfile::tempdir().expect("tempdir");
    let peers = one_org_peers(tmp.path(), 2);
    let stranger = one_org_peers(&tmp.path().join("other-pki"), 1).remove(0).1;
    let (name, dir) = &peers[0];
    let port = free_port();
    let ops = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let yaml = core_yaml(name, port, port).replace(
        "listenAddress: \"\"",
        &format!(
            "listenAddress: {ops}\n  tls:\n    enabled: true\n    clientAuthRequired: true\n    \
             cert:\n      file: tls/server.crt\n    key:\n      file: tls/server.key\n    \
             clientRootCAs:\n      files:\n        - tls/ca.crt"
        ),
    );
    std::fs::write(dir.join("core.yaml"), yaml).expect("core.yaml");
    let node = start(bin, dir, name);
    let ca = dir.join("tls/ca.crt");
    let client_dir = &peers[1].1;
    let client = (
        client_dir.join("tls/server.crt"),
        client_dir.join("tls/server.key"),
    );
    let trusted = Some((client.0.as_path(), client.1.as_path()));

    let status = poll(&node, || {
        tls_healthz(ops, &ca, trusted).map_err(|e| format!("no TLS operations endpoint: {e}"))
    });
    assert_eq!(status, "HTTP/1.1 200 OK");

    let refused = tls_healthz(ops, &ca, None);
    assert!(refused.is_err(), "no client certificate: {refused:?}");
    let foreign = (
        stranger.join("tls/server.crt"),
        stranger.join("tls/server.key"),
    );
    let refused = tls_healthz(ops, &ca, Some((foreign.0.as_path(), foreign.1.as_path())));
    assert!(refused.is_err(), "a certificate of another CA: {refused:?}");
    assert_eq!(
        tls_healthz(ops, &ca, trusted).as_deref(),
        Ok("HTTP/1.1 200 OK"),
        "the endpoint still serves"
    );
}

/// Polls `/healthz` until its status is `want`; returns the body.
fn healthz_until(ops: SocketAddr, node: &common::Node, want: u16) -> Value {
    poll(node, || match http(ops, "GET", "/healthz", "") {
        Ok((status, body)) if status == want => Ok(json_of(&body)),
        other => Err(format!("/healthz {other:?}, not {want}")),
    })
}

/// A node cut off from its only peer: `/healthz` is 200 while the peer is alive, 503 with the
/// `gossip.membership` check once the peer is presumed dead, and 200 again when the peer is back.
/// `aliveExpirationTimeout` is 3 s here (Fabric: 25 s) so the test does not wait 25 s twice.
#[test]
fn healthz_turns_503_when_the_node_is_cut_off_and_200_when_it_is_back() {
    let bin = Path::new(env!("CARGO_BIN_EXE_gossip-node"));
    let tmp = tempfile::tempdir().expect("tempdir");
    let peers = one_org_peers(tmp.path(), 2);
    let ports = [free_port(), free_port()];
    let ops = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let expiry = |yaml: String| {
        yaml.replace(
            "aliveTimeInterval: 1s",
            "aliveTimeInterval: 1s\n    aliveExpirationTimeout: 3s",
        )
    };
    for (i, (name, dir)) in peers.iter().enumerate() {
        let yaml = if i == 1 {
            ops_yaml(name, ports[1], ports[0], ops)
        } else {
            core_yaml(name, ports[0], ports[1])
        };
        std::fs::write(dir.join("core.yaml"), expiry(yaml)).expect("core.yaml");
    }
    let (name0, dir0) = &peers[0];
    let mut peer = start(bin, dir0, name0);
    let node = start(bin, &peers[1].1, &peers[1].0);
    let body = healthz_until(ops, &node, 200);
    assert_eq!(body["status"], "OK", "{body}");

    peer.child.kill().expect("SIGKILL");
    assert!(!wait_exit(&mut peer).success());
    let body = healthz_until(ops, &node, 503);
    assert_eq!(body["status"], "Service Unavailable", "{body}");
    assert_eq!(
        body["failed_checks"][0]["component"], "gossip.membership",
        "{body}"
    );

    let _peer = start(bin, dir0, name0);
    let body = healthz_until(ops, &node, 200);
    assert!(body.get("failed_checks").is_none(), "{body}");
}
