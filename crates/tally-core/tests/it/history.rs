//! Records handed off to history segments: a ledger that hands them off answers exactly as
//! one that keeps everything in memory, before and after a snapshot that stands on them.

use crate::support::*;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tally_core::id_runs::{self, RunRange};
use tally_core::records::{self, HistoryFile, HistoryFiles, HistoryRead, SEGMENT_SHIFT_MIN};
use tally_core::*;

/// History files kept in memory, as a store would keep them on disk.
#[derive(Default)]
struct Segments(Mutex<HashMap<HistoryFile, Vec<u8>>>);

impl HistoryRead for Segments {
    fn read_at(&self, file: HistoryFile, offset: u64, buffer: &mut [u8]) -> std::io::Result<()> {
        let files = self.0.lock().unwrap();
        let bytes = files.get(&file).ok_or(std::io::ErrorKind::NotFound)?;
        let bytes = bytes.get(offset as usize..offset as usize + buffer.len()).ok_or(std::io::ErrorKind::UnexpectedEof)?;
        buffer.copy_from_slice(bytes);
        Ok(())
    }
}

impl Segments {
    /// Writes what is due as the engine does: segments, then the id runs they complete
    /// (removing the runs merged into them).
    fn hand_off(&self, state: &mut State) {
        while let Some(segment) = state.segment_due() {
            self.0.lock().unwrap().insert(HistoryFile::Segment(segment), state.encode_segment(segment));
            state.handed_off(segment);
        }
        while let Some(segment) = state.id_run_due() {
            let shift = state.history_shift();
            if let Some(capacity) = state.id_filter_due() {
                let mut filter = id_runs::IdFilter::with_capacity(capacity);
                for range in id_runs::plan(state.id_runs_end()) {
                    filter.add_run(range, shift, self).unwrap();
                }
                state.filtered(filter, state.id_runs_end());
            }
            let hashes = records::segment_id_hashes(self, shift, segment).unwrap();
            let mut bytes = Vec::new();
            let entries = id_runs::segment_entries(segment, shift, &hashes);
            let run = id_runs::merge(segment, shift, entries, self, &mut |piece| {
                bytes.extend_from_slice(piece);
                Ok(())
            })
            .unwrap();
            let mut files = self.0.lock().unwrap();
            files.retain(|file, _| !matches!(file, HistoryFile::IdRun(range) if range.first >= run.range().first));
            files.insert(HistoryFile::IdRun(run.range()), bytes);
            drop(files);
            state.indexed(run, &hashes);
        }
    }

    fn segment(&self, segment: u32) -> Vec<u8> {
        self.0.lock().unwrap()[&HistoryFile::Segment(segment)].clone()
    }

    fn runs(&self) -> Vec<RunRange> {
        let mut runs: Vec<RunRange> = self
            .0
            .lock()
            .unwrap()
            .keys()
            .filter_map(|file| if let HistoryFile::IdRun(range) = file { Some(*range) } else { None })
            .collect();
        runs.sort();
        runs
    }

    /// What a store gives a state to load: the reader and how far the runs go.
    fn files(self: &Arc<Self>) -> HistoryFiles {
        HistoryFiles { reader: self.clone(), id_runs_end: self.runs().last().map_or(0, |run| run.end) }
    }
}

/// One round of every kind of change that reads old records back: new transfers with and
/// without metadata, holds with and without a timeout, posts and voids of holds placed rounds
/// ago, resends of old ids (the same and changed), a failed chain.
fn round(n: usize) -> Vec<Request> {
    let name = |what: &str, k: usize| format!("{what}-{k}");
    let mut transfers = vec![
        direct(&name("pay", n), "world", "alice", "1.25"),
        NewTransfer {
            metadata: Some(Metadata::parse(&format!("{{\"n\":{n}}}")).unwrap()),
            ..direct(&name("tip", n), "world", "bob", "0.10")
        },
        pending(&name("hold", n), "alice", "bob", "0.50", Some(60_000)),
        pending(&name("open", n), "world", "bob", "2.00", None),
        // Expires in the next round, often after its segment was handed off.
        pending(&name("lapse", n), "alice", "bob", "0.05", Some(500)),
    ];
    if n >= 20 {
        transfers.push(post(&name("post", n), &name("hold", n - 20), Some("0.25")));
        transfers.push(void(&name("void", n), &name("open", n - 20)));
        transfers.push(direct(&name("pay", n - 19), "world", "alice", "1.25"));
        transfers.push(direct(&name("tip", n - 18), "world", "alice", "9.99"));
        transfers.push(post(&name("again", n), &name("hold", n - 20), None));
    }
    transfers.push(linked(direct(&name("chain", n), "world", "alice", "1.00")));
    transfers.push(direct(&name("chain-end", n), "alice", "bob", "1000000.00"));
    vec![Request::CreateTransfers(transfers)]
}

