//! The transport stage: block envelopes from one comm to another over loopback TCP with TLS, as
//! gossip sends them (gRPC framing, HTTP/2, rustls, the kernel's TCP path, the receiver's ingress
//! precheck and demux). Both comms run on one current-thread runtime, as a node's do, so the time
//! per batch is the CPU time of both ends together. Each iteration sends [`BATCH_LEN`] data
//! messages with new sequence numbers (a repeat would be dropped as seen) and waits until the
//! receiver's subscription has all of them.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group};
use gossip_engine::config::CommConfig;
use gossip_engine::crypto::MspManager;
use gossip_engine::ingress::{Ingress, IngressConfig};
use gossip_engine::{Comm, CommParams, Inbound, RemotePeer, TlsMaterial, clock};
use gossip_node::control;
use gossip_proto::gossip::Envelope;
use gossip_testkit::testpki::{TestPki, TestPkiSpec};
use prost::Message;

/// Envelopes per iteration; below the send lane's default bound of 200, so none is dropped.
const BATCH_LEN: u64 = 64;
/// Block data sizes sent: scenario A's 10 KiB, and a small block.
const BLOCK_LENS_BYTES: [usize; 2] = [10 * 1024, 256];
/// The channel the blocks are on.
const CHANNEL: &str = "benchchannel";
/// A bound on one batch, so a lost message fails the bench instead of hanging it.
const BATCH_WAIT: Duration = Duration::from_secs(20);

async fn start(pki: &TestPki, org: usize, msp: &Arc<MspManager>) -> Comm {
    let peer = &pki.orgs[org].peers[0];
    let params = CommParams {
        config: CommConfig {
            // A node on this machine checks signatures inline (loadgen's runtime choice).
            verifier_workers_count: Some(0),
            ..CommConfig::default()
        },
        listen: "127.0.0.1:0".parse().expect("addr"),
        signer: Arc::new(peer.signer().expect("signer")),
        ingress: Arc::new(Ingress::with_msp(IngressConfig::default(), msp.clone())),
        tls: Some(TlsMaterial {
            cert_chain_pem: peer.tls.cert_pem.clone(),
            key_pem: peer.tls.key_pem.clone(),
        }),
    };
    Comm::start(params).await.expect("comm starts")
}

/// Block `seq` as the injecting org leader gossips it (`control::block_message`): an unsigned
/// data message, tag CHAN_AND_ORG, carrying `block` (one block for every `seq`: the transport
/// does not look inside it).
fn block(seq: u64, block: &Bytes) -> Envelope {
    Envelope {
        payload: control::block_message(CHANNEL, seq, block.clone())
            .encode_to_vec()
            .into(),
        ..Default::default()
    }
}

/// Sends blocks `first..first + BATCH_LEN` and waits for all of them at the receiver.
async fn batch(from: &Comm, to: &[RemotePeer], sub: &Inbound, first: u64, data: &Bytes) {
    for seq in first..first + BATCH_LEN {
        from.send(block(seq, data), to);
    }
    for _ in 0..BATCH_LEN {
        tokio::time::timeout(BATCH_WAIT, sub.recv())
            .await
            .expect("every block arrives")
            .expect("subscription open");
    }
}

fn transport(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let pki = TestPki::generate(&TestPkiSpec::uniform(2, 1, clock::now().as_unix_secs()))
        .expect("test PKI");
    let msp = Arc::new(pki.msp_manager().expect("msp"));
    let (a, b) =
        runtime.block_on(async { (start(&pki, 0, &msp).await, start(&pki, 1, &msp).await) });
    let to_b = [RemotePeer {
        endpoint: b.local_addr().to_string(),
        pki_id: b.pki_id(),
    }];
    let sub = b.inbound();
    let mut next_seq = 0;

    let mut group = c.benchmark_group("transport/tls");
    group.measurement_time(Duration::from_secs(5));
    for len in BLOCK_LENS_BYTES {
        let data = control::build_block(0, len);
        group.throughput(Throughput::Elements(BATCH_LEN));
        group.bench_function(format!("block_{len}B_x{BATCH_LEN}"), |bench| {
            bench.iter(|| {
                runtime.block_on(batch(&a, &to_b, &sub, next_seq, &data));
                next_seq += BATCH_LEN;
            })
        });
    }
    group.finish();
    runtime.block_on(async {
        a.stop().await;
        b.stop().await;
    });
}

criterion_group!(benches, transport);
