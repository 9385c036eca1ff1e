//! Instruction counts of the hot path, for the CI gate (ARCHITECTURE.md testing tier 7).
//!
//! Each [`Workload`] sets itself up, then runs the measured code inside a function whose name
//! holds a unique marker (`icount_marker_<name>`, `#[inline(never)]`). The `icount` binary runs
//! one workload per process under
//! `valgrind --tool=callgrind --collect-atstart=no --toggle-collect=*icount_marker_<name>*`, so
//! only what runs inside the marker (and everything it calls) is counted, not the setup; it reads
//! the total from callgrind's output file (`summary:` / `totals:` line) and divides it by the
//! operations the workload reports (blocks, messages, calls).
//!
//! The counts are nearly deterministic: the inputs are fixed and every simulated run is seeded,
//! but `std`'s `HashMap`s (ingress seen cache, verified-signature cache, identity store) hash with
//! a per-process random key, and ring's ECDSA nonces are random (signing is constant-time; the
//! nonce changes a DER length byte at most). `ingress_block_authenticated` also generates its
//! orderer's keys and certificates afresh in each process, so its blocks' lengths may differ by a
//! few bytes between runs.

use std::cell::Cell;
use std::collections::VecDeque;
use std::hint::black_box;
use std::path::Path;
use std::process::Command as Process;
use std::sync::Arc;
use std::time::Duration;

use gossip_engine::config::GossipConfig;
use gossip_engine::egress::{
    Emitter, EmitterConfig, InOrg, NotSame, Partition, combine, select_peers,
};
use gossip_engine::event::{Command, Event, IoRequest, IoResult, Transmit};
use gossip_engine::ingress::{IdentityChange, ReceivedMessage, Verified};
use gossip_engine::time::Instant;
use gossip_engine::types::{NetworkMember, PkiId};
use gossip_engine::wire::ContentKind;
use gossip_harness::engine::EngineNode;
use gossip_harness::node::{NodeSetup, SimNode, channel_bytes};
use gossip_harness::scenario::{Nodes, Op, Scenario, secs};
use gossip_harness::sim::Sim;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::egress::{Emitted, members, mixed_batch};

mod ingress;

pub use ingress::INGRESS_BLOCKS;
use ingress::{run_ingress_block, run_ingress_block_authenticated};

/// The prefix of every marker function's name.
pub const MARKER_PREFIX: &str = "icount_marker_";

/// One measured workload.
#[derive(Clone, Copy, Debug)]
pub struct Workload {
    /// Its name: the figures' prefix and the marker's suffix.
    pub name: &'static str,
    /// What one operation is.
    pub op: &'static str,
    /// Sets up, runs the marked code, and returns how many operations it ran.
    pub run: fn() -> u64,
}

impl Workload {
    /// The callgrind toggle that counts this workload's marker and what it calls.
    pub fn toggle(&self) -> String {
        format!("*{MARKER_PREFIX}{}*", self.name)
    }
}

/// Every workload, in report order.
///
/// A toggle may match another workload's marker too (`*icount_marker_ingress_block*` matches
/// `icount_marker_ingress_block_authenticated`): harmless, as each process runs one workload.
pub const WORKLOADS: [Workload; 6] = [
    Workload {
        name: "ingress_block",
        op: "block envelope: prost decode from the received bytes, precheck, accept",
        run: run_ingress_block,
    },
    Workload {
        name: "ingress_block_authenticated",
        op: "orderer-signed block envelope: prost decode, precheck with an OrdererBlockPolicy \
             (VerifyBlock's structure and data hash checks, signer lookup, signed bytes, \
             verified-cache lookup), accept; the ECDSA verification itself runs before the \
             marker (ring's cost, in the criterion crypto suite)",
        run: run_ingress_block_authenticated,
    },
    Workload {
        name: "egress_batch",
        op: "item of a mixed batch of 1000: emitter add and flush, partition, then per block \
             SelectPeers(3) of 100 members through InOrg+NotSame",
        run: run_egress_batch,
    },
    Workload {
        name: "node_block",
        op: "data message handled by a Node (handle_message: store, deliver, forward) plus the \
             transmits it yields at once; 8 peers, 20 blocks from peer 0, Fabric's defaults",
        run: run_node_block,
    },
    Workload {
        name: "stateinfo_receive",
        op: "StateInfo, StateInfo pull request or snapshot handled by a Node (plus its at-once \
             transmits), over one 8 s round after every peer changed its chaincodes",
        run: run_stateinfo_round,
    },
    Workload {
        name: "timers",
        op: "handle_timeout call (StateInfo publish and pull, alive heartbeats, emitter flush) \
             plus its transmits, same round",
        run: run_stateinfo_round,
    },
];

