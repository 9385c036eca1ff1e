//! Leader following: with leader election on, loadgen delivers blocks as the orderer's deliver
//! service does, to whichever node is its org's elected leader now.
//!
//! A Fabric peer that becomes leader of a channel starts a deliver client, which asks the orderer
//! for blocks from its own ledger height on; one that steps down (or dies) stops it. Loadgen
//! keeps one *deliver cursor* per (node, channel) of a current leader ([`Router`]): a new leader's
//! cursor first waits for its `ledger_height` (fabric-node keeps no ledger: then the height its
//! in-order `block` events reached), then it is handed every block from there up to the newest
//! the schedule has produced, in order, and after that each block at its due time. While an org
//! has no leader its blocks are held (the orderer keeps them). Leadership comes from the nodes'
//! `leadership` events and from polling `leader` every [`POLL_INTERVAL_NS`]; a piece of news
//! older than what is known of the node is ignored. Every leader gets every block (two leaders
//! for a moment both run a deliver client in Fabric too).
//!
//! **Back-pressure:** a peer's deliver client adds blocks *blocking* (Fabric's `addPayload`
//! waits while the payload buffer runs `2 × state.blockBufferSize` ahead of the ledger), and
//! gossip-node drops an injected block that far ahead. So a leader is handed block `b` only
//! while `b` is less than `state.blockBufferSize` past the block after its newest in-order
//! delivery (its `block` events; at least the height it started from): a new leader's replay of
//! hundreds of blocks goes at the pace its ledger commits, not faster.
//!
//! [`LeaderFollower`] runs the cursors from a thread, with its own control connections.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use gossip_engine::event::Arrival;
use serde_json::{Value, json};

use crate::cluster::control::{ControlClient, ControlError, DeliveryKind, Feed};
use crate::measure::collect::Schedule;
use crate::measure::inject::{Injection, unix_now_ns};
use crate::scenario::{LeaderKill, Scenario};

mod router;
pub use router::{AHEAD_MAX_BLOCKS_DEFAULT, Cursor, Router, SendOutcome};

/// How often every node is asked `leader` on every channel, besides the events.
pub const POLL_INTERVAL_NS: u64 = 1_000_000_000;
/// Connect and reply limit of the follower's control requests.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// A `leadership` event line, or a `leader` answer.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct LeadershipEvent {
    /// Node index.
    pub node: usize,
    /// Channel name.
    pub channel: String,
    /// Leader now.
    pub leader: bool,
    /// When the node's election reported it (`unix_ns` of the event), Unix ns.
    pub unix_ns: u64,
}

/// A `leadership` event line of `node` ([`Feed::Leadership`]); `None` for any other line.
pub fn parse_leadership(node: usize, line: &str) -> Option<LeadershipEvent> {
    if !line.contains("\"leadership\"") {
        return None;
    }
    let v: Value = serde_json::from_str(line.trim()).ok()?;
    (v.get("event")?.as_str()? == "leadership").then_some(())?;
    Some(LeadershipEvent {
        node,
        channel: v.get("channel")?.as_str()?.to_owned(),
        leader: v.get("leader")?.as_bool()?,
        unix_ns: v.get("unix_ns").and_then(Value::as_u64).unwrap_or(0),
    })
}

/// A block receipt by the repair path (pull or state transfer), for the takeover figures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepairReceipt {
    /// Receiving node.
    pub node: usize,
    /// Channel name.
    pub channel: String,
    /// Block number.
    pub seq: u64,
    /// Pull or state transfer.
    pub via: Arrival,
    /// The node's `received_unix_ns`.
    pub received_unix_ns: u64,
}

/// One leader kill as it happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaderKillDone {
    /// The org.
    pub org: usize,
    /// The node killed (its leader then), `None` when no leader was known (nothing killed).
    pub node: Option<usize>,
    /// When loadgen sent SIGKILL (or found no leader), Unix ns.
    pub unix_ns: u64,
}

/// What leader following recorded, for the report.
#[derive(Clone, Debug, Default)]
pub struct LeaderLog {
    /// Org of every node.
    pub org_of: Vec<usize>,
    /// Channel names.
    pub channels: Vec<String>,
    /// Leadership changes as loadgen learnt them (events and polls that changed a cursor).
    pub changes: Vec<LeadershipEvent>,
    /// The leader kills.
    pub kills: Vec<LeaderKillDone>,
    /// Receipts by pull or state transfer.
    pub repairs: Vec<RepairReceipt>,
}

/// A block a leader took: node, channel index, block number, when (its `injected_unix_ns`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HandOver {
    /// The leader.
    pub node: usize,
    /// Channel index.
    pub channel: usize,
    /// Block number.
    pub seq: u64,
    /// When it took it, Unix ns.
    pub taken_unix_ns: u64,
}

#[derive(Default)]
struct Shared {
    router: Router,
    log: LeaderLog,
    injections: Vec<Injection>,
    /// Hand-overs the collector has not been told of.
    fresh: Vec<HandOver>,
}

