//! The dump: how a ledger moves between stores (`tally export`, `tally import`).
//!
//! Both stores keep the same batch records: the requests of one commit and the timestamp
//! they were applied at (`tally_core::codec::encode_batch`). Replaying them in order rebuilds
//! the ledger exactly (same ids, seqs, timestamps and states), because `apply` is
//! deterministic. A dump is those records, each checksummed, between a header and an end
//! frame, so a truncated or damaged dump is refused instead of half-imported:
//!
//! ```text
//! header  "TALLY-DUMP" (10 bytes) | format version u16 | last seq of the ledger u64
//! frame   last seq after the batch u64 (never 0, above the frame before) | payload length u32 | payload |
//!         xxh3-64 of the previous frame's checksum, last seq, length and payload u64
//! end     0 u64 | frames u64 | xxh3-64 chained like a frame's, over the frame count u64
//! ```
//!
//! All integers are little-endian. Each checksum chains to the one before, so frames cannot be
//! dropped, reordered or repeated without detection.

use crate::frame::{chained64, dump, dump_end, dump_frame, Header};
use std::io::{self, Read, Write};
use tally_core::limits::RECORD_PAYLOAD_BYTES_MAX;

const MAGIC: &[u8; 10] = b"TALLY-DUMP";
const VERSION: u16 = 1;

/// A frame's payload is one batch record.
const DUMP_PAYLOAD_BYTES_MAX: u32 = RECORD_PAYLOAD_BYTES_MAX as u32;

pub struct DumpWriter<W: Write> {
    output: W,
    previous: u64,
    frames: u64,
}

/// A frame's header: its last seq and its payload's length.
fn frame_header(last_seq: u64, payload_len: u32) -> Header<{ dump_frame::BYTES }> {
    let mut header = Header::default();
    header.put(dump_frame::LAST_SEQ, last_seq.into());
    header.put(dump_frame::PAYLOAD_BYTES, payload_len.into());
    header
}

fn checksum(previous: u64, last_seq: u64, payload_len: u32, payload: &[u8]) -> u64 {
    chained64(previous, &[&frame_header(last_seq, payload_len).0, payload])
}

impl<W: Write> DumpWriter<W> {
    /// Starts a dump of a ledger whose last seq is `last_seq` (for progress while importing).
    pub fn new(mut output: W, last_seq: u64) -> io::Result<DumpWriter<W>> {
        let mut header = Header::<{ dump::BYTES }>::default();
        header.put_bytes(dump::MAGIC, MAGIC);
        header.put(dump::VERSION, VERSION.into());
        header.put(dump::LAST_SEQ, last_seq.into());
        output.write_all(&header.0)?;
        Ok(DumpWriter { output, previous: 0, frames: 0 })
    }

    pub fn frame(&mut self, last_seq: u64, payload: &[u8]) -> io::Result<()> {
        let refuse = |what: String| io::Error::new(io::ErrorKind::InvalidInput, what);
        if last_seq == 0 {
            return Err(refuse("a batch record at seq 0 holds no event".into()));
        }
        let length = u32::try_from(payload.len())
            .ok()
            .filter(|&length| length <= DUMP_PAYLOAD_BYTES_MAX)
            .ok_or_else(|| refuse(format!("a batch record of {} bytes exceeds the limit of {DUMP_PAYLOAD_BYTES_MAX}", payload.len())))?;
        self.previous = checksum(self.previous, last_seq, length, payload);
        self.output.write_all(&frame_header(last_seq, length).0)?;
        self.output.write_all(payload)?;
        self.output.write_all(&self.previous.to_le_bytes())?;
        self.frames += 1;
        Ok(())
    }

    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Writes the end frame, flushes and hands back the output.
    pub fn finish(mut self) -> io::Result<W> {
        let mut end = Header::<{ dump_end::BYTES }>::default();
        end.put(dump_end::FRAMES, self.frames.into());
        let checksum = checksum(self.previous, 0, 0, end.bytes(dump_end::FRAMES));
        self.output.write_all(&end.0)?;
        self.output.write_all(&checksum.to_le_bytes())?;
        self.output.flush()?;
        Ok(self.output)
    }
}

pub struct DumpReader<R: Read> {
    input: R,
    previous: u64,
    frames: u64,
    /// The last seq of the frame read last: each frame must go further.
    frame_seq: u64,
    /// The source ledger's last seq, from the header.
    pub last_seq: u64,
    /// Bytes read so far, for progress.
    pub bytes_read: u64,
    payload: Vec<u8>,
}

fn invalid(what: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.into())
}

impl<R: Read> DumpReader<R> {
    pub fn new(mut input: R) -> io::Result<DumpReader<R>> {
        let mut header = Header::<{ dump::BYTES }>::default();
        input.read_exact(&mut header.0).map_err(|_| invalid("not a Tally dump: it is shorter than a header"))?;
        if header.bytes(dump::MAGIC) != MAGIC {
            return Err(invalid("not a Tally dump: the header is missing"));
        }
        let version = header.get(dump::VERSION) as u16;
        if version != VERSION {
            return Err(invalid(format!("dump format version {version} is not supported (this build reads {VERSION})")));
        }
        let last_seq = header.get_u64(dump::LAST_SEQ);
        Ok(DumpReader { input, previous: 0, frames: 0, frame_seq: 0, last_seq, bytes_read: dump::BYTES as u64, payload: Vec::new() })
    }

