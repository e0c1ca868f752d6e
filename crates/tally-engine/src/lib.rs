//! The embedded store, and the `Ledger` interface every store offers the server.
//!
//! The key decision: one writer thread owns all changes. Requests are linearized through a
//! bounded queue; the writer applies a whole queue's worth with `tally_core`, appends one
//! checksummed journal record and fsyncs once (group commit) before anyone hears the result.
//! With a single writer there are no locks to order and no deadlocks to detect, and the
//! journal is the exact order in which things happened, so recovery is a replay.

pub mod commit;
pub mod dump;
pub mod engine;
pub mod journal;
pub mod snapshot;
pub mod storage;

pub use engine::{Config, Engine, OpenError, Recovery};
pub use storage::{FileStorage, Produce, Storage};

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;
use tally_core::{AccountView, Id, JournalEntry, Outcome, Request, TransferView};

pub type LedgerFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, LedgerError>> + Send + 'a>>;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    #[error("the write queue is full; nothing was applied, retry later")]
    QueueFull,
    #[error("the ledger is shutting down; nothing was applied")]
    ShuttingDown,
    #[error("the ledger stopped after a storage failure ({0}); nothing more is applied until it restarts")]
    Failed(String),
    #[error("as_of {as_of} is after the latest committed seq {latest}")]
    AsOfAhead { as_of: u64, latest: u64 },
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccountQuery {
    pub prefix: String,
    pub parent: Option<Id>,
    pub after: Option<Id>,
    pub limit: usize,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Status {
    pub last_seq: u64,
    pub durable_seq: u64,
    pub failure: Option<String>,
    pub queue_depth: usize,
    pub accounts: usize,
    pub transfers: usize,
}

/// A request and its outcomes, one per event in order. The request comes back so callers
/// can name each result without copying ids before submitting.
#[derive(Debug)]
pub struct Applied {
    pub request: Request,
    pub outcomes: Vec<Outcome>,
}

/// What the server needs from a store. Both stores run the same `tally_core` rules, so they
/// answer every call identically.
pub trait Ledger: Send + Sync + 'static {
    /// Applies a request; resolves once its outcomes are durable.
    fn submit(&self, request: Request) -> LedgerFuture<'_, Applied>;
    /// The account now, or right after journal position `as_of`.
    fn account(&self, id: Id, as_of: Option<u64>) -> LedgerFuture<'_, Option<AccountView>>;
    /// A page of accounts; `None` if the named parent does not exist.
    fn accounts(&self, query: AccountQuery) -> LedgerFuture<'_, Option<Vec<AccountView>>>;
    fn transfer(&self, id: Id) -> LedgerFuture<'_, Option<TransferView>>;
    fn account_transfers(&self, id: Id, after_seq: u64, limit: usize) -> LedgerFuture<'_, Option<Vec<TransferView>>>;
    /// Committed journal entries after `after_seq`, waiting up to `wait` for the first.
    fn journal(&self, after_seq: u64, limit: usize, wait: Duration) -> LedgerFuture<'_, Vec<JournalEntry>>;
    fn status(&self) -> Status;
}
