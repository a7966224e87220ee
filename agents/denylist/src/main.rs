//! `zentinel-agent-denylist --socket PATH`
//!
//! Serves the denylist agent on a Unix socket (a stale socket file is replaced). Its rules
//! come from the proxy: the agent's `config {}` block, in the handshake and in `Configure`. Exits 0 on
//! SIGTERM or SIGINT, 1 when it cannot serve.

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;
use tracing_subscriber::EnvFilter;
use zentinel_agent_denylist::DenylistAgent;

/// A Zentinel agent that blocks requests by client address, path and header rules.
#[derive(Parser, Debug)]
#[command(name = "zentinel-agent-denylist", version)]
struct Args {
    /// The Unix socket to listen on.
    #[arg(long, value_name = "PATH")]
    socket: PathBuf,
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
            tracing::error!(error = format!("{e:#}"), "denylist agent stopped");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let listener = zentinel_agent_protocol::bind(&args.socket)
        .await
        .with_context(|| format!("cannot listen on {}", args.socket.display()))?;
    tracing::info!(socket = %args.socket.display(), "denylist agent serving");
    zentinel_agent_protocol::until_shutdown(
        &args.socket,
        zentinel_agent_denylist::run(listener, DenylistAgent::default()),
    )
    .await
    .context("serving failed")
}
