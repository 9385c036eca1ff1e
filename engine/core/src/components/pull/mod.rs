//! Fabric's pull engine (`gossip/gossip/algo/pull.go`, spec 3.6), sans IO: the rounds, nonces
//! and phases of one pull mediator, over item ids of type `I` (block numbers for the block
//! puller). It never builds or sends a message: its owner (a channel's block puller,
//! `components/channel/pull.rs`) asks it what is due and turns the answers into Fabric's
//! `GossipHello`, `DataDigest`, `DataRequest` and `DataUpdate`.
//!
//! ```text
//!  initiator                                        responder
//!  start_round ── Hello{nonce} ──────────────────►  on_hello (nonce valid request_wait)
//!  on_digest   ◄─ Digest{nonce, items} ───────────
//!  (digest_wait) take_requests: each wanted item
//!  from one random owner ── Request{nonce, items} ► on_request (nonce consumed)
//!  on_update   ◄─ Update{nonce, envelopes} ────────
//!  (response_wait) the round ends, its nonces are forgotten
//! ```
//!
//! Time is an argument and randomness the caller's RNG; deadlines are fields
//! ([`PullEngine::poll_timeout`]). Every map a peer can grow is bounded: the items a round wants
//! ([`WANTED_LEN_MAX`], the lowest kept), the hello nonces remembered as responder
//! ([`INCOMING_LEN_MAX`], [`INCOMING_PER_PEER_MAX`]); a round's own nonces are one per peer it
//! picked. Messages with a nonce that is unknown, expired, of another peer, already used, or
//! outside the phase that takes them are refused ([`PullReject`]) for the caller to count.
//!
//! With [`PullConfig::eager`] (`pull_on_gap`) repair does not wait for the timer: a gap
//! ([`PullEngine::gap`]) makes a round due at once, at most one per `gap_interval` after the
//! last round started; the digest phase ends as soon as every peer said hello to answered; and
//! the round ends as soon as every requested item arrived ([`PullEngine::arrived`]). It also
//! follows the [`Cadence`] of new items ([`PullEngine::observe`]): a stream gone quiet for longer
//! than usual makes a round due, which repairs a missed newest item without waiting for its
//! successor.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use rand::Rng;

use crate::config::GossipConfig;
use crate::time::Instant;
use crate::types::PkiId;

mod cadence;
mod supersede;
#[cfg(test)]
mod tests;

pub use cadence::{Cadence, QUIET_WAIT_MIN, QUIET_WAIT_PER_MILLE};
pub use supersede::{RTT_FACTOR, Supersede};

/// Bound on the items one round wants; when full, a lower item replaces the highest.
pub const WANTED_LEN_MAX: usize = 1_024;
/// Bound on hello nonces remembered as responder (all peers).
pub const INCOMING_LEN_MAX: usize = 1_024;
/// Bound on hello nonces remembered for one peer; a new one replaces its oldest.
pub const INCOMING_PER_PEER_MAX: usize = 4;

/// The engine's settings (Fabric's `PullEngineConfig` plus the mediator's period). The peers of
/// a round (`pullPeerNum` of them) are picked by the caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PullConfig {
    /// `pullInterval`: the period of rounds.
    pub interval: Duration,
    /// `digestWaitTime`: digests are collected this long.
    pub digest_wait: Duration,
    /// `requestWaitTime`: a received hello's nonce stays valid this long.
    pub request_wait: Duration,
    /// `responseWaitTime`: updates are accepted this long after the requests.
    pub response_wait: Duration,
    /// `pull_on_gap`: gap rounds, early requests, early end (module doc).
    pub eager: bool,
    /// `pull_gap_interval`: the least time from a round's start to a gap round's.
    pub gap_interval: Duration,
}

impl PullConfig {
    /// The settings of a node's block puller.
    pub fn of(config: &GossipConfig) -> Self {
        Self {
            interval: config.pull_interval,
            digest_wait: config.digest_wait_time,
            request_wait: config.request_wait_time,
            response_wait: config.response_wait_time,
            eager: config.pull_on_gap,
            gap_interval: config.pull_gap_interval,
        }
    }
}

