//! The control listener of `engine/CONTROL.md`: newline-delimited JSON over TCP. Each connection
//! has one writer task fed by two bounded queues, replies and (after `subscribe`) event lines, so
//! lines never interleave inside a line. The writer sends a reply at once, with the event lines
//! queued behind it; event lines wait up to [`EVENT_LINGER`] for more, so a subscriber under load
//! gets one write per batch instead of one per block (a write and a wake-up of the reader each).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use gossip_engine::ledger::Ledger;
use gossip_engine::types::NetworkMember;
use gossip_engine::{GossipHandle, GossipStats, clock};
use gossip_node::block::{BlockNonces, NONCE_LEN_BYTES, SignedBlockBuilder};
use gossip_node::control::{self, REQUEST_LINE_LEN_MAX_BYTES, Request, error_reply, ok_reply};
use serde_json::{Map, Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

/// Lines waiting for one connection's writer: replies, and event lines for a slow subscriber
/// before it loses some. tokio's channel allocates its slots in blocks as they fill, so an idle
/// or keeping-up connection holds a few KiB, not the whole bound.
const CONN_QUEUE_LEN_MAX: usize = 8_192;
/// The longest an event line waits in the writer for others to share its write. Event lines carry
/// their own timestamps, so the wait changes no measured figure.
const EVENT_LINGER: Duration = Duration::from_millis(50);
/// At shutdown, how long control connections may take to write their queued replies.
const SHUTDOWN_FLUSH_MAX: Duration = Duration::from_secs(2);
/// A batch is written once it holds this many bytes, lingering or not.
const WRITE_BATCH_LEN_MAX_BYTES: usize = 64 * 1024;

/// Replies waiting for one connection's writer (one request is answered at a time).
const REPLY_QUEUE_LEN_MAX: usize = 16;

/// What every connection shares.
pub struct Ctl {
    /// The running gossip instance.
    pub handle: GossipHandle,
    /// The connections subscribed to event lines.
    pub subscribers: Arc<Subscribers>,
    /// The fault filter's drop counter, when fault hooks are on.
    pub fault_dropped: Option<Arc<AtomicU64>>,
    /// Set to `true` to shut the process down.
    pub shutdown: watch::Sender<bool>,
    /// The threads the node runs on, for `stats`.
    pub runtime: RuntimeInfo,
    /// `--orderer-signer`: `inject_block` builds orderer-signed blocks with it.
    pub block_signer: Option<parking_lot::Mutex<SignedBlockBuilder>>,
    /// The ledger, for `ledger_height`.
    pub ledger: Arc<dyn Ledger>,
}

/// The threads a node runs on, reported in `stats` (with the build commit) so that a benchmark
/// records what ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RuntimeInfo {
    /// Tokio worker threads; 1 is tokio's current-thread scheduler on the main thread.
    pub worker_threads: usize,
    /// Signature-verifier threads; 0 checks signatures on the connection tasks.
    pub verifier_threads: usize,
}

impl RuntimeInfo {
    /// Whether the node runs tokio's current-thread scheduler (one worker thread).
    pub fn is_current_thread(&self) -> bool {
        self.worker_threads == 1
    }
}

/// The control connections subscribed to event lines, by their writer queues.
#[derive(Debug, Default)]
pub struct Subscribers {
    writers: parking_lot::Mutex<Vec<mpsc::Sender<Arc<str>>>>,
    lost_lines: AtomicU64,
}

impl Subscribers {
    /// Adds a connection's writer queue.
    pub fn add(&self, writer: mpsc::Sender<Arc<str>>) {
        self.writers.lock().push(writer);
    }

    /// Offers `line` to every subscriber without waiting: a subscriber whose queue is full loses
    /// it (counted, and warned at the 1st, 2nd, 4th, 8th... loss), a closed one is removed.
    pub fn publish(&self, line: Arc<str>) {
        let mut writers = self.writers.lock();
        writers.retain(|w| match w.try_send(Arc::clone(&line)) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                let lost = self.lost_lines.fetch_add(1, Ordering::Relaxed) + 1;
                if lost.is_power_of_two() {
                    tracing::warn!(target: "gossip-node.control", lost_total = lost, "slow control subscriber lost events");
                }
                true
            }
            Err(TrySendError::Closed(_)) => false,
        });
    }

    /// Event lines lost to full subscriber queues so far.
    pub fn lost_lines(&self) -> u64 {
        self.lost_lines.load(Ordering::Relaxed)
    }
}

