//! Whole-ledger operations: export to a dump, import from one, and verify. Export and verify
//! read inside one REPEATABLE READ transaction, so they see one consistent ledger even while
//! nodes keep writing; every read is paged.

use crate::rows::{self, big};
use crate::{batch, connect, read, schema, Concurrency, PgError};
use std::io::{Read, Write};
use tally_core::batch::replay_record;
use tally_core::codec::decode_batch;
use tally_core::limits::{ATTEMPTS_MAX, PAGE_LIMIT_MAX};
use tally_core::{Request, State, Under};
use tally_ledger::dump::{DumpReader, DumpWriter};
use tokio_postgres::{IsolationLevel, Transaction};

/// Batch records read per round trip.
const BATCHES_PER_PAGE: i64 = 64;

fn dump_error(error: std::io::Error) -> PgError {
    PgError::Dump(error.to_string())
}

/// Every batch record with `last_seq` at most `until`, in order, a page at a time.
async fn each_batch(
    transaction: &Transaction<'_>,
    until: u64,
    mut visit: impl FnMut(u64, &[u8]) -> Result<(), PgError>,
) -> Result<u64, PgError> {
    let (mut after, mut records) = (0u64, 0u64);
    loop {
        let page = transaction
            .query(
                "SELECT last_seq, payload FROM tally.batches WHERE last_seq > $1 AND last_seq <= $2 ORDER BY last_seq LIMIT $3",
                &[&big(after), &big(until), &BATCHES_PER_PAGE],
            )
            .await?;
        for row in &page {
            after = rows::unsigned(row.try_get(0)?, "seq")?;
            visit(after, row.try_get(1)?)?;
            records += 1;
        }
        if (page.len() as i64) < BATCHES_PER_PAGE {
            return Ok(records);
        }
    }
}

async fn snapshot_transaction(client: &mut tokio_postgres::Client) -> Result<(Transaction<'_>, u64), PgError> {
    schema::check_version(client).await?;
    let transaction = client.build_transaction().isolation_level(IsolationLevel::RepeatableRead).read_only(true).start().await?;
    let last_seq = read::last_seq(&transaction).await?;
    Ok((transaction, last_seq))
}

/// Writes the ledger at `url` as a dump. `progress` hears (seq reached, last seq).
pub async fn export(url: &str, output: impl Write, mut progress: impl FnMut(u64, u64)) -> Result<(u64, u64), PgError> {
    let mut client = connect(url).await?;
    let (transaction, last_seq) = snapshot_transaction(&mut client).await?;
    let mut dump = DumpWriter::new(output, last_seq).map_err(dump_error)?;
    let records = each_batch(&transaction, last_seq, |seq, payload| {
        progress(seq, last_seq);
        dump.frame(seq, payload).map_err(dump_error)
    })
    .await?;
    dump.finish().map_err(dump_error)?;
    Ok((records, last_seq))
}

/// Replays a dump into the empty ledger at `url`, one transaction per batch record, checking
/// that each reaches the seq it was exported at. `progress` hears (seq reached, last seq).
pub async fn import(url: &str, input: impl Read, mut progress: impl FnMut(u64, u64)) -> Result<(u64, u64), PgError> {
    let mut client = connect(url).await?;
    schema::migrate(&mut client).await?;
    let present = read::last_seq(&client).await?;
    if present != 0 {
        return Err(PgError::Dump(format!("the ledger is not empty (last seq {present}); import only into an empty one")));
    }
    let statements = batch::Statements::prepare(&client).await?;
    let mut dump = DumpReader::new(input).map_err(dump_error)?;
    let total = dump.last_seq;
    let (mut records, mut lineages) = (0, batch::Lineages::default());
    while let Some((last_seq, payload)) = dump.next_frame().map_err(dump_error)? {
        let record = decode_batch(payload).map_err(|e| PgError::Dump(format!("batch record {} does not decode: {e}", records + 1)))?;
        let requests: Vec<&Request> = record.requests.iter().collect();
        let mut attempt = 0;
        let committed = loop {
            attempt += 1;
            let locking = batch::Attempt::As(Concurrency::Locking);
            match batch::run(&mut client, Some(&statements), &mut lineages, locking, record.timestamp, &requests).await {
                // The first time the writer meets an account with ancestors, it learns them
                // and runs the batch again.
                Err(error) if error.is_retryable() && attempt < ATTEMPTS_MAX => continue,
                outcome => break outcome?,
            }
        };
        if committed.last_seq != last_seq {
            return Err(PgError::Dump(format!(
                "batch record {} replays to seq {}, but was exported at seq {last_seq}; nothing after it was imported",
                records + 1,
                committed.last_seq
            )));
        }
        records += 1;
        progress(last_seq, total);
    }
    Ok((records, read::last_seq(&client).await?))
}

