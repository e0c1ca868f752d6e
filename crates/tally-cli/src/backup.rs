//! `tally backup` and `tally restore`. A backup is taken through a running server (`--url`,
//! admin key; the server writes under its `--backup-root`, on its own host), optionally kept
//! current (`--follow`), or from a stopped ledger's data directory (`--data-dir`). A restore
//! rebuilds a new data directory from a backup, up to any commit it holds.

use crate::remote;
use anyhow::{bail, Context};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tally_api::{BackupInput, BackupStatus};
use tally_client::{Client, ClientError};
use tally_core::limits::{BACKUP_FOLLOW_INTERVAL_MS, BACKUP_WAIT_MS_MAX};
use tally_engine::backup::{self, Destination, Until};
use tally_engine::engine::lock_directory;
use tally_engine::journal::{Journal, JournalError, Position};
use tally_engine::FileStorage;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

#[derive(clap::Args)]
pub struct Args {
    /// The backup directory: on the server's host under its --backup-root with --url, here
    /// with --data-dir. An empty directory, or an earlier backup of the same ledger (only
    /// what is new is copied).
    #[arg(long, value_name = "DIR")]
    pub to: String,
    /// Back up the running server at this URL (an admin key in TALLY_API_KEY).
    #[arg(long, conflicts_with = "data_dir")]
    pub url: Option<String>,
    /// Back up a stopped ledger's data directory instead.
    #[arg(long, env = "TALLY_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Keep the backup current until stopped: each commit is copied seconds after it is made.
    #[arg(long, requires = "url")]
    pub follow: bool,
}

#[derive(clap::Args)]
pub struct RestoreArgs {
    /// The backup to restore from.
    #[arg(long, value_name = "DIR")]
    pub from: PathBuf,
    /// The new data directory to write (it must not exist, or be empty).
    #[arg(long, value_name = "DIR")]
    pub data_dir: PathBuf,
    /// Restore to the last commit whose seqs are all at or before this one.
    #[arg(long, conflicts_with = "until_time", value_name = "SEQ")]
    pub until_seq: Option<u64>,
    /// Restore to the last commit whose events are all stamped at or before this time
    /// (RFC 3339, such as 2026-11-30T14:05:00Z).
    #[arg(long, value_parser = parse_time, value_name = "TIME")]
    pub until_time: Option<u64>,
}

fn parse_time(text: &str) -> Result<u64, String> {
    let time = OffsetDateTime::parse(text, &Rfc3339).map_err(|e| format!("{text:?} is not an RFC 3339 time ({e})"))?;
    u64::try_from(time.unix_timestamp_nanos()).map_err(|_| format!("{text:?} is before 1970"))
}

fn shown_time(nanos: u64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(nanos))
        .ok()
        .and_then(|time| time.format(&Rfc3339).ok())
        .unwrap_or_else(|| nanos.to_string())
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

pub fn run(args: Args) -> anyhow::Result<()> {
    match (&args.url, &args.data_dir) {
        (Some(url), _) => {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(through_server(remote::client(url)?, &args.to, args.follow))
        }
        (None, Some(data_dir)) => from_data_dir(data_dir, Path::new(&args.to)),
        (None, None) => bail!("say what to back up: --url of a running server, or --data-dir of a stopped ledger"),
    }
}

/// A stopped ledger: its lock taken, its whole journal read (every checksum) to find where it
/// ends, and copied up to there.
fn from_data_dir(data_dir: &Path, to: &Path) -> anyhow::Result<()> {
    if !data_dir.is_dir() {
        bail!("{} is not a data directory", data_dir.display());
    }
    let _lock = lock_directory(data_dir)
        .map_err(|error| anyhow::anyhow!("{error}; back a running ledger up through its server: tally backup --url URL --to DIR"))?;
    let mut storage = FileStorage::open(data_dir).with_context(|| format!("opening {}", data_dir.display()))?;
    let journal = Journal::recover(&mut storage, Position::default(), false, |_| Ok::<(), JournalError>(()), |_, _| {})?;
    if journal.torn_bytes() > 0 {
        eprintln!("note: the journal ends in a torn record of {} bytes, never acknowledged; it is not copied", journal.torn_bytes());
    }
    let backed = Destination::open(to, None)?.take(&storage, &journal.tip(), now_ms())?;
    println!(
        "backed up to seq {} (record {}) in {}: {} files, {} bytes copied",
        backed.last_seq,
        backed.record,
        to.display(),
        backed.files_copied,
        backed.bytes_copied
    );
    Ok(())
}

