//! State transfer (Fabric's anti-entropy in `gossip/state/state.go`, spec 3.9): the decisions,
//! without the wire. The channel ([`crate::components::channel`]) speaks `RemoteStateRequest`
//! and `RemoteStateResponse`; this module decides when to ask whom for which range, matches
//! answers to requests by nonce, and keeps the bounded set of requests being served.
//!
//! - **Anti-entropy** (only with `state.enabled`): every `checkInterval`, when some channel peer
//!   advertises a ledger height above ours, the range `[height, max_height - 1]` is transferred in
//!   requests of `batchSize + 1` blocks (the range is inclusive, as Fabric's), one at a time, each
//!   to a random peer whose advertised height covers it.
//! - **Retries**: a request unanswered in time (Fabric: `responseTimeout`; ours: below), or
//!   answered without moving our height (no block we wanted, or none delivery could take), is
//!   sent again (to a new random peer, with a new nonce) up to `maxRetries` times; then the
//!   transfer gives up until the next check (a gap repair: until a backoff from
//!   `heightGapDelay`, doubling up to `checkInterval`, has passed; it then goes on with what it
//!   had left).
//! - **Where we differ from Fabric** (timing only): a transfer asks for the next range as soon
//!   as an answer is in instead of waiting for the batch to commit, and a peer advertising a
//!   higher height brings the next check forward to `heightGapDelay` from then, instead of
//!   waiting up to `checkInterval` (`engine/ALGORITHM.md`). Once answers have been timed, a
//!   request waits four times the smoothed answer time (within `response_timeout_min` and
//!   `responseTimeout`, doubled per retry), so a lost request or answer stalls a transfer for
//!   that long rather than 3 s; before any answer was timed, 1 s ([`ANSWER_WAIT_INITIAL`]). An
//!   answer to the request a retry replaced that arrives late is still taken (Fabric drops it):
//!   its blocks count, and its time raises the next waits.
//! - **Gap repair** (ours, `gap_repair`, on by default; independent of `state.enabled`): a gap
//!   that no block store holds any more cannot be repaired by pull. A peer whose first missing
//!   block is more than `maxBlockCountToStore` below its newest block transfers the missing run at
//!   once ([`StateTransfer::gap_unreachable`]). A peer that refuses a pushed block beyond its
//!   admission window ([`StateTransfer::gap_seen`]) is at least `2 × blockBufferSize` blocks
//!   behind the stream; after `heightGapDelay` it transfers the range up to the refused block as
//!   anti-entropy would. A peer whose height is below the one a strict majority of the
//!   channel's peers advertise ([`StateTransfer::majority_ahead`]), the only sign of a gap
//!   for a peer restarted after the last block, does the same up to the majority's height when
//!   the gap lies beyond pull's reach, or when pull has not closed it by the next
//!   `requestStateInfoInterval` check; a shorter gap is left to a pull gap round first.
//!   Each asks a peer whose advertised height covers the range or, since advertised heights are
//!   up to `publishStateInfoInterval` old, any channel peer ([`StateTransfer::may_ask_any`]).
//!   Fabric peers serve state requests whether or not their own anti-entropy is on.
//! - **Serving**: a request is valid when `start <= end` and `end - start <= batchSize`; at most
//!   `channelSize` are read from the ledger at once, more are dropped.

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::time::Duration;

use rand::Rng;

use crate::config::StateConfig;
use crate::time::Instant;
use crate::types::PkiId;

/// A state request to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    /// The peer asked.
    pub to: PkiId,
    /// The nonce its answer must echo.
    pub nonce: u64,
    /// The first block number.
    pub start_seq: u64,
    /// The last block number, inclusive.
    pub end_seq: u64,
}

/// A state response as the transfer sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Answer {
    /// The responder.
    pub from: PkiId,
    /// The nonce it echoed.
    pub nonce: u64,
}

/// A request being served: whom to answer, with which nonce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Serving {
    /// The requester.
    pub to: PkiId,
    /// The request's nonce.
    pub nonce: u64,
}

/// Why a state message was not taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StateReject {
    /// A request with `start > end`, or asking for more than `batchSize + 1` blocks.
    #[error("invalid state request range")]
    BadRange,
    /// `channelSize` requests are being served already.
    #[error("too many state requests being served")]
    Busy,
    /// A response that answers no request of ours (nonce or sender).
    #[error("state response to no request")]
    Unsolicited,
}

