//! Balancing transfers ("whatever is left") and allocations (exact splits), story by story.

use crate::support::*;
use proptest::prelude::*;
use tally_core::allocation::split;
use tally_core::limits::{ALLOCATION_SHARES_MAX, ALLOCATION_WEIGHT_MAX};
use tally_core::ResultCode::*;
use tally_core::*;

fn apply(state: &mut State, events: Vec<NewTransfer>) -> Vec<Outcome> {
    state.apply(&Request::CreateTransfers(events), T0)
}

fn amount_of(state: &State, id: &str) -> u128 {
    state.transfer(id).and_then(|view| view.detail).map(|detail| detail.amount).expect("a transfer with details")
}

#[test]
fn cashing_out_moves_the_whole_balance_and_an_empty_account_moves_nothing() {
    let mut state = ledger();
    transfers(&mut state, vec![direct("fund", "world", "alice", "12.34")]);
    let [cash_out] = apply(&mut state, vec![balancing("cash-out", "alice", "world", None)])[..] else { panic!() };
    assert_eq!((cash_out.result, cash_out.moved), (Created, Some(Moved { amount: 1_234, scale: 2 })));
    assert_eq!(balance(&state, "alice"), 0);
    let version = state.account(&id("alice")).unwrap().version;
    let [again] = apply(&mut state, vec![balancing("cash-out-2", "alice", "world", None)])[..] else { panic!() };
    assert_eq!((again.result, again.moved), (Created, Some(Moved { amount: 0, scale: 2 })));
    assert_eq!(amount_of(&state, "cash-out-2"), 0);
    assert_eq!(state.account(&id("alice")).unwrap().version, version, "a transfer of nothing changes no account");
    // A retry hears what the original moved, not what is left now.
    transfers(&mut state, vec![direct("refill", "world", "alice", "1.00")]);
    let [retry] = apply(&mut state, vec![balancing("cash-out", "alice", "world", None)])[..] else { panic!() };
    assert_eq!((retry.result, retry.seq, retry.moved), (Exists, cash_out.seq, cash_out.moved));
}

#[test]
fn a_balancing_amount_is_a_ceiling_and_every_bound_on_both_paths_clamps_it() {
    let mut state = ledger();
    let capped = NewAccount { max_balance: Some(dec("5.00")), ..account("jar", "USD") };
    let team = NewAccount { min_balance: Some(dec("-3.00")), ..account("team", "USD") };
    let member = NewAccount { parent: Some(id("team")), min_balance: None, ..account("member", "USD") };
    state.apply(&Request::CreateAccounts(vec![capped, team, member]), T0);
    transfers(&mut state, vec![direct("fund", "world", "alice", "10.00")]);
    // Up to 2.00 of alice's 10.00: the amount asked for wins.
    assert_eq!(apply(&mut state, vec![balancing("b1", "alice", "bob", Some("2.00"))])[0].moved.unwrap().amount, 200);
    // As much as possible into a jar that holds at most 5.00: its ceiling wins.
    assert_eq!(apply(&mut state, vec![balancing("b2", "alice", "jar", None)])[0].moved.unwrap().amount, 500);
    // A member with no floor of its own, under a team whose floor is -3.00: the parent's wins.
    assert_eq!(apply(&mut state, vec![balancing("b3", "member", "alice", None)])[0].moved.unwrap().amount, 300);
    assert_eq!(balance(&state, "team"), -300);
    state.check_invariants().unwrap();
}

#[test]
fn a_balancing_hold_takes_up_to_what_is_free_and_counts_against_later_holds() {
    let mut state = ledger();
    let slots = NewAccount { min_balance: Some(dec("-50")), ..account("job:slots", "USD") };
    state.apply(&Request::CreateAccounts(vec![slots]), T0);
    let up_to = |name: &str, amount: &str| NewTransfer { balancing: true, ..pending(name, "job:slots", "bob", amount, Some(60_000)) };
    assert_eq!(apply(&mut state, vec![up_to("take-30", "30")])[0].moved.unwrap().amount, 3_000);
    assert_eq!(apply(&mut state, vec![up_to("take-50", "50")])[0].moved.unwrap().amount, 2_000, "only 20 slots were left");
    assert_eq!(apply(&mut state, vec![up_to("take-1", "1")])[0].moved.unwrap().amount, 0);
    assert_eq!(transfers(&mut state, vec![void("free-30", "take-30")]), [Created]);
    assert_eq!(apply(&mut state, vec![up_to("take-5", "5")])[0].moved.unwrap().amount, 500);
}

