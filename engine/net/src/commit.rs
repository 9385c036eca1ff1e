//! The driver's side of a [`Ledger`]: the committer thread, the heights it reports back, and the
//! reads that serve state requests (module [`ledger`](crate::ledger) says what the driver does
//! with a ledger).
//!
//! ```text
//!  driver task: Event::Block ─► pending (linger) ─► try_send batch ─► bounded queue ─┐
//!  committer thread: Ledger::commit_batch ◄──────────────────────────────────────────┘
//!  driver task ◄─ UpdateLedgerHeight ◄─ take ◄─ newest height per channel + Notify ◄─┘
//! ```
//!
//! Group commit: delivered blocks wait in the driver for up to [`CommitPolicy::linger`] (or
//! until [`CommitPolicy::close_len`] of them are pending) and go to the committer thread as one
//! batch, committed with one transaction and acknowledged with one wake-up. A commit costs a
//! durable write (an `fsync`) and two wake-ups across threads whatever its size, and at tens of
//! blocks per second those, paid once per block, cost more CPU than gossiping the block
//! (`results/cluster-runs.md`, "Sixteenth round"). Until it is committed a block is only
//! delivered: a crash loses at most one linger's worth, which the node fetches again from its
//! peers (state transfer) after the restart.
//!
//! The node holds at most `2 × state.blockBufferSize` blocks delivered and not acknowledged per
//! channel, so the queue does not fill unless many channels commit at once on a slow store; a
//! batch that finds it full is dropped and its blocks counted (the driver never waits), and the
//! channel's commits then stop at the gap it leaves, as after a commit error. Heights are
//! coalesced: the committer records the newest per channel, and the driver acknowledges them all
//! at its next wake-up.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use crossbeam_channel::{Receiver, Sender, TrySendError};
use gossip_proto::gossip::Payload;
use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::driver::DriverStats;
use crate::event::IoResult;
use crate::histogram::{DEFAULT_BOUNDS_S, Histogram};
use crate::ledger::{Ledger, LedgerError};
use crate::time::Instant;
use crate::uncommitted::Uncommitted;

/// Blocks queued for the committer thread (in batches). The node bounds the blocks delivered and not yet
/// acknowledged per channel (`2 × state.blockBufferSize`, 40 by default), so this covers about
/// a hundred channels committing at once.
pub const COMMIT_QUEUE_LEN_MAX: usize = 4_096;
/// The most blocks the committer takes from the queue at once (one [`Ledger::commit_batch`] per
/// channel among them). Batches form only when blocks arrive faster than they are committed.
pub const COMMIT_BATCH_LEN_MAX: usize = 64;
/// A batch takes no further block once it holds this many block bytes.
pub const COMMIT_BATCH_LEN_MAX_BYTES: usize = 4 * 1024 * 1024;

/// How delivered blocks are grouped into ledger transactions (module doc).
#[derive(Clone, Copy, Debug)]
pub(crate) struct CommitPolicy {
    /// How long a delivered block waits for others to share its transaction (zero: none).
    pub(crate) linger: Duration,
    /// A batch goes at once when it holds this many blocks (the node stops delivering at
    /// twice `state.blockBufferSize` unacknowledged blocks; sending at half of that keeps
    /// delivery from waiting out the linger).
    pub(crate) close_len: usize,
}
/// The most blocks one `ReadBlocks` request reads (a state request asks for `state.batchSize`
/// + 1, 11 by default); a longer range is cut to its first blocks.
pub const READ_BLOCKS_LEN_MAX: u64 = 1_024;

/// Ledger counters, shared by the driver, the committer thread and read tasks.
#[derive(Debug, Default)]
pub(crate) struct LedgerCounters {
    pub(crate) commits: AtomicU64,
    pub(crate) commit_errors: AtomicU64,
    pub(crate) commits_skipped: AtomicU64,
    pub(crate) commit_queue_full: AtomicU64,
    pub(crate) blocks_served: AtomicU64,
    pub(crate) read_errors: AtomicU64,
    /// Each ledger transaction's time.
    pub(crate) commit_time: Histogram,
    /// Per channel, each committed block's transaction time (Fabric's
    /// `gossip_state_commit_duration`); one entry per channel the driver commits to, which are
    /// the joined ones.
    pub(crate) commit_time_by_channel: Mutex<BTreeMap<Bytes, Histogram>>,
}

