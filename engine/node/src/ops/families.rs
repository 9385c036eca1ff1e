//! The engine's histogram snapshots as Prometheus metric families. The `prometheus` crate's own
//! `Histogram` records observations itself; ours were recorded by the engine, so their families
//! are built from the snapshots and handed to the crate's text encoder with the registry's.

use gossip_engine::histogram::HistogramSnapshot;
use prometheus::proto::{Bucket, Histogram, LabelPair, Metric, MetricFamily, MetricType};

/// One histogram series: its label values (in the family's label order) and its counts.
pub struct Series<'a> {
    /// Label values, one per label name of the family.
    pub labels: Vec<String>,
    /// The counts.
    pub histogram: &'a HistogramSnapshot,
}

/// A histogram family `name` with `label_names`; one metric per series.
pub fn histogram_family(
    name: &str,
    help: &str,
    label_names: &[&str],
    series: Vec<Series<'_>>,
) -> MetricFamily {
    let mut family = MetricFamily::default();
    family.set_name(name.to_owned());
    family.set_help(help.to_owned());
    family.set_field_type(MetricType::HISTOGRAM);
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
            let labels = label_names
                .iter()
                .zip(s.labels)
                .map(|(name, value)| {
                    let mut pair = LabelPair::default();
                    pair.set_name((*name).to_owned());
                    pair.set_value(value);
                    pair
                })
                .collect();
            let mut m = Metric::from_label(labels);
            m.set_histogram(h);
            m
        })
        .collect();
    family.set_metric(metrics);
    family
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
