//! Fabric's cert store (`gossip/gossip/certstore.go` over the pull mediator of `pullstore.go`,
//! spec 3.3 "Cert puller" and 3.11): the node-level identity puller. The [`PullEngine`] decides,
//! this file speaks Fabric's wire.
//!
//! - Items: signed `PeerIdentity{pki_id, cert, metadata: nil}` envelopes (tag EMPTY, no
//!   channel), by raw 32-byte PKI-ID. At start the store holds this peer's own, signed here; it
//!   keeps every one a pull round brought (Fabric's `itemID2Msg`), the first per PKI-ID.
//! - Messages: `GossipHello`, `DataDigest`, `DataRequest`, `DataUpdate`, each in a NoopSigned
//!   `GossipMessage{channel: empty, tag: EMPTY, nonce: 0}` with `msg_type` IDENTITY_MSG.
//! - Peers: a round says hello to up to `pullPeerNum` alive members, any org (Fabric's
//!   `SelectEndpoints` over the whole membership); any peer may pull from this one.
//! - What a peer is offered and served (Fabric's `sameOrgOrOurOrgPullFilter`): nothing when its
//!   org is unknown; everything held to a peer of this org; to a peer of another org, the
//!   identities of peers with an external endpoint that are of this org or of the requester's.
//!   Only identities the driver's store still holds (valid, unexpired) are offered: an identity
//!   it removed or that expired leaves this store too (Fabric's purge callback,
//!   `certPuller.Remove`).
//! - Update: ingress has checked every item (a `PeerIdentity` whose PKI-ID is that of its
//!   certificate, signed by it, valid under the MSPs; else the whole update was dropped and
//!   counted there) and stored the identities, so the driver handed them to the node before the
//!   update. Here the update must echo a nonce of this round's response phase; its items are
//!   kept, copied out of the received buffer, up to [`IDENTITY_ITEMS_LEN_MAX`].
//!
//! [`PullEngine`]: crate::components::pull::PullEngine

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use bytes::Bytes;
use gossip_proto::gossip::gossip_message::{Content, Tag};
use gossip_proto::gossip::{
    DataDigest, DataRequest, DataUpdate, Envelope, GossipHello, GossipMessage, PeerIdentity,
    PullMsgType, SecretEnvelope,
};
use prost::Message;
use rand::Rng;

use crate::components::discovery::{Discovery, MEMBERS_LEN_MAX};
use crate::components::pull::{PullConfig, PullEngine, PullReject, PullStats};
use crate::config::GossipConfig;
use crate::crypto::LocalSigner;
use crate::crypto::envelope::sign_envelope;
use crate::egress::{SelectAll, select_peers};
use crate::ingress::IdentityChange;
use crate::outbox::{DropReason, Outbox};
use crate::time::Instant;
use crate::types::{NetworkMember, OrgId, PkiId};

/// Bound on the signed identities held (own included): as many as discovery has members.
pub const IDENTITY_ITEMS_LEN_MAX: usize = MEMBERS_LEN_MAX;

const IDENTITY_MSG: i32 = PullMsgType::IdentityMsg as i32;

/// The cert store's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CertStoreStats {
    /// The identity puller's rounds and requests.
    pub pull: PullStats,
    /// Signed identities taken from pull updates.
    pub identities_pulled: u64,
    /// Signed identities held now, own included.
    pub items_len: usize,
}

/// What the cert store reads of the node.
#[derive(Clone, Copy)]
pub struct Ctx<'a> {
    /// Membership, orgs, endpoints and the identities the driver's store holds.
    pub discovery: &'a Discovery,
    /// `peer.gossip.*`.
    pub config: &'a GossipConfig,
    /// Now.
    pub now: Instant,
}

impl<'a> Ctx<'a> {
    /// The context at `now`.
    pub fn new(discovery: &'a Discovery, config: &'a GossipConfig, now: Instant) -> Self {
        Self {
            discovery,
            config,
            now,
        }
    }
}

