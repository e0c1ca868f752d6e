//! The JSON wire format of Tally's HTTP API, shared by the server, the Rust client and the
//! tools, so they cannot drift apart. Amounts are decimal strings on the wire, never JSON
//! numbers: a float would lose cents.
//!
//! Requests are decoded in two steps. Serde checks the shape (unknown fields, wrong types);
//! `convert` then checks every value and builds `tally_core` events, naming the exact field
//! of any error (`transfers[3].amount`). Nothing reaches the ledger unless the whole request
//! passed both steps.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::borrow::Cow;
use tally_core::allocation::split;
use tally_core::limits::{ALLOCATION_SHARES_MAX, ALLOCATION_WEIGHT_MAX, BATCH_EVENTS_MAX, HOLD_TIMEOUT_MS_MAX};
use tally_core::{
    format_minor, AccountPatch, AccountUpdate, AccountView, AssetCode, ChangeCause, Decimal, HistoryEntry, HoldRenewal, Id, JournalEntry,
    Metadata, Moved, NewAccount, NewAsset, NewTransfer, Outcome, RecordKind, Request, ResultCode, Settings, Share, Totals, TransferKind,
    TransferView,
};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::ToSchema;

pub use tally_core::limits::{JOURNAL_WAIT_MS_MAX, PAGE_LIMIT_DEFAULT, REQUEST_BODY_BYTES_MAX};

// ---------------------------------------------------------------------------------------
// Errors

/// `{"error": {"code", "message", "field"}}`: every 4xx and 5xx answer has this shape.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// Machine-readable: `invalid_request`, `not_found`, `body_too_large`, `queue_full`,
    /// `unavailable`, `unauthorized`, `as_of_ahead`.
    pub code: String,
    pub message: String,
    /// The offending field as a path, such as `transfers[3].amount`, when one is to blame.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub field: Option<String>,
}

/// A value that failed validation, and where it was.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> FieldError {
        FieldError { field: field.into(), message: message.into() }
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Decodes a JSON body. The fast path is plain serde; only a body that fails is decoded again
/// with path tracking, so the error can name the field without slowing every request.
pub fn decode_json<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, FieldError> {
    serde_json::from_slice(body).map_err(|_| {
        let deserializer = &mut serde_json::Deserializer::from_slice(body);
        match serde_path_to_error::deserialize::<_, T>(deserializer) {
            Err(error) => {
                let path = error.path().to_string();
                let field = if path == "." { "body".to_owned() } else { path };
                FieldError::new(field, error.into_inner().to_string())
            }
            Ok(_) => FieldError::new("body", "malformed JSON"),
        }
    })
}

// ---------------------------------------------------------------------------------------
// Requests

#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssetInput<'a> {
    /// 1-32 characters of `A-Za-z0-9_-`.
    #[serde(borrow)]
    #[schema(value_type = String, example = "USD", pattern = "^[A-Za-z0-9_-]{1,32}$")]
    pub code: Cow<'a, str>,
    /// Decimal places, 0 to 18.
    #[schema(maximum = 18)]
    pub scale: u8,
}

#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAccounts<'a> {
    #[serde(borrow)]
    #[schema(min_items = 1, max_items = 8190)]
    pub accounts: Vec<AccountInput<'a>>,
}

/// Tells an absent field (`None`) from an explicit `null` (`Some(None)`).
fn explicit<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(deserializer: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(deserializer).map(Some)
}

#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountInput<'a> {
    /// 1-128 characters of `A-Za-z0-9._:@-`.
    #[serde(borrow)]
    #[schema(value_type = String, example = "alice", pattern = "^[A-Za-z0-9._:@-]{1,128}$")]
    pub id: Cow<'a, str>,
    #[serde(borrow)]
    #[schema(value_type = String, example = "USD", pattern = "^[A-Za-z0-9_-]{1,32}$")]
    pub asset: Cow<'a, str>,
    /// An account of the same asset; its bounds then also cover this account's changes.
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, pattern = "^[A-Za-z0-9._:@-]{1,128}$")]
    pub parent: Option<Cow<'a, str>>,
    /// Decimal string. Absent means "0" (no overdraft); `null` means unbounded below.
    #[serde(borrow, default, deserialize_with = "explicit", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "0", pattern = "^-?[0-9]{1,39}(\\.[0-9]{1,18})?$")]
    pub min_balance: Option<Option<Cow<'a, str>>>,
    /// Decimal string, or `null` (the default) for unbounded above.
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, pattern = "^-?[0-9]{1,39}(\\.[0-9]{1,18})?$")]
    pub max_balance: Option<Cow<'a, str>>,
    /// A JSON object of at most 4 KiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Box<RawValue>>,
}

#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountPatchInput<'a> {
    /// New lower bound (decimal string), or `null` for unbounded.
    #[serde(borrow, default, deserialize_with = "explicit", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, pattern = "^-?[0-9]{1,39}(\\.[0-9]{1,18})?$")]
    pub min_balance: Option<Option<Cow<'a, str>>>,
    /// New upper bound (decimal string), or `null` for unbounded.
    #[serde(borrow, default, deserialize_with = "explicit", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, pattern = "^-?[0-9]{1,39}(\\.[0-9]{1,18})?$")]
    pub max_balance: Option<Option<Cow<'a, str>>>,
    /// New metadata object, or `null` to remove it.
    #[serde(default, deserialize_with = "explicit", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Option<Box<RawValue>>>,
    /// `true` closes the account to new transfers (holds already placed can still be
    /// posted or voided); `false` reopens it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed: Option<bool>,
    /// With `"closed": true`: close it even though it still has a balance or open holds.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub force: bool,
    /// Apply only if the account's version is still this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub if_version: Option<u64>,
}

/// `PATCH /v1/transfers/{id}`: a hold's timeout set again, as a lease is renewed.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HoldPatchInput {
    /// The hold expires this many milliseconds after the renewal (sooner or later than it
    /// would have).
    // Read as optional so that its absence is answered with this field's name.
    #[schema(required = true, nullable = false, minimum = 1, maximum = 316224000000u64)]
    pub timeout_ms: Option<u64>,
    /// Renew only if the hold's `seq` (its fencing token) is this; `version_mismatch` if not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub if_seq: Option<u64>,
}

