//! The journal: append-only segment files of checksummed records, each chained to the one
//! before it. The byte layout is in `docs/journal.md`; `tests/it/format.rs` fails if it or
//! the checksum function ever changes.
//!
//! Recovery distinguishes a torn tail from corruption. A record that was being written when
//! the process died was never acknowledged (acknowledgement waits for fsync), so a damaged
//! final record that runs to the end of the last segment is cut off. A damaged record with
//! data after it cannot be explained by a crash: recovery stops and names the file and
//! offset, and never skips data.

use crate::storage::Storage;
use std::fmt;
use std::io;
use tally_ledger::frame::{chained128, record, segment, Field, Header};

pub const SEGMENT_MAGIC: &[u8; 8] = b"TALLYJNL";
pub const FORMAT_VERSION: u32 = 1;
pub const SEGMENT_HEADER_BYTES: usize = segment::BYTES;
pub const RECORD_HEADER_BYTES: usize = record::BYTES;

pub use tally_core::limits::{RECORD_PAYLOAD_BYTES_MAX, SEGMENT_BYTES_TARGET};

pub fn segment_name(first_record: u64) -> String {
    format!("journal-{first_record:020}.tj")
}

pub fn parse_segment_name(name: &str) -> Option<u64> {
    name.strip_prefix("journal-")?.strip_suffix(".tj")?.parse().ok()
}

/// The checksum of a record: xxh3-128 over the previous record's checksum, the rest of this
/// record's header, and its payload.
pub fn record_checksum(previous: u128, header_tail: &[u8], payload: &[u8]) -> u128 {
    chained128(previous, &[header_tail, payload])
}

pub fn encode_segment_header(first_record: u64, chain_seed: u128) -> [u8; SEGMENT_HEADER_BYTES] {
    let mut header = Header::<SEGMENT_HEADER_BYTES>::default();
    header.put_bytes(segment::MAGIC, SEGMENT_MAGIC);
    header.put(segment::VERSION, FORMAT_VERSION.into());
    header.put(segment::HEADER_BYTES, SEGMENT_HEADER_BYTES as u128);
    header.put(segment::FIRST_RECORD, first_record.into());
    header.put(segment::CHAIN_SEED, chain_seed);
    header.put(segment::CHECKSUM, header.checksum_before(segment::CHECKSUM).into());
    header.0
}

/// Frames a payload: returns the header and the record's checksum.
pub fn encode_record_header(previous: u128, record: u64, last_seq: u64, payload: &[u8]) -> ([u8; RECORD_HEADER_BYTES], u128) {
    assert!(payload.len() <= RECORD_PAYLOAD_BYTES_MAX, "the writer bounds record payloads");
    let mut header = Header::<RECORD_HEADER_BYTES>::default();
    header.put(record::PAYLOAD_BYTES, payload.len() as u128);
    header.put(record::RECORD, record.into());
    header.put(record::LAST_SEQ, last_seq.into());
    let checksum = record_checksum(previous, &header.0[record::CHECKSUM.end()..], payload);
    header.put(record::CHECKSUM, checksum);
    (header.0, checksum)
}

#[derive(Debug)]
pub enum JournalError {
    Io { file: String, source: io::Error },
    Corrupt { file: String, offset: u64, reason: String },
}

impl fmt::Display for JournalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JournalError::Io { file, source } => write!(f, "I/O error on {file}: {source}"),
            JournalError::Corrupt { file, offset, reason } => {
                write!(f, "journal corrupt in {file} at offset {offset}: {reason}; refusing to start (no data is skipped)")
            }
        }
    }
}

impl std::error::Error for JournalError {}

fn io_error(file: &str) -> impl FnOnce(io::Error) -> JournalError + '_ {
    move |source| JournalError::Io { file: file.to_owned(), source }
}

/// Where recovery should begin: after `record`, whose checksum is `checksum` (both 0 for
/// a journal replayed from its start).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Position {
    pub record: u64,
    pub checksum: u128,
    pub last_seq: u64,
}

/// A record read back during recovery.
pub struct RecordRead<'a> {
    pub record: u64,
    pub last_seq: u64,
    pub checksum: u128,
    pub payload: &'a [u8],
    pub file: &'a str,
    /// Where the record begins and ends in its segment.
    pub offset: u64,
    pub end: u64,
}

/// The end of the journal after a commit: its last record, and the segment that holds it
/// with the length it has up to that record's end. Everything before is durable and final,
/// so a backup copies up to here while the writer appends after it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tip {
    pub position: Position,
    pub segment: String,
    pub segment_len: u64,
}

