//! `gossip-node`: one Fabric gossip peer process.
//!
//! Reads an unmodified Fabric `core.yaml` (`--config FILE`, else `$FABRIC_CFG_PATH/core.yaml`)
//! with `CORE_*` environment overrides, logs per `FABRIC_LOGGING_SPEC` / `FABRIC_LOGGING_FORMAT`
//! to stderr, serves gossip on `peer.listenAddress`, and optionally a control listener for
//! benchmark drivers (`engine/CONTROL.md`). Commits the blocks it delivers to its ledger under
//! `peer.fileSystemPath` (`engine/node/README.md`). Serves the operations endpoint (`/metrics`,
//! `/healthz`, `/logspec`, `/version`) on `operations.listenAddress` ([`gossip_node::ops`]). Stops cleanly on SIGTERM, SIGINT or the
//! `shutdown` control op (exit 0); exits 2 with a message on configuration errors, 1 on runtime
//! errors (a ledger that cannot be opened among them).

mod alloc;
mod control;
mod logging;
mod reload;
mod run;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Result, bail};
use clap::Parser;
use gossip_engine::clock;
use gossip_node::logspec::LiveLogSpec;
use gossip_node::material::{self, parse_org_msp_arg};
use gossip_node::orderer;
use gossip_node::{NodeConfig, Severity};

/// One Hyperledger Fabric gossip peer (wire-compatible), configured by Fabric's core.yaml.
#[derive(Debug, Parser)]
#[command(name = "gossip-node", version)]
struct Args {
    /// core.yaml to read (default: $FABRIC_CFG_PATH/core.yaml). Relative paths inside it are
    /// resolved against its folder, as Fabric does.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Listen address for gossip; overrides peer.listenAddress.
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// Open the control listener (engine/CONTROL.md) on ADDR (`host:port`, or a bare port on
    /// 127.0.0.1).
    #[arg(long, value_name = "ADDR")]
    control_addr: Option<String>,
    /// Trust another org's MSP folder (cacerts/, intermediatecerts/, tlscacerts/). Repeatable.
    /// A standalone gossip node has no channel config to learn orgs from, so list them here.
    #[arg(long = "org-msp", value_name = "MSPID=DIR")]
    org_msp: Vec<String>,
    /// An orderer org's verifying MSP folder (cacerts/, ...). Repeatable. Every block is then
    /// authenticated as Fabric's VerifyBlock does (its channel, number and data hash, and the
    /// signatures of --orderer-signatures-required distinct members of these orgs) before it is
    /// stored, forwarded or delivered, unless peer.gossip.skipBlockVerification is true. Orderer
    /// orgs are not gossip members. Same flag as fabric-node's strict block verification.
    #[arg(long = "orderer-msp", value_name = "MSPID=DIR")]
    orderer_msp: Vec<String>,
    /// Distinct orderer signatures a block needs (the channel's BlockValidation policy; "ANY
    /// Writers" of the orderer orgs is 1).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=64))]
    orderer_signatures_required: u64,
    /// An orderer member's MSP folder (signcerts/, keystore/): `inject_block` then builds a
    /// Fabric-real block (an ENDORSER_TRANSACTION envelope, orderer-signed metadata) signed by it,
    /// instead of the filler block. Without `MSPID=`, the org is the first among the
    /// --orderer-msp orgs, then the --org-msp orgs and the local org, whose MSP validates the
    /// folder's certificate.
    #[arg(long = "orderer-signer", value_name = "[MSPID=]DIR")]
    orderer_signer: Option<String>,
    /// Allow the fault flags below (benchmarks only).
    #[arg(long)]
    enable_fault_hooks: bool,
    /// Drop this share (0..1) of outgoing messages per link, above the socket.
    #[arg(long, value_name = "SHARE")]
    fault_drop_share: Option<f64>,
    /// Seed of the fault RNG.
    #[arg(long, value_name = "N", default_value_t = 0)]
    fault_seed: u64,
    /// Tokio worker threads. 1 runs everything on the main thread (tokio's current-thread
    /// scheduler: no work stealing, no cross-thread wake-ups), the choice for many nodes on few
    /// cores.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 2,
        env = "GOSSIP_NODE_WORKER_THREADS"
    )]
    worker_threads: usize,
    /// Stop when standard input reaches end of file (for launchers such as loadgen: the node then
    /// ends with the process holding the pipe, however that process ends).
    #[arg(long)]
    exit_on_stdin_eof: bool,
    /// Signature-verifier threads (default: one per core; 0 verifies on the connection tasks).
    #[arg(long, value_name = "N", env = "GOSSIP_NODE_VERIFIER_THREADS")]
    verifier_threads: Option<usize>,
}

