//! A storage that lives in memory and misbehaves on cue, driven by the simulation's seed:
//! writes not yet synced are lost at a crash except for a random torn prefix, reads sometimes
//! return a flipped bit, fsync sometimes fails, and the disk is sometimes full.

use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Mutex};
use tally_core::records::HistoryRead;
use tally_engine::history::SegmentReader;
use tally_engine::{Produce, Storage};
use tally_testkit::Random;

/// How often each fault strikes, per thousand operations.
#[derive(Clone, Copy, Debug)]
pub struct Faults {
    pub read_bit_flip: u32,
    pub sync_failure: u32,
    pub disk_full: u32,
    /// At a crash, keep a random prefix of unsynced bytes instead of none.
    pub torn_writes: bool,
}

impl Faults {
    pub const NONE: Faults = Faults { read_bit_flip: 0, sync_failure: 0, disk_full: 0, torn_writes: false };
    pub const DEFAULT: Faults = Faults { read_bit_flip: 5, sync_failure: 8, disk_full: 5, torn_writes: true };
}

/// What the storage did to the system under test.
#[derive(Clone, Copy, Debug, Default)]
pub struct FaultCounts {
    pub bit_flips: u64,
    pub sync_failures: u64,
    pub disk_full: u64,
    pub torn_bytes_kept: u64,
    pub unsynced_bytes_lost: u64,
}

#[derive(Default, Clone)]
struct File {
    durable: Vec<u8>,
    unsynced: Vec<u8>,
}

struct Disk {
    files: BTreeMap<String, File>,
    random: Random,
    faults: Faults,
    counts: FaultCounts,
}

#[derive(Clone)]
pub struct SimStorage {
    disk: Arc<Mutex<Disk>>,
}

fn not_found(name: &str) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, name.to_owned())
}

impl SimStorage {
    pub fn new(seed: u64, faults: Faults) -> SimStorage {
        let disk = Disk { files: BTreeMap::new(), random: Random::new(seed), faults, counts: FaultCounts::default() };
        SimStorage { disk: Arc::new(Mutex::new(disk)) }
    }

    /// Power loss: returns what a restarted machine would find. Unsynced bytes are lost,
    /// except a random prefix of them with torn writes on.
    pub fn crash(&self) -> SimStorage {
        let torn = self.disk.lock().expect("disk lock").faults.torn_writes;
        self.crash_with(|random, unsynced| if torn && unsynced > 0 { random.below(unsynced + 1) } else { 0 })
    }

    /// Power loss that keeps exactly `torn_bytes` (at most) of each file's unsynced bytes.
    pub fn crash_keeping(&self, torn_bytes: usize) -> SimStorage {
        self.crash_with(|_, unsynced| torn_bytes.min(unsynced))
    }

    fn crash_with(&self, mut keep: impl FnMut(&mut Random, usize) -> usize) -> SimStorage {
        let mut disk = self.disk.lock().expect("disk lock");
        let mut counts = disk.counts;
        let mut random = disk.random.clone();
        let files = disk
            .files
            .iter()
            .map(|(name, file)| {
                let kept = keep(&mut random, file.unsynced.len());
                counts.torn_bytes_kept += kept as u64;
                counts.unsynced_bytes_lost += (file.unsynced.len() - kept) as u64;
                let mut durable = file.durable.clone();
                durable.extend_from_slice(&file.unsynced[..kept]);
                (name.clone(), File { durable, unsynced: Vec::new() })
            })
            .collect();
        disk.random.next_u64();
        let faults = disk.faults;
        SimStorage { disk: Arc::new(Mutex::new(Disk { files, random, faults, counts })) }
    }

    pub fn counts(&self) -> FaultCounts {
        self.disk.lock().expect("disk lock").counts
    }

    /// Sets the fault rates from now on.
    pub fn set_faults(&self, faults: Faults) {
        self.disk.lock().expect("disk lock").faults = faults;
    }

    /// Damage on disk: XORs `mask` into the durable byte at `offset` of `name`.
    pub fn corrupt(&self, name: &str, offset: usize, mask: u8) {
        let mut disk = self.disk.lock().expect("disk lock");
        disk.files.get_mut(name).expect("the file exists").durable[offset] ^= mask;
    }
}

