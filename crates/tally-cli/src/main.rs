//! `tally`: the one binary. `serve` runs the ledger, `migrate` prepares a PostgreSQL schema,
//! `verify` checks a ledger (or a backup) offline, `backup` / `restore` keep copies and
//! bring them back, `export` / `import` move one between stores, `bench`
//! measures throughput over the real HTTP path, `check` runs the bank workload and its
//! checker, `openapi` prints the API document.

mod backup;
mod bench;
mod check;
mod dump;
mod keys;
mod remote;
mod serve;
mod verify;

use clap::{Parser, Subcommand};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "tally", version, about = "A ledger for money and limited resources that stays correct under concurrency")]
struct Cli {
    /// Logs on stderr: `text` for people (coloured only on a terminal), `json` for one JSON
    /// object per line, for a log pipeline.
    #[arg(long, global = true, default_value = "text", value_parser = ["text", "json"], env = "TALLY_LOG_FORMAT")]
    log_format: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP server on the embedded engine or on PostgreSQL.
    Serve(serve::Args),
    /// Create or upgrade the PostgreSQL schema (nodes also do this when they start).
    Migrate {
        #[arg(long, env = "TALLY_DATABASE_URL", hide_env_values = true)]
        database_url: String,
    },
    /// Check a ledger offline: replay it from the first record (checksums, every invariant,
    /// every balance) and, on PostgreSQL, compare every table with the replay.
    Verify {
        #[arg(long, default_value = "./tally-data", env = "TALLY_DATA_DIR")]
        data_dir: PathBuf,
        /// Verify the PostgreSQL ledger at this URL instead of a data directory.
        #[arg(long, env = "TALLY_DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,
        /// Verify the backup in this directory instead, in place: every file against the
        /// manifest's checksums, then the same replay as a data directory's.
        #[arg(long, value_name = "DIR", conflicts_with = "database_url")]
        backup: Option<PathBuf>,
    },
    /// Back a ledger up: through its running server, or from a stopped data directory.
    Backup(backup::Args),
    /// Rebuild a data directory from a backup, as the ledger was after any commit it holds.
    Restore(backup::RestoreArgs),
    /// Make, list and revoke API keys.
    Keys(keys::Args),
    /// Write a ledger (embedded or PostgreSQL) to stdout as a dump.
    Export(dump::Store),
    /// Load a dump from stdin into a new embedded ledger or an empty PostgreSQL one.
    Import(dump::Store),
    /// Measure durable transfers per second over HTTP.
    Bench(bench::Args),
    /// Run the bank workload against a server and check every invariant.
    Check(check::Args),
    /// Print the OpenAPI document.
    Openapi,
}

fn migrate(url: &str) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let applied = runtime.block_on(tally_pg::migrate(url))?;
    println!("schema at version {} ({applied} migrations applied)", tally_pg::schema::SCHEMA_VERSION);
    Ok(())
}

fn log(format: &str) {
    let logs = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr);
    if format == "json" {
        logs.json().init();
    } else {
        logs.with_ansi(std::io::stderr().is_terminal()).init();
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    log(&cli.log_format);
    let result = match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Verify { backup: Some(directory), .. } => verify::run_backup(&directory),
        Command::Verify { database_url: Some(url), .. } => verify::run_postgres(&url),
        Command::Verify { data_dir, .. } => verify::run(&data_dir),
        Command::Backup(args) => backup::run(args),
        Command::Restore(args) => backup::restore(args),
        Command::Keys(args) => keys::run(args),
        Command::Export(store) => dump::export(store),
        Command::Import(store) => dump::import(store),
        Command::Migrate { database_url } => migrate(&database_url),
        Command::Bench(args) => bench::run(args),
        Command::Check(args) => check::run(args),
        Command::Openapi => {
            println!("{}", serde_json::to_string_pretty(&tally_server::openapi()).expect("the document serializes"));
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
