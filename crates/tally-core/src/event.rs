//! What clients ask for (events, grouped into requests) and what they are told (outcomes).

use crate::amount::Decimal;
use crate::id::{AssetCode, Id};
use crate::metadata::Metadata;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewAsset {
    pub code: AssetCode,
    pub scale: u8,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewAccount {
    pub id: Id,
    pub asset: AssetCode,
    pub parent: Option<Id>,
    /// `None` means unbounded below.
    pub min_balance: Option<Decimal>,
    /// `None` means unbounded above.
    pub max_balance: Option<Decimal>,
    pub metadata: Option<Metadata>,
}

/// A change to an account's bounds, metadata or closed state. An outer `None` leaves the
/// field as it is.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct AccountPatch {
    pub min_balance: Option<Option<Decimal>>,
    pub max_balance: Option<Option<Decimal>>,
    pub metadata: Option<Option<Metadata>>,
    /// `Some(true)` closes the account to new transfers, `Some(false)` reopens it.
    pub closed: Option<bool>,
    /// Closes an account even though it still has a balance or open holds.
    pub force: bool,
    pub if_version: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountUpdate {
    pub id: Id,
    pub patch: AccountPatch,
}

/// One entry of an allocation: an account to credit and its weight in the split.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Share {
    pub credit: Id,
    /// Between 1 and `ALLOCATION_WEIGHT_MAX`.
    pub weight: u64,
}

/// The five things a transfer event can do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransferKind {
    /// Moves `amount` at once.
    Direct { debit: Id, credit: Id, amount: Decimal },
    /// Places a hold: `amount` counts as pending until it is posted, voided or expires.
    Pending { debit: Id, credit: Id, amount: Decimal, timeout_ms: Option<u64> },
    /// Posts a hold, for its whole amount or less; the rest is voided. `debit` and
    /// `credit`, when given, must name the hold's accounts.
    Post { pending_id: Id, debit: Option<Id>, credit: Option<Id>, amount: Option<Decimal> },
    /// Voids a hold.
    Void { pending_id: Id, debit: Option<Id>, credit: Option<Id> },
    /// Splits `amount` over `shares` by weight, exactly (see `allocation::split`): one leg per
    /// share, with ids `<id>/0`, `<id>/1`, ..., all applied or none. With `pending`, each leg
    /// is a hold, and a post or void naming the allocation's id resolves them all.
    Allocate { debit: Id, shares: Vec<Share>, amount: Decimal, pending: bool, timeout_ms: Option<u64> },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewTransfer {
    pub id: Id,
    pub kind: TransferKind,
    /// When given, must be the asset of both accounts.
    pub asset: Option<AssetCode>,
    /// Joins this event with the next one: they succeed or fail together.
    pub linked: bool,
    pub metadata: Option<Metadata>,
    pub if_debit_version: Option<u64>,
    pub if_credit_version: Option<u64>,
    /// For a direct transfer or a hold: move at most `amount`, as much as the bounds of both
    /// sides (and their ancestors) allow now, possibly nothing. `Decimal::UNLIMITED` asks
    /// for as much as possible.
    pub balancing: bool,
}

impl NewTransfer {
    /// A transfer with nothing optional set: no asset check, not linked, no metadata, no
    /// version checks, not balancing.
    pub fn new(id: Id, kind: TransferKind) -> NewTransfer {
        NewTransfer {
            id,
            kind,
            asset: None,
            linked: false,
            metadata: None,
            if_debit_version: None,
            if_credit_version: None,
            balancing: false,
        }
    }
}

/// A hold's timeout set again: it expires `timeout_ms` after the renewal, sooner or later
/// than it would have. What makes a hold a renewable lease.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HoldRenewal {
    /// The hold, or one leg of a held allocation (`Id::parse_transfer`).
    pub id: Id,
    /// Between 1 and `HOLD_TIMEOUT_MS_MAX`.
    pub timeout_ms: u64,
    /// Renew only if the hold's seq (its fencing token) is this.
    pub if_seq: Option<u64>,
}

