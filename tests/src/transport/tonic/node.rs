//! One node of a tonic cluster: its identity and endpoints, how it is started, and what it
//! reports to the checkers, in its driver's order.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use gossip_engine::config::{CommConfig, GossipConfig};
use gossip_engine::crypto::{LocalSigner, MspManager};
use gossip_engine::event::{ChannelConfig, Event, Lane, RemotePeer, Transmit};
use gossip_engine::ingress::ReceivedMessage;
use gossip_engine::{
    Accepted, CommSettings, GossipHandle, GossipParams, Ledger, MemLedger, NodeSettings,
    StartOptions, TlsMaterial, TransmitFilter,
};
use gossip_proto::gossip::Envelope;
use tokio::runtime::Runtime;
use tokio::sync::mpsc;

use super::partition::Links;
use crate::sim::PeerSpec;

/// How often a node start is retried (100 ms apart) while its port is still taken.
const START_TRIES: u32 = 50;

/// What a node's driver did, in its order: it offered a verified message to the pass-through
/// subscriber (the message itself follows on that subscription), or it transmitted a block.
enum Trace {
    Received,
    BlockSent(RemotePeer, Envelope),
}

/// What a node reported, for the checkers.
pub(super) enum Seen {
    /// A verified message arrived.
    Received(ReceivedMessage),
    /// A block went out to a peer.
    BlockSent(RemotePeer, Envelope),
    /// A block was delivered: channel, number.
    Delivered(Bytes, u64),
}

/// A running node and its subscriptions.
pub(super) struct Running {
    pub(super) handle: GossipHandle,
    events: mpsc::Receiver<Event>,
    wire: mpsc::Receiver<Accepted>,
    trace: std::sync::mpsc::Receiver<Trace>,
    /// Trace entries taken but not yet matched with their message.
    backlog: VecDeque<Trace>,
}

impl Running {
    /// What the node reported since the last call: messages received and blocks sent in the
    /// driver's order (each block sent comes after every message received before it), then
    /// blocks delivered.
    pub(super) fn take(&mut self) -> Vec<Seen> {
        self.backlog.extend(self.trace.try_iter());
        let mut seen = Vec::new();
        while let Some(entry) = self.backlog.front() {
            if matches!(entry, Trace::Received) {
                match self.wire.try_recv() {
                    Ok(Accepted::PassThrough(m)) => seen.push(Seen::Received(m.into_inner())),
                    Ok(Accepted::Delivered(_)) => continue,
                    // Offered but not queued yet: the rest waits for the next call.
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => {}
                }
            }
            if let Some(Trace::BlockSent(to, envelope)) = self.backlog.pop_front() {
                seen.push(Seen::BlockSent(to, envelope));
            }
        }
        while let Ok(event) = self.events.try_recv() {
            if let Event::Block {
                channel, payload, ..
            } = event
            {
                seen.push(Seen::Delivered(channel, payload.seq_num));
            }
        }
        seen
    }
}

/// One node's slot: its identity and endpoints, its joined channels, and the node when up.
pub(super) struct Peer {
    pub(super) spec: PeerSpec,
    pub(super) listen: SocketAddr,
    pub(super) signer: Arc<LocalSigner>,
    pub(super) tls: TlsMaterial,
    pub(super) incarnation: u64,
    pub(super) channels: BTreeMap<Bytes, ChannelConfig>,
    /// Where the node commits; it outlives the node's crashes, as a durable ledger does.
    pub(super) ledger: Arc<MemLedger>,
    pub(super) running: Option<Running>,
}

impl Peer {
    /// `127.0.0.1:<port>`.
    pub(super) fn internal_endpoint(&self) -> String {
        self.listen.to_string()
    }

    /// `localhost:<port>`, the same listener under another name.
    pub(super) fn localhost_endpoint(&self) -> String {
        format!("localhost:{}", self.listen.port())
    }

    /// [`localhost_endpoint`](Self::localhost_endpoint) when the peer publishes an external
    /// endpoint, else empty.
    pub(super) fn external_endpoint(&self) -> String {
        match self.spec.external {
            true => self.localhost_endpoint(),
            false => String::new(),
        }
    }

    /// Starts the node (node `index`, with `bootstrap` endpoints, sending only over `links`
    /// that pass) and subscribes to what the checkers watch.
    pub(super) fn start(
        &mut self,
        rt: &Runtime,
        index: usize,
        gossip: &GossipConfig,
        msp: &Arc<MspManager>,
        bootstrap: Vec<String>,
        links: &Arc<Links>,
    ) {
        let params = GossipParams {
            comm: CommSettings {
                config: CommConfig {
                    verifier_workers_count: Some(1),
                    ..CommConfig::for_test()
                },
                listen: self.listen,
                tls: Some(self.tls.clone()),
            },
            node: NodeSettings {
                config: gossip.clone(),
                external_endpoint: self.external_endpoint(),
                internal_endpoint: self.internal_endpoint(),
                bootstrap,
                rng_seed: ((index as u64) << 32) + self.incarnation + 1,
            },
            signer: Arc::clone(&self.signer),
            msp: Arc::clone(msp),
            ingress: GossipParams::ingress_config(),
        };
        // The transmit filter and the pass-through predicate both run on the driver task: one
        // channel keeps their order, so each block sent is checked against what came before it.
        // The filter first drops what a partition cuts: it never reaches the wire.
        let (tx, trace) = std::sync::mpsc::channel();
        let handle = rt.block_on(async {
            // A restarted node rebinds its port; the old listener may take a moment to go.
            let mut tries = 0;
            loop {
                let sent = tx.clone();
                let links = Arc::clone(links);
                let filter: TransmitFilter = Box::new(move |t: &Transmit| {
                    if !links.passes(index, &t.to) {
                        return false;
                    }
                    if t.lane == Lane::Data {
                        let _ = sent.send(Trace::BlockSent(t.to.clone(), t.envelope.clone()));
                    }
                    true
                });
                let options = StartOptions {
                    transmit_filter: Some(filter),
                    ledger: Some(Arc::clone(&self.ledger) as Arc<dyn Ledger>),
                    ..StartOptions::default()
                };
                match GossipHandle::start_with(params.clone(), options).await {
                    Ok(handle) => break handle,
                    Err(_) if tries < START_TRIES => {
                        tries += 1;
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    Err(e) => panic!("node {index} does not start: {e}"),
                }
            }
        });
        let events = handle.events().expect("events");
        let received = move |_: &_| {
            let _ = tx.send(Trace::Received);
            true
        };
        let wire = handle.accept(received, true).expect("accept pass-through");
        self.running = Some(Running {
            handle,
            events,
            wire,
            trace,
            backlog: VecDeque::new(),
        });
    }
}
