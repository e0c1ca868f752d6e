//! The id index of handed-off transfers: sorted runs on disk, each with a compact summary in
//! memory that answers "may this id be here, and where?" without reading the disk.
//!
//! Every transfer id is decided once, forever, so each new transfer asks whether its id was
//! seen before. Ids of the records still in memory are in a hash table (`State`). Once a
//! history segment is handed off, its ids move to a *run*: the segment's (id hash, record)
//! pairs sorted by hash, in a file of their own. Runs are merged as in a levelled LSM tree
//! with a fan-out of four: after segment `n - 1` is indexed, the runs cover segments `[0, n)`
//! as `plan(n)` says, one run per base-4 digit of `n` (so at most three per level, and about
//! `3 log4(n)` in all: 11 at 100 million transfers). Each hand-off writes one run, merging the
//! small runs it completes; the bytes of every run depend on the history alone, so a replay
//! writes the same ones.
//!
//! A run's summary keeps, for each entry in hash order, 16 bits of its hash (the *fingerprint*:
//! the bits after the bucket bits), and where each bucket of 16 to 31 entries begins: 17 to 18
//! bits an entry. A lookup reads the bucket's fingerprints, and only an entry whose fingerprint
//! matches is read from disk (one page): an id not in the run matches one time in 2,048 to
//! 4,096. The summary also gives the entry's rank, so no fence pointers are needed. In front of
//! all the runs, one filter (`IdFilter`) answers for most new ids without a look into any.
//!
//! Run layout (integers little-endian; every part followed by its xxh3 checksum, seeded with
//! the run's range and the part):
//!
//! | part | bytes |
//! |---|---|
//! | header | magic `TALLYIDS` (8), format (4), segment shift (4), first segment (4), end segment (4), entries (8), bucket bits (4), zero (4) |
//! | entry pages | pages of 340 entries: id hash (8), record index (4); the last page may be short |
//! | summary | each entry's fingerprint (2), then where each bucket begins (4 each, one more than the buckets) |

use crate::records::{read_checked, HistoryFile, HistoryRead};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;

pub const RUN_MAGIC: &[u8; 8] = b"TALLYIDS";
pub const RUN_FORMAT: u32 = 1;
/// Runs merge when four of one size are complete.
const FAN_OUT: u64 = 4;
const HEADER_BYTES: usize = 40;
const SUM_BYTES: usize = 8;
const ENTRY_BYTES: usize = 12;
/// Entries in a page: what one read for a matching fingerprint brings in.
const PAGE_ENTRIES: usize = 340;
const PAGE_BYTES: usize = PAGE_ENTRIES * ENTRY_BYTES;
/// Entries a bucket of the summary holds on average.
const BUCKET_ENTRIES: u64 = 16;
/// The parts of a run, for checksum seeds; pages are numbered from zero.
const PART_HEADER: u64 = u64::MAX;
const PART_SUMMARY: u64 = u64::MAX - 1;

const _: () = assert!(PAGE_BYTES + SUM_BYTES <= 4_096, "a page and its checksum are one read of at most 4 KiB");

/// The segment shift of the run whose bytes begin with `header`, if they begin with a run's
/// header.
pub fn run_shift(header: &[u8]) -> Option<u32> {
    let shift = u32::from_le_bytes(header.get(12..16)?.try_into().ok()?);
    let shifts = crate::records::SEGMENT_SHIFT_MIN..=crate::records::SEGMENT_SHIFT_MAX;
    (header.get(..8)? == RUN_MAGIC && shifts.contains(&shift)).then_some(shift)
}

/// History segments `[first, end)`, which one run indexes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RunRange {
    pub first: u32,
    pub end: u32,
}

impl RunRange {
    fn segments(self) -> u64 {
        u64::from(self.end - self.first)
    }
}

