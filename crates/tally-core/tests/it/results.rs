//! Every result code, each produced by the smallest story that leads to it, plus the stories
//! the product exists for: job slots, team budgets, holds, chains, retries, point-in-time reads.

use crate::support::*;
use std::collections::BTreeSet;
use tally_core::limits::ALLOCATION_SHARES_MAX;
use tally_core::ResultCode::*;
use tally_core::*;

#[test]
fn direct_transfers_move_exact_amounts_and_respect_the_floor() {
    let mut state = ledger();
    assert_eq!(transfers(&mut state, vec![direct("fund", "world", "alice", "100.00")]), [Created]);
    assert_eq!(transfers(&mut state, vec![direct("t1", "alice", "bob", "100.01")]), [ExceedsMinBalance]);
    assert_eq!(transfers(&mut state, vec![direct("t2", "alice", "bob", "0.10")]), [Created]);
    assert_eq!(balance(&state, "alice"), 9990);
    assert_eq!(balance(&state, "bob"), 10);
    assert_eq!(balance(&state, "world"), -10000);
    state.check_invariants().unwrap();
}

#[test]
fn amounts_are_never_rounded() {
    let mut state = ledger();
    assert_eq!(transfers(&mut state, vec![direct("fund", "world", "alice", "1.005")]), [InvalidAmount]);
    assert_eq!(transfers(&mut state, vec![direct("zero", "world", "alice", "0.00")]), [InvalidAmount]);
    assert_eq!(transfers(&mut state, vec![direct("neg", "world", "alice", "-1")]), [InvalidAmount]);
    assert_eq!(balance(&state, "alice"), 0);
}

#[test]
fn accounts_are_checked_when_created() {
    let mut state = ledger();
    let create = |state: &mut State, account: NewAccount| state.apply(&Request::CreateAccounts(vec![account]), T0)[0].result;
    assert_eq!(create(&mut state, account("alice", "USD")), Exists);
    assert_eq!(create(&mut state, NewAccount { max_balance: Some(dec("5")), ..account("alice", "USD") }), ExistsWithDifferentFields);
    assert_eq!(create(&mut state, account("carol", "EUR")), AssetNotFound);
    assert_eq!(create(&mut state, NewAccount { parent: Some(id("nobody")), ..account("carol", "USD") }), ParentNotFound);
    assert_eq!(create(&mut state, NewAccount { min_balance: Some(dec("0.001")), ..account("carol", "USD") }), InvalidAmount);
    assert_eq!(create(&mut state, NewAccount { min_balance: Some(dec("1")), ..account("carol", "USD") }), ExceedsMinBalance);
    assert_eq!(create(&mut state, NewAccount { max_balance: Some(dec("-1")), ..account("carol", "USD") }), ExceedsMaxBalance);
    state.apply(&asset("EUR", 2), T0);
    assert_eq!(create(&mut state, NewAccount { parent: Some(id("alice")), ..account("carol", "EUR") }), AssetMismatch);
    let mut parent = "alice".to_owned();
    for level in 2..=16 {
        let name = format!("level{level}");
        assert_eq!(create(&mut state, NewAccount { parent: Some(id(&parent)), ..account(&name, "USD") }), Created);
        parent = name;
    }
    assert_eq!(create(&mut state, NewAccount { parent: Some(id(&parent)), ..account("level17", "USD") }), DepthExceeded);
}

#[test]
fn assets_are_created_once() {
    let mut state = State::new();
    assert_eq!(state.apply(&asset("USD", 2), T0)[0].result, Created);
    assert_eq!(state.apply(&asset("USD", 2), T0)[0].result, Exists);
    assert_eq!(state.apply(&asset("USD", 3), T0)[0].result, ExistsWithDifferentFields);
    assert_eq!(state.apply(&asset("BIG", 19), T0)[0].result, InvalidScale);
}

