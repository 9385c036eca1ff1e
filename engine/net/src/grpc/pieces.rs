//! A received message as the DATA chunk pieces it arrived in, decoded without gathering them.
//!
//! Our writer sends a block's envelope payload as a DATA frame of its own (see
//! [`super::encode_batch`]), so a block message arrives in two or three chunks: the end of one
//! with the gRPC prefix and the envelope's first field key, the payload chunk, and perhaps the
//! start of the next with the signature. Gathering those into one buffer copied every block once
//! more per received copy. Decoding from [`Pieces`] instead hands the payload on as a slice of
//! the chunk it arrived in ([`Buf::copy_to_bytes`] below); only fields under
//! [`SLICE_LEN_MIN`] bytes are copied, so a small field never keeps a large chunk alive.

use std::collections::VecDeque;

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Message parts of at least this many bytes (blocks) are sliced out of the chunk they arrived
/// in; smaller ones are copied into allocations of their own (a stored alive message must not keep
/// HTTP/2's read buffer alive).
pub(crate) const SLICE_LEN_MIN: usize = 4 * 1024;

/// A message's bytes, in order, as pieces of the chunks they arrived in (never an empty piece).
#[derive(Debug, Default)]
pub(crate) struct Pieces {
    /// The piece being read.
    front: Bytes,
    /// The piece after it: a block in two pieces (the usual case) needs no `rest`.
    second: Bytes,
    /// The pieces after those (empty, and so no allocation, for up to two pieces). Non-empty
    /// only when `second` is.
    rest: VecDeque<Bytes>,
    /// Bytes in all pieces together.
    remaining: usize,
    /// The message is one allocation of its own (a small message copied out of its chunk), so
    /// slicing any part of it pins nothing else.
    detached: bool,
}

impl Pieces {
    /// A small message already copied into an allocation of its own: every part is sliced.
    pub(crate) fn detached(bytes: Bytes) -> Self {
        Self {
            detached: true,
            ..Self::one(bytes)
        }
    }

    /// A message in one piece of a chunk.
    pub(crate) fn one(bytes: Bytes) -> Self {
        Self {
            remaining: bytes.len(),
            front: bytes,
            ..Self::default()
        }
    }

    /// Appends the next piece of the message (an empty one is ignored).
    pub(crate) fn push(&mut self, piece: Bytes) {
        if piece.is_empty() {
            return;
        }
        self.remaining += piece.len();
        if self.front.is_empty() {
            self.front = piece;
        } else if self.second.is_empty() {
            self.second = piece;
        } else {
            self.rest.push_back(piece);
        }
    }

    /// How many pieces are left.
    pub(crate) fn pieces_len(&self) -> usize {
        usize::from(!self.front.is_empty()) + usize::from(!self.second.is_empty()) + self.rest.len()
    }

    /// The front piece (for tests of where the bytes live).
    #[cfg(test)]
    pub(crate) fn chunk_bytes(&self) -> Bytes {
        self.front.clone()
    }

    /// Moves to the next piece once the front one is used up.
    fn next_piece(&mut self) {
        if self.front.is_empty() {
            self.front = std::mem::take(&mut self.second);
            self.second = self.rest.pop_front().unwrap_or_default();
        }
    }
}

impl Buf for Pieces {
    fn remaining(&self) -> usize {
        self.remaining
    }

    fn chunk(&self) -> &[u8] {
        &self.front
    }

    /// Panics past the end, as every `Buf` does; prost checks lengths against `remaining` first.
    fn advance(&mut self, mut cnt: usize) {
        assert!(cnt <= self.remaining, "advance past the end of a message");
        self.remaining -= cnt;
        while cnt > 0 {
            let n = cnt.min(self.front.len());
            self.front.advance(n);
            cnt -= n;
            self.next_piece();
        }
    }

    /// A slice of the front piece when it holds all `len` bytes and they are at least
    /// [`SLICE_LEN_MIN`] (any size when the message is detached); otherwise a copy into an
    /// allocation of exactly `len` bytes.
    fn copy_to_bytes(&mut self, len: usize) -> Bytes {
        assert!(
            len <= self.remaining,
            "copy_to_bytes past the end of a message"
        );
        if len <= self.front.len() && (self.detached || len >= SLICE_LEN_MIN) {
            self.remaining -= len;
            let slice = self.front.split_to(len);
            self.next_piece();
            return slice;
        }
        let mut copy = BytesMut::with_capacity(len);
        copy.put((&mut *self).take(len));
        copy.freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pieces(parts: &[&Bytes]) -> Pieces {
        let mut p = Pieces::default();
        for part in parts {
            p.push((*part).clone());
        }
        p
    }

    fn within(outer: &Bytes, inner: &Bytes) -> bool {
        let range = outer.as_ptr() as usize..outer.as_ptr() as usize + outer.len();
        range.contains(&(inner.as_ptr() as usize))
    }

    #[test]
    fn reads_every_byte_across_pieces_in_order() {
        let a = Bytes::from_static(b"abc");
        let b = Bytes::from_static(b"defgh");
        let c = Bytes::from_static(b"ij");
        let mut p = pieces(&[&a, &Bytes::new(), &b, &c]);
        assert_eq!(p.pieces_len(), 3);
        assert_eq!(p.remaining(), 10);
        assert_eq!(p.get_u8(), b'a');
        p.advance(3);
        assert_eq!(p.chunk(), b"efgh");
        assert_eq!(p.copy_to_bytes(5), Bytes::from_static(b"efghi"));
        assert_eq!(p.chunk(), b"j");
        p.advance(1);
        assert_eq!(p.remaining(), 0);
        assert_eq!(p.chunk(), b"");
    }

    #[test]
    fn a_large_part_inside_one_piece_is_sliced_and_others_are_copied() {
        let head = Bytes::from_static(b"key");
        let block = Bytes::from(vec![7u8; SLICE_LEN_MIN + 10]);
        let tail = Bytes::from(vec![9u8; 100]);
        let mut p = pieces(&[&head, &block, &tail]);
        p.advance(head.len());
        let sliced = p.copy_to_bytes(block.len());
        assert!(within(&block, &sliced), "a block is a slice of its piece");
        let small = p.copy_to_bytes(50);
        assert!(!within(&tail, &small), "a small part is copied");
        assert_eq!(small, tail.slice(..50));

        // Every part of a detached message is a slice of it.
        let mut p = Pieces::detached(tail.clone());
        assert!(within(&tail, &p.copy_to_bytes(50)));

        // A large part across two pieces is gathered into one allocation.
        let mut p = pieces(&[&head, &block]);
        let gathered = p.copy_to_bytes(head.len() + block.len());
        assert_eq!(gathered, [head.clone(), block.clone()].concat());
        assert_eq!(p.remaining(), 0);
    }

    #[test]
    #[should_panic(expected = "past the end")]
    fn advancing_past_the_end_panics_like_every_buf() {
        pieces(&[&Bytes::from_static(b"ab")]).advance(3);
    }
}
