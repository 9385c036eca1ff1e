//! `loadgen`: drives local clusters of gossip peers and writes reports to `results/`.
//!
//! Subcommands:
//! - `pki`: generate a test PKI (org CAs, peer enrollment and TLS certificates, admins, NodeOUs
//!   `config.yaml`, and the orderer org `OrdererMSP` with one orderer) in cryptogen's folder
//!   layout, usable by gossip-node and by a Fabric peer alike. Prints each peer's and the
//!   orderer's MSP id, name and PKI-ID.
//! - `run [SCENARIO.toml]`: launch a local cluster, inject blocks at a constant rate, measure, and
//!   write `results/<name>/{run.json,timeseries.csv,latency.hgrm,report.html}`.
//! - `sweep SCENARIO.toml --rates 100,200,400`: one run per rate, a sustainability verdict per
//!   rate, `results/<name>/{sweep.json,sweep.md}` and the max sustainable rate.
//! - `compare BASE.json NEW.json --threshold NAME=+10%`: difference table, non-zero exit on a
//!   regression.
//! - `sim-gate`: the CI gate's deterministic figures: each simulator scenario of
//!   `gossip_harness::gate` over many seeds, medians and spread.
//! - `sim-figures`: deterministic dissemination figures of the simulator, one seed.
//! - `sim-rate --rates 20,500`: what push gossip itself delivers at each rate in the simulator
//!   (zero processing cost), beside which a capacity sweep's coverage drop can be judged.
//! - `flood --config core.yaml --target HOST:PORT --rate-per-s N --duration-s S`: a hostile peer
//!   (a scenario's `[[faults.floods]]` starts it): a real handshake, then junk at the rate.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use gossip_testkit::testpki::{TestPki, TestPkiSpec};
use indicatif::{ProgressBar, ProgressStyle};
use loadgen::cluster::launcher::find_node_bin;
use loadgen::commands::sweep::{self, Criteria};
use loadgen::report::compare::{self, Threshold};
use loadgen::scenario::Scenario;
use loadgen::scenario::limits::Machine;