fn control_addr(text: &str) -> Result<SocketAddr> {
    if let Ok(port) = text.parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    text.parse()
        .map_err(|e| anyhow::anyhow!("--control-addr {text}: {e} (expected host:port or a port)"))
}

/// Loads and checks everything that can be checked before starting.
fn prepare(args: &Args) -> Result<(NodeConfig, material::Material, run::RunOptions)> {
    if args.fault_drop_share.is_some() && !args.enable_fault_hooks {
        bail!(
            "--fault-drop-share needs --enable-fault-hooks (fault hooks are for benchmarks only)"
        );
    }
    if args.worker_threads == 0 {
        bail!("--worker-threads must be at least 1");
    }
    let fabric_cfg_path = std::env::var_os("FABRIC_CFG_PATH").map(PathBuf::from);
    let cfg = NodeConfig::load(
        args.config.as_deref(),
        fabric_cfg_path.as_deref(),
        std::env::vars(),
        args.listen.as_deref(),
    )?;
    for d in &cfg.diagnostics {
        match d.severity {
            Severity::Warn => tracing::warn!(target: "gossip-node.config", "{}", d.message),
            Severity::Info => tracing::info!(target: "gossip-node.config", "{}", d.message),
        }
    }
    let mut orgs = Vec::new();
    for arg in &args.org_msp {
        let (mspid, dir) = parse_org_msp_arg(arg)?;
        if mspid == cfg.mspid {
            tracing::info!(target: "gossip-node.config", "--org-msp {arg}: the local org comes from peer.mspConfigPath; skipped");
            continue;
        }
        orgs.push((mspid, dir));
    }
    let material = material::load(&cfg, &orgs)?;
    let peer_org_order: Vec<String> = orgs
        .iter()
        .map(|(m, _)| m.clone())
        .chain(std::iter::once(cfg.mspid.clone()))
        .collect();
    let orderer = orderer::load(
        &args.orderer_msp,
        args.orderer_signer.as_deref(),
        &material.msp,
        &peer_org_order,
        clock::now().as_unix_secs(),
    )?;
    for w in &orderer.warnings {
        tracing::warn!(target: "gossip-node.config", "{w}");
    }
    let mut cfg = cfg;
    if let Some(n) = args.verifier_threads {
        cfg.comm.verifier_workers_count = Some(n);
    }
    let fault = match args.fault_drop_share {
        Some(share) if share > 0.0 => Some((share, args.fault_seed)),
        Some(share) if !(0.0..=1.0).contains(&share) => {
            bail!("--fault-drop-share {share} is not between 0 and 1")
        }
        _ => None,
    };
    let control_addr = args.control_addr.as_deref().map(control_addr).transpose()?;
    let runtime = control::RuntimeInfo {
        worker_threads: args.worker_threads,
        verifier_threads: cfg.comm.verifier_threads(),
    };
    Ok((
        cfg,
        material,
        run::RunOptions {
            control_addr,
            fault,
            runtime,
            exit_on_stdin_eof: args.exit_on_stdin_eof,
            orderer,
            orderer_signatures_required: args.orderer_signatures_required as usize,
            log_spec: None,
            org_msps: orgs,
        },
    ))
}

fn main() -> ExitCode {
    alloc::tune();
    let args = Args::parse();
    let spec = std::env::var("FABRIC_LOGGING_SPEC").ok();
    let format = std::env::var("FABRIC_LOGGING_FORMAT").ok();
    let log_spec = match logging::init(spec.as_deref(), format.as_deref()) {
        Ok(handle) => Arc::new(LiveLogSpec::new(
            spec.as_deref().unwrap_or("info").trim().to_owned(),
            handle,
        )),
        Err(e) => {
            let text = gossip_node::error_chain_text(e.chain());
            eprintln!("gossip-node: logging: {text}");
            return ExitCode::from(2);
        }
    };
    let (cfg, material, mut opts) = match prepare(&args) {
        Ok(p) => p,
        Err(e) => {
            // Once, on stderr (where the log goes too), each cause once.
            let text = gossip_node::error_chain_text(e.chain());
            eprintln!("gossip-node: configuration error: {text}");
            return ExitCode::from(2);
        }
    };
    opts.log_spec = Some(log_spec);
    let mut builder = if opts.runtime.is_current_thread() {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(args.worker_threads);
        b
    };
    let runtime = match builder.enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("gossip-node: starting the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run::run(cfg, material, opts)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let text = gossip_node::error_chain_text(e.chain());
            eprintln!("gossip-node: error: {text}");
            ExitCode::from(1)
        }
    }
}