impl HoldPatchInput {
    pub fn convert(self, hold: &str) -> Result<Request, FieldError> {
        let id = transfer_id(|| "id".into(), hold)?;
        let timeout_ms = self.timeout_ms.ok_or_else(|| FieldError::new("timeout_ms", "is required: a hold's new timeout"))?;
        let out_of_range = timeout_ms == 0 || timeout_ms > HOLD_TIMEOUT_MS_MAX;
        forbid(out_of_range, || "timeout_ms".into(), &format!("must be between 1 and {HOLD_TIMEOUT_MS_MAX}"))?;
        Ok(Request::RenewHolds(vec![HoldRenewal { id, timeout_ms, if_seq: self.if_seq }]))
    }
}

#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTransfers<'a> {
    #[serde(borrow)]
    #[schema(min_items = 1, max_items = 8190)]
    pub transfers: Vec<TransferInput<'a>>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferInput<'a> {
    #[serde(borrow)]
    #[schema(value_type = String, example = "fund-1", pattern = "^[A-Za-z0-9._:@-]{1,128}$")]
    pub id: Cow<'a, str>,
    /// Required unless this is a `post` or `void`, where it may be given to double-check.
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "world:usd", pattern = "^[A-Za-z0-9._:@-]{1,128}$")]
    pub debit: Option<Cow<'a, str>>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "alice", pattern = "^[A-Za-z0-9._:@-]{1,128}$")]
    pub credit: Option<Cow<'a, str>>,
    /// Positive decimal string, at most the asset's scale in decimals. Optional for `post`
    /// (defaults to the whole hold); not allowed for `void`.
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "100.00", pattern = "^[0-9]{1,39}(\\.[0-9]{1,18})?$")]
    pub amount: Option<Cow<'a, str>>,
    /// If given, must be the accounts' asset.
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, pattern = "^[A-Za-z0-9_-]{1,32}$")]
    pub asset: Option<Cow<'a, str>>,
    /// Place a hold instead of moving money now.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pending: bool,
    /// With `pending`: the hold expires (is voided by itself) after this many milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 316224000000u64)]
    pub timeout_ms: Option<u64>,
    /// Post the hold with this id.
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, pattern = "^[A-Za-z0-9._:@-]{1,128}$")]
    pub post: Option<Cow<'a, str>>,
    /// Void the hold with this id.
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, pattern = "^[A-Za-z0-9._:@-]{1,128}$")]
    pub void: Option<Cow<'a, str>>,
    /// Split `amount` from `debit` over these accounts by weight, exactly, instead of
    /// crediting one `credit`: one leg per entry (`<id>/0`, `<id>/1`, ...), all or none.
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    #[schema(min_items = 1, max_items = 1000)]
    pub allocate: Option<Vec<ShareInput<'a>>>,
    /// Move at most `amount` (everything the bounds allow when `amount` is omitted), as much
    /// as the bounds of both sides and their ancestors allow now; the result says how much.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub balancing: bool,
    /// Succeed or fail together with the next transfer in the request.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub linked: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Box<RawValue>>,
    /// Fail with `version_mismatch` unless the debit account's version is this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub if_debit_version: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub if_credit_version: Option<u64>,
}

/// One entry of an allocation.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShareInput<'a> {
    #[serde(borrow)]
    #[schema(value_type = String, example = "alice", pattern = "^[A-Za-z0-9._:@-]{1,128}$")]
    pub credit: Cow<'a, str>,
    /// This entry's part of the amount is `weight / (sum of weights)`.
    #[schema(minimum = 1, maximum = 1000000000)]
    pub weight: u64,
}

// ---------------------------------------------------------------------------------------
// Validation: wire values to core events

fn id(field: impl FnOnce() -> String, text: &str) -> Result<Id, FieldError> {
    Id::parse(text).map_err(|e| FieldError::new(field(), format!("invalid id: {e}")))
}

/// A hold as a post, void or renewal names it: an id, or a leg's (`<id>/<n>`).
fn transfer_id(field: impl FnOnce() -> String, text: &str) -> Result<Id, FieldError> {
    Id::parse_transfer(text).map_err(|e| FieldError::new(field(), format!("invalid transfer id: {e}")))
}

fn asset_code(field: impl FnOnce() -> String, text: &str) -> Result<AssetCode, FieldError> {
    AssetCode::parse(text).map_err(|e| FieldError::new(field(), format!("invalid asset code: {e}")))
}

fn decimal(field: impl FnOnce() -> String, text: &str) -> Result<Decimal, FieldError> {
    Decimal::parse(text).map_err(|e| FieldError::new(field(), e.to_string()))
}

fn positive(field: impl Fn() -> String, text: &str) -> Result<Decimal, FieldError> {
    let value = decimal(&field, text)?;
    if !value.is_positive() {
        return Err(FieldError::new(field(), "amount must be greater than zero"));
    }
    Ok(value)
}

/// Metadata as sent, in canonical form (`tally_core::Metadata` says what that is).
fn metadata(field: impl FnOnce() -> String, value: &RawValue) -> Result<Metadata, FieldError> {
    Metadata::parse(value.get()).map_err(|error| FieldError::new(field(), error.0))
}

fn batch_size(field: &str, len: usize) -> Result<(), FieldError> {
    if len == 0 {
        return Err(FieldError::new(field, "must hold at least one event"));
    }
    if len > BATCH_EVENTS_MAX {
        return Err(FieldError::new(field, format!("holds {len} events; the limit is {BATCH_EVENTS_MAX}")));
    }
    Ok(())
}

impl AssetInput<'_> {
    pub fn convert(&self) -> Result<Request, FieldError> {
        let code = asset_code(|| "code".into(), &self.code)?;
        if self.scale > tally_core::limits::SCALE_MAX {
            return Err(FieldError::new("scale", format!("must be at most {}", tally_core::limits::SCALE_MAX)));
        }
        Ok(Request::CreateAssets(vec![NewAsset { code, scale: self.scale }]))
    }
}

