//! Decoding of routes: matches, filters, header policies, timeouts, limits, retries.

use super::headers::{header_name, header_value, is_tchar, policy};
use super::{Ids, invalid, string_args};
use crate::diagnostic::{Code, Problem};
use crate::model::{
    AgentId, FailureMode, FilterId, FilterRef, HeaderMatch, HostPattern, Matches, PathMatch,
    QueryMatch, RetryPolicy, Route, RouteId, RouteLimits, UpstreamId,
};
use crate::reader::{Cx, Reader, Spanned};

/// What routes may refer to.
pub(super) struct Known<'a> {
    pub(super) upstreams: &'a Ids,
    pub(super) agents: &'a Ids,
    pub(super) filters: &'a Ids,
}

const METHODS: &[&str] = &[
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];

pub(super) fn route(r: &Reader<'_>, id: &Spanned<String>, known: &Known<'_>) -> Option<Route> {
    let cx = r.cx();
    let context = format!("route \"{}\"", id.value);
    let priority = r.uint::<i32>("priority");
    let matches = r.block("matches").and_then(|b| matches(&b));
    let upstream = r.nonempty("upstream");
    let filter_names = r.string_list("filters");
    let failure_mode = r.enumeration::<FailureMode>("failure-mode");
    let request_headers = r.block("request-headers").and_then(|b| policy(&b));
    let response_headers = r.block("response-headers").and_then(|b| policy(&b));
    let total_timeout = r.block("timeouts").and_then(|b| b.ms("total-ms"));
    let limits = r.block("limits").map(|b| {
        let body = b.uint("max-body-bytes");
        let in_flight = b.uint("max-in-flight-requests");
        RouteLimits {
            max_body_bytes: body,
            max_in_flight_requests: in_flight,
        }
    });
    let retry = r.block("retry").and_then(|b| retry(&b));
    let websocket = r.bool("websocket");
    let inference = if r.has("inference") {
        r.block("inference")
            .and_then(|b| super::inference::inference(&b))
            .map(Some)
    } else {
        Some(None)
    };

    let upstream = upstream.filter(|u| {
        known
            .upstreams
            .resolve(cx, "upstream", u, &context, id.span)
    });
    let filters = filter_names.and_then(|names| resolve_filters(cx, &names, known, &context));
    if let (Some(list), Some(_)) = (&filters, failure_mode)
        && !list.iter().any(|f| matches!(f, FilterRef::Agent(_)))
    {
        r.no_effect("failure-mode", "this route consults no agent in `filters`");
        return None;
    }
    if let (Some(retry), Some(total), Some(span)) = (&retry, total_timeout, r.written("retry"))
        && let Some(per_try) = retry.per_try_timeout
        && per_try >= total
    {
        cx.report(Problem::new(Code::Conflict, Some(span),
                    format!("{context}: `per-try-timeout-ms` ({} ms) is not below `total-ms` ({} ms), so no retry could ever start",
                        per_try.as_millis(), total.as_millis()))
                    .help("lower `per-try-timeout-ms`, or raise `timeouts { total-ms … }`"));
        return None;
    }
    Some(Route {
        id: RouteId::new(id.value.clone()),
        priority: priority?,
        matches: matches?,
        upstream: UpstreamId::new(upstream?.value),
        filters: filters?,
        failure_mode,
        request_headers: request_headers?,
        response_headers: response_headers?,
        total_timeout: total_timeout?,
        limits: limits?,
        retry: retry?,
        websocket: websocket?,
        inference: inference?,
    })
}

fn resolve_filters(
    cx: &Cx<'_>,
    names: &[Spanned<String>],
    known: &Known<'_>,
    context: &str,
) -> Option<Vec<FilterRef>> {
    let mut out: Vec<FilterRef> = Vec::new();
    let mut ok = true;
    for n in names {
        let r = if known.agents.contains(&n.value) {
            FilterRef::Agent(AgentId::new(n.value.clone()))
        } else if known.filters.contains(&n.value) {
            FilterRef::Builtin(FilterId::new(n.value.clone()))
        } else {
            let candidates: Vec<&str> = known.agents.names().chain(known.filters.names()).collect();
            let help = if candidates.is_empty() {
                Some(
                    "no agent or filter is defined; add one in `agents { … }` or `filters { … }`"
                        .to_owned(),
                )
            } else {
                crate::diagnostic::suggestion(
                    &n.value,
                    candidates.iter().copied(),
                    "known agents and filters",
                )
            };
            cx.report(
                Problem::new(
                    Code::UnknownReference,
                    n.span,
                    format!(
                        "{context} names filter \"{}\", which is neither an agent nor a filter",
                        n.value
                    ),
                )
                .label("unknown agent or filter")
                .help_opt(help),
            );
            ok = false;
            continue;
        };
        if out.contains(&r) {
            invalid(
                cx,
                n.span,
                format!("\"{}\" is listed twice in `filters`", n.value),
                None,
            );
            ok = false;
        }
        out.push(r);
    }
    ok.then_some(out)
}

