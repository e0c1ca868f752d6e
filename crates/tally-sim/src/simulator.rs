//! Deterministic simulation of the embedded engine. One seed drives everything: the requests
//! (transfers, holds with timeouts, posts and voids, linked chains, retries of old ids, bound
//! changes), the clock, the faults of the storage (torn writes, lost unsynced data, bit flips
//! on read, failed fsync, full disk) and the moments of crashes and snapshots. The same seed
//! always replays the same run, so a failure is a seed to rerun, not a ghost.
//!
//! The node under test commits through the engine's own group-commit code and journal and
//! recovers through its own recovery. Beside it runs a reference: a plain state that receives
//! exactly the batches the node acknowledged. After every step, and after every crash and
//! recovery, the node must equal the reference, byte for byte. A batch that failed to commit
//! may survive a crash (its record reached the disk before the failure) or not, but nothing
//! else may differ: an acknowledged batch lost, a failed one reported as success, or damaged
//! data taken as real is a violation.

use crate::storage::{FaultCounts, Faults, SimStorage};
use tally_core::batch::{self, BatchApplied};
use tally_core::*;
use tally_engine::engine::recover;
use tally_engine::history;
use tally_engine::journal::Journal;
use tally_engine::snapshot;
use tally_testkit::workload::Workload;
use tally_testkit::Random;

/// History segments of the smallest size, 64 records, so that a run of a few hundred steps
/// hands off dozens of them and reads old records back through the faulty storage.
const HISTORY_SHIFT: u32 = tally_core::records::SEGMENT_SHIFT_MIN;

/// Recovery is retried this often when a transient read fault makes it fail; a real defect
/// fails every time.
const RECOVERY_ATTEMPTS: usize = 8;

#[derive(Clone, Copy, Debug)]
pub struct Options {
    pub steps: usize,
    pub faults: Faults,
}

impl Default for Options {
    fn default() -> Options {
        Options { steps: 400, faults: Faults::DEFAULT }
    }
}

#[derive(Clone, Debug, Default)]
pub struct Report {
    pub seed: u64,
    pub steps: usize,
    pub acknowledged_batches: u64,
    pub failed_batches: u64,
    pub failed_batches_that_survived: u64,
    pub crashes: u64,
    pub snapshots: u64,
    pub recovery_retries: u64,
    pub events: u64,
    pub last_seq: u64,
    pub faults: FaultCounts,
}

/// What went wrong, with the seed and step to reproduce it.
#[derive(Clone, Debug)]
pub struct Violation {
    pub seed: u64,
    pub step: usize,
    pub what: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "seed {} step {}: {} (rerun with `tally-sim --seed {}`)", self.seed, self.step, self.what, self.seed)
    }
}

struct Running {
    state: State,
    journal: Journal,
    storage: SimStorage,
}

/// A batch whose commit failed: it may or may not be on disk.
struct Uncertain {
    now: u64,
    requests: Vec<Request>,
}

struct Simulation {
    seed: u64,
    step: usize,
    random: Random,
    node: Running,
    reference: State,
    uncertain: Option<Uncertain>,
    clock: u64,
    workload: Workload,
    report: Report,
}

pub fn run(seed: u64, options: Options) -> Result<Report, Violation> {
    let storage = SimStorage::new(seed ^ 0x5eed, options.faults);
    let node = Running::start(storage.clone()).map_err(|what| Violation { seed, step: 0, what })?;
    let mut simulation = Simulation {
        seed,
        step: 0,
        random: Random::new(seed),
        node,
        reference: State::new(),
        uncertain: None,
        clock: 1_700_000_000_000_000_000,
        workload: Workload::new(seed),
        report: Report { seed, ..Report::default() },
    };
    simulation.setup()?;
    for step in 1..=options.steps {
        simulation.step = step;
        simulation.clock += simulation.random.below(40) as u64 * 1_000_000;
        match simulation.random.below(100) {
            0..=64 => {
                let requests: Vec<Request> = (0..1 + simulation.random.below(3)).map(|_| simulation.workload.transfers()).collect();
                simulation.report.events += requests.iter().map(|request| request.len() as u64).sum::<u64>();
                simulation.commit(requests)?;
            }
            65..=68 => {
                let request = simulation.workload.bounds();
                simulation.commit(vec![request])?;
            }
            69..=71 => {
                let request = simulation.workload.renewals();
                simulation.commit(vec![request])?;
            }
            72..=79 => simulation.commit(Vec::new())?,
            80..=85 => simulation.snapshot(),
            _ => simulation.crash_and_recover()?,
        }
        simulation.check()?;
    }
    // A final crash: everything acknowledged must come back.
    simulation.crash_and_recover()?;
    simulation.report.steps = options.steps;
    simulation.report.last_seq = simulation.reference.last_seq();
    simulation.report.faults = simulation.node.storage.counts();
    Ok(simulation.report)
}

