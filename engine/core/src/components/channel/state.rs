//! The channel's state transfer on the wire (spec 3.9): `RemoteStateRequest` and
//! `RemoteStateResponse` in NoopSigned `GossipMessage{nonce, channel: name, tag: CHAN_OR_ORG}`.
//! The decisions are [`StateTransfer`]'s; this file picks peers, reads the ledger through the
//! driver ([`IoRequest::ReadBlocks`]) and takes the blocks of responses.
//!
//! - Requests go to a random peer of the channel (any of its orgs, as Fabric's
//!   `PeersOfChannel`) whose advertised ledger height covers the range.
//! - A request is served from the ledger; the response carries the blocks found, at most
//!   `state.response_len_max_bytes` of them, on the data lane.
//! - A response's blocks were authenticated by ingress (the orderer signatures, one failure
//!   rejects the response, as Fabric's `VerifyBlock` loop); here each must also pass the
//!   structural check, or the whole response is dropped. New blocks are raised as received
//!   ([`Arrival::StateTransfer`]) and delivered in order; they are not stored for pull and never
//!   forwarded.
//!
//! [`StateTransfer`]: crate::components::state::StateTransfer

use gossip_proto::gossip::gossip_message::{Content, Tag};
use gossip_proto::gossip::{GossipMessage, Payload, RemoteStateRequest, RemoteStateResponse};
use prost::Message;
use rand::Rng;
use rand::seq::IndexedRandom;

use super::blocks::verify_block;
use super::{Channel, Ctx};
use crate::components::state::{Answer, Request, StateReject};
use crate::event::{Arrival, Event, IoRequest};
use crate::outbox::{DropReason, Outbox};
use crate::types::PkiId;

fn drop_reason(reject: StateReject) -> DropReason {
    match reject {
        StateReject::BadRange => DropReason::Malformed,
        StateReject::Busy => DropReason::Full,
        StateReject::Unsolicited => DropReason::UnknownNonce,
    }
}

/// A random peer of `peers` (PKI-ID, advertised height) whose height is above `need`; with
/// `any` (a gap repair, whose peers' advertised heights may be stale), any of them when none is.
fn covering_peer<R: Rng + ?Sized>(
    peers: &[(PkiId, u64)],
    need: u64,
    any: bool,
    rng: &mut R,
) -> Option<PkiId> {
    let covering: Vec<PkiId> = peers
        .iter()
        .filter(|(_, h)| *h > need)
        .map(|(p, _)| *p)
        .collect();
    match covering.choose(rng) {
        Some(p) => Some(*p),
        None if any => peers.choose(rng).map(|(p, _)| *p),
        None => None,
    }
}

impl Channel {
    fn state_message(&self, nonce: u64, content: Content) -> GossipMessage {
        GossipMessage {
            nonce,
            channel: self.name.clone(),
            tag: Tag::ChanOrOrg as i32,
            content: Some(content),
        }
    }

    fn send_state(&self, to: PkiId, message: &GossipMessage, ctx: &Ctx<'_>, out: &mut Outbox) {
        out.send_unsigned(ctx.discovery.remote_for(&to), message);
    }

    /// Sends a state request, ending it before the next block held: a gap repair's range runs
    /// to the stream height it learnt, which may lie past blocks that came meanwhile.
    fn send_state_request(&self, request: Request, ctx: &Ctx<'_>, out: &mut Outbox) {
        let end_seq = self
            .held_after(request.start_seq)
            .map_or(request.end_seq, |held| request.end_seq.min(held - 1));
        let message = self.state_message(
            request.nonce,
            Content::StateRequest(RemoteStateRequest {
                start_seq_num: request.start_seq,
                end_seq_num: end_seq,
            }),
        );
        self.send_state(request.to, &message, ctx, out);
    }

    /// An authenticated block `seq` was refused beyond the admission window: with gap repair,
    /// fetch the gap before it by state request (`components::state`, "Gap repair").
    pub(super) fn beyond_window_seen(&mut self, seq: u64, ctx: &Ctx<'_>) {
        let height = self.first_missing();
        self.state.gap_seen(seq.saturating_add(1), height, ctx.now);
    }