/// Resolves when the shutdown flag turns true (or its sender is gone).
pub async fn stopped(rx: &mut watch::Receiver<bool>) {
    let stop = rx.wait_for(|s| *s).await.is_ok();
    let _ = stop;
}

/// Accepts control connections until `shutdown` turns true, then gives each connection up to
/// [`SHUTDOWN_FLUSH_MAX`] to write the replies it has queued (the reply to a `shutdown` request
/// among them) before the node exits.
pub async fn serve(listener: TcpListener, ctl: Arc<Ctl>) {
    let mut stop = ctl.shutdown.subscribe();
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = stopped(&mut stop) => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    connections.spawn(connection(stream, peer, Arc::clone(&ctl)));
                }
                Err(e) => {
                    tracing::warn!(target: "gossip-node.control", error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            // Reap ended connections so the set holds live ones only.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    let flushed = tokio::time::timeout(SHUTDOWN_FLUSH_MAX, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if flushed.is_err() {
        tracing::debug!(target: "gossip-node.control", left = connections.len(), "control connections not flushed in time");
    }
}

async fn connection(stream: TcpStream, peer: SocketAddr, ctl: Arc<Ctl>) {
    tracing::debug!(target: "gossip-node.control", %peer, "control connection");
    let (read, mut write) = stream.into_split();
    let (tx, replies) = mpsc::channel::<String>(REPLY_QUEUE_LEN_MAX);
    let (events_tx, events) = mpsc::channel::<Arc<str>>(CONN_QUEUE_LEN_MAX);
    let writer = tokio::spawn(async move {
        let mut out = Outgoing { replies, events };
        let mut batch = Vec::new();
        while out.next_batch(&mut batch).await {
            if write.write_all(&batch).await.is_err() {
                return;
            }
        }
    });
    let mut reader = BufReader::new(read);
    let mut stop = ctl.shutdown.subscribe();
    let mut subscribed = false;
    loop {
        let line = tokio::select! {
            _ = stopped(&mut stop) => break,
            line = read_line(&mut reader) => line,
        };
        let reply = match line {
            Ok(None) => break,
            Ok(Some(Err(too_long))) => error_reply(&too_long),
            Ok(Some(Ok(text))) if text.trim().is_empty() => continue,
            Ok(Some(Ok(text))) => match control::parse_request(&text) {
                Err(e) => error_reply(&e),
                Ok(Request::Subscribe) if !subscribed => {
                    subscribed = true;
                    // The reply is queued before this connection joins the subscribers and the
                    // writer takes replies first, so event lines follow it.
                    if tx.send(ok_reply(Map::new())).await.is_err() {
                        break;
                    }
                    ctl.subscribers.add(events_tx.clone());
                    continue;
                }
                Ok(req) => handle(&ctl, req).await,
            },
            Err(e) => {
                tracing::debug!(target: "gossip-node.control", %peer, error = %e, "read failed");
                break;
            }
        };
        if tx.send(reply).await.is_err() {
            break;
        }
    }
    drop(tx);
    let _ = writer.await;
}

/// What one connection's writer sends: replies, and event lines once subscribed.
struct Outgoing {
    replies: mpsc::Receiver<String>,
    events: mpsc::Receiver<Arc<str>>,
}

impl Outgoing {
    /// Fills `batch` with the next lines to write, each ending in a newline. A reply goes at once,
    /// with the replies and event lines queued behind it. An event line waits up to
    /// [`EVENT_LINGER`] for more (senders do not wake the writer meanwhile) unless a reply comes
    /// or [`WRITE_BATCH_LEN_MAX_BYTES`] are queued. `false` once the connection's reply queue is
    /// closed: its reader is gone.
    #[allow(clippy::disallowed_methods)] // a binary's timer, not the sans-IO core
    async fn next_batch(&mut self, batch: &mut Vec<u8>) -> bool {
        batch.clear();
        tokio::select! {
            biased;
            reply = self.replies.recv() => {
                let Some(reply) = reply else {
                    return false;
                };
                push_line(batch, &reply);
                while let Ok(reply) = self.replies.try_recv() {
                    push_line(batch, &reply);
                }
            }
            event = self.events.recv() => {
                let Some(event) = event else {
                    // Every event sender is gone: only replies remain.
                    return self.replies.recv().await.map(|r| push_line(batch, &r)).is_some();
                };
                push_line(batch, &event);
                self.drain_events(batch);
                if batch.len() < WRITE_BATCH_LEN_MAX_BYTES {
                    tokio::select! {
                        biased;
                        Some(reply) = self.replies.recv() => push_line(batch, &reply),
                        () = tokio::time::sleep(EVENT_LINGER) => {}
                    }
                }
            }
        }
        self.drain_events(batch);
        true
    }