/// Why a pull message was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PullReject {
    /// The nonce is not one this engine handed out or received (or it expired, belongs to another
    /// peer, was used already, or its round is not in the phase that takes this message).
    #[error("pull nonce unknown, expired, used or out of phase")]
    UnknownNonce,
    /// Every slot for remembered hello nonces is taken.
    #[error("pull nonce store full")]
    Full,
}

/// Why a round is due.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoundKind {
    /// The pull interval passed.
    Periodic,
    /// A gap was seen ([`PullEngine::gap`]).
    Gap,
    /// The stream of new items went quiet ([`PullEngine::observe`]).
    Quiet,
}

/// Counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PullStats {
    /// Rounds started (hellos sent to at least one peer).
    pub rounds: u64,
    /// Of those, rounds started by a gap.
    pub gap_rounds: u64,
    /// Of those, rounds started by a quiet stream ([`Cadence`]).
    pub quiet_rounds: u64,
    /// Rounds that ended before their response deadline (every requested item arrived).
    pub rounds_ended_early: u64,
    /// Rounds given up for a gap or quiet round while still waiting on a silent peer
    /// ([`PullEngine::round_due`]).
    pub rounds_superseded: u64,
    /// Items requested.
    pub items_requested: u64,
    /// Advertised items left out because the round wanted [`WANTED_LEN_MAX`] lower ones.
    pub items_over_bound: u64,
}

impl PullStats {
    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: &PullStats) {
        self.rounds += other.rounds;
        self.gap_rounds += other.gap_rounds;
        self.quiet_rounds += other.quiet_rounds;
        self.rounds_ended_early += other.rounds_ended_early;
        self.rounds_superseded += other.rounds_superseded;
        self.items_requested += other.items_requested;
        self.items_over_bound += other.items_over_bound;
    }
}

#[derive(Debug)]
enum Phase<I> {
    /// Collecting digests until `until`.
    Digests { until: Instant },
    /// Requests sent; accepting updates until `until`. `outstanding`: requested, not arrived.
    Responses {
        until: Instant,
        outstanding: BTreeSet<I>,
    },
}

#[derive(Debug)]
struct Outgoing {
    peer: PkiId,
    answered: bool,
}

#[derive(Debug)]
struct Round<I> {
    phase: Phase<I>,
    /// When the phase began (the hellos, then the requests), and whether an answer of it came.
    phase_began: Instant,
    answered_in_phase: bool,
    /// This round's nonces (Fabric's `outgoingNONCES` and `nonces2peers`).
    nonces: BTreeMap<u64, Outgoing>,
    /// Wanted items and the peers that advertised them (Fabric's `item2owners`).
    owners: BTreeMap<I, Vec<PkiId>>,
}

/// One pull mediator's engine state.
#[derive(Debug)]
pub struct PullEngine<I> {
    config: PullConfig,
    round: Option<Round<I>>,
    next_round: Instant,
    gap_at: Option<Instant>,
    last_start: Option<Instant>,
    /// The newest item seen and the cadence of new ones (`eager` only).
    newest: Option<I>,
    cadence: Cadence,
    /// Hello nonces received, by (peer, nonce), with their expiry (Fabric's `incomingNONCES`).
    incoming: BTreeMap<(PkiId, u64), Instant>,
    /// When a running round may be given up ([`Supersede`]).
    supersede: Supersede,
    stats: PullStats,
}

impl<I: Ord + Clone> PullEngine<I> {
    /// An engine whose first round is due at `first_round`.
    pub fn new(config: PullConfig, first_round: Instant) -> Self {
        Self {
            config,
            round: None,
            next_round: first_round,
            gap_at: None,
            last_start: None,
            newest: None,
            cadence: Cadence::default(),
            incoming: BTreeMap::new(),
            supersede: Supersede::default(),
            stats: PullStats::default(),
        }
    }

    /// Moves the next periodic round to `at`.
    pub fn set_next_round(&mut self, at: Instant) {
        self.next_round = at;
    }

    /// Counters.
    pub fn stats(&self) -> PullStats {
        self.stats
    }

    /// Whether a round is running.
    pub fn in_round(&self) -> bool {
        self.round.is_some()
    }

