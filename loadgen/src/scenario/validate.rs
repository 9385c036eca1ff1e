//! [`Scenario::validate`]: every key's range, with errors that name the key and the limit.

use super::limits::{
    self, BLOCK_SIZE_BYTES_MAX, BLOCKS_MAX, DELAY_MS_MAX, DURATION_MAX, FLOOD_RATE_PER_S_MAX,
    MEMBERSHIP_POLL_MS_MIN, Machine, NODE_THREADS_MAX, NODES_MAX,
};
use super::{Scenario, ScenarioError};

impl Scenario {
    /// Checks ranges and indices (not the machine: [`Scenario::check_machine`]).
    pub fn validate(&self) -> Result<(), ScenarioError> {
        let bad = |m: String| Err(ScenarioError::Invalid(m));
        if self.nodes == 0 {
            return Err(key_error("nodes", 0, "must be at least 1"));
        }
        if self.nodes > NODES_MAX {
            let (allowed, why) = limits::nodes_allowed(&Machine::read(), self.faults.uses_proxy());
            let machine = if allowed < NODES_MAX {
                format!(" (this machine: {why})")
            } else {
                String::new()
            };
            return Err(key_error(
                "nodes",
                self.nodes,
                format!("exceeds the limit of {NODES_MAX}{machine}"),
            ));
        }
        if self.orgs == 0 || self.orgs > self.nodes {
            return Err(key_error(
                "orgs",
                self.orgs,
                format!("must be in 1..=nodes (nodes = {})", self.nodes),
            ));
        }
        if self.channels.is_empty() {
            return bad("at least one channel".into());
        }
        if let Some(c) = self.channels.iter().find(|c| c.trim().is_empty()) {
            return Err(key_error(
                "channels",
                format!("{c:?}"),
                "names an empty channel",
            ));
        }
        if !(self.rate_per_s > 0.0 && self.rate_per_s <= 100_000.0) {
            return Err(key_error(
                "rate_per_s",
                self.rate_per_s,
                "must be in (0, 100000]",
            ));
        }
        if self.block_size_bytes == 0 || self.block_size_bytes > BLOCK_SIZE_BYTES_MAX {
            return Err(key_error(
                "block_size_bytes",
                self.block_size_bytes,
                format!(
                    "must be in 1..={BLOCK_SIZE_BYTES_MAX} (the gRPC message limit of {} MiB less {} KiB of envelope)",
                    gossip_proto::MAX_MESSAGE_LEN_BYTES >> 20,
                    limits::BLOCK_ENVELOPE_BYTES >> 10
                ),
            ));
        }
        self.validate_durations()?;
        if self.blocks == Some(0) {
            return Err(key_error("blocks", 0, "must be at least 1"));
        }
        if self.block_count() == 0 {
            return bad("no blocks: set duration_s or blocks".into());
        }
        if self.block_count() > BLOCKS_MAX {
            let key = if self.blocks.is_some() {
                "blocks"
            } else {
                "duration_s"
            };
            return Err(key_error(
                key,
                self.blocks
                    .map_or(self.duration_s.to_string(), |b| b.to_string()),
                format!(
                    "schedules {} blocks per channel, more than the limit of {BLOCKS_MAX}",
                    self.block_count()
                ),
            ));
        }
        if !(0.0..=1.0).contains(&self.faults.drop_share) {
            return Err(key_error(
                "faults.drop_share",
                self.faults.drop_share,
                "must be in [0, 1]",
            ));
        }
        for (key, ms) in [
            ("arrival_jitter_ms", self.arrival_jitter_ms),
            ("faults.delay_ms", self.faults.delay_ms),
            ("faults.jitter_ms", self.faults.jitter_ms),
        ] {
            if !(0.0..=DELAY_MS_MAX).contains(&ms) {
                return Err(key_error(
                    key,
                    ms,
                    format!("must be in [0, {DELAY_MS_MAX}]"),
                ));
            }
        }
        for p in &self.faults.partitions {
            if p.a.is_empty() || p.a.iter().chain(&p.b).any(|&n| n >= self.nodes) {
                return bad(format!("partition sides must name nodes < {}", self.nodes));
            }
        }
        for k in &self.faults.kills {
            if k.node >= self.nodes {
                return bad(format!("kill of node {} >= nodes", k.node));
            }
            if k.renew_cert && k.restart_after_s.is_none() {
                return Err(key_error(
                    "faults.kills.renew_cert",
                    true,
                    format!(
                        "needs restart_after_s (the kill of node {} never restarts it)",
                        k.node
                    ),
                ));
            }
        }
        self.validate_floods()?;
        if self.membership_poll_ms != 0 && self.membership_poll_ms < MEMBERSHIP_POLL_MS_MIN {
            return Err(key_error(
                "membership_poll_ms",
                self.membership_poll_ms,
                format!("must be 0 (off) or at least {MEMBERSHIP_POLL_MS_MIN}"),
            ));
        }
        self.validate_node_lists()?;
        self.validate_leader()?;
        if self.start_stagger_ms as f64 > DURATION_MAX.as_secs_f64() * 1e3 {
            return Err(key_error(
                "start_stagger_ms",
                self.start_stagger_ms,
                format!("exceeds the limit of {} ms", DURATION_MAX.as_millis()),
            ));
        }
        if self.sample_ms == 0 {
            return Err(key_error("sample_ms", 0, "must be at least 1"));
        }
        for (key, n) in [
            ("node_worker_threads", self.node_worker_threads),
            (
                "node_verifier_threads",
                self.node_verifier_threads.unwrap_or(0),
            ),
        ] {
            if n > NODE_THREADS_MAX {
                return Err(key_error(
                    key,
                    n,
                    format!("exceeds the limit of {NODE_THREADS_MAX}"),
                ));
            }
        }
        Ok(())
    }

