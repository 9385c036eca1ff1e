//! Client of gossip-node's control protocol (engine/CONTROL.md): newline-delimited JSON over TCP.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc::Sender;
use std::thread::JoinHandle;
use std::time::Duration;

use gossip_engine::event::Arrival;
use serde_json::{Value, json};

use crate::measure::collect::Restarted;

/// A control request failed.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// Connecting, reading or writing failed.
    #[error("control {addr}: {source}")]
    Io {
        /// The node's control address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The node closed the connection.
    #[error("control {0}: connection closed")]
    Closed(SocketAddr),
    /// A line was not JSON.
    #[error("control {addr}: bad reply {line:?}")]
    BadReply {
        /// The node's control address.
        addr: SocketAddr,
        /// The line.
        line: String,
    },
    /// The node answered `ok: false`.
    #[error("control {addr}: {op} refused: {error}")]
    Refused {
        /// The node's control address.
        addr: SocketAddr,
        /// The request's op.
        op: String,
        /// The node's error text.
        error: String,
    },
}

/// A connection's read buffer: a few hundred event lines, which gossip-node writes in batches
/// (what queued within 50 ms) to a subscription.
const READ_LEN_BYTES: usize = 64 * 1024;

/// One request/reply connection.
pub struct ControlClient {
    addr: SocketAddr,
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl ControlClient {
    /// Connects (one attempt, `timeout` for connect and for each reply).
    pub fn connect(addr: SocketAddr, timeout: Duration) -> Result<Self, ControlError> {
        let io = |source| ControlError::Io { addr, source };
        let stream = TcpStream::connect_timeout(&addr, timeout).map_err(io)?;
        stream.set_read_timeout(Some(timeout)).map_err(io)?;
        let _ = stream.set_nodelay(true);
        let writer = stream.try_clone().map_err(io)?;
        Ok(ControlClient {
            addr,
            reader: BufReader::with_capacity(READ_LEN_BYTES, stream),
            writer,
        })
    }

    /// Sends `request` and returns the reply object (events before it are skipped).
    pub fn request(&mut self, request: &Value) -> Result<Value, ControlError> {
        let addr = self.addr;
        let mut line = serde_json::to_string(request).unwrap_or_default();
        line.push('\n');
        self.writer
            .write_all(line.as_bytes())
            .map_err(|source| ControlError::Io { addr, source })?;
        // Bounded: at most this many event lines before the reply.
        for _ in 0..1_000_000 {
            let v = read_line(&mut self.reader, addr)?;
            if v.get("event").is_some() {
                continue;
            }
            if v.get("ok").and_then(Value::as_bool) == Some(true) {
                return Ok(v);
            }
            let op = request.get("op").and_then(Value::as_str).unwrap_or("?");
            return Err(ControlError::Refused {
                addr,
                op: op.into(),
                error: v
                    .get("error")
                    .and_then(Value::as_str)
                    .unwrap_or("no error text")
                    .into(),
            });
        }
        Err(ControlError::Closed(addr))
    }

    /// `join_channel`.
    pub fn join_channel(
        &mut self,
        channel: &str,
        orgs: &[String],
        anchors: &[(String, SocketAddr)],
    ) -> Result<(), ControlError> {
        let anchors: Vec<Value> = anchors
            .iter()
            .map(|(org, a)| json!({"org": org, "host": a.ip().to_string(), "port": a.port()}))
            .collect();
        self.request(
            &json!({"op": "join_channel", "channel": channel, "orgs": orgs, "anchors": anchors}),
        )
        .map(|_| ())
    }

    /// `inject_block`: returns the node's `injected_unix_ns`.
    pub fn inject_block(
        &mut self,
        channel: &str,
        seq: u64,
        size: u64,
    ) -> Result<u64, ControlError> {
        let v = self.request(
            &json!({"op": "inject_block", "channel": channel, "seq": seq, "size_bytes": size}),
        )?;
        Ok(v.get("injected_unix_ns")
            .and_then(Value::as_u64)
            .unwrap_or(0))
    }

    /// `peers`: (alive, dead) counts.
    pub fn peers(&mut self) -> Result<(usize, usize), ControlError> {
        let v = self.request(&json!({"op": "peers"}))?;
        let len = |k: &str| v.get(k).and_then(Value::as_array).map_or(0, Vec::len);
        Ok((len("alive"), len("dead")))
    }

    /// `peers`: the alive members as (endpoint, PKI-ID).
    pub fn alive_members(&mut self) -> Result<Vec<(String, String)>, ControlError> {
        let v = self.request(&json!({"op": "peers"}))?;
        let field = |m: &Value, k: &str| m.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
        Ok(v.get("alive")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .map(|m| (field(m, "endpoint"), field(m, "pki_id")))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// `peers_of_channel`: how many peers this node sees in `channel`.
    pub fn peers_of_channel(&mut self, channel: &str) -> Result<usize, ControlError> {
        let v = self.request(&json!({"op": "peers_of_channel", "channel": channel}))?;
        Ok(v.get("peers").and_then(Value::as_array).map_or(0, Vec::len))
    }

    /// `stats`: the node's counters object.
    pub fn stats(&mut self) -> Result<Value, ControlError> {
        let v = self.request(&json!({"op": "stats"}))?;
        Ok(v.get("stats").cloned().unwrap_or(Value::Null))
    }

    /// `ledger_height`: the number of the next block the node commits on `channel` (1 when it
    /// committed none). gossip-node answers it before `join_channel` too; fabric-node refuses it.
    pub fn ledger_height(&mut self, channel: &str) -> Result<u64, ControlError> {
        let v = self.request(&json!({"op": "ledger_height", "channel": channel}))?;
        v.get("height")
            .and_then(Value::as_u64)
            .ok_or_else(|| ControlError::BadReply {
                addr: self.addr,
                line: v.to_string(),
            })
    }

    /// `shutdown`.
    pub fn shutdown(&mut self) -> Result<(), ControlError> {
        self.request(&json!({"op": "shutdown"})).map(|_| ())
    }
}

fn read_line(reader: &mut BufReader<TcpStream>, addr: SocketAddr) -> Result<Value, ControlError> {
    let mut line = String::new();
    let n = reader
        .read_line(&mut line)
        .map_err(|source| ControlError::Io { addr, source })?;
    if n == 0 {
        return Err(ControlError::Closed(addr));
    }
    serde_json::from_str(line.trim()).map_err(|_| ControlError::BadReply { addr, line })
}

/// Which block event a delivery comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryKind {
    /// `block_received`: first receipt from a peer, in whatever order (dissemination).
    Received,
    /// `block`: delivered to the application in order (a gap holds later blocks back).
    InOrder,
}

/// A block delivery seen by a subscription.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// Receipt or in-order delivery.
    pub kind: DeliveryKind,
    /// Node index.
    pub node: usize,
    /// Channel.
    pub channel: String,
    /// Block number.
    pub seq: u64,
    /// The node's `received_unix_ns`.
    pub received_unix_ns: u64,
    /// The path a received block came by (`via`, optional in engine/CONTROL.md): `None` when the
    /// line has none (fabric-node, in-order deliveries) or one this loadgen does not know.
    pub via: Option<Arrival>,
}

/// What a run's main loop receives, in the order it happened: the block events of a
/// subscription, or the news that a killed node is back (sent before its new subscription starts,
/// so that every event of the new process comes after it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Feed {
    /// Block events of one read of one subscription.
    Deliveries(Vec<Delivery>),
    /// A killed node was started again.
    Restarted(Restarted),
    /// A `leadership` event line (leader election, [`crate::measure::leader`]).
    Leadership(crate::measure::leader::LeadershipEvent),
}

