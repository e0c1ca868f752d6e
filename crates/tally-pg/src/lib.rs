//! The PostgreSQL store: the same ledger, kept in PostgreSQL tables, served by any number of
//! Tally nodes at once.
//!
//! Each node has one writer (like the embedded engine): it takes everything queued, up to
//! `TRANSACTION_EVENTS_MAX` events, and applies it in one transaction (`batch.rs`) with the
//! same `tally_core` rules, on a slice of the ledger holding just the rows the batch names.
//! Batches from all nodes take turns on one row (`tally.ledger`), which is what makes seqs
//! gapless and in commit order; locking the account rows first, in id order, lets the reads
//! of one batch overlap another's writes. Conflicts are retried with jittered backoff a
//! bounded number of times. Reads go to a small pool of connections. See docs/postgres.md.

pub mod batch;
pub mod keys;
pub mod offline;
pub mod read;
pub mod rows;
pub mod schema;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tally_core::limits::{
    ATTEMPTS_MAX, COMMIT_BYTES_MAX, PG_BATCH_TIMEOUT_MS, PG_CONNECT_TIMEOUT_MS, QUEUE_REQUESTS_MAX, READ_CONNECTIONS,
    TRANSACTION_EVENTS_MAX,
};
use tally_core::{AccountView, HistoryEntry, Id, JournalEntry, Request, TransferView};
use tally_ledger::{
    panic_message, system_clock, AccountQuery, Applied, Batch, Budget, Clock, Ledger, LedgerError, LedgerFuture, Status, WriteQueue,
};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::Type;
use tokio_postgres::{Client, NoTls};

/// What one transaction takes from the queue: its batch record is bounded like a journal
/// record's, and its events by `TRANSACTION_EVENTS_MAX`.
const TRANSACTION_BUDGET: Budget = Budget { bytes_max: COMMIT_BYTES_MAX, events_max: TRANSACTION_EVENTS_MAX };

/// How often an idle writer looks for holds that are due (any node may expire them).
const EXPIRY_POLL: Duration = Duration::from_millis(100);

/// How often the estimated counts in `status` are refreshed.
const COUNTS_REFRESH: Duration = Duration::from_secs(5);

/// How often a journal reader waiting for new events looks at the ledger row (commits by
/// this node wake it at once; this bounds how late it sees other nodes' commits).
const JOURNAL_POLL: Duration = Duration::from_millis(20);

/// Conflicts an optimistic or serializable batch may meet before its next attempts take the
/// ledger's turn first (`batch::Attempt::TurnFirst`), which cannot conflict: under contention
/// those strategies then converge instead of running out of attempts.
const CONFLICTS_BEFORE_TURN_FIRST: u32 = 2;

/// How the writer keeps concurrent batches (from other nodes) apart.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Concurrency {
    /// Lock every account row the batch touches with `SELECT ... FOR UPDATE`, in id order.
    #[default]
    Locking,
    /// Read account rows without locks and check their versions before writing; retry the
    /// batch if one moved.
    Optimistic,
    /// Run at SERIALIZABLE isolation without row locks; retry on serialization failures.
    Serializable,
}

impl Concurrency {
    pub const ALL: [Concurrency; 3] = [Concurrency::Locking, Concurrency::Optimistic, Concurrency::Serializable];

    pub fn name(self) -> &'static str {
        match self {
            Concurrency::Locking => "locking",
            Concurrency::Optimistic => "optimistic",
            Concurrency::Serializable => "serializable",
        }
    }
}

