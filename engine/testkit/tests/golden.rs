//! Golden-vector conformance test: our codec, signatures and identities against bytes that
//! Hyperledger Fabric produced (`engine/testkit/testdata/fabric-golden/`, see its README). The test code
//! lives in `golden/`.

#[path = "golden/mod.rs"]
mod golden;
