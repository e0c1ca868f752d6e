//! `tally serve`: a store (the embedded engine, or PostgreSQL) behind the HTTP API, until
//! SIGTERM or Ctrl-C, which stop new connections, let requests in flight finish, commit and
//! answer everything queued, write a snapshot (embedded) and exit. Without API keys it serves
//! a loopback address only, unless told `--insecure-no-auth`.

use anyhow::{bail, Context};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tally_engine::keys::FileKeys;
use tally_engine::{Config, Engine};
use tally_ledger::keys::KeyStore;
use tally_ledger::Ledger;
use tally_server::auth::Keyring;
use tally_server::backups::Backups;
use tally_server::listen::Listening;
use tally_server::tls::Tls;
use tally_server::App;

#[derive(clap::Args)]
pub struct Args {
    /// Where the journal and snapshots live.
    #[arg(long, default_value = "./tally-data", env = "TALLY_DATA_DIR")]
    pub data_dir: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:7420", env = "TALLY_LISTEN")]
    pub listen: SocketAddr,
    /// Serve without API keys on an address other than loopback (anyone who can reach it
    /// can move money). Without keys and without this, only a loopback address is served.
    #[arg(long, env = "TALLY_INSECURE_NO_AUTH")]
    pub insecure_no_auth: bool,
    /// Requests per second one API key may make (a burst of as many); 0 for no limit.
    #[arg(long, default_value_t = 10_000, env = "TALLY_KEY_RATE_LIMIT")]
    pub key_rate_limit: u32,
    /// Serve HTTPS with this certificate chain (PEM), read again on SIGHUP.
    #[arg(long, env = "TALLY_TLS_CERT", requires = "tls_key", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert, read again on SIGHUP.
    #[arg(long, env = "TALLY_TLS_KEY", requires = "tls_cert", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// Serve `/healthz` and `/metrics` here, without a key, instead of on --listen.
    #[arg(long, env = "TALLY_OPERATIONS_LISTEN")]
    pub operations_listen: Option<SocketAddr>,
    /// Threads serving HTTP. The default leaves one core to the writer thread, which applies
    /// and commits every change: starving it costs more than any parsing gains.
    #[arg(long, env = "TALLY_HTTP_THREADS")]
    pub http_threads: Option<usize>,
    /// Let admin keys back the ledger up into directories under this one (`POST
    /// /v1/backups`, `tally backup --url`). Embedded engine only.
    #[arg(long, env = "TALLY_BACKUP_ROOT", value_name = "DIR")]
    pub backup_root: Option<PathBuf>,
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
    /// How concurrent batches from several nodes are kept apart. `locking` (the default)
    /// waits and never throws work away; `optimistic` and `serializable` read without locks and
    /// retry on a conflict, and after two conflicts a batch takes the ledger's turn before
    /// reading, which cannot conflict. Use one strategy on every node: a `locking` node beside
    /// the others can deadlock with them (PostgreSQL resolves it after `deadlock_timeout`).
    #[arg(long, default_value = "locking", value_parser = ["locking", "optimistic", "serializable"], env = "TALLY_PG_CONCURRENCY")]
    pub pg_concurrency: String,
    /// The database is reached through a connection pooler in transaction mode (PgBouncer's
    /// `pool_mode = transaction`): prepare statements inside each transaction and keep none
    /// on a connection between them. Not needed in session mode or without a pooler.
    #[arg(long, env = "TALLY_PG_TRANSACTION_POOLER")]
    pub pg_transaction_pooler: bool,
}

