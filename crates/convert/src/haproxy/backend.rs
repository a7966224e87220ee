//! `backend` (and the backend half of `listen`) → an upstream, emitted when a frontend uses
//! it: servers, `balance`, health checks (`check`, `option httpchk`, `http-check`), timeouts.

use std::collections::HashMap;

use super::parse::{Line, Section};
use super::{Cx, Proxy, http_rules};
use crate::model::{Balance, HashOn, HeaderEdits, HealthCheck, Probe, Upstream, UpstreamTls};
use crate::quantity;
use crate::rules;

/// What routes to a backend carry besides the upstream: its header rules and retries.
#[derive(Clone, Debug, Default)]
pub(crate) struct BackendRoute {
    pub(crate) upstream: String,
    pub(crate) request: HeaderEdits,
    pub(crate) response: HeaderEdits,
    pub(crate) retries: Option<u64>,
}

/// The backends of the configuration, emitted on first use.
#[derive(Debug)]
pub(crate) struct Backends<'s> {
    sections: Vec<(&'s Section, Option<&'s Section>)>,
    done: HashMap<String, Result<BackendRoute, String>>,
}

impl<'s> Backends<'s> {
    pub(crate) fn new() -> Self {
        Self {
            sections: Vec::new(),
            done: HashMap::new(),
        }
    }

    /// Registers a `backend` or `listen` section with the defaults it inherits.
    pub(crate) fn set_defaults(&mut self, s: &'s Section, defaults: Option<&'s Section>) {
        self.sections.push((s, defaults));
    }

    /// The upstream for backend `name`, or why there is none.
    pub(crate) fn get(&mut self, cx: &mut Cx<'_>, name: &str) -> Result<BackendRoute, String> {
        if let Some(r) = self.done.get(name) {
            return r.clone();
        }
        let Some((s, d)) = self
            .sections
            .iter()
            .find(|(s, _)| s.name.as_deref() == Some(name))
        else {
            return Err(format!("backend \"{name}\" is not defined"));
        };
        let p = Proxy {
            section: s,
            defaults: *d,
        };
        let r = decode(cx, p);
        self.done.insert(name.to_owned(), r.clone());
        r
    }

    /// Reports the backends no frontend used.
    pub(crate) fn finish(&self, cx: &mut Cx<'_>) {
        for (s, _) in &self.sections {
            let name = s.name.clone().unwrap_or_default();
            let why = match self.done.get(&name) {
                Some(Err(e)) => e.clone(),
                Some(Ok(_)) => continue,
                None if s.head.keyword() == "listen" => continue,
                None => format!("no frontend uses backend \"{name}\""),
            };
            cx.ledger.not_mapped(s.head.id, why.clone());
            for l in &s.lines {
                cx.ledger.fallback(l.id, why.clone());
            }
        }
    }
}

