//! The ledger contract every store offers the server, and the parts both stores share.
//!
//! The key decision: a store is anything that implements `Ledger` by running the batch step
//! of `tally_core` on what a single writer takes from a `WriteQueue`. The server and the
//! tools depend on this crate and on no store, so the embedded engine and the PostgreSQL
//! store are interchangeable behind it, and neither can grow a rule or a queue of its own.
//!
//! - `Ledger`, its errors and the values it returns;
//! - `queue`: the bounded write queue in front of a writer, and how a writer takes a batch
//!   from it and answers it;
//! - `dump`: the format that moves a ledger between stores (`tally export` / `tally import`).

pub mod dump;
pub mod frame;
pub mod keys;
pub mod queue;

pub use queue::{Batch, Budget, CommitTotals, Job, WriteQueue};

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tally_core::memory::MemoryUse;
use tally_core::{AccountView, HistoryEntry, Id, JournalEntry, Outcome, Request, TransferView, Under};

/// A deadline far enough away to mean "until answered" (a year).
const WAIT_FOREVER: Duration = Duration::from_secs(365 * 24 * 3600);

pub type LedgerFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, LedgerError>> + Send + 'a>>;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    #[error("the write queue is full; nothing was applied, retry later")]
    QueueFull,
    #[error("the ledger is shutting down; nothing was applied")]
    ShuttingDown,
    #[error("the ledger stopped after a failure ({0}); nothing more is applied until it restarts")]
    Failed(String),
    #[error("as_of {as_of} is after the latest committed seq {latest}")]
    AsOfAhead { as_of: u64, latest: u64 },
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    #[error("the request waited too long for the writer and was withdrawn; nothing was applied, retry later")]
    Withdrawn,
    /// The writer had the request when something went wrong: it may have been applied.
    #[error("{0}; the request may have been applied: resend it with the same ids (an id is applied at most once)")]
    OutcomeUnknown(String),
    #[error("{0}")]
    Unsupported(String),
    /// A backup's destination is not one to write into (another ledger's, not empty, busy).
    #[error("{0}")]
    BackupRefused(String),
    /// Copying failed part-way; the destination still holds the backup it held before.
    #[error("the backup failed: {0}; the destination still holds its previous backup")]
    BackupFailed(String),
}

/// What one backup copied, and the journal position the backup now ends at.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Backed {
    /// The last journal record the backup holds, and the last seq in it.
    pub record: u64,
    pub last_seq: u64,
    pub files_copied: usize,
    pub bytes_copied: u64,
    /// When the backup's manifest was written, in milliseconds since the Unix epoch.
    pub written_at_ms: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccountQuery {
    pub prefix: String,
    pub under: Under,
    pub after: Option<Id>,
    pub limit: usize,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Status {
    pub last_seq: u64,
    pub durable_seq: u64,
    pub failure: Option<String>,
    pub queue_depth: usize,
    /// How long the writer has held the batch it is committing (zero when idle).
    pub writer_busy: Duration,
    pub accounts: usize,
    pub transfers: usize,
    /// The counts are the store's cheap estimates, not exact (PostgreSQL's planner statistics).
    pub counts_estimated: bool,
    /// The writer's commits since this process started.
    pub commits: CommitTotals,
}

/// A request and its outcomes, one per event in order. The request comes back so callers
/// can name each result without copying ids before submitting.
#[derive(Debug)]
pub struct Applied {
    pub request: Request,
    pub outcomes: Vec<Outcome>,
}

/// What the server needs from a store. Every store runs the same `tally_core` rules, so they
/// answer every call identically.
pub trait Ledger: Send + Sync + 'static {
    /// Applies a request; resolves once its outcomes are durable, or at `deadline` with
    /// `Withdrawn` (nothing applied) or `OutcomeUnknown` (the writer had it).
    fn submit_by(&self, request: Request, deadline: Instant) -> LedgerFuture<'_, Applied>;
    /// `submit_by` with no deadline a caller would notice.
    fn submit(&self, request: Request) -> LedgerFuture<'_, Applied> {
        self.submit_by(request, Instant::now() + WAIT_FOREVER)
    }
    /// The account now, or right after journal position `as_of`.
    fn account(&self, id: Id, as_of: Option<u64>) -> LedgerFuture<'_, Option<AccountView>>;
    /// A page of accounts; `None` if the named parent does not exist.
    fn accounts(&self, query: AccountQuery) -> LedgerFuture<'_, Option<Vec<AccountView>>>;
    fn transfer(&self, id: Id) -> LedgerFuture<'_, Option<TransferView>>;
    fn account_transfers(&self, id: Id, after_seq: u64, limit: usize) -> LedgerFuture<'_, Option<Vec<TransferView>>>;
    /// The changes to an account after `after_seq`, each with its totals right after it;
    /// `None` if there is no such account.
    fn account_history(&self, id: Id, after_seq: u64, limit: usize) -> LedgerFuture<'_, Option<Vec<HistoryEntry>>>;
    /// Open holds that expire, soonest first (ties in seq order), after the one that expires
    /// at `after.0` with seq `after.1`.
    fn expiring_holds(&self, after: Option<(u64, u64)>, limit: usize) -> LedgerFuture<'_, Vec<TransferView>>;
    /// Committed journal entries after `after_seq`, waiting up to `wait` for the first.
    fn journal(&self, after_seq: u64, limit: usize, wait: Duration) -> LedgerFuture<'_, Vec<JournalEntry>>;
    /// Which API keys made the entries from `from` to `to`: runs of seqs, each with its key
    /// (`None`: no key), the first being the one `from` falls in.
    fn key_runs(&self, from: u64, to: u64) -> LedgerFuture<'_, Vec<(u64, Option<Id>)>>;
    fn status(&self) -> Status;
    /// The memory the store holds, part by part; `None` for a store whose data lives
    /// elsewhere (a database). Walks the whole state: for a metrics scrape, not a request.
    fn memory(&self) -> Option<MemoryUse> {
        None
    }
    /// Brings the backup in directory `to` up to the last durable commit, while writes go on.
    /// A store kept in a database is backed up with the database's own tools instead.
    fn backup(&self, to: PathBuf) -> LedgerFuture<'_, Backed> {
        let _ = to;
        Box::pin(async {
            Err(LedgerError::Unsupported(
                "this store is backed up with its database's own tools (see docs/operations.md), not through Tally".into(),
            ))
        })
    }
}

/// Where a writer reads the time, in nanoseconds since the Unix epoch. Tests and the
/// simulator plug in their own; the state machine keeps timestamps strictly increasing
/// whatever the clock does.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

pub fn system_clock() -> Clock {
    Arc::new(|| SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64))
}

/// What a panic carried, for the failure a supervisor reports.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}
