//! The committer and the state-request reads, with [`MemLedger`] and ledgers that fail or wait
//! on purpose. Waits are bounded; nothing asserts on timing.

#![allow(clippy::disallowed_methods)] // bounded waits on the real clock

use std::time::{Duration, Instant};

use super::*;
use crate::ledger::tests::block;
use crate::ledger::{INITIAL_HEIGHT, MemLedger};

/// The policy of a node with default settings and no linger.
const POLICY: CommitPolicy = CommitPolicy {
    linger: Duration::ZERO,
    close_len: 20,
};

const WAIT: Duration = Duration::from_secs(20);

fn ch(name: &'static str) -> Bytes {
    Bytes::from_static(name.as_bytes())
}

/// Collects the heights the committer reports until `done` holds for them (bounded).
async fn heights_until(
    link: &mut LedgerLink,
    done: impl Fn(&BTreeMap<Bytes, u64>) -> bool,
) -> BTreeMap<Bytes, u64> {
    let mut seen = BTreeMap::new();
    let deadline = Instant::now() + WAIT;
    while !done(&seen) {
        assert!(Instant::now() < deadline, "heights so far: {seen:?}");
        let _ = tokio::time::timeout(Duration::from_millis(100), link.committed()).await;
        seen.extend(link.take_heights());
    }
    seen
}