impl fmt::Display for Concurrency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Concurrency {
    type Err = String;
    fn from_str(text: &str) -> Result<Concurrency, String> {
        Concurrency::ALL
            .into_iter()
            .find(|c| c.name() == text)
            .ok_or_else(|| format!("{text:?} is not one of locking, optimistic, serializable"))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PgError {
    #[error("PostgreSQL: {}", described(.0))]
    Db(#[from] tokio_postgres::Error),
    #[error("connection pool: {0}")]
    Pool(String),
    #[error("PostgreSQL did not answer in time: {0}")]
    Timeout(&'static str),
    #[error("conflict with a concurrent batch: {0}")]
    Conflict(&'static str),
    #[error("the database holds data Tally does not write: {0}")]
    Corrupt(String),
    #[error("the database schema is at version {found}, newer than this build supports ({supported}): upgrade Tally")]
    SchemaTooNew { found: i32, supported: i32 },
    #[error("the database schema is at version {found}, older than this build needs ({supported}): run `tally migrate`")]
    SchemaTooOld { found: i32, supported: i32 },
    #[error("database url: {0}")]
    Url(String),
    #[error("dump: {0}")]
    Dump(String),
}

/// An error with what the server said: the driver's own text for a server error is only
/// "db error", with the message, code and detail kept apart.
fn described(error: &tokio_postgres::Error) -> String {
    let Some(db) = error.as_db_error() else { return error.to_string() };
    let mut text = match db.detail() {
        Some(detail) => format!("{} ({}; {detail})", db.message(), db.code().code()),
        None => format!("{} ({})", db.message(), db.code().code()),
    };
    // A prepared statement the server does not have, or has from someone else: the
    // connection is shared between transactions, which only a pooler does.
    if [SqlState::INVALID_SQL_STATEMENT_NAME, SqlState::DUPLICATE_PSTATEMENT].contains(db.code()) {
        text.push_str(
            ". A connection pooler in transaction mode (PgBouncer's pool_mode = transaction) seems to sit between Tally and \
             PostgreSQL: start Tally with --pg-transaction-pooler, or set the pool to pool_mode = session",
        );
    }
    text
}

/// Serialization failures and deadlocks: the transaction was rolled back and may be retried.
pub fn is_retryable(error: &tokio_postgres::Error) -> bool {
    matches!(error.code(), Some(code) if *code == SqlState::T_R_SERIALIZATION_FAILURE || *code == SqlState::T_R_DEADLOCK_DETECTED)
}

impl PgError {
    /// Whether the batch was rolled back by a conflict and may simply be run again. Unique
    /// violations count: at SERIALIZABLE isolation PostgreSQL may report a conflict between
    /// two inserts of one key that way instead of as a serialization failure.
    pub fn is_retryable(&self) -> bool {
        match self {
            PgError::Conflict(_) => true,
            PgError::Db(error) => is_retryable(error) || error.code() == Some(&SqlState::UNIQUE_VIOLATION),
            _ => false,
        }
    }

    fn reason(&self) -> &'static str {
        match self {
            PgError::Conflict(_) => "conflict",
            PgError::Db(error) if error.code() == Some(&SqlState::T_R_DEADLOCK_DETECTED) => "deadlock",
            PgError::Db(error) if error.code() == Some(&SqlState::UNIQUE_VIOLATION) => "unique_violation",
            _ => "serialization_failure",
        }
    }
}

impl From<PgError> for LedgerError {
    fn from(error: PgError) -> LedgerError {
        LedgerError::Unavailable(error.to_string())
    }
}

pub struct Config {
    /// A `postgres://` URL or a `key=value` connection string.
    pub url: String,
    pub concurrency: Concurrency,
    /// Apply pending migrations at start (otherwise the schema must be current).
    pub migrate: bool,
    pub queue_requests_max: usize,
    pub read_connections: usize,
    pub clock: Clock,
    /// Connections go through a pooler in transaction mode (PgBouncer's `pool_mode =
    /// transaction`), where consecutive transactions of one connection may run on different
    /// server connections: keep no statement on a connection outside a transaction.
    pub transaction_pooler: bool,
}

impl Config {
    pub fn new(url: impl Into<String>) -> Config {
        Config {
            url: url.into(),
            concurrency: Concurrency::default(),
            migrate: true,
            queue_requests_max: QUEUE_REQUESTS_MAX,
            read_connections: READ_CONNECTIONS,
            clock: system_clock(),
            transaction_pooler: false,
        }
    }
}

/// Reads a connection string, with `PG_CONNECT_TIMEOUT_MS` unless it sets `connect_timeout`.
pub(crate) fn connection_config(url: &str) -> Result<tokio_postgres::Config, PgError> {
    let mut config: tokio_postgres::Config = url.parse().map_err(|e: tokio_postgres::Error| PgError::Url(e.to_string()))?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_millis(PG_CONNECT_TIMEOUT_MS));
    }
    Ok(config)
}

/// Connects one client and drives its connection on the runtime.
pub async fn connect(url: &str) -> Result<Client, PgError> {
    let (client, connection) = connection_config(url)?.connect(NoTls).await?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::warn!(%error, "PostgreSQL connection ended");
        }
    });
    Ok(client)
}

