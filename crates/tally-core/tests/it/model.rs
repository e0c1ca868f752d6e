//! The state machine against a reference model that is slow and obvious: it keeps a flat list
//! of transfers, recomputes every subtree total from scratch, and handles a failed chain by
//! restoring a clone. Random requests (duplicates, chains, holds with timeouts, posts, voids,
//! bound changes, clock jumps) must give the same outcomes, seqs and balances in both.

use crate::support::*;
use proptest::prelude::*;
use std::collections::BTreeMap;
use tally_core::ResultCode::*;
use tally_core::*;

/// One account of the tree: id, parent, min_balance and max_balance in minor units.
type Node = (&'static str, Option<&'static str>, Option<i128>, Option<i128>);

const TREE: &[Node] = &[
    ("world", None, None, None),
    ("alice", None, Some(0), None),
    ("bob", None, Some(0), Some(5_000)),
    ("org", None, Some(-3_000), None),
    ("org:a", Some("org"), None, None),
    ("org:b", Some("org"), Some(-1_000), Some(2_000)),
    ("org:a:x", Some("org:a"), Some(0), None),
];

#[derive(Clone, Debug)]
struct ModelTransfer {
    event: NewTransfer,
    result: ResultCode,
    seq: u64,
    timestamp: u64,
    debit: usize,
    credit: usize,
    amount: i128,
    kind: RecordKind,
    hold_state: HoldState,
    expires_at: u64,
}

#[derive(Clone, Debug, Default)]
struct Model {
    bounds: Vec<(Option<i128>, Option<i128>)>,
    transfers: BTreeMap<String, ModelTransfer>,
    seq: u64,
    clock: u64,
}

fn index_of(name: &str) -> Option<usize> {
    TREE.iter().position(|(id, ..)| *id == name)
}

fn in_subtree(member: usize, root: usize) -> bool {
    let mut next = Some(member);
    while let Some(index) = next {
        if index == root {
            return true;
        }
        next = TREE[index].1.and_then(index_of);
    }
    false
}

fn same_event(a: &NewTransfer, b: &NewTransfer) -> bool {
    let normal = |e: &NewTransfer| {
        let mut e = e.clone();
        match &mut e.kind {
            TransferKind::Direct { amount, .. } | TransferKind::Pending { amount, .. } => *amount = amount.normalized(),
            TransferKind::Post { amount: Some(amount), .. } => *amount = amount.normalized(),
            _ => {}
        }
        e
    };
    normal(a) == normal(b)
}

impl Model {
    fn new() -> Model {
        Model { bounds: TREE.iter().map(|&(_, _, min, max)| (min, max)).collect(), ..Model::default() }
    }

    fn tick(&mut self, now: u64) -> u64 {
        self.clock = now.max(self.clock + 1);
        self.clock
    }

    /// Debits and credits that cross the boundary of `account`'s subtree.
    fn totals(&self, account: usize) -> Totals {
        let mut totals = Totals::default();
        for t in self.transfers.values().filter(|t| t.result == Created) {
            let (posted, pending) = match t.kind {
                RecordKind::Direct | RecordKind::Post => (t.amount as u128, 0),
                RecordKind::Pending if t.hold_state == HoldState::Pending => (0, t.amount as u128),
                _ => (0, 0),
            };
            match (in_subtree(t.debit, account), in_subtree(t.credit, account)) {
                (true, false) => {
                    totals.debits_posted += posted;
                    totals.debits_pending += pending;
                }
                (false, true) => {
                    totals.credits_posted += posted;
                    totals.credits_pending += pending;
                }
                _ => {}
            }
        }
        totals
    }

    fn bound_violation(&self) -> Option<ResultCode> {
        let all: Vec<_> = (0..TREE.len()).map(|i| (self.totals(i), self.bounds[i])).collect();
        if all.iter().any(|(t, (min, _))| min.is_some_and(|m| t.available() < m)) {
            return Some(ExceedsMinBalance);
        }
        if all.iter().any(|(t, (_, max))| max.is_some_and(|m| t.ceiling() > m)) {
            return Some(ExceedsMaxBalance);
        }
        None
    }

