//! `upstream` blocks and `proxy_pass` targets → Zentinel upstreams.
//!
//! An `upstream` block is decoded up front but emitted only when a `proxy_pass` names it;
//! a `proxy_pass` to a URL gets an upstream of its own, shared by every location that
//! proxies to the same URL.

use std::collections::HashMap;

use super::{Cx, Node, directives};
use crate::model::{Balance, HashOn, Passive, Upstream, UpstreamTls};
use crate::quantity;
use crate::report::Marks;
use crate::rules;

/// A `proxy_pass` URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ProxyUrl {
    pub(crate) tls: bool,
    pub(crate) host: String,
    pub(crate) port: Option<u16>,
    /// The URI part (path), when written.
    pub(crate) uri: Option<String>,
}

/// Parses `http://host[:port][/uri]`.
pub(crate) fn proxy_url(s: &str) -> Result<ProxyUrl, String> {
    if s.contains('$') {
        return Err("the target uses nginx variables, which Zentinel cannot evaluate".to_owned());
    }
    let (tls, rest) = if let Some(r) = s.strip_prefix("http://") {
        (false, r)
    } else if let Some(r) = s.strip_prefix("https://") {
        (true, r)
    } else {
        return Err("only http:// and https:// targets are supported".to_owned());
    };
    if rest.starts_with("unix:") {
        return Err(
            "Unix-socket upstreams are not supported; targets are ip:port or host:port".to_owned(),
        );
    }
    let (authority, uri) = match rest.find('/') {
        Some(i) => (&rest[..i], Some(rest[i..].to_owned())),
        None => (rest, None),
    };
    let (host, port) = match rules::split_host_port(authority, Some(0)) {
        Some((h, 0)) => (h, None),
        Some((h, p)) => (h, Some(p)),
        None => return Err(format!("\"{authority}\" is not host[:port]")),
    };
    if host.is_empty() {
        return Err("the target has no host".to_owned());
    }
    Ok(ProxyUrl {
        tls,
        host,
        port,
        uri,
    })
}

/// One `upstream` block, decoded.
#[derive(Debug)]
struct Def {
    name: String,
    model: Upstream,
    marks: Marks,
    /// Index in the draft once emitted.
    emitted: Option<usize>,
    /// Why it cannot be emitted (no usable server).
    unusable: Option<String>,
}

/// The upstreams of the `http` context.
#[derive(Debug, Default)]
pub(crate) struct Upstreams {
    defs: Vec<Def>,
    /// Upstreams made for `proxy_pass` URLs, by URL.
    by_url: HashMap<String, usize>,
    /// Per-upstream settings taken from locations: (draft index, key) → (value, line).
    settings: HashMap<(usize, &'static str), (String, usize)>,
}

impl Upstreams {
    /// Decodes every `upstream` block among `nodes`.
    pub(crate) fn collect(cx: &mut Cx<'_>, nodes: &[&Node<'_>]) -> Self {
        let mut out = Upstreams::default();
        for n in nodes.iter().filter(|n| n.name() == "upstream") {
            let Some(name) = n.arg(0).filter(|_| n.nargs() == 1 && n.d.block.is_some()) else {
                cx.ledger
                    .not_mapped(n.id, "an upstream block needs one name and a block");
                directives::inside_unmapped(cx.ledger, &n.children, "upstream");
                continue;
            };
            out.defs.push(decode(n, name));
        }
        out
    }

