//! Rows to core values and back. Amounts travel in PostgreSQL's binary `NUMERIC` form
//! (`Numeric`), so neither side converts them to and from text, and are checked strictly: a
//! value the ledger could not have written is reported, never guessed at.

use crate::PgError;
use bytes::{BufMut, BytesMut};
use std::error::Error;
use tally_core::{AccountRow, Asset, AssetCode, HoldState, Id, Metadata, RecordKind, ResultCode, Settings, Totals, TransferRow, TOTAL_MAX};
use tokio_postgres::types::{accepts, to_sql_checked, FromSql, IsNull, ToSql, Type};
use tokio_postgres::Row;

/// A whole number as PostgreSQL's binary `NUMERIC`: digits in base 10,000, most significant
/// first, with the weight (power of 10,000) of the first; trailing zero digits are left out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Numeric(pub i128);

const NUMERIC_NEGATIVE: u16 = 0x4000;
const NUMERIC_BASE: u128 = 10_000;

impl ToSql for Numeric {
    fn to_sql(&self, _: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        let mut magnitude = self.0.unsigned_abs();
        // At most 10 base-10,000 digits hold an i128.
        let mut digits = [0i16; 10];
        let mut count = 0;
        while magnitude > 0 {
            digits[count] = (magnitude % NUMERIC_BASE) as i16;
            magnitude /= NUMERIC_BASE;
            count += 1;
        }
        let trailing_zeros = digits[..count].iter().take_while(|&&d| d == 0).count();
        let kept = &digits[trailing_zeros..count];
        out.put_i16(kept.len() as i16);
        out.put_i16(if kept.is_empty() { 0 } else { count as i16 - 1 });
        out.put_u16(if self.0 < 0 { NUMERIC_NEGATIVE } else { 0 });
        out.put_u16(0);
        for digit in kept.iter().rev() {
            out.put_i16(*digit);
        }
        Ok(IsNull::No)
    }

    accepts!(NUMERIC);
    to_sql_checked!();
}

impl<'a> FromSql<'a> for Numeric {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Numeric, Box<dyn Error + Sync + Send>> {
        let field = |at: usize| raw.get(at..at + 2).map(|b| u16::from_be_bytes([b[0], b[1]])).ok_or("a short numeric");
        let (count, weight, sign, scale) = (field(0)? as i16, field(2)? as i16, field(4)?, field(6)?);
        if count < 0 || (sign != 0 && sign != NUMERIC_NEGATIVE) || scale != 0 {
            return Err("not a whole number".into());
        }
        let mut magnitude: u128 = 0;
        for index in 0..count as usize {
            let digit = u128::from(field(8 + 2 * index)?);
            magnitude = magnitude.checked_mul(NUMERIC_BASE).and_then(|m| m.checked_add(digit)).ok_or("a numeric beyond 128 bits")?;
        }
        // Digits left out after the last one given were zeros.
        let shift = i32::from(weight) - (i32::from(count) - 1);
        if shift < 0 && count > 0 {
            return Err("not a whole number".into());
        }
        for _ in 0..shift.max(0) {
            magnitude = magnitude.checked_mul(NUMERIC_BASE).ok_or("a numeric beyond 128 bits")?;
        }
        let value = i128::try_from(magnitude).map_err(|_| "a numeric beyond 128 bits")?;
        Ok(Numeric(if sign == NUMERIC_NEGATIVE { -value } else { value }))
    }

    accepts!(NUMERIC);
}

/// A running total or amount for a `NUMERIC` column.
pub fn numeric(value: u128) -> Numeric {
    Numeric(i128::try_from(value).expect("totals stay within TOTAL_MAX"))
}

/// The account columns every query selecting accounts names, in this order.
pub const ACCOUNT_COLUMNS: &str = "a.id, a.asset, a.parent, a.depth, a.min_balance, a.max_balance, a.metadata, a.closed, \
     a.created_min_balance, a.created_max_balance, a.created_metadata, false, a.debits_posted, a.credits_posted, \
     a.debits_pending, a.credits_pending, a.version, a.created_seq, a.timestamp";

/// How many columns `ACCOUNT_COLUMNS` names: a query's own columns start at this index.
pub const ACCOUNT_COLUMN_COUNT: usize = 19;

/// The transfer columns every query selecting transfers names, in this order.
pub const TRANSFER_COLUMNS: &str = "t.id, t.metadata, t.amount, t.seq, t.timestamp, t.fingerprint, t.debit, t.credit, \
     t.related, t.kind, t.result, t.hold_state, t.expires_at";

fn corrupt(what: impl Into<String>) -> PgError {
    PgError::Corrupt(what.into())
}

pub fn id(text: &str) -> Result<Id, PgError> {
    Id::parse(text).map_err(|error| corrupt(format!("stored id {text:?} {error}")))
}

fn metadata(text: &str) -> Result<Metadata, PgError> {
    Metadata::from_canonical(text).map_err(|error| corrupt(format!("stored metadata {text:?}: {error}")))
}

pub fn asset_code(text: &str) -> Result<AssetCode, PgError> {
    AssetCode::parse(text).map_err(|error| corrupt(format!("stored asset code {text:?} {error}")))
}