impl LedgerCounters {
    /// Copies the counters into the driver's.
    pub(crate) fn fill(&self, stats: &mut DriverStats) {
        let read = |a: &AtomicU64| a.load(Ordering::Relaxed);
        stats.ledger_commits = read(&self.commits);
        stats.ledger_commit_errors = read(&self.commit_errors);
        stats.ledger_commits_skipped = read(&self.commits_skipped);
        stats.ledger_commit_queue_full = read(&self.commit_queue_full);
        stats.ledger_blocks_served = read(&self.blocks_served);
        stats.ledger_read_errors = read(&self.read_errors);
        stats.commit_seconds = self.commit_time.snapshot();
        stats.commit_duration_by_channel = self
            .commit_time_by_channel
            .lock()
            .iter()
            .map(|(channel, h)| (channel.clone(), h.snapshot()))
            .collect();
    }

    /// Records a transaction of `blocks` blocks to `channel` that took `took`.
    fn observe_commit(&self, channel: &Bytes, blocks: usize, took: Duration) {
        self.commit_time.observe_duration(took);
        let mut by_channel = self.commit_time_by_channel.lock();
        by_channel
            .entry(channel.clone())
            .or_insert_with(|| Histogram::seconds(DEFAULT_BOUNDS_S))
            .observe_duration_times(took, blocks as u64);
    }
}

/// What the committer hands back to the driver.
#[derive(Debug, Default)]
struct Committed {
    /// The newest height per channel not yet taken by the driver.
    heights: Mutex<BTreeMap<Bytes, u64>>,
    changed: Notify,
}

struct Job {
    channel: Bytes,
    payload: Payload,
}

/// Delivered blocks the driver holds back for the next batch.
struct Pending {
    jobs: Vec<Job>,
    /// When the pending blocks go at the latest (the first one's arrival plus the linger).
    due: Option<Instant>,
}

/// The driver's handle on its ledger: the committer thread, the counters, the heights
/// acknowledged to the node.
pub(crate) struct LedgerLink {
    ledger: Arc<dyn Ledger>,
    policy: CommitPolicy,
    jobs: Option<Sender<Vec<Job>>>,
    pending: Pending,
    /// Blocks in the queue (sent by the driver, not yet taken by the committer).
    queued: Arc<AtomicUsize>,
    committed: Arc<Committed>,
    thread: Option<std::thread::JoinHandle<()>>,
    pub(crate) counters: Arc<LedgerCounters>,
    /// The highest height acknowledged to the node per channel.
    acknowledged: HashMap<Bytes, u64>,
    /// Blocks submitted and not yet acknowledged, for state requests.
    uncommitted: Uncommitted,
}

impl LedgerLink {
    /// Starts the committer thread.
    pub(crate) fn start(
        ledger: Arc<dyn Ledger>,
        policy: CommitPolicy,
    ) -> std::io::Result<LedgerLink> {
        let (tx, rx) = crossbeam_channel::bounded(COMMIT_QUEUE_LEN_MAX);
        let queued = Arc::new(AtomicUsize::new(0));
        let committed = Arc::new(Committed::default());
        let counters = Arc::new(LedgerCounters::default());
        let thread = std::thread::Builder::new()
            .name("ledger-commit".into())
            .spawn({
                let (ledger, committed, counters, queued) = (
                    Arc::clone(&ledger),
                    Arc::clone(&committed),
                    Arc::clone(&counters),
                    Arc::clone(&queued),
                );
                move || {
                    CommitLoop {
                        queued: &queued,
                        ledger: &*ledger,
                        committed: &committed,
                        counters: &counters,
                        heights: HashMap::new(),
                    }
                    .run(&rx);
                }
            })?;
        Ok(LedgerLink {
            ledger,
            policy,
            jobs: Some(tx),
            pending: Pending {
                jobs: Vec::new(),
                due: None,
            },
            queued,
            committed,
            thread: Some(thread),
            counters,
            acknowledged: HashMap::new(),
            uncommitted: Uncommitted::default(),
        })
    }

