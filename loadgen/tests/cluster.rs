//! A real 4-node cluster of gossip-node processes through the launcher: every injected block
//! reaches every peer, in order. With fan-out 3 and 4 nodes push alone reaches everyone.

mod common;

use common::node_bin;
use loadgen::cluster::launcher::LocalLauncher;
use loadgen::commands::run::{Progress, RunOutput};
use loadgen::scenario::Scenario;

struct Quiet;

impl Progress for Quiet {
    fn tick(&mut self, _due: u64, _total: u64, _deliveries: u64) {}
    fn phase(&mut self, msg: &str) {
        eprintln!("cluster test: {msg}");
    }
}

/// Runs `s` on local processes in a fresh folder (kept alive with the returned guard).
fn run_quiet(s: &Scenario) -> (RunOutput, tempfile::TempDir) {
    let work = tempfile::tempdir().unwrap();
    let out =
        loadgen::commands::run::run(s, &mut LocalLauncher, &node_bin(), work.path(), &mut Quiet)
            .expect("run");
    (out, work)
}

/// Every node's log, for failure messages.
fn logs_of(out: &RunOutput) -> String {
    out.logs
        .iter()
        .map(|l| std::fs::read_to_string(l).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n---\n")
}

#[test]
fn four_nodes_deliver_every_block_in_order() {
    let s = Scenario::from_toml(
        r#"
        name = "cluster-test"
        nodes = 4
        orgs = 1
        blocks = 12
        rate_per_s = 20
        warmup_s = 0
        drain_s = 20
        converge_timeout_s = 60
        block_size_bytes = 2048
        idle_s = 2
        [gossip]
        propagatePeerNum = 3
        "#,
    )
    .unwrap();
    let (out, _work) = run_quiet(&s);
    let c = &out.collector;
    let logs = || logs_of(&out);
    assert!(out.converged, "membership converged\n{}", logs());
    assert_eq!(out.quiet_s, 2.0);
    for w in &out.idle_cpu {
        let w = w.expect("idle CPU of every node");
        assert!(
            (1.9e9..10e9).contains(&(w.wall_ns as f64)) && w.pct_of_core() < 100.0,
            "{w:?}"
        );
    }
    assert_eq!(out.injections.len(), 12, "one injector, 12 blocks");
    assert!(
        out.injections.iter().all(|i| i.error.is_none()),
        "{:?}",
        out.injections
    );
    assert!(
        c.all_delivered(),
        "every block at every peer; completeness {}\n{}",
        c.completeness(),
        logs()
    );
    assert_eq!(c.completeness(), 1.0);
    let thirds: Vec<u64> = c.thirds.iter().map(|h| h.len()).collect();
    assert_eq!(thirds, [12, 12, 12], "4 blocks x 3 receivers per third");
    assert!(
        c.all_delivered_in_order(),
        "every node delivered every block in order"
    );
    assert_eq!(c.order_violations, 0, "in order, from block 1");
    assert_eq!(c.redeliveries, 0);
    assert_eq!(
        c.measured_deliveries(),
        3 * 12,
        "received by gossip: every peer but the injector"
    );
    assert_eq!(
        c.measured_in_order_deliveries(),
        4 * 12,
        "delivered in order: every peer"
    );
    // The report builds from a real run.
    let doc = loadgen::report::run_json(&out, &loadgen::measure::procfs::machine(), Some("abc"));
    assert_eq!(doc["schema"], "loadgen.run/v1");
    // The commit is the one the nodes report (their build's, which may be an older binary's than
    // this test's), loadgen's own checkout beside it.
    assert!(doc["git_commit"].is_string(), "{}", doc["git_commit"]);
    assert_eq!(doc["loadgen_git_commit"], "abc");
    assert_eq!(doc["figures"]["completeness"], 1.0);
    assert!(doc["figures"]["peak_rss_mib_max"].as_f64().unwrap() > 0.0);
    // One kind of peer; gossip-node reports its wire counters, so the bytes come from them.
    let kinds = doc["kinds"].as_object().unwrap();
    assert_eq!(kinds.len(), 1, "{kinds:?}");
    let ours = &doc["kinds"]["gossip-node"];
    assert_eq!(ours["nodes"], serde_json::json!([0, 1, 2, 3]));
    assert_eq!(ours["figures"]["completeness"], 1.0);
    assert_eq!(doc["bytes_source"], "wire_counters");
    for k in [
        "bytes_sent_per_peer_per_s",
        "bytes_received_per_block_per_receiver",
    ] {
        assert!(doc["figures"][k].as_f64().unwrap() > 0.0, "{k}");
    }
    let summary = loadgen::report::summary(&doc);
    assert!(
        summary.starts_with(' ') && summary.contains("latency p50, ms"),
        "{summary}"
    );
}

/// A node SIGKILLed during injection and restarted on its ledger, state transfer on: it resumes at
/// its ledger height, fetches what it missed, and ends with every block, counted once and in order;
/// the run reports its kill with the height it came back at and when it caught up.
#[test]
fn a_killed_node_restarts_on_its_ledger_and_ends_complete() {
    let s = Scenario::from_toml(
        r#"
        name = "cluster-kill-test"
        nodes = 4
        orgs = 1
        blocks = 60
        rate_per_s = 20
        warmup_s = 0
        drain_s = 40
        converge_timeout_s = 60
        block_size_bytes = 2048
        idle_s = 1
        [gossip]
        "state.enabled" = true
        [faults]
        kills = [{ node = 2, at_s = 1.0, restart_after_s = 1.0 }]
        "#,
    )
    .unwrap();
    let (out, _work) = run_quiet(&s);
    let c = &out.collector;
    let logs = || logs_of(&out);
    let kill = c
        .kills()
        .first()
        .unwrap_or_else(|| panic!("a kill\n{}", logs()));
    assert_eq!(kill.node, 2);
    assert!(kill.restarted_unix_ns.is_some(), "{kill:?}");
    let height = kill.heights[0].expect("gossip-node answers ledger_height");
    assert!(
        height > 1,
        "it had committed blocks before the kill: {kill:?}"
    );
    assert!(
        kill.catch_up_ns().is_some(),
        "caught up: {kill:?}\n{}",
        logs()
    );
    assert_eq!(c.completeness(), 1.0, "{kill:?}\n{}", logs());
    assert!(c.all_delivered_in_order(), "every node, every block");
    assert_eq!(
        (c.order_violations, c.redeliveries),
        (0, 0),
        "it resumed at its ledger height"
    );
    assert_eq!(c.measured_deliveries(), 3 * 60, "each receipt once");
    assert_eq!(out.stats_at_kill[2].len(), 1, "stats read before the kill");
    assert!(out.stats_at_kill[2][0].is_object());
    let doc = loadgen::report::run_json(&out, &loadgen::measure::procfs::machine(), None);
    let k = &doc["kills"][0];
    assert_eq!(k["node"], 2);
    assert_eq!(k["ledger_height_at_restart"][0], height);
    assert!(k["catch_up_ms"].as_f64().is_some(), "{k}");
    assert_eq!(doc["figures"]["restarts_caught_up"], 1.0);
    assert!(
        doc["nodes"][2]["stats_delta"]["driver.ledger_commits"]
            .as_f64()
            .is_some_and(|n| n > 0.0),
        "the restarted node's counters come back: {}",
        doc["nodes"][2]["stats_delta"]
    );
    assert!(loadgen::report::summary(&doc).contains("node 2: killed at"));
}
