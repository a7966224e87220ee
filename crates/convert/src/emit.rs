//! Writes a [`Draft`] as KDL v2 text in the layout of the repository's examples.

use std::fmt::Write as _;

use crate::model::{
    Balance, ClientAuthMode, Draft, HashOn, HeaderEdits, HealthCheck, Listener, LogDestination,
    LogTarget, PathMatch, Probe, Protocol, RateLimit, Route, TlsVersion, Upstream,
};

/// A KDL string literal.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() || is_kdl_disallowed(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Code points KDL v2 does not allow literally in a document.
fn is_kdl_disallowed(c: char) -> bool {
    matches!(c as u32, 0x200E | 0x200F | 0x202A..=0x202E | 0x2066..=0x2069 | 0xFEFF)
}

fn quoted_list(items: &[String]) -> String {
    items.iter().map(|s| quote(s)).collect::<Vec<_>>().join(" ")
}

/// One `// …` comment line per line of `text`.
fn comment(out: &mut String, indent: &str, text: &str) {
    for line in text.lines() {
        let clean: String = line.chars().filter(|c| !c.is_control()).collect();
        let _ = writeln!(out, "{indent}// {clean}");
    }
}

/// The whole configuration.
pub(crate) fn kdl(draft: &Draft, header: &str) -> String {
    let mut out = String::new();
    comment(&mut out, "", header);
    server(&mut out, draft);
    if !draft.listeners.is_empty() {
        out.push_str("\nlisteners {\n");
        for l in &draft.listeners {
            listener(&mut out, l);
        }
        out.push_str("}\n");
    }
    if !draft.routes.is_empty() {
        out.push_str("\nroutes {\n");
        for r in &draft.routes {
            route(&mut out, r);
        }
        out.push_str("}\n");
    }
    if !draft.upstreams.is_empty() {
        out.push_str("\nupstreams {\n");
        for u in &draft.upstreams {
            upstream(&mut out, u);
        }
        out.push_str("}\n");
    }
    if !draft.filters.is_empty() {
        out.push_str("\nfilters {\n");
        for f in &draft.filters {
            filter(&mut out, f);
        }
        out.push_str("}\n");
    }
    limits(&mut out, draft);
    observability(&mut out, draft);
    out
}

fn server(out: &mut String, draft: &Draft) {
    let s = &draft.server;
    if s.worker_threads.is_none() && s.trusted_proxies.is_empty() {
        return;
    }
    out.push_str("\nserver {\n");
    if let Some(n) = s.worker_threads {
        let _ = writeln!(out, "    worker-threads {n}");
    }
    if !s.trusted_proxies.is_empty() {
        let _ = writeln!(
            out,
            "    trusted-proxies {}",
            quoted_list(&s.trusted_proxies)
        );
    }
    out.push_str("}\n");
}

fn listener(out: &mut String, l: &Listener) {
    comment(out, "    ", &l.origin);
    let _ = writeln!(out, "    listener {} {{", quote(&l.id));
    let _ = writeln!(out, "        address {}", quote(&l.address.to_string()));
    let protocol = match l.protocol {
        Protocol::Http => "http",
        Protocol::Https => "https",
        Protocol::H2c => "h2c",
    };
    let _ = writeln!(out, "        protocol {}", quote(protocol));
    if let Some(routes) = &l.routes {
        let _ = writeln!(out, "        routes {}", quoted_list(routes));
    }
    if let Some(ms) = l.header_read_timeout_ms {
        let _ = writeln!(out, "        header-read-timeout-ms {ms}");
    }
    if let Some(ms) = l.idle_timeout_ms {
        let _ = writeln!(out, "        idle-timeout-ms {ms}");
    }
    if let Some(tls) = &l.tls {
        out.push_str("        tls {\n");
        let _ = writeln!(out, "            cert-file {}", quote(&tls.cert_file));
        let _ = writeln!(out, "            key-file {}", quote(&tls.key_file));
        for s in &tls.sni {
            let _ = writeln!(
                out,
                "            sni {} {{ cert-file {}; key-file {}; }}",
                quote(&s.host),
                quote(&s.cert_file),
                quote(&s.key_file)
            );
        }
        if let Some((mode, ca)) = &tls.client_auth {
            let mode = match mode {
                ClientAuthMode::Optional => "optional",
                ClientAuthMode::Required => "required",
            };
            let _ = writeln!(
                out,
                "            client-auth {} {{ ca-file {}; }}",
                quote(mode),
                quote(ca)
            );
        }
        if let Some(v) = tls.min_version {
            let v = match v {
                TlsVersion::V12 => "1.2",
                TlsVersion::V13 => "1.3",
            };
            let _ = writeln!(out, "            min-version {}", quote(v));
        }
        out.push_str("        }\n");
    }
    out.push_str("    }\n");
}

