//! Decoding of `server`, `limits`, `observability` and `admin`.

use std::num::NonZeroUsize;

use super::headers::header_name;
use crate::diagnostic::{Code, Problem, Span};
use crate::model::{
    Admin, Limits, LogDestination, LogDestinationKind, LogSink, Metrics, Observability, Server,
};
use crate::reader::Reader;

pub(super) fn server(r: &Reader<'_>) -> Option<Server> {
    let workers = r.uint::<usize>("worker-threads");
    let stealing = r.bool("work-stealing");
    let grace = r.secs("graceful-shutdown-timeout-secs");
    let trusted = r.cidrs("trusted-proxies");
    let rid = r
        .nonempty("request-id-header")
        .and_then(|h| header_name(r.cx(), &h));
    Some(Server {
        worker_threads: workers.and_then(NonZeroUsize::new),
        work_stealing: stealing?,
        graceful_shutdown_timeout: grace?,
        trusted_proxies: trusted?,
        request_id_header: rid?,
    })
}

pub(super) fn limits(r: &Reader<'_>) -> Option<Limits> {
    let max_header_bytes = r.uint("max-header-bytes");
    let max_header_count = r.uint("max-header-count");
    let max_uri_bytes = r.uint("max-uri-bytes");
    let max_body_bytes = r.uint("max-body-bytes");
    let max_connections = r.uint("max-connections");
    let per_client = r.uint("max-connections-per-client");
    let tracked = r.uint("max-tracked-clients");
    let in_flight = r.uint("max-in-flight-requests");
    if let (Some(total), Some(pc), Some(span)) = (
        max_connections,
        per_client,
        r.written("max-connections-per-client"),
    ) {
        let (total, pc): (u32, u32) = (total, pc);
        if pc > total {
            r.cx().report(Problem::new(Code::Conflict, Some(span),
                format!("`max-connections-per-client` ({pc}) is above `max-connections` ({total}), so it can never apply"))
                .help("lower it, or raise `max-connections`"));
        }
    }
    Some(Limits {
        max_header_bytes: max_header_bytes?,
        max_header_count: max_header_count?,
        max_uri_bytes: max_uri_bytes?,
        max_body_bytes: max_body_bytes?,
        max_connections: max_connections?,
        max_connections_per_client: per_client?,
        max_tracked_clients: tracked?,
        max_in_flight_requests: in_flight?,
    })
}

/// The observability block, and where `metrics` is written (for the admin cross-check).
pub(super) struct Decoded {
    pub(super) value: Observability,
    pub(super) metrics_written: Option<Span>,
}

pub(super) fn observability(r: &Reader<'_>) -> Option<Decoded> {
    let access = r.block("access-log").and_then(|b| sink(&b));
    let audit = r.block("audit-log").and_then(|b| sink(&b));
    let error = r.block("error-log").and_then(|b| {
        let s = sink(&b);
        let level = b.enumeration("level");
        Some((s?, level?))
    });
    let metrics = r.block("metrics").and_then(|b| {
        let enabled = b.bool("enabled");
        let path = b.nonempty("path");
        if let Some(p) = &path
            && !p.value.starts_with('/')
        {
            super::invalid(
                r.cx(),
                p.span,
                format!("metrics `path` must start with '/', found \"{}\"", p.value),
                None,
            );
            return None;
        }
        if enabled == Some(false) {
            b.no_effect("path", "metrics are disabled");
        }
        Some(Metrics {
            enabled: enabled?,
            path: path?.value,
        })
    });
    let (error_log, error_log_level) = error?;
    Some(Decoded {
        value: Observability {
            access_log: access?,
            audit_log: audit?,
            error_log,
            error_log_level,
            metrics: metrics?,
        },
        metrics_written: r.written("metrics"),
    })
}

fn sink(r: &Reader<'_>) -> Option<LogSink> {
    let kind = r.enumeration::<LogDestinationKind>("destination");
    let path = r.path("path");
    let format = r.enumeration("format");
    let destination = match kind? {
        LogDestinationKind::File => match path {
            Some(p) => LogDestination::File(p),
            None => {
                if r.written("path").is_none() {
                    let span = r.written("destination");
                    r.cx().report(
                        Problem::new(
                            Code::MissingKey,
                            span,
                            format!("{} writes to a file but has no `path`", r.context()),
                        )
                        .help(r#"add, for example: path "/var/log/zentinel/zentinel.log""#),
                    );
                }
                return None;
            }
        },
        other => {
            r.no_effect("path", "`destination` is not \"file\"");
            match other {
                LogDestinationKind::Stdout => LogDestination::Stdout,
                LogDestinationKind::Stderr => LogDestination::Stderr,
                _ => LogDestination::Off,
            }
        }
    };
    Some(LogSink {
        destination,
        format: format?,
    })
}

pub(super) fn admin(r: &Reader<'_>) -> Option<Admin> {
    let address = r.socket_addr("address");
    let token_file = r.path("token-file");
    let address = address?;
    if !address.ip().is_loopback() && token_file.is_none() {
        let span = r.written("address");
        r.cx().report(Problem::new(Code::Conflict, span.or(r.span()),
            format!("the admin listener on {address} is reachable from other hosts but has no `token-file`"))
            .help(r#"add `token-file "admin.token"`, or bind it to 127.0.0.1"#));
        return None;
    }
    Some(Admin {
        address,
        token_file,
    })
}
