//! TCP with read-ahead, under TLS.
//!
//! rustls reads its socket in pieces of at most 4 KiB: its deframer buffer grows by that much
//! per `read_tls`. A 16 KiB TLS record therefore cost four `recvfrom` calls, and a wake-up that
//! found three 10 KiB gossip messages queued about ten. [`ReadAheadTcp`] reads whatever the socket
//! holds, up to [`READ_AHEAD_LEN_MAX`] bytes, in one call and hands it to rustls from memory. The
//! buffer is allocated when a read needs it and released once drained, so an idle connection holds
//! none, and a node whose connections are served by one thread reuses the same allocation.
//!
//! It is also where wire bytes are counted: every byte read from or written to the socket (TLS
//! records and handshakes included, TCP/IP headers not) is added to the comm's [`WireBytes`].

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// The most one socket read takes in: two full TLS records.
pub const READ_AHEAD_LEN_MAX: usize = 32 * 1024;

/// Bytes moved through the sockets of one comm's gossip connections since it started, both
/// directions, inbound and outbound connections alike (`comm.wire_bytes_*` in `stats`).
#[derive(Debug, Default)]
pub struct WireBytes {
    sent_bytes: AtomicU64,
    received_bytes: AtomicU64,
}

impl WireBytes {
    /// Bytes written to the sockets so far.
    pub fn sent_bytes(&self) -> u64 {
        self.sent_bytes.load(Ordering::Relaxed)
    }

    /// Bytes read from the sockets so far.
    pub fn received_bytes(&self) -> u64 {
        self.received_bytes.load(Ordering::Relaxed)
    }

    /// Adds `len_bytes` written and returns it.
    fn counted_sent(&self, len_bytes: usize) -> usize {
        self.sent_bytes
            .fetch_add(len_bytes as u64, Ordering::Relaxed);
        len_bytes
    }

    fn add_received(&self, len_bytes: usize) {
        self.received_bytes
            .fetch_add(len_bytes as u64, Ordering::Relaxed);
    }
}

/// A TCP stream whose small reads are served from one large read (see the module docs). Writes
/// go straight to the socket. Both directions are counted in a [`WireBytes`].
#[derive(Debug)]
pub struct ReadAheadTcp {
    tcp: TcpStream,
    /// Bytes read from the socket and not yet handed out; empty (no allocation) between reads.
    ahead: BytesMut,
    wire: Arc<WireBytes>,
}

impl ReadAheadTcp {
    /// Wraps a connected stream; its socket traffic is counted in `wire`.
    pub fn new(tcp: TcpStream, wire: Arc<WireBytes>) -> Self {
        Self {
            tcp,
            ahead: BytesMut::new(),
            wire,
        }
    }

    /// The socket.
    pub fn get_ref(&self) -> &TcpStream {
        &self.tcp
    }

    /// Fills `ahead` with one socket read; leaves it empty at end of stream.
    ///
    /// The read goes through tokio's `AsyncRead`, which treats a read that did not fill the space
    /// offered as having drained the socket and waits for the next readiness event. A `try_read`
    /// loop instead found out with one more `recvfrom` per wake-up, failing with `EAGAIN` (about a
    /// third of all `recvfrom` calls at 500 blocks/s).
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.ahead.reserve(READ_AHEAD_LEN_MAX);
        tokio_util::io::poll_read_buf(Pin::new(&mut self.tcp), cx, &mut self.ahead)
            .map_ok(|n| self.wire.add_received(n))
    }
}

