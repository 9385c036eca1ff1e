//! The gRPC codec of `gossip.Gossip`: prost encoding, and decoding that detaches each message of
//! up to [`DETACH_LEN_MAX`] bytes from tonic's per-stream receive buffer.
//!
//! `bytes` fields are `Bytes`, and decoding slices them out of the buffer they are decoded from.
//! Decoded straight from tonic's stream buffer, a stored alive message of 300 bytes would keep
//! that whole buffer (tens of KiB) alive, and tonic would have to allocate a fresh buffer for the
//! next message because the old one is shared. Copying the message into an allocation of its own
//! size first costs one `memcpy` of the message; it keeps tonic's buffer unshared (reused in
//! place) and makes every retained envelope cost what it weighs. Messages above the limit (large
//! blocks) are sliced without a copy: for them the buffer is little more than the message.

use std::marker::PhantomData;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use prost::Message;
use tonic::Status;
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder};
use tonic_prost::ProstEncoder;

/// Messages up to this size are copied out of the stream buffer before decoding.
pub const DETACH_LEN_MAX: usize = 64 * 1024;

/// The buffers tonic keeps per stream: each starts at `CODEC_BUFFER_LEN` bytes and grows in steps
/// of it (tonic's default is 8 KiB). Gossip's frequent messages (alive, StateInfo) are a few
/// hundred bytes and blocks grow the buffers to their own size anyway, so a small start keeps
/// what 24 idle streams hold low. The yield threshold stays tonic's.
pub const CODEC_BUFFER_LEN: usize = 1024;

fn buffer_settings() -> BufferSettings {
    BufferSettings::new(CODEC_BUFFER_LEN, 32 * 1024)
}

/// Prost encoding plus [`DetachingDecoder`]; `tonic_prost_build` generates the service with it.
#[derive(Debug, Clone, Copy)]
pub struct GossipCodec<T, U>(PhantomData<(T, U)>);

impl<T, U> Default for GossipCodec<T, U> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<T, U> Codec for GossipCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = DetachingDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstEncoder::new(buffer_settings())
    }

    fn decoder(&mut self) -> Self::Decoder {
        DetachingDecoder(PhantomData)
    }
}

/// Decodes `U`, from a copy of the message when it is at most [`DETACH_LEN_MAX`] bytes.
#[derive(Debug, Clone, Copy)]
pub struct DetachingDecoder<U>(PhantomData<U>);

impl<U: Message + Default> Decoder for DetachingDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        U::decode(take_message(buf))
            .map(Some)
            .map_err(|e| Status::internal(e.to_string()))
    }

    fn buffer_settings(&self) -> BufferSettings {
        buffer_settings()
    }
}

/// All of `buf`: copied into an allocation of its own when it is at most [`DETACH_LEN_MAX`]
/// bytes, sliced off (sharing `buf`'s allocation) when larger.
pub fn take_message(buf: &mut impl Buf) -> Bytes {
    let len = buf.remaining();
    if len > DETACH_LEN_MAX {
        return buf.copy_to_bytes(len);
    }
    let mut copy = BytesMut::with_capacity(len);
    copy.put(buf);
    copy.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_messages_leave_the_stream_buffer_unshared() {
        let mut stream_buf = BytesMut::with_capacity(32 * 1024);
        stream_buf.put_bytes(7, 300);
        let mut message = stream_buf.split_to(300);
        let taken = take_message(&mut message);
        assert_eq!(taken.len(), 300);
        assert!(taken.iter().all(|&b| b == 7));
        drop(message);
        // The copy holds no reference to the stream buffer: it can be reused in place.
        assert!(stream_buf.try_reclaim(32 * 1024));
    }

    #[test]
    fn large_messages_are_sliced_without_a_copy() {
        let len = DETACH_LEN_MAX + 1;
        let mut stream_buf = BytesMut::with_capacity(2 * len);
        stream_buf.put_bytes(9, len);
        let mut message = stream_buf.split_to(len);
        let start = message.as_ptr();
        let taken = take_message(&mut message);
        assert_eq!(taken.len(), len);
        assert_eq!(taken.as_ptr(), start);
        assert!(!stream_buf.try_reclaim(2 * len));
    }

    #[test]
    fn decodes_what_prost_encodes() {
        use crate::gossip::{Envelope, SecretEnvelope};
        let envelope = Envelope {
            payload: Bytes::from_static(b"payload"),
            signature: Bytes::from_static(b"signature"),
            secret_envelope: Some(SecretEnvelope {
                payload: Bytes::from_static(b"secret"),
                signature: Bytes::new(),
            }),
        };
        let mut encoded = BytesMut::from(&envelope.encode_to_vec()[..]);
        let decoded = Envelope::decode(take_message(&mut encoded)).expect("decodes");
        assert_eq!(decoded, envelope);
    }
}
