//! The binary encoding of batches (what the journal stores) and of whole states (what a
//! snapshot stores). Fixed widths, little-endian, described byte by byte in
//! `docs/journal.md`. Decoding never panics: bytes from disk are checked, and every id is
//! parsed again, so even data with a valid checksum cannot smuggle in a malformed value.

use crate::amount::Decimal;
use crate::event::{AccountPatch, AccountUpdate, HoldRenewal, NewAccount, NewAsset, NewTransfer, Request, ResultCode, Share, TransferKind};
use crate::id::{AssetCode, Id};
use crate::limits::{
    ALLOCATION_SHARES_MAX, ALLOCATION_WEIGHT_MAX, ASSET_CODE_LENGTH_MAX, BATCH_EVENTS_MAX, ID_LENGTH_MAX, LEG_SUFFIX_LENGTH_MAX,
    METADATA_BYTES_MAX,
};
use crate::metadata::Metadata;
use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DecodeError {}

fn fail<T>(what: impl Into<String>) -> Result<T, DecodeError> {
    Err(DecodeError(what.into()))
}

/// Where an `Encoder` puts bytes: a buffer, or (`Length`) only a count of them.
pub trait Output {
    fn put(&mut self, bytes: &[u8]);
}

impl Output for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// Counts the bytes an encoding takes without writing them: how a request's exact size is
/// known when it is queued, long before the writer encodes it.
#[derive(Clone, Copy, Debug, Default)]
pub struct Length(pub usize);

impl Output for Length {
    fn put(&mut self, bytes: &[u8]) {
        self.0 += bytes.len();
    }
}

/// Appends fixed-width little-endian values to an output.
#[derive(Default)]
pub struct Encoder<O: Output = Vec<u8>> {
    pub bytes: O,
}

impl<O: Output> Encoder<O> {
    pub fn u8(&mut self, value: u8) {
        self.bytes.put(&[value]);
    }
    pub fn u16(&mut self, value: u16) {
        self.bytes.put(&value.to_le_bytes());
    }
    pub fn u32(&mut self, value: u32) {
        self.bytes.put(&value.to_le_bytes());
    }
    pub fn u64(&mut self, value: u64) {
        self.bytes.put(&value.to_le_bytes());
    }
    pub fn u128(&mut self, value: u128) {
        self.bytes.put(&value.to_le_bytes());
    }
    pub fn i128(&mut self, value: i128) {
        self.bytes.put(&value.to_le_bytes());
    }
    pub fn bool(&mut self, value: bool) {
        self.u8(u8::from(value));
    }
    /// A string of at most 65,535 bytes: u16 length, then the bytes.
    pub fn str(&mut self, value: &str) {
        let len = u16::try_from(value.len()).expect("encoded strings are bounded by the limits");
        self.u16(len);
        self.bytes.put(value.as_bytes());
    }
    pub fn option<T>(&mut self, value: Option<T>, mut write: impl FnMut(&mut Self, T)) {
        match value {
            None => self.u8(0),
            Some(value) => {
                self.u8(1);
                write(self, value);
            }
        }
    }
    pub fn decimal(&mut self, value: &Decimal) {
        self.u128(value.digits);
        self.u8(value.fraction_digits);
        self.bool(value.negative);
    }
}

