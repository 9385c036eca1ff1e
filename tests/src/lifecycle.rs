//! The identity lifecycle and LeaveChan on the simulator (issue 21 items 3 and 4; Fabric's
//! TestIdentityExpiration, TestCertificateChange, TestLeaveChannel), with the lifecycle fixture
//! ([`crate::pki::LIFECYCLE_ORG`]): four peers of `Org5MSP` bootstrapping to node 0, joined to
//! one channel, on a lossy link (5 %: what one push misses, pull and the next rounds repair).
//!
//! Each function runs one seed and returns what went wrong; `tests/tests/lifecycle.rs` runs them
//! over many seeds. They read the engine's node directly (membership, PeersOfChannel, counters)
//! rather than the scenario DSL, whose steps know nothing of certificates.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use gossip_engine::event::{ChannelConfig, Command};
use gossip_engine::types::{OrgId, PkiId};

use crate::engine::EngineNode;
use crate::fabric::fast_gossip;
use crate::faults::LinkConfig;
use crate::pki::{LIFECYCLE_ORG, RENEWED, REVOKED, SHORT_LIVED, SHORT_VALIDITY_S, SimPki};
use crate::sim::{PeerSpec, Sim, SimConfig};

/// The channel every node joins.
pub const CHANNEL: &[u8] = b"lifecycle";
/// Loss on every link.
pub const LOSS: f64 = 0.05;

const NODES: usize = 4;
/// The node whose identity changes (expires, is revoked, is renewed, leaves).
const SUBJECT: usize = 3;

/// Four nodes; node [`SUBJECT`] runs as fixture peer `subject_peer` of the lifecycle org.
fn start(seed: u64, subject_peer: usize) -> Sim<EngineNode> {
    let peers = (0..NODES)
        .map(|i| PeerSpec {
            org: LIFECYCLE_ORG,
            peer: if i == SUBJECT { subject_peer } else { i },
            external: false,
            bootstrap: if i == 0 { Vec::new() } else { vec![0] },
        })
        .collect();
    let mut sim = Sim::new(SimConfig {
        seed,
        peers,
        gossip: fast_gossip(),
        link: LinkConfig::lossy(LOSS),
    });
    let mspid = SimPki::get()
        .signer(LIFECYCLE_ORG, 0)
        .identity()
        .mspid
        .clone();
    for i in 0..NODES {
        sim.command_in(Duration::ZERO, i, join(&mspid));
    }
    sim
}

fn join(mspid: &str) -> Command {
    Command::JoinChan(ChannelConfig {
        channel: Bytes::from_static(CHANNEL),
        sequence: 1,
        orgs: vec![(OrgId::from(mspid), Vec::new())],
    })
}

fn alive(sim: &Sim<EngineNode>, i: usize) -> Vec<PkiId> {
    sim.node(i)
        .map(|n| n.peers().iter().map(|m| m.pki_id).collect())
        .unwrap_or_default()
}

fn dead(sim: &Sim<EngineNode>, i: usize) -> Vec<PkiId> {
    sim.node(i)
        .map(|n| n.dead_peers().iter().map(|m| m.pki_id).collect())
        .unwrap_or_default()
}

fn in_channel(sim: &Sim<EngineNode>, i: usize) -> Vec<PkiId> {
    sim.node(i)
        .map(|n| {
            n.peers_of_channel(CHANNEL)
                .iter()
                .map(|(m, _)| m.pki_id)
                .collect()
        })
        .unwrap_or_default()
}

/// Every node sees every other alive and in the channel.
fn converged(sim: &Sim<EngineNode>) -> bool {
    (0..NODES).all(|i| {
        let (a, c) = (alive(sim, i), in_channel(sim, i));
        (0..NODES)
            .filter(|&j| j != i)
            .all(|j| a.contains(&sim.pki_id(j)) && c.contains(&sim.pki_id(j)))
    })
}

