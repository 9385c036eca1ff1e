//! Starting the gossip instance from a loaded config, fanning its events out to control
//! subscribers, and waiting for SIGTERM, SIGINT or the `shutdown` op.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow};
use gossip_engine::crypto::MspManager;
use gossip_engine::event::Event;
use gossip_engine::ingress::{BlockVerifier, OrdererBlockPolicy};
use gossip_engine::ledger::Ledger;
use gossip_engine::types::PkiId;
use gossip_engine::{
    CommSettings, GossipHandle, GossipParams, NodeSettings, StartOptions, TlsMaterial,
    TransmitFilter, clock,
};
use gossip_node::NodeConfig;
use gossip_node::block::SignedBlockBuilder;
use gossip_node::control;
use gossip_node::fault::DropFilter;
use gossip_node::ledger::RedbLedger;
use gossip_node::logspec::LiveLogSpec;
use gossip_node::material::Material;
use gossip_node::ops::{self, OpsContext, health};
use gossip_node::orderer::OrdererMaterial;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use super::control::{Ctl, RuntimeInfo, Subscribers, serve, stopped};

/// What the command line adds to the config.
#[derive(Debug)]
pub struct RunOptions {
    /// `--control-addr`.
    pub control_addr: Option<SocketAddr>,
    /// `--fault-drop-share` with `--fault-seed`, when `--enable-fault-hooks`.
    pub fault: Option<(f64, u64)>,
    /// The threads the node runs on.
    pub runtime: RuntimeInfo,
    /// `--exit-on-stdin-eof`: stop when standard input reaches end of file.
    pub exit_on_stdin_eof: bool,
    /// `--orderer-msp` and `--orderer-signer`.
    pub orderer: OrdererMaterial,
    /// `--orderer-signatures-required`.
    pub orderer_signatures_required: usize,
    /// The log filter, for the operations endpoint's `/logspec`.
    pub log_spec: Option<Arc<LiveLogSpec>>,
    /// The `--org-msp` folders, read again on SIGHUP (with `peer.mspConfigPath`).
    pub org_msps: Vec<(String, std::path::PathBuf)>,
}

async fn resolve(key: &str, addr: &str) -> Result<SocketAddr> {
    tokio::net::lookup_host(addr)
        .await
        .with_context(|| format!("{key} = {addr}: cannot resolve"))?
        .next()
        .ok_or_else(|| anyhow!("{key} = {addr}: resolves to no address"))
}

/// The block validation policy of `--orderer-msp` (none without orderer orgs), said in the log.
fn block_policy(opts: &RunOptions, skip: bool) -> Option<Arc<dyn BlockVerifier>> {
    let orgs: Vec<&str> = opts.orderer.msps.iter().map(|o| o.mspid.as_str()).collect();
    let required = opts.orderer_signatures_required;
    match (orgs.is_empty(), skip) {
        (true, _) => {
            tracing::warn!(target: "gossip-node", "no --orderer-msp: blocks are not authenticated (only their number and data hash are checked)");
            None
        }
        (false, true) => {
            tracing::warn!(target: "gossip-node", ?orgs, "peer.gossip.skipBlockVerification is true: blocks are not authenticated");
            None
        }
        (false, false) => {
            tracing::info!(target: "gossip-node", ?orgs, required, "blocks are authenticated: orderer signatures of these orgs");
            let mut orderers = MspManager::new();
            for org in &opts.orderer.msps {
                orderers.add_org(org.clone());
            }
            Some(Arc::new(OrdererBlockPolicy::new(orderers, required)))
        }
    }
}

/// Opens the ledger under `peer.fileSystemPath` (a repair after an unclean stop may take a while,
/// so off the runtime's threads).
async fn open_ledger(cfg: &NodeConfig) -> Result<Arc<RedbLedger>> {
    let dir = cfg.file_system_path.clone();
    let ledger = tokio::task::spawn_blocking(move || RedbLedger::open(&dir))
        .await
        .context("opening the ledger")?
        .context("peer.fileSystemPath")?;
    tracing::info!(target: "gossip-node", path = %ledger.path().display(), "ledger open");
    Ok(Arc::new(ledger))
}

