//! `/metrics`: a [`MetricsSnapshot`] (the live counters the control `stats` op reports, plus the
//! joined channels) rendered in the Prometheus text format (version 0.0.4) by the `prometheus`
//! crate's encoder, from metric families built straight from the snapshot ([`families`]).
//!
//! Fabric's metrics (`gossip/metrics/metrics.go`, spec section 5) keep their names, types and
//! labels, so existing dashboards keep working:
//!
//! | name | type | labels | from |
//! |---|---|---|---|
//! | `gossip_comm_messages_sent` | counter | – | `comm.messages_sent` |
//! | `gossip_comm_messages_received` | counter | – | `comm.messages_received` |
//! | `gossip_comm_overflow_count` | counter | – | `comm.overflow_count` |
//! | `gossip_membership_total_peers_known` | gauge | channel | alive peers of the channel with a StateInfo |
//! | `gossip_state_height` | gauge | channel | the ledger height (blocks committed) |
//! | `gossip_payload_buffer_size` | gauge | channel | blocks in the reorder buffer |
//!
//! | `gossip_state_commit_duration` | histogram | channel | each block's ledger transaction time (s) |
//!
//! | `gossip_leader_election_leader` | gauge | channel | 1 while this peer is its org's leader |
//!
//! Fabric metrics **not** exported, because we have nothing true to put in them:
//! `gossip_privdata_*_duration` (private data is not implemented).
//!
//! Ours are under the prefix `gossip_engine_` (counters end in `_total`, as Prometheus names
//! them; units in the name): see [`ENGINE_METRICS`] and the labelled families in [`render`],
//! among them the queue lengths (`gossip_engine_queue_len{queue}`), refusals by reason, the
//! identity store, and the per-stage histograms (`gossip_engine_verify_pool_seconds`,
//! `gossip_engine_verify_batch_len`, `gossip_engine_inbound_wait_seconds`,
//! `gossip_engine_handle_seconds`, `gossip_engine_commit_seconds`), and the process's own gauges
//! ([`ProcessGauges`]): `gossip_engine_tokio_tasks_alive` and `gossip_engine_open_fds` (Linux
//! only; absent elsewhere).

use gossip_engine::handle::GossipStats;
use gossip_engine::node::ChannelSummary;
use prometheus::proto::{MetricFamily, MetricType};

use super::families;
pub use super::process::ProcessGauges;

/// The `Content-Type` of a `/metrics` reply.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Everything one scrape reports.
#[derive(Clone, Debug, Default)]
pub struct MetricsSnapshot {
    /// The node, comm and driver counters (what the control `stats` op reports).
    pub stats: GossipStats,
    /// The joined channels.
    pub channels: Vec<ChannelSummary>,
    /// Messages the fault hook dropped (`--fault-drop-share`).
    pub fault_dropped: u64,
    /// The process's tokio tasks and open file descriptors.
    pub process: ProcessGauges,
}

/// Why `/metrics` could not be rendered (a bug: two families of one name, or one the encoder
/// refuses).
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// The encoder refused a family.
    #[error("metrics: {0}")]
    Prometheus(#[from] prometheus::Error),
    /// Two families carry the same name.
    #[error("metrics: two families named {0}")]
    Duplicate(String),
}

/// One unlabelled counter of ours: name (after `gossip_engine_`), help, value.
type CounterRow = (&'static str, &'static str, fn(&MetricsSnapshot) -> u64);

