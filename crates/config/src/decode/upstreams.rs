//! Decoding of upstream pools.

use std::net::SocketAddr;

use super::headers::header_name;
use super::{invalid, string_args};
use crate::diagnostic::{Code, Problem};
use crate::model::{
    ConnectionPool, HashKey, HashSource, HealthCheck, HealthProbe, LoadBalancing, MAX_TARGETS,
    PassiveHealth, Target, TargetAddr, Upstream, UpstreamId, UpstreamTimeouts, UpstreamTls,
};
use crate::reader::{Cx, Reader, Spanned};

pub(super) fn upstream(r: &Reader<'_>, id: &Spanned<String>) -> Option<Upstream> {
    let cx = r.cx();
    let context = format!("upstream \"{}\"", id.value);
    let targets = targets(r);
    let lb = r.enumeration::<LoadBalancing>("load-balancing");
    let hash_on = hash_on(r);
    let health_check = if r.has("health-check") {
        r.block("health-check").map(|b| health_check(&b))
    } else {
        None
    };
    let passive = r.block("passive-health").and_then(|b| {
        let enabled = b.bool("enabled");
        let failures = b.uint("consecutive-failures");
        let ejection = b.ms("ejection-time-ms");
        if enabled == Some(false) {
            b.no_effect("consecutive-failures", "passive health is disabled");
            b.no_effect("ejection-time-ms", "passive health is disabled");
        }
        Some(PassiveHealth {
            enabled: enabled?,
            consecutive_failures: failures?,
            ejection_time: ejection?,
        })
    });
    let timeouts = r.block("timeouts").and_then(|b| {
        let connect = b.ms("connect-ms");
        let read = b.ms("read-ms");
        let write = b.ms("write-ms");
        Some(UpstreamTimeouts {
            connect: connect?,
            read: read?,
            write: write?,
        })
    });
    let pool = r.block("connection-pool").and_then(|b| {
        let max_idle = b.uint("max-idle");
        let idle = b.ms("idle-timeout-ms");
        if max_idle == Some(0) {
            b.no_effect("idle-timeout-ms", "`max-idle 0` keeps no idle connection");
        }
        Some(ConnectionPool {
            max_idle: max_idle?,
            idle_timeout: idle?,
        })
    });
    let dns_refresh = r.ms("dns-refresh-ms");
    if targets
        .as_ref()
        .is_some_and(|ts| ts.iter().all(|t| matches!(t.address, TargetAddr::Ip(_))))
    {
        r.no_effect("dns-refresh-ms", "every target is an IP address");
    }
    let tls = if r.has("tls") {
        r.block("tls").map(|b| tls(&b))
    } else {
        None
    };

    let hash_on = match (lb, hash_on) {
        (Some(LoadBalancing::ConsistentHash), Some(h)) => Some(h.unwrap_or(HashKey::ClientIp)),
        (Some(other), Some(Some(_))) => {
            cx.report(Problem::new(Code::Conflict, r.written("hash-on"),
                format!("{context}: `hash-on` only applies to `load-balancing \"consistent-hash\"`, not \"{other}\""))
                .help("remove `hash-on`, or set `load-balancing \"consistent-hash\"`"));
            return None;
        }
        _ => None,
    };
    Some(Upstream {
        id: UpstreamId::new(id.value.clone()),
        targets: targets?,
        load_balancing: lb?,
        hash_on,
        health_check: health_check.flatten(),
        passive_health: passive?,
        timeouts: timeouts?,
        connection_pool: pool?,
        tls: tls.flatten(),
        dns_refresh: dns_refresh?,
    })
}

fn targets(r: &Reader<'_>) -> Option<Vec<Target>> {
    let cx = r.cx();
    let mut out: Vec<Target> = Vec::new();
    let mut ok = true;
    for (addr, props) in r.named("target") {
        let weight = props.uint::<u32>("weight");
        match (target_addr(cx, &addr), weight) {
            (Some(a), Some(w)) => {
                if out.iter().any(|t| t.address == a) {
                    invalid(
                        cx,
                        addr.span,
                        format!("target {a} is listed twice"),
                        Some("use `weight=` to give a target a larger share".to_owned()),
                    );
                    ok = false;
                }
                if out.len() == MAX_TARGETS {
                    let msg = format!("an upstream has at most {MAX_TARGETS} targets");
                    invalid(
                        cx,
                        addr.span,
                        msg,
                        Some("split the pool into several upstreams".to_owned()),
                    );
                    ok = false;
                }
                out.push(Target {
                    address: a,
                    weight: w,
                });
            }
            _ => ok = false,
        }
    }
    ok.then_some(out)
}

/// `ip:port`, `[v6]:port` or `host:port`.
fn target_addr(cx: &Cx<'_>, a: &Spanned<String>) -> Option<TargetAddr> {
    if let Ok(sa) = a.value.parse::<SocketAddr>() {
        if sa.port() == 0 {
            invalid(
                cx,
                a.span,
                format!("target \"{}\" needs a port other than 0", a.value),
                None,
            );
            return None;
        }
        return Some(TargetAddr::Ip(sa));
    }
    let parsed = a.value.rsplit_once(':').and_then(|(host, port)| {
        let port = port.parse::<u16>().ok().filter(|p| *p != 0)?;
        let host_ok = !host.is_empty()
            && host.len() <= 253
            && host.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            });
        host_ok.then(|| TargetAddr::Dns {
            host: host.to_ascii_lowercase(),
            port,
        })
    });
    if parsed.is_none() {
        let help = if a.value.contains("://") {
            "write the address without a scheme, for example \"10.0.0.5:8080\"; use the `tls` block for HTTPS"
        } else {
            "write ip:port or host:port, for example \"10.0.0.5:8080\" or \"backend.internal:8080\""
        };
        invalid(
            cx,
            a.span,
            format!("target \"{}\" is not an address with a port", a.value),
            Some(help.to_owned()),
        );
    }
    parsed
}

