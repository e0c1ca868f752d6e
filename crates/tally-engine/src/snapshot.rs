//! Snapshot files: a whole state, taken right after a journal record, so a restart replays
//! only the records after it. A snapshot that fails its checksum is passed over for an
//! older one (or a full replay): the journal still holds everything, so nothing is lost.

use crate::journal::Position;
use crate::storage::Storage;
use std::io;
use tally_core::codec::Encoder;
use tally_core::State;
use xxhash_rust::xxh3::xxh3_128;

pub const SNAPSHOT_MAGIC: &[u8; 8] = b"TALLYSNP";
const SNAPSHOT_VERSION: u32 = 1;
const HEADER_BYTES: usize = 72;
/// Snapshots kept; older ones are removed once a new one is durable.
pub const SNAPSHOTS_KEPT: usize = 2;

fn snapshot_name(record: u64) -> String {
    format!("snapshot-{record:020}.ts")
}

fn parse_snapshot_name(name: &str) -> Option<u64> {
    name.strip_prefix("snapshot-")?.strip_suffix(".ts")?.parse().ok()
}

/// The checksum a snapshot of `state` would carry, to compare a replay with a snapshot
/// without loading the snapshot.
pub fn checksum(state: &State) -> u128 {
    let mut body = Encoder::default();
    state.encode_snapshot(&mut body);
    xxh3_128(&body.bytes)
}

/// The record and body checksum of every snapshot, read from their headers only.
pub fn headers<S: Storage>(storage: &S) -> io::Result<Vec<(u64, u128)>> {
    let mut found = Vec::new();
    for name in storage.list()? {
        if parse_snapshot_name(&name).is_some() && storage.len(&name)? >= HEADER_BYTES as u64 {
            let mut header = [0u8; HEADER_BYTES];
            storage.read_exact_at(&name, 0, &mut header)?;
            let record = u64::from_le_bytes(header[16..24].try_into().expect("8 bytes"));
            found.push((record, u128::from_le_bytes(header[48..64].try_into().expect("16 bytes"))));
        }
    }
    Ok(found)
}

pub fn write<S: Storage>(storage: &mut S, state: &State, position: Position) -> io::Result<()> {
    assert_eq!(state.last_seq(), position.last_seq, "a snapshot must match the record it follows");
    let mut body = Encoder::default();
    body.bytes.resize(HEADER_BYTES, 0);
    state.encode_snapshot(&mut body);
    let checksum = xxh3_128(&body.bytes[HEADER_BYTES..]);
    let total_len = body.bytes.len() as u64;
    let header = &mut body.bytes[..HEADER_BYTES];
    header[0..8].copy_from_slice(SNAPSHOT_MAGIC);
    header[8..12].copy_from_slice(&SNAPSHOT_VERSION.to_le_bytes());
    header[16..24].copy_from_slice(&position.record.to_le_bytes());
    header[24..32].copy_from_slice(&position.last_seq.to_le_bytes());
    header[32..48].copy_from_slice(&position.checksum.to_le_bytes());
    header[48..64].copy_from_slice(&checksum.to_le_bytes());
    header[64..72].copy_from_slice(&total_len.to_le_bytes());
    storage.write_atomic(&snapshot_name(position.record), &body.bytes)?;
    let mut existing: Vec<u64> = storage.list()?.iter().filter_map(|n| parse_snapshot_name(n)).collect();
    existing.sort_unstable();
    let excess = existing.len().saturating_sub(SNAPSHOTS_KEPT);
    for record in &existing[..excess] {
        storage.remove(&snapshot_name(*record))?;
    }
    Ok(())
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

fn read<S: Storage>(storage: &S, name: &str) -> Result<(State, Position), String> {
    let len = storage.len(name).map_err(|e| e.to_string())?;
    if len < HEADER_BYTES as u64 {
        return Err("shorter than its header".into());
    }
    let mut bytes = vec![0u8; usize::try_from(len).map_err(|_| "too large for this machine")?];
    storage.read_exact_at(name, 0, &mut bytes).map_err(|e| e.to_string())?;
    let (header, body) = bytes.split_at(HEADER_BYTES);
    let field = |range: std::ops::Range<usize>| &header[range];
    if field(0..8) != SNAPSHOT_MAGIC || u32::from_le_bytes(field(8..12).try_into().unwrap()) != SNAPSHOT_VERSION {
        return Err("not a snapshot of this format version".into());
    }
    if u64::from_le_bytes(field(64..72).try_into().unwrap()) != len
        || u128::from_le_bytes(field(48..64).try_into().unwrap()) != xxh3_128(body)
    {
        return Err("checksum mismatch".into());
    }
    let position = Position {
        record: u64::from_le_bytes(field(16..24).try_into().unwrap()),
        last_seq: u64::from_le_bytes(field(24..32).try_into().unwrap()),
        checksum: u128::from_le_bytes(field(32..48).try_into().unwrap()),
    };
    let state = State::decode_snapshot(body).map_err(|e| e.to_string())?;
    if state.last_seq() != position.last_seq {
        return Err("state does not match its header".into());
    }
    Ok((state, position))
}