#[test]
fn transfers_name_what_is_wrong() {
    let mut state = ledger();
    state.apply(&asset("EUR", 2), T0);
    state.apply(&Request::CreateAccounts(vec![account("euro", "EUR")]), T0);
    assert_eq!(transfers(&mut state, vec![direct("a", "alice", "alice", "1")]), [SameAccount]);
    assert_eq!(transfers(&mut state, vec![direct("b", "alice", "nobody", "1")]), [AccountNotFound]);
    assert_eq!(transfers(&mut state, vec![direct("c", "world", "euro", "1")]), [AssetMismatch]);
    let mut with_asset = direct("d", "world", "alice", "1");
    with_asset.asset = Some(AssetCode::parse("GBP").unwrap());
    assert_eq!(transfers(&mut state, vec![with_asset.clone()]), [AssetNotFound]);
    with_asset.id = id("e");
    with_asset.asset = Some(AssetCode::parse("EUR").unwrap());
    assert_eq!(transfers(&mut state, vec![with_asset]), [AssetMismatch]);
}

#[test]
fn retries_return_the_original_outcome_and_never_apply_twice() {
    let mut state = ledger();
    let fund = direct("fund", "world", "alice", "10.00");
    let first = state.apply(&Request::CreateTransfers(vec![fund.clone()]), T0)[0];
    let again = state.apply(&Request::CreateTransfers(vec![fund.clone()]), T0 + 5)[0];
    assert_eq!((again.result, again.seq, again.timestamp), (Exists, first.seq, first.timestamp));
    assert_eq!(balance(&state, "alice"), 1000);
    // "10.0" is the same amount written differently: still the same event.
    assert_eq!(transfers(&mut state, vec![direct("fund", "world", "alice", "10.0")]), [Exists]);
    assert_eq!(transfers(&mut state, vec![direct("fund", "world", "alice", "10.01")]), [ExistsWithDifferentFields]);

    // A failure is decided too: once money arrives, the retry still fails.
    let overdraw = direct("pay", "bob", "alice", "5.00");
    assert_eq!(transfers(&mut state, vec![overdraw.clone()]), [ExceedsMinBalance]);
    transfers(&mut state, vec![direct("fund-bob", "world", "bob", "50.00")]);
    assert_eq!(transfers(&mut state, vec![overdraw]), [ExceedsMinBalance]);
    assert_eq!(balance(&state, "bob"), 5000);
}

#[test]
fn holds_are_posted_voided_or_expire_exactly_once() {
    let mut state = ledger();
    transfers(&mut state, vec![direct("fund", "world", "alice", "100.00")]);
    assert_eq!(transfers(&mut state, vec![pending("h1", "alice", "bob", "60.00", None)]), [Created]);
    let alice = state.account(&id("alice")).unwrap();
    assert_eq!((alice.totals.balance(), alice.totals.available()), (10000, 4000));
    assert_eq!(transfers(&mut state, vec![pending("h2", "alice", "bob", "40.01", None)]), [ExceedsMinBalance]);
    assert_eq!(transfers(&mut state, vec![post("p1", "h1", Some("60.01"))]), [AmountExceedsPending]);
    assert_eq!(transfers(&mut state, vec![post("p1", "h1", Some("45.50"))]), [ExistsWithDifferentFields], "p1 is decided");
    assert_eq!(transfers(&mut state, vec![post("p1b", "h1", Some("45.50"))]), [Created]);
    assert_eq!(transfers(&mut state, vec![post("p2", "h1", None)]), [PendingAlreadyPosted]);
    assert_eq!(transfers(&mut state, vec![void("v1", "h1")]), [PendingAlreadyPosted]);
    assert_eq!((balance(&state, "alice"), balance(&state, "bob")), (5450, 4550));
    assert_eq!(state.account(&id("alice")).unwrap().totals.debits_pending, 0);

    assert_eq!(transfers(&mut state, vec![pending("h3", "alice", "bob", "10.00", None)]), [Created]);
    assert_eq!(transfers(&mut state, vec![void("v3", "h3")]), [Created]);
    assert_eq!(transfers(&mut state, vec![post("p3", "h3", None)]), [PendingAlreadyVoided]);
    assert_eq!(transfers(&mut state, vec![void("v4", "fund")]), [PendingNotFound]);
    assert_eq!(transfers(&mut state, vec![void("v5", "nothing")]), [PendingNotFound]);

    assert_eq!(transfers(&mut state, vec![pending("h4", "alice", "bob", "1.00", Some(1_000))]), [Created]);
    let mut wrong_side = post("p4", "h4", None);
    if let TransferKind::Post { debit, .. } = &mut wrong_side.kind {
        *debit = Some(id("world"));
    }
    assert_eq!(transfers(&mut state, vec![wrong_side]), [PendingAccountMismatch]);
    assert_eq!(state.expire(T0 + 999_000_000), 0);
    assert_eq!(state.expire(T0 + 2_000_000_000), 1);
    assert_eq!(state.expire(T0 + 3_000_000_000), 0, "a hold expires once");
    let expired = state.apply(&Request::CreateTransfers(vec![post("p5", "h4", None)]), T0 + 4_000_000_000);
    assert_eq!(expired[0].result, PendingExpired);
    assert_eq!(state.transfer("h4").unwrap().state, TransferState::Expired);
    assert_eq!(state.account(&id("alice")).unwrap().totals.available(), 5450);
    state.check_invariants().unwrap();
}