/// A plain ledger and one that hands off segments of 64 records, after the same rounds.
fn twins(rounds: usize) -> (State, State, Arc<Segments>) {
    let segments = Arc::new(Segments::default());
    let mut plain = ledger();
    let mut handed = ledger();
    handed.attach_history(segments.files(), SEGMENT_SHIFT_MIN);
    for n in 0..rounds {
        let now = T0 + n as u64 * 1_000_000_000;
        assert_eq!(plain.expire(now), handed.expire(now), "round {n}: the same holds expire");
        for request in round(n) {
            assert_eq!(plain.apply(&request, now), handed.apply(&request, now), "round {n}: the same outcomes");
        }
        segments.hand_off(&mut handed);
    }
    (plain, handed, segments)
}

/// A snapshot as a store writes it: standing on the segments.
fn standing(state: &State) -> Vec<u8> {
    let mut bytes = Vec::new();
    state
        .encode_snapshot::<()>(&mut |piece| {
            bytes.extend_from_slice(piece);
            Ok(())
        })
        .unwrap();
    bytes
}

fn load(bytes: &[u8], segments: Option<&Arc<Segments>>) -> Result<State, codec::DecodeError> {
    let mut given = Some(bytes.to_vec());
    State::decode_snapshot(snapshot::SNAPSHOT_FORMAT, bytes.len(), &mut || Ok(given.take()), segments.map(Segments::files))
}

#[test]
fn a_ledger_that_hands_records_off_answers_as_one_that_keeps_them() {
    let (plain, handed, _) = twins(120);
    assert!(handed.history_segments() >= 12, "{} segments handed off", handed.history_segments());
    assert_eq!(handed.snapshot_bytes(), plain.snapshot_bytes());
    handed.check_invariants().unwrap();
    for transfer in ["pay-0", "tip-3", "hold-1", "open-2", "post-20", "void-21", "hold-90", "chain-5", "lapse-7"] {
        assert_eq!(handed.transfer(transfer), plain.transfer(transfer), "{transfer}");
    }
    for account in ["alice", "bob", "world"] {
        let account = id(account);
        assert_eq!(handed.account_transfers(&account, 0, 1_000), plain.account_transfers(&account, 0, 1_000));
        assert_eq!(handed.account_history(&account, 0, 1_000), plain.account_history(&account, 0, 1_000));
        assert_eq!(handed.account_as_of(&account, 500), plain.account_as_of(&account, 500));
    }
    assert_eq!(handed.journal(0, u64::MAX, 1_000), plain.journal(0, u64::MAX, 1_000));
}

#[test]
fn a_segment_holds_the_same_bytes_however_late_it_was_written() {
    // Holds in a segment were resolved after it was written; a replay that keeps every record
    // encodes the segment from their final state. The bytes must not differ.
    let (plain, handed, segments) = twins(120);
    for segment in 0..handed.history_segments() as u32 {
        let written = segments.segment(segment);
        assert_eq!(plain.history_segment(segment, SEGMENT_SHIFT_MIN), Some(written), "segment {segment}");
    }
    assert_eq!(plain.history_segment(handed.history_segments() as u32 + 100, SEGMENT_SHIFT_MIN), None);
}

