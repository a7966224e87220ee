//! The admin API: a Pingora service of its own on `admin.address`, separate from every
//! traffic listener (no traffic listener ever routes to it). Endpoints: `GET /health`,
//! `/ready`, the metrics path (`/metrics` by default), `/config`, `/upstreams`, `/agents`,
//! and `POST /reload`.
//!
//! With `token-file`, every endpoint but `/health` requires `Authorization: Bearer
//! <token>`, compared in constant time. Everything is bounded: at most
//! [`MAX_CONNECTIONS`] connections, a header-read deadline, request bodies never read (a
//! request that has one is answered and its connection closed).
//!
//! It never serves traffic, never shows the token, and never changes anything except
//! through the same reload SIGHUP runs.

mod views;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use async_trait::async_trait;
use http::{Method, Response, StatusCode, header};
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use serde_json::{Value, json};

use crate::BuildError;
use crate::connections::ConnectionLimits;
use crate::metrics::scrape;
use crate::metrics::text::CONTENT_TYPE;
use crate::reload::{Refused, Reload};
use crate::runtime::{Runtime, Shared};

/// Admin connections open at once, at most.
pub(crate) const MAX_CONNECTIONS: usize = 64;
/// The header-read deadline of admin connections.
pub(crate) const HEADER_DEADLINE: Duration = Duration::from_secs(10);

/// The bearer token of the admin API, read from `admin.token-file`. Never printed.
pub(crate) struct AdminToken(Box<[u8]>);

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken([redacted])")
    }
}

impl AdminToken {
    /// Reads the token: the file's content without surrounding white space. An unreadable
    /// file or an empty token is an error.
    pub(crate) fn read(file: &Path) -> Result<Self, BuildError> {
        let err = |reason: String| BuildError::AdminToken {
            file: file.display().to_string(),
            reason,
        };
        let text = std::fs::read_to_string(file).map_err(|e| err(e.to_string()))?;
        let token = text.trim();
        if token.is_empty() {
            return Err(err("the file holds no token".to_owned()));
        }
        Ok(Self(token.as_bytes().into()))
    }

    /// Whether `given` is the token, in time that depends only on the token's length.
    fn matches(&self, given: &[u8]) -> bool {
        let mut diff = self.0.len() ^ given.len();
        for (i, want) in self.0.iter().enumerate() {
            diff |= usize::from(want ^ given.get(i).copied().unwrap_or(0));
        }
        std::hint::black_box(diff) == 0
    }

    /// Whether an `Authorization` header value carries the token as a bearer token.
    fn admits(&self, authorization: Option<&[u8]>) -> bool {
        let Some(value) = authorization else {
            return false;
        };
        let Some(space) = value.iter().position(|b| *b == b' ') else {
            return false;
        };
        let (scheme, rest) = value.split_at(space);
        scheme.eq_ignore_ascii_case(b"bearer") && self.matches(rest.trim_ascii())
    }
}

/// The admin API application.
#[derive(Debug)]
pub(crate) struct AdminApi {
    /// The current runtime.
    pub shared: Arc<Shared>,
    /// The reload SIGHUP also runs.
    pub reload: Arc<Reload>,
    /// Set once a graceful shutdown has begun.
    pub draining: Arc<AtomicBool>,
    /// The traffic listeners' connection counters.
    pub connections: Arc<ConnectionLimits>,
}

/// An answer.
#[derive(Debug)]
struct Reply {
    status: StatusCode,
    content_type: &'static str,
    body: Vec<u8>,
    headers: Vec<(header::HeaderName, &'static str)>,
}

impl Reply {
    fn text(status: StatusCode, body: impl Into<String>) -> Self {
        Self {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.into().into_bytes(),
            headers: Vec::new(),
        }
    }

    fn json(status: StatusCode, v: &Value) -> Self {
        let mut body = serde_json::to_vec_pretty(v).unwrap_or_default();
        body.push(b'\n');
        Self {
            status,
            content_type: "application/json",
            body,
            headers: Vec::new(),
        }
    }

    fn with(mut self, name: header::HeaderName, value: &'static str) -> Self {
        self.headers.push((name, value));
        self
    }

    fn into_response(self) -> Response<Vec<u8>> {
        let mut b = Response::builder()
            .status(self.status)
            .header(header::CONTENT_TYPE, self.content_type)
            .header(header::CONTENT_LENGTH, self.body.len())
            .header(header::CACHE_CONTROL, "no-store");
        for (name, value) in self.headers {
            b = b.header(name, value);
        }
        b.body(self.body).unwrap_or_else(|_| {
            let mut r = Response::new(Vec::new());
            *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            r
        })
    }
}

/// What a path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Health,
    Ready,
    Metrics,
    Config,
    Upstreams,
    Agents,
    Reload,
}

impl Endpoint {
    /// The endpoint at `path`; the metrics path (when metrics are enabled) comes first.
    fn at(path: &str, rt: &Runtime) -> Option<Self> {
        let m = &rt.config.observability.metrics;
        if m.enabled && path == m.path {
            return Some(Self::Metrics);
        }
        Some(match path {
            "/health" => Self::Health,
            "/ready" => Self::Ready,
            "/config" => Self::Config,
            "/upstreams" => Self::Upstreams,
            "/agents" => Self::Agents,
            "/reload" => Self::Reload,
            _ => return None,
        })
    }