/// Reads of a damaged record before recovery judges it. A torn tail (the common case after a
/// crash) fails every read, so the cost is a few reads of one record; a transient read fault
/// that hits the last record every time would instead cut an acknowledged record. With a
/// fault on one read in a hundred, three reads let that happen once in a million judgments,
/// which the simulation met within a few hundred seeds; eight make it once in 10^16.
const READ_ATTEMPTS: usize = 8;

/// Why a record could not be taken as it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Damage {
    IncompleteHeader,
    PastEnd,
    /// Whole, but the checksum does not match; `end` is where it would end.
    ChecksumMismatch {
        end: u64,
    },
}

impl Damage {
    /// Whether the damage reaches the end of the file, as a write cut short would.
    fn reaches(self, file_len: u64) -> bool {
        match self {
            Damage::IncompleteHeader | Damage::PastEnd => true,
            Damage::ChecksumMismatch { end } => end == file_len,
        }
    }
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Damage::IncompleteHeader => "incomplete record header",
            Damage::PastEnd => "record runs past the end of the file",
            Damage::ChecksumMismatch { .. } => "checksum mismatch",
        })
    }
}

/// Reads the record at `offset` into `header` and `payload`. `Ok(Ok(end))` when it is whole
/// and its checksum matches; `Ok(Err(damage))` when it is incomplete or damaged.
fn read_record<S: Storage>(
    storage: &S,
    name: &str,
    offset: u64,
    file_len: u64,
    previous: u128,
    header: &mut [u8; RECORD_HEADER_BYTES],
    payload: &mut Vec<u8>,
) -> Result<Result<u64, Damage>, JournalError> {
    payload.clear();
    if file_len - offset < RECORD_HEADER_BYTES as u64 {
        return Ok(Err(Damage::IncompleteHeader));
    }
    storage.read_exact_at(name, offset, header).map_err(io_error(name))?;
    let header = Header(*header);
    let payload_len = u64::from(header.get_u32(record::PAYLOAD_BYTES));
    let end = offset + RECORD_HEADER_BYTES as u64 + payload_len;
    if payload_len > RECORD_PAYLOAD_BYTES_MAX as u64 || end > file_len {
        return Ok(Err(Damage::PastEnd));
    }
    payload.resize(payload_len as usize, 0);
    storage.read_exact_at(name, offset + RECORD_HEADER_BYTES as u64, payload).map_err(io_error(name))?;
    if header.get(record::CHECKSUM) != record_checksum(previous, &header.0[record::CHECKSUM.end()..], payload) {
        return Ok(Err(Damage::ChecksumMismatch { end }));
    }
    Ok(Ok(end))
}

/// A segment's header, checked against its file name; returns the chain seed it continues.
fn read_segment_header<S: Storage>(storage: &S, name: &str, first_record: u64) -> Result<u128, JournalError> {
    let corrupt = |field: Field, reason: String| JournalError::Corrupt { file: name.to_owned(), offset: field.offset as u64, reason };
    let mut header = Header::<SEGMENT_HEADER_BYTES>::default();
    storage.read_exact_at(name, 0, &mut header.0).map_err(io_error(name))?;
    if header.bytes(segment::MAGIC) != SEGMENT_MAGIC || header.get_u64(segment::CHECKSUM) != header.checksum_before(segment::CHECKSUM) {
        return Err(corrupt(segment::MAGIC, "bad segment header".into()));
    }
    let version = header.get_u32(segment::VERSION);
    if version != FORMAT_VERSION {
        return Err(corrupt(segment::VERSION, format!("format version {version}, this build reads {FORMAT_VERSION}")));
    }
    let header_first = header.get_u64(segment::FIRST_RECORD);
    if header_first != first_record {
        return Err(corrupt(segment::FIRST_RECORD, format!("header says first record {header_first}, file name says {first_record}")));
    }
    Ok(header.get(segment::CHAIN_SEED))
}

/// The segment being read during recovery.
struct Segment<'a> {
    name: &'a str,
    file_len: u64,
    is_last: bool,
}

/// Where recovery stands: the last record read, and whether the record a snapshot was taken
/// after has been seen (and matched).
struct Recovering {
    position: Position,
    start: Position,
    verified_start: bool,
    payload: Vec<u8>,
}

impl Recovering {
    /// Checks that a segment continues the chain: the first one read may begin anywhere up to
    /// the starting position; every later one must follow the record before it.
    fn continue_chain(&mut self, first: bool, first_record: u64, seed: u128, name: &str) -> Result<(), JournalError> {
        let corrupt = |reason: String| JournalError::Corrupt { file: name.to_owned(), offset: 0, reason };
        if first {
            let before = first_record.checked_sub(1).ok_or_else(|| corrupt("segments are numbered from record 1".into()))?;
            self.position = Position { record: before, checksum: seed, last_seq: self.position.last_seq };
            if before > self.start.record {
                return Err(corrupt(format!("records {} to {before} are missing", self.start.record + 1)));
            }
        } else if first_record != self.position.record + 1 || seed != self.position.checksum {
            return Err(corrupt(format!("segment does not continue record {}", self.position.record)));
        }
        Ok(())
    }