    /// The draft index of the upstream a `proxy_pass` URL names, emitting it on first use.
    pub(crate) fn resolve(&mut self, cx: &mut Cx<'_>, url: &ProxyUrl) -> Result<usize, String> {
        if url.port.is_none()
            && let Some(i) = self.defs.iter().position(|d| d.name == url.host)
        {
            return self.emit_def(cx, i, url.tls);
        }
        let port = url.port.unwrap_or(if url.tls { 443 } else { 80 });
        let key = format!(
            "{}://{}:{port}",
            if url.tls { "https" } else { "http" },
            url.host
        );
        if let Some(i) = self.by_url.get(&key) {
            return Ok(*i);
        }
        let target = rules::target(&url.host, port).ok_or_else(|| {
            format!(
                "\"{}:{port}\" is not an ip:port or host:port target",
                url.host
            )
        })?;
        let id = cx.ids.fresh(&format!("{}-{port}", url.host));
        let mut up = Upstream {
            id,
            origin: format!("nginx: proxy_pass {key}"),
            targets: vec![(target, 1)],
            ..Upstream::default()
        };
        if url.tls {
            up.tls = Some(default_tls(&url.host));
        }
        cx.draft.upstreams.push(up);
        let i = cx.draft.upstreams.len() - 1;
        self.by_url.insert(key, i);
        Ok(i)
    }

    fn emit_def(&mut self, cx: &mut Cx<'_>, i: usize, tls: bool) -> Result<usize, String> {
        let def = &mut self.defs[i];
        if let Some(why) = &def.unusable {
            return Err(why.clone());
        }
        if let Some(e) = def.emitted {
            return Ok(e);
        }
        let mut model = def.model.clone();
        model.id = cx.ids.fresh(&def.name);
        if tls {
            model.tls = Some(default_tls(&def.name));
        }
        def.marks.apply(cx.ledger);
        cx.draft.upstreams.push(model);
        let e = cx.draft.upstreams.len() - 1;
        def.emitted = Some(e);
        Ok(e)
    }

    /// Records a location's setting for an upstream; `Err` with the earlier line when the
    /// upstream already has another value (Zentinel sets it once per upstream).
    pub(crate) fn setting(
        &mut self,
        upstream: usize,
        key: &'static str,
        value: &str,
        line: usize,
    ) -> Result<bool, usize> {
        match self.settings.get(&(upstream, key)) {
            Some((v, _)) if v == value => Ok(false),
            Some((_, l)) => Err(*l),
            None => {
                self.settings
                    .insert((upstream, key), (value.to_owned(), line));
                Ok(true)
            }
        }
    }

    /// Reports the blocks no `proxy_pass` used.
    pub(crate) fn finish(&self, cx: &mut Cx<'_>) {
        for d in self.defs.iter().filter(|d| d.emitted.is_none()) {
            let why = d
                .unusable
                .clone()
                .unwrap_or_else(|| format!("no proxy_pass uses upstream \"{}\"", d.name));
            d.marks.drop_all(cx.ledger, &why);
        }
    }
}

/// TLS to targets as nginx does it by default, which Zentinel tightens (caveat at the
/// `proxy_pass`): certificates are verified.
fn default_tls(host: &str) -> UpstreamTls {
    let sni = rules::host_pattern(host)
        .filter(|h| !h.starts_with("*.") && host.parse::<std::net::IpAddr>().is_err());
    UpstreamTls {
        sni,
        verify: true,
        ..UpstreamTls::default()
    }
}

/// Per-server `max_fails` / `fail_timeout`, to make one passive-health setting.
#[derive(Debug, Default)]
struct FailureSettings {
    seen: Vec<(Option<u64>, Option<u64>)>,
}