/// Counters of state transfer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StateStats {
    /// Requests sent (retries included).
    pub requests_sent: u64,
    /// Requests that timed out.
    pub requests_timed_out: u64,
    /// Transfers that gave up after `maxRetries`.
    pub transfers_abandoned: u64,
    /// Transfers that reached the end of their range.
    pub transfers_completed: u64,
    /// Responses matched to a request.
    pub responses_taken: u64,
    /// Of those, late answers to a request whose wait had run out and that was sent again.
    pub responses_late: u64,
    /// Requests served (ledger reads started).
    pub requests_served: u64,
    /// Transfers started by gap repair.
    pub gap_repairs: u64,
}

impl StateStats {
    /// Adds another channel's counters.
    pub fn add(&mut self, other: &StateStats) {
        self.requests_sent += other.requests_sent;
        self.requests_timed_out += other.requests_timed_out;
        self.transfers_abandoned += other.transfers_abandoned;
        self.transfers_completed += other.transfers_completed;
        self.responses_taken += other.responses_taken;
        self.responses_late += other.responses_late;
        self.requests_served += other.requests_served;
        self.gap_repairs += other.gap_repairs;
    }
}

/// The wait for the first answer of a state request, before any answer was timed: RFC 6298's
/// initial retransmission timeout (1 s), within `response_timeout_min..=response_timeout`. A
/// slow answer is still taken after the retry (`StateTransfer::on_response`), so waiting less than
/// Fabric's 3 s costs at most a second request.
pub const ANSWER_WAIT_INITIAL: Duration = Duration::from_secs(1);

#[derive(Clone, Copy, Debug)]
struct Transfer {
    /// Started by gap repair rather than anti-entropy.
    repair: bool,
    /// The next block wanted.
    next_seq: u64,
    /// The last block of the range.
    end_seq: u64,
    /// Tries of the current request.
    tries: u32,
    pending: Option<Pending>,
    /// The request whose wait ran out, replaced by `pending`: its answer, late, is still taken.
    superseded: Option<Pending>,
}

#[derive(Clone, Copy, Debug)]
struct Pending {
    request: Request,
    sent_at: Instant,
    deadline: Instant,
}

impl Pending {
    fn answered_by(&self, from: PkiId, nonce: u64) -> bool {
        self.request.nonce == nonce && self.request.to == from
    }
}

/// One channel's state transfer.
#[derive(Debug)]
pub struct StateTransfer {
    config: StateConfig,
    next_check: Instant,
    /// A gap repair due at this time (once no transfer runs), up to `repair_to` (exclusive)
    /// ([`StateTransfer::gap_seen`]).
    repair_at: Option<Instant>,
    repair_to: u64,
    /// No gap repair starts before this: a repair that gave up is tried again after a backoff
    /// (`repair_backoff`), so peers that all lack a range are not asked again at every block.
    repair_not_before: Instant,
    /// The wait after the next repair that gives up: `heightGapDelay`, doubled after each one
    /// up to `checkInterval`, back to `heightGapDelay` when a repair completes.
    repair_backoff: Duration,
    /// Smoothed time from a request to its answer (none before the first answer).
    answer_time_smoothed: Option<Duration>,
    transfer: Option<Transfer>,
    serving: BTreeMap<u64, Serving>,
    stats: StateStats,
}

impl StateTransfer {
    /// State transfer of a channel joined at `now`: the first check one `checkInterval` later.
    pub fn new(config: StateConfig, now: Instant) -> Self {
        Self {
            next_check: now + config.check_interval,
            repair_at: None,
            repair_to: 0,
            repair_not_before: Instant::ZERO,
            repair_backoff: config.height_gap_delay,
            answer_time_smoothed: None,
            config,
            transfer: None,
            serving: BTreeMap::new(),
            stats: StateStats::default(),
        }
    }

    /// The counters.
    pub fn stats(&self) -> StateStats {
        self.stats
    }

    /// Whether a transfer is running.
    pub fn is_active(&self) -> bool {
        self.transfer.is_some()
    }

