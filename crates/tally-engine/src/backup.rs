//! Backups of an embedded ledger, and restores from them to any commit.
//!
//! A backup directory holds copies of the data directory's journal segments (from record
//! 1), its snapshots, its key file, and `manifest.json`: each file's length and SHA-256 per
//! `BACKUP_CHUNK_BYTES` chunk, and the journal position the backup ends at. The journal is
//! append-only and everything before the writer's last commit is final, so a backup copies
//! up to that commit while writes go on, and a later backup into the same directory copies
//! only what was appended since. The manifest is replaced last and atomically: a copy cut
//! short leaves the previous backup whole (bytes past the manifest are ignored and
//! overwritten next time).
//!
//! A restore replays the backup up to the commit asked for and writes a data directory
//! whose journal is the backup's, cut after that commit, so it verifies from record 1 like
//! any other. A commit is restored whole or not at all: it is the unit the ledger wrote.

use crate::history::{self, SegmentReader};
use crate::journal::{self, parse_segment_name, segment_name, Journal, JournalError, Position, Tip};
use crate::keys::{KEYS_FILE, KEYS_FILE_BYTES_MAX};
use crate::snapshot;
use crate::storage::{FileStorage, Storage};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tally_core::batch::replay_record;
use tally_core::codec::batch_timestamp;
use tally_core::limits::{BACKUP_CHUNK_BYTES, BACKUP_MANIFEST_BYTES_MAX};
use tally_core::records::HistoryRead;
use tally_core::State;
use tally_ledger::keys::hex;
use tally_ledger::{Backed, LedgerError};

pub const MANIFEST_FILE: &str = "manifest.json";
/// Held while a backup writes the directory, so two never interleave their copies.
pub const LOCK_FILE: &str = "backup.lock";
pub const MANIFEST_FORMAT: u32 = 1;
/// Bytes read and written at a time when copying.
const COPY_BYTES: u64 = 1 << 20;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: u32,
    /// The last journal record the backup holds, its checksum (32 hex digits) and the last
    /// seq in it: where a restore with no limit ends.
    pub record: u64,
    pub record_checksum: String,
    pub last_seq: u64,
    /// When this manifest was written, in milliseconds since the Unix epoch.
    pub written_at_ms: u64,
    /// Sorted by name.
    pub files: Vec<FileEntry>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    pub name: String,
    /// The file's length as backed up; bytes after it are not part of the backup.
    pub bytes: u64,
    /// SHA-256 of each `BACKUP_CHUNK_BYTES` chunk, in order (the last may be shorter).
    pub sha256: Vec<String>,
}

/// The files a backup may hold, and nothing else: a directory holding anything more is not
/// one to write a backup into.
fn is_backup_file(name: &str) -> bool {
    parse_segment_name(name).is_some()
        || snapshot::parse_snapshot_name(name).is_some()
        || history::parse_segment_name(name).is_some()
        || [MANIFEST_FILE, LOCK_FILE, KEYS_FILE].contains(&name)
        || name.ends_with(".partial")
}

impl Manifest {
    pub fn read(directory: &Path) -> Result<Option<Manifest>, String> {
        let path = directory.join(MANIFEST_FILE);
        let bytes = match std::fs::metadata(&path) {
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(format!("{}: {error}", path.display())),
            Ok(metadata) if metadata.len() > BACKUP_MANIFEST_BYTES_MAX as u64 => {
                return Err(format!("{}: {} bytes, more than a manifest can be", path.display(), metadata.len()))
            }
            Ok(_) => std::fs::read(&path).map_err(|error| format!("{}: {error}", path.display()))?,
        };
        let manifest: Manifest = serde_json::from_slice(&bytes).map_err(|error| format!("{}: {error}", path.display()))?;
        if manifest.format != MANIFEST_FORMAT {
            return Err(format!("{}: format {}, this build reads {MANIFEST_FORMAT}", path.display(), manifest.format));
        }
        let listed = |name: &str| is_backup_file(name) && ![MANIFEST_FILE, LOCK_FILE].contains(&name) && !name.ends_with(".partial");
        if let Some(stranger) = manifest.files.iter().find(|file| !listed(&file.name)) {
            return Err(format!("{}: lists {:?}, which is not a file a backup holds", path.display(), stranger.name));
        }
        Ok(Some(manifest))
    }

    fn entry(&self, name: &str) -> Option<&FileEntry> {
        self.files.iter().find(|file| file.name == name)
    }

