//! The run's sampling and feed helpers ([`super::run`]): resource samples, bounded polls, and
//! what each control feed updates.

use std::time::Duration;

use super::run::Sample;
use crate::cluster::control::{self, ControlClient, Feed};
use crate::cluster::launcher::NodeHandle;
use crate::cluster::{Cluster, ops};
use crate::measure::collect::Collector;
use crate::measure::inject::unix_now_ns;
use crate::measure::leader::LeaderFollower;
use crate::measure::membership::Heights;
use crate::measure::procfs::{self, CpuReading};
use crate::measure::traffic::ByteCounters;

use super::run::stats_all;

/// Polls `cond` every 250 ms until it holds or `deadline_ns`; returns whether it held.
pub(super) fn wait_until(deadline_ns: u64, mut cond: impl FnMut() -> bool) -> bool {
    for _ in 0..100_000 {
        if cond() {
            return true;
        }
        if unix_now_ns() >= deadline_ns {
            return false;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    false
}

pub(super) fn cpu_readings(handles: &[Option<Box<dyn NodeHandle>>]) -> Vec<Option<CpuReading>> {
    handles
        .iter()
        .map(|h| {
            h.as_ref()
                .and_then(|h| h.pid())
                .and_then(procfs::cpu_reading)
        })
        .collect()
}

/// Samples every node's `/proc` (open descriptors included), then the tokio task gauge of every
/// node up with an operations endpoint, then with `wire_from` its wire counters.
pub(super) fn sample(
    handles: &[Option<Box<dyn NodeHandle>>],
    c: &Cluster,
    t_s: f64,
    wire_from: Option<&mut [ControlClient]>,
) -> Sample {
    let procs = handles
        .iter()
        .map(|h| h.as_ref().and_then(|h| h.pid()).and_then(procfs::sample))
        .collect();
    // After the /proc reads: the scrape's own connection is not among the descriptors counted.
    let tokio_tasks = handles
        .iter()
        .zip(&c.nodes)
        .map(|(h, n)| {
            h.as_ref()?;
            let text = ops::scrape_within(n.ops?, ops::SAMPLE_SCRAPE_TIMEOUT).ok()?;
            ops::tokio_tasks(&text)
        })
        .collect();
    let proxy_bytes = c.proxies.iter().map(|p| p.bytes()).sum();
    let wire = wire_from.map(|clients| {
        stats_all(clients)
            .iter()
            .map(ByteCounters::from_stats)
            .collect()
    });
    Sample {
        t_s,
        procs,
        tokio_tasks,
        proxy_bytes,
        wire,
    }
}

/// Feeds the collector (deliveries, or a node's restart), the in-order heights and the leader
/// follower.
pub(super) fn record(
    collector: &mut Collector,
    heights: &mut Heights,
    channels: &[String],
    follower: Option<&LeaderFollower>,
    feed: Feed,
) {
    if let Some(f) = follower {
        f.observe(&feed);
    }
    match feed {
        Feed::Leadership(_) => {}
        Feed::Deliveries(batch) => batch.iter().for_each(|d| {
            collector.record(d);
            if d.kind == control::DeliveryKind::InOrder
                && let Some(ch) = channels.iter().position(|c| *c == d.channel)
            {
                heights.record(d.node, ch, d.seq, d.received_unix_ns);
            }
        }),
        Feed::Restarted(r) => collector.record_restart(&r),
    }
}
