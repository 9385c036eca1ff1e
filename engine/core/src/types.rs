//! Small value types shared by every layer.

use std::fmt;

/// A peer's PKI-ID: SHA-256 over `mspid ‖ id_bytes` of its serialized identity (spec 2.1).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct PkiId(pub [u8; 32]);

impl PkiId {
    /// Length of every PKI-ID Fabric's MSP computes.
    pub const LEN: usize = 32;

    /// Reads a PKI-ID from wire bytes; `None` unless exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        <[u8; 32]>::try_from(bytes).ok().map(Self)
    }

    /// The raw 32 bytes, as they go on the wire.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Full lowercase hex, as Fabric logs and metrics print it.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Debug for PkiId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PkiId({})", &self.to_hex()[..16])
    }
}

impl fmt::Display for PkiId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl AsRef<[u8]> for PkiId {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// A peer's org: its MSP id, e.g. `Org1MSP`. Org equality is byte equality of MSP ids.
pub type OrgId = std::sync::Arc<str>;

/// A member of the gossip network as discovery knows it (Fabric's `NetworkMember`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkMember {
    /// The member's PKI-ID.
    pub pki_id: PkiId,
    /// External endpoint, published in clear to every org; empty means invisible to other orgs.
    pub endpoint: String,
    /// Internal endpoint, learnt from the secret envelope of its alive messages; may be empty.
    pub internal_endpoint: String,
    /// The member's org, when its identity is known.
    pub org: Option<OrgId>,
}

impl NetworkMember {
    /// The endpoint to dial: the internal one when known, else the external one (Fabric's
    /// `PreferredEndpoint`).
    pub fn preferred_endpoint(&self) -> &str {
        if self.internal_endpoint.is_empty() {
            &self.endpoint
        } else {
            &self.internal_endpoint
        }
    }
}
