//! The partitioner: splits an emitted batch the way Fabric's `gossipBatch` does, so each part can
//! be routed with its own policy.
//!
//! | order | part | Fabric's routing |
//! |---|---|---|
//! | 1 | blocks (`data_msg`), grouped per channel | `SelectPeers(propagatePeerNum, eligible ∧ in channel ∧ in my org)`, one selection per channel |
//! | 2 | leadership messages, grouped per channel | same filter, every matching peer |
//! | 3 | state info, one at a time | my org, or channel members when the origin has an external endpoint |
//! | 4 | org-restricted (`ORG_ONLY`, `CHAN_AND_ORG`, and alive messages of my org with no external endpoint) | one selection of `propagatePeerNum` peers of my org for the whole part |
//! | 5 | the rest: alive messages | by origin org, secrets stripped for other orgs |
//!
//! Each message is classified once, when it enters the emitter ([`RouteClass::of`]); partitioning a
//! flushed batch is then a single pass that writes indices into reused buffers.

use bytes::Bytes;
use gossip_proto::gossip::GossipMessage;
use gossip_proto::gossip::gossip_message::{Content, Tag};

/// Which part of a batch a message belongs to. The order of the variants is Fabric's order of
/// precedence: a block with tag `CHAN_AND_ORG` is a block, not an org-restricted message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RouteClass {
    /// A `data_msg` (block).
    Block,
    /// A `leadership_msg`.
    Leadership,
    /// A `state_info`.
    StateInfo,
    /// Tag `ORG_ONLY` or `CHAN_AND_ORG`, or an alive message of my org with no external endpoint.
    OrgRestricted,
    /// An alive message that may leave the org.
    Alive,
    /// Anything else: Fabric logs an error and sends nothing.
    Unroutable,
}

impl RouteClass {
    /// Classifies a message about to be emitted. `alive_origin_in_my_org` says whether the origin
    /// of an alive message is in this peer's org (ignored for other kinds).
    pub fn of(message: &GossipMessage, alive_origin_in_my_org: bool) -> RouteClass {
        match &message.content {
            Some(Content::DataMsg(_)) => return RouteClass::Block,
            Some(Content::LeadershipMsg(_)) => return RouteClass::Leadership,
            Some(Content::StateInfo(_)) => return RouteClass::StateInfo,
            _ => {}
        }
        let tag = Tag::try_from(message.tag).unwrap_or(Tag::Undefined);
        if matches!(tag, Tag::OrgOnly | Tag::ChanAndOrg) {
            return RouteClass::OrgRestricted;
        }
        match &message.content {
            Some(Content::AliveMsg(alive)) => {
                let no_endpoint = alive
                    .membership
                    .as_ref()
                    .is_none_or(|m| m.endpoint.is_empty());
                if no_endpoint && alive_origin_in_my_org {
                    RouteClass::OrgRestricted
                } else {
                    RouteClass::Alive
                }
            }
            _ => RouteClass::Unroutable,
        }
    }
}

/// What the partitioner needs of an emitted message.
pub trait Routable {
    /// The class computed when the message was emitted.
    fn route_class(&self) -> RouteClass;
    /// `GossipMessage.channel` (empty when none).
    fn channel(&self) -> &Bytes;
}

/// Messages of one channel, as indices into the batch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChannelGroup {
    /// The channel.
    pub channel: Bytes,
    /// Indices of the channel's messages, in batch order.
    pub indices: Vec<u32>,
}

/// A partitioned batch: indices into the batch, grouped as Fabric routes them. Reuse one value
/// across batches; [`Partition::split`] clears it and keeps the allocations.
#[derive(Clone, Debug, Default)]
pub struct Partition {
    /// Blocks per channel, channels in order of first appearance.
    pub blocks: Vec<ChannelGroup>,
    /// Leadership messages per channel.
    pub leadership: Vec<ChannelGroup>,
    /// State info messages.
    pub state_info: Vec<u32>,
    /// Org-restricted messages.
    pub org_restricted: Vec<u32>,
    /// Alive messages that may leave the org.
    pub alive: Vec<u32>,
    /// Messages no policy routes (counted, never sent).
    pub unroutable: Vec<u32>,
    blocks_used: usize,
    leadership_used: usize,
}

impl Partition {
    /// Splits `batch` into parts. Batches longer than `u32::MAX` are not supported (emitter
    /// batches are bounded far below that).
    pub fn split<T: Routable>(&mut self, batch: &[T]) {
        self.clear();
        for (i, msg) in batch.iter().enumerate() {
            let i = i as u32;
            match msg.route_class() {
                RouteClass::Block => {
                    push_grouped(&mut self.blocks, &mut self.blocks_used, msg.channel(), i)
                }
                RouteClass::Leadership => push_grouped(
                    &mut self.leadership,
                    &mut self.leadership_used,
                    msg.channel(),
                    i,
                ),
                RouteClass::StateInfo => self.state_info.push(i),
                RouteClass::OrgRestricted => self.org_restricted.push(i),
                RouteClass::Alive => self.alive.push(i),
                RouteClass::Unroutable => self.unroutable.push(i),
            }
        }
        self.blocks.truncate(self.blocks_used);
        self.leadership.truncate(self.leadership_used);
    }

