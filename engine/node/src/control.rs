//! The control protocol of `engine/CONTROL.md` (benchmarks only): request parsing, reply and
//! event lines, and the block `inject_block` gossips. Newline-delimited JSON over TCP; the
//! server loop lives in the binary.

use bytes::Bytes;
use gossip_proto::common::{Block, BlockData, BlockHeader, BlockMetadata};
use gossip_proto::gossip::gossip_message::{Content, Tag};
use gossip_proto::gossip::{DataMessage, GossipMessage, Payload};
use prost::Message;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use gossip_engine::crypto::sha256;
use gossip_engine::event::{AnchorPeer, ChannelConfig};
use gossip_engine::types::OrgId;

/// The largest block `inject_block` builds (Fabric's 100 MiB message limit, less room for the
/// envelope).
pub const INJECT_BLOCK_LEN_MAX_BYTES: usize = 100 * 1024 * 1024 - 64 * 1024;

/// Longest request line accepted, bytes.
pub const REQUEST_LINE_LEN_MAX_BYTES: usize = 64 * 1024;

/// Fabric's block metadata entries (signatures, last config, transactions filter, orderer,
/// commit hash).
const BLOCK_METADATA_ENTRIES: usize = 5;

/// An anchor peer in `join_channel`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Anchor {
    /// The org's MSP id.
    pub org: String,
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
}

/// One request line. Unknown fields are ignored (forward compatibility).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// JoinChan with these orgs and anchors (config sequence 1).
    JoinChannel {
        /// Channel name.
        channel: String,
        /// Member orgs (MSP ids).
        #[serde(default)]
        orgs: Vec<String>,
        /// Anchor peers.
        #[serde(default)]
        anchors: Vec<Anchor>,
    },
    /// LeaveChan: publish StateInfo marked as left, stop pulling and serving the channel.
    LeaveChannel {
        /// Channel name.
        channel: String,
    },
    /// Build and gossip block `seq` of `size_bytes` data.
    InjectBlock {
        /// Channel name.
        channel: String,
        /// Block number.
        seq: u64,
        /// Size of the block's single data entry.
        #[serde(default)]
        size_bytes: usize,
    },
    /// Stream events on this connection from now on.
    Subscribe,
    /// The membership view.
    Peers,
    /// PeersOfChannel.
    PeersOfChannel {
        /// Channel name.
        channel: String,
    },
    /// Node, comm and fault counters.
    Stats,
    /// The ledger's height of a channel: the number of the next block it commits (1 for a
    /// channel it never committed to).
    LedgerHeight {
        /// Channel name.
        channel: String,
    },
    /// Whether this node leads a channel now (leader election, or static `orgLeader`).
    Leader {
        /// Channel name.
        channel: String,
    },
    /// Clean shutdown, as SIGTERM.
    Shutdown,
}

/// Parses one request line; the error is the reply's `error` text.
pub fn parse_request(line: &str) -> Result<Request, String> {
    if line.len() > REQUEST_LINE_LEN_MAX_BYTES {
        return Err(format!(
            "request line longer than {REQUEST_LINE_LEN_MAX_BYTES} bytes"
        ));
    }
    let req: Request =
        serde_json::from_str(line.trim()).map_err(|e| format!("bad request: {e}"))?;
    match &req {
        Request::JoinChannel { channel, .. }
        | Request::LeaveChannel { channel }
        | Request::InjectBlock { channel, .. }
        | Request::PeersOfChannel { channel }
        | Request::LedgerHeight { channel }
        | Request::Leader { channel }
            if channel.is_empty() =>
        {
            Err("bad request: empty channel".into())
        }
        Request::InjectBlock { size_bytes, .. } if *size_bytes > INJECT_BLOCK_LEN_MAX_BYTES => Err(
            format!("bad request: size_bytes {size_bytes} exceeds {INJECT_BLOCK_LEN_MAX_BYTES}"),
        ),
        _ => Ok(req),
    }
}