    /// The journal segments, in order.
    fn segments(&self) -> impl Iterator<Item = (u64, &FileEntry)> {
        let mut segments: Vec<_> = self.files.iter().filter_map(|file| Some((parse_segment_name(&file.name)?, file))).collect();
        segments.sort_by_key(|(first, _)| *first);
        segments.into_iter()
    }
}

fn checksum_hex(checksum: u128) -> String {
    format!("{checksum:032x}")
}

/// Reads `[from, to)` of `name` from `source` piece by piece, handing each piece to `each`.
/// Pieces end on multiples of `COPY_BYTES`, so none straddles a checksum chunk.
fn read_range<S: Storage>(
    source: &S,
    name: &str,
    from: u64,
    to: u64,
    mut each: impl FnMut(u64, &[u8]) -> io::Result<()>,
) -> io::Result<()> {
    let mut buffer = vec![0u8; COPY_BYTES.min(to.saturating_sub(from)) as usize];
    let mut offset = from;
    while offset < to {
        let piece = &mut buffer[..(to - offset).min(COPY_BYTES - offset % COPY_BYTES) as usize];
        source.read_exact_at(name, offset, piece).map_err(|e| io::Error::new(e.kind(), format!("reading {name}: {e}")))?;
        each(offset, piece)?;
        offset += piece.len() as u64;
    }
    Ok(())
}

/// The hash so far of a journal segment's last, incomplete chunk in a backup: kept between
/// backups into one directory, so a backup kept current hashes only what each copy adds
/// instead of up to a chunk of what was there.
#[derive(Clone)]
pub struct Unfinished {
    directory: PathBuf,
    name: String,
    bytes: u64,
    hasher: Sha256,
    /// The journal position the backup was brought to by this process, from its own journal.
    position: Position,
}

/// The chunk digests of `name` in `source` up to `to`, keeping those of `entry` that cover
/// whole chunks before `entry.bytes` (the bytes there are the same: the journal only grows),
/// and going on from `resume`, the hash of `entry`'s incomplete last chunk, if given. Returns
/// the digests and the hash of the new incomplete last chunk (none if `to` ends a chunk).
fn digests_to<S: Storage>(
    source: &S,
    name: &str,
    entry: &FileEntry,
    resume: Option<Sha256>,
    to: u64,
    mut copy: impl FnMut(u64, &[u8]) -> io::Result<()>,
) -> io::Result<(Vec<String>, Option<Sha256>)> {
    let kept = (entry.bytes / BACKUP_CHUNK_BYTES) as usize;
    let mut digests: Vec<String> = entry.sha256[..kept.min(entry.sha256.len())].to_vec();
    let resumable = digests.len() == kept && !entry.bytes.is_multiple_of(BACKUP_CHUNK_BYTES);
    let (mut hasher, from) = match resume {
        Some(hasher) if resumable => (hasher, entry.bytes),
        _ => (Sha256::new(), digests.len() as u64 * BACKUP_CHUNK_BYTES),
    };
    let mut unfinished = None;
    read_range(source, name, from, to, |offset, piece| {
        hasher.update(piece);
        let end = offset + piece.len() as u64;
        if end.is_multiple_of(BACKUP_CHUNK_BYTES) {
            digests.push(hex(&std::mem::take(&mut hasher).finalize()));
        } else if end == to {
            unfinished = Some(hasher.clone());
            digests.push(hex(&hasher.clone().finalize()));
        }
        copy(offset, piece)
    })?;
    Ok((digests, unfinished))
}

const _: () = assert!(BACKUP_CHUNK_BYTES.is_multiple_of(COPY_BYTES), "a copy piece never straddles a checksum chunk");

/// Makes `directory` (and its missing parents), each one's entry made durable in its parent,
/// so a backup or restore reported done does not vanish with its directory at a power loss.
pub fn make_durably(directory: &Path) -> io::Result<()> {
    if directory.is_dir() {
        return Ok(());
    }
    if let Some(parent) = directory.parent().filter(|parent| !parent.as_os_str().is_empty()) {
        make_durably(parent)?;
        create_directory(directory)?;
        File::open(parent)?.sync_all()
    } else {
        create_directory(directory)
    }
}

fn create_directory(directory: &Path) -> io::Result<()> {
    match std::fs::create_dir(directory) {
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists && directory.is_dir() => Ok(()),
        created => created,
    }
}

