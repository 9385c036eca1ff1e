use super::*;
use serde_json::json;

/// A run.json with the figures a verdict reads.
fn doc(lag: f64, measured: f64, p99: f64, thirds: (f64, f64), overflow: f64) -> Value {
    json!({
        "figures": {
            "inject_lag_p99_ms": lag,
            "deliveries_measured": measured,
            "deliveries_expected": 1000.0,
            "latency_p50_ms": 10.0,
            "latency_p99_ms": p99,
            "latency_p99_first_third_ms": thirds.0,
            "latency_p99_last_third_ms": thirds.1,
            "completeness": 0.8,
            "time_to_all_p99_ms": 40.0,
            "cpu_pct_per_node_mean": 3.0,
            "bytes_per_peer_per_s": 1e5,
        },
        "stats_delta_total": {"comm.overflow_count": overflow, "comm.messages_sent": 10_000.0},
    })
}

fn good() -> Value {
    doc(1.0, 950.0, 30.0, (25.0, 30.0), 0.0)
}

fn figures(v: &Value) -> RateFigures {
    RateFigures::from_run_json(v).unwrap()
}

#[test]
fn rates_parse_sorted_and_distinct() {
    assert_eq!(
        parse_rates("400, 100,200,100,12.5").unwrap(),
        vec![12.5, 100.0, 200.0, 400.0]
    );
    for bad in ["", "a", "100,,200", "0", "-5", "inf", "NaN"] {
        assert!(parse_rates(bad).is_err(), "{bad}");
    }
}

#[test]
fn a_run_within_every_criterion_is_sustainable() {
    let f = figures(&good());
    assert!((f.coverage - 0.95).abs() < 1e-12);
    let v = judge(&f, 0.95, &Criteria::default());
    assert!(v.sustainable, "{v:?}");
    assert_eq!(v.reason(), "all criteria hold");
    // Exactly at every limit still holds (the limits are inclusive).
    let f = figures(&doc(50.0, 930.0, 250.0, (100.0, 200.0), 10.0));
    let v = judge(&f, 0.95, &Criteria::default());
    assert!(v.sustainable, "{v:?}");
    // A doubled p99 of a few ms is an outlier, not a growing queue (within the slack).
    let f = figures(&doc(1.0, 950.0, 13.0, (6.0, 12.7), 0.0));
    let v = judge(&f, 0.95, &Criteria::default());
    assert!(v.sustainable, "{v:?}");
    let no_slack = Criteria {
        last_third_growth_slack_ms: 0.0,
        ..Criteria::default()
    };
    assert!(!judge(&f, 0.95, &no_slack).sustainable);
}

#[test]
fn each_failed_criterion_is_named_in_the_reason() {
    let c = Criteria::default();
    let cases = [
        (
            doc(50.5, 950.0, 30.0, (25.0, 30.0), 0.0),
            "inject_lag_p99_ms",
        ),
        (doc(1.0, 929.0, 30.0, (25.0, 30.0), 0.0), "coverage"),
        (doc(1.0, 950.0, 251.0, (25.0, 30.0), 0.0), "latency_p99_ms"),
        (
            doc(1.0, 950.0, 60.0, (25.0, 50.5), 0.0),
            "latency_p99_last_third_ms",
        ),
        (
            doc(1.0, 950.0, 30.0, (25.0, 30.0), 11.0),
            "comm.overflow_count",
        ),
    ];
    for (d, name) in cases {
        let v = judge(&figures(&d), 0.95, &c);
        assert!(!v.sustainable, "{name}: {v:?}");
        assert_eq!(v.failed.len(), 1, "{name} alone fails: {v:?}");
        assert!(v.reason().starts_with(name), "{name}: {}", v.reason());
    }
    // Everything at once: every criterion named.
    let v = judge(
        &figures(&doc(99.0, 500.0, 900.0, (100.0, 900.0), 500.0)),
        0.95,
        &c,
    );
    assert_eq!(v.failed.len(), 5, "{v:?}");
}

#[test]
fn coverage_is_relative_to_the_lowest_rate_and_thresholds_are_flags() {
    let f = figures(&doc(1.0, 900.0, 30.0, (25.0, 30.0), 0.0));
    assert!(judge(&f, 0.91, &Criteria::default()).sustainable);
    assert!(!judge(&f, 0.93, &Criteria::default()).sustainable);
    let loose = Criteria {
        max_coverage_drop: 0.05,
        ..Criteria::default()
    };
    assert!(judge(&f, 0.93, &loose).sustainable);
    let strict = Criteria {
        max_latency_p99_ms: 20.0,
        ..Criteria::default()
    };
    assert!(!judge(&f, 0.9, &strict).sustainable);
}

