//! Reading a gossip-node's counters from its operations endpoint (`GET /metrics`, the Prometheus
//! text format; `engine/CONTROL.md`, "Operations endpoint"): one plain HTTP/1.1 request with
//! `Connection: close`, bounded by [`SCRAPE_TIMEOUT`] at the end of a run and by
//! [`SAMPLE_SCRAPE_TIMEOUT`] at each resource sample (the tokio task gauge, [`TOKIO_TASKS`]).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Connect, write and read limit of one scrape.
pub const SCRAPE_TIMEOUT: Duration = Duration::from_secs(5);
/// Connect, write and read limit of the scrape at each resource sample: the sampling loop waits
/// at most this long per node, and a node slower than that has no task count in that sample.
pub const SAMPLE_SCRAPE_TIMEOUT: Duration = Duration::from_millis(500);
/// gossip-node's gauge of its tokio runtime's alive tasks, read at each resource sample.
pub const TOKIO_TASKS: &str = "gossip_engine_tokio_tasks_alive";
/// The longest `/metrics` reply read.
const REPLY_LEN_MAX_BYTES: u64 = 4 * 1024 * 1024;

/// The samples loadgen reads from `/metrics` at the end of a run: Fabric's counters, and the
/// sums and counts of gossip-node's stage histograms ([`STAGES`]).
pub const COUNTERS_READ: &[&str] = &[
    "gossip_comm_messages_sent",
    "gossip_comm_messages_received",
    "gossip_comm_overflow_count",
    "gossip_engine_verify_pool_seconds_sum",
    "gossip_engine_verify_pool_seconds_count",
    "gossip_engine_inbound_wait_seconds_sum",
    "gossip_engine_inbound_wait_seconds_count",
    "gossip_engine_handle_seconds_sum",
    "gossip_engine_handle_seconds_count",
    "gossip_engine_commit_seconds_sum",
    "gossip_engine_commit_seconds_count",
    "gossip_engine_verify_batch_len_sum",
    "gossip_engine_verify_batch_len_count",
];

/// gossip-node's stage histograms (`gossip_engine_<stage>` in `/metrics`) whose means the
/// report gives.
pub const STAGES: &[&str] = &[
    "verify_pool_seconds",
    "inbound_wait_seconds",
    "handle_seconds",
    "commit_seconds",
    "verify_batch_len",
];

/// `GET /metrics`: the body of a 200 reply.
pub fn scrape(addr: SocketAddr) -> std::io::Result<String> {
    scrape_within(addr, SCRAPE_TIMEOUT)
}

/// `GET /metrics` with `limit` on the connect, on the write and on each read.
pub fn scrape_within(addr: SocketAddr, limit: Duration) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(&addr, limit)?;
    s.set_read_timeout(Some(limit))?;
    s.set_write_timeout(Some(limit))?;
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut reply = String::new();
    s.take(REPLY_LEN_MAX_BYTES).read_to_string(&mut reply)?;
    let (head, body) = reply.split_once("\r\n\r\n").unwrap_or((&reply, ""));
    let status = head.split(' ').nth(1).unwrap_or("");
    if status != "200" {
        return Err(std::io::Error::other(format!(
            "GET /metrics: status {status:?}"
        )));
    }
    Ok(body.to_owned())
}

/// The unlabelled samples named in `names` (numbers; others skipped).
pub fn counters(text: &str, names: &[&str]) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once(' '))
        .filter(|(series, _)| names.contains(series))
        .filter_map(|(series, v)| Some(((*series).to_owned(), v.trim().parse().ok()?)))
        .collect()
}

/// The tokio task gauge ([`TOKIO_TASKS`]) of a `/metrics` text, when present.
pub fn tokio_tasks(text: &str) -> Option<u64> {
    counters(text, &[TOKIO_TASKS])
        .get(TOKIO_TASKS)
        .filter(|v| **v >= 0.0)
        .map(|v| *v as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_unlabelled_counters() {
        let text = "# HELP gossip_comm_messages_sent Number of messages sent\n\
                    # TYPE gossip_comm_messages_sent counter\n\
                    gossip_comm_messages_sent 42\n\
                    gossip_comm_messages_received 7\n\
                    gossip_state_height{channel=\"c\"} 3\n\
                    gossip_comm_overflow_count x\n";
        let got = counters(text, COUNTERS_READ);
        assert_eq!(got.get("gossip_comm_messages_sent"), Some(&42.0));
        assert_eq!(got.get("gossip_comm_messages_received"), Some(&7.0));
        assert_eq!(got.len(), 2, "labelled and non-numeric skipped");
    }

    #[test]
    fn reads_the_tokio_task_gauge() {
        let text = "# TYPE gossip_engine_tokio_tasks_alive gauge\n\
                    gossip_engine_tokio_tasks_alive 57\n\
                    gossip_engine_open_fds 31\n";
        assert_eq!(tokio_tasks(text), Some(57));
        assert_eq!(tokio_tasks("gossip_engine_open_fds 31\n"), None);
    }
}
