//! The identity lifecycle as the node sees it (spec 3.11): peers that leave membership (purged
//! after the alive TTL, cut off because their identity expired or was revoked, superseded by a
//! renewed certificate) also leave every channel at once, and a cut-off identity leaves the
//! identity pull. Discovery decides who goes ([`crate::components::discovery::Purged`]).

use super::Node;
use crate::ingress::IdentityChange;

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
}