    /// Takes a delivered block for commit without waiting: it goes with the pending ones when
    /// they are due ([`LedgerLink::flush_due_at`]) or at once when they are [`CommitPolicy::close_len`].
    pub(crate) fn submit(&mut self, channel: &Bytes, payload: &Payload) {
        if self.jobs.is_none() {
            return;
        }
        self.uncommitted.insert(channel, payload);
        self.pending.jobs.push(Job {
            channel: channel.clone(),
            payload: payload.clone(),
        });
        if self.policy.linger.is_zero() || self.pending.jobs.len() >= self.policy.close_len {
            self.flush();
        } else if self.pending.due.is_none() {
            self.pending.due = Some(crate::clock::now() + self.policy.linger);
        }
    }

    /// Blocks delivered and not yet taken by the committer: held back for the next batch, and
    /// queued.
    pub(crate) fn waiting_len(&self) -> usize {
        self.pending.jobs.len() + self.queued.load(Ordering::Relaxed)
    }

    /// When the pending blocks are due ([`LedgerLink::flush`]); `None` while none are. The
    /// driver folds it into its one timer.
    pub(crate) fn flush_due_at(&self) -> Option<Instant> {
        self.pending.due
    }

    /// Sends the pending blocks to the committer as one batch; a full queue drops them (counted).
    pub(crate) fn flush(&mut self) {
        self.pending.due = None;
        let Some(jobs) = &self.jobs else {
            return;
        };
        if self.pending.jobs.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.pending.jobs);
        let len = batch.len();
        let room = COMMIT_QUEUE_LEN_MAX.saturating_sub(self.queued.load(Ordering::Acquire));
        let refused = if len > room {
            Some(batch)
        } else {
            self.queued.fetch_add(len, Ordering::AcqRel);
            match jobs.try_send(batch) {
                Ok(()) => None,
                Err(TrySendError::Full(batch) | TrySendError::Disconnected(batch)) => {
                    self.queued.fetch_sub(len, Ordering::AcqRel);
                    Some(batch)
                }
            }
        };
        let Some(batch) = refused else {
            return;
        };
        let before = self
            .counters
            .commit_queue_full
            .fetch_add(len as u64, Ordering::Relaxed);
        let full = before + len as u64;
        // Logged when the total passes a power of two, as before batching: a full queue stays
        // full for a while, and one line per refused batch would flood the log.
        if before.checked_ilog2() == full.checked_ilog2() {
            return;
        }
        let first = &batch[0];
        tracing::error!(
            target: "gossip.ledger", channel = %String::from_utf8_lossy(&first.channel),
            seq_num = first.payload.seq_num, blocks = len, dropped_total = full,
            "commit queue full: blocks not committed; the channel's commits stop at this gap"
        );
    }

    /// Resolves when the committer has new heights (never, once it is gone).
    pub(crate) async fn committed(&self) {
        self.committed.changed.notified().await;
    }

    /// The heights committed since the last call, newest per channel, each recorded as
    /// acknowledged; a height at or below one acknowledged already is left out.
    pub(crate) fn take_heights(&mut self) -> Vec<(Bytes, u64)> {
        let taken = std::mem::take(&mut *self.committed.heights.lock());
        let acknowledged: Vec<(Bytes, u64)> = taken
            .into_iter()
            .filter(|(channel, height)| self.acknowledge(channel, *height))
            .collect();
        for (channel, height) in &acknowledged {
            self.uncommitted.committed(channel, *height);
        }
        acknowledged
    }

    /// The height to acknowledge when `channel` is joined, given the ledger's (`None`: it could
    /// not be read): never below one acknowledged already.
    pub(crate) fn join_height(&mut self, channel: &Bytes, read: Option<u64>) -> Option<u64> {
        let known = self.acknowledged.get(channel).copied();
        let height = read.max(known)?;
        self.acknowledge(channel, height);
        Some(height)
    }

    /// Records `height` as acknowledged; `false` if it is not above the last one.
    fn acknowledge(&mut self, channel: &Bytes, height: u64) -> bool {
        let last = self.acknowledged.entry(channel.clone()).or_insert(0);
        if height <= *last {
            return false;
        }
        *last = height;
        true
    }

    /// Closes the queue and waits for the committer to commit what it holds.
    pub(crate) async fn stop(&mut self) {
        self.flush();
        drop(self.jobs.take());
        if let Some(thread) = self.thread.take() {
            let joined = tokio::task::spawn_blocking(move || thread.join()).await;
            if !matches!(joined, Ok(Ok(()))) {
                tracing::error!(target: "gossip.ledger", "the committer thread panicked");
            }
        }
    }
}

