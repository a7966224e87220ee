//! Converts nginx, HAProxy and Traefik configurations to Zentinel's KDL, with a report that
//! accounts for every source directive.
//!
//! The crate is pure, like `zentinel-config`: it works on `&str`, reads no files, opens no
//! sockets and needs no runtime, so the same code runs in `zentinel convert` and, compiled
//! to WebAssembly, in the browser playground.
//!
//! Each front-end ([`nginx`], [`haproxy`], [`traefik`]) parses its source into a tree with
//! line and column, registers every directive in a ledger ([`report`]), and fills a draft
//! configuration ([`model`]) with values already checked against the config crate's rules
//! ([`rules`]). The draft is written as KDL ([`emit`]) and validated with
//! [`zentinel_config::load_str`]; a conversion that cannot validate says why.

pub mod report;

mod emit;
mod haproxy;
mod model;
mod nginx;
mod quantity;
mod rules;
mod traefik;

use std::net::SocketAddr;
use std::str::FromStr;

pub use report::{Outcome, ReportItem};
pub use zentinel_config::Diagnostics;

/// The syntax of a Traefik dynamic configuration file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TraefikFormat {
    /// `.yml` / `.yaml`.
    Yaml,
    /// `.toml`.
    Toml,
}

impl TraefikFormat {
    /// The format a file name suggests (`.toml` → TOML, anything else → YAML).
    pub fn from_file_name(name: &str) -> TraefikFormat {
        if name.to_ascii_lowercase().ends_with(".toml") {
            TraefikFormat::Toml
        } else {
            TraefikFormat::Yaml
        }
    }
}

/// What a configuration is written for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Source {
    /// An nginx configuration (`nginx.conf`, or a `sites-available` / `conf.d` file).
    Nginx,
    /// An HAProxy configuration (`haproxy.cfg`).
    Haproxy,
    /// A Traefik dynamic configuration (file provider).
    Traefik {
        /// YAML or TOML.
        format: TraefikFormat,
    },
}

/// The error of [`Source::from_str`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownSource(pub String);

impl std::fmt::Display for UnknownSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "unknown source \"{}\": expected nginx, haproxy, traefik, traefik-yaml or traefik-toml",
            self.0
        )
    }
}

impl std::error::Error for UnknownSource {}

impl FromStr for Source {
    type Err = UnknownSource;

    /// `nginx`, `haproxy`, `traefik` (YAML), `traefik-yaml` or `traefik-toml`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "nginx" => Ok(Source::Nginx),
            "haproxy" => Ok(Source::Haproxy),
            "traefik" | "traefik-yaml" | "traefik-yml" => Ok(Source::Traefik {
                format: TraefikFormat::Yaml,
            }),
            "traefik-toml" => Ok(Source::Traefik {
                format: TraefikFormat::Toml,
            }),
            _ => Err(UnknownSource(s.to_owned())),
        }
    }
}

impl Source {
    /// The name used in comments and reports.
    pub fn name(self) -> &'static str {
        match self {
            Source::Nginx => "nginx",
            Source::Haproxy => "HAProxy",
            Source::Traefik { .. } => "Traefik",
        }
    }
}

/// Settings the source does not hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConvertOptions {
    /// Address for a listener when the source names entry points without addresses
    /// (Traefik's dynamic configuration); `zentinel convert --listen`.
    pub default_listen: Option<SocketAddr>,
    /// Addresses of named Traefik entry points, e.g. `("websecure", 0.0.0.0:443)`; they take
    /// precedence over `default_listen` for the entry points they name.
    pub entry_points: Vec<(String, SocketAddr)>,
}

impl ConvertOptions {
    /// Options with a default listener address.
    pub fn with_default_listen(addr: SocketAddr) -> Self {
        Self {
            default_listen: Some(addr),
            entry_points: Vec::new(),
        }
    }
}

/// The outcome of a conversion.
#[derive(Debug)]
pub struct Conversion {
    /// The Zentinel configuration (KDL v2). When [`Conversion::is_valid`] is false it holds
    /// what could be converted, for reference.
    pub kdl: String,
    /// Every source directive, in source order, with what became of it.
    pub report: Vec<ReportItem>,
    /// Why no valid configuration could be produced, in the source's terms; empty when
    /// `kdl` validates.
    pub blockers: Vec<String>,
    /// The config crate's verdict on `kdl`: `None` when it validates.
    pub diagnostics: Option<Diagnostics>,
}

impl Conversion {
    /// Whether `kdl` is a configuration Zentinel accepts.
    pub fn is_valid(&self) -> bool {
        self.diagnostics.is_none() && self.blockers.is_empty()
    }

    /// The report as text, one directive per line.
    pub fn report_text(&self) -> String {
        report::render(&self.report)
    }

    /// Machine-readable form for the CLI's `--json` and the playground:
    /// `{"ok", "kdl", "report": […], "blockers": […], "diagnostics": {…} | null}`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "ok": self.is_valid(),
            "kdl": self.kdl,
            "report": self.report,
            "blockers": self.blockers,
            "diagnostics": self.diagnostics.as_ref().map(Diagnostics::to_json),
        })
    }
}

/// Converts `text`, written for `from`, with default options.
pub fn convert(from: Source, text: &str) -> Conversion {
    convert_with(from, text, &ConvertOptions::default())
}

/// Converts `text`, written for `from`.
pub fn convert_with(from: Source, text: &str, options: &ConvertOptions) -> Conversion {
    let (draft, ledger) = match from {
        Source::Nginx => nginx::convert(text),
        Source::Haproxy => haproxy::convert(text),
        Source::Traefik { format } => traefik::convert(text, format, options),
    };
    finish(from, draft, ledger)
}

fn finish(from: Source, mut draft: model::Draft, ledger: report::Ledger) -> Conversion {
    let report = ledger.finish();
    if draft.blockers.is_empty() {
        let missing: Vec<&str> = [
            (draft.listeners.is_empty(), "no listener"),
            (draft.routes.is_empty(), "no route"),
            (draft.upstreams.is_empty(), "no upstream"),
        ]
        .into_iter()
        .filter_map(|(m, what)| m.then_some(what))
        .collect();
        if !missing.is_empty() {
            draft.blockers.push(format!(
                "the {} configuration yields {}; Zentinel needs at least one listener, route and upstream (the report says why each directive was not mapped)",
                from.name(),
                missing.join(", ")
            ));
        }
    }
    let mapped = report
        .iter()
        .filter(|i| !matches!(i.outcome, Outcome::NotMapped(_)))
        .count();
    let header = format!(
        "Converted from {} by zentinel-convert: {mapped} of {} directives mapped.\nRead the conversion report: it lists every directive, the caveats and what was not mapped.",
        from.name(),
        report.len()
    );
    let kdl = emit::kdl(&draft, &header);
    let diagnostics = zentinel_config::load_str("converted.kdl", &kdl).err();
    if diagnostics.is_some() && draft.blockers.is_empty() {
        draft.blockers.push(
            "the converted configuration does not validate (a converter bug: please report it with the source); the diagnostics say where"
                .to_owned(),
        );
    }
    Conversion {
        kdl,
        report,
        blockers: draft.blockers,
        diagnostics,
    }
}