    fn read(&mut self, bytes: &mut [u8]) -> io::Result<()> {
        self.input.read_exact(bytes).map_err(|_| invalid("the dump ends early: it was cut short"))?;
        self.bytes_read += bytes.len() as u64;
        Ok(())
    }

    fn stored_checksum(&mut self) -> io::Result<u64> {
        let mut bytes = [0u8; dump_frame::CHECKSUM_BYTES];
        self.read(&mut bytes)?;
        Ok(u64::from_le_bytes(bytes))
    }

    /// The next batch record as (last seq, payload), or `None` after a valid end frame.
    pub fn next_frame(&mut self) -> io::Result<Option<(u64, &[u8])>> {
        let mut header = Header::<{ dump_frame::BYTES }>::default();
        self.read(&mut header.0[dump_frame::LAST_SEQ.range()])?;
        let last_seq = header.get_u64(dump_frame::LAST_SEQ);
        if last_seq == 0 {
            return self.end().map(|()| None);
        }
        let frame = self.frames + 1;
        if last_seq <= self.frame_seq {
            return Err(invalid(format!("frame {frame} ends at seq {last_seq}, not after the frame before it ({})", self.frame_seq)));
        }
        self.read(&mut header.0[dump_frame::PAYLOAD_BYTES.range()])?;
        let length = header.get_u32(dump_frame::PAYLOAD_BYTES);
        if length > DUMP_PAYLOAD_BYTES_MAX {
            return Err(invalid(format!("frame {frame} claims {length} bytes, more than a batch record holds")));
        }
        let mut payload = std::mem::take(&mut self.payload);
        payload.resize(length as usize, 0);
        self.read(&mut payload)?;
        self.payload = payload;
        let expected = checksum(self.previous, last_seq, length, &self.payload);
        if self.stored_checksum()? != expected {
            return Err(invalid(format!("frame {frame} (up to seq {last_seq}) is damaged: its checksum does not match")));
        }
        (self.previous, self.frames, self.frame_seq) = (expected, frame, last_seq);
        Ok(Some((last_seq, &self.payload)))
    }

    /// The end frame: its count must match the frames read, and its checksum the chain.
    fn end(&mut self) -> io::Result<()> {
        let mut end = Header::<{ dump_end::BYTES }>::default();
        self.read(&mut end.0[dump_end::FRAMES.range()])?;
        let expected = checksum(self.previous, 0, 0, end.bytes(dump_end::FRAMES));
        if end.get_u64(dump_end::FRAMES) != self.frames || self.stored_checksum()? != expected {
            return Err(invalid(format!("the dump's end frame does not match its {} frames", self.frames)));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dump(frames: &[(u64, &[u8])]) -> Vec<u8> {
        let mut writer = DumpWriter::new(Vec::new(), frames.last().map_or(0, |f| f.0)).unwrap();
        for (seq, payload) in frames {
            writer.frame(*seq, payload).unwrap();
        }
        writer.finish().unwrap()
    }

    fn read_all(bytes: &[u8]) -> io::Result<Vec<(u64, Vec<u8>)>> {
        let mut reader = DumpReader::new(bytes)?;
        let mut frames = Vec::new();
        while let Some((seq, payload)) = reader.next_frame()? {
            frames.push((seq, payload.to_vec()));
        }
        Ok(frames)
    }

    /// A dump's bytes are a promise to every dump ever exported: this fails if the framing or
    /// the checksum changes.
    #[test]
    fn the_dump_layout_is_frozen() {
        let bytes = dump(&[(3, b"first"), (9, b"second batch")]);
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, DUMP);
    }

    const DUMP: &str = "54414c4c592d44554d50010009000000000000000300000000000000050000006669727374de13aed23d366dd209000000000000000c0000007365636f6e64206261746368e151b96cb291f7b8000000000000000002000000000000009f24a5cef3106567";

    #[test]
    fn frames_that_do_not_advance_the_ledger_are_refused() {
        for seqs in [[3, 3], [9, 3]] {
            let bytes = dump(&[(seqs[0], b"first"), (seqs[1], b"again")]);
            assert!(read_all(&bytes).unwrap_err().to_string().contains("not after the frame before it"), "{seqs:?}");
        }
        assert_eq!(DumpWriter::new(Vec::new(), 0).unwrap().frame(0, b"none").unwrap_err().kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn a_dump_reads_back_and_any_damage_or_cut_is_refused() {
        let bytes = dump(&[(3, b"first"), (9, b"second batch")]);
        assert_eq!(read_all(&bytes).unwrap(), vec![(3, b"first".to_vec()), (9, b"second batch".to_vec())]);
        for cut in 0..bytes.len() {
            assert!(read_all(&bytes[..cut]).is_err(), "a dump cut at {cut} bytes is refused");
        }
        for flip in 20..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[flip] ^= 0x10;
            assert!(read_all(&damaged).is_err(), "a dump with byte {flip} damaged is refused");
        }
    }
}