/// Brings the schema at `url` to the current version (`tally migrate`).
pub async fn migrate(url: &str) -> Result<usize, PgError> {
    schema::migrate(&mut connect(url).await?).await
}

struct Shared {
    queue: WriteQueue,
    /// The highest seq this node knows is committed; readers waiting on the journal watch it.
    committed: watch::Sender<u64>,
    failure: Mutex<Option<String>>,
    accounts: AtomicU64,
    transfers: AtomicU64,
}

impl Shared {
    fn saw_committed(&self, last_seq: u64) {
        self.committed.send_if_modified(|seq| {
            let newer = last_seq > *seq;
            *seq = (*seq).max(last_seq);
            newer
        });
    }
}

/// A Tally node on PostgreSQL.
pub struct PgLedger {
    shared: Arc<Shared>,
    pool: Pool,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl PgLedger {
    /// Connects, migrates (if configured) and starts this node's writer. Must be called
    /// within a Tokio runtime, which then runs the writer.
    pub async fn start(config: Config) -> Result<PgLedger, PgError> {
        let mut client = connect(&config.url).await?;
        if config.migrate {
            schema::migrate(&mut client).await?;
        } else {
            schema::check_version(&client).await?;
        }
        let statements = prepare_for_connection(&client, config.transaction_pooler).await?;
        let last_seq = read::last_seq(&client).await?;
        let manager =
            Manager::from_config(connection_config(&config.url)?, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        // A read waits for a connection, or for one to be made, no longer than a connection
        // attempt may take: with the database away, reads fail promptly too.
        let connect_timeout = Some(Duration::from_millis(PG_CONNECT_TIMEOUT_MS));
        let pool = Pool::builder(manager)
            .max_size(config.read_connections.max(1))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(connect_timeout)
            .create_timeout(connect_timeout)
            .build()
            .map_err(|e| PgError::Pool(e.to_string()))?;
        let shared = Arc::new(Shared {
            queue: WriteQueue::new(config.queue_requests_max),
            committed: watch::Sender::new(last_seq),
            failure: Mutex::new(None),
            accounts: AtomicU64::new(0),
            transfers: AtomicU64::new(0),
        });
        let writer = Writer {
            shared: shared.clone(),
            client,
            statements,
            lineages: batch::Lineages::default(),
            url: config.url,
            concurrency: config.concurrency,
            clock: config.clock,
            transaction_pooler: config.transaction_pooler,
            replace_connection: false,
        };
        let handle = tokio::spawn(supervise(tokio::spawn(writer.run()), shared.clone()));
        tokio::spawn(refresh_counts(pool.clone(), shared.clone()));
        Ok(PgLedger { shared, pool, writer: Mutex::new(Some(handle)) })
    }

    /// Stops taking requests, lets the writer finish what is queued, and waits for it.
    pub async fn shutdown(&self) {
        self.shared.queue.close();
        let handle = self.writer.lock().expect("writer lock").take();
        if let Some(handle) = handle {
            let _ = handle.await;
        }
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, LedgerError> {
        // A node whose writer died answers nothing, reads included: it must be restarted.
        if let Some(failure) = self.shared.queue.failure() {
            return Err(failure);
        }
        self.pool.get().await.map_err(|error| LedgerError::Unavailable(format!("no database connection: {error}")))
    }
}

/// Waits for the writer task. Release builds abort on any panic; where a panic unwinds, the
/// node is marked failed instead of queueing requests that no writer will ever take.
async fn supervise(writer: JoinHandle<()>, shared: Arc<Shared>) {
    if let Err(error) = writer.await {
        let reason = match error.try_into_panic() {
            Ok(panic) => format!("the writer panicked: {}", panic_message(panic.as_ref())),
            Err(error) => format!("the writer stopped: {error}"),
        };
        tracing::error!(%reason, "the node stops taking writes; restart it");
        *shared.failure.lock().expect("failure lock") = Some(reason.clone());
        shared.queue.fail(LedgerError::Failed(reason));
    }
}

/// Keeps the account and transfer counts `status` reports fresh, while the node runs. They
/// are PostgreSQL's estimates: exact counts would scan the tables.
async fn refresh_counts(pool: Pool, shared: Arc<Shared>) {
    let sql = "SELECT relname::text, greatest(reltuples, 0)::bigint FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = 'tally' AND relname IN ('accounts', 'transfers')";
    while !shared.queue.is_closed() {
        if let Ok(client) = pool.get().await {
            for row in client.query_typed(sql, &[]).await.unwrap_or_default() {
                let (Ok(table), Ok(count)) = (row.try_get::<_, &str>(0), row.try_get::<_, i64>(1)) else { continue };
                let count = count.max(0) as u64;
                match table {
                    "accounts" => shared.accounts.store(count, Ordering::Relaxed),
                    _ => shared.transfers.store(count, Ordering::Relaxed),
                }
            }
        }
        tokio::time::sleep(COUNTS_REFRESH).await;
    }
}

impl Drop for PgLedger {
    fn drop(&mut self) {
        self.shared.queue.close();
    }
}

impl Ledger for PgLedger {
    fn submit_by(&self, request: Request, deadline: Instant) -> LedgerFuture<'_, Applied> {
        Box::pin(self.shared.queue.submit(request, deadline))
    }

    fn account(&self, id: Id, as_of: Option<u64>) -> LedgerFuture<'_, Option<AccountView>> {
        Box::pin(async move {
            let client = self.client().await?;
            match as_of {
                None => Ok(read::account(&**client, &id).await?),
                Some(seq) => {
                    let latest = read::last_seq(&**client).await?;
                    if seq > latest {
                        return Err(LedgerError::AsOfAhead { as_of: seq, latest });
                    }
                    Ok(read::account_as_of(&**client, &id, seq).await?)
                }
            }
        })
    }

    fn accounts(&self, query: AccountQuery) -> LedgerFuture<'_, Option<Vec<AccountView>>> {
        Box::pin(async move {
            let client = self.client().await?;
            Ok(read::accounts(&**client, &query.prefix, &query.under, query.after.as_ref(), query.limit).await?)
        })
    }

