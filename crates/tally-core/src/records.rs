//! Transfer records and their text (id and metadata). The newest stay in memory. With a
//! history attached, older ones are handed off a segment at a time: the store writes the
//! segment's bytes to a file and tells the state, which then drops its copy and reads those
//! records back, when asked, through a bounded page cache.
//!
//! The core never writes a file. The store asks which segment is due (`State::segment_due`),
//! for its bytes (`State::encode_segment`), writes them where it likes, and only then calls
//! `State::handed_off`. Reading back is the one thing the core does through I/O, behind
//! `HistoryRead`. A segment never changes once written, and its bytes depend on the history
//! alone: records are stored as they were created, and how a handed-off hold was resolved is
//! kept in memory (`resolutions`). So a read returns the same whatever the timing, every
//! answer stays deterministic, and a replay of the journal writes every segment byte for byte
//! the same (which `tally verify` checks).
//!
//! Segment layout (all integers little-endian; every part carries its own xxh3 checksum, seeded
//! with the segment number and the part, so a misplaced read is caught like a damaged one):
//!
//! | part | bytes |
//! |---|---|
//! | header | magic `TALLYHIS` (8), format (4), shift (4), segment (4), zero (4), text length (8), checksum (8) |
//! | id hashes | xxh3 of each record's id, 8 bytes each, then a checksum |
//! | record pages | `2^shift / 64` pages of 64 records of 64 bytes, each page then a checksum |
//! | text | the records' ids and metadata back to back, in blocks of 4,096 bytes, each then a checksum |

use crate::chunked::{Span, Strings};
use crate::event::ResultCode;
use crate::state::{HoldState, RecordKind, TransferRecord};
use hashbrown::HashMap;
use std::borrow::Cow;
use std::sync::{Arc, Mutex};

/// Reads back the history files a store wrote. Implemented by the store over its files.
pub trait HistoryRead: Send + Sync {
    /// Fills `buffer` from byte `offset` of `file`.
    fn read_at(&self, file: HistoryFile, offset: u64, buffer: &mut [u8]) -> std::io::Result<()>;
}

/// Where a state reads its history back: the store's reader, and how many segments the id
/// runs the store holds cover (the end of the newest run, from the run files it lists; runs
/// that do not read back are rebuilt from the segments).
#[derive(Clone)]
pub struct HistoryFiles {
    pub reader: Arc<dyn HistoryRead>,
    pub id_runs_end: u32,
}

/// The files of the history: segments of transfer records, and the id runs that index them
/// (`crate::id_runs`). The store names them as it likes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HistoryFile {
    Segment(u32),
    IdRun(crate::id_runs::RunRange),
}

impl std::fmt::Display for HistoryFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HistoryFile::Segment(segment) => write!(f, "history segment {segment}"),
            HistoryFile::IdRun(range) => write!(f, "id run of history segments {} to {}", range.first, range.end),
        }
    }
}

/// `len` bytes of `file` from `offset` and the checksum after them, which must be `sum` of
/// them. A read that fails is tried `READ_ATTEMPTS` times before it counts as damage.
pub(crate) fn read_checked(
    reader: &dyn HistoryRead,
    file: HistoryFile,
    offset: u64,
    len: usize,
    sum: impl Fn(&[u8]) -> u64,
) -> Result<Vec<u8>, String> {
    let mut buffer = vec![0u8; len + SUM_BYTES];
    let mut problem = String::new();
    for _ in 0..READ_ATTEMPTS {
        match reader.read_at(file, offset, &mut buffer) {
            Ok(()) if u64_at(&buffer, len) == sum(&buffer[..len]) => {
                buffer.truncate(len);
                return Ok(buffer);
            }
            Ok(()) => problem = "checksum mismatch".into(),
            Err(error) => problem = error.to_string(),
        }
    }
    Err(format!("{file} cannot be read at offset {offset}: {problem}"))
}

