//! Kills and restarts in the report: run.json's `kills` (one entry per kill: what the restarted
//! node kept and lost, how far behind it was, how long it took to catch up and which paths its
//! blocks took), the figures over them, and the summary's lines.

use std::fmt::Write as _;

use serde_json::{Map, Value, json};

use crate::measure::collect::{Collector, KillRecord, PATHS, path_name};

/// Seconds from block 1's due time to `unix_ns`.
fn at_s(c: &Collector, unix_ns: u64) -> f64 {
    (unix_ns as f64 - c.schedule.start_unix_ns as f64) / 1e9
}

/// Counts by path, `{"push": n, "pull": n, "state": n, "unknown": n}`.
pub fn via_json(counts: &[u64; 4]) -> Value {
    let m: Map<String, Value> = PATHS
        .into_iter()
        .zip(counts)
        .map(|(via, n)| (path_name(via).to_string(), json!(n)))
        .collect();
    Value::Object(m)
}

fn kill_json(c: &Collector, k: &KillRecord) -> Value {
    let ms = |ns: u64| ns as f64 / 1e6;
    let since_restart = |t: Option<u64>| Some(ms(t?.saturating_sub(k.restarted_unix_ns?)));
    json!({
        "node": k.node,
        "killed_at_s": at_s(c, k.killed_unix_ns),
        "restarted_at_s": k.restarted_unix_ns.map(|t| at_s(c, t)),
        "ledger_height_at_restart": k.heights,
        "due_at_restart_seq": k.due_at_restart,
        "behind_at_restart_blocks": k.restarted_unix_ns.map(|_| k.behind_at_restart_blocks()),
        "lost_on_kill_blocks": k.lost_blocks,
        "held_without_event_blocks": k.held_without_event_blocks,
        "caught_up_at_s": k.caught_up_unix_ns().map(|t| at_s(c, t)),
        "caught_up_at_seq": k.caught_up.iter().map(|x| x.map(|(_, s)| s)).collect::<Vec<_>>(),
        "catch_up_ms": k.catch_up_ns().map(ms),
        "first_receipt_after_restart_ms": since_restart(k.first_receipt_unix_ns),
        "first_state_receipt_after_restart_ms": since_restart(k.first_state_receipt_unix_ns),
        "receipts_after_restart_via": via_json(&k.via_after_restart),
        "receipts_until_caught_up_via": via_json(&k.via_until_caught_up),
        "catch_up_trace": trace_json(k),
    })
}

/// The spacing of `catch_up_trace`'s points, ms.
const TRACE_STEP_MS: u64 = 500;

/// A restarted node's way to catching up: per channel, per [`TRACE_STEP_MS`] since the restart,
/// its last in-order delivery in that step, as `[ms since restart, block delivered up to, newest
/// block due]`; the last point is where it caught up (if it did).
fn trace_json(k: &KillRecord) -> Vec<Vec<[u64; 3]>> {
    let Some(restart_ns) = k.restarted_unix_ns else {
        return Vec::new();
    };
    (0..k.heights.len())
        .map(|ch| {
            let mut out: Vec<[u64; 3]> = Vec::new();
            for p in k.trace.iter().filter(|p| p.channel == ch) {
                let ms = p.unix_ns.saturating_sub(restart_ns) / 1_000_000;
                let point = [ms, p.height_seq, p.due_seq];
                match out.last_mut() {
                    Some(last) if last[0] / TRACE_STEP_MS == ms / TRACE_STEP_MS => *last = point,
                    _ => out.push(point),
                }
            }
            out
        })
        .collect()
}

/// run.json's `kills`: one entry per kill, in order.
pub fn kills_json(c: &Collector) -> Vec<Value> {
    c.kills().iter().map(|k| kill_json(c, k)).collect()
}

/// The figures over the kills, when there were any: `kills`, `restarts`, `restarts_caught_up`,
/// `catch_up_max_ms` and `catch_up_mean_ms` (over the restarts that caught up; absent when none
/// did), `lost_on_kill_blocks`.
pub fn kill_figures(c: &Collector, put: &mut impl FnMut(&str, f64)) {
    let kills = c.kills();
    if kills.is_empty() {
        return;
    }
    let restarts = kills
        .iter()
        .filter(|k| k.restarted_unix_ns.is_some())
        .count();
    let catch_up_ms: Vec<f64> = kills
        .iter()
        .filter_map(KillRecord::catch_up_ns)
        .map(|ns| ns as f64 / 1e6)
        .collect();
    put("kills", kills.len() as f64);
    put("restarts", restarts as f64);
    put("restarts_caught_up", catch_up_ms.len() as f64);
    if !catch_up_ms.is_empty() {
        put(
            "catch_up_max_ms",
            catch_up_ms.iter().copied().fold(0.0, f64::max),
        );
        put(
            "catch_up_mean_ms",
            catch_up_ms.iter().sum::<f64>() / catch_up_ms.len() as f64,
        );
    }
    put(
        "lost_on_kill_blocks",
        kills.iter().map(|k| k.lost_blocks).sum::<u64>() as f64,
    );
}

