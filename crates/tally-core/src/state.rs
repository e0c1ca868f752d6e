//! The ledger state and the one function that changes it: `State::apply`.
//!
//! Everything here is deterministic: the same requests applied with the same timestamps to
//! the same state give the same outcomes and the same state, byte for byte. That is what
//! lets the embedded engine recover by replaying its journal, and lets the PostgreSQL engine
//! share these rules. Hash maps are used for lookups only, never iterated into results.
//!
//! Every decided event gets the next `seq` (its position in the journal) and a timestamp
//! that strictly increases. Failed transfers are decided events too: a transfer id is
//! decided once, and a retry can never turn a failure into a success.

use crate::allocation::split;
use crate::amount::{AmountError, Decimal};
use crate::chunked::Span;

use crate::event::{
    AccountPatch, AccountUpdate, HoldRenewal, Moved, NewAccount, NewAsset, NewTransfer, Outcome, Request, ResultCode, TransferKind,
};
use crate::id::{AssetCode, Id};
use crate::id_runs::{self, IdFilter, IdRun};
use crate::limits::{ACCOUNT_DEPTH_MAX, ALLOCATION_SHARES_MAX, HOLD_TIMEOUT_MS_MAX, METADATA_BYTES_MAX, REQUEST_ENTRIES_MAX};
use crate::metadata::Metadata;
use crate::positions::Positions;
use crate::records::{id_hash, unreadable, HistoryFiles, Records, Text};
use hashbrown::{HashMap, HashTable};
use std::collections::{BTreeMap, BTreeSet};

/// Every running total stays at or below this, so that balances and available amounts
/// (differences and sums of totals) always fit in an `i128`.
pub const TOTAL_MAX: u128 = (i128::MAX / 2) as u128;

pub(crate) const NONE: u32 = u32::MAX;
/// The parent under which `children` lists accounts that have none.
pub(crate) const ROOTS: u32 = u32::MAX;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Asset {
    pub code: AssetCode,
    pub scale: u8,
    pub seq: u64,
    pub timestamp: u64,
}

/// The running totals of an account. For an account with children they cover its whole
/// subtree, except transfers between two members of that subtree, which net out there.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub debits_posted: u128,
    pub credits_posted: u128,
    pub debits_pending: u128,
    pub credits_pending: u128,
}

impl Totals {
    pub fn balance(&self) -> i128 {
        self.credits_posted as i128 - self.debits_posted as i128
    }

    /// What can still be debited: the balance less what holds have reserved.
    pub fn available(&self) -> i128 {
        self.balance() - self.debits_pending as i128
    }

    /// The highest the balance can reach once every incoming hold is posted.
    pub fn ceiling(&self) -> i128 {
        self.balance() + self.credits_pending as i128
    }

    /// Nothing left: a zero balance and no open holds either way.
    pub fn is_settled(&self) -> bool {
        self.balance() == 0 && self.debits_pending == 0 && self.credits_pending == 0
    }

    fn within(&self, settings: &Settings) -> Result<(), ResultCode> {
        if settings.min_balance.is_some_and(|min| self.available() < min) {
            return Err(ResultCode::ExceedsMinBalance);
        }
        if settings.max_balance.is_some_and(|max| self.ceiling() > max) {
            return Err(ResultCode::ExceedsMaxBalance);
        }
        Ok(())
    }
}

/// The parts of an account that `UpdateAccounts` may change.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Settings {
    pub min_balance: Option<i128>,
    pub max_balance: Option<i128>,
    pub metadata: Option<Metadata>,
    /// No new transfer may touch a closed account, nor any account below it; holds already
    /// placed can still be posted or voided, and still expire.
    pub closed: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub id: Id,
    pub asset: u32,
    pub parent: Option<u32>,
    /// 1 for a root account.
    pub depth: u8,
    pub settings: Settings,
    /// The settings given at creation, kept so the journal can show the creation as it was.
    pub created_settings: Settings,
    pub totals: Totals,
    pub created_seq: u64,
    pub timestamp: u64,
    /// The seq of every event that changed this account, its creation first. Its length is
    /// the account's version; walking it gives balances as of any seq.
    pub history: Vec<u64>,
    /// Changes before `history` begins: zero except in a slice, which loads an account
    /// without its history.
    pub(crate) earlier_changes: u64,
    /// The totals right after every `CHECKPOINT_INTERVAL`-th change, so that balances as of
    /// any seq take at most that many steps to compute, however long the history.
    pub(crate) checkpoints: Vec<Totals>,
    /// This account's entries in `State::updates`, in order (bound changes are rare).
    pub(crate) updates: Vec<u32>,
}

/// Changes between two checkpoints of an account's totals.
pub const CHECKPOINT_INTERVAL: usize = 1_024;

impl Account {
    pub fn version(&self) -> u64 {
        self.earlier_changes + self.history.len() as u64
    }

    /// Notes a change at `seq`, after `totals` took it in.
    fn push_change(&mut self, seq: u64) {
        self.history.push(seq);
        if self.history.len().is_multiple_of(CHECKPOINT_INTERVAL) {
            self.checkpoints.push(self.totals);
        }
    }

    fn pop_change(&mut self) {
        if self.history.len().is_multiple_of(CHECKPOINT_INTERVAL) {
            self.checkpoints.pop();
        }
        self.history.pop();
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum RecordKind {
    Direct = 0,
    Pending = 1,
    Post = 2,
    Void = 3,
}

impl RecordKind {
    pub fn from_u8(value: u8) -> Option<RecordKind> {
        [RecordKind::Direct, RecordKind::Pending, RecordKind::Post, RecordKind::Void].get(usize::from(value)).copied()
    }
}

/// Where a hold stands. Only `Pending` records carry a meaningful state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum HoldState {
    Pending = 0,
    Posted = 1,
    Voided = 2,
    Expired = 3,
}

impl HoldState {
    pub fn from_u8(value: u8) -> Option<HoldState> {
        [HoldState::Pending, HoldState::Posted, HoldState::Voided, HoldState::Expired].get(usize::from(value)).copied()
    }
}

/// One decided transfer event, kept compact because there are many millions of them.
/// Failed transfers keep only their id, result, fingerprint, seq and timestamp.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TransferRecord {
    pub amount: u128,
    /// The id, followed by the metadata (empty if none).
    pub(crate) text: Span,
    pub seq: u64,
    pub timestamp: u64,
    /// Hash of every field as submitted, to answer `exists` or `exists_with_different_fields`.
    pub fingerprint: u64,
    pub debit: u32,
    pub credit: u32,
    /// For a post or void: the hold's record index. For a hold: the record that resolved it.
    pub related: u32,
    pub kind: RecordKind,
    pub result: ResultCode,
    pub hold_state: HoldState,
}

// Ten million transfers take 640 MB of records; keep it that way.
const _: () = assert!(std::mem::size_of::<TransferRecord>() == 64);

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpdateRecord {
    pub account: u32,
    pub before: Settings,
    pub after: Settings,
    pub seq: u64,
    pub timestamp: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExpiryRecord {
    pub hold: u32,
    pub seq: u64,
    pub timestamp: u64,
}

/// A hold given a new expiry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RenewalRecord {
    pub hold: u32,
    pub expires_at: u64,
    pub seq: u64,
    pub timestamp: u64,
}

/// What one journal position holds (`State::log`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogEntry {
    Asset(u32),
    Account(u32),
    Update(u32),
    Transfer(u32),
    Expiry(u32),
    Renewal(u32),
}

/// How a transfer event moves one side's totals.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Movement {
    Direct(u128),
    /// Places a hold: the amount becomes pending.
    Pending(u128),
    /// Posts a hold: `posted` (at most `held`) moves, the whole `held` stops being pending.
    Post {
        held: u128,
        posted: u128,
    },
    /// Voids a hold, or expires it: the held amount stops being pending.
    Void(u128),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Side {
    Debit,
    Credit,
}

impl Movement {
    /// What the record of this movement shows as its amount.
    fn amount(self) -> u128 {
        match self {
            Movement::Direct(amount) | Movement::Pending(amount) | Movement::Void(amount) => amount,
            Movement::Post { posted, .. } => posted,
        }
    }

    /// Whether this changes no total at all (a balancing transfer or a leg of zero).
    fn is_nothing(self) -> bool {
        match self {
            Movement::Direct(amount) | Movement::Pending(amount) | Movement::Void(amount) => amount == 0,
            Movement::Post { held, posted } => held == 0 && posted == 0,
        }
    }

    /// The totals after (or, with `forward == false`, before) this movement; `None` when a
    /// total would leave `0..=TOTAL_MAX`.
    pub(crate) fn shift(self, totals: Totals, side: Side, forward: bool) -> Option<Totals> {
        let (posted_change, pending_change): (i128, i128) = match self {
            Movement::Direct(amount) => (amount as i128, 0),
            Movement::Pending(amount) => (0, amount as i128),
            Movement::Post { held, posted } => (posted as i128, -(held as i128)),
            Movement::Void(held) => (0, -(held as i128)),
        };
        let sign = if forward { 1 } else { -1 };
        let adjust = |total: u128, change: i128| -> Option<u128> {
            let next = (total as i128).checked_add(change * sign)?;
            (0..=TOTAL_MAX as i128).contains(&next).then_some(next as u128)
        };
        let mut next = totals;
        match side {
            Side::Debit => {
                next.debits_posted = adjust(totals.debits_posted, posted_change)?;
                next.debits_pending = adjust(totals.debits_pending, pending_change)?;
            }
            Side::Credit => {
                next.credits_posted = adjust(totals.credits_posted, posted_change)?;
                next.credits_pending = adjust(totals.credits_pending, pending_change)?;
            }
        }
        Some(next)
    }
}

