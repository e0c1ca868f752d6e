//! The writer's progress over the last minutes: one sample a second, kept in a ring of
//! `STATS_SAMPLES_MAX`, so `/v1/stats` (and the console's charts) show rates and latencies
//! without an external metrics system.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};
use tally_api::StatsSample;
use tally_core::limits::{STATS_INTERVAL_MS, STATS_SAMPLES_MAX};
use tally_ledger::{Ledger, Status};

#[derive(Default)]
pub struct Samples {
    ring: Mutex<Ring>,
}

#[derive(Default)]
struct Ring {
    samples: VecDeque<StatsSample>,
    /// The status behind the last sample, which the next one is measured against.
    previous: Option<(Instant, Status)>,
    sampling: bool,
}

impl Samples {
    /// The samples kept, oldest first.
    pub fn samples(&self) -> Vec<StatsSample> {
        self.lock().samples.iter().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Ring> {
        // Nothing panics while holding it: pushes and pops of plain values.
        self.ring.lock().expect("stats lock")
    }

    /// Records `status`, taken now, as the next sample.
    fn record(&self, status: Status, now: Instant, at_ms: u64) {
        let mut ring = self.lock();
        let (events_per_second, commits, commit_ms_mean) = match &ring.previous {
            Some((then, before)) => {
                let seconds = now.duration_since(*then).as_secs_f64().max(f64::EPSILON);
                let commits = status.commits.commits.saturating_sub(before.commits.commits);
                let time = status.commits.time.saturating_sub(before.commits.time);
                let mean = (commits > 0).then(|| time.as_secs_f64() * 1_000.0 / commits as f64);
                (status.last_seq.saturating_sub(before.last_seq) as f64 / seconds, commits, mean)
            }
            None => (0.0, 0, None),
        };
        if ring.samples.len() == STATS_SAMPLES_MAX {
            ring.samples.pop_front();
        }
        ring.samples.push_back(StatsSample {
            at_ms,
            last_seq: status.last_seq,
            durable_seq: status.durable_seq,
            queue_depth: status.queue_depth,
            events_per_second,
            commits,
            commit_ms_mean,
        });
        ring.previous = Some((now, status));
    }
}

/// Starts sampling `ledger` into `samples` once per `samples` (a second call does nothing),
/// on the current tokio runtime. The task holds neither: it ends when either is dropped.
pub fn start(samples: &Arc<Samples>, ledger: &Arc<dyn Ledger>) {
    {
        let mut ring = samples.lock();
        if ring.sampling {
            return;
        }
        ring.sampling = true;
    }
    let (samples, ledger): (Weak<Samples>, Weak<dyn Ledger>) = (Arc::downgrade(samples), Arc::downgrade(ledger));
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(Duration::from_millis(STATS_INTERVAL_MS));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let (Some(samples), Some(ledger)) = (samples.upgrade(), ledger.upgrade()) else { return };
            let status = ledger.status();
            drop(ledger);
            samples.record(status, Instant::now(), crate::auth::now_ms());
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use tally_ledger::CommitTotals;

    fn status(last_seq: u64, commits: u64, commit_ms: u64) -> Status {
        Status {
            last_seq,
            durable_seq: last_seq,
            failure: None,
            queue_depth: 0,
            writer_busy: Duration::ZERO,
            accounts: 0,
            transfers: 0,
            counts_estimated: false,
            commits: CommitTotals { commits, time: Duration::from_millis(commit_ms) },
        }
    }

    #[test]
    fn rates_are_measured_between_samples_and_the_ring_is_bounded() {
        let samples = Samples::default();
        let start = Instant::now();
        samples.record(status(10, 2, 4), start, 0);
        samples.record(status(510, 12, 54), start + Duration::from_millis(500), 500);
        let kept = samples.samples();
        assert_eq!(kept[0].events_per_second, 0.0);
        assert_eq!(kept[1].events_per_second, 1_000.0);
        assert_eq!((kept[1].commits, kept[1].commit_ms_mean), (10, Some(5.0)));
        for n in 0..STATS_SAMPLES_MAX as u64 {
            samples.record(status(510, 12, 54), start + Duration::from_secs(n + 1), 1_000 + n);
        }
        let kept = samples.samples();
        assert_eq!(kept.len(), STATS_SAMPLES_MAX);
        assert_eq!(kept[0].at_ms, 1_000, "the oldest are dropped first");
        assert_eq!(kept.last().unwrap().commit_ms_mean, None, "no commits, no mean");
    }
}
