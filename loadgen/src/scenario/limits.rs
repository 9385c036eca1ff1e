//! The limits a scenario is held to before anything starts: fixed ceilings of loadgen, and what
//! this machine's ports, file descriptors, memory and cores allow (`loadgen/README.md`, "Limits").
//!
//! The per-node figures are estimates of a gossip-node on a 25-node cluster, on the low side: a
//! scenario refused here certainly does not fit, one accepted may still run short.

use std::time::Duration;

use super::{Scenario, ScenarioError};

/// The most nodes a scenario may have, whatever the machine (every node is a process with three
/// listen ports; see [`nodes_allowed_by_ports`]).
pub const NODES_MAX: usize = 2000;
/// Listen ports each node takes from the cluster's listen range: gossip, control, operations.
pub const PORTS_PER_NODE: usize = 3;
/// Resident memory of one node process (gossip-node idles at about 12 MiB).
pub const NODE_RSS_BYTES: u64 = 12 * 1024 * 1024;
/// File descriptors loadgen holds whatever the cluster's size (its own files, the binary, logs).
pub const LOADGEN_FDS_BASE: u64 = 64;
/// File descriptors loadgen holds per node: the node's stdin pipe, its log file, the control
/// connection, operations scrapes, `/proc` readings.
pub const LOADGEN_FDS_PER_NODE: u64 = 8;
/// File descriptors the proxy holds per pair of nodes with the fault proxy between them: both
/// ends of a connection in each direction.
pub const PROXY_FDS_PER_NODE_PAIR: u64 = 4;
/// File descriptors of a node process besides its peers' connections.
pub const NODE_FDS_BASE: u64 = 64;
/// Nodes per core above which loadgen warns (25 nodes on 2 cores is the capacity scenario's).
pub const NODES_PER_CORE_WARN: usize = 50;
/// The most blocks per channel a scenario may schedule (each is tracked until the report).
pub const BLOCKS_MAX: u64 = 1_000_000;
/// Room left in a gossip message for the block's envelope around its payload.
pub const BLOCK_ENVELOPE_BYTES: u64 = 64 * 1024;
/// The largest `block_size_bytes`: the gRPC message limit (`peer.maxRecvMsgSize`) less the
/// envelope.
pub const BLOCK_SIZE_BYTES_MAX: u64 =
    gossip_proto::MAX_MESSAGE_LEN_BYTES as u64 - BLOCK_ENVELOPE_BYTES;
/// The longest of any duration key (`duration_s`, `drain_s`, `at_s`, ...): a day.
pub const DURATION_MAX: Duration = Duration::from_secs(24 * 3600);
/// The most milliseconds of `delay_ms`, `jitter_ms` and `arrival_jitter_ms`.
pub const DELAY_MS_MAX: f64 = 60_000.0;
/// The most threads per node (`node_worker_threads`, `node_verifier_threads`).
pub const NODE_THREADS_MAX: usize = 256;
/// Most messages per second one flood (`faults.floods.rate_per_s`) may ask for.
pub const FLOOD_RATE_PER_S_MAX: f64 = 1_000_000.0;
/// Shortest membership poll period (`membership_poll_ms`), ms: each poll is a request to every node.
pub const MEMBERSHIP_POLL_MS_MIN: u64 = 50;

/// What the machine offers, read from `/proc` ([`Machine::read`]); `None` where it could not be
/// read, and then not checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Machine {
    /// The soft `RLIMIT_NOFILE` (`ulimit -n`), which the nodes inherit.
    pub fd_limit: Option<u64>,
    /// `MemAvailable` of `/proc/meminfo`, bytes.
    pub mem_available_bytes: Option<u64>,
    /// Logical cores.
    pub cores: usize,
}

impl Machine {
    /// This machine, now.
    pub fn read() -> Self {
        let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        Machine {
            fd_limit: parse_fd_limit(&limits),
            mem_available_bytes: crate::measure::procfs::parse_kb(&meminfo, "MemAvailable"),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

/// The soft limit of `Max open files` in `/proc/self/limits` (`u64::MAX` for "unlimited").
pub fn parse_fd_limit(limits: &str) -> Option<u64> {
    let rest = limits
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))?;
    match rest.split_whitespace().next()? {
        "unlimited" => Some(u64::MAX),
        n => n.parse().ok(),
    }
}

/// File descriptors a cluster of `nodes` needs in each process (the largest of loadgen's and a
/// node's; they share `ulimit -n`), with or without the fault proxy.
pub fn fds_needed(nodes: usize, proxied: bool) -> u64 {
    let n = nodes as u64;
    let pairs = n * n.saturating_sub(1) / 2;
    let proxy = if proxied {
        n + PROXY_FDS_PER_NODE_PAIR * pairs
    } else {
        0
    };
    let loadgen = LOADGEN_FDS_BASE + LOADGEN_FDS_PER_NODE * n + proxy;
    // A node may hold a connection each way with every other node.
    let node = NODE_FDS_BASE + 2 * n;
    loadgen.max(node)
}

/// The most nodes `fd_limit` descriptors allow.
pub fn nodes_allowed_by_fds(fd_limit: u64, proxied: bool) -> usize {
    (0..=NODES_MAX)
        .take_while(|&n| fds_needed(n, proxied) <= fd_limit)
        .last()
        .unwrap_or(0)
}

/// The most nodes the cluster's listen port range holds.
pub fn nodes_allowed_by_ports() -> usize {
    crate::cluster::LISTEN_PORTS.len() / PORTS_PER_NODE
}

/// The most nodes `mem_available_bytes` holds.
pub fn nodes_allowed_by_memory(mem_available_bytes: u64) -> usize {
    usize::try_from(mem_available_bytes / NODE_RSS_BYTES).unwrap_or(usize::MAX)
}

/// The tightest of the machine's limits on nodes: how many, and a sentence saying which and how
/// to raise it.
pub fn nodes_allowed(m: &Machine, proxied: bool) -> (usize, String) {
    let mut tightest = (
        nodes_allowed_by_ports(),
        format!(
            "{} listen ports at {PORTS_PER_NODE} per node allow {} nodes",
            crate::cluster::LISTEN_PORTS.len(),
            nodes_allowed_by_ports()
        ),
    );
    if let Some(limit) = m.fd_limit {
        let n = nodes_allowed_by_fds(limit, proxied);
        if n < tightest.0 {
            let proxy = if proxied { " with the fault proxy" } else { "" };
            tightest = (
                n,
                format!(
                    "{limit} file descriptors allow about {n} nodes{proxy}; raise it with ulimit -n"
                ),
            );
        }
    }
    if let Some(bytes) = m.mem_available_bytes {
        let n = nodes_allowed_by_memory(bytes);
        if n < tightest.0 {
            tightest = (
                n,
                format!(
                    "{} MiB of available memory at {} MiB per node allow about {n} nodes",
                    bytes >> 20,
                    NODE_RSS_BYTES >> 20
                ),
            );
        }
    }
    tightest
}

impl Scenario {
    /// Checks the scenario against `m`: the nodes must fit its ports, file descriptors and
    /// memory. Run before anything starts (PKI, processes).
    pub fn check_machine(&self, m: &Machine) -> Result<(), ScenarioError> {
        let (allowed, why) = nodes_allowed(m, self.faults.uses_proxy());
        if self.nodes > allowed {
            return Err(ScenarioError::Key {
                key: "nodes".into(),
                value: self.nodes.to_string(),
                problem: format!("is more than this machine allows ({why})"),
            });
        }
        Ok(())
    }

