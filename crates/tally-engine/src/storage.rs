//! All of the engine's I/O goes through `Storage`, a directory of named files. The file
//! implementation is what runs in production; tests plug in storage that fails on cue, tears
//! writes and forgets what was not synced, which simulates power loss as `kill -9` cannot.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tally_core::records::HistoryRead;

/// Writes a file's bytes through the emitter it is given.
pub type Produce<'a> = dyn FnMut(&mut dyn FnMut(&[u8]) -> io::Result<()>) -> io::Result<()> + 'a;

pub trait Storage: Send + 'static {
    /// The names of all files, sorted.
    fn list(&self) -> io::Result<Vec<String>>;
    fn len(&self, name: &str) -> io::Result<u64>;
    /// Fills `buffer` from `offset`; fails if the file is shorter.
    fn read_exact_at(&self, name: &str, offset: u64, buffer: &mut [u8]) -> io::Result<()>;
    /// The whole file, read through one handle, so a file replaced by `write_atomic` meanwhile
    /// is read as the old or the new one, never a mix; longer than `limit` is an error.
    fn read_whole(&self, name: &str, limit: usize) -> io::Result<Vec<u8>> {
        let len = self.len(name)?;
        let mut bytes = vec![0u8; checked_len(name, len, limit)?];
        self.read_exact_at(name, 0, &mut bytes)?;
        Ok(bytes)
    }
    /// Appends to the file, creating it if needed. Nothing is durable before `sync`.
    fn append(&mut self, name: &str, bytes: &[u8]) -> io::Result<()>;
    /// Makes everything appended to `name` durable, and the file's existence with it.
    fn sync(&mut self, name: &str) -> io::Result<()>;
    /// Cuts the file to `len` bytes, durably.
    fn truncate(&mut self, name: &str, len: u64) -> io::Result<()>;
    /// Replaces the whole file durably with what `produce` emits, piece by piece: readers
    /// see the old or the new file, never a mix.
    fn write_atomic(&mut self, name: &str, produce: &mut Produce<'_>) -> io::Result<()>;
    fn remove(&mut self, name: &str) -> io::Result<()>;
    /// Fails if the storage is no longer where it was opened (its directory removed or
    /// replaced under a running server): writing on would go to files no one will find.
    fn check_place(&self) -> io::Result<()> {
        Ok(())
    }
    /// A reader of this storage's history files that any thread may use (a file is written
    /// whole, and written again only with the same bytes, or removed once no state uses it),
    /// or `None` to keep every transfer record in memory.
    fn history_reader(&self) -> Option<Arc<dyn HistoryRead>> {
        None
    }
    /// A second handle on the same files, for the thread that writes history segments (no
    /// other handle writes them), or `None` to write none.
    fn history_writer(&self) -> Option<Box<dyn Storage>> {
        None
    }
}

/// Files in a directory. Append handles stay open; a created file's directory entry is made
/// durable by syncing the directory once, on the file's first sync.
pub struct FileStorage {
    directory: PathBuf,
    open: HashMap<String, (File, bool)>,
    /// The lock file as it was when the storage was opened (device, inode), if there was one.
    lock: Option<(u64, u64)>,
}

fn checked_len(name: &str, len: u64, limit: usize) -> io::Result<usize> {
    usize::try_from(len)
        .ok()
        .filter(|len| *len <= limit)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("{name}: {len} bytes, more than {limit} it may hold")))
}

/// The lock file a server holds in its data directory.
pub const LOCK_FILE: &str = "tally.lock";

fn identity(path: &Path) -> io::Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let metadata = fs::metadata(path)?;
    Ok((metadata.dev(), metadata.ino()))
}

/// The suffix of a file being written by `write_atomic`, before it is renamed into place.
const PARTIAL_SUFFIX: &str = ".partial";

impl FileStorage {
    pub fn open(directory: &Path) -> io::Result<FileStorage> {
        fs::create_dir_all(directory)?;
        let lock = identity(&directory.join(LOCK_FILE)).ok();
        Ok(FileStorage { directory: directory.to_path_buf(), open: HashMap::new(), lock })
    }

