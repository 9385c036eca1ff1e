//! Shared helpers for the gossip integration tests of the `GossipHandle` API: a one-org cluster
//! of [`GossipHandle`]s on 127.0.0.1 over real tonic with mutual TLS, one generated PKI, Fabric's
//! test timings, blocks, and `eventually`-style polling. Fabric's scenarios run on tonic through
//! the transport suite instead (`gossip_harness::transport::tonic`, `tests/tests/*.rs`).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use gossip_engine::config::{CommConfig, GossipConfig};
use gossip_engine::crypto::MspManager;
use gossip_engine::event::{ChannelConfig, Event};
use gossip_engine::types::{OrgId, PkiId};
use gossip_engine::{
    CommSettings, GossipHandle, GossipParams, NodeSettings, StartOptions, TlsMaterial, clock,
};
use gossip_node::control;
use gossip_proto::gossip::GossipMessage;
use gossip_testkit::testpki::{TestPki, TestPkiSpec};
use tokio::sync::mpsc;

/// A bound on every wait, so a bug fails instead of hanging (never a timing assertion).
pub const WAIT: Duration = Duration::from_secs(40);

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// Fabric's test timings: alive every 1 s, dead after 5 s, StateInfo published and requested
/// every 1 s, pull (and membership sync) every 2 s with a round's waits cut in proportion,
/// reconnect every 2 s.
pub fn fast_gossip() -> GossipConfig {
    GossipConfig {
        alive_time_interval: Duration::from_secs(1),
        alive_expiration_timeout: Duration::from_secs(5),
        reconnect_interval: Duration::from_secs(2),
        pull_interval: Duration::from_secs(2),
        digest_wait_time: Duration::from_millis(500),
        request_wait_time: Duration::from_millis(750),
        response_wait_time: Duration::from_secs(1),
        publish_state_info_interval: Duration::from_secs(1),
        request_state_info_interval: Duration::from_secs(1),
        ..GossipConfig::default()
    }
}

/// A running cluster: `nodes[i]` is peer `i` of org 1, and every peer bootstraps to peer 0.
pub struct Cluster {
    pub pki: TestPki,
    pub msp: Arc<MspManager>,
    pub nodes: Vec<GossipHandle>,
}

impl Cluster {
    /// Starts `peers` peers of one org with `gossip`, peer 0 first, the others bootstrapping to it.
    pub async fn start(peers: usize, gossip: GossipConfig) -> Cluster {
        Self::start_with(peers, gossip, |_| StartOptions::default()).await
    }

    /// [`start`](Self::start) with each peer's [`StartOptions`].
    pub async fn start_with(
        peers: usize,
        gossip: GossipConfig,
        mut options: impl FnMut(usize) -> StartOptions,
    ) -> Cluster {
        let now_unix_s = clock::now().as_unix_secs();
        let pki = TestPki::generate(&TestPkiSpec::uniform(1, peers, now_unix_s)).expect("test PKI");
        let msp = Arc::new(pki.msp_manager().expect("msp manager"));
        let mut cluster = Cluster {
            pki,
            msp,
            nodes: Vec::new(),
        };
        for i in 0..peers {
            let bootstrap = match cluster.nodes.first() {
                Some(first) => vec![first.local_addr().to_string()],
                None => vec![],
            };
            let node = cluster
                .start_peer_with(i, gossip.clone(), bootstrap, options(i))
                .await;
            cluster.nodes.push(node);
        }
        cluster
    }

