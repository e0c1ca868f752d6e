//! `tally export` and `tally import`: a ledger moves between stores (embedded and
//! PostgreSQL, either way) as a dump of its batch records on stdout / stdin, keeping every
//! id, seq, timestamp and state. Progress goes to stderr.

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::{BufReader, BufWriter};
use std::path::PathBuf;
use tally_core::batch::replay_record;
use tally_core::State;
use tally_engine::journal::{Journal, JournalError, Position};
use tally_engine::{snapshot, FileStorage};
use tally_ledger::dump::{DumpReader, DumpWriter};

/// Exactly one store.
#[derive(clap::Args)]
#[group(required = true, multiple = false)]
pub struct Store {
    /// An embedded ledger's data directory.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// A PostgreSQL ledger (`postgres://` URL or `key=value` string).
    #[arg(long, env = "TALLY_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
}

/// The journal is fsynced after this many bytes while importing, and at the end.
const IMPORT_SYNC_BYTES: usize = 64 << 20;

fn progress(what: &str) -> ProgressBar {
    let style = ProgressStyle::with_template(&format!("{{spinner}} {what} [{{bar:40}}] seq {{pos}}/{{len}} ({{per_sec}}, {{eta}})"))
        .expect("valid template");
    ProgressBar::new(0).with_style(style)
}

/// Moves `bar` as a store reports (seq reached, last seq).
fn follow(bar: &ProgressBar) -> impl FnMut(u64, u64) + '_ {
    |seq, total| {
        bar.set_length(total);
        bar.set_position(seq);
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread().enable_all().build()?)
}

pub fn export(store: Store) -> anyhow::Result<()> {
    let output = BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
    let bar = progress("exporting");
    let (records, last_seq) = match (store.data_dir, store.database_url) {
        (Some(data_dir), _) => {
            if !data_dir.is_dir() {
                bail!("{} is not a data directory", data_dir.display());
            }
            let mut storage = FileStorage::open(&data_dir)?;
            // The header carries the last seq, known only at the end: read the journal twice
            // (the second time from the page cache).
            let mut last_seq = 0;
            Journal::recover(
                &mut storage,
                Position::default(),
                false,
                |read| {
                    last_seq = read.last_seq;
                    Ok::<_, JournalError>(())
                },
                |_, _| {},
            )?;
            let mut dump = DumpWriter::new(output, last_seq)?;
            bar.set_length(last_seq);
            let mut write_error = None;
            Journal::recover(
                &mut storage,
                Position::default(),
                false,
                |read| {
                    if write_error.is_none() {
                        write_error = dump.frame(read.last_seq, read.payload).err();
                        bar.set_position(read.last_seq);
                    }
                    Ok::<_, JournalError>(())
                },
                |_, _| {},
            )?;
            if let Some(error) = write_error {
                return Err(error).context("writing the dump");
            }
            let records = dump.frames();
            dump.finish()?;
            (records, last_seq)
        }
        (None, Some(url)) => runtime()?.block_on(tally_pg::offline::export(&url, output, follow(&bar)))?,
        (None, None) => unreachable!("clap requires one store"),
    };
    bar.finish_and_clear();
    eprintln!("exported {records} batch records, up to seq {last_seq}");
    Ok(())
}

pub fn import(store: Store) -> anyhow::Result<()> {
    let input = BufReader::with_capacity(1 << 20, std::io::stdin().lock());
    let bar = progress("importing");
    let (records, last_seq) = match (store.data_dir, store.database_url) {
        (Some(data_dir), _) => import_embedded(&data_dir, input, &bar)?,
        (None, Some(url)) => runtime()?.block_on(tally_pg::offline::import(&url, input, follow(&bar)))?,
        (None, None) => unreachable!("clap requires one store"),
    };
    bar.finish_and_clear();
    eprintln!("imported {records} batch records, up to seq {last_seq}");
    Ok(())
}

/// Writes the dump's records as a new journal, replaying each to check it reaches the seq it
/// was exported at, and ends with a snapshot so the first start is quick.
fn import_embedded(data_dir: &std::path::Path, input: impl std::io::Read, bar: &ProgressBar) -> anyhow::Result<(u64, u64)> {
    if data_dir.exists() && std::fs::read_dir(data_dir)?.next().is_some() {
        bail!("{} is not empty; import only into a new data directory", data_dir.display());
    }
    let mut storage = FileStorage::open(data_dir)?;
    let mut journal = Journal::recover(&mut storage, Position::default(), true, |_| Ok::<_, JournalError>(()), |_, _| {})?;
    let mut dump = DumpReader::new(input)?;
    bar.set_length(dump.last_seq);
    let mut state = State::new();
    let (mut records, mut unsynced) = (0, 0);
    while let Some((last_seq, payload)) = dump.next_frame()? {
        records += 1;
        let replayed = replay_record(&mut state, payload).with_context(|| format!("batch record {records} does not decode"))?;
        if replayed != last_seq {
            bail!("batch record {records} replays to seq {replayed}, but was exported at seq {last_seq}");
        }
        journal.append(&mut storage, last_seq, payload)?;
        unsynced += payload.len();
        if unsynced >= IMPORT_SYNC_BYTES {
            journal.sync(&mut storage)?;
            unsynced = 0;
        }
        bar.set_position(last_seq);
    }
    journal.sync(&mut storage)?;
    state.check_invariants().map_err(anyhow::Error::msg)?;
    snapshot::write(&mut storage, &state, journal.position())?;
    Ok((records, state.last_seq()))
}
