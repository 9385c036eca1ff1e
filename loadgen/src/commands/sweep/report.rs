//! sweep.json, sweep.md and the closing line of a [`Sweep`](super::Sweep).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::{RateOutcome, SCHEMA, STOP_AFTER_UNSUSTAINABLE, Sweep, SweepError, rate_label};

/// The line printed at the end: `max sustainable rate: X blocks/s`.
pub fn conclusion(sw: &Sweep) -> String {
    let per = if sw.base.channels.len() > 1 {
        " per channel"
    } else {
        ""
    };
    match sw.max_sustainable() {
        Some(r) => format!("max sustainable rate: {} blocks/s{per}", rate_label(r)),
        None => format!(
            "max sustainable rate: none (the lowest rate tested, {} blocks/s{per}, is not sustainable)",
            sw.rates.first().map_or("-".into(), |r| rate_label(*r))
        ),
    }
}

/// The sweep.json document, with each run.json's commits: `git_commit` is the nodes' build commit
/// (`null` when runs disagree; each rate lists its runs' in `node_git_commits`), and `git` is
/// loadgen's checkout and whether tracked files differed from it (`loadgen_git_commit`,
/// `git_dirty`).
pub fn to_json(
    sw: &Sweep,
    machine: &crate::measure::procfs::Machine,
    git: Option<&str>,
    git_dirty: Option<bool>,
) -> Value {
    let rates: Vec<Value> = sw
        .outcomes
        .iter()
        .map(|o| {
            json!({
                "rate_per_s": o.rate,
                "name": o.name,
                "run_jsons": o.dirs.iter().map(|d| d.join("run.json")).collect::<Vec<_>>(),
                "node_git_commits": o.node_commits,
                "run_coverages": o.runs.iter().map(|f| f.coverage).collect::<Vec<_>>(),
                "runs_below_coverage": runs_below_coverage(sw, o),
                "sustainable": o.verdict.sustainable,
                "reason": o.verdict.reason(),
                "failed_criteria": o.verdict.failed,
                "figures": o.figures.as_ref().map(|f| {
                    let mut v = serde_json::to_value(f).unwrap_or(Value::Null);
                    v["overflow_pct"] = json!(f.overflow_pct());
                    v
                }),
            })
        })
        .collect();
    json!({
        "schema": SCHEMA,
        "scenario": sw.base,
        "git_commit": node_commit(sw),
        "loadgen_git_commit": git,
        "git_dirty": git_dirty,
        "machine": machine,
        "rates_requested": sw.rates,
        "repeats": sw.repeats,
        "rates_tested": sw.outcomes.iter().map(|o| o.rate).collect::<Vec<_>>(),
        "rates_skipped": sw.skipped(),
        "criteria": sw.criteria,
        "rules": {
            "sustainable": "every criterion holds: inject_lag_p99_ms <= max_inject_lag_p99_ms; coverage (deliveries_measured / deliveries_expected) >= baseline_coverage - max_coverage_drop; latency_p99_ms <= max_latency_p99_ms; latency_p99_last_third_ms <= max_last_third_growth x latency_p99_first_third_ms or at most last_third_growth_slack_ms above it; sum over nodes of Δcomm.overflow_count <= max_overflow_pct % of Δcomm.messages_sent (injection window)",
            "baseline_coverage": "coverage of the lowest rate that produced figures",
            "repeats": "each rate runs `repeats` times; its figures (and so its verdict) are each figure's median over those runs; a run that fails or lacks figures fails the rate",
            "runs_below_coverage": "the runs (1-based) whose own coverage is below baseline_coverage - max_coverage_drop, listed even when the median passes: one unlucky run does not fail a rate, but a run whose peers stopped at a gap they could not repair shows here",
            "max_sustainable_rate": "the highest rate such that it and every lower rate tested are sustainable",
            "stop": format!("rates above {STOP_AFTER_UNSUSTAINABLE} consecutive unsustainable rates are skipped"),
            "rate": "rate_per_s (blocks per second per channel) is overridden; a scenario that sets blocks keeps its duration (blocks / rate_per_s), so the block count is duration_s x rate; warm-up stays in seconds",
        },
        "baseline_coverage": sw.baseline_coverage,
        "rates": rates,
        "max_sustainable_rate_per_s": sw.max_sustainable(),
    })
}

