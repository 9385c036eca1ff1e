//! The reliability parts of a run (spec/operations.md E.2): renewed certificates on restart, the
//! hostile flooder's process, and the figures run.json's `membership` and `floods` give.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::cluster::{Cluster, SpareLayout};
use crate::commands::flood::FloodReport;
use crate::commands::run::{FaultEvent, Sample};
use crate::measure::collect::Schedule;
use crate::measure::membership::{self, Heights, KillSpan, ViewPoll};
use crate::report::resources::slopes_per_h;
use crate::scenario::{Scenario, SpareUse};

/// Replaces node `dir`'s enrollment certificate and key (`msp/signcerts/*`, `msp/keystore/*`)
/// with the spare's: a new certificate of the same org and CA, so a new PKI-ID.
pub fn renew_cert(dir: &Path, spare: &SpareLayout) -> std::io::Result<()> {
    for sub in ["signcerts", "keystore"] {
        let to = dir.join("msp").join(sub);
        let from = spare.dir.join("msp").join(sub);
        let mut names = Vec::new();
        for e in std::fs::read_dir(&to)? {
            let e = e?;
            names.push(e.file_name());
            std::fs::remove_file(e.path())?;
        }
        for e in std::fs::read_dir(&from)? {
            let e = e?;
            // Keep the node's file name (a single file in each folder).
            let name = names.first().cloned().unwrap_or_else(|| e.file_name());
            std::fs::copy(e.path(), to.join(name))?;
        }
    }
    Ok(())
}

/// The spare for `use_`.
pub fn spare_for(c: &Cluster, purpose: SpareUse) -> Option<&SpareLayout> {
    c.spares.iter().find(|s| s.spare.purpose == purpose)
}

/// A running `loadgen flood` process.
pub struct FloodProc {
    /// Index in `faults.floods`.
    pub index: usize,
    /// Seconds after block 1's due time when it started.
    pub started_at_s: f64,
    child: Child,
}

/// Starts `loadgen flood` (this executable) for `faults.floods[index]`.
pub fn start_flood(
    c: &Cluster,
    s: &Scenario,
    index: usize,
    started_at_s: f64,
) -> Result<FloodProc, String> {
    let f = &s.faults.floods[index];
    let spare = spare_for(c, SpareUse::Flooder(index)).ok_or("no flooder identity")?;
    // The running executable itself, even when its file was rebuilt since it started.
    let self_exe = Path::new("/proc/self/exe");
    let exe = if self_exe.exists() {
        self_exe.to_path_buf()
    } else {
        std::env::current_exe().map_err(|e| e.to_string())?
    };
    let mut cmd = Command::new(exe);
    cmd.arg("flood")
        .arg("--config")
        .arg(&spare.core)
        .arg("--target")
        .arg(c.nodes[f.victim].listen.to_string())
        .arg("--rate-per-s")
        .arg(f.rate_per_s.to_string())
        .arg("--duration-s")
        .arg(f.duration_s.to_string())
        .arg("--invalid-share")
        .arg(f.invalid_share.to_string())
        .arg("--seed")
        .arg((s.faults.fault_seed + index as u64).to_string());
    for a in &c.org_msp_args {
        cmd.arg("--org-msp").arg(a);
    }
    let log = std::fs::File::create(spare.dir.join("flood.log")).map_err(|e| e.to_string())?;
    cmd.current_dir(&spare.dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log)
        .env("FABRIC_LOGGING_SPEC", "warn");
    let child = cmd.spawn().map_err(|e| e.to_string())?;
    Ok(FloodProc {
        index,
        started_at_s,
        child,
    })
}

impl FloodProc {
    /// Waits up to `limit` for the flooder to end (killing it after), and reads its report.
    pub fn finish(mut self, limit: Duration) -> (usize, f64, Result<FloodReport, String>) {
        let deadline = crate::measure::inject::mono_now() + limit;
        while crate::measure::inject::mono_now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let status = self.child.wait();
        let report = self
            .child
            .stdout
            .take()
            .and_then(|out| BufReader::new(out).lines().map_while(Result::ok).last())
            .ok_or_else(|| format!("flooder gave no report (exit {status:?}); see flood.log"))
            .and_then(|line| serde_json::from_str(&line).map_err(|e| e.to_string()));
        (self.index, self.started_at_s, report)
    }
}