/// The identity puller and the signed identities it serves.
#[derive(Debug)]
pub struct CertStore {
    me: PkiId,
    puller: PullEngine<PkiId>,
    /// Signed `PeerIdentity` envelopes by PKI-ID.
    items: BTreeMap<PkiId, Envelope>,
    identities_pulled: u64,
}

/// This peer's signed `PeerIdentity` (Fabric's `createIdentityMessage`).
pub fn own_identity_message(signer: &LocalSigner) -> Option<Envelope> {
    let message = GossipMessage {
        nonce: 0,
        channel: Bytes::new(),
        tag: Tag::Empty as i32,
        content: Some(Content::PeerIdentity(PeerIdentity {
            pki_id: Bytes::copy_from_slice(signer.pki_id().as_bytes()),
            cert: signer.identity().serialized.clone(),
            metadata: Bytes::new(),
        })),
    };
    sign_envelope(message.encode_to_vec().into(), signer.key()).ok()
}

/// Fabric's `sameOrgOrOurOrgPullFilter` for one item: whether a requester of
/// `requester_org` may have the identity of a peer of `item_org` (`None`: unknown) that does or
/// does not publish an external endpoint.
pub fn may_serve(
    my_org: &OrgId,
    requester_org: Option<&OrgId>,
    item_org: Option<&OrgId>,
    item_has_external_endpoint: bool,
) -> bool {
    let Some(requester_org) = requester_org else {
        return false;
    };
    if requester_org == my_org {
        return true;
    }
    let Some(item_org) = item_org else {
        return false;
    };
    item_has_external_endpoint && (item_org == my_org || item_org == requester_org)
}

fn drop_reason(reject: PullReject) -> DropReason {
    match reject {
        PullReject::UnknownNonce => DropReason::UnknownNonce,
        PullReject::Full => DropReason::Full,
    }
}

/// An envelope that owns its bytes (a received one's fields are slices of the whole message).
fn owned(envelope: &Envelope) -> Envelope {
    Envelope {
        payload: Bytes::copy_from_slice(&envelope.payload),
        signature: Bytes::copy_from_slice(&envelope.signature),
        secret_envelope: envelope.secret_envelope.as_ref().map(|s| SecretEnvelope {
            payload: Bytes::copy_from_slice(&s.payload),
            signature: Bytes::copy_from_slice(&s.signature),
        }),
    }
}

impl CertStore {
    /// The cert store of this peer, started at `now`, holding `own` (its signed identity; `None`
    /// when signing failed, and then the store serves only what it pulls). The first round is
    /// one `pullInterval` after `now`, as Fabric's engine sleeps before its first.
    pub fn new(me: PkiId, own: Option<Envelope>, config: &GossipConfig, now: Instant) -> Self {
        let pull = PullConfig {
            // Fabric's identity puller has none of the block puller's gap rounds or early ends.
            eager: false,
            ..PullConfig::of(config)
        };
        let mut items = BTreeMap::new();
        if let Some(own) = own {
            items.insert(me, own);
        }
        Self {
            me,
            puller: PullEngine::new(pull, now + config.pull_interval),
            items,
            identities_pulled: 0,
        }
    }

    /// Counters.
    pub fn stats(&self) -> CertStoreStats {
        CertStoreStats {
            pull: self.puller.stats(),
            identities_pulled: self.identities_pulled,
            items_len: self.items.len(),
        }
    }

    /// Whether the signed identity of `pki_id` is held.
    pub fn holds(&self, pki_id: &PkiId) -> bool {
        self.items.contains_key(pki_id)
    }

    /// The next deadline of the puller.
    pub fn poll_timeout(&self) -> Instant {
        self.puller.poll_timeout()
    }

    /// A change of the driver's identity store: a removed identity's message leaves too. (After a
    /// [`IdentityChange::Reset`], messages of identities not listed again leave at the next
    /// round.)
    pub fn handle_identity(&mut self, change: &IdentityChange) {
        if let IdentityChange::Removed(pki_id) | IdentityChange::Invalidated(pki_id) = change
            && *pki_id != self.me
        {
            self.items.remove(pki_id);
        }
    }

