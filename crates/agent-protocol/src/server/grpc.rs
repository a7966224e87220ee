//! Serving an agent over gRPC (feature `grpc`): `zentinel.agent.v2.AgentService/Session` on
//! a TCP listener, plain-text HTTP/2. Each `Session` stream is one protocol connection, run by
//! the same code as a Unix-socket connection.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::task::JoinSet;

use super::{OUT_QUEUE, connection};
use crate::sdk::{Agent, ServeOptions};
use crate::transport::grpc::accept;

/// Binds `addr` and serves `agent` there over gRPC with [`ServeOptions::default`]. Returns only
/// when binding or accepting fails.
///
/// The HTTP/2 is plain text: TLS for gRPC agents is not built yet, so listen on loopback or a
/// private network.
pub async fn serve_grpc<A: Agent>(addr: SocketAddr, agent: Arc<A>) -> io::Result<()> {
    serve_grpc_with(
        TcpListener::bind(addr).await?,
        agent,
        ServeOptions::default(),
    )
    .await
}

/// Serves `agent` over gRPC on `listener` with `options`. Returns only when accepting fails;
/// dropping the future closes every connection it accepted.
pub async fn serve_grpc_with<A: Agent>(
    listener: TcpListener,
    agent: Arc<A>,
    options: ServeOptions,
) -> io::Result<()> {
    let options = Arc::new(options);
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (tcp, _) = accepted?;
                // Frames are small and latency-bound; a failure here only costs latency.
                let _ = tcp.set_nodelay(true);
                let settings = accept::Settings {
                    max_frame: options.max_frame,
                    queue: OUT_QUEUE,
                    first_session: options.handshake_timeout,
                };
                let (agent, options) = (agent.clone(), options.clone());
                connections.spawn(accept::serve_connection(tcp, settings, move |s| {
                    connection(s.source, s.queue, s.closed, agent.clone(), options.clone())
                }));
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}
