//! Signer resolution (spec 1.5, 2.3, 3.3, 3.5, 3.11): for every signed item of a message, top-level
//! or nested, find the key that must have signed it and queue the check. Nothing here runs ECDSA.
//!
//! Where the key comes from:
//! - alive: the identity of `membership.pki_id`; when the alive message carries `identity`, that
//!   identity (parsed, validated, PKI-ID checked), learnt into the store only once accepted;
//! - state_info, leadership: the stored identity of `pki_id`;
//! - peer_identity: the certificate it carries; conn: the identity it carries (both PKI-ID checked);
//! - a secret envelope: the same key as its envelope.
//!
//! Nested items: mem_req's `self_information` (an alive message about the sender itself: anything
//! else is spoofing), mem_res's alive and dead lists, state_snapshot's elements, data_update's items
//! (identity updates: peer identities, unchecked when the same signed bytes passed before for the
//! stored identity; block updates: data messages, unsigned). Policy: a nested
//! item that fails a check rejects the whole message; a nested item whose signer is unknown does
//! too under [`NestedSignerPolicy::RejectMessage`] (the default), or is removed from the decoded
//! message and counted under [`NestedSignerPolicy::DropItem`].

use std::sync::Arc;

use bytes::Bytes;
use gossip_proto::gossip::gossip_message::Content;
use gossip_proto::gossip::{AliveMessage, Envelope, GossipMessage, PullMsgType};
use gossip_proto::msp::SerializedIdentity;
use prost::Message;

use super::identity_store::{
    IdentityStore, PeerIdentityDigest, peer_identity_digest, validate_with,
};
use super::{Reject, SignatureCheck};
use crate::crypto::{Identity, IdentityError, MspManager, SignatureError, pki_id_of};
use crate::time::Instant;
use crate::types::PkiId;

/// What to do with a nested signed item whose signer's identity is unknown.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NestedSignerPolicy {
    /// Reject the whole message as `UnknownSigner` (strict).
    #[default]
    RejectMessage,
    /// Remove the item from the decoded message and keep the rest (what Fabric's discovery does
    /// with alive messages of unknown peers in a membership response). The envelope stays as
    /// received.
    DropItem,
}

/// Collects the checks and the new identities of one message.
pub(crate) struct Resolver<'a> {
    pub msp: &'a MspManager,
    pub store: &'a IdentityStore,
    pub now: Instant,
    pub policy: NestedSignerPolicy,
    pub checks: Vec<SignatureCheck>,
    /// Identities validated in this message, to store once its checks passed.
    pub learn: Vec<Arc<Identity>>,
    pub nested_dropped: u64,
    /// Identity pull items whose signature check is queued: their digests are remembered by the
    /// store once the checks passed.
    pub peer_identities: Vec<(PkiId, PeerIdentityDigest)>,
    /// Identity pull items that passed their check before, unchecked this time.
    pub peer_identities_known: u64,
}

impl<'a> Resolver<'a> {
    pub fn new(
        msp: &'a MspManager,
        store: &'a IdentityStore,
        now: Instant,
        policy: NestedSignerPolicy,
    ) -> Self {
        Self {
            msp,
            store,
            now,
            policy,
            checks: Vec::new(),
            learn: Vec::new(),
            nested_dropped: 0,
            peer_identities: Vec::new(),
            peer_identities_known: 0,
        }
    }