/// The nodes' build commit when every run of the sweep recorded the same one.
fn node_commit(sw: &Sweep) -> Option<&str> {
    let mut commits = sw.outcomes.iter().flat_map(|o| &o.node_commits);
    let first = commits.next()?.as_deref()?;
    commits
        .all(|c| c.as_deref() == Some(first))
        .then_some(first)
}

/// The markdown table of sweep.md (also printed).
pub fn to_markdown(sw: &Sweep) -> String {
    let mut out = format!(
        "# Capacity sweep: {}\n\n| rate/s | verdict | coverage{} | stale share | p50 ms | p99 ms | p99 first 1/3 ms | p99 last 1/3 ms | inject lag p99 ms | overflow % | CPU %/node | reason |\n|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n",
        sw.base.name,
        if sw.repeats > 1 {
            format!(" (median of {} runs: each run)", sw.repeats)
        } else {
            String::new()
        }
    );
    for o in &sw.outcomes {
        let verdict = if o.verdict.sustainable { "ok" } else { "FAIL" };
        let cells = match &o.figures {
            Some(f) => format!(
                "{:.4}{} | {:.4} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.3} | {:.1}",
                f.coverage,
                run_coverages(o),
                f.stale_share,
                f.latency_p50_ms,
                f.latency_p99_ms,
                f.latency_p99_first_third_ms,
                f.latency_p99_last_third_ms,
                f.inject_lag_p99_ms,
                f.overflow_pct(),
                f.cpu_pct_per_node_mean
            ),
            None => ["-"; 9].join(" | "),
        };
        let below = runs_below_coverage(sw, o);
        let note = if below.is_empty() {
            String::new()
        } else {
            let runs: Vec<String> = below.iter().map(usize::to_string).collect();
            format!(
                "; run {} of {} below the coverage threshold on its own",
                runs.join(", "),
                o.runs.len()
            )
        };
        let _ = writeln!(
            out,
            "| {} | {verdict} | {cells} | {}{note} |",
            rate_label(o.rate),
            o.verdict.reason().replace('|', "\\|")
        );
    }
    for r in sw.skipped() {
        let _ = writeln!(
            out,
            "| {} | skipped | {} | {STOP_AFTER_UNSUSTAINABLE} lower rates in a row were unsustainable |",
            rate_label(*r),
            ["-"; 9].join(" | ")
        );
    }
    let _ = writeln!(out, "\n{}", conclusion(sw));
    out
}

/// The runs (1-based) of `o` whose own coverage is below the sweep's coverage threshold (the
/// lowest rate's coverage minus `max_coverage_drop`); none without a baseline or with one run.
pub fn runs_below_coverage(sw: &Sweep, o: &RateOutcome) -> Vec<usize> {
    let Some(baseline) = sw.baseline_coverage else {
        return Vec::new();
    };
    if o.runs.len() < 2 {
        return Vec::new();
    }
    let min_coverage = sw.criteria.min_coverage(baseline);
    (1..)
        .zip(&o.runs)
        .filter(|(_, f)| f.coverage < min_coverage)
        .map(|(k, _)| k)
        .collect()
}

/// With repeats, each run's coverage after the median: ` (0.9412 / 0.9287 / 0.9350)`.
fn run_coverages(o: &RateOutcome) -> String {
    if o.runs.len() < 2 {
        return String::new();
    }
    let each: Vec<String> = o
        .runs
        .iter()
        .map(|f| format!("{:.4}", f.coverage))
        .collect();
    format!(" ({})", each.join(" / "))
}

/// Writes `sweep.json` and `sweep.md` into `dir`.
pub fn write(dir: &Path, doc: &Value, markdown: &str) -> Result<(), SweepError> {
    let err = |path: PathBuf| move |source| SweepError::Write { path, source };
    std::fs::create_dir_all(dir).map_err(err(dir.to_path_buf()))?;
    let json_path = dir.join("sweep.json");
    let text = serde_json::to_string_pretty(doc).unwrap_or_default() + "\n";
    std::fs::write(&json_path, text).map_err(err(json_path.clone()))?;
    let md_path = dir.join("sweep.md");
    std::fs::write(&md_path, markdown).map_err(err(md_path.clone()))?;
    Ok(())
}
