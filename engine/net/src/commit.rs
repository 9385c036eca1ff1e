//! The driver's side of a [`Ledger`]: the committer thread, the heights it reports back, and the
//! reads that serve state requests (module [`ledger`](crate::ledger) says what the driver does
//! with a ledger).
//!
//! ```text
//!  driver task: Event::Block ─► try_send ─► bounded queue ─► committer thread: Ledger::commit
//!  driver task ◄─ UpdateLedgerHeight ◄─ take ◄─ newest height per channel + Notify ◄─┘
//! ```
//!
//! The node holds at most `2 × state.blockBufferSize` blocks delivered and not acknowledged per
//! channel, so the queue does not fill unless many channels commit at once on a slow store; a
//! block that finds it full is dropped and counted (the driver never waits), and the channel's
//! commits then stop at the gap it leaves, as after a commit error. Heights are coalesced: the
//! committer records the newest per channel, and the driver acknowledges them all at its next
//! wake-up.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use crossbeam_channel::{Receiver, Sender, TrySendError};
use gossip_proto::gossip::Payload;
use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::driver::DriverStats;
use crate::event::IoResult;
use crate::ledger::{Ledger, LedgerError};

/// Blocks queued for the committer thread. The node bounds the blocks delivered and not yet
/// acknowledged per channel (`2 × state.blockBufferSize`, 40 by default), so this covers about
/// a hundred channels committing at once.
pub const COMMIT_QUEUE_LEN_MAX: usize = 4_096;
/// The most blocks the committer takes from the queue at once (one [`Ledger::commit_batch`] per
/// channel among them). Batches form only when blocks arrive faster than they are committed.
pub const COMMIT_BATCH_LEN_MAX: usize = 64;
/// A batch takes no further block once it holds this many block bytes.
pub const COMMIT_BATCH_LEN_MAX_BYTES: usize = 4 * 1024 * 1024;
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

/// The driver's handle on its ledger: the committer thread, the counters, the heights
/// acknowledged to the node.
pub(crate) struct LedgerLink {
    ledger: Arc<dyn Ledger>,
    jobs: Option<Sender<Job>>,
    committed: Arc<Committed>,
    thread: Option<std::thread::JoinHandle<()>>,
    pub(crate) counters: Arc<LedgerCounters>,
    /// The highest height acknowledged to the node per channel.
    acknowledged: HashMap<Bytes, u64>,
}

impl LedgerLink {
    /// Starts the committer thread.
    pub(crate) fn start(ledger: Arc<dyn Ledger>) -> std::io::Result<LedgerLink> {
        let (tx, rx) = crossbeam_channel::bounded(COMMIT_QUEUE_LEN_MAX);
        let committed = Arc::new(Committed::default());
        let counters = Arc::new(LedgerCounters::default());
        let thread = std::thread::Builder::new()
            .name("ledger-commit".into())
            .spawn({
                let (ledger, committed, counters) = (
                    Arc::clone(&ledger),
                    Arc::clone(&committed),
                    Arc::clone(&counters),
                );
                move || {
                    CommitLoop {
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
            jobs: Some(tx),
            committed,
            thread: Some(thread),
            counters,
            acknowledged: HashMap::new(),
        })
    }

    /// Queues a delivered block for commit without waiting; a full queue drops it (counted).
    pub(crate) fn submit(&self, channel: &Bytes, payload: &Payload) {
        let Some(jobs) = &self.jobs else {
            return;
        };
        let job = Job {
            channel: channel.clone(),
            payload: payload.clone(),
        };
        match jobs.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(job)) => {
                let full = self
                    .counters
                    .commit_queue_full
                    .fetch_add(1, Ordering::Relaxed)
                    + 1;
                if full.is_power_of_two() {
                    tracing::error!(
                        target: "gossip.ledger", channel = %String::from_utf8_lossy(&job.channel),
                        seq_num = job.payload.seq_num, dropped_total = full,
                        "commit queue full: block not committed; the channel's commits stop at this gap"
                    );
                }
            }
            Err(TrySendError::Disconnected(_)) => {}
        }
    }

    /// Resolves when the committer has new heights (never, once it is gone).
    pub(crate) async fn committed(&self) {
        self.committed.changed.notified().await;
    }

    /// The heights committed since the last call, newest per channel, each recorded as
    /// acknowledged; a height at or below one acknowledged already is left out.
    pub(crate) fn take_heights(&mut self) -> Vec<(Bytes, u64)> {
        let taken = std::mem::take(&mut *self.committed.heights.lock());
        taken
            .into_iter()
            .filter(|(channel, height)| self.acknowledge(channel, *height))
            .collect()
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
    ledger: &'a dyn Ledger,
    committed: &'a Committed,
    counters: &'a LedgerCounters,
    heights: HashMap<Bytes, Option<u64>>,
}

impl CommitLoop<'_> {
    /// Takes the queued blocks in batches (what is queued when the thread gets to it, at most
    /// [`COMMIT_BATCH_LEN_MAX`] blocks and about [`COMMIT_BATCH_LEN_MAX_BYTES`]) and commits each
    /// channel's share with one [`Ledger::commit_batch`]. Ends when the queue closes.
    fn run(mut self, jobs: &Receiver<Job>) {
        while let Ok(first) = jobs.recv() {
            let mut size_bytes = first.payload.data.len();
            let mut batch: Vec<(Bytes, Vec<Payload>)> = Vec::new();
            let mut add = |job: Job| match batch.iter_mut().find(|(ch, _)| *ch == job.channel) {
                Some((_, payloads)) => payloads.push(job.payload),
                None => batch.push((job.channel, vec![job.payload])),
            };
            add(first);
            for _ in 1..COMMIT_BATCH_LEN_MAX {
                if size_bytes >= COMMIT_BATCH_LEN_MAX_BYTES {
                    break;
                }
                let Ok(job) = jobs.try_recv() else {
                    break;
                };
                size_bytes += job.payload.data.len();
                add(job);
            }
            for (channel, payloads) in batch {
                self.commit_channel(channel, payloads);
            }
        }
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
            match self.ledger.commit_batch(&channel, &payloads) {
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

/// The answer to the node's `ReadBlocks` request `token`: the blocks read from the ledger, or
/// none without one.
pub(crate) fn serve_blocks(
    ledger: Option<&LedgerLink>,
    channel: Bytes,
    start_seq: u64,
    end_seq: u64,
    token: u64,
) -> impl Future<Output = IoResult> + Send + 'static {
    let source = ledger.map(|l| (Arc::clone(&l.ledger), Arc::clone(&l.counters)));
    async move {
        let blocks = match source {
            Some((ledger, counters)) => {
                read_blocks(ledger, counters, channel, start_seq, end_seq).await
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
