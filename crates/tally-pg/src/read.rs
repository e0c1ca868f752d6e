//! Reads, straight from the tables. Every row a read returns was committed, so it is durable;
//! every listing is bounded by `PAGE_LIMIT_MAX`.
//!
//! Each read is sent as one unnamed statement with its parameter types (`query_typed`): one
//! round trip instead of a prepare and an execute, and no statement left on the server, so
//! reads work unchanged through a pooler in transaction mode.

use crate::rows::{self, big, ACCOUNT_COLUMNS, ACCOUNT_COLUMN_COUNT, TRANSFER_COLUMNS};
use crate::PgError;
use tally_core::limits::PAGE_LIMIT_MAX;
use tally_core::{AccountRow, AccountView, ChangeCause, HistoryEntry, Id, JournalEntry, Settings, Totals, TransferView, Under};
use tokio_postgres::types::Type;
use tokio_postgres::{GenericClient, Row};

/// Sorts after every character an id may hold, so `prefix + ID_CEILING` bounds a prefix range.
const ID_CEILING: char = '\u{7f}';

pub async fn last_seq(client: &impl GenericClient) -> Result<u64, PgError> {
    rows::unsigned(client.query_typed_one("SELECT last_seq FROM tally.ledger", &[]).await?.try_get(0)?, "seq")
}

/// An account from `ACCOUNT_COLUMNS` followed by its asset's scale.
fn account_with_scale(row: &Row) -> Result<(AccountRow, u8), PgError> {
    let scale = u8::try_from(row.try_get::<_, i16>(ACCOUNT_COLUMN_COUNT)?).map_err(|_| PgError::Corrupt("stored scale".into()))?;
    Ok((rows::account(row)?, scale))
}

fn account_view(row: &Row) -> Result<AccountView, PgError> {
    account_with_scale(row).map(|(account, scale)| account.into_view(scale))
}

/// A transfer from `TRANSFER_COLUMNS` followed by its asset's code and scale.
fn transfer_view(row: &Row) -> Result<TransferView, PgError> {
    let asset = match (row.try_get::<_, Option<&str>>(13)?, row.try_get::<_, Option<i16>>(14)?) {
        (Some(code), Some(scale)) => {
            Some((rows::asset_code(code)?, u8::try_from(scale).map_err(|_| PgError::Corrupt("stored scale".into()))?))
        }
        _ => None,
    };
    Ok(rows::transfer(row)?.into_view(asset))
}

const ACCOUNT_FROM: &str = "FROM tally.accounts a JOIN tally.assets s ON s.code = a.asset";
const TRANSFER_FROM: &str =
    "FROM tally.transfers t LEFT JOIN tally.accounts d ON d.id = t.debit LEFT JOIN tally.assets s ON s.code = d.asset";

async fn account_row(client: &impl GenericClient, id: &Id) -> Result<Option<(AccountRow, u8)>, PgError> {
    let sql = format!("SELECT {ACCOUNT_COLUMNS}, s.scale {ACCOUNT_FROM} WHERE a.id = $1");
    client.query_typed_opt(&sql, &[(&id.as_str(), Type::TEXT)]).await?.as_ref().map(account_with_scale).transpose()
}

pub async fn account(client: &impl GenericClient, id: &Id) -> Result<Option<AccountView>, PgError> {
    Ok(account_row(client, id).await?.map(|(account, scale)| account.into_view(scale)))
}

/// The account right after journal position `seq` (which the caller checked is committed).
pub async fn account_as_of(client: &impl GenericClient, id: &Id, seq: u64) -> Result<Option<AccountView>, PgError> {
    let Some((account, scale)) = account_row(client, id).await? else { return Ok(None) };
    if account.created_seq > seq {
        return Ok(None);
    }
    let created_settings = account.created_settings.clone();
    let mut view = account.into_view(scale);
    let change = client
        .query_typed_one(
            "SELECT version, debits_posted, credits_posted, debits_pending, credits_pending
             FROM tally.account_changes WHERE account_seq = $1 AND seq <= $2 ORDER BY seq DESC LIMIT 1",
            &[(&big(view.created_seq), Type::INT8), (&big(seq), Type::INT8)],
        )
        .await?;
    view.version = rows::unsigned(change.try_get(0)?, "version")?;
    view.totals = rows::totals(&change, 1)?;
    let settings = client
        .query_typed_opt(
            "SELECT min_balance, max_balance, metadata, closed FROM tally.settings_changes
             WHERE account = $1 AND seq <= $2 ORDER BY seq DESC LIMIT 1",
            &[(&id.as_str(), Type::TEXT), (&big(seq), Type::INT8)],
        )
        .await?;
    view.settings = match settings {
        Some(row) => rows::settings(&row, 0)?,
        None => created_settings,
    };
    Ok(Some(view))
}