/// The victim's resident set around a flood (`samples` of the run), MiB: `baseline` (median over
/// the 10 s before the flood), `peak` (max during it and 2 s after), `end` (last sample), and
/// seconds after the flood until it was back within 10 % of the baseline.
pub fn flood_rss(samples: &[Sample], victim: usize, at_s: f64, duration_s: f64) -> Value {
    let rss = |x: &Sample| {
        x.procs
            .get(victim)?
            .as_ref()
            .map(|p| p.rss_bytes as f64 / 1048576.0)
    };
    let in_window = |lo: f64, hi: f64| -> Vec<(f64, f64)> {
        samples
            .iter()
            .filter(|x| x.t_s >= lo && x.t_s < hi)
            .filter_map(|x| Some((x.t_s, rss(x)?)))
            .collect()
    };
    let end_s = at_s + duration_s;
    let mut before: Vec<f64> = in_window(at_s - 10.0, at_s).iter().map(|x| x.1).collect();
    before.sort_by(f64::total_cmp);
    let Some(&baseline) = before.get(before.len() / 2) else {
        return json!({"error": "no RSS sample of the victim before the flood"});
    };
    let peak = in_window(at_s, end_s + 2.0)
        .iter()
        .map(|x| x.1)
        .fold(baseline, f64::max);
    let after = in_window(end_s, f64::INFINITY);
    let back = after
        .iter()
        .find(|x| x.1 <= baseline * 1.1)
        .map(|x| x.0 - end_s);
    json!({
        "victim_rss_baseline_mib": baseline,
        "victim_rss_peak_mib": peak,
        "victim_rss_peak_ratio": peak / baseline,
        "victim_rss_end_mib": after.last().map(|x| x.1),
        "victim_rss_back_within_10pct_after_s": back,
        "rss_series_mib": in_window(at_s - 10.0, f64::INFINITY)
            .iter()
            .map(|(t, r)| [(*t * 10.0).round() / 10.0, (*r * 10.0).round() / 10.0])
            .collect::<Vec<_>>(),
    })
}

/// What the reliability measurements of a run hand to the report.
#[derive(Clone, Debug, Default)]
pub struct Reliability {
    /// run.json's `membership` (Null without the poll).
    pub membership: Value,
    /// run.json's `floods`.
    pub floods: Vec<Value>,
    /// Per node, the least-squares slope of its RSS over the samples after warm-up, MiB/h
    /// (`None` with fewer than 3 samples): the soak's leak figure.
    pub rss_slope_mib_per_h: Vec<Option<f64>>,
    /// With the fault proxies: accepted connections whose source node was not identified
    /// (partitions do not apply to them).
    pub proxy_unidentified_connections: Option<u64>,
}

/// Per node, the least-squares slope of `VmRSS` over the samples at or after `from_s`, MiB per
/// hour, when they span at least [`crate::report::resources::SLOPE_SPAN_MIN_S`] (over a short
/// run the allocator's warm-up dominates); a node restarted in between mixes two processes (its
/// slope is then meaningless).
pub fn rss_slopes(samples: &[Sample], nodes: usize, from_s: f64) -> Vec<Option<f64>> {
    slopes_per_h(samples, nodes, from_s, |x, k| {
        Some(x.procs.get(k)?.as_ref()?.rss_bytes as f64 / 1048576.0)
    })
}

/// Seconds after block 1's due time, in ns since the epoch.
fn ns_at(schedule: &Schedule, t_s: f64) -> u64 {
    (schedule.start_unix_ns as f64 + t_s * 1e9) as u64
}

