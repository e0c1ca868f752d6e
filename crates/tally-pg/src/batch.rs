//! One batch in one transaction: load the rows the batch names into a `tally_core` slice,
//! apply it with the same `tally_core::batch::apply` as the embedded writer, write back what changed
//! with one set-based statement per table, commit.
//!
//! The order of locks is what makes this safe and deadlock-free:
//! 1. Account rows (every account named, the accounts of every hold the batch posts, voids or
//!    renews, every due hold's accounts, and all their ancestors), in id order, in one
//!    statement. With `locking` they
//!    are taken `FOR UPDATE`; with `optimistic` and `serializable` they are only read.
//! 2. The ledger row, `FOR UPDATE`: the single point where batches from every node take
//!    their turn, so seqs are gapless and in commit order (see docs/postgres.md).
//! 3. Nothing else is locked; rows written after this point are new or already locked.
//!
//! Everything that decides an outcome is read after step 2 (transfer ids, holds, assets), so
//! under READ COMMITTED it sees every batch committed before this one. What was read before
//! step 2 is checked after it: an account that appeared meanwhile, or (optimistic) an
//! account whose version moved, makes the attempt a `Conflict` that is rolled back and retried.

use crate::rows::{self, big, numeric, ACCOUNT_COLUMNS, ACCOUNT_COLUMN_COUNT, TRANSFER_COLUMNS};
use crate::{Concurrency, PgError};
use futures_util::future::try_join_all;
use std::collections::{BTreeSet, HashMap};
use tally_core::batch::{self, BatchApplied};
use tally_core::limits::{DUE_HOLDS_MAX, LINEAGES_MAX};
use tally_core::{AccountRow, Changes, Id, Request, State, TransferKind};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, GenericClient, Statement};

/// What a batch names, collected before touching the database.
#[derive(Default)]
struct Names {
    accounts: BTreeSet<String>,
    transfers: BTreeSet<String>,
    holds: BTreeSet<String>,
    /// Ids whose legs (`<id>/<n>`) the batch loads: allocations and the posts and voids that
    /// may have applied as legs (to find their earlier outcome), and the holds a post or void
    /// names (which may be allocations of holds).
    with_legs: BTreeSet<String>,
    assets: BTreeSet<String>,
}

impl Names {
    fn of(requests: &[&Request]) -> Names {
        let mut names = Names::default();
        for request in requests {
            match request.unwrapped() {
                Request::By { .. } => unreachable!("unwrapped"),
                Request::CreateAssets(events) => names.assets.extend(events.iter().map(|e| e.code.as_str().to_owned())),
                Request::CreateAccounts(events) => {
                    for event in events {
                        names.accounts.insert(event.id.as_str().to_owned());
                        names.accounts.extend(event.parent.iter().map(|p| p.as_str().to_owned()));
                        names.assets.insert(event.asset.as_str().to_owned());
                    }
                }
                Request::UpdateAccounts(events) => names.accounts.extend(events.iter().map(|e| e.id.as_str().to_owned())),
                Request::RenewHolds(events) => names.holds.extend(events.iter().map(|e| e.id.as_str().to_owned())),
                Request::CreateTransfers(events) => {
                    for event in events {
                        names.transfers.insert(event.id.as_str().to_owned());
                        names.assets.extend(event.asset.iter().map(|a| a.as_str().to_owned()));
                        match &event.kind {
                            TransferKind::Direct { debit, credit, .. } | TransferKind::Pending { debit, credit, .. } => {
                                names.accounts.insert(debit.as_str().to_owned());
                                names.accounts.insert(credit.as_str().to_owned());
                            }
                            TransferKind::Post { pending_id, .. } | TransferKind::Void { pending_id, .. } => {
                                names.holds.insert(pending_id.as_str().to_owned());
                                names.with_legs.insert(pending_id.as_str().to_owned());
                                names.with_legs.insert(event.id.as_str().to_owned());
                            }
                            TransferKind::Allocate { debit, shares, .. } => {
                                names.accounts.insert(debit.as_str().to_owned());
                                names.accounts.extend(shares.iter().map(|share| share.credit.as_str().to_owned()));
                                names.with_legs.insert(event.id.as_str().to_owned());
                            }
                        }
                    }
                }
            }
        }
        names
    }
}

/// The statements a batch runs, prepared once per connection.
pub struct Statements {
    lock_accounts: Statement,
    read_accounts: Statement,
    lock_ledger: Statement,
    accounts_present: Statement,
    versions_moved: Statement,
    assets: Statement,
    transfers: Statement,
    due_holds: Statement,
    insert_assets: Statement,
    insert_accounts: Statement,
    update_accounts: Statement,
    insert_account_changes: Statement,
    insert_settings_changes: Statement,
    insert_transfers: Statement,
    resolve_holds: Statement,
    insert_expiries: Statement,
    insert_renewals: Statement,
    insert_key_runs: Statement,
    renew_holds: Statement,
    insert_batch: Statement,
    advance_ledger: Statement,
}

/// Open holds (as `t`) due at parameter `$now`, the earliest first, at most `$limit` of them
/// (the partial index `open_holds_by_expiry` serves exactly this).
pub(crate) fn due(now: usize, limit: usize) -> String {
    format!(
        "FROM tally.transfers t WHERE t.expires_at IS NOT NULL AND t.hold_state = 0 AND t.expires_at <= ${now}
         ORDER BY t.expires_at LIMIT ${limit}"
    )
}