/// The channel config of a `join_channel` request: every org listed in `orgs` or `anchors`, each
/// with its anchors, sequence 1.
pub fn channel_config(channel: &str, orgs: &[String], anchors: &[Anchor]) -> ChannelConfig {
    let mut members: Vec<(OrgId, Vec<AnchorPeer>)> = Vec::new();
    let names = orgs.iter().chain(anchors.iter().map(|a| &a.org));
    for org in names {
        let id = OrgId::from(org.as_str());
        if !members.iter().any(|(o, _)| *o == id) {
            members.push((id, Vec::new()));
        }
    }
    for a in anchors {
        let id = OrgId::from(a.org.as_str());
        if let Some((_, list)) = members.iter_mut().find(|(o, _)| *o == id) {
            list.push(AnchorPeer {
                host: a.host.clone(),
                port: a.port,
            });
        }
    }
    ChannelConfig {
        channel: Bytes::copy_from_slice(channel.as_bytes()),
        sequence: 1,
        orgs: members,
    }
}

/// The deterministic data entry of block `seq`.
pub fn block_data(seq: u64, size_bytes: usize) -> Vec<u8> {
    let mut state = seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..size_bytes)
        .map(|_| {
            // xorshift64: cheap, deterministic filler.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// An encoded `common.Block`: number `seq`, one data entry of `size_bytes` deterministic bytes,
/// `data_hash` = SHA-256 of the data, five empty metadata entries.
pub fn build_block(seq: u64, size_bytes: usize) -> Bytes {
    let data = block_data(seq, size_bytes);
    let block = Block {
        header: Some(BlockHeader {
            number: seq,
            previous_hash: Bytes::new(),
            data_hash: Bytes::copy_from_slice(&sha256(&data)),
        }),
        data: Some(BlockData {
            data: vec![Bytes::from(data)],
        }),
        metadata: Some(BlockMetadata {
            metadata: vec![Bytes::new(); BLOCK_METADATA_ENTRIES],
        }),
    };
    block.encode_to_vec().into()
}

/// The message an org leader gossips for a block from the orderer: a DataMessage, tag
/// CHAN_AND_ORG.
pub fn block_message(channel: &str, seq: u64, block: Bytes) -> GossipMessage {
    GossipMessage {
        nonce: 0,
        channel: Bytes::copy_from_slice(channel.as_bytes()),
        tag: Tag::ChanAndOrg as i32,
        content: Some(Content::DataMsg(DataMessage {
            payload: Some(Payload {
                seq_num: seq,
                data: block,
                private_data: Vec::new(),
            }),
        })),
    }
}

/// Size of the data in an encoded block (for block events), 0 if it does not decode.
pub fn block_data_len(block: &Bytes) -> usize {
    Block::decode(block.clone())
        .ok()
        .and_then(|b| b.data)
        .map_or(0, |d| d.data.iter().map(Bytes::len).sum())
}

/// `{"ok":true, ...fields}`.
pub fn ok_reply(fields: Map<String, Value>) -> String {
    let mut m = Map::new();
    m.insert("ok".into(), Value::Bool(true));
    m.extend(fields);
    Value::Object(m).to_string()
}

/// `{"ok":false,"error":...}`.
pub fn error_reply(error: &str) -> String {
    json!({"ok": false, "error": error}).to_string()
}

/// A block event line: `event` is `"block"` (in-order delivery) or `"block_received"` (first
/// receipt from a peer). `via`, the path a received block came by (`Arrival::as_str`: `push`,
/// `pull`, `state`), is written only when given (engine/CONTROL.md: an optional field).
pub fn block_event(
    event: &'static str,
    channel: &[u8],
    seq: u64,
    from_hex: Option<String>,
    via: Option<&'static str>,
    size_bytes: usize,
    received_unix_ns: u64,
) -> String {
    // Written directly into one allocation (two lines per block per node under load); the
    // channel is the only free text, escaped by serde_json unless it is plainly safe.
    use std::fmt::Write as _;
    let mut line = String::with_capacity(BLOCK_EVENT_LEN_TYPICAL_BYTES + channel.len());
    line.push_str("{\"event\":\"");
    line.push_str(event);
    line.push_str("\",\"channel\":");
    match std::str::from_utf8(channel) {
        Ok(name)
            if name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) =>
        {
            line.push('"');
            line.push_str(name);
            line.push('"');
        }
        _ => line.push_str(&Value::from(String::from_utf8_lossy(channel)).to_string()),
    }
    let _ = write!(line, ",\"seq\":{seq},\"from\":");
    match from_hex {
        Some(hex) => {
            line.push('"');
            line.push_str(&hex);
            line.push('"');
        }
        None => line.push_str("null"),
    }
    if let Some(via) = via {
        line.push_str(",\"via\":\"");
        line.push_str(via);
        line.push('"');
    }
    let _ = write!(
        line,
        ",\"size_bytes\":{size_bytes},\"received_unix_ns\":{received_unix_ns}}}"
    );
    line
}

/// The length of a block event line with a 64-character PKI-ID, rounded up.
const BLOCK_EVENT_LEN_TYPICAL_BYTES: usize = 192;

/// A membership event line.
pub fn membership_event(alive: usize, dead: usize) -> String {
    json!({"event": "membership", "alive": alive, "dead": dead}).to_string()
}

/// The `leadership` event line: this node became (`true`) or stopped being the channel's leader.
pub fn leadership_event(channel: &[u8], leader: bool, unix_ns: u64) -> String {
    json!({
        "event": "leadership",
        "channel": String::from_utf8_lossy(channel),
        "leader": leader,
        "unix_ns": unix_ns,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use gossip_engine::components::channel::verify_block;
    use gossip_engine::event::Arrival;

    #[test]
    fn parses_every_request() {
        let r = |s: &str| parse_request(s);
        assert_eq!(
            r(
                r#"{"op":"join_channel","channel":"mychannel","orgs":["Org1MSP","Org2MSP"],"anchors":[{"org":"Org1MSP","host":"127.0.0.1","port":7051}]}"#
            ),
            Ok(Request::JoinChannel {
                channel: "mychannel".into(),
                orgs: vec!["Org1MSP".into(), "Org2MSP".into()],
                anchors: vec![Anchor {
                    org: "Org1MSP".into(),
                    host: "127.0.0.1".into(),
                    port: 7051
                }],
            })
        );
        assert_eq!(
            r(r#"{"op":"inject_block","channel":"c","seq":1,"size_bytes":10240}"#),
            Ok(Request::InjectBlock {
                channel: "c".into(),
                seq: 1,
                size_bytes: 10240
            })
        );
        assert_eq!(
            r(r#"{"op":"leave_channel","channel":"c"}"#),
            Ok(Request::LeaveChannel {
                channel: "c".into()
            })
        );
        assert!(r(r#"{"op":"leave_channel","channel":""}"#).is_err());
        assert_eq!(r(r#"{"op":"subscribe"}"#), Ok(Request::Subscribe));
        assert_eq!(r(r#"{"op":"peers"}"#), Ok(Request::Peers));
        assert_eq!(
            r(r#"{"op":"peers_of_channel","channel":"c"}"#),
            Ok(Request::PeersOfChannel {
                channel: "c".into()
            })
        );
        assert_eq!(r(r#"{"op":"stats"}"#), Ok(Request::Stats));
        assert_eq!(
            r(r#"{"op":"ledger_height","channel":"c"}"#),
            Ok(Request::LedgerHeight {
                channel: "c".into()
            })
        );
        assert_eq!(r(" {\"op\":\"shutdown\"}\r"), Ok(Request::Shutdown));
    }

    #[test]
    fn refuses_bad_requests_with_a_message() {
        for bad in [
            "",
            "not json",
            "{}",
            r#"{"op":"fly"}"#,
            r#"{"op":"inject_block","channel":"c"}"#,
            r#"{"op":"inject_block","channel":"","seq":1}"#,
            r#"{"op":"inject_block","channel":"c","seq":-1}"#,
            r#"{"op":"inject_block","channel":"c","seq":1,"size_bytes":999999999999}"#,
            r#"{"op":"join_channel","channel":"c","anchors":[{"org":"O","host":"h","port":70000}]}"#,
            r#"{"op":"ledger_height"}"#,
            r#"{"op":"ledger_height","channel":""}"#,
        ] {
            let e = parse_request(bad).expect_err(bad);
            assert!(e.starts_with("bad request"), "{bad}: {e}");
        }
    }

    #[test]
    fn built_block_verifies() {
        for (seq, len) in [(1, 0), (2, 10), (7, 10240)] {
            let block = build_block(seq, len);
            let msg = block_message("ch", seq, block.clone());
            let Some(Content::DataMsg(DataMessage { payload: Some(p) })) = &msg.content else {
                panic!("data message");
            };
            assert_eq!(verify_block(p), Ok(()));
            assert_eq!(msg.tag, Tag::ChanAndOrg as i32);
            assert_eq!(block_data_len(&block), len);
            let decoded = Block::decode(block).expect("block");
            assert_eq!(decoded.metadata.expect("md").metadata.len(), 5);
        }
        assert_eq!(block_data(3, 64), block_data(3, 64));
        assert_ne!(block_data(3, 64), block_data(4, 64));
    }

    #[test]
    fn channel_config_collects_orgs_and_anchors() {
        let cfg = channel_config(
            "ch",
            &["Org1MSP".into()],
            &[
                Anchor {
                    org: "Org1MSP".into(),
                    host: "h1".into(),
                    port: 1,
                },
                Anchor {
                    org: "Org2MSP".into(),
                    host: "h2".into(),
                    port: 2,
                },
            ],
        );
        assert_eq!(cfg.sequence, 1);
        assert_eq!(cfg.orgs.len(), 2);
        assert_eq!(
            cfg.orgs[1].1,
            vec![AnchorPeer {
                host: "h2".into(),
                port: 2
            }]
        );
    }

    #[test]
    fn replies_are_single_json_lines() {
        let mut m = Map::new();
        m.insert("injected_unix_ns".into(), json!(5));
        let ok: Value = serde_json::from_str(&ok_reply(m)).expect("json");
        assert_eq!(ok["ok"], json!(true));
        assert_eq!(ok["injected_unix_ns"], json!(5));
        let err: Value = serde_json::from_str(&error_reply("x\ny")).expect("json");
        assert_eq!(err["error"], json!("x\ny"));
        assert!(!error_reply("x\ny").contains('\n'));
        let ev: Value = serde_json::from_str(&block_event("block", b"ch", 3, None, None, 10, 99))
            .expect("json");
        assert_eq!(ev["from"], Value::Null);
        assert!(ev.get("ok").is_none());
        assert!(ev.get("via").is_none(), "no path given, no field");
        let line = block_event(
            "block_received",
            b"c\"h\n",
            7,
            Some("ab01".into()),
            Some(Arrival::Pull.as_str()),
            10,
            99,
        );
        assert!(!line.contains('\n'));
        let ev: Value = serde_json::from_str(&line).expect("json");
        assert_eq!(
            ev,
            json!({"event": "block_received", "channel": "c\"h\n", "seq": 7, "from": "ab01",
                   "via": "pull", "size_bytes": 10, "received_unix_ns": 99})
        );
    }
}

#[cfg(test)]
mod leadership_tests {
    use super::*;

    #[test]
    fn leader_request_and_leadership_event() {
        assert_eq!(
            parse_request(r#"{"op":"leader","channel":"mychannel"}"#),
            Ok(Request::Leader {
                channel: "mychannel".into()
            })
        );
        assert!(parse_request(r#"{"op":"leader","channel":""}"#).is_err());
        let line: Value = serde_json::from_str(&leadership_event(b"mychannel", true, 42)).unwrap();
        assert_eq!(
            line,
            json!({"event":"leadership","channel":"mychannel","leader":true,"unix_ns":42})
        );
    }
}