/// What must be put back if a linked chain fails part way.
#[derive(Debug)]
enum Undo {
    Totals { account: u32, before: Totals },
    Recorded,
    HoldResolved { hold: u32 },
    HoldScheduled { hold: u32 },
    Clock { before: u64 },
}

/// The accounts a transfer changes: each side's path up to, not including, the first
/// ancestor the two sides share, where the transfer nets out.
#[derive(Default)]
struct Paths {
    debit: Path,
    credit: Path,
}

/// Accounts along one branch of a tree: at most `ACCOUNT_DEPTH_MAX`, kept inline because
/// every transfer computes two of these.
#[derive(Clone, Copy, Default)]
pub(crate) struct Path {
    nodes: [u32; ACCOUNT_DEPTH_MAX],
    len: usize,
}

impl Path {
    fn push(&mut self, account: u32) {
        assert!(self.len < ACCOUNT_DEPTH_MAX, "account trees are at most ACCOUNT_DEPTH_MAX deep");
        self.nodes[self.len] = account;
        self.len += 1;
    }
    fn pop(&mut self) {
        self.len -= 1;
    }
    fn last(&self) -> Option<u32> {
        self.len.checked_sub(1).map(|i| self.nodes[i])
    }
    fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub(crate) fn contains(&self, account: &u32) -> bool {
        self.nodes[..self.len].contains(account)
    }
}

impl<'a> IntoIterator for &'a Path {
    type Item = &'a u32;
    type IntoIter = std::slice::Iter<'a, u32>;
    fn into_iter(self) -> Self::IntoIter {
        self.nodes[..self.len].iter()
    }
}

/// The result of trying one transfer event.
enum Attempt {
    /// Newly applied and recorded.
    Applied(Outcome),
    /// The id was decided before: the original outcome (`exists` for a success), or
    /// `exists_with_different_fields`.
    Known(Outcome),
    /// Fails now; the caller records the failure.
    Rejected(ResultCode),
}

pub struct State {
    pub(crate) assets: Vec<Asset>,
    pub(crate) asset_index: HashMap<AssetCode, u32>,
    pub(crate) accounts: Vec<Account>,
    pub(crate) account_index: HashMap<Id, u32>,
    /// Account ids in order, for listings by prefix; and (parent, id) for listings by parent,
    /// roots under `ROOTS`.
    pub(crate) accounts_ordered: BTreeMap<Id, u32>,
    pub(crate) children: BTreeSet<(u32, Id)>,
    /// Transfer records with their ids and metadata: in memory, or handed off to history.
    pub(crate) records: Records,
    /// Transfer ids to record indexes, in shards so that growing one rehashes only a small
    /// part: no pause proportional to the whole history. Holds every record in memory, and
    /// the handed-off ones the id runs do not cover yet.
    transfer_index: Vec<HashTable<IndexEntry>>,
    /// The ids of handed-off records, as `id_runs::plan` lays them out (`id_runs` has the why).
    id_runs: Vec<IdRun>,
    /// Every id the runs hold, if the store built it: without it, every lookup of an id not in
    /// the table looks into each run's summary.
    id_filter: Option<IdFilter>,
    pub(crate) updates: Vec<UpdateRecord>,
    pub(crate) expiries: Vec<ExpiryRecord>,
    pub(crate) renewals: Vec<RenewalRecord>,
    pub(crate) log: Positions,
    /// Which API key made each entry of `log`.
    pub(crate) actors: crate::actors::Actors,
    /// Holds with a timeout, by expiry time then record index (a deterministic order).
    pub(crate) holds_by_expiry: BTreeSet<(u64, u32)>,
    /// When each hold with a timeout expires, by record index; kept apart from the records
    /// because few transfers are holds with timeouts.
    pub(crate) hold_expiry: HashMap<u32, u64>,
    last_timestamp: u64,
    /// What a slice loaded, so that its changes can be told apart; `None` for a whole ledger.
    pub(crate) slice: Option<Box<crate::slice::Loaded>>,
    /// The last seq before the request being applied, to bound the entries it creates.
    request_start_seq: u64,
    /// How many accounts are closed: while none is, a transfer need not walk its accounts'
    /// ancestors to find one.
    pub(crate) closed_accounts: usize,
}

/// Where to find one transfer id: 32 bits of the id's hash and the record's index. Keeping
/// the hash in the entry lets a growing table rehash without reading a single id, and lets
/// a lookup skip most wrong candidates without comparing ids.
#[derive(Clone, Copy, Debug)]
struct IndexEntry {
    hash: u32,
    record: u32,
}

/// At a start, the most handed-off segments indexed from their hashes in the table instead of
/// taking id runs that reach beyond them (`adopt_id_runs`): 64 segments of 65,536 ids are
/// about 56 MiB of table.
const ADOPT_FROM_HASHES_MAX: u32 = 64;
/// How much more a replayed record costs with runs beyond it (a random page read) than an id
/// indexed from a segment's hashes (8 bytes read in order and a table insert).
const PAGE_READ_WEIGHT: u32 = 16;
/// A segment leaves the table in one pass over it while it holds at most this many segments.
const TABLE_PASS_SEGMENTS: usize = 4;

/// Shards of the transfer index.
const INDEX_SHARDS: usize = 256;

/// The shard (from bits 32 to 39 of the id's xxh3 hash) and the entry hash (its low 32 bits).
fn index_key(hash: u64) -> (usize, u32) {
    ((hash >> 32) as usize % INDEX_SHARDS, hash as u32)
}