fn decode(cx: &mut Cx<'_>, p: Proxy<'_>) -> Result<BackendRoute, String> {
    let (mode, mode_line) = p.mode();
    if mode != "http" {
        return Err(format!("mode {mode}: Zentinel proxies HTTP only"));
    }
    let mut up = Upstream {
        origin: format!(
            "HAProxy: {} {} (line {})",
            p.section.head.keyword(),
            p.name(),
            p.section.head.line
        ),
        ..Upstream::default()
    };
    let servers: Vec<&Line> = p.own("server").collect();
    let defaults = default_server(p);
    let mut checked = Vec::new();
    for l in &servers {
        if let Some(c) = server(cx, l, &defaults, &mut up) {
            checked.push(c);
        }
    }
    if up.targets.is_empty() {
        return Err(format!(
            "backend \"{}\" has no server Zentinel can use",
            p.name()
        ));
    }
    cx.ledger.mapped(p.section.head.id);
    if let Some(l) = mode_line {
        cx.ledger.mapped(l.id);
    }
    balance(cx, p, &mut up);
    if !checked.is_empty() {
        up.health = health(cx, p, &checked, servers.len());
    }
    timeouts(cx, p, &mut up);
    up.id = cx.ids.fresh(p.name());
    let mut route = BackendRoute {
        upstream: up.id.clone(),
        ..BackendRoute::default()
    };
    let open = http_rules::apply(cx, p.section, &mut route.request, &mut route.response);
    if let Some(c) = http_rules::open_caveat(&open) {
        cx.ledger.caveat(p.section.head.id, c);
    }
    if let Some(l) = p.find("retries", None) {
        match l.word(1).and_then(|v| v.parse::<u64>().ok()) {
            Some(n) => {
                let (v, why) = rules::clamp(n + 1, 1, 10, "the attempts");
                route.retries = Some(v);
                let mut r = format!(
                    "retry {{ max-attempts {v} }} on the routes to this backend, on connection errors"
                );
                if let Some(w) = why {
                    r = format!("{r}; {w}");
                }
                cx.ledger.caveat(l.id, r);
            }
            None => cx.ledger.not_mapped(l.id, "not a number"),
        }
    }
    if let Some(l) = p.find("option", Some("forwardfor")) {
        cx.ledger.caveat(
            l.id,
            "the proxy always sets X-Forwarded-For (and Forwarded) itself",
        );
    }
    cx.draft.upstreams.push(up);
    Ok(route)
}

/// `default-server` parameters: the defaults' first, then the section's own.
fn default_server<'s>(p: Proxy<'s>) -> Vec<(&'s Line, Vec<String>)> {
    let mut out = Vec::new();
    for s in p.defaults.into_iter().chain(std::iter::once(p.section)) {
        for l in s.lines.iter().filter(|l| l.keyword() == "default-server") {
            out.push((l, l.words[1..].to_vec()));
        }
    }
    out
}

/// The check parameters of one server that has `check`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Check {
    inter: Option<u64>,
    rise: Option<u64>,
    fall: Option<u64>,
}

/// Parameters that take a value, so it is not read as a keyword.
const WITH_VALUE: &[&str] = &[
    "weight",
    "inter",
    "fastinter",
    "downinter",
    "rise",
    "fall",
    "maxconn",
    "minconn",
    "maxqueue",
    "ca-file",
    "crt",
    "sni",
    "verify",
    "cookie",
    "resolvers",
    "init-addr",
    "port",
    "addr",
    "slowstart",
    "on-error",
    "on-marked-down",
    "on-marked-up",
    "error-limit",
    "observe",
    "check-sni",
    "alpn",
    "check-alpn",
    "proto",
    "resolve-prefer",
    "id",
    "ciphers",
    "ciphersuites",
    "pool-max-conn",
    "pool-purge-delay",
    "max-reuse",
    "source",
    "usesrc",
    "ssl-min-ver",
    "ssl-max-ver",
    "agent-port",
    "agent-inter",
    "track",
    "redir",
    "namespace",
];