/// Whether a failed request is worth repeating: the server unreachable, restarting or busy.
fn passing(error: &ClientError) -> bool {
    match error {
        // Busy, restarting, or taking another backup (one runs at a time).
        ClientError::Api { status, .. } if *status == 409 => error.code() == Some("backup_running"),
        ClientError::Api { status, .. } => *status == 503 || *status == 504 || *status == 429,
        ClientError::Decode { .. } | ClientError::Setup(_) => false,
        _ => true,
    }
}

async fn through_server(client: Client, to: &str, follow: bool) -> anyhow::Result<()> {
    // Everything acknowledged before now must be in the backup: asking until the backup
    // reaches the durable seq read first covers a copy already running when we asked.
    let reach = client.health().await.map(|health| health.durable_seq).ok();
    let mut extra_round = reach.is_none();
    let mut after_seq = None;
    let mut pause = Duration::from_millis(250);
    let mut next_copy = tokio::time::Instant::now();
    loop {
        tokio::time::sleep_until(next_copy).await;
        next_copy = tokio::time::Instant::now() + Duration::from_millis(BACKUP_FOLLOW_INTERVAL_MS);
        let input = BackupInput { to: Some(to.to_owned()), after_seq, wait_ms: after_seq.map(|_| BACKUP_WAIT_MS_MAX) };
        let status = match client.backup(&input).await {
            Ok(status) => status,
            Err(error) if follow && passing(&error) => {
                eprintln!("note: {error}; trying again in {} ms", pause.as_millis());
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(30));
                continue;
            }
            Err(error) => return Err(error.into()),
        };
        pause = Duration::from_millis(250);
        let BackupStatus { state, last_seq: Some(last_seq), .. } = &status else { continue };
        if state != "done" {
            continue;
        }
        if follow {
            println!("{} backed up to seq {last_seq}: {} bytes copied", shown_time(now_ms() * 1_000_000), status.bytes_copied.unwrap_or(0));
            after_seq = Some(*last_seq);
            continue;
        }
        if extra_round {
            // No health to read (served on another address): one more copy, begun after
            // this one ended, holds everything acknowledged before we asked.
            extra_round = false;
            continue;
        }
        if reach.is_some_and(|seq| *last_seq < seq) {
            continue;
        }
        println!(
            "backed up to seq {last_seq} (record {}) in {to} under the server's backup root: {} files, {} bytes copied",
            status.record.unwrap_or(0),
            status.files_copied.unwrap_or(0),
            status.bytes_copied.unwrap_or(0)
        );
        return Ok(());
    }
}

pub fn restore(args: RestoreArgs) -> anyhow::Result<()> {
    let until = match (args.until_seq, args.until_time) {
        (Some(seq), _) => Until::Seq(seq),
        (None, Some(time)) => Until::Time(time),
        (None, None) => Until::End,
    };
    let checked = backup::check(&args.from).map_err(anyhow::Error::msg)?;
    for note in &checked.notes {
        eprintln!("note: {note}");
    }
    let restored = backup::restore(checked, &args.data_dir, until).map_err(anyhow::Error::msg)?;
    let position = restored.position;
    println!(
        "restored seq {} (record {}, last event {}) into {}",
        position.last_seq,
        position.record,
        shown_time(restored.last_timestamp),
        args.data_dir.display()
    );
    println!("    from the snapshot after record {}, replaying {} records", restored.snapshot_record, restored.replayed_records);
    if let (Some((first, last)), Some(seq)) = (restored.commit_left_out, args.until_seq) {
        println!(
            "    seq {seq} lies inside the commit of seqs {first} to {last}; a commit is restored whole or not at all, so it is left out"
        );
    }
    println!("    start it with: tally serve --data-dir {}", args.data_dir.display());
    Ok(())
}
