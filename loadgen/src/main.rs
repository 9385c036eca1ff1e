//! `loadgen`: drives local clusters of gossip peers and writes reports to `results/`.
//!
//! Subcommands so far:
//! - `pki`: generate a test PKI (org CAs, peer enrollment and TLS certificates) in Fabric's MSP
//!   folder layout, usable by gossip-node and by a Fabric peer alike.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use gossip_engine::crypto::testpki::{TestPki, TestPkiSpec};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(
    name = "loadgen",
    version,
    about = "Benchmark toolkit for the Rust Fabric gossip engine"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Generate a test PKI in Fabric's MSP folder layout.
    Pki {
        /// Number of orgs (Org1MSP, Org2MSP, ...).
        #[arg(long, default_value_t = 2)]
        orgs: usize,
        /// Peers per org.
        #[arg(long, default_value_t = 2)]
        peers: usize,
        /// Output folder (created).
        #[arg(long)]
        out: PathBuf,
        /// Certificate validity start, Unix seconds (default: now).
        #[arg(long)]
        now_unix_s: Option<i64>,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Pki {
            orgs,
            peers,
            out,
            now_unix_s,
        } => {
            anyhow::ensure!(
                orgs >= 1 && peers >= 1,
                "--orgs and --peers must be at least 1"
            );
            let now_unix_s = match now_unix_s {
                Some(s) => s,
                None => unix_now_s()?,
            };
            let pki = TestPki::generate(&TestPkiSpec::uniform(orgs, peers, now_unix_s))
                .context("generating PKI")?;
            pki.write_msp_dirs(&out)
                .with_context(|| format!("writing {}", out.display()))?;
            for peer in pki.peers() {
                let signer = peer.signer().context("loading generated identity")?;
                println!("{}\t{}\t{}", peer.mspid, peer.name, signer.pki_id());
            }
            Ok(())
        }
    }
}

#[allow(clippy::disallowed_methods)] // binaries read the real clock
fn unix_now_s() -> anyhow::Result<i64> {
    Ok(std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64)
}
