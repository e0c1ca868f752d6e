//! History segments: transfer records the state handed off to files, so that memory holds
//! only the recent ones (`tally_core::records` has the why and the layout). The journal stays
//! the source of truth: a segment is derived from it, written whole with `write_atomic`, and
//! its bytes depend only on the history, so after a crash the replay writes it again the same.

use crate::storage::Storage;
use std::io;
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

/// Writes every segment due, handing each off once it is durable. A failure to write one is
/// not a failure of the ledger (the journal holds everything): the records stay in memory,
/// and the next call tries again.
pub fn hand_off_due<S: Storage>(storage: &mut S, state: &mut State) {
    while let Some(segment) = state.segment_due() {
        if !write(storage, segment, &state.encode_segment(segment)) {
            return;
        }
        state.handed_off(segment);
    }
}

/// Writes a segment's bytes durably; `false` (and a warning) if that failed.
pub fn write<S: Storage>(storage: &mut S, segment: u32, bytes: &[u8]) -> bool {
    let written = storage.write_atomic(&segment_name(segment), &mut |emit| emit(bytes));
    if let Err(error) = &written {
        tracing::warn!(segment, %error, "could not write a history segment; its records stay in memory for now");
    }
    written.is_ok()
}
