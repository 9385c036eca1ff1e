//! Block pull fixture for the criterion pull suite: two parties, each with the engine's real
//! [`PullEngine`] over block numbers, running full rounds against each other at Fabric's pull
//! settings (`GossipConfig::default()`, `pull_on_gap` on).
//!
//! One round, as a channel's block puller drives it (`components/channel/pull.rs`), minus the
//! wire (encoding, signing and block verification are in the codec and crypto suites):
//!
//! ```text
//!  initiator                                   responder (holds `items` blocks)
//!  start_round ── hello{nonce} ──────────────► on_hello
//!  on_digest   ◄─ digest{nonce, its blocks} ── (the numbers of its stored blocks)
//!  take_requests ── request{nonce, wanted} ──► on_request
//!  on_update, arrived per block ◄─ update ──── (each requested block looked up in its store)
//! ```
//!
//! The initiator forgets what it took before every round, so every round moves all `items`
//! blocks; the clock moves on by a whole round's deadlines between rounds.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use gossip_engine::components::pull::{PullConfig, PullEngine, RoundKind};
use gossip_engine::config::GossipConfig;
use gossip_engine::time::Instant;
use gossip_engine::types::PkiId;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Bytes of a stored block in the suite's main case (never read: carried, as a block envelope
/// is, by a handle whose reference count every copy into an update touches).
pub const PULL_BLOCK_LEN_BYTES: usize = 1_024;

/// An initiator and a responder that holds `items` blocks the initiator lacks.
pub struct PullPair {
    initiator: PullEngine<u64>,
    responder: PullEngine<u64>,
    initiator_id: PkiId,
    responder_id: PkiId,
    /// The responder's block store: block number → block.
    held: BTreeMap<u64, Bytes>,
    /// The blocks the initiator took this round.
    taken: BTreeMap<u64, Bytes>,
    /// Clock step between rounds: every deadline of the previous round has passed.
    round_step: Duration,
    now: Instant,
    rng: ChaCha8Rng,
}

impl PullPair {
    /// A pair whose responder holds blocks `1..=items`, each `block_len_bytes` long in an
    /// allocation of its own (as blocks received from the network are); with 0, every block is
    /// the empty static `Bytes`, whose copies touch no memory: what is left is the engines and
    /// the maps.
    pub fn new(items: u64, block_len_bytes: usize) -> Self {
        let config = PullConfig::of(&GossipConfig::default());
        let round_step =
            config.interval + config.digest_wait + config.request_wait + config.response_wait;
        let now = Instant::from_nanos(1_000_000_000_000);
        let held = (1..=items)
            .map(|seq| {
                let block = if block_len_bytes == 0 {
                    Bytes::new()
                } else {
                    Bytes::from(vec![seq as u8; block_len_bytes])
                };
                (seq, block)
            })
            .collect();
        Self {
            initiator: PullEngine::new(config.clone(), now),
            responder: PullEngine::new(config, now),
            initiator_id: PkiId([1; 32]),
            responder_id: PkiId([2; 32]),
            held,
            taken: BTreeMap::new(),
            round_step,
            now,
            rng: ChaCha8Rng::seed_from_u64(1),
        }
    }

    /// Blocks the responder holds.
    pub fn items(&self) -> usize {
        self.held.len()
    }

    /// The initiator's engine (its counters).
    pub fn initiator(&self) -> &PullEngine<u64> {
        &self.initiator
    }

    /// One full round: hello, digest, request, update, the initiator taking each block. Returns
    /// the blocks the initiator took (all of them, unless a step was refused).
    pub fn round(&mut self) -> usize {
        self.taken.clear();
        self.now = self.now + self.round_step;
        let now = self.now;
        let (me, peer) = (self.initiator_id, self.responder_id);
        self.initiator.advance(now);
        self.responder.advance(now);

        let hellos = self
            .initiator
            .start_round(RoundKind::Periodic, &[peer], now, &mut self.rng);
        for (to, nonce) in hellos {
            if self.responder.on_hello(me, nonce, now).is_err() {
                continue;
            }
            let digest: Vec<u64> = self.held.keys().copied().collect();
            let taken = &self.taken;
            let wanted = digest.into_iter().filter(|seq| !taken.contains_key(seq));
            // A refused digest leaves nothing to request.
            let _ = self.initiator.on_digest(to, nonce, wanted, now);
        }

        // With `pull_on_gap` the digest phase ends once every peer answered; else at its deadline.
        let at = if self.initiator.requests_due(now) {
            now
        } else {
            self.initiator.poll_timeout()
        };
        let taken = &self.taken;
        let requests =
            self.initiator
                .take_requests(at, |seq| !taken.contains_key(seq), &mut self.rng);
        let mut took = 0;
        for (from, nonce, seqs) in requests {
            if self.responder.on_request(me, nonce, at).is_err() {
                continue;
            }
            let update: Vec<(u64, Bytes)> = seqs
                .iter()
                .filter_map(|seq| Some((*seq, self.held.get(seq)?.clone())))
                .collect();
            if self.initiator.on_update(from, nonce, at).is_err() {
                continue;
            }
            for (seq, block) in update {
                if self.taken.insert(seq, block).is_none() {
                    self.initiator.arrived(&seq);
                    took += 1;
                }
            }
        }
        took
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_round_moves_every_block_and_ends_early() {
        for (items, len) in [
            (1, 0),
            (10, PULL_BLOCK_LEN_BYTES),
            (1_000, PULL_BLOCK_LEN_BYTES),
        ] {
            let mut pair = PullPair::new(items, len);
            assert_eq!(pair.items(), items as usize);
            for round in 1..=3u64 {
                assert_eq!(pair.round(), items as usize, "{items} items, round {round}");
                let stats = pair.initiator().stats();
                assert_eq!(stats.rounds, round);
                assert_eq!(stats.items_requested, round * items);
                assert_eq!(stats.items_over_bound, 0);
                assert_eq!(
                    stats.rounds_ended_early, round,
                    "pull_on_gap ends a round once every requested block arrived"
                );
                assert!(!pair.initiator().in_round());
            }
        }
    }

    #[test]
    fn an_empty_responder_gives_nothing() {
        let mut pair = PullPair::new(0, PULL_BLOCK_LEN_BYTES);
        assert_eq!(pair.round(), 0);
        assert_eq!(pair.initiator().stats().items_requested, 0);
    }
}