/// Reads what `Encoder` wrote, failing cleanly on short or malformed input.
pub struct Decoder<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl<'a> Decoder<'a> {
    pub fn new(bytes: &'a [u8]) -> Decoder<'a> {
        Decoder { bytes, position: 0 }
    }

    pub fn is_empty(&self) -> bool {
        self.position == self.bytes.len()
    }

    /// Bytes read so far.
    pub fn position(&self) -> usize {
        self.position
    }

    pub fn take(&mut self, len: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.position.checked_add(len).filter(|&end| end <= self.bytes.len());
        let Some(end) = end else {
            return fail(format!("unexpected end of data at byte {} (wanted {len} more)", self.position));
        };
        let slice = &self.bytes[self.position..end];
        self.position = end;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        Ok(self.take(N)?.try_into().expect("take returns exactly N bytes"))
    }
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }
    pub fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    pub fn u128(&mut self) -> Result<u128, DecodeError> {
        Ok(u128::from_le_bytes(self.array()?))
    }
    pub fn i128(&mut self) -> Result<i128, DecodeError> {
        Ok(i128::from_le_bytes(self.array()?))
    }
    pub fn bool(&mut self) -> Result<bool, DecodeError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            other => fail(format!("invalid boolean {other} at byte {}", self.position - 1)),
        }
    }
    pub fn str(&mut self) -> Result<&'a str, DecodeError> {
        let len = usize::from(self.u16()?);
        let at = self.position;
        std::str::from_utf8(self.take(len)?).or_else(|_| fail(format!("invalid UTF-8 at byte {at}")))
    }
    pub fn option<T>(&mut self, mut read: impl FnMut(&mut Self) -> Result<T, DecodeError>) -> Result<Option<T>, DecodeError> {
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(read(self)?)),
            other => fail(format!("invalid option tag {other} at byte {}", self.position - 1)),
        }
    }
    pub fn id(&mut self) -> Result<Id, DecodeError> {
        let text = self.str()?;
        Id::parse(text).or_else(|e| fail(format!("invalid id {text:?}: {e}")))
    }
    /// A transfer id as a post, void or renewal names it: an id, or a leg's.
    pub fn transfer_id(&mut self) -> Result<Id, DecodeError> {
        let text = self.str()?;
        Id::parse_transfer(text).or_else(|e| fail(format!("invalid transfer id {text:?}: {e}")))
    }
    pub fn asset_code(&mut self) -> Result<AssetCode, DecodeError> {
        let text = self.str()?;
        AssetCode::parse(text).or_else(|e| fail(format!("invalid asset code {text:?}: {e}")))
    }
    pub fn metadata(&mut self) -> Result<Metadata, DecodeError> {
        let text = self.str()?;
        if text.len() > METADATA_BYTES_MAX {
            return fail("metadata longer than the limit");
        }
        Metadata::from_canonical(text).or_else(|e| fail(format!("invalid metadata: {e}")))
    }
    pub fn decimal(&mut self) -> Result<Decimal, DecodeError> {
        let digits = self.u128()?;
        let fraction_digits = self.u8()?;
        let negative = self.bool()?;
        if fraction_digits > crate::limits::SCALE_MAX {
            return fail("decimal with too many fraction digits");
        }
        Ok(Decimal { digits, fraction_digits, negative })
    }
    pub fn result_code(&mut self) -> Result<ResultCode, DecodeError> {
        let value = self.u8()?;
        ResultCode::from_u8(value).ok_or_else(|| DecodeError(format!("unknown result code {value}")))
    }
}

const REQUEST_ASSETS: u8 = 1;
const REQUEST_ACCOUNTS: u8 = 2;
const REQUEST_UPDATES: u8 = 3;
const REQUEST_TRANSFERS: u8 = 4;
/// Account updates that close or reopen: `REQUEST_UPDATES` with two more fields per event,
/// under its own kind so that records written before closing existed read unchanged.
const REQUEST_UPDATES_CLOSING: u8 = 5;
const REQUEST_RENEWALS: u8 = 6;
/// A request made with an API key: the key's id, then the request (never another of these).
const REQUEST_BY: u8 = 7;

const KIND_DIRECT: u8 = 0;
const KIND_PENDING: u8 = 1;
const KIND_POST: u8 = 2;
const KIND_VOID: u8 = 3;
const KIND_ALLOCATE: u8 = 4;
/// A direct transfer or hold with `balancing`: encoded as `KIND_DIRECT` or `KIND_PENDING`
/// is, under its own kind so that records written before balancing existed read unchanged.
const KIND_DIRECT_BALANCING: u8 = 5;
const KIND_PENDING_BALANCING: u8 = 6;

/// A batch record's header: the timestamp (u64) and the request count (u32).
pub const BATCH_HEADER_BYTES: usize = 8 + 4;

/// A request's header: its kind (u8) and event count (u32).
const REQUEST_HEADER_BYTES: usize = 1 + 4;