#[test]
fn a_hold_past_its_timeout_cannot_be_posted_even_before_it_is_expired() {
    let mut state = ledger();
    transfers(&mut state, vec![direct("fund", "world", "alice", "1.00"), pending("h", "alice", "bob", "1.00", Some(10))]);
    let late = state.apply(&Request::CreateTransfers(vec![post("p", "h", None)]), T0 + 11_000_000);
    assert_eq!(late[0].result, PendingExpired);
}

#[test]
fn a_failed_chain_leaves_no_trace_and_the_rest_of_the_request_stands() {
    let mut state = ledger();
    transfers(&mut state, vec![direct("fund", "world", "alice", "10.00")]);
    let before = state.account(&id("alice")).unwrap();
    let results = transfers(
        &mut state,
        vec![
            linked(direct("c1", "alice", "bob", "6.00")),
            linked(pending("c2", "alice", "bob", "1.00", Some(50))),
            direct("c3", "alice", "bob", "6.00"),
            direct("after", "world", "bob", "1.00"),
        ],
    );
    assert_eq!(results, [LinkedEventFailed, LinkedEventFailed, ExceedsMinBalance, Created]);
    assert_eq!(state.account(&id("alice")).unwrap(), before);
    assert_eq!(balance(&state, "bob"), 100);
    assert_eq!(state.next_expiry(), None, "the rolled back hold is not scheduled");
    // The chain's ids are decided as failed.
    assert_eq!(state.transfer("c1").unwrap().result, LinkedEventFailed);
    assert_eq!(
        transfers(&mut state, vec![linked(direct("c1", "alice", "bob", "6.00")), direct("c4", "world", "bob", "1")]),
        [LinkedEventFailed, LinkedEventFailed]
    );
}

#[test]
fn a_chain_left_open_fails_as_a_whole() {
    let mut state = ledger();
    let results = transfers(&mut state, vec![linked(direct("a", "world", "alice", "1")), linked(direct("b", "world", "bob", "1"))]);
    assert_eq!(results, [LinkedEventFailed, LinkedChainOpen]);
    assert_eq!(balance(&state, "alice"), 0);
}

#[test]
fn versions_guard_against_lost_updates() {
    let mut state = ledger();
    let version = state.account(&id("alice")).unwrap().version;
    let mut guarded = direct("g1", "world", "alice", "1");
    guarded.if_credit_version = Some(version + 1);
    assert_eq!(transfers(&mut state, vec![guarded.clone()]), [VersionMismatch]);
    guarded.id = id("g2");
    guarded.if_credit_version = Some(version);
    assert_eq!(transfers(&mut state, vec![guarded]), [Created]);
    assert_eq!(state.account(&id("alice")).unwrap().version, version + 1);

    let patch = |if_version| {
        Request::UpdateAccounts(vec![AccountUpdate {
            id: id("alice"),
            patch: AccountPatch { min_balance: Some(Some(dec("-5"))), if_version: Some(if_version), ..Default::default() },
        }])
    };
    assert_eq!(state.apply(&patch(version), T0)[0].result, VersionMismatch);
    assert_eq!(state.apply(&patch(version + 1), T0)[0].result, Updated);
}

