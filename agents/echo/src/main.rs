//! `zentinel-agent-echo --socket PATH [--name NAME] [--encoding json|msgpack]`
//!
//! Serves the echo agent on a Unix socket (a stale socket file is replaced). Exits 0 on
//! SIGTERM or SIGINT, 1 when it cannot serve.

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;
use tracing_subscriber::EnvFilter;
use zentinel_agent_echo::EchoAgent;
use zentinel_agent_protocol::Encoding;
use zentinel_agent_protocol::sdk::ServeOptions;

/// A Zentinel agent that allows every request and adds headers, for demos and tests.
#[derive(Parser, Debug)]
#[command(name = "zentinel-agent-echo", version)]
struct Args {
    /// The Unix socket to listen on.
    #[arg(long, value_name = "PATH")]
    socket: PathBuf,
    /// The agent's name: announced in the handshake and sent as `x-echo-agent`.
    #[arg(long, default_value = "echo")]
    name: String,
    /// The only payload encoding to accept (`json` or `msgpack`); by default MessagePack is
    /// preferred when the proxy offers it.
    #[arg(long, value_parser = ["json", "msgpack"])]
    encoding: Option<String>,
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
            tracing::error!(error = format!("{e:#}"), "echo agent stopped");
            ExitCode::FAILURE
        }
    }
}

fn options(encoding: Option<&str>) -> ServeOptions {
    let mut options = ServeOptions::default();
    match encoding {
        Some("json") => options.encodings = vec![Encoding::Json],
        Some(_) => options.encodings = vec![Encoding::MsgPack],
        None => {}
    }
    options
}

async fn run(args: Args) -> anyhow::Result<()> {
    let listener = zentinel_agent_protocol::bind(&args.socket)
        .await
        .with_context(|| format!("cannot listen on {}", args.socket.display()))?;
    tracing::info!(socket = %args.socket.display(), name = %args.name, "echo agent serving");
    let options = options(args.encoding.as_deref());
    let serving = zentinel_agent_echo::run_with(listener, EchoAgent::new(args.name), options);
    zentinel_agent_protocol::until_shutdown(&args.socket, serving)
        .await
        .context("serving failed")
}
