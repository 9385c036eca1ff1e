//! Byte figures: what each node sent and received over a window, from the node's own wire
//! counters (`comm.wire_bytes_sent` / `comm.wire_bytes_received` of its `stats`: bytes written to
//! and read from the sockets of its gossip connections, TLS records included) where it reports
//! them, else from `/proc/<pid>/io` (`wchar` / `rchar`: every byte moved by `read`/`write`-like
//! syscalls, logs and the control connection included, `recvfrom`/`sendto` missed, so neither
//! bound nor estimate of gossip traffic; a last resort).

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::measure::procfs::ProcSample;

/// Bytes a node sent and received, cumulative since some start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ByteCounters {
    /// Sent (written), bytes.
    pub sent_bytes: u64,
    /// Received (read), bytes.
    pub received_bytes: u64,
}

/// The stats field with a node's gossip bytes sent since start.
pub const WIRE_SENT_KEY: &str = "wire_bytes_sent";
/// The stats field with a node's gossip bytes received since start.
pub const WIRE_RECEIVED_KEY: &str = "wire_bytes_received";

impl ByteCounters {
    /// `comm.wire_bytes_sent` and `comm.wire_bytes_received` of a `stats` reply; `None` unless
    /// the node reports both as non-negative integers.
    pub fn from_stats(stats: &Value) -> Option<Self> {
        let comm = stats.get("comm")?;
        Some(ByteCounters {
            sent_bytes: comm.get(WIRE_SENT_KEY)?.as_u64()?,
            received_bytes: comm.get(WIRE_RECEIVED_KEY)?.as_u64()?,
        })
    }

    /// `wchar` as sent and `rchar` as received.
    pub fn from_proc(p: &ProcSample) -> Self {
        ByteCounters {
            sent_bytes: p.io_written_bytes,
            received_bytes: p.io_read_bytes,
        }
    }

    /// Growth from `earlier` to `self` (0 where a counter went back: a restarted node).
    pub fn since(self, earlier: ByteCounters) -> ByteCounters {
        ByteCounters {
            sent_bytes: self.sent_bytes.saturating_sub(earlier.sent_bytes),
            received_bytes: self.received_bytes.saturating_sub(earlier.received_bytes),
        }
    }
}

/// Where a node's byte figures came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BytesSource {
    /// The node's `comm.wire_bytes_*` stats: gossip connections only, exact.
    WireCounters,
    /// `/proc/<pid>/io` `wchar`/`rchar`: the node reported no wire counters.
    ProcIo,
}

impl BytesSource {
    /// The name run.json uses.
    pub fn as_str(self) -> &'static str {
        match self {
            BytesSource::WireCounters => "wire_counters",
            BytesSource::ProcIo => "proc_io",
        }
    }
}

/// One node's traffic over a window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct NodeTraffic {
    /// Where it came from.
    pub source: BytesSource,
    /// Bytes sent and received in the window.
    #[serde(flatten)]
    pub bytes: ByteCounters,
}

/// A node's traffic between two moments: from its wire counters when it reported them at both,
/// else from `/proc/<pid>/io` when the process was readable at both, else `None`.
pub fn node_traffic(
    wire: (Option<ByteCounters>, Option<ByteCounters>),
    proc_io: (Option<&ProcSample>, Option<&ProcSample>),
) -> Option<NodeTraffic> {
    if let (Some(a), Some(b)) = wire {
        return Some(NodeTraffic {
            source: BytesSource::WireCounters,
            bytes: b.since(a),
        });
    }
    let (a, b) = (proc_io.0?, proc_io.1?);
    Some(NodeTraffic {
        source: BytesSource::ProcIo,
        bytes: ByteCounters::from_proc(b).since(ByteCounters::from_proc(a)),
    })
}

/// One node as the byte figures see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrafficInput {
    /// Over the injection window; `None` when neither source was readable.
    pub window: Option<NodeTraffic>,
    /// Over the quiet window before injection, wire counters only.
    pub idle: Option<NodeTraffic>,
    /// Whether the node receives blocks by gossip (it is no injector).
    pub receiver: bool,
}