/// Ancestors of accounts, which never change once an account exists: remembered by each
/// writer so that a batch over known accounts names them all when it locks them, and
/// PostgreSQL looks up only the ancestors of accounts it has not seen.
#[derive(Default)]
pub struct Lineages {
    known: HashMap<String, String>,
}

impl Lineages {
    fn remember(&mut self, id: &str, lineage: String) {
        if self.known.len() >= LINEAGES_MAX {
            self.known.clear();
        }
        self.known.insert(id.to_owned(), lineage);
    }
}

impl Statements {
    /// Prepares every statement, all sent at once (one round trip). On a direct connection
    /// the writer keeps them for the connection's life; through a pooler in transaction mode
    /// it prepares them inside each batch's transaction and closes them before it commits, so
    /// that none is left on a server connection another client gets next.
    pub async fn prepare(client: &impl GenericClient) -> Result<Statements, PgError> {
        let texts = [
            format!("{} FOR UPDATE OF a", touched_accounts()),
            touched_accounts(),
            LOCK_LEDGER.into(),
            ACCOUNTS_PRESENT.into(),
            VERSIONS_MOVED.into(),
            ASSETS.into(),
            format!(
                "SELECT {TRANSFER_COLUMNS} FROM tally.transfers t WHERE t.id = ANY($1::text[])
                 UNION ALL SELECT {TRANSFER_COLUMNS} FROM {}",
                legs_of(2)
            ),
            format!("SELECT {TRANSFER_COLUMNS} {}", due(1, 2)),
            INSERT_ASSETS.into(),
            INSERT_ACCOUNTS.into(),
            UPDATE_ACCOUNTS.into(),
            INSERT_ACCOUNT_CHANGES.into(),
            INSERT_SETTINGS_CHANGES.into(),
            INSERT_TRANSFERS.into(),
            RESOLVE_HOLDS.into(),
            INSERT_EXPIRIES.into(),
            INSERT_RENEWALS.into(),
            INSERT_KEY_RUNS.into(),
            RENEW_HOLDS.into(),
            INSERT_BATCH.into(),
            ADVANCE_LEDGER.into(),
        ];
        let mut prepared = try_join_all(texts.iter().map(|text| client.prepare(text))).await?.into_iter();
        let mut next = || prepared.next().expect("one statement per text");
        // In the order of `texts` (fields are initialised in the order written).
        Ok(Statements {
            lock_accounts: next(),
            read_accounts: next(),
            lock_ledger: next(),
            accounts_present: next(),
            versions_moved: next(),
            assets: next(),
            transfers: next(),
            due_holds: next(),
            insert_assets: next(),
            insert_accounts: next(),
            update_accounts: next(),
            insert_account_changes: next(),
            insert_settings_changes: next(),
            insert_transfers: next(),
            resolve_holds: next(),
            insert_expiries: next(),
            insert_renewals: next(),
            insert_key_runs: next(),
            renew_holds: next(),
            insert_batch: next(),
            advance_ledger: next(),
        })
    }
}

/// How one attempt of a batch keeps out of concurrent batches' way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attempt {
    /// As the node's strategy says.
    As(Concurrency),
    /// Take the ledger's turn first, then read the accounts without locks, at READ COMMITTED.
    /// Every batch writes accounts only while it holds the turn, so what this one reads under
    /// it cannot move: it cannot conflict with optimistic or serializable batches (none holds
    /// a row lock before its turn), at the price of holding the turn for its reads too. It is
    /// how those strategies finish a batch that keeps conflicting.
    TurnFirst,
}

/// Runs one attempt of a batch in one transaction. Any error leaves nothing applied (the
/// transaction is rolled back); `PgError::is_retryable` says whether to retry. `statements`
/// are the connection's own, or `None` to prepare them inside the transaction (through a
/// pooler in transaction mode, see `Statements::prepare`).
pub async fn run(
    client: &mut Client,
    statements: Option<&Statements>,
    lineages: &mut Lineages,
    attempt: Attempt,
    now: u64,
    requests: &[&Request],
) -> Result<BatchApplied, PgError> {
    let outcome = run_in_transaction(client, statements, lineages, attempt, now, requests).await;
    if outcome.is_err() && !client.is_closed() {
        // Whatever failed, no transaction may stay open on the connection. (If COMMIT
        // itself failed, there is none, and this only draws a warning.)
        let _ = client.batch_execute("ROLLBACK").await;
    }
    outcome
}