/// The most bytes any encoded field of the given kind takes (see the `Encoder` methods).
const fn string(bytes_max: usize) -> usize {
    2 + bytes_max
}
const fn optional(bytes_max: usize) -> usize {
    1 + bytes_max
}
const DECIMAL_BYTES: usize = 16 + 1 + 1;
const ID_BYTES_MAX: usize = string(ID_LENGTH_MAX);
const METADATA_FIELD_BYTES_MAX: usize = optional(string(METADATA_BYTES_MAX));

const fn max(a: usize, b: usize) -> usize {
    if a > b {
        a
    } else {
        b
    }
}

const ASSET_EVENT_BYTES_MAX: usize = string(ASSET_CODE_LENGTH_MAX) + 1;
const ACCOUNT_EVENT_BYTES_MAX: usize =
    ID_BYTES_MAX + string(ASSET_CODE_LENGTH_MAX) + optional(ID_BYTES_MAX) + 2 * optional(DECIMAL_BYTES) + METADATA_FIELD_BYTES_MAX;
const UPDATE_EVENT_BYTES_MAX: usize =
    ID_BYTES_MAX + 2 * optional(optional(DECIMAL_BYTES)) + optional(METADATA_FIELD_BYTES_MAX) + optional(8) + optional(1) + 1;
/// The largest kind-specific part of a transfer: a hold (two accounts, an amount, a timeout)
/// or a post (the hold, two optional accounts, an optional amount).
const TRANSFER_KIND_BYTES_MAX: usize = 1 + max(
    max(2 * ID_BYTES_MAX + DECIMAL_BYTES + optional(8), LEG_ID_BYTES_MAX + 2 * optional(ID_BYTES_MAX) + optional(DECIMAL_BYTES)),
    ALLOCATION_BYTES_MAX,
);
/// A hold's id as a post, void or renewal names it: possibly a leg's, the one id longer than
/// any given id.
const LEG_ID_BYTES_MAX: usize = string(ID_LENGTH_MAX + LEG_SUFFIX_LENGTH_MAX);
/// Each entry of an allocation: the account and the weight.
const SHARE_BYTES: usize = ID_BYTES_MAX + 8;
const _: () = assert!(ALLOCATION_SHARES_MAX <= u16::MAX as usize, "entry counts are u16");
/// An allocation with one entry. Each further entry adds `SHARE_BYTES`, less than a whole
/// event, which is why a request's limit counts every entry of an allocation as one event.
const ALLOCATION_BYTES_MAX: usize = ID_BYTES_MAX + 2 + SHARE_BYTES + DECIMAL_BYTES + 1 + optional(8);
const TRANSFER_EVENT_BYTES_MAX: usize =
    ID_BYTES_MAX + TRANSFER_KIND_BYTES_MAX + optional(string(ASSET_CODE_LENGTH_MAX)) + 1 + METADATA_FIELD_BYTES_MAX + 2 * optional(8);

/// A renewal: the hold (possibly a leg, whose id is longer than any given id), the timeout
/// and the seq it must have.
const RENEWAL_EVENT_BYTES_MAX: usize = LEG_ID_BYTES_MAX + 8 + optional(8);

/// The most bytes one event of any kind encodes to, with every field at its limit.
pub const EVENT_ENCODED_BYTES_MAX: usize = max(
    max(max(ASSET_EVENT_BYTES_MAX, ACCOUNT_EVENT_BYTES_MAX), max(UPDATE_EVENT_BYTES_MAX, TRANSFER_EVENT_BYTES_MAX)),
    RENEWAL_EVENT_BYTES_MAX,
);

/// What naming the key a request was made with adds: a request header and the key's id.
const BY_KEY_BYTES_MAX: usize = REQUEST_HEADER_BYTES + string(ID_LENGTH_MAX);

/// The most bytes one request encodes to: derived from the field limits, not from the request
/// body's size, so that it holds whatever form the body takes.
pub const REQUEST_ENCODED_BYTES_MAX: usize = BY_KEY_BYTES_MAX + REQUEST_HEADER_BYTES + BATCH_EVENTS_MAX * EVENT_ENCODED_BYTES_MAX;

