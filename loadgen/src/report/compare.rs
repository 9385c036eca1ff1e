//! `compare BASE.json NEW.json --threshold NAME=+10%`: differences of the `figures` maps of two
//! runs (run.json or sim-figures JSON), and a verdict per threshold.
//!
//! Threshold forms, for a metric `NAME` of `figures`:
//! - `NAME=+10%`: NEW may be at most 10 % higher than BASE (for costs: latency, bytes, CPU);
//! - `NAME=-10%`: NEW may be at most 10 % lower (for goods: completeness, throughput);
//! - `NAME=~10%`: NEW may differ by at most 10 % either way;
//! - the same without `%` are absolute: `completeness=-0.005`, `latency_p99_ms=+5`;
//! - `NAME=+0` forbids any increase (exact gates on deterministic figures).
//!
//! `NAME` may be a pattern where `*` stands for any run of characters (`*.violations=+0` gates
//! `fanout3.violations`, `loss5.violations`, ...). A metric named exactly by some threshold is
//! judged by those only; otherwise by every pattern that matches it. A pattern that matches no
//! metric of either file counts as a regression (a typo must not disable a gate).
//!
//! A one-sided threshold also reports the other side: a figure that got *better* by more than the
//! limit is an improvement, printed as `IMPROVED` and counted, never a failure. It means the
//! baseline is stale: refresh it (in a commit of its own) so the gate keeps its margin.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

use serde_json::Value;

/// Comparing failed before any verdict.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    /// A file could not be read.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A file is not JSON or has no figures.
    #[error("{path}: {why}")]
    Format {
        /// The file.
        path: String,
        /// Why.
        why: String,
    },
    /// A threshold does not parse.
    #[error("bad threshold {0:?}: expected NAME=+X%, NAME=-X%, NAME=~X% or without % for absolute")]
    Threshold(String),
}

/// Which direction of change a threshold limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Increase is bad.
    Up,
    /// Decrease is bad.
    Down,
    /// Either is bad.
    Both,
}

/// One threshold.
#[derive(Clone, Debug, PartialEq)]
pub struct Threshold {
    /// Metric name in `figures`.
    pub metric: String,
    /// Direction limited.
    pub direction: Direction,
    /// Allowed change (fraction of BASE when `relative`, else absolute).
    pub limit: f64,
    /// Relative (`%`) or absolute.
    pub relative: bool,
}

impl Threshold {
    /// Parses `NAME=+10%` and the other forms.
    pub fn parse(text: &str) -> Result<Self, CompareError> {
        let bad = || CompareError::Threshold(text.to_string());
        let (metric, rule) = text.split_once('=').ok_or_else(bad)?;
        let rule = rule.trim();
        let (direction, rest) = match rule.chars().next() {
            Some('+') => (Direction::Up, &rule[1..]),
            Some('-') => (Direction::Down, &rule[1..]),
            Some('~') => (Direction::Both, &rule[1..]),
            _ => return Err(bad()),
        };
        let (num, relative) = match rest.strip_suffix('%') {
            Some(n) => (n, true),
            None => (rest, false),
        };
        let mut limit: f64 = num.trim().parse().map_err(|_| bad())?;
        if !(limit >= 0.0 && limit.is_finite()) || metric.trim().is_empty() {
            return Err(bad());
        }
        if relative {
            limit /= 100.0;
        }
        Ok(Threshold {
            metric: metric.trim().to_string(),
            direction,
            limit,
            relative,
        })
    }

    /// Whether going from `base` to `new` stays within the threshold.
    pub fn allows(&self, base: f64, new: f64) -> bool {
        self.judge(base, new) != Verdict::Regression
    }

    /// The verdict on going from `base` to `new`: beyond the limit in the limited direction is a
    /// regression, beyond it in the other direction (one-sided thresholds only) an improvement.
    pub fn judge(&self, base: f64, new: f64) -> Verdict {
        let allowed = if self.relative {
            self.limit * base.abs()
        } else {
            self.limit
        };
        // A tiny epsilon so that exactly-at-limit passes despite float rounding.
        let eps = 1e-9 * base.abs().max(1.0);
        // Positive when NEW is worse.
        let worse_by = match self.direction {
            Direction::Up => new - base,
            Direction::Down => base - new,
            Direction::Both => (new - base).abs(),
        };
        if worse_by > allowed + eps {
            Verdict::Regression
        } else if self.direction != Direction::Both && -worse_by > allowed + eps {
            Verdict::Improved
        } else {
            Verdict::Ok
        }
    }