    /// The next deadline: the anti-entropy check (when enabled) or a request's timeout.
    pub fn poll_timeout(&self) -> Instant {
        let repair_at = match (self.transfer, self.repair_at) {
            (None, Some(at)) => at.max(self.repair_not_before),
            _ => Instant::MAX,
        };
        let pending = self
            .transfer
            .and_then(|t| t.pending)
            .map_or(Instant::MAX, |p| p.deadline)
            .min(repair_at);
        if self.config.enabled {
            pending.min(self.next_check)
        } else {
            pending
        }
    }

    /// Gap repair (module doc): a block `stream_height - 1` arrived beyond the admission window
    /// while our height is `height`. With `gap_repair`, a transfer up to `stream_height` starts
    /// `heightGapDelay` from now, or once the running transfer ends; a running repair is extended
    /// to it.
    pub fn gap_seen(&mut self, stream_height: u64, height: u64, now: Instant) {
        self.repair_gap(stream_height, height, now + self.config.height_gap_delay);
    }

    /// Gap repair (module doc) of a gap that left every peer's block store: blocks `height..end`
    /// are missing while a block at least `maxBlockCountToStore` past them arrived, so pull
    /// cannot bring them and no push is on its way. With `gap_repair`, a transfer of
    /// `height..end` starts at the next tick, or once the running transfer ends; a running repair
    /// is extended to it.
    pub fn gap_unreachable(&mut self, end: u64, height: u64, now: Instant) {
        self.repair_gap(end, height, now);
    }

    /// Gap repair (module doc) of a gap the channel's majority shows: blocks `height..end` are
    /// missing while a strict majority of the channel's peers advertise a ledger height of at
    /// least `end`. With `gap_repair`, a transfer of `height..end` starts `heightGapDelay` from
    /// now if still missing then, or once the running transfer ends; a running repair is
    /// extended to it.
    pub fn majority_ahead(&mut self, end: u64, height: u64, now: Instant) {
        self.repair_gap(end, height, now + self.config.height_gap_delay);
    }

    /// A gap up to `end` (exclusive): a running repair transfer is extended to it; otherwise it
    /// is remembered and due at `at`, or when the running anti-entropy transfer ends. Remembered
    /// even then, so a peer overrun by a burst has what it learnt of the stream once the stream
    /// stops, and goes on until it has it.
    fn repair_gap(&mut self, end: u64, height: u64, at: Instant) {
        if !self.config.gap_repair || end <= height {
            return;
        }
        if let Some(t) = self.transfer.as_mut().filter(|t| t.repair) {
            t.end_seq = t.end_seq.max(end - 1);
            return;
        }
        self.repair_to = self.repair_to.max(end);
        self.repair_at = Some(self.repair_at.map_or(at, |r| r.min(at)));
    }

    /// Whether the next request may go to any channel peer, not only to one whose advertised
    /// height covers it: while a gap repair is due or running.
    pub fn may_ask_any(&self) -> bool {
        self.repair_at.is_some() || self.transfer.is_some_and(|t| t.repair)
    }

    /// A peer advertised ledger height `advertised` while ours is `height`: bring the next
    /// check forward to `heightGapDelay` from now.
    pub fn height_seen(&mut self, advertised: u64, height: u64, now: Instant) {
        if self.config.enabled && advertised > height && self.transfer.is_none() {
            self.next_check = self.next_check.min(now + self.config.height_gap_delay);
        }
    }

    /// Whether a response from `from` echoing `nonce` answers the pending request, or the one
    /// it replaced when its wait ran out.
    pub fn expects(&self, from: PkiId, nonce: u64) -> bool {
        self.transfer.is_some_and(|t| {
            [t.pending, t.superseded]
                .iter()
                .flatten()
                .any(|p| p.answered_by(from, nonce))
        })
    }