#[test]
fn bounds_change_at_runtime_only_if_current_balances_allow() {
    let mut state = ledger();
    transfers(&mut state, vec![direct("fund", "world", "alice", "10.00")]);
    let update = |min: Option<&str>, max: Option<&str>| {
        Request::UpdateAccounts(vec![AccountUpdate {
            id: id("alice"),
            patch: AccountPatch { min_balance: min.map(|m| Some(dec(m))), max_balance: max.map(|m| Some(dec(m))), ..Default::default() },
        }])
    };
    assert_eq!(state.apply(&update(Some("10.01"), None), T0)[0].result, ExceedsMinBalance);
    assert_eq!(state.apply(&update(None, Some("9.99")), T0)[0].result, ExceedsMaxBalance);
    assert_eq!(state.apply(&update(None, Some("10.001")), T0)[0].result, InvalidAmount);
    assert_eq!(state.apply(&update(None, Some("10.00")), T0)[0].result, Updated);
    assert_eq!(transfers(&mut state, vec![direct("more", "world", "alice", "0.01")]), [ExceedsMaxBalance]);
    let missing = Request::UpdateAccounts(vec![AccountUpdate { id: id("nobody"), patch: AccountPatch::default() }]);
    assert_eq!(state.apply(&missing, T0)[0].result, AccountNotFound);
}

#[test]
fn a_job_with_two_slots_takes_two_of_six_applicants_and_a_rejection_frees_nothing() {
    let mut state = State::new();
    state.apply(&asset("SLOT", 0), T0);
    let job = NewAccount { min_balance: None, max_balance: Some(dec("2")), ..account("job-1", "SLOT") };
    let pool = NewAccount { min_balance: None, ..account("applicants", "SLOT") };
    state.apply(&Request::CreateAccounts(vec![job, pool]), T0);
    let applications: Vec<_> = (1..=6).map(|n| pending(&format!("apply-{n}"), "applicants", "job-1", "1", None)).collect();
    let results = transfers(&mut state, applications);
    assert_eq!(results, [Created, Created, ExceedsMaxBalance, ExceedsMaxBalance, ExceedsMaxBalance, ExceedsMaxBalance]);
    // Rejecting applicant 1 voids its hold: the slot frees. Accepting 2 posts it.
    assert_eq!(transfers(&mut state, vec![void("reject-1", "apply-1"), post("accept-2", "apply-2", None)]), [Created, Created]);
    assert_eq!(transfers(&mut state, vec![pending("apply-7", "applicants", "job-1", "1", None)]), [Created]);
    assert_eq!(transfers(&mut state, vec![pending("apply-8", "applicants", "job-1", "1", None)]), [ExceedsMaxBalance]);
}

#[test]
fn a_parent_bound_binds_its_whole_subtree_and_internal_transfers_net_out() {
    let mut state = ledger();
    let org = NewAccount { min_balance: Some(dec("-100.00")), ..account("org", "USD") };
    let team = |name: &str| NewAccount { parent: Some(id("org")), min_balance: None, ..account(name, "USD") };
    let outcomes = state.apply(&Request::CreateAccounts(vec![org, team("org:a"), team("org:b")]), T0);
    assert!(outcomes.iter().all(|o| o.result == Created));
    // Each team may go negative alone, but together they may spend at most 100.
    assert_eq!(transfers(&mut state, vec![direct("s1", "org:a", "world", "70.00")]), [Created]);
    assert_eq!(transfers(&mut state, vec![direct("s2", "org:b", "world", "30.01")]), [ExceedsMinBalance]);
    assert_eq!(transfers(&mut state, vec![direct("s3", "org:b", "world", "30.00")]), [Created]);
    // Moving budget between teams nets out at the org, so it is allowed.
    assert_eq!(transfers(&mut state, vec![direct("s4", "org:b", "org:a", "500.00")]), [Created]);
    let org = state.account(&id("org")).unwrap();
    assert_eq!((org.totals.balance(), org.totals.debits_posted), (-10000, 10000));
    assert_eq!(balance(&state, "org:a"), 43000);
    assert_eq!(state.accounts_page("", &Under::Parent(id("org")), None, 10).unwrap().len(), 2);
    state.check_invariants().unwrap();
}

#[test]
fn overflow_is_refused_not_wrapped() {
    let mut state = State::new();
    state.apply(&asset("PTS", 0), T0);
    let unbounded = |name: &str| NewAccount { min_balance: None, ..account(name, "PTS") };
    state.apply(&Request::CreateAccounts(vec![unbounded("a"), unbounded("b")]), T0);
    let half = TOTAL_MAX.to_string();
    assert_eq!(transfers(&mut state, vec![direct("t1", "a", "b", &half)]), [Created]);
    assert_eq!(transfers(&mut state, vec![direct("t2", "a", "b", "1")]), [Overflow]);
    state.check_invariants().unwrap();
}

