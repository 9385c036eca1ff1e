//! Identity lifecycle material for tests: renewed or short-lived peer certificates issued by an
//! org's existing CAs, and CRLs revoking members.

use super::certs::{LeafKind, ca_again, new_crl, new_leaf};
use super::{TestOrg, TestPeer, TestPkiError};
use gossip_core::crypto::identity::Certificate;

impl TestOrg {
    /// A peer certificate (enrollment `OU=peer` and TLS) for `name`, issued by this org's CAs,
    /// valid from an hour before `now_unix_s` until `now_unix_s + validity_s`: a renewal of an
    /// existing peer when `name` is its name, or a short-lived certificate.
    pub fn issue_peer(
        &self,
        name: &str,
        now_unix_s: i64,
        validity_s: i64,
    ) -> Result<TestPeer, TestPkiError> {
        let ca = ca_again(&self.domain, &format!("ca.{}", self.domain), &self.ca)?;
        let tls_ca = ca_again(
            &self.domain,
            &format!("tlsca.{}", self.domain),
            &self.tls_ca,
        )?;
        let kind = LeafKind::Enrollment("peer");
        Ok(TestPeer {
            name: name.to_owned(),
            mspid: self.mspid.clone(),
            enrollment: new_leaf(&ca, &self.domain, name, kind, now_unix_s, validity_s)?,
            tls: new_leaf(
                &tls_ca,
                &self.domain,
                name,
                LeafKind::Tls,
                now_unix_s,
                validity_s,
            )?,
        })
    }

    /// A CRL (PEM) signed by this org's enrollment CA, issued at `now_unix_s`, revoking the
    /// enrollment certificates of `revoked`.
    pub fn crl_pem(&self, revoked: &[&TestPeer], now_unix_s: i64) -> Result<String, TestPkiError> {
        let ca = ca_again(&self.domain, &format!("ca.{}", self.domain), &self.ca)?;
        let serials = revoked
            .iter()
            .map(|p| Certificate::from_pem(p.enrollment.cert_pem.as_bytes()).map(|c| c.serial))
            .collect::<Result<Vec<_>, _>>()?;
        let serials: Vec<&[u8]> = serials.iter().map(|s| &s[..]).collect();
        new_crl(&ca, &serials, now_unix_s)
    }
}