impl PostgresArgs {
    pub fn config(&self) -> anyhow::Result<tally_pg::Config> {
        let url = self.database_url.clone().context("--database-url (or TALLY_DATABASE_URL) is required with --engine postgres")?;
        let mut config = tally_pg::Config::new(url);
        config.concurrency = self.pg_concurrency.parse().map_err(anyhow::Error::msg)?;
        config.transaction_pooler = self.pg_transaction_pooler;
        Ok(config)
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let http_threads = args.http_threads.unwrap_or(cores.saturating_sub(1)).max(1);
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(http_threads).enable_all().thread_name("tally-http").build()?;
    if args.engine == "postgres" {
        if args.backup_root.is_some() {
            bail!("--backup-root is for the embedded engine: a PostgreSQL ledger is backed up with PostgreSQL's own tools (docs/operations.md)");
        }
        let config = args.postgres.config()?;
        return runtime.block_on(async {
            let concurrency = config.concurrency;
            let ledger = Arc::new(tally_pg::PgLedger::start(config).await.context("cannot start on PostgreSQL")?);
            tracing::info!(%concurrency, last_seq = ledger.status().last_seq, "ledger open on PostgreSQL");
            let url = args.postgres.database_url.as_deref().expect("checked by config()");
            let keys: Arc<dyn KeyStore> = Arc::new(tally_pg::keys::PgKeys::connect(url).await?);
            serve(&args, App::new(ledger.clone(), "postgres"), keys).await?;
            tracing::info!("draining the write queue");
            ledger.shutdown().await;
            tracing::info!("stopped cleanly");
            Ok(())
        });
    }
    let (engine, recovery) = Engine::open(&args.data_dir, Config::default())?;
    tracing::info!(data_dir = %args.data_dir.display(), last_seq = recovery.last_seq, replayed_records = recovery.replayed_records, "ledger open");
    let engine = Arc::new(engine);
    let keys: Arc<dyn KeyStore> = Arc::new(FileKeys::open(&args.data_dir)?);
    let backups = Arc::new(Backups::new(backup_root(&args)?, Some(args.data_dir.canonicalize()?)));
    runtime.block_on(serve(&args, App { backups, ..App::new(engine.clone(), "embedded") }, keys))?;
    tracing::info!("draining the write queue");
    engine.shutdown();
    tracing::info!("stopped cleanly");
    Ok(())
}

/// The backup root, made if needed; never the data directory or inside it (a backup there
/// would be lost with it).
fn backup_root(args: &Args) -> anyhow::Result<Option<PathBuf>> {
    let Some(root) = &args.backup_root else { return Ok(None) };
    std::fs::create_dir_all(root).with_context(|| format!("cannot make the backup root {}", root.display()))?;
    let (root, data) = (root.canonicalize()?, args.data_dir.canonicalize()?);
    if root.starts_with(&data) {
        bail!("the backup root {} is inside the data directory {}: a backup must survive losing it", root.display(), data.display());
    }
    Ok(Some(root))
}

async fn serve(args: &Args, app: App, keys: Arc<dyn KeyStore>) -> anyhow::Result<()> {
    let keyring = Keyring::load(keys, args.key_rate_limit).await.context("cannot read the API keys")?;
    if !keyring.required() && !args.listen.ip().is_loopback() {
        if !args.insecure_no_auth {
            bail!(
                "refusing to listen on {} without API keys: anyone who can reach it could move money. Make an admin key first \
                 (`tally keys create --scope admin`, with this --data-dir or --database-url), listen on a loopback address, \
                 or pass --insecure-no-auth",
                args.listen
            );
        }
        tracing::warn!(listen = %args.listen, "serving WITHOUT API keys on a non-loopback address (--insecure-no-auth): anyone who can reach it can move money");
    }
    keyring.keep_fresh();
    let app = App { keys: Some(keyring), operations_elsewhere: args.operations_listen.is_some(), node: args.listen.to_string(), ..app };
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => {
            let tls = Tls::load(cert, key).context("cannot load the TLS certificate")?;
            reload_on_hangup(tls.clone())?;
            Some(tls)
        }
        _ => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let listening = Listening::new(tally_server::listen::connections_max(), tls);
    // The handlers are installed before the first connection is taken: a stop signal that
    // comes right after must not find the default action (ending the process on the spot).
    let stop_signals = StopSignals::install()?;
    let listener = tokio::net::TcpListener::bind(args.listen).await.with_context(|| format!("cannot listen on {}", args.listen))?;
    tracing::info!("listening on {scheme}://{}", listener.local_addr()?);
    let (stopping, stopped) = tokio::sync::watch::channel(false);
    let stop = |mut stopped: tokio::sync::watch::Receiver<bool>| async move {
        let _ = stopped.wait_for(|stopped| *stopped).await;
    };
    let operations = match args.operations_listen {
        Some(address) => {
            let listener = tokio::net::TcpListener::bind(address).await.with_context(|| format!("cannot listen on {address}"))?;
            tracing::info!("health and metrics on {scheme}://{}", listener.local_addr()?);
            let service = tally_server::operations_service(app.clone());
            Some(tokio::spawn(tally_server::listen::serve_service(listener, service, listening.clone(), stop(stopped.clone()))))
        }
        None => None,
    };
    let main = tally_server::listen::serve(listener, app, listening, async move {
        stop_signals.wait().await;
        let _ = stopping.send(true);
    });
    main.await?;
    if let Some(operations) = operations {
        operations.await??;
    }
    Ok(())
}

/// Reads the certificate and key again on every SIGHUP: new connections get the new ones.
fn reload_on_hangup(tls: Arc<Tls>) -> anyhow::Result<()> {
    let mut hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).context("SIGHUP handler")?;
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            match tls.reload() {
                Ok(()) => tracing::info!("TLS certificate reloaded"),
                Err(error) => tracing::error!(%error, "could not reload the TLS certificate; the previous one is still served"),
            }
        }
    });
    Ok(())
}

/// SIGTERM and SIGINT (Ctrl-C), handled from the moment they are installed.
struct StopSignals {
    terminate: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn install() -> anyhow::Result<StopSignals> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(StopSignals {
            terminate: signal(SignalKind::terminate()).context("SIGTERM handler")?,
            interrupt: signal(SignalKind::interrupt()).context("SIGINT handler")?,
        })
    }

    async fn wait(mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
        tracing::info!("stop requested");
    }
}
