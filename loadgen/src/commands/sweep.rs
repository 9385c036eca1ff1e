//! `loadgen sweep`: one run (or `--repeats` runs) per injection rate, a sustainability verdict per
//! rate, and the highest rate the cluster sustains.
//!
//! A rate is sustainable when every [`Criteria`] holds ([`judge`], a pure function of the run's
//! figures; with repeats, of each figure's median over the rate's runs, [`RateFigures::median`]):
//! the injector kept to its schedule, no delivery was lost to overload (coverage
//! relative to the lowest rate's), latency stayed bounded and did not grow over the run, and the
//! nodes' send buffers did not overflow. The max sustainable rate is the highest rate such that it
//! and every lower rate tested are sustainable ([`max_sustainable`]); the sweep skips the rates
//! above two consecutive unsustainable ones. sweep.json and sweep.md are written by `report`
//! ([`to_json`], [`to_markdown`], [`write`]).

mod report;

use std::path::PathBuf;

use serde::Serialize;
use serde_json::Value;

use crate::scenario::{Scenario, ScenarioError};
pub use report::{conclusion, to_json, to_markdown, write};

/// Schema tag of sweep.json.
pub const SCHEMA: &str = "loadgen.sweep/v3";

/// After this many consecutive unsustainable rates the higher rates are skipped.
pub const STOP_AFTER_UNSUSTAINABLE: usize = 2;

/// A sweep could not start or write its results.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// `--rates` does not parse.
    #[error(
        "bad rates {0:?}: expected a comma-separated list of positive numbers, like 100,200,400"
    )]
    Rates(String),
    /// The scenario of one rate is invalid.
    #[error("scenario for rate {rate}: {source}")]
    Scenario {
        /// The rate.
        rate: f64,
        /// Why.
        source: ScenarioError,
    },
    /// run.json lacks figures a verdict needs.
    #[error("run.json lacks {0:?}")]
    MissingFigures(Vec<String>),
    /// sweep.json or sweep.md could not be written.
    #[error("writing {path}: {source}")]
    Write {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Parses `100,200,400` into ascending, distinct rates.
pub fn parse_rates(text: &str) -> Result<Vec<f64>, SweepError> {
    let bad = || SweepError::Rates(text.to_string());
    let mut rates = text
        .split(',')
        .map(|r| r.trim().parse::<f64>().map_err(|_| bad()))
        .collect::<Result<Vec<_>, _>>()?;
    if rates.is_empty() || rates.iter().any(|r| !(*r > 0.0 && r.is_finite())) {
        return Err(bad());
    }
    rates.sort_by(f64::total_cmp);
    rates.dedup();
    Ok(rates)
}

/// The thresholds of sustainability (each a `loadgen sweep` flag; recorded in sweep.json).
#[derive(Clone, Debug, PartialEq, Serialize, clap::Args)]
pub struct Criteria {
    /// `inject_lag_p99_ms` at most this: the injector kept to the schedule.
    #[arg(long, default_value_t = Criteria::default().max_inject_lag_p99_ms)]
    pub max_inject_lag_p99_ms: f64,
    /// Coverage (deliveries_measured / deliveries_expected) at least the lowest rate's minus this.
    #[arg(long, default_value_t = Criteria::default().max_coverage_drop)]
    pub max_coverage_drop: f64,
    /// `latency_p99_ms` at most this.
    #[arg(long, default_value_t = Criteria::default().max_latency_p99_ms)]
    pub max_latency_p99_ms: f64,
    /// `latency_p99_last_third_ms` at most this times `latency_p99_first_third_ms`...
    #[arg(long, default_value_t = Criteria::default().max_last_third_growth)]
    pub max_last_third_growth: f64,
    /// ...unless it exceeds the first third's by no more than this many ms (at a few ms of
    /// latency one outlier doubles a p99 without any queue growing).
    #[arg(long, default_value_t = Criteria::default().last_third_growth_slack_ms)]
    pub last_third_growth_slack_ms: f64,
    /// Σ Δcomm.overflow_count at most this percentage of Σ Δcomm.messages_sent.
    #[arg(long, default_value_t = Criteria::default().max_overflow_pct)]
    pub max_overflow_pct: f64,
}

impl Criteria {
    /// The least coverage a rate may have: `baseline_coverage` (the lowest rate's) minus
    /// `max_coverage_drop`.
    pub fn min_coverage(&self, baseline_coverage: f64) -> f64 {
        baseline_coverage - self.max_coverage_drop
    }
}

impl Default for Criteria {
    fn default() -> Self {
        Criteria {
            max_inject_lag_p99_ms: 50.0,
            max_coverage_drop: 0.02,
            max_latency_p99_ms: 250.0,
            max_last_third_growth: 2.0,
            last_third_growth_slack_ms: 20.0,
            max_overflow_pct: 0.1,
        }
    }
}

/// The figures of one run that the verdict reads, plus a few shown beside it.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RateFigures {
    /// How late the injector sent, p99, ms.
    pub inject_lag_p99_ms: f64,
    /// deliveries_measured / deliveries_expected (1 when nothing is expected).
    pub coverage: f64,
    /// Delivery latency p50, ms.
    pub latency_p50_ms: f64,
    /// Delivery latency p99, ms.
    pub latency_p99_ms: f64,
    /// p99 of the first third of the measured blocks, ms.
    pub latency_p99_first_third_ms: f64,
    /// p99 of the last third of the measured blocks, ms.
    pub latency_p99_last_third_ms: f64,
    /// Σ over nodes of Δcomm.overflow_count over the injection window.
    pub overflow_count: f64,
    /// Σ over nodes of Δcomm.messages_sent over the injection window.
    pub messages_sent: f64,
    /// Σ over nodes of Δnode.dropped.Stale per expected delivery: blocks that arrived more than
    /// `maxBlockCountToStore` behind the newest and were dropped, as Fabric does (shown, not
    /// judged: it explains a coverage drop at high rates).
    pub stale_share: f64,
    /// Share of blocks that reached every peer (shown, not judged).
    pub completeness: f64,
    /// Time for a block to reach every peer, p99, ms (shown, not judged).
    pub time_to_all_p99_ms: f64,
    /// CPU per node under load, % of one core (shown, not judged).
    pub cpu_pct_per_node_mean: f64,
    /// Traffic per peer, bytes/s (shown, not judged).
    pub bytes_per_peer_per_s: f64,
}