#[test]
fn missing_figures_are_named() {
    let mut d = good();
    d["figures"]
        .as_object_mut()
        .unwrap()
        .remove("latency_p99_last_third_ms");
    d["stats_delta_total"] = json!({});
    let e = RateFigures::from_run_json(&d).unwrap_err().to_string();
    for name in [
        "latency_p99_last_third_ms",
        "comm.overflow_count",
        "comm.messages_sent",
    ] {
        assert!(e.contains(name), "{e}");
    }
}

#[test]
fn max_sustainable_needs_every_lower_rate() {
    let v = [(10.0, true), (20.0, true), (40.0, false), (80.0, true)];
    assert_eq!(max_sustainable(&v), Some(20.0));
    assert_eq!(max_sustainable(&[(10.0, false), (20.0, true)]), None);
    assert_eq!(max_sustainable(&[]), None);
    assert_eq!(max_sustainable(&[(5.0, true)]), Some(5.0));
    assert!(!should_stop(&[true, false]));
    assert!(!should_stop(&[false, true, false]));
    assert!(should_stop(&[true, false, false]));
    assert!(!should_stop(&[false]));
}

#[test]
fn rate_scenarios_keep_the_duration() {
    let base = Scenario::from_toml("name = \"a\"\nrate_per_s = 20\nblocks = 200").unwrap();
    let s = scenario_for_rate(&base, 100.0).unwrap();
    assert_eq!((s.name.as_str(), s.rate_per_s), ("a-r100", 100.0));
    assert_eq!(
        (s.blocks, s.duration_s, s.block_count()),
        (None, 10.0, 1000)
    );
    assert_eq!(s.warmup_s, base.warmup_s, "warm-up stays in seconds");
    let base = Scenario::from_toml("name = \"b\"\nduration_s = 3").unwrap();
    let s = scenario_for_rate(&base, 12.5).unwrap();
    assert_eq!((s.name.as_str(), s.block_count()), ("b-r12.5", 38));
    assert!(scenario_for_rate(&base, 0.01).is_err(), "no blocks at all");
}

#[test]
fn sweep_stops_after_two_unsustainable_rates() {
    let base = Scenario::from_toml("name = \"x\"\nduration_s = 3").unwrap();
    let rates = parse_rates("10,20,40,80,160,320").unwrap();
    let mut ran = Vec::new();
    let sw = sweep(&base, &rates, 1, &Criteria::default(), |s| {
        ran.push(s.name.clone());
        let mut d = match s.rate_per_s as u64 {
            10 | 20 => good(),
            40 => doc(1.0, 950.0, 300.0, (25.0, 30.0), 0.0),
            80 => return Err("node 3 exited during start-up"),
            _ => good(), // sustainable again, but after two failures in a row
        };
        // The nodes of the 20 blocks/s run were built from another commit.
        d["git_commit"] = json!(if s.rate_per_s == 20.0 { "n2" } else { "n1" });
        Ok((d, PathBuf::from(format!("results/{}", s.name))))
    })
    .unwrap();
    assert_eq!(ran, ["x-r10", "x-r20", "x-r40", "x-r80"]);
    assert_eq!(sw.skipped(), [160.0, 320.0]);
    assert_eq!(sw.max_sustainable(), Some(20.0));
    assert_eq!(sw.baseline_coverage, Some(0.95));
    assert_eq!(
        sw.outcomes[3].verdict.reason(),
        "run failed: node 3 exited during start-up"
    );
    assert_eq!(conclusion(&sw), "max sustainable rate: 20 blocks/s");
    let md = to_markdown(&sw);
    assert!(md.contains("| 40 | FAIL |") && md.contains("latency_p99_ms 300.0 > 250"));
    assert!(md.contains("| 160 | skipped |") && md.contains("max sustainable rate: 20"));
    let j = to_json(
        &sw,
        &crate::measure::procfs::Machine::default(),
        Some("abc"),
        Some(true),
    );
    assert_eq!(j["schema"], SCHEMA);
    assert_eq!(j["max_sustainable_rate_per_s"], 20.0);
    assert_eq!(j["criteria"]["max_inject_lag_p99_ms"], 50.0);
    assert_eq!(j["rates"][2]["sustainable"], false);
    assert_eq!(
        j["rates"][0]["run_jsons"],
        json!(["results/x-r10/run.json"])
    );
    assert_eq!(j["repeats"], 1);
    assert_eq!(j["rates_skipped"], json!([160.0, 320.0]));
    // Runs of nodes built from different commits: no one commit for the sweep.
    assert_eq!(j["git_commit"], Value::Null);
    assert_eq!(j["rates"][1]["node_git_commits"], json!(["n2"]));
    assert_eq!(j["loadgen_git_commit"], "abc");
    assert_eq!(j["git_dirty"], true);
    let mut same = sw.clone();
    same.outcomes[1].node_commits = vec![Some("n1".into())];
    let j = to_json(&same, &Default::default(), Some("abc"), Some(true));
    assert_eq!(j["git_commit"], "n1");
}