fn decode(n: &Node<'_>, name: &str) -> Def {
    let mut model = Upstream {
        origin: format!("nginx: upstream {name} (line {})", n.d.line),
        ..Upstream::default()
    };
    let mut marks = Marks::default();
    marks.mapped(n.id);
    let mut failures = FailureSettings::default();
    for c in &n.children {
        match c.name() {
            "server" => server(c, &mut model, &mut marks, &mut failures),
            "least_conn" | "ip_hash" | "hash" | "random" => balance(c, &mut model, &mut marks),
            "keepalive" => match c.arg(0).and_then(|v| v.parse::<u64>().ok()) {
                Some(k) if k <= 100_000 => {
                    model.max_idle = Some(k);
                    marks.caveat(
                        c.id,
                        "connection-pool { max-idle }: idle connections kept per target, not per worker for the whole group",
                    );
                }
                _ => marks.not_mapped(c.id, "not a number of connections in 0..=100000"),
            },
            "keepalive_timeout" => match c.arg(0).and_then(quantity::nginx_time_ms) {
                Some(ms) if (1..=3_600_000).contains(&ms) => {
                    model.idle_timeout_ms = Some(ms);
                    marks.mapped(c.id);
                }
                _ => marks.not_mapped(c.id, "not a time in 1 ms..=1 h"),
            },
            "zone" => marks.not_mapped(
                c.id,
                "not needed: Zentinel keeps upstream state in one process, without shared memory zones",
            ),
            "keepalive_requests" | "keepalive_time" => marks.not_mapped(
                c.id,
                "Zentinel limits idle connections by count and idle time only",
            ),
            "sticky" => marks.not_mapped(
                c.id,
                "sticky cookies are not issued; `load-balancing \"consistent-hash\"` with `hash-on \"cookie\"` hashes an existing cookie",
            ),
            "queue" => marks.not_mapped(c.id, "requests are not queued for a free server"),
            _ => marks.not_mapped(c.id, "no Zentinel equivalent in an upstream"),
        }
    }
    let unusable = model
        .targets
        .is_empty()
        .then(|| format!("upstream \"{name}\" has no server Zentinel can use"));
    passive(&failures, &mut model);
    Def {
        name: name.to_owned(),
        model,
        marks,
        emitted: None,
        unusable,
    }
}

fn server(c: &Node<'_>, model: &mut Upstream, marks: &mut Marks, failures: &mut FailureSettings) {
    let Some(addr) = c.arg(0) else {
        marks.not_mapped(c.id, "no address");
        return;
    };
    if addr.starts_with("unix:") {
        marks.not_mapped(c.id, "Unix-socket servers are not supported");
        return;
    }
    let Some(target) =
        rules::split_host_port(addr, Some(80)).and_then(|(h, p)| rules::target(&h, p))
    else {
        marks.not_mapped(c.id, format!("\"{addr}\" is not ip[:port] or host[:port]"));
        return;
    };
    let mut weight = 1;
    let mut fails = None;
    let mut fail_timeout = None;
    let mut caveats = Vec::new();
    for p in c.d.args.iter().skip(1).map(|a| a.text.as_str()) {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        match k {
            "weight" => match v.parse::<u64>() {
                Ok(w) if (1..=10_000).contains(&w) => weight = w,
                _ => {
                    marks.not_mapped(c.id, "weight must be in 1..=10000");
                    return;
                }
            },
            "max_fails" => fails = v.parse::<u64>().ok(),
            "fail_timeout" => fail_timeout = quantity::nginx_time_ms(v),
            "backup" => {
                marks.not_mapped(
                    c.id,
                    "Zentinel has no backup servers: every target takes traffic",
                );
                return;
            }
            "down" => {
                marks.not_mapped(c.id, "marked down: left out");
                return;
            }
            "resolve" => caveats.push(
                "host names are re-resolved every `dns-refresh-ms` (30 s by default)".to_owned(),
            ),
            other => caveats.push(format!("`{other}` is ignored")),
        }
    }
    if model.targets.iter().any(|(t, _)| *t == target) {
        marks.not_mapped(
            c.id,
            format!("{target} is already a target of this upstream"),
        );
        return;
    }
    if model.targets.len() == 256 {
        marks.not_mapped(c.id, "Zentinel allows at most 256 targets per upstream");
        return;
    }
    model.targets.push((target, weight));
    if fails.is_some() || fail_timeout.is_some() {
        failures.seen.push((fails, fail_timeout));
        caveats.push(
            "max_fails/fail_timeout → passive-health: Zentinel counts consecutive failures and applies one setting to the whole upstream"
                .to_owned(),
        );
    }
    if caveats.is_empty() {
        marks.mapped(c.id);
    } else {
        marks.caveat(c.id, caveats.join("; "));
    }
}

