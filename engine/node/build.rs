//! Embeds the commit gossip-node is built from as the compile-time variable
//! `GOSSIP_NODE_BUILD_COMMIT` (read by `gossip_node::ops::COMMIT_SHA`): `GOSSIP_NODE_COMMIT_SHA`
//! when set at build time (a packager's override), else `git rev-parse HEAD` of the repository
//! this crate sits in (two levels up), else `unknown` (no git, or no repository: a source
//! tarball). It never fails the build.
//!
//! It reruns when the override changes or when this worktree's `HEAD` moves (the `HEAD` file,
//! the branch's ref, `packed-refs` and the `HEAD` reflog, those that exist), not on every source
//! change.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The build-time override of the commit.
const OVERRIDE_ENV: &str = "GOSSIP_NODE_COMMIT_SHA";
/// What is embedded when no commit can be found.
const UNKNOWN: &str = "unknown";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed={OVERRIDE_ENV}");
    let commit = match std::env::var(OVERRIDE_ENV) {
        Ok(sha) if !sha.trim().is_empty() => sha.trim().to_string(),
        _ => repository_root()
            .and_then(|root| head_commit(&root))
            .unwrap_or_else(|| UNKNOWN.to_string()),
    };
    println!("cargo:rustc-env=GOSSIP_NODE_BUILD_COMMIT={commit}");
}

/// The repository root, `engine/node/../..`, when it holds a `.git` (a folder, or a file in a
/// linked worktree). Without one this is not our checkout: asking git there would find an
/// enclosing repository's commit, if any.
fn repository_root() -> Option<PathBuf> {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR")?);
    let root = manifest_dir.parent()?.parent()?.to_path_buf();
    root.join(".git").exists().then_some(root)
}

/// `HEAD`'s commit in `root`, after telling cargo which files move with it; `None` when git is
/// missing or fails.
fn head_commit(root: &Path) -> Option<String> {
    let sha = git(root, &["rev-parse", "HEAD"])?;
    if !(sha.len() >= 40 && sha.bytes().all(|b| b.is_ascii_hexdigit())) {
        return None;
    }
    let mut watched = vec!["HEAD".to_string(), "packed-refs".into(), "logs/HEAD".into()];
    // The branch HEAD points at (none when detached).
    if let Some(branch) = git(root, &["rev-parse", "--symbolic-full-name", "HEAD"])
        && branch.starts_with("refs/")
    {
        watched.push(branch);
    }
    for name in watched {
        // `--git-path` resolves a linked worktree's own files (HEAD) and the shared ones (refs).
        let Some(path) = git(root, &["rev-parse", "--git-path", &name]) else {
            continue;
        };
        let path = root.join(path);
        // A path that does not exist would make cargo rerun this script on every build.
        if path.exists() {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
    Some(sha)
}

/// The trimmed standard output of `git args` run in `root`; `None` when it fails.
fn git(root: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(root)
        // A build started from a git hook inherits these; they would point git elsewhere.
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    out.status.success().then(|| text.trim().to_string())
}