/// A backup directory opened for writing: locked, with the manifest it holds.
pub struct Destination {
    storage: FileStorage,
    manifest: Manifest,
    directory: PathBuf,
    shown: String,
    unfinished: Option<Unfinished>,
    _lock: File,
}

impl Destination {
    /// Opens `directory`, going on from `unfinished` if an earlier backup into it left one.
    pub fn open(directory: &Path, unfinished: Option<Unfinished>) -> Result<Destination, LedgerError> {
        let shown = directory.display().to_string();
        let failed = |error: io::Error| LedgerError::BackupFailed(format!("{shown}: {error}"));
        make_durably(directory).map_err(failed)?;
        let lock = File::options().create(true).truncate(false).write(true).open(directory.join(LOCK_FILE)).map_err(failed)?;
        if lock.try_lock().is_err() {
            return Err(LedgerError::BackupRefused(format!("another backup is writing {shown}")));
        }
        let storage = FileStorage::open(directory).map_err(failed)?;
        let manifest = Manifest::read(directory).map_err(LedgerError::BackupRefused)?;
        if manifest.is_none() {
            if let Some(stranger) = storage.list().map_err(failed)?.into_iter().find(|name| !is_backup_file(name)) {
                return Err(LedgerError::BackupRefused(format!(
                    "{shown} holds {stranger}, which is not part of a Tally backup: back up into an empty directory or an earlier backup of this ledger"
                )));
            }
        }
        let manifest = manifest.unwrap_or(Manifest { format: MANIFEST_FORMAT, ..Manifest::default() });
        let unfinished = unfinished.filter(|unfinished| unfinished.directory == directory);
        Ok(Destination { storage, manifest, directory: directory.to_path_buf(), shown, unfinished, _lock: lock })
    }

    /// What the next backup into this directory can go on from.
    pub fn unfinished(self) -> Option<Unfinished> {
        self.unfinished
    }

    /// Refuses a backup that the journal does not continue: another ledger's, or this one's
    /// from before its data directory was replaced or restored.
    fn check_continues<S: Storage>(&self, source: &S, tip: &Tip) -> Result<(), LedgerError> {
        let manifest = &self.manifest;
        if manifest.record == 0 {
            return Ok(());
        }
        let hex_checksum = |unfinished: &Unfinished| checksum_hex(unfinished.position.checksum);
        if self.unfinished.as_ref().is_some_and(|u| u.position.record == manifest.record && hex_checksum(u) == manifest.record_checksum) {
            // This process brought the backup here from the journal it is appending to.
            return Ok(());
        }
        let foreign = |why: &str| {
            LedgerError::BackupRefused(format!(
                "the backup in {} ends at record {} and {why}: it is another ledger's, or this one's before its data directory was replaced; back up into a new directory",
                self.shown, manifest.record
            ))
        };
        let checksum = u128::from_str_radix(&manifest.record_checksum, 16).map_err(|_| foreign("its checksum does not read"))?;
        if tip.position.record < manifest.record {
            return Err(foreign(&format!("this ledger ends at record {}", tip.position.record)));
        }
        if tip.position.record == manifest.record {
            return if tip.position.checksum == checksum { Ok(()) } else { Err(foreign("this ledger's record there differs")) };
        }
        let (_, last) = manifest.segments().last().ok_or_else(|| foreign("it holds no journal"))?;
        let grew = source.len(&last.name).map_err(|e| LedgerError::BackupFailed(format!("reading the journal's {}: {e}", last.name)))?
            > last.bytes;
        let continues = if grew {
            journal::continues(source, &last.name, last.bytes, checksum)
        } else {
            journal::continues(source, &segment_name(manifest.record + 1), 0, checksum)
        };
        match continues {
            Ok(true) => Ok(()),
            Ok(false) => Err(foreign("this ledger does not continue from it")),
            // The segment that would go on from it is missing or does not read as one.
            Err(JournalError::Corrupt { .. }) => Err(foreign("this ledger does not continue from it")),
            Err(JournalError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                Err(foreign("this ledger does not continue from it"))
            }
            Err(error) => Err(LedgerError::BackupFailed(format!("reading the journal: {error}"))),
        }
    }