impl CreateAccounts<'_> {
    pub fn convert(self) -> Result<Request, FieldError> {
        batch_size("accounts", self.accounts.len())?;
        let mut events = Vec::with_capacity(self.accounts.len());
        for (index, account) in self.accounts.into_iter().enumerate() {
            let field = |name: &str| format!("accounts[{index}].{name}");
            events.push(NewAccount {
                id: id(|| field("id"), &account.id)?,
                asset: asset_code(|| field("asset"), &account.asset)?,
                parent: account.parent.map(|p| id(|| field("parent"), &p)).transpose()?,
                min_balance: match account.min_balance {
                    None => Some(Decimal::ZERO),
                    Some(None) => None,
                    Some(Some(text)) => Some(decimal(|| field("min_balance"), &text)?),
                },
                max_balance: account.max_balance.map(|m| decimal(|| field("max_balance"), &m)).transpose()?,
                metadata: account.metadata.as_deref().map(|m| metadata(|| field("metadata"), m)).transpose()?,
            });
        }
        Ok(Request::CreateAccounts(events))
    }
}

impl AccountPatchInput<'_> {
    pub fn convert(self, account: &str) -> Result<Request, FieldError> {
        let bound = |name: &'static str, value: Option<Option<Cow<'_, str>>>| {
            value.map(|inner| inner.map(|text| decimal(|| name.to_owned(), &text)).transpose()).transpose()
        };
        let patch = AccountPatch {
            min_balance: bound("min_balance", self.min_balance)?,
            max_balance: bound("max_balance", self.max_balance)?,
            metadata: self
                .metadata
                .as_ref()
                .map(|inner| inner.as_deref().map(|m| metadata(|| "metadata".into(), m)).transpose())
                .transpose()?,
            closed: self.closed,
            force: self.force,
            if_version: self.if_version,
        };
        forbid(self.force && self.closed != Some(true), || "force".into(), "is allowed only with \"closed\": true")?;
        Ok(Request::UpdateAccounts(vec![AccountUpdate { id: id(|| "id".into(), account)?, patch }]))
    }
}

impl CreateTransfers<'_> {
    pub fn convert(self) -> Result<Request, FieldError> {
        batch_size("transfers", self.transfers.len())?;
        let mut events = Vec::with_capacity(self.transfers.len());
        for (index, transfer) in self.transfers.into_iter().enumerate() {
            events.push(transfer.convert(index)?);
        }
        transfers_request(events)
    }

    /// Decodes a `POST /v1/transfers` body straight into events: each transfer is checked as
    /// soon as it is read, so the list of wire structs that `decode_json` + `convert` would
    /// build (tens of bytes more per event than the events themselves) never exists, and
    /// reading stops at the first bad event. A malformed body, or one past the event limit,
    /// is decoded again by `decode_json` + `convert` to name its field and count its events,
    /// so the answers are theirs; only a body with both a bad event and a malformed part
    /// after it is told about the first one read.
    pub fn decode(body: &[u8]) -> Result<Request, FieldError> {
        let refused = std::cell::RefCell::new(None);
        let mut deserializer = serde_json::Deserializer::from_slice(body);
        // The smallest transfer takes about 60 bytes of JSON: enough room, rarely too much.
        let seed = TransfersSeed { refused: &refused, capacity: (body.len() / 60).min(BATCH_EVENTS_MAX) };
        match serde::de::DeserializeSeed::deserialize(seed, &mut deserializer).and_then(|events| deserializer.end().map(|()| events)) {
            Ok(events) => transfers_request(events),
            Err(_) => match refused.take() {
                Some(error) => Err(error),
                None => decode_json::<CreateTransfers>(body)?.convert(),
            },
        }
    }
}

/// The checks on a whole request of transfers, once each event passed its own.
fn transfers_request(events: Vec<NewTransfer>) -> Result<Request, FieldError> {
    batch_size("transfers", events.len())?;
    // An allocation's entries each cost what an event does (a leg, a journal entry).
    let counted: usize =
        events.iter().map(|event| if let TransferKind::Allocate { shares, .. } = &event.kind { shares.len() } else { 1 }).sum();
    if counted > BATCH_EVENTS_MAX {
        return Err(FieldError::new(
            "transfers",
            format!("holds {counted} events, counting each allocation entry as one; the limit is {BATCH_EVENTS_MAX}"),
        ));
    }
    Ok(Request::CreateTransfers(events))
}

/// Reads `{"transfers": [...]}` into events, converting each transfer as it comes; a refused
/// event is kept in `refused` and stops the read.
struct TransfersSeed<'r> {
    refused: &'r std::cell::RefCell<Option<FieldError>>,
    capacity: usize,
}

impl<'de> serde::de::DeserializeSeed<'de> for TransfersSeed<'_> {
    type Value = Vec<NewTransfer>;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for TransfersSeed<'_> {
    type Value = Vec<NewTransfer>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an object with one field, \"transfers\"")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        match map.next_key::<&str>()? {
            Some("transfers") => {}
            _ => return Err(serde::de::Error::custom("expected \"transfers\"")),
        }
        let events = map.next_value_seed(TransferList(self))?;
        match map.next_key::<&str>()? {
            None => Ok(events),
            Some(_) => Err(serde::de::Error::custom("unexpected field")),
        }
    }
}

/// The list itself.
struct TransferList<'r>(TransfersSeed<'r>);

impl<'de> serde::de::DeserializeSeed<'de> for TransferList<'_> {
    type Value = Vec<NewTransfer>;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> serde::de::Visitor<'de> for TransferList<'_> {
    type Value = Vec<NewTransfer>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a list of transfers")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut events = Vec::with_capacity(self.0.capacity);
        while let Some(input) = seq.next_element::<TransferInput<'de>>()? {
            let index = events.len();
            if index == BATCH_EVENTS_MAX {
                // Too many: stop here, and let the whole-body decode count them for the answer.
                return Err(serde::de::Error::custom("too many transfers"));
            }
            match input.convert(index) {
                Ok(event) => events.push(event),
                Err(error) => {
                    *self.0.refused.borrow_mut() = Some(error);
                    return Err(serde::de::Error::custom("refused"));
                }
            }
        }
        Ok(events)
    }
}

