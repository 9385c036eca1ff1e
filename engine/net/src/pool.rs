//! A small pool of verifier threads: connection tasks hand it signature checks and get the outcome
//! back through a callback, so the async runtime never runs ECDSA.
//!
//! ```text
//!  submit(job) ─► bounded MPMC queue (queue_len_max) ─► N workers, each takes up to batch_len_max
//!                 (full: the job comes back, PoolFull)    jobs at a time, runs their checks and
//!                                                         calls each job's callback
//! ```
//!
//! Plain `std::thread`s, no async runtime, no clock. Dropping the pool closes the queue; workers
//! finish every job already queued (each callback runs exactly once) and are joined.

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};

use crate::bounded::LenBound;
use crate::crypto::SignatureError;
use crate::histogram::{Histogram, HistogramSnapshot, LEN_BOUNDS};
use crate::ingress::SignatureCheck;

/// What a job's callback receives: `Ok` when every check of the job passed.
pub type CheckOutcome = Result<(), SignatureError>;

/// A job's completion callback; it runs on a worker thread, so keep it short (hand the outcome on).
pub type Completion = Box<dyn FnOnce(CheckOutcome) + Send>;

/// One unit of work: the checks of one message and what to do with their outcome.
pub struct VerifyJob {
    /// The checks; the job passes when all pass (an empty list passes).
    pub checks: Vec<SignatureCheck>,
    /// Called exactly once with the outcome.
    pub done: Completion,
    /// When the job was made (its time on the pool is measured from here).
    pub made_at: std::time::Instant,
}

impl VerifyJob {
    /// A job from its checks and a callback.
    pub fn new(
        checks: Vec<SignatureCheck>,
        done: impl FnOnce(CheckOutcome) + Send + 'static,
    ) -> Self {
        Self {
            checks,
            done: Box::new(done),
            made_at: crate::clock::stopwatch(),
        }
    }

    fn outcome(&self) -> CheckOutcome {
        self.checks.iter().try_for_each(SignatureCheck::run)
    }
}

impl std::fmt::Debug for VerifyJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyJob")
            .field("checks_len", &self.checks.len())
            .finish_non_exhaustive()
    }
}

/// The queue was full: the job is handed back unrun, its callback not called. The caller decides
/// (drop and count, or verify inline).
#[derive(Debug, thiserror::Error)]
#[error("verifier pool queue is full")]
pub struct PoolFull(pub VerifyJob);

/// Why a pool could not start. Threads already started were stopped and joined.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// A length in the config is zero.
    #[error("{0} must be at least 1")]
    Zero(&'static str),
    /// The OS refused a thread.
    #[error("spawning a verifier thread: {0}")]
    Spawn(#[from] std::io::Error),
}

/// Pool sizing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolConfig {
    /// Worker threads (default: one per core).
    pub workers_count: usize,
    /// Jobs waiting in the queue before `submit` refuses.
    pub queue_len_max: usize,
    /// Jobs a worker takes off the queue at once.
    pub batch_len_max: usize,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            workers_count: std::thread::available_parallelism().map_or(1, NonZeroUsize::get),
            queue_len_max: 4096,
            batch_len_max: 32,
        }
    }
}

/// Counters, read with [`VerifierPool::stats`].
#[derive(Debug)]
struct Counters {
    /// Jobs queued and not yet taken by a worker: the bound of the queue. The channel itself is
    /// unbounded (its memory follows occupancy; a bounded crossbeam channel allocates and touches
    /// every slot up front), and `submit` reserves a place here first.
    queued: LenBound,
    submitted: AtomicU64,
    refused_full: AtomicU64,
    completed: AtomicU64,
    batches: AtomicU64,
    /// From a job's making to its checks' end.
    verify_seconds: Histogram,
    /// Jobs per batch.
    batch_len: Histogram,
}

/// A snapshot of the pool's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Jobs accepted by `submit`.
    pub submitted: u64,
    /// Jobs handed back because the queue was full.
    pub refused_full: u64,
    /// Jobs whose checks have run (counted just before their callback is called).
    pub completed: u64,
    /// Batches the workers took off the queue.
    pub batches: u64,
}

/// The verifier pool. `submit` never blocks.
#[derive(Debug)]
pub struct VerifierPool {
    sender: Option<Sender<VerifyJob>>,
    workers: Vec<JoinHandle<()>>,
    counters: Arc<Counters>,
}