    /// Copies `name` from `source` up to `to` bytes, after what the backup already holds.
    fn extend<S: Storage>(&mut self, source: &S, name: &str, to: u64) -> io::Result<u64> {
        let entry = self.manifest.entry(name).cloned().unwrap_or_else(|| FileEntry { name: name.to_owned(), ..FileEntry::default() });
        if entry.bytes >= to {
            return Ok(0);
        }
        let held = match self.storage.len(name) {
            Ok(len) => len,
            Err(error) if error.kind() == io::ErrorKind::NotFound => 0,
            Err(error) => return Err(error),
        };
        if held < entry.bytes {
            return Err(io::Error::other(format!(
                "{name} in the backup is shorter than its manifest says: the backup is damaged (see `tally verify --backup`)"
            )));
        }
        if held > entry.bytes {
            // What a copy cut short left after the manifest's end.
            self.storage.truncate(name, entry.bytes)?;
        }
        let resume = match &self.unfinished {
            Some(unfinished) if unfinished.name == name && unfinished.bytes == entry.bytes => self.unfinished.take(),
            _ => None,
        };
        let storage = &mut self.storage;
        let (sha256, unfinished) = digests_to(source, name, &entry, resume.map(|unfinished| unfinished.hasher), to, |offset, piece| {
            let skip = entry.bytes.saturating_sub(offset).min(piece.len() as u64) as usize;
            if skip < piece.len() {
                storage.append(name, &piece[skip..]).map_err(|e| io::Error::new(e.kind(), format!("writing {name}: {e}")))?;
            }
            Ok(())
        })?;
        self.storage.sync(name).map_err(|e| io::Error::new(e.kind(), format!("syncing {name}: {e}")))?;
        if let Some(hasher) = unfinished.filter(|_| parse_segment_name(name).is_some()) {
            let position = Position::default(); // set once the manifest is written
            self.unfinished = Some(Unfinished { directory: self.directory.clone(), name: name.to_owned(), bytes: to, hasher, position });
        }
        let copied = to - entry.bytes;
        let updated = FileEntry { name: name.to_owned(), bytes: to, sha256 };
        self.manifest.files.retain(|file| file.name != name);
        self.manifest.files.push(updated);
        Ok(copied)
    }

    /// Replaces the key file's copy if it changed.
    fn copy_keys<S: Storage>(&mut self, source: &S) -> io::Result<u64> {
        // Replaced whole when a key changes: read through one handle, it is one version or the other.
        let bytes = match source.read_whole(KEYS_FILE, KEYS_FILE_BYTES_MAX) {
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(0),
            read => read?,
        };
        let len = bytes.len() as u64;
        let sha256 = vec![hex(&Sha256::digest(&bytes))];
        if self.manifest.entry(KEYS_FILE).is_some_and(|entry| entry.sha256 == sha256) {
            return Ok(0);
        }
        self.storage.write_atomic(KEYS_FILE, &mut |emit| emit(&bytes))?;
        self.manifest.files.retain(|file| file.name != KEYS_FILE);
        self.manifest.files.push(FileEntry { name: KEYS_FILE.into(), bytes: len, sha256 });
        Ok(len)
    }

