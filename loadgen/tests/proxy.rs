//! The fault proxy delays traffic at least as configured, and cuts, black-holes and heals links
//! on command. Only lower bounds on time are asserted.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use loadgen::cluster::proxy::{Delay, LinkMode, Links, Proxy, Source};

/// An echo server on 127.0.0.1 (one thread per connection, ends with the test process).
fn echo_server() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for c in l.incoming().take(100) {
            let Ok(mut c) = c else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = c.read(&mut buf) {
                    if n == 0 || c.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

#[allow(clippy::disallowed_methods)] // tests measure real delays
fn now() -> std::time::Instant {
    std::time::Instant::now()
}

fn proxy(links: &Arc<Links>, delay: Delay) -> Proxy {
    Proxy::start(
        "127.0.0.1:0".parse().unwrap(),
        echo_server(),
        1,
        Source::Fixed(0),
        links.clone(),
        delay,
    )
    .unwrap()
}

/// Sends `msg` and reads the echo; `Err` on timeout, reset or close.
fn round_trip(c: &mut TcpStream, msg: &[u8]) -> std::io::Result<Vec<u8>> {
    c.write_all(msg)?;
    let mut got = vec![0u8; msg.len()];
    c.read_exact(&mut got)?;
    Ok(got)
}

fn connect(p: &Proxy) -> TcpStream {
    let c = TcpStream::connect(p.addr()).unwrap();
    c.set_read_timeout(Some(Duration::from_millis(1500)))
        .unwrap();
    c
}

#[test]
fn delay_applies_per_direction_and_keeps_order() {
    let links = Links::new(2);
    let p = proxy(
        &links,
        Delay {
            base: Duration::from_millis(60),
            jitter: Duration::from_millis(20),
            seed: 7,
        },
    );
    let mut c = connect(&p);
    for i in 0..5u8 {
        let t = now();
        let msg = [i; 100];
        assert_eq!(round_trip(&mut c, &msg).unwrap(), msg.to_vec());
        // Delay one way out and one way back.
        assert!(
            t.elapsed() >= Duration::from_millis(120),
            "{:?}",
            t.elapsed()
        );
    }
    // Many chunks in a row arrive in order despite jitter.
    let data: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
    for chunk in data.chunks(1000) {
        c.write_all(chunk).unwrap();
    }
    let mut got = vec![0u8; data.len()];
    c.read_exact(&mut got).unwrap();
    assert_eq!(got, data);
    // The byte counter is bumped right after each write: allow it a moment to catch up.
    for _ in 0..200 {
        if p.bytes() >= 2 * data.len() as u64 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(p.bytes() >= 2 * data.len() as u64, "{}", p.bytes());
}

#[test]
fn partition_cuts_then_heals() {
    let links = Links::new(2);
    let p = proxy(&links, Delay::default());
    let mut c = connect(&p);
    assert!(round_trip(&mut c, b"before").is_ok());
    links.set_between(&[0], &[1], LinkMode::Cut);
    // The open connection is closed (reset or EOF) and new ones are refused.
    assert!(round_trip(&mut c, b"during").is_err());
    let mut c2 = connect(&p);
    assert!(round_trip(&mut c2, b"during").is_err());
    links.set_between(&[0], &[1], LinkMode::Open);
    let mut c3 = connect(&p);
    assert_eq!(round_trip(&mut c3, b"healed").unwrap(), b"healed");
}

#[test]
fn black_hole_discards_silently_then_heals() {
    let links = Links::new(2);
    let p = proxy(&links, Delay::default());
    let mut c = connect(&p);
    assert!(round_trip(&mut c, b"x").is_ok());
    links.set(0, 1, LinkMode::BlackHole);
    c.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let err = round_trip(&mut c, b"lost").unwrap_err();
    assert!(
        matches!(
            err.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
        "black hole keeps the connection open: {err}"
    );
    links.set(0, 1, LinkMode::Open);
    c.set_read_timeout(Some(Duration::from_millis(1500)))
        .unwrap();
    assert_eq!(
        round_trip(&mut c, b"back").unwrap(),
        b"back",
        "same connection works again"
    );
}

#[test]
fn scenario_partition_is_cut_and_healed_by_its_schedule() {
    // The runner's schedule for a scenario partition, applied step by step as the runner does at
    // each step's time (times are checked as values, not measured).
    let s = loadgen::scenario::Scenario::from_toml(
        "nodes = 2\norgs = 1\n[[faults.partitions]]\nat_s = 1.5\nduration_s = 2\na = [0]\n",
    )
    .unwrap();
    let plan = loadgen::commands::run::fault_plan(&s);
    assert_eq!(plan.len(), 2);
    assert_eq!(plan[0].0, 1_500_000_000);
    assert_eq!(plan[1].0, 3_500_000_000);
    let links = Links::new(2);
    let p = proxy(&links, Delay::default());
    let mut c = connect(&p);
    assert!(round_trip(&mut c, b"before").is_ok());
    assert!(
        plan[0]
            .1
            .apply_links(&links)
            .unwrap()
            .starts_with("partition")
    );
    assert!(round_trip(&mut c, b"during").is_err(), "cut");
    assert!(round_trip(&mut connect(&p), b"during").is_err(), "refused");
    assert!(plan[1].1.apply_links(&links).unwrap().starts_with("heal"));
    assert_eq!(round_trip(&mut connect(&p), b"after").unwrap(), b"after");
}
