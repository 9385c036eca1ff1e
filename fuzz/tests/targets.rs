//! Every fuzz target under proptest (256 cases per strategy, `PROPTEST_CASES` overrides):
//! arbitrary bytes, and structure-aware mutations of Fabric's golden messages (the kept corpus:
//! bit flips, truncations, splices of two messages, extreme varints; and for the handlers,
//! golden messages of unsigned kinds whose payload is mutated and re-wrapped, so that the
//! mutation gets past the signature check to the handler). The property of each is the target's
//! own: no panic, and its asserts (round trips, bounds) hold.
//!
//! `fuzz_long` (ignored) is the long run: `FUZZ_SECONDS` per target (default 60), `FUZZ_TARGET`
//! to pick one; panicking inputs are saved in `fuzz/artifacts/<target>/` (fuzz/README.md).

use std::time::Duration;

use bytes::Bytes;
use gossip_fuzz::mutate::{self, Rng};
use gossip_fuzz::targets::{self, is_unsigned, join_messages};
use gossip_fuzz::{TARGETS, corpus_dir, read_corpus, target};
use gossip_proto::gossip::{Envelope, GossipMessage};
use proptest::prelude::*;
use prost::Message;

fn corpus(name: &str) -> Vec<Vec<u8>> {
    let seeds = read_corpus(&corpus_dir(name));
    assert!(!seeds.is_empty(), "no kept corpus for {name}");
    seeds
}

/// A corpus entry mutated by the seeded mutator (the seed, entries and splice partner drawn by
/// proptest, so a failure shrinks and replays).
fn golden_mutation(name: &'static str) -> impl Strategy<Value = Vec<u8>> {
    let seeds = corpus(name);
    let n = seeds.len();
    (0..n, 0..n, any::<u64>(), 0..4u8).prop_map(move |(a, b, seed, extra)| {
        let mut rng = Rng::new(seed);
        let mut input = seeds[a].clone();
        for _ in 0..=extra {
            input = mutate::mutate(&mut rng, &input, &seeds[b]);
        }
        input
    })
}

/// The golden envelopes of unsigned kinds (data, pull, state transfer).
fn unsigned_goldens() -> Vec<GossipMessage> {
    corpus("wire")
        .iter()
        .filter_map(|e| Envelope::decode(e.as_slice()).ok())
        .filter_map(|e| GossipMessage::decode(e.payload).ok())
        .filter(is_unsigned)
        .collect()
}

/// Golden messages of unsigned kinds with their payload mutated and re-wrapped in an envelope,
/// one to four of them, framed for the node target.
fn handler_inputs() -> impl Strategy<Value = Vec<u8>> {
    let goldens = unsigned_goldens();
    assert!(!goldens.is_empty(), "no unsigned golden messages");
    let n = goldens.len();
    prop::collection::vec((0..n, 0..n, any::<u64>(), any::<bool>()), 1..=4).prop_map(move |picks| {
        let envelopes: Vec<Vec<u8>> = picks
            .iter()
            .map(|&(a, b, seed, keep)| {
                let payload = goldens[a].encode_to_vec();
                let payload = if keep {
                    payload
                } else {
                    let other = goldens[b].encode_to_vec();
                    mutate::mutate(&mut Rng::new(seed), &payload, &other)
                };
                Envelope {
                    payload: Bytes::from(payload),
                    signature: Bytes::new(),
                    secret_envelope: None,
                }
                .encode_to_vec()
            })
            .collect();
        let refs: Vec<&[u8]> = envelopes.iter().map(Vec::as_slice).collect();
        join_messages(&refs)
    })
}

fn arbitrary_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..2048)
}

macro_rules! target_props {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                use super::*;

                proptest! {
                    #[test]
                    fn arbitrary_bytes_never_panic(data in arbitrary_bytes()) {
                        targets::$name(&data);
                    }

                    #[test]
                    fn golden_mutations_never_panic(data in golden_mutation(stringify!($name))) {
                        targets::$name(&data);
                    }
                }
            }
        )*
    };
}

target_props!(
    wire,
    ingress,
    conn_establish,
    block,
    node,
    control,
    core_yaml
);

proptest! {
    /// Past the signature check: mutated golden data, pull and state messages reach the node's
    /// handlers, whose bounded state stays bounded.
    #[test]
    fn handlers_take_mutated_unsigned_messages(data in handler_inputs()) {
        targets::node(&data);
    }

    /// The control parser with lines of its own shape: JSON objects with known and unknown keys.
    #[test]
    fn control_requests_with_arbitrary_fields(
        op in prop::sample::select(vec![
            "join_channel", "inject_block", "subscribe", "peers", "peers_of_channel", "stats",
            "ledger_height", "shutdown", "nonsense",
        ]),
        channel in "[a-z]{0,8}",
        size in any::<u64>(),
        extra in "[ -~]{0,32}",
    ) {
        let line = format!(
            r#"{{"op":"{op}","channel":"{channel}","size_bytes":{size},"seq":{size},"x":"{}"}}"#,
            extra.replace(['"', '\\'], "")
        );
        targets::control(line.as_bytes());
    }
}

/// Every kept corpus entry runs cleanly as it is (the seeds are valid inputs).
#[test]
fn the_kept_corpus_runs_cleanly() {
    for t in TARGETS {
        for seed in corpus(t.name) {
            (t.run)(&seed);
        }
    }
}

/// The node target's seeds get past ingress to the handlers (else its properties test little).
#[test]
fn the_node_seeds_reach_the_handlers() {
    for (i, seed) in corpus("node").iter().enumerate() {
        assert!(
            targets::node_run(seed) > 0,
            "node seed {i} never reached a handler"
        );
    }
}

/// The long run (`cargo test -p gossip-fuzz --test targets -- --ignored fuzz_long --nocapture`): `FUZZ_SECONDS` per target, `FUZZ_TARGET` for one, `FUZZ_SEED` for another
/// sequence. Fails when an input panicked a target, naming the saved inputs.
#[test]
#[ignore = "long run: FUZZ_SECONDS per target"]
fn fuzz_long() {
    let seconds: u64 = std::env::var("FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let seed: u64 = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let only = std::env::var("FUZZ_TARGET").ok();
    let picked: Vec<_> = match &only {
        Some(name) => vec![target(name).unwrap_or_else(|| panic!("no target {name}"))],
        None => TARGETS.to_vec(),
    };
    let artifacts = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("artifacts");
    let mut crashes = Vec::new();
    for t in picked {
        let report = mutate::run(
            t.run,
            &read_corpus(&corpus_dir(t.name)),
            Duration::from_secs(seconds),
            seed,
            &artifacts.join(t.name),
        );
        println!(
            "fuzz_long {}: {} inputs in {seconds} s, {} crashes",
            t.name,
            report.inputs,
            report.crashes.len()
        );
        crashes.extend(report.crashes);
    }
    assert!(crashes.is_empty(), "inputs that panicked: {crashes:?}");
}
