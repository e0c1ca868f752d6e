//! Backups through the API (`POST /v1/backups`, admin): the store copies its files into a
//! directory under the server's backup root, while writes go on. One backup runs at a time;
//! it runs to the end whoever is waiting for it, so a request that gives up (or a client
//! that is killed) never leaves a backup half-written, and asking again joins the copy
//! under way.

use crate::error::ApiError;
use axum::http::StatusCode;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tally_ledger::{Backed, Ledger, LedgerError};
use tokio::sync::watch;

/// The longest backup directory name a request may give.
pub const BACKUP_NAME_BYTES_MAX: usize = 255;

type Outcome = Option<Result<Backed, LedgerError>>;

struct Job {
    to: String,
    done: watch::Receiver<Outcome>,
}

#[derive(Default)]
pub struct Backups {
    /// Where backups through the API go; `None` turns them off.
    root: Option<PathBuf>,
    /// The data directory, which no backup may go into.
    data_dir: Option<PathBuf>,
    job: Mutex<Option<Job>>,
    /// The last backup that finished, for the lag in `/metrics`.
    last: Mutex<Option<Backed>>,
}

impl Backups {
    /// `root` and `data_dir` as they are on disk (canonical), so comparing paths is enough.
    pub fn new(root: Option<PathBuf>, data_dir: Option<PathBuf>) -> Backups {
        Backups { root, data_dir, ..Backups::default() }
    }

    /// The directory a request names, under the backup root: plain names only, so a request
    /// can never reach outside it.
    fn directory(&self, to: &str) -> Result<PathBuf, ApiError> {
        let Some(root) = &self.root else {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "backups_off",
                "this server takes no backups through the API; start it with --backup-root DIR",
            ));
        };
        let plain = Path::new(to).components().all(|part| matches!(part, Component::Normal(_)));
        if to.is_empty() || to.len() > BACKUP_NAME_BYTES_MAX || !plain {
            return Err(ApiError::invalid(
                "to",
                format!("must be a relative path of plain names under the backup root, at most {BACKUP_NAME_BYTES_MAX} bytes"),
            ));
        }
        let directory = root.join(to);
        if self.data_dir.as_ref().is_some_and(|data| directory.starts_with(data)) {
            return Err(ApiError::invalid("to", "is inside the data directory: a backup must survive losing it"));
        }
        // Plain names under a canonical root stay under it, unless a link on the way leads out.
        let mut walked = root.clone();
        for part in Path::new(to).components() {
            walked.push(part);
            if std::fs::symlink_metadata(&walked).is_ok_and(|found| found.file_type().is_symlink()) {
                return Err(ApiError::invalid("to", format!("passes through the symbolic link {}", walked.display())));
            }
        }
        Ok(directory)
    }

    /// Joins the backup into `to` under way, or starts one; refuses while one runs elsewhere.
    pub fn start(self: &Arc<Self>, ledger: &Arc<dyn Ledger>, to: &str) -> Result<watch::Receiver<Outcome>, ApiError> {
        let directory = self.directory(to)?;
        let mut job = self.job.lock().expect("backup job lock");
        // A job whose task is gone without an outcome is over too.
        if let Some(running) = job.as_ref().filter(|job| job.done.borrow().is_none() && job.done.has_changed().is_ok()) {
            if running.to == to {
                return Ok(running.done.clone());
            }
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "backup_running",
                format!("a backup into {} is running; one runs at a time", running.to),
            ));
        }
        // A backup that failed after its callers stopped waiting (a 202) is told to the next
        // caller for the same directory, once, instead of being tried again unseen.
        if let Some(Job { to: failed_to, done }) = job.take() {
            if failed_to == to {
                if let Some(Err(error)) = done.borrow().clone() {
                    return Err(error.into());
                }
            }
        }
        let (sender, done) = watch::channel(None);
        let (ledger, backups) = (ledger.clone(), self.clone());
        tokio::spawn(async move {
            let outcome = ledger.backup(directory).await;
            if let Ok(backed) = &outcome {
                metrics::gauge!("tally_backup_last_seq").set(backed.last_seq as f64);
                metrics::gauge!("tally_backup_written_timestamp_seconds").set(backed.written_at_ms as f64 / 1000.0);
                *backups.last.lock().expect("last backup lock") = Some(backed.clone());
            } else if let Err(error) = &outcome {
                tracing::error!(%error, "a backup failed; its directory keeps its previous backup");
                metrics::counter!("tally_backup_failures_total").increment(1);
            }
            sender.send_replace(Some(outcome));
        });
        *job = Some(Job { to: to.to_owned(), done: done.clone() });
        Ok(done)
    }

    /// Sets the lag gauges: seqs durable but not yet in the last backup, and the age of the
    /// oldest of them (zero when the backup is current).
    pub async fn measure_lag(&self, ledger: &dyn Ledger) {
        let Some(last) = self.last.lock().expect("last backup lock").clone() else { return };
        let durable = ledger.status().durable_seq;
        metrics::gauge!("tally_backup_lag_seqs").set(durable.saturating_sub(last.last_seq) as f64);
        let oldest_missing = match ledger.journal(last.last_seq, 1, Duration::ZERO).await {
            Ok(entries) => entries.first().map(|entry| entry.timestamp()),
            Err(_) => return,
        };
        let now_ns = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
        let lag_ns = oldest_missing.map_or(0, |at| now_ns.saturating_sub(at));
        metrics::gauge!("tally_backup_lag_seconds").set(lag_ns as f64 / 1e9);
    }
}
