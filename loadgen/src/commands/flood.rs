//! `loadgen flood`: a hostile peer. It loads a peer's core.yaml and MSP like gossip-node does,
//! completes a real gossip handshake with the victim (a valid identity of a trusted org), then
//! sends envelopes at a target rate for a while, and prints one JSON line with what it sent.
//!
//! The envelopes cycle through four kinds (the share of the last two is `invalid_share`):
//! - `data_unknown_channel`: a well-formed, NoopSigned data message (as blocks are) of 1 KiB of
//!   junk on a channel the victim has not joined;
//! - `alive_replay`: the flooder's own alive message, validly signed, replayed with the same
//!   sequence number (an old message after the first);
//! - `garbage`: random bytes where the `GossipMessage` should be;
//! - `bad_signature`: the alive message with one bit of its signature flipped.
//!
//! Sending never blocks: the comm layer queues envelopes per connection and drops (and counts,
//! `overflow_count`) what does not fit, so the rate that reached the socket is in the output.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use gossip_engine::comm::{Comm, CommParams, RemotePeer};
use gossip_engine::crypto::envelope::{noop_sign, sign_envelope};
use gossip_engine::handle::GossipParams;
use gossip_engine::ingress::Ingress;
use gossip_engine::tls::TlsMaterial;
use gossip_node::NodeConfig;
use gossip_node::material;
use gossip_proto::gossip::gossip_message::{Content, Tag};
use gossip_proto::gossip::{
    AliveMessage, DataMessage, Envelope, GossipMessage, Member, Payload, PeerTime,
};
use prost::Message;
use serde::Serialize;

use crate::measure::inject::mono_now;

