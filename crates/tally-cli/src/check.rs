//! `tally check`: the bank workload and checker against a running server, optionally
//! killing and restarting it on a schedule. Exits non-zero on any violation.

use std::time::Duration;
use tally_check::bank::{check, CheckOptions};

#[derive(clap::Args)]
pub struct Args {
    /// The server, or several nodes of one ledger (comma-separated or repeated): clients are
    /// spread over them.
    #[arg(long, default_value = "http://127.0.0.1:7420", env = "TALLY_URL", value_delimiter = ',')]
    pub url: Vec<String>,
    #[arg(long, default_value_t = 8)]
    pub clients: usize,
    /// How long to run the workload, in seconds.
    #[arg(long, default_value_t = 30)]
    pub duration: u64,
    /// Stop after this many requests, if sooner.
    #[arg(long, default_value_t = u64::MAX)]
    pub ops: u64,
    /// Shell command that kills the server with SIGKILL.
    #[arg(long, requires = "restart_cmd")]
    pub crash_cmd: Option<String>,
    /// Shell command that starts the server again (in the background).
    #[arg(long, requires = "crash_cmd")]
    pub restart_cmd: Option<String>,
    /// Seconds between crashes.
    #[arg(long, default_value_t = 10)]
    pub crash_every: u64,
    /// Seconds between consistency checkpoints during the run.
    #[arg(long, default_value_t = 5)]
    pub checkpoint_every: u64,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let options = CheckOptions {
        nodes: args.url.iter().map(|url| crate::remote::client(url)).collect::<anyhow::Result<_>>()?,
        clients: args.clients.max(1),
        duration: Duration::from_secs(args.duration),
        ops: args.ops,
        crash_cmd: args.crash_cmd,
        restart_cmd: args.restart_cmd,
        crash_every: Duration::from_secs(args.crash_every.max(1)),
        checkpoint_every: Duration::from_secs(args.checkpoint_every.max(1)),
        seed: args.seed,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let report = runtime.block_on(check(options))?;
    println!(
        "tally check: {} requests in {:.1} s, {} journal entries",
        report.requests,
        report.elapsed.as_secs_f64(),
        report.journal_entries
    );
    for (result, count) in &report.events_by_result {
        println!("  {result:<28} {count}");
    }
    println!(
        "  unknown outcomes resolved: {}, concurrent duplicate requests: {}, crashes: {}, checkpoints: {}",
        report.unknown_outcomes, report.retries_in_flight, report.crashes, report.checkpoints
    );
    if report.violations.is_empty() {
        println!("ok: no violations");
        return Ok(());
    }
    for violation in report.violations.iter().take(20) {
        println!("VIOLATION {violation}");
    }
    anyhow::bail!("{} violations", report.violations.len())
}
