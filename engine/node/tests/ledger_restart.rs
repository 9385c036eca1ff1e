//! gossip-node's durable ledger across a crash: a node commits the blocks it delivers to
//! `<peer.fileSystemPath>/gossip-ledger.redb`, is killed with SIGKILL, restarts on the same
//! folder, reports the same `ledger_height` (engine/CONTROL.md) and resumes delivery there: an old
//! block is not delivered again, the next one is delivered and committed. With state transfer on,
//! a killed node catches up from its peers' ledgers after the restart (with it off, the same test
//! waits in vain: the restarted node delivers nothing). Every wait is bounded; nothing asserts on
//! timing.

#![allow(clippy::disallowed_methods)] // bounded waits on the real clock

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::Instant;

use common::{
    Control, Node, WAIT, core_yaml, free_port, inject, join, ledger_height, one_org_peers,
    start_with, wait_exit, wait_height,
};
use gossip_node::ledger::LEDGER_FILE_NAME;
use serde_json::{Value, json};

/// Reads event lines until a `block` event for `seq`; returns the block numbers delivered up to it.
fn blocks_until(ctl: &mut Control, node: &Node, seq: u64) -> Vec<u64> {
    let deadline = Instant::now() + WAIT;
    let mut seqs = Vec::new();
    loop {
        let mut events: Vec<Value> = ctl.events.drain(..).collect();
        events.extend(ctl.line());
        for e in events.iter().filter(|e| e["event"] == "block") {
            seqs.push(e["seq"].as_u64().expect("seq"));
        }
        if seqs.contains(&seq) {
            return seqs;
        }
        assert!(
            Instant::now() < deadline,
            "blocks {seqs:?}, no {seq}\n{}",
            node.log_text()
        );
    }
}

/// `inject_block` of a block the channel would drop (at or beyond the delivery height plus
/// 2 × `state.blockBufferSize`) is answered with an error naming the bound, and changes nothing:
/// the blocks in order that follow are taken.
#[test]
fn inject_block_beyond_the_window_is_an_error_and_blocks_in_order_go_on() {
    let bin = Path::new(env!("CARGO_BIN_EXE_gossip-node"));
    let tmp = tempfile::tempdir().expect("tempdir");
    let (name, dir) = one_org_peers(tmp.path(), 1).remove(0);
    let port = free_port();
    std::fs::write(dir.join("core.yaml"), core_yaml(&name, port, port)).expect("core.yaml");
    let node = start_with(bin, &dir, &name, &[], Stdio::null());
    let mut ctl = Control::connect(&node);
    join(&mut ctl);
    // Height 1: blocks 1..=40 are taken, 41 is not (blockBufferSize 20).
    let reply = ctl.request(
        serde_json::json!({"op": "inject_block", "channel": "mychannel", "seq": 41, "size_bytes": 512}),
    );
    assert_eq!(reply["ok"], false, "{reply}");
    let error = reply["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("beyond") && error.contains("below 41"),
        "{reply}"
    );
    for seq in 1..=3 {
        inject(&mut ctl, seq);
    }
    wait_height(&mut ctl, &node, 4);
}

#[test]
fn a_killed_node_restarts_at_its_committed_height() {
    let bin = Path::new(env!("CARGO_BIN_EXE_gossip-node"));
    let tmp = tempfile::tempdir().expect("tempdir");
    let (name, dir) = one_org_peers(tmp.path(), 1).remove(0);
    let port = free_port();
    std::fs::write(dir.join("core.yaml"), core_yaml(&name, port, port)).expect("core.yaml");

    let mut node = start_with(bin, &dir, &name, &[], Stdio::null());
    let mut ctl = Control::connect(&node);
    assert_eq!(ledger_height(&mut ctl), 1, "nothing committed yet");
    join(&mut ctl);
    for seq in 1..=5 {
        inject(&mut ctl, seq);
    }
    wait_height(&mut ctl, &node, 6);
    let stats = ctl.ok(json!({"op": "stats"}));
    assert_eq!(
        stats["stats"]["driver"]["ledger_commits"],
        json!(5),
        "{stats}"
    );
    assert_eq!(stats["stats"]["driver"]["ledger_commit_errors"], json!(0));

    node.child.kill().expect("SIGKILL");
    let status = wait_exit(&mut node);
    assert!(!status.success(), "killed: {status}");
    drop(ctl);
    assert!(
        dir.join("production").join(LEDGER_FILE_NAME).is_file(),
        "the ledger lives under peer.fileSystemPath"
    );

    let mut node = start_with(bin, &dir, &name, &[], Stdio::null());
    let mut ctl = Control::connect(&node);
    assert_eq!(ledger_height(&mut ctl), 6, "the height before the kill");
    join(&mut ctl);
    ctl.ok(json!({"op": "subscribe"}));
    // Block 3 was committed before the kill: not delivered again. Block 6 is the next: delivery
    // resumed at the stored height (from 1 it would wait for blocks 1-5 forever).
    inject(&mut ctl, 3);
    inject(&mut ctl, 6);
    wait_height(&mut ctl, &node, 7);
    assert_eq!(blocks_until(&mut ctl, &node, 6), [6]);
    let stats = ctl.ok(json!({"op": "stats"}));
    assert_eq!(
        stats["stats"]["driver"]["ledger_commits"],
        json!(1),
        "{stats}"
    );

    ctl.ok(json!({"op": "shutdown"}));
    let status = wait_exit(&mut node);
    assert!(status.success(), "exit {status}\n{}", node.log_text());
    let log = node.log_text();
    assert!(
        log.contains("repairing"),
        "the restart found an unclean file\n{log}"
    );
}