    fn transfer(&self, id: Id) -> LedgerFuture<'_, Option<TransferView>> {
        Box::pin(async move { Ok(read::transfer(&**self.client().await?, id.as_str()).await?) })
    }

    fn account_transfers(&self, id: Id, after_seq: u64, limit: usize) -> LedgerFuture<'_, Option<Vec<TransferView>>> {
        Box::pin(async move { Ok(read::account_transfers(&**self.client().await?, &id, after_seq, limit).await?) })
    }

    fn account_history(&self, id: Id, after_seq: u64, limit: usize) -> LedgerFuture<'_, Option<Vec<HistoryEntry>>> {
        Box::pin(async move { Ok(read::account_history(&**self.client().await?, &id, after_seq, limit).await?) })
    }

    fn expiring_holds(&self, after: Option<(u64, u64)>, limit: usize) -> LedgerFuture<'_, Vec<TransferView>> {
        Box::pin(async move { Ok(read::expiring_holds(&**self.client().await?, after, limit).await?) })
    }

    fn journal(&self, after_seq: u64, limit: usize, wait: Duration) -> LedgerFuture<'_, Vec<JournalEntry>> {
        Box::pin(async move {
            let deadline = Instant::now() + wait;
            let mut committed = self.shared.committed.subscribe();
            // Long poll, bounded by `wait`: this node's commits wake it at once, other nodes'
            // are seen within `JOURNAL_POLL`. A connection is held only to look, never while
            // waiting, so long polls cannot take the read connections from everyone else.
            let until = loop {
                let latest = read::last_seq(&**self.client().await?).await?;
                let left = deadline.saturating_duration_since(Instant::now());
                if latest > after_seq || left.is_zero() {
                    break latest;
                }
                let _ = tokio::time::timeout(left.min(JOURNAL_POLL), committed.changed()).await;
            };
            Ok(read::journal(&**self.client().await?, after_seq, until, limit).await?)
        })
    }

    fn key_runs(&self, from: u64, to: u64) -> LedgerFuture<'_, Vec<(u64, Option<Id>)>> {
        Box::pin(async move { Ok(read::key_runs(&**self.client().await?, from, to).await?) })
    }

    fn status(&self) -> Status {
        let last_seq = *self.shared.committed.borrow();
        Status {
            last_seq,
            durable_seq: last_seq,
            failure: self
                .shared
                .failure
                .lock()
                .expect("failure lock")
                .clone()
                .or_else(|| self.shared.queue.failure().map(|e| e.to_string())),
            queue_depth: self.shared.queue.depth(),
            writer_busy: self.shared.queue.writer_busy_for(),
            accounts: self.shared.accounts.load(Ordering::Relaxed) as usize,
            transfers: self.shared.transfers.load(Ordering::Relaxed) as usize,
            counts_estimated: true,
            commits: self.shared.queue.commit_totals(),
        }
    }
}