    /// Whether the threshold's metric (a name or a `*` pattern) names `metric`.
    pub fn matches(&self, metric: &str) -> bool {
        glob_matches(&self.metric, metric)
    }

    /// Whether the metric is a pattern.
    pub fn is_pattern(&self) -> bool {
        self.metric.contains('*')
    }

    fn describe(&self) -> String {
        let sign = match self.direction {
            Direction::Up => "+",
            Direction::Down => "-",
            Direction::Both => "~",
        };
        if self.relative {
            format!("{sign}{}%", self.limit * 100.0)
        } else {
            format!("{sign}{}", self.limit)
        }
    }
}

/// `*` matches any run of characters (none included); everything else matches itself.
fn glob_matches(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// The verdict on one thresholded figure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Within the threshold.
    Ok,
    /// Better than BASE by more than the threshold (BASE is stale).
    Improved,
    /// Worse than BASE by more than the threshold, or missing on a side.
    Regression,
}

/// Numeric figures of a run: `figures` of a run.json or sim-figures file.
pub type Figures = BTreeMap<String, f64>;

/// Reads the figures of a JSON file: its `figures` object (numbers only).
pub fn load_figures(path: &Path) -> Result<Figures, CompareError> {
    let p = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| CompareError::Io {
        path: p.clone(),
        source,
    })?;
    let v: Value = serde_json::from_str(&text).map_err(|e| CompareError::Format {
        path: p.clone(),
        why: e.to_string(),
    })?;
    figures_of(&v).ok_or(CompareError::Format {
        path: p,
        why: "no \"figures\" object".into(),
    })
}

/// The numeric entries of `v["figures"]`, plus those of each kind of peer of a mixed cluster's
/// run.json (`kinds.<kind>.figures`) as `<kind>.<figure>` (e.g. `fabric-node.latency_p99_ms`);
/// files without `kinds` (older ones, sim-figures) have only the former.
pub fn figures_of(v: &Value) -> Option<Figures> {
    let obj = v.get("figures")?.as_object()?;
    let mut out: Figures = obj
        .iter()
        .filter_map(|(k, v)| Some((k.clone(), v.as_f64()?)))
        .collect();
    if let Some(kinds) = v.get("kinds").and_then(Value::as_object) {
        for (kind, k) in kinds {
            let Some(f) = k.get("figures").and_then(Value::as_object) else {
                continue;
            };
            out.extend(
                f.iter()
                    .filter_map(|(name, v)| Some((format!("{kind}.{name}"), v.as_f64()?))),
            );
        }
    }
    Some(out)
}

/// One row of the comparison.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// Metric.
    pub metric: String,
    /// BASE value.
    pub base: Option<f64>,
    /// NEW value.
    pub new: Option<f64>,
    /// Threshold text, if any.
    pub threshold: Option<String>,
    /// The verdict; `None` when no threshold applies.
    pub verdict: Option<Verdict>,
}

/// All rows plus the verdict.
#[derive(Clone, Debug, PartialEq)]
pub struct Comparison {
    /// Every metric of either side, sorted.
    pub rows: Vec<Row>,
    /// Rows that broke their threshold (a thresholded metric missing on a side counts, and so
    /// does a pattern that matches nothing).
    pub regressions: usize,
    /// Rows better than BASE by more than their threshold.
    pub improvements: usize,
}