    /// The next deadline: the running round's phase end (or, `eager`, when a due gap or quiet
    /// round may supersede it), else the next round (periodic, gap or quiet).
    pub fn poll_timeout(&self) -> Instant {
        let repair = [self.gap_at, self.quiet_at()].into_iter().flatten().min();
        match &self.round {
            Some(Round {
                phase: Phase::Digests { until } | Phase::Responses { until, .. },
                ..
            }) => match (self.config.eager, repair) {
                (true, Some(r)) => (*until).min(r.max(self.supersede_at())),
                _ => *until,
            },
            None => repair.map_or(self.next_round, |r| r.min(self.next_round)),
        }
    }

    /// When a running round may be given up for a gap or quiet round: its phase began longer
    /// ago than [`Supersede::threshold`] (`gap_interval`, or three answer delays when longer). A
    /// round still running then waits on a silent peer (Fabric's responder says nothing when its
    /// store is empty, so a round started just before the first block waits the whole
    /// `digestWaitTime`; a lost message makes a round wait out its phase), and a block missed
    /// meanwhile would leave every peer's store (`maxBlockCountToStore` newer blocks later) before
    /// a gap round could ask for it.
    fn supersede_at(&self) -> Instant {
        self.round.as_ref().map_or(Instant::from_nanos(0), |r| {
            r.phase_began + self.supersede.threshold(self.config.gap_interval)
        })
    }

    /// The answer delay the engine has seen ([`Supersede`]); `None` before the first answer.
    pub fn answer_delay(&self) -> Option<Duration> {
        self.supersede.rtt()
    }

    /// When a quiet stream makes a round due: the [`Cadence`]'s time, or `gap_interval` after the
    /// last round started if that is later.
    fn quiet_at(&self) -> Option<Instant> {
        let quiet = self.cadence.quiet_at(self.config.interval)?;
        Some(
            self.last_start
                .map_or(quiet, |t| quiet.max(t + self.config.gap_interval)),
        )
    }

    /// An item arrived (stored): one beyond every item seen so far feeds the cadence, `sample`
    /// saying whether it came on its own ([`Cadence::newest`]). Without `eager`, nothing.
    pub fn observe(&mut self, item: &I, now: Instant, sample: bool) {
        if !self.config.eager || self.newest.as_ref().is_some_and(|n| n >= item) {
            return;
        }
        self.newest = Some(item.clone());
        self.cadence.newest(now, sample);
    }

    /// Ends a response phase whose deadline passed (the round and its nonces are forgotten) and
    /// forgets expired hello nonces. Call before the other `*_due` checks of a timeout.
    pub fn advance(&mut self, now: Instant) {
        if let Some(Round {
            phase: Phase::Responses { until, .. },
            ..
        }) = &self.round
            && *until <= now
        {
            self.round = None;
        }
        if !self.incoming.is_empty() {
            self.incoming.retain(|_, expires| *expires > now);
        }
    }

    /// A block (item) arrived ahead of a missing predecessor: with `eager`, a round is due now,
    /// or `gap_interval` after the last round started if that is later.
    pub fn gap(&mut self, now: Instant) {
        if !self.config.eager {
            return;
        }
        let earliest = self
            .last_start
            .map_or(now, |t| t + self.config.gap_interval)
            .max(now);
        self.gap_at = Some(self.gap_at.map_or(earliest, |g| g.min(earliest)));
    }

    /// Forgets a due gap round (the gap closed before it started).
    pub fn cancel_gap(&mut self) {
        self.gap_at = None;
    }

    /// Whether a round is due: none is running, or (`eager`) a gap or quiet round is due and the
    /// running one started `gap_interval` ago or more; [`PullEngine::start_round`] then gives the
    /// running one up (its nonces are forgotten).
    pub fn round_due(&self, now: Instant) -> Option<RoundKind> {
        let repair = || {
            if self.gap_at.is_some_and(|g| g <= now) {
                Some(RoundKind::Gap)
            } else if self.quiet_at().is_some_and(|q| q <= now) {
                Some(RoundKind::Quiet)
            } else {
                None
            }
        };
        if self.round.is_some() {
            (self.config.eager && self.supersede_at() <= now)
                .then(repair)
                .flatten()
        } else if self.next_round <= now {
            Some(RoundKind::Periodic)
        } else {
            repair()
        }
    }

