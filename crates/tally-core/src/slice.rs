//! A state holding only the rows one batch reads: how a store that keeps the ledger in a
//! database (the PostgreSQL engine) runs exactly the same `apply` as the embedded engine.
//!
//! The store loads the assets, accounts (with every ancestor) and transfer records the
//! batch names, plus the holds that are due, into `State::slice`, applies the batch with the
//! ordinary `State::apply` / `State::expire`, and writes back what `changes` reports. A slice
//! starts at the ledger's real `last_seq` and clock, so seqs and timestamps are the ones the
//! whole ledger would assign. Rules that need rows the store did not load cannot be checked
//! (conservation sums over whole trees), so those checks are skipped for slices; the store's
//! loader guarantees the rows `apply` reads are present (see the assertions below).
//!
//! Two notions let a store load less than everything without editing a rule's inputs:
//! - A transfer loaded *as a reference* (`load_reference`) is there for its id and outcome
//!   only, so that a resend of its id is answered; its accounts need not be loaded, and the
//!   batch may neither post, void nor expire it.
//! - The slice's *horizon* is the first instant it cannot see past: an open hold loaded as a
//!   reference may come due there, or (`limit_horizon`) the store loaded only the earliest of
//!   the holds that are due. `batch_time` keeps a batch's clock before the horizon, so the
//!   batch expires exactly the holds a whole ledger would at that time, and its record
//!   replays identically.

use crate::chunked::Span;
use crate::event::ResultCode;
use crate::id::{AssetCode, Id};
use crate::metadata::Metadata;
use crate::state::{Account, Asset, HoldState, LogEntry, RecordKind, Settings, State, Totals, TransferRecord};

const NONE: u32 = u32::MAX;

/// What a slice held when it was loaded.
#[derive(Debug, Default)]
pub(crate) struct Loaded {
    accounts: usize,
    /// The hold state of each loaded transfer record, to report holds this batch resolved.
    hold_states: Vec<HoldState>,
    /// Records loaded as references: never posted, voided or expired by this batch.
    references: std::collections::BTreeSet<u32>,
    /// The first instant this slice cannot see past (`u64::MAX`: none).
    horizon: u64,
    /// Sums over the loaded root accounts, per asset: what the batch must leave unchanged.
    pub(crate) root_sums: Vec<crate::state::RootSums>,
}

/// An account as a store keeps it: everything but its history, which a slice never needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountRow {
    pub id: Id,
    pub asset: AssetCode,
    pub parent: Option<Id>,
    pub depth: u8,
    pub settings: Settings,
    pub created_settings: Settings,
    pub totals: Totals,
    pub version: u64,
    pub created_seq: u64,
    pub timestamp: u64,
}

/// A transfer record as a store keeps it, accounts and related record named by id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransferRow {
    pub id: String,
    pub metadata: Option<Metadata>,
    pub amount: u128,
    pub seq: u64,
    pub timestamp: u64,
    pub fingerprint: u64,
    /// `None` for a failed transfer.
    pub debit: Option<Id>,
    pub credit: Option<Id>,
    /// For a post or void, the hold; for a resolved hold, the post or void.
    pub related: Option<String>,
    pub kind: RecordKind,
    pub result: ResultCode,
    pub hold_state: HoldState,
    pub expires_at: Option<u64>,
}

/// One change to an account: the totals and version right after the event at `seq`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountChange {
    pub account: Id,
    pub seq: u64,
    pub version: u64,
    pub totals: Totals,
}

/// A bound or metadata change, as decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SettingsChange {
    pub account: Id,
    pub seq: u64,
    pub timestamp: u64,
    pub settings: Settings,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expiry {
    pub hold: String,
    pub seq: u64,
    pub timestamp: u64,
}

/// A hold given a new expiry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Renewal {
    pub hold: String,
    pub expires_at: u64,
    pub seq: u64,
    pub timestamp: u64,
}

