//! Leader election in a scenario: whether it is on (`[gossip] useLeaderElection = true`), the
//! leader kills of `[faults]`, and their validation.
//!
//! With election on, loadgen does not choose injectors: it delivers every block, as the
//! orderer's deliver service would, to whichever node is its org's elected leader
//! ([`crate::measure::leader`]), and no node is written `orgLeader: true`.

use serde::{Deserialize, Serialize};

use super::limits::DURATION_MAX;
use super::{Injectors, Scenario, ScenarioError};

/// `[[faults.leader_kills]]`: SIGKILL whichever node is the elected leader of org `org` on the
/// scenario's first channel at `at_s`, and restart it after `restart_after_s` (never, when
/// absent). Needs election on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeaderKill {
    /// The org (0-based, as node `k` is in org `k % orgs`).
    pub org: usize,
    /// Seconds after the first scheduled block.
    pub at_s: f64,
    /// Restart delay in seconds; absent means the node stays down.
    #[serde(default)]
    pub restart_after_s: Option<f64>,
}

/// The `[gossip]` key that turns election on.
pub const USE_LEADER_ELECTION_KEY: &str = "useLeaderElection";

impl Scenario {
    /// Whether the nodes run leader election (`[gossip] useLeaderElection = true`).
    pub fn leader_election(&self) -> bool {
        matches!(
            self.gossip.get(USE_LEADER_ELECTION_KEY),
            Some(toml::Value::Boolean(true))
        )
    }

    /// Checks the election keys and `[[faults.leader_kills]]`.
    pub(super) fn validate_leader(&self) -> Result<(), ScenarioError> {
        let key = |key: &str, value: String, problem: &str| ScenarioError::Key {
            key: key.to_owned(),
            value,
            problem: problem.to_owned(),
        };
        for k in [USE_LEADER_ELECTION_KEY, "orgLeader"] {
            if let Some(v) = self.gossip.get(k)
                && !v.is_bool()
            {
                return Err(key(
                    &format!("gossip.{k}"),
                    v.to_string(),
                    "must be true or false",
                ));
            }
        }
        let election = self.leader_election();
        if election {
            if self.gossip.get("orgLeader") == Some(&toml::Value::Boolean(true)) {
                return Err(key(
                    "gossip.orgLeader",
                    "true".into(),
                    "cannot be set together with gossip.useLeaderElection = true (Fabric refuses both at start-up): leave orgLeader out, loadgen writes false",
                ));
            }
            if let Some(list) = &self.injector_nodes {
                return Err(key(
                    "injector_nodes",
                    format!("{list:?}"),
                    "cannot be set with gossip.useLeaderElection = true: loadgen delivers every block to each org's elected leader",
                ));
            }
            if self.injectors != Injectors::PerOrg {
                return Err(key(
                    "injectors",
                    "\"single\"".into(),
                    "cannot be set with gossip.useLeaderElection = true: loadgen delivers every block to each org's elected leader",
                ));
            }
        }
        let max_s = DURATION_MAX.as_secs_f64();
        for lk in &self.faults.leader_kills {
            if !election {
                return Err(key(
                    "faults.leader_kills",
                    format!("{{ org = {}, at_s = {} }}", lk.org, lk.at_s),
                    "needs [gossip] useLeaderElection = true (without election there is no elected leader to kill; use faults.kills)",
                ));
            }
            if lk.org >= self.orgs {
                return Err(key(
                    "faults.leader_kills.org",
                    lk.org.to_string(),
                    &format!("must be below orgs = {}", self.orgs),
                ));
            }
            let mut times = vec![("faults.leader_kills.at_s", lk.at_s)];
            times.extend(
                lk.restart_after_s
                    .map(|r| ("faults.leader_kills.restart_after_s", r)),
            );
            for (k, s) in times {
                if !(s >= 0.0 && s <= max_s) {
                    return Err(key(
                        k,
                        s.to_string(),
                        &format!("must be in [0, {max_s}] seconds"),
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        Scenario::from_toml(text).expect_err("invalid").to_string()
    }

    const ON: &str = "[gossip]\nuseLeaderElection = true\n";

    #[test]
    fn election_is_read_from_the_gossip_table() {
        assert!(!Scenario::default().leader_election());
        let s = Scenario::from_toml(ON).expect("valid");
        assert!(s.leader_election());
        assert!(s.injector_nodes().is_empty(), "no fixed injectors");
        let off = Scenario::from_toml("[gossip]\nuseLeaderElection = false\n").expect("valid");
        assert!(!off.leader_election());
        assert_eq!(off.injector_nodes(), vec![0, 1]);
    }

    #[test]
    fn leader_kills_parse_and_are_validated_naming_the_key() {
        let s = Scenario::from_toml(&format!(
            "orgs = 1\n{ON}[[faults.leader_kills]]\norg = 0\nat_s = 5\nrestart_after_s = 20\n"
        ))
        .expect("valid");
        assert_eq!(
            s.faults.leader_kills,
            vec![LeaderKill {
                org: 0,
                at_s: 5.0,
                restart_after_s: Some(20.0)
            }]
        );
        let e = err("[[faults.leader_kills]]\norg = 0\nat_s = 5\n");
        assert!(
            e.contains("faults.leader_kills") && e.contains("useLeaderElection"),
            "{e}"
        );
        let e = err(&format!(
            "orgs = 2\n{ON}[[faults.leader_kills]]\norg = 2\nat_s = 5\n"
        ));
        assert!(e.contains("faults.leader_kills.org"), "{e}");
        let e = err(&format!(
            "{ON}[[faults.leader_kills]]\norg = 0\nat_s = -1\n"
        ));
        assert!(e.contains("faults.leader_kills.at_s"), "{e}");
        let e = err(&format!(
            "{ON}[[faults.leader_kills]]\norg = 0\nat_s = 1\nrestart_after_s = -2\n"
        ));
        assert!(e.contains("faults.leader_kills.restart_after_s"), "{e}");
        let e = err(&format!(
            "{ON}[[faults.leader_kills]]\norg = 0\nat_s = 1\nnode = 3\n"
        ));
        assert!(e.contains("node"), "unknown key named: {e}");
    }

    #[test]
    fn election_conflicts_name_the_key() {
        let e = err(&format!("{ON}orgLeader = true\n"));
        assert!(e.contains("gossip.orgLeader"), "{e}");
        let e = err(&format!("injector_nodes = [0]\n{ON}"));
        assert!(e.contains("\"injector_nodes\""), "{e}");
        let e = err(&format!("injectors = \"single\"\n{ON}"));
        assert!(e.contains("\"injectors\""), "{e}");
        let e = err("[gossip]\nuseLeaderElection = \"yes\"\n");
        assert!(e.contains("gossip.useLeaderElection"), "{e}");
        Scenario::from_toml(&format!("{ON}orgLeader = false\n")).expect("explicit false is fine");
    }
}