impl VerifierPool {
    /// Starts `config.workers_count` workers.
    pub fn new(config: &PoolConfig) -> Result<Self, PoolError> {
        for (name, v) in [
            ("workers_count", config.workers_count),
            ("queue_len_max", config.queue_len_max),
            ("batch_len_max", config.batch_len_max),
        ] {
            if v == 0 {
                return Err(PoolError::Zero(name));
            }
        }
        let (sender, receiver) = crossbeam_channel::unbounded();
        let counters = Arc::new(Counters {
            queued: LenBound::new(config.queue_len_max),
            submitted: AtomicU64::new(0),
            refused_full: AtomicU64::new(0),
            completed: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            verify_seconds: Histogram::default(),
            batch_len: Histogram::count(LEN_BOUNDS),
        });
        let mut pool = Self {
            sender: Some(sender),
            workers: Vec::with_capacity(config.workers_count),
            counters,
        };
        for i in 0..config.workers_count {
            let receiver = receiver.clone();
            let counters = Arc::clone(&pool.counters);
            let batch_len_max = config.batch_len_max;
            let handle = std::thread::Builder::new()
                .name(format!("gossip-verify-{i}"))
                .spawn(move || worker_loop(&receiver, batch_len_max, &counters))?;
            pool.workers.push(handle);
        }
        Ok(pool)
    }

