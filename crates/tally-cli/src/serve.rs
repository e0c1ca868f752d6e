//! `tally serve`: a store (the embedded engine, or PostgreSQL) behind the HTTP API, until
//! SIGTERM or Ctrl-C, which stop new connections, let requests in flight finish, commit and
//! answer everything queued, write a snapshot (embedded) and exit.

use anyhow::Context;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tally_engine::{Config, Engine};
use tally_ledger::Ledger;
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
    /// The store: `embedded` (the journal in --data-dir) or `postgres` (--database-url).
    #[arg(long, default_value = "embedded", value_parser = ["embedded", "postgres"], env = "TALLY_ENGINE")]
    pub engine: String,
    #[command(flatten)]
    pub postgres: PostgresArgs,
}

/// Where and how to reach PostgreSQL.
#[derive(clap::Args, Clone)]
pub struct PostgresArgs {
    /// A `postgres://` URL or `key=value` connection string (with --engine postgres).
    #[arg(long, env = "TALLY_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// How concurrent batches from several nodes are kept apart.
    #[arg(long, default_value = "locking", value_parser = ["locking", "optimistic", "serializable"], env = "TALLY_PG_CONCURRENCY")]
    pub pg_concurrency: String,
}

impl PostgresArgs {
    pub fn config(&self) -> anyhow::Result<tally_pg::Config> {
        let url = self.database_url.clone().context("--database-url (or TALLY_DATABASE_URL) is required with --engine postgres")?;
        let mut config = tally_pg::Config::new(url);
        config.concurrency = self.pg_concurrency.parse().map_err(anyhow::Error::msg)?;
        Ok(config)
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let http_threads = args.http_threads.unwrap_or(cores.saturating_sub(1)).max(1);
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(http_threads).enable_all().thread_name("tally-http").build()?;
    let api_token: Option<Arc<str>> = args.api_token.map(Into::into);
    if args.engine == "postgres" {
        let config = args.postgres.config()?;
        return runtime.block_on(async {
            let concurrency = config.concurrency;
            let ledger = Arc::new(tally_pg::PgLedger::start(config).await.context("cannot start on PostgreSQL")?);
            tracing::info!(%concurrency, last_seq = ledger.status().last_seq, "ledger open on PostgreSQL");
            let app = App { api_token, ..App::new(ledger.clone(), "postgres") };
            serve(args.listen, app).await?;
            tracing::info!("draining the write queue");
            ledger.shutdown().await;
            tracing::info!("stopped cleanly");
            Ok(())
        });
    }
    let (engine, recovery) = Engine::open(&args.data_dir, Config::default())?;
    tracing::info!(data_dir = %args.data_dir.display(), last_seq = recovery.last_seq, replayed_records = recovery.replayed_records, "ledger open");
    let engine = Arc::new(engine);
    let app = App { api_token, ..App::new(engine.clone(), "embedded") };
    runtime.block_on(serve(args.listen, app))?;
    tracing::info!("draining the write queue");
    engine.shutdown();
    tracing::info!("stopped cleanly");
    Ok(())
}

async fn serve(listen: SocketAddr, app: App) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
    tracing::info!("listening on http://{}", listener.local_addr()?);
    tally_server::listen::serve(listener, app, tally_server::listen::connections_max(), stop_signal()).await?;
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
