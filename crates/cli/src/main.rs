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

mod report;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use zentinel_config::Config;

/// The configuration `zentinel run` uses when no file is given and `./zentinel.kdl` does not
/// exist.
const DEMO_CONFIG: &str = include_str!("../../../examples/demo.kdl");

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
    /// does not exist.
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
    let (outcome, source): (Result<Config, _>, String) = match path {
        Some(p) => (
            zentinel_config::loader::load_file(&p),
            p.display().to_string(),
        ),
        None if default.exists() => (
            zentinel_config::loader::load_file(&default),
            default.display().to_string(),
        ),
        None => (
            zentinel_config::load_str("<built-in demo>", DEMO_CONFIG),
            "the built-in demo configuration".to_owned(),
        ),
    };
    match outcome {
        Err(d) => {
            eprint!("{}", report::render(&d));
            eprintln!(
                "zentinel: not starting: {source} is invalid ({})",
                report::count(&d)
            );
            ExitCode::from(1)
        }
        Ok(c) => {
            eprintln!("zentinel: loaded {source} ({})", report::summary(&c));
            eprintln!(
                "zentinel: not starting: this build contains the configuration layer only; \
                 the Pingora data plane is not part of it yet"
            );
            ExitCode::from(1)
        }
    }
}
