//! Reading process and machine facts from `/proc` (Linux).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use gossip_node::ops::process::fd_entries;
use serde::Serialize;

use crate::measure::inject::mono_now;

/// One sample of a process.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct ProcSample {
    /// utime + stime, seconds.
    pub cpu_s: f64,
    /// Resident set now, bytes (`VmRSS`).
    pub rss_bytes: u64,
    /// Peak resident set, bytes (`VmHWM`).
    pub peak_rss_bytes: u64,
    /// Private anonymous resident memory now, bytes (`RssAnon` of `/proc/<pid>/status`).
    pub rss_anon_bytes: u64,
    /// Proportional set size now, bytes (`Pss` of `/proc/<pid>/smaps_rollup`): shared pages,
    /// such as the binary's code, divided among the processes that map them. `None` where the
    /// file is unreadable (kernels before 4.14, or no ptrace read access).
    pub pss_bytes: Option<u64>,
    /// Bytes read through read-like syscalls (`rchar` of `/proc/<pid>/io`: files, pipes and
    /// sockets read with `read`/`readv`; `recvfrom`/`recvmsg` are not counted).
    pub io_read_bytes: u64,
    /// Bytes written likewise (`wchar`; `sendto`/`sendmsg` are not counted).
    pub io_written_bytes: u64,
    /// File descriptors open now (entries of `/proc/<pid>/fd`); `None` where the folder is
    /// unreadable (another user's process).
    pub fd_count: Option<u64>,
}

impl ProcSample {
    /// `rchar + wchar`.
    pub fn io_bytes(&self) -> u64 {
        self.io_read_bytes + self.io_written_bytes
    }
}

/// Clock ticks per second for `/proc/<pid>/stat` (USER_HZ, 100 on every Linux we run on).
const USER_HZ: f64 = 100.0;

/// utime + stime of a `/proc/<pid>/stat` line, in clock ticks.
pub fn parse_stat_ticks(stat: &str) -> Option<u64> {
    // Fields after the parenthesised comm; utime and stime are fields 14 and 15 (1-based).
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// A `KEY: <n> kB` line of `/proc/<pid>/status` or `smaps_rollup`, in bytes.
pub fn parse_kb(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map(|kb| kb * 1024)
}

/// Samples `pid`; `None` when the process is gone.
pub fn sample(pid: u32) -> Option<ProcSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let ticks = parse_stat_ticks(&stat)?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb = |key: &str| parse_kb(&status, key).unwrap_or(0);
    let pss_bytes = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .ok()
        .and_then(|t| parse_kb(&t, "Pss"));
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).unwrap_or_default();
    let io_field = |key: &str| -> u64 {
        io.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    Some(ProcSample {
        cpu_s: ticks as f64 / USER_HZ,
        rss_bytes: kb("VmRSS"),
        peak_rss_bytes: kb("VmHWM"),
        rss_anon_bytes: kb("RssAnon"),
        pss_bytes,
        io_read_bytes: io_field("rchar:"),
        io_written_bytes: io_field("wchar:"),
        fd_count: fd_count(pid),
    })
}

/// File descriptors `pid` has open: the entries of `/proc/<pid>/fd` (`None` when it cannot be
/// listed), counted by gossip-node's own [`fd_entries`]. For this process itself the listing's
/// own descriptor counts too.
pub fn fd_count(pid: u32) -> Option<u64> {
    fd_entries(Path::new(&format!("/proc/{pid}/fd")))
}

/// Where a [`CpuReading`] came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CpuSource {
    /// The first field of `/proc/<pid>/task/<tid>/schedstat` (the thread's
    /// `se.sum_exec_runtime`, ns), per thread.
    Schedstat,
    /// `utime + stime` of `/proc/<pid>/stat` (10 ms ticks, whole process).
    StatTicks,
}

/// CPU time of a process at one moment.
#[derive(Clone, Debug, PartialEq)]
pub struct CpuReading {
    /// Where it came from.
    pub source: CpuSource,
    /// Run time so far per thread id, ns; for [`CpuSource::StatTicks`] one entry, the pid.
    pub threads: BTreeMap<u32, u64>,
    /// When it was read (monotonic).
    pub at: Instant,
}