/// `Some(None)` when absent (the algorithm's default applies), `None` on error.
fn hash_on(r: &Reader<'_>) -> Option<Option<HashKey>> {
    let cx = r.cx();
    let nodes = r.nodes("hash-on");
    let Some((file, node)) = nodes.first() else {
        return Some(None);
    };
    let example = r#"hash-on "header" "x-user-id""#;
    let a = string_args(cx, *file, node, 1, 2, example)?;
    let source = r.to_enum::<HashSource>("hash-on", &a[0].value, a[0].span)?;
    match (source, a.get(1)) {
        (HashSource::ClientIp, None) => Some(Some(HashKey::ClientIp)),
        (HashSource::ClientIp, Some(extra)) => {
            invalid(
                cx,
                extra.span,
                "`hash-on \"client-ip\"` takes no name".to_owned(),
                None,
            );
            None
        }
        (HashSource::Header, Some(n)) => header_name(cx, n).map(|h| Some(HashKey::Header(h))),
        (HashSource::Cookie, Some(n)) if !n.value.is_empty() => {
            Some(Some(HashKey::Cookie(n.value.clone())))
        }
        (s, _) => {
            invalid(
                cx,
                a[0].span,
                format!("`hash-on \"{s}\"` needs the {s} name"),
                Some(format!("for example: hash-on \"{s}\" \"session\"")),
            );
            None
        }
    }
}

/// An HTTP probe: the path is sent as the request target and the host as `Host`, so both
/// must be plain visible ASCII (no spaces or control characters).
fn http_probe(
    cx: &Cx<'_>,
    path: Spanned<String>,
    expect: Option<u16>,
    host: Option<Spanned<String>>,
) -> Option<HealthProbe> {
    let visible = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic());
    let mut ok = true;
    if !path.value.starts_with('/') || !visible(&path.value) {
        let msg = format!(
            "the health-check path must start with '/' and hold no spaces or control characters, found \"{}\"",
            path.value
        );
        invalid(
            cx,
            path.span,
            msg,
            Some("percent-encode spaces, for example \"/health%20check\"".to_owned()),
        );
        ok = false;
    }
    if let Some(h) = &host
        && !visible(&h.value)
    {
        invalid(
            cx,
            h.span,
            format!(
                "the health-check `host` \"{}\" is not a valid Host value",
                h.value
            ),
            None,
        );
        ok = false;
    }
    let expect_status = expect?;
    ok.then(|| HealthProbe::Http {
        path: path.value,
        expect_status,
        host: host.map(|h| h.value),
    })
}

fn health_check(r: &Reader<'_>) -> Option<HealthCheck> {
    let cx = r.cx();
    let http = r.named("http");
    let tcp = r.flag("tcp");
    let interval = r.ms("interval-ms");
    let timeout = r.ms("timeout-ms");
    let healthy = r.uint("healthy-threshold");
    let unhealthy = r.uint("unhealthy-threshold");
    // Read the http probe's keys whatever happens next, so all its problems are reported.
    let http = http.into_iter().next().map(|(path, b)| {
        let expect = b.uint::<u16>("expect-status");
        let host = b.nonempty("host");
        (path, expect, host)
    });
    let probe = match (http, tcp) {
        (Some(_), true) => {
            cx.report(
                Problem::new(
                    Code::Conflict,
                    r.written("tcp"),
                    "a health check is either `http` or `tcp`, not both",
                )
                .help("keep one of them"),
            );
            None
        }
        (Some((path, expect, host)), false) => http_probe(cx, path, expect, host),
        (None, true) => Some(HealthProbe::Tcp),
        (None, false) => {
            cx.report(
                Problem::new(
                    Code::MissingKey,
                    r.span(),
                    "a health check needs a probe: `http \"/path\"` or `tcp`",
                )
                .help(r#"add, for example: http "/healthz""#),
            );
            None
        }
    };
    if let (Some(i), Some(t)) = (interval, timeout)
        && t >= i
    {
        cx.report(Problem::new(
            Code::Conflict,
            r.written("timeout-ms").or(r.span()),
            format!(
                "the probe timeout ({} ms) must be shorter than the interval ({} ms)",
                t.as_millis(),
                i.as_millis()
            ),
        ));
        return None;
    }
    Some(HealthCheck {
        probe: probe?,
        interval: interval?,
        timeout: timeout?,
        healthy_threshold: healthy?,
        unhealthy_threshold: unhealthy?,
    })
}

fn tls(r: &Reader<'_>) -> Option<UpstreamTls> {
    let cx = r.cx();
    let sni = r.nonempty("sni");
    let ca_file = r.path("ca-file");
    let verify = r.bool("verify");
    let cert_file = r.path("cert-file");
    let key_file = r.path("key-file");
    if verify == Some(false) {
        r.no_effect("ca-file", "`verify #false` checks no certificate");
    }
    match (&cert_file, &key_file) {
        (Some(_), None) | (None, Some(_)) => {
            let span = r.written("cert-file").or(r.written("key-file"));
            cx.report(Problem::new(
                Code::MissingKey,
                span,
                "a client certificate needs both `cert-file` and `key-file`",
            ));
            return None;
        }
        _ => {}
    }
    Some(UpstreamTls {
        sni: sni.map(|s| s.value),
        ca_file,
        verify: verify?,
        cert_file,
        key_file,
    })
}