/// A hold loaded as pending that this batch posted or voided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolution {
    pub hold: String,
    pub state: HoldState,
    /// The post or void; `None` for an expiry.
    pub by: Option<String>,
}

/// Everything a batch applied to a slice decided, for the store to write back.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Changes {
    pub assets: Vec<Asset>,
    /// Accounts this batch created, as they are at its end.
    pub created_accounts: Vec<AccountRow>,
    /// Loaded accounts this batch changed, as they are at its end.
    pub changed_accounts: Vec<AccountRow>,
    /// Every change to every account (creations included), in seq order per account.
    pub account_changes: Vec<AccountChange>,
    pub settings_changes: Vec<SettingsChange>,
    /// New transfer records (failures included), as they are at the batch's end.
    pub transfers: Vec<TransferRow>,
    pub resolutions: Vec<Resolution>,
    pub expiries: Vec<Expiry>,
    /// In seq order; a hold renewed twice appears twice, its last expiry the one that holds.
    pub renewals: Vec<Renewal>,
    /// Which API keys made this batch's entries: runs of seqs (the first begins at the
    /// batch's first entry).
    pub key_runs: Vec<(u64, Option<Id>)>,
}

impl TransferRow {
    /// A hold that can still be posted, voided or expire: it moves its accounts' totals.
    pub fn is_open_hold(&self) -> bool {
        self.kind == RecordKind::Pending && self.result == ResultCode::Created && self.hold_state == HoldState::Pending
    }
}

impl State {
    /// An empty slice of a ledger whose last event is `last_seq` at `last_timestamp`.
    pub fn slice(last_seq: u64, last_timestamp: u64) -> State {
        let mut state = State::default();
        state.log = crate::positions::Positions::after(last_seq);
        state.actors = crate::actors::Actors::for_slice();
        state.slice = Some(Box::new(Loaded { horizon: u64::MAX, ..Loaded::default() }));
        state.restore_clock(last_timestamp);
        state
    }

    pub fn load_asset(&mut self, asset: Asset) {
        self.assert_loading();
        assert!(asset.seq <= self.log.base() && !self.asset_index.contains_key(&asset.code));
        self.asset_index.insert(asset.code.clone(), self.assets.len() as u32);
        self.assets.push(asset);
    }

    /// Loads an account; its asset and parent must be loaded first.
    pub fn load_account(&mut self, row: AccountRow) {
        self.assert_loading();
        assert!(row.created_seq <= self.log.base() && row.version >= 1 && !self.account_index.contains_key(&row.id));
        let asset = *self.asset_index.get(&row.asset).expect("an account's asset is loaded before it");
        let parent = row.parent.as_ref().map(|parent| *self.account_index.get(parent).expect("an account's parent is loaded before it"));
        let index = self.accounts.len() as u32;
        self.closed_accounts += usize::from(row.settings.closed);
        self.accounts.push(Account {
            id: row.id.clone(),
            asset,
            parent,
            depth: row.depth,
            settings: row.settings,
            created_settings: row.created_settings,
            totals: row.totals,
            created_seq: row.created_seq,
            timestamp: row.timestamp,
            history: Vec::new(),
            earlier_changes: row.version,
            checkpoints: Vec::new(),
            updates: Vec::new(),
        });
        self.account_index.insert(row.id.clone(), index);
        self.accounts_ordered.insert(row.id.clone(), index);
        self.children.insert((parent.unwrap_or(crate::state::ROOTS), row.id));
    }

    /// Loads a transfer record. Its accounts are linked if loaded; a hold that is still open
    /// must have both loaded, since a post, void or expiry moves their totals.
    pub fn load_transfer(&mut self, row: TransferRow) {
        self.load_record(row, false);
    }

    /// Loads a transfer record for its id and outcome only (see the module docs). An open
    /// hold's expiry becomes the slice's horizon, since this batch cannot expire it.
    pub fn load_reference(&mut self, row: TransferRow) {
        if let (true, Some(expires_at)) = (row.is_open_hold(), row.expires_at) {
            self.limit_horizon(expires_at);
        }
        self.load_record(row, true);
    }

