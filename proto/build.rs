//! Compiles the Fabric .proto files with protox (pure Rust: no system protoc) and generates prost
//! types plus the tonic service. Every `bytes` field becomes `bytes::Bytes`, so decoding from a
//! `Bytes` buffer slices payloads instead of copying them.

use std::path::PathBuf;

const PROTO_FILES: &[&str] = &[
    "gossip/message.proto",
    "msp/identities.proto",
    "msp/msp_principal.proto",
    "common/common.proto",
    "common/policies.proto",
    "peer/policy.proto",
    "peer/collection.proto",
    "ledger/rwset/rwset.proto",
    "orderer/etcdraft/configuration.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("proto");
    for file in PROTO_FILES {
        println!("cargo:rerun-if-changed={}", root.join(file).display());
    }
    let fds = protox::compile(PROTO_FILES, [&root])?;
    let grpc = std::env::var_os("CARGO_FEATURE_GRPC").is_some();
    tonic_prost_build::configure()
        .bytes(".")
        .build_client(grpc)
        .build_server(grpc)
        .build_transport(false)
        .codec_path("crate::codec::GossipCodec")
        .compile_fds(fds)?;
    Ok(())
}
