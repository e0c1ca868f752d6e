//! The embedded engine: one bounded queue, one writer thread, group commit.
//!
//! Clients put requests on the queue. The writer takes everything queued (up to one
//! record's worth, measured exactly), applies each request to the state under a short write lock, appends one journal
//! record holding the requests that changed anything, fsyncs once, and only then answers
//! every client in the batch. So "created" always means durable, and the cost of an fsync
//! is shared by everything that arrived while the previous one ran.
//!
//! Readers take the read lock only to copy out what they need; they never wait behind I/O.
//! The state may briefly run ahead of the disk (applied, fsync under way), so a reader that
//! saw seq N waits until N is durable before answering: no one ever sees data that a crash
//! could take back.

use crate::backup::{Destination, Unfinished};
use crate::history::{self, SegmentWriter, StateAccess};
use crate::journal::{Journal, JournalError, Position, Tip};
use crate::snapshot;
use crate::storage::{FileStorage, Storage, LOCK_FILE};
use std::fs::File;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tally_core::batch;
use tally_core::limits::{QUEUE_REQUESTS_MAX, SNAPSHOT_AFTER_REPLAY_RECORDS};
use tally_core::memory::MemoryUse;
use tally_core::records::SEGMENT_SHIFT_DEFAULT;
use tally_core::{AccountView, HistoryEntry, Id, JournalEntry, Request, State, TransferView};
use tally_ledger::{
    panic_message, system_clock, AccountQuery, Applied, Backed, Batch, Budget, Clock, Ledger, LedgerError, LedgerFuture, Status, WriteQueue,
};
use tokio::sync::watch;

/// The longest the writer sleeps when idle; it wakes earlier for the next hold expiry.
const IDLE_WAKE_MS: u64 = 1_000;

pub struct Config {
    pub queue_requests_max: usize,
    pub clock: Clock,
    /// Write a snapshot when the engine stops cleanly.
    pub snapshot_on_shutdown: bool,
    /// Transfer records go to history segments of `2^history_shift` records each, where the
    /// storage has a place for them (`Storage::history_reader`).
    pub history_shift: u32,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            queue_requests_max: QUEUE_REQUESTS_MAX,
            clock: system_clock(),
            snapshot_on_shutdown: true,
            history_shift: SEGMENT_SHIFT_DEFAULT,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("data directory {path} is in use by another Tally process (lock held on {path}/tally.lock)")]
    InUse { path: String },
    #[error("cannot open data directory {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("journal record {record} in {file} at offset {offset} {reason}")]
    Replay { record: u64, file: String, offset: u64, reason: String },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Durable {
    seq: u64,
    failed: bool,
}

struct Shared {
    state: RwLock<State>,
    durable: watch::Sender<Durable>,
    /// `durable` again, sent once a commit's answers are on their way: journal long polls
    /// wait on this, so waking hundreds of them never delays the answers.
    published: watch::Sender<Durable>,
    failure: Mutex<Option<String>>,
    queue: WriteQueue,
    /// The journal's end after the last commit: what a backup copies up to.
    tip: Mutex<Tip>,
}

/// Why a poisoned state lock stops every read: a step panicked half-way through a change.
const POISONED: &str = "a change panicked half-way; the state cannot be trusted";

impl Shared {
    /// The state, for reading; refused once a step panicked while changing it.
    fn state(&self) -> Result<RwLockReadGuard<'_, State>, LedgerError> {
        self.state.read().map_err(|_| LedgerError::Failed(POISONED.into()))
    }

    /// The ledger can no longer be trusted to match its journal: refuse everything from now
    /// on, answer everything queued, and wake every reader waiting for durability.
    fn fail(&self, reason: String) {
        tracing::error!(%reason, "the ledger stops; restart to recover from the journal");
        *self.failure.lock().expect("failure lock") = Some(reason.clone());
        self.queue.fail(LedgerError::Failed(reason));
        self.durable.send_modify(|d| d.failed = true);
        self.publish();
    }

    /// Wakes the journal's long polls with what is durable now.
    fn publish(&self) {
        self.published.send_replace(*self.durable.borrow());
    }
}

pub struct Engine {
    shared: Arc<Shared>,
    writer: Mutex<Option<JoinHandle<()>>>,
    /// The data directory, for backups (`None` for storage that is not a directory).
    directory: Option<PathBuf>,
    /// Where the last backup's hashing stands, for the next one into the same directory.
    backup_unfinished: Arc<Mutex<Option<Unfinished>>>,
    _lock: Option<File>,
}