    /// Tells the slice that holds may be due from `at` on that it did not load: a batch's
    /// clock stays before `at`.
    pub fn limit_horizon(&mut self, at: u64) {
        let loaded = self.slice.as_mut().expect("only a slice has a horizon");
        loaded.horizon = loaded.horizon.min(at);
    }

    /// The time a batch runs at when the clock reads `now`: `now`, or just before the
    /// horizon of a slice that cannot see that far.
    pub fn batch_time(&self, now: u64) -> u64 {
        match &self.slice {
            Some(loaded) => now.min(loaded.horizon.saturating_sub(1)),
            None => now,
        }
    }

    pub fn is_slice(&self) -> bool {
        self.slice.is_some()
    }

    /// Whether record `index` was loaded as a reference.
    pub(crate) fn is_reference(&self, index: u32) -> bool {
        self.slice.as_ref().is_some_and(|loaded| loaded.references.contains(&index))
    }

    fn load_record(&mut self, row: TransferRow, reference: bool) {
        self.assert_loading();
        assert!(row.seq <= self.log.base() && self.find_transfer(&row.id).is_none());
        let account = |id: &Option<Id>| id.as_ref().and_then(|id| self.account_index.get(id).copied()).unwrap_or(NONE);
        let (debit, credit) = (account(&row.debit), account(&row.credit));
        let open = row.is_open_hold() && !reference;
        assert!(!open || (debit != NONE && credit != NONE), "an open hold's accounts are loaded with it");
        let record = TransferRecord {
            amount: row.amount,
            text: Span::default(),
            seq: row.seq,
            timestamp: row.timestamp,
            fingerprint: row.fingerprint,
            debit,
            credit,
            // Nothing in `apply` follows a loaded record's link; `changes` reports new links.
            related: NONE,
            kind: row.kind,
            result: row.result,
            hold_state: row.hold_state,
        };
        let index = self.push_record(record, &row.id, row.metadata.as_deref().unwrap_or(""));
        if let (true, Some(expires_at)) = (open, row.expires_at) {
            self.hold_expiry.insert(index, expires_at);
            self.holds_by_expiry.insert((expires_at, index));
        }
        let loaded = self.slice.as_mut().expect("checked above");
        loaded.hold_states.push(row.hold_state);
        if reference {
            loaded.references.insert(index);
        }
    }

    /// Ends loading: from here on everything added is a change.
    pub fn loaded(&mut self) {
        let (accounts, transfers, root_sums) = (self.accounts.len(), self.records.len(), self.root_sums());
        let loaded = self.slice.as_mut().expect("only a slice is loaded");
        assert_eq!(loaded.hold_states.len(), transfers);
        loaded.accounts = accounts;
        loaded.root_sums = root_sums;
    }

    fn assert_loading(&self) {
        let loaded = self.slice.as_ref().expect("only a slice is loaded");
        assert!(self.log.is_empty() && loaded.accounts == 0, "rows are loaded before anything is applied");
    }

