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