/// Node `i` knows nothing of `gone`: not alive, not dead, not in the channel.
fn forgot(sim: &Sim<EngineNode>, i: usize, gone: &PkiId) -> bool {
    !alive(sim, i).contains(gone)
        && !dead(sim, i).contains(gone)
        && !in_channel(sim, i).contains(gone)
}

/// The simulator's invariants held (only verified messages delivered, no leak, in-order
/// commit, ...).
fn no_violations(sim: &mut Sim<EngineNode>) -> Result<(), String> {
    let violations = sim.finish();
    if violations.is_empty() {
        Ok(())
    } else {
        Err(format!("violations: {violations:?}"))
    }
}

fn await_converged(sim: &mut Sim<EngineNode>, within: Duration) -> Result<(), String> {
    if sim.run_until(within, Duration::from_millis(500), converged) {
        Ok(())
    } else {
        Err(format!("not converged after {:?}", sim.elapsed()))
    }
}

/// The others (not [`SUBJECT`]) forgot `gone` and closed their connection to it.
fn cut_off_everywhere(sim: &Sim<EngineNode>, gone: &PkiId, what: &str) -> Result<(), String> {
    for i in (0..NODES).filter(|&i| i != SUBJECT) {
        if !forgot(sim, i, gone) {
            return Err(format!(
                "{what}: node {i} still knows it at {:?} (alive {}, dead {}, in channel {})",
                sim.elapsed(),
                alive(sim, i).contains(gone),
                dead(sim, i).contains(gone),
                in_channel(sim, i).contains(gone),
            ));
        }
        if !sim.stats().conns_closed.contains(&(i, *gone)) {
            return Err(format!("{what}: node {i} never closed its connection"));
        }
    }
    Ok(())
}

/// The others still see each other, and the channel still works among them.
fn others_converged(sim: &Sim<EngineNode>, gone: &PkiId) -> Result<(), String> {
    for i in (0..NODES).filter(|&i| i != SUBJECT) {
        let (a, c) = (alive(sim, i), in_channel(sim, i));
        for j in (0..NODES).filter(|&j| j != i && j != SUBJECT) {
            let p = sim.pki_id(j);
            if !a.contains(&p) || !c.contains(&p) {
                return Err(format!("node {i} lost node {j} (cutting off {gone})"));
            }
        }
    }
    Ok(())
}

/// TestIdentityExpiration: node 3's certificate ends [`SHORT_VALIDITY_S`] after the start; once
/// its NotAfter second has passed every other node has purged it (membership, channel) and
/// closed its connection, and it is never learnt again although it keeps sending.
pub fn identity_expiration(seed: u64) -> Result<(), String> {
    let mut sim = start(seed, SHORT_LIVED);
    let gone = sim.pki_id(SUBJECT);
    await_converged(&mut sim, Duration::from_secs(60))?;
    let expiry = Duration::from_secs(SHORT_VALIDITY_S as u64);
    sim.run_for(expiry.saturating_sub(sim.elapsed()));
    if (0..SUBJECT).any(|i| !alive(&sim, i).contains(&gone)) {
        return Err("cut off before its NotAfter".into());
    }
    // The first instant past the NotAfter second.
    sim.run_for(Duration::from_millis(1_001));
    cut_off_everywhere(&sim, &gone, "expired")?;
    sim.run_for(Duration::from_secs(30));
    cut_off_everywhere(&sim, &gone, "expired, 30 s on")?;
    others_converged(&sim, &gone)?;
    no_violations(&mut sim)
}

/// Revocation: a CRL revoking node 3's certificate reaches every node (an MSP reload); every
/// other node cuts it off at once and refuses it from then on.
pub fn revocation(seed: u64) -> Result<(), String> {
    let mut sim = start(seed, REVOKED);
    let gone = sim.pki_id(SUBJECT);
    await_converged(&mut sim, Duration::from_secs(60))?;
    sim.run_for(Duration::from_secs(3));
    sim.replace_msp_now(Arc::clone(&SimPki::get().msp_revoking));
    cut_off_everywhere(&sim, &gone, "revoked")?;
    sim.run_for(Duration::from_secs(30));
    cut_off_everywhere(&sim, &gone, "revoked, 30 s on")?;
    others_converged(&sim, &gone)?;
    no_violations(&mut sim)
}

