//! A small seeded mutator for long runs without cargo-fuzz: byte flips, truncations, splices
//! of two corpus entries, insertions and protobuf-minded edits (varint lengths set to extremes),
//! applied to the kept corpus for a time budget. An input that panics a target is written to
//! `fuzz/artifacts/<target>/` and the run reports it.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Inputs grow no larger than this.
pub const INPUT_LEN_MAX_BYTES: usize = 64 * 1024;

/// A xorshift generator: deterministic per seed, no dependency.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed` (0 is replaced, xorshift cannot leave it).
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A number below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }
}

/// One mutation of `input`, with `other` for splices.
pub fn mutate(rng: &mut Rng, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    let rounds = 1 + rng.below(4);
    for _ in 0..rounds {
        match rng.below(7) {
            0 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] ^= 1 << rng.below(8);
            }
            1 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] = [0x00, 0x01, 0x7f, 0x80, 0xff][rng.below(5)];
            }
            2 => out.truncate(rng.below(out.len() + 1)),
            3 => {
                let at = rng.below(out.len() + 1);
                let from = rng.below(other.len() + 1);
                let take = rng.below(other.len() - from + 1);
                out.splice(at..at, other[from..from + take].iter().copied());
            }
            4 => {
                let at = rng.below(out.len() + 1);
                let bytes: Vec<u8> = (0..1 + rng.below(8))
                    .map(|_| rng.next_u64() as u8)
                    .collect();
                out.splice(at..at, bytes);
            }
            5 if !out.is_empty() => {
                // A varint set to an extreme: a length or count announcing far more than follows.
                let at = rng.below(out.len());
                let varint: &[u8] =
                    [&[0xff, 0xff, 0xff, 0xff, 0x0f][..], &[0x00], &[0x80, 0x01]][rng.below(3)];
                let end = (at + 1).min(out.len());
                out.splice(at..end, varint.iter().copied());
            }
            _ if !out.is_empty() => {
                // Duplicate a span (repeated fields, nested envelopes).
                let from = rng.below(out.len());
                let take = rng.below((out.len() - from).min(256) + 1);
                let span = out[from..from + take].to_vec();
                let at = rng.below(out.len() + 1);
                out.splice(at..at, span);
            }
            _ => out.push(rng.next_u64() as u8),
        }
    }
    out.truncate(INPUT_LEN_MAX_BYTES);
    out
}

/// What a run did.
#[derive(Debug, Default)]
pub struct RunReport {
    /// Inputs tried.
    pub inputs: u64,
    /// Inputs that panicked the target, as saved.
    pub crashes: Vec<PathBuf>,
}

/// Runs `target` on mutations of `corpus` for `budget`, saving each panicking input under
/// `artifacts`. An empty corpus starts from one empty input.
pub fn run(
    target: fn(&[u8]),
    corpus: &[Vec<u8>],
    budget: Duration,
    seed: u64,
    artifacts: &Path,
) -> RunReport {
    let mut rng = Rng::new(seed);
    let empty = [Vec::new()];
    let corpus = if corpus.is_empty() {
        &empty[..]
    } else {
        corpus
    };
    let mut report = RunReport::default();
    #[allow(clippy::disallowed_methods)] // the run's time budget is on the real clock
    let started = Instant::now();
    // Seeds first, as they are; then mutations.
    let mut seeds = corpus.iter();
    while started.elapsed() < budget {
        let input = match seeds.next() {
            Some(seed) => seed.clone(),
            None => {
                let a = &corpus[rng.below(corpus.len())];
                let b = &corpus[rng.below(corpus.len())];
                mutate(&mut rng, a, b)
            }
        };
        report.inputs += 1;
        if catch_unwind(AssertUnwindSafe(|| target(&input))).is_err() {
            report.crashes.push(save(artifacts, &input));
        }
    }
    report
}

fn save(dir: &Path, input: &[u8]) -> PathBuf {
    let _ = std::fs::create_dir_all(dir);
    // FNV-1a: a stable name per input.
    let hash = input.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    });
    let path = dir.join(format!("crash-{hash:016x}"));
    if let Err(e) = std::fs::write(&path, input) {
        eprintln!("could not save {}: {e}", path.display());
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutations_stay_within_the_input_bound_and_vary() {
        let mut rng = Rng::new(7);
        let seed = vec![0x0a; 100];
        let outs: Vec<Vec<u8>> = (0..200).map(|_| mutate(&mut rng, &seed, b"xyz")).collect();
        assert!(outs.iter().all(|o| o.len() <= INPUT_LEN_MAX_BYTES));
        assert!(
            outs.iter().any(|o| *o != seed),
            "some mutation changes the input"
        );
    }

    #[test]
    fn a_panicking_input_is_saved_and_reported() {
        let dir = std::env::temp_dir().join(format!("gossip-fuzz-test-{}", std::process::id()));
        let target: fn(&[u8]) = |d| assert!(d.first() != Some(&0xee), "found it");
        let report = run(target, &[vec![0xee]], Duration::from_millis(50), 1, &dir);
        assert!(!report.crashes.is_empty());
        assert_eq!(
            std::fs::read(&report.crashes[0]).expect("saved"),
            vec![0xee]
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