/// The runs that index segments `[0, segments)`: for each base-4 digit of `segments`, from
/// the most significant, that many runs of that digit's size, in order.
pub fn plan(segments: u32) -> Vec<RunRange> {
    let mut runs = Vec::new();
    let mut size = 1u64;
    while size * FAN_OUT <= u64::from(segments) {
        size *= FAN_OUT;
    }
    let mut first = 0u64;
    while size > 0 {
        while first + size <= u64::from(segments) {
            runs.push(RunRange { first: first as u32, end: (first + size) as u32 });
            first += size;
        }
        size /= FAN_OUT;
    }
    runs
}

/// The run that indexing segment `segment` completes: the largest run of `plan(segment + 1)`
/// ending there. It replaces the runs of `plan(segment)` inside it.
pub fn completed_by(segment: u32) -> RunRange {
    let end = u64::from(segment) + 1;
    let mut size = 1u64;
    while end % (size * FAN_OUT) == 0 {
        size *= FAN_OUT;
    }
    RunRange { first: (end - size) as u32, end: end as u32 }
}

fn part_sum(range: RunRange, part: u64, bytes: &[u8]) -> u64 {
    let mut seed = [0u8; 16];
    seed[..4].copy_from_slice(&range.first.to_le_bytes());
    seed[4..8].copy_from_slice(&range.end.to_le_bytes());
    seed[8..].copy_from_slice(&part.to_le_bytes());
    xxhash_rust::xxh3::xxh3_64_with_seed(bytes, xxhash_rust::xxh3::xxh3_64(&seed))
}

/// Bucket bits for a run of `entries`: about `BUCKET_ENTRIES` entries a bucket.
fn bucket_bits(entries: u64) -> u32 {
    (entries / BUCKET_ENTRIES).max(1).ilog2()
}

fn bucket_of(hash: u64, bits: u32) -> usize {
    hash.checked_shr(64 - bits).unwrap_or(0) as usize
}

fn fingerprint_of(hash: u64, bits: u32) -> u16 {
    ((hash << bits) >> 48) as u16
}

fn pages(entries: u64) -> u64 {
    entries.div_ceil(PAGE_ENTRIES as u64)
}

fn page_offset(page: u64) -> u64 {
    (HEADER_BYTES + SUM_BYTES) as u64 + page * (PAGE_BYTES + SUM_BYTES) as u64
}

fn summary_offset(entries: u64) -> u64 {
    let last = (entries % PAGE_ENTRIES as u64) as usize;
    let short = if last == 0 { 0 } else { PAGE_BYTES - last * ENTRY_BYTES };
    page_offset(pages(entries)) - short as u64
}

/// What memory keeps of one run.
pub struct IdRun {
    range: RunRange,
    entries: u64,
    bucket_bits: u32,
    fingerprints: Box<[u16]>,
    /// Where each bucket begins in `fingerprints`, and its end.
    buckets: Box<[u32]>,
}

impl IdRun {
    pub fn range(&self) -> RunRange {
        self.range
    }

    /// The bytes the summary holds in memory.
    pub fn bytes(&self) -> usize {
        self.fingerprints.len() * 2 + self.buckets.len() * 4
    }

    /// The records this run indexes under `hash`, read from its file (only entries whose
    /// fingerprint matches are read).
    pub fn find(&self, hash: u64, reader: &dyn HistoryRead) -> Result<Vec<u32>, String> {
        let bucket = bucket_of(hash, self.bucket_bits);
        let (start, end) = (self.buckets[bucket] as usize, self.buckets[bucket + 1] as usize);
        let fingerprint = fingerprint_of(hash, self.bucket_bits);
        let in_bucket = &self.fingerprints[start..end];
        let from = start + in_bucket.partition_point(|&f| f < fingerprint);
        let to = start + in_bucket.partition_point(|&f| f <= fingerprint);
        let mut found = Vec::new();
        let mut page: Option<(u64, Vec<u8>)> = None;
        for rank in from as u64..to as u64 {
            let number = rank / PAGE_ENTRIES as u64;
            if page.as_ref().is_none_or(|(held, _)| *held != number) {
                page = Some((number, read_page(reader, self.range, self.entries, number)?));
            }
            let bytes = &page.as_ref().expect("read above").1;
            let at = (rank % PAGE_ENTRIES as u64) as usize * ENTRY_BYTES;
            let (entry_hash, record) = decode_entry(&bytes[at..at + ENTRY_BYTES]);
            if entry_hash == hash {
                found.push(record);
            }
        }
        Ok(found)
    }
}

