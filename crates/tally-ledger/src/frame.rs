//! The framing of every checksummed format, in one place: journal segments and records,
//! snapshot headers and frames, dump headers and frames. Each fixed-size header is a list of
//! named fields (offset and width), laid end to end and checked against the header's size at
//! compile time, so no format reads or writes an inline byte range. All integers are
//! little-endian. The byte layouts are described in `docs/journal.md`, and golden-byte tests
//! fail if any of them changes.

use std::ops::Range;
use xxhash_rust::xxh3::Xxh3;

/// A field of a fixed-size header: where it starts and how many bytes it takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field {
    pub offset: usize,
    pub width: usize,
}

impl Field {
    /// The first field of a header.
    pub const fn first(width: usize) -> Field {
        Field { offset: 0, width }
    }

    /// The field right after `previous`.
    pub const fn after(previous: Field, width: usize) -> Field {
        Field { offset: previous.end(), width }
    }

    pub const fn end(self) -> usize {
        self.offset + self.width
    }

    pub fn range(self) -> Range<usize> {
        self.offset..self.end()
    }
}

/// A fixed-size header being built or read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header<const N: usize>(pub [u8; N]);

impl<const N: usize> Default for Header<N> {
    fn default() -> Header<N> {
        Header([0; N])
    }
}

impl<const N: usize> Header<N> {
    pub fn bytes(&self, field: Field) -> &[u8] {
        &self.0[field.range()]
    }

    pub fn put_bytes(&mut self, field: Field, value: &[u8]) {
        assert_eq!(value.len(), field.width, "a value fills its field");
        self.0[field.range()].copy_from_slice(value);
    }

    /// The little-endian integer in `field` (of 2, 4, 8 or 16 bytes), widened.
    pub fn get(&self, field: Field) -> u128 {
        assert!(matches!(field.width, 2 | 4 | 8 | 16), "integer fields are 2, 4, 8 or 16 bytes");
        let mut wide = [0u8; 16];
        wide[..field.width].copy_from_slice(self.bytes(field));
        u128::from_le_bytes(wide)
    }

    /// Writes `value` little-endian into `field`, which must be wide enough for it.
    pub fn put(&mut self, field: Field, value: u128) {
        assert!(matches!(field.width, 2 | 4 | 8 | 16), "integer fields are 2, 4, 8 or 16 bytes");
        assert!(field.width == 16 || value >> (8 * field.width) == 0, "the value fits its field");
        let bytes = value.to_le_bytes();
        self.put_bytes(field, &bytes[..field.width]);
    }

    pub fn get_u64(&self, field: Field) -> u64 {
        assert_eq!(field.width, 8);
        self.get(field) as u64
    }

    pub fn get_u32(&self, field: Field) -> u32 {
        assert_eq!(field.width, 4);
        self.get(field) as u32
    }

    /// xxh3-64 of everything before `field`: how fixed headers protect themselves.
    pub fn checksum_before(&self, field: Field) -> u64 {
        xxhash_rust::xxh3::xxh3_64(&self.0[..field.offset])
    }
}

/// xxh3-128 over the previous checksum (little-endian) and then `parts`: the chain that makes
/// records and frames impossible to drop, reorder or repeat unnoticed.
pub fn chained128(previous: u128, parts: &[&[u8]]) -> u128 {
    let mut hasher = Xxh3::new();
    hasher.update(&previous.to_le_bytes());
    parts.iter().for_each(|part| hasher.update(part));
    hasher.digest128()
}

/// The same chain with 64-bit checksums (the dump's).
pub fn chained64(previous: u64, parts: &[&[u8]]) -> u64 {
    let mut hasher = Xxh3::new();
    hasher.update(&previous.to_le_bytes());
    parts.iter().for_each(|part| hasher.update(part));
    hasher.digest()
}