/// Refuses a field that is present where it may not be.
fn forbid(present: bool, field: impl FnOnce() -> String, reason: &str) -> Result<(), FieldError> {
    if present {
        Err(FieldError::new(field(), reason.to_owned()))
    } else {
        Ok(())
    }
}

impl<'a> TransferInput<'a> {
    fn convert(mut self, index: usize) -> Result<NewTransfer, FieldError> {
        let field = |name: &str| format!("transfers[{index}].{name}");
        self.check_combination(&field)?;
        let kind = self.kind(&field)?;
        Ok(NewTransfer {
            id: id(|| field("id"), &self.id)?,
            kind,
            asset: self.asset.map(|a| asset_code(|| field("asset"), &a)).transpose()?,
            linked: self.linked,
            metadata: self.metadata.as_deref().map(|m| metadata(|| field("metadata"), m)).transpose()?,
            if_debit_version: self.if_debit_version,
            if_credit_version: self.if_credit_version,
            balancing: self.balancing,
        })
    }

    /// Refuses fields that do not go together, before any value is read.
    fn check_combination(&self, field: &impl Fn(&str) -> String) -> Result<(), FieldError> {
        if let Some(timeout_ms) = self.timeout_ms {
            forbid(!self.pending, || field("timeout_ms"), "is allowed only with \"pending\": true")?;
            let range = format!("must be between 1 and {HOLD_TIMEOUT_MS_MAX}");
            forbid(timeout_ms == 0 || timeout_ms > HOLD_TIMEOUT_MS_MAX, || field("timeout_ms"), &range)?;
        }
        let resolves = self.post.is_some() || self.void.is_some();
        forbid(self.post.is_some() && self.void.is_some(), || field("void"), "a transfer cannot both post and void")?;
        forbid(resolves && self.pending, || field("pending"), "a post or void cannot also be pending")?;
        forbid(self.void.is_some() && self.amount.is_some(), || field("amount"), "a void voids the whole hold and takes no amount")?;
        forbid(self.balancing && resolves, || field("balancing"), "a post or void cannot balance")?;
        forbid(self.balancing && self.allocate.is_some(), || field("balancing"), "an allocation cannot balance")?;
        forbid(self.allocate.is_some() && resolves, || field("allocate"), "a post or void cannot allocate")?;
        if self.allocate.is_some() {
            forbid(self.credit.is_some(), || field("credit"), "an allocation names its credit accounts in \"allocate\"")?;
            forbid(self.if_credit_version.is_some(), || field("if_credit_version"), "an allocation has no one credit account")?;
        }
        Ok(())
    }

    /// What the transfer does, from the fields `check_combination` let through.
    fn kind(&mut self, field: &impl Fn(&str) -> String) -> Result<TransferKind, FieldError> {
        let required = |value: Option<Cow<'a, str>>, name: &str| -> Result<Cow<'a, str>, FieldError> {
            value.ok_or_else(|| FieldError::new(field(name), "is required for a transfer that is not a post or void"))
        };
        let optional_id = |value: Option<Cow<'a, str>>, name: &str| value.map(|v| id(|| field(name), &v)).transpose();
        let (debit, credit) = (self.debit.take(), self.credit.take());
        Ok(if let Some(pending_id) = self.post.take() {
            TransferKind::Post {
                pending_id: transfer_id(|| field("post"), &pending_id)?,
                debit: optional_id(debit, "debit")?,
                credit: optional_id(credit, "credit")?,
                amount: self.amount.take().map(|a| positive(|| field("amount"), &a)).transpose()?,
            }
        } else if let Some(pending_id) = self.void.take() {
            TransferKind::Void {
                pending_id: transfer_id(|| field("void"), &pending_id)?,
                debit: optional_id(debit, "debit")?,
                credit: optional_id(credit, "credit")?,
            }
        } else if let Some(entries) = self.allocate.take() {
            TransferKind::Allocate {
                debit: id(|| field("debit"), &required(debit, "debit")?)?,
                shares: shares(entries, field)?,
                amount: positive(|| field("amount"), &required(self.amount.take(), "amount")?)?,
                pending: self.pending,
                timeout_ms: self.timeout_ms,
            }
        } else {
            let debit = id(|| field("debit"), &required(debit, "debit")?)?;
            let credit = id(|| field("credit"), &required(credit, "credit")?)?;
            let amount = match self.amount.take() {
                None if self.balancing => Decimal::UNLIMITED,
                amount => positive(|| field("amount"), &required(amount, "amount")?)?,
            };
            match self.pending {
                true => TransferKind::Pending { debit, credit, amount, timeout_ms: self.timeout_ms },
                false => TransferKind::Direct { debit, credit, amount },
            }
        })
    }
}

