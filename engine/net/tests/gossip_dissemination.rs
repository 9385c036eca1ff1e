//! Fabric's TestDissemination over real tonic with mutual TLS on 127.0.0.1: peers of one org join
//! a channel, one peer gossips blocks, every peer delivers all of them, in order, exactly once.
//!
//! Pull is not implemented yet, so completeness rests on push alone: `propagate_peer_num` is
//! `PEERS - 1` (every block goes straight to every other peer). Fabric's fan-out of 3 relies on
//! pull to fill the gaps.

mod gossip_cluster;

use bytes::Bytes;
use gossip_cluster::{Cluster, Delivered, WAIT, block, eventually, fast_gossip, init_tracing};
use gossip_engine::Accepted;
use gossip_engine::config::GossipConfig;
use gossip_engine::event::Event;
use gossip_proto::gossip::gossip_message::Content;
use tokio::sync::Mutex;

const PEERS: usize = 6;
const BLOCKS: u64 = 10;
const CHANNEL: &str = "A";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocks_reach_every_peer_in_order() {
    init_tracing();
    let gossip = GossipConfig {
        propagate_peer_num: PEERS - 1,
        ..fast_gossip()
    };
    let cluster = Cluster::start(PEERS, gossip).await;
    assert!(eventually(|| cluster.converged()).await, "no convergence");
    let all: Vec<usize> = (0..PEERS).collect();
    let mut events: Vec<_> = cluster
        .nodes
        .iter()
        .map(|n| n.events().expect("events"))
        .collect();
    // Accept without pass-through sees the same blocks, as data messages.
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
    let expected: Vec<u64> = (1..=BLOCKS).collect();
    let delivered: Vec<Mutex<Delivered>> = (0..PEERS).map(|_| Mutex::default()).collect();
    let events = Mutex::new(&mut events);
    let complete = eventually(|| async {
        let mut events = events.lock().await;
        let mut done = true;
        for (i, rx) in events.iter_mut().enumerate() {
            let mut d = delivered[i].lock().await;
            d.absorb(rx);
            done &= d.of(CHANNEL).len() >= expected.len();
        }
        done
    })
    .await;
    for (i, d) in delivered.iter().enumerate() {
        let d = d.lock().await;
        assert_eq!(d.of(CHANNEL), expected, "peer {i} (complete: {complete})");
        let next = cluster.nodes[i]
            .next_block_seq(Bytes::from_static(b"A"))
            .await
            .expect("query");
        assert_eq!(next, Some(BLOCKS + 1), "peer {i}");
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
    let stats = cluster.nodes[0].stats().await.expect("stats");
    assert_eq!(stats.driver.events_dropped, 0);
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
