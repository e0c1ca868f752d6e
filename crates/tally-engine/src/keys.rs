//! The embedded store's API keys: one file, `keys`, in the data directory, replaced
//! atomically on every change (through `Storage`, like every other file). A server reads it
//! again every `KEYS_REFRESH_MS`; `tally keys` on a stopped ledger writes it directly.

use crate::storage::{FileStorage, Storage};
use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex};
use tally_core::limits::{ID_LENGTH_MAX, KEYS_MAX, KEY_NAME_LENGTH_MAX, KEY_PREFIXES_MAX};
use tally_ledger::keys::{text, KeyRecord, KeyStore};
use tally_ledger::{LedgerError, LedgerFuture};

pub const KEYS_FILE: &str = "keys";

/// The longest line a key can take in the file: fixed fields, every prefix, the name.
const LINE_BYTES_MAX: usize = 12 + 1 + 5 + 3 * (1 + 20) + 1 + 64 + 1 + KEY_PREFIXES_MAX * (ID_LENGTH_MAX + 1) + KEY_NAME_LENGTH_MAX + 1;

/// The largest key file a ledger can have, so reading it is bounded.
pub const KEYS_FILE_BYTES_MAX: usize = text::HEADER.len() + 1 + KEYS_MAX * LINE_BYTES_MAX;

pub struct FileKeys<S: Storage = FileStorage> {
    storage: Arc<Mutex<S>>,
}

impl FileKeys {
    pub fn open(directory: &Path) -> io::Result<FileKeys> {
        Ok(FileKeys::new(FileStorage::open(directory)?))
    }
}

fn unavailable(error: impl std::fmt::Display) -> LedgerError {
    LedgerError::Unavailable(format!("the key file: {error}"))
}

impl<S: Storage> FileKeys<S> {
    pub fn new(storage: S) -> FileKeys<S> {
        FileKeys { storage: Arc::new(Mutex::new(storage)) }
    }

    fn read(storage: &S) -> Result<Vec<KeyRecord>, LedgerError> {
        if !storage.list().map_err(unavailable)?.iter().any(|name| name == KEYS_FILE) {
            return Ok(Vec::new());
        }
        let bytes = storage.read_whole(KEYS_FILE, KEYS_FILE_BYTES_MAX).map_err(unavailable)?;
        let text = String::from_utf8(bytes).map_err(unavailable)?;
        text::read(&text).map_err(unavailable)
    }

    fn write(storage: &mut S, keys: &[KeyRecord]) -> Result<(), LedgerError> {
        let text = text::write(keys);
        storage.write_atomic(KEYS_FILE, &mut |emit| emit(text.as_bytes())).map_err(unavailable)
    }

    fn change<T>(storage: &Mutex<S>, change: impl FnOnce(&mut Vec<KeyRecord>) -> Result<T, LedgerError>) -> Result<T, LedgerError> {
        let mut storage = storage.lock().expect("key storage lock");
        let mut keys = Self::read(&storage)?;
        let answer = change(&mut keys)?;
        Self::write(&mut storage, &keys)?;
        Ok(answer)
    }

    /// Runs `work` on the file off the threads that answer requests (a large key file takes
    /// a while to read, and opening a file may wait for a descriptor).
    fn off_thread<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Mutex<S>) -> Result<T, LedgerError> + Send + 'static,
    ) -> LedgerFuture<'_, T> {
        let storage = self.storage.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || work(&storage)).await.map_err(|error| unavailable(format!("the key file task: {error}")))?
        })
    }
}

impl<S: Storage + Sync> KeyStore for FileKeys<S> {
    fn keys(&self) -> LedgerFuture<'_, Vec<KeyRecord>> {
        self.off_thread(|storage| Self::read(&storage.lock().expect("key storage lock")))
    }

    fn add(&self, record: KeyRecord) -> LedgerFuture<'_, ()> {
        self.off_thread(move |storage| {
            Self::change(storage, |keys| {
                if keys.len() >= KEYS_MAX {
                    return Err(LedgerError::Unavailable(format!("a ledger holds at most {KEYS_MAX} keys")));
                }
                if keys.iter().any(|key| key.id == record.id) {
                    return Err(LedgerError::Unavailable("a key with this id exists; make another".into()));
                }
                keys.push(record);
                Ok(())
            })
        })
    }

    fn revoke(&self, id: &str, at_ms: u64) -> LedgerFuture<'_, Option<KeyRecord>> {
        let id = id.to_owned();
        self.off_thread(move |storage| {
            Self::change(storage, |keys| {
                Ok(keys.iter_mut().find(|key| key.id == id).map(|key| {
                    key.revoked_at_ms.get_or_insert(at_ms);
                    key.clone()
                }))
            })
        })
    }
}