    /// Brings the backup up to `tip`: the journal segments up to it, the snapshots taken at
    /// or before it, the key file; then the manifest, last.
    pub fn take<S: Storage>(&mut self, source: &S, tip: &Tip, now_ms: u64) -> Result<Backed, LedgerError> {
        self.check_continues(source, tip)?;
        let shown = self.shown.clone();
        let failed = |error: io::Error| LedgerError::BackupFailed(format!("into {shown}: {error}"));
        let (mut files_copied, mut bytes_copied) = (0, 0);
        for name in source.list().map_err(failed)? {
            let copied = if let Some(first) = parse_segment_name(&name) {
                if tip.segment.is_empty() || first > tip.position.record {
                    continue; // begun after the commit this backup ends at
                }
                let to = if name == tip.segment { tip.segment_len } else { source.len(&name).map_err(failed)? };
                self.extend(source, &name, to).map_err(failed)?
            } else if snapshot::parse_snapshot_name(&name).is_some_and(|record| record <= tip.position.record) {
                if self.manifest.entry(&name).is_some() {
                    continue; // a snapshot never changes
                }
                match source.len(&name).and_then(|len| self.extend(source, &name, len)) {
                    Ok(copied) => copied,
                    // Replaced by a newer one while this backup ran: the journal covers it.
                    Err(error) if error.kind() == io::ErrorKind::NotFound => {
                        let _ = self.storage.remove(&name);
                        continue;
                    }
                    Err(error) => return Err(failed(error)),
                }
            } else if name == KEYS_FILE {
                self.copy_keys(source).map_err(failed)?
            } else {
                continue;
            };
            if copied > 0 {
                files_copied += 1;
                bytes_copied += copied;
            }
        }
        // The history segments the backup's snapshots stand on (a segment never changes).
        let standing = self.manifest.files.iter().filter(|f| snapshot::parse_snapshot_name(&f.name).is_some());
        let segments = standing.filter_map(|f| snapshot::history_segments(&self.storage, &f.name)).max().unwrap_or(0);
        let segments =
            u32::try_from(segments).map_err(|_| LedgerError::BackupFailed("a snapshot names more history segments than exist".into()))?;
        for segment in 0..segments {
            let name = history::segment_name(segment);
            if self.manifest.entry(&name).is_none() {
                let len = source.len(&name).map_err(failed)?;
                bytes_copied += self.extend(source, &name, len).map_err(failed)?;
                files_copied += 1;
            }
        }
        let manifest = &mut self.manifest;
        manifest.files.sort_by(|a, b| a.name.cmp(&b.name));
        manifest.record = tip.position.record;
        manifest.record_checksum = checksum_hex(tip.position.checksum);
        manifest.last_seq = tip.position.last_seq;
        manifest.written_at_ms = now_ms;
        let text = serde_json::to_vec_pretty(&*manifest).expect("a manifest serializes");
        if text.len() > BACKUP_MANIFEST_BYTES_MAX {
            return Err(LedgerError::BackupFailed(format!(
                "the manifest would take {} bytes, more than {BACKUP_MANIFEST_BYTES_MAX}: start a new backup directory",
                text.len()
            )));
        }
        self.storage.write_atomic(MANIFEST_FILE, &mut |emit| emit(&text)).map_err(failed)?;
        if let Some(unfinished) = &mut self.unfinished {
            unfinished.position = tip.position;
        }
        Ok(Backed { record: tip.position.record, last_seq: tip.position.last_seq, files_copied, bytes_copied, written_at_ms: now_ms })
    }
}

/// A backup, read through its manifest: only the files it lists, only up to the lengths it
/// gives, and never written.
pub struct BackupFiles {
    storage: FileStorage,
    lengths: BTreeMap<String, u64>,
}

fn read_only() -> io::Error {
    io::Error::new(io::ErrorKind::PermissionDenied, "a backup is read, never written, by a restore or a check")
}

impl Storage for BackupFiles {
    fn history_reader(&self) -> Option<Arc<dyn HistoryRead>> {
        let files = BackupFiles { storage: FileStorage::open(self.storage.directory()).ok()?, lengths: self.lengths.clone() };
        Some(Arc::new(SegmentReader(move |name: &str, offset, buffer: &mut [u8]| files.read_exact_at(name, offset, buffer))))
    }

    fn list(&self) -> io::Result<Vec<String>> {
        Ok(self.lengths.keys().cloned().collect())
    }

    fn len(&self, name: &str) -> io::Result<u64> {
        self.lengths.get(name).copied().ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{name} is not in the manifest")))
    }

    fn read_exact_at(&self, name: &str, offset: u64, buffer: &mut [u8]) -> io::Result<()> {
        if offset + buffer.len() as u64 > self.len(name)? {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, format!("{name}: read past the length in the manifest")));
        }
        self.storage.read_exact_at(name, offset, buffer)
    }

    fn append(&mut self, _: &str, _: &[u8]) -> io::Result<()> {
        Err(read_only())
    }

    fn sync(&mut self, _: &str) -> io::Result<()> {
        Err(read_only())
    }

    fn truncate(&mut self, _: &str, _: u64) -> io::Result<()> {
        Err(read_only())
    }

    fn write_atomic(&mut self, _: &str, _: &mut crate::Produce<'_>) -> io::Result<()> {
        Err(read_only())
    }

    fn remove(&mut self, _: &str) -> io::Result<()> {
        Err(read_only())
    }
}

/// What checking a backup's files found.
pub struct Checked {
    pub manifest: Manifest,
    pub files: BackupFiles,
    /// Remarks that are not damage (bytes a cut-short copy left past the manifest).
    pub notes: Vec<String>,
}