/// Accounts in id order after `after`, whose id starts with `prefix` and which are `under`
/// the place asked for; `None` if a parent asked for does not exist.
pub async fn accounts(
    client: &impl GenericClient,
    prefix: &str,
    under: &Under,
    after: Option<&Id>,
    limit: usize,
) -> Result<Option<Vec<AccountView>>, PgError> {
    let parent = match under {
        Under::Parent(parent) => Some(parent),
        Under::Anywhere | Under::Root => None,
    };
    if let Some(parent) = parent {
        if client.query_typed_opt("SELECT 1 FROM tally.accounts WHERE id = $1", &[(&parent.as_str(), Type::TEXT)]).await?.is_none() {
            return Ok(None);
        }
    }
    // Roots have a statement of their own, which the partial index `accounts_roots` serves.
    let place = if *under == Under::Root { "a.parent IS NULL AND $1::text IS NULL" } else { "($1::text IS NULL OR a.parent = $1)" };
    let sql = format!(
        "SELECT {ACCOUNT_COLUMNS}, s.scale {ACCOUNT_FROM}
         WHERE {place} AND a.id > $2 AND a.id >= $3 AND a.id < $4 ORDER BY a.id LIMIT $5"
    );
    let upper = format!("{prefix}{ID_CEILING}");
    let limit = limit.min(PAGE_LIMIT_MAX) as i64;
    let (parent, after) = (parent.map(Id::as_str), after.map_or("", Id::as_str));
    let parameters = [
        (&parent as _, Type::TEXT),
        (&after as _, Type::TEXT),
        (&prefix as _, Type::TEXT),
        (&upper.as_str() as _, Type::TEXT),
        (&limit as _, Type::INT8),
    ];
    let rows = client.query_typed(&sql, &parameters).await?;
    rows.iter().map(account_view).collect::<Result<Vec<_>, _>>().map(Some)
}

pub async fn transfer(client: &impl GenericClient, id: &str) -> Result<Option<TransferView>, PgError> {
    let sql = format!("SELECT {TRANSFER_COLUMNS}, d.asset, s.scale {TRANSFER_FROM} WHERE t.id = $1");
    client.query_typed_opt(&sql, &[(&id, Type::TEXT)]).await?.as_ref().map(transfer_view).transpose()
}

/// An account's creation seq (which names it in `account_changes`) and creation time.
async fn account_key(client: &impl GenericClient, id: &Id) -> Result<Option<(i64, u64)>, PgError> {
    let sql = "SELECT created_seq, timestamp FROM tally.accounts WHERE id = $1";
    match client.query_typed_opt(sql, &[(&id.as_str(), Type::TEXT)]).await? {
        Some(row) => Ok(Some((row.try_get(0)?, rows::unsigned(row.try_get(1)?, "timestamp")?))),
        None => Ok(None),
    }
}

/// The transfers that changed `id`'s totals with seq above `after_seq`, in seq order.
pub async fn account_transfers(
    client: &impl GenericClient,
    id: &Id,
    after_seq: u64,
    limit: usize,
) -> Result<Option<Vec<TransferView>>, PgError> {
    let Some((account_seq, _)) = account_key(client, id).await? else { return Ok(None) };
    let sql = format!(
        "SELECT {TRANSFER_COLUMNS}, d.asset, s.scale FROM tally.account_changes c JOIN tally.transfers t ON t.seq = c.seq
         LEFT JOIN tally.accounts d ON d.id = t.debit LEFT JOIN tally.assets s ON s.code = d.asset
         WHERE c.account_seq = $1 AND c.seq > $2 ORDER BY c.seq LIMIT $3"
    );
    let limit = limit.min(PAGE_LIMIT_MAX) as i64;
    let parameters = [(&account_seq as _, Type::INT8), (&big(after_seq) as _, Type::INT8), (&limit as _, Type::INT8)];
    let rows = client.query_typed(&sql, &parameters).await?;
    rows.iter().map(transfer_view).collect::<Result<Vec<_>, _>>().map(Some)
}