/// One client submission. Linked chains never cross request boundaries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    CreateAssets(Vec<NewAsset>),
    CreateAccounts(Vec<NewAccount>),
    UpdateAccounts(Vec<AccountUpdate>),
    CreateTransfers(Vec<NewTransfer>),
    RenewHolds(Vec<HoldRenewal>),
    /// `request` made with the API key `key`: every entry it journals records the key (who
    /// moved what). Never nested.
    By {
        key: Id,
        request: Box<Request>,
    },
}

impl Request {
    /// `self`, recorded as made with `key` when there is one.
    pub fn by(self, key: Option<Id>) -> Request {
        match key {
            Some(key) => Request::By { key, request: Box::new(self) },
            None => self,
        }
    }

    /// The request itself, without the key it was made with.
    pub fn unwrapped(&self) -> &Request {
        match self {
            Request::By { request, .. } => request,
            request => request,
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Request::By { request, .. } => request.len(),
            Request::CreateAssets(events) => events.len(),
            Request::CreateAccounts(events) => events.len(),
            Request::UpdateAccounts(events) => events.len(),
            Request::CreateTransfers(events) => events.len(),
            Request::RenewHolds(events) => events.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

macro_rules! result_codes {
    ($($variant:ident => $name:literal,)*) => {
        /// The result of one event. The names are the wire names.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        pub enum ResultCode { $($variant,)* }

        impl ResultCode {
            pub const ALL: &'static [ResultCode] = &[$(ResultCode::$variant,)*];

            pub fn name(self) -> &'static str {
                match self { $(ResultCode::$variant => $name,)* }
            }

            pub fn from_name(name: &str) -> Option<ResultCode> {
                match name { $($name => Some(ResultCode::$variant),)* _ => None }
            }
        }
    };
}

result_codes! {
    Created => "created",
    Exists => "exists",
    Updated => "updated",
    ExistsWithDifferentFields => "exists_with_different_fields",
    AssetNotFound => "asset_not_found",
    AccountNotFound => "account_not_found",
    ParentNotFound => "parent_not_found",
    AssetMismatch => "asset_mismatch",
    SameAccount => "same_account",
    InvalidAmount => "invalid_amount",
    InvalidScale => "invalid_scale",
    DepthExceeded => "depth_exceeded",
    ExceedsMinBalance => "exceeds_min_balance",
    ExceedsMaxBalance => "exceeds_max_balance",
    PendingNotFound => "pending_not_found",
    PendingAlreadyPosted => "pending_already_posted",
    PendingAlreadyVoided => "pending_already_voided",
    PendingExpired => "pending_expired",
    PendingAccountMismatch => "pending_account_mismatch",
    AmountExceedsPending => "amount_exceeds_pending",
    VersionMismatch => "version_mismatch",
    LinkedEventFailed => "linked_event_failed",
    LinkedChainOpen => "linked_chain_open",
    Overflow => "overflow",
    TooManyEntries => "too_many_entries",
    AccountClosed => "account_closed",
    AccountNotEmpty => "account_not_empty",
}

impl ResultCode {
    pub fn is_success(self) -> bool {
        matches!(self, ResultCode::Created | ResultCode::Exists | ResultCode::Updated)
    }

    pub fn from_u8(value: u8) -> Option<ResultCode> {
        ResultCode::ALL.get(usize::from(value)).copied()
    }
}

/// What happened to one event. `seq` and `timestamp` are those of the journal entry that
/// decided it (the original one for `exists`; an allocation's first leg), or 0 when nothing
/// was recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub result: ResultCode,
    pub seq: u64,
    pub timestamp: u64,
    /// For a balancing transfer or an allocation that succeeded: what it moved (or held),
    /// which the event alone does not tell.
    pub moved: Option<Moved>,
}

/// An amount in minor units with the scale of its asset, ready to be shown as a decimal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Moved {
    pub amount: u128,
    pub scale: u8,
}

impl Outcome {
    pub fn unrecorded(result: ResultCode) -> Outcome {
        Outcome { result, seq: 0, timestamp: 0, moved: None }
    }
}
