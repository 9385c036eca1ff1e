//! Resource trends over a run's samples (spec/operations.md E.2, R6 and R7: "fd and task counts
//! flat"): per node the most open file descriptors and tokio tasks seen, and the least-squares
//! slope of each after warm-up, the leak figures; and the slope helper the RSS leak figure
//! (`rss_slope_mib_per_h_*`) shares.

use serde_json::{Value, json};

use crate::commands::run::Sample;

/// The shortest span of samples a slope is given for, seconds: over a short run start-up (the
/// allocator's warm-up, connections still opening) dominates and the slope says nothing about
/// leaks.
pub const SLOPE_SPAN_MIN_S: f64 = 600.0;

/// The least-squares slope of `y` over `x` through `pts`; `None` with fewer than 3 points or
/// when every `x` is the same.
pub fn least_squares_slope(pts: &[(f64, f64)]) -> Option<f64> {
    if pts.len() < 3 {
        return None;
    }
    let n = pts.len() as f64;
    let (mx, my) = pts
        .iter()
        .fold((0.0, 0.0), |(a, b), (x, y)| (a + x / n, b + y / n));
    let sxx: f64 = pts.iter().map(|(x, _)| (x - mx).powi(2)).sum();
    let sxy: f64 = pts.iter().map(|(x, y)| (x - mx) * (y - my)).sum();
    (sxx > 0.0).then(|| sxy / sxx)
}

/// Per node, the least-squares slope of `value(sample, node)` per hour over the samples at or
/// after `from_s` that have one, when they span at least [`SLOPE_SPAN_MIN_S`]; a node restarted
/// in between mixes two processes (its slope is then meaningless).
pub fn slopes_per_h(
    samples: &[Sample],
    nodes: usize,
    from_s: f64,
    value: impl Fn(&Sample, usize) -> Option<f64>,
) -> Vec<Option<f64>> {
    (0..nodes)
        .map(|k| {
            let pts: Vec<(f64, f64)> = samples
                .iter()
                .filter(|x| x.t_s >= from_s)
                .filter_map(|x| Some((x.t_s / 3600.0, value(x, k)?)))
                .collect();
            let span_s = (pts.last()?.0 - pts.first()?.0) * 3600.0;
            if span_s < SLOPE_SPAN_MIN_S {
                return None;
            }
            least_squares_slope(&pts)
        })
        .collect()
}

/// Node `k`'s open descriptors in sample `x` (`None` while it is down or unreadable).
fn fds_of(x: &Sample, k: usize) -> Option<u64> {
    x.procs.get(k)?.as_ref()?.fd_count
}

/// Node `k`'s tokio tasks in sample `x` (`None` without a reading).
fn tasks_of(x: &Sample, k: usize) -> Option<u64> {
    x.tokio_tasks.get(k).copied().flatten()
}

/// One node's descriptor and task figures.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct NodeResources {
    /// Most open file descriptors in any sample (`None`: never read).
    pub fd_count_max: Option<u64>,
    /// Least-squares slope of the open descriptors after warm-up, per hour ([`slopes_per_h`]).
    pub fd_slope_per_h: Option<f64>,
    /// Most tokio tasks alive in any sample (`None`: never read).
    pub tokio_tasks_max: Option<u64>,
    /// Least-squares slope of the tasks alive after warm-up, per hour.
    pub tokio_tasks_slope_per_h: Option<f64>,
}

impl NodeResources {
    /// run.json's per-node fields.
    pub fn to_json(self) -> Value {
        json!({
            "fd_count_max": self.fd_count_max,
            "fd_slope_per_h": self.fd_slope_per_h,
            "tokio_tasks_max": self.tokio_tasks_max,
            "tokio_tasks_slope_per_h": self.tokio_tasks_slope_per_h,
        })
    }
}

/// Per node, its [`NodeResources`]: maxima over every sample, slopes over those at or after
/// `from_s` (the end of warm-up).
pub fn node_resources(samples: &[Sample], nodes: usize, from_s: f64) -> Vec<NodeResources> {
    let as_f64 = |f: fn(&Sample, usize) -> Option<u64>| move |x: &Sample, k| Some(f(x, k)? as f64);
    let fd_slopes = slopes_per_h(samples, nodes, from_s, as_f64(fds_of));
    let task_slopes = slopes_per_h(samples, nodes, from_s, as_f64(tasks_of));
    (0..nodes)
        .map(|k| NodeResources {
            fd_count_max: samples.iter().filter_map(|x| fds_of(x, k)).max(),
            fd_slope_per_h: fd_slopes[k],
            tokio_tasks_max: samples.iter().filter_map(|x| tasks_of(x, k)).max(),
            tokio_tasks_slope_per_h: task_slopes[k],
        })
        .collect()
}

