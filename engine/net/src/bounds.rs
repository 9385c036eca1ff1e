//! Bounds on what a remote peer can make the driver hold before and outside the per-connection
//! send lanes. Each refusal is counted by reason in [`crate::CommStats::refusals`].
//!
//! The size of a stream's first message, read before the remote is authenticated, is bounded by
//! [`crate::grpc::FIRST_FRAME_LEN_MAX_BYTES`]; the envelopes waiting for a dial to a peer by
//! `CommConfig::send_buff_len_max` (Fabric's `peer.gossip.sendBuffSize`), as they go on that
//! peer's send lanes once connected.

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
