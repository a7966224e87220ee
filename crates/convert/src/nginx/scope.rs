//! Settings nginx inherits from `http` to `server` to `location`.
//!
//! Scalar directives (timeouts, sizes, certificates) are inherited unless a level sets its
//! own. Array directives (`proxy_set_header`, `add_header`, `proxy_hide_header`,
//! `limit_req`) follow nginx's rule: a level that has any of them replaces the inherited set
//! entirely.

use super::Node;

/// Where a setting was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Level {
    Http,
    Server,
    Location,
}

/// A directive in scope, with the level it was written at.
#[derive(Clone, Copy, Debug)]
pub(crate) struct At<'n, 'a> {
    pub(crate) node: &'n Node<'a>,
    pub(crate) level: Level,
}

/// The directives in force at one place.
#[derive(Clone, Debug, Default)]
pub(crate) struct Scope<'n, 'a> {
    /// Array directives by name.
    arrays: Vec<(&'static str, Vec<At<'n, 'a>>)>,
    /// Scalar directives by name: the innermost one wins.
    scalars: Vec<(&'static str, At<'n, 'a>)>,
}

/// Directives whose set is replaced by a level that has any.
pub(crate) const ARRAYS: &[&str] = &[
    "proxy_set_header",
    "add_header",
    "proxy_hide_header",
    "limit_req",
    "allow",
    "deny",
];

/// Directives inherited one value at a time.
pub(crate) const SCALARS: &[&str] = &[
    "client_max_body_size",
    "proxy_connect_timeout",
    "proxy_read_timeout",
    "proxy_send_timeout",
    "proxy_http_version",
    "proxy_ssl_verify",
    "proxy_ssl_trusted_certificate",
    "proxy_ssl_name",
    "proxy_ssl_server_name",
    "proxy_ssl_certificate",
    "proxy_ssl_certificate_key",
    "proxy_ssl_protocols",
    "ssl_certificate",
    "ssl_certificate_key",
    "ssl_protocols",
    "ssl_client_certificate",
    "ssl_verify_client",
    "client_header_timeout",
    "keepalive_timeout",
    "limit_req_status",
    "http2",
    "ssl",
    "auth_basic",
    "auth_request",
    "auth_jwt",
    "modsecurity",
];

/// Access controls nginx applies to a location that Zentinel leaves to agents.
pub(crate) const SECURITY: &[&str] = &[
    "auth_basic",
    "auth_request",
    "auth_jwt",
    "modsecurity",
    "allow",
    "deny",
];

impl<'n, 'a> Scope<'n, 'a> {
    /// The scope inside a block whose directives are `children`.
    pub(crate) fn enter(&self, children: &[&'n Node<'a>], level: Level) -> Self {
        let mut s = self.clone();
        for name in ARRAYS {
            let own: Vec<At<'n, 'a>> = children
                .iter()
                .filter(|c| c.name() == *name)
                .map(|c| At { node: c, level })
                .collect();
            if !own.is_empty() {
                s.arrays.retain(|(n, _)| n != name);
                s.arrays.push((name, own));
            }
        }
        for name in SCALARS {
            if let Some(c) = children.iter().rev().find(|c| c.name() == *name) {
                s.scalars.retain(|(n, _)| n != name);
                s.scalars.push((name, At { node: c, level }));
            }
        }
        s
    }

    /// The directives of an array kind in force (empty when none).
    pub(crate) fn array(&self, name: &str) -> &[At<'n, 'a>] {
        self.arrays
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_slice())
            .unwrap_or_default()
    }

    /// The innermost scalar directive of a kind.
    pub(crate) fn scalar(&self, name: &str) -> Option<At<'n, 'a>> {
        self.scalars
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, a)| *a)
    }

    /// The scalar's first argument.
    pub(crate) fn value(&self, name: &str) -> Option<&'a str> {
        self.scalar(name).and_then(|a| a.node.d.arg(0))
    }
}

/// Whether a directive is inherited through [`Scope`].
pub(crate) fn is_scoped(name: &str) -> bool {
    ARRAYS.contains(&name) || SCALARS.contains(&name)
}