/// `run`, up to the commit. The transaction is opened by hand rather than with the driver's
/// `Transaction`, so that BEGIN goes out with the first statement instead of costing a round
/// trip of its own; `run` rolls it back on any error.
async fn run_in_transaction(
    client: &Client,
    statements: Option<&Statements>,
    lineages: &mut Lineages,
    attempt: Attempt,
    now: u64,
    requests: &[&Request],
) -> Result<BatchApplied, PgError> {
    let started = std::time::Instant::now();
    let names = Names::of(requests);
    let (concurrency, begin) = match attempt {
        Attempt::As(Concurrency::Serializable) => (Concurrency::Serializable, "START TRANSACTION ISOLATION LEVEL SERIALIZABLE"),
        Attempt::As(concurrency) => (concurrency, "START TRANSACTION ISOLATION LEVEL READ COMMITTED"),
        Attempt::TurnFirst => (Concurrency::Optimistic, "START TRANSACTION ISOLATION LEVEL READ COMMITTED"),
    };
    let mut begin: Option<Begin<'_>> = Some(Box::pin(async move { Ok(client.batch_execute(begin).await?) }));
    let own = match statements {
        Some(_) => None,
        None => Some(after_begin(&mut begin, Statements::prepare(client)).await?),
    };
    let statements = statements.or(own.as_ref()).expect("given or prepared");
    if attempt == Attempt::TurnFirst {
        after_begin(&mut begin, async { Ok(client.query_one(&statements.lock_ledger, &[]).await?) }).await?;
    }
    // One more than a batch loads, to learn whether more are due.
    let due = DueQuery { now: big(now), limit: DUE_HOLDS_MAX as i64 + 1 };
    let loaded = after_begin(&mut begin, load_accounts(client, statements, lineages, concurrency, &names, &due)).await?;
    let locked = started.elapsed();
    let turn = take_turn(client, statements, concurrency, &names, &loaded, &due).await?;
    let last_seq = turn.last_seq;
    let LoadedAccounts { accounts, row_ids } = loaded;
    let mut slice = slice_of(turn, accounts, &row_ids, &names)?;
    let loaded_at = started.elapsed();
    let applied = batch::apply(&mut slice, now, requests.iter().copied());
    let applied_at = started.elapsed();
    if let Some(payload) = &applied.payload {
        let record = Record { first_seq: last_seq + 1, last_seq: applied.last_seq, last_timestamp: slice.last_timestamp(), payload };
        write(client, statements, &slice, &row_ids, record).await?;
    }
    let written = started.elapsed();
    // Closed before the commit releases the server connection to whoever gets it next.
    drop(own);
    client.batch_execute("COMMIT").await?;
    let committed = started.elapsed();
    tracing::debug!(?locked, loaded = ?loaded_at, ?applied_at, ?written, ?committed, events = applied.events, "batch");
    for (phase, took) in [
        ("lock", locked),
        ("turn", loaded_at - locked),
        ("apply", applied_at - loaded_at),
        ("write", written - applied_at),
        ("commit", committed - written),
    ] {
        metrics::histogram!("tally_pg_batch_phase_seconds", "phase" => phase).record(took.as_secs_f64());
    }
    Ok(applied)
}

/// A transaction's BEGIN, not sent yet.
type Begin<'c> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), PgError>> + Send + 'c>>;

/// Runs `next`, with the transaction's BEGIN sent ahead of it in the same round trip if it
/// has not gone out yet (the connection runs them in order).
async fn after_begin<T>(begin: &mut Option<Begin<'_>>, next: impl std::future::Future<Output = Result<T, PgError>>) -> Result<T, PgError> {
    match begin.take() {
        // `try_join` polls (and so sends) BEGIN first.
        Some(begin) => Ok(futures_util::future::try_join(begin, next).await?.1),
        None => next.await,
    }
}

/// The parameters of the due-holds queries: holds due at `now`, at most `limit` of them.
struct DueQuery {
    now: i64,
    limit: i64,
}

impl DueQuery {
    fn parameters(&self) -> [&(dyn ToSql + Sync); 2] {
        [&self.now, &self.limit]
    }
}

/// The account rows a batch loaded, and each one's physical row id (`ctid`), which stays put
/// while the batch holds the row (locked, or validated under the ledger row) and lets the
/// write-back update it without another index lookup.
struct LoadedAccounts {
    accounts: Vec<AccountRow>,
    row_ids: HashMap<String, String>,
}

/// The account rows a batch touches, in id order (the `C` collation's, Rust's byte order):
/// the accounts in `$1` (those named, with the ancestors the writer knows of), and every
/// account of a hold in `$2` (or of its legs) and of the holds due at `$3` (at most `$4`),
/// with their ancestors. One statement, so finding the rows and locking them in the global
/// order is one round trip; with `FOR UPDATE` appended it locks them. Each row comes with its
/// lineage, for the writer to learn.
fn touched_accounts() -> String {
    format!(
        "WITH sides AS (
             SELECT debit, credit FROM tally.transfers WHERE id = ANY($2::text[]) AND kind = 1
             UNION ALL SELECT t.debit, t.credit FROM {legs} WHERE t.kind = 1
             UNION ALL (SELECT debit, credit {due})
         ), held AS (
             SELECT debit AS id FROM sides UNION SELECT credit FROM sides
         )
         SELECT {ACCOUNT_COLUMNS}, a.ctid::text, array_to_string(a.lineage, ' ') FROM tally.accounts a
         WHERE a.id = ANY(ARRAY(
             SELECT unnest($1::text[]) UNION SELECT id FROM held
             UNION SELECT unnest(x.lineage) FROM tally.accounts x WHERE x.id = ANY(ARRAY(SELECT id FROM held))))
         ORDER BY a.id",
        legs = legs_of(2),
        due = due(3, 4),
    )
}

