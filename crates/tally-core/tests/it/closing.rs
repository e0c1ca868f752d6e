//! Closed accounts: no new transfer touches them or anything under them, while the holds
//! already placed can still be resolved.

use crate::support::*;
use tally_core::ResultCode::*;
use tally_core::*;

fn set_closed(state: &mut State, account: &str, closed: bool, force: bool) -> ResultCode {
    let patch = AccountPatch { closed: Some(closed), force, ..AccountPatch::default() };
    state.apply(&Request::UpdateAccounts(vec![AccountUpdate { id: id(account), patch }]), T0)[0].result
}

#[test]
fn a_posting_that_stops_taking_applicants_still_settles_the_ones_it_has() {
    let mut state = ledger();
    let slots = NewAccount { min_balance: Some(dec("-2")), ..account("job:7:slots", "USD") };
    state.apply(&Request::CreateAccounts(vec![slots]), T0);
    assert_eq!(
        transfers(
            &mut state,
            vec![pending("apply-1", "job:7:slots", "bob", "1", None), pending("apply-2", "job:7:slots", "bob", "1", None)]
        ),
        [Created, Created]
    );
    // Open holds: closing takes `force`.
    assert_eq!(set_closed(&mut state, "job:7:slots", true, false), AccountNotEmpty);
    assert_eq!(set_closed(&mut state, "job:7:slots", true, true), Updated);
    assert!(state.account(&id("job:7:slots")).unwrap().settings.closed);
    let late = pending("apply-3", "job:7:slots", "bob", "1", None);
    assert_eq!(transfers(&mut state, vec![late.clone()]), [AccountClosed]);
    assert_eq!(transfers(&mut state, vec![direct("gift", "world", "job:7:slots", "1")]), [AccountClosed], "either side");
    assert_eq!(transfers(&mut state, vec![post("hire-1", "apply-1", None), void("reject-2", "apply-2")]), [Created, Created]);
    // Reopened, a new applicant gets in (under a new id: apply-3 was decided).
    assert_eq!(set_closed(&mut state, "job:7:slots", false, false), Updated);
    assert_eq!(transfers(&mut state, vec![late]), [AccountClosed]);
    assert_eq!(transfers(&mut state, vec![pending("apply-4", "job:7:slots", "bob", "1", None)]), [Created]);
}

#[test]
fn an_empty_account_closes_without_force_and_a_closed_parent_freezes_its_subtree() {
    let mut state = ledger();
    let team = NewAccount { min_balance: None, ..account("team", "USD") };
    let member = NewAccount { parent: Some(id("team")), min_balance: None, ..account("team:a", "USD") };
    state.apply(&Request::CreateAccounts(vec![team, member]), T0);
    assert_eq!(set_closed(&mut state, "team", true, false), Updated, "nothing in it yet");
    let into_member = direct("t1", "world", "team:a", "1");
    assert_eq!(transfers(&mut state, vec![into_member]), [AccountClosed]);
    let allocation = allocate("split", "world", "2", &[("alice", 1), ("team:a", 1)], None);
    assert_eq!(transfers(&mut state, vec![allocation]), [AccountClosed]);
    assert_eq!(transfers(&mut state, vec![balancing("sweep", "team:a", "world", None)]), [AccountClosed]);
    assert_eq!(balance(&state, "alice"), 0, "the allocation applied no leg");
    // A wallet frozen for review keeps its balance and takes nothing in or out.
    transfers(&mut state, vec![direct("pay", "world", "alice", "5")]);
    assert_eq!(set_closed(&mut state, "alice", true, false), AccountNotEmpty);
    assert_eq!(set_closed(&mut state, "alice", true, true), Updated);
    assert_eq!(transfers(&mut state, vec![direct("out", "alice", "bob", "1")]), [AccountClosed]);
    assert_eq!(balance(&state, "alice"), 500);
}

#[test]
fn a_closed_accounts_holds_still_expire_and_its_state_is_kept_in_snapshots_and_as_of() {
    let mut state = ledger();
    transfers(&mut state, vec![direct("fund", "world", "alice", "5"), pending("hold", "alice", "bob", "2", Some(10))]);
    assert_eq!(set_closed(&mut state, "alice", true, true), Updated);
    let closed_at = state.last_seq();
    state.expire(T0 + 20_000_000);
    assert_eq!(state.account(&id("alice")).unwrap().totals.available(), 500, "the hold expired");
    assert_eq!(set_closed(&mut state, "alice", false, false), Updated);
    let restored = State::from_snapshot_bytes(&state.snapshot_bytes()).unwrap();
    assert!(restored.account_as_of(&id("alice"), closed_at).unwrap().settings.closed);
    assert!(!restored.account(&id("alice")).unwrap().settings.closed);
}