#[test]
fn a_pot_splits_exactly_and_the_odd_cent_goes_to_the_first_largest_remainder() {
    let mut state = ledger();
    state.apply(&Request::CreateAccounts(vec![account("carol", "USD")]), T0);
    transfers(&mut state, vec![direct("fund", "world", "alice", "100.00")]);
    let pot = allocate("pot-7", "alice", "100.00", &[("bob", 1), ("carol", 1), ("world", 1)], None);
    let [outcome] = apply(&mut state, vec![pot.clone()])[..] else { panic!() };
    assert_eq!((outcome.result, outcome.moved), (Created, Some(Moved { amount: 10_000, scale: 2 })));
    assert_eq!([amount_of(&state, "pot-7/0"), amount_of(&state, "pot-7/1"), amount_of(&state, "pot-7/2")], [3_334, 3_333, 3_333]);
    assert_eq!(state.transfer("pot-7/0").unwrap().seq, outcome.seq, "the outcome is the first leg's");
    assert_eq!((balance(&state, "alice"), balance(&state, "bob"), balance(&state, "carol")), (0, 3_334, 3_333));
    assert!(state.transfer("pot-7").is_none(), "an allocation is its legs");
    // A retry applies nothing and hears the same outcome; a changed one is told so.
    assert_eq!(apply(&mut state, vec![pot.clone()])[0], Outcome { result: Exists, ..outcome });
    let changed = allocate("pot-7", "alice", "100.00", &[("bob", 2), ("carol", 1)], None);
    assert_eq!(apply(&mut state, vec![changed])[0].result, ExistsWithDifferentFields);
    assert_eq!(balance(&state, "bob"), 3_334);
}

#[test]
fn a_leg_of_zero_is_listed_and_moves_nothing() {
    let mut state = ledger();
    transfers(&mut state, vec![direct("fund", "world", "alice", "1.00")]);
    let bob_version = state.account(&id("bob")).unwrap().version;
    assert_eq!(transfers(&mut state, vec![allocate("tip", "alice", "0.01", &[("world", 1), ("bob", 1)], None)]), [Created]);
    assert_eq!((amount_of(&state, "tip/0"), amount_of(&state, "tip/1")), (1, 0));
    assert_eq!(state.account(&id("bob")).unwrap().version, bob_version);
}

#[test]
fn an_allocation_is_all_or_nothing_and_its_bounds_hold_for_the_sum() {
    let mut state = ledger();
    transfers(&mut state, vec![direct("fund", "world", "alice", "10.00")]);
    // Each leg of 6.00 fits alice's 10.00, both together do not.
    let too_much = allocate("split", "alice", "12.00", &[("bob", 1), ("world", 1)], None);
    assert_eq!(transfers(&mut state, vec![too_much]), [ExceedsMinBalance]);
    assert!(state.transfer("split/0").is_none());
    assert_eq!((balance(&state, "alice"), balance(&state, "bob")), (1_000, 0));
    assert_eq!(state.transfer("split").unwrap().result, ExceedsMinBalance, "the failure is recorded under the allocation's id");
    for (event, code) in [
        (allocate("a1", "alice", "1", &[("ghost", 1)], None), AccountNotFound),
        (allocate("a2", "alice", "1", &[("bob", 1), ("alice", 1)], None), SameAccount),
        (allocate("a3", "alice", "0.001", &[("bob", 1)], None), InvalidAmount),
    ] {
        assert_eq!(transfers(&mut state, vec![event]), [code]);
    }
    // Inside a linked chain, a failure after the allocation takes its legs back too.
    let chain = vec![linked(allocate("a4", "alice", "4.00", &[("bob", 1)], None)), direct("a5", "bob", "world", "9.00")];
    assert_eq!(transfers(&mut state, chain), [LinkedEventFailed, ExceedsMinBalance]);
    assert_eq!(balance(&state, "bob"), 0);
}

