//! The channel's block puller (Fabric's `createBlockPuller` in `channel.go` over the pull
//! mediator of `pullstore.go`, spec 3.6 and 3.7 step 6): the [`PullEngine`] decides, this file
//! speaks Fabric's wire.
//!
//! - Messages: `GossipHello`, `DataDigest`, `DataRequest`, `DataUpdate`, each in a NoopSigned
//!   `GossipMessage{channel: name, tag: CHAN_AND_ORG, nonce: 0}` with `msg_type` BLOCK_MSG.
//!   Item ids are the decimal ASCII of block numbers (`"42"`).
//! - Peers: a round says hello to up to `pullPeerNum` alive peers of this org with a cached
//!   StateInfo of the channel (Fabric's membership filter, `eligibleForChannelAndSameOrg`); a
//!   pull message from anyone else is dropped (block pull is intra-org only), as is any pull
//!   message once this peer left the channel.
//! - Digest: the numbers of the blocks in the block store (the mediator's items are exactly the
//!   store's: expiry and eviction remove both). On receipt, items must parse as a number at or
//!   above the next block to deliver (Fabric's ingress digest filter keeps those at or above the
//!   ledger height) and below the store's admission bound ([`Delivery::admits`]) that the store
//!   would take and does not hold.
//! - Update: every item must be a data message of this channel that verifies; one that does not
//!   drops the whole update (Fabric aborts it); items the store already holds or would refuse
//!   are skipped, as are items beyond the admission bound (counted as `BlockBeyondWindow`).
//!   Taken blocks are delivered in order like pushed ones and counted
//!   ([`Channel::blocks_pulled`]), but never forwarded: Fabric does not gossip pulled blocks.
//!
//! [`PullEngine`]: crate::components::pull::PullEngine
//! [`Delivery::admits`]: super::Delivery::admits

use bytes::Bytes;
use gossip_proto::gossip::gossip_message::{Content, Tag};
use gossip_proto::gossip::{
    DataDigest, DataRequest, DataUpdate, Envelope, GossipHello, GossipMessage, Payload, PullMsgType,
};
use prost::Message;
use rand::Rng;

use super::blocks::{BlockStorePolicy, StoredBlock, verify_block};
use super::{BLOCKS_LEN_MAX, Channel, Ctx};
use crate::components::msgstore::MsgStore;
use crate::components::pull::{PullReject, RoundKind};
use crate::egress::select_peers;
use crate::event::Event;
use crate::outbox::{DropReason, Outbox};
use crate::types::{NetworkMember, PkiId};

/// Bound on the items of one received digest or request that are looked at.
pub const PULL_ITEMS_LEN_MAX: usize = BLOCKS_LEN_MAX;

type BlockStore = MsgStore<BlockStorePolicy>;

/// A block pull item id: the decimal ASCII of the number.
fn item_id(seq: u64) -> Bytes {
    Bytes::from(seq.to_string())
}

/// Parses an item id as Go's `strconv.ParseUint(s, 10, 64)` does (digits only, no sign).
fn parse_item(id: &[u8]) -> Option<u64> {
    if id.is_empty() || !id.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(id).ok()?.parse().ok()
}

/// Whether a block store holding `blocks`, delivering `next` next and admitting blocks below
/// `admitted_end` ([`Delivery::admits`]), wants block `seq`: at or above `next`, below
/// `admitted_end`, not held, and not refused by the store's window.
///
/// [`Delivery::admits`]: super::Delivery::admits
fn wants(blocks: &BlockStore, next: u64, admitted_end: u64, seq: u64) -> bool {
    seq >= next
        && seq < admitted_end
        && blocks.get(&seq).is_none()
        && blocks.check_valid(&StoredBlock::probe(seq))
}

fn drop_reason(reject: PullReject) -> DropReason {
    match reject {
        PullReject::UnknownNonce => DropReason::UnknownNonce,
        PullReject::Full => DropReason::Full,
    }
}

impl Channel {
    /// A pull message of this channel's block puller.
    fn pull_message(&self, content: Content) -> GossipMessage {
        GossipMessage {
            nonce: 0,
            channel: self.name.clone(),
            tag: Tag::ChanAndOrg as i32,
            content: Some(content),
        }
    }

    fn send_pull(&self, to: PkiId, content: Content, ctx: &Ctx<'_>, out: &mut Outbox) {
        out.send_unsigned(ctx.discovery.remote_for(&to), &self.pull_message(content));
    }