    fn expire(&mut self, now: u64) {
        let mut due: Vec<_> = self
            .transfers
            .values()
            .filter(|t| t.kind == RecordKind::Pending && t.hold_state == HoldState::Pending && t.expires_at != 0 && t.expires_at <= now)
            .map(|t| (t.expires_at, t.seq, t.event.id.as_str().to_owned()))
            .collect();
        due.sort();
        for (_, _, id) in due {
            self.seq += 1;
            self.tick(now);
            self.transfers.get_mut(&id).unwrap().hold_state = HoldState::Expired;
        }
    }

    /// The answer an id decided before gives when it comes again.
    fn known(&self, event: &NewTransfer) -> Option<Outcome> {
        let existing = self.transfers.get(event.id.as_str())?;
        let result = if !same_event(&existing.event, event) {
            ExistsWithDifferentFields
        } else if existing.result == Created {
            Exists
        } else {
            existing.result
        };
        Some(Outcome { result, seq: existing.seq, timestamp: existing.timestamp })
    }

    fn try_transfer(&mut self, event: &NewTransfer, now: u64) -> Result<Outcome, ResultCode> {
        if let Some(outcome) = self.known(event) {
            return if outcome.result == Exists { Ok(outcome) } else { Err(outcome.result) };
        }
        let stamp = now.max(self.clock + 1);
        let (debit, credit, amount, kind, hold, expires_at) = match &event.kind {
            TransferKind::Direct { debit, credit, amount } | TransferKind::Pending { debit, credit, amount, .. } => {
                if debit == credit {
                    return Err(SameAccount);
                }
                let (d, c) = (index_of(debit.as_str()).ok_or(AccountNotFound)?, index_of(credit.as_str()).ok_or(AccountNotFound)?);
                let amount = amount.to_minor(2).ok().filter(|a| *a > 0).ok_or(InvalidAmount)?;
                match &event.kind {
                    TransferKind::Pending { timeout_ms, .. } => {
                        (d, c, amount, RecordKind::Pending, None, timeout_ms.map_or(0, |ms| stamp + ms * 1_000_000))
                    }
                    _ => (d, c, amount, RecordKind::Direct, None, 0),
                }
            }
            TransferKind::Post { pending_id, .. } | TransferKind::Void { pending_id, .. } => {
                let amount = match &event.kind {
                    TransferKind::Post { amount, .. } => *amount,
                    _ => None,
                };
                let hold = self.transfers.get(pending_id.as_str()).ok_or(PendingNotFound)?;
                if hold.kind != RecordKind::Pending || hold.result != Created {
                    return Err(PendingNotFound);
                }
                match hold.hold_state {
                    HoldState::Posted => return Err(PendingAlreadyPosted),
                    HoldState::Voided => return Err(PendingAlreadyVoided),
                    HoldState::Expired => return Err(PendingExpired),
                    HoldState::Pending if hold.expires_at != 0 && hold.expires_at <= stamp => return Err(PendingExpired),
                    HoldState::Pending => {}
                }
                let (kind, posted) = match (&event.kind, amount.as_ref()) {
                    (TransferKind::Post { .. }, None) => (RecordKind::Post, hold.amount),
                    (TransferKind::Post { .. }, Some(amount)) => {
                        let posted = amount.to_minor(2).ok().filter(|a| *a > 0).ok_or(InvalidAmount)?;
                        if posted > hold.amount {
                            return Err(AmountExceedsPending);
                        }
                        (RecordKind::Post, posted)
                    }
                    _ => (RecordKind::Void, hold.amount),
                };
                (hold.debit, hold.credit, posted, kind, Some(pending_id.as_str().to_owned()), 0)
            }
        };
        let before = self.clone();
        if let Some(hold) = &hold {
            self.transfers.get_mut(hold).unwrap().hold_state = if kind == RecordKind::Post { HoldState::Posted } else { HoldState::Voided };
        }
        self.seq += 1;
        let timestamp = self.tick(now);
        let record = ModelTransfer {
            event: event.clone(),
            result: Created,
            seq: self.seq,
            timestamp,
            debit,
            credit,
            amount,
            kind,
            hold_state: HoldState::Pending,
            expires_at,
        };
        self.transfers.insert(event.id.as_str().to_owned(), record);
        if let Some(code) = self.bound_violation() {
            *self = before;
            return Err(code);
        }
        Ok(Outcome { result: Created, seq: self.seq, timestamp })
    }