    /// Removes what an interrupted `write_atomic` left: a partial file is never complete (a
    /// complete one was renamed), so nothing is lost. Only the directory's owner may do this
    /// (a live server may be writing one right now).
    pub fn remove_partial_files(&mut self) -> io::Result<()> {
        for name in self.list()?.into_iter().filter(|name| name.ends_with(PARTIAL_SUFFIX)) {
            fs::remove_file(self.directory.join(name))?;
        }
        Ok(())
    }

    pub fn directory(&self) -> &Path {
        &self.directory
    }

    fn path(&self, name: &str) -> PathBuf {
        assert!(!name.contains('/') && !name.starts_with('.'), "storage names are plain file names");
        self.directory.join(name)
    }

    fn sync_directory(&self) -> io::Result<()> {
        patiently(|| File::open(&self.directory))?.sync_all()
    }
}

/// How long opening a file waits, in all, for the process to have a descriptor free.
const DESCRIPTOR_WAIT: Duration = Duration::from_secs(5);
const DESCRIPTOR_RETRY: Duration = Duration::from_millis(10);

/// Opens with `open`, waiting while the process is out of descriptors: running out is
/// backpressure (connections close and give theirs back), not a storage failure that would
/// stop the ledger. The server keeps descriptors in reserve, so this is the last line.
fn patiently<T>(open: impl Fn() -> io::Result<T>) -> io::Result<T> {
    let mut waited = Duration::ZERO;
    loop {
        match open() {
            Err(error) if matches!(error.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) && waited < DESCRIPTOR_WAIT => {
                std::thread::sleep(DESCRIPTOR_RETRY);
                waited += DESCRIPTOR_RETRY;
            }
            opened => return opened,
        }
    }
}

impl Storage for FileStorage {
    fn list(&self) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(&self.directory)? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                if let Some(name) = entry.file_name().to_str() {
                    names.push(name.to_owned());
                }
            }
        }
        names.sort();
        Ok(names)
    }

    fn len(&self, name: &str) -> io::Result<u64> {
        Ok(fs::metadata(self.path(name))?.len())
    }

    fn read_exact_at(&self, name: &str, offset: u64, buffer: &mut [u8]) -> io::Result<()> {
        patiently(|| File::open(self.path(name)))?.read_exact_at(buffer, offset)
    }

    fn read_whole(&self, name: &str, limit: usize) -> io::Result<Vec<u8>> {
        use std::io::Read;
        let file = patiently(|| File::open(self.path(name)))?;
        let len = checked_len(name, file.metadata()?.len(), limit)?;
        let mut bytes = Vec::with_capacity(len);
        // One byte more than the limit tells a file that grew past it from one that fits.
        file.take(limit as u64 + 1).read_to_end(&mut bytes)?;
        checked_len(name, bytes.len() as u64, limit)?;
        Ok(bytes)
    }

    fn append(&mut self, name: &str, bytes: &[u8]) -> io::Result<()> {
        if !self.open.contains_key(name) {
            let path = self.path(name);
            let existed = path.exists();
            let file = patiently(|| OpenOptions::new().create(true).append(true).open(&path))?;
            self.open.insert(name.to_owned(), (file, !existed));
        }
        let (file, _) = self.open.get_mut(name).expect("opened above");
        file.write_all(bytes)
    }

    fn sync(&mut self, name: &str) -> io::Result<()> {
        let Some((file, created)) = self.open.get_mut(name) else {
            return patiently(|| File::open(self.path(name)))?.sync_data();
        };
        file.sync_data()?;
        if std::mem::take(created) {
            self.sync_directory()?;
        }
        Ok(())
    }

    fn truncate(&mut self, name: &str, len: u64) -> io::Result<()> {
        self.open.remove(name);
        let file = patiently(|| OpenOptions::new().write(true).open(self.path(name)))?;
        file.set_len(len)?;
        file.sync_all()
    }

    fn write_atomic(&mut self, name: &str, produce: &mut Produce<'_>) -> io::Result<()> {
        let temporary = self.path(&format!("{name}{PARTIAL_SUFFIX}"));
        let written = (|| {
            let mut file = io::BufWriter::with_capacity(1 << 20, patiently(|| File::create(&temporary))?);
            produce(&mut |bytes| file.write_all(bytes))?;
            file.into_inner().map_err(|e| e.into_error())?.sync_all()
        })();
        if let Err(error) = written {
            // A failed write leaves nothing behind (a full disk must not stay full of it).
            let _ = fs::remove_file(&temporary);
            return Err(error);
        }
        fs::rename(&temporary, self.path(name))?;
        self.sync_directory()
    }

    fn remove(&mut self, name: &str) -> io::Result<()> {
        self.open.remove(name);
        fs::remove_file(self.path(name))?;
        self.sync_directory()
    }

    fn check_place(&self) -> io::Result<()> {
        let Some(opened) = self.lock else { return Ok(()) };
        match identity(&self.directory.join(LOCK_FILE)) {
            Ok(now) if now == opened => Ok(()),
            _ => Err(io::Error::other(format!(
                "the data directory {} was removed or replaced while in use (its lock file is gone or another)",
                self.directory.display()
            ))),
        }
    }

    fn history_writer(&self) -> Option<Box<dyn Storage>> {
        Some(Box::new(FileStorage::open(&self.directory).ok()?))
    }

    fn history_reader(&self) -> Option<Arc<dyn HistoryRead>> {
        let files = OpenFiles { directory: self.directory.clone(), open: Mutex::new(HashMap::new()) };
        Some(Arc::new(crate::history::SegmentReader(move |name: &str, offset, buffer: &mut [u8]| {
            files.get(name)?.read_exact_at(buffer, offset)
        })))
    }
}

