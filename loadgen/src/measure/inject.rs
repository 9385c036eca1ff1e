//! Open-loop injection: a writer thread sends `inject_block` at each block's due time without
//! waiting for replies (the control protocol answers in order), and a reader thread pairs the
//! replies with the requests. A slow node therefore never delays the schedule; latency is
//! measured from the due time anyway.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::{Value, json};

use crate::measure::collect::Schedule;

/// One injection request and its outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Injection {
    /// Injecting node.
    pub node: usize,
    /// Channel index.
    pub channel: usize,
    /// Block number.
    pub seq: u64,
    /// Due time, Unix ns.
    pub due_ns: u64,
    /// When loadgen wrote the request, Unix ns.
    pub sent_ns: u64,
    /// The node's `injected_unix_ns` (0 when refused or unanswered).
    pub injected_ns: u64,
    /// Error text when refused.
    pub error: Option<String>,
}

/// Unix time now, ns (loadgen and the nodes share the machine's clock).
#[allow(clippy::disallowed_methods)] // the driver reads the real clock
pub fn unix_now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// The monotonic clock now (for intervals and deadlines; the one place loadgen reads it).
#[allow(clippy::disallowed_methods)] // the driver reads the real clock
pub fn mono_now() -> std::time::Instant {
    std::time::Instant::now()
}

/// Sleeps until Unix time `t_ns` or until `stop` (checked every 50 ms).
pub fn sleep_until(t_ns: u64, stop: &AtomicBool) {
    for _ in 0..1_000_000 {
        let now = unix_now_ns();
        if now >= t_ns || stop.load(Ordering::Relaxed) {
            return;
        }
        std::thread::sleep(Duration::from_nanos((t_ns - now).min(50_000_000)));
    }
}

/// A running injector for one node.
pub struct Injector {
    writer: Option<JoinHandle<()>>,
    reader: Option<JoinHandle<()>>,
    /// Outcomes, in request order.
    pub done: Arc<Mutex<Vec<Injection>>>,
}

