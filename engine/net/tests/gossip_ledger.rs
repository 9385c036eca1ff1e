//! A gossip instance with a [`Ledger`] (`StartOptions::ledger`), over real tonic with mutual TLS:
//! delivered blocks are committed and still reach subscribers, the committed height is what the
//! peer publishes in StateInfo, a restarted instance resumes delivery at its ledger's height, and
//! a failing ledger stops its channel's commits without stopping the node. Waits are bounded;
//! nothing asserts on timing.

mod gossip_cluster;

use std::sync::Arc;

use bytes::Bytes;
use gossip_cluster::{Cluster, Delivered, block, eventually, fast_gossip, init_tracing};
use gossip_engine::ledger::{INITIAL_HEIGHT, Ledger, LedgerError};
use gossip_engine::{MemLedger, StartOptions};
use gossip_proto::gossip::Payload;

const CHANNEL: &str = "A";

fn with_ledger(ledger: &Arc<impl Ledger>) -> StartOptions {
    StartOptions {
        ledger: Some(Arc::clone(ledger) as Arc<dyn Ledger>),
        ..StartOptions::default()
    }
}

fn channel() -> Bytes {
    Bytes::from_static(CHANNEL.as_bytes())
}

async fn height_is(ledger: &dyn Ledger, height: u64) -> bool {
    ledger.height(CHANNEL.as_bytes()).ok() == Some(height)
}

/// Peer 0 commits what it delivers; peer 1 (no ledger) sees peer 0's committed height in its
/// StateInfo.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivered_blocks_are_committed_and_the_height_is_published() {
    init_tracing();
    let ledger = Arc::new(MemLedger::default());
    let cluster = Cluster::start_with(2, fast_gossip(), |i| match i {
        0 => with_ledger(&ledger),
        _ => StartOptions::default(),
    })
    .await;
    let mut events = cluster.nodes[0].events().expect("events");
    cluster.join(CHANNEL, &[0, 1]).await;
    for seq in 1..=5 {
        cluster.nodes[0]
            .gossip(block(CHANNEL, seq))
            .await
            .expect("gossip");
    }
    assert!(eventually(|| height_is(&*ledger, 6)).await, "not committed");
    let committed = ledger.blocks(CHANNEL.as_bytes(), 1, 5).expect("blocks");
    assert_eq!(
        committed.iter().map(|b| b.seq_num).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5]
    );
    let mut delivered = Delivered::default();
    assert!(
        eventually(|| {
            delivered.absorb(&mut events);
            let done = delivered.of(CHANNEL) == [1, 2, 3, 4, 5];
            async move { done }
        })
        .await,
        "subscribers still get the blocks: {delivered:?}"
    );
    let published = eventually(|| async {
        let peers = cluster.nodes[1].peers_of_channel(channel()).await;
        peers.is_ok_and(|p| p.iter().any(|(_, props)| props.ledger_height == 6))
    })
    .await;
    assert!(published, "peer 1 never saw peer 0 at height 6");
    let stats = cluster.nodes[0].stats().await.expect("stats").driver;
    assert_eq!(stats.ledger_commits, 5);
    assert_eq!(stats.ledger_commit_errors, 0);
    assert!(stats.ledger_heights_acknowledged >= 1, "{stats:?}");
    assert_eq!(
        cluster.nodes[1]
            .stats()
            .await
            .expect("stats")
            .driver
            .ledger_commits,
        0
    );
    cluster.stop().await;
}

/// A restarted instance on the same ledger joins the channel at the ledger's height: an old
/// block is not delivered again, the next one is delivered and committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_node_resumes_at_its_ledger_height() {
    init_tracing();
    let ledger = Arc::new(MemLedger::default());
    let cluster = Cluster::start_with(1, fast_gossip(), |_| with_ledger(&ledger)).await;
    cluster.join(CHANNEL, &[0]).await;
    for seq in 1..=3 {
        cluster.nodes[0]
            .gossip(block(CHANNEL, seq))
            .await
            .expect("gossip");
    }
    assert!(eventually(|| height_is(&*ledger, 4)).await, "not committed");
    let pki = cluster.pki;
    let msp = cluster.msp;
    for node in &cluster.nodes {
        node.stop().await;
    }
    let mut restarted = Cluster {
        pki,
        msp,
        nodes: Vec::new(),
    };
    let node = restarted
        .start_peer_with(0, fast_gossip(), vec![], with_ledger(&ledger))
        .await;
    restarted.nodes.push(node.clone());
    let mut events = node.events().expect("events");
    restarted.join(CHANNEL, &[0]).await;
    assert_eq!(
        node.next_block_seq(channel()).await.expect("query"),
        Some(4),
        "resumes at the ledger's height"
    );
    node.gossip(block(CHANNEL, 2)).await.expect("gossip");
    node.gossip(block(CHANNEL, 4)).await.expect("gossip");
    assert!(
        eventually(|| height_is(&*ledger, 5)).await,
        "block 4 not committed"
    );
    let mut delivered = Delivered::default();
    delivered.absorb(&mut events);
    assert_eq!(
        delivered.of(CHANNEL),
        [4],
        "block 2 was committed before the restart"
    );
    let stats = node.stats().await.expect("stats").driver;
    assert_eq!((stats.ledger_commits, stats.ledger_commits_skipped), (1, 0));
    restarted.stop().await;
}

/// A ledger whose commits fail from block 3 on.
#[derive(Default)]
struct FailingLedger {
    inner: MemLedger,
}

impl Ledger for FailingLedger {
    fn commit(&self, channel: &[u8], payload: &Payload) -> Result<(), LedgerError> {
        if payload.seq_num >= 3 {
            return Err(LedgerError::Storage("disk full".into()));
        }
        self.inner.commit(channel, payload)
    }
    fn height(&self, channel: &[u8]) -> Result<u64, LedgerError> {
        self.inner.height(channel)
    }
    fn blocks(&self, channel: &[u8], start: u64, end: u64) -> Result<Vec<Payload>, LedgerError> {
        self.inner.blocks(channel, start, end)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_error_is_counted_and_the_node_goes_on() {
    init_tracing();
    let ledger = Arc::new(FailingLedger::default());
    assert_eq!(ledger.height(b"A").expect("height"), INITIAL_HEIGHT);
    let cluster = Cluster::start_with(1, fast_gossip(), |_| with_ledger(&ledger)).await;
    cluster.join(CHANNEL, &[0]).await;
    for seq in 1..=5 {
        cluster.nodes[0]
            .gossip(block(CHANNEL, seq))
            .await
            .expect("gossip");
    }
    let node = &cluster.nodes[0];
    let counted = eventually(|| async {
        node.stats()
            .await
            .is_ok_and(|s| s.driver.ledger_commit_errors == 1)
    })
    .await;
    assert!(counted, "the failed commit was not counted");
    assert!(height_is(&*ledger, 3).await, "1 and 2 committed, then none");
    let stats = node.stats().await.expect("still running").driver;
    assert_eq!(stats.ledger_commits, 2);
    assert_eq!(
        stats.ledger_commit_errors, 1,
        "one error, then the channel stops"
    );
    cluster.stop().await;
}
