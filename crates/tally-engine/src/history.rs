//! History files: segments of transfer records the state handed off, so that memory holds only
//! the recent ones (`tally_core::records` has the why and the layout), and the id runs that
//! index them (`tally_core::id_runs`). The journal stays the source of truth: both are derived
//! from it, written whole with `write_atomic`, and their bytes depend only on the history, so
//! after a crash the replay writes them again the same.

use crate::storage::Storage;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use tally_core::id_runs::{self, IdFilter, IdRun, RunRange};
use tally_core::records::{self, HistoryFile, HistoryFiles, HistoryRead};
use tally_core::State;

pub fn segment_name(segment: u32) -> String {
    format!("history-{segment:010}.th")
}

pub fn parse_segment_name(name: &str) -> Option<u32> {
    name.strip_prefix("history-")?.strip_suffix(".th")?.parse().ok()
}

fn run_name(range: RunRange) -> String {
    format!("history-ids-{:010}-{:010}.ti", range.first, range.end)
}

pub fn parse_run_name(name: &str) -> Option<RunRange> {
    let (first, end) = name.strip_prefix("history-ids-")?.strip_suffix(".ti")?.split_once('-')?;
    let range = RunRange { first: first.parse().ok()?, end: end.parse().ok()? };
    (range.first < range.end).then_some(range)
}

pub fn file_name(file: HistoryFile) -> String {
    match file {
        HistoryFile::Segment(segment) => segment_name(segment),
        HistoryFile::IdRun(range) => run_name(range),
    }
}

/// Reads history files through a function that reads a named file, from any thread.
pub struct SegmentReader<F>(pub F);

impl<F: Fn(&str, u64, &mut [u8]) -> io::Result<()> + Send + Sync> HistoryRead for SegmentReader<F> {
    fn read_at(&self, file: HistoryFile, offset: u64, buffer: &mut [u8]) -> io::Result<()> {
        (self.0)(&file_name(file), offset, buffer)
    }
}

/// The storage's history files, for a state to load: its reader, and how far the id runs it
/// holds go (the end of the newest run file; the state checks the runs as it reads them).
pub fn files<S: Storage + ?Sized>(storage: &S) -> Option<HistoryFiles> {
    let reader = storage.history_reader()?;
    let names = storage.list().unwrap_or_default();
    let id_runs_end = names.iter().filter_map(|name| parse_run_name(name)).map(|range| range.end).max().unwrap_or(0);
    Some(HistoryFiles { reader, id_runs_end })
}

/// Removes the id run files a state standing on runs up to `end` does not use: runs merged
/// into a larger one before a crash, runs a start did not take, runs dropped after a
/// divergence. `false` if one could not be removed (or the files could not be listed).
pub fn remove_unused_runs<S: Storage + ?Sized>(storage: &mut S, end: u32) -> bool {
    let used = id_runs::plan(end);
    let names = match storage.list() {
        Ok(names) => names,
        Err(error) => {
            tracing::warn!(%error, "could not list the history files to remove unused id runs");
            return false;
        }
    };
    let unused = names.into_iter().filter(|name| parse_run_name(name).is_some_and(|range| !used.contains(&range)));
    // Every one is tried, even after one fails.
    let failed: Vec<String> = unused.filter(|name| !remove(storage, name)).collect();
    failed.is_empty()
}

fn remove<S: Storage + ?Sized>(storage: &mut S, name: &str) -> bool {
    let removed = storage.remove(name);
    if let Err(error) = &removed {
        tracing::warn!(file = name, %error, "could not remove an id run no longer used");
    }
    removed.is_ok()
}

/// How the history writer reaches the state: directly during a replay, through its lock
/// while the ledger runs.
pub trait StateAccess {
    fn with<R>(&mut self, change: impl FnOnce(&mut State) -> R) -> R;
}

impl StateAccess for &mut State {
    fn with<R>(&mut self, change: impl FnOnce(&mut State) -> R) -> R {
        change(self)
    }
}