/// Opens the backup in `directory` and checks every file the manifest lists against its
/// length and chunk checksums. Every damaged or missing file is named in the error.
pub fn check(directory: &Path) -> Result<Checked, String> {
    let manifest =
        Manifest::read(directory)?.ok_or_else(|| format!("{} holds no backup ({MANIFEST_FILE} is missing)", directory.display()))?;
    let storage = FileStorage::open(directory).map_err(|error| format!("{}: {error}", directory.display()))?;
    let (mut damage, mut notes) = (Vec::new(), Vec::new());
    for entry in &manifest.files {
        let held = match storage.len(&entry.name) {
            Ok(len) => len,
            Err(error) => {
                damage.push(format!("{}: {error}", entry.name));
                continue;
            }
        };
        if held < entry.bytes {
            damage.push(format!("{}: {held} bytes, the manifest says {}", entry.name, entry.bytes));
            continue;
        }
        if held > entry.bytes {
            notes.push(format!("{}: {} bytes past the manifest (a copy cut short; ignored)", entry.name, held - entry.bytes));
        }
        match digests_to(&storage, &entry.name, &FileEntry::default(), None, entry.bytes, |_, _| Ok(())) {
            Ok((digests, _)) if digests == entry.sha256 => {}
            Ok((digests, _)) => {
                let chunk = digests.iter().zip(&entry.sha256).position(|(found, expected)| found != expected).unwrap_or(digests.len());
                let from = chunk as u64 * BACKUP_CHUNK_BYTES;
                damage.push(format!(
                    "{}: checksum mismatch in bytes {from} to {}",
                    entry.name,
                    (from + BACKUP_CHUNK_BYTES).min(entry.bytes)
                ));
            }
            Err(error) => damage.push(format!("{}: {error}", entry.name)),
        }
    }
    if !damage.is_empty() {
        return Err(format!("the backup in {} is damaged:\n  {}", directory.display(), damage.join("\n  ")));
    }
    let lengths = manifest.files.iter().map(|file| (file.name.clone(), file.bytes)).collect();
    Ok(Checked { files: BackupFiles { storage, lengths }, manifest, notes })
}

/// How far a restore goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Until {
    /// Everything the backup holds.
    End,
    /// The last commit whose seqs are all at or before this one.
    Seq(u64),
    /// The last commit whose events are all stamped at or before this time (ns since the
    /// Unix epoch).
    Time(u64),
}

/// What a restore rebuilt.
#[derive(Clone, Debug)]
pub struct Restored {
    pub position: Position,
    pub last_timestamp: u64,
    /// The seqs of the commit after the one restored to, when the limit fell inside it.
    pub commit_left_out: Option<(u64, u64)>,
    pub snapshot_record: u64,
    pub replayed_records: u64,
}

/// Why a replay stopped early.
enum Stop {
    Journal(JournalError),
    Replay(String),
    /// The next record goes past the limit; its file, offset and seqs.
    Reached {
        file: String,
        offset: u64,
        seqs: (u64, u64),
    },
    /// The record just replayed has an event past the time limit: restore to before it.
    Overshot {
        before_seq: u64,
    },
}

impl From<JournalError> for Stop {
    fn from(error: JournalError) -> Stop {
        Stop::Journal(error)
    }
}

/// The newest snapshot a restore to `until` can start from (or none: replay from record 1).
fn starting_snapshot(files: &BackupFiles, manifest: &Manifest, until: Until) -> (State, Position) {
    let mut names: Vec<&str> =
        manifest.files.iter().map(|f| f.name.as_str()).filter(|n| snapshot::parse_snapshot_name(n).is_some()).collect();
    names.sort_unstable();
    for name in names.into_iter().rev() {
        let Ok((position, _)) = snapshot::read_header(files, name) else { continue };
        if matches!(until, Until::Seq(seq) if position.last_seq > seq) {
            continue;
        }
        match snapshot::read(files, name) {
            Ok((state, _)) if matches!(until, Until::Time(time) if state.last_timestamp() > time) => continue,
            Ok(loaded) => return loaded,
            Err(reason) => tracing::warn!(file = %name, %reason, "passing over a snapshot that does not read back intact"),
        }
    }
    (State::new(), Position::default())
}

/// Where a restored journal is cut: the file and offset of the first record left out.
type Cut = Option<(String, u64)>;

