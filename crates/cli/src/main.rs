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

#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod logging;
mod report;

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
    after_help = "Examples:\n  zentinel validate zentinel.kdl          check a configuration (like `nginx -t`)\n  zentinel validate --format json a.kdl   the same, as JSON\n  zentinel run -c /etc/zentinel/zentinel.kdl\n  zentinel config defaults                every key with its default\n\nDocumentation: docs/config.md (every key), ARCHITECTURE.md"
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
    /// Human-readable, with the offending source lines.
    Text,
    /// One JSON document per file.
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Validate { files, format } => validate(&files, format),
        Command::Run { config } => run(config),
        Command::Config {
            command: ConfigCommand::Defaults,
        } => {
            print!("{}", zentinel_config::schema::defaults_table());
            ExitCode::SUCCESS
        }
        Command::Config {
            command: ConfigCommand::Docs,
        } => {
            print!("{}", zentinel_config::schema::markdown());
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
                Ok(c) => println!(
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
                println!("{v}");
            }
        }
    }
    if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn run(path: Option<PathBuf>) -> ExitCode {
    let default = PathBuf::from("zentinel.kdl");
    let file = path.or_else(|| default.exists().then_some(default));
    let (outcome, source, demo) = match &file {
        Some(p) => (
            zentinel_config::loader::load_file(p),
            p.display().to_string(),
            None,
        ),
        None => {
            let (text, upstream) = demo_config();
            let source = "the built-in demo configuration".to_owned();
            (
                zentinel_config::load_str("<built-in demo>", &text),
                source,
                Some(upstream),
            )
        }
    };
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
    logging::init(&config.observability);
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
