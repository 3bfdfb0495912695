//! `mock-upstream` binary: serves the mock until SIGTERM or Ctrl-C.

use std::net::SocketAddr;

use anyhow::Context;
use clap::Parser;
use mock_upstream::{Defaults, MockServer};

#[derive(Parser, Debug)]
#[command(
    name = "mock-upstream",
    about = "Scriptable fake OpenAI-compatible LLM provider"
)]
struct Args {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:8081")]
    listen: SocketAddr,
    /// Default delay before response headers, in milliseconds.
    #[arg(long, default_value_t = 0)]
    ttfb_ms: u64,
    /// Default delay between SSE events, in milliseconds.
    #[arg(long, default_value_t = 0)]
    chunk_delay_ms: u64,
    /// Default number of content pieces in a streamed reply.
    #[arg(long, default_value_t = 4)]
    chunks: usize,
    /// Require `Authorization: Bearer <KEY>` on API endpoints.
    #[arg(long)]
    api_key: Option<String>,
    /// Comma-separated model ids listed by /v1/models.
    #[arg(long, value_delimiter = ',')]
    models: Option<Vec<String>>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let defaults = Defaults {
        ttfb_ms: args.ttfb_ms,
        chunk_delay_ms: args.chunk_delay_ms,
        chunks: args.chunks,
        api_key: args.api_key,
        models: args.models.unwrap_or_else(|| Defaults::default().models),
        ..Defaults::default()
    };
    let server = MockServer::bind(args.listen, defaults)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    // Tests wait for this exact line; stdout is line-buffered so it is
    // flushed at the newline.
    println!("mock-upstream listening on {}", server.base_url());
    wait_for_signal().await?;
    server.shutdown().await.context("shutting down")
}

async fn wait_for_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
        tokio::select! {
            res = tokio::signal::ctrl_c() => res.context("waiting for Ctrl-C")?,
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    Ok(())
}