/// One journal record's payload: the writer's clock and the requests it applied, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch {
    pub timestamp: u64,
    pub requests: Vec<Request>,
}

pub fn encode_batch(timestamp: u64, requests: &[&Request], out: &mut Encoder) {
    out.u64(timestamp);
    out.u32(requests.len() as u32);
    for request in requests {
        encode_request(request, out);
    }
}

/// The exact number of bytes `request` takes in a batch record.
pub fn encoded_len(request: &Request) -> usize {
    let mut out = Encoder { bytes: Length(0) };
    encode_request(request, &mut out);
    out.bytes.0
}

fn encode_request<O: Output>(request: &Request, out: &mut Encoder<O>) {
    match request {
        Request::By { key, request } => {
            assert!(!matches!(**request, Request::By { .. }), "a request names one key");
            out.u8(REQUEST_BY);
            out.u32(0);
            out.str(key.as_str());
            encode_request(request, out);
        }
        Request::CreateAssets(events) => {
            out.u8(REQUEST_ASSETS);
            out.u32(events.len() as u32);
            for event in events {
                out.str(event.code.as_str());
                out.u8(event.scale);
            }
        }
        Request::CreateAccounts(events) => {
            out.u8(REQUEST_ACCOUNTS);
            out.u32(events.len() as u32);
            for event in events {
                out.str(event.id.as_str());
                out.str(event.asset.as_str());
                out.option(event.parent.as_ref(), |o, p| o.str(p.as_str()));
                out.option(event.min_balance.as_ref(), Encoder::decimal);
                out.option(event.max_balance.as_ref(), Encoder::decimal);
                out.option(event.metadata.as_deref(), Encoder::str);
            }
        }
        Request::UpdateAccounts(events) => {
            let closing = events.iter().any(|event| event.patch.closed.is_some() || event.patch.force);
            out.u8(if closing { REQUEST_UPDATES_CLOSING } else { REQUEST_UPDATES });
            out.u32(events.len() as u32);
            for event in events {
                out.str(event.id.as_str());
                let patch = &event.patch;
                out.option(patch.min_balance.as_ref(), |o, m| o.option(m.as_ref(), Encoder::decimal));
                out.option(patch.max_balance.as_ref(), |o, m| o.option(m.as_ref(), Encoder::decimal));
                out.option(patch.metadata.as_ref(), |o, m| o.option(m.as_deref(), Encoder::str));
                out.option(patch.if_version, Encoder::u64);
                if closing {
                    out.option(patch.closed, Encoder::bool);
                    out.bool(patch.force);
                }
            }
        }
        Request::RenewHolds(events) => {
            out.u8(REQUEST_RENEWALS);
            out.u32(events.len() as u32);
            for event in events {
                out.str(event.id.as_str());
                out.u64(event.timeout_ms);
                out.option(event.if_seq, Encoder::u64);
            }
        }
        Request::CreateTransfers(events) => {
            out.u8(REQUEST_TRANSFERS);
            out.u32(events.len() as u32);
            for event in events {
                encode_transfer(event, out);
            }
        }
    }
}

