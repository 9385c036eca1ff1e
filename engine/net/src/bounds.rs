//! Bounds on what a remote peer can make the driver hold before and outside the per-connection
//! send lanes. Each refusal is counted by reason in [`crate::CommStats::refusals`].
//!
//! The size of a stream's first message, read before the remote is authenticated, is bounded by
//! [`crate::grpc::FIRST_FRAME_LEN_MAX_BYTES`]; the envelopes waiting for a dial to a peer by
//! `CommConfig::send_buff_len_max` (Fabric's `peer.gossip.sendBuffSize`), as they go on that
//! peer's send lanes once connected.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

/// HTTP/2 streams one accepted connection may have open at once (`SETTINGS_MAX_CONCURRENT_STREAMS`
/// of our server). Fabric's peer keeps one `GossipStream` per connection plus a short `Ping`; a
/// probe handshake dials a connection of its own. HTTP/2 refuses streams over the bound
/// (`REFUSED_STREAM`; a compliant client queues them until one ends), so one peer cannot make us
/// run a reader task and buffers per stream it opens.
pub const HTTP2_STREAMS_PER_CONN_MAX: u32 = 8;

/// Handshakes run at once on the accepting side: TLS accepts, and `GossipStream`s waiting for and
/// checking the remote's ConnEstablish (each bounded in time by the TLS accept timeout and
/// `conn_timeout`). One more is refused at once: the TCP connection dropped before TLS, or the
/// stream answered `RESOURCE_EXHAUSTED` (counted as `handshakes_full`). A peer that dials as
/// Fabric does needs one slot for its TLS accept, then one for its stream.
pub const HANDSHAKES_IN_FLIGHT_MAX: usize = 64;

/// Peers that may be being dialled at once for sends ([`crate::Comm::send`] to a peer with no
/// connection); a send to one more unconnected peer is dropped (`pending_dial_peers_full`).
pub const PENDING_DIAL_PEERS_MAX: usize = 1024;

/// Open `GossipStream`s per accepted connection, keyed by the remote address. Each time a
/// connection reaches [`HTTP2_STREAMS_PER_CONN_MAX`] it is counted as `streams_per_conn_at_bound`:
/// HTTP/2 then holds back a compliant client's further streams and refuses a non-compliant
/// client's (`REFUSED_STREAM`) itself, neither of which hyper reports, so the bound being reached
/// is what an operator can see. An entry lives only while its streams are open.
#[derive(Debug, Default)]
pub(crate) struct StreamsPerConn {
    open: parking_lot::Mutex<HashMap<SocketAddr, u32>>,
}

/// One open stream of a connection: released when dropped.
#[derive(Debug)]
pub(crate) struct StreamSlot {
    streams: Arc<StreamsPerConn>,
    remote: SocketAddr,
}

impl StreamsPerConn {
    /// Records one more open stream from `remote`: its slot, and whether the connection has now
    /// reached the bound.
    pub(crate) fn open(self: &Arc<Self>, remote: SocketAddr) -> (StreamSlot, bool) {
        let mut open = self.open.lock();
        let n = open.entry(remote).or_default();
        *n += 1;
        let at_bound = *n == HTTP2_STREAMS_PER_CONN_MAX;
        let slot = StreamSlot {
            streams: Arc::clone(self),
            remote,
        };
        (slot, at_bound)
    }

    /// Streams open from `remote`.
    #[cfg(test)]
    fn open_len(&self, remote: &SocketAddr) -> u32 {
        self.open.lock().get(remote).copied().unwrap_or(0)
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self.streams.open.lock();
        if let Some(n) = open.get_mut(&self.remote) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.remote);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_the_bound_once_per_reach_and_forgets_closed_connections() {
        let streams = Arc::new(StreamsPerConn::default());
        let a: SocketAddr = "127.0.0.1:1000".parse().expect("addr");
        let b: SocketAddr = "127.0.0.1:1001".parse().expect("addr");
        let mut slots = Vec::new();
        let mut reached = 0;
        for _ in 0..HTTP2_STREAMS_PER_CONN_MAX {
            let (slot, at_bound) = streams.open(a);
            reached += u32::from(at_bound);
            slots.push(slot);
        }
        assert_eq!(reached, 1);
        let (_other, at_bound) = streams.open(b);
        assert!(!at_bound, "another connection has its own count");
        slots.pop();
        let (again, at_bound) = streams.open(a);
        assert!(at_bound, "reaching the bound again counts again");
        drop(again);
        slots.clear();
        assert_eq!(streams.open_len(&a), 0);
        assert!(
            !streams.open.lock().contains_key(&a),
            "no entry once all are closed"
        );
    }
}