/// run.json's `fd_count_max`, `fd_slope_per_h_max`, `tokio_tasks_max` and
/// `tokio_tasks_slope_per_h_max`: the largest over the nodes; each absent when no node has it
/// (no reading, or for a slope a span under [`SLOPE_SPAN_MIN_S`]).
pub fn resource_figures(nodes: &[NodeResources], put: &mut impl FnMut(&str, f64)) {
    let max = |f: fn(&NodeResources) -> Option<f64>| nodes.iter().filter_map(f).reduce(f64::max);
    for (name, f) in [
        (
            "fd_count_max",
            (|r| Some(r.fd_count_max? as f64)) as fn(&NodeResources) -> Option<f64>,
        ),
        ("fd_slope_per_h_max", |r| r.fd_slope_per_h),
        ("tokio_tasks_max", |r| Some(r.tokio_tasks_max? as f64)),
        ("tokio_tasks_slope_per_h_max", |r| r.tokio_tasks_slope_per_h),
    ] {
        if let Some(v) = max(f) {
            put(name, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::procfs::ProcSample;

    /// A sample of two nodes: node 0 down, node 1 with `fds` descriptors and `tasks` tasks.
    fn sample(t_s: f64, fds: Option<u64>, tasks: Option<u64>) -> Sample {
        Sample {
            t_s,
            procs: vec![
                None,
                Some(ProcSample {
                    fd_count: fds,
                    ..ProcSample::default()
                }),
            ],
            tokio_tasks: vec![None, tasks],
            proxy_bytes: 0,
            wire: None,
        }
    }

    #[test]
    fn least_squares_slope_fits_a_line_and_needs_three_distinct_points() {
        let line: Vec<(f64, f64)> = (0..5).map(|i| (i as f64, 3.0 + 2.0 * i as f64)).collect();
        assert!((least_squares_slope(&line).unwrap() - 2.0).abs() < 1e-12);
        // Noise around a flat line: slope near 0.
        let flat = [(0.0, 10.0), (1.0, 11.0), (2.0, 9.0), (3.0, 10.0)];
        assert!(least_squares_slope(&flat).unwrap().abs() < 0.5);
        assert_eq!(least_squares_slope(&line[..2]), None, "two points");
        assert_eq!(least_squares_slope(&[(1.0, 1.0); 4]), None, "one x");
    }

    #[test]
    fn fd_and_task_slopes_are_per_hour_after_warm_up_over_ten_minutes_or_more() {
        // After warm-up, 1 descriptor more every 360 s (10/h) and 1 task fewer every 720 s
        // (-5/h); the warm-up sample's spike is left out of the slopes, not of the maxima.
        let mut samples = vec![sample(-10.0, Some(500), Some(900))];
        samples.extend((0..10).map(|i| sample(i as f64 * 360.0, Some(40 + i), Some(100 - i / 2))));
        let r = node_resources(&samples, 2, 0.0);
        assert_eq!(r[0], NodeResources::default(), "node 0 was never read");
        assert!((r[1].fd_slope_per_h.unwrap() - 10.0).abs() < 1e-6, "{r:?}");
        assert!(
            (r[1].tokio_tasks_slope_per_h.unwrap() + 5.0).abs() < 0.5,
            "{r:?}"
        );
        assert_eq!(r[1].fd_count_max, Some(500));
        assert_eq!(r[1].tokio_tasks_max, Some(900));
        // Under 10 minutes after warm-up: no slope, the maxima still.
        let short = node_resources(&samples[..3], 2, 0.0);
        assert_eq!(short[1].fd_slope_per_h, None, "span 360 s");
        assert_eq!(short[1].tokio_tasks_slope_per_h, None);
        assert_eq!(short[1].fd_count_max, Some(500));
    }

    #[test]
    fn samples_without_a_reading_are_skipped() {
        // Tasks read in only some samples (a node that did not answer a scrape in time).
        let samples: Vec<Sample> = (0..12)
            .map(|i| {
                let tasks = (i % 3 != 0).then_some(50 + i);
                sample(i as f64 * 120.0, Some(30), tasks)
            })
            .collect();
        let r = node_resources(&samples, 2, 0.0);
        assert_eq!(r[1].fd_slope_per_h, Some(0.0), "flat");
        assert!((r[1].tokio_tasks_slope_per_h.unwrap() - 30.0).abs() < 1e-6);
        assert_eq!(r[1].tokio_tasks_max, Some(61));
    }

    #[test]
    fn figures_take_the_largest_node_and_leave_out_what_no_node_has() {
        let nodes = [
            NodeResources {
                fd_count_max: Some(40),
                fd_slope_per_h: Some(-1.0),
                tokio_tasks_max: None,
                tokio_tasks_slope_per_h: None,
            },
            NodeResources {
                fd_count_max: Some(55),
                fd_slope_per_h: Some(-3.0),
                tokio_tasks_max: None,
                tokio_tasks_slope_per_h: None,
            },
        ];
        let mut got = std::collections::BTreeMap::new();
        resource_figures(&nodes, &mut |k: &str, v: f64| {
            got.insert(k.to_owned(), v);
        });
        assert_eq!(got.get("fd_count_max"), Some(&55.0));
        assert_eq!(got.get("fd_slope_per_h_max"), Some(&-1.0));
        assert!(!got.contains_key("tokio_tasks_max"), "no task reading");
        assert!(!got.contains_key("tokio_tasks_slope_per_h_max"));
        assert_eq!(
            nodes[0].to_json()["fd_count_max"],
            json!(40),
            "per-node fields"
        );
    }
}