/// What `verify` checked.
#[derive(Debug)]
pub struct Verified {
    pub records: u64,
    pub last_seq: u64,
    pub accounts: u64,
}

/// Replays every batch record into a fresh state (checking each reaches its seq and that
/// conservation and bounds hold after each), audits the totals, then compares every journal
/// entry and every account the tables hold with the replay, and every account's change
/// history with its version and totals.
pub async fn verify(url: &str, mut progress: impl FnMut(&str, u64, u64)) -> Result<Verified, PgError> {
    let mut client = connect(url).await?;
    let (transaction, last_seq) = snapshot_transaction(&mut client).await?;
    let mut state = State::new();
    let records = each_batch(&transaction, last_seq, |seq, payload| {
        let replayed = replay_record(&mut state, payload)
            .map_err(|e| PgError::Corrupt(format!("the batch record up to seq {seq} does not decode: {e}")))?;
        if replayed != seq {
            return Err(PgError::Corrupt(format!("the batch record up to seq {seq} replays to seq {replayed}")));
        }
        state.check_invariants().map_err(PgError::Corrupt)?;
        progress("replaying", seq, last_seq);
        Ok(())
    })
    .await?;
    if state.last_seq() != last_seq {
        return Err(PgError::Corrupt(format!("the batch records reach seq {}, the ledger says {last_seq}", state.last_seq())));
    }
    state.audit().map_err(PgError::Corrupt)?;

    let mut after = 0;
    while after < last_seq {
        let stored = read::journal(&transaction, after, last_seq, PAGE_LIMIT_MAX).await?;
        let replayed = state.journal(after, last_seq, PAGE_LIMIT_MAX);
        if let Some((stored, replayed)) = stored.iter().zip(&replayed).find(|(s, r)| s != r) {
            return Err(PgError::Corrupt(format!("journal entry {} is stored as {stored:?} but replays as {replayed:?}", replayed.seq())));
        }
        after = replayed.last().map_or(last_seq, |entry| entry.seq());
        progress("comparing the journal", after, last_seq);
    }
    let mut accounts = 0;
    let mut after_id = None;
    loop {
        let stored = read::accounts(&transaction, "", &Under::Anywhere, after_id.as_ref(), PAGE_LIMIT_MAX).await?.unwrap_or_default();
        let replayed = state.accounts_page("", &Under::Anywhere, after_id.as_ref(), PAGE_LIMIT_MAX).unwrap_or_default();
        if stored != replayed {
            let differs = stored.iter().zip(&replayed).find(|(s, r)| s != r);
            return Err(PgError::Corrupt(format!(
                "accounts differ from the replay: {differs:?} ({} stored, {} replayed in the page)",
                stored.len(),
                replayed.len()
            )));
        }
        accounts += stored.len() as u64;
        match replayed.last() {
            Some(last) if replayed.len() == PAGE_LIMIT_MAX => after_id = Some(last.id.clone()),
            _ => break,
        }
    }
    let mismatched: i64 = transaction
        .query_one(
            "SELECT count(*) FROM tally.accounts a LEFT JOIN LATERAL (
                 SELECT count(*) AS changes, max(version) AS version FROM tally.account_changes c WHERE c.account_seq = a.created_seq) h ON true
             LEFT JOIN LATERAL (
                 SELECT * FROM tally.account_changes c WHERE c.account_seq = a.created_seq ORDER BY seq DESC LIMIT 1) l ON true
             WHERE h.changes <> a.version OR h.version <> a.version OR l.debits_posted <> a.debits_posted
                 OR l.credits_posted <> a.credits_posted OR l.debits_pending <> a.debits_pending OR l.credits_pending <> a.credits_pending",
            &[],
        )
        .await?
        .try_get(0)?;
    if mismatched > 0 {
        return Err(PgError::Corrupt(format!("{mismatched} accounts disagree with their change history")));
    }
    Ok(Verified { records, last_seq, accounts })
}