/// Every path `via` names.
const ARRIVALS: [Arrival; 3] = [Arrival::Push, Arrival::Pull, Arrival::StateTransfer];

/// The path of a `via` value (`push`, `pull`, `state`); `None` for any other.
pub fn arrival_of(via: &str) -> Option<Arrival> {
    ARRIVALS.into_iter().find(|a| a.as_str() == via)
}

/// The fields of an event line a subscription uses; others are ignored.
#[derive(serde::Deserialize)]
struct EventLine<'a> {
    #[serde(borrow)]
    event: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    channel: std::borrow::Cow<'a, str>,
    #[serde(default)]
    seq: u64,
    #[serde(default)]
    received_unix_ns: u64,
    #[serde(borrow, default)]
    via: Option<ViaField<'a>>,
}

/// `via` as a line carries it: a path's name, or any other JSON value (unknown, not an error:
/// the line still counts).
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum ViaField<'a> {
    Name(#[serde(borrow)] std::borrow::Cow<'a, str>),
    Other(serde::de::IgnoredAny),
}

/// A block event line of `node` as a delivery; `None` for other lines (replies, membership
/// events, anything unparsable).
fn parse_delivery(node: usize, line: &str) -> Option<Delivery> {
    let e: EventLine<'_> = serde_json::from_str(line.trim()).ok()?;
    let kind = match e.event.as_deref() {
        Some("block_received") => DeliveryKind::Received,
        Some("block") => DeliveryKind::InOrder,
        _ => return None,
    };
    Some(Delivery {
        kind,
        node,
        channel: e.channel.into_owned(),
        seq: e.seq,
        received_unix_ns: e.received_unix_ns,
        via: match e.via {
            Some(ViaField::Name(name)) => arrival_of(&name),
            Some(ViaField::Other(_)) | None => None,
        },
    })
}