/// Writes every segment due, handing each off once it is durable, and then every id run due;
/// `false` if a segment failed to write. That is not a failure of the ledger (the journal
/// holds everything): the records stay in memory. An id run that fails to write leaves its
/// ids in the table, and is tried again with the next segment.
pub fn hand_off_due<S: Storage + ?Sized>(storage: &mut S, mut state: &mut State) -> bool {
    while let Some(segment) = state.segment_due() {
        let bytes = state.encode_segment(segment);
        if !write_segment(storage, segment, &bytes, &mut state) {
            return false;
        }
    }
    if state.id_run_due().is_some() {
        if let Some(reader) = storage.history_reader() {
            index_due(storage, &*reader, &mut state, &AtomicBool::new(false));
        }
    }
    true
}

/// Writes segment `segment` as the state encoded it and hands it off. A segment the id runs
/// already cover (a replay after a stop) must keep the ids it had: if it does not, the runs
/// are dropped and written again.
fn write_segment<S: Storage + ?Sized>(storage: &mut S, segment: u32, bytes: &[u8], state: &mut impl StateAccess) -> bool {
    let covered = state.with(|state| segment < state.id_runs_end());
    let same = covered
        && match same_ids(storage, segment, bytes) {
            Ok(same) => same,
            Err(error) => {
                tracing::warn!(segment, %error, "could not read a history segment to compare it with the one written again");
                return false;
            }
        };
    if covered && !same {
        tracing::warn!(segment, "a history segment written again holds other ids than before: the id runs from it on are built again");
        let end = state.with(|state| {
            state.history_diverged(segment);
            state.id_runs_end()
        });
        // The segment being written is the evidence that those runs are stale: it is written
        // only once they are gone.
        if !remove_unused_runs(storage, end) {
            return false;
        }
    }
    if !write(storage, segment, bytes) {
        return false;
    }
    state.with(|state| state.handed_off(segment));
    true
}

/// Whether segment `segment` on storage keeps the same id hashes as `bytes` (a segment no
/// longer there, or cut short, does not); an error if it could not be read.
fn same_ids<S: Storage + ?Sized>(storage: &S, segment: u32, bytes: &[u8]) -> io::Result<bool> {
    let shift = records::segment_shift(bytes).expect("the state encodes whole segments");
    let hashes = records::id_hash_bytes(shift);
    let mut stored = vec![0u8; hashes.len()];
    match storage.read_exact_at(&segment_name(segment), hashes.start as u64, &mut stored) {
        Ok(()) => Ok(stored == bytes[hashes]),
        Err(error) if matches!(error.kind(), io::ErrorKind::NotFound | io::ErrorKind::UnexpectedEof) => Ok(false),
        Err(error) => Err(error),
    }
}

/// Writes every id run due (`State::id_run_due`), each from the segment's id hashes merged
/// with the runs it completes, which it then removes; `false` if one failed, or `stopping`
/// was set (a merge under way is given up: the runs are derived, and the next start writes
/// it again).
fn index_due<S: Storage + ?Sized>(storage: &mut S, reader: &dyn HistoryRead, state: &mut impl StateAccess, stopping: &AtomicBool) -> bool {
    while let Some((segment, shift)) = state.with(|state| state.id_run_due().map(|segment| (segment, state.history_shift()))) {
        if stopping.load(Ordering::Acquire) {
            return false;
        }
        if !build_filter_due(reader, state) {
            return false;
        }
        let Some((run, hashes)) = write_run(storage, reader, shift, segment, stopping) else { return false };
        let range = run.range();
        state.with(|state| state.indexed(run, &hashes));
        for merged in id_runs::plan(segment).into_iter().filter(|merged| merged.first >= range.first) {
            remove(storage, &run_name(merged));
        }
    }
    true
}

/// Builds the id filter from the runs if the state wants one (at a start, or when the runs
/// outgrow it); `false` if a run could not be read.
pub fn build_filter_due(reader: &dyn HistoryRead, state: &mut impl StateAccess) -> bool {
    let Some((capacity, end, shift)) = state.with(|state| state.id_filter_due().map(|c| (c, state.id_runs_end(), state.history_shift())))
    else {
        return true;
    };
    let mut filter = IdFilter::with_capacity(capacity);
    for range in id_runs::plan(end) {
        if let Err(problem) = filter.add_run(range, shift, reader) {
            tracing::warn!(%problem, "could not read an id run to build the id filter");
            return false;
        }
    }
    state.with(|state| state.filtered(filter, end));
    true
}