/// What start-up found, for logs and progress output.
#[derive(Clone, Copy, Debug, Default)]
pub struct Recovery {
    pub snapshot_record: u64,
    pub replayed_records: u64,
    pub last_seq: u64,
}

/// Replays journal records after `start` into `state`, checking that each record ends at
/// the seq it says it does (a mismatch means this build's rules differ from the writer's).
pub fn replay<S: Storage>(
    storage: &mut S,
    state: &mut State,
    start: Position,
    repair: bool,
    on_progress: impl FnMut(u64, u64),
    mut after_record: impl FnMut(&mut State, u64) -> Result<(), String>,
) -> Result<(Journal, u64), OpenError> {
    let mut replayed = 0;
    let journal = Journal::recover(
        storage,
        start,
        repair,
        |read| {
            let fail = |reason: String| OpenError::Replay { record: read.record, file: read.file.to_owned(), offset: read.offset, reason };
            let last_seq = batch::replay_record(state, read.payload).map_err(|e| fail(format!("does not decode: {e}")))?;
            if last_seq != read.last_seq {
                return Err(fail(format!("replays to seq {last_seq}, but was written at seq {}", read.last_seq)));
            }
            after_record(state, read.record).map_err(fail)?;
            replayed += 1;
            Ok(())
        },
        on_progress,
    )?;
    Ok((journal, replayed))
}

/// The history writer's way to the state: through its lock.
struct Locked(Arc<Shared>);

impl StateAccess for Locked {
    fn with<R>(&mut self, change: impl FnOnce(&mut State) -> R) -> R {
        change(&mut self.0.state.write().expect("state lock"))
    }
}

/// Rebuilds the state from storage: the newest intact snapshot (with the history segments it
/// stands on), then the journal after it (cutting a torn tail), then hands off to history
/// segments of `2^history_shift` records what is due. After a long replay it writes a
/// snapshot, so the next start is quick.
pub fn recover<S: Storage>(storage: &mut S, history_shift: u32) -> Result<(State, Journal, Recovery), OpenError> {
    let io = |source| OpenError::Io { path: "storage".into(), source };
    let (mut state, start) = snapshot::load_latest(storage).map_err(io)?.unwrap_or_default();
    let started = Instant::now();
    // Segments are handed off as the replay goes, so a long replay needs no more memory than
    // the ledger running; they go through a second handle while the replay reads the journal.
    let mut segments = storage.history_writer();
    if segments.is_some() {
        if let Some(files) = history::files(storage) {
            state.attach_history(files, history_shift);
        }
        // A run left behind could cover segments this start writes again differently (were
        // the journal to have lost records): a later start would take it. So a start that
        // cannot remove one does not go on.
        if !history::remove_unused_runs(storage, state.id_runs_end()) {
            return Err(io(std::io::Error::other("could not remove id runs the ledger no longer uses (see the warning above)")));
        }
        if let Some(reader) = storage.history_reader() {
            history::build_filter_due(&*reader, &mut &mut state);
        }
    }
    // After a segment failed to write (a full disk), the replay hands off no more: the
    // running writer tries again, at most once a second.
    let hand_off = |state: &mut State, _| {
        if segments.as_mut().is_some_and(|writer| !history::hand_off_due(&mut **writer, state)) {
            segments = None;
        }
        Ok(())
    };
    let (journal, replayed_records) = replay(storage, &mut state, start, true, |_, _| {}, hand_off)?;
    if let Some(segments) = &mut segments {
        history::hand_off_due(&mut **segments, &mut state);
    }
    let recovery = Recovery { snapshot_record: start.record, replayed_records, last_seq: state.last_seq() };
    tracing::info!(?recovery, elapsed_ms = started.elapsed().as_millis() as u64, "recovered");
    if replayed_records >= SNAPSHOT_AFTER_REPLAY_RECORDS {
        // Only a shortcut for the next start: failing to write it is no reason not to start.
        if let Err(error) = snapshot::write(storage, &state, journal.position()) {
            tracing::warn!(%error, "could not write a snapshot after recovery");
        }
    }
    Ok((state, journal, recovery))
}

