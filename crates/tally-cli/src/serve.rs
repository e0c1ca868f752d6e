//! `tally serve`: the embedded engine behind the HTTP API, until SIGTERM or Ctrl-C, which
//! stop new connections, let requests in flight finish, commit and answer everything queued,
//! write a snapshot and exit.

use anyhow::Context;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tally_engine::{Config, Engine};
use tally_server::App;

#[derive(clap::Args)]
pub struct Args {
    /// Where the journal and snapshots live.
    #[arg(long, default_value = "./tally-data", env = "TALLY_DATA_DIR")]
    pub data_dir: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:7420", env = "TALLY_LISTEN")]
    pub listen: SocketAddr,
    /// Require `Authorization: Bearer <token>` on every /v1 route.
    #[arg(long, env = "TALLY_API_TOKEN", hide_env_values = true)]
    pub api_token: Option<String>,
    /// Threads serving HTTP. The default leaves one core to the writer thread, which applies
    /// and commits every change: starving it costs more than any parsing gains.
    #[arg(long, env = "TALLY_HTTP_THREADS")]
    pub http_threads: Option<usize>,
    /// The store: only `embedded` in this build.
    #[arg(long, default_value = "embedded", value_parser = ["embedded"])]
    pub engine: String,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let http_threads = args.http_threads.unwrap_or(cores.saturating_sub(1)).max(1);
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(http_threads).enable_all().thread_name("tally-http").build()?;
    let (engine, recovery) = Engine::open(&args.data_dir, Config::default())?;
    tracing::info!(data_dir = %args.data_dir.display(), last_seq = recovery.last_seq, replayed_records = recovery.replayed_records, "ledger open");
    let engine = Arc::new(engine);
    let app = App {
        ledger: engine.clone(),
        engine_name: "embedded",
        metrics: tally_server::metrics_handle(),
        api_token: args.api_token.map(Into::into),
    };
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.listen).await.with_context(|| format!("cannot listen on {}", args.listen))?;
        tracing::info!("listening on http://{}", listener.local_addr()?);
        axum::serve(listener, tally_server::router(app)).with_graceful_shutdown(stop_signal()).await?;
        anyhow::Ok(())
    })?;
    tracing::info!("draining the write queue");
    engine.shutdown();
    tracing::info!("stopped cleanly");
    Ok(())
}

async fn stop_signal() {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler installs");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    tracing::info!("stop requested");
}
