//! Read-only questions to the state: accounts (now or as of a seq), transfers, listings and
//! the journal feed. Every listing takes a limit, so no answer is unbounded.

use crate::event::ResultCode;
use crate::id::{AssetCode, Id};
use crate::limits::PAGE_LIMIT_MAX;
use crate::metadata::Metadata;
use crate::slice::{AccountRow, TransferRow};
use crate::state::{HoldState, LogEntry, Movement, RecordKind, Settings, Side, State, Totals, TransferRecord, CHECKPOINT_INTERVAL, ROOTS};
use std::ops::Bound;

/// An account as it stands (or stood, for `as_of`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountView {
    pub id: Id,
    pub asset: AssetCode,
    pub scale: u8,
    pub parent: Option<Id>,
    pub settings: Settings,
    pub totals: Totals,
    pub version: u64,
    pub created_seq: u64,
    pub timestamp: u64,
}

/// The state of a transfer as a whole, for reading.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransferState {
    Posted,
    Pending,
    Voided,
    Expired,
    Failed,
}

impl TransferState {
    pub fn name(self) -> &'static str {
        match self {
            TransferState::Posted => "posted",
            TransferState::Pending => "pending",
            TransferState::Voided => "voided",
            TransferState::Expired => "expired",
            TransferState::Failed => "failed",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransferView {
    pub id: String,
    pub result: ResultCode,
    pub state: TransferState,
    pub seq: u64,
    pub timestamp: u64,
    /// Absent for a failed transfer, which keeps only its id and outcome.
    pub detail: Option<TransferDetail>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransferDetail {
    pub kind: RecordKind,
    pub debit: Id,
    pub credit: Id,
    pub amount: u128,
    pub asset: AssetCode,
    pub scale: u8,
    /// For a post or void: the hold it resolves.
    pub pending_id: Option<String>,
    /// For a hold: the post or void that resolved it.
    pub resolved_by: Option<String>,
    pub expires_at: Option<u64>,
    pub metadata: Option<Metadata>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JournalEntry {
    Asset {
        code: AssetCode,
        scale: u8,
        seq: u64,
        timestamp: u64,
    },
    Account {
        view: AccountView,
        created_settings: Settings,
    },
    Update {
        id: Id,
        settings: Settings,
        scale: u8,
        seq: u64,
        timestamp: u64,
    },
    Transfer(TransferView),
    Expiry {
        pending_id: String,
        debit: Id,
        credit: Id,
        amount: u128,
        scale: u8,
        seq: u64,
        timestamp: u64,
    },
    /// A hold given a new expiry.
    Renewal {
        pending_id: String,
        expires_at: u64,
        seq: u64,
        timestamp: u64,
    },
}

/// Where in the account trees a listing looks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Under {
    #[default]
    Anywhere,
    /// Accounts without a parent: the trees' roots.
    Root,
    /// The direct children of this account.
    Parent(Id),
}

/// What changed an account at one journal position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChangeCause {
    Created,
    /// Its bounds, metadata or closed state.
    Updated,
    /// A transfer, hold, post or void (by id) that moved its totals.
    Transfer(String),
    /// A hold (by id) that expired.
    Expiry(String),
}

/// One change to an account, with its totals and version right after it: a running balance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryEntry {
    pub seq: u64,
    pub timestamp: u64,
    pub version: u64,
    pub totals: Totals,
    pub cause: ChangeCause,
}

impl AccountRow {
    pub fn into_view(self, scale: u8) -> AccountView {
        AccountView {
            id: self.id,
            asset: self.asset,
            scale,
            parent: self.parent,
            settings: self.settings,
            totals: self.totals,
            version: self.version,
            created_seq: self.created_seq,
            timestamp: self.timestamp,
        }
    }
}

impl TransferRow {
    /// The transfer as readers see it; `asset` is its accounts' asset and scale (`None` only
    /// for a failed transfer, which moved nothing).
    pub fn into_view(self, asset: Option<(AssetCode, u8)>) -> TransferView {
        let (Some(debit), Some(credit), Some((asset, scale)), ResultCode::Created) = (self.debit, self.credit, asset, self.result) else {
            return TransferView {
                id: self.id,
                result: self.result,
                state: TransferState::Failed,
                seq: self.seq,
                timestamp: self.timestamp,
                detail: None,
            };
        };
        let state = match (self.kind, self.hold_state) {
            (RecordKind::Void, _) => TransferState::Voided,
            (RecordKind::Pending, HoldState::Pending) => TransferState::Pending,
            (RecordKind::Pending, HoldState::Voided) => TransferState::Voided,
            (RecordKind::Pending, HoldState::Expired) => TransferState::Expired,
            _ => TransferState::Posted,
        };
        let pending = self.kind == RecordKind::Pending;
        let detail = TransferDetail {
            kind: self.kind,
            debit,
            credit,
            amount: self.amount,
            asset,
            scale,
            pending_id: if pending { None } else { self.related.clone() },
            resolved_by: if pending { self.related } else { None },
            expires_at: self.expires_at,
            metadata: self.metadata,
        };
        TransferView { id: self.id, result: self.result, state, seq: self.seq, timestamp: self.timestamp, detail: Some(detail) }
    }
}

impl JournalEntry {
    pub fn seq(&self) -> u64 {
        match self {
            JournalEntry::Asset { seq, .. }
            | JournalEntry::Update { seq, .. }
            | JournalEntry::Expiry { seq, .. }
            | JournalEntry::Renewal { seq, .. } => *seq,
            JournalEntry::Account { view, .. } => view.created_seq,
            JournalEntry::Transfer(view) => view.seq,
        }
    }