    /// The timed work: a timed-out request is retried or the transfer given up; a due check
    /// starts a transfer when `max_height` (the highest advertised) is above `height` (ours).
    /// `pick(need)` picks a random peer advertising a height above `need`.
    pub fn tick<R: Rng + ?Sized>(
        &mut self,
        now: Instant,
        height: u64,
        max_height: u64,
        mut pick: impl FnMut(u64, &mut R) -> Option<PkiId>,
        rng: &mut R,
    ) -> Option<Request> {
        if let Some(t) = &mut self.transfer
            && t.pending.is_some_and(|p| p.deadline <= now)
        {
            t.superseded = t.pending.take();
            self.stats.requests_timed_out += 1;
            return self.retry(now, height, &mut pick, rng);
        }
        if self.transfer.is_none()
            && self
                .repair_at
                .is_some_and(|at| at.max(self.repair_not_before) <= now)
        {
            self.repair_at = None;
            // Only as far as the refused block (it passed the block checks) or the majority's
            // height: the highest advertised height is one signer's word.
            let end = std::mem::take(&mut self.repair_to);
            if end > height {
                self.stats.gap_repairs += 1;
                return self.start(true, height, end, now, &mut pick, rng);
            }
        }
        if !self.config.enabled || self.next_check > now {
            return None;
        }
        self.next_check = now + self.config.check_interval;
        if self.transfer.is_some() || max_height <= height {
            return None;
        }
        self.start(false, height, max_height, now, &mut pick, rng)
    }

    /// Starts a transfer of `height..max_height` and returns its first request.
    fn start<R: Rng + ?Sized>(
        &mut self,
        repair: bool,
        height: u64,
        max_height: u64,
        now: Instant,
        pick: &mut impl FnMut(u64, &mut R) -> Option<PkiId>,
        rng: &mut R,
    ) -> Option<Request> {
        self.transfer = Some(Transfer {
            repair,
            next_seq: height,
            end_seq: max_height - 1,
            tries: 0,
            pending: None,
            superseded: None,
        });
        self.request(now, height, pick, rng)
    }

    /// A state response ([`Answer`]); `height` is ours after taking its blocks. Returns the next
    /// request of the transfer. A late answer to the request a retry replaced is taken too: its
    /// blocks count and its answer time raises the next waits; when it moved our height, the
    /// next range is asked for in place of the retry.
    pub fn on_response<R: Rng + ?Sized>(
        &mut self,
        answer: Answer,
        height: u64,
        now: Instant,
        mut pick: impl FnMut(u64, &mut R) -> Option<PkiId>,
        rng: &mut R,
    ) -> Result<Option<Request>, StateReject> {
        let Answer { from, nonce } = answer;
        let t = self.transfer.as_mut().ok_or(StateReject::Unsolicited)?;
        if let Some(pending) = t.pending.filter(|p| p.answered_by(from, nonce)) {
            t.pending = None;
            // Progress is our own height: blocks an answer carried that delivery could not take
            // (its buffer full while commits catch up) are asked for again, not skipped.
            let progressed = height > t.next_seq;
            t.next_seq = t.next_seq.max(height);
            let done = t.next_seq > t.end_seq;
            if progressed {
                t.tries = 0;
            }
            self.take_answer_time(now.saturating_duration_since(pending.sent_at));
            return Ok(if done {
                self.end(true, now)
            } else if progressed {
                self.request(now, height, &mut pick, rng)
            } else {
                self.retry(now, height, &mut pick, rng)
            });
        }
        let late = t
            .superseded
            .filter(|p| p.answered_by(from, nonce))
            .ok_or(StateReject::Unsolicited)?;
        t.superseded = None;
        let progressed = height > t.next_seq;
        if progressed {
            // The retry asks for blocks this answer brought: the next range is asked for instead
            // (the retry's own answer, if it comes, is taken as a late one).
            t.superseded = t.pending.take();
            t.tries = 0;
        }
        self.stats.responses_late += 1;
        self.take_answer_time(now.saturating_duration_since(late.sent_at));
        Ok(if progressed {
            self.request(now, height, &mut pick, rng)
        } else {
            None
        })
    }

    /// Counts an answer and adds its time to the smoothed estimate: TCP's smoothing (RFC 6298),
    /// seven eighths of the old estimate, one of the new sample.
    fn take_answer_time(&mut self, answer_time: Duration) {
        self.stats.responses_taken += 1;
        self.answer_time_smoothed = Some(
            self.answer_time_smoothed
                .map_or(answer_time, |s| (s.saturating_mul(7) + answer_time) / 8),
        );
    }