/// Runs the deliver cursors (module docs) from a thread.
pub struct LeaderFollower {
    shared: Arc<Mutex<Shared>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    /// Leader kills not applied yet: (due, Unix ns; the kill), by time.
    kills_due: Vec<(u64, LeaderKill)>,
}

fn lock(m: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl LeaderFollower {
    /// Starts following for `s` on `schedule`: `controls` are the nodes' control addresses.
    pub fn start(
        s: &Scenario,
        controls: Vec<SocketAddr>,
        schedule: Schedule,
        size_bytes: u64,
    ) -> std::io::Result<Self> {
        let org_of: Vec<usize> = (0..s.nodes).map(|k| s.org_of(k)).collect();
        let shared = Arc::new(Mutex::new(Shared {
            router: Router::new(org_of.clone(), s.channels.clone())
                .with_ahead_max_blocks(block_buffer_size(s)),
            log: LeaderLog {
                org_of,
                channels: s.channels.clone(),
                ..LeaderLog::default()
            },
            ..Shared::default()
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let mut kills_due: Vec<(u64, LeaderKill)> = s
            .faults
            .leader_kills
            .iter()
            .map(|k| (schedule.start_unix_ns + (k.at_s * 1e9) as u64, k.clone()))
            .collect();
        kills_due.sort_by_key(|(t, _)| *t);
        let mut worker = Worker {
            shared: shared.clone(),
            stop: stop.clone(),
            clients: controls.iter().map(|_| None).collect(),
            controls,
            schedule,
            size_bytes,
        };
        let thread = std::thread::Builder::new()
            .name("leader-follower".into())
            .spawn(move || worker.run())?;
        Ok(LeaderFollower {
            shared,
            stop,
            thread: Some(thread),
            kills_due,
        })
    }

    /// Takes what the main loop's feed says about leadership, in-order heights and repairs.
    pub fn observe(&self, feed: &Feed) {
        let mut sh = lock(&self.shared);
        match feed {
            Feed::Leadership(e) => {
                if sh
                    .router
                    .leadership(e.node, &e.channel, e.leader, e.unix_ns)
                {
                    sh.log.changes.push(e.clone());
                }
            }
            Feed::Deliveries(batch) => {
                for d in batch {
                    match (d.kind, d.via) {
                        (DeliveryKind::InOrder, _) => sh.router.in_order(d.node, &d.channel, d.seq),
                        (
                            DeliveryKind::Received,
                            Some(via @ (Arrival::Pull | Arrival::StateTransfer)),
                        ) => {
                            sh.log.repairs.push(RepairReceipt {
                                node: d.node,
                                channel: d.channel.clone(),
                                seq: d.seq,
                                via,
                                received_unix_ns: d.received_unix_ns,
                            });
                        }
                        _ => {}
                    }
                }
            }
            Feed::Restarted(_) => {}
        }
    }

    /// Blocks leaders took since the last call.
    pub fn take_injected(&self) -> Vec<HandOver> {
        std::mem::take(&mut lock(&self.shared).fresh)
    }

    /// Leader kills due at `now`, each resolved to the org's leader on the first channel (the
    /// lowest index when loadgen knows two): (the kill, the node to kill or `None` when no
    /// leader is known). The router forgets the node's cursors.
    pub fn due_kills(&mut self, now: u64) -> Vec<(LeaderKill, Option<usize>)> {
        let mut out = Vec::new();
        while self.kills_due.first().is_some_and(|(t, _)| *t <= now) {
            let (_, kill) = self.kills_due.remove(0);
            let mut sh = lock(&self.shared);
            let node = sh.router.leaders(kill.org, 0).first().copied();
            if let Some(k) = node {
                sh.router.killed(k, now);
            }
            sh.log.kills.push(LeaderKillDone {
                org: kill.org,
                node,
                unix_ns: now,
            });
            out.push((kill, node));
        }
        out
    }

    /// Stops the thread; returns every hand-over, the log, and the hand-overs
    /// [`LeaderFollower::take_injected`] has not returned yet.
    pub fn finish(mut self) -> (Vec<Injection>, LeaderLog, Vec<HandOver>) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let mut sh = lock(&self.shared);
        (
            std::mem::take(&mut sh.injections),
            std::mem::take(&mut sh.log),
            std::mem::take(&mut sh.fresh),
        )
    }
}

/// The follower's thread.
struct Worker {
    shared: Arc<Mutex<Shared>>,
    stop: Arc<AtomicBool>,
    controls: Vec<SocketAddr>,
    clients: Vec<Option<ControlClient>>,
    schedule: Schedule,
    size_bytes: u64,
}

impl Worker {
    /// `op` on node `k`'s connection (connected on demand); a failed connection is dropped.
    fn request(&mut self, k: usize, req: &Value) -> Result<Value, ControlError> {
        if self.clients[k].is_none() {
            self.clients[k] = Some(ControlClient::connect(self.controls[k], REQUEST_TIMEOUT)?);
        }
        let Some(c) = self.clients[k].as_mut() else {
            return Err(ControlError::Closed(self.controls[k]));
        };
        let r = c.request(req);
        if matches!(
            r,
            Err(ControlError::Io { .. } | ControlError::Closed(_) | ControlError::BadReply { .. })
        ) {
            self.clients[k] = None;
        }
        r
    }

    fn run(&mut self) {
        let mut next_poll = 0u64;
        let stop = self.stop.clone();
        // Bounded: one pass every 2 ms or so for at most days.
        for _ in 0..100_000_000u64 {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            let now = unix_now_ns();
            if now >= next_poll {
                self.poll();
                next_poll = unix_now_ns() + POLL_INTERVAL_NS;
            }
            let waiting = lock(&self.shared).router.awaiting_height();
            for (k, ch) in waiting {
                let name = lock(&self.shared).router.channels()[ch].clone();
                let h = self
                    .request(k, &json!({"op": "ledger_height", "channel": name}))
                    .ok()
                    .and_then(|v| v.get("height").and_then(Value::as_u64));
                lock(&self.shared).router.height(k, ch, h);
            }
            // Hand over what is due; at most 64 blocks before polling and heights come again.
            for _ in 0..64 {
                let produced = self.schedule.due_by(unix_now_ns());
                let Some((k, ch, seq)) = lock(&self.shared).router.next_send(produced) else {
                    break;
                };
                self.send(k, ch, seq);
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Asks every node `leader` on every channel.
    fn poll(&mut self) {
        let channels = lock(&self.shared).router.channels().to_vec();
        for k in 0..self.controls.len() {
            for name in &channels {
                let asked = unix_now_ns();
                let Ok(v) = self.request(k, &json!({"op": "leader", "channel": name})) else {
                    continue;
                };
                let Some(leader) = v.get("leader").and_then(Value::as_bool) else {
                    continue;
                };
                let mut sh = lock(&self.shared);
                if sh.router.leadership(k, name, leader, asked) {
                    sh.log.changes.push(LeadershipEvent {
                        node: k,
                        channel: name.clone(),
                        leader,
                        unix_ns: asked,
                    });
                }
            }
        }
    }

    /// Hands block `seq` of channel `ch` to node `k`.
    fn send(&mut self, k: usize, ch: usize, seq: u64) {
        let name = lock(&self.shared).router.channels()[ch].clone();
        let sent_ns = unix_now_ns();
        let req = json!({"op": "inject_block", "channel": name, "seq": seq, "size_bytes": self.size_bytes});
        let reply = self.request(k, &req);
        let (outcome, injected_ns, error) = match reply {
            Ok(v) => (
                SendOutcome::Taken,
                v.get("injected_unix_ns")
                    .and_then(Value::as_u64)
                    .unwrap_or(sent_ns),
                None,
            ),
            Err(ControlError::Refused { error, .. }) => (SendOutcome::Refused, 0, Some(error)),
            Err(e) => (SendOutcome::Unreachable, 0, Some(e.to_string())),
        };
        let mut sh = lock(&self.shared);
        sh.router.sent(k, ch, seq, outcome);
        if outcome == SendOutcome::Taken {
            sh.fresh.push(HandOver {
                node: k,
                channel: ch,
                seq,
                taken_unix_ns: injected_ns,
            });
        }
        sh.injections.push(Injection {
            node: k,
            channel: ch,
            seq,
            due_ns: self.schedule.due_ns(seq),
            sent_ns,
            injected_ns,
            error,
        });
    }
}

/// `[gossip] "state.blockBufferSize"` of `s` when it is a positive integer, else Fabric's default.
pub fn block_buffer_size(s: &Scenario) -> u64 {
    s.gossip
        .get("state.blockBufferSize")
        .and_then(toml::Value::as_integer)
        .and_then(|n| u64::try_from(n).ok())
        .filter(|n| *n > 0)
        .unwrap_or(AHEAD_MAX_BLOCKS_DEFAULT)
}

/// Waits until every org has a leader on every channel, asking each node `leader` every 250 ms
/// until `deadline_ns`; returns the orgs (per channel) still without one at the end.
pub fn wait_for_leaders(
    clients: &mut [ControlClient],
    s: &Scenario,
    deadline_ns: u64,
) -> Vec<(String, usize)> {
    let mut missing = Vec::new();
    for _ in 0..100_000 {
        missing.clear();
        for ch in &s.channels {
            let mut has = vec![false; s.orgs];
            for (k, c) in clients.iter_mut().enumerate() {
                let leader = c
                    .request(&json!({"op": "leader", "channel": ch}))
                    .ok()
                    .and_then(|v| v.get("leader").and_then(Value::as_bool));
                if leader == Some(true) {
                    has[s.org_of(k)] = true;
                }
            }
            missing.extend((0..s.orgs).filter(|&o| !has[o]).map(|o| (ch.clone(), o)));
        }
        if missing.is_empty() || unix_now_ns() >= deadline_ns {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    missing
}

#[cfg(test)]
mod tests;