/// Compares two figure maps under `thresholds`.
pub fn compare(base: &Figures, new: &Figures, thresholds: &[Threshold]) -> Comparison {
    let mut names: Vec<&String> = base.keys().chain(new.keys()).collect();
    for t in thresholds.iter().filter(|t| !t.is_pattern()) {
        names.push(&t.metric);
    }
    names.sort();
    names.dedup();
    let mut rows = Vec::new();
    for name in &names {
        let b = base.get(*name).copied();
        let n = new.get(*name).copied();
        let exact: Vec<&Threshold> = thresholds.iter().filter(|t| &t.metric == *name).collect();
        let ts = if exact.is_empty() {
            thresholds.iter().filter(|t| t.matches(name)).collect()
        } else {
            exact
        };
        let (threshold, verdict) = if ts.is_empty() {
            (None, None)
        } else {
            let verdict = match (b, n) {
                (Some(b), Some(n)) => {
                    let vs: Vec<Verdict> = ts.iter().map(|t| t.judge(b, n)).collect();
                    if vs.contains(&Verdict::Regression) {
                        Verdict::Regression
                    } else if vs.contains(&Verdict::Improved) {
                        Verdict::Improved
                    } else {
                        Verdict::Ok
                    }
                }
                _ => Verdict::Regression,
            };
            let text: Vec<String> = ts.iter().map(|t| t.describe()).collect();
            (Some(text.join(" ")), Some(verdict))
        };
        rows.push(Row {
            metric: (*name).clone(),
            base: b,
            new: n,
            threshold,
            verdict,
        });
    }
    for t in thresholds.iter().filter(|t| t.is_pattern()) {
        if !names.iter().any(|n| t.matches(n)) {
            rows.push(Row {
                metric: t.metric.clone(),
                base: None,
                new: None,
                threshold: Some(format!("{} (matches nothing)", t.describe())),
                verdict: Some(Verdict::Regression),
            });
        }
    }
    let count = |v: Verdict| rows.iter().filter(|r| r.verdict == Some(v)).count();
    Comparison {
        regressions: count(Verdict::Regression),
        improvements: count(Verdict::Improved),
        rows,
    }
}

