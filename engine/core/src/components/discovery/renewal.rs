//! A renewed certificate (spec 3.5 "identity-switch", fabric#5111): a peer restarted with a new
//! certificate has a new PKI-ID behind the same endpoint. When a new PKI-ID announces an endpoint
//! (external, or internal through the secret envelope) that a known member of the same org
//! announces, the one of the older incarnation (`inc_num`, the process start) is the stale one:
//! a newcomer older than the known member is not learnt, and known members older than the
//! newcomer are purged at once, with their connections closed, so the old PKI-ID lingers neither
//! in membership nor in channels (Fabric purges it when comm detects the switch on a dial, or when
//! its alive message expires; an old identity that expired before the renewal spread then kept
//! the old PKI-ID in use).
//!
//! Members without an org, and empty endpoints, never match.

use super::{AliveStamp, Discovery};
use crate::event::IoRequest;
use crate::outbox::Outbox;
use crate::types::{OrgId, PkiId};

impl Discovery {
    /// The members of `org`, other than `stamp`'s, that announce `endpoint` or `internal`.
    fn same_endpoint(
        &self,
        stamp: &AliveStamp,
        endpoint: &str,
        internal: Option<&str>,
        org: Option<&OrgId>,
    ) -> Vec<(PkiId, u64)> {
        let Some(org) = org else {
            return Vec::new();
        };
        let internal = internal.filter(|i| !i.is_empty());
        self.members
            .values()
            .filter(|m| m.member.pki_id != stamp.pki_id && m.member.org.as_ref() == Some(org))
            .filter(|m| {
                (!endpoint.is_empty() && m.member.endpoint == endpoint)
                    || internal.is_some_and(|i| m.member.internal_endpoint == i)
            })
            .map(|m| (m.member.pki_id, m.time.inc_num))
            .collect()
    }

    /// Whether a member of a later incarnation announces the same endpoint as `stamp`.
    pub(super) fn is_superseded(
        &self,
        stamp: &AliveStamp,
        endpoint: &str,
        internal: Option<&str>,
        org: Option<&OrgId>,
    ) -> bool {
        self.same_endpoint(stamp, endpoint, internal, org)
            .iter()
            .any(|&(_, inc_num)| inc_num > stamp.time.inc_num)
    }

    /// Before learning `stamp`'s member: `false` if it is superseded ([`Self::is_superseded`]);
    /// otherwise purges the members it supersedes and returns `true`.
    pub(super) fn supersede(
        &mut self,
        stamp: &AliveStamp,
        endpoint: &str,
        internal: Option<&str>,
        org: Option<&OrgId>,
        out: &mut Outbox,
    ) -> bool {
        let older = self.same_endpoint(stamp, endpoint, internal, org);
        if older
            .iter()
            .any(|&(_, inc_num)| inc_num > stamp.time.inc_num)
        {
            return false;
        }
        for (pki_id, _) in older {
            self.stats.superseded += 1;
            self.purge(&pki_id, out);
            out.io(IoRequest::CloseConn(pki_id));
        }
        true
    }
}
