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
use tally_core::limits::{BATCH_EVENTS_MAX, HOLD_TIMEOUT_MS_MAX};
use tally_core::{
    format_minor, AccountPatch, AccountUpdate, AccountView, AssetCode, Decimal, Id, JournalEntry, Metadata, NewAccount, NewAsset,
    NewTransfer, Outcome, RecordKind, Request, ResultCode, Settings, Totals, TransferKind, TransferView,
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
    /// Apply only if the account's version is still this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub if_version: Option<u64>,
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

// ---------------------------------------------------------------------------------------
// Validation: wire values to core events

fn id(field: impl FnOnce() -> String, text: &str) -> Result<Id, FieldError> {
    Id::parse(text).map_err(|e| FieldError::new(field(), format!("invalid id: {e}")))
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
            if_version: self.if_version,
        };
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
        Ok(Request::CreateTransfers(events))
    }
}

impl<'a> TransferInput<'a> {
    fn convert(self, index: usize) -> Result<NewTransfer, FieldError> {
        let field = |name: &str| format!("transfers[{index}].{name}");
        let required = |value: Option<Cow<'a, str>>, name: &str| -> Result<Cow<'a, str>, FieldError> {
            value.ok_or_else(|| FieldError::new(field(name), "is required for a transfer that is not a post or void"))
        };
        let optional_id = |value: Option<Cow<'a, str>>, name: &str| value.map(|v| id(|| field(name), &v)).transpose();
        let forbid = |present: bool, name: &str, reason: &str| {
            if present {
                Err(FieldError::new(field(name), reason.to_owned()))
            } else {
                Ok(())
            }
        };
        if let Some(timeout_ms) = self.timeout_ms {
            forbid(!self.pending, "timeout_ms", "is allowed only with \"pending\": true")?;
            forbid(
                timeout_ms == 0 || timeout_ms > HOLD_TIMEOUT_MS_MAX,
                "timeout_ms",
                &format!("must be between 1 and {HOLD_TIMEOUT_MS_MAX}"),
            )?;
        }
        let kind = match (self.post, self.void) {
            (Some(_), Some(_)) => return Err(FieldError::new(field("void"), "a transfer cannot both post and void")),
            (Some(pending_id), None) => {
                forbid(self.pending, "pending", "a post cannot also be pending")?;
                TransferKind::Post {
                    pending_id: id(|| field("post"), &pending_id)?,
                    debit: optional_id(self.debit, "debit")?,
                    credit: optional_id(self.credit, "credit")?,
                    amount: self.amount.map(|a| positive(|| field("amount"), &a)).transpose()?,
                }
            }
            (None, Some(pending_id)) => {
                forbid(self.pending, "pending", "a void cannot also be pending")?;
                forbid(self.amount.is_some(), "amount", "a void voids the whole hold and takes no amount")?;
                TransferKind::Void {
                    pending_id: id(|| field("void"), &pending_id)?,
                    debit: optional_id(self.debit, "debit")?,
                    credit: optional_id(self.credit, "credit")?,
                }
            }
            (None, None) => {
                let debit = id(|| field("debit"), &required(self.debit, "debit")?)?;
                let credit = id(|| field("credit"), &required(self.credit, "credit")?)?;
                let amount = positive(|| field("amount"), &required(self.amount, "amount")?)?;
                if self.pending {
                    TransferKind::Pending { debit, credit, amount, timeout_ms: self.timeout_ms }
                } else {
                    TransferKind::Direct { debit, credit, amount }
                }
            }
        };
        Ok(NewTransfer {
            id: id(|| field("id"), &self.id)?,
            kind,
            asset: self.asset.map(|a| asset_code(|| field("asset"), &a)).transpose()?,
            linked: self.linked,
            metadata: self.metadata.as_deref().map(|m| metadata(|| field("metadata"), m)).transpose()?,
            if_debit_version: self.if_debit_version,
            if_credit_version: self.if_credit_version,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_json_is_what_serde_would_write() {
        let request = CreateTransfers {
            transfers: (0..3)
                .map(|n| TransferInput {
                    id: format!("t:{n}@x.y-z_").into(),
                    debit: Some("a".into()),
                    credit: Some("b".into()),
                    amount: Some("1".into()),
                    ..TransferInput::default()
                })
                .collect(),
        }
        .convert()
        .unwrap();
        let outcomes = [
            Outcome { result: ResultCode::Created, seq: 7, timestamp: 1_795_000_000_000_000_001 },
            Outcome::unrecorded(ResultCode::AccountNotFound),
            Outcome { result: ResultCode::Exists, seq: u64::MAX, timestamp: u64::MAX },
        ];
        let Request::CreateTransfers(events) = &request else { unreachable!() };
        let results = events
            .iter()
            .zip(&outcomes)
            .map(|(event, outcome)| EventResult {
                id: event.id.to_string(),
                result: outcome.result.name().to_owned(),
                seq: (outcome.seq != 0).then_some(outcome.seq),
                timestamp: (outcome.timestamp != 0).then_some(outcome.timestamp),
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
            out.push(b'}');
        };
        assert_eq!(request.len(), outcomes.len(), "one outcome per event");
        match request {
            Request::CreateAssets(events) => events.iter().enumerate().for_each(|(i, e)| write(i, e.code.as_str())),
            Request::CreateAccounts(events) => events.iter().enumerate().for_each(|(i, e)| write(i, e.id.as_str())),
            Request::UpdateAccounts(events) => events.iter().enumerate().for_each(|(i, e)| write(i, e.id.as_str())),
            Request::CreateTransfers(events) => events.iter().enumerate().for_each(|(i, e)| write(i, e.id.as_str())),
        }
        out.extend_from_slice(b"]}");
        out
    }
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

fn bound(value: Option<i128>, scale: u8) -> Option<String> {
    value.map(|v| format_minor(v, scale))
}

impl Account {
    pub fn new(view: &AccountView, as_of: Option<u64>) -> Account {
        let totals: &Totals = &view.totals;
        let scale = view.scale;
        let amount = |value: u128| format_minor(value as i128, scale);
        Account {
            id: view.id.to_string(),
            asset: view.asset.to_string(),
            parent: view.parent.as_ref().map(Id::to_string),
            min_balance: bound(view.settings.min_balance, scale),
            max_balance: bound(view.settings.max_balance, scale),
            metadata: raw_metadata(view.settings.metadata.as_ref()),
            debits_posted: amount(totals.debits_posted),
            credits_posted: amount(totals.credits_posted),
            debits_pending: amount(totals.debits_pending),
            credits_pending: amount(totals.credits_pending),
            balance: format_minor(totals.balance(), scale),
            available: format_minor(totals.available(), scale),
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
    pub fn new(view: &TransferView) -> Transfer {
        let mut transfer = Transfer {
            id: view.id.clone(),
            result: view.result.name().to_owned(),
            state: view.state.name().to_owned(),
            seq: view.seq,
            timestamp: view.timestamp,
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

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Bounds {
    pub min_balance: Option<String>,
    pub max_balance: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Box<RawValue>>,
}

impl Bounds {
    fn new(settings: &Settings, scale: u8) -> Bounds {
        Bounds {
            min_balance: bound(settings.min_balance, scale),
            max_balance: bound(settings.max_balance, scale),
            metadata: raw_metadata(settings.metadata.as_ref()),
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
        code: String,
        scale: u8,
    },
    AccountCreated {
        seq: u64,
        timestamp: u64,
        id: String,
        asset: String,
        parent: Option<String>,
        #[serde(flatten)]
        bounds: Bounds,
    },
    AccountUpdated {
        seq: u64,
        timestamp: u64,
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
        pending_id: String,
        debit: String,
        credit: String,
        amount: String,
    },
}

impl JournalItem {
    pub fn new(entry: &JournalEntry) -> JournalItem {
        match entry {
            JournalEntry::Asset { code, scale, seq, timestamp } => {
                JournalItem::AssetCreated { seq: *seq, timestamp: *timestamp, code: code.to_string(), scale: *scale }
            }
            JournalEntry::Account { view, created_settings } => JournalItem::AccountCreated {
                seq: view.created_seq,
                timestamp: view.timestamp,
                id: view.id.to_string(),
                asset: view.asset.to_string(),
                parent: view.parent.as_ref().map(Id::to_string),
                bounds: Bounds::new(created_settings, view.scale),
            },
            JournalEntry::Update { id, settings, seq, timestamp, scale } => {
                JournalItem::AccountUpdated { seq: *seq, timestamp: *timestamp, id: id.to_string(), bounds: Bounds::new(settings, *scale) }
            }
            JournalEntry::Transfer(view) => JournalItem::Transfer { transfer: Transfer::new(view) },
            JournalEntry::Expiry { pending_id, debit, credit, amount, scale, seq, timestamp } => JournalItem::HoldExpired {
                seq: *seq,
                timestamp: *timestamp,
                pending_id: pending_id.clone(),
                debit: debit.to_string(),
                credit: credit.to_string(),
                amount: format_minor(*amount as i128, *scale),
            },
        }
    }

    pub fn seq(&self) -> u64 {
        match self {
            JournalItem::AssetCreated { seq, .. }
            | JournalItem::AccountCreated { seq, .. }
            | JournalItem::AccountUpdated { seq, .. }
            | JournalItem::HoldExpired { seq, .. } => *seq,
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
    /// `ok`, or `failed` after a storage failure.
    pub status: String,
    pub engine: String,
    pub last_seq: u64,
    pub durable_seq: u64,
    pub queue_depth: usize,
    pub accounts: usize,
    pub transfer_records: usize,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub failure: Option<String>,
}