    /// Whether the store would take block `seq` and delivery still wants it.
    fn wants_block(&self, seq: u64) -> bool {
        let next = self.delivery.next_seq();
        wants(&self.blocks, next, self.delivery.admitted_end(), seq)
    }

    /// The puller's timed work: requests once the digests are in, then a new round when one is
    /// due (a gap round only while a block still waits for a predecessor).
    pub(super) fn pull_tick<R: Rng + ?Sized>(
        &mut self,
        ctx: &Ctx<'_>,
        rng: &mut R,
        out: &mut Outbox,
    ) {
        let now = ctx.now;
        self.puller.advance(now);
        if self.puller.requests_due(now) {
            let (blocks, next) = (&self.blocks, self.delivery.next_seq());
            let admitted_end = self.delivery.admitted_end();
            let requests =
                self.puller
                    .take_requests(now, |s| wants(blocks, next, admitted_end, *s), rng);
            for (peer, nonce, seqs) in requests {
                let digests = seqs.into_iter().map(item_id).collect();
                let request = Content::DataReq(DataRequest {
                    nonce,
                    digests,
                    msg_type: PullMsgType::BlockMsg as i32,
                });
                self.send_pull(peer, request, ctx, out);
            }
        }
        let Some(kind) = self.puller.round_due(now) else {
            return;
        };
        if kind == RoundKind::Gap
            && self.delivery.buffered_len() == 0
            && self.advertised_height_max <= self.delivery.next_seq()
        {
            return self.puller.cancel_gap();
        }
        let mut picked: Vec<&NetworkMember> = Vec::new();
        if !self.left {
            let my_org = ctx.my_org();
            let filter = |m: &NetworkMember| {
                m.org.as_ref() == Some(my_org) && self.is_member_in_chan(m) && self.is_eligible(m)
            };
            let alive = ctx.discovery.alive_members();
            select_peers(ctx.config.pull_peer_num, alive, &filter, rng, &mut picked);
        }
        let peers: Vec<PkiId> = picked.iter().map(|m| m.pki_id).collect();
        for (peer, nonce) in self.puller.start_round(kind, &peers, now, rng) {
            let hello = Content::Hello(GossipHello {
                nonce,
                metadata: Bytes::new(),
                msg_type: PullMsgType::BlockMsg as i32,
            });
            self.send_pull(peer, hello, ctx, out);
        }
    }

    /// A block pull message from `from` (hello, digest, request or update).
    pub fn handle_pull(
        &mut self,
        from: PkiId,
        message: &GossipMessage,
        ctx: &Ctx<'_>,
        out: &mut Outbox,
    ) {
        if self.left {
            return out.count_drop(DropReason::LeftChannel);
        }
        if self.state_infos.get(&from).is_none() {
            return out.count_drop(DropReason::NotEligible);
        }
        if ctx.discovery.org_of(&from, ctx.now).as_ref() != Some(ctx.my_org()) {
            return out.count_drop(DropReason::NotInMyOrg);
        }
        let block_msg = PullMsgType::BlockMsg as i32;
        match &message.content {
            Some(Content::Hello(h)) if h.msg_type == block_msg => {
                self.on_hello(from, h.nonce, ctx, out)
            }
            Some(Content::DataDig(d)) if d.msg_type == block_msg => {
                let items: Vec<u64> = d
                    .digests
                    .iter()
                    .take(PULL_ITEMS_LEN_MAX)
                    .filter_map(|id| parse_item(id))
                    .filter(|s| self.wants_block(*s))
                    .collect();
                if let Err(e) = self.puller.on_digest(from, d.nonce, items, ctx.now) {
                    out.count_drop(drop_reason(e));
                }
            }
            Some(Content::DataReq(r)) if r.msg_type == block_msg => {
                self.on_request(from, r, ctx, out)
            }
            Some(Content::DataUpdate(u)) if u.msg_type == block_msg => {
                self.on_update(from, u, ctx, out)
            }
            _ => out.count_drop(DropReason::Malformed),
        }
    }

    /// A hello: remember its nonce and answer with the numbers of the stored blocks (nothing when
    /// the store is empty).
    fn on_hello(&mut self, from: PkiId, nonce: u64, ctx: &Ctx<'_>, out: &mut Outbox) {
        if let Err(e) = self.puller.on_hello(from, nonce, ctx.now) {
            return out.count_drop(drop_reason(e));
        }
        let digests: Vec<Bytes> = self.blocks.iter().map(|b| item_id(b.seq_num)).collect();
        if digests.is_empty() {
            return;
        }
        let digest = Content::DataDig(DataDigest {
            nonce,
            digests,
            msg_type: PullMsgType::BlockMsg as i32,
        });
        self.send_pull(from, digest, ctx, out);
    }

