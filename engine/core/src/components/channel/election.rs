//! The channel's side of its leader election ([`Election`]): the view it sees (alive peers of
//! this org with a StateInfo of the channel that did not leave, Fabric's adapter `Peers`), and
//! signing and gossiping what it sends (the routing's leadership part sends each one to every
//! peer of that view; receivers never forward them).

use prost::Message;

use super::{Channel, Ctx, StoredStateInfo};
use crate::components::election::{Election, View};
use crate::components::msgstore::{MsgStore, PeerTimePolicy};
use crate::crypto::envelope::sign_envelope;
use crate::outbox::{DropReason, Outbox};
use crate::types::{NetworkMember, OrgId, PkiId};

/// Fabric's adapter `Peers`: PeersOfChannel ∩ my org.
struct ChannelView<'a> {
    alive: &'a [NetworkMember],
    my_org: &'a OrgId,
    state_infos: &'a MsgStore<PeerTimePolicy<StoredStateInfo>>,
    left: bool,
}

impl ChannelView<'_> {
    fn admits(&self, m: &NetworkMember) -> bool {
        !self.left
            && m.org.as_ref() == Some(self.my_org)
            && self
                .state_infos
                .get(&m.pki_id)
                .is_some_and(|si| !si.properties.left_channel)
    }
}

impl View for ChannelView<'_> {
    fn len(&self) -> usize {
        self.alive.iter().filter(|m| self.admits(m)).count()
    }
    fn contains(&self, pki_id: &PkiId) -> bool {
        self.alive
            .iter()
            .any(|m| m.pki_id == *pki_id && self.admits(m))
    }
}

impl Channel {
    /// Whether this peer leads the channel (the election's decision; static: `orgLeader`).
    pub fn is_leader(&self) -> bool {
        self.election.is_leader()
    }

    /// The channel's election.
    pub fn election(&self) -> &Election {
        &self.election
    }

    /// Fabric's `Yield` of this channel's election.
    pub fn yield_leadership(&mut self, ctx: &Ctx<'_>, out: &mut Outbox) {
        self.election.yield_leadership(ctx.now, out);
        self.send_election_messages(ctx, out);
    }

    /// Runs the election's loop when due.
    pub(super) fn election_tick(&mut self, ctx: &Ctx<'_>, out: &mut Outbox) {
        if ctx.now < self.election.poll_timeout() {
            return;
        }
        let view = ChannelView {
            alive: ctx.discovery.alive_members(),
            my_org: ctx.my_org(),
            state_infos: &self.state_infos,
            left: self.left,
        };
        self.election.handle_timeout(ctx.me(), &view, ctx.now, out);
        self.send_election_messages(ctx, out);
    }

    /// A new leadership message for the election.
    pub(super) fn election_message(
        &mut self,
        creator: PkiId,
        is_declaration: bool,
        ctx: &Ctx<'_>,
        out: &mut Outbox,
    ) {
        let view = ChannelView {
            alive: ctx.discovery.alive_members(),
            my_org: ctx.my_org(),
            state_infos: &self.state_infos,
            left: self.left,
        };
        self.election
            .handle_message(ctx.me(), creator, is_declaration, &view, ctx.now, out);
        self.send_election_messages(ctx, out);
    }

    /// Stops the election (the channel was left): a leader steps down.
    pub fn stop_election(&mut self, out: &mut Outbox) {
        self.election.stop(out);
    }

    /// Signs the election's messages and gossips them (tag CHAN_AND_ORG, never stored here).
    fn send_election_messages(&mut self, ctx: &Ctx<'_>, out: &mut Outbox) {
        for message in self.election.take_messages() {
            match sign_envelope(message.encode_to_vec().into(), ctx.signer.key()) {
                Ok(envelope) => out.emit(envelope, message, None),
                Err(_) => out.count_drop(DropReason::SignFailed),
            }
        }
    }
}
