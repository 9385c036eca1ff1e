//! Measurement: delivery latency from the *scheduled* injection time (so a stalled injector or
//! node cannot hide latency: no coordinated omission), time-to-all, completeness, order, and
//! per-second buckets for the time series.

use std::collections::{BTreeMap, HashMap};

use gossip_engine::event::Arrival;
use hdrhistogram::Histogram;

use crate::cluster::control::{Delivery, DeliveryKind};

mod restarts;
pub use restarts::{KillRecord, Restarted, TracePoint};

/// The paths receipts are split by ([`Collector::by_path`]): the three a `block_received` line's
/// `via` names, then `None` for lines without one (fabric-node's).
pub const PATHS: [Option<Arrival>; 4] = [
    Some(Arrival::Push),
    Some(Arrival::Pull),
    Some(Arrival::StateTransfer),
    None,
];

/// A path's name in reports: `push`, `pull`, `state` or `unknown`.
pub fn path_name(via: Option<Arrival>) -> &'static str {
    via.map_or("unknown", Arrival::as_str)
}

fn path_index(via: Option<Arrival>) -> usize {
    PATHS
        .iter()
        .position(|p| *p == via)
        .unwrap_or(PATHS.len() - 1)
}

/// Histogram range: 1 µs to 1 hour, 3 significant digits; values are microseconds.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("static bounds are valid")
}

/// The `q` quantile of a µs histogram in ms (0 when empty).
pub fn quantile_ms(h: &Histogram<u64>, q: f64) -> f64 {
    if h.is_empty() {
        0.0
    } else {
        h.value_at_quantile(q) as f64 / 1000.0
    }
}

/// The injection schedule: block `seq` (1-based) of every channel is due at
/// `start_unix_ns + (seq - 1) × interval_ns + offset(seq)`, where `offset` is a fixed
/// pseudo-random value in `[0, jitter_ns)` (so the schedule does not phase-lock with the node's
/// periodic emitter flush; it is still known exactly, so latency is measured from it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Schedule {
    /// Due time of block 1, Unix ns.
    pub start_unix_ns: u64,
    /// Interval between blocks, ns.
    pub interval_ns: u64,
    /// Spread of due times within their interval, ns (`< interval_ns`; 0 for a strict grid).
    pub jitter_ns: u64,
    /// Blocks per channel.
    pub blocks: u64,
    /// Blocks `1..=warmup_blocks` are warm-up.
    pub warmup_blocks: u64,
}

impl Schedule {
    /// Due time of `seq`, Unix ns.
    pub fn due_ns(&self, seq: u64) -> u64 {
        let offset = if self.jitter_ns == 0 {
            0
        } else {
            // splitmix64 of seq: fixed per block, uniform enough.
            let mut z = seq.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            (z ^ (z >> 31)) % self.jitter_ns.min(self.interval_ns.max(1))
        };
        self.start_unix_ns + seq.saturating_sub(1) * self.interval_ns + offset
    }