    fn send_pull(&self, to: PkiId, content: Content, ctx: &Ctx<'_>, out: &mut Outbox) {
        let message = GossipMessage {
            nonce: 0,
            channel: Bytes::new(),
            tag: Tag::Empty as i32,
            content: Some(content),
        };
        out.send_unsigned(ctx.discovery.remote_for(&to), &message);
    }

    /// The puller's timed work: requests once the digests are in, then a new round when one is
    /// due (which first lets go of the messages of identities no longer valid).
    pub fn handle_timeout<R: Rng + ?Sized>(
        &mut self,
        ctx: &Ctx<'_>,
        rng: &mut R,
        out: &mut Outbox,
    ) {
        let now = ctx.now;
        self.puller.advance(now);
        if self.puller.requests_due(now) {
            let items = &self.items;
            let requests = self
                .puller
                .take_requests(now, |p| !items.contains_key(p), rng);
            for (peer, nonce, pki_ids) in requests {
                let digests = pki_ids
                    .iter()
                    .map(|p| Bytes::copy_from_slice(p.as_bytes()))
                    .collect();
                let request = Content::DataReq(DataRequest {
                    nonce,
                    digests,
                    msg_type: IDENTITY_MSG,
                });
                self.send_pull(peer, request, ctx, out);
            }
        }
        let Some(kind) = self.puller.round_due(now) else {
            return;
        };
        let discovery = ctx.discovery;
        self.items
            .retain(|p, _| discovery.identity_org(p, now).is_some());
        let mut picked: Vec<&NetworkMember> = Vec::new();
        let alive = ctx.discovery.alive_members();
        select_peers(
            ctx.config.pull_peer_num,
            alive,
            &SelectAll,
            rng,
            &mut picked,
        );
        let peers: Vec<PkiId> = picked.iter().map(|m| m.pki_id).collect();
        for (peer, nonce) in self.puller.start_round(kind, &peers, now, rng) {
            let hello = Content::Hello(GossipHello {
                nonce,
                metadata: Bytes::new(),
                msg_type: IDENTITY_MSG,
            });
            self.send_pull(peer, hello, ctx, out);
        }
    }

    /// An identity pull message from `from` (hello, digest, request or update).
    pub fn handle_pull(
        &mut self,
        from: PkiId,
        message: &GossipMessage,
        ctx: &Ctx<'_>,
        out: &mut Outbox,
    ) {
        match &message.content {
            Some(Content::Hello(h)) if h.msg_type == IDENTITY_MSG => {
                self.on_hello(from, h.nonce, ctx, out)
            }
            Some(Content::DataDig(d)) if d.msg_type == IDENTITY_MSG => {
                self.on_digest(from, d, ctx, out)
            }
            Some(Content::DataReq(r)) if r.msg_type == IDENTITY_MSG => {
                self.on_request(from, r, ctx, out)
            }
            Some(Content::DataUpdate(u)) if u.msg_type == IDENTITY_MSG => {
                self.on_update(from, u, ctx, out)
            }
            _ => out.count_drop(DropReason::Malformed),
        }
    }

    /// The egress filter for `from`: whether it may have the identity of a PKI-ID (only valid
    /// identities are served).
    fn serves<'a>(from: &PkiId, ctx: &'a Ctx<'_>) -> impl Fn(&PkiId) -> bool + 'a {
        let discovery = ctx.discovery;
        let (my_org, now) = (&discovery.me().org, ctx.now);
        let requester_org = discovery.org_of(from, now);
        move |pki_id| {
            let item_org = discovery.identity_org(pki_id, now);
            item_org.is_some()
                && may_serve(
                    my_org,
                    requester_org.as_ref(),
                    item_org,
                    discovery.has_external_endpoint(pki_id),
                )
        }
    }

