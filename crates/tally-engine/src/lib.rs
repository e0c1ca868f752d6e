//! The embedded store: the ledger in memory, its journal and snapshots on local disk.
//!
//! The key decision: one writer thread owns all changes. Requests are linearized through the
//! bounded `tally_ledger::WriteQueue`; the writer applies a whole batch with `tally_core`,
//! appends one checksummed journal record and fsyncs once (group commit) before anyone hears
//! the result. With a single writer there are no locks to order and no deadlocks to detect,
//! and the journal is the exact order in which things happened, so recovery is a replay.

pub mod backup;
pub mod engine;
pub mod history;
pub mod journal;
pub mod keys;
pub mod snapshot;
pub mod storage;

pub use engine::{Config, Engine, OpenError, Recovery};
pub use storage::{FileStorage, Produce, Storage};