/// Takes a data directory's lock (creating the directory if needed), so no second process
/// can open it while the returned file is held.
pub fn lock_directory(directory: &Path) -> Result<File, OpenError> {
    let io = |source| OpenError::Io { path: directory.display().to_string(), source };
    std::fs::create_dir_all(directory).map_err(io)?;
    let lock = File::options().create(true).truncate(false).write(true).open(directory.join(LOCK_FILE)).map_err(io)?;
    if lock.try_lock().is_err() {
        return Err(OpenError::InUse { path: directory.display().to_string() });
    }
    Ok(lock)
}

impl Engine {
    /// Opens (or creates) a data directory, taking its lock so no second process can.
    pub fn open(directory: &Path, config: Config) -> Result<(Engine, Recovery), OpenError> {
        let io = |source| OpenError::Io { path: directory.display().to_string(), source };
        let lock = lock_directory(directory)?;
        let mut storage = FileStorage::open(directory).map_err(io)?;
        storage.remove_partial_files().map_err(io)?;
        let (mut engine, recovery) = Engine::start(storage, config)?;
        engine._lock = Some(lock);
        engine.directory = Some(directory.to_path_buf());
        Ok((engine, recovery))
    }

    /// Recovers from `storage` and starts the writer.
    pub fn start<S: Storage>(mut storage: S, config: Config) -> Result<(Engine, Recovery), OpenError> {
        let io = |source| OpenError::Io { path: "storage".into(), source };
        let (state, journal, recovery) = recover(&mut storage, config.history_shift)?;
        let durable = Durable { seq: state.last_seq(), failed: false };
        let shared = Arc::new(Shared {
            state: RwLock::new(state),
            durable: watch::Sender::new(durable),
            published: watch::Sender::new(durable),
            failure: Mutex::new(None),
            queue: WriteQueue::new(config.queue_requests_max),
            tip: Mutex::new(journal.tip()),
        });
        let locked = Locked(shared.clone());
        let segments = storage.history_writer().map(|files| SegmentWriter::start(files, locked)).transpose().map_err(io)?;
        let writer = Writer { shared: shared.clone(), storage, journal, config, segments };
        let supervised = shared.clone();
        let handle = std::thread::Builder::new()
            .name("tally-writer".into())
            .spawn(move || {
                // Release builds abort on any panic. Where a panic unwinds (tests, debug
                // builds), the ledger is marked failed instead of living on with a dead writer.
                if let Err(panic) = catch_unwind(AssertUnwindSafe(|| writer.run())) {
                    supervised.fail(format!("the writer panicked: {}", panic_message(panic.as_ref())));
                }
            })
            .map_err(io)?;
        Ok((Engine { shared, writer: Mutex::new(Some(handle)), directory: None, backup_unfinished: Arc::default(), _lock: None }, recovery))
    }

    /// Stops taking requests, commits and answers everything already queued, writes a
    /// snapshot (if configured) and stops the writer. Idempotent.
    pub fn shutdown(&self) {
        self.shared.queue.close();
        let Some(handle) = self.writer.lock().expect("writer handle lock").take() else { return };
        let _ = handle.join();
    }

    fn check_failure(&self) -> Result<(), LedgerError> {
        match self.failure() {
            Some(reason) => Err(LedgerError::Failed(reason)),
            None => Ok(()),
        }
    }

    /// Why the ledger stopped: a storage failure, or a writer that died (which the queue
    /// learns first, when a reply is dropped unanswered).
    fn failure(&self) -> Option<String> {
        let failure = self.shared.failure.lock().expect("failure lock").clone();
        failure.or_else(|| self.shared.queue.failure().map(|error| error.to_string()))
    }

    /// Waits until `seq` is durable.
    async fn durable(&self, seq: u64) -> Result<(), LedgerError> {
        let mut durable = self.shared.durable.subscribe();
        let reached = durable.wait_for(|d| d.failed || d.seq >= seq).await.map(|d| *d);
        match reached {
            Ok(Durable { failed: false, .. }) => Ok(()),
            _ => Err(self.check_failure().err().unwrap_or(LedgerError::ShuttingDown)),
        }
    }

