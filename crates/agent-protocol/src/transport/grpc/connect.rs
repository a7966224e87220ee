//! The proxy's side of the gRPC carrier: one TCP connection, one HTTP/2 connection on it,
//! one `Session` call on that. Everything here is bounded by the caller's handshake timeout.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::Uri;
use http::uri::{Authority, PathAndQuery, Scheme};
use hyper::body::Incoming;
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tonic::Status;
use tonic::body::Body;

use super::{AbortOnDrop, FrameCodec, GrpcSource, SESSION_PATH, StreamClosed, message_limit};

/// Connects to the agent at `addr` (`"host:port"` or `"http://host:port"`) and opens its
/// `Session`, which sends the frames queued on `queue`. The source yields the agent's frames
/// once it answers; the writer resolves when the stream stops taking frames.
pub(crate) async fn connect(
    addr: &str,
    max_frame: u32,
    queue: mpsc::Receiver<Bytes>,
) -> io::Result<(GrpcSource, StreamClosed)> {
    let (authority, origin) = parse(addr)?;
    let tcp = TcpStream::connect(authority.as_str()).await?;
    tcp.set_nodelay(true)?;
    let (sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .map_err(io::Error::other)?;
    let connection = AbortOnDrop(tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "agent HTTP/2 connection failed");
        }
    }));
    let limit = message_limit(max_frame);
    let mut grpc = tonic::client::Grpc::with_origin(H2(sender), origin)
        .max_decoding_message_size(limit)
        .max_encoding_message_size(limit);
    let (outbound, closed) = super::outbound(queue);
    let opening = Box::pin(async move {
        grpc.ready()
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        let path = PathAndQuery::from_static(SESSION_PATH);
        let response = grpc
            .streaming(tonic::Request::new(outbound), path, FrameCodec)
            .await?;
        Ok(response.into_inner())
    });
    Ok((GrpcSource::opening(opening, max_frame, connection), closed))
}

/// Splits `"host:port"` or `"http://host:port"` into the address to dial and the origin of
/// the requests. `https` is refused: TLS for gRPC agents is not built yet.
fn parse(addr: &str) -> io::Result<(Authority, Uri)> {
    let invalid = |why: String| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("gRPC endpoint {addr:?}: {why}"),
        )
    };
    let rest = match addr.split_once("://") {
        None => addr,
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => rest,
        Some((scheme, _)) => {
            return Err(invalid(format!(
                "scheme {scheme:?} is not supported (plain-text `http` only; no TLS yet)"
            )));
        }
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let authority: Authority = rest.parse().map_err(|e| invalid(format!("{e}")))?;
    if authority.port_u16().is_none() || authority.as_str().contains('@') {
        return Err(invalid("expected host:port".into()));
    }
    let origin = Uri::builder()
        .scheme(Scheme::HTTP)
        .authority(authority.clone())
        .path_and_query("/")
        .build()
        .map_err(|e| invalid(format!("{e}")))?;
    Ok((authority, origin))
}

/// hyper's HTTP/2 request sender as the service tonic's client calls.
#[derive(Debug, Clone)]
struct H2(SendRequest<Body>);

type ResponseFuture =
    Pin<Box<dyn Future<Output = Result<http::Response<Incoming>, hyper::Error>> + Send>>;

impl tower_service::Service<http::Request<Body>> for H2 {
    type Response = http::Response<Incoming>;
    type Error = hyper::Error;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), hyper::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> ResponseFuture {
        Box::pin(self.0.send_request(request))
    }
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::panic,
        clippy::unwrap_used,
        clippy::expect_used,
        reason = "test code fails loudly"
    )]

    use super::*;

    #[test]
    fn endpoints_are_host_port_with_an_optional_http_scheme() {
        for (addr, dial) in [
            ("127.0.0.1:50051", "127.0.0.1:50051"),
            ("http://waf.internal:50051", "waf.internal:50051"),
            ("HTTP://[::1]:7000/", "[::1]:7000"),
        ] {
            let (authority, origin) = parse(addr).unwrap();
            assert_eq!(authority.as_str(), dial);
            assert_eq!(origin.to_string(), format!("http://{dial}/"));
        }
        for bad in [
            "https://waf:50051",
            "unix:///run/waf.sock",
            "waf.internal",
            "http://user@waf:1",
            "waf:1/path",
            "",
        ] {
            let e = parse(bad).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{bad}");
        }
    }
}
