//! The Fabric-real block `inject_block` builds with `--orderer-signer`: what an etcdraft orderer
//! writes (Fabric's `BlockWriter`: `CreateNextBlock`, `addLastConfig`, `addBlockSignature`), signed
//! by an orderer org member. Byte for byte what fabric-node builds (its README, "Blocks
//! inject_block builds"):
//!
//! - one data entry, an `Envelope{payload, signature}` with `payload = Payload{header{
//!   channel_header: ChannelHeader{type ENDORSER_TRANSACTION, version 0, timestamp (whole
//!   seconds), channel_id, tx_id = hex(SHA-256(nonce ‖ creator)), epoch 0}, signature_header:
//!   SignatureHeader{creator, nonce}}, data: size_bytes of filler}` and the signer's signature over
//!   the payload;
//! - header: `number` = seq, `previous_hash` = SHA-256 of the ASN.1 header of the block this
//!   builder built for seq − 1 on the channel (empty when none), `data_hash`;
//! - metadata: SIGNATURES = `Metadata{value: OrdererBlockMetadata{last_config{index 0},
//!   consenter_metadata: Metadata{value: etcdraft.BlockMetadata{[1], 2, seq}}}, signatures:
//!   [MetadataSignature{signature_header: SignatureHeader{creator, nonce}, signature over
//!   value ‖ signature_header ‖ ASN.1(header)}]}`; LAST_CONFIG = `Metadata{value: LastConfig{0}}`
//!   (empty on the wire); the other three empty.
//!
//! The builder reads no clock and no RNG: the caller passes the time and the nonces.

use std::collections::HashMap;

use bytes::Bytes;
use gossip_proto::common::{
    Block, BlockData, BlockHeader, BlockMetadata, BlockMetadataIndex, ChannelHeader, Envelope,
    Header, HeaderType, LastConfig, Metadata, MetadataSignature, OrdererBlockMetadata, Payload,
    SignatureHeader,
};
use gossip_proto::etcdraft;
use gossip_proto::prost_types::Timestamp;
use prost::Message;

use super::control::block_data;
use gossip_engine::crypto::{LocalSigner, SignatureError, sha256, sha256_concat};
pub use gossip_engine::ingress::block::header_asn1;

/// Length of the nonces in signature headers (Fabric's `crypto.NonceSize`).
pub const NONCE_LEN_BYTES: usize = 24;

/// Fabric's block metadata entries (signatures, last config, transactions filter, orderer,
/// commit hash).
const BLOCK_METADATA_ENTRIES: usize = 5;

/// Channels whose last built header is remembered for the next block's `previous_hash`.
pub const CHANNELS_TRACKED_MAX: usize = 64;

/// The etcdraft consenter metadata: one consenter, id 1.
const RAFT_CONSENTER_ID: u64 = 1;

/// Why a block could not be built. Nothing is remembered of a block that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    /// The signer failed to sign.
    #[error("signing the block: {0}")]
    Sign(#[from] SignatureError),
}

/// The random inputs of one block: the transaction's nonce and the block signature's nonce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockNonces {
    /// The nonce of the envelope's signature header (and so of its `tx_id`).
    pub tx: [u8; NONCE_LEN_BYTES],
    /// The nonce of the block signature's signature header.
    pub signature: [u8; NONCE_LEN_BYTES],
}

/// `protoutil.BlockHeaderHash`: SHA-256 of [`header_asn1`]; the next block's `previous_hash`.
pub fn header_hash(header: &BlockHeader) -> [u8; 32] {
    sha256(&header_asn1(header))
}

/// Builds signed blocks and chains them by `previous_hash`, per channel.
#[derive(Debug)]
pub struct SignedBlockBuilder {
    signer: LocalSigner,
    /// Per channel, the number and header hash of the last block built.
    last_built: HashMap<String, (u64, [u8; 32])>,
}

impl SignedBlockBuilder {
    /// A builder signing with `signer` (an orderer org member).
    pub fn new(signer: LocalSigner) -> Self {
        Self {
            signer,
            last_built: HashMap::new(),
        }
    }

    /// The signing identity.
    pub fn signer(&self) -> &LocalSigner {
        &self.signer
    }

