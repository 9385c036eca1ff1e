//! Access to Fabric's golden vectors (`testdata/fabric-golden`, see its README).
//!
//! The vectors live in this crate (`testdata/fabric-golden`, a copy of the project's shared
//! folder, produced by Fabric's own code; see its README); `$GOSSIP_GOLDEN_DIR` points elsewhere.

use std::path::PathBuf;

use bytes::Bytes;
use serde_json::Value;

use gossip_core::crypto::{LocalSigner, MspManager, OrgMsp};
use gossip_core::time::Instant;

/// 2027-01-01T00:00:00Z: inside the golden certificates' validity (2026-11-21 + 10 years).
pub const NOW_UNIX_S: u64 = 1_798_761_600;

/// [`NOW_UNIX_S`] as an [`Instant`] on the Unix epoch.
pub fn now() -> Instant {
    Instant::from_nanos(NOW_UNIX_S * 1_000_000_000)
}

/// The golden folder: `$GOSSIP_GOLDEN_DIR` where set, else the copy in this crate
/// (`engine/testkit/testdata/fabric-golden`). Missing vectors fail the test run: a conformance test
/// that silently skips proves nothing.
pub fn dir() -> Option<PathBuf> {
    let dir = std::env::var_os("GOSSIP_GOLDEN_DIR").map_or_else(
        || {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../testkit/testdata/fabric-golden"
            ))
        },
        PathBuf::from,
    );
    assert!(
        dir.join("vectors.json").is_file(),
        "fabric-golden vectors not found in {}",
        dir.display()
    );
    Some(dir)
}

/// The golden vectors and identities.
pub struct Golden {
    pub dir: PathBuf,
    pub vectors: Vec<Value>,
    pub identities: Value,
}

impl Golden {
    /// Loads the folder, `None` when absent.
    pub fn load() -> Option<Self> {
        let dir = dir()?;
        let read = |name: &str| -> Value {
            let text = std::fs::read_to_string(dir.join(name)).expect("read golden file");
            serde_json::from_str(&text).expect("golden JSON")
        };
        let vectors = read("vectors.json")
            .as_array()
            .expect("vectors array")
            .clone();
        let identities = read("identities.json");
        Some(Self {
            dir,
            vectors,
            identities,
        })
    }

    /// The vector called `name`.
    pub fn vector(&self, name: &str) -> &Value {
        self.vectors
            .iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("no vector {name}"))
    }

    /// A vector's `envelope_hex`, decoded.
    pub fn envelope_bytes(&self, name: &str) -> Bytes {
        hex_field(self.vector(name), "envelope_hex")
    }

    /// An MSP manager with both golden orgs.
    pub fn msp_manager(&self) -> MspManager {
        let mut manager = MspManager::new();
        for (mspid, domain) in [
            ("Org1MSP", "org1.example.com"),
            ("Org2MSP", "org2.example.com"),
        ] {
            let ca = std::fs::read(self.dir.join(format!("pki/{domain}/ca.{domain}-cert.pem")))
                .expect("ca");
            let tls = std::fs::read(
                self.dir
                    .join(format!("pki/{domain}/tlsca.{domain}-cert.pem")),
            )
            .expect("tlsca");
            manager.add_org(OrgMsp::from_pems(mspid, &[&ca], &[], &[&tls]).expect("org msp"));
        }
        manager
    }

    /// The serialized identity of a golden peer.
    pub fn serialized_identity(&self, peer: &str) -> Bytes {
        hex_field(&self.identities[peer], "serialized_identity_hex")
    }

    /// A golden peer's signer (its test key).
    pub fn signer(&self, peer: &str) -> LocalSigner {
        let entry = &self.identities[peer];
        let read = |key: &str| {
            std::fs::read(self.dir.join(entry[key].as_str().expect("file name"))).expect("pem")
        };
        gossip_engine::signing_key::local_signer_from_pems(
            entry["mspid"].as_str().expect("mspid"),
            &read("cert_file"),
            &read("private_key_file"),
        )
        .expect("golden signer")
    }
}

/// A hex string field of a JSON object, decoded.
pub fn hex_field(value: &Value, key: &str) -> Bytes {
    Bytes::from(
        hex::decode(
            value[key]
                .as_str()
                .unwrap_or_else(|| panic!("{key} missing")),
        )
        .expect("hex"),
    )
}