    fn drain_events(&mut self, batch: &mut Vec<u8>) {
        while batch.len() < WRITE_BATCH_LEN_MAX_BYTES {
            match self.events.try_recv() {
                Ok(event) => push_line(batch, &event),
                Err(_) => return,
            }
        }
    }
}

fn push_line(batch: &mut Vec<u8>, line: &str) {
    batch.extend_from_slice(line.as_bytes());
    batch.push(b'\n');
}

/// Reads one line of at most [`REQUEST_LINE_LEN_MAX_BYTES`]: `None` at end of stream,
/// `Some(Err)` for an over-long line (skipped up to its newline).
async fn read_line(
    reader: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
) -> std::io::Result<Option<Result<String, String>>> {
    let mut line: Vec<u8> = Vec::new();
    let mut too_long = false;
    loop {
        let buf = reader.fill_buf().await?;
        if buf.is_empty() {
            return Ok(if line.is_empty() && !too_long {
                None
            } else if too_long {
                Some(Err(too_long_message()))
            } else {
                Some(Ok(String::from_utf8_lossy(&line).into_owned()))
            });
        }
        let (chunk, done) = match buf.iter().position(|b| *b == b'\n') {
            Some(i) => (&buf[..i], i + 1),
            None => (buf, buf.len()),
        };
        let found = done != chunk.len();
        if !too_long {
            if line.len() + chunk.len() > REQUEST_LINE_LEN_MAX_BYTES {
                too_long = true;
                line.clear();
            } else {
                line.extend_from_slice(chunk);
            }
        }
        reader.consume(done);
        if found {
            return Ok(Some(if too_long {
                Err(too_long_message())
            } else {
                Ok(String::from_utf8_lossy(&line).into_owned())
            }));
        }
    }
}

fn too_long_message() -> String {
    format!("bad request: line longer than {REQUEST_LINE_LEN_MAX_BYTES} bytes")
}