/// An allocation's entries, each checked.
fn shares(inputs: Vec<ShareInput<'_>>, field: &impl Fn(&str) -> String) -> Result<Vec<Share>, FieldError> {
    if !(1..=ALLOCATION_SHARES_MAX).contains(&inputs.len()) {
        return Err(FieldError::new(field("allocate"), format!("must hold 1 to {ALLOCATION_SHARES_MAX} entries")));
    }
    let mut shares = Vec::with_capacity(inputs.len());
    for (index, input) in inputs.into_iter().enumerate() {
        let name = |part: &str| field(&format!("allocate[{index}].{part}"));
        if !(1..=ALLOCATION_WEIGHT_MAX).contains(&input.weight) {
            return Err(FieldError::new(name("weight"), format!("must be between 1 and {ALLOCATION_WEIGHT_MAX}")));
        }
        shares.push(Share { credit: id(|| name("credit"), &input.credit)?, weight: input.weight });
    }
    Ok(shares)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding_while_reading_answers_exactly_as_decoding_then_converting() {
        let transfer = |n: usize| format!(r#"{{"id":"t{n}","debit":"a","credit":"b","amount":"1.50"}}"#);
        let many = |count: usize| format!(r#"{{"transfers":[{}]}}"#, (0..count).map(transfer).collect::<Vec<_>>().join(","));
        let shares = (0..1_000).map(|_| r#"{"credit":"b","weight":1}"#).collect::<Vec<_>>().join(",");
        let allocations = (0..9).map(|n| format!(r#"{{"id":"p{n}","debit":"a","amount":"1","allocate":[{shares}]}}"#)).collect::<Vec<_>>();
        let bodies = [
            many(3),
            many(BATCH_EVENTS_MAX),
            many(BATCH_EVENTS_MAX + 1),
            many(0),
            format!(r#"{{"transfers":[{}]}}"#, allocations.join(",")),
            r#"{"transfers":[{"id":"a","debit":"a","credit":"b","amount":12.5}]}"#.into(),
            r#"{"transfers":[{"id":"a","debit":"a","credit":"b","amount":"1"},{"id":"b c","debit":"a","credit":"b","amount":"1"}]}"#.into(),
            r#"{"transfers":[{"id":"a","debit":"a","credit":"b","amount":"1","colour":"red"}]}"#.into(),
            r#"{"transfers":[{"id":"a","post":"h","void":"h"}]}"#.into(),
            r#"{"transfers":[]}"#.into(),
            r#"{"transfer":[]}"#.into(),
            r#"{}"#.into(),
            r#"{"transfers":[], "more": 1}"#.into(),
            r#"{"transfers":[{"id":"a","debit":"a","credit":"b","amount":"1"}]} trailing"#.into(),
            r#"{"transfers":["#.into(),
            r#"[]"#.into(),
            r#"{"trans\u0066ers":[{"id":"a","debit":"a","credit":"b","amount":"1"}]}"#.into(),
        ];
        for body in bodies {
            let expected = decode_json::<CreateTransfers>(body.as_bytes()).and_then(CreateTransfers::convert);
            assert_eq!(CreateTransfers::decode(body.as_bytes()), expected, "{}", &body[..body.len().min(200)]);
        }
    }

    #[test]
    fn results_json_is_what_serde_would_write() {
        let mut transfers: Vec<TransferInput> = (0..3)
            .map(|n| TransferInput {
                id: format!("t:{n}@x.y-z_").into(),
                debit: Some("a".into()),
                credit: Some("b".into()),
                amount: Some("1".into()),
                ..TransferInput::default()
            })
            .collect();
        transfers.push(TransferInput { id: "sweep".into(), balancing: true, amount: None, ..transfers[0].clone() });
        let shares = [("x", 1), ("y", 1), ("z", 1)].map(|(credit, weight)| ShareInput { credit: credit.into(), weight });
        transfers.push(TransferInput {
            id: "pot".into(),
            credit: None,
            allocate: Some(shares.to_vec()),
            amount: Some("1".into()),
            ..transfers[0].clone()
        });
        let request = CreateTransfers { transfers }.convert().unwrap();
        let moved = |amount| Some(Moved { amount, scale: 2 });
        let outcomes = [
            Outcome { result: ResultCode::Created, seq: 7, timestamp: 1_795_000_000_000_000_001, moved: None },
            Outcome::unrecorded(ResultCode::AccountNotFound),
            Outcome { result: ResultCode::Exists, seq: u64::MAX, timestamp: u64::MAX, moved: None },
            Outcome { result: ResultCode::Created, seq: 8, timestamp: 9, moved: moved(0) },
            Outcome { result: ResultCode::Exists, seq: 9, timestamp: 10, moved: moved(100) },
        ];
        let leg = |id: &str, credit: &str, amount: &str| Leg { id: id.into(), credit: credit.into(), amount: amount.into() };
        let Request::CreateTransfers(events) = &request else { unreachable!() };
        let results = events
            .iter()
            .zip(&outcomes)
            .map(|(event, outcome)| EventResult {
                id: event.id.to_string(),
                result: outcome.result.name().to_owned(),
                seq: (outcome.seq != 0).then_some(outcome.seq),
                timestamp: (outcome.timestamp != 0).then_some(outcome.timestamp),
                amount: outcome.moved.map(|moved| format_minor(moved.amount as i128, moved.scale)),
                legs: matches!(event.kind, TransferKind::Allocate { .. })
                    .then(|| vec![leg("pot/0", "x", "0.34"), leg("pot/1", "y", "0.33"), leg("pot/2", "z", "0.33")]),
            })
            .collect();
        let expected = serde_json::to_vec(&Results { results }).unwrap();
        assert_eq!(String::from_utf8(Results::json(&request, &outcomes)).unwrap(), String::from_utf8(expected).unwrap());
    }
}

// ---------------------------------------------------------------------------------------
// Responses

fn result_code_schema() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(ResultCode::ALL.iter().map(|code| code.name())))
        .description(Some("The result of one event."))
}

fn transfer_state_schema() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String).enum_values(Some(["posted", "pending", "voided", "expired", "failed"]))
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EventResult {
    pub id: String,
    #[schema(schema_with = result_code_schema)]
    pub result: String,
    /// The journal position that decided this event (for `exists`, the original one);
    /// null when nothing was recorded.
    pub seq: Option<u64>,
    /// Nanoseconds since the Unix epoch, assigned by the ledger; strictly increasing.
    pub timestamp: Option<u64>,
    /// For a balancing transfer or an allocation that succeeded: the amount it moved (or
    /// held).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "100.00")]
    pub amount: Option<String>,
    /// For an allocation that succeeded: its legs, in the order of its entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legs: Option<Vec<Leg>>,
}

/// One leg of an allocation: a transfer (or hold) of its own.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Leg {
    #[schema(example = "pot-7-payout/0")]
    pub id: String,
    pub credit: String,
    #[schema(example = "33.34")]
    pub amount: String,
}

/// One result per event, in request order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Results {
    pub results: Vec<EventResult>,
}

impl Results {
    /// The JSON of `Results` for a request, written directly: this is the hot path of every
    /// write, and ids need no escaping (their charset has no quote, backslash or control
    /// character), so it skips building a `Results` and a string per event.
    pub fn json(request: &Request, outcomes: &[Outcome]) -> Vec<u8> {
        let request = request.unwrapped();
        let mut out = Vec::with_capacity(outcomes.len() * 96 + 16);
        out.extend_from_slice(b"{\"results\":[");
        let mut write = |index: usize, id: &str| {
            let outcome = &outcomes[index];
            if index > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"id\":\"");
            out.extend_from_slice(id.as_bytes());
            out.extend_from_slice(b"\",\"result\":\"");
            out.extend_from_slice(outcome.result.name().as_bytes());
            out.extend_from_slice(b"\",\"seq\":");
            let mut number = itoa::Buffer::new();
            match outcome.seq {
                0 => out.extend_from_slice(b"null"),
                seq => out.extend_from_slice(number.format(seq).as_bytes()),
            }
            out.extend_from_slice(b",\"timestamp\":");
            match outcome.timestamp {
                0 => out.extend_from_slice(b"null"),
                timestamp => out.extend_from_slice(number.format(timestamp).as_bytes()),
            }
            if let (Some(moved), Request::CreateTransfers(events)) = (outcome.moved, request) {
                write_moved(&mut out, &events[index], moved);
            }
            out.push(b'}');
        };
        assert_eq!(request.len(), outcomes.len(), "one outcome per event");
        match request {
            Request::CreateAssets(events) => events.iter().enumerate().for_each(|(i, e)| write(i, e.code.as_str())),
            Request::CreateAccounts(events) => events.iter().enumerate().for_each(|(i, e)| write(i, e.id.as_str())),
            Request::UpdateAccounts(events) => events.iter().enumerate().for_each(|(i, e)| write(i, e.id.as_str())),
            Request::CreateTransfers(events) => events.iter().enumerate().for_each(|(i, e)| write(i, e.id.as_str())),
            Request::RenewHolds(events) => events.iter().enumerate().for_each(|(i, e)| write(i, e.id.as_str())),
            Request::By { .. } => unreachable!("unwrapped above"),
        }
        out.extend_from_slice(b"]}");
        out
    }
}

