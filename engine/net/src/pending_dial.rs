//! Sends to a peer with no connection: one dial per destination, with the envelopes sent while it
//! runs waiting in a bounded per-destination queue (the conn store's pending queues), rather than
//! one task per send holding its envelope. The queue holds at most `send_buff_len_max` envelopes
//! (Fabric's `peer.gossip.sendBuffSize`, the same bound the connection's send lanes have once it
//! is up) and at most [`super::bounds::PENDING_DIAL_PEERS_MAX`] peers have one; a send over either bound is
//! dropped and counted (`pending_dial_full`, `pending_dial_peers_full`), never awaited.

use std::sync::Arc;

use gossip_proto::gossip::Envelope;

use super::comm::{RemotePeer, Shared};
use super::conn_store::PendingQueued;
use super::lanes::Lane;

/// Queues `envelope` for `peer`, which has no connection, starting its dial if none runs.
pub(crate) fn send_dialling(
    shared: &Arc<Shared>,
    peer: &RemotePeer,
    lane: Lane,
    envelope: Envelope,
) {
    let len_max = shared.config.send_buff_len_max;
    match shared
        .store
        .queue_pending(&peer.pki_id, lane, envelope, len_max)
    {
        PendingQueued::Queued => {}
        PendingQueued::Full => {
            shared.stats.refuse("pending_dial_full");
            tracing::debug!(peer = %peer.pki_id, "pending sends for a dial full, message dropped");
        }
        PendingQueued::PeersFull => {
            shared.stats.refuse("pending_dial_peers_full");
            tracing::debug!(peer = %peer.pki_id, "too many peers being dialled, message dropped");
        }
        PendingQueued::DialNow => {
            let (shared, peer) = (shared.clone(), peer.clone());
            shared.clone().spawn(dial_and_flush(shared, peer));
        }
    }
}

/// Obtains the connection (a failure marks the peer presumed dead) and hands it what was queued
/// meanwhile; on failure that is dropped, as the sends of a failed connection are.
async fn dial_and_flush(shared: Arc<Shared>, peer: RemotePeer) {
    let conn = shared.get_or_create(&peer).await;
    // Taken after the connection is registered: a send that still found none queued before this.
    let pending = shared.store.take_pending(&peer.pki_id);
    match conn {
        Ok(conn) => {
            for (lane, envelope) in pending {
                shared.enqueue(&conn, lane, envelope);
            }
        }
        Err(_) => {
            tracing::debug!(peer = %peer.pki_id, dropped = pending.len(), "dial failed, pending sends dropped");
        }
    }
}