async fn handle(ctl: &Ctl, req: Request) -> String {
    let stopped = |e: gossip_engine::GossipError| error_reply(&e.to_string());
    let h = &ctl.handle;
    match req {
        Request::JoinChannel {
            channel,
            orgs,
            anchors,
        } => match h
            .join_chan(control::channel_config(&channel, &orgs, &anchors))
            .await
        {
            Ok(()) => ok_reply(Map::new()),
            Err(e) => stopped(e),
        },
        Request::LeaveChannel { channel } => {
            let name = Bytes::copy_from_slice(channel.as_bytes());
            match h.next_block_seq(name.clone()).await {
                Ok(None) => error_reply(&format!("not joined to channel {channel}")),
                Ok(Some(_)) => match h.leave_chan(name).await {
                    Ok(()) => ok_reply(Map::new()),
                    Err(e) => stopped(e),
                },
                Err(e) => stopped(e),
            }
        }
        Request::InjectBlock {
            channel,
            seq,
            size_bytes,
        } => {
            match h
                .admitted_end(Bytes::copy_from_slice(channel.as_bytes()))
                .await
            {
                Ok(Some(end)) if seq >= end => {
                    return error_reply(&format!(
                        "block {seq} is beyond what channel {channel} takes now: blocks below \
                         {end} (the delivery height plus 2 x peer.gossip.state.blockBufferSize); \
                         inject blocks in order"
                    ));
                }
                Ok(_) => {}
                Err(e) => return stopped(e),
            }
            let block = match injected_block(ctl, &channel, seq, size_bytes) {
                Ok(block) => block,
                Err(e) => return error_reply(&e),
            };
            let message = control::block_message(&channel, seq, block);
            let injected_unix_ns = clock::now().as_nanos();
            match h.gossip(message).await {
                Ok(()) => ok_reply(fields([("injected_unix_ns", json!(injected_unix_ns))])),
                Err(e) => stopped(e),
            }
        }
        Request::Subscribe => error_reply("already subscribed"),
        Request::Peers => match (h.peers().await, h.dead_peers().await) {
            (Ok(alive), Ok(dead)) => ok_reply(fields([
                ("alive", members_json(&alive)),
                ("dead", members_json(&dead)),
            ])),
            (Err(e), _) | (_, Err(e)) => stopped(e),
        },
        Request::PeersOfChannel { channel } => {
            match h
                .peers_of_channel(Bytes::copy_from_slice(channel.as_bytes()))
                .await
            {
                Ok(peers) => {
                    let list: Vec<Value> = peers
                        .iter()
                        .map(|(m, props)| {
                            json!({
                                "pki_id": m.pki_id.to_string(),
                                "endpoint": m.preferred_endpoint(),
                                "ledger_height": props.ledger_height,
                            })
                        })
                        .collect();
                    ok_reply(fields([("peers", Value::Array(list))]))
                }
                Err(e) => stopped(e),
            }
        }
        Request::Stats => match h.stats().await {
            Ok(stats) => {
                let dropped = ctl
                    .fault_dropped
                    .as_ref()
                    .map_or(0, |c| c.load(Ordering::Relaxed));
                let lost = ctl.subscribers.lost_lines();
                ok_reply(fields([(
                    "stats",
                    stats_json(&stats, dropped, lost, &ctl.runtime),
                )]))
            }
            Err(e) => stopped(e),
        },
        Request::LedgerHeight { channel } => {
            let ledger = Arc::clone(&ctl.ledger);
            let read = tokio::task::spawn_blocking(move || ledger.height(channel.as_bytes())).await;
            match read {
                Ok(Ok(height)) => ok_reply(fields([("height", json!(height))])),
                Ok(Err(e)) => error_reply(&format!("ledger: {e}")),
                Err(e) => error_reply(&format!("ledger: {e}")),
            }
        }
        Request::Leader { channel } => {
            match h
                .is_leader(Bytes::copy_from_slice(channel.as_bytes()))
                .await
            {
                Ok(Some(leader)) => ok_reply(fields([("leader", json!(leader))])),
                Ok(None) => error_reply(&format!("not joined to channel {channel}")),
                Err(e) => stopped(e),
            }
        }
        Request::Shutdown => {
            tracing::info!(target: "gossip-node", "shutdown requested over the control connection");
            let _ = ctl.shutdown.send(true);
            ok_reply(Map::new())
        }
    }
}

/// The block `inject_block` gossips: orderer-signed with `--orderer-signer`, else the filler block.
fn injected_block(ctl: &Ctl, channel: &str, seq: u64, size_bytes: usize) -> Result<Bytes, String> {
    let Some(builder) = &ctl.block_signer else {
        return Ok(control::build_block(seq, size_bytes));
    };
    let rng = ring::rand::SystemRandom::new();
    let mut nonces = BlockNonces {
        tx: [0; NONCE_LEN_BYTES],
        signature: [0; NONCE_LEN_BYTES],
    };
    ring::rand::SecureRandom::fill(&rng, &mut nonces.tx)
        .and_then(|()| ring::rand::SecureRandom::fill(&rng, &mut nonces.signature))
        .map_err(|_| "no OS randomness for the block's nonces".to_owned())?;
    let now_unix_s = clock::now().as_unix_secs();
    builder
        .lock()
        .build(channel, seq, size_bytes, now_unix_s, &nonces)
        .map_err(|e| e.to_string())
}

