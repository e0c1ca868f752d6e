//! `tally verify`: replays a data directory's whole journal from the first record, checking
//! every checksum and chain link, that each record replays to the seq it was written at,
//! conservation and bounds after every record, every snapshot against the replay, and at the
//! end every account's totals recomputed from its history.

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::Path;
use std::time::Instant;
use tally_core::State;
use tally_engine::engine::replay;
use tally_engine::journal::Position;
use tally_engine::{snapshot, FileStorage};

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
    let snapshots = snapshot::checksums(&storage)?;
    let progress = ProgressBar::new(0).with_style(
        ProgressStyle::with_template("{spinner} replaying [{bar:40}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})")
            .expect("valid template"),
    );
    let started = Instant::now();
    let mut state = State::new();
    let mut snapshots_checked = 0;
    let (journal, records) = replay(
        &mut storage,
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
    let (accounts, transfers) = state.counts();
    println!(
        "ok: {} records, {} events (last seq {}), {accounts} accounts, {transfers} transfer records",
        records,
        state.last_seq(),
        state.last_seq()
    );
    println!("    checksums and chain intact; conservation and bounds hold after every record; totals match their history");
    println!("    snapshots checked against the replay: {snapshots_checked} of {}", snapshots.len());
    if journal.torn_bytes() > 0 {
        println!("    a torn final record of {} bytes was never acknowledged; the server cuts it at its next start", journal.torn_bytes());
    }
    println!("    {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
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