/// The run time field (first, ns) of a `schedstat` line.
pub fn parse_schedstat(text: &str) -> Option<u64> {
    text.split_whitespace().next()?.parse().ok()
}

/// Reads the CPU time of `pid`: every thread's `schedstat` run time (ns), or, when no thread's
/// is readable, the process's `utime + stime` ticks. `None` when the process is gone.
pub fn cpu_reading(pid: u32) -> Option<CpuReading> {
    let mut threads = BTreeMap::new();
    if let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for e in dir.flatten() {
            let Some(tid) = e.file_name().to_str().and_then(|t| t.parse::<u32>().ok()) else {
                continue;
            };
            // A thread that exits between the listing and the read is skipped.
            if let Some(ns) = std::fs::read_to_string(e.path().join("schedstat"))
                .ok()
                .and_then(|t| parse_schedstat(&t))
            {
                threads.insert(tid, ns);
            }
        }
    }
    if !threads.is_empty() {
        return Some(CpuReading {
            source: CpuSource::Schedstat,
            threads,
            at: mono_now(),
        });
    }
    let ticks = parse_stat_ticks(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)?;
    Some(CpuReading {
        source: CpuSource::StatTicks,
        threads: BTreeMap::from([(pid, ticks * (1e9 / USER_HZ) as u64)]),
        at: mono_now(),
    })
}

/// CPU time spent between two readings of one process, ns, matched per thread: a thread in both
/// counts its growth, a thread only in `b` (started in between) counts all of its run time, a
/// thread only in `a` (exited in between) counts nothing, since its last run time is gone with
/// it (an undercount of at most what it ran in between). `None` when the sources differ.
pub fn cpu_delta_ns(a: &CpuReading, b: &CpuReading) -> Option<u64> {
    if a.source != b.source {
        return None;
    }
    Some(
        b.threads
            .iter()
            .map(|(tid, nb)| match a.threads.get(tid) {
                Some(na) => nb.saturating_sub(*na),
                None => *nb,
            })
            .sum(),
    )
}

/// A process's CPU over a window: `cpu_ns` of CPU time in `wall_ns` of wall time.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct CpuWindow {
    /// CPU time, ns.
    pub cpu_ns: u64,
    /// Wall time between the two readings, ns.
    pub wall_ns: u64,
    /// Where the readings came from.
    pub source: CpuSource,
}

impl CpuWindow {
    /// The window between two readings (`None` when their sources differ).
    pub fn between(a: &CpuReading, b: &CpuReading) -> Option<Self> {
        Some(CpuWindow {
            cpu_ns: cpu_delta_ns(a, b)?,
            wall_ns: b.at.saturating_duration_since(a.at).as_nanos() as u64,
            source: a.source,
        })
    }

    /// CPU as a percentage of one core.
    pub fn pct_of_core(&self) -> f64 {
        self.cpu_ns as f64 / self.wall_ns.max(1) as f64 * 100.0
    }
}

/// Facts about the machine a run used.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Machine {
    /// CPU model name.
    pub cpu_model: String,
    /// Logical cores.
    pub cores: usize,
    /// Kernel release.
    pub kernel: String,
    /// Host name.
    pub hostname: String,
    /// Total memory, bytes.
    pub mem_total_bytes: u64,
}

/// Reads the machine facts (fields it cannot read stay empty).
pub fn machine() -> Machine {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let cpu_model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|v| v.trim_start_matches([' ', '\t', ':']).trim().to_string())
        .unwrap_or_default();
    let mem_total_bytes = read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .unwrap_or(0)
        * 1024;
    Machine {
        cpu_model,
        cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
        kernel: read("/proc/sys/kernel/osrelease").trim().into(),
        hostname: read("/proc/sys/kernel/hostname").trim().into(),
        mem_total_bytes,
    }
}