/// The committer thread's state: the ledger's height per channel as the thread left it (`None`:
/// the channel's commits stopped).
struct CommitLoop<'a> {
    queued: &'a AtomicUsize,
    ledger: &'a dyn Ledger,
    committed: &'a Committed,
    counters: &'a LedgerCounters,
    heights: HashMap<Bytes, Option<u64>>,
}

impl CommitLoop<'_> {
    /// Takes the queued batches (what is queued when the thread gets to it, at most
    /// [`COMMIT_BATCH_LEN_MAX`] blocks and about [`COMMIT_BATCH_LEN_MAX_BYTES`] unless one batch
    /// of the driver's is larger) and commits each channel's share with one
    /// [`Ledger::commit_batch`]. Ends when the queue closes.
    fn run(mut self, jobs: &Receiver<Vec<Job>>) {
        while let Ok(first) = jobs.recv() {
            let mut batch: Vec<(Bytes, Vec<Payload>)> = Vec::new();
            let (mut len, mut size_bytes) = self.add(&mut batch, first);
            while len < COMMIT_BATCH_LEN_MAX && size_bytes < COMMIT_BATCH_LEN_MAX_BYTES {
                let Ok(taken) = jobs.try_recv() else {
                    break;
                };
                let (l, b) = self.add(&mut batch, taken);
                (len, size_bytes) = (len + l, size_bytes + b);
            }
            for (channel, payloads) in batch {
                self.commit_channel(channel, payloads);
            }
        }
    }

    /// Adds a batch taken from the queue to `batch`, grouped by channel; returns its blocks and
    /// block bytes.
    fn add(&self, batch: &mut Vec<(Bytes, Vec<Payload>)>, taken: Vec<Job>) -> (usize, usize) {
        self.queued.fetch_sub(taken.len(), Ordering::AcqRel);
        let len = taken.len();
        let mut size_bytes = 0;
        for job in taken {
            size_bytes += job.payload.data.len();
            match batch.iter_mut().find(|(ch, _)| *ch == job.channel) {
                Some((_, payloads)) => payloads.push(job.payload),
                None => batch.push((job.channel, vec![job.payload])),
            }
        }
        (len, size_bytes)
    }

    /// Commits `payloads` (delivered in order) to `channel`: blocks below the ledger's height are
    /// skipped (committed before, e.g. delivered again after a restart), the consecutive blocks
    /// from the height are committed, and a block beyond a gap stops the channel.
    fn commit_channel(&mut self, channel: Bytes, mut payloads: Vec<Payload>) {
        let height = match self.heights.get(&channel) {
            Some(None) => return,
            Some(Some(h)) => *h,
            None => match self.ledger.height(&channel) {
                Ok(h) => h,
                Err(e) => return self.stop(&channel, payloads[0].seq_num, &e),
            },
        };
        let before = payloads.len();
        payloads.retain(|p| p.seq_num >= height);
        let skipped = (before - payloads.len()) as u64;
        self.counters
            .commits_skipped
            .fetch_add(skipped, Ordering::Relaxed);
        let consecutive = payloads
            .iter()
            .zip(height..)
            .take_while(|(p, seq)| p.seq_num == *seq)
            .count();
        let beyond_gap = payloads.get(consecutive).map(|p| p.seq_num);
        payloads.truncate(consecutive);
        let mut new_height = height;
        if !payloads.is_empty() {
            let started = crate::clock::stopwatch();
            let committed = self.ledger.commit_batch(&channel, &payloads);
            self.counters
                .observe_commit(&channel, payloads.len(), started.elapsed());
            match committed {
                Ok(()) => {
                    self.counters
                        .commits
                        .fetch_add(payloads.len() as u64, Ordering::Relaxed);
                    new_height = height + payloads.len() as u64;
                }
                Err(e) => {
                    // A store may have committed a prefix: its height says.
                    let reached = self.ledger.height(&channel).unwrap_or(height).max(height);
                    if reached > height {
                        self.counters
                            .commits
                            .fetch_add(reached - height, Ordering::Relaxed);
                        report(self.committed, channel.clone(), reached);
                    }
                    return self.stop(&channel, reached, &e);
                }
            }
        }
        if new_height > height || skipped > 0 {
            self.heights.insert(channel.clone(), Some(new_height));
            report(self.committed, channel.clone(), new_height);
        }
        if let Some(seq_num) = beyond_gap {
            let gap = LedgerError::OutOfOrder {
                seq_num,
                height: new_height,
            };
            self.stop(&channel, seq_num, &gap);
        }
    }

    /// Stops `channel`'s commits after `e` (counted and logged).
    fn stop(&mut self, channel: &Bytes, seq_num: u64, e: &LedgerError) {
        self.counters.commit_errors.fetch_add(1, Ordering::Relaxed);
        tracing::error!(
            target: "gossip.ledger", channel = %String::from_utf8_lossy(channel), seq_num, error = %e,
            "commit failed: no further block of this channel is committed until the node restarts"
        );
        self.heights.insert(channel.clone(), None);
    }
}