    /// Resolves every signed item of a top-level message from `from`. May remove nested items
    /// from `message` (policy `DropItem`).
    pub fn resolve(
        &mut self,
        from: PkiId,
        envelope: &Envelope,
        message: &mut GossipMessage,
    ) -> Result<(), Reject> {
        let Some(content) = message.content.as_mut() else {
            return Ok(());
        };
        match content {
            Content::AliveMsg(alive) => self.alive(envelope, alive),
            Content::StateInfo(s) => {
                let signer = self.known(&s.pki_id)?;
                self.signed(envelope, &signer)
            }
            Content::LeadershipMsg(l) => {
                let signer = self.known(&l.pki_id)?;
                self.signed(envelope, &signer)
            }
            Content::PeerIdentity(p) => {
                let signer = self.carried(&p.pki_id, &p.cert)?;
                self.signed(envelope, &signer)
            }
            Content::Conn(c) => {
                if c.pki_id.is_empty() {
                    return Err(Reject::Invalid("conn without pki_id"));
                }
                let signer = self.carried(&c.pki_id, &c.identity)?;
                self.signed(envelope, &signer)
            }
            Content::DataMsg(d) if d.payload.is_none() => {
                Err(Reject::Invalid("data message without payload"))
            }
            Content::MemReq(req) => {
                let info = req.self_information.as_ref().ok_or(Reject::Invalid(
                    "membership request without self information",
                ))?;
                let inner = decode_nested(info)?;
                let Some(Content::AliveMsg(alive)) = &inner.content else {
                    return Err(Reject::Invalid(
                        "membership request self information is not an alive message",
                    ));
                };
                let about = alive.membership.as_ref().map_or(&[][..], |m| &m.pki_id[..]);
                if about != from.as_bytes() {
                    return Err(Reject::Spoofed);
                }
                self.alive(info, alive)
            }
            Content::MemRes(res) => {
                self.nested_list(&mut res.alive, Self::nested_alive)?;
                self.nested_list(&mut res.dead, Self::nested_alive)
            }
            Content::StateSnapshot(snapshot) => {
                self.nested_list(&mut snapshot.elements, |r, env| {
                    let inner = decode_nested(env)?;
                    let Some(Content::StateInfo(s)) = &inner.content else {
                        return Err(Reject::Invalid(
                            "state snapshot element is not a state info",
                        ));
                    };
                    let signer = r.known(&s.pki_id)?;
                    r.signed(env, &signer)
                })
            }
            Content::DataUpdate(update) => match PullMsgType::try_from(update.msg_type) {
                Ok(PullMsgType::IdentityMsg) => {
                    self.nested_list(&mut update.data, Self::identity_item)
                }
                Ok(PullMsgType::BlockMsg) => {
                    update
                        .data
                        .iter()
                        .try_for_each(|env| match decode_nested(env)?.content {
                            Some(Content::DataMsg(d)) if d.payload.is_some() => Ok(()),
                            _ => Err(Reject::Invalid("block update item is not a data message")),
                        })
                }
                _ => Err(Reject::Invalid("data update with an unknown pull type")),
            },
            _ => Ok(()),
        }
    }

    /// Runs `item` on every envelope of a nested list, applying the unknown-signer policy.
    fn nested_list(
        &mut self,
        list: &mut Vec<Envelope>,
        mut item: impl FnMut(&mut Self, &Envelope) -> Result<(), Reject>,
    ) -> Result<(), Reject> {
        let mut dropped = false;
        let mut keep = Vec::with_capacity(list.len());
        for envelope in list.iter() {
            match item(self, envelope) {
                Ok(()) => keep.push(true),
                Err(Reject::UnknownSigner) if self.policy == NestedSignerPolicy::DropItem => {
                    self.nested_dropped += 1;
                    dropped = true;
                    keep.push(false);
                }
                Err(e) => return Err(e),
            }
        }
        if dropped {
            let mut flags = keep.into_iter();
            list.retain(|_| flags.next().unwrap_or(false));
        }
        Ok(())
    }

    /// An item of an identity pull update: a `PeerIdentity` signed by the identity it carries
    /// (PKI-ID checked, validated when new). An item whose exact bytes and signature passed
    /// before for the stored identity needs no check again: a replayed update costs a decode and
    /// two digests per item, no signature check.
    fn identity_item(&mut self, envelope: &Envelope) -> Result<(), Reject> {
        let inner = decode_nested(envelope)?;
        let Some(Content::PeerIdentity(p)) = &inner.content else {
            return Err(Reject::Invalid(
                "identity update item is not a peer identity",
            ));
        };
        let digest = peer_identity_digest(envelope);
        if let Some(pki_id) = PkiId::from_slice(&p.pki_id)
            && self
                .store
                .peer_identity_verified(&pki_id, &digest, self.now)
        {
            self.peer_identities_known += 1;
            return Ok(());
        }
        let signer = self.carried(&p.pki_id, &p.cert)?;
        self.signed(envelope, &signer)?;
        self.peer_identities.push((signer.pki_id, digest));
        Ok(())
    }

