//! What survives a crash, and what start-up refuses. Power loss is simulated by a storage
//! that forgets every unsynced byte (`SimStorage` without random faults); torn writes and
//! corruption are made by hand.

use crate::support::*;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tally_core::*;
use tally_engine::journal::JournalError;
use tally_engine::*;
use tally_ledger::{Clock, Ledger, LedgerError};
use tally_sim::{Faults, SimStorage};

fn quiet() -> SimStorage {
    SimStorage::new(1, Faults::NONE)
}

fn names(storage: &SimStorage) -> Vec<String> {
    storage.list().unwrap()
}

fn len(storage: &SimStorage, name: &str) -> u64 {
    storage.len(name).unwrap()
}

fn config() -> Config {
    Config { snapshot_on_shutdown: false, ..Config::default() }
}

fn start(storage: &SimStorage, config: Config) -> Engine {
    Engine::start(storage.clone(), config).expect("engine starts").0
}

fn submit(engine: &Engine, request: Request) -> Vec<ResultCode> {
    block_on(engine.submit(request)).unwrap().outcomes.into_iter().map(|o| o.result).collect()
}

fn alice(engine: &Engine) -> i128 {
    block_on(engine.account(id("alice"), None)).unwrap().unwrap().totals.balance()
}

fn segment(storage: &SimStorage) -> String {
    names(storage).into_iter().find(|n| n.starts_with("journal-")).unwrap()
}

fn funded(storage: &SimStorage, count: usize) {
    let engine = start(storage, config());
    for request in setup_requests() {
        submit(&engine, request);
    }
    for n in 0..count {
        assert_eq!(submit(&engine, fund(&format!("t{n}"), "1.25")), [ResultCode::Created]);
    }
    engine.shutdown();
}

#[test]
fn acknowledged_writes_survive_power_loss() {
    let storage = quiet();
    funded(&storage, 20);
    let engine = start(&storage.crash_keeping(0), config());
    assert_eq!(alice(&engine), 2500);
    assert_eq!(submit(&engine, fund("t3", "1.25")), [ResultCode::Exists], "ids stay decided across restarts");
}

#[test]
fn a_torn_final_record_is_cut_off_and_writing_resumes() {
    let storage = quiet();
    funded(&storage, 3);
    let name = segment(&storage);
    let intact = len(&storage, &name);
    // Half of a record that was being written when the power went.
    let mut torn = storage.clone();
    torn.append(&name, &[0x5a; 100]).unwrap();
    let after_crash = torn.crash_keeping(60);
    let engine = start(&after_crash, config());
    assert_eq!(len(&after_crash, &name), intact, "the torn bytes are truncated");
    assert_eq!(submit(&engine, fund("t9", "1.00")), [ResultCode::Created]);
    engine.shutdown();
    let engine = start(&after_crash.crash_keeping(0), config());
    assert_eq!(alice(&engine), 475);
}

#[test]
fn corruption_before_the_tail_stops_start_up_and_names_the_place() {
    let storage = quiet();
    funded(&storage, 5);
    let name = segment(&storage);
    storage.corrupt(&name, 48 + 40 + 3, 0x01);
    let error = Engine::start(storage.clone(), config()).err().expect("start is refused");
    match error {
        OpenError::Journal(JournalError::Corrupt { file, offset, .. }) => {
            assert_eq!(file, name);
            assert_eq!(offset, 48);
        }
        other => panic!("unexpected error: {other}"),
    }
}

#[test]
fn a_failed_fsync_is_never_reported_as_success() {
    let storage = quiet();
    let engine = start(&storage, config());
    for request in setup_requests() {
        submit(&engine, request);
    }
    storage.set_faults(Faults { sync_failure: 1_000, ..Faults::NONE });
    let failed = block_on(engine.submit(fund("lost", "5.00")));
    assert!(matches!(failed, Err(LedgerError::OutcomeUnknown(_))), "the record may be on disk all the same: {failed:?}");
    assert!(matches!(block_on(engine.submit(fund("next", "5.00"))), Err(LedgerError::Failed(_))));
    assert!(matches!(block_on(engine.account(id("alice"), None)), Err(LedgerError::Failed(_))));
    assert!(engine.status().failure.is_some());
    drop(engine);
    let restarted = storage.crash_keeping(0);
    restarted.set_faults(Faults::NONE);
    let engine = start(&restarted, config());
    assert_eq!(alice(&engine), 0);
    assert!(block_on(engine.transfer(id("lost"))).unwrap().is_none());
}

/// Three records (asset, accounts, alice funded with 3.00), then a clean stop with a snapshot.
fn snapshotted() -> SimStorage {
    let storage = quiet();
    let engine = start(&storage, Config::default());
    for request in setup_requests() {
        submit(&engine, request);
    }
    submit(&engine, fund("a", "3.00"));
    engine.shutdown();
    assert!(names(&storage).iter().any(|n| n.starts_with("snapshot-")));
    storage
}