/// A plain-text table of the comparison.
pub fn render(c: &Comparison) -> String {
    let fmt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.4}"));
    let w = c
        .rows
        .iter()
        .map(|r| r.metric.len())
        .max()
        .unwrap_or(6)
        .max(6);
    let mut out = format!(
        "{:w$}  {:>14}  {:>14}  {:>10}  {:>9}  {:>10}  verdict\n",
        "metric", "base", "new", "change", "change%", "threshold"
    );
    for r in &c.rows {
        let (d, dp) = match (r.base, r.new) {
            (Some(b), Some(n)) => (
                format!("{:+.4}", n - b),
                if b != 0.0 {
                    format!("{:+.2}%", (n - b) / b.abs() * 100.0)
                } else {
                    "-".into()
                },
            ),
            _ => ("-".into(), "-".into()),
        };
        let verdict = match r.verdict {
            Some(Verdict::Ok) => "ok",
            Some(Verdict::Improved) => "IMPROVED",
            Some(Verdict::Regression) => "REGRESSION",
            None => "",
        };
        let _ = writeln!(
            out,
            "{:w$}  {:>14}  {:>14}  {:>10}  {:>9}  {:>10}  {verdict}",
            r.metric,
            fmt(r.base),
            fmt(r.new),
            d,
            dp,
            r.threshold.as_deref().unwrap_or("")
        );
    }
    let _ = writeln!(out, "{} regression(s)", c.regressions);
    if c.improvements > 0 {
        let _ = writeln!(
            out,
            "{} improvement(s) beyond threshold: if intended, refresh the baseline in a commit of its own",
            c.improvements
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threshold_forms_parse() {
        let t = Threshold::parse("latency_p99_ms=+10%").unwrap();
        assert_eq!((t.direction, t.relative), (Direction::Up, true));
        assert!((t.limit - 0.1).abs() < 1e-12);
        let t = Threshold::parse("completeness=-0.5").unwrap();
        assert_eq!(
            (t.direction, t.relative, t.limit),
            (Direction::Down, false, 0.5)
        );
        assert_eq!(Threshold::parse("x=~0").unwrap().direction, Direction::Both);
        for bad in ["x", "x=10%", "=+1", "x=+abc", "x=+-1"] {
            assert!(Threshold::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn per_kind_figures_are_compared_as_kind_dot_figure_and_old_files_still_read() {
        let old = serde_json::json!({"figures": {"latency_p99_ms": 5.0, "note": "text"}});
        let old_f = figures_of(&old).unwrap();
        assert_eq!(old_f.len(), 1);
        let new = serde_json::json!({"figures": {"latency_p99_ms": 6.0},
            "kinds": {"fabric-node": {"figures": {"latency_p99_ms": 8.0}, "bytes_source": "wire_counters"},
                      "gossip-node": {"nodes": [0]}}});
        let new_f = figures_of(&new).unwrap();
        assert_eq!(new_f["fabric-node.latency_p99_ms"], 8.0);
        assert_eq!(new_f.len(), 2);
        let t = Threshold::parse("fabric-node.latency_p99_ms=+10%").unwrap();
        let c = compare(&old_f, &new_f, &[t]);
        assert_eq!(c.regressions, 1, "missing in BASE counts");
        assert_eq!(compare(&old_f, &new_f, &[]).regressions, 0);
    }

    #[test]
    fn patterns_match_like_a_shell_glob() {
        for (pattern, text, want) in [
            ("*.violations", "loss5.violations", true),
            ("*.violations", "violations", false),
            ("*", "", true),
            ("a*b*c", "a-b-b-c", true),
            ("a*b*c", "a-c-b", false),
            ("fanout3.*", "fanout3.completeness", true),
            ("x*x", "x", false),
            ("exact", "exact", true),
            ("exact", "exact2", false),
        ] {
            assert_eq!(glob_matches(pattern, text), want, "{pattern} {text}");
        }
    }

    fn figs(pairs: &[(&str, f64)]) -> Figures {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    #[test]
    fn an_exact_threshold_overrides_patterns_and_a_pattern_matching_nothing_fails() {
        let base = figs(&[
            ("a.violations", 0.0),
            ("b.violations", 0.0),
            ("a.ms", 100.0),
        ]);
        let new = figs(&[
            ("a.violations", 1.0),
            ("b.violations", 0.0),
            ("a.ms", 100.0),
        ]);
        let ts = |list: &[&str]| -> Vec<Threshold> {
            list.iter().map(|t| Threshold::parse(t).unwrap()).collect()
        };
        let c = compare(&base, &new, &ts(&["*.violations=+0"]));
        assert_eq!(c.regressions, 1, "{c:?}");
        let c = compare(&base, &new, &ts(&["*.violations=+0", "a.violations=+2"]));
        assert_eq!(c.regressions, 0, "the exact threshold wins: {c:?}");
        let c = compare(&base, &new, &ts(&["*.violatoins=+0"]));
        assert_eq!(c.regressions, 1, "a typo fails: {c:?}");
        assert!(render(&c).contains("matches nothing"));
    }

    #[test]
    fn an_improvement_beyond_the_threshold_is_reported_not_failed() {
        let t = Threshold::parse("ms=+10%").unwrap();
        assert_eq!(t.judge(100.0, 105.0), Verdict::Ok);
        assert_eq!(t.judge(100.0, 111.0), Verdict::Regression);
        assert_eq!(t.judge(100.0, 89.0), Verdict::Improved);
        assert_eq!(t.judge(100.0, 90.0), Verdict::Ok, "at the limit");
        let t = Threshold::parse("completeness=-0.02").unwrap();
        assert_eq!(t.judge(0.8, 0.83), Verdict::Improved);
        assert_eq!(t.judge(0.8, 0.77), Verdict::Regression);
        let t = Threshold::parse("x=~5%").unwrap();
        assert_eq!(t.judge(100.0, 90.0), Verdict::Regression, "two-sided");
        let c = compare(
            &figs(&[("ms", 100.0), ("c", 0.8)]),
            &figs(&[("ms", 80.0), ("c", 0.8)]),
            &[Threshold::parse("ms=+10%").unwrap()],
        );
        assert_eq!((c.regressions, c.improvements), (0, 1));
        let text = render(&c);
        assert!(
            text.contains("IMPROVED") && text.contains("1 improvement(s)"),
            "{text}"
        );
    }
}