/// Spreads an entry's 32 hash bits over 64, as the table wants them (it places entries by
/// the low bits and tags them with the top seven).
fn table_hash(hash: u32) -> u64 {
    u64::from(hash).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// Indexes record `record` under its id's hash `id_hash`.
fn insert_index_entry(index: &mut [HashTable<IndexEntry>], record: u32, id_hash: u64) {
    let (shard, hash) = index_key(id_hash);
    index[shard].insert_unique(table_hash(hash), IndexEntry { hash, record }, |entry| table_hash(entry.hash));
}

/// Takes record `record`, indexed under `id_hash`, out of the index.
fn remove_index_entry(index: &mut [HashTable<IndexEntry>], record: u32, id_hash: u64) {
    let (shard, hash) = index_key(id_hash);
    index[shard].find_entry(table_hash(hash), |entry| entry.record == record).expect("the record is indexed").remove();
}

impl Default for State {
    fn default() -> State {
        State {
            assets: Vec::new(),
            asset_index: HashMap::default(),
            accounts: Vec::new(),
            account_index: HashMap::default(),
            accounts_ordered: BTreeMap::new(),
            children: BTreeSet::new(),
            records: Records::default(),
            transfer_index: (0..INDEX_SHARDS).map(|_| HashTable::new()).collect(),
            id_runs: Vec::new(),
            id_filter: None,
            updates: Vec::new(),
            expiries: Vec::new(),
            renewals: Vec::new(),
            log: Positions::after(0),
            actors: crate::actors::Actors::new(),
            holds_by_expiry: BTreeSet::new(),
            hold_expiry: HashMap::default(),
            last_timestamp: 0,
            slice: None,
            request_start_seq: 0,
            closed_accounts: 0,
        }
    }
}

impl State {
    pub fn new() -> State {
        State::default()
    }

    /// The bytes the transfer id table allocated.
    pub(crate) fn transfer_index_bytes(&self) -> usize {
        self.transfer_index.iter().map(|shard| crate::memory::hashed(shard.capacity(), std::mem::size_of::<IndexEntry>())).sum()
    }

    /// The bytes the id runs' summaries and the id filter hold.
    pub(crate) fn id_runs_bytes(&self) -> usize {
        self.id_runs.iter().map(IdRun::bytes).sum::<usize>() + self.id_filter.as_ref().map_or(0, IdFilter::bytes)
    }

    /// The API key behind the journal entry at `seq`, if a key made it.
    pub fn key_at(&self, seq: u64) -> Option<&Id> {
        self.actors.key_at(seq)
    }

    /// Which keys made the entries from `from` to `to`: runs of seqs, each with its key.
    pub fn key_runs(&self, from: u64, to: u64) -> Vec<(u64, Option<Id>)> {
        self.actors.runs_between(from, to)
    }

    /// The seq of the last decided event; 0 for an empty ledger.
    pub fn last_seq(&self) -> u64 {
        self.log.last_seq()
    }

    /// The journal position `seq`, which must be in this state's log.
    pub(crate) fn log_entry(&self, seq: u64) -> LogEntry {
        self.log.get(seq)
    }

    pub fn last_timestamp(&self) -> u64 {
        self.last_timestamp
    }

    /// Applies one request at `timestamp` (nanoseconds; the state keeps its own clock strictly
    /// increasing, so a clock that steps back never reorders the journal). Returns one
    /// outcome per event, in order.
    pub fn apply(&mut self, request: &Request, timestamp: u64) -> Vec<Outcome> {
        if let Request::By { key, request } = request {
            self.actors.act_as(Some(key));
            let outcomes = self.apply(request, timestamp);
            self.actors.act_as(None);
            return outcomes;
        }
        let outcomes = match request {
            Request::By { .. } => unreachable!("taken apart above"),
            Request::CreateAssets(events) => events.iter().map(|e| self.create_asset(e, timestamp)).collect(),
            Request::CreateAccounts(events) => events.iter().map(|e| self.create_account(e, timestamp)).collect(),
            Request::UpdateAccounts(events) => events.iter().map(|e| self.update_account(e, timestamp)).collect(),
            Request::CreateTransfers(events) => self.create_transfers(events, timestamp),
            Request::RenewHolds(events) => events.iter().map(|e| self.renew_hold(e, timestamp)).collect(),
        };
        debug_assert!(self.check_invariants().is_ok(), "{:?}", self.check_invariants());
        outcomes
    }

    /// Expires every hold whose timeout has passed at `timestamp`, each as its own journal
    /// entry. Returns how many expired.
    pub fn expire(&mut self, timestamp: u64) -> usize {
        assert_eq!(self.batch_time(timestamp), timestamp, "a slice never expires past its horizon");
        let mut expired = 0;
        while let Some(&(expires_at, hold)) = self.holds_by_expiry.first() {
            if expires_at > timestamp {
                break;
            }
            self.holds_by_expiry.pop_first();
            let record = self.records.get(hold as usize);
            assert_eq!(record.hold_state, HoldState::Pending);
            let (debit, credit, amount) = (record.debit, record.credit, record.amount);
            let seq = self.last_seq() + 1;
            let paths = self.moved_paths(debit, credit, Movement::Void(amount));
            for (side, accounts) in [(Side::Debit, &paths.debit), (Side::Credit, &paths.credit)] {
                for &account in accounts {
                    let account = &mut self.accounts[account as usize];
                    account.totals =
                        Movement::Void(amount).shift(account.totals, side, true).expect("voiding a hold keeps totals in range");
                    account.push_change(seq);
                }
            }
            let stamp = self.tick(timestamp);
            self.records.set_hold(hold, HoldState::Expired, record.related);
            self.expiries.push(ExpiryRecord { hold, seq, timestamp: stamp });
            self.log.push(LogEntry::Expiry(self.expiries.len() as u32 - 1));
            self.actors.recorded(self.last_seq());
            expired += 1;
        }
        expired
    }

    /// The earliest time at which `expire` has work to do.
    pub fn next_expiry(&self) -> Option<u64> {
        self.holds_by_expiry.first().map(|&(at, _)| at)
    }

    pub(crate) fn restore_clock(&mut self, last_timestamp: u64) {
        self.last_timestamp = last_timestamp;
    }

    /// The timestamp the next entry gets when applied at `timestamp`: the clock's reading, or
    /// just after the last entry's if the clock stepped back, so timestamps strictly increase.
    fn next_timestamp(&self, timestamp: u64) -> u64 {
        timestamp.max(self.last_timestamp + 1)
    }

    fn tick(&mut self, timestamp: u64) -> u64 {
        self.last_timestamp = self.next_timestamp(timestamp);
        self.last_timestamp
    }

    fn record(&mut self, entry: LogEntry, timestamp: u64) -> Outcome {
        self.log.push(entry);
        self.actors.recorded(self.last_seq());
        Outcome { result: ResultCode::Created, seq: self.last_seq(), timestamp: self.tick(timestamp), moved: None }
    }

    fn create_asset(&mut self, event: &NewAsset, timestamp: u64) -> Outcome {
        if let Some(&index) = self.asset_index.get(&event.code) {
            let asset = &self.assets[index as usize];
            let result = if asset.scale == event.scale { ResultCode::Exists } else { ResultCode::ExistsWithDifferentFields };
            return Outcome { result, seq: asset.seq, timestamp: asset.timestamp, moved: None };
        }
        if event.scale > crate::limits::SCALE_MAX {
            return Outcome::unrecorded(ResultCode::InvalidScale);
        }
        let index = self.assets.len() as u32;
        let outcome = self.record(LogEntry::Asset(index), timestamp);
        self.assets.push(Asset { code: event.code.clone(), scale: event.scale, seq: outcome.seq, timestamp: outcome.timestamp });
        self.asset_index.insert(event.code.clone(), index);
        outcome
    }

    fn bound(decimal: &Option<Decimal>, scale: u8) -> Result<Option<i128>, ResultCode> {
        match decimal {
            None => Ok(None),
            Some(value) => value.to_minor(scale).map(Some).map_err(|_| ResultCode::InvalidAmount),
        }
    }

    fn create_account(&mut self, event: &NewAccount, timestamp: u64) -> Outcome {
        let Some(&asset) = self.asset_index.get(&event.asset) else {
            return self.existing_account(event).unwrap_or(Outcome::unrecorded(ResultCode::AssetNotFound));
        };
        let scale = self.assets[asset as usize].scale;
        let settings = match (Self::bound(&event.min_balance, scale), Self::bound(&event.max_balance, scale)) {
            (Ok(min_balance), Ok(max_balance)) => Settings { min_balance, max_balance, metadata: event.metadata.clone(), closed: false },
            _ => return self.existing_account(event).unwrap_or(Outcome::unrecorded(ResultCode::InvalidAmount)),
        };
        if let Some(&index) = self.account_index.get(&event.id) {
            let account = &self.accounts[index as usize];
            let parent = account.parent.map(|p| &self.accounts[p as usize].id);
            let same = account.asset == asset && parent == event.parent.as_ref() && account.created_settings == settings;
            let result = if same { ResultCode::Exists } else { ResultCode::ExistsWithDifferentFields };
            return Outcome { result, seq: account.created_seq, timestamp: account.timestamp, moved: None };
        }
        let (parent, depth) = match &event.parent {
            None => (None, 1),
            Some(parent_id) => {
                let Some(&parent) = self.account_index.get(parent_id) else {
                    return Outcome::unrecorded(ResultCode::ParentNotFound);
                };
                let parent_account = &self.accounts[parent as usize];
                if parent_account.asset != asset {
                    return Outcome::unrecorded(ResultCode::AssetMismatch);
                }
                if usize::from(parent_account.depth) >= ACCOUNT_DEPTH_MAX {
                    return Outcome::unrecorded(ResultCode::DepthExceeded);
                }
                (Some(parent), parent_account.depth + 1)
            }
        };
        if let Err(code) = Totals::default().within(&settings) {
            return Outcome::unrecorded(code);
        }
        assert!(event.metadata.as_ref().is_none_or(|m| m.len() <= METADATA_BYTES_MAX));
        let index = self.accounts.len() as u32;
        let outcome = self.record(LogEntry::Account(index), timestamp);
        self.accounts.push(Account {
            id: event.id.clone(),
            asset,
            parent,
            depth,
            created_settings: settings.clone(),
            settings,
            totals: Totals::default(),
            created_seq: outcome.seq,
            timestamp: outcome.timestamp,
            history: vec![outcome.seq],
            earlier_changes: 0,
            checkpoints: Vec::new(),
            updates: Vec::new(),
        });
        self.account_index.insert(event.id.clone(), index);
        self.accounts_ordered.insert(event.id.clone(), index);
        self.children.insert((parent.unwrap_or(ROOTS), event.id.clone()));
        outcome
    }

    /// For a creation that cannot be checked field by field (its asset or bounds are
    /// invalid): an existing account with that id differs from it by definition.
    fn existing_account(&self, event: &NewAccount) -> Option<Outcome> {
        let account = &self.accounts[*self.account_index.get(&event.id)? as usize];
        Some(Outcome { result: ResultCode::ExistsWithDifferentFields, seq: account.created_seq, timestamp: account.timestamp, moved: None })
    }

    fn update_account(&mut self, event: &AccountUpdate, timestamp: u64) -> Outcome {
        let Some(&index) = self.account_index.get(&event.id) else {
            return Outcome::unrecorded(ResultCode::AccountNotFound);
        };
        let account = &self.accounts[index as usize];
        let AccountPatch { min_balance, max_balance, metadata, closed, force, if_version } = &event.patch;
        if if_version.is_some_and(|v| v != account.version()) {
            return Outcome::unrecorded(ResultCode::VersionMismatch);
        }
        let scale = self.assets[account.asset as usize].scale;
        let mut after = account.settings.clone();
        match (min_balance.as_ref().map(|m| Self::bound(m, scale)), max_balance.as_ref().map(|m| Self::bound(m, scale))) {
            (Some(Err(code)), _) | (_, Some(Err(code))) => return Outcome::unrecorded(code),
            (min, max) => {
                if let Some(Ok(min)) = min {
                    after.min_balance = min;
                }
                if let Some(Ok(max)) = max {
                    after.max_balance = max;
                }
            }
        }
        if let Some(metadata) = metadata {
            after.metadata = metadata.clone();
        }
        if let Err(code) = account.totals.within(&after) {
            return Outcome::unrecorded(code);
        }
        if let Some(closed) = *closed {
            // Closing an account that still holds something is usually a sweep forgotten, so it
            // takes `force` (freezing a wallet for review is that case, and says so).
            if closed && !account.settings.closed && !force && !account.totals.is_settled() {
                return Outcome::unrecorded(ResultCode::AccountNotEmpty);
            }
            after.closed = closed;
        }
        let update = self.updates.len() as u32;
        let outcome = self.record(LogEntry::Update(update), timestamp);
        let account = &mut self.accounts[index as usize];
        let before = std::mem::replace(&mut account.settings, after.clone());
        self.closed_accounts = self.closed_accounts + usize::from(after.closed) - usize::from(before.closed);
        account.push_change(outcome.seq);
        account.updates.push(update);
        self.updates.push(UpdateRecord { account: index, before, after, seq: outcome.seq, timestamp: outcome.timestamp });
        Outcome { result: ResultCode::Updated, ..outcome }
    }

    fn renew_hold(&mut self, event: &HoldRenewal, timestamp: u64) -> Outcome {
        match self.renewed_expiry(event, timestamp) {
            Err(code) => Outcome::unrecorded(code),
            Ok((hold, expires_at)) => {
                let renewal = self.renewals.len() as u32;
                let outcome = self.record(LogEntry::Renewal(renewal), timestamp);
                assert_eq!(expires_at - event.timeout_ms * 1_000_000, outcome.timestamp, "a lease runs from its renewal");
                if let Some(before) = self.hold_expiry.insert(hold, expires_at) {
                    self.holds_by_expiry.remove(&(before, hold));
                }
                self.holds_by_expiry.insert((expires_at, hold));
                self.renewals.push(RenewalRecord { hold, expires_at, seq: outcome.seq, timestamp: outcome.timestamp });
                Outcome { result: ResultCode::Updated, ..outcome }
            }
        }
    }

    /// The hold a renewal names and its new expiry, if it can still be renewed.
    fn renewed_expiry(&self, event: &HoldRenewal, timestamp: u64) -> Result<(u32, u64), ResultCode> {
        assert!((1..=HOLD_TIMEOUT_MS_MAX).contains(&event.timeout_ms), "renewal timeouts are validated");
        let (hold, record) = self.pending_hold(&event.id, timestamp)?;
        if event.if_seq.is_some_and(|seq| seq != record.seq) {
            return Err(ResultCode::VersionMismatch);
        }
        Ok((hold, self.next_timestamp(timestamp).checked_add(event.timeout_ms * 1_000_000).ok_or(ResultCode::Overflow)?))
    }

    fn create_transfers(&mut self, events: &[NewTransfer], timestamp: u64) -> Vec<Outcome> {
        self.request_start_seq = self.last_seq();
        let mut outcomes = Vec::with_capacity(events.len());
        let mut undo = Vec::new();
        let mut start = 0;
        while start < events.len() {
            // A chain runs to the first event without `linked`, or to the end of the request,
            // in which case it is open and fails.
            let (end, open) = match events[start..].iter().position(|e| !e.linked) {
                Some(offset) => (start + offset, false),
                None => (events.len() - 1, true),
            };
            undo.clear();
            let mut failure = None;
            // The chain's outcomes go straight into `outcomes`; a failure takes them back out.
            let chain_outcomes = outcomes.len();
            for (index, event) in events.iter().enumerate().take(end + 1).skip(start) {
                if open && index == end {
                    failure = Some((index, ResultCode::LinkedChainOpen));
                    break;
                }
                match self.attempt(event, timestamp, &mut undo) {
                    Attempt::Applied(outcome) => outcomes.push(outcome),
                    Attempt::Known(outcome) if outcome.result == ResultCode::Exists => outcomes.push(outcome),
                    Attempt::Known(outcome) if start == end => outcomes.push(outcome),
                    Attempt::Known(outcome) => {
                        failure = Some((index, outcome.result));
                        break;
                    }
                    Attempt::Rejected(code) => {
                        failure = Some((index, code));
                        break;
                    }
                }
            }
            if let Some((failed, code)) = failure {
                outcomes.truncate(chain_outcomes);
                self.roll_back(&mut undo);
                for (index, event) in events.iter().enumerate().take(end + 1).skip(start) {
                    let code = if index == failed { code } else { ResultCode::LinkedEventFailed };
                    outcomes.push(self.record_failure(event, code, timestamp));
                }
            }
            start = end + 1;
        }
        outcomes
    }

    pub(crate) fn find_transfer(&self, id: &str) -> Option<u32> {
        let full_hash = id_hash(id.as_bytes());
        let (shard, hash) = index_key(full_hash);
        let in_table = self.transfer_index[shard]
            .find(table_hash(hash), |entry| entry.hash == hash && self.text_of(entry.record).id_bytes() == id.as_bytes());
        if let Some(entry) = in_table {
            return Some(entry.record);
        }
        let reader = self.records.reader()?;
        if self.id_filter.as_ref().is_some_and(|filter| !filter.may_contain(full_hash)) {
            return None;
        }
        // Records not handed off are in the table, which was asked first. A run may cover
        // segments a restarted ledger has not handed off again yet (`adopt_id_runs`), and even
        // records its replay has not made yet: those are passed over.
        let handed = self.records.handed_records();
        let held = |record: &u32| (*record as usize) < handed && self.text_of(*record).id_bytes() == id.as_bytes();
        let shift = self.records.shift();
        self.id_runs
            .iter()
            .rev()
            .filter(|run| ((run.range().first as usize) << shift) < handed)
            .find_map(|run| run.find(full_hash, reader).unwrap_or_else(|problem| unreadable(&problem)).into_iter().find(held))
    }

    /// Hands records off to history in segments of `2^shift` records, read back through
    /// `files`. Records already in memory are kept, in chunks of the new size; a state that
    /// loaded a snapshot standing on segments keeps the history it loaded them with.
    pub fn attach_history(&mut self, files: HistoryFiles, shift: u32) {
        if self.records.is_attached() {
            return;
        }
        assert!(self.slice.is_none(), "a slice is loaded from a store, never handed off");
        let mut records = Records::default();
        records.attach(files.reader, shift);
        for index in 0..self.records.len() as u32 {
            let (record, text) = (self.record_at(index), self.text_of(index));
            records.push(record, text.id(), text.metadata().unwrap_or(""));
        }
        self.records = records;
        self.adopt_id_runs(files.id_runs_end).expect("no segment is handed off yet, so none is read");
    }

    /// Takes `segments` history segments as the first records (loading a snapshot that
    /// stands on them), with the id runs that index them.
    pub(crate) fn adopt_segments(&mut self, files: HistoryFiles, shift: u32, segments: usize) -> Result<(), String> {
        self.records.attach(files.reader, shift);
        self.records.adopt_segments(segments)?;
        self.adopt_id_runs(files.id_runs_end)
    }

    /// Takes the id runs that cover segments `[0, end)` as the store wrote them (reading their
    /// summaries), and indexes the handed-off segments they do not cover in the table, from
    /// the hashes the segments keep. If a run does not read back, none is taken: the table
    /// indexes every handed-off segment, and the runs are written again (`id_run_due`).
    ///
    /// The runs may cover more segments than this state handed off: those of a ledger that
    /// stopped after its last snapshot. The replay makes the same records again (the history
    /// is deterministic, and the store compares the segments it writes again, `history_diverged`
    /// if they differ), but each record it makes is then found in a run, as a record not made
    /// yet, which costs a page read. The other way is to take only the runs that end within
    /// the handed-off segments and index the rest of those from their hashes, in the table: a
    /// sequential read, but table memory. So the runs beyond are left (and written again as
    /// the replay goes) if that indexes at most `ADOPT_FROM_HASHES_MAX` segments and at most
    /// `PAGE_READ_WEIGHT` times the segments to replay; otherwise they are taken.
    fn adopt_id_runs(&mut self, end: u32) -> Result<(), String> {
        let reader = self.records.reader().expect("a history is attached");
        let shift = self.records.shift();
        let handed = self.records.handed_segments() as u32;
        let end = if end > handed {
            let before = id_runs::plan(end).into_iter().take_while(|run| run.end <= handed).last().map_or(0, |run| run.end);
            let from_hashes = handed - before;
            let cheaper = from_hashes <= ADOPT_FROM_HASHES_MAX && from_hashes <= (end - handed).saturating_mul(PAGE_READ_WEIGHT);
            if cheaper {
                before
            } else {
                end
            }
        } else {
            end
        };
        let runs: Result<Vec<IdRun>, String> = id_runs::plan(end).into_iter().map(|range| id_runs::load(range, shift, reader)).collect();
        self.id_runs = runs.unwrap_or_default();
        self.id_filter = None;
        self.index_segments(self.id_runs_end()..self.records.handed_segments() as u32)
    }

    /// Indexes handed-off `segments` in the table.
    fn index_segments(&mut self, segments: std::ops::Range<u32>) -> Result<(), String> {
        let shift = self.records.shift();
        for segment in segments {
            for (slot, hash) in self.records.segment_hashes(segment)?.into_iter().enumerate() {
                insert_index_entry(&mut self.transfer_index, (segment << shift) + slot as u32, hash);
            }
        }
        Ok(())
    }

    /// How many segments the id runs cover.
    pub fn id_runs_end(&self) -> u32 {
        self.id_runs.last().map_or(0, |run| run.range().end)
    }

    /// The next handed-off segment to index in the id runs, if one is due.
    pub fn id_run_due(&self) -> Option<u32> {
        let end = self.id_runs_end();
        ((end as usize) < self.records.handed_segments()).then_some(end)
    }

    /// The capacity of the id filter the store must build from the runs before it indexes the
    /// next segment, if the filter is missing or would overflow.
    pub fn id_filter_due(&self) -> Option<u64> {
        let wanted = (u64::from(self.id_runs_end()) + 1) << self.records.shift();
        self.id_filter.as_ref().is_none_or(|filter| filter.capacity() < wanted).then_some(wanted)
    }

    /// The store built `filter` from every id the runs up to `end` hold.
    pub fn filtered(&mut self, filter: IdFilter, end: u32) {
        assert!(self.id_filter_due().is_some() && end == self.id_runs_end(), "a filter is built when due, from the runs held");
        self.id_filter = Some(filter);
    }

    /// The store wrote `run`, the run `id_runs::completed_by` the due segment, from the id
    /// hashes `hashes` that segment keeps: its ids leave the table, for the filter.
    pub fn indexed(&mut self, run: IdRun, hashes: &[u64]) {
        let segment = self.id_run_due().expect("a segment is due to be indexed");
        let shift = self.records.shift();
        assert_eq!(run.range(), id_runs::completed_by(segment), "runs are written in order");
        assert_eq!(hashes.len(), 1 << shift, "a segment's hashes index its every record");
        if self.transfer_index.iter().map(HashTable::len).sum::<usize>() <= TABLE_PASS_SEGMENTS << shift {
            self.unindex_segment(segment);
        } else {
            // A table that indexes many segments (a start without id runs) loses this one's
            // entries one by one: a pass over the whole table for each would be quadratic.
            for (slot, &hash) in hashes.iter().enumerate() {
                remove_index_entry(&mut self.transfer_index, (segment << shift) + slot as u32, hash);
            }
            self.shrink_index();
        }
        if let Some(filter) = &mut self.id_filter {
            hashes.iter().for_each(|&hash| filter.insert(hash));
        }
        self.id_runs.retain(|held| held.range().end <= run.range().first);
        self.id_runs.push(run);
    }

    /// Segment `segment`, written again, differs from the one the id runs were built from (the
    /// journal no longer matches the history files): the runs that reach it are dropped (the
    /// ones before it end where `plan` would), the table indexes the handed-off segments they
    /// covered, and the runs are written again from the segments.
    pub fn history_diverged(&mut self, segment: u32) {
        let covered = self.id_runs_end().min(self.records.handed_segments() as u32);
        self.id_runs.retain(|run| run.range().end <= segment);
        self.id_filter = None;
        self.index_segments(self.id_runs_end()..covered).unwrap_or_else(|problem| unreadable(&problem));
    }

    /// History segments hold `2^history_shift` records.
    pub fn history_shift(&self) -> u32 {
        self.records.shift()
    }

    /// The next history segment to hand off, if one is due.
    pub fn segment_due(&self) -> Option<u32> {
        self.records.segment_due()
    }

    /// The bytes of the due segment `segment`, for the store to write.
    pub fn encode_segment(&self, segment: u32) -> Vec<u8> {
        assert_eq!(Some(segment), self.segment_due(), "only the due segment is encoded");
        self.records.encode_segment(segment, self.records.shift())
    }

    /// The bytes segment `segment` of `2^shift` records must hold, if this state has all of
    /// its records: how a replay checks the segments a ledger wrote.
    pub fn history_segment(&self, segment: u32, shift: u32) -> Option<Vec<u8>> {
        let end = (segment as usize + 1).checked_mul(1 << shift)?;
        (end <= self.records.len()).then(|| self.records.encode_segment(segment, shift))
    }

    /// Transfer records made so far (failed ones too).
    pub fn transfers(&self) -> usize {
        self.records.len()
    }

    /// The hash the id index keeps for transfer record `index`'s id.
    pub fn transfer_id_hash(&self, index: u32) -> u64 {
        id_hash(self.text_of(index).id_bytes())
    }

    /// History segments handed off so far.
    pub fn history_segments(&self) -> usize {
        self.records.handed_segments()
    }

    /// The store wrote segment `segment` where the history reads it: its records leave memory,
    /// and their ids the table if the id runs already cover them.
    pub fn handed_off(&mut self, segment: u32) {
        self.records.handed_off(segment);
        if segment < self.id_runs_end() {
            self.unindex_segment(segment);
        }
    }

    /// Takes segment `segment`'s records out of the table, which holds none of the segments
    /// before it and only a few after: one pass over it, cheaper than a lookup for each.
    fn unindex_segment(&mut self, segment: u32) {
        let end = (segment + 1) << self.records.shift();
        for shard in &mut self.transfer_index {
            shard.retain(|entry| entry.record >= end);
        }
        self.shrink_index();
    }

    /// Gives back the memory of a table that indexed many handed-off segments once the id
    /// runs hold them.
    fn shrink_index(&mut self) {
        for shard in &mut self.transfer_index {
            if shard.capacity() > 4 * shard.len().max(1 << 10) {
                shard.shrink_to_fit(|entry| table_hash(entry.hash));
            }
        }
    }

    /// Transfer record `index`.
    pub(crate) fn record_at(&self, index: u32) -> TransferRecord {
        self.records.get(index as usize)
    }

    /// Transfer record `index`'s id and metadata.
    pub(crate) fn text_of(&self, index: u32) -> Text<'_> {
        self.records.text(index as usize)
    }

    /// Transfer record `index`'s id.
    pub(crate) fn id_of(&self, index: u32) -> String {
        self.text_of(index).id().to_owned()
    }

    /// Records a failed transfer. An id decided before keeps its original outcome instead,
    /// whatever happened to the chain it was resent in: a retry always hears the same answer.
    fn record_failure(&mut self, event: &NewTransfer, code: ResultCode, timestamp: u64) -> Outcome {
        if let Some(existing) = self.find_decided(event) {
            return self.known_outcome(existing, event);
        }
        let index = self.records.len() as u32;
        let outcome = self.record(LogEntry::Transfer(index), timestamp);
        let record = TransferRecord {
            amount: 0,
            text: Span::default(),
            seq: outcome.seq,
            timestamp: outcome.timestamp,
            fingerprint: fingerprint(event),
            debit: NONE,
            credit: NONE,
            related: NONE,
            kind: record_kind(&event.kind),
            result: code,
            hold_state: HoldState::Pending,
        };
        self.push_record(record, event.id.as_str(), "");
        Outcome { result: code, ..outcome }
    }

    /// Adds a record with its text, and indexes its id.
    pub(crate) fn push_record(&mut self, record: TransferRecord, id: &str, metadata: &str) -> u32 {
        let index = self.records.push(record, id, metadata);
        self.index_transfer(index, id_hash(id.as_bytes()));
        index
    }

    /// Indexes record `index` under its id's hash.
    pub(crate) fn index_transfer(&mut self, index: u32, id_hash: u64) {
        insert_index_entry(&mut self.transfer_index, index, id_hash);
    }

    /// Makes room in the transfer index for `additional` more ids without rehashing.
    pub(crate) fn reserve_transfers(&mut self, additional: usize) {
        for shard in &mut self.transfer_index {
            shard.reserve(additional / INDEX_SHARDS + 1, |entry| table_hash(entry.hash));
        }
    }

    fn account_for(&self, id: &Id) -> Result<u32, ResultCode> {
        self.account_index.get(id).copied().ok_or(ResultCode::AccountNotFound)
    }

    /// What a transfer id decided before answers when it comes again: `exists` for a success,
    /// the original failure for a failure, `exists_with_different_fields` if anything differs.
    fn known_outcome(&self, existing: u32, event: &NewTransfer) -> Outcome {
        let record = self.record_at(existing);
        let result = if record.fingerprint != fingerprint(event) {
            ResultCode::ExistsWithDifferentFields
        } else if record.result == ResultCode::Created {
            ResultCode::Exists
        } else {
            record.result
        };
        // What the original moved, for an event whose result says so.
        let moved = match &event.kind {
            _ if result != ResultCode::Exists => None,
            TransferKind::Allocate { shares, .. } => {
                let legs = (0..shares.len()).filter_map(|index| self.find_transfer(event.id.leg(index).as_str()));
                Some(self.moved(record.debit, legs.map(|leg| self.record_at(leg).amount).sum()))
            }
            _ => event.balancing.then(|| self.moved(record.debit, record.amount)),
        };
        Outcome { result, seq: record.seq, timestamp: record.timestamp, moved }
    }

    fn attempt(&mut self, event: &NewTransfer, timestamp: u64, undo: &mut Vec<Undo>) -> Attempt {
        if let Some(existing) = self.find_decided(event) {
            return Attempt::Known(self.known_outcome(existing, event));
        }
        let applied = match &event.kind {
            TransferKind::Allocate { .. } => self.allocate(event, timestamp, undo),
            TransferKind::Post { pending_id, .. } | TransferKind::Void { pending_id, .. } if self.is_allocation(pending_id) => {
                self.resolve_allocation(event, pending_id, timestamp, undo)
            }
            _ => self.plan(event, timestamp).map(|plan| {
                let moved = event.balancing.then(|| self.moved(plan.debit, plan.amount));
                let outcome = self.commit(&event.id, event.metadata.as_ref(), fingerprint(event), plan, timestamp, undo);
                Outcome { moved, ..outcome }
            }),
        };
        match applied {
            Ok(outcome) => Attempt::Applied(outcome),
            Err(code) => Attempt::Rejected(code),
        }
    }

    /// The record that decided this event's id before: the event's own, or for an event that
    /// may have applied as legs (an allocation, or a post or void that may resolve one), its
    /// first leg.
    fn find_decided(&self, event: &NewTransfer) -> Option<u32> {
        let may_have_legs = matches!(event.kind, TransferKind::Allocate { .. } | TransferKind::Post { .. } | TransferKind::Void { .. });
        self.find_transfer(event.id.as_str()).or_else(|| may_have_legs.then(|| self.find_transfer(event.id.leg(0).as_str())).flatten())
    }

    /// Whether `id` names an allocation (of holds or not) rather than a transfer.
    /// Legs are looked at first: a plain transfer sent later under an allocation's id must not
    /// hide the allocation from the post or void that resolves it.
    fn is_allocation(&self, id: &Id) -> bool {
        self.find_transfer(id.leg(0).as_str()).is_some_and(|leg| {
            let leg = self.record_at(leg);
            leg.kind == RecordKind::Pending && leg.result == ResultCode::Created
        })
    }

    fn moved(&self, account: u32, amount: u128) -> Moved {
        Moved { amount, scale: self.assets[self.accounts[account as usize].asset as usize].scale }
    }

    /// Applies an allocation leg by leg, each leg seeing the ones before it, so the bounds of
    /// the debit side hold for the sum. On failure the caller rolls back the legs applied.
    fn allocate(&mut self, event: &NewTransfer, timestamp: u64, undo: &mut Vec<Undo>) -> Result<Outcome, ResultCode> {
        let TransferKind::Allocate { debit, shares, amount, pending, timeout_ms } = &event.kind else {
            unreachable!("called for allocations only")
        };
        let debit_account = self.account_for(debit)?;
        self.check_open(debit_account)?;
        let mut credits = Vec::with_capacity(shares.len());
        for share in shares {
            if share.credit == *debit {
                return Err(ResultCode::SameAccount);
            }
            let credit = self.account_for(&share.credit)?;
            self.check_open(credit)?;
            credits.push(credit);
        }
        let mut scale = 0;
        for &credit in &credits {
            scale = self.check_assets(debit_account, credit, &event.asset)?;
        }
        let total = positive_minor(amount, scale)?;
        assert!(*pending || timeout_ms.is_none(), "only a held allocation has a timeout (the edges refuse others)");
        let weights: Vec<u64> = shares.iter().map(|share| share.weight).collect();
        let fingerprint = fingerprint(event);
        let mut first = None;
        for (index, (credit, part)) in credits.into_iter().zip(split(total, &weights)).enumerate() {
            let (movement, kind) =
                if *pending { (Movement::Pending(part), RecordKind::Pending) } else { (Movement::Direct(part), RecordKind::Direct) };
            // The version asked for is the one before the first leg.
            let versions = if index == 0 { (event.if_debit_version, None) } else { (None, None) };
            let plan =
                self.plan_move(Move { debit: debit_account, credit, movement, kind, hold: NONE }, versions, *timeout_ms, timestamp)?;
            let outcome = self.commit(&event.id.leg(index), event.metadata.as_ref(), fingerprint, plan, timestamp, undo);
            first.get_or_insert(outcome);
        }
        let first = first.expect("an allocation has at least one leg");
        Ok(Outcome { moved: Some(self.moved(debit_account, total)), ..first })
    }

    /// Posts or voids every leg of the allocation `allocation`, each whole, as legs of this
    /// event (`<id>/0`, ...).
    fn resolve_allocation(
        &mut self,
        event: &NewTransfer,
        allocation: &Id,
        timestamp: u64,
        undo: &mut Vec<Undo>,
    ) -> Result<Outcome, ResultCode> {
        let (debit, credit, post) = match &event.kind {
            TransferKind::Post { amount: Some(_), .. } => return Err(ResultCode::InvalidAmount),
            TransferKind::Post { debit, credit, .. } => (debit, credit, true),
            TransferKind::Void { debit, credit, .. } => (debit, credit, false),
            _ => unreachable!("called for posts and voids only"),
        };
        let legs = (0..ALLOCATION_SHARES_MAX).take_while(|&index| self.find_transfer(allocation.leg(index).as_str()).is_some()).count();
        if (self.last_seq() - self.request_start_seq) as usize + legs > REQUEST_ENTRIES_MAX {
            return Err(ResultCode::TooManyEntries);
        }
        let fingerprint = fingerprint(event);
        let mut first = None;
        for index in 0..legs {
            let leg = allocation.leg(index);
            let (hold, record) = self.open_hold(&leg, debit, credit, timestamp)?;
            let (movement, kind) = if post {
                (Movement::Post { held: record.amount, posted: record.amount }, RecordKind::Post)
            } else {
                (Movement::Void(record.amount), RecordKind::Void)
            };
            let step = Move { debit: record.debit, credit: record.credit, movement, kind, hold };
            self.check_assets(step.debit, step.credit, &event.asset)?;
            let versions = if index == 0 { (event.if_debit_version, event.if_credit_version) } else { (None, None) };
            let plan = self.plan_move(step, versions, None, timestamp)?;
            let outcome = self.commit(&event.id.leg(index), event.metadata.as_ref(), fingerprint, plan, timestamp, undo);
            first.get_or_insert(outcome);
        }
        Ok(first.expect("an allocation has a first leg"))
    }

    /// Checks a new transfer against the state without changing anything.
    fn plan(&self, event: &NewTransfer, timestamp: u64) -> Result<Plan, ResultCode> {
        let versions = (event.if_debit_version, event.if_credit_version);
        match &event.kind {
            TransferKind::Direct { debit, credit, amount } | TransferKind::Pending { debit, credit, amount, .. } => {
                if debit == credit {
                    return Err(ResultCode::SameAccount);
                }
                let (debit, credit) = (self.account_for(debit)?, self.account_for(credit)?);
                self.check_open(debit)?;
                self.check_open(credit)?;
                let scale = self.check_assets(debit, credit, &event.asset)?;
                let pending = matches!(event.kind, TransferKind::Pending { .. });
                let amount = if event.balancing {
                    balancing_limit(amount, scale)?.min(self.headroom(debit, credit, pending))
                } else {
                    positive_minor(amount, scale)?
                };
                let (movement, kind, timeout_ms) = match &event.kind {
                    TransferKind::Pending { timeout_ms, .. } => (Movement::Pending(amount), RecordKind::Pending, *timeout_ms),
                    _ => (Movement::Direct(amount), RecordKind::Direct, None),
                };
                self.plan_move(Move { debit, credit, movement, kind, hold: NONE }, versions, timeout_ms, timestamp)
            }
            TransferKind::Post { pending_id, debit, credit, amount } => {
                let (hold, record) = self.open_hold(pending_id, debit, credit, timestamp)?;
                let scale = self.check_assets(record.debit, record.credit, &event.asset)?;
                let posted = match amount {
                    None => record.amount,
                    Some(amount) => positive_minor(amount, scale)?,
                };
                if posted > record.amount {
                    return Err(ResultCode::AmountExceedsPending);
                }
                let movement = Movement::Post { held: record.amount, posted };
                self.plan_move(
                    Move { debit: record.debit, credit: record.credit, movement, kind: RecordKind::Post, hold },
                    versions,
                    None,
                    timestamp,
                )
            }
            TransferKind::Void { pending_id, debit, credit } => {
                let (hold, record) = self.open_hold(pending_id, debit, credit, timestamp)?;
                self.check_assets(record.debit, record.credit, &event.asset)?;
                let movement = Movement::Void(record.amount);
                self.plan_move(
                    Move { debit: record.debit, credit: record.credit, movement, kind: RecordKind::Void, hold },
                    versions,
                    None,
                    timestamp,
                )
            }
            TransferKind::Allocate { .. } => unreachable!("allocations are planned leg by leg"),
        }
    }

    /// The most a balancing transfer or hold from `debit` to `credit` can move now: what
    /// every bound on both paths, and the range of every total, still leave room for.
    fn headroom(&self, debit: u32, credit: u32, pending: bool) -> u128 {
        let paths = self.paths(debit, credit);
        let mut room = TOTAL_MAX;
        for (side, accounts) in [(Side::Debit, &paths.debit), (Side::Credit, &paths.credit)] {
            for &index in accounts {
                let account = &self.accounts[index as usize];
                let totals = &account.totals;
                let (total, bound_room) = match side {
                    Side::Debit => (
                        if pending { totals.debits_pending } else { totals.debits_posted },
                        account.settings.min_balance.map(|min| totals.available().saturating_sub(min)),
                    ),
                    Side::Credit => (
                        if pending { totals.credits_pending } else { totals.credits_posted },
                        account.settings.max_balance.map(|max| max.saturating_sub(totals.ceiling())),
                    ),
                };
                room = room.min(TOTAL_MAX - total);
                if let Some(bound_room) = bound_room {
                    room = room.min(bound_room.max(0) as u128);
                }
            }
        }
        room
    }

    /// Checks one movement between two accounts: versions, then every bound on both paths,
    /// then the hold's expiry. A movement of nothing changes no account.
    fn plan_move(
        &self,
        step: Move,
        versions: (Option<u64>, Option<u64>),
        timeout_ms: Option<u64>,
        timestamp: u64,
    ) -> Result<Plan, ResultCode> {
        let Move { debit, credit, movement, kind, hold } = step;
        let version_ok = |account: u32, expected: Option<u64>| expected.is_none_or(|v| v == self.accounts[account as usize].version());
        if !version_ok(debit, versions.0) || !version_ok(credit, versions.1) {
            return Err(ResultCode::VersionMismatch);
        }
        let paths = self.moved_paths(debit, credit, movement);
        for (side, accounts) in [(Side::Debit, &paths.debit), (Side::Credit, &paths.credit)] {
            for &index in accounts {
                let account = &self.accounts[index as usize];
                let after = movement.shift(account.totals, side, true).ok_or(ResultCode::Overflow)?;
                // The debit side may not fall below its floor and the credit side may not rise
                // above its ceiling; the other bound cannot be crossed by this side's change.
                match side {
                    Side::Debit if account.settings.min_balance.is_some_and(|min| after.available() < min) => {
                        return Err(ResultCode::ExceedsMinBalance);
                    }
                    Side::Credit if account.settings.max_balance.is_some_and(|max| after.ceiling() > max) => {
                        return Err(ResultCode::ExceedsMaxBalance);
                    }
                    _ => {}
                }
            }
        }
        let expires_at = match timeout_ms {
            Some(timeout_ms) => {
                assert!(timeout_ms <= HOLD_TIMEOUT_MS_MAX);
                // Holds expire relative to their own timestamp, the one `commit` will assign.
                let stamp = self.next_timestamp(timestamp);
                stamp.checked_add(timeout_ms * 1_000_000).ok_or(ResultCode::Overflow)?
            }
            None => 0,
        };
        Ok(Plan { debit, credit, amount: movement.amount(), kind, hold, movement, paths, expires_at })
    }

    /// Refuses a new transfer that touches a closed account or an account under one.
    fn check_open(&self, account: u32) -> Result<(), ResultCode> {
        if self.closed_accounts == 0 {
            return Ok(());
        }
        match self.lineage(account).into_iter().any(|&index| self.accounts[index as usize].settings.closed) {
            true => Err(ResultCode::AccountClosed),
            false => Ok(()),
        }
    }

    fn check_assets(&self, debit: u32, credit: u32, asset: &Option<AssetCode>) -> Result<u8, ResultCode> {
        let debit_asset = self.accounts[debit as usize].asset;
        if self.accounts[credit as usize].asset != debit_asset {
            return Err(ResultCode::AssetMismatch);
        }
        if let Some(code) = asset {
            let index = *self.asset_index.get(code).ok_or(ResultCode::AssetNotFound)?;
            if index != debit_asset {
                return Err(ResultCode::AssetMismatch);
            }
        }
        Ok(self.assets[debit_asset as usize].scale)
    }

    /// The hold named `id`, if it is still pending at `timestamp`: placed, not resolved, and
    /// not past its expiry even if not yet expired.
    fn pending_hold(&self, id: &Id, timestamp: u64) -> Result<(u32, TransferRecord), ResultCode> {
        let hold = self.find_transfer(id.as_str()).ok_or(ResultCode::PendingNotFound)?;
        assert!(!self.is_reference(hold), "a store loads the holds a batch posts, voids or renews in full");
        let record = self.record_at(hold);
        if record.kind != RecordKind::Pending || record.result != ResultCode::Created {
            return Err(ResultCode::PendingNotFound);
        }
        match record.hold_state {
            HoldState::Posted => return Err(ResultCode::PendingAlreadyPosted),
            HoldState::Voided => return Err(ResultCode::PendingAlreadyVoided),
            HoldState::Expired => return Err(ResultCode::PendingExpired),
            HoldState::Pending => {}
        }
        let now = self.next_timestamp(timestamp);
        if self.hold_expiry.get(&hold).is_some_and(|&expires_at| expires_at <= now) {
            return Err(ResultCode::PendingExpired);
        }
        Ok((hold, record))
    }

    /// The hold a post or void refers to, if it can still be resolved now.
    fn open_hold(
        &self,
        pending_id: &Id,
        debit: &Option<Id>,
        credit: &Option<Id>,
        timestamp: u64,
    ) -> Result<(u32, TransferRecord), ResultCode> {
        let (hold, record) = self.pending_hold(pending_id, timestamp)?;
        let matches = |given: &Option<Id>, account: u32| given.as_ref().is_none_or(|id| *id == self.accounts[account as usize].id);
        if !matches(debit, record.debit) || !matches(credit, record.credit) {
            return Err(ResultCode::PendingAccountMismatch);
        }
        Ok((hold, record))
    }

    fn commit(
        &mut self,
        id: &Id,
        metadata: Option<&Metadata>,
        fingerprint: u64,
        plan: Plan,
        timestamp: u64,
        undo: &mut Vec<Undo>,
    ) -> Outcome {
        undo.push(Undo::Clock { before: self.last_timestamp });
        let index = self.records.len() as u32;
        let outcome = self.record(LogEntry::Transfer(index), timestamp);
        undo.push(Undo::Recorded);
        for (side, accounts) in [(Side::Debit, &plan.paths.debit), (Side::Credit, &plan.paths.credit)] {
            for &account in accounts {
                let account_ref = &mut self.accounts[account as usize];
                undo.push(Undo::Totals { account, before: account_ref.totals });
                account_ref.totals = plan.movement.shift(account_ref.totals, side, true).expect("the plan checked this change");
                account_ref.push_change(outcome.seq);
            }
        }
        if plan.hold != NONE {
            let resolved = if plan.kind == RecordKind::Post { HoldState::Posted } else { HoldState::Voided };
            self.records.set_hold(plan.hold, resolved, index);
            if let Some(&expires_at) = self.hold_expiry.get(&plan.hold) {
                self.holds_by_expiry.remove(&(expires_at, plan.hold));
            }
            undo.push(Undo::HoldResolved { hold: plan.hold });
        }
        if plan.expires_at != 0 {
            assert_eq!(outcome.timestamp + (plan.expires_at - outcome.timestamp), plan.expires_at);
            self.holds_by_expiry.insert((plan.expires_at, index));
            self.hold_expiry.insert(index, plan.expires_at);
            undo.push(Undo::HoldScheduled { hold: index });
        }
        let record = TransferRecord {
            amount: plan.amount,
            text: Span::default(),
            seq: outcome.seq,
            timestamp: outcome.timestamp,
            fingerprint,
            debit: plan.debit,
            credit: plan.credit,
            related: plan.hold,
            kind: plan.kind,
            result: ResultCode::Created,
            hold_state: HoldState::Pending,
        };
        self.push_record(record, id.as_str(), metadata.map_or("", |m| m.as_str()));
        outcome
    }

    fn roll_back(&mut self, undo: &mut Vec<Undo>) {
        while let Some(step) = undo.pop() {
            match step {
                Undo::Clock { before } => self.last_timestamp = before,
                Undo::Recorded => {
                    let index = self.log.pop_transfer();
                    self.actors.rolled_back(self.last_seq());
                    assert_eq!(index as usize, self.records.len() - 1);
                    let hash = id_hash(self.text_of(index).id_bytes());
                    remove_index_entry(&mut self.transfer_index, index, hash);
                    self.records.pop();
                }
                Undo::Totals { account, before } => {
                    let account = &mut self.accounts[account as usize];
                    account.pop_change();
                    account.totals = before;
                }
                Undo::HoldResolved { hold } => {
                    self.records.set_hold(hold, HoldState::Pending, NONE);
                    if let Some(&expires_at) = self.hold_expiry.get(&hold) {
                        self.holds_by_expiry.insert((expires_at, hold));
                    }
                }
                Undo::HoldScheduled { hold } => {
                    let expires_at = self.hold_expiry.remove(&hold).expect("a scheduled hold has an expiry");
                    self.holds_by_expiry.remove(&(expires_at, hold));
                }
            }
        }
    }

    /// An account's ancestors, its parent first and its root last (`None` if it is unknown).
    /// A store that keeps lineages in rows takes them from here, so ancestry is computed in
    /// one place.
    pub fn ancestors(&self, id: &Id) -> Option<Vec<Id>> {
        let account = *self.account_index.get(id)?;
        Some(self.lineage(account).into_iter().skip(1).map(|&index| self.accounts[index as usize].id.clone()).collect())
    }

    /// The ancestors-or-self of `account`, the account first.
    pub(crate) fn lineage(&self, account: u32) -> Path {
        let mut lineage = Path::default();
        let mut next = Some(account);
        while let Some(index) = next {
            lineage.push(index);
            next = self.accounts[index as usize].parent;
        }
        lineage
    }

    /// The accounts `movement` changes: none for a movement of nothing (a balancing transfer
    /// or hold that found no room, a leg of zero, and their posts, voids and expiries).
    fn moved_paths(&self, debit: u32, credit: u32, movement: Movement) -> Paths {
        if movement.is_nothing() {
            Paths::default()
        } else {
            self.paths(debit, credit)
        }
    }

    fn paths(&self, debit: u32, credit: u32) -> Paths {
        let mut debit_path = self.lineage(debit);
        let mut credit_path = self.lineage(credit);
        // Both lineages end at their roots; drop the shared tail, where the transfer nets out.
        while !debit_path.is_empty() && debit_path.last() == credit_path.last() {
            debit_path.pop();
            credit_path.pop();
        }
        Paths { debit: debit_path, credit: credit_path }
    }

    /// Recomputes every account's totals from scratch by walking the log in order, and
    /// compares them with the totals kept incrementally. Slow (proportional to the whole
    /// history); used by `tally verify`.
    pub fn audit(&self) -> Result<(), String> {
        let mut totals = vec![Totals::default(); self.accounts.len()];
        let mut shift = |record: &TransferRecord, movement: Movement| -> Result<(), String> {
            let paths = self.paths(record.debit, record.credit);
            for (side, accounts) in [(Side::Debit, &paths.debit), (Side::Credit, &paths.credit)] {
                for &account in accounts {
                    let slot = &mut totals[account as usize];
                    *slot = movement
                        .shift(*slot, side, true)
                        .ok_or_else(|| format!("totals of {} leave their range", self.accounts[account as usize].id))?;
                }
            }
            Ok(())
        };
        for seq in 1..=self.last_seq() {
            match self.log.get(seq) {
                LogEntry::Transfer(index) => {
                    let record = self.record_at(index);
                    if record.result != ResultCode::Created {
                        continue;
                    }
                    let held = |r: &TransferRecord| self.record_at(r.related).amount;
                    let movement = match record.kind {
                        RecordKind::Direct => Movement::Direct(record.amount),
                        RecordKind::Pending => Movement::Pending(record.amount),
                        RecordKind::Post => Movement::Post { held: held(&record), posted: record.amount },
                        RecordKind::Void => Movement::Void(held(&record)),
                    };
                    shift(&record, movement)?;
                }
                LogEntry::Expiry(index) => {
                    let hold = self.record_at(self.expiries[index as usize].hold);
                    shift(&hold, Movement::Void(hold.amount))?;
                }
                LogEntry::Asset(_) | LogEntry::Account(_) | LogEntry::Update(_) | LogEntry::Renewal(_) => {}
            }
        }
        for (account, recomputed) in self.accounts.iter().zip(totals) {
            if account.totals != recomputed {
                return Err(format!("account {} holds {:?} but its history sums to {:?}", account.id, account.totals, recomputed));
            }
        }
        self.check_invariants()
    }

    /// Checks what must hold after every batch: per asset, the sum of root balances is zero
    /// and pending debits equal pending credits; no account is outside its bounds; every
    /// account's version matches its history.
    pub fn check_invariants(&self) -> Result<(), String> {
        for account in &self.accounts {
            if account.totals.within(&account.settings).is_err() {
                return Err(format!("account {} is outside its bounds: {:?}", account.id, account.totals));
            }
        }
        // Listings by parent (and of roots) find every account exactly once.
        if self.children.len() != self.accounts.len() {
            return Err(format!("{} accounts but {} listed under their parents", self.accounts.len(), self.children.len()));
        }
        let closed = self.accounts.iter().filter(|account| account.settings.closed).count();
        if closed != self.closed_accounts {
            return Err(format!("{closed} accounts are closed but {} are counted", self.closed_accounts));
        }
        // A slice holds every ancestor of what it changed, so what it changed must net to zero
        // at its roots, as a whole ledger's roots sum to zero.
        let baseline = self.slice.as_ref().map(|loaded| loaded.root_sums.as_slice()).unwrap_or_default();
        for (asset, sums) in self.root_sums().into_iter().enumerate() {
            let before = baseline.get(asset).copied().unwrap_or_default();
            let balance = sums.balance - before.balance;
            let pending = (sums.debits_pending as i128 - before.debits_pending as i128)
                - (sums.credits_pending as i128 - before.credits_pending as i128);
            if balance != 0 || pending != 0 {
                return Err(format!(
                    "asset {} is not conserved: balances change by {balance}, pending debits less pending credits by {pending}",
                    self.assets[asset].code
                ));
            }
        }
        Ok(())
    }

    /// Per asset, the sums over root accounts (those without a parent): a whole ledger's
    /// balances sum to zero there, and its pending debits equal its pending credits.
    pub(crate) fn root_sums(&self) -> Vec<RootSums> {
        let mut sums = vec![RootSums::default(); self.assets.len()];
        for account in self.accounts.iter().filter(|account| account.parent.is_none()) {
            let sum = &mut sums[account.asset as usize];
            sum.balance += account.totals.balance();
            sum.debits_pending += account.totals.debits_pending;
            sum.credits_pending += account.totals.credits_pending;
        }
        sums
    }
}

