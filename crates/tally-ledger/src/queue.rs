//! The bounded write queue in front of a store's single writer, shared by both stores.
//!
//! Clients `submit` requests; each is measured here, on the client's thread (the exact size
//! of its encoding, counted without writing it), so the queue knows what it holds. The queue is bounded twice, by requests and by encoded bytes,
//! and a full queue answers at once instead of letting latency and memory grow. The writer
//! takes a `Batch`: everything queued that fits its `Budget`, measured exactly, so a commit
//! can never outgrow the record that must hold it. A request that does not fit stays queued
//! for the next batch. The writer answers a batch as a whole (`answer` or `fail`).
//!
//! A writer may be a thread (`take_blocking`) or a task (`take`); the queue wakes either.

use crate::{Applied, LedgerError};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tally_core::codec::encoded_len;
use tally_core::limits::{BATCH_EVENTS_MAX, BATCH_HEADER_BYTES, COMMIT_BYTES_MAX, QUEUE_BYTES_MAX, REQUEST_ENCODED_BYTES_MAX};
use tally_core::{Outcome, Request};
use tokio::sync::oneshot::error::TryRecvError;
use tokio::sync::{oneshot, Notify};

type Reply = oneshot::Sender<Result<Applied, LedgerError>>;

/// A queued request and where its answer goes.
pub struct Job {
    /// Names the job while it is queued, so its submitter can withdraw it.
    ticket: u64,
    pub request: Request,
    /// The exact size of the request's encoding in a batch record.
    pub encoded_bytes: usize,
    reply: Reply,
    /// When it was queued: how long it waited for a batch is `tally_queue_wait_seconds`.
    queued_at: Instant,
}

/// How much one batch may take: its encoded requests (with the record header) and events.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    pub bytes_max: usize,
    pub events_max: usize,
}

impl Budget {
    /// One batch record's worth: what the embedded writer commits at once.
    pub const COMMIT: Budget = Budget { bytes_max: COMMIT_BYTES_MAX, events_max: usize::MAX };

    /// Whether any single request fits: every batch can then take at least the request at
    /// the head of the queue.
    const fn fits_any_request(self) -> bool {
        self.bytes_max >= BATCH_HEADER_BYTES + REQUEST_ENCODED_BYTES_MAX && self.events_max >= BATCH_EVENTS_MAX
    }
}

const _: () = assert!(Budget::COMMIT.fits_any_request());

/// What a writer took from the queue.
pub struct Batch {
    pub jobs: Vec<Job>,
    /// The queue is closed and now empty: after this batch the writer stops.
    pub closed: bool,
    taken: Instant,
    /// The queue's record of the writer, whose batch in hand is cleared when this one is
    /// answered.
    writer: Option<Arc<WriterRecord>>,
}

impl Drop for Batch {
    fn drop(&mut self) {
        if let Some(writer) = &self.writer {
            *writer.busy.lock().expect("busy lock") = None;
        }
    }
}

/// What the writer is doing and has done: the batch it holds, and the commits it answered.
#[derive(Default)]
struct WriterRecord {
    /// When the writer took the batch it holds, if it holds one.
    busy: Mutex<Option<Instant>>,
    commits: AtomicU64,
    commit_nanos: AtomicU64,
}

/// How many commits a writer has answered since it started, and how long they took in all
/// (from being taken off the queue to being answered): a rate and a mean latency between two
/// readings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CommitTotals {
    pub commits: u64,
    pub time: Duration,
}

impl Batch {
    pub fn requests(&self) -> impl Iterator<Item = &Request> {
        self.jobs.iter().map(|job| &job.request)
    }

    pub fn events(&self) -> usize {
        self.jobs.iter().map(|job| job.request.len()).sum()
    }

    /// Answers every request with its outcomes, in order.
    pub fn answer(mut self, answers: Vec<Vec<Outcome>>) {
        assert_eq!(answers.len(), self.jobs.len(), "one answer per request");
        let events = self.events();
        if events > 0 {
            let took = self.taken.elapsed();
            metrics::histogram!("tally_batch_events").record(events as f64);
            metrics::histogram!("tally_commit_seconds").record(took.as_secs_f64());
            if let Some(writer) = &self.writer {
                writer.commits.fetch_add(1, Ordering::Relaxed);
                writer.commit_nanos.fetch_add(u64::try_from(took.as_nanos()).unwrap_or(u64::MAX), Ordering::Relaxed);
            }
        }
        for (job, outcomes) in std::mem::take(&mut self.jobs).into_iter().zip(answers) {
            // A client that stopped waiting has nothing to hear.
            let _ = job.reply.send(Ok(Applied { request: job.request, outcomes }));
        }
    }