/// Our unlabelled counters.
pub const ENGINE_METRICS: &[CounterRow] = &[
    (
        "wire_sent_bytes_total",
        "Bytes written to gossip sockets (TLS records when on).",
        |s| s.stats.comm.wire_bytes_sent,
    ),
    (
        "wire_received_bytes_total",
        "Bytes read from gossip sockets (TLS records when on).",
        |s| s.stats.comm.wire_bytes_received,
    ),
    (
        "connections_opened_total",
        "Authenticated gossip connections registered.",
        |s| s.stats.comm.connections_opened,
    ),
    (
        "connections_closed_total",
        "Registered gossip connections that ended.",
        |s| s.stats.comm.connections_closed,
    ),
    (
        "checks_skipped_verified_total",
        "Signature checks skipped: the same key, bytes and signature passed before.",
        |s| s.stats.comm.checks_skipped_verified,
    ),
    (
        "messages_handled_total",
        "Inbound messages handed to the node by the driver.",
        |s| s.stats.driver.messages_handled,
    ),
    ("emitted_total", "Messages that entered the emitter.", |s| {
        s.stats.node.emitted
    }),
    ("transmits_total", "Transmits passed to comm.", |s| {
        s.stats.driver.transmits
    }),
    (
        "outbox_overflowed_total",
        "Node outputs lost because an outbox queue was full.",
        |s| s.stats.node.outbox_overflowed,
    ),
    (
        "events_dropped_total",
        "Events dropped because a subscriber's queue was full.",
        |s| s.stats.driver.events_dropped,
    ),
    (
        "blocks_delivered_total",
        "Blocks delivered in order, all channels.",
        |s| s.stats.node.blocks_delivered,
    ),
    (
        "blocks_pulled_total",
        "Blocks taken from block pull updates, all channels.",
        |s| s.stats.node.blocks_pulled,
    ),
    (
        "blocks_transferred_total",
        "Blocks taken from state-transfer responses, all channels.",
        |s| s.stats.node.blocks_transferred,
    ),
    (
        "state_requests_sent_total",
        "State-transfer requests sent.",
        |s| s.stats.node.state.requests_sent,
    ),
    (
        "state_requests_timed_out_total",
        "State-transfer requests that timed out.",
        |s| s.stats.node.state.requests_timed_out,
    ),
    (
        "state_requests_served_total",
        "State-transfer requests served to other peers.",
        |s| s.stats.node.state.requests_served,
    ),
    ("pull_rounds_total", "Block pull rounds started.", |s| {
        s.stats.node.pull.rounds
    }),
    (
        "ledger_commits_total",
        "Blocks committed to the ledger.",
        |s| s.stats.driver.ledger_commits,
    ),
    (
        "ledger_commit_errors_total",
        "Ledger commits that failed (each stops its channel's commits).",
        |s| s.stats.driver.ledger_commit_errors,
    ),
    (
        "ledger_commits_skipped_total",
        "Delivered blocks below the ledger height, not committed again.",
        |s| s.stats.driver.ledger_commits_skipped,
    ),
    (
        "ledger_commit_queue_full_total",
        "Delivered blocks dropped because the commit queue was full.",
        |s| s.stats.driver.ledger_commit_queue_full,
    ),
    (
        "ledger_blocks_served_total",
        "Blocks read from the ledger for other peers' state requests.",
        |s| s.stats.driver.ledger_blocks_served,
    ),
    (
        "ledger_read_errors_total",
        "Ledger reads for state requests that failed.",
        |s| s.stats.driver.ledger_read_errors,
    ),
    (
        "io_refused_total",
        "IO requests refused because too many IO tasks were running.",
        |s| s.stats.driver.io_refused,
    ),
    (
        "fault_dropped_total",
        "Outgoing messages the fault hook dropped (benchmarks only).",
        |s| s.fault_dropped,
    ),
];

const PREFIX: &str = "gossip_engine_";