fn encode_transfer<O: Output>(event: &NewTransfer, out: &mut Encoder<O>) {
    out.str(event.id.as_str());
    let optional_id = |o: &mut Encoder<O>, id: &Option<Id>| o.option(id.as_ref(), |o, id| o.str(id.as_str()));
    match &event.kind {
        TransferKind::Direct { debit, credit, amount } => {
            out.u8(if event.balancing { KIND_DIRECT_BALANCING } else { KIND_DIRECT });
            out.str(debit.as_str());
            out.str(credit.as_str());
            out.decimal(amount);
        }
        TransferKind::Pending { debit, credit, amount, timeout_ms } => {
            out.u8(if event.balancing { KIND_PENDING_BALANCING } else { KIND_PENDING });
            out.str(debit.as_str());
            out.str(credit.as_str());
            out.decimal(amount);
            out.option(*timeout_ms, Encoder::u64);
        }
        TransferKind::Post { pending_id, debit, credit, amount } => {
            out.u8(KIND_POST);
            out.str(pending_id.as_str());
            optional_id(out, debit);
            optional_id(out, credit);
            out.option(amount.as_ref(), Encoder::decimal);
        }
        TransferKind::Void { pending_id, debit, credit } => {
            out.u8(KIND_VOID);
            out.str(pending_id.as_str());
            optional_id(out, debit);
            optional_id(out, credit);
        }
        TransferKind::Allocate { debit, shares, amount, pending, timeout_ms } => {
            out.u8(KIND_ALLOCATE);
            out.str(debit.as_str());
            out.u16(shares.len() as u16);
            for share in shares {
                out.str(share.credit.as_str());
                out.u64(share.weight);
            }
            out.decimal(amount);
            out.bool(*pending);
            out.option(*timeout_ms, Encoder::u64);
        }
    }
    assert!(
        !event.balancing || matches!(event.kind, TransferKind::Direct { .. } | TransferKind::Pending { .. }),
        "only direct transfers and holds balance"
    );
    out.option(event.asset.as_ref(), |o, a| o.str(a.as_str()));
    out.bool(event.linked);
    out.option(event.metadata.as_deref(), Encoder::str);
    out.option(event.if_debit_version, Encoder::u64);
    out.option(event.if_credit_version, Encoder::u64);
}

/// A batch record's timestamp, read without decoding its requests: every event in the record
/// is stamped at or after it.
pub fn batch_timestamp(bytes: &[u8]) -> Result<u64, DecodeError> {
    Decoder::new(bytes).u64()
}

pub fn decode_batch(bytes: &[u8]) -> Result<Batch, DecodeError> {
    let mut input = Decoder::new(bytes);
    let timestamp = input.u64()?;
    let count = input.u32()? as usize;
    // Each request takes at least 5 bytes, so a count beyond that is corrupt, not a reason
    // to reserve memory.
    if count > bytes.len() / 5 {
        return fail(format!("request count {count} exceeds what the record can hold"));
    }
    let mut requests = Vec::with_capacity(count);
    for _ in 0..count {
        requests.push(decode_request(&mut input)?);
    }
    if !input.is_empty() {
        return fail("trailing bytes after the last request");
    }
    Ok(Batch { timestamp, requests })
}

fn decode_request(input: &mut Decoder<'_>) -> Result<Request, DecodeError> {
    decode_request_once(input, true)
}