fn balance(c: &Node<'_>, model: &mut Upstream, marks: &mut Marks) {
    if model.balance.is_some() {
        marks.not_mapped(c.id, "a second balancing method; the first one is used");
        return;
    }
    let args: Vec<&str> = c.d.args.iter().map(|a| a.text.as_str()).collect();
    match (c.name(), args.as_slice()) {
        ("least_conn", []) => {
            model.balance = Some(Balance::LeastConnections);
            marks.mapped(c.id);
        }
        ("ip_hash", []) => {
            model.balance = Some(Balance::ConsistentHash);
            model.hash_on = Some(HashOn::ClientIp);
            marks.caveat(
                c.id,
                "consistent hash on the whole client address (nginx hashes the first three octets of IPv4)",
            );
        }
        ("random", []) => {
            model.balance = Some(Balance::Weighted);
            marks.mapped(c.id);
        }
        ("random", ["two"] | ["two", "least_conn"]) => {
            model.balance = Some(Balance::PowerOfTwo);
            marks.mapped(c.id);
        }
        ("hash", [key, rest @ ..]) if rest.is_empty() || rest == ["consistent"] => {
            let Some(h) = hash_key(key) else {
                marks.not_mapped(
                    c.id,
                    format!(
                        "Zentinel hashes the client address, a header or a cookie, not `{key}`"
                    ),
                );
                return;
            };
            model.balance = Some(Balance::ConsistentHash);
            model.hash_on = Some(h);
            if rest.is_empty() {
                marks.caveat(
                    c.id,
                    "Zentinel's hash is always consistent (like `consistent`)",
                );
            } else {
                marks.mapped(c.id);
            }
        }
        _ => marks.not_mapped(c.id, "unsupported form of this balancing method"),
    }
}

/// `$remote_addr`, `$http_x_user`, `$cookie_session` → what Zentinel hashes.
fn hash_key(key: &str) -> Option<HashOn> {
    match key {
        "$remote_addr" | "$binary_remote_addr" => Some(HashOn::ClientIp),
        k => {
            if let Some(h) = k.strip_prefix("$http_") {
                let name = h.replace('_', "-");
                rules::header_name(&name).ok().map(HashOn::Header)
            } else {
                k.strip_prefix("$cookie_")
                    .filter(|c| !c.is_empty() && !c.contains('$'))
                    .map(|c| HashOn::Cookie(c.to_owned()))
            }
        }
    }
}

fn passive(f: &FailureSettings, model: &mut Upstream) {
    let Some((fails, timeout)) = f.seen.first() else {
        return;
    };
    model.passive = Some(match fails {
        Some(0) => Passive {
            enabled: false,
            consecutive_failures: None,
            ejection_ms: None,
        },
        _ => Passive {
            enabled: true,
            // nginx's defaults: max_fails=1, fail_timeout=10s.
            consecutive_failures: Some(fails.unwrap_or(1).clamp(1, 1000)),
            ejection_ms: Some(timeout.unwrap_or(10_000).clamp(1, 3_600_000)),
        },
    });
}

#[cfg(test)]
mod tests {
    use super::proxy_url;

    #[test]
    fn urls() {
        let u = proxy_url("http://backend").ok();
        assert_eq!(
            u.map(|u| (u.host, u.port, u.uri)),
            Some(("backend".into(), None, None))
        );
        let u = proxy_url("https://10.0.0.1:8443/api/").ok();
        assert_eq!(
            u.map(|u| (u.tls, u.port, u.uri)),
            Some((true, Some(8443), Some("/api/".into())))
        );
        assert!(proxy_url("http://$backend").is_err());
        assert!(proxy_url("http://unix:/tmp/s:/").is_err());
        assert!(proxy_url("grpc://x").is_err());
        assert_eq!(
            proxy_url("http://[::1]:81").ok().map(|u| u.host),
            Some("::1".into())
        );
    }
}