struct Writer {
    shared: Arc<Shared>,
    client: Client,
    /// Kept for the connection's life; `None` through a transaction pooler (each batch
    /// prepares its own).
    statements: Option<batch::Statements>,
    lineages: batch::Lineages,
    url: String,
    concurrency: Concurrency,
    clock: Clock,
    transaction_pooler: bool,
    /// The connection must be replaced although it is open (a batch on it timed out).
    replace_connection: bool,
}

impl Writer {
    async fn run(mut self) {
        loop {
            let batch = self.shared.queue.take(EXPIRY_POLL, TRANSACTION_BUDGET).await;
            let closed = batch.closed;
            if !batch.jobs.is_empty() || self.holds_due().await {
                self.commit(batch).await;
            }
            if closed {
                return;
            }
        }
    }

    /// Whether any hold is due to expire (cheap: the partial index of open holds). Also
    /// learns the ledger's last seq, so that this node's status and journal readers follow
    /// what other nodes commit.
    async fn holds_due(&mut self) -> bool {
        let now = rows::big((self.clock)());
        let sql = format!("SELECT last_seq, EXISTS (SELECT 1 {}) FROM tally.ledger", batch::due(1, 2));
        let looked = async {
            let row = self.client.query_typed_one(&sql, &[(&now, Type::INT8), (&1i64, Type::INT8)]).await?;
            Ok::<_, PgError>((rows::unsigned(row.try_get(0)?, "seq")?, row.try_get::<_, bool>(1)?))
        };
        match tokio::time::timeout(Duration::from_millis(PG_BATCH_TIMEOUT_MS), looked).await {
            Ok(Ok((last_seq, due))) => {
                self.shared.saw_committed(last_seq);
                due
            }
            Ok(Err(error)) => {
                tracing::warn!(%error, "could not look for due holds");
                self.reconnect().await;
                false
            }
            Err(_) => {
                tracing::warn!("looking for due holds took too long; replacing the connection");
                self.abandon_connection();
                self.reconnect().await;
                false
            }
        }
    }

    /// Gives up on a connection whose statement hangs: asks the server to cancel it (so the
    /// transaction ends, rolled back unless its COMMIT was already received, and its locks go)
    /// and has `reconnect` replace the connection, perhaps by another host of the string.
    fn abandon_connection(&mut self) {
        let cancel = self.client.cancel_token();
        tokio::spawn(async move {
            let asked = tokio::time::timeout(Duration::from_millis(PG_CONNECT_TIMEOUT_MS), cancel.cancel_query(NoTls)).await;
            let failure = match asked {
                Ok(Ok(())) => return,
                Ok(Err(error)) => error.to_string(),
                Err(_) => "no answer in time".to_owned(),
            };
            tracing::warn!(%failure, "could not ask PostgreSQL to cancel the abandoned statement");
        });
        self.replace_connection = true;
    }

    async fn commit(&mut self, batch: Batch) {
        let requests: Vec<&Request> = batch.requests().collect();
        let mut attempt = 0;
        let outcome = loop {
            attempt += 1;
            let now = (self.clock)();
            let timeout = Duration::from_millis(PG_BATCH_TIMEOUT_MS);
            let how = match self.concurrency {
                Concurrency::Optimistic | Concurrency::Serializable if attempt > CONFLICTS_BEFORE_TURN_FIRST => batch::Attempt::TurnFirst,
                concurrency => batch::Attempt::As(concurrency),
            };
            let ran = batch::run(&mut self.client, self.statements.as_ref(), &mut self.lineages, how, now, &requests);
            match tokio::time::timeout(timeout, ran).await {
                Ok(Ok(committed)) => break Ok(committed),
                Ok(Err(error)) if error.is_retryable() && attempt < ATTEMPTS_MAX => {
                    metrics::counter!("tally_pg_retries_total", "reason" => error.reason()).increment(1);
                    tokio::time::sleep(backoff(attempt)).await;
                }
                Ok(Err(error)) if error.is_retryable() => {
                    metrics::counter!("tally_pg_gave_up_total").increment(1);
                    break Err(LedgerError::Unavailable(format!(
                        "gave up after {attempt} attempts that conflicted with concurrent batches ({error}); nothing was applied, retry"
                    )));
                }
                Ok(Err(error)) => {
                    tracing::warn!(%error, "batch failed");
                    // The connection may have failed after COMMIT was sent.
                    break Err(LedgerError::OutcomeUnknown(format!("the batch failed: {error}")));
                }
                Err(_) => {
                    tracing::warn!(seconds = timeout.as_secs(), "batch took too long; cancelling it and replacing the connection");
                    self.abandon_connection();
                    break Err(LedgerError::OutcomeUnknown(format!("the batch did not finish within {} s", timeout.as_secs())));
                }
            }
        };
        match outcome {
            Ok(committed) => {
                if committed.events > 0 {
                    metrics::histogram!("tally_pg_attempts").record(f64::from(attempt));
                }
                // Answers first: the journal's long polls wake on `committed`, and waking
                // hundreds of them must not delay the answers (the rows are committed, so
                // a client that reads after its answer finds them either way).
                batch.answer(committed.answers);
                self.shared.saw_committed(committed.last_seq);
            }
            Err(error) => {
                // Answered before reconnecting: however long the database is away, the
                // requests it had hear at once that their outcome is unknown.
                batch.fail(&error);
                self.reconnect().await;
            }
        }
    }