/// A total or amount from column `index`.
pub fn total(row: &Row, index: usize) -> Result<u128, PgError> {
    let Numeric(value) = row.try_get(index).map_err(|e| corrupt(format!("stored total: {e}")))?;
    u128::try_from(value).ok().filter(|&value| value <= TOTAL_MAX).ok_or_else(|| corrupt(format!("stored total {value}")))
}

fn bound(row: &Row, index: usize) -> Result<Option<i128>, PgError> {
    let bound: Option<Numeric> = row.try_get(index).map_err(|e| corrupt(format!("stored bound: {e}")))?;
    Ok(bound.map(|Numeric(value)| value))
}

pub fn unsigned(value: i64, what: &str) -> Result<u64, PgError> {
    u64::try_from(value).map_err(|_| corrupt(format!("stored {what} {value}")))
}

/// Settings from four columns starting at `first`: the bounds, the metadata, closed.
pub fn settings(row: &Row, first: usize) -> Result<Settings, PgError> {
    Ok(Settings {
        min_balance: bound(row, first)?,
        max_balance: bound(row, first + 1)?,
        metadata: row.try_get::<_, Option<&str>>(first + 2)?.map(metadata).transpose()?,
        closed: row.try_get(first + 3)?,
    })
}

/// Totals from four columns starting at `first`.
pub fn totals(row: &Row, first: usize) -> Result<Totals, PgError> {
    Ok(Totals {
        debits_posted: total(row, first)?,
        credits_posted: total(row, first + 1)?,
        debits_pending: total(row, first + 2)?,
        credits_pending: total(row, first + 3)?,
    })
}

/// An account from `ACCOUNT_COLUMNS`.
pub fn account(row: &Row) -> Result<AccountRow, PgError> {
    Ok(AccountRow {
        id: id(row.try_get(0)?)?,
        asset: asset_code(row.try_get(1)?)?,
        parent: row.try_get::<_, Option<&str>>(2)?.map(id).transpose()?,
        depth: u8::try_from(row.try_get::<_, i16>(3)?).map_err(|_| corrupt("stored depth"))?,
        settings: settings(row, 4)?,
        created_settings: settings(row, 8)?,
        totals: totals(row, 12)?,
        version: unsigned(row.try_get(16)?, "version")?,
        created_seq: unsigned(row.try_get(17)?, "seq")?,
        timestamp: unsigned(row.try_get(ACCOUNT_COLUMN_COUNT - 1)?, "timestamp")?,
    })
}

/// A transfer record from `TRANSFER_COLUMNS`.
pub fn transfer(row: &Row) -> Result<TransferRow, PgError> {
    let small = |index: usize| u8::try_from(row.try_get::<_, i16>(index)?).map_err(|_| corrupt("stored code"));
    Ok(TransferRow {
        id: row.try_get::<_, &str>(0)?.to_owned(),
        metadata: row.try_get::<_, Option<&str>>(1)?.map(metadata).transpose()?,
        amount: total(row, 2)?,
        seq: unsigned(row.try_get(3)?, "seq")?,
        timestamp: unsigned(row.try_get(4)?, "timestamp")?,
        fingerprint: row.try_get::<_, i64>(5)? as u64,
        debit: row.try_get::<_, Option<&str>>(6)?.map(id).transpose()?,
        credit: row.try_get::<_, Option<&str>>(7)?.map(id).transpose()?,
        related: row.try_get::<_, Option<&str>>(8)?.map(str::to_owned),
        kind: RecordKind::from_u8(small(9)?).ok_or_else(|| corrupt("stored transfer kind"))?,
        result: ResultCode::from_u8(small(10)?).ok_or_else(|| corrupt("stored result code"))?,
        hold_state: HoldState::from_u8(small(11)?).ok_or_else(|| corrupt("stored hold state"))?,
        expires_at: row.try_get::<_, Option<i64>>(12)?.map(|at| unsigned(at, "expiry")).transpose()?,
    })
}

/// An asset from `code, scale, seq, timestamp`.
pub fn asset(row: &Row) -> Result<Asset, PgError> {
    Ok(Asset {
        code: asset_code(row.try_get(0)?)?,
        scale: u8::try_from(row.try_get::<_, i16>(1)?).map_err(|_| corrupt("stored scale"))?,
        seq: unsigned(row.try_get(2)?, "seq")?,
        timestamp: unsigned(row.try_get(3)?, "timestamp")?,
    })
}

/// A seq or timestamp as PostgreSQL's `bigint`. Both stay far below 2^63 (a timestamp in
/// nanoseconds reaches it in the year 2262).
pub fn big(value: u64) -> i64 {
    i64::try_from(value).expect("seqs and timestamps fit a bigint")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numerics_round_trip_through_the_binary_form() {
        let values = [0, 1, -1, 9_999, 10_000, 10_001, 100_000_000, -123_456_789_012, TOTAL_MAX as i128, -(TOTAL_MAX as i128), i128::MAX];
        for value in values {
            let mut bytes = BytesMut::new();
            Numeric(value).to_sql(&Type::NUMERIC, &mut bytes).unwrap();
            assert_eq!(Numeric::from_sql(&Type::NUMERIC, &bytes).unwrap(), Numeric(value), "{value}");
        }
        // 1.5 (one digit before the point, one after) is not a whole number.
        let fraction = [0, 2, 0, 0, 0, 0, 0, 1, 0, 1, 0x13, 0x88];
        assert!(Numeric::from_sql(&Type::NUMERIC, &fraction).is_err());
    }
}