    /// Every key in seconds: finite, not negative, at most [`DURATION_MAX`]; `idle_s` and
    /// `converge_timeout_s` also above 0.
    fn validate_durations(&self) -> Result<(), ScenarioError> {
        let max_s = DURATION_MAX.as_secs_f64();
        let mut keys = vec![
            ("duration_s", self.duration_s, false),
            ("warmup_s", self.warmup_s, false),
            ("drain_s", self.drain_s, false),
            ("converge_timeout_s", self.converge_timeout_s, true),
            ("idle_s", self.idle_s, true),
        ];
        for p in &self.faults.partitions {
            keys.push(("faults.partitions.at_s", p.at_s, false));
            keys.push(("faults.partitions.duration_s", p.duration_s, false));
        }
        for k in &self.faults.kills {
            keys.push(("faults.kills.at_s", k.at_s, false));
            if let Some(r) = k.restart_after_s {
                keys.push(("faults.kills.restart_after_s", r, false));
            }
        }
        for f in &self.faults.floods {
            keys.push(("faults.floods.at_s", f.at_s, false));
            keys.push(("faults.floods.duration_s", f.duration_s, true));
        }
        for (key, s, positive) in keys {
            let low_ok = if positive { s > 0.0 } else { s >= 0.0 };
            if !(low_ok && s <= max_s) {
                let low = if positive { "(0" } else { "[0" };
                return Err(key_error(
                    key,
                    s,
                    format!("must be in {low}, {max_s}] seconds"),
                ));
            }
        }
        Ok(())
    }

    /// Checks `faults.floods`: victims among the nodes, rates and shares in range.
    fn validate_floods(&self) -> Result<(), ScenarioError> {
        for f in &self.faults.floods {
            if f.victim >= self.nodes {
                return Err(key_error(
                    "faults.floods.victim",
                    f.victim,
                    format!("must be a node, 0..={}", self.nodes - 1),
                ));
            }
            if !(f.rate_per_s > 0.0 && f.rate_per_s <= FLOOD_RATE_PER_S_MAX) {
                return Err(key_error(
                    "faults.floods.rate_per_s",
                    f.rate_per_s,
                    format!("must be in (0, {FLOOD_RATE_PER_S_MAX}]"),
                ));
            }
            if !(0.0..=1.0).contains(&f.invalid_share) {
                return Err(key_error(
                    "faults.floods.invalid_share",
                    f.invalid_share,
                    "must be in [0, 1]",
                ));
            }
        }
        Ok(())
    }

    /// Checks `injector_nodes` and `[fabric]`.
    fn validate_node_lists(&self) -> Result<(), ScenarioError> {
        let bad = |m: String| Err(ScenarioError::Invalid(m));
        let check = |what: &str, list: &[usize]| {
            if let Some(k) = list.iter().find(|&&k| k >= self.nodes) {
                return bad(format!(
                    "{what} names node {k}, but nodes are 0..={} (nodes = {})",
                    self.nodes - 1,
                    self.nodes
                ));
            }
            let mut sorted = list.to_vec();
            sorted.sort_unstable();
            if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
                return bad(format!("{what} names node {} twice", w[0]));
            }
            Ok(())
        };
        if let Some(list) = &self.injector_nodes {
            if list.is_empty() {
                return bad("injector_nodes is empty: name at least one node".into());
            }
            check("injector_nodes", list)?;
        }
        check("[fabric] nodes", &self.fabric.nodes)?;
        if let Some(share) = self.fabric.share {
            if !self.fabric.nodes.is_empty() {
                return bad("[fabric]: set either nodes or share, not both".into());
            }
            if !(share > 0.0 && share <= 1.0) {
                return bad(format!("[fabric] share {share} must be in (0, 1]"));
            }
        }
        if self.fabric.bin.is_some() && self.fabric_nodes().is_empty() {
            return bad("[fabric] bin is set but no node runs it: set nodes or share".into());
        }
        Ok(())
    }
}

/// A [`ScenarioError::Key`].
fn key_error(
    key: &str,
    value: impl std::fmt::Display,
    problem: impl Into<String>,
) -> ScenarioError {
    ScenarioError::Key {
        key: key.to_owned(),
        value: value.to_string(),
        problem: problem.into(),
    }
}