#[expect(
    clippy::too_many_lines,
    reason = "one pass over a server line and its default-server parameters; to be split by parameter group"
)]
fn server(
    cx: &mut Cx<'_>,
    l: &Line,
    defaults: &[(&Line, Vec<String>)],
    up: &mut Upstream,
) -> Option<Check> {
    let (Some(_name), Some(addr)) = (l.word(1), l.word(2)) else {
        cx.ledger
            .not_mapped(l.id, "expected `server NAME ADDRESS:PORT`");
        return None;
    };
    let addr = addr.trim_start_matches("ipv4@").trim_start_matches("ipv6@");
    if addr.starts_with("unix@") || addr.starts_with('/') || addr.starts_with("abns@") {
        cx.ledger
            .not_mapped(l.id, "Unix-socket servers are not supported");
        return None;
    }
    let Some(target) =
        rules::split_host_port(addr, None).and_then(|(h, port)| rules::target(&h, port))
    else {
        cx.ledger.not_mapped(
            l.id,
            format!(
                "\"{addr}\" is not ip:port or host:port (a server without a port is not supported)"
            ),
        );
        return None;
    };
    let mut params: Vec<(String, Option<String>)> = Vec::new();
    for words in defaults
        .iter()
        .map(|(_, w)| w.as_slice())
        .chain(std::iter::once(&l.words[3..]))
    {
        let mut it = words.iter();
        while let Some(k) = it.next() {
            let v = WITH_VALUE
                .contains(&k.as_str())
                .then(|| it.next().cloned())
                .flatten();
            params.retain(|(n, _)| n != k);
            params.push((k.clone(), v));
        }
    }
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let mut caveats: Vec<String> = Vec::new();
    for (k, _) in &params {
        match k.as_str() {
            "backup" => {
                cx.ledger.not_mapped(
                    l.id,
                    "Zentinel has no backup servers: every target takes traffic",
                );
                return None;
            }
            "disabled" => {
                cx.ledger.not_mapped(l.id, "disabled: left out");
                return None;
            }
            "send-proxy" | "send-proxy-v2" | "send-proxy-v2-ssl" => {
                cx.ledger
                    .not_mapped(l.id, "the PROXY protocol to servers is not supported");
                return None;
            }
            "weight" | "check" | "inter" | "rise" | "fall" | "ssl" | "verify" | "ca-file"
            | "sni" | "crt" => {}
            "resolvers" | "init-addr" | "resolve-prefer" => caveats.push(
                "host names are resolved with the system resolver, again every `dns-refresh-ms`"
                    .to_owned(),
            ),
            other => caveats.push(format!("`{other}` is ignored")),
        }
    }
    let weight = match get("weight").flatten().map(|w| w.parse::<u64>()) {
        None => 1,
        Some(Ok(0)) => {
            cx.ledger.not_mapped(
                l.id,
                "weight 0: the server takes no traffic, so it is left out",
            );
            return None;
        }
        Some(Ok(w)) if w <= 10_000 => w,
        _ => {
            cx.ledger.not_mapped(l.id, "weight must be in 1..=10000");
            return None;
        }
    };
    if up.targets.iter().any(|(t, _)| *t == target) {
        cx.ledger.not_mapped(
            l.id,
            format!("{target} is already a server of this backend"),
        );
        return None;
    }
    if get("ssl").is_some() {
        tls(&get, up, &mut caveats);
    }
    up.targets.push((target, weight));
    for (d, _) in defaults {
        cx.ledger.mapped(d.id);
    }
    if caveats.is_empty() {
        cx.ledger.mapped(l.id);
    } else {
        caveats.dedup();
        cx.ledger.caveat(l.id, caveats.join("; "));
    }
    get("check").map(|_| Check {
        inter: get("inter")
            .flatten()
            .and_then(|v| quantity::haproxy_time_ms(&v)),
        rise: get("rise").flatten().and_then(|v| v.parse().ok()),
        fall: get("fall").flatten().and_then(|v| v.parse().ok()),
    })
}

fn tls(get: &dyn Fn(&str) -> Option<Option<String>>, up: &mut Upstream, caveats: &mut Vec<String>) {
    let mut t = up.tls.clone().unwrap_or(UpstreamTls {
        verify: true,
        ..UpstreamTls::default()
    });
    if get("verify").flatten().as_deref() == Some("none") {
        t.verify = false;
        caveats.push("`verify none` → `verify #false`: certificates are not checked (Zentinel documents it as for tests only)".to_owned());
    }
    if let Some(ca) = get("ca-file").flatten() {
        t.ca_file = Some(ca);
    }
    if let Some(sni) = get("sni").flatten() {
        match sni.strip_prefix("str(").and_then(|s| s.strip_suffix(')')) {
            Some(name) => t.sni = Some(name.to_owned()),
            None => caveats.push(format!(
                "`sni {sni}`: Zentinel sends the target's host name (or `tls {{ sni }}`)"
            )),
        }
    }
    if let Some(crt) = get("crt").flatten() {
        t.cert_file = Some(crt.clone());
        t.key_file = Some(crt);
        caveats.push(
            "`crt` holds the certificate and key in one PEM: it is both `cert-file` and `key-file`"
                .to_owned(),
        );
    }
    if t.verify && t.ca_file.is_none() {
        caveats.push("certificates are verified against the system trust store".to_owned());
    }
    if up.tls.as_ref().is_some_and(|old| *old != t) {
        caveats.push(
            "Zentinel has one TLS setting per upstream: the first server's applies".to_owned(),
        );
        return;
    }
    up.tls = Some(t);
}

