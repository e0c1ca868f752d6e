//! A store that keeps the ledger in a database runs batches on slices: only the rows a batch
//! reads. What it could not load must never change a decision: a hold loaded as a reference
//! (its accounts not locked) is neither expired nor passed, and a batch's clock stays before
//! the slice's horizon, so its record replays on the whole ledger to the very same result.

use crate::support::*;
use tally_core::batch;
use tally_core::*;

const SECOND: u64 = 1_000_000_000;

/// A ledger whose `hold` (alice to bob, 1 s timeout) and `later` (2 s) are open.
fn ledger_with_holds() -> State {
    let mut state = ledger();
    assert_eq!(transfers(&mut state, vec![direct("fund", "world", "alice", "10.00")]), [ResultCode::Created]);
    let holds = vec![pending("hold", "alice", "bob", "1.00", Some(1_000)), pending("later", "alice", "bob", "1.00", Some(2_000))];
    assert_eq!(transfers(&mut state, holds), [ResultCode::Created, ResultCode::Created]);
    state
}

fn slice_of(whole: &State, accounts: &[&str]) -> State {
    let mut slice = State::slice(whole.last_seq(), whole.last_timestamp());
    slice.load_asset(whole.asset_row(&AssetCode::parse("USD").unwrap()).unwrap());
    for name in accounts {
        slice.load_account(whole.account_row_of(&id(name)).unwrap());
    }
    slice
}

fn expires_at(whole: &State, hold: &str) -> u64 {
    whole.transfer_row_of(hold).unwrap().expires_at.unwrap()
}

/// Applies `events` to the slice at `now`, replays the record on a copy of the whole ledger,
/// and checks both agree; returns the batch's outcomes and the whole ledger after it.
fn apply_and_replay(whole: &State, slice: &mut State, now: u64, events: Vec<NewTransfer>) -> (Vec<Outcome>, State) {
    let applied = batch::apply(&mut *slice, now, [&Request::CreateTransfers(events)]);
    let mut replayed = State::from_snapshot_bytes(&whole.snapshot_bytes()).unwrap();
    let last_seq = batch::replay_record(&mut replayed, applied.payload.as_deref().unwrap()).unwrap();
    assert_eq!(last_seq, applied.last_seq, "the record replays to the seq the slice reached");
    (applied.answers.into_iter().next().unwrap(), replayed)
}

#[test]
fn a_hold_loaded_as_a_reference_keeps_the_batch_before_its_expiry() {
    let whole = ledger_with_holds();
    // world and bob are locked; the hold's debit side (alice) is not, so it is a reference.
    let mut slice = slice_of(&whole, &["world", "bob"]);
    slice.load_reference(whole.transfer_row_of("hold").unwrap());
    slice.loaded();
    let now = expires_at(&whole, "later") + SECOND;
    let (outcomes, replayed) = apply_and_replay(&whole, &mut slice, now, vec![direct("pay", "world", "bob", "2.00")]);
    assert_eq!(outcomes[0].result, ResultCode::Created);
    assert!(outcomes[0].timestamp < expires_at(&whole, "hold"), "the batch ran before the hold it could not expire came due");
    assert!(slice.changes().expiries.is_empty() && slice.changes().resolutions.is_empty());
    assert_eq!(replayed.transfer("hold").unwrap().state, TransferState::Pending, "the whole ledger agrees: not yet expired");
}

#[test]
fn a_resend_of_a_reference_is_answered_with_its_original_outcome() {
    let whole = ledger_with_holds();
    let mut slice = slice_of(&whole, &["alice", "bob"]);
    slice.load_reference(whole.transfer_row_of("hold").unwrap());
    slice.loaded();
    let now = whole.last_timestamp() + 1;
    let resend = pending("hold", "alice", "bob", "1.00", Some(1_000));
    let applied = batch::apply(&mut slice, now, [&Request::CreateTransfers(vec![resend])]);
    assert_eq!(applied.answers[0][0].result, ResultCode::Exists);
    assert_eq!(applied.answers[0][0].seq, whole.transfer_row_of("hold").unwrap().seq);
}

#[test]
fn a_limited_horizon_expires_only_the_holds_before_it() {
    let whole = ledger_with_holds();
    // Both holds are due, but the store loaded only the first: the batch stops before the
    // second's expiry.
    let mut slice = slice_of(&whole, &["world", "alice", "bob"]);
    slice.load_transfer(whole.transfer_row_of("hold").unwrap());
    slice.limit_horizon(expires_at(&whole, "later"));
    slice.loaded();
    let now = expires_at(&whole, "later") + SECOND;
    let (outcomes, replayed) = apply_and_replay(&whole, &mut slice, now, vec![direct("pay", "world", "bob", "2.00")]);
    assert_eq!(outcomes[0].result, ResultCode::Created);
    let expiries: Vec<_> = slice.changes().expiries.into_iter().map(|e| e.hold).collect();
    assert_eq!(expiries, ["hold"]);
    assert_eq!(replayed.transfer("hold").unwrap().state, TransferState::Expired);
    assert_eq!(replayed.transfer("later").unwrap().state, TransferState::Pending);
}

#[test]
#[should_panic(expected = "a store loads the holds a batch posts, voids or renews in full")]
fn posting_a_hold_loaded_as_a_reference_is_a_bug_in_the_store() {
    let whole = ledger_with_holds();
    let mut slice = slice_of(&whole, &["world", "bob"]);
    slice.load_reference(whole.transfer_row_of("hold").unwrap());
    slice.loaded();
    batch::apply(&mut slice, whole.last_timestamp() + 1, [&Request::CreateTransfers(vec![post("p", "hold", None)])]);
}
