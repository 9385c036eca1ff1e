//! Loading the golden vectors (`vectors.json`), the peer identities (`identities.json`) and the PKI
//! files from `engine/testkit/testdata/fabric-golden/`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::Value;

/// Unix seconds of 2027-01-01T00:00:00Z: inside the validity of every golden certificate.
pub const NOW_2027_UNIX_S: i64 = 1_798_761_600;

/// The channel the golden channel MACs are computed for.
pub const CHANNEL: &str = "mychannel";

/// The folder of the golden files: the test kit's copy (or `$GOSSIP_GOLDEN_DIR`).
pub fn golden_dir() -> PathBuf {
    gossip_testkit::golden::dir().expect("golden vectors")
}

/// Reads a file of the golden folder.
pub fn read(relative: &str) -> Vec<u8> {
    let path = golden_dir().join(relative);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Decodes lowercase hex, panicking with `what` on bad input.
pub fn unhex(text: &str, what: &str) -> Vec<u8> {
    hex::decode(text).unwrap_or_else(|e| panic!("{what}: bad hex: {e}"))
}

/// One golden vector (see the README for the meaning of each key).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Vector {
    pub name: String,
    pub content_variant: String,
    pub content_field_number: u32,
    pub tag: String,
    pub tag_value: i32,
    pub nonce: u64,
    pub channel: Option<String>,
    pub fields: Value,
    pub gossip_message_hex: String,
    pub envelope_hex: String,
    pub signed: bool,
    pub signer: Option<String>,
    pub signature_hex: Option<String>,
    pub secret_envelope: Option<SecretVector>,
    pub expected_valid: bool,
    #[serde(default)]
    pub expected_error: Option<String>,
    #[serde(default)]
    pub nested_signatures: Vec<NestedSignature>,
    pub fabric_is_tag_legal: bool,
    #[serde(default)]
    pub aux: Option<Value>,
    /// Which Fabric code path the message imitates (read by people, not by the tests).
    #[allow(dead_code)]
    pub notes: String,
    /// The whole vector object, for resolving paths such as `fields.alive[1]`.
    #[serde(skip)]
    pub raw: Value,
}

/// A vector's `secret_envelope`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretVector {
    pub payload_hex: String,
    pub signature_hex: String,
    pub internal_endpoint: String,
}

/// One entry of `nested_signatures`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NestedSignature {
    pub path: String,
    pub signer: String,
    pub expected_valid: bool,
}

/// One peer of `identities.json`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerIdentity {
    pub mspid: String,
    pub cert_file: String,
    pub private_key_file: String,
    pub ca_cert_file: String,
    pub tls_cert_file: String,
    pub tls_ca_cert_file: String,
    pub serialized_identity_hex: String,
    pub pki_id_hex: String,
    pub cert_der_hex: String,
    pub public_key_sec1_uncompressed_hex: String,
    pub tls_cert_hash_hex: String,
    pub channel_mac_mychannel_hex: String,
    pub endpoint: String,
    pub internal_endpoint: String,
}

impl Vector {
    /// `envelope_hex`, decoded.
    pub fn envelope_bytes(&self) -> Vec<u8> {
        unhex(&self.envelope_hex, &self.name)
    }

    /// `gossip_message_hex`, decoded.
    pub fn message_bytes(&self) -> Vec<u8> {
        unhex(&self.gossip_message_hex, &self.name)
    }

    /// `aux.<key>` as text (a JSON string as is, an integer in decimal), if present.
    pub fn aux_str(&self, key: &str) -> Option<String> {
        match self.aux.as_ref()?.get(key)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.as_u64()?.to_string()),
            _ => None,
        }
    }

    /// `aux.known_values`: JSON path → description.
    pub fn known_values(&self) -> BTreeMap<String, String> {
        let Some(map) = self
            .aux
            .as_ref()
            .and_then(|a| a.get("known_values"))
            .and_then(Value::as_object)
        else {
            return BTreeMap::new();
        };
        map.iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.as_str().expect("known_values are text").to_owned(),
                )
            })
            .collect()
    }
}

/// Every vector, in file order (parsed once per test binary).
pub fn vectors() -> &'static [Vector] {
    static VECTORS: OnceLock<Vec<Vector>> = OnceLock::new();
    VECTORS.get_or_init(|| {
        let raw: Vec<Value> =
            serde_json::from_slice(&read("vectors.json")).expect("vectors.json parses");
        raw.into_iter()
            .map(|value| {
                let mut v: Vector =
                    serde_json::from_value(value.clone()).expect("vector has the documented keys");
                v.raw = value;
                v
            })
            .collect()
    })
}

/// The vector with this name.
pub fn vector(name: &str) -> &'static Vector {
    vectors()
        .iter()
        .find(|v| v.name == name)
        .unwrap_or_else(|| panic!("no vector {name:?}"))
}

/// Every peer of `identities.json`, by name.
pub fn identities() -> &'static BTreeMap<String, PeerIdentity> {
    static IDS: OnceLock<BTreeMap<String, PeerIdentity>> = OnceLock::new();
    IDS.get_or_init(|| {
        serde_json::from_slice(&read("identities.json")).expect("identities.json parses")
    })
}

/// The peer with this name.
pub fn identity(name: &str) -> &'static PeerIdentity {
    identities()
        .get(name)
        .unwrap_or_else(|| panic!("no identity {name:?}"))
}

/// Resolves a path such as `fields.alive[1]` or `fields.payloads[0].private_data[0]` in `root`.
pub fn resolve<'a>(root: &'a Value, path: &str) -> Option<&'a Value> {
    let mut current = root;
    for segment in path.split('.') {
        let (key, mut indexes) = match segment.find('[') {
            Some(i) => (&segment[..i], &segment[i..]),
            None => (segment, ""),
        };
        current = current.get(key)?;
        while let Some(rest) = indexes.strip_prefix('[') {
            let end = rest.find(']')?;
            current = current.get(rest[..end].parse::<usize>().ok()?)?;
            indexes = &rest[end + 1..];
        }
    }
    Some(current)
}
