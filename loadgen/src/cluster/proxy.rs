//! A userspace TCP proxy for fault injection between nodes: fixed delay plus jitter per direction,
//! and links that can be cut (connections reset, new ones refused) or black-holed (bytes
//! discarded) and healed while running.
//!
//! Each proxy listens on one loopback port and forwards to one target (a node's real gossip
//! port); every accepted connection gets its source node from a [`Source`], and the state of the
//! link `source → destination` in the shared [`Links`] table decides what happens to its bytes.
//! The delay is applied per chunk read, in both directions, without reordering: a chunk is
//! released at `max(previous release, arrival + delay + U[0, jitter])`.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::measure::inject::mono_now;

/// How long blocking reads and accepts wait before rechecking link state and shutdown.
const POLL: Duration = Duration::from_millis(20);

/// State of one directed link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum LinkMode {
    /// Bytes flow (with the configured delay).
    Open = 0,
    /// Connections are closed and new ones refused.
    Cut = 1,
    /// Connections stay open but bytes are discarded.
    BlackHole = 2,
}

/// Link states of `n` nodes, indexed `[src][dst]`, plus an entry for connections whose source
/// is unknown (never cut unless [`Links::set_unknown`] says so).
pub struct Links {
    n: usize,
    modes: Vec<AtomicU8>,
    unknown: AtomicU8,
    pids: Mutex<Vec<Option<u32>>>,
    /// Accepted connections whose source node the `/proc` lookup did not find.
    unidentified: std::sync::atomic::AtomicU64,
}

