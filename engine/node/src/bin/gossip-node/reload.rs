//! SIGHUP: re-read the MSP folders (`peer.mspConfigPath` and every `--org-msp`), as Fabric's MSP
//! is set up again on a config update, so that a CRL dropped into an MSP folder's `crls/` takes
//! effect without a restart. Identities that no longer validate (revoked, expired) are removed and
//! their peers cut off ([`GossipHandle::replace_msp`]). A folder that fails to load leaves the
//! MSPs in use as they were (logged). Our own signing identity and the TLS trust roots are not
//! reloaded: a renewed certificate of this peer needs a restart (a new PKI-ID).

use std::path::PathBuf;

use gossip_engine::handle::GossipHandle;
use gossip_node::NodeConfig;
use gossip_node::material;

/// Spawns the SIGHUP watcher (nothing on non-Unix systems).
pub fn spawn(handle: GossipHandle, cfg: NodeConfig, org_msps: Vec<(String, PathBuf)>) {
    #[cfg(unix)]
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangups = match signal(SignalKind::hangup()) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(target: "gossip-node", error = %e, "no SIGHUP handler: CRLs are read at start only");
                return;
            }
        };
        while hangups.recv().await.is_some() {
            reload(&handle, &cfg, &org_msps).await;
        }
    });
    #[cfg(not(unix))]
    drop((handle, cfg, org_msps));
}

async fn reload(handle: &GossipHandle, cfg: &NodeConfig, org_msps: &[(String, PathBuf)]) {
    let loaded = match material::load(cfg, org_msps) {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(target: "gossip-node", error = %e, "SIGHUP: MSP folders not reloaded; the MSPs in use stay");
            return;
        }
    };
    let crls: usize = loaded.msp.orgs().map(|o| o.crls.len()).sum();
    match handle.replace_msp(loaded.msp).await {
        Ok(cut_off) => {
            tracing::info!(target: "gossip-node", crls, cut_off = cut_off.len(), "SIGHUP: MSP folders reloaded");
            for pki_id in cut_off {
                tracing::warn!(target: "gossip.identity", %pki_id,
                    "identity no longer valid (revoked or expired): purged, its member cut off and its connection closed");
            }
        }
        Err(e) => tracing::warn!(target: "gossip-node", error = %e, "SIGHUP: reload refused"),
    }
}