/// The workload of a name.
pub fn workload(name: &str) -> Option<&'static Workload> {
    WORKLOADS.iter().find(|w| w.name == name)
}

// ---- 1. ingress: in `ingress.rs` --------------------------------------------------------------

// ---- 2. egress -------------------------------------------------------------------------------

/// Members peers are selected from.
pub const EGRESS_MEMBERS: usize = 100;

struct Egress {
    emitter: Emitter<Emitted>,
    flushed: Vec<Emitted>,
    partition: Partition,
    pool: Vec<NetworkMember>,
    rng: ChaCha8Rng,
}

impl Egress {
    fn batch(&mut self, batch: &[Emitted]) -> usize {
        let now = Instant::ZERO;
        self.flushed.clear();
        for item in batch {
            self.emitter.add(item.clone(), now, &mut self.flushed);
        }
        self.emitter.handle_timeout(now, &mut self.flushed);
        self.partition.split(&self.flushed);
        let filter = combine(InOrg("Org1MSP".into()), NotSame(self.pool[0].pki_id));
        let mut picked = 0;
        let mut out = Vec::with_capacity(3);
        for group in &self.partition.blocks {
            for _ in &group.indices {
                out.clear();
                picked += select_peers(3, &self.pool, &filter, &mut self.rng, &mut out);
            }
        }
        picked
    }
}

#[inline(never)]
fn icount_marker_egress_batch(egress: &mut Egress, batch: &[Emitted]) -> usize {
    egress.batch(batch)
}

fn run_egress_batch() -> u64 {
    let batch = mixed_batch();
    let mut egress = Egress {
        emitter: Emitter::new(EmitterConfig::default()),
        flushed: Vec::new(),
        partition: Partition::default(),
        pool: members(EGRESS_MEMBERS),
        rng: ChaCha8Rng::seed_from_u64(1),
    };
    // A first batch outside the marker grows every buffer, so the measured one allocates as a
    // long-running node's does.
    black_box(egress.batch(&batch));
    let picked = icount_marker_egress_batch(&mut egress, black_box(&batch));
    assert!(picked > 0, "blocks were routed");
    batch.len() as u64
}

// ---- 3. and 4. a Node in a simulated cluster --------------------------------------------------

thread_local! {
    /// Whether the StateInfo round is on (its markers count only then).
    static ROUND: Cell<bool> = const { Cell::new(false) };
    /// Calls of each marker: node_block, stateinfo_receive, timers.
    static CALLS: Cell<[u64; 3]> = const { Cell::new([0; 3]) };
}

fn count_call(i: usize) {
    CALLS.with(|c| {
        let mut calls = c.get();
        calls[i] += 1;
        c.set(calls);
    });
}

/// The engine's node, with the measured calls routed through marker functions. The transmits a
/// measured call yields are drained inside the marker and handed to the simulator afterwards.
pub struct Tap {
    node: EngineNode,
    pending: VecDeque<Transmit>,
}

fn drain(node: &mut EngineNode, pending: &mut VecDeque<Transmit>) {
    while let Some(t) = node.poll_transmit() {
        pending.push_back(t);
    }
}

// Each marker counts its own calls: besides the count, this keeps their bodies distinct, so the
// optimiser cannot fold two markers into one symbol (it did, for two identical bodies). Each
// returns the number of pending transmits, so `drain` is a call inside the marker, not a tail
// jump out of it (callgrind may take a jump to another function as leaving the marker).

#[inline(never)]
fn icount_marker_node_block(
    tap: &mut Tap,
    message: Verified<ReceivedMessage>,
    now: Instant,
) -> usize {
    count_call(0);
    tap.node.handle_message(message, now);
    drain(&mut tap.node, &mut tap.pending);
    black_box(tap.pending.len())
}

#[inline(never)]
fn icount_marker_stateinfo_receive(
    tap: &mut Tap,
    message: Verified<ReceivedMessage>,
    now: Instant,
) -> usize {
    count_call(1);
    tap.node.handle_message(message, now);
    drain(&mut tap.node, &mut tap.pending);
    black_box(tap.pending.len())
}

#[inline(never)]
fn icount_marker_timers(tap: &mut Tap, now: Instant) -> usize {
    count_call(2);
    tap.node.handle_timeout(now);
    drain(&mut tap.node, &mut tap.pending);
    black_box(tap.pending.len())
}

impl SimNode for Tap {
    fn start(setup: NodeSetup, now: Instant) -> Self {
        Tap {
            node: EngineNode::start(setup, now),
            pending: VecDeque::new(),
        }
    }

