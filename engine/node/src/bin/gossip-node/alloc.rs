//! The process allocator: mimalloc (unless built with `--features system-alloc`, for allocator
//! comparisons), with freed memory given back to the OS at once.
//!
//! mimalloc 3 keeps freed pages committed for `purge_delay` (1 s by default) and purges them only
//! when a later allocation or free passes by after that. A gossip-node is mostly idle between
//! bursts, so pages freed by a burst stayed resident: in a 6-node replica of the R7 soak
//! (results/reliability.md), every node's RSS stepped up by about 1 MiB each time the ledger's
//! allocator state (redb's buddy allocator, which doubles as the file doubles) was reallocated,
//! and stayed there. With an immediate purge the steps are the size of the reallocation
//! (0.05–0.1 MiB), resident memory is about 1.5 MiB lower per node, and CPU was within the
//! run-to-run noise (4.0 % against 3.6–3.9 % per node at 200 blocks/s). An operator's
//! `MIMALLOC_PURGE_DELAY` still wins: it is left alone when set.

#[cfg(not(feature = "system-alloc"))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The environment variable through which an operator sets mimalloc's purge delay.
#[cfg(not(feature = "system-alloc"))]
const PURGE_DELAY_ENV: &str = "MIMALLOC_PURGE_DELAY";

/// `mi_option_purge_delay` in mimalloc 3's `mi_option_e` (`mimalloc.h`; libmimalloc-sys does not
/// name it). The test below checks the number against the option's documented default.
#[cfg(not(feature = "system-alloc"))]
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Purges freed memory at once unless the operator chose a delay. Call first thing in `main`.
pub fn tune() {
    #[cfg(not(feature = "system-alloc"))]
    if std::env::var_os(PURGE_DELAY_ENV).is_none() {
        set_purge_delay_ms(0);
    }
}

#[cfg(not(feature = "system-alloc"))]
#[allow(unsafe_code)] // the one FFI call mimalloc's safe crate does not wrap
fn set_purge_delay_ms(delay_ms: std::ffi::c_long) {
    // SAFETY: `mi_option_set` takes an option number and a value, touches no caller memory, and
    // may be called at any time (mimalloc reads options atomically).
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, delay_ms) }
}

#[cfg(all(test, not(feature = "system-alloc")))]
#[allow(unsafe_code)] // the one FFI call mimalloc's safe crate does not wrap
fn purge_delay_ms() -> std::ffi::c_long {
    // SAFETY: `mi_option_get` reads one option; no caller memory is involved.
    unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) }
}

#[cfg(all(test, not(feature = "system-alloc")))]
mod tests {
    use super::*;

    #[test]
    fn option_15_is_the_purge_delay_and_tune_zeroes_it() {
        if std::env::var_os(PURGE_DELAY_ENV).is_some() {
            return; // the operator's value is kept, and it is not the default
        }
        // mimalloc 3's documented default purge delay: a mimalloc whose option numbers moved
        // fails here instead of setting another option.
        assert_eq!(purge_delay_ms(), 1_000);
        tune();
        assert_eq!(purge_delay_ms(), 0);
    }
}