#[test]
fn a_snapshot_stands_on_its_segments_and_the_ledger_goes_on_from_it() {
    let (mut plain, handed, segments) = twins(80);
    let snapshot = standing(&handed);
    assert!(snapshot.len() < plain.snapshot_bytes().len() / 2, "the snapshot leaves the handed-off records out");
    let mut loaded = load(&snapshot, Some(&segments)).unwrap();
    assert_eq!(loaded.snapshot_bytes(), plain.snapshot_bytes());
    play(&mut plain, &mut loaded, &segments, 80..120);
    assert_eq!(loaded.snapshot_bytes(), plain.snapshot_bytes());

    assert!(load(&snapshot, None).is_err_and(|e| e.to_string().contains("history segments")));
}

#[test]
fn a_damaged_segment_is_found_and_named() {
    let (_, handed, segments) = twins(40);
    // A wrong segment in place of the first: its header names another segment.
    let second = segments.segment(1);
    segments.0.lock().unwrap().insert(HistoryFile::Segment(0), second);
    assert!(load(&standing(&handed), Some(&segments)).is_err_and(|e| e.to_string().contains("history segment 0")));
}

#[test]
#[should_panic(expected = "history segment 2 cannot be read")]
fn a_record_that_no_longer_reads_back_stops_the_ledger_naming_its_segment() {
    let (_, handed, segments) = twins(40);
    // A flipped bit in the first page of segment 2, after the header and the id hashes. A
    // ledger loaded afresh has nothing cached: its journal reads every record back.
    segments.0.lock().unwrap().get_mut(&HistoryFile::Segment(2)).unwrap()[40 + 64 * 8 + 8 + 100] ^= 1;
    let loaded = load(&standing(&handed), Some(&segments)).unwrap();
    let _ = loaded.journal(0, u64::MAX, 1_000);
}

#[test]
fn id_runs_index_every_handed_off_record_as_the_plan_lays_them_out() {
    let (plain, handed, segments) = twins(120);
    let handed_segments = handed.history_segments() as u32;
    assert_eq!(handed.id_runs_end(), handed_segments, "every handed-off segment is indexed");
    assert_eq!(segments.runs(), id_runs::plan(handed_segments), "merged runs are removed");
    assert!(segments.runs().iter().any(|run| run.end - run.first >= 16), "runs were merged: {:?}", segments.runs());
    for run in segments.runs() {
        id_runs::check(run, SEGMENT_SHIFT_MIN, &*segments, &|record| plain.transfer_id_hash(record)).unwrap();
    }
    // A run that indexes a record under another id's hash is found out.
    let first = segments.runs()[0];
    let wrong = |record: u32| plain.transfer_id_hash(record) ^ u64::from(record == 7);
    assert!(id_runs::check(first, SEGMENT_SHIFT_MIN, &*segments, &wrong).is_err());
}

#[test]
fn a_ledger_loaded_without_its_id_runs_indexes_from_the_segments_and_writes_them_again() {
    let (mut plain, handed, segments) = twins(80);
    let snapshot = standing(&handed);
    let mut given = Some(snapshot.clone());
    let files = HistoryFiles { reader: segments.clone(), id_runs_end: 0 };
    segments.0.lock().unwrap().retain(|file, _| matches!(file, HistoryFile::Segment(_)));
    let mut loaded = State::decode_snapshot(snapshot::SNAPSHOT_FORMAT, snapshot.len(), &mut || Ok(given.take()), Some(files)).unwrap();
    assert_eq!(loaded.id_runs_end(), 0);
    assert_eq!(loaded.id_run_due(), Some(0));
    play(&mut plain, &mut loaded, &segments, 80..100);
    assert_eq!(loaded.id_runs_end(), loaded.history_segments() as u32);
    assert_eq!(segments.runs(), id_runs::plan(loaded.id_runs_end()));
    assert_eq!(loaded.snapshot_bytes(), plain.snapshot_bytes());
}

/// Plays rounds `rounds` on both ledgers, handing `handed`'s history off, and checks they
/// answer alike.
fn play(plain: &mut State, handed: &mut State, segments: &Segments, rounds: std::ops::Range<usize>) {
    for n in rounds {
        let now = T0 + n as u64 * 1_000_000_000;
        assert_eq!(plain.expire(now), handed.expire(now), "round {n}");
        for request in round(n) {
            assert_eq!(plain.apply(&request, now), handed.apply(&request, now), "round {n}");
        }
        segments.hand_off(handed);
    }
}