    /// Runs `read` on the state and answers once what it saw is durable.
    async fn read<T>(&self, read: impl FnOnce(&State) -> T) -> Result<T, LedgerError> {
        self.check_failure()?;
        let (value, seq) = {
            let state = self.shared.state()?;
            (read(&state), state.last_seq())
        };
        self.durable(seq).await?;
        Ok(value)
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl Ledger for Engine {
    fn submit_by(&self, request: Request, deadline: Instant) -> LedgerFuture<'_, Applied> {
        Box::pin(self.shared.queue.submit(request, deadline))
    }

    fn account(&self, id: Id, as_of: Option<u64>) -> LedgerFuture<'_, Option<AccountView>> {
        Box::pin(async move {
            let durable = self.shared.durable.borrow().seq;
            match as_of {
                Some(seq) if seq > durable => Err(LedgerError::AsOfAhead { as_of: seq, latest: durable }),
                Some(seq) => self.read(|state| state.account_as_of(&id, seq)).await,
                None => self.read(|state| state.account(&id)).await,
            }
        })
    }

    fn accounts(&self, query: AccountQuery) -> LedgerFuture<'_, Option<Vec<AccountView>>> {
        Box::pin(
            async move { self.read(|state| state.accounts_page(&query.prefix, &query.under, query.after.as_ref(), query.limit)).await },
        )
    }

    fn transfer(&self, id: Id) -> LedgerFuture<'_, Option<TransferView>> {
        Box::pin(async move { self.read(|state| state.transfer(id.as_str())).await })
    }

    fn account_transfers(&self, id: Id, after_seq: u64, limit: usize) -> LedgerFuture<'_, Option<Vec<TransferView>>> {
        Box::pin(async move { self.read(|state| state.account_transfers(&id, after_seq, limit)).await })
    }

    fn account_history(&self, id: Id, after_seq: u64, limit: usize) -> LedgerFuture<'_, Option<Vec<HistoryEntry>>> {
        Box::pin(async move { self.read(|state| state.account_history(&id, after_seq, limit)).await })
    }

    fn expiring_holds(&self, after: Option<(u64, u64)>, limit: usize) -> LedgerFuture<'_, Vec<TransferView>> {
        Box::pin(async move { self.read(|state| state.expiring_holds(after, limit)).await })
    }

    fn journal(&self, after_seq: u64, limit: usize, wait: Duration) -> LedgerFuture<'_, Vec<JournalEntry>> {
        Box::pin(async move {
            self.check_failure()?;
            let mut published = self.shared.published.subscribe();
            // Long poll: wait (bounded) until something after `after_seq` is durable.
            let _ = tokio::time::timeout(wait, published.wait_for(|d| d.failed || d.seq > after_seq)).await;
            let until = self.shared.durable.borrow().seq;
            self.check_failure()?;
            Ok(self.shared.state()?.journal(after_seq, until, limit))
        })
    }

    fn key_runs(&self, from: u64, to: u64) -> LedgerFuture<'_, Vec<(u64, Option<Id>)>> {
        Box::pin(async move { Ok(self.shared.state()?.key_runs(from, to)) })
    }

    fn backup(&self, to: PathBuf) -> LedgerFuture<'_, Backed> {
        Box::pin(async move {
            self.check_failure()?;
            let directory = self.directory.clone().ok_or_else(|| LedgerError::Unsupported("this ledger has no data directory".into()))?;
            // Everything up to the tip is final: the writer only appends after it.
            let tip = self.shared.tip.lock().expect("tip lock").clone();
            let unfinished = self.backup_unfinished.clone();
            let copied = tokio::task::spawn_blocking(move || {
                let source = FileStorage::open(&directory).map_err(|error| LedgerError::BackupFailed(error.to_string()))?;
                let now_ms = system_clock()() / 1_000_000;
                let mut destination = Destination::open(&to, unfinished.lock().expect("backup hash lock").take())?;
                let backed = destination.take(&source, &tip, now_ms);
                *unfinished.lock().expect("backup hash lock") = destination.unfinished();
                backed
            });
            copied.await.map_err(|error| LedgerError::BackupFailed(format!("the copy stopped: {error}")))?
        })
    }

    fn memory(&self) -> Option<MemoryUse> {
        Some(self.shared.state().ok()?.memory())
    }

    fn status(&self) -> Status {
        // Health answers even over a poisoned lock: the counts are only informative, and the
        // failure is what it must report.
        let (state, poisoned) = match self.shared.state.read() {
            Ok(state) => (state, false),
            Err(poisoned) => (poisoned.into_inner(), true),
        };
        let ((accounts, transfers), last_seq) = (state.counts(), state.last_seq());
        drop(state);
        let failure = self.failure();
        Status {
            last_seq,
            durable_seq: self.shared.durable.borrow().seq,
            failure: failure.or_else(|| poisoned.then(|| POISONED.to_owned())),
            queue_depth: self.shared.queue.depth(),
            writer_busy: self.shared.queue.writer_busy_for(),
            accounts,
            transfers,
            counts_estimated: false,
            commits: self.shared.queue.commit_totals(),
        }
    }
}