/// run.json's `membership`: per kill its detection and re-learning, per partition its split,
/// heal and height convergence.
pub fn membership_json(
    s: &Scenario,
    c: &Cluster,
    schedule: &Schedule,
    faults: &[FaultEvent],
    polls: &[ViewPoll],
    heights: &Heights,
    end_ns: u64,
) -> Value {
    let at = |t: f64| ns_at(schedule, t);
    let lookback_ns = membership::UP_LOOKBACK_POLLS * s.membership_poll_ms * 1_000_000;
    // Kills and restarts as they happened (the events' times), in scenario order per node.
    let happened = |prefix: &str, node: usize| -> Vec<f64> {
        let what = format!("{prefix} node {node}");
        faults
            .iter()
            .filter(|e| e.what == what || e.what.starts_with(&format!("{what} ")))
            .map(|e| e.t_s)
            .collect()
    };
    let mut kills = Vec::new();
    let mut seen: Vec<(usize, usize)> = Vec::new();
    for k in &s.faults.kills {
        let nth = seen.iter().filter(|(n, _)| *n == k.node).count();
        seen.push((k.node, nth));
        let Some(&killed) = happened("kill", k.node).get(nth) else {
            continue;
        };
        let restarted = k
            .restart_after_s
            .and_then(|_| happened("restart", k.node).get(nth).copied());
        let endpoint = c.nodes[k.node].endpoint.to_string();
        let observers: Vec<usize> = (0..s.nodes).filter(|&o| o != k.node).collect();
        let span = KillSpan {
            node: k.node,
            endpoint: &endpoint,
            killed_ns: at(killed),
            restarted_ns: restarted.map(at),
            renewed: k.renew_cert,
            end_ns,
            up_lookback_ns: lookback_ns,
        };
        kills.push(json!({
            "killed_at_s": killed,
            "restarted_at_s": restarted,
            "views": membership::kill_views(polls, &observers, &span),
        }));
    }
    let mut partitions = Vec::new();
    for p in &s.faults.partitions {
        let b: Vec<usize> = if p.b.is_empty() {
            (0..s.nodes).filter(|k| !p.a.contains(k)).collect()
        } else {
            p.b.clone()
        };
        let heal_s = p.at_s + p.duration_s;
        let due = schedule.due_by(at(heal_s));
        let mut v = membership::partition_views(
            polls,
            (&p.a, &b),
            s.nodes,
            (at(p.at_s), at(heal_s), end_ns, lookback_ns),
            heights,
            due,
        );
        v.at_s = p.at_s;
        v.healed_at_s = heal_s;
        partitions.push(json!({"due_at_heal_seq": due, "views": v}));
    }
    json!({
        "poll_ms": s.membership_poll_ms,
        "polls": polls.len(),
        "kills": kills,
        "partitions": partitions,
    })
}

