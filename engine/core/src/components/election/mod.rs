//! Leader election of one channel (spec 3.10, Fabric's `gossip/election` and its adapter), sans
//! IO: every wait of Fabric's goroutines is a deadline here, and the "interrupt" a declaration
//! gives a waiting election or leader is a call that continues the loop at once.
//!
//! Peers are compared by PKI-ID bytes; **the lowest wins**. One round of the loop:
//!
//! 1. start-up: sample the view size every `membershipSampleInterval` until a sample equals the
//!    one before, `startupGracePeriod` passed, or a declaration was seen;
//! 2. no leader known: unless yielding, propose and wait `leaderElectionDuration` (a declaration
//!    cuts it short); become leader unless a declaration came or a lower peer proposed;
//! 3. a known leader ends a yield;
//! 4. leader: declare, wait `leaderAliveThreshold / 2` (cut short by a declaration);
//!    follower: forget proposals and the leader, wait `leaderAliveThreshold`.
//!
//! A declaration from a lower PKI-ID makes a leader step down; nothing else does (no
//! pre-emption). Messages from creators outside the [`View`] (alive peers of this org with a
//! StateInfo of the channel) are ignored. Messages carry `inc_num` = the election's start in Unix
//! ns and one `seq_num` counter over proposals and declarations; the channel signs and gossips
//! them ([`Election::take_messages`]) to every peer of the view, and they are never forwarded.
//!
//! With election off the leadership is static (`orgLeader`) and never changes.

#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::time::Duration;

use bytes::Bytes;
use gossip_proto::gossip::gossip_message::{Content, Tag};
use gossip_proto::gossip::{GossipMessage, LeadershipMessage, PeerTime};

use crate::config::GossipConfig;
use crate::event::Event;
use crate::outbox::{DropReason, Outbox};
use crate::time::Instant;
use crate::types::PkiId;

/// Bound on remembered proposals (one per peer of the org; more are not recorded).
pub const PROPOSALS_LEN_MAX: usize = 4_096;
/// Bound on messages waiting for [`Election::take_messages`] (the loop makes one per step).
pub const PENDING_LEN_MAX: usize = 16;
/// Yield lasts this many `leaderAliveThreshold`s (Fabric's `Yield`).
pub const YIELD_THRESHOLDS: u32 = 6;

/// The election's view: alive peers of this org that have a StateInfo of the channel (Fabric's
/// `PeersOfChannel` ∩ my org), this peer excluded.
pub trait View {
    /// How many peers the view holds.
    fn len(&self) -> usize;
    /// Whether the view is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Whether `pki_id` is in the view.
    fn contains(&self, pki_id: &PkiId) -> bool;
}

/// The election's timings (`peer.gossip.election.*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timings {
    /// `startupGracePeriod` (15 s).
    pub startup_grace_period: Duration,
    /// `membershipSampleInterval` (1 s).
    pub membership_sample_interval: Duration,
    /// `leaderAliveThreshold` (10 s).
    pub leader_alive_threshold: Duration,
    /// `leaderElectionDuration` (5 s).
    pub leader_election_duration: Duration,
}

impl Timings {
    /// The timings of a config.
    pub fn of(config: &GossipConfig) -> Self {
        Self {
            startup_grace_period: config.election.startup_grace_period,
            membership_sample_interval: config.election.membership_sample_interval,
            leader_alive_threshold: config.leader_alive_threshold,
            leader_election_duration: config.election.leader_election_duration,
        }
    }
}

/// Where the loop waits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Static leadership, or stopped: no loop.
    Off,
    /// Start-up sampling of the view size.
    Sampling {
        next_sample_at: Instant,
        view_len: usize,
        grace_ends_at: Instant,
    },
    /// Proposed; waiting for other proposals (cut short by a declaration).
    Electing { until: Instant },
    /// Declared; waiting to declare again (cut short by a declaration).
    Leading { until: Instant },
    /// Waiting for a leader's declarations (not cut short).
    Following { until: Instant },
}

