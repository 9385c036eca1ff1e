//! ECDSA P-256 sign and verify (with Fabric's low-S check) over a 300-byte alive payload, envelope
//! verification with a secret, identity parse and validation, and the SHA-256 PKI-ID. Throughput is
//! one operation per iteration, so criterion reports operations per second.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group};
use gossip_bench::{Fixture, NOW_UNIX_S, alive_payload_of_len, signed_alive};
use gossip_engine::crypto::envelope::verify_envelope;
use gossip_engine::crypto::{Identity, pki_id_of};

/// The alive payload size the sign and verify benchmarks use.
const PAYLOAD_LEN_BYTES: usize = 300;

fn crypto(c: &mut Criterion) {
    let fx = Fixture::new();
    let signer = fx.signer();
    let key = signer.identity().public_key().clone();
    let payload = alive_payload_of_len(signer, PAYLOAD_LEN_BYTES);
    let signature = signer.sign(&payload).expect("signs");
    let alive = signed_alive(signer).expect("signs");
    let identity = signer.identity().clone();

    let mut ecdsa = c.benchmark_group("ecdsa_p256");
    ecdsa.throughput(Throughput::Elements(1));
    ecdsa.bench_function("sign_300B", |b| {
        b.iter(|| signer.sign(black_box(&payload)).expect("signs"))
    });
    ecdsa.bench_function("verify_300B_low_s", |b| {
        b.iter(|| {
            key.verify(black_box(&payload), black_box(&signature))
                .expect("verifies")
        })
    });
    ecdsa.bench_function("verify_alive_envelope_with_secret", |b| {
        b.iter(|| verify_envelope(black_box(&alive), &key).expect("verifies"))
    });
    ecdsa.finish();

    let mut ids = c.benchmark_group("identity");
    ids.throughput(Throughput::Elements(1));
    ids.bench_function("parse", |b| {
        b.iter(|| {
            Identity::from_serialized(black_box(identity.serialized.clone())).expect("parses")
        })
    });
    ids.bench_function("validate", |b| {
        b.iter(|| {
            fx.msp
                .validate(black_box(&identity), NOW_UNIX_S)
                .expect("validates")
        })
    });
    ids.bench_function("parse_and_validate", |b| {
        b.iter(|| {
            let parsed =
                Identity::from_serialized(black_box(identity.serialized.clone())).expect("parses");
            fx.msp.validate(&parsed, NOW_UNIX_S).expect("validates");
            parsed
        })
    });
    ids.bench_function("pki_id_sha256", |b| {
        b.iter(|| pki_id_of(black_box(&identity.mspid), black_box(&identity.id_bytes)))
    });
    ids.finish();
}

criterion_group!(benches, crypto);