impl Storage for SimStorage {
    fn history_writer(&self) -> Option<Box<dyn Storage>> {
        Some(Box::new(self.clone()))
    }

    fn history_reader(&self) -> Option<Arc<dyn HistoryRead>> {
        let disk = self.clone();
        Some(Arc::new(SegmentReader(move |name: &str, offset, buffer: &mut [u8]| disk.read_exact_at(name, offset, buffer))))
    }

    fn list(&self) -> io::Result<Vec<String>> {
        Ok(self.disk.lock().expect("disk lock").files.keys().cloned().collect())
    }

    fn len(&self, name: &str) -> io::Result<u64> {
        let disk = self.disk.lock().expect("disk lock");
        let file = disk.files.get(name).ok_or_else(|| not_found(name))?;
        Ok((file.durable.len() + file.unsynced.len()) as u64)
    }

    fn read_exact_at(&self, name: &str, offset: u64, buffer: &mut [u8]) -> io::Result<()> {
        let mut disk = self.disk.lock().expect("disk lock");
        let file = disk.files.get(name).ok_or_else(|| not_found(name))?;
        let whole = [file.durable.as_slice(), file.unsynced.as_slice()].concat();
        let start = offset as usize;
        let bytes = whole.get(start..start + buffer.len()).ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        buffer.copy_from_slice(bytes);
        let flip = disk.faults.read_bit_flip;
        if !buffer.is_empty() && disk.random.chance(flip) {
            let bit = disk.random.below(buffer.len() * 8);
            buffer[bit / 8] ^= 1 << (bit % 8);
            disk.counts.bit_flips += 1;
        }
        Ok(())
    }

    fn append(&mut self, name: &str, bytes: &[u8]) -> io::Result<()> {
        let mut disk = self.disk.lock().expect("disk lock");
        let full = disk.faults.disk_full;
        if disk.random.chance(full) {
            // Part of the write may land before the disk fills.
            let written = disk.random.below(bytes.len() + 1);
            disk.files.entry(name.to_owned()).or_default().unsynced.extend_from_slice(&bytes[..written]);
            disk.counts.disk_full += 1;
            return Err(io::Error::new(io::ErrorKind::StorageFull, "simulated full disk"));
        }
        disk.files.entry(name.to_owned()).or_default().unsynced.extend_from_slice(bytes);
        Ok(())
    }

    fn sync(&mut self, name: &str) -> io::Result<()> {
        let mut disk = self.disk.lock().expect("disk lock");
        let failure = disk.faults.sync_failure;
        if disk.random.chance(failure) {
            disk.counts.sync_failures += 1;
            return Err(io::Error::other("simulated fsync failure"));
        }
        let file = disk.files.get_mut(name).ok_or_else(|| not_found(name))?;
        let unsynced = std::mem::take(&mut file.unsynced);
        file.durable.extend_from_slice(&unsynced);
        Ok(())
    }

    fn truncate(&mut self, name: &str, len: u64) -> io::Result<()> {
        let mut disk = self.disk.lock().expect("disk lock");
        let file = disk.files.get_mut(name).ok_or_else(|| not_found(name))?;
        let mut whole = [file.durable.as_slice(), file.unsynced.as_slice()].concat();
        whole.truncate(len as usize);
        *file = File { durable: whole, unsynced: Vec::new() };
        Ok(())
    }

    fn write_atomic(&mut self, name: &str, produce: &mut Produce<'_>) -> io::Result<()> {
        let mut bytes = Vec::new();
        produce(&mut |piece| {
            bytes.extend_from_slice(piece);
            Ok(())
        })?;
        let mut disk = self.disk.lock().expect("disk lock");
        let full = disk.faults.disk_full;
        if disk.random.chance(full) {
            disk.counts.disk_full += 1;
            return Err(io::Error::new(io::ErrorKind::StorageFull, "simulated full disk"));
        }
        disk.files.insert(name.to_owned(), File { durable: bytes, unsynced: Vec::new() });
        Ok(())
    }

    fn remove(&mut self, name: &str) -> io::Result<()> {
        let mut disk = self.disk.lock().expect("disk lock");
        disk.files.remove(name).map(|_| ()).ok_or_else(|| not_found(name))
    }
}
