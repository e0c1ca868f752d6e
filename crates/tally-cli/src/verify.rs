//! `tally verify`: replays a data directory's whole journal from the first record, checking
//! every checksum and chain link, that each record replays to the seq it was written at,
//! conservation and bounds after every record, every snapshot against the replay, and at the
//! end every account's totals recomputed from its history.

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::Path;
use std::time::Instant;
use tally_core::{id_runs, records, State};
use tally_engine::engine::replay;
use tally_engine::journal::Position;
use tally_engine::{backup, history, snapshot, FileStorage, Storage};

pub fn run(data_dir: &Path) -> anyhow::Result<()> {
    if !data_dir.is_dir() {
        bail!("{} is not a data directory", data_dir.display());
    }
    let lock = std::fs::File::open(data_dir.join("tally.lock"));
    if lock.is_ok_and(|file| file.try_lock().is_err()) {
        eprintln!(
            "note: a server is using {}; checking what is durable now (a record being written is reported, not cut)",
            data_dir.display()
        );
    }
    let mut storage = FileStorage::open(data_dir).with_context(|| format!("opening {}", data_dir.display()))?;
    let replayed = replay_all(&mut storage)?;
    replayed.report();
    if replayed.torn_bytes > 0 {
        println!("    a torn final record of {} bytes was never acknowledged; the server cuts it at its next start", replayed.torn_bytes);
    }
    println!("    {:.1} s", replayed.started.elapsed().as_secs_f64());
    Ok(())
}

/// `tally verify --backup`: every file's checksums against the manifest, then the same replay
/// as a data directory's, ending exactly where the manifest says the backup ends.
pub fn run_backup(directory: &Path) -> anyhow::Result<()> {
    let checked = backup::check(directory).map_err(anyhow::Error::msg)?;
    for note in &checked.notes {
        eprintln!("note: {note}");
    }
    let manifest = checked.manifest;
    let mut files = checked.files;
    let replayed = replay_all(&mut files)?;
    let ends = replayed.position;
    if ends.record != manifest.record || format!("{:032x}", ends.checksum) != manifest.record_checksum || ends.last_seq != manifest.last_seq
    {
        bail!(
            "the backup's journal ends at record {} (seq {}), but its manifest says record {} (seq {})",
            ends.record,
            ends.last_seq,
            manifest.record,
            manifest.last_seq
        );
    }
    if replayed.torn_bytes > 0 {
        bail!("the backup's journal ends inside a record ({} bytes)", replayed.torn_bytes);
    }
    replayed.report();
    println!("    {} files match the manifest's checksums; the journal ends where the manifest says", manifest.files.len());
    println!("    {:.1} s", replayed.started.elapsed().as_secs_f64());
    Ok(())
}

/// What replaying a whole journal found.
struct Replayed {
    state: State,
    records: u64,
    position: Position,
    torn_bytes: u64,
    snapshots_checked: usize,
    snapshots: usize,
    segments_checked: usize,
    id_runs_checked: usize,
    started: Instant,
}

impl Replayed {
    fn report(&self) {
        let (accounts, transfers) = self.state.counts();
        let last_seq = self.state.last_seq();
        println!(
            "ok: {} records, {last_seq} events (last seq {last_seq}), {accounts} accounts, {transfers} transfer records",
            self.records
        );
        println!("    checksums and chain intact; conservation and bounds hold after every record; totals match their history");
        println!("    snapshots checked against the replay: {} of {}", self.snapshots_checked, self.snapshots);
        println!("    history segments checked against the replay, byte for byte: {}", self.segments_checked);
        println!("    id runs checked against the replay, byte for byte: {}", self.id_runs_checked);
    }
}

/// Replays a journal from its first record, checking every invariant after every record and
/// every snapshot against the replay, and audits the totals at the end.
fn replay_all<S: Storage>(storage: &mut S) -> anyhow::Result<Replayed> {
    let snapshots = snapshot::checksums(storage)?;
    // Listed before the replay: a segment or id run exists only once its records were durable,
    // so the replay reaches every one listed, even beside a server writing more.
    let history_files: Vec<String> = storage.list()?.into_iter().filter(|name| name.starts_with("history-")).collect();
    let progress = ProgressBar::new(0).with_style(
        ProgressStyle::with_template("{spinner} replaying [{bar:40}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})")
            .expect("valid template"),
    );
    let started = Instant::now();
    let mut state = State::new();
    let mut snapshots_checked = 0;
    let (journal, records) = replay(
        storage,
        &mut state,
        Position::default(),
        false,
        |done, total| {
            progress.set_length(total);
            progress.set_position(done);
        },
        |state, record| {
            state.check_invariants()?;
            for (_, expected) in snapshots.iter().filter(|(at, _)| *at == record) {
                if snapshot::checksum(state) != *expected {
                    return Err(format!("the snapshot taken after record {record} differs from the replay"));
                }
                snapshots_checked += 1;
            }
            Ok(())
        },
    )?;
    progress.finish_and_clear();
    // A start loads the latest snapshot and replays after it, so every snapshot must be one
    // this journal reaches: one from elsewhere (a server writing on after its directory was
    // replaced) would be refused at start, and so it is here.
    if let Some((at, _)) = snapshots.iter().find(|(at, _)| *at > records) {
        bail!("a snapshot taken after record {at} lies beyond the journal's last record {records}: it is not this journal's");
    }
    state.audit().map_err(|reason| anyhow::anyhow!("audit failed: {reason}"))?;
    let segments_checked = check_history(storage, &state, &history_files)?;
    let id_runs_checked = check_id_runs(storage, &state, &history_files)?;
    Ok(Replayed {
        state,
        records,
        position: journal.position(),
        torn_bytes: journal.torn_bytes(),
        snapshots_checked,
        snapshots: snapshots.len(),
        segments_checked,
        id_runs_checked,
        started,
    })
}