/// `git rev-parse HEAD` in the current directory, if git and a repository are there.
pub fn git_commit() -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Whether tracked files outside `results/` differ from `HEAD` (the run is then not exactly of
/// `git_commit`; earlier runs rewriting committed reports do not count); `None` outside a git
/// checkout.
pub fn git_dirty() -> Option<bool> {
    let out = std::process::Command::new("git")
        .args([
            "status",
            "--porcelain",
            "--untracked-files=no",
            "--",
            ":(top)",
            ":(top,exclude)results",
        ])
        .output()
        .ok()?;
    out.status.success().then_some(!out.stdout.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_samples() {
        let s = sample(std::process::id()).unwrap();
        assert!(s.rss_bytes > 0 && s.peak_rss_bytes >= s.rss_bytes);
        assert!(s.rss_anon_bytes > 0 && s.rss_anon_bytes <= s.rss_bytes);
        assert!(s.pss_bytes.is_some_and(|p| p > 0 && p <= s.rss_bytes));
        // stdin, stdout, stderr and the listing's own descriptor at least.
        assert!(s.fd_count.is_some_and(|n| n >= 4), "{s:?}");
        assert!(machine().cores >= 1);
    }

    #[test]
    fn fd_count_lists_the_fd_folder_of_a_live_process_only() {
        // The folder counting itself is gossip-node's `fd_entries` (tested there).
        // A process that is gone has no folder to list.
        assert_eq!(fd_count(u32::MAX), None);
        // stdin, stdout, stderr and the listing's own descriptor at least.
        assert!(fd_count(std::process::id()).is_some_and(|n| n >= 4));
    }

    #[test]
    fn parses_proc_files() {
        let stat = "42 (a (weird) name) S 1 1 1 0 -1 0 0 0 0 0 250 13 0 0 20 0 3 0";
        assert_eq!(parse_stat_ticks(stat), Some(263));
        let status = "VmHWM:\t    1984 kB\nRssAnon:\t     148 kB\nRssAnonX:\t 1 kB\n";
        assert_eq!(parse_kb(status, "RssAnon"), Some(148 * 1024));
        assert_eq!(parse_kb(status, "VmRSS"), None);
        let rollup = "5613-7fff ---p 00000000 00:00 0  [rollup]\nRss:  1756 kB\nPss:  257 kB\nPss_Anon:  112 kB\n";
        assert_eq!(parse_kb(rollup, "Pss"), Some(257 * 1024));
        assert_eq!(
            parse_schedstat("512952237 33539888 67\n"),
            Some(512_952_237)
        );
        assert_eq!(parse_schedstat(""), None);
    }

    fn reading(source: CpuSource, threads: &[(u32, u64)]) -> CpuReading {
        CpuReading {
            source,
            threads: threads.iter().copied().collect(),
            at: mono_now(),
        }
    }

    #[test]
    fn cpu_delta_matches_threads() {
        let a = reading(
            CpuSource::Schedstat,
            &[(1, 1_000), (2, 5_000), (3, 9_000_000)],
        );
        // Thread 3 exited (its run time leaves with it), thread 4 started in between.
        let b = reading(CpuSource::Schedstat, &[(1, 1_500), (2, 5_000), (4, 700)]);
        assert_eq!(cpu_delta_ns(&a, &b), Some(500 + 700));
        let t = reading(CpuSource::StatTicks, &[(1, 10_000_000)]);
        assert_eq!(cpu_delta_ns(&a, &t), None, "sources differ");
        let w = CpuWindow::between(&a, &b).unwrap();
        assert_eq!((w.cpu_ns, w.source), (1200, CpuSource::Schedstat));
    }

    #[test]
    #[allow(clippy::disallowed_methods)]
    fn own_process_cpu_reading_grows_while_spinning() {
        let pid = std::process::id();
        let a = cpu_reading(pid).unwrap();
        assert!(
            a.threads.len() >= 2 || a.source == CpuSource::StatTicks,
            "{a:?}"
        );
        // Spin until 20 ms of CPU show (bounded: the machine may be busy).
        let spin = Instant::now();
        let mut x = 0u64;
        let mut w = CpuWindow::between(&a, &a).unwrap();
        while w.cpu_ns < 20_000_000 && spin.elapsed() < std::time::Duration::from_secs(10) {
            for _ in 0..100_000 {
                x = std::hint::black_box(x.wrapping_add(1));
            }
            w = CpuWindow::between(&a, &cpu_reading(pid).unwrap()).unwrap();
        }
        assert!(w.cpu_ns >= 20_000_000 && w.pct_of_core() > 0.0, "{w:?}");
        if a.source == CpuSource::Schedstat {
            assert_ne!(w.cpu_ns % 10_000_000, 0, "ns, not 10 ms ticks: {w:?}");
        }
    }
}