    pub fn timestamp(&self) -> u64 {
        match self {
            JournalEntry::Asset { timestamp, .. }
            | JournalEntry::Update { timestamp, .. }
            | JournalEntry::Expiry { timestamp, .. }
            | JournalEntry::Renewal { timestamp, .. } => *timestamp,
            JournalEntry::Account { view, .. } => view.timestamp,
            JournalEntry::Transfer(view) => view.timestamp,
        }
    }
}

impl State {
    fn view_account(&self, index: u32) -> AccountView {
        let account = &self.accounts[index as usize];
        self.account_row(index).into_view(self.assets[account.asset as usize].scale)
    }

    pub fn asset(&self, code: &AssetCode) -> Option<(AssetCode, u8, u64)> {
        let asset = &self.assets[*self.asset_index.get(code)? as usize];
        Some((asset.code.clone(), asset.scale, asset.seq))
    }

    pub fn account(&self, id: &Id) -> Option<AccountView> {
        self.account_index.get(id).map(|&index| self.view_account(index))
    }

    /// The account exactly as it was right after journal position `seq`: `None` if it did
    /// not exist then. Starts from the nearer of the current totals and the checkpoint before
    /// `seq`, so it takes at most `CHECKPOINT_INTERVAL` steps however long the history is.
    pub fn account_as_of(&self, id: &Id, seq: u64) -> Option<AccountView> {
        let index = *self.account_index.get(id)?;
        let account = &self.accounts[index as usize];
        if account.created_seq > seq {
            return None;
        }
        let mut view = self.view_account(index);
        let applied = account.history.partition_point(|&change| change <= seq);
        let block = applied / CHECKPOINT_INTERVAL;
        let from_checkpoint = applied - block * CHECKPOINT_INTERVAL;
        if account.history.len() - applied <= from_checkpoint {
            for &change in account.history[applied..].iter().rev() {
                view.totals = self.shift_for(index, change, view.totals, false);
            }
        } else {
            view.totals = if block == 0 { Totals::default() } else { account.checkpoints[block - 1] };
            for &change in &account.history[block * CHECKPOINT_INTERVAL..applied] {
                view.totals = self.shift_for(index, change, view.totals, true);
            }
        }
        view.version = applied as u64;
        view.settings = match account.updates.iter().rev().map(|&u| &self.updates[u as usize]).find(|u| u.seq <= seq) {
            Some(update) => update.after.clone(),
            None => account.created_settings.clone(),
        };
        Some(view)
    }

    /// `totals` moved forward (or back) over the change at `seq` to `account`.
    pub(crate) fn shift_for(&self, account: u32, seq: u64, totals: Totals, forward: bool) -> Totals {
        let (record, movement) = match self.log_entry(seq) {
            LogEntry::Transfer(transfer) => {
                let record = self.record_at(transfer);
                (record, self.movement(&record))
            }
            LogEntry::Expiry(expiry) => {
                let hold = self.record_at(self.expiries[expiry as usize].hold);
                (hold, Movement::Void(hold.amount))
            }
            LogEntry::Update(_) | LogEntry::Account(_) => return totals,
            LogEntry::Asset(_) | LogEntry::Renewal(_) => unreachable!("an account's history holds no asset creation nor renewal"),
        };
        let side = if self.lineage(record.debit).contains(&account) { Side::Debit } else { Side::Credit };
        movement.shift(totals, side, forward).expect("history replays within range")
    }

