//! Encoded-size accounting without encoding: what an envelope will weigh on the wire, so batches and
//! send lanes can be bounded in bytes (spec 7). Sizes follow protobuf's rules: a length-delimited
//! field costs its key, a varint length and the bytes; proto3 omits empty fields.

use gossip_proto::gossip::SecretEnvelope;

/// Bytes a varint takes for `value` (1 to 10).
pub fn varint_len_bytes(value: u64) -> usize {
    // Each byte carries 7 bits; zero still takes one byte.
    let bits = 64 - (value | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Bytes a field key takes for `field_number` (wire type bits included).
pub fn key_len_bytes(field_number: u32) -> usize {
    varint_len_bytes(u64::from(field_number) << 3)
}

/// Bytes a proto3 `bytes`/`string`/message field takes when its content is `len_bytes` long and it
/// is always present (messages, repeated elements).
pub fn delimited_field_len_bytes(field_number: u32, len_bytes: usize) -> usize {
    key_len_bytes(field_number) + varint_len_bytes(len_bytes as u64) + len_bytes
}

/// Like [`delimited_field_len_bytes`] for a proto3 scalar `bytes` field: zero when empty.
pub fn bytes_field_len_bytes(field_number: u32, len_bytes: usize) -> usize {
    if len_bytes == 0 {
        0
    } else {
        delimited_field_len_bytes(field_number, len_bytes)
    }
}

/// Encoded length of a `SecretEnvelope`'s body.
pub fn secret_envelope_len_bytes(secret: &SecretEnvelope) -> usize {
    bytes_field_len_bytes(1, secret.payload.len())
        + bytes_field_len_bytes(2, secret.signature.len())
}

/// Encoded length of an `Envelope {payload, signature, secret_envelope}` given its parts' lengths.
pub fn envelope_len_bytes(
    payload_len_bytes: usize,
    signature_len_bytes: usize,
    secret: Option<&SecretEnvelope>,
) -> usize {
    bytes_field_len_bytes(1, payload_len_bytes)
        + bytes_field_len_bytes(2, signature_len_bytes)
        + secret.map_or(0, |s| {
            delimited_field_len_bytes(3, secret_envelope_len_bytes(s))
        })
}

/// Encoded length of the same envelope nested as element `field_number` of a repeated field
/// (e.g. `MembershipResponse.alive`).
pub fn nested_envelope_len_bytes(field_number: u32, envelope_len_bytes: usize) -> usize {
    delimited_field_len_bytes(field_number, envelope_len_bytes)
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use gossip_proto::gossip::Envelope;
    use prost::Message;

    use super::*;

    #[test]
    fn varint_lengths() {
        for (value, len) in [
            (0u64, 1),
            (1, 1),
            (127, 1),
            (128, 2),
            (16_383, 2),
            (16_384, 3),
            (u64::MAX, 10),
        ] {
            assert_eq!(varint_len_bytes(value), len, "value {value}");
        }
        assert_eq!(key_len_bytes(15), 1);
        assert_eq!(key_len_bytes(16), 2);
    }

    #[test]
    fn envelope_len_matches_prost() {
        // (payload, signature, secret (payload, signature)) lengths
        type Case = (usize, usize, Option<(usize, usize)>);
        let cases: [Case; 5] = [
            (0, 0, None),
            (85, 71, None),
            (85, 71, Some((17, 70))),
            (200, 0, Some((0, 0))),
            (1 << 20, 72, None),
        ];
        for (payload, signature, secret) in cases {
            let envelope = Envelope {
                payload: Bytes::from(vec![7u8; payload]),
                signature: Bytes::from(vec![1u8; signature]),
                secret_envelope: secret.map(|(p, s)| SecretEnvelope {
                    payload: Bytes::from(vec![2u8; p]),
                    signature: Bytes::from(vec![3u8; s]),
                }),
            };
            let computed =
                envelope_len_bytes(payload, signature, envelope.secret_envelope.as_ref());
            assert_eq!(
                computed,
                envelope.encoded_len(),
                "{payload}/{signature}/{secret:?}"
            );
            assert_eq!(
                nested_envelope_len_bytes(2, computed),
                prost::length_delimiter_len(computed) + 1 + computed
            );
        }
    }
}