    /// Reads a segment's records in order, handing those after the start to `apply`; returns
    /// the offset where intact records end (a torn tail, if any, begins there).
    fn records<S: Storage, E: From<JournalError>>(
        &mut self,
        storage: &S,
        segment: &Segment<'_>,
        apply: &mut impl FnMut(RecordRead<'_>) -> Result<(), E>,
        mut on_progress: impl FnMut(u64),
    ) -> Result<u64, E> {
        let name = segment.name;
        let mut offset = SEGMENT_HEADER_BYTES as u64;
        while offset < segment.file_len {
            let Some((end, header)) = self.judged_read(storage, segment, offset)? else { break };
            let stored = header.get(record::CHECKSUM);
            let record = header.get_u64(record::RECORD);
            let last_seq = header.get_u64(record::LAST_SEQ);
            let corrupt = |reason: String| JournalError::Corrupt { file: name.to_owned(), offset, reason };
            // Every record holds at least one event: seqs strictly increase.
            if record != self.position.record + 1 || last_seq <= self.position.last_seq {
                return Err(corrupt(format!("record {record} follows record {}", self.position.record)).into());
            }
            self.position = Position { record, checksum: stored, last_seq };
            if record == self.start.record {
                if stored != self.start.checksum {
                    return Err(corrupt("record does not match the snapshot taken after it".into()).into());
                }
                self.verified_start = true;
            }
            if record > self.start.record {
                apply(RecordRead { record, last_seq, checksum: stored, payload: &self.payload, file: name, offset, end })?;
            }
            offset = end;
            on_progress(offset);
        }
        Ok(offset)
    }

    /// Reads the record at `offset`: its end and header when intact, `None` for a torn tail.
    /// A damaged record is read again before it is judged, so a fault on the read path is
    /// never mistaken for damage on disk (and never cut off as a torn tail); it is cut as torn
    /// only in the last segment, and only if every read agrees the damage runs to the end of
    /// the file.
    fn judged_read<S: Storage>(
        &mut self,
        storage: &S,
        segment: &Segment<'_>,
        offset: u64,
    ) -> Result<Option<(u64, Header<RECORD_HEADER_BYTES>)>, JournalError> {
        let mut header = [0u8; RECORD_HEADER_BYTES];
        let mut verdict = Err(Damage::IncompleteHeader);
        let mut reaches_end_every_time = true;
        for _ in 0..READ_ATTEMPTS {
            verdict = read_record(storage, segment.name, offset, segment.file_len, self.position.checksum, &mut header, &mut self.payload)?;
            match verdict {
                Ok(_) => break,
                Err(damage) => reaches_end_every_time &= damage.reaches(segment.file_len),
            }
        }
        match verdict {
            Ok(end) => Ok(Some((end, Header(header)))),
            Err(_) if segment.is_last && reaches_end_every_time => Ok(None),
            Err(damage) => {
                let place = if segment.is_last { "" } else { " in a segment that is not the last" };
                Err(JournalError::Corrupt { file: segment.name.to_owned(), offset, reason: format!("{damage}{place}") })
            }
        }
    }
}

/// Whether the record at `offset` in segment `name` (or, at offset 0, the segment itself)
/// continues the chain from a record whose checksum is `previous`: the test that a journal
/// goes on from where a copy of it ends, and is not another journal.
pub fn continues<S: Storage>(storage: &S, name: &str, offset: u64, previous: u128) -> Result<bool, JournalError> {
    let file_len = storage.len(name).map_err(io_error(name))?;
    if offset == 0 {
        let first_record = parse_segment_name(name).unwrap_or_default();
        return Ok(read_segment_header(storage, name, first_record)? == previous);
    }
    let (mut header, mut payload) = ([0u8; RECORD_HEADER_BYTES], Vec::new());
    Ok(read_record(storage, name, offset, file_len, previous, &mut header, &mut payload)?.is_ok())
}

pub struct Journal {
    segment: String,
    segment_len: u64,
    position: Position,
    torn_bytes: u64,
}

impl Journal {
    /// Reads every record after `start` in order, handing each to `apply`, and returns a
    /// journal ready to append. With `repair`, a torn tail is cut off; without it (for
    /// offline checks of a live directory) it is only measured, in `torn_bytes`.
    /// `on_progress` hears bytes read so far and in all, for progress bars.
    pub fn recover<S: Storage, E: From<JournalError>>(
        storage: &mut S,
        start: Position,
        repair: bool,
        mut apply: impl FnMut(RecordRead<'_>) -> Result<(), E>,
        mut on_progress: impl FnMut(u64, u64),
    ) -> Result<Journal, E> {
        let mut segments: Vec<(u64, String)> = storage
            .list()
            .map_err(io_error("data directory"))?
            .into_iter()
            .filter_map(|name| parse_segment_name(&name).map(|first| (first, name)))
            .collect();
        segments.sort();
        // Skip segments wholly covered by the starting position: those whose successor starts
        // at or before the first record we need.
        let first_needed = segments.iter().rposition(|(first, _)| *first <= start.record.max(1)).unwrap_or(0);
        let segments = &segments[first_needed..];
        let total_bytes: u64 = segments.iter().map(|(_, name)| storage.len(name).unwrap_or(0)).sum();
        let mut read_bytes = 0u64;
        let position = if segments.is_empty() { start } else { Position::default() };
        let mut recovering = Recovering { position, start, verified_start: start.record == 0, payload: Vec::new() };
        let (mut last_segment, mut torn_bytes): (Option<(String, u64)>, u64) = (None, 0);
        for (index, (first_record, name)) in segments.iter().enumerate() {
            let is_last = index + 1 == segments.len();
            let file_len = storage.len(name).map_err(io_error(name))?;
            if file_len < SEGMENT_HEADER_BYTES as u64 {
                if is_last {
                    // The segment was being created when the process stopped: it holds no records.
                    torn_bytes += file_len;
                    if repair {
                        storage.remove(name).map_err(io_error(name))?;
                    }
                    break;
                }
                return Err(JournalError::Corrupt { file: name.clone(), offset: 0, reason: "segment header is incomplete".into() }.into());
            }
            let seed = read_segment_header(storage, name, *first_record)?;
            recovering.continue_chain(index == 0, *first_record, seed, name)?;
            let segment = Segment { name, file_len, is_last };
            let offset = recovering.records(storage, &segment, &mut apply, |offset| on_progress(read_bytes + offset, total_bytes))?;
            if offset < file_len {
                torn_bytes += file_len - offset;
                if repair {
                    tracing::warn!(file = %name, offset, cut = file_len - offset, "truncating a torn final record that was never acknowledged");
                    storage.truncate(name, offset).map_err(io_error(name))?;
                }
            }
            read_bytes += file_len;
            last_segment = Some((name.clone(), offset));
        }
        let position = recovering.position;
        if !recovering.verified_start && position.record < start.record {
            return Err(JournalError::Corrupt {
                file: last_segment.map(|(name, _)| name).unwrap_or_else(|| "data directory".into()),
                offset: 0,
                reason: format!("the journal ends at record {} but the snapshot covers record {}", position.record, start.record),
            }
            .into());
        }
        let (segment, segment_len) = last_segment.unwrap_or_else(|| (String::new(), 0));
        Ok(Journal { segment, segment_len, position, torn_bytes })
    }

    /// Bytes of a torn tail found by `recover` (cut off if it repaired).
    pub fn torn_bytes(&self) -> u64 {
        self.torn_bytes
    }

    pub fn position(&self) -> Position {
        self.position
    }

    pub fn tip(&self) -> Tip {
        Tip { position: self.position, segment: self.segment.clone(), segment_len: self.segment_len }
    }

    /// Appends one record (not yet durable: call `sync`). Opens a new segment when the
    /// current one is full.
    pub fn append<S: Storage>(&mut self, storage: &mut S, last_seq: u64, payload: &[u8]) -> io::Result<()> {
        // A record holds at least one event, so seqs strictly increase from record to record.
        // (That its payload decodes is checked where it is built, `tally_core::batch`.)
        assert!(last_seq > self.position.last_seq, "record seqs strictly increase");
        let record = self.position.record + 1;
        if self.segment.is_empty() || self.segment_len >= SEGMENT_BYTES_TARGET {
            if !self.segment.is_empty() {
                storage.sync(&self.segment)?;
            }
            self.segment = segment_name(record);
            storage.append(&self.segment, &encode_segment_header(record, self.position.checksum))?;
            self.segment_len = SEGMENT_HEADER_BYTES as u64;
        }
        let (header, checksum) = encode_record_header(self.position.checksum, record, last_seq, payload);
        storage.append(&self.segment, &header)?;
        storage.append(&self.segment, payload)?;
        self.segment_len += (header.len() + payload.len()) as u64;
        self.position = Position { record, checksum, last_seq };
        Ok(())
    }

    pub fn sync<S: Storage>(&mut self, storage: &mut S) -> io::Result<()> {
        if self.segment.is_empty() {
            return Ok(());
        }
        storage.sync(&self.segment)
    }
}
