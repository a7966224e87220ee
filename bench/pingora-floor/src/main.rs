//! The least a Pingora 0.9 HTTP/1 proxy does per request: one upstream peer, no filters, no
//! logging, the same release profile and allocator as Zentinel's benchmark build. What it
//! costs per request is the floor under Zentinel's (`docs/benchmarks.md`).
//!
//! Usage: `pingora-floor LISTEN BACKEND` (defaults 127.0.0.1:9301 and 127.0.0.1:9001).

use async_trait::async_trait;
use pingora::prelude::*;
use pingora::proxy::{ProxyHttp, Session, http_proxy_service};
use pingora::server::configuration::ServerConf;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Forwards every request to one backend.
struct Floor(String);

#[async_trait]
impl ProxyHttp for Floor {
    type CTX = ();
    fn new_ctx(&self) {}
    async fn upstream_peer(&self, _s: &mut Session, _c: &mut ()) -> Result<Box<HttpPeer>> {
        Ok(Box::new(HttpPeer::new(self.0.as_str(), false, String::new())))
    }
}

fn main() {
    let listen = std::env::args().nth(1).unwrap_or("127.0.0.1:9301".into());
    let backend = std::env::args().nth(2).unwrap_or("127.0.0.1:9001".into());
    let mut conf = ServerConf::default();
    // One worker thread and a pool as large as the Zentinel candidate's.
    conf.threads = 1;
    conf.upstream_keepalive_pool_size = 512;
    let mut server = Server::new_with_opt_and_conf(None, conf);
    let mut svc = http_proxy_service(&server.configuration, Floor(backend));
    svc.add_tcp(&listen);
    server.add_service(svc);
    server.run_forever();
}