/// Loads (and with `locking`, locks) every account row the batch touches, in id order. An
/// account whose ancestors the writer did not know is loaded without them: the attempt is
/// then a conflict, rolled back and run again, when the writer knows them (lineages never
/// change, so this happens once per account the writer remembers).
async fn load_accounts(
    client: &Client,
    statements: &Statements,
    lineages: &mut Lineages,
    concurrency: Concurrency,
    names: &Names,
    due: &DueQuery,
) -> Result<LoadedAccounts, PgError> {
    let select = match concurrency {
        Concurrency::Locking => &statements.lock_accounts,
        Concurrency::Optimistic | Concurrency::Serializable => &statements.read_accounts,
    };
    let account_rows = {
        let mut touched = BTreeSet::new();
        for id in &names.accounts {
            touched.insert(id.as_str());
            if let Some(lineage) = lineages.known.get(id.as_str()) {
                touched.extend(lineage.split(' ').filter(|ancestor| !ancestor.is_empty()));
            }
        }
        let touched: Vec<&str> = touched.into_iter().collect();
        let holds: Vec<&str> = names.holds.iter().map(String::as_str).collect();
        client.query(select, &[&touched, &holds, &due.now, &due.limit]).await?
    };
    let mut loaded =
        LoadedAccounts { accounts: Vec::with_capacity(account_rows.len()), row_ids: HashMap::with_capacity(account_rows.len()) };
    for row in &account_rows {
        let account = rows::account(row)?;
        loaded.row_ids.insert(account.id.as_str().to_owned(), row.try_get(ACCOUNT_COLUMN_COUNT)?);
        loaded.accounts.push(account);
    }
    // Checked against the lineages the rows came with, not the writer's memory (which may
    // forget everything while it learns these).
    let mut ancestors_missing = false;
    for (row, account) in account_rows.iter().zip(&loaded.accounts) {
        let lineage: String = row.try_get(ACCOUNT_COLUMN_COUNT + 1)?;
        ancestors_missing |= lineage.split(' ').any(|ancestor| !ancestor.is_empty() && !loaded.row_ids.contains_key(ancestor));
        if !lineages.known.contains_key(account.id.as_str()) {
            lineages.remember(account.id.as_str(), lineage);
        }
    }
    if ancestors_missing {
        return Err(PgError::Conflict("the batch met accounts whose ancestors it did not know yet (it knows them now)"));
    }
    Ok(loaded)
}

/// What a batch reads once it has the ledger's turn: where the ledger stands, and every row
/// that decides an outcome.
struct Turn {
    last_seq: u64,
    last_timestamp: u64,
    assets: Vec<tokio_postgres::Row>,
    transfers: Vec<tokio_postgres::Row>,
    due_holds: Vec<tokio_postgres::Row>,
}

/// Takes the ledger's turn and, in the same round trip, reads what decides outcomes; then
/// checks that what was read before the turn still holds.
async fn take_turn(
    client: &Client,
    statements: &Statements,
    concurrency: Concurrency,
    names: &Names,
    loaded: &LoadedAccounts,
    due: &DueQuery,
) -> Result<Turn, PgError> {
    let missing: Vec<&str> = names.accounts.iter().map(String::as_str).filter(|id| !loaded.row_ids.contains_key(*id)).collect();
    let transfer_ids: Vec<&str> = names.transfers.iter().chain(&names.holds).map(String::as_str).collect();
    let leg_owners: Vec<&str> = names.with_legs.iter().map(String::as_str).collect();
    let mut asset_codes: BTreeSet<&str> = names.assets.iter().map(String::as_str).collect();
    asset_codes.extend(loaded.accounts.iter().map(|a| a.asset.as_str()));
    let asset_codes: Vec<&str> = asset_codes.into_iter().collect();
    let asset_parameters = [&asset_codes as &(dyn ToSql + Sync)];
    let transfer_parameters = [&transfer_ids as &(dyn ToSql + Sync), &leg_owners];
    let due_parameters = due.parameters();
    // Everyone takes turns here. The reads after it are sent with it, in one round trip: the
    // connection runs them in order, so they run once this batch has its turn and see every
    // batch committed before.
    let turn = client.query_one(&statements.lock_ledger, &[]);
    let reads = async {
        tokio::try_join!(
            async {
                if missing.is_empty() {
                    return Ok(0);
                }
                Ok(client.query(&statements.accounts_present, &[&missing]).await?.len())
            },
            async {
                if concurrency != Concurrency::Optimistic || loaded.accounts.is_empty() {
                    return Ok(0);
                }
                let ids: Vec<&str> = loaded.accounts.iter().map(|a| a.id.as_str()).collect();
                let versions: Vec<i64> = loaded.accounts.iter().map(|a| big(a.version)).collect();
                client.query_one(&statements.versions_moved, &[&ids, &versions]).await?.try_get::<_, i64>(0)
            },
            client.query(&statements.assets, &asset_parameters),
            client.query(&statements.transfers, &transfer_parameters),
            client.query(&statements.due_holds, &due_parameters),
        )
    };
    // `try_join` polls (and so sends) the turn first.
    let (ledger, (appeared, moved, assets, transfers, due_holds)) = futures_util::future::try_join(turn, reads).await?;
    if appeared > 0 {
        return Err(PgError::Conflict("an account the batch names was created by another batch while it was loading"));
    }
    if moved > 0 {
        return Err(PgError::Conflict("an account changed between reading it and taking the ledger's turn"));
    }
    let (last_seq, last_timestamp) = (rows::unsigned(ledger.try_get(0)?, "seq")?, rows::unsigned(ledger.try_get(1)?, "timestamp")?);
    Ok(Turn { last_seq, last_timestamp, assets, transfers, due_holds })
}