/// Plays rounds on both ledgers from round `n` until `handed` has handed off `segments`
/// segments; the round reached.
fn play_until(plain: &mut State, handed: &mut State, segments: &Segments, mut n: usize, wanted: usize) -> usize {
    while handed.history_segments() < wanted {
        play(plain, handed, segments, n..n + 1);
        n += 1;
    }
    n
}

#[test]
fn id_runs_that_cover_more_than_the_snapshot_serve_the_replay_after_it() {
    // A ledger that stopped without a snapshot: its last snapshot stands on fewer segments
    // than its id runs cover. The replay makes the same records again. With 63 segments in
    // the snapshot and one run over 64, the run is taken: indexing the 63 from their hashes
    // would cost more than the one segment replayed.
    let (mut plain, mut handed, segments) = (ledger(), ledger(), Arc::new(Segments::default()));
    handed.attach_history(segments.files(), SEGMENT_SHIFT_MIN);
    let n = play_until(&mut plain, &mut handed, &segments, 0, 63);
    let (plain_at_snapshot, standing_at_snapshot) = (plain.snapshot_bytes(), standing(&handed));
    let stopped = play_until(&mut plain, &mut handed, &segments, n, 64);
    let runs_end = handed.id_runs_end();
    drop(handed);
    let mut loaded = load(&standing_at_snapshot, Some(&segments)).unwrap();
    assert_eq!(loaded.id_runs_end(), runs_end, "the runs beyond the snapshot are taken");
    assert!(runs_end as usize > loaded.history_segments());
    let mut replayed = ledger_from(&plain_at_snapshot);
    play(&mut replayed, &mut loaded, &segments, n..stopped + 20);
    assert_eq!(loaded.snapshot_bytes(), replayed.snapshot_bytes());
    assert_eq!(segments.runs(), id_runs::plan(loaded.history_segments() as u32));

    // A long replay after a short snapshot: the runs within the snapshot's segments are taken,
    // the ones beyond are left and written again.
    let standing_short = standing(&loaded);
    let (plain_short, short_at) = (replayed.snapshot_bytes(), stopped + 20);
    let wanted = loaded.history_segments() + 12;
    let far = play_until(&mut replayed, &mut loaded, &segments, short_at, wanted);
    drop(loaded);
    let mut again = load(&standing_short, Some(&segments)).unwrap();
    assert!((again.id_runs_end() as usize) <= again.history_segments(), "the runs beyond are left");
    let mut replayed_again = ledger_from(&plain_short);
    play(&mut replayed_again, &mut again, &segments, short_at..far + 5);
    assert_eq!(segments.runs(), id_runs::plan(again.history_segments() as u32));

    // Had the journal not matched the history files, the store would find a segment written
    // again with other ids: the runs are dropped and written again from the segments.
    let standing_late = standing(&again);
    drop(again);
    let mut diverged = load(&standing_late, Some(&segments)).unwrap();
    let differing = diverged.history_segments() as u32 - 3;
    diverged.history_diverged(differing);
    let kept = diverged.id_runs_end();
    assert!(kept > 0 && kept <= differing, "the runs before segment {differing} are kept: {kept}");
    segments.0.lock().unwrap().retain(|file, _| !matches!(file, HistoryFile::IdRun(run) if !id_runs::plan(kept).contains(run)));
    assert_eq!(diverged.id_run_due(), Some(kept));
    play(&mut replayed_again, &mut diverged, &segments, far + 5..far + 15);
    assert_eq!(diverged.id_runs_end(), diverged.history_segments() as u32);
    assert_eq!(diverged.snapshot_bytes(), replayed_again.snapshot_bytes());
}

/// A ledger loaded from a whole snapshot (`State::snapshot_bytes`), keeping every record.
fn ledger_from(bytes: &[u8]) -> State {
    let mut given = Some(bytes.to_vec());
    State::decode_snapshot(snapshot::SNAPSHOT_FORMAT, bytes.len(), &mut || Ok(given.take()), None).unwrap()
}
