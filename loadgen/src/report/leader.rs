//! The report of leader following ([`crate::measure::leader`]): per leader kill, how long until a
//! successor was elected and took blocks, and what the repair path (pull, state transfer) carried
//! meanwhile; run.json's `leader` and the `leader_*` figures.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use gossip_engine::event::Arrival;
use serde_json::{Value, json};

use crate::measure::collect::Schedule;
use crate::measure::inject::Injection;
use crate::measure::leader::LeaderLog;

/// One leader kill and the takeover after it.
#[derive(Clone, Debug, PartialEq)]
pub struct Takeover {
    /// The org.
    pub org: usize,
    /// The node killed (`None`: no leader was known, nothing killed).
    pub killed_node: Option<usize>,
    /// When, Unix ns.
    pub killed_unix_ns: u64,
    /// The first other node of the org that loadgen learnt is leader (on the first channel)
    /// after the kill.
    pub new_leader: Option<usize>,
    /// From the kill to that news, ms.
    pub elected_ms: Option<f64>,
    /// From the kill to the first block the new leader took (its `injected_unix_ns`), ms.
    pub takeover_ms: Option<f64>,
    /// Blocks (first channel) due between the kill and that first block: held meanwhile.
    pub held_blocks: u64,
    /// Blocks the new leader took in its first burst, from its ledger height up to the newest
    /// produced: its first blocks handed over more than one interval after their due time.
    pub replayed_blocks: u64,
    /// Receipts by pull from the kill to the next leader kill (or the end), every node.
    pub repair_receipts_pull: u64,
    /// The same by state transfer.
    pub repair_receipts_state: u64,
    /// Distinct blocks (all channels) among those receipts.
    pub repair_blocks: u64,
}

/// The takeovers of `log`'s kills; `injections` are the hand-overs to leaders.
pub fn takeovers(log: &LeaderLog, injections: &[Injection], schedule: &Schedule) -> Vec<Takeover> {
    let first_channel = log.channels.first().cloned().unwrap_or_default();
    let in_org = |k: usize, org: usize| log.org_of.get(k) == Some(&org);
    log.kills
        .iter()
        .enumerate()
        .map(|(i, kill)| {
            let t0 = kill.unix_ns;
            let until = log.kills.get(i + 1).map_or(u64::MAX, |k| k.unix_ns);
            let other = |k: usize| in_org(k, kill.org) && Some(k) != kill.node;
            let elected = log
                .changes
                .iter()
                .filter(|e| e.leader && e.channel == first_channel && e.unix_ns >= t0)
                .find(|e| other(e.node));
            let first = injections
                .iter()
                .filter(|j| j.channel == 0 && j.error.is_none() && j.injected_ns >= t0)
                .filter(|j| other(j.node))
                .min_by_key(|j| j.injected_ns);
            let new_leader = first.map(|j| j.node).or(elected.map(|e| e.node));
            let ms = |ns: u64| ns.saturating_sub(t0) as f64 / 1e6;
            let held_blocks = first.map_or(0, |f| {
                schedule
                    .due_by(f.injected_ns)
                    .saturating_sub(schedule.due_by(t0))
            });
            // The first burst: blocks handed to the new leader later than one interval after due.
            let replayed_blocks = first.map_or(0, |f| {
                injections
                    .iter()
                    .filter(|j| j.node == f.node && j.channel == 0 && j.error.is_none())
                    .filter(|j| j.injected_ns >= f.injected_ns)
                    .take_while(|j| j.sent_ns > j.due_ns + schedule.interval_ns)
                    .count() as u64
            });
            let repairs: Vec<_> = log
                .repairs
                .iter()
                .filter(|r| r.received_unix_ns >= t0 && r.received_unix_ns < until)
                .collect();
            let count = |via: Arrival| repairs.iter().filter(|r| r.via == via).count() as u64;
            let blocks: BTreeSet<(&str, u64)> = repairs
                .iter()
                .map(|r| (r.channel.as_str(), r.seq))
                .collect();
            Takeover {
                org: kill.org,
                killed_node: kill.node,
                killed_unix_ns: t0,
                new_leader,
                elected_ms: elected.map(|e| ms(e.unix_ns)),
                takeover_ms: first.map(|j| ms(j.injected_ns)),
                held_blocks,
                replayed_blocks,
                repair_receipts_pull: count(Arrival::Pull),
                repair_receipts_state: count(Arrival::StateTransfer),
                repair_blocks: blocks.len() as u64,
            }
        })
        .collect()
}