#[test]
fn a_snapshot_shortens_restart_and_the_journal_continues_after_it() {
    let storage = snapshotted();

    let (engine, recovery) = Engine::start(storage.clone(), config()).unwrap();
    assert_eq!((recovery.snapshot_record, recovery.replayed_records), (3, 0));
    submit(&engine, fund("b", "4.00"));
    drop(engine);
    let (engine, recovery) = Engine::start(storage.crash_keeping(0), config()).unwrap();
    assert_eq!(recovery.replayed_records, 1);
    assert_eq!(alice(&engine), 700);
    assert_eq!(block_on(engine.account(id("alice"), Some(recovery.last_seq - 1))).unwrap().unwrap().totals.balance(), 300);
}

#[test]
fn a_corrupt_snapshot_is_passed_over_for_the_journal() {
    let storage = snapshotted();
    let name = names(&storage).into_iter().find(|n| n.starts_with("snapshot-")).unwrap();
    storage.corrupt(&name, 100, 0xff);
    let (engine, recovery) = Engine::start(storage.clone(), config()).unwrap();
    assert_eq!((recovery.snapshot_record, recovery.replayed_records), (0, 3));
    assert_eq!(alice(&engine), 300);
}

#[test]
fn a_data_directory_is_used_by_one_process_at_a_time() {
    let directory = tempfile::tempdir().unwrap();
    let (first, _) = Engine::open(directory.path(), config()).unwrap();
    let second = Engine::open(directory.path(), config());
    assert!(matches!(second, Err(OpenError::InUse { .. })), "second open must be refused");
    drop(first);
    assert!(Engine::open(directory.path(), config()).is_ok(), "the lock is released with the engine");
}

#[test]
fn holds_expire_through_the_journal() {
    let storage = quiet();
    let now = Arc::new(AtomicU64::new(1_000_000_000));
    let clock_source = now.clone();
    let clock: Clock = Arc::new(move || clock_source.load(Ordering::SeqCst));
    let engine = start(&storage, Config { clock: clock.clone(), ..config() });
    for request in setup_requests() {
        submit(&engine, request);
    }
    submit(&engine, fund("f", "10.00"));
    let kind = TransferKind::Pending { debit: id("alice"), credit: id("world"), amount: Decimal::parse("4").unwrap(), timeout_ms: Some(5) };
    let hold = Request::CreateTransfers(vec![NewTransfer::new(id("h"), kind)]);
    assert_eq!(submit(&engine, hold), [ResultCode::Created]);
    let seq = engine.status().durable_seq;
    now.fetch_add(10_000_000, Ordering::SeqCst);
    // The writer wakes for the expiry by itself; the journal feed shows it when durable.
    let entries = block_on(engine.journal(seq, 10, Duration::from_secs(30))).unwrap();
    assert!(matches!(entries.as_slice(), [JournalEntry::Expiry { pending_id, .. }] if pending_id == "h"), "{entries:?}");
    drop(engine);
    let engine = start(&storage.crash_keeping(0), Config { clock, ..config() });
    assert_eq!(block_on(engine.transfer(id("h"))).unwrap().unwrap().state, TransferState::Expired);
}

/// History segments of 64 records, so that a few hundred transfers hand some off.
fn small_segments() -> Config {
    Config { history_shift: records::SEGMENT_SHIFT_MIN, ..Config::default() }
}

/// Funds `{prefix}{n}` for each n of `range`, each created.
fn pay(engine: &Engine, prefix: &str, range: std::ops::Range<usize>) {
    for n in range {
        assert_eq!(submit(engine, fund(&format!("{prefix}{n}"), "1.25")), [ResultCode::Created], "{prefix}{n}");
    }
}

/// An engine on `storage`, the ledger set up.
fn set_up(storage: &SimStorage, config: Config) -> Engine {
    let engine = start(storage, config);
    for request in setup_requests() {
        submit(&engine, request);
    }
    engine
}

