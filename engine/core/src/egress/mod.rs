//! Stage 3 of the pipeline: how messages leave a node.
//!
//! ```text
//!  component emits ─► Emitter (batch by size or tick) ─► Partition (Fabric's gossipBatch parts)
//!                  ─► routing filters + select_peers (per part) ─► per-peer send lanes (net/)
//! ```
//!
//! Everything here is sans-IO: time comes in as an argument and the RNG is passed in.

pub mod emitter;
pub mod filter;
pub mod partition;

pub use emitter::{Emitter, EmitterConfig};
pub use filter::{
    And, InOrg, NotSame, RoutingFilter, SelectAll, SelectNone, any_match, combine, first,
    select_peers,
};
pub use partition::{ChannelGroup, Partition, Routable, RouteClass};
