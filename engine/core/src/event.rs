//! What flows into and out of a [`Node`](crate) besides received messages: commands from the
//! application, events to it, messages to transmit, and the IO the node asks its driver to do.
//!
//! The node never performs IO. It asks for it ([`IoRequest`]) and learns the outcome later
//! ([`IoResult`]), so the same node runs under the tokio driver and in the simulator.

use bytes::Bytes;
use gossip_proto::gossip::gossip_message::Content;
use gossip_proto::gossip::{Envelope, GossipMessage, LeadershipMessage, Payload, Properties};

use crate::types::{NetworkMember, OrgId, PkiId};

/// Where to send a message: the peer's PKI-ID when known and the endpoint to dial.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RemotePeer {
    /// The peer's PKI-ID; `None` for a bootstrap or anchor endpoint whose identity is not known yet.
    pub pki_id: Option<PkiId>,
    /// `host:port` to dial (the member's preferred endpoint).
    pub endpoint: String,
}

/// One message for one peer, produced by [`poll_transmit`](crate). The envelope's `Bytes` are
/// shared by every copy of the same message.
#[derive(Clone, Debug)]
pub struct Transmit {
    /// The target.
    pub to: RemotePeer,
    /// The envelope, as signed once.
    pub envelope: Envelope,
    /// The send lane it goes on.
    pub lane: Lane,
}

/// The send lane of a transmit. Fabric has one send buffer per connection; here blocks travel on
/// a data lane of their own, so a full data lane drops blocks (which repair can recover) and never
/// a heartbeat, a StateInfo, a pull round's control message or an election message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Lane {
    /// Membership, StateInfo, pull hellos, digests and requests, election and every other
    /// message without blocks; written before any queued data.
    Control,
    /// Blocks: data messages, pull updates carrying blocks, and state responses.
    Data,
}

impl Lane {
    /// The lane of `message`: [`Lane::Data`] for a data message, a block pull update or a state
    /// response, [`Lane::Control`] otherwise.
    pub fn of(message: &GossipMessage) -> Lane {
        match &message.content {
            Some(Content::DataMsg(_) | Content::StateResponse(_)) => Lane::Data,
            Some(Content::DataUpdate(u))
                if u.msg_type == gossip_proto::gossip::PullMsgType::BlockMsg as i32 =>
            {
                Lane::Data
            }
            _ => Lane::Control,
        }
    }
}

/// An anchor peer of an org in a channel's config.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AnchorPeer {
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
}

/// A channel's configuration, as `JoinChan` carries it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelConfig {
    /// The channel name.
    pub channel: Bytes,
    /// Config sequence number; an older one than the current is ignored.
    pub sequence: u64,
    /// The member orgs with their anchor peers.
    pub orgs: Vec<(OrgId, Vec<AnchorPeer>)>,
}

/// What the application asks of the node (Fabric's `Gossip` interface, the calls that change
/// state).
#[derive(Clone, Debug)]
pub enum Command {
    /// Gossip a message: data messages are NoopSigned, everything else signed, then emitted.
    /// A data message is also added to its channel's block store.
    Gossip(GossipMessage),
    /// Send a message directly to peers.
    Send {
        /// The message (signed or NoopSigned like `Gossip`).
        message: GossipMessage,
        /// The targets.
        peers: Vec<RemotePeer>,
    },
    /// Join (or reconfigure) a channel.
    JoinChan(ChannelConfig),
    /// Leave a channel.
    LeaveChan(Bytes),
    /// Update this peer's ledger height in a channel's StateInfo.
    UpdateLedgerHeight {
        /// The channel.
        channel: Bytes,
        /// The new height.
        height: u64,
    },
    /// Replace this peer's alive-message metadata.
    UpdateMetadata(Bytes),
    /// Fabric's `Yield` of a channel's election (the deliver client lost the orderer): a leader
    /// steps down and stays out of elections for `leaderAliveThreshold × 6`.
    YieldLeadership(Bytes),
    /// Replace this peer's chaincodes in a channel's StateInfo.
    UpdateChaincodes {
        /// The channel.
        channel: Bytes,
        /// `(name, version)` pairs.
        chaincodes: Vec<(String, String)>,
    },
}

