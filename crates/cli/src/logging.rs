//! The error log: `tracing` (and Pingora's `log` output) to stdout or stderr, as JSON or
//! text, at the configured level.

use tracing_subscriber::EnvFilter;
use zentinel_config::model::{LogDestination, LogFormat, Observability};

/// Installs the subscriber for the error log. `RUST_LOG` overrides the level when set.
pub(crate) fn init(o: &Observability) {
    let level = o.error_log_level.as_str();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    let result = match (&o.error_log.destination, o.error_log.format) {
        (LogDestination::Off, _) => return,
        (LogDestination::Stdout, LogFormat::Json) => {
            builder.json().with_writer(std::io::stdout).try_init()
        }
        (LogDestination::Stdout, _) => builder
            .with_ansi(false)
            .with_writer(std::io::stdout)
            .try_init(),
        (_, LogFormat::Json) => builder.json().with_writer(std::io::stderr).try_init(),
        (_, _) => builder
            .with_ansi(false)
            .with_writer(std::io::stderr)
            .try_init(),
    };
    if let Err(e) = result {
        eprintln!("zentinel: cannot set up the error log: {e}");
    }
}