    /// The newest block due at `unix_ns` (0 before block 1's due time, at most `blocks`): every
    /// block up to it had been injected by then (injection is open loop, on schedule).
    pub fn due_by(&self, unix_ns: u64) -> u64 {
        let (mut lo, mut hi) = (0, self.blocks);
        // Invariant: due_ns(lo) <= unix_ns (or lo = 0) and every block above hi is due later.
        while lo < hi {
            let mid = lo + (hi - lo).div_ceil(2);
            if self.due_ns(mid) <= unix_ns {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        lo
    }

    /// Whether `seq` is in the warm-up window.
    pub fn is_warmup(&self, seq: u64) -> bool {
        seq <= self.warmup_blocks
    }

    /// Which third (0, 1, 2) of the measured blocks `seq` falls in; `None` for warm-up blocks.
    /// With `m` measured blocks, measured block `i` (0-based) is in third `⌊3i/m⌋`.
    pub fn third_of(&self, seq: u64) -> Option<usize> {
        let measured = self.blocks.saturating_sub(self.warmup_blocks);
        if self.is_warmup(seq) || seq > self.blocks || measured == 0 {
            return None;
        }
        Some(((seq - self.warmup_blocks - 1) * 3 / measured) as usize)
    }
}

#[derive(Clone, Debug, Default)]
struct BlockTrack {
    /// Receivers that hold the block now: a bit per node.
    reached: u64,
    /// Receivers whose receipt is in the latency histograms: a bit per node. A receipt that a
    /// node's crash erased (received, not yet committed) and a later one that brought the block
    /// back count once there, as the first.
    measured: u64,
    count: usize,
    max_latency_ns: u64,
    /// Per group ([`Collector::with_groups`]): receipts and the latest latency, ns.
    per_group: Vec<(usize, u64)>,
}

/// Per-second bucket of deliveries (by receive time, seconds since block 1 was due).
#[derive(Clone, Debug)]
pub struct SecondBucket {
    /// Deliveries measured in this second (warm-up included, non-injector peers only).
    pub deliveries: u64,
    /// Their latencies, µs.
    pub latency: Histogram<u64>,
}

/// Accumulates deliveries.
pub struct Collector {
    /// The schedule latencies are measured from.
    pub schedule: Schedule,
    nodes: usize,
    channels: Vec<String>,
    injectors: Vec<usize>,
    /// Group of every node (kinds of peer in a mixed cluster); all 0 unless set.
    groups: Vec<usize>,
    /// How many groups there are (the highest group number + 1).
    groups_len: usize,
    /// Delivery latency of measured (post-warm-up) blocks at non-injector peers, µs.
    pub latency: Histogram<u64>,
    /// The same for warm-up blocks (reported separately, tagged `warmup_`).
    pub warmup_latency: Histogram<u64>,
    /// `latency` split by the third of the measured blocks each block falls in
    /// ([`Schedule::third_of`]): whether latency grows over a run.
    pub thirds: [Histogram<u64>; 3],
    /// `latency` split by the path each receipt came by, in [`PATHS`] order: pushed blocks apart
    /// from those repaired by pull or state transfer.
    pub by_path: [Histogram<u64>; 4],
    /// Measured latency per node (empty for injectors), µs.
    pub per_node: Vec<Histogram<u64>>,
    /// Receipts (`block_received`) by non-injector nodes, per (channel, block).
    blocks: HashMap<(usize, u64), BlockTrack>,
    /// In-order deliveries (`block`) by every node, per (channel, block): a bit per node.
    in_order: HashMap<(usize, u64), u64>,
    last_seq: HashMap<(usize, usize), u64>,
    /// In-order deliveries that were not `previous + 1` on their node and channel.
    pub order_violations: u64,
    /// In-order deliveries of a block the node had already delivered (after a restart, say).
    pub redeliveries: u64,
    /// Deliveries for unknown channels or sequence numbers.
    pub unexpected: u64,
    /// Per-second buckets.
    pub seconds: BTreeMap<u64, SecondBucket>,
    /// First receipts of measured (post-warm-up) blocks, per node (0 for injectors).
    pub delivered: Vec<u64>,
    /// In-order deliveries of measured blocks, per node (injectors included).
    pub delivered_in_order: Vec<u64>,
    /// First receipts of measured blocks per node, by path in [`PATHS`] order.
    pub per_node_via: Vec<[u64; 4]>,
    /// Every kill, in order, with what the restart found and how the node caught up.
    kills: Vec<KillRecord>,
}

impl Collector {
    /// A collector for `nodes` nodes (index < 64), `channels`, and the injecting nodes.
    pub fn new(
        schedule: Schedule,
        nodes: usize,
        channels: Vec<String>,
        injectors: Vec<usize>,
    ) -> Self {
        Collector {
            schedule,
            nodes,
            channels,
            injectors,
            groups: vec![0; nodes],
            groups_len: 1,
            latency: new_histogram(),
            warmup_latency: new_histogram(),
            thirds: [new_histogram(), new_histogram(), new_histogram()],
            by_path: std::array::from_fn(|_| new_histogram()),
            per_node: (0..nodes).map(|_| new_histogram()).collect(),
            blocks: HashMap::new(),
            in_order: HashMap::new(),
            last_seq: HashMap::new(),
            order_violations: 0,
            redeliveries: 0,
            unexpected: 0,
            seconds: BTreeMap::new(),
            delivered: vec![0; nodes],
            delivered_in_order: vec![0; nodes],
            per_node_via: vec![[0; 4]; nodes],
            kills: Vec::new(),
        }
    }

    /// Puts node `k` in group `groups[k]` (missing entries: group 0), so that completeness and
    /// time-to-all can be told per group ([`Collector::group_completeness`],
    /// [`Collector::group_time_to_all`]). Call before recording.
    pub fn with_groups(mut self, groups: Vec<usize>) -> Self {
        self.groups = (0..self.nodes)
            .map(|k| groups.get(k).copied().unwrap_or(0))
            .collect();
        self.groups_len = self.groups.iter().max().map_or(1, |g| g + 1);
        self
    }

    /// Nodes that must receive each block by gossip: every node but the injectors.
    fn receivers(&self) -> usize {
        (0..self.nodes)
            .filter(|n| !self.injectors.contains(n))
            .count()
    }

    /// Receivers (non-injector nodes) in group `g`.
    pub fn group_receivers(&self, g: usize) -> usize {
        (0..self.nodes)
            .filter(|n| !self.injectors.contains(n) && self.groups[*n] == g)
            .count()
    }

    /// Measured blocks that reached every receiver of group `g`, and each one's latest latency
    /// there, ns. Empty when the group has no receivers.
    fn group_complete(&self, g: usize) -> Vec<u64> {
        let receivers = self.group_receivers(g);
        if receivers == 0 {
            return Vec::new();
        }
        self.blocks
            .iter()
            .filter(|((_, seq), _)| !self.schedule.is_warmup(*seq))
            .filter_map(|(_, t)| {
                let (count, max_ns) = t.per_group.get(g).copied().unwrap_or_default();
                (count == receivers).then_some(max_ns)
            })
            .collect()
    }

    /// Share of measured blocks that reached every receiver of group `g`, `0..=1`; `None` when
    /// the group has no receivers (only injectors).
    pub fn group_completeness(&self, g: usize) -> Option<f64> {
        (self.group_receivers(g) > 0)
            .then(|| self.group_complete(g).len() as f64 / self.measured_blocks().max(1) as f64)
    }

    /// Time from due time to the last receiver of group `g`, µs, for every measured block that
    /// reached all of them.
    pub fn group_time_to_all(&self, g: usize) -> Histogram<u64> {
        let mut h = new_histogram();
        for ns in self.group_complete(g) {
            h.saturating_record((ns / 1000).max(1));
        }
        h
    }

    /// Records one delivery: a receipt feeds latency, time-to-all and completeness; an in-order
    /// delivery feeds the order checks and the in-order counts.
    pub fn record(&mut self, d: &Delivery) {
        let Some(ch) = self.channels.iter().position(|c| *c == d.channel) else {
            self.unexpected += 1;
            return;
        };
        if d.seq == 0 || d.seq > self.schedule.blocks || d.node >= self.nodes.min(64) {
            self.unexpected += 1;
            return;
        }
        match d.kind {
            DeliveryKind::InOrder => self.record_in_order(d, ch),
            DeliveryKind::Received => self.record_received(d, ch),
        }
    }

    fn record_in_order(&mut self, d: &Delivery, ch: usize) {
        let last = self.last_seq.entry((d.node, ch)).or_insert(0);
        if d.seq != *last + 1 {
            self.order_violations += 1;
        }
        *last = (*last).max(d.seq);
        let height = *last;
        if !self.set_in_order(d.node, ch, d.seq) {
            self.redeliveries += 1;
            return;
        }
        self.note_in_order(d.node, ch, height, d.received_unix_ns);
    }

    /// Marks `seq` delivered in order at `node`; false when it was already.
    fn set_in_order(&mut self, node: usize, ch: usize, seq: u64) -> bool {
        let reached = self.in_order.entry((ch, seq)).or_default();
        let bit = 1u64 << node;
        if *reached & bit != 0 {
            return false;
        }
        *reached |= bit;
        if !self.schedule.is_warmup(seq) {
            self.delivered_in_order[node] += 1;
        }
        true
    }

    /// Undoes [`Collector::set_in_order`]; false when `seq` was not delivered at `node`.
    fn clear_in_order(&mut self, node: usize, ch: usize, seq: u64) -> bool {
        let Some(reached) = self.in_order.get_mut(&(ch, seq)) else {
            return false;
        };
        let bit = 1u64 << node;
        if *reached & bit == 0 {
            return false;
        }
        *reached &= !bit;
        if !self.schedule.is_warmup(seq) {
            self.delivered_in_order[node] -= 1;
        }
        true
    }

    /// Marks `seq` as held by receiver `node`, reached `latency_ns` after its due time; false
    /// when it held it already.
    fn set_receipt(&mut self, node: usize, ch: usize, seq: u64, latency_ns: u64) -> bool {
        let groups = self.groups_len;
        let group = self.groups[node];
        let track = self.blocks.entry((ch, seq)).or_default();
        let bit = 1u64 << node;
        if track.reached & bit != 0 {
            return false;
        }
        track.reached |= bit;
        track.count += 1;
        track.max_latency_ns = track.max_latency_ns.max(latency_ns);
        track.per_group.resize(groups, (0, 0));
        let (count, max_ns) = &mut track.per_group[group];
        *count += 1;
        *max_ns = (*max_ns).max(latency_ns);
        if !self.schedule.is_warmup(seq) {
            self.delivered[node] += 1;
        }
        true
    }

    /// Undoes [`Collector::set_receipt`] (the block's latest latency stays: a later receipt is
    /// later still); false when `node` did not hold `seq`.
    fn clear_receipt(&mut self, node: usize, ch: usize, seq: u64) -> bool {
        let group = self.groups[node];
        let Some(track) = self.blocks.get_mut(&(ch, seq)) else {
            return false;
        };
        let bit = 1u64 << node;
        if track.reached & bit == 0 {
            return false;
        }
        track.reached &= !bit;
        track.count -= 1;
        if let Some((count, _)) = track.per_group.get_mut(group) {
            *count -= 1;
        }
        if !self.schedule.is_warmup(seq) {
            self.delivered[node] -= 1;
        }
        true
    }

    /// Loadgen handed block `seq` of channel `ch` (index) to `node` itself, as the orderer hands
    /// blocks to an org's elected leader (leader following, [`crate::measure::leader`]), and the
    /// node took it at `unix_ns`: the node holds it from then on, like a receipt, but it is no
    /// dissemination, so no latency is recorded. A fixed injector is skipped.
    pub fn record_injected(&mut self, node: usize, ch: usize, seq: u64, unix_ns: u64) {
        if self.injectors.contains(&node)
            || ch >= self.channels.len()
            || seq == 0
            || seq > self.schedule.blocks
            || node >= self.nodes.min(64)
        {
            return;
        }
        let latency_ns = unix_ns.saturating_sub(self.schedule.due_ns(seq));
        if self.set_receipt(node, ch, seq, latency_ns) {
            self.blocks.entry((ch, seq)).or_default().measured |= 1u64 << node;
        }
    }

    fn record_received(&mut self, d: &Delivery, ch: usize) {
        if self.injectors.contains(&d.node) {
            return; // injectors have every block already: nothing to disseminate to them
        }
        self.note_received(d.node, ch, d.via, d.received_unix_ns);
        let latency_ns = d
            .received_unix_ns
            .saturating_sub(self.schedule.due_ns(d.seq));
        // The node reports first receipts only; one it repeats without a restart is ignored.
        if !self.set_receipt(d.node, ch, d.seq, latency_ns) {
            return;
        }
        let bit = 1u64 << d.node;
        let track = self.blocks.entry((ch, d.seq)).or_default();
        if track.measured & bit != 0 {
            return; // brought back after a crash lost it: its first receipt is measured
        }
        track.measured |= bit;
        let us = (latency_ns / 1000).max(1);
        if self.schedule.is_warmup(d.seq) {
            self.warmup_latency.saturating_record(us);
        } else {
            self.latency.saturating_record(us);
            self.per_node[d.node].saturating_record(us);
            if let Some(t) = self.schedule.third_of(d.seq) {
                self.thirds[t].saturating_record(us);
            }
            self.by_path[path_index(d.via)].saturating_record(us);
            self.per_node_via[d.node][path_index(d.via)] += 1;
        }
        let sec = d
            .received_unix_ns
            .saturating_sub(self.schedule.start_unix_ns)
            / 1_000_000_000;
        let b = self.seconds.entry(sec).or_insert_with(|| SecondBucket {
            deliveries: 0,
            latency: new_histogram(),
        });
        b.deliveries += 1;
        b.latency.saturating_record(us);
    }

    /// Measured (post-warm-up) blocks, all channels.
    pub fn measured_blocks(&self) -> u64 {
        (self.schedule.blocks - self.schedule.warmup_blocks) * self.channels.len() as u64
    }

    /// Measured blocks that reached every node (by gossip, or as their injector).
    pub fn complete_blocks(&self) -> u64 {
        let receivers = self.receivers();
        self.blocks
            .iter()
            .filter(|((_, seq), t)| !self.schedule.is_warmup(*seq) && t.count == receivers)
            .count() as u64
    }

    /// In-order deliveries of measured blocks, every node (injectors included).
    pub fn measured_in_order_deliveries(&self) -> u64 {
        self.delivered_in_order.iter().sum()
    }

    /// Share of (measured block, node) pairs delivered in order, `0..=1`: below completeness's
    /// level a gap holds back every later block at that node (no pull or state transfer yet).
    pub fn in_order_share(&self) -> f64 {
        self.measured_in_order_deliveries() as f64
            / (self.measured_blocks() * self.nodes as u64).max(1) as f64
    }

    /// Receipts of measured blocks by non-injector nodes (first per node).
    pub fn measured_deliveries(&self) -> u64 {
        self.blocks
            .iter()
            .filter(|((_, seq), _)| !self.schedule.is_warmup(*seq))
            .map(|(_, t)| t.count as u64)
            .sum()
    }

    /// Share of measured blocks that reached every node, `0..=1`.
    pub fn completeness(&self) -> f64 {
        self.complete_blocks() as f64 / self.measured_blocks().max(1) as f64
    }

    /// Time from due time to the last node, µs, for every complete measured block.
    pub fn time_to_all(&self) -> Histogram<u64> {
        let mut h = new_histogram();
        let receivers = self.receivers();
        for ((_, seq), t) in &self.blocks {
            if !self.schedule.is_warmup(*seq) && t.count == receivers {
                h.saturating_record((t.max_latency_ns / 1000).max(1));
            }
        }
        h
    }

    /// Whether every block of every channel reached every node.
    pub fn all_delivered(&self) -> bool {
        let receivers = self.receivers();
        self.blocks
            .values()
            .filter(|t| t.count == receivers)
            .count() as u64
            == self.schedule.blocks * self.channels.len() as u64
    }

    /// Whether every node delivered every block of every channel in order.
    pub fn all_delivered_in_order(&self) -> bool {
        let all = if self.nodes >= 64 {
            u64::MAX
        } else {
            (1u64 << self.nodes) - 1
        };
        self.in_order.values().filter(|r| **r & all == all).count() as u64
            == self.schedule.blocks * self.channels.len() as u64
    }
}

/// Percentile distribution in HdrHistogram's text format (`.hgrm`, as `HistogramLogProcessor`
/// and `outputPercentileDistribution` write it), values divided by `scale` (1000: µs → ms).
pub fn hgrm(h: &Histogram<u64>, scale: f64) -> String {
    use std::fmt::Write;
    let mut out = String::from("       Value     Percentile TotalCount 1/(1-Percentile)\n\n");
    if h.is_empty() {
        return out;
    }
    let mut cum = 0u64;
    for v in h.iter_quantiles(5) {
        let q = v.quantile_iterated_to();
        let value = h.highest_equivalent(v.value_iterated_to()) as f64 / scale;
        cum += v.count_since_last_iteration();
        if q < 1.0 {
            let _ = writeln!(
                out,
                "{value:12.3} {q:2.12} {cum:10} {:14.2}",
                1.0 / (1.0 - q)
            );
        } else {
            let _ = writeln!(out, "{value:12.3} {q:2.12} {cum:10}");
        }
    }
    let _ = writeln!(
        out,
        "#[Mean    = {:12.3}, StdDeviation   = {:12.3}]",
        h.mean() / scale,
        h.stdev() / scale
    );
    let _ = writeln!(
        out,
        "#[Max     = {:12.3}, Total count    = {:12}]",
        h.max() as f64 / scale,
        h.len()
    );
    let _ = writeln!(
        out,
        "#[Buckets = {:12}, SubBuckets     = {:12}]",
        h.buckets(),
        h.distinct_values()
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A first receipt (`block_received`).
    fn d(node: usize, seq: u64, at: u64) -> Delivery {
        Delivery {
            kind: DeliveryKind::Received,
            node,
            channel: "c".into(),
            seq,
            received_unix_ns: at,
            via: None,
        }
    }

    /// An in-order delivery (`block`).
    fn in_order(node: usize, seq: u64, at: u64) -> Delivery {
        Delivery {
            kind: DeliveryKind::InOrder,
            ..d(node, seq, at)
        }
    }

    #[test]
    fn jittered_due_times_stay_in_their_interval_and_increase() {
        let s = Schedule {
            start_unix_ns: 1_000,
            interval_ns: 100,
            jitter_ns: 10,
            blocks: 1000,
            warmup_blocks: 0,
        };
        let mut offsets = std::collections::BTreeSet::new();
        for seq in 1..=1000u64 {
            let grid = 1_000 + (seq - 1) * 100;
            assert!((grid..grid + 10).contains(&s.due_ns(seq)));
            assert!(seq == 1 || s.due_ns(seq) > s.due_ns(seq - 1));
            offsets.insert(s.due_ns(seq) - grid);
        }
        assert!(offsets.len() > 5, "offsets vary: {offsets:?}");
    }

    #[test]
    fn thirds_split_the_measured_blocks() {
        let s = Schedule {
            start_unix_ns: 0,
            interval_ns: 1_000_000,
            jitter_ns: 0,
            blocks: 11,
            warmup_blocks: 2,
        };
        let thirds: Vec<Option<usize>> = (0..=12).map(|q| s.third_of(q)).collect();
        let (n, a, b, c) = (None, Some(0), Some(1), Some(2));
        assert_eq!(thirds, vec![n, n, n, a, a, a, b, b, b, c, c, c, n]);
        let mut col = Collector::new(s, 2, vec!["c".into()], vec![0]);
        for seq in 1..=11u64 {
            // Latency grows with the block: 1 ms for block 1 .. 11 ms for block 11.
            col.record(&d(1, seq, s.due_ns(seq) + seq * 1_000_000));
        }
        let ms = |h: &Histogram<u64>| (h.len(), h.max() / 1000);
        assert_eq!(ms(&col.thirds[0]), (3, 5), "blocks 3..=5");
        assert_eq!(ms(&col.thirds[1]), (3, 8));
        assert_eq!(ms(&col.thirds[2]), (3, 11));
        assert_eq!(col.latency.len(), 9, "warm-up excluded");
        let none = Schedule { blocks: 2, ..s };
        assert_eq!(none.third_of(1), None, "no measured blocks");
    }

    #[test]
    fn latency_is_measured_from_the_scheduled_time() {
        let s = Schedule {
            start_unix_ns: 1_000_000_000,
            interval_ns: 100_000_000,
            jitter_ns: 0,
            blocks: 3,
            warmup_blocks: 1,
        };
        let mut c = Collector::new(s, 3, vec!["c".into()], vec![0]);
        // Block 3 is due at 1.2 s. Node 1 gets it at 1.5 s: 300 ms, however late the injector
        // actually sent it (that lateness is exactly what coordinated omission would hide).
        c.record(&d(1, 1, 1_010_000_000));
        c.record(&d(1, 2, 1_150_000_000));
        c.record(&d(1, 3, 1_500_000_000));
        c.record(&d(0, 3, 1_200_000_000)); // injector: not a receiver, not in the histogram
        assert_eq!(c.warmup_latency.len(), 1, "block 1 is warm-up");
        assert_eq!(c.latency.len(), 2);
        let max_ms = c.latency.max() as f64 / 1000.0;
        assert!((299.0..=301.0).contains(&max_ms), "{max_ms}");
        assert_eq!(c.complete_blocks(), 0, "node 2 missing everywhere");
        c.record(&d(2, 2, 1_300_000_000));
        assert_eq!(c.complete_blocks(), 1, "receivers 1 and 2 have block 2");
        assert!((c.completeness() - 0.5).abs() < 1e-9);
        let tta = c.time_to_all();
        assert_eq!(tta.len(), 1);
        assert!(
            (199_000..=201_000).contains(&tta.max()),
            "block 2: 1.3 s − 1.1 s"
        );
        // In-order deliveries: node 0 delivered 3 (not 1) then 2; node 2 started at 2.
        c.record(&in_order(0, 3, 1_200_000_000));
        c.record(&in_order(0, 2, 1_210_000_000));
        c.record(&in_order(2, 2, 1_300_000_000));
        assert_eq!(
            c.order_violations, 3,
            "receipts never count as order violations"
        );
        c.record(&in_order(1, 3, 1_600_000_000));
        c.record(&in_order(1, 3, 1_600_000_000));
        assert_eq!(c.redeliveries, 1);
        assert_eq!(
            c.measured_in_order_deliveries(),
            4,
            "0: 3 and 2; 1: 3; 2: 2"
        );
        let text = hgrm(&c.latency, 1000.0);
        assert!(
            text.contains("Percentile") && text.contains("#[Max"),
            "{text}"
        );
    }

    #[test]
    fn receipts_are_split_by_the_path_they_came_by() {
        let s = Schedule {
            start_unix_ns: 0,
            interval_ns: 1_000_000_000,
            jitter_ns: 0,
            blocks: 4,
            warmup_blocks: 1,
        };
        let mut c = Collector::new(s, 4, vec!["c".into()], vec![0]);
        let via = |node, seq, ms: u64, via| Delivery {
            via,
            ..d(node, seq, s.due_ns(seq) + ms * 1_000_000)
        };
        c.record(&via(1, 1, 900, Some(Arrival::Pull))); // warm-up: in no path
        for seq in 2..=4 {
            c.record(&via(1, seq, 5, Some(Arrival::Push)));
        }
        c.record(&via(2, 2, 10, Some(Arrival::Push)));
        c.record(&via(2, 3, 2_000, Some(Arrival::Pull)));
        c.record(&via(2, 4, 3_000, Some(Arrival::Pull)));
        c.record(&via(3, 2, 8_000, Some(Arrival::StateTransfer)));
        c.record(&via(3, 3, 20, None));
        c.record(&via(0, 4, 1, Some(Arrival::Pull))); // injector: not a receiver
        c.record(&Delivery {
            kind: DeliveryKind::InOrder,
            ..via(3, 4, 1, Some(Arrival::Pull))
        }); // in-order deliveries are not receipts
        let counts: Vec<u64> = c.by_path.iter().map(Histogram::len).collect();
        assert_eq!(counts, [4, 2, 1, 1], "push, pull, state, unknown");
        assert_eq!(
            counts.iter().sum::<u64>(),
            c.latency.len(),
            "the paths split the measured receipts"
        );
        // Within the histogram's 3 significant digits.
        let near = |h: &Histogram<u64>, q, want_ms: f64| {
            let got = quantile_ms(h, q);
            assert!(
                (got - want_ms).abs() <= want_ms * 1e-3,
                "{got} ms, want {want_ms}"
            );
        };
        let [push, pull, state, unknown] = &c.by_path;
        near(push, 0.5, 5.0);
        near(push, 0.99, 10.0);
        near(pull, 0.5, 2_000.0);
        near(pull, 0.99, 3_000.0);
        near(state, 0.5, 8_000.0);
        near(unknown, 0.5, 20.0);
        let names: Vec<&str> = PATHS.into_iter().map(path_name).collect();
        assert_eq!(names, ["push", "pull", "state", "unknown"]);
    }
}