    fn handle_message(&mut self, message: Verified<ReceivedMessage>, now: Instant) {
        let round = ROUND.with(Cell::get);
        match message.kind {
            ContentKind::DataMsg => {
                icount_marker_node_block(self, message, now);
            }
            ContentKind::StateInfo | ContentKind::StateSnapshot | ContentKind::StateInfoPullReq
                if round =>
            {
                icount_marker_stateinfo_receive(self, message, now);
            }
            _ => self.node.handle_message(message, now),
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        if ROUND.with(Cell::get) {
            icount_marker_timers(self, now);
        } else {
            self.node.handle_timeout(now);
        }
    }

    fn handle_command(&mut self, command: Command, now: Instant) {
        self.node.handle_command(command, now);
    }

    fn handle_identity(&mut self, change: IdentityChange, now: Instant) {
        self.node.handle_identity(change, now);
    }

    fn handle_io(&mut self, result: IoResult, now: Instant) {
        self.node.handle_io(result, now);
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.pending
            .pop_front()
            .or_else(|| self.node.poll_transmit())
    }

    fn poll_event(&mut self) -> Option<Event> {
        self.node.poll_event()
    }

    fn poll_io(&mut self) -> Option<IoRequest> {
        self.node.poll_io()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.node.poll_timeout()
    }

    fn alive_members(&self) -> Vec<PkiId> {
        self.node.alive_members()
    }

    fn dead_members(&self) -> Vec<PkiId> {
        self.node.dead_members()
    }

    fn channel_members(&self, channel: &[u8]) -> Vec<PkiId> {
        self.node.channel_members(channel)
    }
}

/// Peers of the simulated cluster.
pub const SIM_PEERS: usize = 8;
/// Blocks peer 0 gossips in `node_block`.
pub const SIM_BLOCKS: u64 = 20;
/// The seed of every simulated run.
pub const SIM_SEED: u64 = 1;

/// One org of [`SIM_PEERS`] at Fabric's defaults, settled: membership, then channel A joined by
/// all and its StateInfo spread (the gate scenarios' settling times).
fn settled() -> Scenario<Tap> {
    Scenario::new("icount")
        .orgs(1)
        .peers_per_org(SIM_PEERS)
        .gossip(GossipConfig::default())
        .step(Op::Wait(gossip_harness::gate::MEMBERSHIP_SETTLE))
        .step(Op::JoinChan {
            channel: "A",
            nodes: Nodes::All,
        })
        .step(Op::Wait(gossip_harness::gate::CHANNEL_SETTLE))
}

fn run_checked(scenario: &Scenario<Tap>) {
    let (outcome, _) = scenario.run(SIM_SEED);
    assert!(outcome.violations.is_empty(), "{:?}", outcome.violations);
}

fn run_node_block() -> u64 {
    let scenario = settled()
        .step(Op::InjectBlocks {
            from: 0,
            channel: "A",
            count: SIM_BLOCKS,
        })
        .step(Op::Wait(secs(2)));
    run_checked(&scenario);
    CALLS.with(Cell::get)[0]
}

fn run_stateinfo_round() -> u64 {
    let round = |on: bool| {
        Op::Custom(Arc::new(move |_: &mut Sim<Tap>| {
            ROUND.with(|r| r.set(on));
            Ok(())
        }))
    };
    let chaincodes = Op::Custom(Arc::new(|sim: &mut Sim<Tap>| {
        for node in 0..sim.len() {
            let command = Command::UpdateChaincodes {
                channel: channel_bytes("A"),
                chaincodes: vec![("mycc".into(), "1.0".into())],
            };
            sim.command_in(Duration::ZERO, node, command);
        }
        Ok(())
    }));
    let scenario = settled()
        .step(chaincodes)
        .step(round(true))
        // One publish and one pull interval (4 s each at Fabric's defaults).
        .step(Op::Wait(secs(8)))
        .step(round(false));
    run_checked(&scenario);
    let calls = CALLS.with(Cell::get);
    // The binary runs one workload per process; which marker callgrind counts decides which
    // of the two this is. Both counts are printed; the driver picks by name.
    println!("stateinfo_receive_ops={}", calls[1]);
    println!("timers_ops={}", calls[2]);
    calls[1]
}

// ---- the driver --------------------------------------------------------------------------------

/// Measuring a workload failed.
#[derive(Debug, thiserror::Error)]
pub enum IcountError {
    /// valgrind could not be started.
    #[error("starting valgrind: {0} (valgrind --tool=callgrind must be installed)")]
    Spawn(std::io::Error),
    /// valgrind or the workload failed.
    #[error("workload {workload} under callgrind exited with {status}: {stderr}")]
    Failed {
        /// The workload.
        workload: &'static str,
        /// Its exit status.
        status: std::process::ExitStatus,
        /// The end of its standard error.
        stderr: String,
    },
    /// The callgrind output file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The callgrind output has no total, or the workload printed no operation count.
    #[error("{0}")]
    Parse(String),
}

/// What one workload measured.
#[derive(Clone, Debug, PartialEq)]
pub struct Measurement {
    /// The workload.
    pub name: &'static str,
    /// Instructions inside the marker (callgrind's `Ir` total).
    pub instructions: u64,
    /// Operations the workload ran.
    pub ops: u64,
}

impl Measurement {
    /// Instructions per operation.
    pub fn per_op(&self) -> f64 {
        self.instructions as f64 / self.ops.max(1) as f64
    }
}

/// The total `Ir` of a callgrind output file: its `summary:` line, else its `totals:` line.
pub fn callgrind_total(text: &str) -> Option<u64> {
    let value = |prefix: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(prefix))
            .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
    };
    value("summary:").or_else(|| value("totals:"))
}

