//! Fuzz targets: every decoder and handler that takes a peer's or a user's bytes, as a plain
//! function of `&[u8]` that panics only on a bug (a panic on any input is a finding). Three
//! drivers run them:
//!
//! - proptest in `cargo test` (`fuzz/tests/targets.rs`): arbitrary bytes and structure-aware
//!   mutations of Fabric's golden messages, [`PROPTEST_CASES_DEFAULT`] cases per target unless
//!   `PROPTEST_CASES` says otherwise;
//! - cargo-fuzz (`fuzz/libfuzzer`, with libFuzzer's coverage feedback), one command away
//!   (fuzz/README.md);
//! - the built-in mutator ([`mutate`], `cargo test -p gossip-fuzz --test targets -- --ignored
//!   fuzz_long`), which needs nothing beyond the stable toolchain.
//!
//! Each starts from the kept corpus in `fuzz/corpus/<target>/`.

use std::path::PathBuf;

pub mod mutate;
pub mod targets;

/// Cases per target and per strategy in `cargo test`, unless `PROPTEST_CASES` is set.
pub const PROPTEST_CASES_DEFAULT: u32 = 256;

/// A named target.
#[derive(Clone, Copy)]
pub struct Target {
    /// The name: the corpus folder and the cargo-fuzz target.
    pub name: &'static str,
    /// The function.
    pub run: fn(&[u8]),
}

/// Every target.
pub const TARGETS: &[Target] = &[
    Target {
        name: "wire",
        run: targets::wire,
    },
    Target {
        name: "ingress",
        run: targets::ingress,
    },
    Target {
        name: "conn_establish",
        run: targets::conn_establish,
    },
    Target {
        name: "block",
        run: targets::block,
    },
    Target {
        name: "node",
        run: targets::node,
    },
    Target {
        name: "control",
        run: targets::control,
    },
    Target {
        name: "core_yaml",
        run: targets::core_yaml,
    },
];

/// The target called `name`.
pub fn target(name: &str) -> Option<Target> {
    TARGETS.iter().copied().find(|t| t.name == name)
}

/// `fuzz/corpus/<target>`: the kept seed corpus.
pub fn corpus_dir(target: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/corpus")).join(target)
}

/// The files of `dir`, read (none where it does not exist).
pub fn read_corpus(dir: &std::path::Path) -> Vec<Vec<u8>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| Some(e.ok()?.path())).collect();
    paths.sort();
    paths.iter().filter_map(|p| std::fs::read(p).ok()).collect()
}