    fn movement(&self, record: &TransferRecord) -> Movement {
        match record.kind {
            RecordKind::Direct => Movement::Direct(record.amount),
            RecordKind::Pending => Movement::Pending(record.amount),
            RecordKind::Post => Movement::Post { held: self.record_at(record.related).amount, posted: record.amount },
            RecordKind::Void => Movement::Void(self.record_at(record.related).amount),
        }
    }

    /// Accounts in id order, after `after`, whose id starts with `prefix`, and which are
    /// `under` the place asked for. At most `limit` (capped at `PAGE_LIMIT_MAX`). `None` if a
    /// parent asked for does not exist.
    pub fn accounts_page(&self, prefix: &str, under: &Under, after: Option<&Id>, limit: usize) -> Option<Vec<AccountView>> {
        let limit = limit.min(PAGE_LIMIT_MAX);
        // The page starts at the prefix or just after `after`, whichever is later, and ends at
        // the first id without the prefix: ids with a prefix are adjacent in id order, so a
        // page reads only what it returns.
        let (first, inclusive) = match after {
            Some(after) if after.as_str() >= prefix => (after.clone(), false),
            _ => (Id::range_start(prefix), true),
        };
        fn from<K>(key: K, inclusive: bool) -> Bound<K> {
            if inclusive {
                Bound::Included(key)
            } else {
                Bound::Excluded(key)
            }
        }
        let page = match under {
            Under::Anywhere => self
                .accounts_ordered
                .range((from(first, inclusive), Bound::Unbounded))
                .take_while(|(id, _)| id.as_str().starts_with(prefix))
                .take(limit)
                .map(|(_, &index)| self.view_account(index))
                .collect(),
            Under::Root | Under::Parent(_) => {
                let parent = match under {
                    Under::Parent(parent) => *self.account_index.get(parent)?,
                    _ => ROOTS,
                };
                self.children
                    .range((from((parent, first), inclusive), Bound::Unbounded))
                    .take_while(|(p, id)| *p == parent && id.as_str().starts_with(prefix))
                    .take(limit)
                    .map(|(_, id)| self.view_account(self.account_index[id]))
                    .collect()
            }
        };
        Some(page)
    }

    pub fn transfer(&self, id: &str) -> Option<TransferView> {
        self.find_transfer(id).map(|index| self.view_transfer(index))
    }

    fn view_transfer(&self, index: u32) -> TransferView {
        let record = self.record_at(index);
        let asset = (record.debit != u32::MAX).then(|| &self.assets[self.accounts[record.debit as usize].asset as usize]);
        self.transfer_row(index).into_view(asset.map(|asset| (asset.code.clone(), asset.scale)))
    }

    /// The transfers (including posts and voids) that changed `id`'s totals, in seq order,
    /// with seq above `after_seq`. `None` if there is no such account.
    pub fn account_transfers(&self, id: &Id, after_seq: u64, limit: usize) -> Option<Vec<TransferView>> {
        let account = &self.accounts[*self.account_index.get(id)? as usize];
        let start = account.history.partition_point(|&seq| seq <= after_seq);
        Some(
            account.history[start..]
                .iter()
                .filter_map(|&seq| match self.log_entry(seq) {
                    LogEntry::Transfer(index) => Some(self.view_transfer(index)),
                    _ => None,
                })
                .take(limit.min(PAGE_LIMIT_MAX))
                .collect(),
        )
    }