/// The byte figures of a set of nodes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TrafficFigures {
    /// Mean over the nodes with a reading of bytes sent per second.
    pub sent_per_peer_per_s: Option<f64>,
    /// The same for bytes received.
    pub received_per_peer_per_s: Option<f64>,
    /// Bytes received by the receivers (nodes with a reading) over the window, divided by them
    /// and by the blocks injected in it (background traffic included).
    pub received_per_block_per_receiver: Option<f64>,
    /// Mean of sent + received per second over the quiet window, nodes with wire counters only.
    pub idle_per_peer_per_s: Option<f64>,
    /// `wire_counters`, `proc_io`, or `wire_counters+proc_io` when the nodes differ.
    pub source: Option<&'static str>,
}

/// The byte figures of `nodes` over an injection window of `window_s` seconds in which `blocks`
/// blocks (all channels) were injected, and a quiet window of `idle_s` seconds.
pub fn traffic_figures(
    nodes: &[TrafficInput],
    window_s: f64,
    idle_s: f64,
    blocks: u64,
) -> TrafficFigures {
    let read: Vec<(NodeTraffic, bool)> = nodes
        .iter()
        .filter_map(|n| Some((n.window?, n.receiver)))
        .collect();
    let mean_per_s = |f: &dyn Fn(&ByteCounters) -> u64, list: &[NodeTraffic], secs: f64| {
        (!list.is_empty()).then(|| {
            list.iter().map(|t| f(&t.bytes) as f64).sum::<f64>() / list.len() as f64 / secs
        })
    };
    let window: Vec<NodeTraffic> = read.iter().map(|(t, _)| *t).collect();
    let secs = window_s.max(1e-3);
    let receivers: Vec<&NodeTraffic> = read.iter().filter(|(_, r)| *r).map(|(t, _)| t).collect();
    let received_per_block_per_receiver = (!receivers.is_empty() && blocks > 0).then(|| {
        receivers
            .iter()
            .map(|t| t.bytes.received_bytes as f64)
            .sum::<f64>()
            / (receivers.len() as f64 * blocks as f64)
    });
    let idle: Vec<NodeTraffic> = nodes.iter().filter_map(|n| n.idle).collect();
    let has = |s: BytesSource| window.iter().any(|t| t.source == s);
    let source = match (has(BytesSource::WireCounters), has(BytesSource::ProcIo)) {
        (true, true) => Some("wire_counters+proc_io"),
        (true, false) => Some(BytesSource::WireCounters.as_str()),
        (false, true) => Some(BytesSource::ProcIo.as_str()),
        (false, false) => None,
    };
    TrafficFigures {
        sent_per_peer_per_s: mean_per_s(&|b| b.sent_bytes, &window, secs),
        received_per_peer_per_s: mean_per_s(&|b| b.received_bytes, &window, secs),
        received_per_block_per_receiver,
        idle_per_peer_per_s: mean_per_s(
            &|b| b.sent_bytes + b.received_bytes,
            &idle,
            idle_s.max(1e-3),
        ),
        source,
    }
}