#[test]
fn balances_as_of_any_seq_match_what_was_seen_then() {
    let mut state = ledger();
    let mut seen = Vec::new();
    for n in 0..20u32 {
        let event = match n % 4 {
            0 => direct(&format!("t{n}"), "world", "alice", "3.00"),
            1 => pending(&format!("t{n}"), "alice", "bob", "1.00", None),
            2 => post(&format!("t{n}"), &format!("t{}", n - 1), Some("0.50")),
            _ => direct(&format!("t{n}"), "alice", "bob", "0.25"),
        };
        transfers(&mut state, vec![event]);
        seen.push((state.last_seq(), state.account(&id("alice")).unwrap(), state.account(&id("bob")).unwrap()));
    }
    for (seq, alice, bob) in seen {
        assert_eq!(state.account_as_of(&id("alice"), seq).unwrap(), alice);
        assert_eq!(state.account_as_of(&id("bob"), seq).unwrap(), bob);
    }
    assert_eq!(state.account_as_of(&id("alice"), 1), None, "alice did not exist at seq 1");
}

#[test]
fn seqs_and_timestamps_strictly_increase_even_if_the_clock_steps_back() {
    let mut state = ledger();
    let first = state.apply(&Request::CreateTransfers(vec![direct("a", "world", "alice", "1")]), T0 * 10)[0];
    let second = state.apply(&Request::CreateTransfers(vec![direct("b", "world", "alice", "1")]), T0)[0];
    assert_eq!(second.seq, first.seq + 1);
    assert!(second.timestamp > first.timestamp);
}