/// What the node tells the application.
#[derive(Clone, Debug)]
pub enum Event {
    /// A block of a joined channel, in sequence order, first delivery only.
    Block {
        /// The channel.
        channel: Bytes,
        /// The block payload (`seq_num` is the block number).
        payload: Payload,
        /// Who it came from (`None` when injected locally).
        from: Option<PkiId>,
    },
    /// A block of a joined channel arrived from a peer for the first time and passed the checks
    /// (before in-order delivery: a gap does not hold it back). Gossip dissemination is measured on
    /// this event; [`Event::Block`] follows once every earlier block is in.
    BlockReceived {
        /// The channel.
        channel: Bytes,
        /// The block number.
        seq_num: u64,
        /// The peer it came from.
        from: PkiId,
        /// Length of the block bytes.
        size_bytes: usize,
        /// Which path brought it.
        via: Arrival,
    },
    /// A member became alive (newly learnt or resurrected).
    MemberAlive(NetworkMember),
    /// A member expired to dead.
    MemberDead(PkiId),
    /// A member was forgotten entirely (alive-message TTL passed, or identity switch).
    MemberPurged(PkiId),
    /// A peer of a channel changed its StateInfo.
    ChannelPeerUpdated {
        /// The channel.
        channel: Bytes,
        /// The peer.
        pki_id: PkiId,
        /// Its new properties.
        properties: Properties,
    },
    /// This peer became (`true`) or stopped being (`false`) the leader of a joined channel
    /// (leader election on: Fabric's election callback, where a peer starts or stops its deliver
    /// client). Static leadership (`orgLeader`) raises none.
    LeadershipChanged {
        /// The channel.
        channel: Bytes,
        /// Whether this peer leads the channel now.
        leader: bool,
    },
    /// A new leadership message of a joined channel, from and about peers of this org (Fabric's
    /// `Accept` for leadership messages; the channel's own election has seen it already).
    Leadership {
        /// The channel.
        channel: Bytes,
        /// The message.
        message: LeadershipMessage,
        /// The peer it came from.
        from: PkiId,
    },
}

/// The path by which a block reached this peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Arrival {
    /// A pushed data message.
    Push,
    /// A block pull update.
    Pull,
    /// A state response (anti-entropy).
    StateTransfer,
}

impl Arrival {
    /// The name used in control events and reports: `push`, `pull`, `state`.
    pub fn as_str(self) -> &'static str {
        match self {
            Arrival::Push => "push",
            Arrival::Pull => "pull",
            Arrival::StateTransfer => "state",
        }
    }
}

/// IO the node asks its driver to perform.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IoRequest {
    /// Run a probe handshake with a bootstrap or anchor endpoint to learn its identity; answer with
    /// [`IoResult::Handshake`].
    Handshake {
        /// The endpoint.
        endpoint: String,
        /// Correlates the answer.
        token: u64,
    },
    /// Ping a dead member (dial and `Ping` RPC, no handshake); answer with [`IoResult::Probe`].
    Probe {
        /// The member.
        pki_id: PkiId,
        /// Its endpoint.
        endpoint: String,
    },
    /// Close the connection to a peer (it expired or was purged).
    CloseConn(PkiId),
    /// Read the committed blocks `start_seq..=end_seq` of a channel from the ledger, to serve a
    /// state request; answer with [`IoResult::Blocks`] (blocks the ledger lacks are left out; a
    /// host without a ledger answers with none).
    ReadBlocks {
        /// The channel.
        channel: Bytes,
        /// The first block number.
        start_seq: u64,
        /// The last block number, inclusive.
        end_seq: u64,
        /// Correlates the answer.
        token: u64,
    },
}

/// The outcome of an [`IoRequest`], or a comm-layer notification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IoResult {
    /// A handshake finished; `Ok` carries the remote's PKI-ID and org.
    Handshake {
        /// The request's token.
        token: u64,
        /// The remote's PKI-ID and org, or why it failed.
        result: Result<(PkiId, OrgId), String>,
    },
    /// A probe finished.
    Probe {
        /// The member.
        pki_id: PkiId,
        /// Whether it answered.
        alive: bool,
    },
    /// The comm layer presumes this peer dead (a send failed or it could not be reached).
    PresumedDead(PkiId),
    /// A dialled peer turned out to have a new PKI-ID of the same org; the old one is gone.
    IdentitySwitch(PkiId),
    /// The answer to [`IoRequest::ReadBlocks`]: the blocks found, in order.
    Blocks {
        /// The request's token.
        token: u64,
        /// The blocks (`seq_num` the block number, `data` the marshalled block).
        blocks: Vec<Payload>,
    },
}
