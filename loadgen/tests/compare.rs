//! `compare` flags a regression beyond its threshold and passes within it, in the library and
//! through the binary's exit code.

use std::process::Command;

use loadgen::report::compare::{Figures, Threshold, compare, figures_of};
use serde_json::json;

fn figs(p99: f64, completeness: f64) -> Figures {
    figures_of(&json!({"schema": "loadgen.run/v1", "figures": {
        "latency_p99_ms": p99, "completeness": completeness, "cpu_s_total": 3.0}}))
    .unwrap()
}

#[test]
fn injected_regression_is_detected_and_small_change_passes() {
    let ts = [
        Threshold::parse("latency_p99_ms=+10%").unwrap(),
        Threshold::parse("completeness=-0.005").unwrap(),
    ];
    let base = figs(100.0, 1.0);
    let within = compare(&base, &figs(109.0, 0.996), &ts);
    assert_eq!(within.regressions, 0, "{within:?}");
    let improved = compare(&base, &figs(50.0, 1.0), &ts);
    assert_eq!(
        improved.regressions, 0,
        "an improvement is never a regression"
    );
    let slower = compare(&base, &figs(111.0, 1.0), &ts);
    assert_eq!(slower.regressions, 1, "{slower:?}");
    let lossy = compare(&base, &figs(100.0, 0.99), &ts);
    assert_eq!(lossy.regressions, 1, "{lossy:?}");
    let missing = compare(&base, &Figures::new(), &ts);
    assert_eq!(
        missing.regressions, 2,
        "a gated metric missing from NEW fails"
    );
    let text = loadgen::report::compare::render(&slower);
    assert!(
        text.contains("REGRESSION") && text.contains("latency_p99_ms"),
        "{text}"
    );
}

#[test]
fn binary_exit_code_gates() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, p99: f64| {
        let p = dir.path().join(name);
        std::fs::write(&p, json!({"figures": {"latency_p99_ms": p99}}).to_string()).unwrap();
        p
    };
    let base = write("base.json", 100.0);
    let ok = write("ok.json", 105.0);
    let bad = write("bad.json", 130.0);
    let run = |new: &std::path::Path| {
        Command::new(env!("CARGO_BIN_EXE_loadgen"))
            .arg("compare")
            .arg(&base)
            .arg(new)
            .args(["--threshold", "latency_p99_ms=+10%"])
            .output()
            .unwrap()
    };
    let pass = run(&ok);
    assert!(
        pass.status.success(),
        "{}",
        String::from_utf8_lossy(&pass.stdout)
    );
    let fail = run(&bad);
    assert!(!fail.status.success());
    assert!(String::from_utf8_lossy(&fail.stdout).contains("REGRESSION"));
}