/// The slice the batch runs on: the assets, the loaded accounts (parents first), the named
/// transfers and the due holds, each hold whose accounts this batch did not lock loaded as a
/// reference only.
fn slice_of(turn: Turn, mut accounts: Vec<AccountRow>, row_ids: &HashMap<String, String>, names: &Names) -> Result<State, PgError> {
    let mut slice = State::slice(turn.last_seq, turn.last_timestamp);
    for row in &turn.assets {
        slice.load_asset(rows::asset(row)?);
    }
    accounts.sort_by_key(|account| account.depth);
    for account in accounts {
        slice.load_account(account);
    }
    let mut loaded_transfers = BTreeSet::new();
    for row in turn.transfers.iter().chain(turn.due_holds.iter().take(DUE_HOLDS_MAX)) {
        let transfer = rows::transfer(row)?;
        if !loaded_transfers.insert(transfer.id.clone()) {
            continue;
        }
        let is_loaded = |id: &Option<Id>| id.as_ref().is_some_and(|id| row_ids.contains_key(id.as_str()));
        if transfer.is_open_hold() && !(is_loaded(&transfer.debit) && is_loaded(&transfer.credit)) {
            // Another batch created this hold after this one locked its accounts.
            let allocation = transfer.id.split_once('/').map(|(owner, _)| owner);
            if names.holds.contains(&transfer.id) || allocation.is_some_and(|owner| names.holds.contains(owner)) {
                return Err(PgError::Conflict("a hold the batch resolves was created by another batch while it was loading"));
            }
            // Its accounts are not locked, and the batch does not name it: only a resend of
            // its id can meet it.
            slice.load_reference(transfer);
        } else {
            slice.load_transfer(transfer);
        }
    }
    if let Some(first_not_loaded) = turn.due_holds.get(DUE_HOLDS_MAX) {
        // More holds are due than a batch loads: the batch stays before the first one it did
        // not load, so every hold it expires is one it loaded.
        let expires_at = rows::transfer(first_not_loaded)?.expires_at;
        slice.limit_horizon(expires_at.ok_or_else(|| PgError::Corrupt("a due hold without an expiry".into()))?);
    }
    slice.loaded();
    // Rows read from the database are outside data: one that breaks an invariant is reported,
    // never handed to the rules (which would stop the node on it).
    slice.check_invariants().map_err(|broken| PgError::Corrupt(format!("a loaded row breaks an invariant: {broken}")))?;
    Ok(slice)
}

/// The batch record and where it leaves the ledger.
struct Record<'a> {
    first_seq: u64,
    last_seq: u64,
    last_timestamp: u64,
    payload: &'a [u8],
}

/// Writes what a batch changed, its record and the ledger's new position: one statement per
/// table, all sent together.
async fn write(
    client: &Client,
    statements: &Statements,
    slice: &State,
    loaded: &HashMap<String, String>,
    record: Record<'_>,
) -> Result<(), PgError> {
    let changes = &slice.changes();
    let mut calls: Vec<Call<'_>> = Vec::new();
    account_writes(&mut calls, statements, slice, changes, loaded);
    history_writes(&mut calls, statements, changes);
    transfer_writes(&mut calls, statements, changes);
    calls.push((
        &statements.insert_batch,
        vec![Box::new(big(record.last_seq)), Box::new(big(record.first_seq)), Box::new(record.payload.to_vec())],
    ));
    calls.push((&statements.advance_ledger, vec![Box::new(big(record.last_seq)), Box::new(big(record.last_timestamp))]));
    // Sent together: the driver pipelines them on the connection, one round trip in all.
    let affected = try_join_all(calls.iter().map(|(statement, parameters)| {
        let parameters: Vec<&(dyn ToSql + Sync)> = parameters.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)).collect();
        async move { client.execute(*statement, &parameters).await }
    }))
    .await?;
    // Every statement writes exactly one row per element: anything else means a row moved
    // under the batch, and the whole transaction is abandoned.
    let expected = [
        changes.assets.len(),
        changes.created_accounts.len(),
        changes.changed_accounts.len(),
        changes.account_changes.len(),
        changes.settings_changes.len(),
        changes.transfers.len(),
        changes.resolutions.len(),
        changes.expiries.len(),
        changes.renewals.len(),
        renewed_expiries(&changes.renewals).len(),
        changes.key_runs.len(),
        1,
        1,
    ];
    let expected: Vec<usize> = expected.into_iter().filter(|&rows| rows > 0).collect();
    if expected.len() != affected.len() || expected.iter().zip(&affected).any(|(&rows, &written)| rows as u64 != written) {
        return Err(PgError::Conflict("a row the batch loaded changed before it was written back"));
    }
    Ok(())
}

/// One statement of the write-back and its parameters (arrays, one element per row).
type Call<'s> = (&'s Statement, Vec<Box<dyn ToSql + Sync + Send>>);

fn bound(value: Option<i128>) -> Option<rows::Numeric> {
    value.map(rows::Numeric)
}