/// run.json's `leader`: the changes loadgen learnt and one entry per kill (times in seconds
/// since block 1 was due).
pub fn leader_json(log: &LeaderLog, injections: &[Injection], schedule: &Schedule) -> Value {
    let t = |ns: u64| (ns as f64 - schedule.start_unix_ns as f64) / 1e9;
    let kills: Vec<Value> = takeovers(log, injections, schedule)
        .iter()
        .map(|x| {
            json!({
                "org": x.org,
                "node": x.killed_node,
                "killed_at_s": t(x.killed_unix_ns),
                "new_leader": x.new_leader,
                "elected_ms": x.elected_ms,
                "takeover_ms": x.takeover_ms,
                "held_blocks": x.held_blocks,
                "replayed_blocks": x.replayed_blocks,
                "repair_receipts_pull": x.repair_receipts_pull,
                "repair_receipts_state": x.repair_receipts_state,
                "repair_blocks": x.repair_blocks,
            })
        })
        .collect();
    let changes: Vec<Value> = log
        .changes
        .iter()
        .map(|e| json!({"node": e.node, "channel": e.channel, "leader": e.leader, "at_s": t(e.unix_ns)}))
        .collect();
    json!({"changes": changes, "kills": kills})
}

/// The `leader_*` figures: `leader_changes`; with leader kills `leader_kills`,
/// `leader_takeover_ms` and `leader_elected_ms` (the longest over the kills that had one),
/// `leader_takeovers` (kills followed by a new leader taking blocks), and summed over the kills
/// `leader_held_blocks`, `leader_replayed_blocks`, `leader_repair_receipts` (pull + state) and
/// `leader_repair_blocks`.
pub fn leader_figures(
    log: &LeaderLog,
    injections: &[Injection],
    schedule: &Schedule,
    put: &mut impl FnMut(&str, f64),
) {
    put("leader_changes", log.changes.len() as f64);
    let xs = takeovers(log, injections, schedule);
    if xs.is_empty() {
        return;
    }
    put("leader_kills", xs.len() as f64);
    let max = |f: fn(&Takeover) -> Option<f64>| xs.iter().filter_map(f).reduce(f64::max);
    if let Some(v) = max(|x| x.takeover_ms) {
        put("leader_takeover_ms", v);
    }
    if let Some(v) = max(|x| x.elected_ms) {
        put("leader_elected_ms", v);
    }
    let sum = |f: fn(&Takeover) -> u64| xs.iter().map(f).sum::<u64>() as f64;
    put(
        "leader_takeovers",
        xs.iter().filter(|x| x.takeover_ms.is_some()).count() as f64,
    );
    put("leader_held_blocks", sum(|x| x.held_blocks));
    put("leader_replayed_blocks", sum(|x| x.replayed_blocks));
    put(
        "leader_repair_receipts",
        sum(|x| x.repair_receipts_pull + x.repair_receipts_state),
    );
    put("leader_repair_blocks", sum(|x| x.repair_blocks));
}

