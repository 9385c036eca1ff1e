//! Block delivery over real tonic with mutual TLS on 127.0.0.1, as the `GossipHandle` API shows
//! it: what the transport suite (`tests/`, `gossip_harness::transport`) cannot express. Fabric's
//! dissemination scenarios themselves (TestDissemination, all-to-all, no self loop, data
//! leakage) are written once in `gossip_harness::fabric` and run on tonic by `tests/tests/*.rs`.
//!
//! Three peers: Fabric's push fan-out (3) reaches every other peer, so delivery is complete
//! without pull.

mod gossip_cluster;

use bytes::Bytes;
use gossip_cluster::{Cluster, Delivered, WAIT, block, eventually, fast_gossip, init_tracing};
use gossip_engine::Accepted;
use gossip_engine::event::Event;
use gossip_proto::gossip::gossip_message::Content;

const PEERS: usize = 3;
const BLOCKS: u64 = 10;
const CHANNEL: &str = "A";

/// `accept` without pass-through sees the delivered blocks, in order, as data messages of the
/// channel; the node's next block number follows the last; no event was dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_without_pass_through_sees_delivered_blocks() {
    init_tracing();
    let cluster = Cluster::start(PEERS, fast_gossip()).await;
    assert!(eventually(|| cluster.converged()).await, "no convergence");
    let all: Vec<usize> = (0..PEERS).collect();
    let mut accepted = cluster.nodes[PEERS - 1]
        .accept(
            |m| matches!(m.content, Some(Content::DataMsg(_))) && m.channel.as_ref() == b"A",
            false,
        )
        .expect("accept");
    cluster.join(CHANNEL, &all).await;
    // Blocks are routed to peers known in the channel: let StateInfo spread first.
    assert!(
        eventually(|| cluster.channel_converged(CHANNEL, &all)).await,
        "channel membership did not converge"
    );
    for seq in 1..=BLOCKS {
        cluster.nodes[0]
            .gossip(block(CHANNEL, seq))
            .await
            .expect("gossip");
    }
    for seq in 1..=BLOCKS {
        let got = tokio::time::timeout(WAIT, accepted.recv())
            .await
            .expect("accepted block in time")
            .expect("open");
        match got {
            Accepted::Delivered(Event::Block { payload, .. }) => assert_eq!(payload.seq_num, seq),
            other => panic!("unexpected {other:?}"),
        }
    }
    for (i, node) in cluster.nodes.iter().enumerate() {
        let next = eventually(|| async {
            node.next_block_seq(Bytes::from_static(b"A")).await.ok() == Some(Some(BLOCKS + 1))
        })
        .await;
        assert!(next, "peer {i} did not reach block {BLOCKS}");
        let stats = node.stats().await.expect("stats");
        assert_eq!(stats.driver.events_dropped, 0, "peer {i}");
    }
    cluster.stop().await;
}

/// A forged block N, sent by an authenticated peer, fails its channel's check and must not make
/// the genuine block N a duplicate (the seen cache once remembered every data message that passed
/// ingress, before any block check). Over real tonic: peer 2 sends a block 1 whose data hash is
/// wrong straight to peer 1; then peer 0 gossips the genuine block 1, and peer 1 delivers it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_block_does_not_shadow_the_genuine_one() {
    use gossip_engine::event::RemotePeer;
    use gossip_engine::outbox::DropReason;

    init_tracing();
    let cluster = Cluster::start(3, fast_gossip()).await;
    assert!(eventually(|| cluster.converged()).await, "no convergence");
    let all = [0, 1, 2];
    cluster.join(CHANNEL, &all).await;
    assert!(
        eventually(|| cluster.channel_converged(CHANNEL, &all)).await,
        "channel membership did not converge"
    );
    let mut events = cluster.nodes[1].events().expect("events");
    let mut forged = block(CHANNEL, 1);
    if let Some(Content::DataMsg(d)) = forged.content.as_mut()
        && let Some(p) = d.payload.as_mut()
    {
        let mut data = p.data.to_vec();
        let last = data.len() - 1;
        data[last] ^= 1; // the block no longer matches its data hash
        p.data = data.into();
    }
    let target = RemotePeer {
        pki_id: Some(cluster.pki_ids()[1]),
        endpoint: cluster.nodes[1].local_addr().to_string(),
    };
    cluster.nodes[2]
        .send(forged, vec![target])
        .await
        .expect("send");
    let rejected = eventually(|| async {
        let stats = cluster.nodes[1].stats().await.expect("stats");
        stats
            .node
            .dropped
            .get(&DropReason::BadBlock)
            .copied()
            .unwrap_or(0)
            > 0
    })
    .await;
    assert!(rejected, "peer 1 never saw the forged block");

    cluster.nodes[0]
        .gossip(block(CHANNEL, 1))
        .await
        .expect("gossip");
    let mut delivered = Delivered::default();
    let got = eventually(|| {
        delivered.absorb(&mut events);
        let done = delivered.of(CHANNEL) == [1];
        async move { done }
    })
    .await;
    assert!(got, "peer 1 delivered {:?}", delivered.of(CHANNEL));
    cluster.stop().await;
}