/// A host pattern: exact name or `*.suffix`, lower-cased, without port.
pub(super) fn host_pattern(cx: &Cx<'_>, h: &Spanned<String>) -> Option<HostPattern> {
    let v = h.value.to_ascii_lowercase();
    let (wild, name) = match v.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, v.as_str()),
    };
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    let ok = !name.is_empty() && name.len() <= 253 && name.split('.').all(label_ok);
    if !ok {
        let help = if name.contains(':') {
            "hosts are matched without the port; remove \":port\"".to_owned()
        } else if name.contains('*') {
            "a wildcard may only be a leading `*.`, as in \"*.example.com\"".to_owned()
        } else {
            "write a host name such as \"api.example.com\" or \"*.example.com\"".to_owned()
        };
        invalid(
            cx,
            h.span,
            format!("\"{}\" is not a valid host name or pattern", h.value),
            Some(help),
        );
        return None;
    }
    Some(if wild {
        HostPattern::Wildcard(name.to_owned())
    } else {
        HostPattern::Exact(name.to_owned())
    })
}

fn matches(r: &Reader<'_>) -> Option<Matches> {
    let cx = r.cx();
    let hosts = r.string_list("host");
    let path = r.string("path");
    let prefix = r.string("path-prefix");
    let regex = r.string("path-regex");
    let methods = r.string_list("method");
    let headers = name_value_conditions(r, "header", r#"header "x-env" "prod""#);
    let query = name_value_conditions(r, "query-param", r#"query-param "debug" "1""#);

    let hosts = hosts.and_then(|hs| all_or_none(hs.iter().map(|h| host_pattern(cx, h))));
    let paths = path_conditions(cx, path, prefix, regex);
    let methods = methods.and_then(|ms| method_list(cx, ms));
    let headers = headers.map(|hs| {
        hs.into_iter()
            .map(|(name, value)| HeaderMatch { name, value })
            .collect()
    });
    let query_params = query.map(|qs| {
        qs.into_iter()
            .map(|(name, value)| QueryMatch { name, value })
            .collect()
    });
    Some(Matches {
        hosts: hosts?,
        paths: paths?,
        methods: methods?,
        headers: headers?,
        query_params: query_params?,
    })
}

/// Every item, or `None` when any failed (each failure reported itself).
fn all_or_none<T>(items: impl Iterator<Item = Option<T>>) -> Option<Vec<T>> {
    let collected: Vec<Option<T>> = items.collect();
    collected.into_iter().collect()
}

fn path_conditions(
    cx: &Cx<'_>,
    path: Option<Spanned<String>>,
    prefix: Option<Spanned<String>>,
    regex: Option<Spanned<String>>,
) -> Option<Vec<PathMatch>> {
    let mut paths = Vec::new();
    let mut ok = true;
    for (p, exact) in [(path, true), (prefix, false)] {
        let Some(p) = p else { continue };
        if !p.value.starts_with('/') {
            let msg = format!("a path must start with '/', found \"{}\"", p.value);
            invalid(cx, p.span, msg, None);
            ok = false;
        } else if let Some((msg, hint)) = not_normal(&p.value, exact) {
            invalid(cx, p.span, msg, hint);
            ok = false;
        } else if exact {
            paths.push(PathMatch::Exact(p.value));
        } else {
            paths.push(PathMatch::Prefix(p.value));
        }
    }
    if let Some(re) = regex {
        // The size limit bounds the compiled program: a pathological pattern is refused here,
        // not discovered as memory use later.
        match regex::RegexBuilder::new(&re.value)
            .size_limit(1 << 20)
            .build()
        {
            Ok(compiled) => paths.push(PathMatch::Regex(compiled)),
            Err(e) => {
                let detail = e.to_string();
                let last = detail.lines().last().unwrap_or("invalid").trim().to_owned();
                let msg = format!("`path-regex` is not a valid regular expression: {last}");
                invalid(cx, re.span, msg, None);
                ok = false;
            }
        }
    }
    ok.then_some(paths)
}

/// Why a `path` (`exact`) or `path-prefix` could never match a request: the proxy routes
/// on normalised paths ([`crate::path`]), so a condition must be written normalised too.
/// A prefix is checked as the start of a path (`/v1/.` can still begin `/v1/.well-known`).
fn not_normal(value: &str, exact: bool) -> Option<(String, Option<String>)> {
    let probe = if exact {
        value.to_owned()
    } else {
        format!("{value}x")
    };
    match crate::path::normalize(&probe) {
        Ok(n) if n == probe => None,
        Ok(n) => {
            let written = if exact { &n } else { n.strip_suffix('x')? };
            Some((
                format!(
                    "\"{value}\" would never match: requests are routed on their normalised path"
                ),
                Some(format!("write \"{written}\"")),
            ))
        }
        Err(e) => Some((
            format!("\"{value}\" would never match: the proxy refuses such paths with 400 ({e})"),
            None,
        )),
    }
}

fn method_list(cx: &Cx<'_>, methods: Vec<Spanned<String>>) -> Option<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    let mut ok = true;
    for m in methods {
        let upper = m.value.to_ascii_uppercase();
        let problem = if m.value != upper && METHODS.contains(&upper.as_str()) {
            Some((
                format!(
                    "methods are case-sensitive; \"{}\" would never match",
                    m.value
                ),
                Some(format!("write \"{upper}\"")),
            ))
        } else if m.value.is_empty() || !m.value.chars().all(is_tchar) {
            Some((format!("\"{}\" is not a valid method", m.value), None))
        } else if out.contains(&m.value) {
            Some((format!("method \"{}\" is listed twice", m.value), None))
        } else {
            None
        };
        match problem {
            Some((msg, help)) => {
                invalid(cx, m.span, msg, help);
                ok = false;
            }
            None => out.push(m.value),
        }
    }
    ok.then_some(out)
}

/// `header "name"` / `header "name" "value"` conditions (and the same for query parameters).
fn name_value_conditions(
    r: &Reader<'_>,
    key: &str,
    example: &str,
) -> Option<Vec<(String, Option<String>)>> {
    let cx = r.cx();
    let mut out = Vec::new();
    let mut ok = true;
    for (file, node) in r.nodes(key) {
        let Some(a) = string_args(cx, file, node, 1, 2, example) else {
            ok = false;
            continue;
        };
        let name = if key == "header" {
            header_name(cx, &a[0])
        } else if a[0].value.is_empty() {
            invalid(
                cx,
                a[0].span,
                "a query parameter name must not be empty".to_owned(),
                None,
            );
            None
        } else {
            Some(a[0].value.clone())
        };
        let value = match a.get(1) {
            Some(v) if key == "header" => header_value(cx, v).map(Some),
            Some(v) => Some(Some(v.value.clone())),
            None => Some(None),
        };
        match (name, value) {
            (Some(n), Some(v)) => out.push((n, v)),
            _ => ok = false,
        }
    }
    ok.then_some(out)
}

fn retry(r: &Reader<'_>) -> Option<RetryPolicy> {
    let max_attempts = r.uint::<u32>("max-attempts");
    let retry_on = r.enum_list("retry-on");
    let non_idempotent = r.bool("non-idempotent");
    let per_try_timeout = r.ms("per-try-timeout-ms");
    let budget_percent = r.uint("budget-percent");
    let min_per_second = r.uint("min-retries-per-second");
    if max_attempts == Some(1) {
        for key in [
            "retry-on",
            "non-idempotent",
            "budget-percent",
            "min-retries-per-second",
        ] {
            r.no_effect(key, "`max-attempts 1` disables retries");
        }
        if [
            "retry-on",
            "non-idempotent",
            "budget-percent",
            "min-retries-per-second",
        ]
        .iter()
        .any(|k| r.written(k).is_some())
        {
            return None;
        }
    }
    Some(RetryPolicy {
        max_attempts: max_attempts?,
        retry_on: retry_on?,
        non_idempotent: non_idempotent?,
        per_try_timeout,
        budget_percent: budget_percent?,
        min_retries_per_second: min_per_second?,
    })
}