/// Entry page `page` of run `range`, which holds `entries`, checked against its checksum.
fn read_page(reader: &dyn HistoryRead, range: RunRange, entries: u64, page: u64) -> Result<Vec<u8>, String> {
    let len = ((entries - page * PAGE_ENTRIES as u64).min(PAGE_ENTRIES as u64)) as usize * ENTRY_BYTES;
    read_checked(reader, HistoryFile::IdRun(range), page_offset(page), len, |bytes| part_sum(range, page, bytes))
}

fn decode_entry(bytes: &[u8]) -> (u64, u32) {
    (u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")), u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes")))
}

fn header(range: RunRange, shift: u32, entries: u64) -> Vec<u8> {
    let mut header = Vec::with_capacity(HEADER_BYTES);
    header.extend_from_slice(RUN_MAGIC);
    for value in [RUN_FORMAT, shift, range.first, range.end] {
        header.extend_from_slice(&value.to_le_bytes());
    }
    header.extend_from_slice(&entries.to_le_bytes());
    header.extend_from_slice(&bucket_bits(entries).to_le_bytes());
    header.extend_from_slice(&0u32.to_le_bytes());
    debug_assert_eq!(header.len(), HEADER_BYTES);
    header
}

/// Writes run `range` of segments of `2^shift` records through `emit`, from its entries in
/// (hash, record) order, and returns its summary. `next` yields the entries.
pub fn write(
    range: RunRange,
    shift: u32,
    next: &mut dyn FnMut() -> io::Result<Option<(u64, u32)>>,
    emit: &mut dyn FnMut(&[u8]) -> io::Result<()>,
) -> io::Result<IdRun> {
    let entries = range.segments() << shift;
    let bits = bucket_bits(entries);
    let mut part = |bytes: &[u8], part: u64| -> io::Result<()> {
        emit(bytes)?;
        emit(&part_sum(range, part, bytes).to_le_bytes())
    };
    part(&header(range, shift, entries), PART_HEADER)?;
    let mut fingerprints = Vec::with_capacity(entries as usize);
    let mut buckets = Vec::with_capacity((1 << bits) + 1);
    let mut page = Vec::with_capacity(PAGE_BYTES);
    let mut last = None;
    let first_record = u64::from(range.first) << shift;
    for rank in 0..entries {
        let entry = next()?.ok_or_else(|| io::Error::other(format!("id run {range:?} is missing entries")))?;
        let (hash, record) = entry;
        let in_range = (first_record..first_record + entries).contains(&u64::from(record));
        if !in_range || last.is_some_and(|last| last >= entry) {
            return Err(io::Error::other(format!("id run {range:?} given entry {entry:?} out of order or range")));
        }
        last = Some(entry);
        let bucket = bucket_of(hash, bits);
        while buckets.len() <= bucket {
            buckets.push(rank as u32);
        }
        fingerprints.push(fingerprint_of(hash, bits));
        page.extend_from_slice(&hash.to_le_bytes());
        page.extend_from_slice(&record.to_le_bytes());
        if page.len() == PAGE_BYTES || rank + 1 == entries {
            part(&page, rank / PAGE_ENTRIES as u64)?;
            page.clear();
        }
    }
    if next()?.is_some() {
        return Err(io::Error::other(format!("id run {range:?} given more entries than its segments hold")));
    }
    while buckets.len() <= 1 << bits {
        buckets.push(entries as u32);
    }
    let mut summary = Vec::with_capacity(fingerprints.len() * 2 + buckets.len() * 4);
    summary.extend(fingerprints.iter().flat_map(|f| f.to_le_bytes()));
    summary.extend(buckets.iter().flat_map(|b| b.to_le_bytes()));
    part(&summary, PART_SUMMARY)?;
    Ok(IdRun { range, entries, bucket_bits: bits, fingerprints: fingerprints.into(), buckets: buckets.into() })
}

