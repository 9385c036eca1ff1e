//! The deliver cursors of the current leaders ([`super`]'s module docs): which leader is handed
//! which block next. Pure: the follower's thread drives it.

use std::collections::{BTreeMap, HashMap};

/// A leader's deliver cursor on one channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cursor {
    /// Became leader; its ledger height is not read yet.
    AwaitingHeight,
    /// The next block to hand it.
    Next(u64),
}

/// How handing one block to a leader went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendOutcome {
    /// It took the block.
    Taken,
    /// It answered with an error (the block is skipped for it: pull repairs it).
    Refused,
    /// No answer or no connection: it is gone, its cursor ends (a deliver client's stream broke).
    Unreachable,
}

/// The deliver cursors of the current leaders ([`super`] module docs); pure, driven by the follower.
#[derive(Clone, Debug, Default)]
pub struct Router {
    /// Org of every node.
    org_of: Vec<usize>,
    /// Channel names, by index.
    channels: Vec<String>,
    /// Per (node, channel index) of a current leader: its cursor.
    cursors: BTreeMap<(usize, usize), Cursor>,
    /// Per (node, channel index): the time of the newest leadership news applied, Unix ns.
    stamps: HashMap<(usize, usize), u64>,
    /// Per (node, channel index): the block after the newest it delivered in order.
    in_order_next: HashMap<(usize, usize), u64>,
    /// How far past a leader's in-order delivery it may be handed blocks ([`super`] module docs).
    ahead_max_blocks: u64,
}

/// Fabric's `peer.gossip.state.blockBufferSize` default: the back-pressure bound.
pub const AHEAD_MAX_BLOCKS_DEFAULT: u64 = 20;

impl Router {
    /// A router for nodes in orgs `org_of` (index = node) on `channels`.
    pub fn new(org_of: Vec<usize>, channels: Vec<String>) -> Self {
        Router {
            org_of,
            channels,
            ahead_max_blocks: AHEAD_MAX_BLOCKS_DEFAULT,
            ..Router::default()
        }
    }

    /// Sets the back-pressure bound (at least 1).
    pub fn with_ahead_max_blocks(mut self, blocks: u64) -> Self {
        self.ahead_max_blocks = blocks.max(1);
        self
    }

    /// The channel names, by index.
    pub fn channels(&self) -> &[String] {
        &self.channels
    }

    fn channel(&self, name: &str) -> Option<usize> {
        self.channels.iter().position(|c| c == name)
    }

    /// Applies leadership news about `node` on `channel` from time `unix_ns` (an event, or a poll
    /// sent then); older than what is known: ignored. Returns whether it changed anything.
    pub fn leadership(&mut self, node: usize, channel: &str, leader: bool, unix_ns: u64) -> bool {
        let Some(ch) = self.channel(channel) else {
            return false;
        };
        if node >= self.org_of.len() {
            return false;
        }
        let stamp = self.stamps.entry((node, ch)).or_insert(0);
        if unix_ns < *stamp {
            return false;
        }
        *stamp = unix_ns;
        match (leader, self.cursors.contains_key(&(node, ch))) {
            (true, false) => {
                self.cursors.insert((node, ch), Cursor::AwaitingHeight);
                true
            }
            (false, true) => {
                self.cursors.remove(&(node, ch));
                true
            }
            _ => false,
        }
    }

    /// `node` was killed at `unix_ns`: its cursors end, and news from before the kill is stale.
    pub fn killed(&mut self, node: usize, unix_ns: u64) {
        for ch in 0..self.channels.len() {
            self.cursors.remove(&(node, ch));
            let stamp = self.stamps.entry((node, ch)).or_insert(0);
            *stamp = (*stamp).max(unix_ns);
            self.in_order_next.remove(&(node, ch));
        }
    }

    /// `node` delivered `seq` of `channel` in order (a `block` event).
    pub fn in_order(&mut self, node: usize, channel: &str, seq: u64) {
        if let Some(ch) = self.channel(channel) {
            let next = self.in_order_next.entry((node, ch)).or_insert(1);
            *next = (*next).max(seq + 1);
        }
    }

    /// Cursors waiting for their node's ledger height: (node, channel index).
    pub fn awaiting_height(&self) -> Vec<(usize, usize)> {
        self.cursors
            .iter()
            .filter(|(_, c)| **c == Cursor::AwaitingHeight)
            .map(|(k, _)| *k)
            .collect()
    }

    /// The ledger height `node` answered on channel `ch` (`None`: it keeps none, so the block
    /// after its in-order deliveries): its cursor starts there.
    pub fn height(&mut self, node: usize, ch: usize, height: Option<u64>) {
        if let Some(c) = self.cursors.get_mut(&(node, ch))
            && *c == Cursor::AwaitingHeight
        {
            let delivered = self.in_order_next.entry((node, ch)).or_insert(1);
            let start = height.unwrap_or(*delivered).max(1);
            *delivered = (*delivered).max(start);
            *c = Cursor::Next(start);
        }
    }

    /// The next hand-over due with `produced` blocks made per channel: (node, channel index,
    /// block) of the first cursor (by node, then channel) that is behind and within the
    /// back-pressure bound ([`super`] module docs).
    pub fn next_send(&self, produced: u64) -> Option<(usize, usize, u64)> {
        self.cursors.iter().find_map(|(&(node, ch), c)| {
            let delivered = self.in_order_next.get(&(node, ch)).copied().unwrap_or(1);
            match c {
                Cursor::Next(n)
                    if *n <= produced && *n < delivered.saturating_add(self.ahead_max_blocks) =>
                {
                    Some((node, ch, *n))
                }
                _ => None,
            }
        })
    }

    /// How handing `seq` to `node` on `ch` went; a cursor that moved meanwhile is left alone.
    pub fn sent(&mut self, node: usize, ch: usize, seq: u64, outcome: SendOutcome) {
        if self.cursors.get(&(node, ch)) != Some(&Cursor::Next(seq)) {
            return;
        }
        match outcome {
            SendOutcome::Taken | SendOutcome::Refused => {
                self.cursors.insert((node, ch), Cursor::Next(seq + 1));
            }
            SendOutcome::Unreachable => {
                self.cursors.remove(&(node, ch));
            }
        }
    }

    /// The leaders of `org` on channel index `ch` loadgen knows now, ascending.
    pub fn leaders(&self, org: usize, ch: usize) -> Vec<usize> {
        self.cursors
            .keys()
            .filter(|&&(n, c)| c == ch && self.org_of.get(n) == Some(&org))
            .map(|&(n, _)| n)
            .collect()
    }

    /// The cursor of `node` on channel index `ch`.
    pub fn cursor(&self, node: usize, ch: usize) -> Option<Cursor> {
        self.cursors.get(&(node, ch)).copied()
    }
}