fn balance(cx: &mut Cx<'_>, p: Proxy<'_>, up: &mut Upstream) {
    let Some(l) = p.find("balance", None) else {
        return;
    };
    let algo = l.word(1).unwrap_or_default();
    let hash_type = p.find("hash-type", None);
    let consistent = hash_type.is_some_and(|h| h.word(1) == Some("consistent"));
    let (b, hash, caveat): (Balance, Option<HashOn>, Option<&str>) = match algo {
        "roundrobin" => (Balance::RoundRobin, None, None),
        "static-rr" => (
            Balance::RoundRobin,
            None,
            Some("smooth weighted round robin"),
        ),
        "leastconn" => (Balance::LeastConnections, None, None),
        "random" => (Balance::Weighted, None, None),
        a if a.starts_with("random(") => (
            Balance::PowerOfTwo,
            None,
            (a != "random(2)").then_some("power of two choices: two draws"),
        ),
        "source" => (
            Balance::ConsistentHash,
            Some(HashOn::ClientIp),
            (!consistent).then_some("a consistent hash (like `hash-type consistent`)"),
        ),
        a if a.starts_with("hdr(") && a.ends_with(')') => {
            let name = &a[4..a.len() - 1];
            match rules::header_name(name) {
                Ok(h) => (
                    Balance::ConsistentHash,
                    Some(HashOn::Header(h)),
                    (!consistent).then_some("a consistent hash (like `hash-type consistent`)"),
                ),
                Err(e) => {
                    cx.ledger.not_mapped(l.id, e);
                    return;
                }
            }
        }
        other => {
            cx.ledger.not_mapped(l.id, format!("`balance {other}` has no Zentinel equivalent (round robin, least connections, random, power of two, or a hash on the client address, a header or a cookie)"));
            return;
        }
    };
    up.balance = Some(b);
    up.hash_on = hash;
    match caveat {
        Some(c) => cx.ledger.caveat(l.id, c),
        None => cx.ledger.mapped(l.id),
    }
    if let Some(h) = hash_type
        && b == Balance::ConsistentHash
    {
        cx.ledger.mapped(h.id);
    }
}

