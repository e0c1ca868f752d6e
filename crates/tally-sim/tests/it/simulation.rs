//! The simulation as part of the test suite: a fixed set of seeds that always run, a few
//! fresh random seeds per run (printed, so a failure can be rerun), and `TALLY_SIM_SEED` to
//! rerun one exactly.

use tally_sim::{run, Faults, Options};

fn must_pass(seed: u64, options: Options) -> tally_sim::Report {
    match run(seed, options) {
        Ok(report) => report,
        Err(violation) => panic!("{violation}"),
    }
}

#[test]
fn fixed_seeds_keep_every_acknowledged_batch_through_faults_and_crashes() {
    let mut crashes = 0;
    let mut failed = 0;
    let mut survived = 0;
    for seed in 1..=64 {
        let report = must_pass(seed, Options::default());
        crashes += report.crashes;
        failed += report.failed_batches;
        survived += report.failed_batches_that_survived;
    }
    // The faults really happened: otherwise this test would prove nothing.
    assert!(crashes > 1_000 && failed > 50, "crashes {crashes}, failed batches {failed}");
    println!("64 seeds: {crashes} crashes, {failed} failed commits, {survived} of them found on disk after the crash");
}

#[test]
fn random_seeds_or_the_one_asked_for() {
    let seeds: Vec<u64> = match std::env::var("TALLY_SIM_SEED") {
        Ok(seed) => vec![seed.parse().expect("TALLY_SIM_SEED is a number")],
        Err(_) => {
            let base = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
            (0..8).map(|n| base.wrapping_mul(6364136223846793005).wrapping_add(n)).collect()
        }
    };
    for seed in seeds {
        println!("simulating seed {seed} (rerun: TALLY_SIM_SEED={seed} cargo test -p tally-testkit)");
        must_pass(seed, Options::default());
    }
}

#[test]
fn without_faults_nothing_is_ever_uncertain() {
    let report = must_pass(7, Options { steps: 600, faults: Faults::NONE });
    assert_eq!((report.failed_batches, report.recovery_retries), (0, 0));
    assert!(report.acknowledged_batches > 400);
}

#[test]
fn the_same_seed_runs_the_same_way() {
    let first = must_pass(99, Options::default());
    let second = must_pass(99, Options::default());
    assert_eq!(format!("{first:?}"), format!("{second:?}"));
}