#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct RootSums {
    balance: i128,
    debits_pending: u128,
    credits_pending: u128,
}

/// One movement between two accounts, before it is checked.
struct Move {
    debit: u32,
    credit: u32,
    movement: Movement,
    kind: RecordKind,
    /// The hold a post or void resolves; `NONE` otherwise.
    hold: u32,
}

struct Plan {
    debit: u32,
    credit: u32,
    amount: u128,
    kind: RecordKind,
    hold: u32,
    movement: Movement,
    paths: Paths,
    expires_at: u64,
}

fn record_kind(kind: &TransferKind) -> RecordKind {
    match kind {
        TransferKind::Direct { .. } => RecordKind::Direct,
        TransferKind::Pending { .. } => RecordKind::Pending,
        TransferKind::Post { .. } => RecordKind::Post,
        TransferKind::Void { .. } => RecordKind::Void,
        TransferKind::Allocate { pending: false, .. } => RecordKind::Direct,
        TransferKind::Allocate { pending: true, .. } => RecordKind::Pending,
    }
}

/// The most a balancing transfer may move: its amount, or everything for an amount beyond
/// any total.
fn balancing_limit(amount: &Decimal, scale: u8) -> Result<u128, ResultCode> {
    match amount.to_minor(scale) {
        Ok(minor) if minor > 0 => Ok((minor as u128).min(TOTAL_MAX)),
        Err(AmountError::TooLarge) if amount.is_positive() => Ok(TOTAL_MAX),
        _ => Err(ResultCode::InvalidAmount),
    }
}

