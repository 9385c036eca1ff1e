//! The operations endpoint: rendering one `/metrics` scrape (`gossip_node::ops::metrics::render`)
//! of a node as a scenario A run leaves it (one channel, the drop, reject and refusal counters
//! set, every histogram observed). loadgen scrapes each node once a second and Prometheus every
//! few seconds, so what a render costs is paid by every node whatever its load.

use std::hint::black_box;
use std::time::Duration;

use bytes::Bytes;
use criterion::{Criterion, criterion_group};
use gossip_engine::histogram::{DEFAULT_BOUNDS_S, Histogram, LEN_BOUNDS};
use gossip_engine::node::ChannelSummary;
use gossip_engine::outbox::DropReason;
use gossip_node::ops::metrics::{MetricsSnapshot, ProcessGauges, render};

/// A snapshot with what a node of scenario A reports after a run.
fn snapshot() -> MetricsSnapshot {
    let mut s = MetricsSnapshot::default();
    let seconds = |n: u64| {
        let h = Histogram::seconds(DEFAULT_BOUNDS_S);
        for i in 0..n {
            h.observe_duration(Duration::from_micros(37 * (i % 500 + 1)));
        }
        h.snapshot()
    };
    let c = &mut s.stats.comm;
    (c.messages_sent, c.messages_received) = (25_342, 13_444);
    (c.wire_bytes_sent, c.wire_bytes_received) = (177_087_763, 177_087_763);
    for (reason, n) in [
        ("duplicate", 11_898),
        ("bad_signature", 3),
        ("block_bad_signer", 1),
    ] {
        c.rejects.insert(reason, n);
    }
    c.handshake_failures.insert("tls", 2);
    c.refusals.insert("handshakes_full", 1);
    c.verify_pool_seconds = seconds(1_000);
    c.inbound_wait_seconds = seconds(1_000);
    let batches = Histogram::count(LEN_BOUNDS);
    for i in 0..1_000 {
        batches.observe_len(i % 7 + 1);
    }
    c.verify_batch_len = batches.snapshot();
    let n = &mut s.stats.node;
    for (reason, v) in [
        (DropReason::Stale, 2_831),
        (DropReason::FromSelf, 113),
        (DropReason::OutOfWindow, 4),
        (DropReason::UnknownNonce, 2),
    ] {
        n.dropped.insert(reason, v);
    }
    n.members_alive = 24;
    let d = &mut s.stats.driver;
    d.ledger_commits = 4_988;
    d.handle_seconds = seconds(1_000);
    d.commit_seconds = seconds(100);
    d.commit_duration_by_channel
        .insert(Bytes::from_static(b"mychannel"), seconds(100));
    s.channels.push(ChannelSummary {
        channel: Bytes::from_static(b"mychannel"),
        ledger_height: 201,
        buffered_len: 0,
        peers_known: 24,
        peers_ledger_height_max: 201,
        peers_ledger_height_majority: 201,
        leader: false,
    });
    s.process = ProcessGauges {
        tokio_tasks_alive: Some(61),
        open_fds: Some(70),
    };
    s
}

fn ops(c: &mut Criterion) {
    let s = snapshot();
    c.bench_function("metrics_render", |b| {
        b.iter(|| black_box(render(black_box(&s)).expect("render")))
    });
}

criterion_group!(benches, ops);
