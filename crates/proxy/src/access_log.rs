//! The access log: one line per request, JSON or text, to stdout, stderr or a file.

use std::time::{SystemTime, UNIX_EPOCH};

use pingora::prelude::*;
use pingora::proxy::Session;
use zentinel_config::model::{LogFormat, LogSink};

use crate::BuildError;
use crate::log_file::Sink;
use crate::proxy::Ctx;

/// Where access log lines go.
#[derive(Debug)]
pub(crate) struct AccessLog {
    sink: Sink,
    format: LogFormat,
}

impl AccessLog {
    /// The access log described by `sink`; a file is opened now.
    pub(crate) fn new(sink: &LogSink) -> Result<Self, BuildError> {
        Ok(Self {
            sink: Sink::new("access-log", &sink.destination)?,
            format: sink.format,
        })
    }

    /// Writes the line of one finished request.
    pub(crate) fn write(&self, session: &Session, e: Option<&Error>, ctx: &Ctx, listener: usize) {
        if self.sink.is_off() {
            return;
        }
        let req = session.req_header();
        let rt = &ctx.rt;
        let route = ctx.route.map(|i| rt.config.routes[i].id.as_str());
        let upstream = ctx
            .route
            .map(|i| rt.config.upstreams[rt.routes[i].pool].id.as_str());
        let target = ctx.route.zip(ctx.attempt.last_target).and_then(|(r, t)| {
            rt.pools[rt.routes[r].pool]
                .targets
                .get(t)
                .map(|t| t.addr().to_string())
        });
        let status = session.response_written().map_or(0, |r| r.status.as_u16());
        let ts = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let line = serde_json::json!({
            "ts_ms": ts,
            "request_id": ctx.request_id,
            "listener": rt.config.listeners.get(listener).map(|l| l.id.as_str()),
            "client": ctx.forwarding.as_ref().and_then(|f| f.client_ip).map(|ip| ip.to_string()),
            "method": req.method.as_str(),
            "host": req.headers.get("host").and_then(|v| v.to_str().ok()),
            "path": req.uri.path(),
            "status": status,
            "route": route,
            "upstream": upstream,
            "target": target,
            "attempts": ctx.attempt.count,
            "upstream_ms": ctx.attempt.upstream_time.map(|d| d.as_secs_f64() * 1000.0),
            "duration_ms": ctx.started.elapsed().as_secs_f64() * 1000.0,
            "bytes_in": ctx.body_bytes,
            "bytes_out": session.body_bytes_sent(),
            "error": e.map(|e| e.etype().as_str()),
        });
        let mut line = line;
        if !ctx.agents.calls.is_empty() {
            line["agents"] = ctx
                .agents
                .calls
                .iter()
                .map(|c| {
                    serde_json::json!({
                        "agent": rt.agents.list[c.agent].config.id.as_str(),
                        "event": c.event,
                        "outcome": c.outcome.as_str(),
                        "ms": c.latency.as_secs_f64() * 1000.0,
                    })
                })
                .collect();
        }
        let text = match self.format {
            LogFormat::Json => line.to_string(),
            LogFormat::Text => text_line(&line),
        };
        self.sink.line(&text);
    }
}

/// `key=value` pairs, strings quoted when they contain spaces or quotes.
fn text_line(v: &serde_json::Value) -> String {
    let Some(map) = v.as_object() else {
        return String::new();
    };
    map.iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| match v {
            serde_json::Value::String(s) if s.contains([' ', '"', '=']) || s.is_empty() => {
                format!("{k}={v}")
            }
            serde_json::Value::String(s) => format!("{k}={s}"),
            other => format!("{k}={other}"),
        })
        .collect::<Vec<_>>()
        .join(" ")
}