/// `{"push": 3, ...}` as `push 3, state 60` (paths with none left out; `none` when empty).
fn via_text(v: &Value) -> String {
    let parts: Vec<String> = v
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, n)| Some((k, n.as_u64()?)))
        .filter(|(_, n)| *n > 0)
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(", ")
    }
}

/// The summary's `kills` section from run.json's `kills`: one line per kill, with the receipts'
/// paths after the restart; empty without kills.
pub fn kills_text(doc: &Value) -> String {
    let mut out = String::new();
    let Some(kills) = doc["kills"].as_array().filter(|k| !k.is_empty()) else {
        return out;
    };
    out.push_str("\nkills\n");
    for k in kills {
        let node = k["node"].as_u64().unwrap_or(0);
        let killed = k["killed_at_s"].as_f64().unwrap_or(0.0);
        let _ = write!(out, "  node {node}: killed at {killed:.1} s");
        let Some(back) = k["restarted_at_s"].as_f64() else {
            out.push_str(", not restarted\n");
            continue;
        };
        let heights: Vec<String> = k["ledger_height_at_restart"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|h| h.as_u64().map_or("?".into(), |h| h.to_string()))
            .collect();
        let _ = write!(
            out,
            ", back at {back:.1} s with ledger height {} ({} blocks behind, {} lost)",
            heights.join("/"),
            k["behind_at_restart_blocks"].as_u64().unwrap_or(0),
            k["lost_on_kill_blocks"].as_u64().unwrap_or(0),
        );
        match k["catch_up_ms"].as_f64() {
            Some(ms) => {
                let _ = write!(out, ", caught up in {ms:.0} ms");
            }
            None => out.push_str(", NOT caught up"),
        }
        let first = |key: &str| {
            k[key]
                .as_f64()
                .map_or("-".into(), |ms| format!("{ms:.0} ms"))
        };
        let _ = writeln!(
            out,
            "\n    receipts since restart: {}; until caught up: {}; first after {}, first by state after {}",
            via_text(&k["receipts_after_restart_via"]),
            via_text(&k["receipts_until_caught_up_via"]),
            first("first_receipt_after_restart_ms"),
            first("first_state_receipt_after_restart_ms"),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::control::{Delivery, DeliveryKind};
    use crate::measure::collect::{Restarted, Schedule};
    use gossip_engine::event::Arrival;

    const MS: u64 = 1_000_000;

    #[test]
    fn a_restart_shows_in_run_json_the_figures_and_the_summary() {
        let s = Schedule {
            start_unix_ns: 1_000 * MS,
            interval_ns: 100 * MS,
            jitter_ns: 0,
            blocks: 10,
            warmup_blocks: 0,
        };
        let mut c = Collector::new(s, 3, vec!["c".into()], vec![0]);
        let mut f = std::collections::BTreeMap::new();
        kill_figures(&c, &mut |k: &str, v| {
            f.insert(k.to_string(), v);
        });
        assert!(f.is_empty(), "no kills, no figures");
        c.record_kill(1, s.due_ns(3));
        c.record_kill(2, s.due_ns(4));
        c.record_restart(&Restarted {
            node: 1,
            started_unix_ns: s.due_ns(5),
            heights: vec![("c".into(), Some(1))],
        });
        for seq in 1..=5 {
            for kind in [DeliveryKind::Received, DeliveryKind::InOrder] {
                c.record(&Delivery {
                    kind,
                    node: 1,
                    channel: "c".into(),
                    seq,
                    received_unix_ns: s.due_ns(5) + 50 * MS,
                    via: Some(Arrival::StateTransfer),
                });
            }
        }
        kill_figures(&c, &mut |k: &str, v| {
            f.insert(k.to_string(), v);
        });
        assert_eq!(f["kills"], 2.0);
        assert_eq!(f["restarts"], 1.0);
        assert_eq!(f["restarts_caught_up"], 1.0);
        assert!((f["catch_up_max_ms"] - 50.0).abs() < 1e-6, "{f:?}");
        let kills = kills_json(&c);
        assert_eq!(kills[0]["behind_at_restart_blocks"], json!(5));
        assert_eq!(kills[0]["receipts_after_restart_via"]["state"], json!(5));
        assert_eq!(kills[0]["caught_up_at_seq"], json!([5]));
        assert_eq!(
            kills[0]["catch_up_trace"],
            json!([[[50, 5, 5]]]),
            "one step: its last point"
        );
        assert_eq!(kills[1]["catch_up_ms"], Value::Null, "node 2 stays down");
        let text = kills_text(&json!({ "kills": kills }));
        assert!(
            text.contains("node 1: killed at 0.2 s, back at 0.4 s with ledger height 1")
                && text.contains("caught up in 50 ms")
                && text.contains("since restart: state 5")
                && text.contains("first by state after 50 ms")
                && text.contains("node 2: killed at 0.3 s, not restarted"),
            "{text}"
        );
        assert_eq!(kills_text(&json!({})), "", "no kills, no section");
    }
}