struct Writer<S: Storage> {
    shared: Arc<Shared>,
    storage: S,
    journal: Journal,
    config: Config,
    /// Writes history segments on a thread of its own; `None` for storage without them.
    segments: Option<SegmentWriter>,
}

impl<S: Storage> Writer<S> {
    fn run(mut self) {
        loop {
            let batch = self.shared.queue.take_blocking(self.idle_wait(), Budget::COMMIT);
            let closed = batch.closed;
            // An empty batch still commits: holds may have come due.
            self.commit(batch);
            if closed {
                self.stop();
                return;
            }
        }
    }

    fn idle_wait(&self) -> Duration {
        let next_expiry = self.shared.state.read().expect("state lock").next_expiry();
        let now = (self.config.clock)();
        let wait_ns = next_expiry.map_or(u64::MAX, |at| at.saturating_sub(now));
        Duration::from_nanos(wait_ns.min(IDLE_WAKE_MS * 1_000_000)).max(Duration::from_millis(1))
    }

    fn failure(&self) -> Option<String> {
        self.shared.failure.lock().expect("failure lock").clone()
    }

    fn commit(&mut self, batch: Batch) {
        if let Some(reason) = self.failure() {
            batch.fail(&LedgerError::Failed(reason));
            return;
        }
        // Checked before anything is applied or written, and at least every `IDLE_WAKE_MS`
        // when idle: a directory removed under the server must stop it, not swallow writes.
        if let Err(error) = self.storage.check_place() {
            let reason = error.to_string();
            self.shared.fail(reason.clone());
            batch.fail(&LedgerError::Failed(reason));
            return;
        }
        let now = (self.config.clock)();
        let applied = batch::apply(&self.shared.state, now, batch.requests());
        let last_seq = applied.last_seq;
        if let Some(payload) = &applied.payload {
            let fsync_started = Instant::now();
            let written = self.journal.append(&mut self.storage, last_seq, payload).and_then(|()| self.journal.sync(&mut self.storage));
            metrics::histogram!("tally_fsync_seconds").record(fsync_started.elapsed().as_secs_f64());
            if let Err(error) = written {
                // The state is now ahead of the disk and cannot be trusted to match it: stop
                // accepting writes and reads, and tell no one that anything succeeded.
                let reason = format!("journal write failed: {error}");
                self.shared.fail(reason.clone());
                // The record may have reached the disk all the same, and replay would apply it.
                batch.fail(&LedgerError::OutcomeUnknown(reason));
                return;
            }
            metrics::histogram!("tally_commit_bytes").record(payload.len() as f64);
        }
        if applied.payload.is_some() {
            *self.shared.tip.lock().expect("tip lock") = self.journal.tip();
        }
        self.shared.durable.send_modify(|d| d.seq = last_seq);
        batch.answer(applied.answers);
        if applied.payload.is_some() {
            self.shared.publish();
        }
        self.hand_off();
    }

    /// Hands the segment writer the next history segment due, if it is idle: encoded here,
    /// under the read lock, and written and dropped from memory on its thread.
    fn hand_off(&mut self) {
        let Some(segments) = self.segments.as_ref().filter(|segments| !segments.busy()) else { return };
        let due = {
            let state = self.shared.state.read().expect("state lock");
            state.segment_due().map(|segment| (segment, state.encode_segment(segment)))
        };
        if let Some((segment, bytes)) = due {
            segments.send(segment, bytes);
        }
    }

    fn stop(&mut self) {
        // The segment being written is finished first, so the snapshot stands on it.
        drop(self.segments.take());
        if self.config.snapshot_on_shutdown && self.failure().is_none() {
            let state = self.shared.state.read().expect("state lock");
            if let Err(error) = snapshot::write(&mut self.storage, &state, self.journal.position()) {
                tracing::warn!(%error, "could not write a snapshot at shutdown; the next start replays the journal");
            }
        }
        self.shared.durable.send_modify(|d| d.failed = d.failed || self.failure().is_some());
        self.shared.publish();
    }
}