/// History files kept open for reading: a page read is then one `pread`, not an open, a read
/// and a close (a replay over indexed segments reads a page of an id run for every transfer).
struct OpenFiles {
    directory: PathBuf,
    open: Mutex<HashMap<String, Arc<File>>>,
}

/// History files kept open at most: few next to the descriptors a process may open.
const OPEN_HISTORY_FILES: usize = 64;

/// Whether an open file is still the one its name leads to: a file replaced or removed has no
/// link left (a segment is written again after a crash; a merged id run is removed, and its
/// disk space is freed only once no handle holds it).
fn still_linked(file: &File) -> bool {
    use std::os::unix::fs::MetadataExt;
    file.metadata().is_ok_and(|metadata| metadata.nlink() > 0)
}

impl OpenFiles {
    fn get(&self, name: &str) -> io::Result<Arc<File>> {
        let mut open = self.open.lock().expect("open history files lock");
        if let Some(file) = open.get(name).filter(|file| still_linked(file)) {
            return Ok(file.clone());
        }
        open.retain(|_, file| still_linked(file));
        if open.len() >= OPEN_HISTORY_FILES {
            open.clear();
        }
        let file = Arc::new(patiently(|| File::open(self.directory.join(name)))?);
        open.insert(name.to_owned(), file.clone());
        Ok(file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn running_out_of_descriptors_waits_and_other_errors_do_not() {
        let failures = Cell::new(3);
        let opened = patiently(|| {
            if failures.get() == 0 {
                return Ok("opened");
            }
            failures.set(failures.get() - 1);
            Err(io::Error::from_raw_os_error(libc::EMFILE))
        });
        assert_eq!(opened.unwrap(), "opened", "three refusals for want of descriptors, then a descriptor came back");
        let calls = Cell::new(0);
        let refused = patiently(|| -> io::Result<()> {
            calls.set(calls.get() + 1);
            Err(io::ErrorKind::PermissionDenied.into())
        });
        assert!(refused.is_err() && calls.get() == 1, "any other failure is reported at once");
    }
}