    fn method(self) -> (Method, &'static str) {
        match self {
            Self::Reload => (Method::POST, "POST"),
            _ => (Method::GET, "GET"),
        }
    }
}

impl AdminApi {
    async fn answer(&self, method: &Method, path: &str, authorization: Option<&[u8]>) -> Reply {
        let rt = self.shared.load();
        let endpoint = Endpoint::at(path, &rt);
        let open = endpoint == Some(Endpoint::Health);
        if let Some(token) = &rt.admin_token
            && !open
            && !token.admits(authorization)
        {
            return Reply::text(StatusCode::UNAUTHORIZED, "a bearer token is required\n")
                .with(header::WWW_AUTHENTICATE, "Bearer realm=\"zentinel-admin\"");
        }
        let Some(endpoint) = endpoint else {
            return Reply::text(StatusCode::NOT_FOUND, "no such admin endpoint\n");
        };
        let (allowed, allow) = endpoint.method();
        if *method != allowed {
            return Reply::text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n")
                .with(header::ALLOW, allow);
        }
        let draining = self.draining.load(std::sync::atomic::Ordering::Relaxed);
        match endpoint {
            Endpoint::Health => Reply::text(StatusCode::OK, "ok\n"),
            Endpoint::Ready => match views::readiness(&rt, draining) {
                Ok(()) => Reply::text(StatusCode::OK, "ready\n"),
                Err(why) => Reply::text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("not ready: {}\n", why.join("; ")),
                ),
            },
            Endpoint::Metrics => Reply {
                content_type: CONTENT_TYPE,
                ..Reply::text(StatusCode::OK, scrape::render(&rt, &self.connections))
            },
            Endpoint::Config => Reply::json(StatusCode::OK, &views::config(&rt)),
            Endpoint::Upstreams => Reply::json(StatusCode::OK, &views::upstreams(&rt)),
            Endpoint::Agents => Reply::json(StatusCode::OK, &views::agents(&rt)),
            Endpoint::Reload => {
                drop(rt);
                self.reload_now().await
            }
        }
    }

    async fn reload_now(&self) -> Reply {
        match self.reload.run_logged("admin API").await {
            Ok(s) => Reply::json(
                StatusCode::OK,
                &json!({
                    "reloaded": true,
                    "routes": s.routes,
                    "upstreams": s.upstreams,
                    "agents": s.agents,
                    "config_hash": format!("{:016x}", s.config_hash),
                }),
            ),
            Err(why) => {
                let status = match why {
                    Refused::Invalid(_) | Refused::Build(_) => StatusCode::UNPROCESSABLE_ENTITY,
                    Refused::NotLive(_) | Refused::NoFile => StatusCode::CONFLICT,
                };
                Reply::json(
                    status,
                    &json!({ "reloaded": false, "reason": why.to_string() }),
                )
            }
        }
    }
}

#[async_trait]
impl ServeHttp for AdminApi {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let req = session.req_header();
        let method = req.method.clone();
        let path = req.uri.path().to_owned();
        let authorization = req
            .headers
            .get(header::AUTHORIZATION)
            .map(|v| v.as_bytes().to_vec());
        let has_body = req.headers.contains_key(header::TRANSFER_ENCODING)
            || crate::limits::declared_body_len(req).is_some_and(|n| n > 0);
        if has_body {
            // Bodies are never read: close rather than drain it.
            session.set_keepalive(None);
        }
        self.answer(&method, &path, authorization.as_deref())
            .await
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(t: &str) -> AdminToken {
        AdminToken(t.as_bytes().into())
    }

    #[test]
    fn bearer_tokens_are_compared_whole() {
        let t = token("s3cret");
        assert!(t.admits(Some(b"Bearer s3cret")));
        assert!(t.admits(Some(b"bearer  s3cret ")));
        for wrong in [
            &b"Bearer s3cre"[..],
            b"Bearer s3crett",
            b"Bearer S3cret",
            b"Basic s3cret",
            b"s3cret",
            b"Bearer ",
        ] {
            assert!(!t.admits(Some(wrong)), "{}", String::from_utf8_lossy(wrong));
        }
        assert!(!t.admits(None));
    }

    #[test]
    fn token_files_must_hold_a_token() {
        let dir = std::env::temp_dir().join(format!("zentinel-admin-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        let file = dir.join("token");
        std::fs::write(&file, " tok\n").unwrap_or_else(|e| panic!("{e}"));
        let t = AdminToken::read(&file).unwrap_or_else(|e| panic!("{e}"));
        assert!(t.matches(b"tok"));
        assert_eq!(format!("{t:?}"), "AdminToken([redacted])");
        std::fs::write(&file, "\n \n").unwrap_or_else(|e| panic!("{e}"));
        let e = AdminToken::read(&file).err().map(|e| e.to_string());
        assert!(e.is_some_and(|e| e.contains("no token")));
        assert!(AdminToken::read(&dir.join("missing")).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
