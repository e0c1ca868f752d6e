//! `tally-sim`: runs the deterministic simulation. `--seed N` reruns one seed exactly;
//! `--seeds K` runs K seeds from `--seed` (or from a random start, printed) for soak testing.

use clap::Parser;
use std::process::ExitCode;
use std::time::Instant;
use tally_sim::{run, Options};

#[derive(Parser)]
#[command(about = "Deterministic simulation of the Tally engine with fault injection")]
struct Args {
    /// The first (or only) seed. Default: a random one, printed.
    #[arg(long)]
    seed: Option<u64>,
    /// How many consecutive seeds to run.
    #[arg(long, default_value_t = 1)]
    seeds: u64,
    /// Steps per seed.
    #[arg(long, default_value_t = Options::default().steps)]
    steps: usize,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let first =
        args.seed.unwrap_or_else(|| std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64));
    println!("seeds {first}..{}", first.wrapping_add(args.seeds));
    let started = Instant::now();
    let (mut batches, mut crashes, mut flips, mut sync_failures, mut disk_full) = (0, 0, 0, 0, 0);
    for seed in (0..args.seeds).map(|n| first.wrapping_add(n)) {
        match run(seed, Options { steps: args.steps, ..Options::default() }) {
            Ok(report) => {
                batches += report.acknowledged_batches;
                crashes += report.crashes;
                flips += report.faults.bit_flips;
                sync_failures += report.faults.sync_failures;
                disk_full += report.faults.disk_full;
                if args.seeds == 1 {
                    println!("{report:#?}");
                }
            }
            Err(violation) => {
                eprintln!("VIOLATION {violation}");
                return ExitCode::FAILURE;
            }
        }
    }
    println!(
        "ok: {} seeds, {batches} acknowledged batches, {crashes} crashes, {flips} bit flips, {sync_failures} failed fsyncs, {disk_full} full disks in {:.1} s",
        args.seeds,
        started.elapsed().as_secs_f64()
    );
    ExitCode::SUCCESS
}