/// The summary's `leader kills` section from run.json's `leader`; empty without kills.
pub fn leader_text(doc: &Value) -> String {
    let mut out = String::new();
    let Some(kills) = doc["leader"]["kills"].as_array().filter(|k| !k.is_empty()) else {
        return out;
    };
    out.push_str("\nleader kills\n");
    for k in kills {
        let org = k["org"].as_u64().unwrap_or(0);
        let at = k["killed_at_s"].as_f64().unwrap_or(0.0);
        let Some(node) = k["node"].as_u64() else {
            let _ = writeln!(
                out,
                "  org {org} at {at:.1} s: no leader known, nothing killed"
            );
            continue;
        };
        let _ = write!(out, "  org {org}: leader node {node} killed at {at:.1} s; ");
        match (k["new_leader"].as_u64(), k["takeover_ms"].as_f64()) {
            (Some(n), Some(ms)) => {
                let elected = k["elected_ms"]
                    .as_f64()
                    .map_or(String::new(), |e| format!("elected after {e:.0} ms, "));
                let _ = write!(
                    out,
                    "node {n} {elected}first block through it after {ms:.0} ms ({} held, {} replayed)",
                    k["held_blocks"], k["replayed_blocks"]
                );
            }
            _ => out.push_str("no new leader took blocks"),
        }
        let _ = writeln!(
            out,
            "; repair path meanwhile: pull {}, state {} receipts ({} blocks)",
            k["repair_receipts_pull"], k["repair_receipts_state"], k["repair_blocks"]
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::leader::{LeaderKillDone, LeadershipEvent, RepairReceipt};

    const S: u64 = 1_000_000_000;

    fn schedule() -> Schedule {
        Schedule {
            start_unix_ns: 100 * S,
            interval_ns: S / 10,
            jitter_ns: 0,
            blocks: 400,
            warmup_blocks: 0,
        }
    }

    fn inj(node: usize, seq: u64, at_ns: u64) -> Injection {
        let due = schedule().due_ns(seq);
        Injection {
            node,
            channel: 0,
            seq,
            due_ns: due,
            sent_ns: at_ns,
            injected_ns: at_ns,
            error: None,
        }
    }

    /// Org 0 = nodes 0, 2, 4 (of 6 in 2 orgs); node 0 leads, is killed at 105 s, node 2 is
    /// elected at 120 s and takes blocks from its height 40 at 120.1 s.
    fn scenario() -> (LeaderLog, Vec<Injection>) {
        let mut injections: Vec<Injection> = (1..=50)
            .map(|s| inj(0, s, 100 * S + (s - 1) * S / 10))
            .collect();
        injections.push(inj(1, 60, 106 * S)); // org 1's leader: not a successor in org 0
        let mut t = 120 * S + S / 10;
        for seq in 40..=202 {
            injections.push(inj(2, seq, t));
            t += S / 1000;
        }
        let log = LeaderLog {
            org_of: vec![0, 1, 0, 1, 0, 1],
            channels: vec!["ch".into()],
            changes: vec![
                LeadershipEvent {
                    node: 0,
                    channel: "ch".into(),
                    leader: true,
                    unix_ns: 90 * S,
                },
                LeadershipEvent {
                    node: 2,
                    channel: "ch".into(),
                    leader: true,
                    unix_ns: 120 * S,
                },
            ],
            kills: vec![LeaderKillDone {
                org: 0,
                node: Some(0),
                unix_ns: 105 * S,
            }],
            repairs: vec![
                RepairReceipt {
                    node: 4,
                    channel: "ch".into(),
                    seq: 45,
                    via: Arrival::Pull,
                    received_unix_ns: 121 * S,
                },
                RepairReceipt {
                    node: 0,
                    channel: "ch".into(),
                    seq: 45,
                    via: Arrival::StateTransfer,
                    received_unix_ns: 130 * S,
                },
                RepairReceipt {
                    node: 0,
                    channel: "ch".into(),
                    seq: 46,
                    via: Arrival::StateTransfer,
                    received_unix_ns: 130 * S,
                },
                RepairReceipt {
                    node: 4,
                    channel: "ch".into(),
                    seq: 3,
                    via: Arrival::Pull,
                    received_unix_ns: 101 * S,
                },
            ],
        };
        (log, injections)
    }

    #[test]
    fn takeover_is_measured_from_the_kill_to_the_first_block_of_the_successor() {
        let (log, injections) = scenario();
        let x = takeovers(&log, &injections, &schedule());
        assert_eq!(x.len(), 1);
        let x = &x[0];
        assert_eq!((x.killed_node, x.new_leader), (Some(0), Some(2)));
        assert_eq!(x.elected_ms, Some(15_000.0));
        assert_eq!(x.takeover_ms, Some(15_100.0));
        // Due by the kill: block 51; by 120.1 s: block 202.
        assert_eq!(x.held_blocks, 202 - 51);
        assert!(x.replayed_blocks > 100, "{x:?}");
        assert_eq!((x.repair_receipts_pull, x.repair_receipts_state), (1, 2));
        assert_eq!(
            x.repair_blocks, 2,
            "blocks 45 and 46; the one before the kill not counted"
        );
    }

    #[test]
    fn figures_and_text_say_what_happened_and_a_kill_without_a_successor_has_no_takeover() {
        let (mut log, injections) = scenario();
        let mut f = std::collections::BTreeMap::new();
        leader_figures(&log, &injections, &schedule(), &mut |k: &str, v| {
            f.insert(k.to_owned(), v);
        });
        assert_eq!(f["leader_kills"], 1.0);
        assert_eq!(f["leader_takeovers"], 1.0);
        assert_eq!(f["leader_takeover_ms"], 15_100.0);
        assert_eq!(f["leader_repair_receipts"], 3.0);
        let doc = json!({"leader": leader_json(&log, &injections, &schedule())});
        let text = leader_text(&doc);
        assert!(text.contains("leader node 0 killed at 5.0 s"), "{text}");
        assert!(text.contains("node 2 elected after 15000 ms"), "{text}");
        log.kills.push(LeaderKillDone {
            org: 0,
            node: None,
            unix_ns: 200 * S,
        });
        let x = takeovers(&log, &injections, &schedule());
        assert_eq!((x[1].takeover_ms, x[1].new_leader), (None, None));
        let text = leader_text(&json!({"leader": leader_json(&log, &injections, &schedule())}));
        assert!(text.contains("no leader known"), "{text}");
        let mut none = std::collections::BTreeMap::new();
        leader_figures(
            &LeaderLog::default(),
            &[],
            &schedule(),
            &mut |k: &str, v| {
                none.insert(k.to_owned(), v);
            },
        );
        assert_eq!(none.keys().collect::<Vec<_>>(), vec!["leader_changes"]);
    }
}
