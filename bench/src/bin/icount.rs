//! `icount`: instruction counts of the hot path under callgrind, for the CI gate.
//!
//! ```text
//! icount [--out FILE] [--only NAME,NAME] [--jobs N]   measure every workload (or some), write
//!                                                     the figures JSON that `loadgen compare` reads
//! icount --run NAME                                   run one workload (what valgrind runs)
//! icount --list                                       list the workloads
//! ```
//!
//! Build it with the release profile (`cargo build --release -p gossip-bench --bin icount`): the
//! counts are those of the code that ships. See `gossip_bench::icount` for the method.

use std::path::PathBuf;

use anyhow::{Context, bail};
use gossip_bench::icount::{self, Measurement, WORKLOADS, Workload};
use serde_json::json;

/// Schema tag of the output.
const SCHEMA: &str = "gossip-bench.icount/v1";

struct Args {
    run: Option<String>,
    list: bool,
    out: Option<PathBuf>,
    only: Option<Vec<String>>,
    jobs: usize,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        run: None,
        list: false,
        out: None,
        only: None,
        jobs: std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--run" => args.run = Some(value()?),
            "--list" => args.list = true,
            "--out" => args.out = Some(value()?.into()),
            "--only" => args.only = Some(value()?.split(',').map(str::to_owned).collect()),
            "--jobs" => args.jobs = value()?.parse().context("--jobs")?,
            other => {
                bail!("unknown argument {other:?} (see the doc comment of bench/src/bin/icount.rs)")
            }
        }
    }
    Ok(args)
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    if args.list {
        for w in &WORKLOADS {
            println!("{}\t{}", w.name, w.op);
        }
        return Ok(());
    }
    if let Some(name) = args.run {
        let w = icount::workload(&name).with_context(|| format!("unknown workload {name:?}"))?;
        println!("ops={}", (w.run)());
        return Ok(());
    }
    let chosen: Vec<&Workload> = match &args.only {
        None => WORKLOADS.iter().collect(),
        Some(names) => names
            .iter()
            .map(|n| icount::workload(n).with_context(|| format!("unknown workload {n:?}")))
            .collect::<anyhow::Result<_>>()?,
    };
    let exe = std::env::current_exe().context("locating the icount binary")?;
    let dir = tempfile_dir()?;
    let measured = measure_all(&exe, &chosen, &dir, args.jobs.max(1));
    let _ = std::fs::remove_dir_all(&dir);
    let measured = measured?;
    let mut figures = serde_json::Map::new();
    let mut workloads = serde_json::Map::new();
    let name_width = chosen.iter().map(|w| w.name.len()).max().unwrap_or(0);
    println!(
        "{:<name_width$} {:>14} {:>8} {:>14}",
        "workload", "instructions", "ops", "per op"
    );
    for (w, m) in chosen.iter().zip(&measured) {
        println!(
            "{:<name_width$} {:>14} {:>8} {:>14.1}",
            m.name,
            m.instructions,
            m.ops,
            m.per_op()
        );
        figures.insert(format!("{}.instructions_per_op", m.name), json!(m.per_op()));
        figures.insert(format!("{}.instructions", m.name), json!(m.instructions));
        figures.insert(format!("{}.ops", m.name), json!(m.ops));
        workloads.insert(m.name.into(), json!({"op": w.op, "marker": w.toggle()}));
    }
    let doc = json!({
        "schema": SCHEMA,
        "tool": "valgrind --tool=callgrind --collect-atstart=no --toggle-collect=<marker>",
        "profile": if cfg!(debug_assertions) { "debug" } else { "release" },
        "workloads": workloads,
        "figures": figures,
    });
    let text = serde_json::to_string_pretty(&doc)? + "\n";
    match args.out {
        Some(p) => std::fs::write(&p, text).with_context(|| format!("writing {}", p.display()))?,
        None => print!("{text}"),
    }
    Ok(())
}

/// A fresh folder for callgrind's output files.
fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("icount-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// Measures every workload, `jobs` processes at a time; results in `chosen` order.
fn measure_all(
    exe: &std::path::Path,
    chosen: &[&Workload],
    dir: &std::path::Path,
    jobs: usize,
) -> anyhow::Result<Vec<Measurement>> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<std::sync::Mutex<Option<Result<Measurement, icount::IcountError>>>> =
        chosen.iter().map(|_| std::sync::Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..jobs.min(chosen.len()) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(w) = chosen.get(i) else { break };
                    let r = icount::measure(exe, w, dir);
                    if let Ok(mut slot) = results[i].lock() {
                        *slot = Some(r);
                    }
                }
            });
        }
    });
    results
        .into_iter()
        .zip(chosen)
        .map(|(slot, w)| {
            let r = slot.into_inner().ok().flatten();
            r.with_context(|| format!("workload {} did not run", w.name))?
                .map_err(anyhow::Error::from)
        })
        .collect()
}