pub const SEGMENT_MAGIC: &[u8; 8] = b"TALLYHIS";
pub const SEGMENT_FORMAT: u32 = 1;
/// Records in a segment, as a power of two: 65,536 records (4 MiB of them, plus their text).
pub const SEGMENT_SHIFT_DEFAULT: u32 = 16;
/// The smallest segment is one page, so a page never spans two segments.
pub const SEGMENT_SHIFT_MIN: u32 = PAGE_RECORDS.trailing_zeros();
/// The largest: record indexes are 32 bits, and a segment's pages are counted in 32 bits too.
pub const SEGMENT_SHIFT_MAX: u32 = 24;
/// Records in a page: what one read brings in.
pub const PAGE_RECORDS: usize = 64;
const RECORD_BYTES: usize = 64;
const PAGE_BYTES: usize = PAGE_RECORDS * RECORD_BYTES;
const HASH_BYTES: usize = 8;
const SUM_BYTES: usize = 8;
pub const TEXT_BLOCK_BYTES: usize = 4_096;
const HEADER_BYTES: usize = 40;
/// A read that fails its checksum is tried again this often before the segment counts as
/// damaged: a flipped bit on the way from the disk is not damage.
const READ_ATTEMPTS: usize = 4;

const _: () = assert!(PAGE_RECORDS.is_power_of_two() && (1 << SEGMENT_SHIFT_MIN) == PAGE_RECORDS);
const _: () = assert!(RECORD_BYTES == std::mem::size_of::<TransferRecord>());

/// Whether a part read back goes through the page cache.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Cache {
    Use,
    /// Parts read once, at start (a segment's header and id hashes).
    Skip,
}

/// The parts of a segment, for checksum seeds and cache keys.
const PART_HEADER: u32 = u32::MAX;
const PART_HASHES: u32 = u32::MAX - 1;
const PART_TEXT: u32 = 1 << 31;

fn part_sum(segment: u32, part: u32, bytes: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64_with_seed(bytes, (u64::from(segment) << 32) | u64::from(part))
}

/// The xxh3 hash of a transfer id: the id index is built from it, and segments keep it so
/// the index is rebuilt at start without reading a single id.
pub(crate) fn id_hash(id: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(id)
}

/// Where each part of a segment of `2^shift` records begins.
#[derive(Clone, Copy)]
struct Layout {
    shift: u32,
}

impl Layout {
    fn records(self) -> usize {
        1 << self.shift
    }
    fn hashes(self) -> u64 {
        HEADER_BYTES as u64
    }
    fn page(self, page: usize) -> u64 {
        self.hashes() + (self.records() * HASH_BYTES + SUM_BYTES) as u64 + (page * (PAGE_BYTES + SUM_BYTES)) as u64
    }
    fn text_block(self, block: usize) -> u64 {
        self.page(self.records() / PAGE_RECORDS) + (block * (TEXT_BLOCK_BYTES + SUM_BYTES)) as u64
    }
}

