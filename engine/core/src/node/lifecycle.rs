//! The identity lifecycle as the node sees it (spec 3.11): peers that leave membership (purged
//! after the alive TTL, cut off because their identity expired or was revoked, superseded by a
//! renewed certificate) also leave every channel at once, and a cut-off identity leaves the
//! identity pull. Discovery decides who goes ([`crate::components::discovery::Purged`]).
//! Peers that become alive let a channel that has not asked anyone for StateInfo yet ask them.

use super::Node;
use crate::components::channel;
use crate::ingress::IdentityChange;
use crate::time::Instant;

impl Node {
    /// Drops the channel state (and, for a cut-off identity, the pulled identity) of every member
    /// discovery purged since the last call. Runs after every input.
    pub(super) fn forget_purged(&mut self) {
        for purged in self.discovery.take_purged() {
            for ch in self.channels.values_mut() {
                ch.forget_peer(&purged.pki_id);
            }
            if purged.identity_cut_off {
                self.certstore
                    .handle_identity(&IdentityChange::Removed(purged.pki_id));
            }
        }
    }

    /// When members became alive since the last call, every channel that has not asked a peer
    /// for StateInfo since its join asks them now, rather than at its first
    /// `requestStateInfoInterval` tick (2 to 4 s after the join): a peer restarted after the
    /// stream stopped learns only so the heights it lags behind. Runs after every input.
    pub(super) fn pull_state_infos_early(&mut self, now: Instant) {
        let became_alive = self.discovery.stats().became_alive;
        if became_alive == self.became_alive_seen {
            return;
        }
        self.became_alive_seen = became_alive;
        self.ask_state_infos(now);
    }

    /// Every channel that has not asked a peer for StateInfo since its join asks the alive ones
    /// now (on members that became alive, and on a join).
    pub(super) fn ask_state_infos(&mut self, now: Instant) {
        let ctx = channel::Ctx::new(&self.discovery, &self.signer, &self.config, now);
        for ch in self.channels.values_mut() {
            ch.pull_state_infos_early(&ctx, &mut self.rng, &mut self.out);
        }
    }
}
