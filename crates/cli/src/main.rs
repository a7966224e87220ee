//! `zentinel`: the command line of the Zentinel reverse proxy.
//!
//! A thin binary: it parses arguments, loads configuration through `zentinel-config`, prints
//! diagnostics and maps outcomes to exit codes (0 success, 1 invalid configuration or failure
//! to start, 2 usage error).

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a command-line tool prints"
)]

/// `print!` to stdout that ends the process quietly, with the shell's status for SIGPIPE
/// (141), when the reader went away — `zentinel validate … | head` must not panic.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if write!(std::io::stdout().lock(), $($arg)*).is_err() {
            std::process::exit(141);
        }
    }};
}

/// [`out!`] with a newline.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if writeln!(std::io::stdout().lock(), $($arg)*).is_err() {
            std::process::exit(141);
        }
    }};
}

#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod convert;
mod explain;
mod logging;
mod report;

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use zentinel_config::Config;

/// The configuration `zentinel run` uses when no file is given and `./zentinel.kdl` does not
/// exist.
const DEMO_CONFIG: &str = include_str!("../../../examples/demo.kdl");

/// The demo configuration's listener and upstream addresses; `zentinel run` serves the
/// upstream itself. `ZENTINEL_DEMO_LISTEN` / `ZENTINEL_DEMO_UPSTREAM` move them when those
/// ports are taken.
const DEMO_LISTEN: &str = "127.0.0.1:8080";
const DEMO_UPSTREAM: &str = "127.0.0.1:18080";

/// The built-in demo configuration with its addresses, and the upstream address to serve.
fn demo_config() -> (String, String) {
    let listen = std::env::var("ZENTINEL_DEMO_LISTEN").unwrap_or_else(|_| DEMO_LISTEN.to_owned());
    let upstream =
        std::env::var("ZENTINEL_DEMO_UPSTREAM").unwrap_or_else(|_| DEMO_UPSTREAM.to_owned());
    let text = DEMO_CONFIG
        .replace(DEMO_LISTEN, &listen)
        .replace(DEMO_UPSTREAM, &upstream);
    (text, upstream)
}