    /// Gap repair of a gap no block store holds any more (`components::state`, "Gap repair"):
    /// the first missing block is more than `maxBlockCountToStore` below the newest block held,
    /// so every peer's store has let it go (each keeps that many below its own newest) and pull
    /// cannot bring it. The missing run up to the next block held is fetched by state request
    /// at once.
    pub(super) fn repair_unreachable_gap(&mut self, now: crate::time::Instant) {
        let Some(&newest) = self.blocks.newest_key() else {
            return;
        };
        let reach_floor = self.pull_reach_floor(newest);
        // The steady state, without a walk of the reorder buffer: the first missing block is
        // at or past the next one to deliver.
        if self.delivery.next_seq() >= reach_floor {
            return;
        }
        let missing = self.first_missing();
        if missing >= reach_floor {
            return;
        }
        let held_next = self.held_after(missing).unwrap_or(newest);
        self.state.gap_unreachable(held_next, missing, now);
    }

    /// The lowest block a peer whose newest block is `newest` still holds in its block store
    /// (each keeps `maxBlockCountToStore` below its newest): pull cannot bring blocks below it.
    fn pull_reach_floor(&self, newest: u64) -> u64 {
        newest.saturating_sub(self.blocks.policy().window())
    }

    /// The lowest block held above `seq`: in the block store or waiting for delivery.
    fn held_after(&self, seq: u64) -> Option<u64> {
        [
            self.blocks.key_after(&seq).copied(),
            self.delivery.buffered_after(seq),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn first_missing(&self) -> u64 {
        self.delivery.first_missing()
    }

    /// The channel peers (alive, not left) with the ledger heights they advertise: what
    /// [`Channel::peers`] holds, without copying each member and its properties.
    fn peer_heights<'a>(&'a self, ctx: &'a Ctx<'_>) -> impl Iterator<Item = (PkiId, u64)> + 'a {
        ctx.discovery
            .alive_members()
            .iter()
            .filter(|m| !self.left && self.is_member_in_chan(m))
            .filter_map(|m| {
                let si = self.state_infos.get(&m.pki_id)?;
                (!si.properties.left_channel).then_some((m.pki_id, si.properties.ledger_height))
            })
    }

    /// A peer's StateInfo advertised `height`: a gap it reveals may be repaired at once.
    pub(super) fn height_advertised(&mut self, height: u64, ctx: &Ctx<'_>) {
        let ours = self.first_missing();
        if height > ours {
            self.state.height_seen(height, ours, ctx.now);
            self.advertised_height_max = self.advertised_height_max.max(height);
            // Later, so a push or pull in flight can close the gap first (a due gap round is
            // cancelled when it did).
            self.puller.gap(ctx.now + ctx.config.state.height_gap_delay);
            self.repair_behind_majority(false, ctx);
        }
    }

    /// Gap repair of a gap the channel's peers show by their heights (`components::state`,
    /// "Gap repair"): a strict majority of the alive ones advertise more than our first missing
    /// block, which one peer (or any minority) cannot fake. The only sign of a gap for a peer
    /// restarted after the last block, with no push to follow. Checked on a StateInfo that
    /// advertises more than our height, and every `requestStateInfoInterval` (`periodic`).
    ///
    /// Pull repairs a gap within its reach (a gap round `heightGapDelay` later). State transfer
    /// fetches the missing run, up to the next block held or the majority's height, when it lies
    /// beyond every store's reach (more than `maxBlockCountToStore` below the majority's newest
    /// block), or when a periodic check finds the same first block still missing that the
    /// previous one handed to pull; it starts `heightGapDelay` later if still missing then.
    pub(super) fn repair_behind_majority(&mut self, periodic: bool, ctx: &Ctx<'_>) {
        if !ctx.config.state.gap_repair {
            return;
        }
        let missing = self.first_missing();
        let majority = crate::node::majority_height(self.peer_heights(ctx).map(|(_, h)| h));
        if majority <= missing {
            if periodic {
                self.behind_majority_at = None;
            }
            return;
        }
        let pull_failed = periodic && self.behind_majority_at.replace(missing) == Some(missing);
        let reach_floor = self.pull_reach_floor(majority - 1);
        if missing >= reach_floor && !pull_failed {
            self.puller.gap(ctx.now + ctx.config.state.height_gap_delay);
            return;
        }
        let end = self
            .held_after(missing)
            .map_or(majority, |held| held.min(majority));
        self.state.majority_ahead(end, missing, ctx.now);
    }

    /// State transfer's timed work: retries, and the anti-entropy check.
    pub(super) fn state_tick<R: Rng + ?Sized>(
        &mut self,
        ctx: &Ctx<'_>,
        rng: &mut R,
        out: &mut Outbox,
    ) {
        if self.left {
            return;
        }
        // A repair that ended leaves any further gap to this check.
        self.repair_unreachable_gap(ctx.now);
        if self.state.poll_timeout() > ctx.now {
            return;
        }
        let peers: Vec<_> = self.peer_heights(ctx).collect();
        let max_height = peers.iter().map(|(_, h)| *h).max().unwrap_or(0);
        let any = self.state.may_ask_any();
        let pick = |need: u64, rng: &mut R| covering_peer(&peers, need, any, rng);
        let height = self.first_missing();
        if let Some(request) = self.state.tick(ctx.now, height, max_height, pick, rng) {
            self.send_state_request(request, ctx, out);
        }
    }

