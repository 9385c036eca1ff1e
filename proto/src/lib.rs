//! Hyperledger Fabric gossip wire types.
//!
//! Generated at build time from `proto/` (byte-compatible with Fabric's `gossip/message.proto` and
//! the types it imports). `bytes` fields are `bytes::Bytes`: decode from a `Bytes` buffer and the
//! payloads are zero-copy slices of it.
//!
//! With the default `grpc` feature, `gossip::gossip_client` and `gossip::gossip_server` hold the tonic
//! client and server for the `gossip.Gossip` service, using [`codec::GossipCodec`]. The engine frames
//! gRPC itself (`gossip_engine::net::grpc`); these generated ones serve its tests as an independent
//! gRPC implementation to check that framing against.

/// Package `gossip`: envelopes, every GossipMessage content type, and the service.
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod gossip {
    include!(concat!(env!("OUT_DIR"), "/gossip.rs"));
}

/// Package `msp`: serialized identities.
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod msp {
    include!(concat!(env!("OUT_DIR"), "/msp.rs"));
}

/// Package `common`: blocks, envelopes and their headers, block metadata, signature policies and MSP
/// principals.
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod common {
    include!(concat!(env!("OUT_DIR"), "/common.rs"));
}

/// Package `etcdraft`: the etcdraft consenter's block metadata.
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod etcdraft {
    include!(concat!(env!("OUT_DIR"), "/etcdraft.rs"));
}

/// Package `protos`: collection configuration and application policies.
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod protos {
    include!(concat!(env!("OUT_DIR"), "/protos.rs"));
}

/// Package `rwset`: private read-write sets.
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod rwset {
    include!(concat!(env!("OUT_DIR"), "/rwset.rs"));
}

#[cfg(feature = "grpc")]
pub mod codec;

/// The well-known types the generated code names (`google.protobuf.Timestamp`).
pub use prost_types;

/// Fabric's gRPC message limit (100 MiB), for both directions.
pub const MAX_MESSAGE_LEN_BYTES: usize = 100 * 1024 * 1024;