/// A record as 64 bytes; the hold's state and link as created (`creation_form`).
fn encode_record(out: &mut Vec<u8>, record: &TransferRecord) {
    let start = out.len();
    out.extend_from_slice(&record.amount.to_le_bytes());
    for value in [record.text.0, record.seq, record.timestamp, record.fingerprint] {
        out.extend_from_slice(&value.to_le_bytes());
    }
    for value in [record.debit, record.credit, record.related] {
        out.extend_from_slice(&value.to_le_bytes());
    }
    out.extend_from_slice(&[record.kind as u8, record.result as u8, record.hold_state as u8, 0]);
    debug_assert_eq!(out.len() - start, RECORD_BYTES);
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

fn decode_record(bytes: &[u8]) -> Option<TransferRecord> {
    let u64_at = |at| u64_at(bytes, at);
    let u32_at = |at| u32_at(bytes, at);
    Some(TransferRecord {
        amount: u128::from_le_bytes(bytes[..16].try_into().expect("16 bytes")),
        text: Span(u64_at(16)),
        seq: u64_at(24),
        timestamp: u64_at(32),
        fingerprint: u64_at(40),
        debit: u32_at(48),
        credit: u32_at(52),
        related: u32_at(56),
        kind: RecordKind::from_u8(bytes[60])?,
        result: ResultCode::from_u8(bytes[61])?,
        hold_state: HoldState::from_u8(bytes[62])?,
    })
}

fn is_hold(record: &TransferRecord) -> bool {
    record.kind == RecordKind::Pending && record.result == ResultCode::Created
}

/// A record as it was created: a hold not yet resolved.
fn creation_form(mut record: TransferRecord) -> TransferRecord {
    if is_hold(&record) {
        record.hold_state = HoldState::Pending;
        record.related = crate::state::NONE;
    }
    record
}

/// The most recently read pages, in two generations: a page found in the older one moves to
/// the newer, and when the newer fills the older is dropped. Bounded, and close enough to
/// least-recently-used for pages that are either hot or read once.
#[derive(Default)]
struct PageCache {
    newer: HashMap<u64, Arc<[u8]>>,
    older: HashMap<u64, Arc<[u8]>>,
}

impl PageCache {
    /// Pages in one generation, from `HISTORY_CACHE_BYTES`.
    const GENERATION_PAGES: usize = crate::limits::HISTORY_CACHE_BYTES / 2 / TEXT_BLOCK_BYTES;

    fn get(&mut self, key: u64) -> Option<Arc<[u8]>> {
        if let Some(page) = self.newer.get(&key) {
            return Some(page.clone());
        }
        let page = self.older.remove(&key)?;
        self.insert(key, page.clone());
        Some(page)
    }

    fn insert(&mut self, key: u64, page: Arc<[u8]>) {
        if self.newer.len() >= Self::GENERATION_PAGES {
            self.older = std::mem::take(&mut self.newer);
        }
        self.newer.insert(key, page);
    }

    /// The bytes of the pages held (a few thousand of them at most: for a metrics scrape).
    fn bytes(&self) -> usize {
        self.newer.values().chain(self.older.values()).map(|page| page.len()).sum()
    }
}

struct History {
    reader: Arc<dyn HistoryRead>,
    cache: Mutex<PageCache>,
    /// Each handed-off segment's text length, from its header.
    text_lens: Vec<u64>,
}

/// Transfer records by index, the newest in memory, the rest in handed-off segments.
pub(crate) struct Records {
    /// Chunk `k` holds records `k << shift` up to the next chunk; chunks of handed-off
    /// segments are empty (no allocation).
    chunks: Vec<Vec<TransferRecord>>,
    len: usize,
    shift: u32,
    strings: Strings,
    /// Segments handed off: records below `handed << shift` are read from history.
    handed: usize,
    /// How each resolved hold among the handed-off records was resolved (its state and the
    /// record that resolved it): segments keep records as created.
    resolutions: HashMap<u32, (HoldState, u32)>,
    history: Option<History>,
}

impl Default for Records {
    fn default() -> Records {
        Records {
            chunks: Vec::new(),
            len: 0,
            shift: SEGMENT_SHIFT_DEFAULT,
            strings: Strings::default(),
            handed: 0,
            resolutions: HashMap::new(),
            history: None,
        }
    }
}

/// The id hashes segment `segment` of `2^shift` records keeps, one for each of its records in
/// order, read around the page cache (they are read once, to index them).
pub fn segment_id_hashes(reader: &dyn HistoryRead, shift: u32, segment: u32) -> Result<Vec<u64>, SegmentError> {
    let layout = Layout { shift };
    let sum = |bytes: &[u8]| part_sum(segment, PART_HASHES, bytes);
    let hashes = read_checked(reader, HistoryFile::Segment(segment), layout.hashes(), layout.records() * HASH_BYTES, sum)?;
    Ok(hashes.chunks_exact(HASH_BYTES).map(|hash| u64::from_le_bytes(hash.try_into().expect("8 bytes"))).collect())
}

/// Where a segment of `2^shift` records keeps its id hashes: a replay that writes a segment
/// again compares them with the ones already written (the id index was built from those).
pub fn id_hash_bytes(shift: u32) -> std::ops::Range<usize> {
    HEADER_BYTES..HEADER_BYTES + (HASH_BYTES << shift)
}

/// The size of the segment whose bytes begin with `header` (records as a power of two), if
/// they begin with a segment's header.
pub fn segment_shift(header: &[u8]) -> Option<u32> {
    let shift = u32_at(header.get(..16)?, 12);
    (header.get(..8)? == SEGMENT_MAGIC && (SEGMENT_SHIFT_MIN..=SEGMENT_SHIFT_MAX).contains(&shift)).then_some(shift)
}

/// A record the state stands on cannot be read back: answering without it is not an option,
/// so the ledger stops here, naming the segment. The journal still holds the history:
/// removing the history segments and the snapshots makes the next start rebuild them.
pub(crate) fn unreadable(problem: &str) -> ! {
    panic!("{problem}; the journal holds everything: remove the history files and snapshots to rebuild them")
}

/// A transfer's id and metadata, from memory or read back from its segment.
pub(crate) struct Text<'a> {
    bytes: Cow<'a, [u8]>,
    id_len: usize,
}