/// Runs the node until it is told to stop.
pub async fn run(cfg: NodeConfig, material: Material, opts: RunOptions) -> Result<()> {
    let listen = resolve("peer.listenAddress", &cfg.listen_addr).await?;
    let ledger = open_ledger(&cfg).await?;
    let signer = Arc::new(material.signer);
    let pki_id = signer.pki_id();
    let params = GossipParams {
        comm: CommSettings {
            config: cfg.comm.clone(),
            listen,
            tls: material.tls.map(|t| TlsMaterial {
                cert_chain_pem: t.cert_chain_pem,
                key_pem: t.key_pem,
            }),
        },
        node: NodeSettings {
            config: cfg.gossip.clone(),
            external_endpoint: cfg.external_endpoint.clone(),
            internal_endpoint: cfg.internal_endpoint.clone(),
            bootstrap: cfg.bootstrap.clone(),
            rng_seed: clock::now().as_nanos() ^ u64::from(std::process::id()),
        },
        signer,
        msp: Arc::new(material.msp),
        ingress: GossipParams::ingress_config(),
    };
    let mut fault_dropped = None;
    let filter: Option<TransmitFilter> = match opts.fault {
        None => None,
        Some((share, seed)) => {
            let mut f = DropFilter::new(share, seed)?;
            fault_dropped = Some(f.dropped_counter());
            tracing::warn!(target: "gossip-node", share, seed, "fault hook on: dropping outgoing messages");
            Some(Box::new(move |_| f.keep()))
        }
    };
    let block_verifier = block_policy(&opts, cfg.gossip.skip_block_verification);
    let handle = GossipHandle::start_with(
        params,
        StartOptions {
            transmit_filter: filter,
            block_verifier,
            ledger: Some(Arc::clone(&ledger) as Arc<dyn Ledger>),
        },
    )
    .await
    .with_context(|| format!("starting gossip on {listen}"))?;
    tracing::info!(
        target: "gossip-node",
        peer_id = %cfg.peer_id, %pki_id, listen = %handle.local_addr(),
        endpoint = %cfg.internal_endpoint, external = %cfg.external_endpoint,
        bootstrap = ?cfg.bootstrap, tls = cfg.tls.is_some(),
        "gossip-node started"
    );
    let orderer_orgs: Vec<&str> = opts.orderer.msps.iter().map(|o| o.mspid.as_str()).collect();
    let block_signer = opts.orderer.signer.map(|signer| {
        tracing::info!(
            target: "gossip-node", mspid = %signer.identity().mspid, pki_id = %signer.pki_id(),
            ?orderer_orgs, "inject_block builds blocks signed by the --orderer-signer identity"
        );
        parking_lot::Mutex::new(SignedBlockBuilder::new(signer))
    });
    let subscribers = Arc::new(Subscribers::default());
    let events = handle.events().context("subscribing to events")?;
    let event_task = tokio::spawn(fan_out(events, Arc::clone(&subscribers)));
    let (shutdown, _) = watch::channel(false);
    let ops_server = ops::start(
        &cfg.operations,
        OpsContext {
            handle: handle.clone(),
            log_spec: opts.log_spec.clone(),
            metrics: cfg.operations.metrics_provider,
            ledger_lag_max_blocks: health::ledger_lag_max_blocks(cfg.gossip.state_block_buffer_len),
            fault_dropped: fault_dropped.clone(),
            has_bootstrap_peers: !cfg.bootstrap.is_empty(),
        },
        shutdown.subscribe(),
    )
    .await;
    let ops_server = match ops_server {
        Ok(s) => s,
        Err(e) => {
            handle.stop().await;
            return Err(e.into());
        }
    };
    match &ops_server {
        Some(s) => tracing::info!(
            target: "gossip-node", addr = %s.local_addr(), tls = cfg.operations.tls.is_some(),
            metrics = ?cfg.operations.metrics_provider, "operations endpoint"
        ),
        None => {
            tracing::info!(target: "gossip-node", "operations.listenAddress is empty: no operations endpoint")
        }
    }
    let ctl = Arc::new(Ctl {
        handle: handle.clone(),
        subscribers,
        fault_dropped,
        shutdown,
        runtime: opts.runtime,
        block_signer,
        ledger: Arc::clone(&ledger) as Arc<dyn Ledger>,
    });
    let control_task = match opts.control_addr {
        None => None,
        Some(addr) => {
            let listener = TcpListener::bind(addr)
                .await
                .with_context(|| format!("--control-addr {addr}: cannot listen"))?;
            tracing::info!(target: "gossip-node", addr = %listener.local_addr().unwrap_or(addr), "control listener");
            Some(tokio::spawn(serve(listener, Arc::clone(&ctl))))
        }
    };
    if opts.exit_on_stdin_eof {
        watch_stdin(ctl.shutdown.clone());
    }
    crate::reload::spawn(handle.clone(), cfg.clone(), opts.org_msps.clone());
    wait_for_stop(&ctl).await;
    let _ = ctl.shutdown.send(true);
    // Blocks delivered before the stop are committed before it returns.
    handle.stop().await;
    let _ = event_task.await;
    if let Some(t) = control_task {
        let _ = t.await;
    }
    if let Some(s) = ops_server {
        s.join().await;
    }
    tracing::info!(target: "gossip-node", "stopped");
    Ok(())
}