/// New assets, new accounts (with the lineage core computed), and the accounts that changed.
fn account_writes<'s>(
    calls: &mut Vec<Call<'s>>,
    statements: &'s Statements,
    slice: &State,
    changes: &Changes,
    loaded: &HashMap<String, String>,
) {
    if !changes.assets.is_empty() {
        let a = &changes.assets;
        calls.push((
            &statements.insert_assets,
            vec![
                texts(a.iter().map(|x| Some(x.code.as_str().to_owned()))),
                Box::new(a.iter().map(|x| i16::from(x.scale)).collect::<Vec<_>>()),
                Box::new(a.iter().map(|x| big(x.seq)).collect::<Vec<_>>()),
                Box::new(a.iter().map(|x| big(x.timestamp)).collect::<Vec<_>>()),
            ],
        ));
    }
    if !changes.created_accounts.is_empty() {
        // Ancestors as the lineage column stores them: parent first, space-separated (ids
        // hold no spaces).
        let lineage =
            |id: &Id| slice.ancestors(id).expect("a created account is in the slice").iter().map(Id::as_str).collect::<Vec<_>>().join(" ");
        let a = &changes.created_accounts;
        calls.push((
            &statements.insert_accounts,
            vec![
                texts(a.iter().map(|x| Some(x.id.as_str().to_owned()))),
                texts(a.iter().map(|x| Some(x.asset.as_str().to_owned()))),
                texts(a.iter().map(|x| x.parent.as_ref().map(|p| p.as_str().to_owned()))),
                texts(a.iter().map(|x| Some(lineage(&x.id)))),
                Box::new(a.iter().map(|x| i16::from(x.depth)).collect::<Vec<_>>()),
                bounds(a.iter().map(|x| bound(x.settings.min_balance))),
                bounds(a.iter().map(|x| bound(x.settings.max_balance))),
                texts(a.iter().map(|x| x.settings.metadata.as_deref().map(str::to_owned))),
                Box::new(a.iter().map(|x| x.settings.closed).collect::<Vec<_>>()),
                // As created: an account changed in the batch that created it differs.
                bounds(a.iter().map(|x| bound(x.created_settings.min_balance))),
                bounds(a.iter().map(|x| bound(x.created_settings.max_balance))),
                texts(a.iter().map(|x| x.created_settings.metadata.as_deref().map(str::to_owned))),
                numerics(a.iter().map(|x| numeric(x.totals.debits_posted))),
                numerics(a.iter().map(|x| numeric(x.totals.credits_posted))),
                numerics(a.iter().map(|x| numeric(x.totals.debits_pending))),
                numerics(a.iter().map(|x| numeric(x.totals.credits_pending))),
                Box::new(a.iter().map(|x| big(x.version)).collect::<Vec<_>>()),
                Box::new(a.iter().map(|x| big(x.created_seq)).collect::<Vec<_>>()),
                Box::new(a.iter().map(|x| big(x.timestamp)).collect::<Vec<_>>()),
            ],
        ));
    }
    if !changes.changed_accounts.is_empty() {
        let a: &[AccountRow] = &changes.changed_accounts;
        calls.push((
            &statements.update_accounts,
            vec![
                texts(a.iter().map(|x| Some(loaded[x.id.as_str()].clone()))),
                bounds(a.iter().map(|x| bound(x.settings.min_balance))),
                bounds(a.iter().map(|x| bound(x.settings.max_balance))),
                texts(a.iter().map(|x| x.settings.metadata.as_deref().map(str::to_owned))),
                Box::new(a.iter().map(|x| x.settings.closed).collect::<Vec<_>>()),
                numerics(a.iter().map(|x| numeric(x.totals.debits_posted))),
                numerics(a.iter().map(|x| numeric(x.totals.credits_posted))),
                numerics(a.iter().map(|x| numeric(x.totals.debits_pending))),
                numerics(a.iter().map(|x| numeric(x.totals.credits_pending))),
                Box::new(a.iter().map(|x| big(x.version)).collect::<Vec<_>>()),
            ],
        ));
    }
}

/// The change history `as_of` reads: totals after every change, and every settings change.
fn history_writes<'s>(calls: &mut Vec<Call<'s>>, statements: &'s Statements, changes: &Changes) {
    if !changes.account_changes.is_empty() {
        // Every changed account is one the batch created or one it changed.
        let account_seqs: HashMap<&str, u64> =
            changes.created_accounts.iter().chain(&changes.changed_accounts).map(|a| (a.id.as_str(), a.created_seq)).collect();
        let c = &changes.account_changes;
        calls.push((
            &statements.insert_account_changes,
            vec![
                Box::new(c.iter().map(|x| big(account_seqs[x.account.as_str()])).collect::<Vec<_>>()),
                Box::new(c.iter().map(|x| big(x.seq)).collect::<Vec<_>>()),
                Box::new(c.iter().map(|x| big(x.version)).collect::<Vec<_>>()),
                numerics(c.iter().map(|x| numeric(x.totals.debits_posted))),
                numerics(c.iter().map(|x| numeric(x.totals.credits_posted))),
                numerics(c.iter().map(|x| numeric(x.totals.debits_pending))),
                numerics(c.iter().map(|x| numeric(x.totals.credits_pending))),
            ],
        ));
    }
    if !changes.settings_changes.is_empty() {
        let s = &changes.settings_changes;
        calls.push((
            &statements.insert_settings_changes,
            vec![
                Box::new(s.iter().map(|x| big(x.seq)).collect::<Vec<_>>()),
                texts(s.iter().map(|x| Some(x.account.as_str().to_owned()))),
                Box::new(s.iter().map(|x| big(x.timestamp)).collect::<Vec<_>>()),
                bounds(s.iter().map(|x| bound(x.settings.min_balance))),
                bounds(s.iter().map(|x| bound(x.settings.max_balance))),
                texts(s.iter().map(|x| x.settings.metadata.as_deref().map(str::to_owned))),
                Box::new(s.iter().map(|x| x.settings.closed).collect::<Vec<_>>()),
            ],
        ));
    }
}

