//! Bootstrap and anchor connects (Fabric's `discovery.Connect` + `sendUntilAcked`, spec 3.5):
//!
//! ```text
//!  Handshaking ──ok, acceptable──► AwaitingAck ──response with our nonce──► done
//!      │  ▲                           │ no ack after MEMBERSHIP_ACK_WAIT + reconnect_interval:
//!   fail│  │reconnect_interval         │ resend (up to max_connection_attempts)
//!      ▼  │                           ▼
//!    Waiting                        abandoned
//! ```
//!
//! A bootstrap peer must be of this org; an anchor claimed to be of this org must really be.
//! The membership request carries the internal-endpoint secret only for this org.

use std::collections::BTreeMap;
use std::time::Duration;

use gossip_proto::gossip::Envelope;
use rand::Rng;

use super::{Discovery, envelope_for};
use crate::event::{IoRequest, RemotePeer};
use crate::outbox::{DropReason, Outbox};
use crate::time::Instant;
use crate::types::{OrgId, PkiId};

/// How long a membership request waits for its response before the next try (Fabric: 5 s).
pub const MEMBERSHIP_ACK_WAIT: Duration = Duration::from_secs(5);
/// Bound on concurrent bootstrap/anchor connects.
pub const CONNECTS_LEN_MAX: usize = 1_024;

/// Why this peer connects to an endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConnectKind {
    /// `peer.gossip.bootstrap`: must be of this org.
    Bootstrap,
    /// An anchor peer of a channel, listed under `claimed_org`.
    Anchor {
        /// The org the channel config lists it under.
        claimed_org: OrgId,
    },
}

#[derive(Debug)]
enum State {
    Handshaking,
    Waiting { retry_at: Instant },
    AwaitingAck(Box<AwaitingAck>),
}

#[derive(Debug)]
struct AwaitingAck {
    nonce: u64,
    to: RemotePeer,
    request: Envelope,
    sends: u32,
    resend_at: Instant,
}

#[derive(Debug)]
struct Connect {
    endpoint: String,
    kind: ConnectKind,
    attempts: u32,
    state: State,
}

/// Connects in progress, by token.
#[derive(Debug, Default)]
pub(super) struct Connects {
    by_token: BTreeMap<u64, Connect>,
    next_token: u64,
}

impl Connects {
    /// A membership response with `nonce` arrived: the connect it answers is done.
    pub fn ack(&mut self, nonce: u64) {
        if nonce == 0 {
            return;
        }
        self.by_token
            .retain(|_, c| !matches!(&c.state, State::AwaitingAck(a) if a.nonce == nonce));
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.by_token
            .values()
            .filter_map(|c| match c.state {
                State::Handshaking => None,
                State::Waiting { retry_at } => Some(retry_at),
                State::AwaitingAck(ref a) => Some(a.resend_at),
            })
            .min()
    }
}

impl Discovery {
    fn is_my_endpoint(&self, endpoint: &str) -> bool {
        if endpoint == self.me.internal_endpoint
            || (!self.me.external_endpoint.is_empty() && endpoint == self.me.external_endpoint)
        {
            return true;
        }
        let port = self.me.internal_endpoint.rsplit(':').next().unwrap_or("");
        endpoint == format!("127.0.0.1:{port}") || endpoint == format!("localhost:{port}")
    }

    /// Starts connecting to a bootstrap or anchor endpoint: asks the driver for a probe handshake.
    /// Self endpoints and endpoints already being connected are skipped.
    pub fn connect(&mut self, endpoint: &str, kind: ConnectKind, out: &mut Outbox) {
        if endpoint.is_empty() || self.is_my_endpoint(endpoint) {
            return;
        }
        self.pinned_endpoints.insert(endpoint.to_owned());
        let c = &mut self.connects;
        if c.by_token.values().any(|c| c.endpoint == endpoint) {
            return;
        }
        if c.by_token.len() >= CONNECTS_LEN_MAX {
            return out.count_drop(DropReason::Full);
        }
        c.next_token += 1;
        let token = c.next_token;
        c.by_token.insert(
            token,
            Connect {
                endpoint: endpoint.to_owned(),
                kind,
                attempts: 1,
                state: State::Handshaking,
            },
        );
        out.io(IoRequest::Handshake {
            endpoint: endpoint.to_owned(),
            token,
        });
    }

