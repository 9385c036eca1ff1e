//! The disclosure policy (spec 2.4): which alive messages a remote of another org may see, and
//! the envelope filter that keeps internal endpoints inside the org.

use gossip_proto::gossip::Envelope;

/// Whether an alive message about a peer of `subject_org` publishing `subject_external` may be
/// disclosed to a remote of `remote_org` publishing `remote_external`. A subject whose org is
/// unknown is never disclosed.
pub fn sieve(
    my_org: &str,
    subject_org: Option<&str>,
    subject_external: &str,
    remote_org: &str,
    remote_external: &str,
) -> bool {
    let Some(subject_org) = subject_org else {
        return false;
    };
    let same_as_remote = subject_org == remote_org;
    // Same org as the remote: always. Otherwise only my org's peers, and only when both sides
    // publish an external endpoint.
    same_as_remote
        || (subject_org == my_org && !subject_external.is_empty() && !remote_external.is_empty())
}

/// The envelope as a remote of `remote_org` may receive it: the secret envelope (internal
/// endpoint) is stripped unless the remote is of my org. An unknown org is treated as foreign
/// (Fabric leaves the envelope unchanged there; we never let the secret out of the org).
pub fn envelope_for(envelope: &Envelope, my_org: &str, remote_org: Option<&str>) -> Envelope {
    if remote_org == Some(my_org) || envelope.secret_envelope.is_none() {
        return envelope.clone();
    }
    Envelope {
        payload: envelope.payload.clone(),
        signature: envelope.signature.clone(),
        secret_envelope: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sieve_table() {
        // (subject org, subject external, remote org, remote external, disclosed)
        let cases = [
            (Some("A"), "", "A", "", true),
            (Some("A"), "x:1", "B", "y:1", true),
            (Some("A"), "", "B", "y:1", false),
            (Some("A"), "x:1", "B", "", false),
            (Some("B"), "", "B", "", true),
            (Some("C"), "x:1", "B", "y:1", false),
            (None, "x:1", "A", "y:1", false),
        ];
        for (i, (so, se, ro, re, want)) in cases.into_iter().enumerate() {
            assert_eq!(sieve("A", so, se, ro, re), want, "case {i}");
        }
    }

    #[test]
    fn filter_strips_secret_outside_the_org() {
        let env = Envelope {
            payload: vec![1].into(),
            signature: vec![2].into(),
            secret_envelope: Some(Default::default()),
        };
        assert!(envelope_for(&env, "A", Some("A")).secret_envelope.is_some());
        assert!(envelope_for(&env, "A", Some("B")).secret_envelope.is_none());
        assert!(envelope_for(&env, "A", None).secret_envelope.is_none());
        assert_eq!(envelope_for(&env, "A", Some("B")).payload, env.payload);
    }
}