fn matches(out: &mut String, r: &Route) {
    let mut conds: Vec<String> = Vec::new();
    if !r.hosts.is_empty() {
        conds.push(format!("host {}", quoted_list(&r.hosts)));
    }
    match &r.path {
        Some(PathMatch::Exact(p)) => conds.push(format!("path {}", quote(p))),
        Some(PathMatch::Prefix(p)) => conds.push(format!("path-prefix {}", quote(p))),
        Some(PathMatch::Regex(p)) => conds.push(format!("path-regex {}", quote(p))),
        None => {}
    }
    if !r.methods.is_empty() {
        conds.push(format!("method {}", quoted_list(&r.methods)));
    }
    for (key, list) in [("header", &r.headers), ("query-param", &r.query)] {
        for (n, v) in list {
            match v {
                Some(v) => conds.push(format!("{key} {} {}", quote(n), quote(v))),
                None => conds.push(format!("{key} {}", quote(n))),
            }
        }
    }
    if conds.is_empty() {
        return;
    }
    out.push_str("        matches {\n");
    for c in conds {
        let _ = writeln!(out, "            {c}");
    }
    out.push_str("        }\n");
}

fn edits(out: &mut String, block: &str, e: &HeaderEdits) {
    if e.is_empty() {
        return;
    }
    let _ = writeln!(out, "        {block} {{");
    if !e.remove.is_empty() {
        let _ = writeln!(out, "            remove {}", quoted_list(&e.remove));
    }
    for (n, v) in &e.set {
        let _ = writeln!(out, "            set {} {}", quote(n), quote(v));
    }
    for (n, v) in &e.add {
        let _ = writeln!(out, "            add {} {}", quote(n), quote(v));
    }
    out.push_str("        }\n");
}

fn route(out: &mut String, r: &Route) {
    comment(out, "    ", &r.origin);
    let _ = writeln!(out, "    route {} {{", quote(&r.id));
    if r.priority != 0 {
        let _ = writeln!(out, "        priority {}", r.priority);
    }
    matches(out, r);
    let _ = writeln!(out, "        upstream {}", quote(&r.upstream));
    if !r.filters.is_empty() {
        let _ = writeln!(out, "        filters {}", quoted_list(&r.filters));
    }
    edits(out, "request-headers", &r.request_headers);
    edits(out, "response-headers", &r.response_headers);
    if r.max_body_bytes.is_some() || r.max_in_flight.is_some() {
        out.push_str("        limits {\n");
        if let Some(b) = r.max_body_bytes {
            let _ = writeln!(out, "            max-body-bytes {b}");
        }
        if let Some(n) = r.max_in_flight {
            let _ = writeln!(out, "            max-in-flight-requests {n}");
        }
        out.push_str("        }\n");
    }
    if let Some(n) = r.retry_attempts {
        let _ = writeln!(out, "        retry {{ max-attempts {n}; }}");
    }
    if r.websocket {
        out.push_str("        websocket #true\n");
    }
    out.push_str("    }\n");
}

fn health(out: &mut String, h: &HealthCheck) {
    out.push_str("        health-check {\n");
    match &h.probe {
        Probe::Tcp => out.push_str("            tcp\n"),
        Probe::Http {
            path,
            expect_status,
            host,
        } => {
            let mut inner = Vec::new();
            if let Some(s) = expect_status {
                inner.push(format!("expect-status {s}"));
            }
            if let Some(h) = host {
                inner.push(format!("host {}", quote(h)));
            }
            if inner.is_empty() {
                let _ = writeln!(out, "            http {}", quote(path));
            } else {
                let _ = writeln!(
                    out,
                    "            http {} {{ {}; }}",
                    quote(path),
                    inner.join("; ")
                );
            }
        }
    }
    for (key, v) in [
        ("interval-ms", h.interval_ms),
        ("timeout-ms", h.timeout_ms),
        ("healthy-threshold", h.healthy),
        ("unhealthy-threshold", h.unhealthy),
    ] {
        if let Some(v) = v {
            let _ = writeln!(out, "            {key} {v}");
        }
    }
    out.push_str("        }\n");
}

