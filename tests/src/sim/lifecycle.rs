//! Identity lifecycle events of a simulation: a node restarted with another certificate at the
//! same endpoints (a renewal: a new PKI-ID), and an MSP update (a CRL) reaching every node.

use std::sync::Arc;

use gossip_engine::crypto::{LocalSigner, MspManager};

use super::Sim;
use crate::node::SimNode;

impl<N: SimNode> Sim<N> {
    /// Restarts node `i` now with `signer` (same endpoints, same ledger): what a peer restarted
    /// with a renewed certificate looks like to the others. Messages still addressed to its old
    /// PKI-ID reach whoever answers at its endpoint, as a dial by endpoint would.
    pub fn renew_now(&mut self, i: usize, signer: Arc<LocalSigner>) {
        self.crash(i);
        let old = self.slots[i].signer.pki_id();
        self.by_pki.remove(&old);
        self.by_pki.insert(signer.pki_id(), i);
        self.slots[i].signer = signer;
        self.trace(("renew", i));
        self.boot(i);
    }

    /// Every node validates identities with `msp` from now on (as gossip-node on SIGHUP after a
    /// CRL landed in its MSP folders): identities that no longer validate are removed from each
    /// node's store, and the node told at once. Nodes booted later start with it.
    pub fn replace_msp_now(&mut self, msp: Arc<MspManager>) {
        self.msp = Arc::clone(&msp);
        let now = self.now;
        for i in 0..self.slots.len() {
            let slot = &mut self.slots[i];
            let identities = Arc::clone(slot.ingress.identities());
            identities.replace_msp(Arc::clone(&msp), now);
            if let Some(node) = slot.node.as_mut() {
                identities.take_changes(|change| node.handle_identity(change, now));
            }
            self.drain(i);
        }
        self.trace("replace_msp");
    }
}