/// The changes to `id` with seq above `after_seq`, in seq order, each with its totals and
/// version right after it and what made it.
pub async fn account_history(
    client: &impl GenericClient,
    id: &Id,
    after_seq: u64,
    limit: usize,
) -> Result<Option<Vec<HistoryEntry>>, PgError> {
    let Some((created_seq, created_at)) = account_key(client, id).await? else { return Ok(None) };
    let sql = "SELECT c.seq, c.version, c.debits_posted, c.credits_posted, c.debits_pending, c.credits_pending,
                      t.id, t.timestamp, e.hold, e.timestamp, u.timestamp
               FROM tally.account_changes c
               LEFT JOIN tally.transfers t ON t.seq = c.seq
               LEFT JOIN tally.expiries e ON e.seq = c.seq
               LEFT JOIN tally.settings_changes u ON u.seq = c.seq
               WHERE c.account_seq = $1 AND c.seq > $2 ORDER BY c.seq LIMIT $3";
    let limit = limit.min(PAGE_LIMIT_MAX) as i64;
    let parameters = [(&created_seq as _, Type::INT8), (&big(after_seq) as _, Type::INT8), (&limit as _, Type::INT8)];
    let history = client.query_typed(sql, &parameters).await?;
    let entry = |row: &Row| -> Result<HistoryEntry, PgError> {
        let seq = rows::unsigned(row.try_get(0)?, "seq")?;
        let stamp = |column: usize| -> Result<u64, PgError> { rows::unsigned(row.try_get(column)?, "timestamp") };
        let (timestamp, cause) = if let Some(transfer) = row.try_get::<_, Option<String>>(6)? {
            (stamp(7)?, ChangeCause::Transfer(transfer))
        } else if let Some(hold) = row.try_get::<_, Option<String>>(8)? {
            (stamp(9)?, ChangeCause::Expiry(hold))
        } else if row.try_get::<_, Option<i64>>(10)?.is_some() {
            (stamp(10)?, ChangeCause::Updated)
        } else if i64::try_from(seq).ok() == Some(created_seq) {
            (created_at, ChangeCause::Created)
        } else {
            return Err(PgError::Corrupt(format!("account change at seq {seq} has no event")));
        };
        Ok(HistoryEntry { seq, timestamp, version: rows::unsigned(row.try_get(1)?, "version")?, totals: rows::totals(row, 2)?, cause })
    };
    history.iter().map(entry).collect::<Result<Vec<_>, _>>().map(Some)
}

/// Open holds that expire, soonest first (ties in seq order), after the one at `after`
/// (its expiry and seq).
pub async fn expiring_holds(client: &impl GenericClient, after: Option<(u64, u64)>, limit: usize) -> Result<Vec<TransferView>, PgError> {
    let sql = format!(
        "SELECT {TRANSFER_COLUMNS}, d.asset, s.scale {TRANSFER_FROM}
         WHERE t.expires_at IS NOT NULL AND t.hold_state = 0 AND (t.expires_at, t.seq) > ($1, $2)
         ORDER BY t.expires_at, t.seq LIMIT $3"
    );
    // Before every hold: expiries and seqs are never negative.
    let (expiry, seq) = after.map_or((-1, -1), |(expiry, seq)| (big(expiry), big(seq)));
    let limit = limit.min(PAGE_LIMIT_MAX) as i64;
    let rows = client.query_typed(&sql, &[(&expiry, Type::INT8), (&seq, Type::INT8), (&limit, Type::INT8)]).await?;
    rows.iter().map(transfer_view).collect()
}

// The journal's entries by kind, each between seqs $1 (excluded) and $2.
const JOURNAL_ASSETS: &str = "SELECT code, scale, seq, timestamp FROM tally.assets WHERE seq > $1 AND seq <= $2";
const JOURNAL_SETTINGS: &str = "SELECT c.account, c.min_balance, c.max_balance, c.metadata, c.closed, s.scale, c.seq, c.timestamp
     FROM tally.settings_changes c JOIN tally.accounts a ON a.id = c.account JOIN tally.assets s ON s.code = a.asset
     WHERE c.seq > $1 AND c.seq <= $2";
const JOURNAL_EXPIRIES: &str = "SELECT e.hold, t.debit, t.credit, t.amount, s.scale, e.seq, e.timestamp
     FROM tally.expiries e JOIN tally.transfers t ON t.id = e.hold JOIN tally.accounts d ON d.id = t.debit
     JOIN tally.assets s ON s.code = d.asset WHERE e.seq > $1 AND e.seq <= $2";
const JOURNAL_RENEWALS: &str = "SELECT hold, expires_at, seq, timestamp FROM tally.renewals WHERE seq > $1 AND seq <= $2";