#[cfg(not(feature = "system-alloc"))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(
    name = "loadgen",
    version,
    about = "Benchmark toolkit for the Rust Fabric gossip engine"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Generate a test PKI in cryptogen's MSP folder layout (peer orgs and the orderer org).
    Pki {
        /// Number of orgs (Org1MSP, Org2MSP, ...).
        #[arg(long, default_value_t = 2)]
        orgs: usize,
        /// Peers per org.
        #[arg(long, default_value_t = 2)]
        peers: usize,
        /// Output folder (created).
        #[arg(long)]
        out: PathBuf,
        /// Certificate validity start, Unix seconds (default: now).
        #[arg(long)]
        now_unix_s: Option<i64>,
    },
    /// Run a scenario against a local cluster of gossip-node processes.
    Run {
        /// Scenario file (TOML); without it the built-in default scenario (6 nodes, 2 orgs,
        /// 10 blocks/s of 10 KiB for 20 s) runs.
        scenario: Option<PathBuf>,
        /// Results folder; the run writes `<results>/<name>/`.
        #[arg(long, default_value = "results")]
        results: PathBuf,
        /// The gossip-node binary (default: beside loadgen, then $GOSSIP_NODE_BIN, then $PATH):
        /// every node runs it, except those the scenario's `[fabric]` table puts on the Fabric
        /// peer (`[fabric] bin`, else $FABRIC_NODE_BIN, else ../shared/tools/fabric-node/).
        #[arg(long)]
        node_bin: Option<PathBuf>,
        /// Override the scenario's name.
        #[arg(long)]
        name: Option<String>,
        /// Print the effective scenario as TOML and exit.
        #[arg(long)]
        print_scenario: bool,
    },
    /// Run a scenario once per injection rate and find the highest sustainable rate.
    Sweep {
        /// Scenario file (TOML).
        scenario: PathBuf,
        /// Rates to test, blocks/s per channel, comma-separated (tested in ascending order).
        #[arg(long)]
        rates: String,
        /// Results folder: each rate writes `<results>/<name>-r<rate>/`, the sweep
        /// `<results>/<name>/{sweep.json,sweep.md}`.
        #[arg(long, default_value = "results")]
        results: PathBuf,
        /// The gossip-node binary (default: beside loadgen, then $GOSSIP_NODE_BIN, then $PATH).
        #[arg(long)]
        node_bin: Option<PathBuf>,
        /// Runs per rate: each rate is judged on each figure's median over its runs (on a shared
        /// machine one run's luck, good or bad, then decides nothing).
        #[arg(long, default_value_t = 1)]
        repeats: usize,
        /// Sustainability thresholds.
        #[command(flatten)]
        criteria: Criteria,
    },
    /// Compare two run.json (or sim-figures) files; exits 1 on a regression beyond a threshold.
    Compare {
        /// Baseline.
        base: PathBuf,
        /// New run.
        new: PathBuf,
        /// `NAME=+10%` (NEW at most 10 % higher), `NAME=-10%`, `NAME=~10%`, or absolute without `%`;
        /// `NAME` may hold `*` wildcards (`'*.violations=+0'`).
        #[arg(long = "threshold", short = 't')]
        thresholds: Vec<String>,
    },
    /// The CI gate: every scenario of the simulator gate (fan-out 3; two orgs and two channels;
    /// 5 % loss) over many seeds; per figure the median over seeds (compared by `compare`) and
    /// the spread. Deterministic: the same commit and seeds give byte-identical output.
    SimGate {
        /// Seeds per scenario (64: the medians then move by at most 1.3 % between disjoint seed
        /// sets; results/baseline/sim-gate.md).
        #[arg(long, default_value_t = 64)]
        seeds: u64,
        /// First seed (the seeds are `first-seed .. first-seed + seeds`).
        #[arg(long, default_value_t = 1)]
        first_seed: u64,
        /// Scenarios, comma-separated (default all: fanout3, orgs2_channels2, loss5).
        #[arg(long)]
        scenarios: Option<String>,
        /// Worker threads (default: one per core); the output does not depend on it.
        #[arg(long)]
        threads: Option<usize>,
        /// Also write every run's figures (`runs.<scenario>[]`), to see which seeds moved.
        #[arg(long)]
        per_seed: bool,
        /// Output file (stdout when absent).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Deterministic dissemination figures of the simulator, one seed.
    SimFigures {
        /// Nodes.
        #[arg(long, default_value_t = 16)]
        nodes: usize,
        /// Blocks.
        #[arg(long, default_value_t = 10)]
        blocks: u64,
        /// Seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Output file (stdout when absent).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// A hostile peer: load a peer's core.yaml and MSP, hand-shake with TARGET, then send
    /// valid-looking junk and invalid envelopes at a rate; prints one JSON line of what was sent.
    Flood {
        /// The hostile peer's core.yaml (its identity).
        #[arg(long)]
        config: PathBuf,
        /// Another trusted org, MSPID=DIR (repeatable), as gossip-node's --org-msp.
        #[arg(long = "org-msp")]
        org_msp: Vec<String>,
        /// The victim's gossip endpoint, host:port.
        #[arg(long)]
        target: String,
        /// Envelopes per second.
        #[arg(long, default_value_t = 50_000.0)]
        rate_per_s: f64,
        /// Seconds.
        #[arg(long, default_value_t = 60.0)]
        duration_s: f64,
        /// Share of invalid envelopes (garbage, bad signatures), 0 to 1.
        #[arg(long, default_value_t = 0.5)]
        invalid_share: f64,
        /// Seed of the junk.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Simulate push gossip at each injection rate with zero processing cost (one org, peer 0
    /// injects, Fabric's default gossip config): coverage, completeness and latency that the
    /// protocol itself gives, to set beside a `sweep` of real nodes.
    SimRate {
        /// Peers.
        #[arg(long, default_value_t = 25)]
        nodes: usize,
        /// Rates, blocks/s, comma-separated.
        #[arg(long)]
        rates: String,
        /// Injection time per rate, seconds.
        #[arg(long, default_value_t = 10.0)]
        duration_s: f64,
        /// One-way link latency, fixed part, µs.
        #[arg(long, default_value_t = 300)]
        link_latency_us: u64,
        /// One-way link latency, uniform extra up to this, µs.
        #[arg(long, default_value_t = 600)]
        link_jitter_us: u64,
        /// `peer.gossip.maxBlockCountToStore` (Fabric's default 10).
        #[arg(long)]
        max_block_count_to_store: Option<u64>,
        /// `peer.gossip.emitIntervalMin` in µs (default half of `maxPropagationBurstLatency`:
        /// at most two timed flushes per Fabric period).
        #[arg(long)]
        emit_interval_min_us: Option<u64>,
        /// Seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// JSON output file (the table goes to stdout either way).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

struct Progress {
    bar: Option<ProgressBar>,
    last_line: u64,
}

impl Progress {
    fn new() -> Self {
        let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
        let bar = (!ci && std::io::stderr().is_terminal()).then(|| {
            let b = ProgressBar::new(0);
            b.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} blocks {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            b
        });
        Progress { bar, last_line: 0 }
    }
}

impl loadgen::commands::run::Progress for Progress {
    fn tick(&mut self, due: u64, total: u64, deliveries: u64) {
        match &self.bar {
            Some(b) => {
                b.set_length(total);
                b.set_position(due);
                b.set_message(format!("{deliveries} deliveries"));
            }
            None => {
                // Plain lines, at most every 10 % of the blocks.
                if (due == total && self.last_line != total)
                    || due >= self.last_line + (total / 10).max(1)
                {
                    self.last_line = due;
                    eprintln!(
                        "loadgen: {due}/{total} blocks due, {deliveries} measured deliveries"
                    );
                }
            }
        }
    }

    fn phase(&mut self, msg: &str) {
        match &self.bar {
            Some(b) => b.println(format!("loadgen: {msg}")),
            None => eprintln!("loadgen: {msg}"),
        }
    }
}

/// The gossip-node binary for `s`: `--node-bin`, the scenario's `node_bin`, then the defaults.
/// Nodes that the scenario's `[fabric]` table puts on the Fabric peer run that binary instead,
/// checked here too, before anything starts; an all-Fabric scenario needs no gossip-node.
fn node_bin_for(explicit: Option<&PathBuf>, s: &Scenario) -> anyhow::Result<PathBuf> {
    let bin = find_node_bin(explicit.or(s.node_bin.as_ref()));
    let fabric_nodes = s.fabric_nodes();
    let all_fabric = fabric_nodes.len() == s.nodes;
    let on_path = || {
        std::env::var_os("PATH")
            .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(&bin).is_file()))
    };
    anyhow::ensure!(
        all_fabric || bin.is_file() || (bin.components().count() == 1 && on_path()),
        "gossip-node not found ({}): build it with `cargo build --release -p gossip-node --bin gossip-node`, or pass --node-bin",
        bin.display()
    );
    if let Some(fabric) = s.fabric_bin()? {
        let others = if all_fabric {
            String::new()
        } else {
            format!(", the others {}", bin.display())
        };
        eprintln!(
            "loadgen: nodes {fabric_nodes:?} run the Fabric peer {}{others}",
            fabric.display()
        );
    }
    Ok(bin)
}

/// One scenario end to end with progress on stderr: what `run` does, and `sweep` per rate.
fn run_job(
    s: &Scenario,
    bin: &Path,
    results: &Path,
) -> anyhow::Result<loadgen::commands::job::JobOutput> {
    let mut progress = Progress::new();
    let job = loadgen::commands::job::run_and_write(s, bin, results, &mut progress)
        .with_context(|| format!("running scenario {} with {}", s.name, bin.display()));
    if let Some(b) = &progress.bar {
        b.finish_and_clear();
    }
    job
}

/// Checks `s` against this machine before anything starts; prints the warnings.
fn check_machine(s: &Scenario) -> anyhow::Result<()> {
    let machine = Machine::read();
    s.check_machine(&machine)?;
    for w in s.machine_warnings(&machine) {
        eprintln!("loadgen: warning: {w}");
    }
    Ok(())
}

/// Errors are printed once, each cause once, without a backtrace (they are the user's to fix,
/// not a crash); exit 1.
fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!(
                "loadgen: error: {}",
                gossip_node::error_chain_text(e.chain())
            );
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Pki {
            orgs,
            peers,
            out,
            now_unix_s,
        } => {
            anyhow::ensure!(
                orgs >= 1 && peers >= 1,
                "--orgs and --peers must be at least 1"
            );
            let max = loadgen::scenario::limits::NODES_MAX;
            anyhow::ensure!(
                orgs.saturating_mul(peers) <= max,
                "--orgs {orgs} × --peers {peers} = {} peers exceeds the limit of {max}",
                orgs.saturating_mul(peers)
            );
            let now_unix_s = match now_unix_s {
                Some(s) => s,
                None => (loadgen::measure::inject::unix_now_ns() / 1_000_000_000) as i64,
            };
            let pki = TestPki::generate(&TestPkiSpec::uniform(orgs, peers, now_unix_s))
                .context("generating PKI")?;
            pki.write_msp_dirs(&out)
                .with_context(|| format!("writing {}", out.display()))?;
            for peer in pki.peers().chain(std::iter::once(pki.orderer())) {
                let signer = peer.signer().context("loading generated identity")?;
                println!("{}\t{}\t{}", peer.mspid, peer.name, signer.pki_id());
            }
            Ok(())
        }
        Command::Run {
            scenario,
            results,
            node_bin,
            name,
            print_scenario,
        } => {
            let mut s = match &scenario {
                Some(p) => Scenario::load(p)?,
                None => Scenario::default(),
            };
            if let Some(n) = name {
                s.name = n;
            }
            if print_scenario {
                print!("{}", toml::to_string(&s)?);
                return Ok(());
            }
            check_machine(&s)?;
            let bin = node_bin_for(node_bin.as_ref(), &s)?;
            let job = run_job(&s, &bin, &results)?;
            println!("{}", loadgen::report::summary(&job.doc));
            println!(
                "wrote {}/{{run.json,timeseries.csv,latency.hgrm,report.html,logs/}}",
                job.dir.display()
            );
            Ok(())
        }
        Command::Sweep {
            scenario,
            rates,
            results,
            node_bin,
            repeats,
            criteria,
        } => {
            let s = Scenario::load(&scenario)?;
            let rates = sweep::parse_rates(&rates)?;
            anyhow::ensure!(repeats >= 1, "--repeats must be at least 1");
            check_machine(&s)?;
            let bin = node_bin_for(node_bin.as_ref(), &s)?;
            let sw = sweep::sweep(&s, &rates, repeats, &criteria, |rs| {
                eprintln!(
                    "loadgen sweep: rate {} blocks/s ({} blocks per channel): {}",
                    sweep::rate_label(rs.rate_per_s),
                    rs.block_count(),
                    rs.name
                );
                // A failed run makes its rate unsustainable (the reason says why); the sweep goes on.
                let job = run_job(rs, &bin, &results).map_err(|e| format!("{e:#}"))?;
                println!("{}", loadgen::report::summary(&job.doc));
                Ok::<_, String>((job.doc, job.dir))
            })?;
            let doc = sweep::to_json(
                &sw,
                &loadgen::measure::procfs::machine(),
                loadgen::measure::procfs::git_commit().as_deref(),
                loadgen::measure::procfs::git_dirty(),
            );
            let md = sweep::to_markdown(&sw);
            let dir = results.join(&s.name);
            sweep::write(&dir, &doc, &md)?;
            print!("{md}");
            println!("wrote {}/{{sweep.json,sweep.md}}", dir.display());
            Ok(())
        }
        Command::Compare {
            base,
            new,
            thresholds,
        } => {
            let ts = thresholds
                .iter()
                .map(|t| Threshold::parse(t))
                .collect::<Result<Vec<_>, _>>()?;
            let b = compare::load_figures(&base)?;
            let n = compare::load_figures(&new)?;
            let c = compare::compare(&b, &n, &ts);
            print!("{}", compare::render(&c));
            if c.regressions > 0 {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::SimGate {
            seeds,
            first_seed,
            scenarios,
            threads,
            per_seed,
            out,
        } => {
            use gossip_harness::gate::GateScenario;
            anyhow::ensure!(seeds >= 1, "--seeds must be at least 1");
            let scenarios = match scenarios {
                None => GateScenario::ALL.to_vec(),
                Some(list) => list
                    .split(',')
                    .map(|name| {
                        GateScenario::from_name(name.trim()).with_context(|| {
                            let all: Vec<&str> =
                                GateScenario::ALL.iter().map(|s| s.name()).collect();
                            format!("unknown scenario {name:?} (known: {})", all.join(", "))
                        })
                    })
                    .collect::<anyhow::Result<Vec<_>>>()?,
            };
            let threads = threads.unwrap_or_else(|| {
                std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
            });
            let range = first_seed..first_seed + seeds;
            let runs = loadgen::commands::figures::run_gate(&scenarios, range.clone(), threads);
            write_or_print(
                &loadgen::commands::figures::gate_json(&runs, &range, per_seed),
                out.as_deref(),
            )
        }
        Command::SimFigures {
            nodes,
            blocks,
            seed,
            out,
        } => {
            let doc = loadgen::commands::figures::sim_figures(nodes, blocks, seed);
            write_or_print(&doc, out.as_deref())
        }
        Command::Flood {
            config,
            org_msp,
            target,
            rate_per_s,
            duration_s,
            invalid_share,
            seed,
        } => {
            let max = loadgen::scenario::limits::FLOOD_RATE_PER_S_MAX;
            anyhow::ensure!(
                rate_per_s > 0.0 && rate_per_s <= max,
                "--rate-per-s {rate_per_s} must be in (0, {max}]"
            );
            anyhow::ensure!(
                duration_s.is_finite() && duration_s > 0.0 && duration_s <= 86_400.0,
                "--duration-s {duration_s} must be in (0, 86400]"
            );
            anyhow::ensure!(
                (0.0..=1.0).contains(&invalid_share),
                "--invalid-share {invalid_share} must be in [0, 1]"
            );
            let args = loadgen::commands::flood::FloodArgs {
                config,
                org_msps: org_msp,
                target,
                rate_per_s,
                duration_s,
                invalid_share,
                seed,
            };
            let report = loadgen::commands::flood::run_flood(&args)?;
            println!("{}", serde_json::to_string(&report)?);
            Ok(())
        }
        Command::SimRate {
            nodes,
            rates,
            duration_s,
            link_latency_us,
            link_jitter_us,
            max_block_count_to_store,
            emit_interval_min_us,
            seed,
            out,
        } => {
            anyhow::ensure!(nodes >= 2, "--nodes must be at least 2");
            anyhow::ensure!(
                duration_s.is_finite() && duration_s > 0.0,
                "--duration-s must be positive"
            );
            let rates = sweep::parse_rates(&rates)?;
            let blocks_max = gossip_harness::rate::BLOCKS_MAX as f64;
            if let Some(r) = rates.iter().find(|r| *r * duration_s > blocks_max) {
                anyhow::bail!(
                    "rate {r} for {duration_s} s is more than {blocks_max} blocks: lower the rate or --duration-s"
                );
            }
            let mut gossip = gossip_engine::config::GossipConfig::default();
            if let Some(window) = max_block_count_to_store {
                gossip.max_block_count_to_store = window;
            }
            gossip.emit_interval_min = emit_interval_min_us.map(std::time::Duration::from_micros);
            let base = gossip_harness::rate::RateSetup {
                nodes,
                rate_per_s: rates[0],
                duration: std::time::Duration::from_secs_f64(duration_s),
                link: gossip_harness::faults::LinkConfig {
                    latency_base: std::time::Duration::from_micros(link_latency_us),
                    latency_jitter: std::time::Duration::from_micros(link_jitter_us),
                    ..Default::default()
                },
                gossip,
                seed,
            };
            let figures = loadgen::commands::figures::sim_rate(&base, &rates);
            print!("{}", loadgen::commands::figures::sim_rate_table(&figures));
            // The table is the printed form; the JSON only goes to a file.
            if let Some(p) = out {
                write_or_print(
                    &loadgen::commands::figures::sim_rate_json(&base, &figures),
                    Some(&p),
                )?;
            }
            Ok(())
        }
    }
}

/// Writes a JSON document to `out`, or prints it when there is no `out`.
fn write_or_print(doc: &serde_json::Value, out: Option<&Path>) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(doc)? + "\n";
    match out {
        Some(p) => std::fs::write(p, text).with_context(|| format!("writing {}", p.display())),
        None => {
            print!("{text}");
            Ok(())
        }
    }
}