/// Writes `name`'s core.yaml with `peer.gossip.state.enabled` set to `state`.
fn write_config(dir: &Path, name: &str, port: u16, bootstrap_port: u16, state: bool) {
    let yaml = core_yaml(name, port, bootstrap_port)
        .replace("      enabled: false", &format!("      enabled: {state}"));
    std::fs::write(dir.join("core.yaml"), yaml).expect("core.yaml");
}

/// Three gossip-nodes, state transfer on: node 2 is killed with SIGKILL after block 10, 40 more
/// blocks pass (30 more than any block store keeps, so pull alone cannot bring them), and the
/// restarted node 2 resumes at height 11 and catches up to 51 from its peers' ledgers; no block
/// is delivered twice.
#[test]
fn a_killed_node_catches_up_by_state_transfer_after_restart() {
    let bin = Path::new(env!("CARGO_BIN_EXE_gossip-node"));
    let tmp = tempfile::tempdir().expect("tempdir");
    let peers = one_org_peers(tmp.path(), 3);
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    for (i, (name, dir)) in peers.iter().enumerate() {
        write_config(dir, name, ports[i], ports[0], true);
    }
    let mut nodes: Vec<Node> = peers
        .iter()
        .map(|(name, dir)| start_with(bin, dir, name, &[], Stdio::null()))
        .collect();
    let mut ctls: Vec<Control> = nodes.iter().map(Control::connect).collect();
    for ctl in &mut ctls {
        join(ctl);
    }
    for seq in 1..=10 {
        inject(&mut ctls[0], seq);
    }
    for (ctl, node) in ctls.iter_mut().zip(&nodes) {
        wait_height(ctl, node, 11);
    }

    nodes[2].child.kill().expect("SIGKILL");
    assert!(!wait_exit(&mut nodes[2]).success());
    ctls.pop();
    for seq in 11..=50 {
        inject(&mut ctls[0], seq);
    }
    wait_height(&mut ctls[1], &nodes[1], 51);

    let (name, dir) = &peers[2];
    nodes[2] = start_with(bin, dir, name, &[], Stdio::null());
    let mut ctl = Control::connect(&nodes[2]);
    assert_eq!(ledger_height(&mut ctl), 11, "the height before the kill");
    ctl.ok(json!({"op": "subscribe"}));
    join(&mut ctl);
    assert_eq!(
        blocks_until(&mut ctl, &nodes[2], 50),
        (11..=50).collect::<Vec<u64>>(),
        "every missed block once, in order"
    );
    wait_height(&mut ctl, &nodes[2], 51);
    let stats = ctl.ok(json!({"op": "stats"}));
    assert_eq!(
        stats["stats"]["driver"]["ledger_commits"],
        json!(40),
        "{stats}"
    );
    // A block store keeps the newest and the 10 before it (maxBlockCountToStore): at most 11 of
    // the 40 can come by pull (delivered at once, or from the store once the height reached them
    // when they came beyond the reorder buffer), the rest came by state transfer.
    let node_stats = &stats["stats"]["node"];
    let count = |key: &str| node_stats[key].as_u64().unwrap_or(0);
    let transferred = count("blocks_transferred");
    let pulled = count("blocks_pulled") + count("blocks_refilled");
    assert_eq!(transferred + pulled, 40, "{stats}");
    assert!(transferred >= 29, "{stats}");
    let responses = node_stats["state"]["responses_taken"].as_u64();
    assert!(responses.is_some_and(|n| n >= 3), "{stats}");
    ctls.push(ctl);
    for (ctl, node) in ctls.iter_mut().zip(nodes.iter_mut()) {
        ctl.ok(json!({"op": "shutdown"}));
        assert!(wait_exit(node).success(), "{}", node.log_text());
    }
}