/// Waits (bounded) until `cond` holds.
fn wait_for(cond: impl Fn() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !cond() {
        assert!(Instant::now() < deadline, "condition never held");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn count(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

#[tokio::test]
async fn blocks_are_committed_in_order_and_heights_come_back() {
    let ledger = Arc::new(MemLedger::default());
    let mut link = LedgerLink::start(ledger.clone(), POLICY).expect("thread");
    for seq in 1..=5 {
        link.submit(&ch("a"), &block(seq));
    }
    link.submit(&ch("b"), &block(1));
    let seen = heights_until(&mut link, |h| {
        h.get(&ch("a")) == Some(&6) && h.get(&ch("b")) == Some(&2)
    })
    .await;
    assert_eq!(seen.len(), 2);
    assert_eq!(ledger.height(b"a").unwrap(), 6);
    assert_eq!(ledger.blocks(b"a", 1, 5).unwrap().len(), 5);
    assert_eq!(count(&link.counters.commits), 6);
    link.stop().await;
}

#[tokio::test]
async fn blocks_below_the_ledger_height_are_skipped_not_committed_again() {
    let ledger = Arc::new(MemLedger::default());
    for seq in 1..=3 {
        ledger.commit(b"a", &block(seq)).expect("commit");
    }
    let mut link = LedgerLink::start(ledger.clone(), POLICY).expect("thread");
    for seq in 1..=4 {
        link.submit(&ch("a"), &block(seq));
    }
    heights_until(&mut link, |h| h.get(&ch("a")) == Some(&5)).await;
    assert_eq!(count(&link.counters.commits_skipped), 3);
    assert_eq!(count(&link.counters.commits), 1);
    assert_eq!(count(&link.counters.commit_errors), 0);
    link.stop().await;
}

/// A ledger whose commits of one channel fail from one block on.
struct FailingLedger {
    inner: MemLedger,
    channel: &'static [u8],
    from_seq: u64,
}

impl Ledger for FailingLedger {
    fn commit(&self, channel: &[u8], payload: &Payload) -> Result<(), LedgerError> {
        if channel == self.channel && payload.seq_num >= self.from_seq {
            return Err(LedgerError::Storage("disk on fire".into()));
        }
        self.inner.commit(channel, payload)
    }
    fn height(&self, channel: &[u8]) -> Result<u64, LedgerError> {
        self.inner.height(channel)
    }
    fn blocks(&self, channel: &[u8], start: u64, end: u64) -> Result<Vec<Payload>, LedgerError> {
        self.inner.blocks(channel, start, end)
    }
}

#[tokio::test]
async fn a_commit_error_stops_that_channel_only() {
    let ledger = Arc::new(FailingLedger {
        inner: MemLedger::default(),
        channel: b"bad",
        from_seq: 3,
    });
    let mut link = LedgerLink::start(ledger.clone(), POLICY).expect("thread");
    for seq in 1..=5 {
        link.submit(&ch("bad"), &block(seq));
        link.submit(&ch("good"), &block(seq));
    }
    let seen = heights_until(&mut link, |h| h.get(&ch("good")) == Some(&6)).await;
    assert_eq!(
        seen.get(&ch("bad")),
        Some(&3),
        "1 and 2 committed, then none"
    );
    assert_eq!(
        count(&link.counters.commit_errors),
        1,
        "one error, then silence"
    );
    assert_eq!(ledger.height(b"bad").unwrap(), 3);
    link.stop().await;
    assert_eq!(count(&link.counters.commits), 7);
}

#[tokio::test]
async fn a_gap_is_a_commit_error() {
    let ledger = Arc::new(MemLedger::default());
    let mut link = LedgerLink::start(ledger.clone(), POLICY).expect("thread");
    for seq in [1, 2, 4, 5] {
        link.submit(&ch("a"), &block(seq));
    }
    link.stop().await;
    assert_eq!(count(&link.counters.commit_errors), 1);
    assert_eq!(ledger.height(b"a").unwrap(), 3);
    assert_eq!(link.take_heights(), [(ch("a"), 3)]);
}

/// A ledger whose first commit waits until the test lets it go; it records the length of each
/// batch.
struct GatedLedger {
    inner: MemLedger,
    gate: Mutex<Option<crossbeam_channel::Receiver<()>>>,
    entered: AtomicU64,
    batches: Mutex<Vec<usize>>,
}

impl GatedLedger {
    fn new(blocks_len_max: usize) -> (GatedLedger, crossbeam_channel::Sender<()>) {
        let (open, gate) = crossbeam_channel::bounded(1);
        let ledger = GatedLedger {
            inner: MemLedger::new(blocks_len_max),
            gate: Mutex::new(Some(gate)),
            entered: AtomicU64::new(0),
            batches: Mutex::new(Vec::new()),
        };
        (ledger, open)
    }
}

impl Ledger for GatedLedger {
    fn commit_batch(&self, channel: &[u8], payloads: &[Payload]) -> Result<(), LedgerError> {
        self.batches.lock().push(payloads.len());
        payloads.iter().try_for_each(|p| self.commit(channel, p))
    }
    fn commit(&self, channel: &[u8], payload: &Payload) -> Result<(), LedgerError> {
        self.entered.fetch_add(1, Ordering::Relaxed);
        let gate = self.gate.lock().take();
        if let Some(gate) = gate {
            let _ = gate.recv();
        }
        self.inner.commit(channel, payload)
    }
    fn height(&self, channel: &[u8]) -> Result<u64, LedgerError> {
        self.inner.height(channel)
    }
    fn blocks(&self, channel: &[u8], start: u64, end: u64) -> Result<Vec<Payload>, LedgerError> {
        self.inner.blocks(channel, start, end)
    }
}

#[tokio::test]
async fn a_full_queue_drops_without_waiting_and_the_channel_stops_at_the_gap() {
    let (ledger, open) = GatedLedger::new(8);
    let ledger = Arc::new(ledger);
    let mut link = LedgerLink::start(ledger.clone(), POLICY).expect("thread");
    link.submit(&ch("a"), &block(1));
    wait_for(|| ledger.entered.load(Ordering::Relaxed) == 1);
    // Block 1 is being committed: the queue takes COMMIT_QUEUE_LEN_MAX more, then drops.
    let last = COMMIT_QUEUE_LEN_MAX as u64 + 3;
    for seq in 2..=last {
        link.submit(&ch("a"), &block(seq));
    }
    assert_eq!(count(&link.counters.commit_queue_full), 2);
    open.send(()).expect("gate");
    let committed_to = COMMIT_QUEUE_LEN_MAX as u64 + 2;
    heights_until(&mut link, |h| h.get(&ch("a")) == Some(&committed_to)).await;
    // The next block lands beyond the gap the dropped ones left.
    link.submit(&ch("a"), &block(last + 1));
    link.stop().await;
    assert_eq!(count(&link.counters.commit_errors), 1);
    assert_eq!(ledger.height(b"a").unwrap(), committed_to);
}

#[tokio::test]
async fn blocks_that_queue_up_during_a_commit_are_committed_in_batches() {
    let (ledger, open) = GatedLedger::new(1_024);
    let ledger = Arc::new(ledger);
    let mut link = LedgerLink::start(ledger.clone(), POLICY).expect("thread");
    link.submit(&ch("a"), &block(1));
    wait_for(|| ledger.entered.load(Ordering::Relaxed) == 1);
    for seq in 2..=100 {
        link.submit(&ch("a"), &block(seq));
        link.submit(&ch("b"), &block(seq - 1));
    }
    open.send(()).expect("gate");
    heights_until(&mut link, |h| {
        h.get(&ch("a")) == Some(&101) && h.get(&ch("b")) == Some(&100)
    })
    .await;
    link.stop().await;
    // 99 blocks of each channel queued behind block 1, interleaved: batches of 64 blocks, one
    // commit_batch per channel in each.
    let batches = ledger.batches.lock().clone();
    assert_eq!(batches, [1, 32, 32, 32, 32, 32, 32, 3, 3]);
    assert_eq!(COMMIT_BATCH_LEN_MAX, 64);
    assert_eq!(count(&link.counters.commits), 199);
}

#[tokio::test]
async fn the_join_height_never_goes_below_an_acknowledged_one() {
    let mut link = LedgerLink::start(Arc::new(MemLedger::default()), POLICY).expect("thread");
    let a = ch("a");
    assert_eq!(link.join_height(&a, None), None, "nothing known");
    assert_eq!(link.join_height(&a, Some(INITIAL_HEIGHT)), Some(1));
    assert_eq!(link.join_height(&a, Some(7)), Some(7));
    assert_eq!(link.join_height(&a, Some(5)), Some(7), "a stale read");
    assert_eq!(link.join_height(&a, None), Some(7));
    link.stop().await;
}

#[tokio::test]
async fn state_requests_read_an_inclusive_bounded_range() {
    let ledger = Arc::new(MemLedger::new(2_000));
    for seq in 1..=1_500 {
        ledger.commit(b"a", &block(seq)).expect("commit");
    }
    let counters = Arc::new(LedgerCounters::default());
    let read = |start, end| read_blocks(ledger.clone(), counters.clone(), ch("a"), start, end);
    let got: Vec<u64> = read(3, 5).await.iter().map(|b| b.seq_num).collect();
    assert_eq!(got, [3, 4, 5]);
    assert_eq!(read(1_499, 1_600).await.len(), 2, "only what is held");
    assert!(read(5, 3).await.is_empty());
    let long = read(1, u64::MAX).await;
    assert_eq!(long.len() as u64, READ_BLOCKS_LEN_MAX, "cut to the bound");
    assert_eq!(long.last().map(|b| b.seq_num), Some(READ_BLOCKS_LEN_MAX));
    assert_eq!(count(&counters.blocks_served), 3 + 2 + READ_BLOCKS_LEN_MAX);
    assert_eq!(count(&counters.read_errors), 0);
}

/// A ledger that cannot read.
struct Unreadable;

impl Ledger for Unreadable {
    fn commit(&self, _: &[u8], _: &Payload) -> Result<(), LedgerError> {
        Err(LedgerError::Storage("unreadable".into()))
    }
    fn height(&self, _: &[u8]) -> Result<u64, LedgerError> {
        Err(LedgerError::Storage("unreadable".into()))
    }
    fn blocks(&self, _: &[u8], _: u64, _: u64) -> Result<Vec<Payload>, LedgerError> {
        Err(LedgerError::Storage("unreadable".into()))
    }
}

#[tokio::test]
async fn read_errors_answer_empty_and_are_counted() {
    let ledger: Arc<dyn Ledger> = Arc::new(Unreadable);
    let counters = Arc::new(LedgerCounters::default());
    assert!(
        read_blocks(ledger.clone(), counters.clone(), ch("a"), 1, 3)
            .await
            .is_empty()
    );
    assert_eq!(count(&counters.read_errors), 1);
    assert_eq!(read_height(&ledger, &ch("a")).await, None);
    // The committer cannot read the height either: the channel stops, counted once.
    let mut link = LedgerLink::start(ledger, POLICY).expect("thread");
    link.submit(&ch("a"), &block(1));
    link.submit(&ch("a"), &block(2));
    link.stop().await;
    assert_eq!(count(&link.counters.commit_errors), 1);
    assert!(link.take_heights().is_empty());
}

/// The driver's answer to `ReadBlocks`: the token comes back with the ledger's blocks, or with
/// none when there is no ledger.
#[tokio::test]
async fn read_blocks_requests_are_answered_from_the_ledger() {
    let ledger = Arc::new(MemLedger::default());
    for seq in 1..=12 {
        ledger.commit(b"a", &block(seq)).expect("commit");
    }
    let mut link = LedgerLink::start(ledger, POLICY).expect("thread");
    let answer = serve_blocks(Some(&link), ch("a"), 2, 12, 77).await;
    let IoResult::Blocks { token, blocks } = answer else {
        panic!("{answer:?}");
    };
    assert_eq!(token, 77);
    assert_eq!(blocks, (2..=12).map(block).collect::<Vec<_>>());
    let mut stats = DriverStats::default();
    link.counters.fill(&mut stats);
    assert_eq!(stats.ledger_blocks_served, 11);
    link.stop().await;
    let none = serve_blocks(None, ch("a"), 2, 12, 78).await;
    assert_eq!(
        none,
        IoResult::Blocks {
            token: 78,
            blocks: Vec::new()
        }
    );
}

#[tokio::test]
async fn delivered_blocks_linger_and_go_as_one_transaction() {
    let (ledger, open) = GatedLedger::new(1_024);
    open.send(()).expect("the gate starts open");
    let ledger = Arc::new(ledger);
    let policy = CommitPolicy {
        linger: Duration::from_secs(3_600),
        close_len: 4,
    };
    let mut link = LedgerLink::start(ledger.clone(), policy).expect("thread");
    for seq in 1..=3 {
        link.submit(&ch("a"), &block(seq));
    }
    // Nothing reaches the committer before the linger ends (an hour here) or close_len.
    let not_yet = tokio::time::timeout(Duration::from_millis(200), link.committed()).await;
    assert!(not_yet.is_err(), "committed before the linger ended");
    assert!(ledger.batches.lock().is_empty());
    let due = link.flush_due_at().expect("blocks wait");
    assert!(
        due > crate::clock::now() + Duration::from_secs(3_000),
        "the flush is due in an hour"
    );
    // The fourth makes close_len: all four go, in one transaction.
    link.submit(&ch("a"), &block(4));
    heights_until(&mut link, |h| h.get(&ch("a")) == Some(&5)).await;
    // Two more wait for the linger; the driver flushes them when it is due (here: now).
    link.submit(&ch("a"), &block(5));
    link.submit(&ch("a"), &block(6));
    link.flush();
    heights_until(&mut link, |h| h.get(&ch("a")) == Some(&7)).await;
    // What is pending at the stop is committed before it completes.
    link.submit(&ch("a"), &block(7));
    link.stop().await;
    assert_eq!(ledger.height(b"a").unwrap(), 8);
    assert_eq!(*ledger.batches.lock(), [4, 2, 1]);
}

#[tokio::test]
async fn pending_blocks_become_due_after_the_linger() {
    let policy = CommitPolicy {
        linger: Duration::from_millis(50),
        close_len: 20,
    };
    let mut link = LedgerLink::start(Arc::new(MemLedger::default()), policy).expect("thread");
    assert_eq!(link.flush_due_at(), None, "nothing pending, nothing due");
    let before = crate::clock::now();
    link.submit(&ch("a"), &block(1));
    let due = link.flush_due_at().expect("due once a block waits");
    assert!(
        due >= before + policy.linger && due <= crate::clock::now() + policy.linger,
        "due one linger after the first block"
    );
    link.submit(&ch("a"), &block(2));
    assert_eq!(
        link.flush_due_at(),
        Some(due),
        "a later block does not move it"
    );
    link.flush();
    heights_until(&mut link, |h| h.get(&ch("a")) == Some(&3)).await;
    assert_eq!(link.flush_due_at(), None, "nothing pending, nothing due");
    link.stop().await;
}

/// Blocks delivered and not yet committed answer `ReadBlocks` too (gap repair asks for blocks
/// within a linger of their delivery); the ledger's and the uncommitted ones together, and once
/// a commit is acknowledged the ledger's alone.
#[tokio::test]
async fn read_blocks_requests_are_answered_with_uncommitted_blocks_too() {
    let ledger = Arc::new(MemLedger::default());
    for seq in 1..=3 {
        ledger.commit(b"a", &block(seq)).expect("commit");
    }
    let policy = CommitPolicy {
        linger: Duration::from_secs(3_600),
        close_len: 100,
    };
    let mut link = LedgerLink::start(ledger, policy).expect("thread");
    for seq in 4..=6 {
        link.submit(&ch("a"), &block(seq));
    }
    let blocks_of = |answer: IoResult| match answer {
        IoResult::Blocks { blocks, .. } => {
            let mut seqs: Vec<u64> = blocks.iter().map(|p| p.seq_num).collect();
            seqs.sort_unstable();
            seqs.dedup();
            seqs
        }
        other => panic!("{other:?}"),
    };
    let only_uncommitted = serve_blocks(Some(&link), ch("a"), 5, 6, 1).await;
    assert_eq!(blocks_of(only_uncommitted), [5, 6]);
    let both = serve_blocks(Some(&link), ch("a"), 2, 9, 2).await;
    assert_eq!(blocks_of(both), [2, 3, 4, 5, 6]);
    link.flush();
    heights_until(&mut link, |h| h.get(&ch("a")) == Some(&7)).await;
    assert_eq!(link.uncommitted.range(&ch("a"), 1, 9).0, Vec::new());
    let committed = serve_blocks(Some(&link), ch("a"), 4, 6, 3).await;
    assert_eq!(blocks_of(committed), [4, 5, 6]);
    link.stop().await;
}
