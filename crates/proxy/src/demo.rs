//! The built-in demo upstream: a small HTTP server that answers every request with what it
//! received through the proxy, so `curl http://127.0.0.1:8080/` shows the route, the request
//! ID and the forwarding headers at once.

use async_trait::async_trait;
use http::Response;
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;

/// The demo upstream application.
#[derive(Debug, Default)]
pub(crate) struct DemoUpstream;

#[async_trait]
impl ServeHttp for DemoUpstream {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let req = session.req_header();
        let mut body = String::from(
            "Hello from the Zentinel demo upstream.\n\nThe request as it arrived here, through the proxy:\n\n",
        );
        body.push_str(&format!("  {} {}\n", req.method, req.uri));
        for (name, value) in &req.headers {
            body.push_str(&format!(
                "  {name}: {}\n",
                String::from_utf8_lossy(value.as_bytes())
            ));
        }
        body.push_str("\nThe response carries the route in `x-zentinel-route` and the request ID in `x-request-id`.\nRun your own configuration with: zentinel run -c zentinel.kdl\n");
        Response::builder()
            .status(200)
            .header("content-type", "text/plain; charset=utf-8")
            .header("content-length", body.len())
            .body(body.into_bytes())
            .unwrap_or_else(|_| Response::new(Vec::new()))
    }
}