    fn clear(&mut self) {
        // Keep the channel groups' index buffers for reuse; `*_used` says how many are live.
        for g in self.blocks.iter_mut().chain(self.leadership.iter_mut()) {
            g.indices.clear();
        }
        self.blocks_used = 0;
        self.leadership_used = 0;
        self.state_info.clear();
        self.org_restricted.clear();
        self.alive.clear();
        self.unroutable.clear();
    }

    /// Number of messages in every part together.
    pub fn len(&self) -> usize {
        let grouped = |g: &[ChannelGroup]| g.iter().map(|g| g.indices.len()).sum::<usize>();
        grouped(&self.blocks)
            + grouped(&self.leadership)
            + self.state_info.len()
            + self.org_restricted.len()
            + self.alive.len()
            + self.unroutable.len()
    }

    /// Whether every part is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn push_grouped(groups: &mut Vec<ChannelGroup>, used: &mut usize, channel: &Bytes, index: u32) {
    if let Some(g) = groups[..*used].iter_mut().find(|g| g.channel == *channel) {
        g.indices.push(index);
        return;
    }
    if *used < groups.len() {
        let g = &mut groups[*used];
        g.channel = channel.clone();
        g.indices.push(index);
    } else {
        groups.push(ChannelGroup {
            channel: channel.clone(),
            indices: vec![index],
        });
    }
    *used += 1;
}

#[cfg(test)]
mod tests {
    use super::*;
    use gossip_proto::gossip::{self as pb, AliveMessage, DataMessage, LeadershipMessage, Member};

    struct M(RouteClass, Bytes);
    impl Routable for M {
        fn route_class(&self) -> RouteClass {
            self.0
        }
        fn channel(&self) -> &Bytes {
            &self.1
        }
    }

    fn msg(tag: Tag, content: Content) -> GossipMessage {
        GossipMessage {
            nonce: 0,
            channel: Bytes::new(),
            tag: tag as i32,
            content: Some(content),
        }
    }

    fn alive(endpoint: &str) -> Content {
        Content::AliveMsg(AliveMessage {
            membership: Some(Member {
                endpoint: endpoint.into(),
                ..Default::default()
            }),
            ..Default::default()
        })
    }

    #[test]
    fn classification_follows_fabric_precedence() {
        use RouteClass::*;
        let cases = [
            (
                msg(Tag::ChanAndOrg, Content::DataMsg(DataMessage::default())),
                true,
                Block,
            ),
            (
                msg(
                    Tag::ChanAndOrg,
                    Content::LeadershipMsg(LeadershipMessage::default()),
                ),
                true,
                Leadership,
            ),
            (
                msg(Tag::ChanOrOrg, Content::StateInfo(pb::StateInfo::default())),
                true,
                StateInfo,
            ),
            (msg(Tag::OrgOnly, alive("p:1")), false, OrgRestricted),
            (msg(Tag::Empty, alive("")), true, OrgRestricted),
            (msg(Tag::Empty, alive("")), false, Alive),
            (msg(Tag::Empty, alive("p:1")), true, Alive),
            (
                msg(Tag::Empty, Content::Empty(Default::default())),
                true,
                Unroutable,
            ),
        ];
        for (i, (m, in_org, want)) in cases.iter().enumerate() {
            assert_eq!(RouteClass::of(m, *in_org), *want, "case {i}");
        }
    }

    #[test]
    fn split_groups_by_channel_and_reuses_buffers() {
        let (a, b) = (Bytes::from_static(b"a"), Bytes::from_static(b"b"));
        let batch = vec![
            M(RouteClass::Block, a.clone()),
            M(RouteClass::Alive, Bytes::new()),
            M(RouteClass::Block, b.clone()),
            M(RouteClass::Leadership, a.clone()),
            M(RouteClass::Block, a.clone()),
            M(RouteClass::StateInfo, Bytes::new()),
            M(RouteClass::OrgRestricted, Bytes::new()),
            M(RouteClass::Unroutable, Bytes::new()),
        ];
        let mut p = Partition::default();
        p.split(&batch);
        assert_eq!(
            p.blocks,
            vec![
                ChannelGroup {
                    channel: a.clone(),
                    indices: vec![0, 4]
                },
                ChannelGroup {
                    channel: b.clone(),
                    indices: vec![2]
                },
            ]
        );
        assert_eq!(
            p.leadership,
            vec![ChannelGroup {
                channel: a.clone(),
                indices: vec![3]
            }]
        );
        assert_eq!(
            (p.state_info.clone(), p.org_restricted.clone()),
            (vec![5], vec![6])
        );
        assert_eq!((p.alive.clone(), p.unroutable.clone()), (vec![1], vec![7]));
        assert_eq!(p.len(), batch.len());

        // A second batch with one channel leaves no stale group behind.
        p.split(&[M(RouteClass::Block, b.clone())]);
        assert_eq!(
            p.blocks,
            vec![ChannelGroup {
                channel: b,
                indices: vec![0]
            }]
        );
        assert!(p.leadership.is_empty() && p.alive.is_empty());
        assert_eq!(p.len(), 1);
    }
}
