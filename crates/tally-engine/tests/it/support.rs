//! A storage that lives in memory and can fail on cue: it forgets unsynced bytes at a crash,
//! tears the last write, and fails fsync when told to. This is how power loss is simulated.

use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Mutex};
use tally_core::*;
use tally_engine::{Produce, Storage};

#[derive(Default)]
pub struct Disk {
    /// Per file: the durable bytes, and the bytes written since the last sync.
    pub files: BTreeMap<String, (Vec<u8>, Vec<u8>)>,
    pub fail_sync: bool,
}

#[derive(Clone, Default)]
pub struct MemoryStorage {
    pub disk: Arc<Mutex<Disk>>,
}

impl MemoryStorage {
    /// Power loss: everything not synced is gone, except `keep_torn` bytes of it per file,
    /// which survive as a torn write.
    pub fn crash(&self, keep_torn: usize) -> MemoryStorage {
        let disk = self.disk.lock().unwrap();
        let files = disk
            .files
            .iter()
            .map(|(name, (durable, unsynced))| {
                let mut kept = durable.clone();
                kept.extend_from_slice(&unsynced[..keep_torn.min(unsynced.len())]);
                (name.clone(), (kept, Vec::new()))
            })
            .collect();
        MemoryStorage { disk: Arc::new(Mutex::new(Disk { files, fail_sync: false })) }
    }

    pub fn whole(&self, name: &str) -> Vec<u8> {
        let disk = self.disk.lock().unwrap();
        let (durable, unsynced) = &disk.files[name];
        [durable.as_slice(), unsynced.as_slice()].concat()
    }

    pub fn names(&self) -> Vec<String> {
        self.disk.lock().unwrap().files.keys().cloned().collect()
    }
}

fn missing(name: &str) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, name.to_owned())
}

impl Storage for MemoryStorage {
    fn list(&self) -> io::Result<Vec<String>> {
        Ok(self.names())
    }
    fn len(&self, name: &str) -> io::Result<u64> {
        Ok(self.whole_checked(name)?.len() as u64)
    }
    fn read_exact_at(&self, name: &str, offset: u64, buffer: &mut [u8]) -> io::Result<()> {
        let bytes = self.whole_checked(name)?;
        let start = offset as usize;
        let slice = bytes.get(start..start + buffer.len()).ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        buffer.copy_from_slice(slice);
        Ok(())
    }
    fn append(&mut self, name: &str, bytes: &[u8]) -> io::Result<()> {
        self.disk.lock().unwrap().files.entry(name.to_owned()).or_default().1.extend_from_slice(bytes);
        Ok(())
    }
    fn sync(&mut self, name: &str) -> io::Result<()> {
        let mut disk = self.disk.lock().unwrap();
        if disk.fail_sync {
            return Err(io::Error::other("injected fsync failure"));
        }
        let (durable, unsynced) = disk.files.get_mut(name).ok_or_else(|| missing(name))?;
        durable.append(unsynced);
        Ok(())
    }
    fn truncate(&mut self, name: &str, len: u64) -> io::Result<()> {
        let whole = self.whole_checked(name)?;
        self.disk.lock().unwrap().files.insert(name.to_owned(), (whole[..len as usize].to_vec(), Vec::new()));
        Ok(())
    }
    fn write_atomic(&mut self, name: &str, produce: &mut Produce<'_>) -> io::Result<()> {
        let mut bytes = Vec::new();
        produce(&mut |piece| {
            bytes.extend_from_slice(piece);
            Ok(())
        })?;
        self.disk.lock().unwrap().files.insert(name.to_owned(), (bytes, Vec::new()));
        Ok(())
    }
    fn remove(&mut self, name: &str) -> io::Result<()> {
        self.disk.lock().unwrap().files.remove(name).map(|_| ()).ok_or_else(|| missing(name))
    }
}

impl MemoryStorage {
    fn whole_checked(&self, name: &str) -> io::Result<Vec<u8>> {
        if !self.disk.lock().unwrap().files.contains_key(name) {
            return Err(missing(name));
        }
        Ok(self.whole(name))
    }
}

pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(future)
}

pub fn id(text: &str) -> Id {
    Id::parse(text).unwrap()
}

pub fn setup_requests() -> Vec<Request> {
    let account = |name: &str, min: Option<Decimal>| NewAccount {
        id: id(name),
        asset: AssetCode::parse("USD").unwrap(),
        parent: None,
        min_balance: min,
        max_balance: None,
        metadata: None,
    };
    vec![
        Request::CreateAssets(vec![NewAsset { code: AssetCode::parse("USD").unwrap(), scale: 2 }]),
        Request::CreateAccounts(vec![account("world", None), account("alice", Some(Decimal::ZERO))]),
    ]
}

pub fn fund(name: &str, amount: &str) -> Request {
    Request::CreateTransfers(vec![NewTransfer {
        id: id(name),
        kind: TransferKind::Direct { debit: id("world"), credit: id("alice"), amount: Decimal::parse(amount).unwrap() },
        asset: None,
        linked: false,
        metadata: Some(r#"{"note":"x"}"#.into()),
        if_debit_version: None,
        if_credit_version: None,
    }])
}