/// Writes the id run segment `segment` completes; with the segment's id hashes.
fn write_run<S: Storage + ?Sized>(
    storage: &mut S,
    reader: &dyn HistoryRead,
    shift: u32,
    segment: u32,
    stopping: &AtomicBool,
) -> Option<(IdRun, Vec<u64>)> {
    let hashes = match records::segment_id_hashes(reader, shift, segment) {
        Ok(hashes) => hashes,
        Err(problem) => {
            tracing::warn!(segment, %problem, "could not read a history segment's ids to index them");
            return None;
        }
    };
    let mut entries = Some(id_runs::segment_entries(segment, shift, &hashes));
    let mut run = None;
    let written = storage.write_atomic(&run_name(id_runs::completed_by(segment)), &mut |emit| {
        let entries = entries.take().expect("a run is produced once");
        let mut unless_stopping = |piece: &[u8]| {
            if stopping.load(Ordering::Acquire) {
                return Err(io::Error::new(io::ErrorKind::Interrupted, "the ledger is stopping"));
            }
            emit(piece)
        };
        run = Some(id_runs::merge(segment, shift, entries, reader, &mut unless_stopping)?);
        Ok(())
    });
    match (written, run) {
        (Ok(()), Some(run)) => Some((run, hashes)),
        (Err(error), _) if error.kind() == io::ErrorKind::Interrupted => None,
        (written, _) => {
            tracing::warn!(segment, error = ?written.err(), "could not write an id run; the ids stay in memory for now");
            None
        }
    }
}

/// Writes a segment's bytes durably; `false` (and a warning) if that failed.
pub fn write<S: Storage + ?Sized>(storage: &mut S, segment: u32, bytes: &[u8]) -> bool {
    let written = storage.write_atomic(&segment_name(segment), &mut |emit| emit(bytes));
    if let Err(error) = &written {
        tracing::warn!(segment, %error, "could not write a history segment; its records stay in memory for now");
    }
    written.is_ok()
}

/// After a segment failed to write, the next attempt waits this long: a full disk is not
/// retried at every commit.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// The thread that writes history segments and id runs, so the writer never waits for their
/// fsync. It takes one segment at a time: the writer sends the next only once it is idle again.
pub struct SegmentWriter {
    sender: Option<SyncSender<(u32, Vec<u8>)>>,
    busy: Arc<AtomicBool>,
    /// Set when the ledger stops: a long merge must not hold up the shutdown.
    stopping: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl SegmentWriter {
    /// Starts the thread, writing through `storage` and telling the state through `state`.
    pub fn start(mut storage: Box<dyn Storage>, mut state: impl StateAccess + Send + 'static) -> io::Result<SegmentWriter> {
        let reader = storage.history_reader().ok_or_else(|| io::Error::other("history files without a reader"))?;
        let (sender, segments) = mpsc::sync_channel::<(u32, Vec<u8>)>(1);
        let busy = Arc::new(AtomicBool::new(false));
        let stopping = Arc::new(AtomicBool::new(false));
        let (done, stop) = (busy.clone(), stopping.clone());
        let thread = std::thread::Builder::new().name("tally-history".into()).spawn(move || {
            for (segment, bytes) in segments {
                let written =
                    write_segment(&mut *storage, segment, &bytes, &mut state) && index_due(&mut *storage, &*reader, &mut state, &stop);
                if !written && !stop.load(Ordering::Acquire) {
                    std::thread::sleep(RETRY_AFTER);
                }
                done.store(false, Ordering::Release);
            }
        })?;
        Ok(SegmentWriter { sender: Some(sender), busy, stopping, thread: Some(thread) })
    }

    /// Whether a segment is being written.
    pub fn busy(&self) -> bool {
        self.busy.load(Ordering::Acquire)
    }

    /// Hands the thread a segment to write; it must not be busy.
    pub fn send(&self, segment: u32, bytes: Vec<u8>) {
        assert!(!self.busy(), "one segment at a time");
        self.busy.store(true, Ordering::Release);
        if let Some(sender) = &self.sender {
            // The thread ends only when this sender is dropped, or if it panicked, which
            // poisoned the state and stopped the ledger: nothing to do then.
            let _ = sender.send((segment, bytes));
        }
    }
}

impl Drop for SegmentWriter {
    /// Finishes the segment being written (giving up a merge under way), then stops the thread.
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::Release);
        drop(self.sender.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