impl RateFigures {
    /// Reads the figures from a run.json document.
    pub fn from_run_json(doc: &Value) -> Result<Self, SweepError> {
        let mut missing = Vec::new();
        let mut get = |v: &Value, name: &str| {
            v.get(name).and_then(Value::as_f64).unwrap_or_else(|| {
                missing.push(name.to_string());
                0.0
            })
        };
        let f = &doc["figures"];
        let d = &doc["stats_delta_total"];
        let measured = get(f, "deliveries_measured");
        let expected = get(f, "deliveries_expected");
        let out = RateFigures {
            inject_lag_p99_ms: get(f, "inject_lag_p99_ms"),
            coverage: if expected > 0.0 {
                measured / expected
            } else {
                1.0
            },
            latency_p50_ms: get(f, "latency_p50_ms"),
            latency_p99_ms: get(f, "latency_p99_ms"),
            latency_p99_first_third_ms: get(f, "latency_p99_first_third_ms"),
            latency_p99_last_third_ms: get(f, "latency_p99_last_third_ms"),
            stale_share: d
                .get("node.dropped.Stale")
                .and_then(Value::as_f64)
                .unwrap_or(0.0)
                / expected.max(1.0),
            overflow_count: get(d, "comm.overflow_count"),
            messages_sent: get(d, "comm.messages_sent"),
            completeness: get(f, "completeness"),
            time_to_all_p99_ms: get(f, "time_to_all_p99_ms"),
            cpu_pct_per_node_mean: get(f, "cpu_pct_per_node_mean"),
            bytes_per_peer_per_s: get(f, "bytes_per_peer_per_s"),
        };
        if missing.is_empty() {
            Ok(out)
        } else {
            Err(SweepError::MissingFigures(missing))
        }
    }

    /// Each figure's median over `runs` (the mean of the middle two for an even count): what a
    /// rate with repeats is judged on, so one run's luck on a shared machine, good or bad, does not
    /// decide its verdict. `None` when `runs` is empty.
    pub fn median(runs: &[RateFigures]) -> Option<RateFigures> {
        if runs.is_empty() {
            return None;
        }
        let m = |field: fn(&RateFigures) -> f64| {
            let mut v: Vec<f64> = runs.iter().map(field).collect();
            v.sort_by(f64::total_cmp);
            let mid = v.len() / 2;
            if v.len() % 2 == 1 {
                v[mid]
            } else {
                (v[mid - 1] + v[mid]) / 2.0
            }
        };
        Some(RateFigures {
            inject_lag_p99_ms: m(|f| f.inject_lag_p99_ms),
            coverage: m(|f| f.coverage),
            latency_p50_ms: m(|f| f.latency_p50_ms),
            latency_p99_ms: m(|f| f.latency_p99_ms),
            latency_p99_first_third_ms: m(|f| f.latency_p99_first_third_ms),
            latency_p99_last_third_ms: m(|f| f.latency_p99_last_third_ms),
            overflow_count: m(|f| f.overflow_count),
            messages_sent: m(|f| f.messages_sent),
            stale_share: m(|f| f.stale_share),
            completeness: m(|f| f.completeness),
            time_to_all_p99_ms: m(|f| f.time_to_all_p99_ms),
            cpu_pct_per_node_mean: m(|f| f.cpu_pct_per_node_mean),
            bytes_per_peer_per_s: m(|f| f.bytes_per_peer_per_s),
        })
    }