    /// Queues a job; hands it back when the queue is full. Never blocks.
    pub fn submit(&self, job: VerifyJob) -> Result<(), PoolFull> {
        let Some(sender) = &self.sender else {
            return Err(PoolFull(job));
        };
        if !self.counters.queued.try_reserve() {
            self.counters.refused_full.fetch_add(1, Ordering::Relaxed);
            return Err(PoolFull(job));
        }
        match sender.send(job) {
            Ok(()) => {
                self.counters.submitted.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(back) => {
                self.counters.queued.release(1);
                self.counters.refused_full.fetch_add(1, Ordering::Relaxed);
                Err(PoolFull(back.0))
            }
        }
    }

    /// Jobs waiting in the queue now.
    pub fn queue_len(&self) -> usize {
        self.counters.queued.len()
    }

    /// How long jobs took from their making to their checks' end (queue wait included).
    pub fn verify_seconds(&self) -> HistogramSnapshot {
        self.counters.verify_seconds.snapshot()
    }

    /// Jobs per batch the workers took.
    pub fn batch_len(&self) -> HistogramSnapshot {
        self.counters.batch_len.snapshot()
    }

    /// Worker threads running.
    pub fn workers_count(&self) -> usize {
        self.workers.len()
    }

    /// The counters.
    pub fn stats(&self) -> PoolStats {
        let c = &self.counters;
        PoolStats {
            submitted: c.submitted.load(Ordering::Relaxed),
            refused_full: c.refused_full.load(Ordering::Relaxed),
            completed: c.completed.load(Ordering::Relaxed),
            batches: c.batches.load(Ordering::Relaxed),
        }
    }
}

impl Drop for VerifierPool {
    /// Closes the queue, lets the workers finish what is queued, and joins them.
    fn drop(&mut self) {
        self.sender = None;
        for handle in self.workers.drain(..) {
            let _ = handle.join();
        }
    }
}

fn worker_loop(receiver: &Receiver<VerifyJob>, batch_len_max: usize, counters: &Counters) {
    let mut batch = Vec::with_capacity(batch_len_max);
    // `recv` fails only once the queue is closed and empty.
    while let Ok(first) = receiver.recv() {
        batch.push(first);
        while batch.len() < batch_len_max {
            match receiver.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        counters.queued.release(batch.len());
        counters.batches.fetch_add(1, Ordering::Relaxed);
        counters.batch_len.observe_len(batch.len());
        for job in batch.drain(..) {
            let outcome = job.outcome();
            counters
                .verify_seconds
                .observe_duration(job.made_at.elapsed());
            // Counted before the callback runs, so whoever the callback notifies sees it.
            counters.completed.fetch_add(1, Ordering::Relaxed);
            // No catch_unwind: release builds abort on panic (a panic is a bug, and the process
            // ends rather than limping on without a worker).
            (job.done)(outcome);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Barrier;
    use std::sync::mpsc;

    use bytes::Bytes;

    use super::*;
    use crate::crypto::{Sign, SigningKey};
    use crate::ingress::SignatureCheck;

    fn key() -> SigningKey {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = ring::signature::EcdsaKeyPair::generate_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
            &rng,
        )
        .expect("generate");
        SigningKey::from_pkcs8_der(pkcs8.as_ref()).expect("key")
    }

    /// A check that passes when `good`, fails with `Invalid` otherwise.
    fn check(key: &SigningKey, i: usize, good: bool) -> SignatureCheck {
        let message = Bytes::from(format!("message {i}"));
        let signature = key.sign(&message).expect("sign");
        let message = if good {
            message
        } else {
            Bytes::from(format!("tampered {i}"))
        };
        SignatureCheck::envelope(key.public_key(), message, signature)
    }

    fn run_all(workers_count: usize) {
        let key = key();
        let pool = VerifierPool::new(&PoolConfig {
            workers_count,
            queue_len_max: 256,
            batch_len_max: 8,
        })
        .expect("pool");
        let (tx, rx) = mpsc::channel();
        let jobs_len = 100;
        for i in 0..jobs_len {
            let tx = tx.clone();
            let checks = vec![check(&key, i, true), check(&key, i + 1000, i % 3 != 0)];
            pool.submit(VerifyJob::new(checks, move |r| {
                tx.send((i, r)).expect("send")
            }))
            .expect("room");
        }
        drop(tx);
        let mut results: Vec<_> = rx.iter().collect();
        results.sort_by_key(|(i, _)| *i);
        assert_eq!(results.len(), jobs_len);
        for (i, r) in results {
            assert_eq!(r.is_ok(), i % 3 != 0, "job {i}: {r:?}");
            if i % 3 == 0 {
                assert_eq!(r, Err(SignatureError::Invalid));
            }
        }
        let stats = pool.stats();
        assert_eq!(
            (stats.submitted, stats.completed, stats.refused_full),
            (100, 100, 0)
        );
        assert!(stats.batches >= 100 / 8);
    }

    #[test]
    fn all_jobs_complete_with_one_worker() {
        run_all(1);
    }

    #[test]
    fn all_jobs_complete_with_two_workers() {
        run_all(2);
    }

    #[test]
    fn full_queue_hands_the_job_back() {
        let pool = VerifierPool::new(&PoolConfig {
            workers_count: 1,
            queue_len_max: 2,
            batch_len_max: 1,
        })
        .expect("pool");
        // Park the only worker inside a callback so the queue fills.
        let gate = Arc::new(Barrier::new(2));
        let g = Arc::clone(&gate);
        pool.submit(VerifyJob::new(vec![], move |_| {
            g.wait();
            g.wait();
        }))
        .expect("first");
        gate.wait(); // The worker is inside the first callback now.
        let (tx, rx) = mpsc::channel();
        for i in 0..2 {
            let tx = tx.clone();
            pool.submit(VerifyJob::new(vec![], move |r| {
                tx.send((i, r)).expect("send")
            }))
            .expect("room");
        }
        let refused = pool.submit(VerifyJob::new(vec![], |_| {
            panic!("a refused job must not run")
        }));
        let PoolFull(job) = refused.expect_err("queue is full");
        assert!(job.checks.is_empty());
        assert_eq!(pool.stats().refused_full, 1);
        gate.wait(); // Release the worker.
        drop(tx);
        drop(pool); // Joins after draining: both queued jobs ran.
        assert_eq!(rx.iter().count(), 2);
    }

    #[test]
    fn drop_drains_and_joins_workers() {
        let pool = VerifierPool::new(&PoolConfig {
            workers_count: 2,
            queue_len_max: 64,
            batch_len_max: 4,
        })
        .expect("pool");
        assert_eq!(pool.workers_count(), 2);
        let done = Arc::new(AtomicU64::new(0));
        for _ in 0..50 {
            let done = Arc::clone(&done);
            pool.submit(VerifyJob::new(vec![], move |r| {
                assert!(r.is_ok());
                done.fetch_add(1, Ordering::SeqCst);
            }))
            .expect("room");
        }
        drop(pool);
        assert_eq!(
            done.load(Ordering::SeqCst),
            50,
            "every queued job ran before the workers were joined"
        );
    }

    #[test]
    fn zero_sizes_are_refused() {
        let base = PoolConfig {
            workers_count: 1,
            queue_len_max: 1,
            batch_len_max: 1,
        };
        for cfg in [
            PoolConfig {
                workers_count: 0,
                ..base.clone()
            },
            PoolConfig {
                queue_len_max: 0,
                ..base.clone()
            },
            PoolConfig {
                batch_len_max: 0,
                ..base.clone()
            },
        ] {
            assert!(matches!(VerifierPool::new(&cfg), Err(PoolError::Zero(_))));
        }
    }
}
