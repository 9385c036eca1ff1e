//! Membership over real tonic with mutual TLS on 127.0.0.1, as the `GossipHandle` API shows it:
//! what the transport suite (`tests/`, `gossip_harness::transport`) cannot express. Fabric's
//! membership scenarios themselves (TestMembership with its metadata update, convergence,
//! expiration and resurrection) are written once in `gossip_harness::fabric` and run on tonic by
//! `tests/tests/membership.rs`.

mod gossip_cluster;

use bytes::Bytes;
use gossip_cluster::{Cluster, WAIT, eventually, fast_gossip, init_tracing};
use gossip_engine::Accepted;
use gossip_proto::gossip::gossip_message::Content;

const PEERS: usize = 3;
const METADATA: &[u8] = b"updated-metadata";

/// `accept` with pass-through hands over verified messages from comm matching the predicate
/// (here: peer 1's alive message with its new metadata); `identity_info` and the stats see
/// every converged peer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_with_pass_through_and_identity_info() {
    init_tracing();
    let cluster = Cluster::start(PEERS, fast_gossip()).await;
    assert!(
        eventually(|| cluster.converged()).await,
        "{PEERS} peers did not converge within {WAIT:?}"
    );
    let about = cluster.nodes[1].pki_id();
    let mut watchers = Vec::new();
    for (i, node) in cluster.nodes.iter().enumerate().filter(|(i, _)| *i != 1) {
        let rx = node
            .accept(
                move |m| match &m.content {
                    Some(Content::AliveMsg(a)) => a.membership.as_ref().is_some_and(|mem| {
                        mem.pki_id.as_ref() == about.as_bytes() && mem.metadata.as_ref() == METADATA
                    }),
                    _ => false,
                },
                true,
            )
            .expect("accept");
        watchers.push((i, rx));
    }
    cluster.nodes[1]
        .update_metadata(Bytes::from_static(METADATA))
        .await
        .expect("update metadata");
    for (i, mut rx) in watchers {
        let got = tokio::time::timeout(WAIT, rx.recv())
            .await
            .unwrap_or_else(|_| panic!("peer {i} never saw peer 1's new metadata"))
            .expect("subscription open");
        assert!(matches!(got, Accepted::PassThrough(_)), "peer {i}: {got:?}");
    }
    let infos = cluster.nodes[0]
        .identity_info()
        .await
        .expect("identity info");
    for pki_id in cluster.pki_ids() {
        assert!(
            infos.iter().any(|info| info.pki_id == pki_id),
            "identity of {pki_id} unknown to peer 0"
        );
    }
    let stats = cluster.nodes[0].stats().await.expect("stats");
    assert!(stats.driver.messages_handled > 0);
    assert_eq!(stats.node.members_alive, PEERS - 1);
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_ends_subscriptions_and_calls_fail() {
    init_tracing();
    let cluster = Cluster::start(2, fast_gossip()).await;
    let node = cluster.nodes[0].clone();
    let mut events = node.events().expect("events");
    assert!(eventually(|| cluster.converged()).await);
    cluster.stop().await;
    // Queued events stay readable, then the stream ends.
    let drained =
        tokio::time::timeout(WAIT, async { while events.recv().await.is_some() {} }).await;
    assert!(drained.is_ok(), "event stream did not end after stop");
    assert!(node.peers().await.is_err());
    assert!(node.events().is_err());
    node.stop().await; // idempotent
}