#[derive(Parser, Debug)]
#[command(
    name = "zentinel",
    version,
    about = "Zentinel: a security-first reverse proxy whose behaviour you can read from its configuration",
    long_about = None,
    after_help = "Examples:\n  zentinel validate zentinel.kdl          check a configuration (like `nginx -t`)\n  zentinel validate --format json a.kdl   the same, as JSON\n  zentinel run -c /etc/zentinel/zentinel.kdl\n  zentinel explain -c zentinel.kdl GET https://api.example.com/v1/users -H 'x-api-key: abc'\n  zentinel config defaults                every key with its default\n\nDocumentation: docs/config.md (every key), ARCHITECTURE.md"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Check configuration files and print every problem, exactly as startup would.
    ///
    /// Exit status: 0 when every file is valid, 1 when one is not, 2 on usage errors.
    Validate {
        /// Main configuration files (each is checked with the files it includes).
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Start the proxy.
    ///
    /// Without `-c`, uses ./zentinel.kdl, or the built-in demo configuration when that file
    /// does not exist: a listener on 127.0.0.1:8080 in front of a built-in upstream on
    /// 127.0.0.1:18080 (move them with ZENTINEL_DEMO_LISTEN / ZENTINEL_DEMO_UPSTREAM).
    ///
    /// SIGTERM, SIGINT and SIGQUIT stop accepting new requests, let in-flight ones finish (up to
    /// `graceful-shutdown-timeout-secs`), then exit 0.
    Run {
        /// Main configuration file.
        #[arg(short, long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Show what the proxy does with one request, read from the configuration.
    ///
    /// The listener, the route and why (and the routes it shadows or nearly matched), the
    /// upstream, every agent with its effective failure mode, header policies, timeouts,
    /// retries and limits — computed by the proxy's own matcher and defaults. Sends nothing.
    ///
    /// Without `-c`, reads ./zentinel.kdl, or the built-in demo when that file does not exist
    /// (as `run` does). Exit status: 0 when explained (whatever the proxy would answer), 1 when
    /// the configuration is invalid, 2 on a bad URL, header or listener.
    Explain {
        /// Main configuration file.
        #[arg(short, long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// The listener the request arrives on; by default the first whose protocol fits
        /// the URL's scheme, preferring one on the URL's port.
        #[arg(long, value_name = "ID")]
        listener: Option<String>,
        /// A request header, as curl takes it (repeatable).
        #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
        headers: Vec<String>,
        /// The address the connection comes from (trusted proxies, client-ip hashing).
        #[arg(long, value_name = "IP")]
        client_ip: Option<IpAddr>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Request method, e.g. GET (case-sensitive, as sent).
        method: String,
        /// Request URL: http:// or https://, host, optional port, path and query.
        url: String,
    },
    /// Convert an nginx, HAProxy or Traefik configuration to Zentinel's.
    ///
    /// The KDL goes to stdout (or --output), and a report of every source directive —
    /// mapped, mapped with a caveat, or not mapped, with the reason — to stderr. Exit status:
    /// 0 when the result validates, 1 when no valid configuration could be made (the report
    /// says why), 2 on usage or file errors.
    Convert {
        /// The source: nginx, haproxy, traefik (YAML or TOML by file name), traefik-yaml,
        /// traefik-toml.
        #[arg(long, value_name = "KIND")]
        from: String,
        /// Listener address for sources that do not give one (Traefik entry points).
        #[arg(long, value_name = "IP:PORT")]
        listen: Option<std::net::SocketAddr>,
        /// A Traefik entry point's address (repeatable).
        #[arg(long = "entry-point", value_name = "NAME=IP:PORT")]
        entry_points: Vec<String>,
        /// Write the KDL here instead of stdout.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Report format (json prints the KDL and the report as one document).
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// The file to convert.
        file: PathBuf,
    },
    /// Inspect the configuration language.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(Subcommand, Debug)]
enum ConfigCommand {
    /// Print every key with its default and meaning.
    Defaults,
    /// Print the full configuration reference (Markdown, as in docs/config.md).
    Docs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Format {
    /// Human-readable (validate: with the offending source lines).
    Text,
    /// JSON for machines (validate: one document per file).
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Validate { files, format } => validate(&files, format),
        Command::Run { config } => run(config),
        Command::Explain {
            config,
            listener,
            headers,
            client_ip,
            format,
            method,
            url,
        } => {
            let request = ExplainRequest {
                listener,
                headers,
                client_ip,
                method,
                url,
            };
            explain(config, &request, format)
        }
        Command::Convert {
            from,
            listen,
            entry_points,
            output,
            format,
            file,
        } => convert::run(&convert::ConvertRequest {
            from: &from,
            file: &file,
            listen,
            entry_points: &entry_points,
            output: output.as_deref(),
            format,
        }),
        Command::Config {
            command: ConfigCommand::Defaults,
        } => {
            out!("{}", zentinel_config::schema::defaults_table());
            ExitCode::SUCCESS
        }
        Command::Config {
            command: ConfigCommand::Docs,
        } => {
            out!("{}", zentinel_config::schema::markdown());
            ExitCode::SUCCESS
        }
    }
}

fn validate(files: &[PathBuf], format: Format) -> ExitCode {
    let mut all_ok = true;
    for file in files {
        let outcome = zentinel_config::loader::load_file(file);
        all_ok &= outcome.is_ok();
        match format {
            Format::Text => match &outcome {
                Ok(c) => outln!(
                    "{}: configuration OK ({})",
                    file.display(),
                    report::summary(c)
                ),
                Err(d) => {
                    eprint!("{}", report::render(d));
                    eprintln!(
                        "{}: configuration invalid ({})",
                        file.display(),
                        report::count(d)
                    );
                }
            },
            Format::Json => {
                let mut v = match &outcome {
                    Ok(c) => serde_json::json!({ "ok": true, "config": c.to_json() }),
                    Err(d) => d.to_json(),
                };
                v["file"] = serde_json::Value::String(file.display().to_string());
                outln!("{v}");
            }
        }
    }
    if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// The configuration `run` and `explain` use: `path`, else ./zentinel.kdl, else the
/// built-in demo (then with the upstream address to serve).
struct Chosen {
    file: Option<PathBuf>,
    outcome: Result<Config, zentinel_config::Diagnostics>,
    source: String,
    demo: Option<String>,
}

fn choose_config(path: Option<PathBuf>) -> Chosen {
    let default = PathBuf::from("zentinel.kdl");
    let file = path.or_else(|| default.exists().then_some(default));
    match &file {
        Some(p) => Chosen {
            outcome: zentinel_config::loader::load_file(p),
            source: p.display().to_string(),
            demo: None,
            file,
        },
        None => {
            let (text, upstream) = demo_config();
            Chosen {
                outcome: zentinel_config::load_str("<built-in demo>", &text),
                source: "the built-in demo configuration".to_owned(),
                demo: Some(upstream),
                file: None,
            }
        }
    }
}

/// The request arguments of `explain`.
struct ExplainRequest {
    listener: Option<String>,
    headers: Vec<String>,
    client_ip: Option<IpAddr>,
    method: String,
    url: String,
}

fn explain(path: Option<PathBuf>, args: &ExplainRequest, format: Format) -> ExitCode {
    let usage = |message: &dyn std::fmt::Display| {
        eprintln!("zentinel explain: {message}");
        ExitCode::from(2)
    };
    // The request first: a typo in the URL is reported without reading any file.
    let mut request =
        match zentinel_config::explain::RequestDescription::from_url(&args.method, &args.url) {
            Ok(r) => r,
            Err(e) => return usage(&e),
        };
    for line in &args.headers {
        if let Err(e) = request.header_line(line) {
            return usage(&e);
        }
    }
    request.client_ip = args.client_ip;
    let Chosen {
        outcome, source, ..
    } = choose_config(path);
    let config = match outcome {
        Ok(c) => c,
        Err(d) => {
            eprint!("{}", report::render(&d));
            eprintln!("{source}: configuration invalid ({})", report::count(&d));
            return ExitCode::from(1);
        }
    };
    let explanation =
        match zentinel_config::explain::explain(&config, args.listener.as_deref(), &request) {
            Ok(e) => e,
            Err(e) => return usage(&e),
        };
    let out = match format {
        Format::Text => {
            let mut text = explain::render(&explanation, &args.url, &source);
            let gaps = zentinel_proxy::unsupported::unsupported(&config);
            if !gaps.is_empty() {
                text.push_str(
                    "\nNote: this build refuses to start with this configuration; it uses\n",
                );
                for g in gaps {
                    text.push_str(&format!("  - {g}\n"));
                }
            }
            text
        }
        Format::Json => match serde_json::to_string_pretty(&explanation) {
            Ok(json) => json + "\n",
            Err(e) => {
                eprintln!("zentinel explain: {e}");
                return ExitCode::from(1);
            }
        },
    };
    // `zentinel explain … | head` closes the pipe early: that is not an error.
    let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), out.as_bytes());
    ExitCode::SUCCESS
}

fn run(path: Option<PathBuf>) -> ExitCode {
    let Chosen {
        file,
        outcome,
        source,
        demo,
    } = choose_config(path);
    let config: Config = match outcome {
        Ok(c) => c,
        Err(d) => {
            eprint!("{}", report::render(&d));
            eprintln!(
                "zentinel: not starting: {source} is invalid ({})",
                report::count(&d)
            );
            return ExitCode::from(1);
        }
    };
    if let Err(e) = logging::init(&config.observability) {
        eprintln!("zentinel: not starting: {e}");
        return ExitCode::from(1);
    }
    eprintln!("zentinel: loaded {source} ({})", report::summary(&config));
    let mut opts = zentinel_proxy::ServeOptions::default();
    if let Some(p) = file {
        // SIGHUP reads the same files again; problems print as `zentinel validate` does.
        opts.reload = Some(zentinel_proxy::Reloader::new(move || {
            zentinel_config::loader::load_file(&p).map_err(|d| report::render(&d))
        }));
    }
    if let Some(upstream) = demo {
        match upstream.parse() {
            Ok(addr) => opts.demo_upstream = Some(addr),
            Err(_) => {
                eprintln!(
                    "zentinel: not starting: ZENTINEL_DEMO_UPSTREAM={upstream} is not an ip:port address"
                );
                return ExitCode::from(1);
            }
        }
        for l in &config.listeners {
            eprintln!("zentinel: demo: try `curl -i http://{}/`", l.address);
        }
        eprintln!(
            "zentinel: run your own configuration with `zentinel run -c FILE` (see examples/)"
        );
    }
    match zentinel_proxy::serve(config, opts) {
        Ok(()) => {
            eprintln!("zentinel: stopped");
            ExitCode::SUCCESS
        }
        Err(zentinel_proxy::ServeError::Unsupported(gaps)) => {
            eprintln!(
                "zentinel: not starting: {source} uses settings this build cannot carry out yet:"
            );
            for g in gaps {
                eprintln!("  - {g}");
            }
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("zentinel: not starting: {e}");
            ExitCode::from(1)
        }
    }
}