fn report(committed: &Committed, channel: Bytes, height: u64) {
    let mut heights = committed.heights.lock();
    let entry = heights.entry(channel).or_insert(height);
    *entry = (*entry).max(height);
    drop(heights);
    committed.changed.notify_one();
}

/// The answer to the node's `ReadBlocks` request `token`: the blocks delivered and not yet
/// committed ([`Uncommitted`]) and those read from the ledger, or none without one. The ledger is
/// not read when the uncommitted blocks are the whole range.
pub(crate) fn serve_blocks(
    ledger: Option<&LedgerLink>,
    channel: Bytes,
    start_seq: u64,
    end_seq: u64,
    token: u64,
) -> impl Future<Output = IoResult> + Send + 'static {
    let end_seq = end_seq.min(start_seq.saturating_add(READ_BLOCKS_LEN_MAX - 1));
    let source = ledger.map(|l| {
        let (recent, whole) = l.uncommitted.range(&channel, start_seq, end_seq);
        l.counters
            .blocks_served
            .fetch_add(recent.len() as u64, Ordering::Relaxed);
        let read = (!whole).then(|| (Arc::clone(&l.ledger), Arc::clone(&l.counters)));
        (recent, read)
    });
    async move {
        let blocks = match source {
            Some((recent, None)) => recent,
            Some((recent, Some((ledger, counters)))) => {
                let mut blocks = read_blocks(ledger, counters, channel, start_seq, end_seq).await;
                // The node sorts and deduplicates: a block may have been committed meanwhile.
                blocks.extend(recent);
                blocks
            }
            None => Vec::new(),
        };
        IoResult::Blocks { token, blocks }
    }
}

/// Reads the blocks a state request asks for, off the runtime's threads: at most
/// [`READ_BLOCKS_LEN_MAX`] of them; none on a read error (logged and counted).
pub(crate) async fn read_blocks(
    ledger: Arc<dyn Ledger>,
    counters: Arc<LedgerCounters>,
    channel: Bytes,
    start_seq: u64,
    end_seq: u64,
) -> Vec<Payload> {
    let end_seq = end_seq.min(start_seq.saturating_add(READ_BLOCKS_LEN_MAX - 1));
    if start_seq > end_seq {
        return Vec::new();
    }
    let read = {
        let channel = channel.clone();
        tokio::task::spawn_blocking(move || ledger.blocks(&channel, start_seq, end_seq)).await
    };
    match read {
        Ok(Ok(blocks)) => {
            counters
                .blocks_served
                .fetch_add(blocks.len() as u64, Ordering::Relaxed);
            blocks
        }
        Ok(Err(e)) => {
            counters.read_errors.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                target: "gossip.ledger", channel = %String::from_utf8_lossy(&channel),
                start_seq, end_seq, error = %e, "reading blocks for a state request failed"
            );
            Vec::new()
        }
        Err(_) => {
            counters.read_errors.fetch_add(1, Ordering::Relaxed);
            Vec::new()
        }
    }
}

/// The ledger's height of `channel`, read off the runtime's threads; `None` on an error (logged).
pub(crate) async fn read_height(ledger: &Arc<dyn Ledger>, channel: &Bytes) -> Option<u64> {
    let read = {
        let (ledger, channel) = (Arc::clone(ledger), channel.clone());
        tokio::task::spawn_blocking(move || ledger.height(&channel)).await
    };
    match read {
        Ok(Ok(height)) => Some(height),
        Ok(Err(e)) => {
            tracing::error!(
                target: "gossip.ledger", channel = %String::from_utf8_lossy(channel), error = %e,
                "reading the ledger height failed: the channel is joined at the node's own height"
            );
            None
        }
        Err(_) => None,
    }
}

#[cfg(test)]
#[path = "commit_tests.rs"]
mod tests;