impl Links {
    /// All links open.
    pub fn new(n: usize) -> Arc<Self> {
        Arc::new(Links {
            n,
            modes: (0..n * n).map(|_| AtomicU8::new(0)).collect(),
            unknown: AtomicU8::new(0),
            pids: Mutex::new(vec![None; n]),
            unidentified: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// Accepted connections whose source node could not be identified, and which were refused
    /// for that (a partition could not apply to them).
    pub fn unidentified_connections(&self) -> u64 {
        self.unidentified.load(Ordering::Relaxed)
    }

    /// Sets the mode of `src → dst`.
    pub fn set(&self, src: usize, dst: usize, mode: LinkMode) {
        if src < self.n && dst < self.n {
            self.modes[src * self.n + dst].store(mode as u8, Ordering::SeqCst);
        }
    }

    /// Sets the mode for connections whose source node is unknown.
    pub fn set_unknown(&self, mode: LinkMode) {
        self.unknown.store(mode as u8, Ordering::SeqCst);
    }

    /// Sets both directions between every node of `a` and every node of `b`.
    pub fn set_between(&self, a: &[usize], b: &[usize], mode: LinkMode) {
        for &x in a {
            for &y in b {
                if x != y {
                    self.set(x, y, mode);
                    self.set(y, x, mode);
                }
            }
        }
    }

    /// The mode of `src → dst` (`src` None: unknown source).
    pub fn mode(&self, src: Option<usize>, dst: usize) -> LinkMode {
        let raw = match src {
            Some(s) if s < self.n && dst < self.n => {
                self.modes[s * self.n + dst].load(Ordering::SeqCst)
            }
            _ => self.unknown.load(Ordering::SeqCst),
        };
        match raw {
            1 => LinkMode::Cut,
            2 => LinkMode::BlackHole,
            _ => LinkMode::Open,
        }
    }

    /// Records the process id of node `k` (for [`Source::Lookup`]).
    pub fn set_pid(&self, k: usize, pid: Option<u32>) {
        if let Ok(mut pids) = self.pids.lock()
            && k < pids.len()
        {
            pids[k] = pid;
        }
    }

    fn pids(&self) -> Vec<Option<u32>> {
        self.pids.lock().map(|p| p.clone()).unwrap_or_default()
    }
}

/// How a proxy learns the source node of an accepted connection.
#[derive(Clone, Copy, Debug)]
pub enum Source {
    /// Every connection comes from this node (a per-link proxy, e.g. for a bootstrap address).
    Fixed(usize),
    /// Find the node process owning the connecting socket through `/proc` (Linux): the socket's
    /// inode from `/proc/net/tcp`, then the pid whose `/proc/<pid>/fd` holds it.
    Lookup,
}

/// Delay settings of a proxy.
#[derive(Clone, Copy, Debug, Default)]
pub struct Delay {
    /// Fixed one-way delay.
    pub base: Duration,
    /// Uniform extra delay in `[0, jitter]`.
    pub jitter: Duration,
    /// Seed of the jitter RNG.
    pub seed: u64,
}

/// A running proxy; dropping it stops accepting and closes its connections.
pub struct Proxy {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    bytes: Arc<AtomicU64>,
    accept: Option<JoinHandle<()>>,
}

/// A proxy failed to start.
#[derive(Debug, thiserror::Error)]
#[error("proxy: {0}")]
pub struct ProxyError(#[from] std::io::Error);

struct Shared {
    target: SocketAddr,
    dst: usize,
    source: Source,
    links: Arc<Links>,
    delay: Delay,
    stop: Arc<AtomicBool>,
    bytes: Arc<AtomicU64>,
}

impl Proxy {
    /// Listens on `listen` (port 0 picks one) and forwards to `target`, node `dst`.
    pub fn start(
        listen: SocketAddr,
        target: SocketAddr,
        dst: usize,
        source: Source,
        links: Arc<Links>,
        delay: Delay,
    ) -> Result<Self, ProxyError> {
        let listener = TcpListener::bind(listen)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let bytes = Arc::new(AtomicU64::new(0));
        let shared = Arc::new(Shared {
            target,
            dst,
            source,
            links,
            delay,
            stop: stop.clone(),
            bytes: bytes.clone(),
        });
        let accept = std::thread::Builder::new()
            .name(format!("proxy-{}", addr.port()))
            .spawn(move || accept_loop(listener, shared))?;
        Ok(Proxy {
            addr,
            stop,
            bytes,
            accept: Some(accept),
        })
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Bytes forwarded so far (both directions, delivered bytes only).
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut seed = shared.delay.seed;
    while !shared.stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((client, peer)) => {
                let src = match shared.source {
                    Source::Fixed(k) => Some(k),
                    Source::Lookup => match client
                        .local_addr()
                        .ok()
                        .and_then(|me| lookup_source_retrying(peer, me, &shared.links))
                    {
                        Some(k) => Some(k),
                        None => {
                            // An unknown source would pass every partition for the life of the
                            // connection (gossip connections last the whole run): refuse it; the
                            // node dials again, and the next lookup usually finds it.
                            shared.links.unidentified.fetch_add(1, Ordering::Relaxed);
                            let _ = client.shutdown(Shutdown::Both);
                            continue;
                        }
                    },
                };
                if shared.links.mode(src, shared.dst) == LinkMode::Cut {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect_timeout(&shared.target, Duration::from_secs(2))
                else {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                seed = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                // Two directions: the link src → dst carries client bytes; replies travel dst → src
                // (the same pair of nodes, so a partition of either direction cuts both).
                for (from, to, s, d, rng) in [
                    (
                        client.try_clone(),
                        server.try_clone(),
                        src,
                        Some(shared.dst),
                        seed,
                    ),
                    (
                        server.try_clone(),
                        client.try_clone(),
                        Some(shared.dst),
                        src,
                        seed ^ 1,
                    ),
                ] {
                    let (Ok(from), Ok(to)) = (from, to) else {
                        continue;
                    };
                    let shared = shared.clone();
                    let _ = std::thread::Builder::new()
                        .name("proxy-pump".into())
                        .spawn(move || pump(from, to, s, d, shared, rng));
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::sleep(POLL),
            Err(_) => std::thread::sleep(POLL),
        }
    }
}

/// Mode of the directed link `s → d`; with an unknown end the unknown entry applies.
fn link_mode(shared: &Shared, s: Option<usize>, d: Option<usize>) -> LinkMode {
    match (s, d) {
        (Some(s), Some(d)) => shared.links.mode(Some(s), d),
        _ => shared.links.mode(None, 0),
    }
}

fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    s: Option<usize>,
    d: Option<usize>,
    shared: Arc<Shared>,
    seed: u64,
) {
    let _ = from.set_read_timeout(Some(POLL));
    let delayed = !shared.delay.base.is_zero() || !shared.delay.jitter.is_zero();
    let (tx, writer) = if delayed {
        let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
        let out = to.try_clone();
        let bytes = shared.bytes.clone();
        let h = out.ok().and_then(|out| {
            std::thread::Builder::new()
                .name("proxy-delay".into())
                .spawn(move || delayed_writer(out, rx, bytes))
                .ok()
        });
        (Some(tx), h)
    } else {
        (None, None)
    };
    let mut rng = SplitMix(seed);
    let mut last_release = mono_now();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let mode = link_mode(&shared, s, d);
        if mode == LinkMode::Cut {
            break;
        }
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(_) => break,
        };
        // The mode may have changed while the read blocked.
        match link_mode(&shared, s, d) {
            LinkMode::Cut => break,
            LinkMode::BlackHole => continue,
            LinkMode::Open => {}
        }
        match &tx {
            Some(tx) => {
                let jitter = shared.delay.jitter.mul_f64(rng.unit());
                let release = (mono_now() + shared.delay.base + jitter).max(last_release);
                last_release = release;
                if tx.send((release, buf[..n].to_vec())).is_err() {
                    break;
                }
            }
            None => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
                shared.bytes.fetch_add(n as u64, Ordering::Relaxed);
            }
        }
    }
    drop(tx);
    if let Some(w) = writer {
        let _ = w.join();
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}

fn delayed_writer(
    mut out: TcpStream,
    rx: mpsc::Receiver<(Instant, Vec<u8>)>,
    bytes: Arc<AtomicU64>,
) {
    while let Ok((release, chunk)) = rx.recv() {
        let now = mono_now();
        if release > now {
            std::thread::sleep(release - now);
        }
        if out.write_all(&chunk).is_err() {
            return;
        }
        bytes.fetch_add(chunk.len() as u64, Ordering::Relaxed);
    }
}

/// A small seeded RNG for jitter.
struct SplitMix(u64);

impl SplitMix {
    fn unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The node whose process owns the client socket `peer` (connected to one of our proxies).
/// Tries of [`lookup_source`] before a connection is refused as unidentified, and the pause
/// between them: `/proc/net/tcp` is read while the kernel's table changes, and a socket of a
/// connection opened in that moment can be missing from one reading.
const LOOKUP_TRIES: usize = 5;
const LOOKUP_RETRY_PAUSE: Duration = Duration::from_millis(2);

fn lookup_source_retrying(peer: SocketAddr, me: SocketAddr, links: &Links) -> Option<usize> {
    for i in 0..LOOKUP_TRIES {
        if let Some(k) = lookup_source(peer, me, links) {
            return Some(k);
        }
        if i + 1 < LOOKUP_TRIES {
            std::thread::sleep(LOOKUP_RETRY_PAUSE);
        }
    }
    None
}

/// The node owning the socket of the connection from `peer` to `me` (this proxy's address).
fn lookup_source(peer: SocketAddr, me: SocketAddr, links: &Links) -> Option<usize> {
    let inode = socket_inode(peer, me)?;
    let needle = format!("socket:[{inode}]");
    for (k, pid) in links.pids().into_iter().enumerate() {
        let Some(pid) = pid else { continue };
        let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for entry in dir.flatten().take(100_000) {
            if std::fs::read_link(entry.path())
                .is_ok_and(|t| t.as_os_str().to_string_lossy() == needle)
            {
                return Some(k);
            }
        }
    }
    None
}

/// `/proc/net/tcp`'s spelling of an IPv4 address (`0100007F:1F90`); `None` for IPv6.
fn proc_tcp_addr(a: SocketAddr) -> Option<String> {
    let SocketAddr::V4(v4) = a else {
        return None;
    };
    Some(format!(
        "{:08X}:{:04X}",
        u32::from_le_bytes(v4.ip().octets()),
        v4.port()
    ))
}

/// Inode of the IPv4 socket from `local` to `remote`, from `/proc/net/tcp`. Both ends count:
/// Linux hands the same ephemeral port to connections to different destinations, so a local
/// address alone can name another process's socket (the partitions of 2026-12-07 leaked so).
fn socket_inode(local: SocketAddr, remote: SocketAddr) -> Option<u64> {
    let (want_local, want_remote) = (proc_tcp_addr(local)?, proc_tcp_addr(remote)?);
    let text = std::fs::read_to_string("/proc/net/tcp").ok()?;
    text.lines().skip(1).find_map(|line| {
        let cols: Vec<&str> = line.split_whitespace().collect();
        (cols.get(1) == Some(&want_local.as_str()) && cols.get(2) == Some(&want_remote.as_str()))
            .then(|| cols.get(9)?.parse().ok())
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_inode_finds_own_connection() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (me, peer) = (l.local_addr().unwrap(), c.local_addr().unwrap());
        assert!(socket_inode(peer, me).is_some());
        let elsewhere: SocketAddr = "127.0.0.1:9".parse().unwrap();
        assert_eq!(socket_inode(peer, elsewhere), None, "the remote end counts");
        let links = Links::new(2);
        links.set_pid(1, Some(std::process::id()));
        assert_eq!(lookup_source(peer, me, &links), Some(1));
    }

    #[test]
    fn links_between_sets_both_directions() {
        let links = Links::new(3);
        links.set_between(&[0], &[1, 2], LinkMode::Cut);
        assert_eq!(links.mode(Some(0), 2), LinkMode::Cut);
        assert_eq!(links.mode(Some(2), 0), LinkMode::Cut);
        assert_eq!(links.mode(Some(1), 2), LinkMode::Open);
        assert_eq!(links.mode(None, 2), LinkMode::Open);
    }
}
