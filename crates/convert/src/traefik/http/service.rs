//! `http.services.NAME.loadBalancer` → an upstream.

use super::super::Cx;
use super::super::tree::Node;
use crate::model::{HealthCheck, Probe, Upstream, UpstreamTls};
use crate::quantity;
use crate::rules;

/// The upstream of service `name`, emitted on first use.
pub(crate) fn upstream(
    cx: &mut Cx<'_>,
    services: Option<&Node>,
    name: &str,
) -> Result<String, String> {
    let Some(svc) = services.and_then(|s| s.get(name)) else {
        return Err(format!("service \"{name}\" is not defined in this file"));
    };
    let base = format!("http.services.{name}");
    for kind in ["weighted", "mirroring", "failover"] {
        if svc.get(kind).is_some() {
            let why = format!(
                "`{kind}` services are not supported: use one upstream with weighted targets"
            );
            cx.not_mapped(&format!("{base}.{kind}"), why.clone());
            cx.fallback_under(&format!("{base}.{kind}"), &why);
            return Err(why);
        }
    }
    let Some(lb) = svc.get("loadBalancer") else {
        return Err(format!("service \"{name}\" has no loadBalancer"));
    };
    let lbp = format!("{base}.loadBalancer");
    let mut up = Upstream {
        origin: format!("Traefik: http.services.{name} (line {})", svc.line),
        ..Upstream::default()
    };
    let mut tls: Option<bool> = None;
    for (i, s) in lb
        .get("servers")
        .map(Node::items)
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let sp = format!("{lbp}.servers[{i}]");
        match server(s) {
            Ok((target, weight, is_tls)) => {
                if tls.is_some_and(|t| t != is_tls) {
                    cx.not_mapped(
                        &format!("{sp}.url"),
                        "one upstream is either all https or all http",
                    );
                    continue;
                }
                if up.targets.iter().any(|(t, _)| *t == target) {
                    cx.not_mapped(
                        &format!("{sp}.url"),
                        format!("{target} is already a server of this service"),
                    );
                    continue;
                }
                tls = Some(is_tls);
                up.targets.push((target, weight));
                cx.mapped(&format!("{sp}.url"));
                cx.mapped(&format!("{sp}.weight"));
            }
            Err(why) => cx.not_mapped(&format!("{sp}.url"), why),
        }
    }
    if up.targets.is_empty() {
        return Err(format!("service \"{name}\" has no server Zentinel can use"));
    }
    if tls == Some(true) {
        up.tls = Some(UpstreamTls {
            verify: true,
            ..UpstreamTls::default()
        });
    }
    for p in [base.as_str(), lbp.as_str(), &format!("{lbp}.servers")] {
        cx.mapped(p);
    }
    options(cx, lb, &lbp);
    if let Some(hc) = lb.get("healthCheck") {
        up.health = health(cx, hc, &format!("{lbp}.healthCheck"));
    }
    up.id = cx.ids.fresh(name);
    let id = up.id.clone();
    cx.draft.upstreams.push(up);
    Ok(id)
}

/// `url: http://host:port` and `weight`.
fn server(s: &Node) -> Result<(String, u64, bool), String> {
    let url = s.get("url").and_then(Node::scalar).ok_or("no `url`")?;
    let (tls, rest) = if let Some(r) = url.strip_prefix("http://") {
        (false, r)
    } else if let Some(r) = url.strip_prefix("https://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("h2c://") {
        (false, r)
    } else {
        return Err(format!(
            "\"{url}\": only http:// and https:// servers are supported"
        ));
    };
    let authority = rest.split('/').next().unwrap_or_default();
    if rest.len() > authority.len() + 1 {
        return Err(
            "a path in the server URL is not supported (requests keep their path)".to_owned(),
        );
    }
    let (host, port) = rules::split_host_port(authority, Some(if tls { 443 } else { 80 }))
        .ok_or_else(|| format!("\"{authority}\" is not host:port"))?;
    let target = rules::target(&host, port)
        .ok_or_else(|| format!("\"{authority}\" is not ip:port or host:port"))?;
    let weight = match s.get("weight") {
        None => 1,
        Some(w) => match w.uint() {
            Some(w) if (1..=10_000).contains(&w) => w,
            _ => return Err("weight must be in 1..=10000".to_owned()),
        },
    };
    Ok((target, weight, tls))
}