    /// What is allowed but unwise on `m`: many nodes per core.
    pub fn machine_warnings(&self, m: &Machine) -> Vec<String> {
        let cores = m.cores.max(1);
        if self.nodes > NODES_PER_CORE_WARN * cores {
            vec![format!(
                "scenario key \"nodes\" = {} is {} nodes per core on {cores} cores (more than {NODES_PER_CORE_WARN}): \
                 the nodes will compete for the CPU and the figures will show it",
                self.nodes,
                self.nodes / cores
            )]
        } else {
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: &str = "Limit                     Soft Limit           Hard Limit           Units     \n\
        Max cpu time              unlimited            unlimited            seconds   \n\
        Max open files            1024                 1048576              files     \n";

    fn machine(fd_limit: u64, mem_mib: u64, cores: usize) -> Machine {
        Machine {
            fd_limit: Some(fd_limit),
            mem_available_bytes: Some(mem_mib << 20),
            cores,
        }
    }

    #[test]
    fn parses_the_soft_fd_limit() {
        assert_eq!(parse_fd_limit(LIMITS), Some(1024));
        let unlimited = LIMITS.replace("1024 ", "unlimited ");
        assert_eq!(parse_fd_limit(&unlimited), Some(u64::MAX));
        assert_eq!(parse_fd_limit("nothing here"), None);
        let here = Machine::read();
        assert!(here.cores >= 1 && here.fd_limit.is_some(), "{here:?}");
    }

    #[test]
    fn fds_bound_the_nodes() {
        assert_eq!(nodes_allowed_by_fds(1024, false), 120);
        assert!(fds_needed(120, false) <= 1024 && fds_needed(121, false) > 1024);
        let proxied = nodes_allowed_by_fds(1024, true);
        assert!(
            proxied < 30,
            "the proxy holds both ends of every link: {proxied}"
        );
        assert_eq!(nodes_allowed_by_fds(u64::MAX, false), NODES_MAX);
        let s = Scenario {
            nodes: 500,
            ..Scenario::default()
        };
        let e = s.check_machine(&machine(1024, 64 << 10, 16)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "scenario key \"nodes\" = 500 is more than this machine allows \
             (1024 file descriptors allow about 120 nodes; raise it with ulimit -n)"
        );
        s.check_machine(&machine(65536, 64 << 10, 16)).unwrap();
    }

    #[test]
    fn memory_bounds_the_nodes() {
        let s = Scenario {
            nodes: 100,
            ..Scenario::default()
        };
        let e = s.check_machine(&machine(65536, 600, 16)).unwrap_err();
        let e = e.to_string();
        assert!(
            e.contains("\"nodes\" = 100") && e.contains("600 MiB") && e.contains("about 50 nodes"),
            "{e}"
        );
        s.check_machine(&machine(65536, 2048, 16)).unwrap();
    }

    #[test]
    fn ports_bound_the_nodes() {
        assert_eq!(nodes_allowed_by_ports(), 4000);
        assert!(
            NODES_MAX <= nodes_allowed_by_ports(),
            "the ceiling fits the ports"
        );
        let unknown = Machine {
            fd_limit: None,
            mem_available_bytes: None,
            cores: 1,
        };
        let (n, why) = nodes_allowed(&unknown, false);
        assert_eq!(n, 4000, "{why}");
        assert!(why.contains("listen ports"), "{why}");
    }

    #[test]
    fn many_nodes_per_core_warn_but_pass() {
        let s = Scenario {
            nodes: 200,
            ..Scenario::default()
        };
        let m = machine(65536, 64 << 10, 2);
        s.check_machine(&m).unwrap();
        let w = s.machine_warnings(&m);
        assert!(w.len() == 1 && w[0].contains("100 nodes per core"), "{w:?}");
        assert!(Scenario::default().machine_warnings(&m).is_empty());
    }
}