    /// A request echoing one of `from`'s hello nonces: answer with the stored envelopes of the
    /// requested blocks (nothing when none is held).
    fn on_request(&mut self, from: PkiId, request: &DataRequest, ctx: &Ctx<'_>, out: &mut Outbox) {
        if let Err(e) = self.puller.on_request(from, request.nonce, ctx.now) {
            return out.count_drop(drop_reason(e));
        }
        let mut seqs: Vec<u64> = request
            .digests
            .iter()
            .take(PULL_ITEMS_LEN_MAX)
            .filter_map(|id| parse_item(id))
            .collect();
        seqs.sort_unstable();
        seqs.dedup();
        let data: Vec<Envelope> = seqs
            .iter()
            .filter_map(|s| self.blocks.get(s))
            .map(|b| b.envelope.clone())
            .collect();
        if data.is_empty() {
            return;
        }
        let update = Content::DataUpdate(DataUpdate {
            nonce: request.nonce,
            data,
            msg_type: PullMsgType::BlockMsg as i32,
        });
        self.send_pull(from, update, ctx, out);
    }

    /// An update echoing one of this round's nonces: every item must be a verifying data message
    /// of this channel (else the whole update is dropped); new blocks are stored and delivered in
    /// order, never forwarded.
    fn on_update(&mut self, from: PkiId, update: &DataUpdate, ctx: &Ctx<'_>, out: &mut Outbox) {
        if let Err(e) = self.puller.on_update(from, update.nonce, ctx.now) {
            return out.count_drop(drop_reason(e));
        }
        let mut taken: Vec<(Payload, Envelope)> = Vec::with_capacity(update.data.len());
        for item in &update.data {
            let message = match GossipMessage::decode(item.payload.clone()) {
                Ok(m) => m,
                Err(_) => return out.count_drop(DropReason::Malformed),
            };
            if message.channel != self.name {
                return out.count_drop(DropReason::UnknownChannel);
            }
            let Some(Content::DataMsg(data)) = message.content else {
                return out.count_drop(DropReason::Malformed);
            };
            let Some(payload) = data.payload else {
                return out.count_drop(DropReason::Malformed);
            };
            if !self
                .blocks
                .check_valid(&StoredBlock::probe(payload.seq_num))
            {
                out.count_drop(DropReason::Stale);
                continue;
            }
            if !self.delivery.admits(payload.seq_num) {
                out.count_drop(DropReason::BlockBeyondWindow);
                // Checked only for gap repair: otherwise the block is dropped unread.
                if ctx.config.state.gap_repair
                    && (!ctx.checks_blocks() || verify_block(&payload).is_ok())
                {
                    self.beyond_window_seen(payload.seq_num, ctx);
                }
                continue;
            }
            if ctx.checks_blocks() && verify_block(&payload).is_err() {
                return out.count_drop(DropReason::BadBlock);
            }
            taken.push((payload, item.clone()));
        }
        for (payload, envelope) in taken {
            let block = StoredBlock {
                seq_num: payload.seq_num,
                envelope,
                origin: Some((from, crate::event::Arrival::Pull)),
            };
            if self.blocks.add(block, ctx.now).is_err() {
                out.count_drop(DropReason::Stale);
                continue;
            }
            self.puller.arrived(&payload.seq_num);
            self.puller.observe(&payload.seq_num, ctx.now, false);
            if !self.delivery.wants(payload.seq_num) {
                out.count_drop(DropReason::OutOfWindow);
                continue;
            }
            self.blocks_pulled += 1;
            out.event(Event::BlockReceived {
                channel: self.name.clone(),
                seq_num: payload.seq_num,
                from,
                size_bytes: payload.data.len(),
                via: crate::event::Arrival::Pull,
            });
            self.deliver(payload, Some(from), ctx.now, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_ids_are_decimal_ascii_as_go_parses_them() {
        assert_eq!(item_id(42), Bytes::from_static(b"42"));
        assert_eq!(item_id(0), Bytes::from_static(b"0"));
        assert_eq!(parse_item(b"42"), Some(42));
        assert_eq!(parse_item(b"007"), Some(7));
        assert_eq!(parse_item(b"18446744073709551615"), Some(u64::MAX));
        for bad in [
            &b""[..],
            b"+5",
            b"-5",
            b"5 ",
            b"0x5",
            b"18446744073709551616",
            b"\xff",
        ] {
            assert_eq!(parse_item(bad), None, "{bad:?}");
        }
    }
}