#[test]
fn repeats_are_judged_on_medians_and_a_failed_repeat_fails_the_rate() {
    let base = Scenario::from_toml("name = \"x\"\nduration_s = 3").unwrap();
    let mut ran = Vec::new();
    let sw = sweep(&base, &[10.0, 20.0, 40.0], 3, &Criteria::default(), |s| {
        ran.push(s.name.clone());
        let d = match (s.name.as_str(), s.rate_per_s as u64) {
            // The lowest rate's median coverage is the baseline: 0.95.
            (_, 10) => good(),
            // One unlucky run of three does not fail 20 (median 0.94 >= 0.93)...
            ("x-r20-2", _) => doc(1.0, 800.0, 30.0, (25.0, 30.0), 0.0),
            (_, 20) => doc(1.0, 940.0, 30.0, (25.0, 30.0), 0.0),
            // ...nor does one lucky run pass 40 (median 0.90).
            ("x-r40-1", _) => good(),
            ("x-r40-2", _) => doc(1.0, 900.0, 30.0, (25.0, 30.0), 0.0),
            _ => return Err("node 1 exited"),
        };
        Ok((d, PathBuf::from(format!("results/{}", s.name))))
    })
    .unwrap();
    assert_eq!(
        ran,
        [
            "x-r10-1", "x-r10-2", "x-r10-3", "x-r20-1", "x-r20-2", "x-r20-3", "x-r40-1", "x-r40-2",
            "x-r40-3"
        ]
    );
    assert_eq!(sw.baseline_coverage, Some(0.95));
    let r20 = &sw.outcomes[1];
    assert!(r20.verdict.sustainable, "{}", r20.verdict.reason());
    assert_eq!(r20.figures.as_ref().map(|f| f.coverage), Some(0.94));
    assert_eq!(r20.runs.len(), 3);
    let r40 = &sw.outcomes[2];
    assert!(!r40.verdict.sustainable);
    assert_eq!(r40.verdict.reason(), "run failed: node 1 exited");
    assert_eq!((r40.runs.len(), r40.dirs.len()), (2, 2));
    assert_eq!(sw.max_sustainable(), Some(20.0));
    let md = to_markdown(&sw);
    assert!(
        md.contains("| 20 | ok | 0.9400 (0.9400 / 0.8000 / 0.9400) |"),
        "{md}"
    );
    // The unlucky run is named, though it does not fail the rate.
    assert!(
        md.contains("| all criteria hold; run 2 of 3 below the coverage threshold on its own |"),
        "{md}"
    );
    let r10 = md
        .lines()
        .find(|l| l.starts_with("| 10 |"))
        .expect("rate 10");
    assert!(!r10.contains("below"), "{r10}");
    let j = to_json(&sw, &crate::measure::procfs::Machine::default(), None, None);
    assert_eq!(j["repeats"], 3);
    assert_eq!(j["rates"][1]["run_coverages"], json!([0.94, 0.8, 0.94]));
    assert_eq!(j["rates"][1]["runs_below_coverage"], json!([2]));
    assert_eq!(j["rates"][0]["runs_below_coverage"], json!([]));
}

#[test]
fn medians_take_the_middle_two_of_an_even_count() {
    let f = |coverage| RateFigures {
        coverage,
        ..RateFigures::default()
    };
    let m = RateFigures::median(&[f(0.9), f(0.8), f(0.95), f(0.7)]).unwrap();
    assert!((m.coverage - 0.85).abs() < 1e-12);
    assert_eq!(RateFigures::median(&[]), None);
}

#[test]
fn a_failing_lowest_rate_means_none_is_sustainable() {
    let base = Scenario::from_toml("name = \"y\"\nduration_s = 3").unwrap();
    let sw = sweep(&base, &[5.0, 10.0], 1, &Criteria::default(), |s| {
        let lag = if s.rate_per_s < 6.0 { 80.0 } else { 1.0 };
        Ok::<_, String>((doc(lag, 950.0, 30.0, (25.0, 30.0), 0.0), PathBuf::new()))
    })
    .unwrap();
    assert_eq!(sw.max_sustainable(), None);
    assert!(conclusion(&sw).starts_with("max sustainable rate: none"));
}