/// Every history segment against the replay: a segment is derived from the journal alone,
/// so it must hold exactly the bytes the replay encodes for the same records.
fn check_history<S: Storage>(storage: &S, state: &State, names: &[String]) -> anyhow::Result<usize> {
    const PIECE_BYTES: u64 = 1 << 20;
    let mut checked = 0;
    for name in names {
        let Some(segment) = history::parse_segment_name(name) else { continue };
        let len = storage.len(name)?;
        let mut header = vec![0u8; 16.min(len as usize)];
        storage.read_exact_at(name, 0, &mut header)?;
        let Some(shift) = records::segment_shift(&header) else { bail!("{name} is not a history segment") };
        let Some(expected) = state.history_segment(segment, shift) else {
            bail!("{name} holds records beyond the journal's end: it is not this journal's")
        };
        if expected.len() as u64 != len {
            bail!("{name} differs from the replay: {len} bytes where the replay has {}", expected.len());
        }
        let mut piece = vec![0u8; PIECE_BYTES as usize];
        for (index, wanted) in expected.chunks(PIECE_BYTES as usize).enumerate() {
            let read = &mut piece[..wanted.len()];
            storage.read_exact_at(name, index as u64 * PIECE_BYTES, read)?;
            if read != wanted {
                bail!(
                    "{name} differs from the replay within bytes {} to {}",
                    index as u64 * PIECE_BYTES,
                    index as u64 * PIECE_BYTES + wanted.len() as u64
                );
            }
        }
        checked += 1;
    }
    Ok(checked)
}

/// Every id run against the replay: each must index exactly the records of its segments,
/// under their ids' hashes, with the summary those entries make. A run a server beside this
/// check merged away meanwhile is passed over.
fn check_id_runs<S: Storage>(storage: &S, state: &State, names: &[String]) -> anyhow::Result<usize> {
    let Some(reader) = storage.history_reader() else { return Ok(0) };
    let mut checked = 0;
    for name in names {
        let Some(range) = history::parse_run_name(name) else { continue };
        let mut header = [0u8; 16];
        if let Err(error) = storage.read_exact_at(name, 0, &mut header) {
            if storage.len(name).is_err() {
                continue;
            }
            bail!("{name} cannot be read: {error}");
        }
        let Some(shift) = id_runs::run_shift(&header) else { bail!("{name} is not an id run") };
        if (u64::from(range.end) << shift) > state.transfers() as u64 {
            bail!("{name} indexes records beyond the journal's end: it is not this journal's");
        }
        let hash_of = |record: u32| state.transfer_id_hash(record);
        match id_runs::check(range, shift, &*reader, &hash_of) {
            Ok(()) => checked += 1,
            Err(_) if storage.len(name).is_err() => {}
            Err(problem) => bail!("{problem}"),
        }
    }
    Ok(checked)
}

/// `tally verify --database-url`: the PostgreSQL ledger replayed from its batch records and
/// compared with every table, in one consistent snapshot (nodes may keep running).
pub fn run_postgres(url: &str) -> anyhow::Result<()> {
    let progress = ProgressBar::new(0)
        .with_style(ProgressStyle::with_template("{spinner} {msg} [{bar:40}] seq {pos}/{len} ({per_sec}, {eta})").expect("valid template"));
    let started = Instant::now();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let verified = runtime.block_on(tally_pg::offline::verify(url, |what, seq, total| {
        progress.set_message(what.to_owned());
        progress.set_length(total);
        progress.set_position(seq);
    }))?;
    progress.finish_and_clear();
    println!("ok: {} batch records, last seq {}, {} accounts", verified.records, verified.last_seq, verified.accounts);
    println!("    every record replays to its seq; conservation and bounds hold after every record; totals match their history");
    println!("    every journal entry and every account in the tables equals the replay; every change history matches its account");
    println!("    {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}
