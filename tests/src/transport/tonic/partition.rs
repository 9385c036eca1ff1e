//! Partitions on a tonic cluster ([`Op::Partition`](crate::scenario::Op::Partition) and
//! [`Op::Heal`](crate::scenario::Op::Heal)): every node's transmit filter asks [`Links`] before a
//! message leaves, and drops what would cross a cut. Both directions of a cut link are filtered at
//! their senders, so the sides stop hearing each other, as on the simulator.
//!
//! One difference from the simulator remains: connections stay open and a dead member's probe
//! (a `Ping` RPC, not a transmit) still succeeds across the cut. That only makes the node send a
//! membership request, which the filter drops; a member comes back alive only on a message, so
//! the views on each side shrink and recover as they do on the simulator.

use std::collections::BTreeMap;
use std::sync::RwLock;

use gossip_engine::event::RemotePeer;
use gossip_engine::types::PkiId;

use crate::faults::Network;

/// Which nodes can reach which: node indexes by PKI-ID and endpoint, and the current partition.
pub(super) struct Links {
    by_pki: BTreeMap<PkiId, usize>,
    by_endpoint: BTreeMap<String, usize>,
    network: RwLock<Network>,
}

impl Links {
    /// No partition; `by_endpoint` names every endpoint a node is known by.
    pub(super) fn new(
        by_pki: BTreeMap<PkiId, usize>,
        by_endpoint: BTreeMap<String, usize>,
    ) -> Self {
        Self {
            by_pki,
            by_endpoint,
            network: RwLock::new(Network::default()),
        }
    }

    /// The node of a PKI-ID.
    pub(super) fn by_pki(&self, pki_id: &PkiId) -> Option<usize> {
        self.by_pki.get(pki_id).copied()
    }

    /// The node a transmit is addressed to: by PKI-ID when the target has one, else by endpoint.
    pub(super) fn target(&self, to: &RemotePeer) -> Option<usize> {
        match to.pki_id {
            Some(pki_id) => self.by_pki(&pki_id),
            None => self.by_endpoint.get(&to.endpoint).copied(),
        }
    }

    /// Cuts the network into `groups` (nodes in no group form one more group), replacing any
    /// previous partition.
    pub(super) fn partition(&self, groups: &[Vec<usize>]) {
        self.network
            .write()
            .expect("links lock poisoned")
            .partition(groups);
    }

    /// Removes every partition.
    pub(super) fn heal(&self) {
        self.network.write().expect("links lock poisoned").heal();
    }

    /// Whether nodes `a` and `b` are on the same side of the current partition.
    pub(super) fn same_side(&self, a: usize, b: usize) -> bool {
        let network = self.network.read().expect("links lock poisoned");
        network.connected(a, b)
    }

    /// Whether node `from` may send to `to` now (a target outside the cluster always passes).
    pub(super) fn passes(&self, from: usize, to: &RemotePeer) -> bool {
        self.target(to).is_none_or(|to| self.same_side(from, to))
    }
}