/// Election counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ElectionStats {
    /// Proposals sent.
    pub proposals_sent: u64,
    /// Declarations sent.
    pub declarations_sent: u64,
    /// Times this peer became leader.
    pub became_leader: u64,
    /// Times this peer stopped being leader (stepped down, yielded, left).
    pub stepped_down: u64,
}

/// The leader election of one channel.
#[derive(Debug)]
pub struct Election {
    channel: Bytes,
    /// This peer (set by every input that may send).
    me: PkiId,
    timings: Timings,
    phase: Phase,
    inc_num: u64,
    seq_num: u64,
    is_leader: bool,
    leader_exists: bool,
    proposals: BTreeSet<PkiId>,
    yield_until: Option<Instant>,
    pending: Vec<GossipMessage>,
    stats: ElectionStats,
}

impl Election {
    /// The election of `channel` started at `now` (Fabric's adapter creation: `inc_num`), dynamic
    /// with `useLeaderElection`, else static leadership `orgLeader`.
    pub fn new(channel: Bytes, config: &GossipConfig, now: Instant) -> Self {
        let timings = Timings::of(config);
        let dynamic = config.election.use_leader_election;
        let phase = if dynamic {
            Phase::Sampling {
                next_sample_at: now + timings.membership_sample_interval,
                view_len: 0,
                grace_ends_at: now + timings.startup_grace_period,
            }
        } else {
            Phase::Off
        };
        Self {
            channel,
            me: PkiId::default(),
            timings,
            phase,
            inc_num: now.as_nanos(),
            seq_num: 0,
            is_leader: !dynamic && config.election.org_leader,
            leader_exists: false,
            proposals: BTreeSet::new(),
            yield_until: None,
            pending: Vec::new(),
            stats: ElectionStats::default(),
        }
    }

    /// Whether this peer is the channel's leader now (Fabric's `IsLeader`; static: `orgLeader`).
    pub fn is_leader(&self) -> bool {
        self.is_leader
    }

    /// Whether the election runs (`useLeaderElection`) and was not stopped.
    pub fn is_running(&self) -> bool {
        self.phase != Phase::Off
    }

    /// Counters.
    pub fn stats(&self) -> ElectionStats {
        self.stats.clone()
    }

    /// The next deadline ([`Instant::MAX`] when not running).
    pub fn poll_timeout(&self) -> Instant {
        match self.phase {
            Phase::Off => Instant::MAX,
            Phase::Sampling { next_sample_at, .. } => next_sample_at,
            Phase::Electing { until } | Phase::Leading { until } | Phase::Following { until } => {
                until
            }
        }
    }