    /// The driver's answer to a connect's handshake.
    pub fn handle_handshake<R: Rng + ?Sized>(
        &mut self,
        token: u64,
        result: &Result<(PkiId, OrgId), String>,
        now: Instant,
        rng: &mut R,
        out: &mut Outbox,
    ) {
        let my_org = self.me.org.clone();
        let Some(c) = self.connects.by_token.get(&token) else {
            return;
        };
        if !matches!(c.state, State::Handshaking) {
            return;
        }
        let accepted = match result {
            Ok((pki_id, _)) if *pki_id == self.me.pki_id => {
                self.connects.by_token.remove(&token);
                return;
            }
            Ok((pki_id, org)) => {
                let same_org = *org == my_org;
                let acceptable = match &c.kind {
                    ConnectKind::Bootstrap => same_org,
                    ConnectKind::Anchor { claimed_org } => *claimed_org != my_org || same_org,
                };
                acceptable.then(|| (*pki_id, org.clone(), c.endpoint.clone()))
            }
            Err(_) => None,
        };
        let Some((pki_id, org, endpoint)) = accepted else {
            if result.is_ok() {
                // A foreign-org bootstrap peer, or an anchor not of the org it was listed for.
                out.count_drop(DropReason::NotInMyOrg);
            }
            return self.connect_failed(token, now);
        };
        let Some((own, _)) = self.new_alive(true, now) else {
            out.count_drop(DropReason::SignFailed);
            return self.connect_failed(token, now);
        };
        let nonce = rng.random::<u64>().max(1);
        let request = Self::membership_request(envelope_for(&own, &my_org, Some(&org)), nonce);
        let to = RemotePeer {
            pki_id: Some(pki_id),
            endpoint,
        };
        out.send(to.clone(), request.clone());
        if let Some(c) = self.connects.by_token.get_mut(&token) {
            c.state = State::AwaitingAck(Box::new(AwaitingAck {
                nonce,
                to,
                request,
                sends: 1,
                resend_at: now + MEMBERSHIP_ACK_WAIT + self.config.reconnect_interval,
            }));
        }
    }

    fn connect_failed(&mut self, token: u64, now: Instant) {
        let max = self.config.max_connection_attempts;
        let retry_at = now + self.config.reconnect_interval;
        let Some(c) = self.connects.by_token.get_mut(&token) else {
            return;
        };
        if c.attempts >= max {
            self.connects.by_token.remove(&token);
            self.stats.connects_abandoned += 1;
        } else {
            c.state = State::Waiting { retry_at };
        }
    }

    /// Retries handshakes and resends unacknowledged requests that are due.
    pub(super) fn connects_timeout(&mut self, now: Instant, out: &mut Outbox) {
        let max = self.config.max_connection_attempts;
        let resend_period = MEMBERSHIP_ACK_WAIT + self.config.reconnect_interval;
        let mut abandoned = Vec::new();
        for (token, c) in self.connects.by_token.iter_mut() {
            match &mut c.state {
                State::Waiting { retry_at } if *retry_at <= now => {
                    c.attempts += 1;
                    c.state = State::Handshaking;
                    out.io(IoRequest::Handshake {
                        endpoint: c.endpoint.clone(),
                        token: *token,
                    });
                }
                State::AwaitingAck(a) if a.resend_at <= now => {
                    if a.sends >= max {
                        abandoned.push(*token);
                    } else {
                        a.sends += 1;
                        a.resend_at = now + resend_period;
                        out.send(a.to.clone(), a.request.clone());
                    }
                }
                _ => {}
            }
        }
        for token in abandoned {
            self.connects.by_token.remove(&token);
            self.stats.connects_abandoned += 1;
        }
    }

    /// How many connects are in progress.
    pub fn connects_len(&self) -> usize {
        self.connects.by_token.len()
    }
}