    /// Starts peer `i` of org 1 (not added to `nodes`) with `options`, on a free port.
    pub async fn start_peer_with(
        &self,
        i: usize,
        gossip: GossipConfig,
        bootstrap: Vec<String>,
        options: StartOptions,
    ) -> GossipHandle {
        let peer = &self.pki.orgs[0].peers[i];
        // Pick the port first: the external endpoint is this peer's address.
        let listen =
            std::net::SocketAddr::from(([127, 0, 0, 1], gossip_testkit::ports::free_local_port()));
        GossipHandle::start_with(
            GossipParams {
                comm: CommSettings {
                    config: CommConfig::for_test(),
                    listen,
                    tls: Some(TlsMaterial {
                        cert_chain_pem: peer.tls.cert_pem.clone(),
                        key_pem: peer.tls.key_pem.clone(),
                    }),
                },
                node: NodeSettings {
                    config: gossip,
                    external_endpoint: listen.to_string(),
                    internal_endpoint: listen.to_string(),
                    bootstrap,
                    rng_seed: i as u64 + 1,
                },
                signer: Arc::new(peer.signer().expect("signer")),
                msp: Arc::clone(&self.msp),
                ingress: GossipParams::ingress_config(),
            },
            options,
        )
        .await
        .expect("gossip starts")
    }

    pub fn pki_ids(&self) -> Vec<PkiId> {
        self.nodes.iter().map(GossipHandle::pki_id).collect()
    }

    /// Whether every node sees every other node alive.
    pub async fn converged(&self) -> bool {
        let all = self.pki_ids();
        for node in &self.nodes {
            let Ok(peers) = node.peers().await else {
                return false;
            };
            let want = all.iter().filter(|p| **p != node.pki_id());
            if !want.clone().all(|p| peers.iter().any(|m| m.pki_id == *p)) {
                return false;
            }
        }
        true
    }

    /// Joins `members` to `channel` (org 1, no anchors).
    pub async fn join(&self, channel: &str, members: &[usize]) {
        let config = ChannelConfig {
            channel: Bytes::copy_from_slice(channel.as_bytes()),
            sequence: 1,
            orgs: vec![(OrgId::from(self.pki.orgs[0].mspid.as_str()), vec![])],
        };
        for &i in members {
            self.nodes[i].join_chan(config.clone()).await.expect("join");
        }
    }

    /// Whether every node in `members` lists every other member as a peer of `channel`.
    pub async fn channel_converged(&self, channel: &str, members: &[usize]) -> bool {
        for &i in members {
            let ch = Bytes::copy_from_slice(channel.as_bytes());
            let Ok(peers) = self.nodes[i].peers_of_channel(ch).await else {
                return false;
            };
            let others = members.iter().filter(|&&j| j != i);
            if !others.clone().all(|&j| {
                peers
                    .iter()
                    .any(|(m, _)| m.pki_id == self.nodes[j].pki_id())
            }) {
                return false;
            }
        }
        true
    }

    pub async fn stop(self) {
        for node in &self.nodes {
            node.stop().await;
        }
    }
}

/// Polls `cond` every 100 ms until it holds or [`WAIT`] passes; returns whether it held.
pub async fn eventually<F, Fut>(mut cond: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::sleep(WAIT);
    tokio::pin!(deadline);
    loop {
        if cond().await {
            return true;
        }
        tokio::select! {
            () = &mut deadline => return cond().await,
            () = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    }
}

/// A block message of `channel` numbered `seq`, with a valid data hash: what an org leader
/// gossips for a block from the orderer (the same builder gossip-node's `inject_block` uses).
pub fn block(channel: &str, seq: u64) -> GossipMessage {
    control::block_message(
        channel,
        seq,
        control::build_block(seq, BLOCK_DATA_LEN_BYTES),
    )
}

/// Size of each test block's single data entry.
const BLOCK_DATA_LEN_BYTES: usize = 64;

/// Block numbers delivered per channel, in delivery order, read from an event stream.
#[derive(Debug, Default)]
pub struct Delivered {
    pub by_channel: BTreeMap<Bytes, Vec<u64>>,
}

impl Delivered {
    /// Moves every queued block event of `events` into the record.
    pub fn absorb(&mut self, events: &mut mpsc::Receiver<Event>) {
        while let Ok(event) = events.try_recv() {
            if let Event::Block {
                channel, payload, ..
            } = event
            {
                self.by_channel
                    .entry(channel)
                    .or_default()
                    .push(payload.seq_num);
            }
        }
    }

    pub fn of(&self, channel: &str) -> &[u64] {
        self.by_channel
            .get(channel.as_bytes())
            .map_or(&[][..], Vec::as_slice)
    }
}