    /// Starts a round with `peers` (picked by the caller, up to `pullPeerNum`): one fresh
    /// nonce each; returns whom to say hello to with which nonce. The next periodic round is one
    /// interval from now. With no peer, no round starts.
    pub fn start_round<R: Rng + ?Sized>(
        &mut self,
        kind: RoundKind,
        peers: &[PkiId],
        now: Instant,
        rng: &mut R,
    ) -> Vec<(PkiId, u64)> {
        self.next_round = now + self.config.interval;
        self.gap_at = None;
        self.cadence.disarm();
        if self.round.is_some() {
            if kind == RoundKind::Periodic || !self.config.eager {
                return Vec::new();
            }
            if let Some(gone) = self.round.take() {
                self.supersede
                    .given_up(gone.phase_began, gone.nonces.into_keys().collect());
            }
            self.stats.rounds_superseded += 1;
        }
        if peers.is_empty() {
            return Vec::new();
        }
        self.last_start = Some(now);
        self.stats.rounds += 1;
        self.stats.gap_rounds += u64::from(kind == RoundKind::Gap);
        self.stats.quiet_rounds += u64::from(kind == RoundKind::Quiet);
        let mut nonces = BTreeMap::new();
        let mut hellos = Vec::with_capacity(peers.len());
        for &peer in peers {
            let nonce = loop {
                let n: u64 = rng.random();
                if !nonces.contains_key(&n) {
                    break n;
                }
            };
            nonces.insert(
                nonce,
                Outgoing {
                    peer,
                    answered: false,
                },
            );
            hellos.push((peer, nonce));
        }
        self.round = Some(Round {
            phase: Phase::Digests {
                until: now + self.config.digest_wait,
            },
            phase_began: now,
            answered_in_phase: false,
            nonces,
            owners: BTreeMap::new(),
        });
        hellos
    }

    /// A hello from `from`: its nonce is valid for one request during `request_wait`.
    pub fn on_hello(&mut self, from: PkiId, nonce: u64, now: Instant) -> Result<(), PullReject> {
        self.incoming.retain(|_, expires| *expires > now);
        let expires = now + self.config.request_wait;
        if let Some(e) = self.incoming.get_mut(&(from, nonce)) {
            *e = expires;
            return Ok(());
        }
        let mine = (from, 0)..=(from, u64::MAX);
        if self.incoming.range(mine.clone()).count() >= INCOMING_PER_PEER_MAX {
            let oldest = self
                .incoming
                .range(mine)
                .min_by_key(|(_, e)| **e)
                .map(|(k, _)| *k);
            if let Some(k) = oldest {
                self.incoming.remove(&k);
            }
        } else if self.incoming.len() >= INCOMING_LEN_MAX {
            return Err(PullReject::Full);
        }
        self.incoming.insert((from, nonce), expires);
        Ok(())
    }

    /// A request from `from`: its nonce must be one of its hellos, unexpired; it is used up.
    pub fn on_request(&mut self, from: PkiId, nonce: u64, now: Instant) -> Result<(), PullReject> {
        match self.incoming.remove(&(from, nonce)) {
            Some(expires) if expires > now => Ok(()),
            _ => Err(PullReject::UnknownNonce),
        }
    }

    /// A digest from `from` echoing `nonce`, with the advertised `items` the caller wants
    /// (Fabric's ingress digest filter and "not held" check, applied by the caller). Each peer
    /// answers once per round, during the digest phase.
    pub fn on_digest(
        &mut self,
        from: PkiId,
        nonce: u64,
        items: impl IntoIterator<Item = I>,
        now: Instant,
    ) -> Result<(), PullReject> {
        let eager = self.config.eager;
        let Some(round) = self.round.as_mut().filter(|r| {
            matches!(r.phase, Phase::Digests { until } if until > now)
                && r.nonces
                    .get(&nonce)
                    .is_some_and(|o| o.peer == from && !o.answered)
        }) else {
            self.supersede.late(nonce, now);
            return Err(PullReject::UnknownNonce);
        };
        if let Some(outgoing) = round.nonces.get_mut(&nonce) {
            outgoing.answered = true;
        }
        if !round.answered_in_phase {
            round.answered_in_phase = true;
            self.supersede
                .sample(now.saturating_duration_since(round.phase_began));
        }
        for item in items {
            if let Some(owners) = round.owners.get_mut(&item) {
                if !owners.contains(&from) {
                    owners.push(from);
                }
                continue;
            }
            if round.owners.len() >= WANTED_LEN_MAX {
                match round.owners.last_key_value() {
                    Some((highest, _)) if item < *highest => {
                        round.owners.pop_last();
                    }
                    _ => {
                        self.stats.items_over_bound += 1;
                        continue;
                    }
                }
                self.stats.items_over_bound += 1;
            }
            round.owners.insert(item, vec![from]);
        }
        if eager && round.nonces.values().all(|o| o.answered) {
            round.phase = Phase::Digests { until: now };
        }
        Ok(())
    }

