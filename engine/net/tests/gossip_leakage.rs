//! Fabric's TestDataLeakage over real tonic with mutual TLS on 127.0.0.1: two channels with
//! disjoint member sets in one org; each channel's blocks reach all of its peers and none of the
//! other channel's.
//!
//! Push fan-out covers every peer (`propagate_peer_num` = `PEERS - 1`, pull is not implemented):
//! a routing bug would therefore send blocks to non-members, which this test would see.

mod gossip_cluster;

use std::time::Duration;

use gossip_cluster::{Cluster, Delivered, block, eventually, fast_gossip, init_tracing};
use gossip_engine::config::GossipConfig;
use tokio::sync::Mutex;

const PEERS: usize = 6;
const BLOCKS: u64 = 5;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocks_stay_in_their_channel() {
    init_tracing();
    let gossip = GossipConfig {
        propagate_peer_num: PEERS - 1,
        ..fast_gossip()
    };
    let cluster = Cluster::start(PEERS, gossip).await;
    assert!(eventually(|| cluster.converged()).await, "no convergence");
    let (members_a, members_b) = ([0, 1, 2], [3, 4, 5]);
    let events: Vec<_> = cluster
        .nodes
        .iter()
        .map(|n| n.events().expect("events"))
        .collect();
    cluster.join("A", &members_a).await;
    cluster.join("B", &members_b).await;
    assert!(eventually(|| cluster.channel_converged("A", &members_a)).await);
    assert!(eventually(|| cluster.channel_converged("B", &members_b)).await);

    for seq in 1..=BLOCKS {
        cluster.nodes[0]
            .gossip(block("A", seq))
            .await
            .expect("gossip");
        cluster.nodes[3]
            .gossip(block("B", seq))
            .await
            .expect("gossip");
    }
    let expected: Vec<u64> = (1..=BLOCKS).collect();
    let state = Mutex::new((
        events,
        (0..PEERS).map(|_| Delivered::default()).collect::<Vec<_>>(),
    ));
    let absorb = || async {
        let mut guard = state.lock().await;
        let (events, delivered) = &mut *guard;
        for (rx, d) in events.iter_mut().zip(delivered.iter_mut()) {
            d.absorb(rx);
        }
    };
    let complete = eventually(|| async {
        absorb().await;
        let guard = state.lock().await;
        let d = &guard.1;
        members_a
            .iter()
            .all(|&i| d[i].of("A").len() >= expected.len())
            && members_b
                .iter()
                .all(|&i| d[i].of("B").len() >= expected.len())
    })
    .await;
    // Leave leaked copies (if any) time to arrive; then nothing may have crossed over.
    tokio::time::sleep(Duration::from_secs(2)).await;
    absorb().await;
    let guard = state.lock().await;
    let d = &guard.1;
    for i in members_a {
        assert_eq!(
            d[i].of("A"),
            expected,
            "peer {i} in A (complete: {complete})"
        );
        assert!(
            d[i].of("B").is_empty(),
            "B leaked to peer {i}: {:?}",
            d[i].of("B")
        );
    }
    for i in members_b {
        assert_eq!(
            d[i].of("B"),
            expected,
            "peer {i} in B (complete: {complete})"
        );
        assert!(
            d[i].of("A").is_empty(),
            "A leaked to peer {i}: {:?}",
            d[i].of("A")
        );
    }
    drop(guard);
    cluster.stop().await;
}
