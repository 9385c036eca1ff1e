//! The ingress pipeline with its signature checks run on the verifier pool's threads, against
//! Fabric's golden vectors.

use std::sync::Arc;

use gossip_engine::crypto::Identity;
use gossip_engine::ingress::{IdentityStore, Ingress, IngressConfig, Reject};
use gossip_engine::pool::{PoolConfig, VerifierPool, VerifyJob};
use gossip_engine::types::PkiId;
use gossip_engine::wire;
use gossip_proto::gossip::Envelope;
use gossip_testkit::golden::{Golden, now};

const PEER0_ORG1: &str = "peer0.org1.example.com";

fn ingress(golden: &Golden) -> Ingress {
    let msp = Arc::new(golden.msp_manager());
    let store = Arc::new(IdentityStore::new(Arc::clone(&msp), 64));
    Ingress::new(IngressConfig::default(), msp, store)
}

fn pki(golden: &Golden, peer: &str) -> PkiId {
    Identity::from_serialized(golden.serialized_identity(peer))
        .expect("identity")
        .pki_id
}

fn envelope(golden: &Golden, name: &str) -> Envelope {
    wire::decode_envelope(golden.envelope_bytes(name)).expect(name)
}

#[test]
fn the_pool_is_shared_across_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<VerifierPool>();
}

#[test]
fn pipeline_through_the_verifier_pool() {
    let Some(golden) = Golden::load() else { return };
    let ingress = Arc::new(ingress(&golden));
    let pool = VerifierPool::new(&PoolConfig {
        workers_count: 2,
        queue_len_max: 64,
        batch_len_max: 4,
    })
    .expect("pool");
    let (tx, rx) = std::sync::mpsc::channel();
    // Learning peer0's identity first (from its alive message) lets its state info through.
    let names = [
        "alive_msg",
        "alive_msg_tampered_payload",
        "conn_probe",
        "data_msg",
    ];
    // Precheck everything before any job runs: the tampered alive message shares its seen-key with
    // the genuine one, so once the genuine copy is accepted a later precheck rightly says Duplicate.
    let prechecked: Vec<_> = names
        .iter()
        .map(|&name| {
            let p = ingress
                .precheck(pki(&golden, PEER0_ORG1), envelope(&golden, name), now())
                .expect(name);
            (name, p)
        })
        .collect();
    for (name, prechecked) in prechecked {
        let (ingress, tx) = (Arc::clone(&ingress), tx.clone());
        let job = VerifyJob::new(prechecked.checks().to_vec(), move |outcome| {
            tx.send((
                name,
                ingress.accept(prechecked, outcome, now()).map(|v| v.kind),
            ))
            .expect("send");
        });
        pool.submit(job).expect("room");
    }
    drop(tx);
    let mut outcomes: Vec<_> = rx.iter().collect();
    outcomes.sort_by_key(|(name, _)| *name);
    let reasons: Vec<_> = outcomes
        .iter()
        .map(|(n, r)| (*n, r.as_ref().map_err(Reject::reason).err()))
        .collect();
    assert_eq!(
        reasons,
        [
            ("alive_msg", None),
            ("alive_msg_tampered_payload", Some("bad_signature")),
            ("conn_probe", None),
            ("data_msg", None)
        ]
    );
    ingress
        .receive_inline(
            pki(&golden, PEER0_ORG1),
            envelope(&golden, "state_info"),
            now(),
        )
        .expect("learnt");
    assert_eq!(ingress.identities().len(), 2);
}