    /// Builds and signs block `seq` of `channel` with `size_bytes` of payload data (the filler of
    /// [`block_data`]), at `now_unix_s`; returns the encoded `common.Block`.
    pub fn build(
        &mut self,
        channel: &str,
        seq: u64,
        size_bytes: usize,
        now_unix_s: i64,
        nonces: &BlockNonces,
    ) -> Result<Bytes, BlockError> {
        let entry = self.envelope(channel, seq, size_bytes, now_unix_s, &nonces.tx)?;
        let previous_hash = match self.last_built.get(channel) {
            Some((number, hash)) if number.checked_add(1) == Some(seq) => {
                Bytes::copy_from_slice(hash)
            }
            _ => Bytes::new(),
        };
        let header = BlockHeader {
            number: seq,
            previous_hash,
            data_hash: Bytes::copy_from_slice(&sha256(&entry)),
        };
        let signatures = self.signatures_metadata(seq, &header, &nonces.signature)?;
        let mut metadata = vec![Bytes::new(); BLOCK_METADATA_ENTRIES];
        metadata[BlockMetadataIndex::Signatures as usize] = signatures;
        metadata[BlockMetadataIndex::LastConfig as usize] = Metadata {
            value: LastConfig { index: 0 }.encode_to_vec().into(),
            signatures: Vec::new(),
        }
        .encode_to_vec()
        .into();
        let hash = header_hash(&header);
        let block = Block {
            header: Some(header),
            data: Some(BlockData {
                data: vec![entry.into()],
            }),
            metadata: Some(BlockMetadata { metadata }),
        };
        if self.last_built.len() >= CHANNELS_TRACKED_MAX && !self.last_built.contains_key(channel) {
            self.last_built.clear();
        }
        self.last_built.insert(channel.to_owned(), (seq, hash));
        Ok(block.encode_to_vec().into())
    }

    fn signature_header(&self, nonce: &[u8; NONCE_LEN_BYTES]) -> SignatureHeader {
        SignatureHeader {
            creator: self.signer.identity().serialized.clone(),
            nonce: Bytes::copy_from_slice(nonce),
        }
    }

    /// The data entry: a marshalled `Envelope` of an ENDORSER_TRANSACTION payload.
    fn envelope(
        &self,
        channel: &str,
        seq: u64,
        size_bytes: usize,
        now_unix_s: i64,
        nonce: &[u8; NONCE_LEN_BYTES],
    ) -> Result<Vec<u8>, BlockError> {
        let signature_header = self.signature_header(nonce);
        let tx_id = hex::encode(sha256_concat([&nonce[..], &signature_header.creator[..]]));
        let channel_header = ChannelHeader {
            r#type: HeaderType::EndorserTransaction as i32,
            version: 0,
            timestamp: Some(Timestamp {
                seconds: now_unix_s,
                nanos: 0,
            }),
            channel_id: channel.to_owned(),
            tx_id,
            epoch: 0,
            extension: Bytes::new(),
            tls_cert_hash: Bytes::new(),
        };
        let payload = Payload {
            header: Some(Header {
                channel_header: channel_header.encode_to_vec().into(),
                signature_header: signature_header.encode_to_vec().into(),
            }),
            data: block_data(seq, size_bytes).into(),
        }
        .encode_to_vec();
        let signature = self.signer.sign(&payload)?;
        Ok(Envelope {
            payload: payload.into(),
            signature,
        }
        .encode_to_vec())
    }

    /// The SIGNATURES metadata entry, signed over `value ‖ signature_header ‖ ASN.1(header)`.
    fn signatures_metadata(
        &self,
        seq: u64,
        header: &BlockHeader,
        nonce: &[u8; NONCE_LEN_BYTES],
    ) -> Result<Bytes, BlockError> {
        let consenter = etcdraft::BlockMetadata {
            consenter_ids: vec![RAFT_CONSENTER_ID],
            next_consenter_id: RAFT_CONSENTER_ID + 1,
            raft_index: seq,
        };
        let value: Bytes = OrdererBlockMetadata {
            last_config: Some(LastConfig { index: 0 }),
            consenter_metadata: Metadata {
                value: consenter.encode_to_vec().into(),
                signatures: Vec::new(),
            }
            .encode_to_vec()
            .into(),
        }
        .encode_to_vec()
        .into();
        let signature_header: Bytes = self.signature_header(nonce).encode_to_vec().into();
        let signed = [&value[..], &signature_header[..], &header_asn1(header)].concat();
        let signature = self.signer.sign(&signed)?;
        Ok(Metadata {
            value,
            signatures: vec![MetadataSignature {
                signature_header,
                signature,
                identifier_header: Bytes::new(),
            }],
        }
        .encode_to_vec()
        .into())
    }
}

#[cfg(test)]
mod tests;
