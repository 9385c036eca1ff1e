//! DER encoding of ECDSA signatures (`SEQUENCE { INTEGER r, INTEGER s }`) and Fabric's low-S rule.
//!
//! Fabric's bccsp normalises `s` to `n - s` when signing and rejects `s > n/2` when verifying
//! ("Invalid S. Must be smaller than half the order"). ring neither normalises nor rejects, so every
//! signature passes through here: [`check_low_s`] before verifying, [`normalize_low_s`] after signing.

use super::SignatureError;
use super::ecdsa::Curve;

/// P-256 group order n, big-endian.
const P256_ORDER: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];

/// P-384 group order n, big-endian.
const P384_ORDER: [u8; 48] = [
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xc7, 0x63, 0x4d, 0x81, 0xf4, 0x37, 0x2d, 0xdf,
    0x58, 0x1a, 0x0d, 0xb2, 0x48, 0xb0, 0xa7, 0x7a, 0xec, 0xec, 0x19, 0x6a, 0xcc, 0xc5, 0x29, 0x73,
];

fn order(curve: Curve) -> &'static [u8] {
    match curve {
        Curve::P256 => &P256_ORDER,
        Curve::P384 => &P384_ORDER,
    }
}

/// The two integers of a DER ECDSA signature, as minimal big-endian magnitudes (no sign byte).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawSignature<'a> {
    /// The `r` value.
    pub r: &'a [u8],
    /// The `s` value.
    pub s: &'a [u8],
}

/// Parses `SEQUENCE { INTEGER r, INTEGER s }` strictly: definite short or long lengths, no trailing
/// bytes, positive integers in minimal form.
pub fn parse_signature(der: &[u8]) -> Result<RawSignature<'_>, SignatureError> {
    let (tag, body, rest) = read_tlv(der)?;
    if tag != 0x30 || !rest.is_empty() {
        return Err(SignatureError::MalformedDer);
    }
    let (r, body) = read_integer(body)?;
    let (s, body) = read_integer(body)?;
    if !body.is_empty() {
        return Err(SignatureError::MalformedDer);
    }
    Ok(RawSignature { r, s })
}

/// Encodes `r` and `s` (big-endian magnitudes) as a minimal DER signature.
pub fn encode_signature(r: &[u8], s: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(2 * (r.len() + 3));
    write_integer(&mut body, r);
    write_integer(&mut body, s);
    let mut out = Vec::with_capacity(body.len() + 3);
    out.push(0x30);
    write_len(&mut out, body.len());
    out.extend_from_slice(&body);
    out
}

/// Fails unless `0 < r`, `0 < s <= n/2` (Fabric's verifier rule).
pub fn check_low_s(der: &[u8], curve: Curve) -> Result<(), SignatureError> {
    let sig = parse_signature(der)?;
    if is_zero(sig.r) || is_zero(sig.s) {
        return Err(SignatureError::NonPositive);
    }
    let half = half_order(curve);
    if cmp_be(sig.s, &half) == std::cmp::Ordering::Greater {
        return Err(SignatureError::HighS);
    }
    Ok(())
}

/// Rewrites a signature with `s > n/2` to the equivalent one with `n - s`; a low-S signature is
/// returned re-encoded unchanged.
pub fn normalize_low_s(der: &[u8], curve: Curve) -> Result<Vec<u8>, SignatureError> {
    let sig = parse_signature(der)?;
    let half = half_order(curve);
    if cmp_be(sig.s, &half) != std::cmp::Ordering::Greater {
        return Ok(encode_signature(sig.r, sig.s));
    }
    let low = sub_be(order(curve), sig.s);
    Ok(encode_signature(sig.r, &low))
}

fn read_tlv(input: &[u8]) -> Result<(u8, &[u8], &[u8]), SignatureError> {
    let (&tag, rest) = input.split_first().ok_or(SignatureError::MalformedDer)?;
    let (&first, rest) = rest.split_first().ok_or(SignatureError::MalformedDer)?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else if first == 0x81 {
        let (&l, rest) = rest.split_first().ok_or(SignatureError::MalformedDer)?;
        if l < 0x80 {
            return Err(SignatureError::MalformedDer); // not minimal
        }
        (l as usize, rest)
    } else {
        return Err(SignatureError::MalformedDer); // signatures never need longer lengths
    };
    if rest.len() < len {
        return Err(SignatureError::MalformedDer);
    }
    Ok((tag, &rest[..len], &rest[len..]))
}

fn read_integer(input: &[u8]) -> Result<(&[u8], &[u8]), SignatureError> {
    let (tag, value, rest) = read_tlv(input)?;
    if tag != 0x02 || value.is_empty() {
        return Err(SignatureError::MalformedDer);
    }
    if value[0] & 0x80 != 0 {
        return Err(SignatureError::NonPositive);
    }
    if value.len() > 1 && value[0] == 0 && value[1] & 0x80 == 0 {
        return Err(SignatureError::MalformedDer); // not minimal
    }
    let magnitude = if value[0] == 0 && value.len() > 1 {
        &value[1..]
    } else {
        value
    };
    Ok((magnitude, rest))
}

