//! Leader election (spec 3.10) on the engine's node: each scenario of `gossip_harness::election`
//! on the simulator over 200 seeds with Fabric's default timings, and each once on tonic over
//! loopback (with the election's timings shortened, see `election::fast_election`, so the
//! real-time run stays short; the longer ones are ignored). `tonic_election_repeated` runs the
//! tonic ones many times (a real-time run is one repetition, not a seed).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use gossip_engine::clock;
use gossip_harness::election::{self, Election};
use gossip_harness::engine::EngineNode;
use gossip_harness::scenario::{run_seeds, secs};

const SEEDS: std::ops::Range<u64> = 0..200;

/// Two orgs of three: one leader per org, its lowest PKI-ID.
#[test]
fn simultaneous_start_elects_the_lowest_per_org() {
    let s = election::simultaneous::<EngineNode>(election::election_gossip(), 2, 3, secs(30));
    run_seeds(&s, SEEDS);
}

#[test]
fn staggered_start_has_one_leader_the_first_or_a_lower_joiner() {
    run_seeds(&election::staggered::<EngineNode>(), SEEDS);
}

#[test]
fn leader_death_gives_one_successor_within_fabric_timings() {
    let s = election::leader_death::<EngineNode>(election::election_gossip(), secs(30));
    run_seeds(&s, SEEDS);
}

#[test]
fn yield_hands_the_leadership_over() {
    run_seeds(&election::yield_hands_over::<EngineNode>(), SEEDS);
}

#[test]
fn partition_gives_a_leader_per_side_and_heal_the_lower() {
    run_seeds(&election::partition_heal::<EngineNode>(), SEEDS);
}

/// The tonic scenario named `name` (see `election::tonic_elections`).
fn tonic(name: &str) -> Election<EngineNode> {
    election::tonic_elections()
        .into_iter()
        .find(|e| e.name() == name)
        .unwrap_or_else(|| panic!("no tonic election scenario {name}"))
}

#[test]
fn tonic_simultaneous_start_elects_the_lowest() {
    tonic("election-simultaneous").on_tonic();
}

#[test]
fn tonic_leader_death_gives_a_successor() {
    tonic("election-leader-death").on_tonic();
}

/// About 28 s (four joins 6 s apart).
#[test]
#[ignore = "about 28 s of real time; tonic_election_repeated runs it too"]
fn tonic_staggered_start_has_one_leader() {
    tonic("election-staggered").on_tonic();
}

#[test]
fn tonic_yield_hands_the_leadership_over() {
    tonic("election-yield").on_tonic();
}

/// About 50 s (the split outlasts `alive_expiration_timeout`, 25 s, and the heal waits for the
/// views to recover).
#[test]
#[ignore = "about 50 s of real time; tonic_election_repeated runs it too"]
fn tonic_partition_gives_a_leader_per_side_and_heal_the_lower() {
    tonic("election-partition-heal").on_tonic();
}

/// How one tonic run ended.
struct RunResult {
    scenario: &'static str,
    run: usize,
    /// `None` on success, else what failed.
    failure: Option<String>,
    wall: Duration,
}

/// A number from the environment, or `default`.
fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs scenario `k` of `scenarios` once; a panic (a node that does not start) is a failure.
fn run_once(scenarios: &[Election<EngineNode>], k: usize, run: usize) -> RunResult {
    let scenario = &scenarios[k];
    let start = clock::now();
    let outcome = catch_unwind(AssertUnwindSafe(|| scenario.try_on_tonic()));
    let failure = match outcome {
        Ok(Ok(o)) if o.violations.is_empty() => None,
        Ok(Ok(o)) => {
            let list: Vec<String> = o.violations.iter().map(|v| v.to_string()).collect();
            Some(list.join("; "))
        }
        Ok(Err(refused)) => Some(refused),
        Err(panic) => Some(match panic.downcast_ref::<String>() {
            Some(s) => format!("panicked: {s}"),
            None => format!("panicked: {:?}", panic.downcast_ref::<&str>()),
        }),
    };
    RunResult {
        scenario: scenario.name(),
        run,
        failure,
        wall: clock::now().saturating_duration_since(start),
    }
}

/// Each tonic election scenario `TONIC_RUNS` times (default 200), `TONIC_PARALLEL` runs at once
/// (default 4; each run has its own runtime, PKI and ports), only the scenarios named in
/// `TONIC_SCENARIOS` (comma-separated, default all). Prints a line per run and a table per
/// scenario; fails naming every failed run.
#[test]
#[ignore = "long: hundreds of real-time tonic runs (see results/election-tonic.md)"]
fn tonic_election_repeated() {
    let runs = env_or("TONIC_RUNS", 200);
    let parallel = env_or("TONIC_PARALLEL", 4).max(1);
    let only = std::env::var("TONIC_SCENARIOS").unwrap_or_default();
    let scenarios: Vec<Election<EngineNode>> = election::tonic_elections()
        .into_iter()
        .filter(|e| only.is_empty() || only.split(',').any(|n| n.trim() == e.name()))
        .collect();
    assert!(!scenarios.is_empty(), "TONIC_SCENARIOS={only} names none");
    // Run-major order: an interrupted batch has about as many runs of each scenario.
    let jobs: Vec<(usize, usize)> = (0..runs)
        .flat_map(|run| (0..scenarios.len()).map(move |k| (k, run)))
        .collect();
    let next = AtomicUsize::new(0);
    let results = Mutex::new(Vec::with_capacity(jobs.len()));
    let started = clock::now();
    std::thread::scope(|scope| {
        for _ in 0..parallel.min(jobs.len()) {
            scope.spawn(|| {
                while let Some(&(k, run)) = jobs.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let r = run_once(&scenarios, k, run);
                    let verdict = r
                        .failure
                        .as_deref()
                        .map_or("ok".into(), |f| format!("FAILED {f}"));
                    println!(
                        "tonic-run scenario={} run={} wall={:.1}s {verdict}",
                        r.scenario,
                        r.run,
                        r.wall.as_secs_f64()
                    );
                    results.lock().expect("results lock").push(r);
                }
            });
        }
    });
    let results = results.into_inner().expect("results lock");
    println!(
        "\n{} runs, {} at once, in {:.0}s\n",
        results.len(),
        parallel,
        clock::now()
            .saturating_duration_since(started)
            .as_secs_f64()
    );
    println!("| scenario | runs | passed | failed | wall median | wall max | failed runs |");
    println!("|---|---|---|---|---|---|---|");
    let mut failed = Vec::new();
    for scenario in &scenarios {
        let mine: Vec<&RunResult> = results
            .iter()
            .filter(|r| r.scenario == scenario.name())
            .collect();
        let mut walls: Vec<Duration> = mine.iter().map(|r| r.wall).collect();
        walls.sort_unstable();
        let bad: Vec<usize> = (mine.iter())
            .filter(|r| r.failure.is_some())
            .map(|r| r.run)
            .collect();
        println!(
            "| {} | {} | {} | {} | {:.1} s | {:.1} s | {bad:?} |",
            scenario.name(),
            mine.len(),
            mine.len() - bad.len(),
            bad.len(),
            walls
                .get(walls.len() / 2)
                .map_or(0.0, Duration::as_secs_f64),
            walls.last().map_or(0.0, Duration::as_secs_f64),
        );
        failed.extend(
            bad.into_iter()
                .map(|run| format!("{} run {run}", scenario.name())),
        );
    }
    assert!(failed.is_empty(), "failed tonic runs: {failed:?}");
}