/// Subscribes on a new connection and forwards block events to `tx` ([`Feed::Deliveries`]) from a
/// thread, until the connection ends or `tx`'s receiver is gone. The events of one read
/// (gossip-node writes what queued within its linger in one write) go as one batch: one channel
/// send and at most one wake-up of the receiver per batch, not per line.
pub fn subscribe(
    node: usize,
    addr: SocketAddr,
    tx: Sender<Feed>,
) -> Result<JoinHandle<()>, ControlError> {
    let mut c = ControlClient::connect(addr, Duration::from_secs(5))?;
    c.request(&json!({"op": "subscribe"}))?;
    // Events may be far apart: wait indefinitely (the node's exit closes the socket).
    let _ = c.writer.set_read_timeout(None);
    // The same reader: lines already buffered behind the reply are events.
    let mut reader = c.reader;
    std::thread::Builder::new()
        .name(format!("sub-{node}"))
        .spawn(move || {
            let mut line = String::new();
            loop {
                let mut batch = Vec::new();
                // One blocking read, then every whole line it brought.
                loop {
                    line.clear();
                    if !matches!(reader.read_line(&mut line), Ok(n) if n > 0) {
                        let _ = tx.send(Feed::Deliveries(batch));
                        return;
                    }
                    batch.extend(parse_delivery(node, &line));
                    if let Some(e) = crate::measure::leader::parse_leadership(node, &line) {
                        let _ = tx.send(Feed::Leadership(e));
                    }
                    if !reader.buffer().contains(&b'\n') {
                        break;
                    }
                }
                if !batch.is_empty() && tx.send(Feed::Deliveries(batch)).is_err() {
                    return;
                }
            }
        })
        .map_err(|source| ControlError::Io { addr, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_event_lines_become_deliveries_and_other_lines_are_skipped() {
        let line = r#"{"event":"block_received","channel":"ch","seq":7,"from":"ab","size_bytes":10,"received_unix_ns":99}"#;
        assert_eq!(
            parse_delivery(3, &format!("{line}\n")),
            Some(Delivery {
                kind: DeliveryKind::Received,
                node: 3,
                channel: "ch".into(),
                seq: 7,
                received_unix_ns: 99,
                via: None,
            })
        );
        let in_order = r#"{"channel":"c\"h","event":"block","from":null,"received_unix_ns":5,"seq":1,"size_bytes":1}"#;
        let d = parse_delivery(0, in_order).expect("in-order event");
        assert_eq!(
            (d.kind, d.channel.as_str()),
            (DeliveryKind::InOrder, "c\"h")
        );
        assert_eq!(
            parse_delivery(0, r#"{"event":"membership","alive":3,"dead":0}"#),
            None
        );
        assert_eq!(parse_delivery(0, r#"{"ok":true}"#), None);
        assert_eq!(parse_delivery(0, "not json"), None);
    }

    #[test]
    fn via_gives_the_path_and_a_line_without_it_parses_as_unknown() {
        let line = |via: &str| {
            format!(
                r#"{{"event":"block_received","channel":"ch","seq":7,"from":"ab",{via}"size_bytes":10,"received_unix_ns":99}}"#
            )
        };
        let via = |l: &str| parse_delivery(1, l).expect("a block_received line").via;
        assert_eq!(via(&line(r#""via":"push","#)), Some(Arrival::Push));
        assert_eq!(via(&line(r#""via":"pull","#)), Some(Arrival::Pull));
        assert_eq!(
            via(&line(r#""via":"state","#)),
            Some(Arrival::StateTransfer)
        );
        assert_eq!(via(&line("")), None, "fabric-node writes no via");
        assert_eq!(via(&line(r#""via":null,"#)), None);
        assert_eq!(via(&line(r#""via":"gossip-v9","#)), None, "unknown path");
        assert_eq!(
            via(&line(r#""via":5,"#)),
            None,
            "not a name: unknown, line kept"
        );
        assert_eq!(via(&line(r#""via":{"x":[1]},"#)), None);
        let d = parse_delivery(1, &line(r#""via":"pull","#)).expect("parses");
        assert_eq!(
            (d.seq, d.received_unix_ns),
            (7, 99),
            "the other fields as before"
        );
    }
}