    /// A state request from `from` (a peer of one of the channel's orgs): read the range from
    /// the ledger.
    pub fn handle_state_request(
        &mut self,
        from: PkiId,
        message: &GossipMessage,
        rng: &mut (impl Rng + ?Sized),
        out: &mut Outbox,
    ) {
        if self.left {
            return out.count_drop(DropReason::LeftChannel);
        }
        let Some(Content::StateRequest(r)) = &message.content else {
            return out.count_drop(DropReason::Malformed);
        };
        let (start_seq, end_seq) = (r.start_seq_num, r.end_seq_num);
        match self
            .state
            .serve(from, message.nonce, start_seq, end_seq, rng)
        {
            Ok(token) => out.io(IoRequest::ReadBlocks {
                channel: self.name.clone(),
                start_seq,
                end_seq,
                token,
            }),
            Err(e) => out.count_drop(drop_reason(e)),
        }
    }

    /// Whether ledger read `token` serves one of this channel's requests.
    pub fn serves_read(&self, token: u64) -> bool {
        self.state.serves(token)
    }

    /// Ledger read `token` finished: answer its request with the blocks, in order, up to the
    /// response size bound (the rest is left to the requester's next request).
    pub fn handle_blocks_read(
        &mut self,
        token: u64,
        mut blocks: Vec<Payload>,
        ctx: &Ctx<'_>,
        out: &mut Outbox,
    ) {
        let Some(serving) = self.state.served(token) else {
            return;
        };
        blocks.sort_by_key(|p| p.seq_num);
        blocks.dedup_by_key(|p| p.seq_num);
        let len_max_bytes = ctx.config.state.response_len_max_bytes;
        let mut len_bytes = 0usize;
        let payloads: Vec<Payload> = blocks
            .into_iter()
            .take_while(|p| {
                len_bytes = len_bytes.saturating_add(p.encoded_len());
                len_bytes <= len_max_bytes
            })
            .collect();
        let message = self.state_message(
            serving.nonce,
            Content::StateResponse(RemoteStateResponse { payloads }),
        );
        self.send_state(serving.to, &message, ctx, out);
    }

    /// A state response: it must answer this channel's pending request (nonce and peer); every
    /// block must pass the structural check, else the whole response is dropped. New blocks are
    /// delivered in order, and the transfer goes on with its next range at once.
    pub fn handle_state_response<R: Rng + ?Sized>(
        &mut self,
        from: PkiId,
        message: &GossipMessage,
        ctx: &Ctx<'_>,
        rng: &mut R,
        out: &mut Outbox,
    ) {
        if self.left {
            return out.count_drop(DropReason::LeftChannel);
        }
        let Some(Content::StateResponse(r)) = &message.content else {
            return out.count_drop(DropReason::Malformed);
        };
        if !self.state.expects(from, message.nonce) {
            return out.count_drop(DropReason::UnknownNonce);
        }
        let peers: Vec<_> = self.peer_heights(ctx).collect();
        let any = self.state.may_ask_any();
        let pick = |need: u64, rng: &mut R| covering_peer(&peers, need, any, rng);
        let verified = !ctx.checks_blocks() || r.payloads.iter().all(|p| verify_block(p).is_ok());
        if !verified {
            // A failed try: our height does not move, so it is asked again, elsewhere.
            out.count_drop(DropReason::BadBlock);
        } else {
            for payload in &r.payloads {
                if !self.delivery.wants(payload.seq_num) {
                    continue;
                }
                self.blocks_transferred += 1;
                self.puller.arrived(&payload.seq_num);
                out.event(Event::BlockReceived {
                    channel: self.name.clone(),
                    seq_num: payload.seq_num,
                    from,
                    size_bytes: payload.data.len(),
                    via: Arrival::StateTransfer,
                });
                self.deliver(payload.clone(), Some(from), ctx.now, out);
            }
        }
        let height = self.first_missing();
        let answer = Answer {
            from,
            nonce: message.nonce,
        };
        let next = match self.state.on_response(answer, height, ctx.now, pick, rng) {
            Ok(next) => next,
            Err(e) => return out.count_drop(drop_reason(e)),
        };
        match next {
            Some(request) => self.send_state_request(request, ctx, out),
            None => self.repair_unreachable_gap(ctx.now),
        }
    }
}