    /// Answers every request with the same failure.
    pub fn fail(mut self, error: &LedgerError) {
        for job in std::mem::take(&mut self.jobs) {
            let _ = job.reply.send(Err(error.clone()));
        }
    }
}

struct Queued {
    jobs: VecDeque<Job>,
    next_ticket: u64,
    bytes: usize,
    open: bool,
    /// Set when the writer died: every submission from then on hears it.
    failure: Option<LedgerError>,
    /// Set while the writer cannot apply anything (`suspend`): submissions hear it until it
    /// is cleared.
    suspended: Option<LedgerError>,
}

/// Withdraws a queued request when the future waiting for it is dropped before its answer.
struct Withdrawal<'a> {
    queue: &'a WriteQueue,
    /// Cleared once the wait ended on its own: the answer (or its absence) is then handled.
    ticket: Option<u64>,
}

impl Drop for Withdrawal<'_> {
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket {
            self.queue.withdraw(ticket);
        }
    }
}

pub struct WriteQueue {
    queued: Mutex<Queued>,
    /// Wakes a writer thread.
    arrived: Condvar,
    /// Wakes a writer task.
    arrived_async: Notify,
    requests_max: usize,
    bytes_max: usize,
    writer: Arc<WriterRecord>,
}

impl WriteQueue {
    pub fn new(requests_max: usize) -> WriteQueue {
        assert!(requests_max >= 1);
        WriteQueue {
            queued: Mutex::new(Queued { jobs: VecDeque::new(), next_ticket: 0, bytes: 0, open: true, failure: None, suspended: None }),
            arrived: Condvar::new(),
            arrived_async: Notify::new(),
            requests_max,
            bytes_max: QUEUE_BYTES_MAX,
            writer: Arc::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Queued> {
        // Nothing panics while holding this lock (it guards plain pushes and pops).
        self.queued.lock().expect("queue lock")
    }

    /// Queues a request and waits for the writer's answer until `deadline`. A request still
    /// queued then is withdrawn (`Withdrawn`: nothing applied); one the writer already took
    /// may yet be applied (`OutcomeUnknown`).
    pub async fn submit(&self, request: Request, deadline: Instant) -> Result<Applied, LedgerError> {
        assert!(request.len() <= BATCH_EVENTS_MAX, "the edge bounds request sizes");
        let encoded_bytes = encoded_len(&request);
        assert!(encoded_bytes <= REQUEST_ENCODED_BYTES_MAX, "field limits bound a request's encoding");
        let (reply, mut answer) = oneshot::channel();
        let ticket = self.push(request, encoded_bytes, reply)?;
        // A submitter that stops waiting (its client hung up, so its future is dropped)
        // takes its request back if the writer has not taken it: nobody would hear it.
        let mut queued = Withdrawal { queue: self, ticket: Some(ticket) };
        let waited = tokio::time::timeout_at(deadline.into(), &mut answer).await;
        queued.ticket = None;
        let answered = match waited {
            Ok(answered) => answered.ok(),
            Err(_) if self.withdraw(ticket) => return Err(LedgerError::Withdrawn),
            // Taken by the writer: answered just now, or still being applied.
            Err(_) => match answer.try_recv() {
                Ok(answered) => Some(answered),
                Err(TryRecvError::Empty) => {
                    return Err(LedgerError::OutcomeUnknown("the writer took the request but did not answer in time".into()))
                }
                Err(TryRecvError::Closed) => None,
            },
        };
        // Every queued request is answered, at shutdown too; a reply dropped unanswered means
        // the writer died holding it, so whether it was applied is unknown. The queue fails at
        // once, before this answer leaves, so no one who hears it can still find a ledger that
        // looks alive.
        answered.unwrap_or_else(|| {
            self.fail(LedgerError::Failed("the writer stopped".into()));
            Err(LedgerError::OutcomeUnknown("the writer stopped before answering".into()))
        })
    }

    /// Removes a job the writer has not taken; false if it has.
    fn withdraw(&self, ticket: u64) -> bool {
        let mut queued = self.lock();
        let Some(position) = queued.jobs.iter().position(|job| job.ticket == ticket) else { return false };
        let job = queued.jobs.remove(position).expect("found above");
        queued.bytes -= job.encoded_bytes;
        metrics::gauge!("tally_queue_depth").set(queued.jobs.len() as f64);
        metrics::counter!("tally_requests_withdrawn_total").increment(1);
        true
    }

    fn push(&self, request: Request, encoded_bytes: usize, reply: Reply) -> Result<u64, LedgerError> {
        let mut queued = self.lock();
        if let Some(refusal) = queued.failure.as_ref().or(queued.suspended.as_ref()) {
            return Err(refusal.clone());
        }
        if !queued.open {
            return Err(LedgerError::ShuttingDown);
        }
        // An empty queue takes any request (each fits `QUEUE_BYTES_MAX` by construction).
        if queued.jobs.len() >= self.requests_max || (!queued.jobs.is_empty() && queued.bytes + encoded_bytes > self.bytes_max) {
            return Err(LedgerError::QueueFull);
        }
        let ticket = queued.next_ticket;
        queued.next_ticket += 1;
        queued.bytes += encoded_bytes;
        queued.jobs.push_back(Job { ticket, request, encoded_bytes, reply, queued_at: Instant::now() });
        metrics::gauge!("tally_queue_depth").set(queued.jobs.len() as f64);
        drop(queued);
        self.arrived.notify_one();
        self.arrived_async.notify_one();
        Ok(ticket)
    }

    /// Why the queue was failed, if it was: the writer is gone, and reads should say so too.
    pub fn failure(&self) -> Option<LedgerError> {
        self.lock().failure.clone()
    }

    /// Whether the queue takes no more submissions.
    pub fn is_closed(&self) -> bool {
        !self.lock().open
    }

    pub fn depth(&self) -> usize {
        self.lock().jobs.len()
    }

    /// How long the writer has held its current batch (zero when it holds none): a stalled
    /// disk or database shows here before anything else does.
    pub fn writer_busy_for(&self) -> Duration {
        self.writer.busy.lock().expect("busy lock").map_or(Duration::ZERO, |since| since.elapsed())
    }

    /// The commits answered so far, and their time.
    pub fn commit_totals(&self) -> CommitTotals {
        CommitTotals {
            commits: self.writer.commits.load(Ordering::Relaxed),
            time: Duration::from_nanos(self.writer.commit_nanos.load(Ordering::Relaxed)),
        }
    }

    /// Takes no more submissions; the writer still takes and answers what is queued.
    pub fn close(&self) {
        self.lock().open = false;
        self.arrived.notify_all();
        self.arrived_async.notify_one();
    }

    /// The writer cannot go on: answer everything queued, and every later submission, with
    /// `error` (the first failure stands). Nothing that is refused this way was applied.
    pub fn fail(&self, error: LedgerError) {
        self.refuse_queued(|queued| {
            queued.open = false;
            queued.failure.get_or_insert(error).clone()
        });
        self.arrived.notify_all();
        self.arrived_async.notify_one();
    }

    /// The writer cannot apply anything for now (its database is out of reach): answer
    /// everything queued, and every submission until `resume`, with `error` at once, rather
    /// than let requests wait for a writer that may be back only after their clients left.
    /// Nothing refused this way was applied.
    pub fn suspend(&self, error: LedgerError) {
        self.refuse_queued(|queued| queued.suspended.insert(error).clone());
    }

    /// Empties the queue under one lock, after `refuse` marks it (closed, failed or
    /// suspended) and names the error, then answers every request it held with that error.
    fn refuse_queued(&self, refuse: impl FnOnce(&mut Queued) -> LedgerError) {
        let (jobs, error) = {
            let mut queued = self.lock();
            let error = refuse(&mut queued);
            queued.bytes = 0;
            (std::mem::take(&mut queued.jobs), error)
        };
        metrics::gauge!("tally_queue_depth").set(0.0);
        Batch { jobs: jobs.into(), closed: false, taken: Instant::now(), writer: None }.fail(&error);
    }

    /// Takes submissions again after `suspend`.
    pub fn resume(&self) {
        self.lock().suspended = None;
    }

    /// For a writer thread: waits up to `wait` for a request, then takes what fits `budget`
    /// (possibly nothing, when the wait ran out).
    pub fn take_blocking(&self, wait: Duration, budget: Budget) -> Batch {
        let queued = self.lock();
        let (mut queued, _) = self.arrived.wait_timeout_while(queued, wait, |q| q.jobs.is_empty() && q.open).expect("queue lock");
        self.drain(&mut queued, budget)
    }

    /// For a writer task: the same as `take_blocking`, without blocking the runtime.
    pub async fn take(&self, wait: Duration, budget: Budget) -> Batch {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // Made before looking, so a request pushed in between still wakes it.
            let arrived = self.arrived_async.notified();
            {
                let mut queued = self.lock();
                if !queued.jobs.is_empty() || !queued.open {
                    return self.drain(&mut queued, budget);
                }
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                return self.drain(&mut self.lock(), budget);
            }
        }
    }

    /// Takes requests from the head of the queue while they fit `budget`: always the first
    /// one (every request fits an empty batch), then as many as fit, in order.
    fn drain(&self, queued: &mut Queued, budget: Budget) -> Batch {
        assert!(budget.fits_any_request(), "a budget must fit any single request");
        let mut jobs = Vec::new();
        let (mut bytes, mut events) = (BATCH_HEADER_BYTES, 0);
        while let Some(next) = queued.jobs.front() {
            let (next_bytes, next_events) = (next.encoded_bytes, next.request.len());
            if bytes + next_bytes > budget.bytes_max || events + next_events > budget.events_max {
                assert!(!jobs.is_empty(), "the first request always fits");
                break;
            }
            bytes += next_bytes;
            events += next_events;
            queued.bytes -= next_bytes;
            jobs.push(queued.jobs.pop_front().expect("looked at above"));
        }
        metrics::gauge!("tally_queue_depth").set(queued.jobs.len() as f64);
        let taken = Instant::now();
        for job in &jobs {
            metrics::histogram!("tally_queue_wait_seconds").record(taken.duration_since(job.queued_at).as_secs_f64());
        }
        let writer = (!jobs.is_empty()).then(|| {
            *self.writer.busy.lock().expect("busy lock") = Some(taken);
            self.writer.clone()
        });
        Batch { jobs, closed: !queued.open && queued.jobs.is_empty(), taken, writer }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use tally_core::{AssetCode, NewAsset};

    fn later() -> Instant {
        Instant::now() + Duration::from_secs(60)
    }

    #[tokio::test]
    async fn a_request_past_its_deadline_is_withdrawn_if_queued_and_unknown_if_taken() {
        let queue = WriteQueue::new(4);
        let soon = Instant::now() + Duration::from_millis(20);
        assert_eq!(queue.submit(asset("AAA"), soon).await.unwrap_err(), LedgerError::Withdrawn);
        assert_eq!((queue.depth(), queue.lock().bytes), (0, 0), "a withdrawn request leaves nothing queued");
        let queue = Arc::new(queue);
        let taken = {
            let queue = queue.clone();
            tokio::spawn(async move { queue.submit(asset("BBB"), Instant::now() + Duration::from_millis(200)).await })
        };
        wait_for_depth(&queue, 1).await;
        let batch = queue.take(Duration::ZERO, Budget::COMMIT).await;
        assert_eq!(
            taken.await.unwrap().unwrap_err(),
            LedgerError::OutcomeUnknown("the writer took the request but did not answer in time".into())
        );
        batch.answer(vec![Vec::new()]);
    }

    fn asset(code: &str) -> Request {
        Request::CreateAssets(vec![NewAsset { code: AssetCode::parse(code).unwrap(), scale: 2 }])
    }

    fn queued(requests_max: usize, codes: &[&str]) -> (Arc<WriteQueue>, Vec<tokio::task::JoinHandle<Result<Applied, LedgerError>>>) {
        let queue = Arc::new(WriteQueue::new(requests_max));
        let answers = codes
            .iter()
            .map(|code| {
                let (queue, request) = (queue.clone(), asset(code));
                tokio::spawn(async move { queue.submit(request, later()).await })
            })
            .collect();
        (queue, answers)
    }

    async fn wait_for_depth(queue: &WriteQueue, depth: usize) {
        while queue.depth() < depth {
            tokio::task::yield_now().await;
        }
    }

    /// A request creating `events` assets whose codes start with `prefix`.
    fn assets(prefix: &str, events: usize) -> Request {
        let asset = |n: usize| NewAsset { code: AssetCode::parse(&format!("{prefix}{n}")).unwrap(), scale: 2 };
        Request::CreateAssets((0..events).map(asset).collect())
    }

    #[tokio::test]
    async fn a_batch_takes_what_fits_its_budget_in_order_and_leaves_the_rest_queued() {
        let queue = Arc::new(WriteQueue::new(8));
        let requests = [assets("A", 5_000), assets("B", 3_000), assets("C", 1_000)];
        let answers: Vec<_> = requests
            .iter()
            .map(|request| {
                let (queue, request) = (queue.clone(), request.clone());
                tokio::spawn(async move { queue.submit(request, later()).await })
            })
            .collect();
        wait_for_depth(&queue, 3).await;
        let bytes: usize = requests.iter().map(encoded_len).sum();
        assert_eq!(queue.lock().bytes, bytes, "the queue knows the exact size of what it holds");
        // 5,000 + 3,000 events fit a budget of 8,190; the third request would not.
        let budget = Budget { bytes_max: COMMIT_BYTES_MAX, events_max: BATCH_EVENTS_MAX };
        let batch = queue.take(Duration::ZERO, budget).await;
        assert_eq!(batch.requests().collect::<Vec<_>>(), [&requests[0], &requests[1]]);
        assert_eq!((queue.depth(), queue.lock().bytes), (1, encoded_len(&requests[2])));
        batch.answer(vec![Vec::new(), Vec::new()]);
        let rest = queue.take_blocking(Duration::ZERO, budget);
        assert_eq!(rest.requests().collect::<Vec<_>>(), [&requests[2]]);
        rest.fail(&LedgerError::QueueFull);
        let results = futures_results(answers).await;
        assert!(results[0].is_ok() && results[1].is_ok() && results[2] == Err(LedgerError::QueueFull));
    }

    #[tokio::test]
    async fn a_full_queue_refuses_at_once_and_a_failed_one_answers_everything() {
        let (queue, answers) = queued(2, &["AAA", "BBB"]);
        wait_for_depth(&queue, 2).await;
        assert_eq!(queue.submit(asset("CCC"), later()).await.unwrap_err(), LedgerError::QueueFull);
        let failure = LedgerError::Failed("the writer stopped".into());
        queue.fail(failure.clone());
        assert_eq!(futures_results(answers).await, [Err(failure.clone()), Err(failure.clone())]);
        assert_eq!(queue.submit(asset("DDD"), later()).await.unwrap_err(), failure, "later submissions hear the failure too");
        let batch = queue.take_blocking(Duration::ZERO, Budget::COMMIT);
        assert!(batch.jobs.is_empty() && batch.closed);
    }

    #[tokio::test]
    async fn a_closed_queue_refuses_new_requests_but_hands_over_what_it_holds() {
        let (queue, answers) = queued(4, &["AAA"]);
        wait_for_depth(&queue, 1).await;
        queue.close();
        assert_eq!(queue.submit(asset("BBB"), later()).await.unwrap_err(), LedgerError::ShuttingDown);
        let batch = queue.take_blocking(Duration::from_secs(1), Budget::COMMIT);
        assert!(batch.closed && batch.jobs.len() == 1, "the last batch says the writer may stop");
        batch.answer(vec![Vec::new()]);
        assert!(futures_results(answers).await[0].is_ok());
    }

    #[tokio::test]
    async fn a_suspended_queue_answers_at_once_until_resumed() {
        let (queue, answers) = queued(4, &["AAA", "BBB"]);
        wait_for_depth(&queue, 2).await;
        let away = LedgerError::Unavailable("no database".into());
        queue.suspend(away.clone());
        assert_eq!(futures_results(answers).await, [Err(away.clone()), Err(away.clone())], "what was queued hears it");
        assert_eq!((queue.depth(), queue.lock().bytes), (0, 0));
        assert_eq!(queue.submit(asset("CCC"), later()).await.unwrap_err(), away, "so does every submission meanwhile");
        queue.resume();
        let (waiting, taken) = (queue.clone(), queue.clone());
        let answer = tokio::spawn(async move { waiting.submit(asset("DDD"), later()).await });
        wait_for_depth(&queue, 1).await;
        let batch = taken.take(Duration::ZERO, Budget::COMMIT).await;
        batch.answer(vec![Vec::new()]);
        assert!(answer.await.unwrap().is_ok(), "a resumed queue hands requests to the writer again");
    }

    #[tokio::test]
    async fn a_submitter_that_stops_waiting_takes_its_request_back() {
        let queue = Arc::new(WriteQueue::new(4));
        let waiting = {
            let queue = queue.clone();
            tokio::spawn(async move { queue.submit(asset("AAA"), later()).await })
        };
        wait_for_depth(&queue, 1).await;
        waiting.abort();
        assert!(waiting.await.unwrap_err().is_cancelled());
        assert_eq!((queue.depth(), queue.lock().bytes), (0, 0), "nothing is left for the writer to apply");
    }

    async fn futures_results(answers: Vec<tokio::task::JoinHandle<Result<Applied, LedgerError>>>) -> Vec<Result<(), LedgerError>> {
        let mut results = Vec::new();
        for answer in answers {
            results.push(answer.await.expect("the task ran").map(|_| ()));
        }
        results
    }
}