#[test]
fn a_held_allocation_is_posted_or_voided_whole_by_its_id() {
    let mut state = ledger();
    state.apply(&Request::CreateAccounts(vec![account("carol", "USD")]), T0);
    transfers(&mut state, vec![direct("fund", "world", "alice", "10.00")]);
    let held = allocate("payout", "alice", "9.00", &[("bob", 2), ("carol", 1)], Some(Some(60_000)));
    assert_eq!(transfers(&mut state, vec![held]), [Created]);
    assert_eq!(state.account(&id("alice")).unwrap().totals.available(), 100);
    assert_eq!(transfers(&mut state, vec![post("partial", "payout", Some("1.00"))]), [InvalidAmount]);
    let [posted] = apply(&mut state, vec![post("settle", "payout", None)])[..] else { panic!() };
    assert_eq!(posted.result, Created);
    assert_eq!((balance(&state, "bob"), balance(&state, "carol")), (600, 300));
    assert_eq!(state.transfer("settle/1").unwrap().detail.unwrap().pending_id.as_deref(), Some("payout/1"));
    assert_eq!(state.transfer("payout/0").unwrap().state, TransferState::Posted);
    // Resent, the post hears its outcome; a void now finds the legs posted.
    assert_eq!(apply(&mut state, vec![post("settle", "payout", None)])[0], Outcome { result: Exists, ..posted });
    assert_eq!(transfers(&mut state, vec![void("undo", "payout")]), [PendingAlreadyPosted]);
    // A void releases every leg; one leg can also be resolved on its own first.
    let second = allocate("second", "alice", "0.90", &[("bob", 1), ("carol", 1)], Some(None));
    assert_eq!(transfers(&mut state, vec![second]), [Created]);
    let leg =
        NewTransfer::new(id("one"), TransferKind::Void { pending_id: Id::parse_transfer("second/1").unwrap(), debit: None, credit: None });
    assert_eq!(transfers(&mut state, vec![leg]), [Created]);
    assert_eq!(transfers(&mut state, vec![void("rest", "second")]), [PendingAlreadyVoided], "all legs or none");
    assert_eq!(state.account(&id("alice")).unwrap().totals.available(), 55);
}

#[test]
fn a_plain_transfer_sent_later_under_an_allocations_id_does_not_hide_the_allocation() {
    let mut state = ledger();
    transfers(&mut state, vec![direct("fund", "world", "alice", "10.00")]);
    assert_eq!(transfers(&mut state, vec![allocate("a", "alice", "4.00", &[("bob", 1), ("world", 1)], Some(None))]), [Created]);
    assert_eq!(transfers(&mut state, vec![direct("a", "world", "ghost", "1")]), [AccountNotFound]);
    assert_eq!(transfers(&mut state, vec![void("release", "a")]), [Created], "the legs are still found");
    assert_eq!(state.account(&id("alice")).unwrap().totals.available(), 1_000);
}

#[test]
fn a_balancing_transfer_under_a_bound_near_the_end_of_the_range_moves_what_the_totals_allow() {
    let mut state = ledger();
    let deep = NewAccount { min_balance: Some(dec(&format!("-{}", i128::MAX / 1_000))), ..account("deep", "USD") };
    state.apply(&Request::CreateAccounts(vec![deep]), T0);
    let [sweep] = apply(&mut state, vec![balancing("sweep", "deep", "world", Some("1000000"))])[..] else { panic!() };
    assert_eq!((sweep.result, sweep.moved.unwrap().amount), (Created, 100_000_000));
    let [all] = apply(&mut state, vec![balancing("all", "deep", "world", None)])[..] else { panic!() };
    assert_eq!(all.result, Created);
    assert!(all.moved.unwrap().amount > 0);
    state.check_invariants().unwrap();
}

proptest! {
    #[test]
    fn legs_sum_to_the_amount_each_within_one_unit_of_its_share_and_always_the_same(
        amount in 0u128..=1_000_000_000_000_000_000_000_000u128,
        weights in prop::collection::vec(1..=ALLOCATION_WEIGHT_MAX, 1..=ALLOCATION_SHARES_MAX),
    ) {
        let parts = split(amount, &weights);
        prop_assert_eq!(parts.iter().sum::<u128>(), amount);
        let total: u128 = weights.iter().map(|&w| u128::from(w)).sum();
        for (part, &weight) in parts.iter().zip(&weights) {
            // |part - amount * weight / total| < 1, in whole numbers.
            let exact = amount * u128::from(weight);
            prop_assert!(part * total + total > exact && exact + total > part * total);
        }
        prop_assert_eq!(split(amount, &weights), parts);
    }
}