    fn record_failure(&mut self, event: &NewTransfer, code: ResultCode, now: u64) -> Outcome {
        // An id decided before keeps its original outcome, whatever its chain did now.
        if let Some(outcome) = self.known(event) {
            return outcome;
        }
        self.seq += 1;
        let timestamp = self.tick(now);
        let record = ModelTransfer {
            event: event.clone(),
            result: code,
            seq: self.seq,
            timestamp,
            debit: 0,
            credit: 0,
            amount: 0,
            kind: RecordKind::Direct,
            hold_state: HoldState::Pending,
            expires_at: 0,
        };
        self.transfers.insert(event.id.as_str().to_owned(), record);
        Outcome { result: code, seq: self.seq, timestamp }
    }

    fn transfers(&mut self, events: &[NewTransfer], now: u64) -> Vec<Outcome> {
        let mut outcomes = Vec::new();
        let mut chain: Vec<&NewTransfer> = Vec::new();
        for (index, event) in events.iter().enumerate() {
            chain.push(event);
            let open = event.linked && index == events.len() - 1;
            if event.linked && !open {
                continue;
            }
            let saved = self.clone();
            let mut results = Vec::new();
            let mut failed = None;
            for (position, member) in chain.iter().enumerate() {
                if open && position == chain.len() - 1 {
                    failed = Some((position, LinkedChainOpen));
                    break;
                }
                match self.try_transfer(member, now) {
                    Ok(outcome) => results.push(outcome),
                    Err(code) if chain.len() == 1 => {
                        failed = Some((position, code));
                    }
                    Err(code) => {
                        failed = Some((position, code));
                        break;
                    }
                }
            }
            match failed {
                None => outcomes.extend(results),
                Some((position, code)) => {
                    *self = saved;
                    for (member_position, member) in chain.iter().enumerate() {
                        let code = if member_position == position { code } else { LinkedEventFailed };
                        outcomes.push(self.record_failure(member, code, now));
                    }
                }
            }
            chain.clear();
        }
        outcomes
    }
}

#[derive(Clone, Debug)]
enum Op {
    Transfers(Vec<NewTransfer>),
    Bounds { account: usize, min: Option<i128>, max: Option<i128> },
    Wait { ms: u64 },
}

fn name(index: usize) -> &'static str {
    TREE[index].0
}

fn transfer_strategy() -> impl Strategy<Value = NewTransfer> {
    let account = 0..TREE.len() + 1; // one past the end names an account that does not exist
    let account_name = |i: usize| if i < TREE.len() { name(i).to_owned() } else { "ghost".to_owned() };
    (0u8..24, 0..4u8, account.clone(), account, 1i64..2_500, 0..8u8, prop::option::of(1u64..40), 0..5u8, 0..24u8).prop_map(
        move |(id, kind, debit, credit, cents, extra, timeout, linked, hold)| {
            let amount = if extra == 0 {
                dec(&format!("{}.{:03}", cents / 100, cents % 1000))
            } else {
                dec(&format!("{}.{:02}", cents / 100, cents % 100))
            };
            let (debit, credit) = (account_name(debit), account_name(credit));
            let mut event = match kind {
                0 => direct(&format!("t{id}"), &debit, &credit, "1"),
                1 => pending(&format!("t{id}"), &debit, &credit, "1", timeout),
                2 => post(
                    &format!("t{id}"),
                    &format!("t{hold}"),
                    (extra < 3).then(|| format!("{}.{:02}", cents / 100, cents % 100)).as_deref(),
                ),
                _ => void(&format!("t{id}"), &format!("t{hold}")),
            };
            match &mut event.kind {
                TransferKind::Direct { amount: a, .. } | TransferKind::Pending { amount: a, .. } => *a = amount,
                _ => {}
            }
            event.linked = linked == 0;
            event
        },
    )
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => prop::collection::vec(transfer_strategy(), 1..6).prop_map(Op::Transfers),
        1 => (0..TREE.len(), prop::option::of(-4_000i128..1_000), prop::option::of(0i128..6_000))
            .prop_map(|(account, min, max)| Op::Bounds { account, min, max }),
        1 => (1u64..30).prop_map(|ms| Op::Wait { ms }),
    ]
}