impl TrafficFigures {
    /// Puts the figures into a `figures` map (absent ones are left out): `bytes_sent_per_peer_per_s`,
    /// `bytes_received_per_peer_per_s`, their sum `bytes_per_peer_per_s`,
    /// `bytes_received_per_block_per_receiver`, `bytes_idle_per_peer_per_s`.
    pub fn put(&self, f: &mut Map<String, Value>) {
        let mut put = |k: &str, v: Option<f64>| {
            if let Some(v) = v {
                f.insert(k.into(), json!(v));
            }
        };
        put("bytes_sent_per_peer_per_s", self.sent_per_peer_per_s);
        put(
            "bytes_received_per_peer_per_s",
            self.received_per_peer_per_s,
        );
        put(
            "bytes_per_peer_per_s",
            self.sent_per_peer_per_s
                .zip(self.received_per_peer_per_s)
                .map(|(a, b)| a + b),
        );
        put(
            "bytes_received_per_block_per_receiver",
            self.received_per_block_per_receiver,
        );
        put("bytes_idle_per_peer_per_s", self.idle_per_peer_per_s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(sent: u64, received: u64) -> Option<ByteCounters> {
        Some(ByteCounters {
            sent_bytes: sent,
            received_bytes: received,
        })
    }

    fn proc_io(read: u64, written: u64) -> ProcSample {
        ProcSample {
            io_read_bytes: read,
            io_written_bytes: written,
            ..ProcSample::default()
        }
    }

    #[test]
    fn wire_counters_come_from_comm_stats_and_need_both_fields() {
        let stats = json!({"comm": {"wire_bytes_sent": 10, "wire_bytes_received": 20}});
        assert_eq!(ByteCounters::from_stats(&stats), wire(10, 20));
        for partial in [
            json!({"comm": {"wire_bytes_sent": 10}}),
            json!({"comm": {"messages_sent": 3}}),
            json!({"wire_bytes_sent": 1, "wire_bytes_received": 2}),
            json!({"comm": {"wire_bytes_sent": -1, "wire_bytes_received": 2}}),
            Value::Null,
        ] {
            assert_eq!(ByteCounters::from_stats(&partial), None, "{partial}");
        }
    }

    #[test]
    fn wire_counters_win_and_proc_io_stands_in_only_where_they_are_missing() {
        let (pa, pb) = (proc_io(1_000, 500), proc_io(9_000, 2_500));
        let t = node_traffic((wire(100, 200), wire(400, 1_200)), (Some(&pa), Some(&pb))).unwrap();
        assert_eq!(t.source, BytesSource::WireCounters);
        assert_eq!(t.bytes, wire(300, 1_000).unwrap());
        // No wire counter at one end: /proc, wchar as sent and rchar as received.
        let t = node_traffic((None, wire(400, 1_200)), (Some(&pa), Some(&pb))).unwrap();
        assert_eq!(t.source, BytesSource::ProcIo);
        assert_eq!(t.bytes, wire(2_000, 8_000).unwrap());
        assert_eq!(node_traffic((None, None), (Some(&pa), None)), None);
        // A restarted node's counters start again: no negative growth.
        let t = node_traffic((wire(500, 500), wire(100, 900)), (None, None)).unwrap();
        assert_eq!(t.bytes, wire(0, 400).unwrap());
    }

    #[test]
    fn figures_are_per_peer_per_second_and_per_block_per_receiver() {
        let w = |sent, received| {
            Some(NodeTraffic {
                source: BytesSource::WireCounters,
                bytes: wire(sent, received).unwrap(),
            })
        };
        let nodes = [
            // The injector: sends much, is no receiver.
            TrafficInput {
                window: w(40_000, 4_000),
                idle: w(500, 500),
                receiver: false,
            },
            TrafficInput {
                window: w(10_000, 20_000),
                idle: w(300, 700),
                receiver: true,
            },
            TrafficInput {
                window: w(6_000, 16_000),
                idle: None,
                receiver: true,
            },
            // Unreadable: left out of every mean.
            TrafficInput {
                window: None,
                idle: None,
                receiver: true,
            },
        ];
        let f = traffic_figures(&nodes, 2.0, 5.0, 10);
        assert_eq!(f.sent_per_peer_per_s, Some(56_000.0 / 3.0 / 2.0));
        assert_eq!(f.received_per_peer_per_s, Some(40_000.0 / 3.0 / 2.0));
        assert_eq!(
            f.received_per_block_per_receiver,
            Some(36_000.0 / 2.0 / 10.0),
            "two receivers with a reading, 10 blocks"
        );
        assert_eq!(f.idle_per_peer_per_s, Some(2_000.0 / 2.0 / 5.0));
        assert_eq!(f.source, Some("wire_counters"));
        let mut m = Map::new();
        f.put(&mut m);
        assert_eq!(
            m["bytes_per_peer_per_s"].as_f64(),
            Some(96_000.0 / 3.0 / 2.0),
            "sent + received"
        );
        assert_eq!(m.len(), 5);
    }

    #[test]
    fn mixed_sources_are_named_and_no_reading_gives_no_figures() {
        let t = |source| TrafficInput {
            window: Some(NodeTraffic {
                source,
                bytes: ByteCounters::default(),
            }),
            idle: None,
            receiver: true,
        };
        let f = traffic_figures(
            &[t(BytesSource::WireCounters), t(BytesSource::ProcIo)],
            1.0,
            1.0,
            1,
        );
        assert_eq!(f.source, Some("wire_counters+proc_io"));
        assert_eq!(f.idle_per_peer_per_s, None);
        let none = traffic_figures(&[], 1.0, 1.0, 1);
        assert_eq!(none, TrafficFigures::default());
        let mut m = Map::new();
        none.put(&mut m);
        assert!(m.is_empty());
    }
}