/// Figures over `membership` and `floods` for run.json's `figures` (the largest over kills,
/// partitions and floods; absent when none was measured or one never happened).
pub fn figures(r: &Reliability, put: &mut impl FnMut(&str, f64)) {
    let max_of = |list: &Value, path: &[&str]| -> Option<Option<f64>> {
        let items = list.as_array().filter(|a| !a.is_empty())?;
        Some(items.iter().try_fold(0.0f64, |acc, x| {
            let v = path.iter().fold(x, |v, k| &v[*k]);
            v.as_f64().map(|v| acc.max(v))
        }))
    };
    let m = &r.membership;
    for (name, list, path) in [
        (
            "kill_removed_all_max_ms",
            "kills",
            &["views", "removed_all_ms"][..],
        ),
        (
            "kill_relearned_all_max_ms",
            "kills",
            &["views", "relearned_all_ms"],
        ),
        (
            "partition_split_all_max_ms",
            "partitions",
            &["views", "split_all_ms"],
        ),
        (
            "partition_whole_all_max_ms",
            "partitions",
            &["views", "whole_all_ms"],
        ),
        (
            "partition_height_converged_max_ms",
            "partitions",
            &["views", "height_converged_ms"],
        ),
    ] {
        if let Some(Some(v)) = max_of(&m[list], path) {
            put(name, v);
        }
    }
    if let Some(n) = r.proxy_unidentified_connections {
        put("proxy_unidentified_connections", n as f64);
    }
    let slopes: Vec<f64> = r.rss_slope_mib_per_h.iter().flatten().copied().collect();
    if let Some(max) = slopes.iter().copied().reduce(f64::max) {
        put("rss_slope_mib_per_h_max", max);
        put(
            "rss_slope_mib_per_h_mean",
            slopes.iter().sum::<f64>() / slopes.len() as f64,
        );
    }
    let floods = Value::Array(r.floods.clone());
    for (name, path) in [
        ("flood_sent_per_s", &["flooder", "sent_per_s"][..]),
        (
            "flood_victim_rss_peak_ratio",
            &["rss", "victim_rss_peak_ratio"],
        ),
        (
            "flood_victim_rss_baseline_mib",
            &["rss", "victim_rss_baseline_mib"],
        ),
        ("flood_victim_rss_peak_mib", &["rss", "victim_rss_peak_mib"]),
        (
            "flood_victim_rss_back_after_s",
            &["rss", "victim_rss_back_within_10pct_after_s"],
        ),
    ] {
        if let Some(Some(v)) = max_of(&floods, path) {
            put(name, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::procfs::ProcSample;

    fn sample(t_s: f64, rss_mib: u64) -> Sample {
        Sample {
            t_s,
            procs: vec![
                None,
                Some(ProcSample {
                    cpu_s: 0.0,
                    rss_bytes: rss_mib << 20,
                    peak_rss_bytes: 0,
                    rss_anon_bytes: 0,
                    pss_bytes: None,
                    io_read_bytes: 0,
                    io_written_bytes: 0,
                    fd_count: None,
                }),
            ],
            tokio_tasks: Vec::new(),
            proxy_bytes: 0,
            wire: None,
        }
    }

    #[test]
    fn flood_rss_takes_the_median_before_the_peak_during_and_the_return_after() {
        let rss = [
            (-3.0, 20),
            (-2.0, 22),
            (-1.0, 21),
            (0.5, 30),
            (5.0, 50),
            (12.0, 35),
            (14.0, 23),
            (16.0, 21),
        ];
        let samples: Vec<Sample> = rss.iter().map(|(t, r)| sample(*t, *r)).collect();
        let v = flood_rss(&samples, 1, 0.0, 10.0);
        assert_eq!(v["victim_rss_baseline_mib"], json!(21.0));
        assert_eq!(v["victim_rss_peak_mib"], json!(50.0));
        assert_eq!(v["victim_rss_back_within_10pct_after_s"], json!(4.0));
        assert_eq!(v["victim_rss_end_mib"], json!(21.0));
        let none = flood_rss(&samples[3..], 1, 0.0, 10.0);
        assert!(none["error"].is_string());
    }

    #[test]
    fn rss_slope_is_the_least_squares_line_per_hour_after_warm_up() {
        // 1 MiB more every 360 s after warm-up: 10 MiB/h; the warm-up jump is left out.
        let mut samples = vec![sample(-10.0, 5)];
        samples.extend((0..10).map(|i| sample(i as f64 * 360.0, 100 + i)));
        let slopes = rss_slopes(&samples, 2, 0.0);
        assert_eq!(slopes[0], None, "node 0 has no samples");
        assert!((slopes[1].unwrap() - 10.0).abs() < 1e-6, "{slopes:?}");
        assert_eq!(
            rss_slopes(&samples[..3], 2, 0.0)[1],
            None,
            "span under 10 min"
        );
    }

    #[test]
    fn figures_take_the_largest_and_skip_what_never_happened() {
        let r = Reliability {
            membership: json!({
                "kills": [
                    {"views": {"removed_all_ms": 20000.0, "relearned_all_ms": 3000.0}},
                    {"views": {"removed_all_ms": 26000.0, "relearned_all_ms": null}},
                ],
                "partitions": [],
            }),
            floods: vec![
                json!({"flooder": {"sent_per_s": 4.0e4}, "rss": {"victim_rss_peak_ratio": 1.5}}),
            ],
            rss_slope_mib_per_h: vec![Some(0.5), None, Some(2.0)],
            proxy_unidentified_connections: None,
        };
        let mut got = std::collections::BTreeMap::new();
        figures(&r, &mut |k: &str, v: f64| {
            got.insert(k.to_owned(), v);
        });
        assert_eq!(got.get("kill_removed_all_max_ms"), Some(&26000.0));
        assert!(
            !got.contains_key("kill_relearned_all_max_ms"),
            "one never re-learned"
        );
        assert!(!got.contains_key("partition_whole_all_max_ms"));
        assert_eq!(got.get("flood_sent_per_s"), Some(&4.0e4));
        assert_eq!(got.get("flood_victim_rss_peak_ratio"), Some(&1.5));
        assert_eq!(got.get("rss_slope_mib_per_h_max"), Some(&2.0));
    }

    #[test]
    fn renewing_replaces_the_certificate_and_key_under_the_nodes_file_names() {
        let t = tempfile::tempdir().unwrap();
        let node = t.path().join("node");
        let spare_dir = t.path().join("spare");
        for (d, tag) in [(&node, "old"), (&spare_dir, "new")] {
            std::fs::create_dir_all(d.join("msp/signcerts")).unwrap();
            std::fs::create_dir_all(d.join("msp/keystore")).unwrap();
            std::fs::write(d.join(format!("msp/signcerts/{tag}-cert.pem")), tag).unwrap();
            std::fs::write(d.join("msp/keystore/priv_sk"), format!("{tag}-key")).unwrap();
        }
        let spare = SpareLayout {
            spare: crate::scenario::Spare {
                org: 0,
                purpose: SpareUse::RenewedCert(0),
            },
            name: "spare".into(),
            dir: spare_dir,
            core: t.path().join("core.yaml"),
        };
        renew_cert(&node, &spare).unwrap();
        let cert = std::fs::read_to_string(node.join("msp/signcerts/old-cert.pem")).unwrap();
        assert_eq!(cert, "new");
        let key = std::fs::read_to_string(node.join("msp/keystore/priv_sk")).unwrap();
        assert_eq!(key, "new-key");
        assert_eq!(
            std::fs::read_dir(node.join("msp/signcerts"))
                .unwrap()
                .count(),
            1
        );
    }
}
