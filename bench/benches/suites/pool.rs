//! The verifier pool: throughput of signature checks submitted from one thread and verified by
//! 1 or 2 worker threads, beside the same checks run inline.

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group};
use gossip_engine::crypto::{Sign, SigningKey};
use gossip_engine::ingress::SignatureCheck;
use gossip_engine::pool::{PoolConfig, VerifierPool, VerifyJob};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair};

/// Checks per iteration: one per simulated alive message.
const CHECKS_LEN: usize = 512;

fn checks() -> Vec<SignatureCheck> {
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &SystemRandom::new())
        .expect("key generation");
    let key = SigningKey::from_pkcs8_der(pkcs8.as_ref()).expect("key loads");
    (0..CHECKS_LEN)
        .map(|i| {
            // About the size of an alive message payload.
            let message = Bytes::from(format!("{i:0>280}"));
            let signature = key.sign(&message).expect("sign");
            SignatureCheck::envelope(key.public_key(), message, signature)
        })
        .collect()
}

/// Submits every check as its own job, then blocks until every callback has reported (a channel,
/// not a spin loop, so the waiting thread leaves the cores to the workers).
fn run_through_pool(pool: &VerifierPool, checks: &[SignatureCheck]) {
    let (done_tx, done_rx) = crossbeam_channel::bounded(checks.len());
    for check in checks {
        let job_tx = done_tx.clone();
        let job = VerifyJob::new(vec![check.clone()], move |outcome| {
            job_tx
                .send(outcome.is_ok())
                .expect("bench waits for every job");
        });
        if let Err(full) = pool.submit(job) {
            // The queue holds every job of an iteration; if not, verify here.
            let job = full.0;
            let ok = job.checks.iter().all(|c| c.run().is_ok());
            done_tx.send(ok).expect("bench waits");
        }
    }
    for _ in checks {
        assert!(done_rx.recv().expect("a result per job"));
    }
}

fn pool(c: &mut Criterion) {
    let checks = checks();
    let mut group = c.benchmark_group("verify_pool");
    group.throughput(Throughput::Elements(CHECKS_LEN as u64));
    group.bench_function("inline", |b| {
        b.iter(|| {
            checks
                .iter()
                .try_for_each(SignatureCheck::run)
                .expect("valid")
        })
    });
    for workers_count in [1, 2] {
        let pool = VerifierPool::new(&PoolConfig {
            workers_count,
            queue_len_max: 1024,
            batch_len_max: 32,
        })
        .expect("pool starts");
        group.bench_function(format!("workers_{workers_count}"), |b| {
            b.iter(|| run_through_pool(&pool, &checks))
        });
    }
    group.finish();
}

criterion_group!(benches, pool);
