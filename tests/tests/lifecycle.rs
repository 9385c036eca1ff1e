//! The identity lifecycle and LeaveChan on the simulator, each over 200 seeds (issue 21 items 3
//! and 4): Fabric's TestIdentityExpiration (expiry and CRL revocation), TestCertificateChange and
//! TestLeaveChannel. A failing seed is printed; `SIM_SEED=<seed>` runs that one alone.

use gossip_harness::lifecycle;

const SEEDS: std::ops::Range<u64> = 0..200;

fn over_seeds(name: &str, run: fn(u64) -> Result<(), String>) {
    let seeds: Vec<u64> = match std::env::var("SIM_SEED").ok().and_then(|s| s.parse().ok()) {
        Some(seed) => vec![seed],
        None => SEEDS.collect(),
    };
    let failed: Vec<String> = seeds
        .into_iter()
        .filter_map(|seed| {
            run(seed)
                .err()
                .map(|e| format!("SIM FAILED seed={seed} scenario={name}: {e}"))
        })
        .collect();
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

#[test]
fn identity_expiration() {
    over_seeds("identity-expiration", lifecycle::identity_expiration);
}

#[test]
fn identity_revocation() {
    over_seeds("identity-revocation", lifecycle::revocation);
}

#[test]
fn certificate_change() {
    over_seeds("certificate-change", lifecycle::certificate_change);
}

#[test]
fn leave_channel() {
    over_seeds("leave-channel", lifecycle::leave_channel);
}