/// The entries of one segment (its records' id hashes in order), sorted as a run wants them.
pub fn segment_entries(segment: u32, shift: u32, hashes: &[u64]) -> Vec<(u64, u32)> {
    let first = segment << shift;
    let mut entries: Vec<(u64, u32)> = hashes.iter().enumerate().map(|(slot, &hash)| (hash, first + slot as u32)).collect();
    entries.sort_unstable();
    entries
}

/// Reads a run's entries in order, a page at a time.
struct Cursor<'a> {
    reader: &'a dyn HistoryRead,
    range: RunRange,
    entries: u64,
    next: u64,
    page: Vec<u8>,
}

impl<'a> Cursor<'a> {
    /// Checks run `range`'s header and reads its entries from the first.
    fn open(range: RunRange, shift: u32, reader: &'a dyn HistoryRead) -> Result<Cursor<'a>, String> {
        let entries = read_header(range, shift, reader)?;
        Ok(Cursor { reader, range, entries, next: 0, page: Vec::new() })
    }

    fn next(&mut self) -> Result<Option<(u64, u32)>, String> {
        if self.next == self.entries {
            return Ok(None);
        }
        let at = (self.next % PAGE_ENTRIES as u64) as usize * ENTRY_BYTES;
        if at == 0 {
            self.page = read_page(self.reader, self.range, self.entries, self.next / PAGE_ENTRIES as u64)?;
        }
        self.next += 1;
        Ok(Some(decode_entry(&self.page[at..at + ENTRY_BYTES])))
    }
}

/// Checks run `range`'s header (of segments of `2^shift` records) and returns its entries.
fn read_header(range: RunRange, shift: u32, reader: &dyn HistoryRead) -> Result<u64, String> {
    let bytes = read_checked(reader, HistoryFile::IdRun(range), 0, HEADER_BYTES, |b| part_sum(range, PART_HEADER, b))?;
    let entries = range.segments() << shift;
    if bytes != header(range, shift, entries) {
        return Err(format!("{} is not a run of this ledger's format and segment size", HistoryFile::IdRun(range)));
    }
    Ok(entries)
}

/// Writes the run `completed_by(segment)` from the runs of `plan(segment)` inside it and the
/// entries of segment `segment` itself, merged in order; returns its summary.
pub fn merge(
    segment: u32,
    shift: u32,
    segment_entries: Vec<(u64, u32)>,
    reader: &dyn HistoryRead,
    emit: &mut dyn FnMut(&[u8]) -> io::Result<()>,
) -> io::Result<IdRun> {
    let range = completed_by(segment);
    let inputs: Vec<RunRange> = plan(segment).into_iter().filter(|run| run.first >= range.first).collect();
    let mut cursors = Vec::with_capacity(inputs.len());
    for input in inputs {
        cursors.push(Cursor::open(input, shift, reader).map_err(io::Error::other)?);
    }
    let mut own = segment_entries.into_iter();
    let mut heap = BinaryHeap::with_capacity(cursors.len() + 1);
    let own_source = cursors.len();
    if let Some(entry) = own.next() {
        heap.push(Reverse((entry, own_source)));
    }
    for (source, cursor) in cursors.iter_mut().enumerate() {
        if let Some(entry) = cursor.next().map_err(io::Error::other)? {
            heap.push(Reverse((entry, source)));
        }
    }
    let mut next = || -> io::Result<Option<(u64, u32)>> {
        let Some(Reverse((entry, source))) = heap.pop() else { return Ok(None) };
        let following = if source == own_source { own.next() } else { cursors[source].next().map_err(io::Error::other)? };
        if let Some(following) = following {
            heap.push(Reverse((following, source)));
        }
        Ok(Some(entry))
    };
    write(range, shift, &mut next, emit)
}

/// Reads run `range`'s summary back (at a start).
pub fn load(range: RunRange, shift: u32, reader: &dyn HistoryRead) -> Result<IdRun, String> {
    let entries = read_header(range, shift, reader)?;
    let bits = bucket_bits(entries);
    let buckets = (1usize << bits) + 1;
    let len = entries as usize * 2 + buckets * 4;
    let summary = read_checked(reader, HistoryFile::IdRun(range), summary_offset(entries), len, |b| part_sum(range, PART_SUMMARY, b))?;
    let (fingerprints, starts) = summary.split_at(entries as usize * 2);
    let fingerprints: Box<[u16]> = fingerprints.chunks_exact(2).map(|f| u16::from_le_bytes([f[0], f[1]])).collect();
    let buckets: Box<[u32]> = starts.chunks_exact(4).map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes"))).collect();
    let ordered =
        buckets.windows(2).all(|pair| pair[0] <= pair[1]) && buckets.first() == Some(&0) && buckets.last() == Some(&(entries as u32));
    if !ordered {
        return Err(format!("{} has a summary out of order", HistoryFile::IdRun(range)));
    }
    Ok(IdRun { range, entries, bucket_bits: bits, fingerprints, buckets })
}

/// Checks run `range` against the history, byte for byte: the run `hash_of` (each record's id
/// hash) makes for its segments, compared with the file as it is written, so memory holds the
/// sorted entries and one piece at a time. How `tally verify` checks the id index against a
/// replay.
pub fn check(range: RunRange, shift: u32, reader: &dyn HistoryRead, hash_of: &dyn Fn(u32) -> u64) -> Result<(), String> {
    let file = HistoryFile::IdRun(range);
    let mut expected: Vec<(u64, u32)> =
        (u64::from(range.first) << shift..u64::from(range.end) << shift).map(|record| (hash_of(record as u32), record as u32)).collect();
    expected.sort_unstable();
    let mut entries = expected.into_iter();
    let mut offset = 0u64;
    let mut stored = Vec::new();
    let compared = write(range, shift, &mut || Ok(entries.next()), &mut |piece| {
        stored.resize(piece.len(), 0);
        reader.read_at(file, offset, &mut stored)?;
        if stored != piece {
            return Err(std::io::Error::other(format!(
                "{file} differs from the replay within bytes {offset} to {}",
                offset + piece.len() as u64
            )));
        }
        offset += piece.len() as u64;
        Ok(())
    });
    compared.map_err(|error| error.to_string())?;
    match reader.read_at(file, offset, &mut [0u8]) {
        Ok(()) => Err(format!("{file} is longer than the replay's {offset} bytes")),
        Err(_) => Ok(()),
    }
}

/// A blocked Bloom filter over every id the runs hold, so that a new id, the common case,
/// costs one cache line instead of a look into every run's summary. Each id sets
/// `FILTER_PROBES` bits within one 64-byte block (chosen by the top bits of its hash, the
/// bits within by the rest, remixed). It is sized for a power-of-two capacity at
/// `FILTER_BITS_PER_ID` bits each, and built again twice as large when the runs outgrow it:
/// between 8 and 16 bits an id, a false positive rate of about 3% to 0.2%. A false positive
/// only costs the look into the runs; the filter never misses an id it was given.
pub struct IdFilter {
    blocks: Box<[[u64; 8]]>,
    block_bits: u32,
    capacity: u64,
}

const FILTER_BITS_PER_ID: u64 = 8;
const FILTER_PROBES: u32 = 6;
/// The smallest filter: room for 2^20 ids (1 MiB).
const FILTER_CAPACITY_MIN: u64 = 1 << 20;

impl IdFilter {
    /// An empty filter with room for at least `ids` ids.
    pub fn with_capacity(ids: u64) -> IdFilter {
        let capacity = ids.max(FILTER_CAPACITY_MIN).next_power_of_two();
        let blocks = capacity * FILTER_BITS_PER_ID / 512;
        IdFilter { blocks: vec![[0u64; 8]; blocks as usize].into(), block_bits: blocks.ilog2(), capacity }
    }

