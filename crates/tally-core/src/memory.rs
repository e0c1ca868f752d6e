//! How much memory a state holds, part by part: what a memory budget is measured against, and
//! what `/metrics` reports. Sizes come from each structure's capacity (what it allocated, not
//! only what it uses), so they track the resident size closely; the allocator's own overhead
//! and the ordered maps' node slack are estimated.

use crate::id::Id;
use crate::state::{Account, ExpiryRecord, RenewalRecord, Settings, State, Totals, UpdateRecord};
use std::mem::size_of;

/// Bytes held by each part of a state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryUse {
    /// Accounts: their records, settings, and the maps that find them by id, in id order and
    /// under their parents.
    pub accounts: usize,
    /// Every account's list of changes and its checkpoints (balances `as_of` any seq).
    pub account_history: usize,
    /// Transfer records, 64 bytes each.
    pub transfer_records: usize,
    /// The table from a transfer id to its record, for the records not yet in id runs.
    pub transfer_index: usize,
    /// What memory keeps of the id runs: their summaries and the id filter (under 4 bytes an
    /// id handed off).
    pub id_runs: usize,
    /// Transfer ids and metadata.
    pub transfer_text: usize,
    /// Pages of handed-off history read back recently (at most `HISTORY_CACHE_BYTES`).
    pub history_cache: usize,
    /// Which event each journal position holds, and which key made it.
    pub journal: usize,
    /// Open holds by expiry, settings changes, expiries and renewals.
    pub other: usize,
}

impl MemoryUse {
    /// Each part with its name, as `/metrics` labels it.
    pub fn parts(&self) -> [(&'static str, usize); 9] {
        [
            ("accounts", self.accounts),
            ("account_history", self.account_history),
            ("transfer_records", self.transfer_records),
            ("transfer_index", self.transfer_index),
            ("id_runs", self.id_runs),
            ("transfer_text", self.transfer_text),
            ("history_cache", self.history_cache),
            ("journal", self.journal),
            ("other", self.other),
        ]
    }

    pub fn total(&self) -> usize {
        self.parts().iter().map(|(_, bytes)| bytes).sum()
    }
}

/// A B-tree spends about half again its entries' size on node slack and links.
fn ordered(entries: usize, entry: usize) -> usize {
    entries * entry * 3 / 2
}

/// A hash table of `capacity` entries: its buckets (kept at most 7/8 full, a power of two) and
/// one control byte each.
pub(crate) fn hashed(capacity: usize, entry: usize) -> usize {
    if capacity == 0 {
        return 0;
    }
    (capacity * 8 / 7).next_power_of_two() * (entry + 1)
}

/// What an id holds outside itself: nothing up to 24 bytes (kept inline), its text beyond.
fn id_heap(id: &Id) -> usize {
    if id.as_str().len() > size_of::<Id>() {
        id.as_str().len()
    } else {
        0
    }
}

/// What settings hold outside themselves: their metadata's text.
fn settings_heap(settings: &Settings) -> usize {
    settings.metadata.as_ref().map_or(0, |metadata| metadata.as_str().len())
}

impl State {
    /// The memory this state holds, part by part. Walks every account once (a million take a
    /// few milliseconds), so it is for a metrics scrape, not for every request.
    pub fn memory(&self) -> MemoryUse {
        let (mut own, mut history) = (0, 0);
        for account in &self.accounts {
            own += id_heap(&account.id) + settings_heap(&account.settings) + settings_heap(&account.created_settings);
            own += account.updates.capacity() * size_of::<u32>();
            history += account.history.capacity() * size_of::<u64>() + account.checkpoints.capacity() * size_of::<Totals>();
        }
        let accounts = self.accounts.len();
        let index_entry = size_of::<Id>() + size_of::<u32>();
        let accounts_bytes = self.accounts.capacity() * size_of::<Account>()
            + own
            + hashed(self.account_index.capacity(), index_entry)
            + ordered(accounts, index_entry)
            + ordered(self.children.len(), index_entry);
        let other = ordered(self.holds_by_expiry.len(), size_of::<(u64, u32)>())
            + hashed(self.hold_expiry.capacity(), size_of::<(u32, u64)>())
            + self.updates.capacity() * size_of::<UpdateRecord>()
            + self.expiries.capacity() * size_of::<ExpiryRecord>()
            + self.renewals.capacity() * size_of::<RenewalRecord>();
        let (records, text, cache) = self.records.allocated_bytes();
        MemoryUse {
            accounts: accounts_bytes,
            account_history: history,
            transfer_records: records,
            transfer_index: self.transfer_index_bytes(),
            id_runs: self.id_runs_bytes(),
            transfer_text: text,
            history_cache: cache,
            journal: self.log.allocated_bytes() + self.actors.allocated_bytes(),
            other,
        }
    }
}