/// The header of a journal segment file.
pub mod segment {
    use super::Field;
    pub const MAGIC: Field = Field::first(8);
    pub const VERSION: Field = Field::after(MAGIC, 4);
    /// The header's own size, so a later version may grow it.
    pub const HEADER_BYTES: Field = Field::after(VERSION, 4);
    pub const FIRST_RECORD: Field = Field::after(HEADER_BYTES, 8);
    /// The checksum of the record before the segment's first: the chain crosses files.
    pub const CHAIN_SEED: Field = Field::after(FIRST_RECORD, 16);
    /// xxh3-64 of the bytes before it.
    pub const CHECKSUM: Field = Field::after(CHAIN_SEED, 8);
    pub const BYTES: usize = 48;
    const _: () = assert!(CHECKSUM.end() == BYTES);
}

/// The header of a journal record; the payload follows it.
pub mod record {
    use super::Field;
    /// xxh3-128 chained over the previous record's checksum, the rest of this header and the
    /// payload.
    pub const CHECKSUM: Field = Field::first(16);
    pub const PAYLOAD_BYTES: Field = Field::after(CHECKSUM, 4);
    pub const RESERVED: Field = Field::after(PAYLOAD_BYTES, 4);
    pub const RECORD: Field = Field::after(RESERVED, 8);
    pub const LAST_SEQ: Field = Field::after(RECORD, 8);
    pub const BYTES: usize = 40;
    const _: () = assert!(LAST_SEQ.end() == BYTES);
}

/// The header of a snapshot file; frames follow it.
pub mod snapshot {
    use super::Field;
    pub const MAGIC: Field = Field::first(8);
    pub const VERSION: Field = Field::after(MAGIC, 4);
    pub const RESERVED: Field = Field::after(VERSION, 4);
    /// The journal position the snapshot was taken right after.
    pub const RECORD: Field = Field::after(RESERVED, 8);
    pub const LAST_SEQ: Field = Field::after(RECORD, 8);
    pub const RECORD_CHECKSUM: Field = Field::after(LAST_SEQ, 16);
    /// xxh3-64 of the bytes before it.
    pub const CHECKSUM: Field = Field::after(RECORD_CHECKSUM, 8);
    pub const BYTES: usize = 56;
    const _: () = assert!(CHECKSUM.end() == BYTES);
}

/// The header of one snapshot frame; its payload follows. An empty frame ends the file.
pub mod snapshot_frame {
    use super::Field;
    pub const PAYLOAD_BYTES: Field = Field::first(4);
    pub const RESERVED: Field = Field::after(PAYLOAD_BYTES, 4);
    /// xxh3-128 chained over the previous frame's checksum and this payload.
    pub const CHECKSUM: Field = Field::after(RESERVED, 16);
    pub const BYTES: usize = 24;
    const _: () = assert!(CHECKSUM.end() == BYTES);
}

/// The header of a dump.
pub mod dump {
    use super::Field;
    pub const MAGIC: Field = Field::first(10);
    pub const VERSION: Field = Field::after(MAGIC, 2);
    /// The source ledger's last seq, for progress while importing.
    pub const LAST_SEQ: Field = Field::after(VERSION, 8);
    pub const BYTES: usize = 20;
    const _: () = assert!(LAST_SEQ.end() == BYTES);
}

/// The header of one dump frame; its payload and then its xxh3-64 chained checksum (over the
/// previous frame's checksum, this header and the payload) follow. Last seqs strictly increase
/// from frame to frame; a last seq of 0 marks the end frame instead (`dump_end`).
pub mod dump_frame {
    use super::Field;
    pub const LAST_SEQ: Field = Field::first(8);
    pub const PAYLOAD_BYTES: Field = Field::after(LAST_SEQ, 4);
    pub const BYTES: usize = 12;
    /// The checksum after the payload.
    pub const CHECKSUM_BYTES: usize = 8;
    const _: () = assert!(PAYLOAD_BYTES.end() == BYTES);
}

/// The dump's end frame: a zero last seq and the number of frames, then a checksum chained
/// like a frame's, over a frame header of zeros and the count (u64) as its payload.
pub mod dump_end {
    use super::Field;
    pub const LAST_SEQ: Field = Field::first(8);
    pub const FRAMES: Field = Field::after(LAST_SEQ, 8);
    pub const BYTES: usize = 16;
    const _: () = assert!(FRAMES.end() == BYTES && LAST_SEQ.end() == super::dump_frame::LAST_SEQ.end());
}