/// Why the flood could not run.
#[derive(Debug, thiserror::Error)]
pub enum FloodError {
    /// The peer's configuration or MSP material.
    #[error("flooder config: {0}")]
    Config(String),
    /// The comm layer: listen, dial or handshake.
    #[error("flooder comm: {0}")]
    Comm(String),
    /// The runtime.
    #[error("flooder runtime: {0}")]
    Runtime(#[from] std::io::Error),
}

/// What to flood, and how hard.
#[derive(Clone, Debug)]
pub struct FloodArgs {
    /// The hostile peer's core.yaml (its identity: `peer.mspConfigPath`, TLS files).
    pub config: PathBuf,
    /// Other trusted orgs, `MSPID=DIR` (as gossip-node's `--org-msp`).
    pub org_msps: Vec<String>,
    /// The victim's gossip endpoint, `host:port`.
    pub target: String,
    /// Envelopes per second.
    pub rate_per_s: f64,
    /// How long, seconds.
    pub duration_s: f64,
    /// Share of invalid envelopes (garbage, bad signatures), 0..=1.
    pub invalid_share: f64,
    /// Seed of the junk.
    pub seed: u64,
}

/// The flood's outcome (one JSON line on standard output).
#[derive(Clone, Debug, Default, Serialize, serde::Deserialize, PartialEq)]
pub struct FloodReport {
    /// The victim's PKI-ID, from the handshake.
    pub victim_pki_id: String,
    /// Milliseconds the handshake took.
    pub handshake_ms: f64,
    /// Envelopes handed to the comm layer, by kind.
    pub offered_by_kind: std::collections::BTreeMap<String, u64>,
    /// Envelopes handed to the comm layer.
    pub offered: u64,
    /// Envelopes written to the stream (`messages_sent` of the flooder's comm).
    pub sent: u64,
    /// Envelopes the flooder's own send queue dropped (`overflow_count`).
    pub overflow: u64,
    /// Seconds the flood lasted.
    pub elapsed_s: f64,
    /// `offered / elapsed_s`.
    pub offered_per_s: f64,
    /// `sent / elapsed_s`: the rate that reached the socket.
    pub sent_per_s: f64,
}

/// The envelope kinds, in the order [`pick_kind`] numbers them.
pub const KINDS: [&str; 4] = [
    "data_unknown_channel",
    "alive_replay",
    "garbage",
    "bad_signature",
];

/// A small deterministic generator (xorshift64*): junk needs no cryptographic randomness.
#[derive(Clone, Debug)]
pub struct Junk(u64);

impl Junk {
    /// Seeded; a zero seed is replaced (xorshift stays at zero).
    pub fn new(seed: u64) -> Self {
        Self(seed ^ 0x9E37_79B9_7F4A_7C15 | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A uniform draw in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// `len` random bytes.
    pub fn bytes(&mut self, len: usize) -> Bytes {
        let mut v = Vec::with_capacity(len + 8);
        while v.len() < len {
            v.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        v.truncate(len);
        v.into()
    }
}

/// Which kind (index into [`KINDS`]) the next envelope is: invalid with `invalid_share`, each
/// half of a class with equal odds.
pub fn pick_kind(junk: &mut Junk, invalid_share: f64) -> usize {
    let invalid = junk.unit() < invalid_share;
    let second = junk.next_u64() & 1 == 1;
    match (invalid, second) {
        (false, false) => 0,
        (false, true) => 1,
        (true, false) => 2,
        (true, true) => 3,
    }
}

/// Envelopes due after `elapsed` at `rate_per_s`, less those already offered.
pub fn due_now(elapsed: Duration, rate_per_s: f64, offered: u64) -> u64 {
    ((elapsed.as_secs_f64() * rate_per_s) as u64).saturating_sub(offered)
}

/// The pre-built envelopes of each kind (garbage is drawn fresh each time).
struct Templates {
    alive: Envelope,
    bad_signature: Envelope,
}

fn templates(
    signer: &gossip_engine::crypto::LocalSigner,
    endpoint: &str,
) -> Result<Templates, FloodError> {
    let alive = GossipMessage {
        nonce: 0,
        channel: Bytes::new(),
        tag: Tag::Empty as i32,
        content: Some(Content::AliveMsg(AliveMessage {
            membership: Some(Member {
                endpoint: endpoint.to_owned(),
                metadata: Bytes::new(),
                pki_id: Bytes::copy_from_slice(signer.pki_id().as_bytes()),
            }),
            timestamp: Some(PeerTime {
                inc_num: 1,
                seq_num: 1,
            }),
            identity: signer.identity().serialized.clone(),
        })),
    };
    let alive = sign_envelope(alive.encode_to_vec().into(), signer.key())
        .map_err(|e| FloodError::Config(format!("signing: {e}")))?;
    let mut sig = alive.signature.to_vec();
    if let Some(last) = sig.last_mut() {
        *last ^= 1;
    }
    let bad_signature = Envelope {
        signature: sig.into(),
        ..alive.clone()
    };
    Ok(Templates {
        alive,
        bad_signature,
    })
}

fn data_unknown_channel(junk: &mut Junk, seq: u64) -> Envelope {
    let message = GossipMessage {
        nonce: junk.next_u64(),
        channel: Bytes::from(format!("junk-{}", junk.next_u64() % 1024)),
        tag: Tag::ChanAndOrg as i32,
        content: Some(Content::DataMsg(DataMessage {
            payload: Some(Payload {
                seq_num: seq,
                data: junk.bytes(1024),
                private_data: Vec::new(),
            }),
        })),
    };
    noop_sign(message.encode_to_vec().into())
}

/// Runs the flood on a current-thread runtime of its own.
pub fn run_flood(args: &FloodArgs) -> Result<FloodReport, FloodError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(flood(args))
}

async fn flood(args: &FloodArgs) -> Result<FloodReport, FloodError> {
    let cfg = NodeConfig::load(Some(&args.config), None, std::env::vars(), None)
        .map_err(|e| FloodError::Config(e.to_string()))?;
    let orgs = args
        .org_msps
        .iter()
        .map(|a| material::parse_org_msp_arg(a))
        .filter(|r| r.as_ref().map_or(true, |(m, _)| *m != cfg.mspid))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| FloodError::Config(e.to_string()))?;
    let m = material::load(&cfg, &orgs).map_err(|e| FloodError::Config(e.to_string()))?;
    let signer = Arc::new(m.signer);
    let ingress = Ingress::with_msp(GossipParams::ingress_config(), Arc::new(m.msp));
    let listen = "127.0.0.1:0".parse().expect("literal address");
    let comm = Comm::start(CommParams {
        config: cfg.comm.clone(),
        listen,
        signer: Arc::clone(&signer),
        ingress: Arc::new(ingress),
        tls: m.tls.map(|t| TlsMaterial {
            cert_chain_pem: t.cert_chain_pem,
            key_pem: t.key_pem,
        }),
    })
    .await
    .map_err(|e| FloodError::Comm(e.to_string()))?;
    let started = mono_now();
    let victim = comm
        .handshake(&args.target, None)
        .await
        .map_err(|e| FloodError::Comm(format!("handshake with {}: {e}", args.target)))?;
    let handshake_ms = started.elapsed().as_secs_f64() * 1e3;
    let peer = RemotePeer {
        endpoint: args.target.clone(),
        pki_id: victim.pki_id,
    };
    let t = templates(&signer, &comm.local_addr().to_string())?;
    let mut junk = Junk::new(args.seed);
    let mut by_kind = [0u64; 4];
    let mut offered = 0u64;
    let start = mono_now();
    let duration = Duration::from_secs_f64(args.duration_s);
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    while start.elapsed() < duration {
        tick.tick().await;
        for _ in 0..due_now(start.elapsed(), args.rate_per_s, offered) {
            let kind = pick_kind(&mut junk, args.invalid_share);
            let envelope = match kind {
                0 => data_unknown_channel(&mut junk, offered),
                1 => t.alive.clone(),
                2 => Envelope {
                    payload: {
                        let len = 64 + (junk.next_u64() % 512) as usize;
                        junk.bytes(len)
                    },
                    signature: junk.bytes(70),
                    secret_envelope: None,
                },
                _ => t.bad_signature.clone(),
            };
            comm.send(envelope, std::slice::from_ref(&peer));
            by_kind[kind] += 1;
            offered += 1;
        }
    }
    // Let the queue drain a moment before reading what reached the socket.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let elapsed_s = start.elapsed().as_secs_f64();
    let stats = comm.stats();
    comm.stop().await;
    Ok(FloodReport {
        victim_pki_id: victim.pki_id.to_string(),
        handshake_ms,
        offered_by_kind: KINDS
            .iter()
            .zip(by_kind)
            .map(|(k, n)| ((*k).to_owned(), n))
            .collect(),
        offered,
        sent: stats.messages_sent,
        overflow: stats.overflow_count,
        elapsed_s,
        offered_per_s: offered as f64 / elapsed_s,
        sent_per_s: stats.messages_sent as f64 / elapsed_s,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_invalid_share_decides_the_class_and_both_kinds_of_a_class_occur() {
        let mut j = Junk::new(7);
        let mut counts = [0u64; 4];
        for _ in 0..10_000 {
            counts[pick_kind(&mut j, 0.3)] += 1;
        }
        let invalid = (counts[2] + counts[3]) as f64 / 10_000.0;
        assert!((invalid - 0.3).abs() < 0.03, "{counts:?}");
        assert!(counts.iter().all(|&c| c > 1000), "{counts:?}");
        let mut none = Junk::new(1);
        assert!((0..1000).all(|_| pick_kind(&mut none, 0.0) < 2));
        assert!((0..1000).all(|_| pick_kind(&mut none, 1.0) >= 2));
    }

    #[test]
    fn due_now_follows_the_rate_and_never_goes_back() {
        assert_eq!(due_now(Duration::from_millis(10), 50_000.0, 0), 500);
        assert_eq!(due_now(Duration::from_millis(10), 50_000.0, 400), 100);
        assert_eq!(due_now(Duration::from_millis(10), 50_000.0, 900), 0);
    }

    #[test]
    fn junk_replays_from_its_seed_and_garbage_does_not_decode_as_alive() {
        let a: Vec<u64> = (0..5)
            .map({
                let mut j = Junk::new(3);
                move |_| j.next_u64()
            })
            .collect();
        let b: Vec<u64> = (0..5)
            .map({
                let mut j = Junk::new(3);
                move |_| j.next_u64()
            })
            .collect();
        assert_eq!(a, b);
        let mut j = Junk::new(0);
        assert_ne!(j.next_u64(), 0, "a zero seed still moves");
        let e = data_unknown_channel(&mut j, 5);
        let m = GossipMessage::decode(e.payload).expect("data message decodes");
        assert!(String::from_utf8_lossy(&m.channel).starts_with("junk-"));
        assert!(e.signature.is_empty(), "data messages are NoopSigned");
    }
}