fn options(cx: &mut Cx<'_>, lb: &Node, lbp: &str) {
    match lb.get("passHostHeader").and_then(Node::boolean) {
        Some(true) => cx.mapped(&format!("{lbp}.passHostHeader")),
        Some(false) => cx.not_mapped(
            &format!("{lbp}.passHostHeader"),
            "the proxy always forwards the client's Host",
        ),
        None => {}
    }
    if lb.get("sticky").is_some() {
        let why = "sticky cookies are not issued; `load-balancing \"consistent-hash\"` with `hash-on \"cookie\"` hashes an existing cookie";
        cx.not_mapped(&format!("{lbp}.sticky"), why);
        cx.fallback_under(&format!("{lbp}.sticky"), why);
    }
    if lb.get("serversTransport").is_some() {
        cx.not_mapped(&format!("{lbp}.serversTransport"), "servers transports are not converted; set the upstream's `tls { … }` and timeouts by hand");
    }
    if lb.get("responseForwarding").is_some() {
        cx.fallback_under(
            &format!("{lbp}.responseForwarding"),
            "responses are streamed; flushing is not configurable",
        );
    }
}

fn health(cx: &mut Cx<'_>, hc: &Node, p: &str) -> Option<HealthCheck> {
    cx.mapped(p);
    let path = hc.get("path").and_then(Node::scalar).unwrap_or("/");
    if !rules::probe_path(path) {
        cx.not_mapped(
            &format!("{p}.path"),
            "the probe path must start with '/' and hold visible ASCII only",
        );
        cx.not_mapped(p, "no usable probe path");
        return None;
    }
    cx.mapped(&format!("{p}.path"));
    let ms = |k: &str, default: u64| {
        hc.get(k)
            .and_then(Node::scalar)
            .and_then(quantity::go_duration_ms)
            .unwrap_or(default)
    };
    // Traefik's defaults: interval 30s, timeout 5s.
    let interval = ms("interval", 30_000).clamp(100, 3_600_000);
    let timeout = ms("timeout", 5_000).clamp(1, interval - 1);
    cx.mapped(&format!("{p}.interval"));
    cx.mapped(&format!("{p}.timeout"));
    let host = hc.get("hostname").and_then(Node::scalar).map(str::to_owned);
    cx.mapped(&format!("{p}.hostname"));
    let expect_status = hc
        .get("status")
        .and_then(Node::uint)
        .and_then(|s| u16::try_from(s).ok())
        .filter(|s| (100..=599).contains(s));
    cx.mapped(&format!("{p}.status"));
    if hc
        .get("method")
        .and_then(Node::scalar)
        .is_some_and(|m| m != "GET")
    {
        cx.caveat(&format!("{p}.method"), "Zentinel probes with GET");
    } else {
        cx.mapped(&format!("{p}.method"));
    }
    for (k, why) in [
        ("port", "the probe uses the target's port"),
        ("scheme", "the probe uses the upstream's scheme"),
        ("headers", "probe headers other than Host are not supported"),
        ("followRedirects", "redirects are not followed by probes"),
        ("mode", "gRPC health checks are not supported"),
    ] {
        cx.fallback_under(&format!("{p}.{k}"), why);
    }
    Some(HealthCheck {
        probe: Probe::Http {
            path: path.to_owned(),
            expect_status,
            host,
        },
        interval_ms: Some(interval),
        timeout_ms: Some(timeout),
        healthy: None,
        unhealthy: None,
    })
}
