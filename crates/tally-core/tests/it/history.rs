//! Records handed off to history segments: a ledger that hands them off answers exactly as
//! one that keeps everything in memory, before and after a snapshot that stands on them.

use crate::support::*;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tally_core::records::{HistoryRead, SEGMENT_SHIFT_MIN};
use tally_core::*;

/// Segments kept in memory, as a store would keep them in files.
#[derive(Default)]
struct Segments(Mutex<HashMap<u32, Vec<u8>>>);

impl HistoryRead for Segments {
    fn read_at(&self, segment: u32, offset: u64, buffer: &mut [u8]) -> std::io::Result<()> {
        let segments = self.0.lock().unwrap();
        let bytes = segments.get(&segment).ok_or(std::io::ErrorKind::NotFound)?;
        let bytes = bytes.get(offset as usize..offset as usize + buffer.len()).ok_or(std::io::ErrorKind::UnexpectedEof)?;
        buffer.copy_from_slice(bytes);
        Ok(())
    }
}

impl Segments {
    fn hand_off(&self, state: &mut State) {
        while let Some(segment) = state.segment_due() {
            self.0.lock().unwrap().insert(segment, state.encode_segment(segment));
            state.handed_off(segment);
        }
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
    handed.attach_history(segments.clone(), SEGMENT_SHIFT_MIN);
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
    let reader = segments.map(|segments| segments.clone() as Arc<dyn HistoryRead>);
    State::decode_snapshot(snapshot::SNAPSHOT_FORMAT, bytes.len(), &mut || Ok(given.take()), reader)
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
        let written = segments.0.lock().unwrap()[&segment].clone();
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
    for n in 80..120 {
        let now = T0 + n as u64 * 1_000_000_000;
        assert_eq!(plain.expire(now), loaded.expire(now));
        for request in round(n) {
            assert_eq!(plain.apply(&request, now), loaded.apply(&request, now), "round {n}");
        }
        segments.hand_off(&mut loaded);
    }
    assert_eq!(loaded.snapshot_bytes(), plain.snapshot_bytes());

    assert!(load(&snapshot, None).is_err_and(|e| e.to_string().contains("history segments")));
}

#[test]
fn a_damaged_segment_is_found_and_named() {
    let (_, handed, segments) = twins(40);
    // A wrong segment in place of the first: its header names another segment.
    let second = segments.0.lock().unwrap()[&1].clone();
    segments.0.lock().unwrap().insert(0, second);
    assert!(load(&standing(&handed), Some(&segments)).is_err_and(|e| e.to_string().contains("history segment 0")));
}

#[test]
#[should_panic(expected = "history segment 2 cannot be read")]
fn a_record_that_no_longer_reads_back_stops_the_ledger_naming_its_segment() {
    let (_, handed, segments) = twins(40);
    // A flipped bit in the first page of segment 2, after the header and the id hashes. A
    // ledger loaded afresh has nothing cached: its journal reads every record back.
    segments.0.lock().unwrap().get_mut(&2).unwrap()[40 + 64 * 8 + 8 + 100] ^= 1;
    let loaded = load(&standing(&handed), Some(&segments)).unwrap();
    let _ = loaded.journal(0, u64::MAX, 1_000);
}