/// Records leave memory in history segments; a clean restart stands on them, a crash replays
/// the journal and writes them again byte for byte, and either way old ids stay decided and
/// old transfers readable.
#[test]
fn handed_off_records_answer_across_clean_restarts_and_crashes() {
    let storage = quiet();
    let engine = set_up(&storage, small_segments());
    pay(&engine, "t", 0..400);
    let old = block_on(engine.transfer(id("t3"))).unwrap().expect("an old transfer reads back");
    assert_eq!(submit(&engine, fund("t3", "1.25")), [ResultCode::Exists]);
    assert_eq!(submit(&engine, fund("t4", "9.99")), [ResultCode::ExistsWithDifferentFields]);
    engine.shutdown();

    // A start hands off, before it serves, every segment due that the segment writer had not
    // reached: 400 records make five, indexed by two id runs (four merged, and one).
    let storage = storage.crash_keeping(0);
    let clean = start(&storage, small_segments());
    let history_files: Vec<String> = names(&storage).into_iter().filter(|n| n.starts_with("history-")).collect();
    let expected = ["0000000000", "0000000001", "0000000002", "0000000003", "0000000004"].map(|n| format!("history-{n}.th"));
    let runs = ["history-ids-0000000000-0000000004.ti", "history-ids-0000000004-0000000005.ti"];
    assert_eq!(history_files, [&expected[..], &runs.map(String::from)[..]].concat());
    let written: Vec<Vec<u8>> = history_files.iter().map(|n| storage.read_whole(n, 1 << 30).unwrap()).collect();
    assert_eq!(alice(&clean), 400 * 125);
    assert_eq!(block_on(clean.transfer(id("t3"))).unwrap(), Some(old.clone()));
    assert_eq!(submit(&clean, fund("t5", "1.25")), [ResultCode::Exists]);
    clean.shutdown();

    // Without the snapshots, a start replays the journal and writes the segments again.
    let crashed = storage.crash_keeping(0);
    let mut bare = crashed.clone();
    for name in names(&crashed).into_iter().filter(|n| n.starts_with("snapshot-") || n.starts_with("history-")) {
        bare.remove(&name).unwrap();
    }
    let replayed = start(&bare, Config { snapshot_on_shutdown: false, ..small_segments() });
    assert_eq!(block_on(replayed.transfer(id("t3"))).unwrap(), Some(old));
    assert_eq!(submit(&replayed, fund("t6", "1.25")), [ResultCode::Exists]);
    let rewritten: Vec<Vec<u8>> =
        names(&bare).into_iter().filter(|n| n.starts_with("history-")).map(|n| bare.read_whole(&n, 1 << 30).unwrap()).collect();
    assert!(rewritten[..written.len()] == written[..], "the replay writes every segment and id run byte for byte the same");
}

/// The history files of one ledger beside the journal of another, without a snapshot (a
/// directory put together by hand): a replay of the whole journal takes none of the id runs,
/// and writes every segment and run again from this journal alone.
#[test]
fn history_files_of_another_ledger_are_written_again_by_a_whole_replay() {
    let ledger = |prefix: &str| {
        let storage = quiet();
        let engine = set_up(&storage, small_segments());
        pay(&engine, prefix, 0..400);
        engine.shutdown();
        storage.crash_keeping(0)
    };
    let (other, ours) = (ledger("a"), ledger("b"));
    let ours_written: Vec<(String, Vec<u8>)> = names(&ours)
        .into_iter()
        .filter(|n| n.starts_with("history-"))
        .map(|n| (n.clone(), ours.read_whole(&n, 1 << 30).unwrap()))
        .collect();
    let mut mixed = ours.clone();
    for name in names(&ours).into_iter().filter(|n| n.starts_with("history-") || n.starts_with("snapshot-")) {
        mixed.remove(&name).unwrap();
    }
    for name in names(&other).into_iter().filter(|n| n.starts_with("history-")) {
        let bytes = other.read_whole(&name, 1 << 30).unwrap();
        mixed.write_atomic(&name, &mut |emit| emit(&bytes)).unwrap();
    }
    let engine = start(&mixed, Config { snapshot_on_shutdown: false, ..small_segments() });
    assert_eq!(submit(&engine, fund("b3", "1.25")), [ResultCode::Exists]);
    assert_eq!(submit(&engine, fund("a3", "1.25")), [ResultCode::Created]);
    drop(engine);
    for (name, bytes) in ours_written {
        assert!(mixed.read_whole(&name, 1 << 30).unwrap() == bytes, "{name} is written again from this journal");
    }
}

/// A journal that lost records its history files were written from (its tail cut after a
/// crash): the id runs beyond the snapshot are taken at the start, and the first segment
/// written again with other ids than before makes the ledger drop them and build them again.
#[test]
fn id_runs_that_the_journal_no_longer_reaches_are_built_again() {
    let storage = quiet();
    let engine = set_up(&storage, small_segments());
    pay(&engine, "a", 0..1_000);
    engine.shutdown();
    let journal = names(&storage).into_iter().find(|n| n.starts_with("journal-")).unwrap();
    let snapshot_end = storage.len(&journal).unwrap();
    let storage = storage.crash_keeping(0);
    let engine = start(&storage, Config { snapshot_on_shutdown: false, ..small_segments() });
    pay(&engine, "a", 1_000..1_150);
    drop(engine);
    let mut storage = storage.crash_keeping(0);
    storage.truncate(&journal, snapshot_end).unwrap();

    let engine = start(&storage, small_segments());
    pay(&engine, "b", 0..300);
    for n in (0..300).step_by(7) {
        assert_eq!(submit(&engine, fund(&format!("b{n}"), "1.25")), [ResultCode::Exists], "b{n}");
    }
    assert_eq!(submit(&engine, fund("a3", "1.25")), [ResultCode::Exists]);
    assert_eq!(submit(&engine, fund("a1100", "1.25")), [ResultCode::Created], "a1100 was lost with the journal's tail");
}
