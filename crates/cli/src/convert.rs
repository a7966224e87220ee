//! `zentinel convert`: an nginx, HAProxy or Traefik configuration as Zentinel KDL, with the
//! report of every source directive. The KDL goes to stdout (or `--output`), the report to
//! stderr, so `zentinel convert … > zentinel.kdl` keeps them apart.

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;

use zentinel_convert::{ConvertOptions, Outcome, Source, TraefikFormat, convert_with};

use crate::Format;
use crate::report;

/// What `zentinel convert` was asked.
#[derive(Debug)]
pub(crate) struct ConvertRequest<'a> {
    /// `nginx`, `haproxy`, `traefik` (format from the file name), `traefik-yaml`,
    /// `traefik-toml`.
    pub from: &'a str,
    /// The source file.
    pub file: &'a Path,
    /// Listener address for sources that name none (Traefik entry points).
    pub listen: Option<SocketAddr>,
    /// Entry point name → address, for Traefik.
    pub entry_points: &'a [String],
    /// Where the KDL goes; stdout when absent.
    pub output: Option<&'a Path>,
    /// Report format.
    pub format: Format,
}

fn source(from: &str, file: &Path) -> Result<Source, String> {
    let name = file
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    match from {
        "traefik" => Ok(Source::Traefik {
            format: TraefikFormat::from_file_name(name),
        }),
        other => other.parse().map_err(|_| {
            format!(
                "--from {other}: expected nginx, haproxy, traefik, traefik-yaml or traefik-toml"
            )
        }),
    }
}

fn entry_point(spec: &str) -> Result<(String, SocketAddr), String> {
    let (name, addr) = spec
        .split_once('=')
        .ok_or_else(|| format!("--entry-point {spec}: expected NAME=ADDRESS"))?;
    let addr = addr
        .parse()
        .map_err(|_| format!("--entry-point {spec}: {addr} is not an ip:port address"))?;
    Ok((name.to_owned(), addr))
}

/// Runs the conversion. Exit 0 when the KDL validates, 1 when no valid configuration could
/// be made (the report says why), 2 on usage or I/O errors.
pub(crate) fn run(req: &ConvertRequest<'_>) -> ExitCode {
    let from = match source(req.from, req.file) {
        Ok(s) => s,
        Err(e) => return usage(&e),
    };
    let text = match std::fs::read_to_string(req.file) {
        Ok(t) => t,
        Err(e) => return usage(&format!("cannot read {}: {e}", req.file.display())),
    };
    let mut options = req
        .listen
        .map_or_else(ConvertOptions::default, ConvertOptions::with_default_listen);
    for spec in req.entry_points {
        match entry_point(spec) {
            Ok(ep) => options.entry_points.push(ep),
            Err(e) => return usage(&e),
        }
    }
    let conversion = convert_with(from, &text, &options);
    match req.format {
        Format::Json => outln!("{}", conversion.to_json()),
        Format::Text => eprint!("{}", conversion.report_text()),
    }
    if !conversion.kdl.is_empty() && req.format == Format::Text {
        let written = match req.output {
            Some(path) => std::fs::write(path, &conversion.kdl),
            None => {
                out!("{}", conversion.kdl);
                Ok(())
            }
        };
        if let Err(e) = written {
            return usage(&format!("cannot write the output: {e}"));
        }
    }
    summarize(&conversion)
}

fn summarize(conversion: &zentinel_convert::Conversion) -> ExitCode {
    let count =
        |f: fn(&Outcome) -> bool| conversion.report.iter().filter(|r| f(&r.outcome)).count();
    let mapped = count(|o| matches!(o, Outcome::Mapped));
    let caveat = count(|o| matches!(o, Outcome::MappedWithCaveat(_)));
    let not = count(|o| matches!(o, Outcome::NotMapped(_)));
    eprintln!("zentinel convert: {mapped} mapped, {caveat} mapped with a caveat, {not} not mapped");
    if conversion.is_valid() {
        return ExitCode::SUCCESS;
    }
    for b in &conversion.blockers {
        eprintln!("zentinel convert: no valid configuration: {b}");
    }
    if let Some(d) = &conversion.diagnostics {
        eprint!("{}", report::render(d));
    }
    ExitCode::from(1)
}

fn usage(message: &str) -> ExitCode {
    eprintln!("zentinel convert: {message}");
    ExitCode::from(2)
}