#[test]
fn every_result_code_is_reachable() {
    // Collects the codes the tests above produce by replaying their key steps; a new code
    // without a story fails here.
    let mut seen = BTreeSet::new();
    let mut state = ledger();
    state.apply(&asset("EUR", 2), T0);
    let mut note = |outcomes: Vec<Outcome>| seen.extend(outcomes.into_iter().map(|o| o.result));
    note(state.apply(&asset("EUR", 2), T0));
    note(state.apply(&asset("EUR", 3), T0));
    note(state.apply(&asset("X", 19), T0));
    note(state.apply(
        &Request::CreateAccounts(vec![
            account("e1", "EUR"),
            account("e2", "GBP"),
            NewAccount { parent: Some(id("none")), ..account("e3", "EUR") },
            NewAccount { parent: Some(id("alice")), ..account("e4", "EUR") },
            NewAccount { min_balance: Some(dec("1")), ..account("e5", "EUR") },
            NewAccount { max_balance: Some(dec("-1")), ..account("e6", "EUR") },
            NewAccount { max_balance: Some(dec("0.001")), ..account("e7", "EUR") },
        ]),
        T0,
    ));
    let mut chain_of_depth = Vec::new();
    let mut parent = "e1".to_owned();
    for level in 2..=17 {
        let name = format!("d{level}");
        chain_of_depth.push(NewAccount { parent: Some(id(&parent)), ..account(&name, "EUR") });
        parent = name;
    }
    note(state.apply(&Request::CreateAccounts(chain_of_depth), T0));
    note(state.apply(
        &Request::UpdateAccounts(vec![
            AccountUpdate { id: id("alice"), patch: AccountPatch { if_version: Some(99), ..Default::default() } },
            AccountUpdate { id: id("alice"), patch: AccountPatch::default() },
            AccountUpdate { id: id("ghost"), patch: AccountPatch::default() },
        ]),
        T0,
    ));
    let mut versioned = direct("v", "world", "alice", "1");
    versioned.if_debit_version = Some(99);
    let mut held = pending("h", "world", "alice", "1", Some(1));
    held.metadata = Some(Metadata::parse("{}").unwrap());
    note(state.apply(
        &Request::CreateTransfers(vec![
            direct("f", "world", "alice", "5"),
            direct("f", "world", "alice", "5"),
            direct("f", "world", "alice", "6"),
            direct("s", "alice", "alice", "1"),
            direct("n", "alice", "ghost", "1"),
            direct("m", "alice", "e1", "1"),
            direct("i", "world", "alice", "0.001"),
            direct("x", "bob", "alice", "1"),
            versioned,
            pending("h0", "world", "bob", "1", None),
            post("p0", "h0", Some("2")),
            post("p1", "h0", None),
            void("p2", "h0"),
            pending("h1", "world", "bob", "1", None),
            void("p3", "h1"),
            post("p4", "h1", None),
            void("p5", "nothing"),
            held,
            linked(direct("c1", "world", "bob", "1")),
            direct("c2", "bob", "alice", "100"),
            linked(direct("o1", "world", "bob", "1")),
        ]),
        T0,
    ));
    let mut wrong = post("w", "h", None);
    if let TransferKind::Post { credit, .. } = &mut wrong.kind {
        *credit = Some(id("bob"));
    }
    note(state.apply(&Request::CreateTransfers(vec![wrong]), T0));
    note(state.apply(&Request::CreateTransfers(vec![post("late", "h", None)]), T0 * 5));
    let big = NewAccount { min_balance: None, ..account("big", "EUR") };
    state.apply(&Request::CreateAccounts(vec![big, NewAccount { min_balance: None, ..account("big2", "EUR") }]), T0);
    note(state.apply(
        &Request::CreateTransfers(vec![
            direct("b1", "big", "big2", &TOTAL_MAX.to_string()[..TOTAL_MAX.to_string().len() - 2]),
            direct("b2", "big", "big2", &TOTAL_MAX.to_string()[..TOTAL_MAX.to_string().len() - 2]),
        ]),
        T0,
    ));
    // Posts naming allocations of 1,000 held legs each: the seventeenth would take the request
    // past its 16,380 entries.
    let unbounded = |name: &str| NewAccount { min_balance: None, ..account(name, "EUR") };
    state.apply(&Request::CreateAccounts(vec![unbounded("w1"), unbounded("w2")]), T0);
    let wide: Vec<(String, u64)> = (0..ALLOCATION_SHARES_MAX).map(|_| ("w2".to_owned(), 1)).collect();
    let wide: Vec<(&str, u64)> = wide.iter().map(|(credit, weight)| (credit.as_str(), *weight)).collect();
    for n in 0..17 {
        let held = allocate(&format!("wide{n}"), "w1", "1000", &wide, Some(None));
        assert_eq!(state.apply(&Request::CreateTransfers(vec![held]), T0)[0].result, Created);
    }
    let posts = (0..17).map(|n| post(&format!("all{n}"), &format!("wide{n}"), None)).collect();
    let outcomes = state.apply(&Request::CreateTransfers(posts), T0);
    assert_eq!(outcomes.iter().filter(|o| o.result == Created).count(), 16);
    note(outcomes);
    let close = |force| AccountUpdate { id: id("w1"), patch: AccountPatch { closed: Some(true), force, ..AccountPatch::default() } };
    note(state.apply(&Request::UpdateAccounts(vec![close(false), close(true)]), T0));
    note(state.apply(&Request::CreateTransfers(vec![direct("shut", "w1", "w2", "1")]), T0));
    let all: BTreeSet<_> = ResultCode::ALL.iter().copied().collect();
    let missing: Vec<_> = all.difference(&seen).collect();
    assert!(missing.is_empty(), "no story produces {missing:?}");
}

#[test]
fn balances_as_of_stay_exact_across_checkpoints_and_snapshots() {
    let mut state = ledger();
    let mut seen = Vec::new();
    for n in 0..3_000u32 {
        let event = match n % 3 {
            0 => direct(&format!("t{n}"), "world", "alice", "2.00"),
            1 => pending(&format!("t{n}"), "alice", "bob", "1.00", None),
            _ => void(&format!("t{n}"), &format!("t{}", n - 1)),
        };
        assert_eq!(transfers(&mut state, vec![event]), [ResultCode::Created]);
        seen.push((state.last_seq(), state.account(&id("alice")).unwrap()));
    }
    assert!(state.account(&id("alice")).unwrap().version > 2 * tally_core::state::CHECKPOINT_INTERVAL as u64);
    let restored = State::from_snapshot_bytes(&state.snapshot_bytes()).unwrap();
    for (seq, alice) in seen.iter().step_by(7) {
        assert_eq!(state.account_as_of(&id("alice"), *seq).as_ref(), Some(alice), "seq {seq}");
        assert_eq!(restored.account_as_of(&id("alice"), *seq).as_ref(), Some(alice), "restored, seq {seq}");
    }
}