/// New transfer records, holds that were posted or voided, and expiries.
fn transfer_writes<'s>(calls: &mut Vec<Call<'s>>, statements: &'s Statements, changes: &Changes) {
    if !changes.transfers.is_empty() {
        let t = &changes.transfers;
        calls.push((
            &statements.insert_transfers,
            vec![
                texts(t.iter().map(|x| Some(x.id.clone()))),
                Box::new(t.iter().map(|x| big(x.seq)).collect::<Vec<_>>()),
                Box::new(t.iter().map(|x| big(x.timestamp)).collect::<Vec<_>>()),
                Box::new(t.iter().map(|x| x.fingerprint as i64).collect::<Vec<_>>()),
                Box::new(t.iter().map(|x| x.result as i16).collect::<Vec<_>>()),
                Box::new(t.iter().map(|x| x.kind as i16).collect::<Vec<_>>()),
                texts(t.iter().map(|x| x.debit.as_ref().map(|a| a.as_str().to_owned()))),
                texts(t.iter().map(|x| x.credit.as_ref().map(|a| a.as_str().to_owned()))),
                numerics(t.iter().map(|x| numeric(x.amount))),
                texts(t.iter().map(|x| x.related.clone())),
                Box::new(t.iter().map(|x| x.hold_state as i16).collect::<Vec<_>>()),
                Box::new(t.iter().map(|x| x.expires_at.map(big)).collect::<Vec<_>>()),
                texts(t.iter().map(|x| x.metadata.as_deref().map(str::to_owned))),
            ],
        ));
    }
    if !changes.resolutions.is_empty() {
        let r = &changes.resolutions;
        calls.push((
            &statements.resolve_holds,
            vec![
                texts(r.iter().map(|x| Some(x.hold.clone()))),
                Box::new(r.iter().map(|x| x.state as i16).collect::<Vec<_>>()),
                texts(r.iter().map(|x| x.by.clone())),
            ],
        ));
    }
    if !changes.expiries.is_empty() {
        let e = &changes.expiries;
        calls.push((
            &statements.insert_expiries,
            vec![
                Box::new(e.iter().map(|x| big(x.seq)).collect::<Vec<_>>()),
                texts(e.iter().map(|x| Some(x.hold.clone()))),
                Box::new(e.iter().map(|x| big(x.timestamp)).collect::<Vec<_>>()),
            ],
        ));
    }
    if !changes.renewals.is_empty() {
        let r = &changes.renewals;
        calls.push((
            &statements.insert_renewals,
            vec![
                Box::new(r.iter().map(|x| big(x.seq)).collect::<Vec<_>>()),
                texts(r.iter().map(|x| Some(x.hold.clone()))),
                Box::new(r.iter().map(|x| big(x.expires_at)).collect::<Vec<_>>()),
                Box::new(r.iter().map(|x| big(x.timestamp)).collect::<Vec<_>>()),
            ],
        ));
        let last = renewed_expiries(r);
        calls.push((
            &statements.renew_holds,
            vec![texts(last.keys().map(|&hold| Some(hold.to_owned()))), Box::new(last.values().map(|&at| big(at)).collect::<Vec<_>>())],
        ));
    }
    if !changes.key_runs.is_empty() {
        let k = &changes.key_runs;
        calls.push((
            &statements.insert_key_runs,
            vec![
                Box::new(k.iter().map(|(first, _)| big(*first)).collect::<Vec<_>>()),
                texts(k.iter().map(|(_, key)| key.as_ref().map(|key| key.as_str().to_owned()))),
            ],
        ));
    }
}

/// Each renewed hold's expiry after the batch: its last renewal's (renewals are in seq order).
fn renewed_expiries(renewals: &[tally_core::Renewal]) -> std::collections::BTreeMap<&str, u64> {
    renewals.iter().map(|renewal| (renewal.hold.as_str(), renewal.expires_at)).collect()
}

fn texts(values: impl Iterator<Item = Option<String>>) -> Box<dyn ToSql + Sync + Send> {
    Box::new(values.collect::<Vec<Option<String>>>())
}

fn numerics(values: impl Iterator<Item = rows::Numeric>) -> Box<dyn ToSql + Sync + Send> {
    Box::new(values.collect::<Vec<rows::Numeric>>())
}

fn bounds(values: impl Iterator<Item = Option<rows::Numeric>>) -> Box<dyn ToSql + Sync + Send> {
    Box::new(values.collect::<Vec<Option<rows::Numeric>>>())
}

