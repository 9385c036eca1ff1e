//! Egress fixtures shared by the criterion egress suite and the instruction-count workloads: a
//! mixed batch of routable items and a member pool over two orgs.

use bytes::Bytes;
use gossip_engine::egress::{Routable, RouteClass};
use gossip_engine::types::{NetworkMember, PkiId};

/// Messages per emitter and partition batch.
pub const BATCH_LEN: usize = 1_000;

/// A routable item as the emitter carries it: a class, a channel and a payload.
#[derive(Clone)]
pub struct Emitted {
    /// Route class.
    pub class: RouteClass,
    /// Channel.
    pub channel: Bytes,
    /// Payload (never read: it is carried, as an envelope is).
    pub payload: Bytes,
}

impl Routable for Emitted {
    fn route_class(&self) -> RouteClass {
        self.class
    }
    fn channel(&self) -> &Bytes {
        &self.channel
    }
}

/// A mixed batch of [`BATCH_LEN`]: mostly blocks over two channels, plus every other class.
pub fn mixed_batch() -> Vec<Emitted> {
    let channels = [
        Bytes::from_static(b"mychannel"),
        Bytes::from_static(b"otherchannel"),
    ];
    let classes = [
        RouteClass::Block,
        RouteClass::Block,
        RouteClass::Block,
        RouteClass::Leadership,
        RouteClass::StateInfo,
        RouteClass::OrgRestricted,
        RouteClass::Alive,
        RouteClass::Block,
    ];
    (0..BATCH_LEN)
        .map(|i| Emitted {
            class: classes[i % classes.len()],
            channel: channels[i % 2].clone(),
            payload: Bytes::from_static(&[0u8; 64]),
        })
        .collect()
}

/// `n` members, alternately of `Org1MSP` and `Org2MSP`, PKI-IDs numbered from 0.
pub fn members(n: usize) -> Vec<NetworkMember> {
    (0..n)
        .map(|i| {
            let mut id = [0u8; 32];
            id[..8].copy_from_slice(&(i as u64).to_be_bytes());
            NetworkMember {
                pki_id: PkiId(id),
                endpoint: format!("peer{i}.example.com:7051"),
                internal_endpoint: String::new(),
                org: Some(if i % 2 == 0 {
                    "Org1MSP".into()
                } else {
                    "Org2MSP".into()
                }),
            }
        })
        .collect()
}