/// `"amount"`, and for an allocation `"legs"`: its split, recomputed from the event exactly
/// as the ledger computed it.
fn write_moved(out: &mut Vec<u8>, event: &NewTransfer, moved: Moved) {
    let decimal = |out: &mut Vec<u8>, minor: u128| {
        out.push(b'"');
        out.extend_from_slice(format_minor(minor as i128, moved.scale).as_bytes());
        out.push(b'"');
    };
    out.extend_from_slice(b",\"amount\":");
    decimal(out, moved.amount);
    let TransferKind::Allocate { shares, .. } = &event.kind else { return };
    out.extend_from_slice(b",\"legs\":[");
    let weights: Vec<u64> = shares.iter().map(|share| share.weight).collect();
    for (index, (share, part)) in shares.iter().zip(split(moved.amount, &weights)).enumerate() {
        if index > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"id\":\"");
        out.extend_from_slice(event.id.leg(index).as_str().as_bytes());
        out.extend_from_slice(b"\",\"credit\":\"");
        out.extend_from_slice(share.credit.as_str().as_bytes());
        out.extend_from_slice(b"\",\"amount\":");
        decimal(out, part);
        out.push(b'}');
    }
    out.push(b']');
}

/// Metadata exactly as stored: never through a float.
fn raw_metadata(metadata: Option<&Metadata>) -> Option<Box<RawValue>> {
    metadata.map(|m| RawValue::from_string(m.as_str().to_owned()).expect("canonical metadata is JSON"))
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Account {
    pub id: String,
    pub asset: String,
    pub parent: Option<String>,
    pub min_balance: Option<String>,
    pub max_balance: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Box<RawValue>>,
    /// No new transfer may touch a closed account or any account under it.
    pub closed: bool,
    /// For an account with children, every balance field covers the whole subtree, except
    /// transfers between two of its members, which net out.
    pub debits_posted: String,
    pub credits_posted: String,
    pub debits_pending: String,
    pub credits_pending: String,
    /// credits_posted - debits_posted.
    pub balance: String,
    /// balance - debits_pending: what can still be debited.
    pub available: String,
    /// Increases with every change to the account.
    pub version: u64,
    pub created_seq: u64,
    pub timestamp: u64,
    /// Set when the balances are as of this journal position rather than now.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub as_of: Option<u64>,
}

/// An account's totals as decimals: debits and credits posted and pending, balance, available.
fn totals_text(totals: &Totals, scale: u8) -> [String; 6] {
    let amount = |value: u128| format_minor(value as i128, scale);
    [
        amount(totals.debits_posted),
        amount(totals.credits_posted),
        amount(totals.debits_pending),
        amount(totals.credits_pending),
        format_minor(totals.balance(), scale),
        format_minor(totals.available(), scale),
    ]
}

fn bound(value: Option<i128>, scale: u8) -> Option<String> {
    value.map(|v| format_minor(v, scale))
}

impl Account {
    pub fn new(view: &AccountView, as_of: Option<u64>) -> Account {
        let scale = view.scale;
        let [debits_posted, credits_posted, debits_pending, credits_pending, balance, available] = totals_text(&view.totals, scale);
        Account {
            id: view.id.to_string(),
            asset: view.asset.to_string(),
            parent: view.parent.as_ref().map(Id::to_string),
            min_balance: bound(view.settings.min_balance, scale),
            max_balance: bound(view.settings.max_balance, scale),
            metadata: raw_metadata(view.settings.metadata.as_ref()),
            closed: view.settings.closed,
            debits_posted,
            credits_posted,
            debits_pending,
            credits_pending,
            balance,
            available,
            version: view.version,
            created_seq: view.created_seq,
            timestamp: view.timestamp,
            as_of,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct AccountsPage {
    pub accounts: Vec<Account>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next_after: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Transfer {
    pub id: String,
    #[schema(schema_with = result_code_schema)]
    pub result: String,
    /// `posted`, `pending`, `voided`, `expired` or `failed`. For a hold, where it stands now.
    #[schema(schema_with = transfer_state_schema)]
    pub state: String,
    pub seq: u64,
    pub timestamp: u64,
    /// The id of the API key that made it; absent when none did.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub key: Option<String>,
    /// The fields below are absent for a failed transfer.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub debit: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub credit: Option<String>,
    /// For a post, the amount posted; for a void, the amount voided.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub amount: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub asset: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub pending: bool,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub post: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub void: Option<String>,
    /// For a hold: the post or void that resolved it.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub resolved_by: Option<String>,
    /// For a hold with a timeout: when it expires (ns since the epoch).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub expires_at: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Box<RawValue>>,
}

impl Transfer {
    /// The transfer, made with the API key `key` (if any).
    pub fn new(view: &TransferView, key: Option<String>) -> Transfer {
        let mut transfer = Transfer {
            id: view.id.clone(),
            result: view.result.name().to_owned(),
            state: view.state.name().to_owned(),
            seq: view.seq,
            timestamp: view.timestamp,
            key,
            debit: None,
            credit: None,
            amount: None,
            asset: None,
            pending: false,
            post: None,
            void: None,
            resolved_by: None,
            expires_at: None,
            metadata: None,
        };
        if let Some(detail) = &view.detail {
            transfer.debit = Some(detail.debit.to_string());
            transfer.credit = Some(detail.credit.to_string());
            transfer.amount = Some(format_minor(detail.amount as i128, detail.scale));
            transfer.asset = Some(detail.asset.to_string());
            transfer.pending = detail.kind == RecordKind::Pending;
            match detail.kind {
                RecordKind::Post => transfer.post = detail.pending_id.clone(),
                RecordKind::Void => transfer.void = detail.pending_id.clone(),
                _ => {}
            }
            transfer.resolved_by = detail.resolved_by.clone();
            transfer.expires_at = detail.expires_at;
            transfer.metadata = raw_metadata(detail.metadata.as_ref());
        }
        transfer
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct TransfersPage {
    pub transfers: Vec<Transfer>,
    /// Pass as `after_seq` for the next page; absent on the last page.
    pub next_after_seq: Option<u64>,
}

fn change_kind_schema() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String).enum_values(Some(["created", "updated", "transfer", "expiry"]))
}

/// One change to an account and its balances right after it: a running balance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AccountChange {
    pub seq: u64,
    pub timestamp: u64,
    /// The account's version right after the change.
    pub version: u64,
    /// `created`; `updated` (bounds, metadata, closed); `transfer` (a transfer, hold, post or
    /// void moved its totals); `expiry` (a hold on it expired).
    #[schema(schema_with = change_kind_schema)]
    pub kind: String,
    /// The transfer, or for an expiry the hold that expired.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub transfer: Option<String>,
    pub debits_posted: String,
    pub credits_posted: String,
    pub debits_pending: String,
    pub credits_pending: String,
    pub balance: String,
    pub available: String,
}

impl AccountChange {
    pub fn new(entry: &HistoryEntry, scale: u8) -> AccountChange {
        let [debits_posted, credits_posted, debits_pending, credits_pending, balance, available] = totals_text(&entry.totals, scale);
        let (kind, transfer) = match &entry.cause {
            ChangeCause::Created => ("created", None),
            ChangeCause::Updated => ("updated", None),
            ChangeCause::Transfer(id) => ("transfer", Some(id.clone())),
            ChangeCause::Expiry(hold) => ("expiry", Some(hold.clone())),
        };
        AccountChange {
            seq: entry.seq,
            timestamp: entry.timestamp,
            version: entry.version,
            kind: kind.to_owned(),
            transfer,
            debits_posted,
            credits_posted,
            debits_pending,
            credits_pending,
            balance,
            available,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct AccountHistoryPage {
    pub changes: Vec<AccountChange>,
    /// Pass as `after_seq` for the next page; absent on the last page.
    pub next_after_seq: Option<u64>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct HoldsPage {
    /// Open holds with a timeout, soonest to expire first.
    pub holds: Vec<Transfer>,
    /// Pass as `after` for the next page (a position: where the last hold looked at expires,
    /// and its seq); absent on the last page.
    pub next_after: Option<String>,
}

/// The writer's progress over the last minutes, one sample a second, oldest first.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Stats {
    pub engine: String,
    /// Which server answered: its listening address.
    pub node: String,
    /// Milliseconds between two samples.
    pub interval_ms: u64,
    pub samples: Vec<StatsSample>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StatsSample {
    /// When it was taken, in ms since the Unix epoch.
    pub at_ms: u64,
    pub last_seq: u64,
    pub durable_seq: u64,
    pub queue_depth: usize,
    /// Journal entries (transfers and every other event) decided per second since the sample
    /// before.
    pub events_per_second: f64,
    /// Commits answered since the sample before, and their mean time from leaving the queue
    /// to being answered (absent without commits).
    pub commits: u64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub commit_ms_mean: Option<f64>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Bounds {
    pub min_balance: Option<String>,
    pub max_balance: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Box<RawValue>>,
    pub closed: bool,
}

impl Bounds {
    fn new(settings: &Settings, scale: u8) -> Bounds {
        Bounds {
            min_balance: bound(settings.min_balance, scale),
            max_balance: bound(settings.max_balance, scale),
            metadata: raw_metadata(settings.metadata.as_ref()),
            closed: settings.closed,
        }
    }
}

/// One committed journal entry. `type` says which fields are present.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum JournalItem {
    AssetCreated {
        seq: u64,
        timestamp: u64,
        /// The id of the API key that made this entry; absent when none did.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<String>,
        code: String,
        scale: u8,
    },
    AccountCreated {
        seq: u64,
        timestamp: u64,
        /// The id of the API key that made this entry; absent when none did.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<String>,
        id: String,
        asset: String,
        parent: Option<String>,
        #[serde(flatten)]
        bounds: Bounds,
    },
    AccountUpdated {
        seq: u64,
        timestamp: u64,
        /// The id of the API key that made this entry; absent when none did.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<String>,
        id: String,
        #[serde(flatten)]
        bounds: Bounds,
    },
    /// A transfer event as decided (created or failed); `state` is where it stands now.
    Transfer {
        #[serde(flatten)]
        transfer: Transfer,
    },
    HoldExpired {
        seq: u64,
        timestamp: u64,
        /// The id of the API key that made this entry; absent when none did.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<String>,
        pending_id: String,
        debit: String,
        credit: String,
        amount: String,
    },
    /// A hold's timeout set again: it now expires at `expires_at` (ns since the epoch).
    HoldRenewed {
        seq: u64,
        timestamp: u64,
        /// The id of the API key that made this entry; absent when none did.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<String>,
        pending_id: String,
        expires_at: u64,
    },
}

impl JournalItem {
    /// The entry, made with the API key `key` (if any).
    pub fn new(entry: &JournalEntry, key: Option<&Id>) -> JournalItem {
        let key = key.map(Id::to_string);
        match entry {
            JournalEntry::Asset { code, scale, seq, timestamp } => {
                JournalItem::AssetCreated { seq: *seq, timestamp: *timestamp, key, code: code.to_string(), scale: *scale }
            }
            JournalEntry::Account { view, created_settings } => JournalItem::AccountCreated {
                seq: view.created_seq,
                timestamp: view.timestamp,
                key,
                id: view.id.to_string(),
                asset: view.asset.to_string(),
                parent: view.parent.as_ref().map(Id::to_string),
                bounds: Bounds::new(created_settings, view.scale),
            },
            JournalEntry::Update { id, settings, seq, timestamp, scale } => JournalItem::AccountUpdated {
                seq: *seq,
                timestamp: *timestamp,
                key,
                id: id.to_string(),
                bounds: Bounds::new(settings, *scale),
            },
            JournalEntry::Transfer(view) => JournalItem::Transfer { transfer: Transfer::new(view, key) },
            JournalEntry::Expiry { pending_id, debit, credit, amount, scale, seq, timestamp } => JournalItem::HoldExpired {
                seq: *seq,
                timestamp: *timestamp,
                key,
                pending_id: pending_id.clone(),
                debit: debit.to_string(),
                credit: credit.to_string(),
                amount: format_minor(*amount as i128, *scale),
            },
            JournalEntry::Renewal { pending_id, expires_at, seq, timestamp } => {
                JournalItem::HoldRenewed { seq: *seq, timestamp: *timestamp, key, pending_id: pending_id.clone(), expires_at: *expires_at }
            }
        }
    }

    pub fn seq(&self) -> u64 {
        match self {
            JournalItem::AssetCreated { seq, .. }
            | JournalItem::AccountCreated { seq, .. }
            | JournalItem::AccountUpdated { seq, .. }
            | JournalItem::HoldExpired { seq, .. }
            | JournalItem::HoldRenewed { seq, .. } => *seq,
            JournalItem::Transfer { transfer } => transfer.seq,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct JournalPage {
    pub entries: Vec<JournalItem>,
    /// Pass as `after_seq` to continue; equal to the request's `after_seq` if nothing came.
    pub next_after_seq: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// `ok`; `stalled` while the writer has held one commit for more than 5 s (a stalled disk
    /// or database: writes wait, and time out); `failed` after a storage failure.
    pub status: String,
    pub engine: String,
    pub last_seq: u64,
    pub durable_seq: u64,
    pub queue_depth: usize,
    /// How long the writer has held the commit it is working on, 0 when idle.
    pub writer_busy_ms: u64,
    pub accounts: usize,
    pub transfer_records: usize,
    /// Whether `accounts` and `transfer_records` are `exact` (embedded) or `estimated`
    /// (PostgreSQL: the planner's statistics, refreshed every few seconds, since an exact
    /// count would scan the tables).
    #[schema(pattern = "^(exact|estimated)$")]
    pub counts: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub failure: Option<String>,
}

/// `POST /v1/keys`: a new API key.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyInput {
    /// `read` (GETs), `write` (also creating and changing accounts and transfers) or `admin`
    /// (also assets and keys).
    #[schema(required = true, nullable = false, pattern = "^(read|write|admin)$")]
    pub scope: Option<String>,
    /// Confine the key to accounts (and transfers) whose ids start with one of these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(max_items = 16)]
    pub accounts: Vec<String>,
    /// A name to tell keys apart, at most 64 bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The key stops working this many milliseconds after it is made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 316224000000u64)]
    pub expires_in_ms: Option<u64>,
}

/// An API key as listed: never the key itself.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct KeyInfo {
    /// The key's id: the 12 hex digits after `tally_` in the key.
    pub id: String,
    pub name: String,
    pub scope: String,
    /// The account prefixes the key is confined to; empty for all accounts.
    pub accounts: Vec<String>,
    /// Milliseconds since the Unix epoch.
    pub created_at_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at_ms: Option<u64>,
}

/// `GET /v1/whoami`: the key a request was made with, and where the ledger stands.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct WhoAmI {
    /// The key; absent when the ledger has no keys (then every request may do everything).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<KeyInfo>,
    /// What the caller may do: `read`, `write` or `admin`.
    pub scope: String,
    /// The last durable journal position: where a journal reader that starts from now begins.
    pub last_seq: u64,
}

/// `GET /v1/journal/position`: the last journal position at or before a time.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct JournalPosition {
    /// 0 when the journal holds nothing at or before that time.
    pub seq: u64,
    /// The entry's timestamp (ns since the epoch); absent with seq 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<u64>,
}

/// A new key, shown once.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct CreatedKey {
    /// The key: send it as `Authorization: Bearer <key>`. It cannot be shown again.
    pub key: String,
    #[serde(flatten)]
    pub info: KeyInfo,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct KeysPage {
    pub keys: Vec<KeyInfo>,
}

/// `POST /v1/backups`: bring a backup up to date on the server's host.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BackupInput {
    /// The backup directory, relative to the server's backup root (`tally serve
    /// --backup-root`): an empty directory, or an earlier backup of this ledger.
    #[schema(required = true, nullable = false, max_length = 255)]
    pub to: Option<String>,
    /// With `wait_ms`: wait until a commit after this seq is durable before copying (a
    /// backup kept current does this in a loop).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_seq: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(maximum = 10000)]
    pub wait_ms: Option<u64>,
}

/// A backup: `done`, with what it copied and where it now ends, or still `running` (ask
/// again with the same `to` to wait for it).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct BackupStatus {
    #[schema(pattern = "^(done|running)$")]
    pub state: String,
    pub to: String,
    /// The last journal record and seq the backup holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seq: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files_copied: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_copied: Option<u64>,
    /// When its manifest was written, in milliseconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub written_at_ms: Option<u64>,
}
