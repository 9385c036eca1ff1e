//! Prometheus metric families built straight from a scrape's values, for the `prometheus` crate's
//! text encoder. A `Registry` would make each value a metric object (atomics, a descriptor
//! validated and hashed at registration) only to read it back at once; the snapshot already
//! holds the values, so the families are built from them (`bench/benches/suites/ops.rs` measures
//! a render). The engine's histograms were recorded by the engine, so their families are built
//! from the snapshots too.

use gossip_engine::histogram::HistogramSnapshot;
use prometheus::proto::{
    Bucket, Counter, Gauge, Histogram, LabelPair, Metric, MetricFamily, MetricType,
};

/// One histogram series: its label values (in the family's label order) and its counts.
pub struct Series<'a> {
    /// Label values, one per label name of the family.
    pub labels: Vec<String>,
    /// The counts.
    pub histogram: &'a HistogramSnapshot,
}

/// The labels of one series: `label_names` paired with `values`.
fn label_pairs(label_names: &[&str], values: Vec<String>) -> Vec<LabelPair> {
    label_names
        .iter()
        .zip(values)
        .map(|(name, value)| {
            let mut pair = LabelPair::default();
            pair.set_name((*name).to_owned());
            pair.set_value(value);
            pair
        })
        .collect()
}

fn family_of(name: &str, help: &str, kind: MetricType, metrics: Vec<Metric>) -> MetricFamily {
    let mut family = MetricFamily::default();
    family.set_name(name.to_owned());
    family.set_help(help.to_owned());
    family.set_field_type(kind);
    family.set_metric(metrics);
    family
}

/// A counter or gauge value as the text format carries it (a gauge above `i64::MAX` reads as
/// `i64::MAX`, as the crate's `IntGauge` would hold it).
fn value_of(kind: MetricType, v: u64) -> f64 {
    match kind {
        MetricType::GAUGE => v.min(i64::MAX as u64) as f64,
        _ => v as f64,
    }
}

/// A family of `kind` (counter or gauge) with one label: one series per row, in the order of
/// the label's values (as a registry gathers them).
pub fn labelled(
    kind: MetricType,
    name: &str,
    help: &str,
    label: &str,
    rows: impl IntoIterator<Item = (String, u64)>,
) -> MetricFamily {
    let mut rows: Vec<(String, u64)> = rows.into_iter().collect();
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    let metrics = rows
        .into_iter()
        .map(|(key, v)| series(kind, label_pairs(&[label], vec![key]), v))
        .collect();
    family_of(name, help, kind, metrics)
}

/// An unlabelled counter or gauge family of one series.
pub fn single_value(kind: MetricType, name: &str, help: &str, v: u64) -> MetricFamily {
    family_of(name, help, kind, vec![series(kind, Vec::new(), v)])
}

fn series(kind: MetricType, labels: Vec<LabelPair>, v: u64) -> Metric {
    let mut m = Metric::from_label(labels);
    let value = value_of(kind, v);
    if kind == MetricType::GAUGE {
        let mut g = Gauge::default();
        g.set_value(value);
        m.set_gauge(g);
    } else {
        let mut c = Counter::default();
        c.set_value(value);
        m.set_counter(c);
    }
    m
}

/// A histogram family `name` with `label_names`; one metric per series.
pub fn histogram_family(
    name: &str,
    help: &str,
    label_names: &[&str],
    series: Vec<Series<'_>>,
) -> MetricFamily {
    let metrics = series
        .into_iter()
        .map(|s| {
            let mut h = Histogram::default();
            h.set_sample_count(s.histogram.count());
            h.set_sample_sum(s.histogram.sum());
            h.set_bucket(
                s.histogram
                    .cumulative()
                    .map(|(bound, n)| {
                        let mut b = Bucket::default();
                        b.set_upper_bound(bound);
                        b.set_cumulative_count(n);
                        b
                    })
                    .collect(),
            );
            let mut m = Metric::from_label(label_pairs(label_names, s.labels));
            m.set_histogram(h);
            m
        })
        .collect();
    family_of(name, help, MetricType::HISTOGRAM, metrics)
}

/// An unlabelled histogram family.
pub fn single(name: &str, help: &str, histogram: &HistogramSnapshot) -> MetricFamily {
    histogram_family(
        name,
        help,
        &[],
        vec![Series {
            labels: Vec::new(),
            histogram,
        }],
    )
}