/// Writes a DER length: the short form below 128, else the long form with the fewest bytes.
pub fn write_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
        return;
    }
    let be = len.to_be_bytes();
    let first = be.iter().position(|&b| b != 0).unwrap_or(be.len() - 1);
    out.push(0x80 | (be.len() - first) as u8);
    out.extend_from_slice(&be[first..]);
}

/// Writes a non-negative INTEGER from its big-endian magnitude, in minimal two's complement.
pub fn write_integer(out: &mut Vec<u8>, magnitude: &[u8]) {
    let first_nonzero = magnitude
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(magnitude.len());
    let trimmed = &magnitude[first_nonzero..];
    out.push(0x02);
    if trimmed.is_empty() {
        out.push(1);
        out.push(0);
        return;
    }
    let pad = trimmed[0] & 0x80 != 0;
    write_len(out, trimmed.len() + usize::from(pad));
    if pad {
        out.push(0);
    }
    out.extend_from_slice(trimmed);
}

fn is_zero(v: &[u8]) -> bool {
    v.iter().all(|&b| b == 0)
}

fn strip(v: &[u8]) -> &[u8] {
    let i = v.iter().position(|&b| b != 0).unwrap_or(v.len());
    &v[i..]
}

/// Compares two big-endian magnitudes.
fn cmp_be(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    let (a, b) = (strip(a), strip(b));
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// n/2 (floor), big-endian.
fn half_order(curve: Curve) -> Vec<u8> {
    let n = order(curve);
    let mut out = vec![0u8; n.len()];
    let mut carry = 0u8;
    for (i, &byte) in n.iter().enumerate() {
        out[i] = (byte >> 1) | (carry << 7);
        carry = byte & 1;
    }
    out
}

/// a - b for big-endian magnitudes with a >= b.
fn sub_be(a: &[u8], b: &[u8]) -> Vec<u8> {
    let b = strip(b);
    let mut out = a.to_vec();
    let mut borrow = 0i16;
    for i in 0..out.len() {
        let ai = out.len() - 1 - i;
        let bv = if i < b.len() {
            b[b.len() - 1 - i] as i16
        } else {
            0
        };
        let mut v = out[ai] as i16 - bv - borrow;
        borrow = 0;
        if v < 0 {
            v += 256;
            borrow = 1;
        }
        out[ai] = v as u8;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_padding() {
        let r = [0x80u8; 32];
        let s = [0x01u8; 32];
        let der = encode_signature(&r, &s);
        // r needs a leading zero, s does not.
        assert_eq!(der.len(), 2 + (2 + 33) + (2 + 32));
        let parsed = parse_signature(&der).unwrap();
        assert_eq!(parsed.r, &r[..]);
        assert_eq!(parsed.s, &s[..]);
    }

    #[test]
    fn rejects_trailing_bytes_and_bad_tags() {
        let mut der = encode_signature(&[1], &[2]);
        der.push(0);
        assert_eq!(parse_signature(&der), Err(SignatureError::MalformedDer));
        assert_eq!(
            parse_signature(&[0x31, 0]),
            Err(SignatureError::MalformedDer)
        );
        assert_eq!(parse_signature(&[]), Err(SignatureError::MalformedDer));
        // Non-minimal integer (leading zero not needed).
        assert_eq!(
            parse_signature(&[0x30, 6, 2, 2, 0, 1, 2, 1, 1]),
            Err(SignatureError::MalformedDer)
        );
    }

    #[test]
    fn high_s_is_normalised_and_rejected() {
        let n = P256_ORDER;
        let high_s = sub_be(&n, &[1]); // n - 1 is maximally high
        let der = encode_signature(&[5], &high_s);
        assert_eq!(check_low_s(&der, Curve::P256), Err(SignatureError::HighS));
        let low = normalize_low_s(&der, Curve::P256).unwrap();
        let parsed = parse_signature(&low).unwrap();
        assert_eq!(parsed.s, &[1u8][..]);
        check_low_s(&low, Curve::P256).unwrap();
        // n/2 itself is allowed, n/2 + 1 is not.
        let half = half_order(Curve::P256);
        check_low_s(&encode_signature(&[5], &half), Curve::P256).unwrap();
        let mut above = half.clone();
        *above.last_mut().unwrap() += 1;
        assert_eq!(
            check_low_s(&encode_signature(&[5], &above), Curve::P256),
            Err(SignatureError::HighS)
        );
    }

    #[test]
    fn zero_values_rejected() {
        let der = encode_signature(&[0], &[1]);
        assert_eq!(
            check_low_s(&der, Curve::P256),
            Err(SignatureError::NonPositive)
        );
    }
}
