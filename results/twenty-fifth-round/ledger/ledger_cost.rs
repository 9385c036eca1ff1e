//! CPU per committed block by batch size (twenty-fifth round). Copy to
//! engine/node/examples/ledger_cost.rs and run
//! `cargo run --release -p gossip-node --example ledger_cost`.
use bytes::Bytes;
use gossip_engine::ledger::Ledger;
use gossip_proto::gossip::Payload;
use std::time::Instant;

/// This thread's time on CPU (schedstat, ns), in seconds.
fn cpu_s() -> f64 {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap();
    s.split_whitespace().next().unwrap().parse::<f64>().unwrap() / 1e9
}

fn main() {
    for batch in [1usize, 5, 20, 40, 80] {
        let dir = tempfile::tempdir().unwrap();
        let l = gossip_node::ledger::RedbLedger::open(dir.path()).unwrap();
        let total = 8_000usize;
        let (c0, w0) = (cpu_s(), Instant::now());
        let mut seq = 1u64;
        while (seq as usize) <= total {
            let payloads: Vec<Payload> = (0..batch)
                .map(|i| Payload {
                    seq_num: seq + i as u64,
                    data: Bytes::from(vec![7u8; 10_240]),
                    ..Default::default()
                })
                .collect();
            l.commit_batch(b"ch", &payloads).unwrap();
            seq += batch as u64;
        }
        let (c, w) = (cpu_s() - c0, w0.elapsed().as_secs_f64());
        println!(
            "batch {batch:3}: cpu {:6.1} us/block, wall {:6.1} us/block, {:.2} ms cpu/commit",
            c * 1e6 / total as f64,
            w * 1e6 / total as f64,
            c * 1e3 / (total / batch) as f64
        );
    }
}