    /// Overflowed sends as a percentage of sent messages.
    pub fn overflow_pct(&self) -> f64 {
        if self.overflow_count <= 0.0 {
            0.0
        } else {
            self.overflow_count / self.messages_sent.max(1.0) * 100.0
        }
    }
}

/// Whether a rate is sustainable, and why (every failed criterion, or why it held).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Verdict {
    /// Every criterion held.
    pub sustainable: bool,
    /// One line per failed criterion, each starting with the figure it is about.
    pub failed: Vec<String>,
}

impl Verdict {
    /// The reason as one line.
    pub fn reason(&self) -> String {
        if self.failed.is_empty() {
            "all criteria hold".into()
        } else {
            self.failed.join("; ")
        }
    }

    fn failed_run(why: String) -> Self {
        Verdict {
            sustainable: false,
            failed: vec![why],
        }
    }
}

/// Judges one rate's figures; `baseline_coverage` is the lowest rate's coverage.
pub fn judge(f: &RateFigures, baseline_coverage: f64, c: &Criteria) -> Verdict {
    let mut failed = Vec::new();
    if f.inject_lag_p99_ms > c.max_inject_lag_p99_ms {
        failed.push(format!(
            "inject_lag_p99_ms {:.1} > {} (the injector fell behind its schedule)",
            f.inject_lag_p99_ms, c.max_inject_lag_p99_ms
        ));
    }
    let min_coverage = c.min_coverage(baseline_coverage);
    if f.coverage < min_coverage {
        failed.push(format!(
            "coverage {:.4} < {min_coverage:.4} (lowest rate's {baseline_coverage:.4} - {}: deliveries lost to overload or, at high rates, to blocks arriving outside the maxBlockCountToStore window: stale_share {:.4})",
            f.coverage, c.max_coverage_drop, f.stale_share
        ));
    }
    if f.latency_p99_ms > c.max_latency_p99_ms {
        failed.push(format!(
            "latency_p99_ms {:.1} > {}",
            f.latency_p99_ms, c.max_latency_p99_ms
        ));
    }
    let growth_limit = c.max_last_third_growth * f.latency_p99_first_third_ms;
    let growth_ms = f.latency_p99_last_third_ms - f.latency_p99_first_third_ms;
    if f.latency_p99_last_third_ms > growth_limit && growth_ms > c.last_third_growth_slack_ms {
        failed.push(format!(
            "latency_p99_last_third_ms {:.1} > {} x latency_p99_first_third_ms {:.1} and {:.1} ms more (> {} ms): latency grows over the run",
            f.latency_p99_last_third_ms,
            c.max_last_third_growth,
            f.latency_p99_first_third_ms,
            growth_ms,
            c.last_third_growth_slack_ms
        ));
    }
    if f.overflow_pct() > c.max_overflow_pct {
        failed.push(format!(
            "comm.overflow_count {} = {:.3}% of comm.messages_sent {} > {}% (send buffers overflowed)",
            f.overflow_count,
            f.overflow_pct(),
            f.messages_sent,
            c.max_overflow_pct
        ));
    }
    Verdict {
        sustainable: failed.is_empty(),
        failed,
    }
}

/// The highest rate such that it and every lower rate are sustainable; `verdicts` are
/// `(rate, sustainable)` in ascending rate order. `None` when the lowest is not sustainable.
pub fn max_sustainable(verdicts: &[(f64, bool)]) -> Option<f64> {
    verdicts
        .iter()
        .take_while(|(_, ok)| *ok)
        .last()
        .map(|(r, _)| *r)
}

/// Whether the last [`STOP_AFTER_UNSUSTAINABLE`] verdicts were all unsustainable.
pub fn should_stop(sustainable: &[bool]) -> bool {
    sustainable.len() >= STOP_AFTER_UNSUSTAINABLE
        && sustainable
            .iter()
            .rev()
            .take(STOP_AFTER_UNSUSTAINABLE)
            .all(|ok| !ok)
}

/// A rate as it appears in names and tables: `100`, `12.5`.
pub fn rate_label(rate: f64) -> String {
    format!("{rate}")
}

/// The scenario of one rate: `rate_per_s` set, named `<name>-r<rate>`. A scenario that fixes
/// `blocks` keeps its duration (`blocks / rate_per_s` seconds) rather than its block count, so
/// every rate runs as long: `duration_s` becomes that duration and `blocks` is cleared, making
/// the block count `duration_s × rate`. Warm-up stays in seconds.
pub fn scenario_for_rate(base: &Scenario, rate: f64) -> Result<Scenario, SweepError> {
    let mut s = base.clone();
    if let Some(blocks) = base.blocks {
        s.duration_s = blocks as f64 / base.rate_per_s;
        s.blocks = None;
    }
    s.rate_per_s = rate;
    s.name = format!("{}-r{}", base.name, rate_label(rate));
    s.validate()
        .map_err(|source| SweepError::Scenario { rate, source })?;
    Ok(s)
}

