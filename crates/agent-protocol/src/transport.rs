//! Byte-stream plumbing shared by the client and the agent SDK: read whole frames from a
//! socket, and drain a queue of encoded frames into it.
//!
//! Reading never buffers more than one frame (bounded by the maximum) plus one read chunk;
//! both loops are cancel-safe, so they can sit in a `select!` beside each other.

use std::io;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::sync::mpsc;

use crate::error::ProtocolError;
use crate::frame::{Frame, FrameDecoder};

/// Room kept free in the read buffer for the next read.
const READ_CHUNK: usize = 8 * 1024;

/// Why reading from a peer stopped.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The peer closed the stream.
    Eof,
    /// The socket failed.
    Io(io::Error),
    /// The peer broke the framing.
    Protocol(ProtocolError),
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

impl From<ProtocolError> for ReadError {
    fn from(e: ProtocolError) -> Self {
        Self::Protocol(e)
    }
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Eof => f.write_str("peer closed the connection"),
            Self::Io(e) => write!(f, "i/o error: {e}"),
            Self::Protocol(e) => write!(f, "protocol error: {e}"),
        }
    }
}

/// Reads until `buf` holds a whole frame and returns it. Cancel-safe: bytes already read stay
/// in `buf`.
pub(crate) async fn next_frame<R: AsyncRead + Unpin>(
    r: &mut R,
    buf: &mut BytesMut,
    decoder: FrameDecoder,
) -> Result<Frame, ReadError> {
    loop {
        if let Some(frame) = decoder.decode(buf)? {
            return Ok(frame);
        }
        if buf.capacity() - buf.len() < READ_CHUNK {
            buf.reserve(READ_CHUNK);
        }
        if r.read_buf(buf).await? == 0 {
            return Err(ReadError::Eof);
        }
    }
}

/// Writes every frame queued on `rx`, flushing whenever the queue is empty. Returns when the
/// socket fails or every sender is gone.
pub(crate) async fn write_frames<W: AsyncWrite + Unpin>(
    w: W,
    mut rx: mpsc::Receiver<Bytes>,
) -> io::Result<()> {
    let mut w = BufWriter::new(w);
    while let Some(frame) = rx.recv().await {
        w.write_all(&frame).await?;
        while let Ok(more) = rx.try_recv() {
            w.write_all(&more).await?;
        }
        w.flush().await?;
    }
    w.shutdown().await
}
