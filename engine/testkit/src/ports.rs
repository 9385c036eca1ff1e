//! Ports for test peers that are started as separate listeners or processes.

/// A listener on 127.0.0.1 at a port chosen at random **outside** Linux's default ephemeral
/// range (32768–60999). A test learns a port first and binds it later (a node process started
/// with `--listen`, a peer restarted on its endpoint with a renewed certificate, a harness node
/// whose endpoint its peers must know before it starts); a port of the ephemeral range is handed
/// to any process's outgoing connection or port-0 bind as soon as it is released, so with tests
/// running side by side the later bind failed (`AddrInUse`: 10 of 200 runs of the tonic renewal
/// test, eight at a time, and 1 of 200 of the process tests). Hold it until just before the port
/// is bound again.
///
/// A port is handed out once per process: tests of one binary run side by side, and a port one
/// of them learnt and released but has not bound yet was free to be handed out again (a control
/// port then equal to another node's gossip port: that node could not listen and exited).
pub fn bind_local() -> std::net::TcpListener {
    use std::hash::{BuildHasher, Hasher};
    static HANDED_OUT: std::sync::Mutex<std::collections::BTreeSet<u16>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    for _ in 0..1_000 {
        // A fresh RandomState is freshly keyed: a random number without a dependency.
        let random = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        let port = 20_000 + (random % 12_000) as u16;
        let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
        if handed_out.contains(&port) {
            continue;
        }
        if let Ok(listener) = std::net::TcpListener::bind(("127.0.0.1", port)) {
            handed_out.insert(port);
            return listener;
        }
    }
    panic!("no free port in 20000..32000 on 127.0.0.1 not handed out before by this process");
}

/// The port of a [`bind_local`] listener, released at once (free a moment ago).
pub fn free_local_port() -> u16 {
    bind_local()
        .local_addr()
        .expect("a bound listener has an address")
        .port()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_free_and_outside_the_ephemeral_range() {
        for _ in 0..20 {
            let port = free_local_port();
            assert!((20_000..32_000).contains(&port));
            std::net::TcpListener::bind(("127.0.0.1", port)).expect("still free");
        }
    }
}