/// The probe: `option httpchk` / `http-check send`, else a TCP connect.
fn probe(cx: &mut Cx<'_>, p: Proxy<'_>) -> Probe {
    let mut path = None;
    let mut host = None;
    let mut method = None;
    if let Some(l) = p.find("option", Some("httpchk")) {
        let w: Vec<&str> = l.words.iter().skip(2).map(String::as_str).collect();
        let (m, uri, ver) = match w.as_slice() {
            [] => (None, None, None),
            [uri] => (None, Some(*uri), None),
            [m, uri] => (Some(*m), Some(*uri), None),
            [m, uri, ver, ..] => (Some(*m), Some(*uri), Some(*ver)),
        };
        method = Some(m.unwrap_or("OPTIONS").to_owned());
        path = Some(uri.unwrap_or("/").to_owned());
        host = ver.and_then(|v| {
            v.split("\r\n")
                .find_map(|h| {
                    h.split_once(':')
                        .filter(|(k, _)| k.eq_ignore_ascii_case("host"))
                })
                .map(|(_, v)| v.trim().to_owned())
        });
        cx.ledger.mapped(l.id);
    }
    if let Some(l) = p.find("http-check", Some("send")) {
        let mut it = l.words.iter().skip(2);
        while let Some(k) = it.next() {
            match k.as_str() {
                "meth" => method = it.next().cloned(),
                "uri" => path = it.next().cloned(),
                "hdr" => {
                    let (n, v) = (it.next(), it.next());
                    if n.is_some_and(|n| n.eq_ignore_ascii_case("host")) {
                        host = v.cloned();
                    }
                }
                _ => {}
            }
        }
        path.get_or_insert_with(|| "/".to_owned());
        cx.ledger.mapped(l.id);
    }
    let Some(path) = path else { return Probe::Tcp };
    if !rules::probe_path(&path) {
        return Probe::Tcp;
    }
    if method.as_deref().is_some_and(|m| m != "GET")
        && let Some(l) = p
            .find("option", Some("httpchk"))
            .or(p.find("http-check", Some("send")))
    {
        cx.ledger.caveat(l.id, "Zentinel probes with GET");
    }
    let mut expect_status = None;
    if let Some(l) = p.find("http-check", Some("expect")) {
        match (l.word(2), l.word(3).and_then(|v| v.parse::<u16>().ok())) {
            (Some("status"), Some(s)) if (100..=599).contains(&s) => {
                expect_status = Some(s);
                cx.ledger.mapped(l.id);
            }
            _ => cx.ledger.not_mapped(
                l.id,
                "only `expect status N` maps (Zentinel checks one status)",
            ),
        }
    }
    Probe::Http {
        path,
        expect_status,
        host: host.filter(|h| h.bytes().all(|b| b.is_ascii_graphic())),
    }
}

fn health(cx: &mut Cx<'_>, p: Proxy<'_>, checked: &[Check], servers: usize) -> Option<HealthCheck> {
    let probe = probe(cx, p);
    let first = checked.first().cloned().unwrap_or_default();
    // HAProxy's defaults: inter 2s, rise 2, fall 3.
    let interval = first.inter.unwrap_or(2000).clamp(100, 3_600_000);
    let timeout = p.timeout("check").map(|(ms, l)| {
        cx.ledger.mapped(l.id);
        ms
    });
    let timeout = timeout.unwrap_or(1000).min(interval - 1).max(1);
    let mut notes = Vec::new();
    if checked.len() < servers {
        notes.push(
            "Zentinel probes every target of the upstream, including servers without `check`",
        );
    }
    if checked.iter().any(|c| *c != first) {
        notes.push("one check setting per upstream: the first server's inter/rise/fall apply");
    }
    if !notes.is_empty() {
        let head = p.section.head.id;
        cx.ledger.caveat(head, notes.join("; "));
    }
    Some(HealthCheck {
        probe,
        interval_ms: Some(interval),
        timeout_ms: Some(timeout),
        healthy: Some(first.rise.unwrap_or(2).clamp(1, 100)),
        unhealthy: Some(first.fall.unwrap_or(3).clamp(1, 100)),
    })
}

fn timeouts(cx: &mut Cx<'_>, p: Proxy<'_>, up: &mut Upstream) {
    if let Some((ms, l)) = p.timeout("connect") {
        let (v, why) = rules::clamp(ms, 1, 600_000, "the timeout");
        up.connect_ms = Some(v);
        match why {
            Some(w) => cx.ledger.caveat(l.id, w),
            None => cx.ledger.mapped(l.id),
        }
    }
    if let Some((ms, l)) = p.timeout("server") {
        let (v, why) = rules::clamp(ms, 1, 3_600_000, "the timeout");
        up.read_ms = Some(v);
        up.write_ms = Some(v);
        match why {
            Some(w) => cx.ledger.caveat(l.id, w),
            None => cx.ledger.caveat(
                l.id,
                "read-ms and write-ms: the longest wait for the next bytes from and to the server",
            ),
        }
    }
}