    /// Whether the digest phase is over and the requests are due.
    pub fn requests_due(&self, now: Instant) -> bool {
        matches!(
            self.round,
            Some(Round { phase: Phase::Digests { until }, .. }) if until <= now
        )
    }

    /// Ends the digest phase (Fabric's `processIncomingDigests`): every advertised item still
    /// wanted goes to one random peer that advertised it; returns one request per such peer
    /// (`(peer, its nonce, items)`), and updates are accepted for `response_wait`.
    pub fn take_requests<R: Rng + ?Sized>(
        &mut self,
        now: Instant,
        mut still_wanted: impl FnMut(&I) -> bool,
        rng: &mut R,
    ) -> Vec<(PkiId, u64, Vec<I>)> {
        let Some(round) = self.round.as_mut() else {
            return Vec::new();
        };
        if !matches!(round.phase, Phase::Digests { .. }) {
            return Vec::new();
        }
        let mut by_peer: BTreeMap<PkiId, Vec<I>> = BTreeMap::new();
        let mut outstanding = BTreeSet::new();
        for (item, owners) in std::mem::take(&mut round.owners) {
            if owners.is_empty() || !still_wanted(&item) {
                continue;
            }
            let owner = owners[rng.random_range(0..owners.len())];
            by_peer.entry(owner).or_default().push(item.clone());
            outstanding.insert(item);
        }
        self.stats.items_requested += outstanding.len() as u64;
        let done = outstanding.is_empty();
        round.phase = Phase::Responses {
            until: now + self.config.response_wait,
            outstanding,
        };
        round.phase_began = now;
        round.answered_in_phase = false;
        let requests = by_peer
            .into_iter()
            .filter_map(|(peer, items)| {
                let nonce = round
                    .nonces
                    .iter()
                    .find(|(_, o)| o.peer == peer)
                    .map(|(n, _)| *n)?;
                Some((peer, nonce, items))
            })
            .collect();
        if done && self.config.eager {
            self.end_early();
        }
        requests
    }

    /// An update from `from` echoing `nonce`: accepted while its round takes responses.
    pub fn on_update(&mut self, from: PkiId, nonce: u64, now: Instant) -> Result<(), PullReject> {
        match &mut self.round {
            Some(Round {
                phase: Phase::Responses { until, .. },
                nonces,
                phase_began,
                answered_in_phase,
                ..
            }) if *until > now && nonces.get(&nonce).is_some_and(|o| o.peer == from) => {
                if !*answered_in_phase {
                    *answered_in_phase = true;
                    self.supersede
                        .sample(now.saturating_duration_since(*phase_began));
                }
                Ok(())
            }
            _ => {
                self.supersede.late(nonce, now);
                Err(PullReject::UnknownNonce)
            }
        }
    }

    /// `item` is now held (pushed or pulled). With `eager`, a round whose every requested item
    /// arrived ends.
    pub fn arrived(&mut self, item: &I) {
        let Some(Round {
            phase: Phase::Responses { outstanding, .. },
            ..
        }) = self.round.as_mut()
        else {
            return;
        };
        if outstanding.remove(item) && outstanding.is_empty() && self.config.eager {
            self.end_early();
        }
    }

    fn end_early(&mut self) {
        self.round = None;
        self.stats.rounds_ended_early += 1;
    }
}