impl Running {
    fn start(mut storage: SimStorage) -> Result<Running, String> {
        let (state, journal, _) = recover(&mut storage, HISTORY_SHIFT).map_err(|e| e.to_string())?;
        Ok(Running { state, journal, storage })
    }

    /// One group commit: apply, append, fsync. `Err` means nothing was acknowledged.
    fn commit(&mut self, now: u64, requests: &[Request]) -> Result<BatchApplied, String> {
        let applied = batch::apply(&mut self.state, now, requests);
        if let Some(payload) = &applied.payload {
            self.journal
                .append(&mut self.storage, applied.last_seq, payload)
                .and_then(|()| self.journal.sync(&mut self.storage))
                .map_err(|e| e.to_string())?;
        }
        history::hand_off_due(&mut self.storage, &mut self.state);
        Ok(applied)
    }
}

impl Simulation {
    fn violation(&self, what: impl Into<String>) -> Violation {
        Violation { seed: self.seed, step: self.step, what: what.into() }
    }

    fn setup(&mut self) -> Result<(), Violation> {
        let requests = Workload::setup();
        // Retried until acknowledged: faults may strike here too.
        while self.reference.last_seq() == 0 {
            self.commit(requests.clone())?;
        }
        Ok(())
    }

    fn commit(&mut self, requests: Vec<Request>) -> Result<(), Violation> {
        let now = self.clock;
        match self.node.commit(now, &requests) {
            Ok(applied) => {
                self.report.acknowledged_batches += 1;
                let expected = batch::apply(&mut self.reference, now, &requests);
                if applied.answers != expected.answers {
                    return Err(self.violation(format!(
                        "acknowledged outcomes {:?} differ from the reference's {:?}",
                        applied.answers, expected.answers
                    )));
                }
                Ok(())
            }
            Err(_) => {
                // The node's memory ran ahead of its disk: like the engine, it stops, and only
                // a restart from storage brings it back.
                self.report.failed_batches += 1;
                self.uncertain = Some(Uncertain { now, requests });
                self.crash_and_recover()
            }
        }
    }

    fn snapshot(&mut self) {
        if snapshot::write(&mut self.node.storage, &self.node.state, self.node.journal.position()).is_ok() {
            self.report.snapshots += 1;
        }
    }

    fn crash_and_recover(&mut self) -> Result<(), Violation> {
        self.report.crashes += 1;
        let storage = self.node.storage.crash();
        let mut attempts = 0;
        self.node = loop {
            attempts += 1;
            match Running::start(storage.clone()) {
                Ok(node) => break node,
                Err(_) if attempts < RECOVERY_ATTEMPTS => self.report.recovery_retries += 1,
                Err(error) => return Err(self.violation(format!("recovery failed {attempts} times: {error}"))),
            }
        };
        let recovered = self.node.state.snapshot_bytes();
        let uncertain = self.uncertain.take();
        if recovered == self.reference.snapshot_bytes() {
            return Ok(());
        }
        if let Some(uncertain) = uncertain {
            // The failed batch's record may have reached the disk whole before the failure.
            let mut candidate = State::from_snapshot_bytes(&self.reference.snapshot_bytes()).expect("the reference encodes");
            batch::apply(&mut candidate, uncertain.now, &uncertain.requests);
            if recovered == candidate.snapshot_bytes() {
                self.report.failed_batches_that_survived += 1;
                self.reference = candidate;
                return Ok(());
            }
        }
        Err(self.violation(format!(
            "the recovered state (last seq {}) is not what was acknowledged (last seq {})",
            self.node.state.last_seq(),
            self.reference.last_seq()
        )))
    }

    fn check(&self) -> Result<(), Violation> {
        self.node.state.check_invariants().map_err(|e| self.violation(e))?;
        if self.node.state.last_seq() != self.reference.last_seq() {
            return Err(self.violation("the node and the reference disagree on the last seq"));
        }
        if self.step.is_multiple_of(16) && self.node.state.snapshot_bytes() != self.reference.snapshot_bytes() {
            return Err(self.violation("the node's state differs from the reference"));
        }
        Ok(())
    }
}