/// A per-channel gauge: name, help, value.
type ChannelRow = (&'static str, &'static str, fn(&ChannelSummary) -> u64);
/// The series of a one-label family: label value, value.
type Rows = Vec<(String, u64)>;
/// A one-label family of ours: kind, name (after `gossip_engine_`), help, label, series.
type Labelled = (MetricType, &'static str, &'static str, &'static str, Rows);

/// Renders one scrape.
pub fn render(s: &MetricsSnapshot) -> Result<String, MetricsError> {
    use MetricType::{COUNTER, GAUGE};
    let mut out: Vec<MetricFamily> = Vec::with_capacity(64);
    let c = &s.stats.comm;
    for (name, help, v) in [
        (
            "gossip_comm_messages_sent",
            "Number of messages sent",
            c.messages_sent,
        ),
        (
            "gossip_comm_messages_received",
            "Number of messages received",
            c.messages_received,
        ),
        (
            "gossip_comm_overflow_count",
            "Number of outgoing queue buffer overflows",
            c.overflow_count,
        ),
    ] {
        out.push(families::single_value(COUNTER, name, help, v));
    }
    let by_channel: [ChannelRow; 6] = [
        (
            "gossip_membership_total_peers_known",
            "Total known peers",
            |ch| ch.peers_known as u64,
        ),
        ("gossip_state_height", "Current ledger height", |ch| {
            ch.ledger_height
        }),
        (
            "gossip_leader_election_leader",
            "Peer is leader (1) or follower (0)",
            |ch| u64::from(ch.leader),
        ),
        (
            "gossip_payload_buffer_size",
            "Size of the payload buffer",
            |ch| ch.buffered_len as u64,
        ),
        (
            "gossip_engine_channel_peers_ledger_height_max",
            "The highest ledger height the channel's peers advertise (0 with none).",
            |ch| ch.peers_ledger_height_max,
        ),
        (
            "gossip_engine_channel_peers_ledger_height_majority",
            "The highest ledger height that a strict majority of the channel's peers advertise (0 with none): what /healthz's ledger check compares with.",
            |ch| ch.peers_ledger_height_majority,
        ),
    ];
    for (name, help, f) in by_channel {
        let rows = s
            .channels
            .iter()
            .map(|ch| (String::from_utf8_lossy(&ch.channel).into_owned(), f(ch)));
        out.push(families::labelled(GAUGE, name, help, "channel", rows));
    }
    for (name, help, value) in ENGINE_METRICS {
        let name = format!("{PREFIX}{name}");
        out.push(families::single_value(COUNTER, &name, help, value(s)));
    }
    for (kind, name, help, label, rows) in node_labelled(s).into_iter().chain(queues_and_ids(s)) {
        let name = format!("{PREFIX}{name}");
        out.push(families::labelled(kind, &name, help, label, rows));
    }
    out.push(families::single_value(
        GAUGE,
        &format!("{PREFIX}channels"),
        "Joined channels.",
        s.channels.len() as u64,
    ));
    for (name, help, value) in [
        (
            "tokio_tasks_alive",
            "Tasks alive on the tokio runtime (spawned, not finished), this scrape's included.",
            s.process.tokio_tasks_alive,
        ),
        (
            "open_fds",
            "File descriptors open in the process (entries of /proc/self/fd).",
            s.process.open_fds,
        ),
    ] {
        // A gauge the platform cannot read is left out rather than shown as 0.
        if let Some(v) = value {
            let name = format!("{PREFIX}{name}");
            out.push(families::single_value(GAUGE, &name, help, v));
        }
    }
    out.push(families::single_value(
        GAUGE,
        &format!("{PREFIX}identities"),
        "Identities stored.",
        s.stats.comm.identities.len,
    ));
    out.extend(histograms(s));
    // A family without a series (no channel yet, no reject yet) is left out: the encoder refuses
    // it, and a registry would not have gathered it.
    out.retain(|f| !f.get_metric().is_empty());
    out.sort_by(|a, b| a.name().cmp(b.name()));
    if let Some(w) = out.windows(2).find(|w| w[0].name() == w[1].name()) {
        return Err(MetricsError::Duplicate(w[0].name().to_owned()));
    }
    let mut text = String::with_capacity(16 * 1024);
    prometheus::TextEncoder::new().encode_utf8(&out, &mut text)?;
    Ok(text)
}

/// The series of a one-label family from (label value, value) pairs.
fn rows<'a>(pairs: impl IntoIterator<Item = (&'a str, u64)>) -> Rows {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// The series of a counter map by reason.
fn rows_by_reason(map: &std::collections::BTreeMap<&'static str, u64>) -> Rows {
    rows(map.iter().map(|(k, v)| (*k, *v)))
}

/// The node's drops and members, ingress's rejects and handshake failures, where signatures were
/// checked.
fn node_labelled(s: &MetricsSnapshot) -> [Labelled; 5] {
    use MetricType::{COUNTER, GAUGE};
    let (n, c) = (&s.stats.node, &s.stats.comm);
    [
        (
            COUNTER,
            "dropped_total",
            "Messages and items the node dropped, by reason.",
            "reason",
            n.dropped
                .iter()
                .map(|(r, v)| (format!("{r:?}"), *v))
                .collect(),
        ),
        (
            COUNTER,
            "rejects_total",
            "Envelopes ingress rejected, by reason.",
            "reason",
            rows_by_reason(&c.rejects),
        ),
        (
            COUNTER,
            "handshake_failures_total",
            "Failed handshakes, by cause.",
            "cause",
            rows_by_reason(&c.handshake_failures),
        ),
        (
            COUNTER,
            "verified_inline_total",
            "Signature checks run on the connection task instead of the verifier pool, by why.",
            "why",
            vec![
                ("pool_full".to_owned(), c.verified_inline_pool_full),
                ("uncontended".to_owned(), c.verified_inline_uncontended),
            ],
        ),
        (
            GAUGE,
            "members",
            "Members known, by state.",
            "state",
            vec![
                ("alive".to_owned(), n.members_alive as u64),
                ("dead".to_owned(), n.members_dead as u64),
            ],
        ),
    ]
}

/// Queue lengths, refusals, the identity store's and membership's counters.
fn queues_and_ids(s: &MetricsSnapshot) -> [Labelled; 5] {
    use MetricType::{COUNTER, GAUGE};
    let c = &s.stats.comm;
    let ids = &c.identities;
    let d = &s.stats.node.discovery;
    let queues = rows([
        ("inbound", c.queues.inbound as u64),
        ("verify", c.queues.verify as u64),
        ("send_lanes", c.queues.send_lanes as u64),
        ("pending_dial", c.queues.pending_dial as u64),
        ("commit", s.stats.driver.ledger_commit_waiting_len),
    ]);
    [
        (
            GAUGE,
            "queue_len",
            "Items waiting in a queue now, by queue.",
            "queue",
            queues,
        ),
        (
            COUNTER,
            "refusals_total",
            "Resources a peer asked for and was refused because a bound was reached, by reason.",
            "reason",
            rows_by_reason(&c.refusals),
        ),
        (
            COUNTER,
            "identities_removed_total",
            "Identities evicted or purged from the identity store, by why.",
            "why",
            rows([
                ("evicted_expired", ids.evicted_expired),
                ("evicted_lru", ids.evicted_lru),
                ("purged_expired", ids.purged_expired),
                ("purged_unused", ids.purged_unused),
                ("purged_revoked", ids.purged_revoked),
            ]),
        ),
        (
            COUNTER,
            "identities_refused_total",
            "Identities the store refused, by why.",
            "why",
            rows([
                ("full", ids.refused_full),
                ("not_a_peer", ids.refused_not_a_peer),
                ("invalid", ids.refused_invalid),
            ]),
        ),
        (
            COUNTER,
            "members_removed_total",
            "Members removed from membership, by why.",
            "why",
            rows([
                ("became_dead", d.became_dead),
                ("purged", d.purged),
                ("identity_cut_off", d.identities_cut_off),
                ("superseded", d.superseded),
            ]),
        ),
    ]
}

/// Fabric's commit duration per channel and our stage histograms.
fn histograms(s: &MetricsSnapshot) -> Vec<MetricFamily> {
    let (c, d) = (&s.stats.comm, &s.stats.driver);
    let mut families = vec![families::histogram_family(
        "gossip_state_commit_duration",
        "Time it takes to commit a block in seconds",
        &["channel"],
        d.commit_duration_by_channel
            .iter()
            .map(|(channel, histogram)| families::Series {
                labels: vec![String::from_utf8_lossy(channel).into_owned()],
                histogram,
            })
            .collect(),
    )];
    for (name, help, h) in [
        (
            "verify_pool_seconds",
            "Time from a verification job's making to its checks' end on the verifier pool, queue wait included.",
            &c.verify_pool_seconds,
        ),
        (
            "verify_batch_len",
            "Jobs per batch a verifier thread took off its queue.",
            &c.verify_batch_len,
        ),
        (
            "inbound_wait_seconds",
            "Time from a message passing ingress to the driver taking it from the inbound queue.",
            &c.inbound_wait_seconds,
        ),
        (
            "handle_seconds",
            "Time the node took over one inbound message, its outputs handed on included.",
            &d.handle_seconds,
        ),
        (
            "commit_seconds",
            "Time of one ledger transaction (a batch of blocks of one channel).",
            &d.commit_seconds,
        ),
    ] {
        families.push(families::single(&format!("{PREFIX}{name}"), help, h));
    }
    families
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use gossip_engine::outbox::DropReason;

    fn snapshot() -> MetricsSnapshot {
        let mut s = MetricsSnapshot::default();
        s.stats.comm.messages_sent = 11;
        s.stats.comm.messages_received = 22;
        s.stats.comm.overflow_count = 3;
        s.stats.comm.wire_bytes_sent = 4096;
        s.stats.comm.rejects.insert("bad_signature", 5);
        s.stats.node.dropped.insert(DropReason::Stale, 7);
        s.stats.node.members_alive = 4;
        s.stats.driver.ledger_commits = 9;
        s.channels.push(ChannelSummary {
            channel: Bytes::from_static(b"mychannel"),
            ledger_height: 10,
            buffered_len: 2,
            peers_known: 3,
            peers_ledger_height_max: 12,
            peers_ledger_height_majority: 11,
            leader: true,
        });
        s
    }

    /// The sample line for `name{labels}` (exact), and its `# TYPE`.
    fn line<'a>(text: &'a str, series: &str) -> Option<&'a str> {
        text.lines()
            .find(|l| l.split_once(' ').is_some_and(|(s, _)| s == series))
    }

    #[test]
    fn fabric_metrics_keep_their_names_types_and_labels() {
        let text = render(&snapshot()).expect("render");
        for (name, kind) in [
            ("gossip_comm_messages_sent", "counter"),
            ("gossip_comm_messages_received", "counter"),
            ("gossip_comm_overflow_count", "counter"),
            ("gossip_membership_total_peers_known", "gauge"),
            ("gossip_state_height", "gauge"),
            ("gossip_payload_buffer_size", "gauge"),
        ] {
            assert!(
                text.contains(&format!("# TYPE {name} {kind}\n")),
                "{name} {kind}:\n{text}"
            );
        }
        assert_eq!(
            line(&text, "gossip_comm_messages_sent"),
            Some("gossip_comm_messages_sent 11")
        );
        assert_eq!(
            line(&text, "gossip_comm_messages_received"),
            Some("gossip_comm_messages_received 22")
        );
        assert_eq!(
            line(&text, "gossip_comm_overflow_count"),
            Some("gossip_comm_overflow_count 3")
        );
        assert_eq!(
            line(&text, r#"gossip_state_height{channel="mychannel"}"#),
            Some(r#"gossip_state_height{channel="mychannel"} 10"#)
        );
        assert_eq!(
            line(
                &text,
                r#"gossip_membership_total_peers_known{channel="mychannel"}"#
            ),
            Some(r#"gossip_membership_total_peers_known{channel="mychannel"} 3"#)
        );
        assert_eq!(
            line(&text, r#"gossip_payload_buffer_size{channel="mychannel"}"#),
            Some(r#"gossip_payload_buffer_size{channel="mychannel"} 2"#)
        );
        assert!(
            !text.contains("gossip_comm_messages_sent_total"),
            "no suffix added"
        );
        assert_eq!(
            line(
                &text,
                r#"gossip_leader_election_leader{channel="mychannel"}"#
            ),
            Some(r#"gossip_leader_election_leader{channel="mychannel"} 1"#)
        );
    }

    #[test]
    fn histograms_render_with_cumulative_buckets_count_and_sum() {
        use gossip_engine::histogram::{DEFAULT_BOUNDS_S, Histogram, LEN_BOUNDS};
        use std::time::Duration;
        let mut s = snapshot();
        let commit = Histogram::seconds(DEFAULT_BOUNDS_S);
        commit.observe_duration(Duration::from_millis(3));
        commit.observe_duration(Duration::from_millis(30));
        s.stats
            .driver
            .commit_duration_by_channel
            .insert(Bytes::from_static(b"mychannel"), commit.snapshot());
        let batches = Histogram::count(LEN_BOUNDS);
        batches.observe_len(3);
        s.stats.comm.verify_batch_len = batches.snapshot();
        s.stats.comm.queues.send_lanes = 17;
        s.stats.comm.refusals.insert("handshakes_full", 2);
        let text = render(&s).expect("render");
        assert!(text.contains("# TYPE gossip_state_commit_duration histogram\n"));
        let commit = |le: &str| {
            format!(r#"gossip_state_commit_duration_bucket{{channel="mychannel",le="{le}"}}"#)
        };
        assert_eq!(
            line(&text, &commit("0.005")),
            Some(format!("{} 1", commit("0.005")).as_str())
        );
        assert_eq!(
            line(&text, &commit("0.025")),
            Some(format!("{} 1", commit("0.025")).as_str())
        );
        assert_eq!(
            line(&text, &commit("0.05")),
            Some(format!("{} 2", commit("0.05")).as_str())
        );
        assert_eq!(
            line(&text, &commit("+Inf")),
            Some(format!("{} 2", commit("+Inf")).as_str())
        );
        assert_eq!(
            line(
                &text,
                r#"gossip_state_commit_duration_count{channel="mychannel"}"#
            ),
            Some(r#"gossip_state_commit_duration_count{channel="mychannel"} 2"#)
        );
        assert_eq!(
            line(&text, r#"gossip_engine_verify_batch_len_bucket{le="4"}"#),
            Some(r#"gossip_engine_verify_batch_len_bucket{le="4"} 1"#)
        );
        assert_eq!(
            line(&text, "gossip_engine_verify_batch_len_sum"),
            Some("gossip_engine_verify_batch_len_sum 3")
        );
        assert_eq!(
            line(&text, r#"gossip_engine_queue_len{queue="send_lanes"}"#),
            Some(r#"gossip_engine_queue_len{queue="send_lanes"} 17"#)
        );
        assert_eq!(
            line(
                &text,
                r#"gossip_engine_refusals_total{reason="handshakes_full"}"#
            ),
            Some(r#"gossip_engine_refusals_total{reason="handshakes_full"} 2"#)
        );
        for stage in [
            "verify_pool_seconds",
            "inbound_wait_seconds",
            "handle_seconds",
            "commit_seconds",
        ] {
            assert!(
                text.contains(&format!("# TYPE gossip_engine_{stage} histogram\n")),
                "{stage}"
            );
        }
    }

    #[test]
    fn our_metrics_carry_the_prefix_and_the_snapshot_values() {
        let text = render(&snapshot()).expect("render");
        for (series, value) in [
            ("gossip_engine_wire_sent_bytes_total", "4096"),
            ("gossip_engine_ledger_commits_total", "9"),
            (r#"gossip_engine_dropped_total{reason="Stale"}"#, "7"),
            (
                r#"gossip_engine_rejects_total{reason="bad_signature"}"#,
                "5",
            ),
            (r#"gossip_engine_members{state="alive"}"#, "4"),
            (
                r#"gossip_engine_channel_peers_ledger_height_max{channel="mychannel"}"#,
                "12",
            ),
            (
                r#"gossip_engine_channel_peers_ledger_height_majority{channel="mychannel"}"#,
                "11",
            ),
            ("gossip_engine_channels", "1"),
        ] {
            assert_eq!(
                line(&text, series),
                Some(format!("{series} {value}").as_str()),
                "{text}"
            );
        }
        assert!(text.contains("# TYPE gossip_engine_dropped_total counter\n"));
        for l in text.lines().filter(|l| !l.starts_with('#')) {
            assert!(l.starts_with("gossip_"), "{l}");
        }
    }

    #[test]
    fn process_gauges_render_when_read_and_are_left_out_when_not() {
        let mut s = snapshot();
        s.process = ProcessGauges {
            tokio_tasks_alive: Some(42),
            open_fds: Some(17),
        };
        let text = render(&s).expect("render");
        for (series, value) in [
            ("gossip_engine_tokio_tasks_alive", "42"),
            ("gossip_engine_open_fds", "17"),
        ] {
            assert!(text.contains(&format!("# TYPE {series} gauge\n")), "{text}");
            assert_eq!(
                line(&text, series),
                Some(format!("{series} {value}").as_str())
            );
        }
        let text = render(&snapshot()).expect("render");
        assert!(!text.contains("gossip_engine_tokio_tasks_alive"), "{text}");
        assert!(!text.contains("gossip_engine_open_fds"), "{text}");
    }

    #[test]
    fn an_idle_node_renders_every_unlabelled_metric() {
        let text = render(&MetricsSnapshot::default()).expect("render");
        assert_eq!(
            line(&text, "gossip_comm_messages_sent"),
            Some("gossip_comm_messages_sent 0")
        );
        for (name, _, _) in ENGINE_METRICS {
            assert!(text.contains(&format!("\n{PREFIX}{name} 0\n")), "{name}");
        }
    }
}