impl Text<'_> {
    pub(crate) fn id_bytes(&self) -> &[u8] {
        &self.bytes[..self.id_len]
    }

    pub(crate) fn id(&self) -> &str {
        std::str::from_utf8(self.id_bytes()).expect("ids are validated ASCII")
    }

    /// The metadata, if there is any.
    pub(crate) fn metadata(&self) -> Option<&str> {
        let bytes = &self.bytes[self.id_len..];
        (!bytes.is_empty()).then(|| std::str::from_utf8(bytes).expect("metadata is validated UTF-8"))
    }
}

/// What reading a segment at start found wrong.
pub type SegmentError = String;

impl Records {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_attached(&self) -> bool {
        self.history.is_some()
    }

    pub(crate) fn shift(&self) -> u32 {
        self.shift
    }

    /// Records read from history, not memory: the first `handed_records()`.
    pub(crate) fn handed_records(&self) -> usize {
        self.handed << self.shift
    }

    pub(crate) fn handed_segments(&self) -> usize {
        self.handed
    }

    pub(crate) fn resolutions(&self) -> impl Iterator<Item = (u32, HoldState, u32)> + '_ {
        self.resolutions.iter().map(|(&hold, &(state, by))| (hold, state, by))
    }

    /// Attaches a history to an empty set of records, in segments of `2^shift` records.
    pub(crate) fn attach(&mut self, reader: Arc<dyn HistoryRead>, shift: u32) {
        assert!(self.len == 0 && self.history.is_none(), "a history is attached before any record");
        assert!((SEGMENT_SHIFT_MIN..=SEGMENT_SHIFT_MAX).contains(&shift), "segment shift within its limits");
        self.shift = shift;
        self.history = Some(History { reader, cache: Mutex::new(PageCache::default()), text_lens: Vec::new() });
    }

    /// Takes `segments` segments as already handed off (loading a snapshot that stands on
    /// them), checking each one's header.
    pub(crate) fn adopt_segments(&mut self, segments: usize) -> Result<(), SegmentError> {
        assert!(self.len == 0 && self.history.is_some(), "segments are adopted into empty, attached records");
        for segment in 0..segments {
            let segment = u32::try_from(segment).map_err(|_| "too many segments".to_owned())?;
            let text_len = self.read_header(segment)?;
            self.history.as_mut().expect("attached").text_lens.push(text_len);
            self.chunks.push(Vec::new());
            self.len += 1 << self.shift;
            self.handed += 1;
        }
        Ok(())
    }

    /// The id hashes handed-off segment `segment` keeps (`segment_id_hashes`).
    pub(crate) fn segment_hashes(&self, segment: u32) -> Result<Vec<u64>, SegmentError> {
        assert!((segment as usize) < self.handed, "only handed-off segments are read back");
        segment_id_hashes(self.reader().expect("attached"), self.shift, segment)
    }

    /// The reader of the attached history.
    pub(crate) fn reader(&self) -> Option<&dyn HistoryRead> {
        self.history.as_ref().map(|history| &*history.reader)
    }

    fn read_header(&self, segment: u32) -> Result<u64, SegmentError> {
        let header = self.read_part(segment, PART_HEADER, 0, HEADER_BYTES - SUM_BYTES, Cache::Skip)?;
        let ours = segment_shift(&header) == Some(self.shift) && u32_at(&header, 8) == SEGMENT_FORMAT && u32_at(&header, 16) == segment;
        if !ours {
            return Err(format!("history segment {segment} is not segment {segment} of this ledger's format and size"));
        }
        Ok(u64_at(&header, 24))
    }

    /// A part of a segment, checked against its checksum, through the cache if `cache` says
    /// so (only pages and text blocks, at most `TEXT_BLOCK_BYTES` each, are cached).
    fn read_part(&self, segment: u32, part: u32, offset: u64, len: usize, cache: Cache) -> Result<Arc<[u8]>, SegmentError> {
        let history = self.history.as_ref().expect("only handed-off records are read back");
        let key = (u64::from(segment) << 32) | u64::from(part);
        let cache = cache == Cache::Use;
        assert!(!cache || len <= TEXT_BLOCK_BYTES, "cached parts are at most a page");
        if let Some(page) = cache.then(|| history.cache.lock().expect("page cache lock").get(key)).flatten() {
            return Ok(page);
        }
        let sum = |bytes: &[u8]| part_sum(segment, part, bytes);
        let page: Arc<[u8]> = read_checked(&*history.reader, HistoryFile::Segment(segment), offset, len, sum)?.into();
        if cache {
            history.cache.lock().expect("page cache lock").insert(key, page.clone());
        }
        Ok(page)
    }

    /// A part of a segment the state already stands on, through the cache: failing to read
    /// it leaves the state unable to answer (`unreadable`).
    fn handed_part(&self, segment: u32, part: u32, offset: u64, len: usize) -> Arc<[u8]> {
        self.read_part(segment, part, offset, len, Cache::Use).unwrap_or_else(|problem| unreadable(&problem))
    }

    /// A handed-off record as its segment holds it (with its text span relative to the segment).
    fn read_handed(&self, index: usize) -> Result<TransferRecord, SegmentError> {
        let layout = Layout { shift: self.shift };
        let segment = (index >> self.shift) as u32;
        let slot = index & (layout.records() - 1);
        let page = self.read_part(segment, (slot / PAGE_RECORDS) as u32, layout.page(slot / PAGE_RECORDS), PAGE_BYTES, Cache::Use)?;
        let at = (slot % PAGE_RECORDS) * RECORD_BYTES;
        decode_record(&page[at..at + RECORD_BYTES])
            .ok_or_else(|| format!("history segment {segment} holds a record this build cannot read (record {index})"))
    }

    fn handed_record(&self, index: usize) -> TransferRecord {
        self.read_handed(index).unwrap_or_else(|problem| unreadable(&problem))
    }

    pub(crate) fn get(&self, index: usize) -> TransferRecord {
        self.try_get(index).unwrap_or_else(|problem| unreadable(&problem))
    }

    /// Record `index`, or why its segment could not be read (for a load that can still
    /// refuse a snapshot instead of stopping).
    pub(crate) fn try_get(&self, index: usize) -> Result<TransferRecord, SegmentError> {
        assert!(index < self.len, "record {index} exists");
        if index >= self.handed_records() {
            return Ok(self.chunks[index >> self.shift][index & ((1 << self.shift) - 1)]);
        }
        let mut record = self.read_handed(index)?;
        if let Some(&(state, by)) = self.resolutions.get(&(index as u32)) {
            record.hold_state = state;
            record.related = by;
        }
        Ok(record)
    }

    /// Whether handed-off hold `index` was resolved.
    pub(crate) fn is_resolved(&self, index: u32) -> bool {
        self.resolutions.contains_key(&index)
    }

    /// A record's id and metadata.
    pub(crate) fn text(&self, index: usize) -> Text<'_> {
        if index >= self.handed_records() {
            let span = self.chunks[index >> self.shift][index & ((1 << self.shift) - 1)].text;
            let bytes = self.strings.both(span).expect("spans point into the strings");
            return Text { bytes: Cow::Borrowed(bytes), id_len: span.first_len() };
        }
        let span = self.handed_record(index).text;
        let segment = (index >> self.shift) as u32;
        let layout = Layout { shift: self.shift };
        let text_len = self.history.as_ref().expect("attached").text_lens[segment as usize] as usize;
        let (start, len) = (span.offset(), span.len());
        let mut bytes = Vec::with_capacity(len);
        let mut at = start;
        while at < start + len {
            let block = at / TEXT_BLOCK_BYTES;
            let block_len = (text_len - block * TEXT_BLOCK_BYTES).min(TEXT_BLOCK_BYTES);
            let stored = self.handed_part(segment, PART_TEXT | block as u32, layout.text_block(block), block_len);
            let from = at % TEXT_BLOCK_BYTES;
            let take = (start + len - at).min(block_len - from);
            bytes.extend_from_slice(&stored[from..from + take]);
            at += take;
        }
        Text { bytes: Cow::Owned(bytes), id_len: span.first_len() }
    }

    pub(crate) fn push(&mut self, mut record: TransferRecord, id: &str, metadata: &str) -> u32 {
        record.text = self.strings.push(id, metadata);
        let index = self.len;
        if index == self.chunks.len() << self.shift {
            self.chunks.push(Vec::with_capacity(1 << self.shift));
        }
        self.chunks.last_mut().expect("a chunk with room exists").push(record);
        self.len += 1;
        u32::try_from(index).expect("record indexes fit 32 bits")
    }

    /// Takes back the newest record (a linked chain rolled back); it is never handed off yet.
    pub(crate) fn pop(&mut self) -> TransferRecord {
        assert!(self.len > self.handed_records(), "only records in memory are taken back");
        let last = self.chunks.last_mut().expect("a record to take back");
        let record = last.pop().expect("chunks hold their records");
        if last.is_empty() {
            self.chunks.pop();
        }
        self.len -= 1;
        self.strings.truncate_to(record.text);
        record
    }

    /// Sets how a hold stands: resolved (and by which record), or pending again.
    pub(crate) fn set_hold(&mut self, index: u32, state: HoldState, by: u32) {
        let index_usize = index as usize;
        if index_usize >= self.handed_records() {
            let record = &mut self.chunks[index_usize >> self.shift][index_usize & ((1 << self.shift) - 1)];
            record.hold_state = state;
            record.related = by;
        } else if state == HoldState::Pending {
            self.resolutions.remove(&index);
        } else {
            self.resolutions.insert(index, (state, by));
        }
    }

    /// Restores how a handed-off hold was resolved (loading a snapshot, which checked the
    /// numbers are in range).
    pub(crate) fn restore_resolution(&mut self, index: u32, state: HoldState, by: u32) {
        assert!((index as usize) < self.handed_records() && state != HoldState::Pending);
        self.resolutions.insert(index, (state, by));
    }

    /// The next segment to hand off, once a whole segment more is in memory (the newest whole
    /// segment stays, as the cache of recent records).
    pub(crate) fn segment_due(&self) -> Option<u32> {
        (self.history.is_some() && self.len >= (self.handed + 2) << self.shift).then_some(self.handed as u32)
    }

    /// The bytes of segment `segment` of `2^shift` records, which must all exist: from the
    /// due segment of a running ledger, or from a replay to check a written one against.
    pub(crate) fn encode_segment(&self, segment: u32, shift: u32) -> Vec<u8> {
        let layout = Layout { shift };
        let first = (segment as usize) << shift;
        assert!(first + layout.records() <= self.len, "a segment is encoded from records that exist");
        let mut text = Vec::new();
        let mut hashes = Vec::with_capacity(layout.records() * HASH_BYTES + SUM_BYTES);
        let mut pages = Vec::with_capacity(layout.records() * RECORD_BYTES);
        for index in first..first + layout.records() {
            let (record, both) = (self.get(index), self.text(index));
            hashes.extend_from_slice(&id_hash(both.id_bytes()).to_le_bytes());
            let mut stored = creation_form(record);
            stored.text = Span::new(text.len(), record.text.first_len(), record.text.second_len());
            text.extend_from_slice(&both.bytes);
            encode_record(&mut pages, &stored);
        }
        let mut out = Vec::with_capacity(HEADER_BYTES + hashes.capacity() + pages.len() * 2 + text.len() * 2);
        let mut header = Vec::with_capacity(HEADER_BYTES);
        header.extend_from_slice(SEGMENT_MAGIC);
        for value in [SEGMENT_FORMAT, shift, segment, 0] {
            header.extend_from_slice(&value.to_le_bytes());
        }
        header.extend_from_slice(&(text.len() as u64).to_le_bytes());
        let mut part = |bytes: &[u8], id: u32| {
            out.extend_from_slice(bytes);
            out.extend_from_slice(&part_sum(segment, id, bytes).to_le_bytes());
        };
        part(&header, PART_HEADER);
        part(&hashes, PART_HASHES);
        for (page, bytes) in pages.chunks(PAGE_BYTES).enumerate() {
            part(bytes, page as u32);
        }
        for (block, bytes) in text.chunks(TEXT_BLOCK_BYTES).enumerate() {
            part(bytes, PART_TEXT | block as u32);
        }
        let text_bytes = text.len() + text.len().div_ceil(TEXT_BLOCK_BYTES) * SUM_BYTES;
        debug_assert_eq!(out.len() as u64, layout.text_block(0) + text_bytes as u64);
        out
    }

    /// The store wrote segment `segment` (as `encode_segment` gave it) where the history
    /// reads it: its records leave memory.
    pub(crate) fn handed_off(&mut self, segment: u32) {
        assert_eq!(Some(segment), self.segment_due(), "segments are handed off in order");
        let first = (segment as usize) << self.shift;
        let mut text_len = 0;
        for (slot, record) in self.chunks[segment as usize].iter().enumerate() {
            text_len += record.text.len() as u64;
            if is_hold(record) && record.hold_state != HoldState::Pending {
                self.resolutions.insert((first + slot) as u32, (record.hold_state, record.related));
            }
        }
        self.chunks[segment as usize] = Vec::new();
        self.handed += 1;
        self.history.as_mut().expect("attached").text_lens.push(text_len);
        let first_in_memory = self.chunks[self.handed][0].text;
        self.strings.release_below(first_in_memory);
    }

    /// Bytes held in memory: (records and resolutions, text, cache).
    pub(crate) fn allocated_bytes(&self) -> (usize, usize, usize) {
        let records = self.chunks.iter().map(|chunk| chunk.capacity() * RECORD_BYTES).sum::<usize>()
            + crate::memory::hashed(self.resolutions.capacity(), std::mem::size_of::<(u32, (HoldState, u32))>());
        let cache = self.history.as_ref().map_or(0, |history| history.cache.lock().expect("page cache lock").bytes());
        (records, self.strings.allocated_bytes(), cache)
    }
}
