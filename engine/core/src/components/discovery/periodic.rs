//! Discovery's periodic tasks (spec 3.5): heartbeat, expiry check and alive-TTL purge,
//! reconnect to dead members, membership sync, bootstrap/anchor connect retries, and the identity
//! expiry of [`super::identities`]. Each keeps its deadline in [`super::Timers`].

use std::time::Duration;

use rand::Rng;

use super::{Discovery, envelope_for, remote_of};
use crate::egress::{SelectAll, select_peers};
use crate::event::{IoRequest, RemotePeer};
use crate::outbox::{DropReason, Outbox};
use crate::time::Instant;
use crate::types::{OrgId, PkiId};

impl Discovery {
    /// The earliest deadline of discovery's periodic tasks.
    pub fn poll_timeout(&self) -> Instant {
        let t = &self.timers;
        let mut next = t.alive.min(t.expiry_check).min(t.reconnect).min(t.sync);
        if let Some(c) = self.connects.poll_timeout() {
            next = next.min(c);
        }
        if let Some(e) = self.identity_expiry_at() {
            next = next.min(e);
        }
        if let Some(r) = self.reprobes.poll_timeout() {
            next = next.min(r);
        }
        next
    }

    /// Runs every periodic task whose deadline passed. Idempotent when called early.
    pub fn handle_timeout<R: Rng + ?Sized>(&mut self, now: Instant, rng: &mut R, out: &mut Outbox) {
        self.expire_identities(now, out);
        if due(
            &mut self.timers.expiry_check,
            now,
            self.config.alive_expiration_check_interval(),
        ) {
            self.check_expiry(now, out);
        }
        if due(&mut self.timers.alive, now, self.config.alive_time_interval) {
            self.refresh();
            if !self.alive_view.is_empty() {
                match self.new_alive(true, now) {
                    Some((envelope, message)) => out.emit(envelope, message, None),
                    None => out.count_drop(DropReason::SignFailed),
                }
            }
        }
        if due(
            &mut self.timers.reconnect,
            now,
            self.config.reconnect_interval,
        ) {
            for m in self.members.values().filter(|m| !m.alive) {
                out.io(IoRequest::Probe {
                    pki_id: m.member.pki_id,
                    endpoint: m.member.preferred_endpoint().to_owned(),
                });
            }
        }
        for pki_id in self.reprobes.take_due(now, self.config.reconnect_interval) {
            if let Some(m) = self.members.get(&pki_id).filter(|m| !m.alive) {
                out.io(IoRequest::Probe {
                    pki_id,
                    endpoint: m.member.preferred_endpoint().to_owned(),
                });
            }
        }
        if due(&mut self.timers.sync, now, self.config.pull_interval) {
            self.refresh();
            self.initiate_sync(now, rng, out);
        }
        self.connects_timeout(now, out);
    }

    /// Fabric's `InitiateSync(pullPeerNum)`: a membership request to up to `pull_peer_num`
    /// random alive members, the secret stripped for other orgs.
    fn initiate_sync<R: Rng + ?Sized>(&mut self, now: Instant, rng: &mut R, out: &mut Outbox) {
        if self.alive_view.is_empty() {
            return;
        }
        let mut picked = Vec::new();
        select_peers(
            self.config.pull_peer_num,
            &self.alive_view,
            &SelectAll,
            rng,
            &mut picked,
        );
        let targets: Vec<(RemotePeer, Option<OrgId>)> = picked
            .iter()
            .map(|m| (remote_of(m), m.org.clone()))
            .collect();
        let Some((own, _)) = self.new_alive(true, now) else {
            return out.count_drop(DropReason::SignFailed);
        };
        for (target, org) in targets {
            let info = envelope_for(&own, &self.me.org, org.as_deref());
            out.send(target, Self::membership_request(info, 0));
        }
    }

    fn check_expiry(&mut self, now: Instant, out: &mut Outbox) {
        let timeout = self.config.alive_expiration_timeout;
        let expired: Vec<PkiId> = self
            .members
            .values()
            .filter(|m| m.alive && now.saturating_duration_since(m.last_seen) > timeout)
            .map(|m| m.member.pki_id)
            .collect();
        for pki_id in expired {
            self.expire_member(pki_id, now, out);
        }
        // Alive-message TTL: Fabric forgets the member when its stored alive message expires. We
        // also forget dead members learnt from responses (never stored) after the same TTL.
        let mut forget: Vec<PkiId> = self
            .alive_store
            .expire(now)
            .iter()
            .map(|s| s.pki_id)
            .collect();
        let ttl = self.config.alive_msg_ttl();
        forget.extend(
            self.members
                .values()
                .filter(|m| !m.alive && now.saturating_duration_since(m.last_seen) >= ttl)
                .map(|m| m.member.pki_id),
        );
        forget.sort();
        forget.dedup();
        for pki_id in forget {
            let pinned = self.members.get(&pki_id).is_some_and(|m| {
                self.pinned_endpoints.contains(&m.member.endpoint)
                    || self.pinned_endpoints.contains(&m.member.internal_endpoint)
            });
            let alive = self.members.get(&pki_id).is_some_and(|m| m.alive);
            if !pinned && !alive {
                self.purge(&pki_id, out);
            }
        }
    }
}

/// Whether a periodic task is due; if so, moves its deadline one period past `now`.
pub(crate) fn due(deadline: &mut Instant, now: Instant, period: Duration) -> bool {
    if now < *deadline {
        return false;
    }
    *deadline = now + period;
    true
}
