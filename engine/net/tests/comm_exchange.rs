//! Message exchange: both ways over mutual TLS and plaintext, 1000 concurrent sends, and overflow
//! counting with a tiny send buffer and a receiver that never drains.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;

use common::*;
use gossip_engine::config::CommConfig;

async fn exchange_both_ways(tls: bool) {
    init_tracing();
    let pki = pki();
    let a = start_peer(&pki, 0, 0, tls, CommConfig::for_test()).await;
    let b = start_peer(&pki, 1, 0, tls, CommConfig::for_test()).await;
    let sub_a = a.inbound();
    let sub_b = b.inbound();

    a.send(data_envelope(1), &[remote(&b)]);
    let got = recv(&sub_b).await;
    assert_eq!(seq_of(&got), Some(1));
    assert_eq!(got.from, a.pki_id());

    b.send(data_envelope(2), &[remote(&a)]);
    let got = recv(&sub_a).await;
    assert_eq!(seq_of(&got), Some(2));
    assert_eq!(got.from, b.pki_id());

    // B answered over A's inbound connection: one connection in all.
    assert_eq!(a.stats().connections_opened, 1);
    assert_eq!(b.stats().connections_opened, 1);
    assert_eq!(a.connected_peers(), vec![b.pki_id()]);
    assert_eq!(b.connected_peers(), vec![a.pki_id()]);
    assert!(a.stats().messages_sent >= 1 && b.stats().messages_received >= 1);
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_peers_exchange_both_ways_over_mutual_tls() {
    exchange_both_ways(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_peers_exchange_both_ways_in_plaintext() {
    exchange_both_ways(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_concurrent_sends_are_all_delivered() {
    init_tracing();
    const SENDS: u64 = 1000;
    let pki = pki();
    let config = CommConfig {
        send_buff_len_max: 2048,
        inbound_queue_len_max: 2048,
        ..CommConfig::for_test()
    };
    let a = Arc::new(start_peer(&pki, 0, 0, true, config.clone()).await);
    let b = start_peer(&pki, 1, 0, true, config).await;
    let sub_b = b.inbound();
    let target = remote(&b);
    let tasks: Vec<_> = (0..SENDS)
        .map(|seq| {
            let (a, target) = (a.clone(), target.clone());
            tokio::spawn(async move { a.send(data_envelope(seq), &[target]) })
        })
        .collect();
    for task in tasks {
        task.await.expect("send task");
    }
    let mut seen = BTreeSet::new();
    while (seen.len() as u64) < SENDS {
        seen.insert(seq_of(&recv(&sub_b).await).expect("data message"));
    }
    assert_eq!(seen, (0..SENDS).collect());
    assert_eq!(a.stats().overflow_count, 0);
    assert_eq!(a.stats().connections_opened, 1);
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_send_buffer_drops_and_counts_without_blocking() {
    init_tracing();
    let pki = pki();
    let sender_config = CommConfig {
        send_buff_len_max: 1,
        ..CommConfig::for_test()
    };
    // The receiver never drains: its subscriber queue and inbound queue hold one message each.
    let receiver_config = CommConfig {
        inbound_queue_len_max: 1,
        ..CommConfig::for_test()
    };
    let a = start_peer(&pki, 0, 0, true, sender_config).await;
    let b = start_peer(&pki, 1, 0, true, receiver_config).await;
    let _never_read = b.inbound();
    let target = remote(&b);
    a.send_blocking(data_envelope(0), &target)
        .await
        .expect("connection established");

    // 256 KiB envelopes: HTTP/2 flow control stalls the writer once the receiver stops reading.
    let blob = bytes::Bytes::from(vec![7u8; 256 * 1024]);
    let mut sent = 0u64;
    for seq in 1..=400u64 {
        // `send` is a plain function: it cannot wait, so finishing this loop shows it never blocked.
        a.send(
            big_data_envelope(seq, blob.clone()),
            std::slice::from_ref(&target),
        );
        sent += 1;
    }
    assert_eq!(sent, 400);
    assert!(
        eventually(|| a.stats().overflow_count > 0).await,
        "overflow counted: {:?}",
        a.stats()
    );
    let stats = a.stats();
    assert!(
        stats
            .overflow_by_peer
            .get(&b.pki_id())
            .copied()
            .unwrap_or(0)
            > 0,
        "{stats:?}"
    );
    a.stop().await;
    b.stop().await;
}

fn big_data_envelope(seq: u64, blob: bytes::Bytes) -> gossip_proto::gossip::Envelope {
    use gossip_proto::gossip::{DataMessage, GossipMessage, Payload, gossip_message};
    use prost::Message;
    let message = GossipMessage {
        nonce: 0,
        channel: bytes::Bytes::from_static(b"testchannel"),
        tag: gossip_message::Tag::ChanAndOrg as i32,
        content: Some(gossip_message::Content::DataMsg(DataMessage {
            payload: Some(Payload {
                seq_num: seq,
                data: blob,
                private_data: vec![],
            }),
        })),
    };
    gossip_proto::gossip::Envelope {
        payload: message.encode_to_vec().into(),
        ..Default::default()
    }
}

/// A signed alive message verifies at the receiver with the identity its handshake stored; a
/// forged one (signed by another key) is rejected and counted, and the connection stays up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_messages_verify_with_the_handshake_identity() {
    use bytes::Bytes;
    use gossip_engine::crypto::envelope::sign_envelope;
    use gossip_proto::gossip::gossip_message::{Content, Tag};
    use gossip_proto::gossip::{AliveMessage, GossipMessage, Member, PeerTime};
    use prost::Message;

    init_tracing();
    let pki = pki();
    let a = start_peer(&pki, 0, 0, true, CommConfig::for_test()).await;
    let b = start_peer(&pki, 1, 0, true, CommConfig::for_test()).await;
    let sub_b = b.inbound();
    let alive = |seq: u64| -> Bytes {
        GossipMessage {
            nonce: 0,
            channel: Bytes::new(),
            tag: Tag::Empty as i32,
            content: Some(Content::AliveMsg(AliveMessage {
                membership: Some(Member {
                    endpoint: a.local_addr().to_string(),
                    metadata: Bytes::new(),
                    pki_id: Bytes::copy_from_slice(a.pki_id().as_bytes()),
                }),
                timestamp: Some(PeerTime {
                    inc_num: 1,
                    seq_num: seq,
                }),
                identity: Bytes::new(),
            })),
        }
        .encode_to_vec()
        .into()
    };
    let a_signer = signer_of(&pki.orgs[0].peers[0]);
    let forger = signer_of(&pki.orgs[0].peers[1]);

    // Forged: claims A's PKI-ID but is signed by another peer's key.
    let forged = sign_envelope(alive(1), forger.key()).expect("sign");
    a.send(forged, &[remote(&b)]);
    let genuine = sign_envelope(alive(2), a_signer.key()).expect("sign");
    a.send(genuine, &[remote(&b)]);

    let got = recv(&sub_b).await;
    let Some(Content::AliveMsg(alive)) = &got.message.content else {
        panic!("expected the alive message, got {:?}", got.message.content);
    };
    assert_eq!(
        alive.timestamp.as_ref().map(|t| t.seq_num),
        Some(2),
        "only the genuine one"
    );
    // The two sends may take either order on the wire; wait for the forgery's verdict.
    assert!(eventually(|| b.stats().rejects_of("bad_signature") == 1).await);
    // B runs a verifier pool (one thread per core), but a message verified while no other is
    // being verified is checked on its connection task.
    assert!(
        b.stats().verified_inline_uncontended >= 1,
        "{:?}",
        b.stats()
    );
    assert!(
        sub_b.try_recv().is_none(),
        "the forgery never reaches a subscriber"
    );
    assert_eq!(
        b.connected_peers(),
        vec![a.pki_id()],
        "a bad signature does not close the link"
    );
    a.stop().await;
    b.stop().await;
}

/// A data envelope whose payload carries `pad_len` extra bytes.
fn padded_envelope(seq: u64, pad_len: usize) -> gossip_proto::gossip::Envelope {
    use prost::Message;
    let mut envelope = data_envelope(seq);
    let mut message =
        gossip_proto::gossip::GossipMessage::decode(envelope.payload.clone()).expect("decodes");
    if let Some(gossip_proto::gossip::gossip_message::Content::DataMsg(d)) = &mut message.content
        && let Some(p) = &mut d.payload
    {
        p.data = vec![7u8; pad_len].into();
    }
    envelope.payload = message.encode_to_vec().into();
    envelope
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversize_send_is_dropped_and_an_oversize_receipt_closes_the_connection() {
    init_tracing();
    let pki = pki();
    const LIMIT: usize = 16 * 1024;
    let limited = CommConfig {
        send_message_len_max: LIMIT,
        recv_message_len_max: LIMIT,
        ..CommConfig::for_test()
    };
    let a = start_peer(&pki, 0, 0, true, limited.clone()).await;
    let b = start_peer(&pki, 1, 0, true, limited).await;
    let c = start_peer(&pki, 0, 1, true, CommConfig::for_test()).await;
    let sub_b = b.inbound();

    // Over A's send limit: not sent, counted; the connection stays up for what follows. (Two
    // sends to a peer not yet connected each wait for the dial on their own task, so they may
    // leave in either order.)
    a.send(padded_envelope(1, 2 * LIMIT), &[remote(&b)]);
    a.send(padded_envelope(2, LIMIT / 2), &[remote(&b)]);
    assert_eq!(seq_of(&recv(&sub_b).await), Some(2));
    assert!(eventually(|| a.stats().rejects.get("send_oversize") == Some(&1)).await);
    assert_eq!(b.stats().rejects.get("oversize"), None);

    // C has no such send limit: B refuses the message from its length prefix and drops C.
    c.send(padded_envelope(3, LIMIT / 2), &[remote(&b)]);
    assert_eq!(seq_of(&recv(&sub_b).await), Some(3));
    c.send(padded_envelope(4, 2 * LIMIT), &[remote(&b)]);
    assert!(eventually(|| b.stats().rejects.get("oversize") == Some(&1)).await);
    assert!(eventually(|| !b.connected_peers().contains(&c.pki_id())).await);
    assert!(b.connected_peers().contains(&a.pki_id()));
    a.stop().await;
    b.stop().await;
    c.stop().await;
}
