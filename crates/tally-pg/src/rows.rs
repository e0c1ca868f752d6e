//! Rows to core values and back. Amounts travel as decimal text (`NUMERIC(39,0)` has no
//! binary form in the driver that holds 39 digits) and are parsed strictly: a value the
//! ledger could not have written is reported, never guessed at.

use crate::PgError;
use tally_core::{AccountRow, Asset, AssetCode, HoldState, Id, RecordKind, ResultCode, Settings, Totals, TransferRow, TOTAL_MAX};
use tokio_postgres::Row;

/// The account columns every query selecting accounts names, in this order.
pub const ACCOUNT_COLUMNS: &str = "a.id, a.asset, a.parent, a.depth, a.min_balance::text, a.max_balance::text, a.metadata, \
     a.created_min_balance::text, a.created_max_balance::text, a.created_metadata, a.debits_posted::text, a.credits_posted::text, \
     a.debits_pending::text, a.credits_pending::text, a.version, a.created_seq, a.timestamp";

/// The transfer columns every query selecting transfers names, in this order.
pub const TRANSFER_COLUMNS: &str = "t.id, t.metadata, t.amount::text, t.seq, t.timestamp, t.fingerprint, t.debit, t.credit, \
     t.related, t.kind, t.result, t.hold_state, t.expires_at";

fn corrupt(what: impl Into<String>) -> PgError {
    PgError::Corrupt(what.into())
}

pub fn id(text: &str) -> Result<Id, PgError> {
    Id::parse(text).map_err(|error| corrupt(format!("stored id {text:?} {error}")))
}

pub fn asset_code(text: &str) -> Result<AssetCode, PgError> {
    AssetCode::parse(text).map_err(|error| corrupt(format!("stored asset code {text:?} {error}")))
}

pub fn total(text: &str) -> Result<u128, PgError> {
    text.parse::<u128>().ok().filter(|&value| value <= TOTAL_MAX).ok_or_else(|| corrupt(format!("stored total {text:?}")))
}

fn bound(text: Option<&str>) -> Result<Option<i128>, PgError> {
    text.map(|text| text.parse::<i128>().map_err(|_| corrupt(format!("stored bound {text:?}")))).transpose()
}

pub fn unsigned(value: i64, what: &str) -> Result<u64, PgError> {
    u64::try_from(value).map_err(|_| corrupt(format!("stored {what} {value}")))
}

/// Settings from three columns starting at `first`.
pub fn settings(row: &Row, first: usize) -> Result<Settings, PgError> {
    Ok(Settings {
        min_balance: bound(row.get(first))?,
        max_balance: bound(row.get(first + 1))?,
        metadata: row.get::<_, Option<&str>>(first + 2).map(Box::from),
    })
}

/// Totals from four columns starting at `first`.
pub fn totals(row: &Row, first: usize) -> Result<Totals, PgError> {
    Ok(Totals {
        debits_posted: total(row.get(first))?,
        credits_posted: total(row.get(first + 1))?,
        debits_pending: total(row.get(first + 2))?,
        credits_pending: total(row.get(first + 3))?,
    })
}

/// An account from `ACCOUNT_COLUMNS`.
pub fn account(row: &Row) -> Result<AccountRow, PgError> {
    Ok(AccountRow {
        id: id(row.get(0))?,
        asset: asset_code(row.get(1))?,
        parent: row.get::<_, Option<&str>>(2).map(id).transpose()?,
        depth: u8::try_from(row.get::<_, i16>(3)).map_err(|_| corrupt("stored depth"))?,
        settings: settings(row, 4)?,
        created_settings: settings(row, 7)?,
        totals: totals(row, 10)?,
        version: unsigned(row.get(14), "version")?,
        created_seq: unsigned(row.get(15), "seq")?,
        timestamp: unsigned(row.get(16), "timestamp")?,
    })
}

/// A transfer record from `TRANSFER_COLUMNS`.
pub fn transfer(row: &Row) -> Result<TransferRow, PgError> {
    let small = |index: usize| u8::try_from(row.get::<_, i16>(index)).map_err(|_| corrupt("stored code"));
    Ok(TransferRow {
        id: row.get::<_, &str>(0).to_owned(),
        metadata: row.get::<_, Option<&str>>(1).map(str::to_owned),
        amount: total(row.get(2))?,
        seq: unsigned(row.get(3), "seq")?,
        timestamp: unsigned(row.get(4), "timestamp")?,
        fingerprint: row.get::<_, i64>(5) as u64,
        debit: row.get::<_, Option<&str>>(6).map(id).transpose()?,
        credit: row.get::<_, Option<&str>>(7).map(id).transpose()?,
        related: row.get::<_, Option<&str>>(8).map(str::to_owned),
        kind: RecordKind::from_u8(small(9)?).ok_or_else(|| corrupt("stored transfer kind"))?,
        result: ResultCode::from_u8(small(10)?).ok_or_else(|| corrupt("stored result code"))?,
        hold_state: HoldState::from_u8(small(11)?).ok_or_else(|| corrupt("stored hold state"))?,
        expires_at: row.get::<_, Option<i64>>(12).map(|at| unsigned(at, "expiry")).transpose()?,
    })
}

/// An asset from `code, scale, seq, timestamp`.
pub fn asset(row: &Row) -> Result<Asset, PgError> {
    Ok(Asset {
        code: asset_code(row.get(0))?,
        scale: u8::try_from(row.get::<_, i16>(1)).map_err(|_| corrupt("stored scale"))?,
        seq: unsigned(row.get(2), "seq")?,
        timestamp: unsigned(row.get(3), "timestamp")?,
    })
}

/// A seq or timestamp as PostgreSQL's `bigint`. Both stay far below 2^63 (a timestamp in
/// nanoseconds reaches it in the year 2262).
pub fn big(value: u64) -> i64 {
    i64::try_from(value).expect("seqs and timestamps fit a bigint")
}