/// Journal entries with seq in `after_seq + 1 ..= until_seq`, at most `limit`, from the six
/// tables that hold events (seqs are gapless, so the range is exact).
pub async fn journal(client: &impl GenericClient, after_seq: u64, until_seq: u64, limit: usize) -> Result<Vec<JournalEntry>, PgError> {
    let until = until_seq.min(after_seq.saturating_add(limit.min(PAGE_LIMIT_MAX) as u64));
    if until <= after_seq {
        return Ok(Vec::new());
    }
    let (after, until_parameter) = (big(after_seq), big(until));
    let range: [(&(dyn tokio_postgres::types::ToSql + Sync), Type); 2] = [(&after, Type::INT8), (&until_parameter, Type::INT8)];
    let accounts_sql = format!("SELECT {ACCOUNT_COLUMNS}, s.scale {ACCOUNT_FROM} WHERE a.created_seq > $1 AND a.created_seq <= $2");
    let transfers_sql = format!("SELECT {TRANSFER_COLUMNS}, d.asset, s.scale {TRANSFER_FROM} WHERE t.seq > $1 AND t.seq <= $2");
    let (assets, accounts, settings, transfers, expiries, renewals) = tokio::try_join!(
        client.query_typed(JOURNAL_ASSETS, &range),
        client.query_typed(&accounts_sql, &range),
        client.query_typed(JOURNAL_SETTINGS, &range),
        client.query_typed(&transfers_sql, &range),
        client.query_typed(JOURNAL_EXPIRIES, &range),
        client.query_typed(JOURNAL_RENEWALS, &range),
    )?;
    let scale = |value: i16| u8::try_from(value).map_err(|_| PgError::Corrupt("stored scale".into()));
    let mut entries = Vec::with_capacity((until - after_seq) as usize);
    for row in &assets {
        let asset = rows::asset(row)?;
        entries.push(JournalEntry::Asset { code: asset.code, scale: asset.scale, seq: asset.seq, timestamp: asset.timestamp });
    }
    for row in &accounts {
        let (account, scale) = account_with_scale(row)?;
        let created_settings = account.created_settings.clone();
        let view = AccountView { totals: Totals::default(), version: 1, ..account.into_view(scale) };
        entries.push(JournalEntry::Account { view, created_settings });
    }
    for row in &settings {
        let settings: Settings = rows::settings(row, 1)?;
        entries.push(JournalEntry::Update {
            id: rows::id(row.try_get(0)?)?,
            settings,
            scale: scale(row.try_get(5)?)?,
            seq: rows::unsigned(row.try_get(6)?, "seq")?,
            timestamp: rows::unsigned(row.try_get(7)?, "timestamp")?,
        });
    }
    for row in &transfers {
        entries.push(JournalEntry::Transfer(transfer_view(row)?));
    }
    for row in &expiries {
        entries.push(JournalEntry::Expiry {
            pending_id: row.try_get::<_, &str>(0)?.to_owned(),
            debit: rows::id(row.try_get(1)?)?,
            credit: rows::id(row.try_get(2)?)?,
            amount: rows::total(row, 3)?,
            scale: scale(row.try_get(4)?)?,
            seq: rows::unsigned(row.try_get(5)?, "seq")?,
            timestamp: rows::unsigned(row.try_get(6)?, "timestamp")?,
        });
    }
    for row in &renewals {
        entries.push(JournalEntry::Renewal {
            pending_id: row.try_get::<_, &str>(0)?.to_owned(),
            expires_at: rows::unsigned(row.try_get(1)?, "expiry")?,
            seq: rows::unsigned(row.try_get(2)?, "seq")?,
            timestamp: rows::unsigned(row.try_get(3)?, "timestamp")?,
        });
    }
    entries.sort_by_key(JournalEntry::seq);
    if entries.len() as u64 != until - after_seq || entries.iter().zip(after_seq + 1..).any(|(entry, seq)| entry.seq() != seq) {
        return Err(PgError::Corrupt(format!("the journal between seq {after_seq} and {until} has gaps")));
    }
    Ok(entries)
}

/// Which keys made the entries from `from` to `to`: the run `from` falls in, then those
/// beginning after it up to `to`.
pub async fn key_runs(client: &impl GenericClient, from: u64, to: u64) -> Result<Vec<(u64, Option<Id>)>, PgError> {
    let sql = "SELECT first_seq, key FROM tally.key_runs WHERE first_seq <= $2 AND first_seq >= \
               coalesce((SELECT max(first_seq) FROM tally.key_runs WHERE first_seq <= $1), 0) ORDER BY first_seq";
    let rows = client.query_typed(sql, &[(&big(from), Type::INT8), (&big(to), Type::INT8)]).await?;
    rows.iter()
        .map(|row| {
            let key: Option<String> = row.try_get(1)?;
            Ok((rows::unsigned(row.try_get(0)?, "seq")?, key.as_deref().map(rows::id).transpose()?))
        })
        .collect()
}