    /// The changes to `id` with seq above `after_seq`, in seq order, each with the totals
    /// right after it; at most `limit` (capped at `PAGE_LIMIT_MAX`). `None` if there is no
    /// such account. The first change is found as `account_as_of` finds it (at most
    /// `CHECKPOINT_INTERVAL` steps); each next one is a step forward.
    pub fn account_history(&self, id: &Id, after_seq: u64, limit: usize) -> Option<Vec<HistoryEntry>> {
        let index = *self.account_index.get(id)?;
        let history = &self.accounts[index as usize].history;
        let start = history.partition_point(|&seq| seq <= after_seq);
        let page = &history[start..history.len().min(start + limit.min(PAGE_LIMIT_MAX))];
        let Some(&first) = page.first() else { return Some(Vec::new()) };
        let mut totals = self.account_as_of(id, first).expect("the account existed at its own change").totals;
        let mut changes = Vec::with_capacity(page.len());
        for (offset, &seq) in page.iter().enumerate() {
            if offset > 0 {
                totals = self.shift_for(index, seq, totals, true);
            }
            let (timestamp, cause) = match self.journal_entry(seq) {
                JournalEntry::Account { view, .. } => (view.timestamp, ChangeCause::Created),
                JournalEntry::Update { timestamp, .. } => (timestamp, ChangeCause::Updated),
                JournalEntry::Transfer(transfer) => (transfer.timestamp, ChangeCause::Transfer(transfer.id)),
                JournalEntry::Expiry { pending_id, timestamp, .. } => (timestamp, ChangeCause::Expiry(pending_id)),
                JournalEntry::Asset { .. } | JournalEntry::Renewal { .. } => {
                    unreachable!("an account's history holds no asset creation nor renewal")
                }
            };
            let version = (start + offset + 1) as u64;
            changes.push(HistoryEntry { seq, timestamp, version, totals, cause });
        }
        Some(changes)
    }

    /// Open holds that expire, soonest first, after the hold that expires at `after.0` with
    /// seq `after.1`; at most `limit` (capped at `PAGE_LIMIT_MAX`). Holds without a timeout
    /// never expire and are not listed.
    pub fn expiring_holds(&self, after: Option<(u64, u64)>, limit: usize) -> Vec<TransferView> {
        let (after_expiry, after_seq) = after.unwrap_or((0, 0));
        self.holds_by_expiry
            .range((after_expiry, 0)..)
            .filter(|&&(expires_at, hold)| after.is_none() || (expires_at, self.record_at(hold).seq) > (after_expiry, after_seq))
            .take(limit.min(PAGE_LIMIT_MAX))
            .map(|&(_, hold)| self.view_transfer(hold))
            .collect()
    }

    /// Journal entries with seq in `after_seq + 1 ..= until_seq`, at most `limit`.
    pub fn journal(&self, after_seq: u64, until_seq: u64, limit: usize) -> Vec<JournalEntry> {
        let until = until_seq.min(self.last_seq());
        (after_seq.saturating_add(1)..=until).take(limit.min(PAGE_LIMIT_MAX)).map(|seq| self.journal_entry(seq)).collect()
    }

    fn journal_entry(&self, seq: u64) -> JournalEntry {
        match self.log_entry(seq) {
            LogEntry::Asset(index) => {
                let asset = &self.assets[index as usize];
                JournalEntry::Asset { code: asset.code.clone(), scale: asset.scale, seq: asset.seq, timestamp: asset.timestamp }
            }
            LogEntry::Account(index) => JournalEntry::Account {
                view: AccountView { totals: Totals::default(), version: 1, ..self.view_account(index) },
                created_settings: self.accounts[index as usize].created_settings.clone(),
            },
            LogEntry::Update(index) => {
                let update = &self.updates[index as usize];
                let account = &self.accounts[update.account as usize];
                JournalEntry::Update {
                    id: account.id.clone(),
                    scale: self.assets[account.asset as usize].scale,
                    settings: update.after.clone(),
                    seq: update.seq,
                    timestamp: update.timestamp,
                }
            }
            LogEntry::Transfer(index) => JournalEntry::Transfer(self.view_transfer(index)),
            LogEntry::Expiry(index) => {
                let expiry = self.expiries[index as usize];
                let hold = self.record_at(expiry.hold);
                let debit = &self.accounts[hold.debit as usize];
                JournalEntry::Expiry {
                    pending_id: self.id_of(expiry.hold),
                    debit: debit.id.clone(),
                    credit: self.accounts[hold.credit as usize].id.clone(),
                    amount: hold.amount,
                    scale: self.assets[debit.asset as usize].scale,
                    seq: expiry.seq,
                    timestamp: expiry.timestamp,
                }
            }
            LogEntry::Renewal(index) => {
                let renewal = self.renewals[index as usize];
                JournalEntry::Renewal {
                    pending_id: self.id_of(renewal.hold),
                    expires_at: renewal.expires_at,
                    seq: renewal.seq,
                    timestamp: renewal.timestamp,
                }
            }
        }
    }

    /// How many accounts and transfer records the state holds (for metrics and verify).
    pub fn counts(&self) -> (usize, usize) {
        (self.accounts.len(), self.records.len())
    }
}