    /// What this slice decided since it was loaded.
    pub fn changes(&self) -> Changes {
        let loaded = self.slice.as_ref().expect("only a slice reports changes");
        let key_runs = self.actors.runs().map(|(first, key)| (first, key.cloned())).collect();
        let mut changes = Changes { key_runs, ..Changes::default() };
        for seq in self.log.base() + 1..=self.last_seq() {
            match self.log_entry(seq) {
                LogEntry::Asset(index) => changes.assets.push(self.assets[index as usize].clone()),
                LogEntry::Account(_) => {}
                LogEntry::Update(index) => {
                    let update = &self.updates[index as usize];
                    changes.settings_changes.push(SettingsChange {
                        account: self.accounts[update.account as usize].id.clone(),
                        seq: update.seq,
                        timestamp: update.timestamp,
                        settings: update.after.clone(),
                    });
                }
                LogEntry::Transfer(index) => changes.transfers.push(self.transfer_row(index)),
                LogEntry::Expiry(index) => {
                    let expiry = self.expiries[index as usize];
                    changes.expiries.push(Expiry { hold: self.id_of(expiry.hold), seq: expiry.seq, timestamp: expiry.timestamp });
                }
                LogEntry::Renewal(index) => {
                    let renewal = self.renewals[index as usize];
                    changes.renewals.push(Renewal {
                        hold: self.id_of(renewal.hold),
                        expires_at: renewal.expires_at,
                        seq: renewal.seq,
                        timestamp: renewal.timestamp,
                    });
                }
            }
        }
        for (index, account) in self.accounts.iter().enumerate() {
            if account.history.is_empty() {
                continue;
            }
            let row = self.account_row(index as u32);
            // Walk back from the final totals to the totals right after each change.
            let mut totals = account.totals;
            let mut trail = Vec::with_capacity(account.history.len());
            for (position, &seq) in account.history.iter().enumerate().rev() {
                trail.push(AccountChange {
                    account: account.id.clone(),
                    seq,
                    version: account.earlier_changes + position as u64 + 1,
                    totals,
                });
                totals = self.shift_for(index as u32, seq, totals, false);
            }
            changes.account_changes.extend(trail.into_iter().rev());
            if index < loaded.accounts {
                changes.changed_accounts.push(row);
            } else {
                changes.created_accounts.push(row);
            }
        }
        changes.created_accounts.sort_by_key(|row| row.created_seq);
        for (index, before) in loaded.hold_states.iter().enumerate() {
            let record = self.record_at(index as u32);
            if record.hold_state != *before {
                let by = (record.related != NONE).then(|| self.id_of(record.related));
                changes.resolutions.push(Resolution { hold: self.id_of(index as u32), state: record.hold_state, by });
            }
        }
        changes
    }

    /// Rows as a store keeps them, read from this state: how a test loads a slice from a
    /// whole ledger to compare the two.
    pub fn asset_row(&self, code: &AssetCode) -> Option<Asset> {
        self.asset_index.get(code).map(|&index| self.assets[index as usize].clone())
    }

    pub fn account_row_of(&self, id: &Id) -> Option<AccountRow> {
        self.account_index.get(id).map(|&index| self.account_row(index))
    }

    pub fn transfer_row_of(&self, id: &str) -> Option<TransferRow> {
        self.find_transfer(id).map(|index| self.transfer_row(index))
    }

    pub(crate) fn account_row(&self, index: u32) -> AccountRow {
        let account = &self.accounts[index as usize];
        AccountRow {
            id: account.id.clone(),
            asset: self.assets[account.asset as usize].code.clone(),
            parent: account.parent.map(|parent| self.accounts[parent as usize].id.clone()),
            depth: account.depth,
            settings: account.settings.clone(),
            created_settings: account.created_settings.clone(),
            totals: account.totals,
            version: account.version(),
            created_seq: account.created_seq,
            timestamp: account.timestamp,
        }
    }

    pub(crate) fn transfer_row(&self, index: u32) -> TransferRow {
        let record = self.record_at(index);
        let text = self.text_of(index);
        let account = |index: u32| (index != NONE).then(|| self.accounts[index as usize].id.clone());
        TransferRow {
            id: text.id().to_owned(),
            metadata: text.metadata().map(Metadata::stored),
            amount: record.amount,
            seq: record.seq,
            timestamp: record.timestamp,
            fingerprint: record.fingerprint,
            debit: account(record.debit),
            credit: account(record.credit),
            related: (record.related != NONE).then(|| self.id_of(record.related)),
            kind: record.kind,
            result: record.result,
            hold_state: record.hold_state,
            expires_at: self.hold_expiry.get(&index).copied(),
        }
    }
}