    /// A hello: remember its nonce and answer with the PKI-IDs `from` may have (nothing when
    /// there are none).
    fn on_hello(&mut self, from: PkiId, nonce: u64, ctx: &Ctx<'_>, out: &mut Outbox) {
        if let Err(e) = self.puller.on_hello(from, nonce, ctx.now) {
            return out.count_drop(drop_reason(e));
        }
        let serves = Self::serves(&from, ctx);
        let digests: Vec<Bytes> = self
            .items
            .keys()
            .filter(|p| serves(p))
            .map(|p| Bytes::copy_from_slice(p.as_bytes()))
            .collect();
        if digests.is_empty() {
            return;
        }
        let digest = Content::DataDig(DataDigest {
            nonce,
            digests,
            msg_type: IDENTITY_MSG,
        });
        self.send_pull(from, digest, ctx, out);
    }

    /// A digest echoing one of this round's nonces: the advertised PKI-IDs not held are wanted.
    fn on_digest(&mut self, from: PkiId, digest: &DataDigest, ctx: &Ctx<'_>, out: &mut Outbox) {
        let items: Vec<PkiId> = digest
            .digests
            .iter()
            .take(IDENTITY_ITEMS_LEN_MAX)
            .filter_map(|d| PkiId::from_slice(d))
            .filter(|p| !self.items.contains_key(p))
            .collect();
        if let Err(e) = self.puller.on_digest(from, digest.nonce, items, ctx.now) {
            out.count_drop(drop_reason(e));
        }
    }

    /// A request echoing one of `from`'s hello nonces: answer with the held messages of the
    /// requested identities that `from` may have (nothing when there are none).
    fn on_request(&mut self, from: PkiId, request: &DataRequest, ctx: &Ctx<'_>, out: &mut Outbox) {
        if let Err(e) = self.puller.on_request(from, request.nonce, ctx.now) {
            return out.count_drop(drop_reason(e));
        }
        let mut pki_ids: Vec<PkiId> = request
            .digests
            .iter()
            .take(IDENTITY_ITEMS_LEN_MAX)
            .filter_map(|d| PkiId::from_slice(d))
            .collect();
        pki_ids.sort_unstable();
        pki_ids.dedup();
        let serves = Self::serves(&from, ctx);
        let data: Vec<Envelope> = pki_ids
            .iter()
            .filter(|p| serves(p))
            .filter_map(|p| self.items.get(p).cloned())
            .collect();
        if data.is_empty() {
            return;
        }
        let update = Content::DataUpdate(DataUpdate {
            nonce: request.nonce,
            data,
            msg_type: IDENTITY_MSG,
        });
        self.send_pull(from, update, ctx, out);
    }

    /// An update echoing one of this round's nonces: each item is a signed `PeerIdentity` that
    /// ingress checked; a new one whose identity the driver's store holds is kept.
    fn on_update(&mut self, from: PkiId, update: &DataUpdate, ctx: &Ctx<'_>, out: &mut Outbox) {
        if let Err(e) = self.puller.on_update(from, update.nonce, ctx.now) {
            return out.count_drop(drop_reason(e));
        }
        let mut taken = Vec::with_capacity(update.data.len());
        for item in &update.data {
            let pki_id = match GossipMessage::decode(item.payload.clone()) {
                Ok(GossipMessage {
                    content: Some(Content::PeerIdentity(p)),
                    ..
                }) => PkiId::from_slice(&p.pki_id),
                _ => None,
            };
            // Ingress let only peer identities through: anything else drops the whole update.
            let Some(pki_id) = pki_id else {
                return out.count_drop(DropReason::Malformed);
            };
            taken.push((pki_id, item));
        }
        for (pki_id, item) in taken {
            self.puller.arrived(&pki_id);
            if self.items.contains_key(&pki_id) {
                out.count_drop(DropReason::Stale);
            } else if ctx.discovery.identity_org(&pki_id, ctx.now).is_none() {
                out.count_drop(DropReason::UnknownIdentity);
            } else if self.items.len() >= IDENTITY_ITEMS_LEN_MAX {
                out.count_drop(DropReason::Full);
            } else {
                self.items.insert(pki_id, owned(item));
                self.identities_pulled += 1;
            }
        }
    }
}