// The statements a batch runs whose text needs no column list (see `Statements::prepare`).
/// The legs (as `t`) of the ids in parameter `$n`: every id from `<id>/` up to, not including,
/// `<id>0` (`0` follows `/` in the C collation), one range of the primary key each.
fn legs_of(n: usize) -> String {
    format!(
        "unnest(${n}::text[]) AS owner(id)
         JOIN tally.transfers t ON t.id > (owner.id || '/') COLLATE \"C\" AND t.id < (owner.id || '0') COLLATE \"C\""
    )
}
const LOCK_LEDGER: &str = "SELECT last_seq, last_timestamp FROM tally.ledger FOR UPDATE";
const ACCOUNTS_PRESENT: &str = "SELECT id FROM tally.accounts WHERE id = ANY($1::text[])";
const ASSETS: &str = "SELECT code, scale, seq, timestamp FROM tally.assets WHERE code = ANY($1::text[])";
const INSERT_BATCH: &str = "INSERT INTO tally.batches (last_seq, first_seq, payload) VALUES ($1, $2, $3)";
const ADVANCE_LEDGER: &str = "UPDATE tally.ledger SET last_seq = $1, last_timestamp = $2";
const VERSIONS_MOVED: &str = "SELECT count(*) FROM tally.accounts a JOIN unnest($1::text[], $2::bigint[]) AS v(id, version)
                 ON a.id = v.id WHERE a.version <> v.version";
const INSERT_ASSETS: &str = "INSERT INTO tally.assets (code, scale, seq, timestamp)
                 SELECT * FROM unnest($1::text[], $2::smallint[], $3::bigint[], $4::bigint[])";
const INSERT_ACCOUNTS: &str = "INSERT INTO tally.accounts (id, asset, parent, lineage, depth, min_balance, max_balance, metadata,
                     closed, created_min_balance, created_max_balance, created_metadata, debits_posted, credits_posted,
                     debits_pending, credits_pending, version, created_seq, timestamp)
                 SELECT id, asset, parent, string_to_array(lineage, ' '), depth, min, max, metadata, closed,
                     created_min, created_max, created_metadata, dp, cp, dq, cq, version, seq, ts
                 FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::smallint[], $6::numeric[], $7::numeric[], $8::text[],
                     $9::boolean[], $10::numeric[], $11::numeric[], $12::text[], $13::numeric[], $14::numeric[], $15::numeric[],
                     $16::numeric[], $17::bigint[], $18::bigint[], $19::bigint[])
                     AS u(id, asset, parent, lineage, depth, min, max, metadata, closed, created_min, created_max, created_metadata,
                         dp, cp, dq, cq, version, seq, ts)";
const UPDATE_ACCOUNTS: &str = "UPDATE tally.accounts a SET min_balance = u.min, max_balance = u.max, metadata = u.metadata,
                     closed = u.closed, debits_posted = u.dp, credits_posted = u.cp, debits_pending = u.dq,
                     credits_pending = u.cq, version = u.version
                 FROM unnest($1::text[]::tid[], $2::numeric[], $3::numeric[], $4::text[], $5::boolean[], $6::numeric[],
                     $7::numeric[], $8::numeric[], $9::numeric[], $10::bigint[])
                     AS u(row_id, min, max, metadata, closed, dp, cp, dq, cq, version)
                 WHERE a.ctid = u.row_id";
const INSERT_ACCOUNT_CHANGES: &str =
    "INSERT INTO tally.account_changes (account_seq, seq, version, debits_posted, credits_posted, debits_pending,
                     credits_pending)
                 SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::numeric[], $5::numeric[], $6::numeric[],
                     $7::numeric[])";
const INSERT_SETTINGS_CHANGES: &str =
    "INSERT INTO tally.settings_changes (seq, account, timestamp, min_balance, max_balance, metadata, closed)
                 SELECT seq, account, ts, min, max, metadata, closed
                 FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::numeric[], $5::numeric[], $6::text[], $7::boolean[])
                     AS u(seq, account, ts, min, max, metadata, closed)";
const INSERT_TRANSFERS: &str = "INSERT INTO tally.transfers (id, seq, timestamp, fingerprint, result, kind, debit, credit, amount, related,
                     hold_state, expires_at, metadata)
                 SELECT id, seq, ts, fingerprint, result, kind, debit, credit, amount, related, hold_state, expires_at, metadata
                 FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::smallint[], $6::smallint[], $7::text[],
                     $8::text[], $9::numeric[], $10::text[], $11::smallint[], $12::bigint[], $13::text[])
                     AS u(id, seq, ts, fingerprint, result, kind, debit, credit, amount, related, hold_state, expires_at, metadata)";
const RESOLVE_HOLDS: &str = "UPDATE tally.transfers t SET hold_state = u.state, related = u.related
                 FROM unnest($1::text[], $2::smallint[], $3::text[]) AS u(id, state, related) WHERE t.id = u.id";
const INSERT_RENEWALS: &str = "INSERT INTO tally.renewals (seq, hold, expires_at, timestamp)
                 SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::bigint[])";
const INSERT_KEY_RUNS: &str = "INSERT INTO tally.key_runs (first_seq, key) SELECT * FROM unnest($1::bigint[], $2::text[])";
const RENEW_HOLDS: &str = "UPDATE tally.transfers t SET expires_at = u.expires_at
                 FROM unnest($1::text[], $2::bigint[]) AS u(id, expires_at) WHERE t.id = u.id";
const INSERT_EXPIRIES: &str =
    "INSERT INTO tally.expiries (seq, hold, timestamp) SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[])";