#[test]
fn a_retried_chain_hears_exactly_the_answers_it_heard_the_first_time() {
    let mut state = ledger();
    transfers(&mut state, vec![direct("fund", "world", "alice", "10.00")]);
    let chain = vec![
        linked(direct("r1", "alice", "bob", "2.00")),
        linked(pending("r2", "alice", "bob", "3.00", None)),
        direct("r3", "alice", "bob", "9.00"),
    ];
    let first = state.apply(&Request::CreateTransfers(chain.clone()), T0);
    assert_eq!(first.iter().map(|o| o.result).collect::<Vec<_>>(), [LinkedEventFailed, LinkedEventFailed, ExceedsMinBalance]);
    transfers(&mut state, vec![direct("more", "world", "alice", "100.00")]);
    let again = state.apply(&Request::CreateTransfers(chain), T0);
    assert_eq!(again, first, "same results, same seqs: the retry changed nothing");
    assert_eq!(balance(&state, "bob"), 0);
}

#[test]
fn holds_that_expire_together_are_listed_in_seq_order_and_pages_continue_between_them() {
    const SECOND: u64 = 1_000_000_000;
    let mut state = ledger();
    transfers(&mut state, vec![direct("fund", "world", "alice", "100.00")]);
    let hold = |name: &str, timeout_ms: u64| Request::CreateTransfers(vec![pending(name, "alice", "bob", "1.00", Some(timeout_ms))]);
    state.apply(&hold("a", 2_000), T0 + SECOND);
    state.apply(&hold("b", 1_000), T0 + 2 * SECOND);
    state.apply(&hold("c", 500), T0 + 2 * SECOND + 1);
    let expiry = |view: &TransferView| view.detail.as_ref().unwrap().expires_at.unwrap();
    let listed = state.expiring_holds(None, 10);
    let ids: Vec<&str> = listed.iter().map(|v| v.id.as_str()).collect();
    assert_eq!(ids, ["c", "a", "b"]);
    assert_eq!(expiry(&listed[1]), expiry(&listed[2]), "a and b expire at the same time");
    let after_a = state.expiring_holds(Some((expiry(&listed[1]), listed[1].seq)), 10);
    assert_eq!(after_a.iter().map(|v| v.id.as_str()).collect::<Vec<_>>(), ["b"], "the page after a holds b, which expires with it");
    assert!(state.expiring_holds(Some((expiry(&listed[2]), listed[2].seq)), 10).is_empty());
    state.apply(&Request::CreateTransfers(vec![void("v", "a")]), T0 + 2 * SECOND + 2);
    assert_eq!(
        state.expiring_holds(None, 10).iter().map(|v| v.id.as_str()).collect::<Vec<_>>(),
        ["c", "b"],
        "a resolved hold is no longer listed"
    );
}

#[test]
fn the_memory_a_state_holds_is_measured_part_by_part() {
    use tally_core::chunked::{CHUNK_ITEMS, STRING_CHUNK_BYTES};
    let mut state = ledger();
    let before = state.memory();
    assert_eq!((before.transfer_records, before.transfer_text), (0, 0), "nothing allocated before the first transfer");
    assert!(before.accounts > 0 && before.account_history > 0);
    let funds: Vec<NewTransfer> = (0..2_000).map(|n| direct(&format!("t{n}"), "world", "alice", "1.00")).collect();
    transfers(&mut state, funds);
    let after = state.memory();
    assert_eq!(after.transfer_records, CHUNK_ITEMS * 64, "one chunk of 64-byte records");
    assert_eq!(after.transfer_text, STRING_CHUNK_BYTES, "one chunk of ids");
    assert!(after.transfer_index >= 2_000 * 9, "every id is in the index: {after:?}");
    assert!(after.account_history >= before.account_history + 2 * 2_000 * 8, "both sides note every change: {after:?}");
    assert!(after.journal >= 2_000 * 8);
    assert_eq!(after.total(), after.parts().iter().map(|(_, bytes)| bytes).sum::<usize>());
}
