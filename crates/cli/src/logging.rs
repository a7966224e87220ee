//! The error log: `tracing` (and Pingora's `log` output) to stdout, stderr or a file, as JSON
//! or text, at the configured level. A file goes through the proxy's log-file writer, so it
//! is written off the request path and reopened on SIGUSR1 like the access and audit logs.

use std::io;
use std::sync::Arc;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use zentinel_config::model::{LogDestination, LogFormat, Observability};
use zentinel_proxy::log_file::{self, LogFile};

/// Installs the subscriber for the error log. `RUST_LOG` overrides the level when set.
/// Fails when the log file cannot be opened.
pub(crate) fn init(o: &Observability) -> Result<(), String> {
    let level = o.error_log_level.as_str();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let writer = match &o.error_log.destination {
        LogDestination::Stdout => BoxMakeWriter::new(io::stdout),
        LogDestination::File(path) => {
            let file = log_file::file(path)
                .map_err(|e| format!("error-log: cannot open {}: {e}", path.display()))?;
            BoxMakeWriter::new(Lines(file))
        }
        LogDestination::Off => return Ok(()),
        _ => BoxMakeWriter::new(io::stderr),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(writer);
    let result = match o.error_log.format {
        LogFormat::Json => builder.json().try_init(),
        _ => builder.with_ansi(false).try_init(),
    };
    if let Err(e) = result {
        eprintln!("zentinel: cannot set up the error log: {e}");
    }
    Ok(())
}

/// Hands each formatted event to a log file as one write.
struct Lines(Arc<LogFile>);

/// One event being formatted.
struct Line {
    file: Arc<LogFile>,
    buf: Vec<u8>,
}

impl<'a> MakeWriter<'a> for Lines {
    type Writer = Line;

    fn make_writer(&'a self) -> Line {
        Line {
            file: self.0.clone(),
            buf: Vec::new(),
        }
    }
}

impl io::Write for Line {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        if !self.buf.is_empty() {
            self.file.write_bytes(std::mem::take(&mut self.buf));
        }
    }
}