fn build() -> State {
    let mut state = State::new();
    state.apply(&asset("USD", 2), T0);
    let accounts = TREE
        .iter()
        .map(|&(id_text, parent, min, max)| NewAccount {
            id: id(id_text),
            asset: AssetCode::parse("USD").unwrap(),
            parent: parent.map(id),
            min_balance: min.map(|m| dec(&format_minor(m, 2))),
            max_balance: max.map(|m| dec(&format_minor(m, 2))),
            metadata: None,
        })
        .collect();
    let outcomes = state.apply(&Request::CreateAccounts(accounts), T0);
    assert!(outcomes.iter().all(|o| o.result == Created));
    state
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn state_machine_matches_the_model(ops in prop::collection::vec(op_strategy(), 1..40)) {
        let mut state = build();
        let mut model = Model::new();
        model.seq = state.last_seq();
        model.clock = state.last_timestamp();
        let mut now = T0;
        let mut journal = Vec::new();
        for op in ops {
            now += 1_000_000;
            state.expire(now);
            model.expire(now);
            match op {
                Op::Transfers(events) => {
                    let request = Request::CreateTransfers(events.clone());
                    journal.push(batch(now, &request));
                    let got = state.apply(&request, now);
                    let want = model.transfers(&events, now);
                    prop_assert_eq!(got, want, "{:?}", events);
                }
                Op::Bounds { account, min, max } => {
                    let patch = AccountPatch {
                        min_balance: Some(min.map(|m| dec(&format_minor(m, 2)))),
                        max_balance: Some(max.map(|m| dec(&format_minor(m, 2)))),
                        ..AccountPatch::default()
                    };
                    let request = Request::UpdateAccounts(vec![AccountUpdate { id: id(name(account)), patch }]);
                    journal.push(batch(now, &request));
                    let got = state.apply(&request, now)[0];
                    let previous = model.bounds[account];
                    model.bounds[account] = (min, max);
                    let want = match model.bound_violation() {
                        Some(code) => { model.bounds[account] = previous; code }
                        None => { model.seq += 1; model.tick(now); Updated }
                    };
                    prop_assert_eq!(got.result, want);
                }
                Op::Wait { ms } => {
                    // Expiries happen at the start of every op, so this op's record carries them.
                    journal.push(batch(now, &Request::CreateTransfers(Vec::new())));
                    now += ms * 1_000_000;
                }
            }
            prop_assert_eq!(state.last_seq(), model.seq);
            for (index, (account_id, ..)) in TREE.iter().enumerate() {
                prop_assert_eq!(state.account(&id(account_id)).unwrap().totals, model.totals(index), "account {}", account_id);
            }
            prop_assert!(state.check_invariants().is_ok());
        }
        // Replaying the encoded journal gives the same state, and a snapshot restores it.
        let mut replayed = build();
        for bytes in &journal {
            let decoded = codec::decode_batch(bytes).unwrap();
            replayed.expire(decoded.timestamp);
            for request in &decoded.requests {
                replayed.apply(request, decoded.timestamp);
            }
        }
        let original = snapshot(&state);
        prop_assert!(original == snapshot(&replayed), "replay diverged");
        let restored = State::from_snapshot_bytes(&original).unwrap();
        prop_assert!(original == snapshot(&restored), "snapshot did not round-trip");
        for (account_id, ..) in TREE {
            let seq = state.last_seq() / 2;
            prop_assert_eq!(restored.account_as_of(&id(account_id), seq), state.account_as_of(&id(account_id), seq));
        }
    }
}

fn batch(now: u64, request: &Request) -> Vec<u8> {
    let mut out = codec::Encoder::default();
    codec::encode_batch(now, &[request], &mut out);
    out.bytes
}

fn snapshot(state: &State) -> Vec<u8> {
    state.snapshot_bytes()
}