impl AsyncRead for ReadAheadTcp {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.ahead.is_empty() {
            if buf.remaining() >= READ_AHEAD_LEN_MAX {
                let before = buf.filled().len();
                let read = Pin::new(&mut this.tcp).poll_read(cx, buf);
                this.wire.add_received(buf.filled().len() - before);
                return read;
            }
            let filled = this.poll_fill(cx);
            if this.ahead.is_empty() {
                // Pending, an error or end of stream: hold no buffer meanwhile.
                this.ahead = BytesMut::new();
                return filled;
            }
        }
        let n = this.ahead.len().min(buf.remaining());
        buf.put_slice(&this.ahead[..n]);
        this.ahead.advance(n);
        if this.ahead.is_empty() {
            this.ahead = BytesMut::new();
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for ReadAheadTcp {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        Pin::new(&mut this.tcp)
            .poll_write(cx, buf)
            .map_ok(|n| this.wire.counted_sent(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        Pin::new(&mut this.tcp)
            .poll_write_vectored(cx, bufs)
            .map_ok(|n| this.wire.counted_sent(n))
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    async fn pair() -> (TcpStream, ReadAheadTcp) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (dialed, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
        let wire = Arc::new(WireBytes::default());
        (
            dialed.unwrap(),
            ReadAheadTcp::new(accepted.unwrap().0, wire),
        )
    }

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    #[tokio::test]
    async fn small_reads_see_every_byte_in_order_then_end_of_stream() {
        let (mut writer, mut reader) = pair().await;
        let sent = pattern(3 * READ_AHEAD_LEN_MAX + 1234);
        let to_send = sent.clone();
        let send = tokio::spawn(async move {
            for piece in to_send.chunks(10 * 1024 + 17) {
                writer.write_all(piece).await.unwrap();
            }
            writer.shutdown().await.unwrap();
        });
        let mut got = Vec::new();
        let mut piece = [0u8; 4096];
        loop {
            let n = reader.read(&mut piece).await.unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&piece[..n]);
        }
        send.await.unwrap();
        assert_eq!(got.len(), sent.len());
        assert_eq!(reader.wire.received_bytes(), sent.len() as u64);
        assert!(got == sent, "bytes differ");
        assert!(reader.ahead.is_empty() && reader.ahead.capacity() == 0);
    }

    #[tokio::test]
    async fn one_socket_read_serves_many_small_reads() {
        let (mut writer, mut reader) = pair().await;
        let sent = pattern(20 * 1024);
        writer.write_all(&sent).await.unwrap();
        // Wait until the whole write is readable, then take it in 4 KiB pieces.
        let mut first = [0u8; 4096];
        let mut got = Vec::new();
        while got.len() < sent.len() {
            let n = reader.read(&mut first).await.unwrap();
            got.extend_from_slice(&first[..n]);
            if got.len() == 4096 {
                assert!(
                    !reader.ahead.is_empty(),
                    "the first read took in more than it handed out"
                );
            }
        }
        assert!(got == sent);
        assert_eq!(reader.ahead.capacity(), 0, "drained buffer released");
    }

    #[tokio::test]
    async fn large_reads_bypass_the_buffer() {
        let (mut writer, mut reader) = pair().await;
        let sent = pattern(1000);
        writer.write_all(&sent).await.unwrap();
        let mut big = vec![0u8; READ_AHEAD_LEN_MAX];
        let n = reader.read(&mut big).await.unwrap();
        assert!(n > 0 && big[..n] == sent[..n]);
        assert_eq!(reader.ahead.capacity(), 0);
    }

    #[tokio::test]
    async fn every_byte_written_and_read_is_counted_once() {
        let (mut peer, mut ours) = pair().await;
        ours.write_all(&pattern(100_000)).await.unwrap();
        ours.write_all(b"x").await.unwrap();
        let mut sink = vec![0u8; 100_001];
        peer.read_exact(&mut sink).await.unwrap();
        peer.write_all(&pattern(70_000)).await.unwrap();
        peer.shutdown().await.unwrap();
        // One large read goes straight to the socket, the rest through the read-ahead buffer.
        let mut big = vec![0u8; 2 * READ_AHEAD_LEN_MAX];
        let mut got = ours.read(&mut big).await.unwrap();
        let mut small = [0u8; 1000];
        loop {
            let n = ours.read(&mut small).await.unwrap();
            if n == 0 {
                break;
            }
            got += n;
        }
        assert_eq!(got, 70_000);
        assert_eq!(ours.wire.sent_bytes(), 100_001);
        assert_eq!(ours.wire.received_bytes(), 70_000);
    }
}