/// Replays the backup up to `until` into a state; returns it with what the restore reached
/// and where the journal is to be cut.
fn replay_until(files: &mut BackupFiles, manifest: &Manifest, until: Until) -> Result<(State, Restored, Cut), String> {
    let (mut state, start) = starting_snapshot(files, manifest, until);
    let mut restored =
        Restored { position: start, last_timestamp: 0, commit_left_out: None, snapshot_record: start.record, replayed_records: 0 };
    let recovered = Journal::recover(
        files,
        start,
        false,
        |read| {
            let first_seq = state.last_seq() + 1;
            let beyond = match until {
                Until::End => false,
                Until::Seq(seq) => read.last_seq > seq,
                Until::Time(time) => {
                    batch_timestamp(read.payload).map_err(|e| Stop::Replay(format!("record {} does not decode: {e}", read.record)))? > time
                }
            };
            if beyond {
                return Err(Stop::Reached { file: read.file.to_owned(), offset: read.offset, seqs: (first_seq, read.last_seq) });
            }
            let replayed = replay_record(&mut state, read.payload)
                .map_err(|e| Stop::Replay(format!("record {} does not decode: {e}", read.record)))?;
            if replayed != read.last_seq {
                return Err(Stop::Replay(format!(
                    "record {} replays to seq {replayed}, but was written at seq {}",
                    read.record, read.last_seq
                )));
            }
            if matches!(until, Until::Time(time) if state.last_timestamp() > time) {
                return Err(Stop::Overshot { before_seq: first_seq - 1 });
            }
            restored.position = Position { record: read.record, checksum: read.checksum, last_seq: read.last_seq };
            restored.replayed_records += 1;
            Ok(())
        },
        |_, _| {},
    );
    let cut = match recovered {
        Ok(journal) if journal.torn_bytes() > 0 => {
            return Err(format!("the backup's journal ends inside a record, in {}", journal.tip().segment))
        }
        Ok(_) => None,
        Err(Stop::Reached { file, offset, seqs }) => {
            restored.commit_left_out = matches!(until, Until::Seq(seq) if seq >= seqs.0).then_some(seqs);
            Some((file, offset))
        }
        Err(Stop::Overshot { before_seq }) => return replay_until(files, manifest, Until::Seq(before_seq)),
        Err(Stop::Journal(error)) => return Err(error.to_string()),
        Err(Stop::Replay(reason)) => return Err(reason),
    };
    restored.last_timestamp = state.last_timestamp();
    Ok((state, restored, cut))
}