/// TestCertificateChange: node 3 restarts with a renewed certificate (new PKI-ID, same
/// endpoint). Every other node learns the new PKI-ID and forgets the old one, in membership and
/// in the channel, before the old one would even have been declared dead.
pub fn certificate_change(seed: u64) -> Result<(), String> {
    let mut sim = start(seed, REVOKED);
    let old = sim.pki_id(SUBJECT);
    await_converged(&mut sim, Duration::from_secs(60))?;
    let renewed_at = sim.elapsed();
    sim.renew_now(SUBJECT, SimPki::get().signer(LIFECYCLE_ORG, RENEWED));
    let new = sim.pki_id(SUBJECT);
    let done = |s: &Sim<EngineNode>| converged(s) && (0..SUBJECT).all(|i| forgot(s, i, &old));
    // Dead after 5 s of silence (`fast_gossip`): replaced within it.
    let alive_expiration = fast_gossip().alive_expiration_timeout;
    if !sim.run_until(alive_expiration, Duration::from_millis(100), done) {
        let late = (0..SUBJECT)
            .map(|i| {
                format!(
                    "node {i}: new alive {} in channel {}, old alive {} dead {} in channel {}",
                    alive(&sim, i).contains(&new),
                    in_channel(&sim, i).contains(&new),
                    alive(&sim, i).contains(&old),
                    dead(&sim, i).contains(&old),
                    in_channel(&sim, i).contains(&old)
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        return Err(format!(
            "renewal at {renewed_at:?} not taken within {alive_expiration:?}: {late}"
        ));
    }
    for i in 0..SUBJECT {
        if !sim.stats().conns_closed.contains(&(i, old)) {
            return Err(format!(
                "node {i} never closed its connection to the old PKI-ID"
            ));
        }
    }
    // Stale alive messages of the old incarnation still in flight do not bring it back.
    sim.run_for(Duration::from_secs(30));
    if !converged(&sim) || (0..SUBJECT).any(|i| !forgot(&sim, i, &old)) {
        return Err("the old PKI-ID came back".into());
    }
    no_violations(&mut sim)
}

/// TestLeaveChannel: node 3 leaves the channel; it drops out of everyone's PeersOfChannel (its
/// own is empty) but stays a member, and it stops pulling blocks for the channel.
pub fn leave_channel(seed: u64) -> Result<(), String> {
    let mut sim = start(seed, REVOKED);
    let leaver = sim.pki_id(SUBJECT);
    await_converged(&mut sim, Duration::from_secs(60))?;
    sim.command_in(
        Duration::ZERO,
        SUBJECT,
        Command::LeaveChan(Bytes::from_static(CHANNEL)),
    );
    let left = |s: &Sim<EngineNode>| {
        (0..SUBJECT).all(|i| !in_channel(s, i).contains(&leaver))
            && in_channel(s, SUBJECT).is_empty()
    };
    if !sim.run_until(Duration::from_secs(20), Duration::from_millis(250), left) {
        return Err("the leaver is still listed in PeersOfChannel".into());
    }
    let pulled = |s: &Sim<EngineNode>| s.node(SUBJECT).map(|n| n.stats().pull.rounds);
    let before = pulled(&sim);
    sim.run_for(Duration::from_secs(20));
    if pulled(&sim) != before {
        return Err("the leaver still starts block pull rounds".into());
    }
    for i in 0..SUBJECT {
        if !alive(&sim, i).contains(&leaver) {
            return Err(format!("node {i} lost the leaver as a member"));
        }
        if in_channel(&sim, i).contains(&leaver) {
            return Err(format!("node {i} lists the leaver again"));
        }
    }
    no_violations(&mut sim)
}
