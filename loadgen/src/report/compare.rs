//! `compare BASE.json NEW.json --threshold NAME=+10%`: differences of the `figures` maps of two
//! runs (run.json or sim-figures JSON), and a verdict per threshold.
//!
//! Threshold forms, for a metric `NAME` of `figures`:
//! - `NAME=+10%`: NEW may be at most 10 % higher than BASE (for costs: latency, bytes, CPU);
//! - `NAME=-10%`: NEW may be at most 10 % lower (for goods: completeness, throughput);
//! - `NAME=~10%`: NEW may differ by at most 10 % either way;
//! - the same without `%` are absolute: `completeness=-0.005`, `latency_p99_ms=+5`;
//! - `NAME=+0` forbids any increase (exact gates on deterministic figures).

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
        let allowed = if self.relative {
            self.limit * base.abs()
        } else {
            self.limit
        };
        // A tiny epsilon so that exactly-at-limit passes despite float rounding.
        let eps = 1e-9 * base.abs().max(1.0);
        let delta = new - base;
        match self.direction {
            Direction::Up => delta <= allowed + eps,
            Direction::Down => -delta <= allowed + eps,
            Direction::Both => delta.abs() <= allowed + eps,
        }
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
    /// `Some(false)` for a regression, `Some(true)` within threshold, `None` unchecked.
    pub ok: Option<bool>,
}

/// All rows plus the verdict.
#[derive(Clone, Debug, PartialEq)]
pub struct Comparison {
    /// Every metric of either side, sorted.
    pub rows: Vec<Row>,
    /// Rows that broke their threshold (a thresholded metric missing on a side counts).
    pub regressions: usize,
}

/// Compares two figure maps under `thresholds`.
pub fn compare(base: &Figures, new: &Figures, thresholds: &[Threshold]) -> Comparison {
    let mut names: Vec<&String> = base.keys().chain(new.keys()).collect();
    for t in thresholds {
        names.push(&t.metric);
    }
    names.sort();
    names.dedup();
    let mut rows = Vec::new();
    let mut regressions = 0;
    for name in names {
        let b = base.get(name).copied();
        let n = new.get(name).copied();
        let ts: Vec<&Threshold> = thresholds.iter().filter(|t| &t.metric == name).collect();
        let (threshold, ok) = if ts.is_empty() {
            (None, None)
        } else {
            let ok = match (b, n) {
                (Some(b), Some(n)) => ts.iter().all(|t| t.allows(b, n)),
                _ => false,
            };
            let text: Vec<String> = ts.iter().map(|t| t.describe()).collect();
            (Some(text.join(" ")), Some(ok))
        };
        if ok == Some(false) {
            regressions += 1;
        }
        rows.push(Row {
            metric: name.clone(),
            base: b,
            new: n,
            threshold,
            ok,
        });
    }
    Comparison { rows, regressions }
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
        let verdict = match r.ok {
            Some(true) => "ok",
            Some(false) => "REGRESSION",
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
}
