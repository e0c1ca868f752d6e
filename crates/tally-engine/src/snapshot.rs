//! Snapshot files: a whole state, taken right after a journal record, so a restart replays
//! only the records after it. The state streams out in frames, each checksummed and chained
//! to the one before, ending with an empty frame; loading reads one frame at a time, so
//! neither side ever holds a second copy of the state. A snapshot that does not read back
//! intact is passed over for an older one (or a full replay): the journal still holds
//! everything, so nothing is lost. Byte layout: `docs/journal.md`.

use crate::journal::Position;
use crate::storage::Storage;
use std::io;
use tally_core::codec::DecodeError;
use tally_core::limits::{SNAPSHOTS_KEPT, SNAPSHOT_ITEM_BYTES_MAX, SNAPSHOT_PIECE_BYTES};
use tally_core::snapshot::SNAPSHOT_FORMAT;
use tally_core::State;
use tally_ledger::frame::{self, chained128, snapshot_frame, Header};

pub const SNAPSHOT_MAGIC: &[u8; 8] = b"TALLYSNP";
const HEADER_BYTES: usize = frame::snapshot::BYTES;
const FRAME_HEADER_BYTES: usize = snapshot_frame::BYTES;
/// No frame is larger; a larger length is corruption, not a reason to allocate.
const FRAME_BYTES_MAX: usize = SNAPSHOT_PIECE_BYTES + SNAPSHOT_ITEM_BYTES_MAX;

pub fn snapshot_name(record: u64) -> String {
    format!("snapshot-{record:020}.ts")
}

pub fn parse_snapshot_name(name: &str) -> Option<u64> {
    name.strip_prefix("snapshot-")?.strip_suffix(".ts")?.parse().ok()
}

fn frame_checksum(previous: u128, payload: &[u8]) -> u128 {
    chained128(previous, &[payload])
}

fn frame_header(len: usize, checksum: u128) -> [u8; FRAME_HEADER_BYTES] {
    let mut header = Header::<FRAME_HEADER_BYTES>::default();
    header.put(snapshot_frame::PAYLOAD_BYTES, len as u128);
    header.put(snapshot_frame::CHECKSUM, checksum);
    header.0
}

/// The checksum chain a snapshot of `state` with every record in it ends with, to compare a
/// replay with a snapshot (without loading a snapshot that holds every record itself).
pub fn checksum(state: &State) -> u128 {
    let mut chain = 0u128;
    state
        .encode_whole::<std::convert::Infallible>(&mut |piece| {
            chain = frame_checksum(chain, piece);
            Ok(())
        })
        .unwrap_or_else(|never| match never {});
    chain
}

pub fn write<S: Storage>(storage: &mut S, state: &State, position: Position) -> io::Result<()> {
    assert_eq!(state.last_seq(), position.last_seq, "a snapshot must match the record it follows");
    let mut header = Header::<HEADER_BYTES>::default();
    header.put_bytes(frame::snapshot::MAGIC, SNAPSHOT_MAGIC);
    header.put(frame::snapshot::VERSION, SNAPSHOT_FORMAT.into());
    header.put(frame::snapshot::RECORD, position.record.into());
    header.put(frame::snapshot::LAST_SEQ, position.last_seq.into());
    header.put(frame::snapshot::RECORD_CHECKSUM, position.checksum);
    header.put(frame::snapshot::CHECKSUM, header.checksum_before(frame::snapshot::CHECKSUM).into());
    storage.write_atomic(&snapshot_name(position.record), &mut |emit| {
        emit(&header.0)?;
        let mut chain = 0u128;
        state.encode_snapshot(&mut |piece| {
            chain = frame_checksum(chain, piece);
            emit(&frame_header(piece.len(), chain))?;
            emit(piece)
        })?;
        emit(&frame_header(0, chain))
    })?;
    let mut existing: Vec<u64> = storage.list()?.iter().filter_map(|n| parse_snapshot_name(n)).collect();
    existing.sort_unstable();
    let excess = existing.len().saturating_sub(SNAPSHOTS_KEPT);
    for record in &existing[..excess] {
        storage.remove(&snapshot_name(*record))?;
    }
    Ok(())
}

/// A snapshot's header: the journal position it follows and the format of its state.
pub fn read_header<S: Storage>(storage: &S, name: &str) -> Result<(Position, u32), String> {
    let mut header = Header::<HEADER_BYTES>::default();
    storage.read_exact_at(name, 0, &mut header.0).map_err(|e| e.to_string())?;
    let format = header.get_u32(frame::snapshot::VERSION);
    if header.bytes(frame::snapshot::MAGIC) != SNAPSHOT_MAGIC || !(1..=SNAPSHOT_FORMAT).contains(&format) {
        return Err(format!("not a snapshot this build reads (format {format}; it reads 1 to {SNAPSHOT_FORMAT})"));
    }
    if header.get_u64(frame::snapshot::CHECKSUM) != header.checksum_before(frame::snapshot::CHECKSUM) {
        return Err("header checksum mismatch".into());
    }
    let position = Position {
        record: header.get_u64(frame::snapshot::RECORD),
        last_seq: header.get_u64(frame::snapshot::LAST_SEQ),
        checksum: header.get(frame::snapshot::RECORD_CHECKSUM),
    };
    Ok((position, format))
}