/// Rebuilds, in the new data directory `to`, the ledger as it was right after the last
/// commit within `until`: the backup's journal up to that commit, a snapshot of the state
/// there (so it starts without a replay), and the key file. It is written beside `to` and
/// renamed into place last, so a restore cut short leaves nothing that looks like a ledger.
pub fn restore(checked: Checked, to: &Path, until: Until) -> Result<Restored, String> {
    let shown = to.display();
    if let Until::Seq(seq) = until {
        if seq > checked.manifest.last_seq {
            return Err(format!("the backup ends at seq {}; it cannot restore to seq {seq}", checked.manifest.last_seq));
        }
    }
    if to.exists() {
        let mut held = std::fs::read_dir(to).map_err(|e| format!("{shown}: {e}"))?;
        if let Some(entry) = held.next() {
            let name = entry.map_err(|e| format!("{shown}: {e}"))?.file_name();
            return Err(format!("{shown} is not empty (it holds {}); restore into a new directory", name.to_string_lossy()));
        }
    }
    let name = to.file_name().ok_or_else(|| format!("{shown} names no directory to restore into"))?;
    let partial = to.with_file_name(format!("{}.restoring", name.to_string_lossy()));
    if partial.exists() {
        return Err(format!("{} is left from a restore that did not finish: remove it, then restore again", partial.display()));
    }
    let parent = to.parent().filter(|parent| !parent.as_os_str().is_empty()).unwrap_or(Path::new("."));
    make_durably(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    let restored = match write_restored(checked, &partial, until) {
        Ok(restored) => restored,
        Err(error) => {
            let _ = std::fs::remove_dir_all(&partial);
            return Err(error);
        }
    };
    // Onto nothing, or onto an empty directory: rename replaces an empty one.
    std::fs::rename(&partial, to).map_err(|e| format!("moving {} to {shown}: {e}", partial.display()))?;
    File::open(parent).and_then(|directory| directory.sync_all()).map_err(|e| format!("{}: {e}", parent.display()))?;
    Ok(restored)
}

fn write_restored(checked: Checked, to: &Path, until: Until) -> Result<Restored, String> {
    let Checked { mut files, manifest, .. } = checked;
    let shown = to.display();
    let _lock = crate::engine::lock_directory(to).map_err(|error| error.to_string())?;
    let mut storage = FileStorage::open(to).map_err(|error| format!("{shown}: {error}"))?;
    let (state, restored, cut) = replay_until(&mut files, &manifest, until)?;
    if until == Until::End {
        let reached = restored.position;
        if (reached.record, checksum_hex(reached.checksum), reached.last_seq)
            != (manifest.record, manifest.record_checksum.clone(), manifest.last_seq)
        {
            return Err(format!(
                "the backup's journal ends at record {} (seq {}), but its manifest says record {} (seq {})",
                reached.record, reached.last_seq, manifest.record, manifest.last_seq
            ));
        }
    }
    let io = |error: io::Error| format!("restoring into {shown}: {error}");
    let last_record = restored.position.record;
    for (first, entry) in manifest.segments() {
        if first > last_record || last_record == 0 {
            break;
        }
        let to_bytes = match &cut {
            Some((file, offset)) if *file == entry.name => *offset,
            _ => entry.bytes,
        };
        read_range(&files, &entry.name, 0, to_bytes, |_, piece| storage.append(&entry.name, piece)).map_err(io)?;
        storage.sync(&entry.name).map_err(io)?;
    }
    if let Some(keys) = manifest.entry(KEYS_FILE) {
        let bytes = files.read_whole(KEYS_FILE, KEYS_FILE_BYTES_MAX).map_err(io)?;
        if vec![hex(&Sha256::digest(&bytes))] != keys.sha256 {
            return Err(format!("the backup's {KEYS_FILE} changed while it was read (is a backup writing it?): restore again"));
        }
        storage.write_atomic(KEYS_FILE, &mut |emit| emit(&bytes)).map_err(io)?;
    }
    if last_record > 0 {
        // The snapshot stands on the history segments the restored state does.
        for segment in 0..state.history_segments() as u32 {
            let name = history::segment_name(segment);
            let len = files.len(&name).map_err(io)?;
            read_range(&files, &name, 0, len, |_, piece| storage.append(&name, piece)).map_err(io)?;
            storage.sync(&name).map_err(io)?;
        }
        snapshot::write(&mut storage, &state, restored.position).map_err(io)?;
    }
    Ok(restored)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file copied in steps that start and end inside and on chunk boundaries ends up with
    /// the same bytes and the same digests as a copy made at once.
    #[test]
    fn copying_in_steps_with_or_without_the_unfinished_hash_matches_a_copy_made_at_once() {
        let directory = tempfile::tempdir().unwrap();
        let mut source = FileStorage::open(&directory.path().join("source")).unwrap();
        let chunk = BACKUP_CHUNK_BYTES;
        let total = 2 * chunk + chunk / 2;
        let bytes: Vec<u8> = (0..total).map(|i| (i * 7 % 251) as u8).collect();
        source.append("journal-00000000000000000001.tj", &bytes).unwrap();
        source.sync("journal-00000000000000000001.tj").unwrap();
        let name = "journal-00000000000000000001.tj";
        let mut stepped = Destination::open(&directory.path().join("stepped"), None).unwrap();
        for (step, to) in [chunk / 3, chunk / 2, chunk, chunk + 5, 2 * chunk + 1, 2 * chunk + 7, total].into_iter().enumerate() {
            if step == 5 {
                // Without the hash carried over, the last chunk is hashed again from its start.
                assert!(stepped.unfinished.is_some(), "the step before ended inside a chunk");
                stepped.unfinished = None;
            }
            stepped.extend(&source, name, to).unwrap();
            // A copy cut short after the manifest's end is cut back before the next.
            stepped.storage.append(name, b"left by a copy cut short").unwrap();
        }
        let mut at_once = Destination::open(&directory.path().join("at-once"), None).unwrap();
        at_once.extend(&source, name, total).unwrap();
        assert_eq!(stepped.manifest.entry(name), at_once.manifest.entry(name));
        assert_eq!(at_once.manifest.entry(name).unwrap().sha256.len(), 3);
        let mut copied = vec![0u8; total as usize];
        stepped.storage.read_exact_at(name, 0, &mut copied).unwrap();
        assert!(copied == bytes, "the stepped copy holds the source's bytes");
        let (whole, _) = digests_to(&source, name, &FileEntry::default(), None, total, |_, _| Ok(())).unwrap();
        assert_eq!(at_once.manifest.entry(name).unwrap().sha256, whole);
    }
}
