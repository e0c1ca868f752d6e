//! Holds as leases: renewal, fencing tokens, and the root lock of a tree of records.

use crate::support::*;
use tally_core::ResultCode::*;
use tally_core::*;

const SECOND: u64 = 1_000_000_000;

fn renew(state: &mut State, hold: &str, timeout_ms: u64, if_seq: Option<u64>, at: u64) -> Outcome {
    let renewal = HoldRenewal { id: Id::parse_transfer(hold).unwrap(), timeout_ms, if_seq };
    state.apply(&Request::RenewHolds(vec![renewal]), at)[0]
}

/// A ledger of locks: `lock:<name>` holds one permit (its floor is -1) and every lease is a
/// hold of 1 from the lock (or a node under it) to `holders`.
fn locks(trees: &[&str]) -> State {
    let mut state = ledger();
    let mut accounts = vec![NewAccount { min_balance: None, ..account("holders", "USD") }];
    for tree in trees {
        accounts.push(NewAccount { min_balance: Some(dec("-1")), ..account(tree, "USD") });
        for node in ["a", "b", "b:c"] {
            let parent = if node == "b:c" { format!("{tree}:b") } else { tree.to_string() };
            accounts.push(NewAccount { parent: Some(id(&parent)), min_balance: None, ..account(&format!("{tree}:{node}"), "USD") });
        }
    }
    assert!(state.apply(&Request::CreateAccounts(accounts), T0).iter().all(|o| o.result == Created));
    state
}

fn lease(state: &mut State, name: &str, node: &str, timeout_ms: u64, at: u64) -> Outcome {
    state.apply(&Request::CreateTransfers(vec![pending(name, node, "holders", "1", Some(timeout_ms))]), at)[0]
}

#[test]
fn a_renewed_lease_outlives_its_first_timeout_and_expires_after_the_last() {
    let mut state = locks(&["lock:g0"]);
    let taken = lease(&mut state, "lease-1", "lock:g0", 30_000, T0);
    assert_eq!(taken.result, Created);
    let renewed = renew(&mut state, "lease-1", 30_000, Some(taken.seq), T0 + 20 * SECOND);
    assert_eq!(renewed.result, Updated);
    assert_eq!(state.transfer("lease-1").unwrap().detail.unwrap().expires_at, Some(renewed.timestamp + 30 * SECOND));
    assert_eq!(state.expire(T0 + 40 * SECOND), 0, "the first timeout has passed, the lease has not");
    assert_eq!(lease(&mut state, "lease-2", "lock:g0", 30_000, T0 + 41 * SECOND).result, ExceedsMinBalance);
    assert_eq!(state.expire(T0 + 51 * SECOND), 1);
    assert_eq!(state.transfer("lease-1").unwrap().state, TransferState::Expired);
    assert_eq!(renew(&mut state, "lease-1", 30_000, None, T0 + 52 * SECOND).result, PendingExpired);
    let journal = state.journal(renewed.seq - 1, u64::MAX, 1);
    assert!(matches!(&journal[..], [JournalEntry::Renewal { pending_id, .. }] if pending_id == "lease-1"), "{journal:?}");
}

#[test]
fn only_a_pending_hold_with_the_expected_token_is_renewed() {
    let mut state = locks(&["lock:g0"]);
    let first = lease(&mut state, "l1", "lock:g0", 60_000, T0);
    assert_eq!(renew(&mut state, "l1", 1_000, Some(first.seq + 1), T0).result, VersionMismatch);
    transfers(&mut state, vec![void("release-1", "l1"), direct("d", "world", "alice", "1")]);
    assert_eq!(renew(&mut state, "l1", 1_000, None, T0).result, PendingAlreadyVoided);
    lease(&mut state, "l2", "lock:g0", 60_000, T0);
    transfers(&mut state, vec![post("use-2", "l2", None)]);
    assert_eq!(renew(&mut state, "l2", 1_000, None, T0).result, PendingAlreadyPosted);
    assert_eq!(renew(&mut state, "d", 1_000, None, T0).result, PendingNotFound, "a transfer that is not a hold");
    assert_eq!(renew(&mut state, "nothing", 1_000, None, T0).result, PendingNotFound);
    // A hold placed without a timeout gets one.
    transfers(&mut state, vec![pending("open", "world", "alice", "1", None)]);
    let renewed = renew(&mut state, "open", 5, None, T0);
    assert_eq!(state.expire(renewed.timestamp + 5_000_000), 1);
}

#[test]
fn a_paused_holder_is_fenced_off_by_the_next_leases_higher_seq() {
    // The protected store keeps the highest token it has seen and refuses lower ones:
    // UPDATE ... SET fence = :token WHERE fence < :token.
    let mut fence = 0;
    let mut write = |token: u64| {
        let accepted = token > fence;
        fence = fence.max(token);
        accepted
    };
    let mut state = locks(&["lock:g0"]);
    let a = lease(&mut state, "holder-a", "lock:g0", 10_000, T0);
    assert!(write(a.seq));
    // A pauses (a long GC, a stopped VM) past its lease; the lease expires and B takes it.
    state.expire(T0 + 11 * SECOND);
    let b = lease(&mut state, "holder-b", "lock:g0", 10_000, T0 + 11 * SECOND);
    assert_eq!(b.result, Created);
    assert!(b.seq > a.seq, "seqs strictly increase across all leases");
    assert!(write(b.seq));
    // A wakes up still believing it holds the lock: its write carries the old token.
    assert!(!write(a.seq), "the store refuses the stale holder");
    assert_eq!(renew(&mut state, "holder-a", 10_000, Some(a.seq), T0 + 12 * SECOND).result, PendingExpired);
}

#[test]
fn a_lease_anywhere_in_a_tree_excludes_the_whole_tree_and_nothing_else() {
    let mut state = locks(&["lock:g0", "lock:g1"]);
    assert_eq!(lease(&mut state, "x", "lock:g0:b:c", 60_000, T0).result, Created);
    for node in ["lock:g0", "lock:g0:a", "lock:g0:b", "lock:g0:b:c"] {
        assert_eq!(lease(&mut state, &format!("y-{node}"), node, 60_000, T0).result, ExceedsMinBalance, "{node}");
    }
    assert_eq!(lease(&mut state, "z", "lock:g1:a", 60_000, T0).result, Created, "another tree is free");
    transfers(&mut state, vec![void("release-x", "x")]);
    assert_eq!(lease(&mut state, "y2", "lock:g0:a", 60_000, T0).result, Created);
}
