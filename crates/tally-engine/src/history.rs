//! History segments: transfer records the state handed off to files, so that memory holds
//! only the recent ones (`tally_core::records` has the why and the layout). The journal stays
//! the source of truth: a segment is derived from it, written whole with `write_atomic`, and
//! its bytes depend only on the history, so after a crash the replay writes it again the same.

use crate::storage::Storage;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use tally_core::records::HistoryRead;
use tally_core::State;

pub fn segment_name(segment: u32) -> String {
    format!("history-{segment:010}.th")
}

pub fn parse_segment_name(name: &str) -> Option<u32> {
    name.strip_prefix("history-")?.strip_suffix(".th")?.parse().ok()
}

/// Reads segments through a function that reads a named file, from any thread.
pub struct SegmentReader<F>(pub F);

impl<F: Fn(&str, u64, &mut [u8]) -> io::Result<()> + Send + Sync> HistoryRead for SegmentReader<F> {
    fn read_at(&self, segment: u32, offset: u64, buffer: &mut [u8]) -> io::Result<()> {
        (self.0)(&segment_name(segment), offset, buffer)
    }
}

/// Writes every segment due, handing each off once it is durable; `false` if one failed to
/// write. That is not a failure of the ledger (the journal holds everything): the records
/// stay in memory.
pub fn hand_off_due<S: Storage + ?Sized>(storage: &mut S, state: &mut State) -> bool {
    while let Some(segment) = state.segment_due() {
        if !write(storage, segment, &state.encode_segment(segment)) {
            return false;
        }
        state.handed_off(segment);
    }
    true
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

/// The thread that writes history segments, so the writer never waits for their fsync. It
/// takes one segment at a time: the writer sends the next only once it is idle again.
pub struct SegmentWriter {
    sender: Option<SyncSender<(u32, Vec<u8>)>>,
    busy: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl SegmentWriter {
    /// Starts the thread, writing through `storage`; `handed_off` is called with each
    /// segment once it is durable.
    pub fn start(mut storage: Box<dyn Storage>, handed_off: impl Fn(u32) + Send + 'static) -> io::Result<SegmentWriter> {
        let (sender, segments) = mpsc::sync_channel::<(u32, Vec<u8>)>(1);
        let busy = Arc::new(AtomicBool::new(false));
        let done = busy.clone();
        let thread = std::thread::Builder::new().name("tally-history".into()).spawn(move || {
            for (segment, bytes) in segments {
                if write(&mut *storage, segment, &bytes) {
                    handed_off(segment);
                } else {
                    std::thread::sleep(RETRY_AFTER);
                }
                done.store(false, Ordering::Release);
            }
        })?;
        Ok(SegmentWriter { sender: Some(sender), busy, thread: Some(thread) })
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
    /// Finishes the segment being written, then stops the thread.
    fn drop(&mut self) {
        drop(self.sender.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