/// Stops the node once standard input reaches end of file: a launcher that holds the pipe's other
/// end takes its nodes with it however it ends, SIGKILL included. The read blocks, so it runs on a
/// small thread of its own.
fn watch_stdin(shutdown: watch::Sender<bool>) {
    let spawned = std::thread::Builder::new()
        .name("stdin-watch".into())
        .stack_size(64 * 1024)
        .spawn(move || {
            let mut sink = [0u8; 256];
            let mut stdin = std::io::stdin().lock();
            loop {
                match std::io::Read::read(&mut stdin, &mut sink) {
                    Ok(0) => break,
                    Ok(_) => continue,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        tracing::warn!(target: "gossip-node", error = %e, "reading stdin failed: stopping");
                        break;
                    }
                }
            }
            tracing::info!(target: "gossip-node", "stdin closed: stopping");
            let _ = shutdown.send(true);
        });
    if let Err(e) = spawned {
        tracing::warn!(target: "gossip-node", error = %e, "cannot watch stdin; --exit-on-stdin-eof has no effect");
    }
}

async fn wait_for_stop(ctl: &Ctl) {
    let mut stop = ctl.shutdown.subscribe();
    let sigterm = async {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            match signal(SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(e) => {
                    tracing::warn!(target: "gossip-node", error = %e, "no SIGTERM handler");
                    std::future::pending::<()>().await;
                }
            }
        }
        #[cfg(not(unix))]
        std::future::pending::<()>().await;
    };
    tokio::select! {
        _ = sigterm => tracing::info!(target: "gossip-node", "SIGTERM: stopping"),
        r = tokio::signal::ctrl_c() => match r {
            Ok(()) => tracing::info!(target: "gossip-node", "SIGINT: stopping"),
            Err(e) => tracing::warn!(target: "gossip-node", error = %e, "SIGINT handler failed: stopping"),
        },
        _ = stopped(&mut stop) => {}
    }
}

/// Turns node events into control event lines: blocks, and membership counts on each change.
/// (Committing blocks and publishing the ledger height is the driver's: `StartOptions::ledger`.)
async fn fan_out(mut events: mpsc::Receiver<Event>, subscribers: Arc<Subscribers>) {
    let mut alive: BTreeSet<PkiId> = BTreeSet::new();
    let mut dead: BTreeSet<PkiId> = BTreeSet::new();
    while let Some(event) = events.recv().await {
        let line = match event {
            Event::Block {
                channel,
                payload,
                from,
            } => control::block_event(
                "block",
                &channel,
                payload.seq_num,
                from.map(|p| p.to_string()),
                None,
                control::block_data_len(&payload.data),
                clock::now().as_nanos(),
            ),
            Event::BlockReceived {
                channel,
                seq_num,
                from,
                size_bytes,
                via,
            } => control::block_event(
                "block_received",
                &channel,
                seq_num,
                Some(from.to_string()),
                Some(via.as_str()),
                size_bytes,
                clock::now().as_nanos(),
            ),
            Event::MemberAlive(m) => {
                dead.remove(&m.pki_id);
                if !alive.insert(m.pki_id) {
                    continue;
                }
                control::membership_event(alive.len(), dead.len())
            }
            Event::MemberDead(p) => {
                alive.remove(&p);
                dead.insert(p);
                control::membership_event(alive.len(), dead.len())
            }
            Event::MemberPurged(p) => {
                if !(alive.remove(&p) | dead.remove(&p)) {
                    continue;
                }
                control::membership_event(alive.len(), dead.len())
            }
            Event::LeadershipChanged { channel, leader } => {
                tracing::info!(
                    target: "gossip.election",
                    channel = %String::from_utf8_lossy(&channel),
                    leader,
                    "{}", if leader { "Becoming a leader" } else { "Stopped being a leader" }
                );
                control::leadership_event(&channel, leader, clock::now().as_nanos())
            }
            _ => continue,
        };
        // No subscriber is fine: the line is just not wanted.
        subscribers.publish(line.into());
    }
}
