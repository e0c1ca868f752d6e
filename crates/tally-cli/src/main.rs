//! `tally`: the one binary. `serve` runs the ledger, `verify` checks a data directory offline,
//! `bench` measures throughput over the real HTTP path, `check` runs the bank workload and
//! its checker, `openapi` prints the API document.

mod bench;
mod check;
mod serve;
mod verify;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "tally", version, about = "A ledger for money and limited resources that stays correct under concurrency")]
struct Cli {
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
    /// Replay a data directory offline: checksums, every invariant, every balance.
    Verify {
        #[arg(long, default_value = "./tally-data", env = "TALLY_DATA_DIR")]
        data_dir: PathBuf,
    },
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

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let result = match Cli::parse().command {
        Command::Serve(args) => serve::run(args),
        Command::Verify { data_dir } => verify::run(&data_dir),
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