    fn nested_alive(&mut self, envelope: &Envelope) -> Result<(), Reject> {
        let inner = decode_nested(envelope)?;
        let Some(Content::AliveMsg(alive)) = &inner.content else {
            return Err(Reject::Invalid(
                "membership response item is not an alive message",
            ));
        };
        self.alive(envelope, alive)
    }

    /// Fabric's `ValidateAliveMsg` minus the ECDSA: membership and PKI-ID present, signed, the
    /// signer known or carried.
    fn alive(&mut self, envelope: &Envelope, alive: &AliveMessage) -> Result<(), Reject> {
        let pki_id = match &alive.membership {
            Some(m) if !m.pki_id.is_empty() => &m.pki_id,
            _ => return Err(Reject::Invalid("alive message without membership pki_id")),
        };
        let signer = if alive.identity.is_empty() {
            self.known(pki_id)?
        } else {
            self.carried(pki_id, &alive.identity)?
        };
        self.signed(envelope, &signer)
    }

    /// Queues the envelope's check (and its secret envelope's) with the signer's key.
    fn signed(&mut self, envelope: &Envelope, signer: &Identity) -> Result<(), Reject> {
        if envelope.payload.is_empty() {
            return Err(Reject::BadSignature(SignatureError::EmptyPayload));
        }
        if envelope.signature.is_empty() {
            return Err(Reject::BadSignature(SignatureError::Missing));
        }
        let key = signer.public_key();
        self.checks.push(SignatureCheck::envelope(
            key.clone(),
            envelope.payload.clone(),
            envelope.signature.clone(),
        ));
        if let Some(secret) = &envelope.secret_envelope {
            self.checks.push(SignatureCheck::secret(
                key.clone(),
                secret.payload.clone(),
                secret.signature.clone(),
            ));
        }
        Ok(())
    }

    /// The identity of `pki_id`: stored, or validated earlier in this message.
    fn known(&self, pki_id: &[u8]) -> Result<Arc<Identity>, Reject> {
        let pki_id = PkiId::from_slice(pki_id).ok_or(Reject::UnknownSigner)?;
        if let Some(identity) = self.store.get(&pki_id, self.now) {
            return Ok(identity);
        }
        self.learn
            .iter()
            .find(|i| i.pki_id == pki_id)
            .cloned()
            .ok_or(Reject::UnknownSigner)
    }

    /// An identity carried in the message for `claimed_pki_id`. The PKI-ID is checked first (cheap);
    /// an identity already stored or seen in this message is reused, any other is parsed and
    /// validated, and queued to be learnt.
    fn carried(
        &mut self,
        claimed_pki_id: &[u8],
        serialized: &Bytes,
    ) -> Result<Arc<Identity>, Reject> {
        let sid = SerializedIdentity::decode(serialized.clone()).map_err(|e| {
            Reject::BadIdentity(IdentityError::BadSerializedIdentity(e.to_string()))
        })?;
        if pki_id_of(&sid.mspid, &sid.id_bytes).as_bytes() != claimed_pki_id {
            return Err(Reject::BadIdentity(IdentityError::PkiIdMismatch));
        }
        if let Ok(identity) = self.known(claimed_pki_id) {
            return Ok(identity);
        }
        let identity =
            Identity::from_serialized(serialized.clone()).map_err(Reject::BadIdentity)?;
        validate_with(self.msp, claimed_pki_id, &identity, self.now)
            .map_err(Reject::BadIdentity)?;
        let identity = Arc::new(identity);
        self.learn.push(Arc::clone(&identity));
        Ok(identity)
    }
}

/// Decodes a nested envelope's `GossipMessage`; a nested item that doesn't decode is invalid
/// content (the stream stays: the outer message decoded).
fn decode_nested(envelope: &Envelope) -> Result<GossipMessage, Reject> {
    GossipMessage::decode(envelope.payload.clone())
        .map_err(|_| Reject::Invalid("nested envelope does not decode"))
}

/// How many nested envelopes a message holds (bounded by `nested_items_len_max`).
pub(crate) fn nested_items_len(message: &GossipMessage) -> usize {
    match &message.content {
        Some(Content::MemReq(r)) => usize::from(r.self_information.is_some()),
        Some(Content::MemRes(r)) => r.alive.len() + r.dead.len(),
        Some(Content::StateSnapshot(s)) => s.elements.len(),
        Some(Content::DataUpdate(u)) => u.data.len(),
        _ => 0,
    }
}