#[expect(
    clippy::too_many_lines,
    reason = "one writer per KDL block, in the order the schema documents them"
)]
fn upstream(out: &mut String, u: &Upstream) {
    comment(out, "    ", &u.origin);
    let _ = writeln!(out, "    upstream {} {{", quote(&u.id));
    for (addr, weight) in &u.targets {
        if *weight == 1 {
            let _ = writeln!(out, "        target {}", quote(addr));
        } else {
            let _ = writeln!(out, "        target {} weight={weight}", quote(addr));
        }
    }
    if let Some(b) = u.balance {
        let name = match b {
            Balance::RoundRobin => "round-robin",
            Balance::Weighted => "weighted",
            Balance::LeastConnections => "least-connections",
            Balance::PowerOfTwo => "power-of-two-choices",
            Balance::ConsistentHash => "consistent-hash",
        };
        let _ = writeln!(out, "        load-balancing {}", quote(name));
    }
    match &u.hash_on {
        Some(HashOn::ClientIp) => out.push_str("        hash-on \"client-ip\"\n"),
        Some(HashOn::Header(h)) => {
            let _ = writeln!(out, "        hash-on \"header\" {}", quote(h));
        }
        Some(HashOn::Cookie(c)) => {
            let _ = writeln!(out, "        hash-on \"cookie\" {}", quote(c));
        }
        None => {}
    }
    if let Some(h) = &u.health {
        health(out, h);
    }
    if let Some(p) = &u.passive {
        let mut parts = vec![format!("enabled #{}", p.enabled)];
        if let Some(n) = p.consecutive_failures {
            parts.push(format!("consecutive-failures {n}"));
        }
        if let Some(ms) = p.ejection_ms {
            parts.push(format!("ejection-time-ms {ms}"));
        }
        let _ = writeln!(out, "        passive-health {{ {}; }}", parts.join("; "));
    }
    let timeouts: Vec<String> = [
        ("connect-ms", u.connect_ms),
        ("read-ms", u.read_ms),
        ("write-ms", u.write_ms),
    ]
    .iter()
    .filter_map(|(k, v)| v.map(|v| format!("{k} {v}")))
    .collect();
    if !timeouts.is_empty() {
        let _ = writeln!(out, "        timeouts {{ {}; }}", timeouts.join("; "));
    }
    let pool: Vec<String> = [
        ("max-idle", u.max_idle),
        ("idle-timeout-ms", u.idle_timeout_ms),
    ]
    .iter()
    .filter_map(|(k, v)| v.map(|v| format!("{k} {v}")))
    .collect();
    if !pool.is_empty() {
        let _ = writeln!(out, "        connection-pool {{ {}; }}", pool.join("; "));
    }
    if let Some(t) = &u.tls {
        let mut parts = Vec::new();
        if let Some(s) = &t.sni {
            parts.push(format!("sni {}", quote(s)));
        }
        if let Some(c) = &t.ca_file {
            parts.push(format!("ca-file {}", quote(c)));
        }
        if !t.verify {
            parts.push("verify #false".to_owned());
        }
        if let (Some(c), Some(k)) = (&t.cert_file, &t.key_file) {
            parts.push(format!("cert-file {}", quote(c)));
            parts.push(format!("key-file {}", quote(k)));
        }
        if parts.is_empty() {
            parts.push("verify #true".to_owned());
        }
        let _ = writeln!(out, "        tls {{ {}; }}", parts.join("; "));
    }
    out.push_str("    }\n");
}

fn filter(out: &mut String, f: &RateLimit) {
    comment(out, "    ", &f.origin);
    let _ = writeln!(out, "    filter {} {{", quote(&f.id));
    out.push_str("        type \"rate-limit\"\n");
    let _ = writeln!(out, "        requests-per-second {}", f.requests_per_second);
    let _ = writeln!(out, "        burst {}", f.burst);
    if !f.key.is_empty() {
        let _ = writeln!(out, "        key {}", quoted_list(&f.key));
    }
    if f.delay {
        out.push_str("        on-limit \"delay\"\n");
    }
    out.push_str("    }\n");
}

fn limits(out: &mut String, draft: &Draft) {
    let l = &draft.limits;
    if l.is_empty() {
        return;
    }
    out.push_str("\nlimits {\n");
    for (key, v) in [
        ("max-header-bytes", l.max_header_bytes),
        ("max-body-bytes", l.max_body_bytes),
        ("max-connections", l.max_connections),
        ("max-connections-per-client", l.max_connections_per_client),
    ] {
        if let Some(v) = v {
            let _ = writeln!(out, "    {key} {v}");
        }
    }
    out.push_str("}\n");
}

fn log(out: &mut String, key: &str, t: &LogTarget) {
    let dest = match t.destination {
        LogDestination::File => "file",
        LogDestination::Stdout => "stdout",
        LogDestination::Stderr => "stderr",
        LogDestination::Off => "off",
    };
    let mut parts = vec![format!("destination {}", quote(dest))];
    if let Some(p) = &t.path {
        parts.push(format!("path {}", quote(p)));
    }
    if let Some(l) = t.level {
        parts.push(format!("level {}", quote(l)));
    }
    let _ = writeln!(out, "    {key} {{ {}; }}", parts.join("; "));
}

fn observability(out: &mut String, draft: &Draft) {
    let o = &draft.observability;
    if o.access_log.is_none() && o.error_log.is_none() {
        return;
    }
    out.push_str("\nobservability {\n");
    if let Some(a) = &o.access_log {
        log(out, "access-log", a);
    }
    if let Some(e) = &o.error_log {
        log(out, "error-log", e);
    }
    out.push_str("}\n");
}

#[cfg(test)]
mod tests {
    use super::quote;

    #[test]
    fn strings_are_escaped() {
        assert_eq!(quote(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(quote("x\ny"), r#""x\ny""#);
        assert_eq!(quote("\u{1}"), r#""\u{1}""#);
    }
}