    /// Replaces a broken connection, retrying until it works or the node stops. Meanwhile
    /// every write is answered at once with `unavailable` (nothing applied), and each failed
    /// attempt is logged.
    async fn reconnect(&mut self) {
        if !self.client.is_closed() && !self.replace_connection {
            return;
        }
        let lost = Instant::now();
        // Refused from now on, not only after a failed attempt: one attempt may take up to
        // `PG_CONNECT_TIMEOUT_MS` on a host that does not answer.
        self.shared.queue.suspend(LedgerError::Unavailable(
            "the connection to PostgreSQL was lost and the node is reconnecting; nothing was applied, retry".into(),
        ));
        let mut attempt = 0;
        loop {
            attempt += 1;
            let connected = async {
                let client = connect(&self.url).await?;
                let statements = prepare_for_connection(&client, self.transaction_pooler).await?;
                Ok::<_, PgError>((client, statements))
            };
            // Connecting is bounded by its own timeout; preparing on a server that stops
            // answering is bounded here.
            let connected = tokio::time::timeout(Duration::from_millis(PG_BATCH_TIMEOUT_MS), connected)
                .await
                .unwrap_or_else(|_| Err(PgError::Timeout("connecting and preparing statements")));
            match connected {
                Ok((client, statements)) => {
                    self.client = client;
                    self.statements = statements;
                    self.replace_connection = false;
                    *self.shared.failure.lock().expect("failure lock") = None;
                    self.shared.queue.resume();
                    // A warning too: it closes what the warnings about failed attempts opened.
                    tracing::warn!(attempts = attempt, seconds = lost.elapsed().as_secs_f64(), "connected to PostgreSQL again");
                    return;
                }
                Err(error) => {
                    tracing::warn!(attempt, %error, "cannot connect to a writable PostgreSQL server; writes are refused meanwhile");
                    let reason = format!("no connection to a writable PostgreSQL server: {error}");
                    *self.shared.failure.lock().expect("failure lock") = Some(reason.clone());
                    self.shared.queue.suspend(LedgerError::Unavailable(format!("{reason}; nothing was applied, retry")));
                    if self.shared.queue.is_closed() {
                        return;
                    }
                    tokio::time::sleep(backoff(attempt.min(ATTEMPTS_MAX))).await;
                }
            }
        }
    }
}

/// The statements a writer keeps on its connection: all of them, or none through a
/// transaction pooler.
async fn prepare_for_connection(client: &Client, transaction_pooler: bool) -> Result<Option<batch::Statements>, PgError> {
    if transaction_pooler {
        return Ok(None);
    }
    Ok(Some(batch::Statements::prepare(client).await?))
}

/// Exponential backoff from 1 ms to 256 ms with full jitter, so that batches that conflicted
/// do not meet again in lockstep.
fn backoff(attempt: u32) -> Duration {
    let ceiling_us = 1_000u64 << attempt.min(8);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    // A cheap mix of the clock's low bits: jitter needs spread, not cryptographic quality.
    let mixed = u64::from(nanos).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32;
    Duration::from_micros(ceiling_us / 2 + mixed % (ceiling_us / 2 + 1))
}