/// The outcome of one rate.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RateOutcome {
    /// Blocks per second per channel.
    pub rate: f64,
    /// The rate's name (`<name>-r<rate>`; its runs are `<name>-r<rate>-<k>` with repeats).
    pub name: String,
    /// The results folder of each run that finished.
    pub dirs: Vec<PathBuf>,
    /// The nodes' build commit of each run that finished (its run.json `git_commit`).
    pub node_commits: Vec<Option<String>>,
    /// The figures of each run, while every run finished with complete figures.
    pub runs: Vec<RateFigures>,
    /// What the verdict read: each figure's median over `runs` (the run's own with one run).
    pub figures: Option<RateFigures>,
    /// The verdict.
    pub verdict: Verdict,
}

/// A whole sweep.
#[derive(Clone, Debug, PartialEq)]
pub struct Sweep {
    /// The scenario as given.
    pub base: Scenario,
    /// The thresholds.
    pub criteria: Criteria,
    /// Rates asked for, ascending.
    pub rates: Vec<f64>,
    /// Runs per rate.
    pub repeats: usize,
    /// Rates run, ascending.
    pub outcomes: Vec<RateOutcome>,
    /// Coverage that the coverage criterion is relative to: the lowest rate with figures.
    pub baseline_coverage: Option<f64>,
}

impl Sweep {
    /// Rates not run because of two consecutive unsustainable rates below them.
    pub fn skipped(&self) -> &[f64] {
        &self.rates[self.outcomes.len()..]
    }

    /// See [`max_sustainable`].
    pub fn max_sustainable(&self) -> Option<f64> {
        let v: Vec<(f64, bool)> = self
            .outcomes
            .iter()
            .map(|o| (o.rate, o.verdict.sustainable))
            .collect();
        max_sustainable(&v)
    }
}

/// Runs every rate of `rates` (ascending) `repeats` times (at least once) through `run_one`, which
/// runs a scenario the way `loadgen run` does and returns its run.json and results folder, and
/// judges each rate on the medians of its runs' figures. A run that fails, or lacks figures, fails
/// its rate and ends that rate's runs.
pub fn sweep<E: std::fmt::Display>(
    base: &Scenario,
    rates: &[f64],
    repeats: usize,
    criteria: &Criteria,
    mut run_one: impl FnMut(&Scenario) -> Result<(Value, PathBuf), E>,
) -> Result<Sweep, SweepError> {
    let repeats = repeats.max(1);
    let scenarios = rates
        .iter()
        .map(|&r| scenario_for_rate(base, r))
        .collect::<Result<Vec<_>, _>>()?;
    let mut sweep = Sweep {
        base: base.clone(),
        criteria: criteria.clone(),
        rates: rates.to_vec(),
        repeats,
        outcomes: Vec::new(),
        baseline_coverage: None,
    };
    for s in scenarios {
        let mut dirs = Vec::new();
        let mut node_commits = Vec::new();
        let mut runs = Vec::new();
        let mut failed = None;
        for k in 1..=repeats {
            let mut run = s.clone();
            if repeats > 1 {
                run.name = format!("{}-{k}", s.name);
            }
            match run_one(&run) {
                Err(e) => failed = Some(format!("run failed: {e}")),
                Ok((doc, dir)) => {
                    dirs.push(dir);
                    node_commits.push(doc["git_commit"].as_str().map(str::to_owned));
                    match RateFigures::from_run_json(&doc) {
                        Ok(f) => runs.push(f),
                        Err(e) => failed = Some(e.to_string()),
                    }
                }
            }
            if failed.is_some() {
                break;
            }
        }
        let figures = RateFigures::median(&runs);
        let verdict = match (failed, &figures) {
            (Some(why), _) => Verdict::failed_run(why),
            (None, Some(f)) => {
                let base_cov = *sweep.baseline_coverage.get_or_insert(f.coverage);
                judge(f, base_cov, criteria)
            }
            (None, None) => Verdict::failed_run("no run".into()),
        };
        sweep.outcomes.push(RateOutcome {
            rate: s.rate_per_s,
            name: s.name.clone(),
            dirs,
            node_commits,
            runs,
            figures,
            verdict,
        });
        let oks: Vec<bool> = sweep
            .outcomes
            .iter()
            .map(|o| o.verdict.sustainable)
            .collect();
        if should_stop(&oks) {
            break;
        }
    }
    Ok(sweep)
}

#[cfg(test)]
mod tests;