fn positive_minor(amount: &Decimal, scale: u8) -> Result<u128, ResultCode> {
    match amount.to_minor(scale) {
        Ok(minor) if minor > 0 => Ok(minor as u128),
        _ => Err(ResultCode::InvalidAmount),
    }
}

/// A hash of every field of a transfer event as submitted, with amounts normalized so that
/// "1.50" and "1.5" are the same field. Two events with the same id and fingerprint are
/// treated as the same event; 64 bits make an accidental match of two different events
/// that share an id about 1 in 10^19.
pub fn fingerprint(event: &NewTransfer) -> u64 {
    thread_local! {
        // Reused so that hashing a transfer allocates nothing.
        static BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    BUFFER.with_borrow_mut(|bytes| {
        bytes.clear();
        encode_fields(event, bytes);
        xxhash_rust::xxh3::xxh3_64(bytes)
    })
}

/// Every field of a transfer event, unambiguously, for `fingerprint`.
fn encode_fields(event: &NewTransfer, bytes: &mut Vec<u8>) {
    let text = |bytes: &mut Vec<u8>, value: Option<&str>| match value {
        None => bytes.push(0),
        Some(value) => {
            bytes.push(1);
            bytes.extend_from_slice(&(value.len() as u32).to_le_bytes());
            bytes.extend_from_slice(value.as_bytes());
        }
    };
    let amount = |bytes: &mut Vec<u8>, value: Option<&Decimal>| match value.map(Decimal::normalized) {
        None => bytes.push(0),
        Some(d) => {
            bytes.push(1 + u8::from(d.negative));
            bytes.extend_from_slice(&d.digits.to_le_bytes());
            bytes.push(d.fraction_digits);
        }
    };
    let number = |bytes: &mut Vec<u8>, value: Option<u64>| {
        bytes.push(u8::from(value.is_some()));
        bytes.extend_from_slice(&value.unwrap_or(0).to_le_bytes());
    };
    // Allocations are tagged apart from the four record kinds.
    let tag = match &event.kind {
        TransferKind::Allocate { pending, .. } => 4 + u8::from(*pending),
        kind => record_kind(kind) as u8,
    };
    bytes.push(tag);
    text(bytes, Some(event.id.as_str()));
    match &event.kind {
        TransferKind::Direct { debit, credit, amount: value } => {
            text(bytes, Some(debit.as_str()));
            text(bytes, Some(credit.as_str()));
            amount(bytes, Some(value));
        }
        TransferKind::Pending { debit, credit, amount: value, timeout_ms } => {
            text(bytes, Some(debit.as_str()));
            text(bytes, Some(credit.as_str()));
            amount(bytes, Some(value));
            number(bytes, *timeout_ms);
        }
        TransferKind::Post { pending_id, debit, credit, amount: value } => {
            text(bytes, Some(pending_id.as_str()));
            text(bytes, debit.as_ref().map(Id::as_str));
            text(bytes, credit.as_ref().map(Id::as_str));
            amount(bytes, value.as_ref());
        }
        TransferKind::Void { pending_id, debit, credit } => {
            text(bytes, Some(pending_id.as_str()));
            text(bytes, debit.as_ref().map(Id::as_str));
            text(bytes, credit.as_ref().map(Id::as_str));
        }
        TransferKind::Allocate { debit, shares, amount: value, pending: _, timeout_ms } => {
            text(bytes, Some(debit.as_str()));
            bytes.extend_from_slice(&(shares.len() as u32).to_le_bytes());
            for share in shares {
                text(bytes, Some(share.credit.as_str()));
                bytes.extend_from_slice(&share.weight.to_le_bytes());
            }
            amount(bytes, Some(value));
            number(bytes, *timeout_ms);
        }
    }
    text(bytes, event.asset.as_ref().map(AssetCode::as_str));
    bytes.push(u8::from(event.linked));
    text(bytes, event.metadata.as_deref());
    number(bytes, event.if_debit_version);
    number(bytes, event.if_credit_version);
    // Added after the first release: written only when set, so that every earlier event
    // keeps the fingerprint it was stored with.
    if event.balancing {
        bytes.push(1);
    }
}