    /// The ids it has room for before it must grow.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    pub fn bytes(&self) -> usize {
        self.blocks.len() * 64
    }

    fn probes(&self, hash: u64) -> (usize, u64) {
        let block = hash.checked_shr(64 - self.block_bits).unwrap_or(0) as usize;
        (block, hash.wrapping_mul(0x9e37_79b9_7f4a_7c15))
    }

    pub fn insert(&mut self, hash: u64) {
        let (block, mut bits) = self.probes(hash);
        let block = &mut self.blocks[block];
        for _ in 0..FILTER_PROBES {
            let bit = (bits >> 55) as usize;
            block[bit / 64] |= 1 << (bit % 64);
            bits <<= 9;
        }
    }

    pub fn may_contain(&self, hash: u64) -> bool {
        let (block, mut bits) = self.probes(hash);
        let block = &self.blocks[block];
        let mut all = true;
        for _ in 0..FILTER_PROBES {
            let bit = (bits >> 55) as usize;
            all &= block[bit / 64] & (1 << (bit % 64)) != 0;
            bits <<= 9;
        }
        all
    }

    /// Adds every id of run `range` (of segments of `2^shift` records), read from its file.
    pub fn add_run(&mut self, range: RunRange, shift: u32, reader: &dyn HistoryRead) -> Result<(), String> {
        let mut cursor = Cursor::open(range, shift, reader)?;
        while let Some((hash, _)) = cursor.next()? {
            self.insert(hash);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_follow_base_four_and_each_segment_completes_one_run() {
        assert!(plan(0).is_empty());
        let ranges = |runs: Vec<RunRange>| runs.into_iter().map(|r| (r.first, r.end)).collect::<Vec<_>>();
        assert_eq!(ranges(plan(1)), [(0, 1)]);
        assert_eq!(ranges(plan(7)), [(0, 4), (4, 5), (5, 6), (6, 7)]);
        assert_eq!(ranges(plan(21)), [(0, 16), (16, 20), (20, 21)]);
        for segment in 0..300u32 {
            let completed = completed_by(segment);
            let mut next: Vec<RunRange> = plan(segment).into_iter().filter(|run| run.first < completed.first).collect();
            next.push(completed);
            assert_eq!(next, plan(segment + 1), "segment {segment}");
            let runs = plan(segment + 1);
            assert!(runs.windows(2).all(|pair| pair[0].end == pair[1].first && pair[0].segments() >= pair[1].segments()));
            assert!(runs.len() <= 3 * 5, "at most three runs of each size");
        }
    }

    #[test]
    fn the_filter_misses_no_id_and_few_new_ones_pass() {
        let mut filter = IdFilter::with_capacity(0);
        let hash = |n: u64| xxhash_rust::xxh3::xxh3_64(&n.to_le_bytes());
        let capacity = filter.capacity();
        for n in 0..capacity {
            filter.insert(hash(n));
        }
        assert!((0..capacity).all(|n| filter.may_contain(hash(n))));
        let passed = (capacity..capacity + 100_000).filter(|&n| filter.may_contain(hash(n))).count();
        assert!(passed < 5_000, "{passed} of 100,000 new ids pass a full filter");
    }
}