impl Injector {
    /// Connects to `control` of node `node` and injects `schedule.blocks` blocks on every channel.
    pub fn start(
        node: usize,
        control: SocketAddr,
        channels: Vec<String>,
        schedule: Schedule,
        size_bytes: u64,
        stop: Arc<AtomicBool>,
    ) -> std::io::Result<Self> {
        let stream = TcpStream::connect_timeout(&control, Duration::from_secs(5))?;
        let _ = stream.set_nodelay(true);
        stream.set_read_timeout(Some(Duration::from_millis(200)))?;
        let mut out = stream.try_clone()?;
        let pending: Arc<Mutex<VecDeque<Injection>>> = Arc::default();
        let done: Arc<Mutex<Vec<Injection>>> = Arc::default();
        let writing = Arc::new(AtomicBool::new(true));
        let (p, w, s) = (pending.clone(), writing.clone(), stop.clone());
        let writer = std::thread::Builder::new()
            .name(format!("inject-{node}"))
            .spawn(move || {
                'outer: for seq in 1..=schedule.blocks {
                    let due_ns = schedule.due_ns(seq);
                    sleep_until(due_ns, &s);
                    if s.load(Ordering::Relaxed) {
                        break;
                    }
                    for (channel, name) in channels.iter().enumerate() {
                        let line = json!({"op": "inject_block", "channel": name, "seq": seq, "size_bytes": size_bytes});
                        let inj = Injection {
                            node,
                            channel,
                            seq,
                            due_ns,
                            sent_ns: unix_now_ns(),
                            injected_ns: 0,
                            error: None,
                        };
                        if let Ok(mut q) = p.lock() {
                            q.push_back(inj);
                        }
                        if out.write_all(format!("{line}\n").as_bytes()).is_err() {
                            break 'outer;
                        }
                    }
                }
                w.store(false, Ordering::SeqCst);
            })?;
        let (p, d) = (pending.clone(), done.clone());
        let reader = std::thread::Builder::new()
            .name(format!("inject-reply-{node}"))
            .spawn(move || {
                let mut r = BufReader::new(stream);
                let mut idle = 0u32;
                // Kept across read timeouts: a timeout can end a read in the middle of a line,
                // whose first part `read_line` has already appended here. Dropping it would pair
                // every later reply with the wrong request.
                let mut line = String::new();
                // Ends when the writer is done and every reply arrived, or after 10 s of
                // silence once the writer is done, or when stopped.
                for _ in 0..100_000_000u64 {
                    let outstanding = p.lock().map_or(0, |q| q.len());
                    if (!writing.load(Ordering::SeqCst) && outstanding == 0) || idle > 50 {
                        return;
                    }
                    match r.read_line(&mut line) {
                        Ok(0) => return,
                        Ok(_) => {
                            idle = 0;
                            let parsed = serde_json::from_str::<Value>(line.trim());
                            line.clear();
                            let Ok(v) = parsed else {
                                continue;
                            };
                            if v.get("event").is_some() {
                                continue;
                            }
                            let Some(mut inj) = p.lock().ok().and_then(|mut q| q.pop_front())
                            else {
                                continue;
                            };
                            if v.get("ok").and_then(Value::as_bool) == Some(true) {
                                inj.injected_ns = v
                                    .get("injected_unix_ns")
                                    .and_then(Value::as_u64)
                                    .unwrap_or(0);
                            } else {
                                inj.error = Some(
                                    v.get("error").and_then(Value::as_str).unwrap_or("?").into(),
                                );
                            }
                            if let Ok(mut d) = d.lock() {
                                d.push(inj);
                            }
                        }
                        Err(_) => {
                            if !writing.load(Ordering::SeqCst) || stop.load(Ordering::Relaxed) {
                                idle += 1;
                            }
                        }
                    }
                }
            })?;
        Ok(Injector {
            writer: Some(writer),
            reader: Some(reader),
            done,
        })
    }

    /// Whether both threads have finished.
    pub fn finished(&self) -> bool {
        self.writer.as_ref().is_none_or(JoinHandle::is_finished)
            && self.reader.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Joins the threads and returns the outcomes.
    pub fn join(mut self) -> Vec<Injection> {
        if let Some(h) = self.writer.take() {
            let _ = h.join();
        }
        if let Some(h) = self.reader.take() {
            let _ = h.join();
        }
        self.done.lock().map(|d| d.clone()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Write};

    use super::*;

    /// A fake node answers each `inject_block` in order, writing its second reply in two parts
    /// with a pause longer than the injector's read timeout between them.
    #[test]
    fn a_reply_split_across_a_read_timeout_is_still_paired_with_its_request() {
        let listener = gossip_testkit::ports::bind_local();
        let addr = listener.local_addr().expect("local addr");
        let node = std::thread::spawn(move || {
            let (stream, _) = listener.accept().expect("accept");
            let mut out = stream.try_clone().expect("clone");
            let mut lines = BufReader::new(stream);
            for seq in 1..=3u64 {
                let mut request = String::new();
                if lines.read_line(&mut request).unwrap_or(0) == 0 {
                    return;
                }
                let reply = format!("{{\"ok\":true,\"injected_unix_ns\":{}}}\n", seq * 1_000);
                if seq == 2 {
                    let (first, rest) = reply.split_at(10);
                    out.write_all(first.as_bytes()).expect("write");
                    out.flush().expect("flush");
                    std::thread::sleep(Duration::from_millis(500));
                    out.write_all(rest.as_bytes()).expect("write");
                } else {
                    out.write_all(reply.as_bytes()).expect("write");
                }
            }
        });
        let schedule = Schedule {
            start_unix_ns: unix_now_ns(),
            interval_ns: 1_000_000,
            jitter_ns: 0,
            blocks: 3,
            warmup_blocks: 0,
        };
        let stop = Arc::new(AtomicBool::new(false));
        let injector = Injector::start(0, addr, vec!["ch".into()], schedule, 16, stop)
            .expect("injector starts");
        let done = injector.join();
        node.join().expect("fake node");
        let injected: Vec<(u64, u64)> = done.iter().map(|i| (i.seq, i.injected_ns)).collect();
        assert_eq!(injected, vec![(1, 1_000), (2, 2_000), (3, 3_000)]);
    }
}