/// The operation count a workload process printed: `<name>_ops=N`, else its `ops=N` line.
pub fn printed_ops(stdout: &str, name: &str) -> Option<u64> {
    let find = |prefix: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(prefix)?.trim().parse().ok())
    };
    find(&format!("{name}_ops=")).or_else(|| find("ops="))
}

/// Runs `exe --run <workload>` under callgrind, counting its marker only; the output file goes
/// to `dir`.
pub fn measure(exe: &Path, workload: &Workload, dir: &Path) -> Result<Measurement, IcountError> {
    let out_file = dir.join(format!("callgrind.{}.out", workload.name));
    let output = Process::new("valgrind")
        .arg("--tool=callgrind")
        .arg("--collect-atstart=no")
        .arg(format!("--toggle-collect={}", workload.toggle()))
        .arg(format!("--callgrind-out-file={}", out_file.display()))
        .arg(exe)
        .args(["--run", workload.name])
        .output()
        .map_err(IcountError::Spawn)?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: String = stderr.lines().rev().take(20).collect::<Vec<_>>().join("\n");
        return Err(IcountError::Failed {
            workload: workload.name,
            status: output.status,
            stderr: tail,
        });
    }
    let text = std::fs::read_to_string(&out_file).map_err(|source| IcountError::Read {
        path: out_file.display().to_string(),
        source,
    })?;
    let instructions = callgrind_total(&text).ok_or_else(|| {
        IcountError::Parse(format!("{}: no summary or totals line", out_file.display()))
    })?;
    let ops = printed_ops(&stdout, workload.name).ok_or_else(|| {
        IcountError::Parse(format!("workload {} printed no ops count", workload.name))
    })?;
    // A workload that stopped doing its work must fail the gate, not read as an improvement.
    if ops == 0 || instructions == 0 {
        return Err(IcountError::Parse(format!(
            "workload {} ran no operation ({ops} ops, {instructions} instructions)",
            workload.name
        )));
    }
    Ok(Measurement {
        name: workload.name,
        instructions,
        ops,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_and_ops_parse() {
        let out =
            "version: 1\ncreator: callgrind-3.19.0\nevents: Ir\nsummary: 123456\n\ntotals: 99\n";
        assert_eq!(callgrind_total(out), Some(123_456));
        assert_eq!(callgrind_total("events: Ir\ntotals: 42\n"), Some(42));
        assert_eq!(callgrind_total("events: Ir\n"), None);
        let stdout = "stateinfo_receive_ops=12\ntimers_ops=40\n";
        assert_eq!(printed_ops(stdout, "timers"), Some(40));
        assert_eq!(printed_ops("ops=7\n", "egress_batch"), Some(7));
        assert_eq!(printed_ops("", "x"), None);
    }

    #[test]
    fn names_are_unique_and_toggles_name_their_marker() {
        for (i, w) in WORKLOADS.iter().enumerate() {
            assert!(WORKLOADS[..i].iter().all(|o| o.name != w.name));
            assert_eq!(workload(w.name).map(|o| o.name), Some(w.name));
            assert_eq!(w.toggle(), format!("*icount_marker_{}*", w.name));
        }
    }

    #[test]
    fn ingress_and_egress_workloads_run() {
        assert_eq!(run_ingress_block(), INGRESS_BLOCKS);
        assert_eq!(run_ingress_block_authenticated(), INGRESS_BLOCKS);
        assert_eq!(run_egress_batch(), crate::egress::BATCH_LEN as u64);
    }
}