    /// Messages to sign and gossip to the view, oldest first.
    pub fn take_messages(&mut self) -> std::vec::Drain<'_, GossipMessage> {
        self.pending.drain(..)
    }

    /// Continues the loop when its deadline passed. Idempotent when called early.
    pub fn handle_timeout(&mut self, me: PkiId, view: &dyn View, now: Instant, out: &mut Outbox) {
        self.me = me;
        match self.phase {
            Phase::Off => {}
            Phase::Sampling {
                next_sample_at,
                view_len,
                grace_ends_at,
            } if now >= next_sample_at => {
                let len = view.len();
                if len == view_len || now > grace_ends_at || self.leader_exists {
                    self.run_round(now);
                } else {
                    self.phase = Phase::Sampling {
                        next_sample_at: now + self.timings.membership_sample_interval,
                        view_len: len,
                        grace_ends_at,
                    };
                }
            }
            Phase::Electing { until } if now >= until => self.end_election(now, out),
            Phase::Leading { until } | Phase::Following { until } if now >= until => {
                self.run_round(now)
            }
            _ => {}
        }
    }

    /// A new leadership message of the channel from `creator` (the store already dropped
    /// duplicates and older ones).
    pub fn handle_message(
        &mut self,
        me: PkiId,
        creator: PkiId,
        is_declaration: bool,
        view: &dyn View,
        now: Instant,
        out: &mut Outbox,
    ) {
        if self.phase == Phase::Off {
            return;
        }
        self.me = me;
        if !view.contains(&creator) {
            return out.count_drop(DropReason::NotEligible);
        }
        if !is_declaration {
            if self.proposals.len() < PROPOSALS_LEN_MAX {
                self.proposals.insert(creator);
            }
            return;
        }
        self.leader_exists = true;
        if creator < me && self.is_leader {
            self.step_down(out);
        }
        match self.phase {
            Phase::Electing { .. } => self.end_election(now, out),
            Phase::Leading { .. } => self.run_round(now),
            _ => {}
        }
    }

    /// Fabric's `Yield`: a leader steps down and takes no part in elections for
    /// `leaderAliveThreshold × 6` (or until it sees another leader).
    pub fn yield_leadership(&mut self, now: Instant, out: &mut Outbox) {
        if self.phase == Phase::Off || !self.is_leader || self.yielding(now) {
            return;
        }
        self.yield_until = Some(now + self.timings.leader_alive_threshold * YIELD_THRESHOLDS);
        self.step_down(out);
        self.leader_exists = false;
    }

    /// Stops the election (the channel was left): a leader steps down.
    pub fn stop(&mut self, out: &mut Outbox) {
        if self.phase == Phase::Off {
            return;
        }
        if self.is_leader {
            self.step_down(out);
        }
        self.phase = Phase::Off;
        self.pending.clear();
    }

    fn yielding(&self, now: Instant) -> bool {
        self.yield_until.is_some_and(|until| now < until)
    }

    /// One iteration of Fabric's `run` loop up to its first wait.
    fn run_round(&mut self, now: Instant) {
        if !self.leader_exists && !self.yielding(now) {
            self.push_message(false);
            self.stats.proposals_sent += 1;
            self.phase = Phase::Electing {
                until: now + self.timings.leader_election_duration,
            };
            return;
        }
        self.act(now);
    }

    /// The end of `leaderElection`'s wait, then the rest of the iteration.
    fn end_election(&mut self, now: Instant, out: &mut Outbox) {
        let lower_proposed = self.proposals.first().is_some_and(|p| *p < self.me);
        if !self.leader_exists && !self.yielding(now) && !lower_proposed {
            self.is_leader = true;
            self.stats.became_leader += 1;
            self.notify(out);
            self.leader_exists = true;
        }
        self.act(now);
    }

    /// The end of an iteration: a known leader ends a yield; then lead or follow.
    fn act(&mut self, now: Instant) {
        if self.leader_exists && self.yielding(now) {
            self.yield_until = None;
        }
        if self.is_leader {
            self.push_message(true);
            self.stats.declarations_sent += 1;
            self.phase = Phase::Leading {
                until: now + self.timings.leader_alive_threshold / 2,
            };
        } else {
            self.proposals.clear();
            self.leader_exists = false;
            self.phase = Phase::Following {
                until: now + self.timings.leader_alive_threshold,
            };
        }
    }

    fn step_down(&mut self, out: &mut Outbox) {
        self.is_leader = false;
        self.stats.stepped_down += 1;
        self.notify(out);
    }

    fn notify(&self, out: &mut Outbox) {
        out.event(Event::LeadershipChanged {
            channel: self.channel.clone(),
            leader: self.is_leader,
        });
    }

    /// Fabric's adapter `CreateMessage`: the next `seq_num`, the fixed `inc_num`.
    fn push_message(&mut self, is_declaration: bool) {
        self.seq_num += 1;
        if self.pending.len() >= PENDING_LEN_MAX {
            return;
        }
        self.pending.push(GossipMessage {
            nonce: 0,
            channel: self.channel.clone(),
            tag: Tag::ChanAndOrg as i32,
            content: Some(Content::LeadershipMsg(LeadershipMessage {
                pki_id: Bytes::copy_from_slice(&self.me.0),
                timestamp: Some(PeerTime {
                    inc_num: self.inc_num,
                    seq_num: self.seq_num,
                }),
                is_declaration,
            })),
        });
    }
}