/// The record every snapshot follows and the checksum chain a snapshot of the current format
/// holding every record would end with: read from the file without decoding it, or, for a file
/// of an earlier format or one that stands on history segments, by loading it (with the
/// segments) and encoding it whole (so a replay compares with any of them).
pub fn checksums<S: Storage>(storage: &S) -> io::Result<Vec<(u64, u128)>> {
    let mut found = Vec::new();
    for name in storage.list()?.into_iter().filter(|n| parse_snapshot_name(n).is_some()) {
        let len = storage.len(&name)?;
        match read_header(storage, &name) {
            Ok((position, SNAPSHOT_FORMAT))
                if len >= (HEADER_BYTES + FRAME_HEADER_BYTES) as u64 && history_segments(storage, &name) == Some(0) =>
            {
                let mut last = Header::<FRAME_HEADER_BYTES>::default();
                storage.read_exact_at(&name, len - FRAME_HEADER_BYTES as u64, &mut last.0)?;
                found.push((position.record, last.get(snapshot_frame::CHECKSUM)));
            }
            Ok((position, _)) => {
                if let Ok((state, _)) = read(storage, &name) {
                    found.push((position.record, checksum(&state)));
                }
            }
            Err(_) => {}
        }
    }
    Ok(found)
}

/// The newest snapshot that reads back intact, with the journal position it follows.
pub fn load_latest<S: Storage>(storage: &S) -> io::Result<Option<(State, Position)>> {
    let mut candidates: Vec<(u64, String)> =
        storage.list()?.into_iter().filter_map(|name| parse_snapshot_name(&name).map(|record| (record, name))).collect();
    candidates.sort();
    for (_, name) in candidates.into_iter().rev() {
        match read(storage, &name) {
            Ok(loaded) => return Ok(Some(loaded)),
            Err(reason) => tracing::warn!(file = %name, %reason, "passing over a snapshot that does not read back intact"),
        }
    }
    Ok(None)
}

/// A snapshot's frames, read one at a time, each checked against the checksum chain.
struct Frames<'a, S> {
    storage: &'a S,
    name: &'a str,
    len: u64,
    offset: u64,
    chain: u128,
}

impl<'a, S: Storage> Frames<'a, S> {
    fn open(storage: &'a S, name: &'a str) -> Result<Frames<'a, S>, String> {
        let len = storage.len(name).map_err(|e| e.to_string())?;
        Ok(Frames { storage, name, len, offset: HEADER_BYTES as u64, chain: 0 })
    }

    /// The next frame's payload; `None` after the final frame.
    fn next(&mut self) -> Result<Option<Vec<u8>>, DecodeError> {
        let offset = self.offset;
        let corrupt = |what: String| DecodeError(format!("{what} at offset {offset}"));
        let mut header = Header::<FRAME_HEADER_BYTES>::default();
        self.storage.read_exact_at(self.name, offset, &mut header.0).map_err(|e| corrupt(format!("frame header unreadable ({e})")))?;
        let frame_len = header.get_u32(snapshot_frame::PAYLOAD_BYTES) as usize;
        let stored = header.get(snapshot_frame::CHECKSUM);
        if frame_len == 0 {
            if stored != self.chain || offset + FRAME_HEADER_BYTES as u64 != self.len {
                return Err(corrupt("bad final frame".into()));
            }
            return Ok(None);
        }
        if frame_len > FRAME_BYTES_MAX {
            return Err(corrupt(format!("frame of {frame_len} bytes exceeds the limit")));
        }
        let mut payload = vec![0u8; frame_len];
        self.storage
            .read_exact_at(self.name, offset + FRAME_HEADER_BYTES as u64, &mut payload)
            .map_err(|e| corrupt(format!("frame unreadable ({e})")))?;
        self.chain = frame_checksum(self.chain, &payload);
        if self.chain != stored {
            return Err(corrupt("frame checksum mismatch".into()));
        }
        self.offset += (FRAME_HEADER_BYTES + frame_len) as u64;
        Ok(Some(payload))
    }
}

/// One snapshot file, read back whole and checked: the state and the position it follows.
pub fn read<S: Storage>(storage: &S, name: &str) -> Result<(State, Position), String> {
    let (position, format) = read_header(storage, name)?;
    let mut frames = Frames::open(storage, name)?;
    let len = frames.len as usize;
    let state = State::decode_snapshot(format, len, &mut || frames.next(), crate::history::files(storage)).map_err(|e| e.to_string())?;
    if state.last_seq() != position.last_seq {
        return Err("state does not match its header".into());
    }
    Ok((state, position))
}

/// How many history segments a snapshot stands on, from its first frame; `None` if that
/// does not read back.
pub fn history_segments<S: Storage>(storage: &S, name: &str) -> Option<usize> {
    let (_, format) = read_header(storage, name).ok()?;
    let first = Frames::open(storage, name).ok()?.next().ok()??;
    tally_core::snapshot::history_segments(format, &first).ok()
}