fn decode_request_once(input: &mut Decoder<'_>, by_allowed: bool) -> Result<Request, DecodeError> {
    let kind = input.u8()?;
    let count = input.u32()? as usize;
    if kind == REQUEST_BY {
        if !by_allowed || count != 0 {
            return fail("a request names at most one key, with no events of its own");
        }
        let key = input.id()?;
        return Ok(Request::By { key, request: Box::new(decode_request_once(input, false)?) });
    }
    if count > BATCH_EVENTS_MAX {
        return fail(format!("request with {count} events exceeds the batch limit"));
    }
    fn events<T>(
        input: &mut Decoder<'_>,
        count: usize,
        read: fn(&mut Decoder<'_>) -> Result<T, DecodeError>,
    ) -> Result<Vec<T>, DecodeError> {
        (0..count).map(|_| read(input)).collect()
    }
    Ok(match kind {
        REQUEST_ASSETS => Request::CreateAssets(events(input, count, |i| Ok(NewAsset { code: i.asset_code()?, scale: i.u8()? }))?),
        REQUEST_ACCOUNTS => Request::CreateAccounts(events(input, count, |i| {
            Ok(NewAccount {
                id: i.id()?,
                asset: i.asset_code()?,
                parent: i.option(Decoder::id)?,
                min_balance: i.option(Decoder::decimal)?,
                max_balance: i.option(Decoder::decimal)?,
                metadata: i.option(Decoder::metadata)?,
            })
        })?),
        REQUEST_UPDATES => Request::UpdateAccounts(events(input, count, |i| decode_update(i, false))?),
        REQUEST_UPDATES_CLOSING => Request::UpdateAccounts(events(input, count, |i| decode_update(i, true))?),
        REQUEST_TRANSFERS => Request::CreateTransfers(events(input, count, decode_transfer)?),
        REQUEST_RENEWALS => Request::RenewHolds(events(input, count, |i| {
            let id = i.transfer_id()?;
            let timeout_ms = i.u64()?;
            if !(1..=crate::limits::HOLD_TIMEOUT_MS_MAX).contains(&timeout_ms) {
                return fail(format!("renewal timeout {timeout_ms} ms out of range"));
            }
            Ok(HoldRenewal { id, timeout_ms, if_seq: i.option(Decoder::u64)? })
        })?),
        other => return fail(format!("unknown request kind {other}")),
    })
}

fn decode_update(input: &mut Decoder<'_>, closing: bool) -> Result<AccountUpdate, DecodeError> {
    let id = input.id()?;
    let mut patch = AccountPatch {
        min_balance: input.option(|i| i.option(Decoder::decimal))?,
        max_balance: input.option(|i| i.option(Decoder::decimal))?,
        metadata: input.option(|i| i.option(Decoder::metadata))?,
        if_version: input.option(Decoder::u64)?,
        ..AccountPatch::default()
    };
    if closing {
        patch.closed = input.option(Decoder::bool)?;
        patch.force = input.bool()?;
    }
    Ok(AccountUpdate { id, patch })
}

fn timeout(input: &mut Decoder<'_>) -> Result<Option<u64>, DecodeError> {
    match input.option(Decoder::u64)? {
        Some(ms) if ms > crate::limits::HOLD_TIMEOUT_MS_MAX => fail(format!("hold timeout {ms} ms exceeds the limit")),
        timeout => Ok(timeout),
    }
}

fn decode_shares(input: &mut Decoder<'_>) -> Result<Vec<Share>, DecodeError> {
    let count = usize::from(input.u16()?);
    if !(1..=ALLOCATION_SHARES_MAX).contains(&count) {
        return fail(format!("allocation with {count} entries"));
    }
    (0..count)
        .map(|_| {
            let credit = input.id()?;
            match input.u64()? {
                weight @ 1..=ALLOCATION_WEIGHT_MAX => Ok(Share { credit, weight }),
                weight => fail(format!("allocation weight {weight} out of range")),
            }
        })
        .collect()
}

fn decode_transfer(input: &mut Decoder<'_>) -> Result<NewTransfer, DecodeError> {
    let id = input.id()?;
    let kind_byte = input.u8()?;
    let kind = match kind_byte {
        KIND_DIRECT | KIND_DIRECT_BALANCING => TransferKind::Direct { debit: input.id()?, credit: input.id()?, amount: input.decimal()? },
        KIND_PENDING | KIND_PENDING_BALANCING => {
            TransferKind::Pending { debit: input.id()?, credit: input.id()?, amount: input.decimal()?, timeout_ms: timeout(input)? }
        }
        KIND_ALLOCATE => {
            let (debit, shares, amount, pending, timeout_ms) =
                (input.id()?, decode_shares(input)?, input.decimal()?, input.bool()?, timeout(input)?);
            if timeout_ms.is_some() && !pending {
                return fail("an allocation that is not held has a timeout");
            }
            TransferKind::Allocate { debit, shares, amount, pending, timeout_ms }
        }
        KIND_POST => TransferKind::Post {
            pending_id: input.transfer_id()?,
            debit: input.option(Decoder::id)?,
            credit: input.option(Decoder::id)?,
            amount: input.option(Decoder::decimal)?,
        },
        KIND_VOID => {
            TransferKind::Void { pending_id: input.transfer_id()?, debit: input.option(Decoder::id)?, credit: input.option(Decoder::id)? }
        }
        other => return fail(format!("unknown transfer kind {other}")),
    };
    Ok(NewTransfer {
        id,
        kind,
        asset: input.option(Decoder::asset_code)?,
        linked: input.bool()?,
        metadata: input.option(Decoder::metadata)?,
        if_debit_version: input.option(Decoder::u64)?,
        if_credit_version: input.option(Decoder::u64)?,
        balancing: matches!(kind_byte, KIND_DIRECT_BALANCING | KIND_PENDING_BALANCING),
    })
}
