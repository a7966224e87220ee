//! Frame carriers shared by the client and the agent SDK.
//!
//! A connection is a [`FrameSource`] (whole frames from the peer) plus a writer draining a
//! queue of encoded frames (`length | type | payload`, exactly what the Unix socket carries)
//! to the peer. Over a byte stream ([`ByteSource`], [`write_frames`]) the frames are the
//! bytes on the wire; over gRPC (`grpc`, feature `grpc`) each one travels as a `Frame`
//! message. Everything above this module — handshake, encodings, dispatch, limits — sees only
//! frames and the queue, so the protocol rules are the same code for every carrier.
//!
//! Reading never buffers more than one frame (bounded by the maximum) plus one read chunk;
//! both loops are cancel-safe, so they can sit in a `select!` beside each other.

#[cfg(feature = "grpc")]
pub(crate) mod grpc;

use std::future::Future;
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
    /// The peer sent a carrier message that holds no frame (gRPC only): undecodable, a type
    /// above 255, or above the carrier's size limit before the payload was even read.
    #[cfg_attr(
        not(feature = "grpc"),
        expect(dead_code, reason = "built only for gRPC")
    )]
    Carrier(String),
}

impl ReadError {
    /// What the peer did wrong, when reading stopped because it broke the protocol.
    #[cfg_attr(
        not(feature = "client"),
        expect(dead_code, reason = "the client counts them")
    )]
    pub(crate) fn violation(&self) -> Option<String> {
        match self {
            Self::Protocol(e) => Some(e.to_string()),
            Self::Carrier(why) => Some(why.clone()),
            Self::Eof | Self::Io(_) => None,
        }
    }
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
            Self::Carrier(why) => write!(f, "protocol error: {why}"),
        }
    }
}

/// Whole frames from a peer, checked against the connection's maximum.
pub(crate) trait FrameSource: Send {
    /// The next frame. Cancel-safe: nothing already received is lost when the future is
    /// dropped. After an error the connection is done.
    fn next_frame(&mut self) -> impl Future<Output = Result<Frame, ReadError>> + Send;
}

/// Frames read from a byte stream (a Unix socket's read half).
#[derive(Debug)]
pub(crate) struct ByteSource<R> {
    reader: R,
    buf: BytesMut,
    decoder: FrameDecoder,
}

impl<R> ByteSource<R> {
    pub(crate) fn new(reader: R, max_frame: u32) -> Self {
        Self {
            reader,
            buf: BytesMut::new(),
            decoder: FrameDecoder::new(max_frame),
        }
    }
}

impl<R: AsyncRead + Unpin + Send> FrameSource for ByteSource<R> {
    /// Reads until the buffer holds a whole frame; bytes already read stay in it.
    async fn next_frame(&mut self) -> Result<Frame, ReadError> {
        loop {
            if let Some(frame) = self.decoder.decode(&mut self.buf)? {
                return Ok(frame);
            }
            if self.buf.capacity() - self.buf.len() < READ_CHUNK {
                self.buf.reserve(READ_CHUNK);
            }
            if self.reader.read_buf(&mut self.buf).await? == 0 {
                return Err(ReadError::Eof);
            }
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
