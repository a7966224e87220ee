//! `zentinel-agent-chaos --socket PATH --mode MODE [--delay-ms N] [--calls N] [--per-request]`
//!
//! Serves the chaos agent on a Unix socket (a stale socket file is replaced). Exits 0 on
//! SIGTERM or SIGINT, 1 when it cannot serve or when `crash-after` spends its budget.

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use tracing_subscriber::EnvFilter;
use zentinel_agent_chaos::{Mode, Script};

/// A Zentinel agent that misbehaves on purpose, for testing the proxy.
#[derive(Parser, Debug)]
#[command(name = "zentinel-agent-chaos", version)]
struct Args {
    /// The Unix socket to listen on.
    #[arg(long, value_name = "PATH")]
    socket: PathBuf,
    /// allow, block, delay, hang, crash-after, garbage, oversize, unknown-type,
    /// wrong-correlation or slow-handshake.
    #[arg(long, default_value = "allow")]
    mode: Mode,
    /// The wait of `delay` and `slow-handshake`, in milliseconds.
    #[arg(long, value_name = "N", default_value_t = 0)]
    delay_ms: u64,
    /// How many calls `crash-after` answers before the process exits with status 1.
    #[arg(long, value_name = "N", default_value_t = 0)]
    calls: u64,
    /// Let each request's `x-chaos-mode` header choose the mode of its call.
    #[arg(long)]
    per_request: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
    match run(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "chaos agent stopped");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let listener = zentinel_agent_protocol::bind(&args.socket)
        .await
        .with_context(|| format!("cannot listen on {}", args.socket.display()))?;
    let script = Script::new(args.mode)
        .with_delay(Duration::from_millis(args.delay_ms))
        .with_calls(args.calls)
        .with_per_request(args.per_request);
    // A crash-after script ends `run` with an error: the process exits with status 1.
    zentinel_agent_protocol::until_shutdown(
        &args.socket,
        zentinel_agent_chaos::run(listener, script),
    )
    .await
    .map_err(anyhow::Error::from)
}