fn fields<const N: usize>(pairs: [(&str, Value); N]) -> Map<String, Value> {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

fn members_json(members: &[NetworkMember]) -> Value {
    Value::Array(
        members
            .iter()
            .map(|m| json!({"pki_id": m.pki_id.to_string(), "endpoint": m.preferred_endpoint()}))
            .collect(),
    )
}

/// `{"node":{...NodeStats},"comm":{...CommStats},"driver":{...DriverStats},"fault_dropped":N,
/// "control_lines_lost":N,"allocator":"mimalloc"|"system","runtime":{...}}`; `runtime.commit` is
/// the commit this binary was built from ([`gossip_node::ops::COMMIT_SHA`]).
pub fn stats_json(
    s: &GossipStats,
    fault_dropped: u64,
    control_lines_lost: u64,
    runtime: &RuntimeInfo,
) -> Value {
    let n = &s.node;
    let c = &s.comm;
    let d = &s.driver;
    let map_of =
        |m: Vec<(String, u64)>| Value::Object(m.into_iter().map(|(k, v)| (k, json!(v))).collect());
    json!({
        "node": {
            "emitted": n.emitted,
            "transmits": n.transmits,
            "events": n.events,
            "io_requests": n.io_requests,
            "blocks_delivered": n.blocks_delivered,
            "blocks_pulled": n.blocks_pulled,
            "pull": {
                "rounds": n.pull.rounds,
                "gap_rounds": n.pull.gap_rounds,
                "quiet_rounds": n.pull.quiet_rounds,
                "rounds_ended_early": n.pull.rounds_ended_early,
                "rounds_superseded": n.pull.rounds_superseded,
                "items_requested": n.pull.items_requested,
                "items_over_bound": n.pull.items_over_bound,
            },
            "blocks_transferred": n.blocks_transferred,
            "blocks_refilled": n.blocks_refilled,
            "state": {
                "requests_sent": n.state.requests_sent,
                "requests_timed_out": n.state.requests_timed_out,
                "responses_taken": n.state.responses_taken,
                "responses_late": n.state.responses_late,
                "transfers_completed": n.state.transfers_completed,
                "transfers_abandoned": n.state.transfers_abandoned,
                "requests_served": n.state.requests_served,
                "gap_repairs": n.state.gap_repairs,
            },
            "messages_handled": n.messages_handled,
            "outbox_overflowed": n.outbox_overflowed,
            "dropped": map_of(n.dropped.iter().map(|(r, v)| (format!("{r:?}"), *v)).collect()),
            "members_alive": n.members_alive,
            "members_dead": n.members_dead,
            "discovery": {
                "alive_created": n.discovery.alive_created,
                "became_alive": n.discovery.became_alive,
                "became_dead": n.discovery.became_dead,
                "purged": n.discovery.purged,
                "connects_abandoned": n.discovery.connects_abandoned,
            },
            "certstore": {
                "rounds": n.certstore.pull.rounds,
                "items_requested": n.certstore.pull.items_requested,
                "identities_pulled": n.certstore.identities_pulled,
                "items_len": n.certstore.items_len,
            },
        },
        "comm": {
            "messages_sent": c.messages_sent,
            "messages_received": c.messages_received,
            "overflow_count": c.overflow_count,
            "connections_opened": c.connections_opened,
            "connections_closed": c.connections_closed,
            "presumed_dead_dropped": c.presumed_dead_dropped,
            "identity_switches_dropped": c.identity_switches_dropped,
            "verified_inline_pool_full": c.verified_inline_pool_full,
            "verified_inline_uncontended": c.verified_inline_uncontended,
            "checks_skipped_verified": c.checks_skipped_verified,
            "wire_bytes_sent": c.wire_bytes_sent,
            "wire_bytes_received": c.wire_bytes_received,
            "rejects": map_of(c.rejects.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()),
            "handshake_failures": map_of(c.handshake_failures.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()),
            "refusals": map_of(c.refusals.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()),
            "overflow_by_peer": map_of(c.overflow_by_peer.iter().map(|(k, v)| (k.to_string(), *v)).collect()),
            "identities": {
                "len": c.identities.len,
                "evicted_expired": c.identities.evicted_expired,
                "evicted_lru": c.identities.evicted_lru,
                "purged_expired": c.identities.purged_expired,
                "purged_unused": c.identities.purged_unused,
                "refused_full": c.identities.refused_full,
                "refused_not_a_peer": c.identities.refused_not_a_peer,
                "refused_invalid": c.identities.refused_invalid,
            },
        },
        "driver": {
            "messages_handled": d.messages_handled,
            "bursts_limited": d.bursts_limited,
            "timeouts": d.timeouts,
            "commands": d.commands,
            "transmits": d.transmits,
            "transmits_unidentified": d.transmits_unidentified,
            "io_started": d.io_started,
            "io_refused": d.io_refused,
            "io_results_dropped": d.io_results_dropped,
            "io_tasks_failed": d.io_tasks_failed,
            "events_dropped": d.events_dropped,
            "pass_through_dropped": d.pass_through_dropped,
            "ledger_commits": d.ledger_commits,
            "ledger_commit_errors": d.ledger_commit_errors,
            "ledger_commits_skipped": d.ledger_commits_skipped,
            "ledger_commit_queue_full": d.ledger_commit_queue_full,
            "ledger_heights_acknowledged": d.ledger_heights_acknowledged,
            "ledger_blocks_served": d.ledger_blocks_served,
            "ledger_read_errors": d.ledger_read_errors,
        },
        "fault_dropped": fault_dropped,
        "control_lines_lost": control_lines_lost,
        "allocator": if cfg!(feature = "system-alloc") { "system" } else { "mimalloc" },
        "runtime": {
            "scheduler": if runtime.is_current_thread() { "current_thread" } else { "multi_thread" },
            "worker_threads": runtime.worker_threads,
            "verifier_threads": runtime.verifier_threads,
            "commit": gossip_node::ops::COMMIT_SHA,
        },
    })
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tokio's paused clock
mod tests {
    use super::*;
    use tokio::time::Instant;

    fn outgoing(events_len: usize) -> (mpsc::Sender<String>, mpsc::Sender<Arc<str>>, Outgoing) {
        let (replies_tx, replies) = mpsc::channel(REPLY_QUEUE_LEN_MAX);
        let (events_tx, events) = mpsc::channel(events_len);
        (replies_tx, events_tx, Outgoing { replies, events })
    }

    /// The next batch (`None` once closed) and how long, in paused time, it took.
    async fn timed_batch(out: &mut Outgoing) -> (Option<Vec<u8>>, Duration) {
        let started = Instant::now();
        let mut batch = Vec::new();
        let open = out.next_batch(&mut batch).await;
        (open.then_some(batch), started.elapsed())
    }

    #[tokio::test(start_paused = true)]
    async fn event_lines_share_a_write_and_a_reply_goes_at_once() {
        let (replies, events, mut out) = outgoing(16);
        // Events queued together, plus one within the linger: one batch, after the linger.
        events.send("a".into()).await.expect("send");
        events.send("b".into()).await.expect("send");
        let late = events.clone();
        tokio::spawn(async move {
            tokio::time::sleep(EVENT_LINGER / 2).await;
            late.send("c".into()).await.expect("send");
        });
        let (batch, took) = timed_batch(&mut out).await;
        assert_eq!(batch.as_deref(), Some(&b"a\nb\nc\n"[..]));
        assert_eq!(took, EVENT_LINGER);
        // A reply is written without lingering, with the events queued behind it.
        replies.send("{\"ok\":true}".into()).await.expect("send");
        events.send("d".into()).await.expect("send");
        let (batch, took) = timed_batch(&mut out).await;
        assert_eq!(batch.as_deref(), Some(&b"{\"ok\":true}\nd\n"[..]));
        assert_eq!(took, Duration::ZERO);
        // A reply ends an event's linger early.
        events.send("e".into()).await.expect("send");
        let replies_late = replies.clone();
        tokio::spawn(async move {
            tokio::time::sleep(EVENT_LINGER / 5).await;
            replies_late.send("r".into()).await.expect("send");
        });
        let (batch, took) = timed_batch(&mut out).await;
        assert_eq!(batch.as_deref(), Some(&b"e\nr\n"[..]));
        assert_eq!(took, EVENT_LINGER / 5);
        // The connection's end (its reply queue closed) ends the writer.
        drop(replies);
        assert_eq!(timed_batch(&mut out).await, (None, Duration::ZERO));
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_batch_is_written_without_waiting() {
        let (_replies, events, mut out) = outgoing(CONN_QUEUE_LEN_MAX);
        let line: Arc<str> = "x".repeat(1023).into();
        for _ in 0..(WRITE_BATCH_LEN_MAX_BYTES / 1024 + 5) {
            events.send(line.clone()).await.expect("send");
        }
        let (batch, took) = timed_batch(&mut out).await;
        assert_eq!(batch.map(|b| b.len()), Some(WRITE_BATCH_LEN_MAX_BYTES));
        assert_eq!(took, Duration::ZERO);
        // The rest is a batch of its own, lingering for company as any.
        let (batch, took) = timed_batch(&mut out).await;
        assert_eq!(batch.map(|b| b.len()), Some(5 * 1024));
        assert_eq!(took, EVENT_LINGER);
    }
}