    /// Ends the running transfer, `completed` or given up; there is no next request. A repair
    /// that gave up is due again after the backoff, for what it had left.
    fn end(&mut self, completed: bool, now: Instant) -> Option<Request> {
        let ended = self.transfer.take();
        match completed {
            true => self.stats.transfers_completed += 1,
            false => self.stats.transfers_abandoned += 1,
        }
        match ended.filter(|t| t.repair) {
            Some(_) if completed => self.repair_backoff = self.config.height_gap_delay,
            Some(t) => {
                self.repair_not_before = now + self.repair_backoff;
                self.repair_backoff = (self.repair_backoff * 2).min(self.config.check_interval);
                self.repair_to = self.repair_to.max(t.end_seq.saturating_add(1));
                self.repair_at = Some(self.repair_at.map_or(now, |at| at.min(now)));
            }
            None => {}
        }
        None
    }

    fn retry<R: Rng + ?Sized>(
        &mut self,
        now: Instant,
        height: u64,
        pick: &mut impl FnMut(u64, &mut R) -> Option<PkiId>,
        rng: &mut R,
    ) -> Option<Request> {
        let t = self.transfer.as_mut()?;
        t.tries += 1;
        if t.tries > self.config.max_retries {
            return self.end(false, now);
        }
        self.request(now, height, pick, rng)
    }

    /// The next request of the running transfer, from `height` on (blocks that arrived by other
    /// paths meanwhile are not asked for again).
    fn request<R: Rng + ?Sized>(
        &mut self,
        now: Instant,
        height: u64,
        pick: &mut impl FnMut(u64, &mut R) -> Option<PkiId>,
        rng: &mut R,
    ) -> Option<Request> {
        let wait = self.response_wait(self.transfer?.tries);
        let t = self.transfer.as_mut()?;
        t.next_seq = t.next_seq.max(height);
        if t.next_seq > t.end_seq {
            return self.end(true, now);
        }
        let start_seq = t.next_seq;
        let end_seq = t
            .end_seq
            .min(start_seq.saturating_add(self.config.batch_size));
        let Some(to) = pick(end_seq, rng) else {
            return self.end(false, now);
        };
        let request = Request {
            to,
            nonce: rng.random(),
            start_seq,
            end_seq,
        };
        t.pending = Some(Pending {
            request,
            sent_at: now,
            deadline: now + wait,
        });
        self.stats.requests_sent += 1;
        Some(request)
    }

    /// How long a request waits for its answer on its try `tries` (0 first): four times the
    /// smoothed answer time, or [`ANSWER_WAIT_INITIAL`] before any answer was timed, doubled per
    /// retry, within `response_timeout_min..=response_timeout`.
    fn response_wait(&self, tries: u32) -> Duration {
        let (least, most) = (
            self.config.response_timeout_min,
            self.config.response_timeout,
        );
        self.answer_time_smoothed
            .map_or(ANSWER_WAIT_INITIAL, |smoothed| smoothed.saturating_mul(4))
            .max(least)
            .saturating_mul(1 << tries.min(16))
            .min(most)
    }

    /// A state request from `to` for `start_seq..=end_seq`: checks it and returns the token of
    /// the ledger read to start (drawn from `rng`).
    pub fn serve<R: Rng + ?Sized>(
        &mut self,
        to: PkiId,
        nonce: u64,
        start_seq: u64,
        end_seq: u64,
        rng: &mut R,
    ) -> Result<u64, StateReject> {
        if start_seq > end_seq || end_seq - start_seq > self.config.batch_size {
            return Err(StateReject::BadRange);
        }
        if self.serving.len() >= self.config.channel_size {
            return Err(StateReject::Busy);
        }
        let token = loop {
            let token: u64 = rng.random();
            if !self.serving.contains_key(&token) {
                break token;
            }
        };
        self.serving.insert(token, Serving { to, nonce });
        self.stats.requests_served += 1;
        Ok(token)
    }

    /// Whether ledger read `token` is one of this channel's.
    pub fn serves(&self, token: u64) -> bool {
        self.serving.contains_key(&token)
    }

    /// Ledger read `token` finished: whom to answer.
    pub fn served(&mut self, token: u64) -> Option<Serving> {
        self.serving.remove(&token)
    }
}
