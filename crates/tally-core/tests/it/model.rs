//! The state machine against a reference model that is slow and obvious: it keeps a flat list
//! of transfers, recomputes every subtree total from scratch, handles a failed chain by
//! restoring a clone, and finds what a balancing transfer can move by trying amounts. Random
//! requests (duplicates, chains, holds with timeouts, posts, voids, balancing transfers and
//! holds, allocations and their posts and voids, holds renewed, bound changes, accounts
//! closed and reopened, clock jumps) must give the same outcomes, seqs and balances in both.

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
    closed: Vec<bool>,
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

fn leg(id: &str, index: usize) -> String {
    format!("{id}/{index}")
}

fn cents(amount: i128) -> Moved {
    Moved { amount: amount as u128, scale: 2 }
}

/// The split as the API documents it: each part the floor of its exact share, then one unit
/// each to the largest remainders, the earlier part first among equals.
fn largest_remainders(total: i128, weights: &[i128]) -> Vec<i128> {
    let sum: i128 = weights.iter().sum();
    let mut parts: Vec<i128> = weights.iter().map(|w| total * w / sum).collect();
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by_key(|&i| (std::cmp::Reverse(total * weights[i] % sum), i));
    let left_over = total - parts.iter().sum::<i128>();
    for &i in order.iter().take(left_over as usize) {
        parts[i] += 1;
    }
    parts
}

fn same_event(a: &NewTransfer, b: &NewTransfer) -> bool {
    let normal = |e: &NewTransfer| {
        let mut e = e.clone();
        match &mut e.kind {
            TransferKind::Direct { amount, .. } | TransferKind::Pending { amount, .. } => *amount = amount.normalized(),
            TransferKind::Post { amount: Some(amount), .. } | TransferKind::Allocate { amount, .. } => *amount = amount.normalized(),
            _ => {}
        }
        e
    };
    normal(a) == normal(b)
}

impl Model {
    fn new() -> Model {
        Model { bounds: TREE.iter().map(|&(_, _, min, max)| (min, max)).collect(), closed: vec![false; TREE.len()], ..Model::default() }
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

    /// Refuses an account that is closed, or under one that is.
    fn open(&self, account: usize) -> Result<usize, ResultCode> {
        match (0..TREE.len()).any(|other| self.closed[other] && in_subtree(account, other)) {
            true => Err(AccountClosed),
            false => Ok(account),
        }
    }

    fn renew(&mut self, hold: &str, timeout_ms: u64, if_seq: Option<u64>, now: u64) -> Outcome {
        let stamp = now.max(self.clock + 1);
        let Some(held) = self.transfers.get(hold) else { return Outcome::unrecorded(PendingNotFound) };
        let refused = match held.hold_state {
            _ if held.kind != RecordKind::Pending || held.result != Created => Some(PendingNotFound),
            HoldState::Posted => Some(PendingAlreadyPosted),
            HoldState::Voided => Some(PendingAlreadyVoided),
            HoldState::Expired => Some(PendingExpired),
            HoldState::Pending if held.expires_at != 0 && held.expires_at <= stamp => Some(PendingExpired),
            HoldState::Pending if if_seq.is_some_and(|seq| seq != held.seq) => Some(VersionMismatch),
            HoldState::Pending => None,
        };
        if let Some(code) = refused {
            return Outcome::unrecorded(code);
        }
        self.transfers.get_mut(hold).unwrap().expires_at = stamp + timeout_ms * 1_000_000;
        self.seq += 1;
        let timestamp = self.tick(now);
        Outcome { result: Updated, seq: self.seq, timestamp, moved: None }
    }

    fn close(&mut self, account: usize, closed: bool, force: bool, now: u64) -> ResultCode {
        let totals = self.totals(account);
        let settled = totals.balance() == 0 && totals.debits_pending == 0 && totals.credits_pending == 0;
        if closed && !self.closed[account] && !force && !settled {
            return AccountNotEmpty;
        }
        self.closed[account] = closed;
        self.seq += 1;
        self.tick(now);
        Updated
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
            .iter()
            .filter(|(_, t)| {
                t.kind == RecordKind::Pending && t.hold_state == HoldState::Pending && t.expires_at != 0 && t.expires_at <= now
            })
            .map(|(id, t)| (t.expires_at, t.seq, id.clone()))
            .collect();
        due.sort();
        for (_, _, id) in due {
            self.seq += 1;
            self.tick(now);
            self.transfers.get_mut(&id).unwrap().hold_state = HoldState::Expired;
        }
    }

    /// The answer an id decided before gives when it comes again. An event that may have
    /// applied as legs is found by its first leg.
    fn known(&self, event: &NewTransfer) -> Option<Outcome> {
        let may_have_legs = matches!(event.kind, TransferKind::Allocate { .. } | TransferKind::Post { .. } | TransferKind::Void { .. });
        let existing = self
            .transfers
            .get(event.id.as_str())
            .or_else(|| may_have_legs.then(|| self.transfers.get(&leg(event.id.as_str(), 0))).flatten())?;
        let result = if !same_event(&existing.event, event) {
            ExistsWithDifferentFields
        } else if existing.result == Created {
            Exists
        } else {
            existing.result
        };
        let moved = match &event.kind {
            _ if result != Exists => None,
            TransferKind::Allocate { shares, .. } => {
                let legs = (0..shares.len()).map(|i| self.transfers[&leg(event.id.as_str(), i)].amount);
                Some(cents(legs.sum()))
            }
            _ => event.balancing.then(|| cents(existing.amount)),
        };
        Some(Outcome { result, seq: existing.seq, timestamp: existing.timestamp, moved })
    }

    fn try_transfer(&mut self, event: &NewTransfer, now: u64) -> Result<Outcome, ResultCode> {
        if let Some(outcome) = self.known(event) {
            return if outcome.result == Exists { Ok(outcome) } else { Err(outcome.result) };
        }
        let before = self.clone();
        let applied = self.apply_transfer(event, now);
        if applied.is_err() {
            *self = before;
        }
        applied
    }

    fn apply_transfer(&mut self, event: &NewTransfer, now: u64) -> Result<Outcome, ResultCode> {
        let stamp = now.max(self.clock + 1);
        let account = |name: &Id| index_of(name.as_str()).ok_or(AccountNotFound);
        let minor = |amount: &Decimal| amount.to_minor(2).ok().filter(|a| *a > 0).ok_or(InvalidAmount);
        let expiry = |timeout_ms: &Option<u64>| timeout_ms.map_or(0, |ms| stamp + ms * 1_000_000);
        match &event.kind {
            TransferKind::Direct { debit, credit, amount } | TransferKind::Pending { debit, credit, amount, .. } => {
                if debit == credit {
                    return Err(SameAccount);
                }
                let (d, c) = (account(debit)?, account(credit)?);
                let (d, c) = (self.open(d)?, self.open(c)?);
                let (kind, expires_at) = match &event.kind {
                    TransferKind::Pending { timeout_ms, .. } => (RecordKind::Pending, expiry(timeout_ms)),
                    _ => (RecordKind::Direct, 0),
                };
                let amount = if event.balancing {
                    let limit = match amount.to_minor(2) {
                        Ok(limit) if limit > 0 => limit,
                        _ => return Err(InvalidAmount),
                    };
                    self.most_that_fits(event, d, c, limit, kind, expires_at, now)
                } else {
                    minor(amount)?
                };
                let outcome = self.add(event.id.as_str(), event, (d, c, amount, kind), None, expires_at, now)?;
                Ok(Outcome { moved: event.balancing.then(|| cents(amount)), ..outcome })
            }
            TransferKind::Allocate { debit, shares, amount, pending, timeout_ms } => {
                let d = self.open(account(debit)?)?;
                let mut credits = Vec::new();
                for share in shares {
                    if share.credit == *debit {
                        return Err(SameAccount);
                    }
                    credits.push(self.open(account(&share.credit)?)?);
                }
                let total = minor(amount)?;
                let kind = if *pending { RecordKind::Pending } else { RecordKind::Direct };
                let weights: Vec<i128> = shares.iter().map(|share| i128::from(share.weight)).collect();
                let mut first = None;
                for (index, (c, part)) in credits.into_iter().zip(largest_remainders(total, &weights)).enumerate() {
                    // Each leg expires relative to its own timestamp.
                    let stamp = now.max(self.clock + 1);
                    let expires_at = if *pending { timeout_ms.map_or(0, |ms| stamp + ms * 1_000_000) } else { 0 };
                    let outcome = self.add(&leg(event.id.as_str(), index), event, (d, c, part, kind), None, expires_at, now)?;
                    first.get_or_insert(outcome);
                }
                Ok(Outcome { moved: Some(cents(total)), ..first.unwrap() })
            }
            TransferKind::Post { pending_id, .. } | TransferKind::Void { pending_id, .. } => {
                let (post, amount) = match &event.kind {
                    TransferKind::Post { amount, .. } => (true, amount),
                    _ => (false, &None),
                };
                let pending_id = pending_id.as_str();
                let first_leg = self.transfers.get(&leg(pending_id, 0));
                if !first_leg.is_some_and(|leg| leg.kind == RecordKind::Pending && leg.result == Created) {
                    return self.resolve(event, pending_id, event.id.as_str(), post, amount.as_ref(), now);
                }
                if amount.is_some() {
                    return Err(InvalidAmount);
                }
                let mut first = None;
                for index in 0.. {
                    if !self.transfers.contains_key(&leg(pending_id, index)) {
                        break;
                    }
                    let outcome = self.resolve(event, &leg(pending_id, index), &leg(event.id.as_str(), index), post, None, now)?;
                    first.get_or_insert(outcome);
                }
                Ok(first.unwrap())
            }
        }
    }

    /// The largest amount up to `limit` that a balancing transfer can move without breaking a
    /// bound: found by trying, as slowly and plainly as possible.
    #[allow(clippy::too_many_arguments)]
    fn most_that_fits(&self, event: &NewTransfer, d: usize, c: usize, limit: i128, kind: RecordKind, expires_at: u64, now: u64) -> i128 {
        let fits = |amount: i128| self.clone().add(event.id.as_str(), event, (d, c, amount, kind), None, expires_at, now).is_ok();
        let (mut low, mut high) = (0, limit);
        while low < high {
            let middle = high - (high - low) / 2;
            if fits(middle) {
                low = middle;
            } else {
                high = middle - 1;
            }
        }
        low
    }

    /// Posts or voids the hold `hold` as the record `id`.
    fn resolve(
        &mut self,
        event: &NewTransfer,
        hold: &str,
        id: &str,
        post: bool,
        amount: Option<&Decimal>,
        now: u64,
    ) -> Result<Outcome, ResultCode> {
        let stamp = now.max(self.clock + 1);
        let held = self.transfers.get(hold).ok_or(PendingNotFound)?;
        if held.kind != RecordKind::Pending || held.result != Created {
            return Err(PendingNotFound);
        }
        match held.hold_state {
            HoldState::Posted => return Err(PendingAlreadyPosted),
            HoldState::Voided => return Err(PendingAlreadyVoided),
            HoldState::Expired => return Err(PendingExpired),
            HoldState::Pending if held.expires_at != 0 && held.expires_at <= stamp => return Err(PendingExpired),
            HoldState::Pending => {}
        }
        let (kind, moved) = match (post, amount) {
            (true, None) => (RecordKind::Post, held.amount),
            (true, Some(amount)) => {
                let posted = amount.to_minor(2).ok().filter(|a| *a > 0).ok_or(InvalidAmount)?;
                if posted > held.amount {
                    return Err(AmountExceedsPending);
                }
                (RecordKind::Post, posted)
            }
            (false, _) => (RecordKind::Void, held.amount),
        };
        let (debit, credit) = (held.debit, held.credit);
        self.add(id, event, (debit, credit, moved, kind), Some(hold), 0, now)
    }

    /// Records one movement as `id` and checks every bound.
    #[allow(clippy::too_many_arguments)]
    fn add(
        &mut self,
        id: &str,
        event: &NewTransfer,
        (debit, credit, amount, kind): (usize, usize, i128, RecordKind),
        hold: Option<&str>,
        expires_at: u64,
        now: u64,
    ) -> Result<Outcome, ResultCode> {
        if let Some(hold) = hold {
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
        self.transfers.insert(id.to_owned(), record);
        if let Some(code) = self.bound_violation() {
            return Err(code);
        }
        Ok(Outcome { result: Created, seq: self.seq, timestamp, moved: None })
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
        Outcome { result: code, seq: self.seq, timestamp, moved: None }
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
    Close { account: usize, closed: bool, force: bool },
    Renew { hold: String, timeout_ms: u64, wrong_seq: bool },
}

fn name(index: usize) -> &'static str {
    TREE[index].0
}

fn transfer_strategy() -> impl Strategy<Value = NewTransfer> {
    let account = 0..TREE.len() + 1; // one past the end names an account that does not exist
    let account_name = |i: usize| if i < TREE.len() { name(i).to_owned() } else { "ghost".to_owned() };
    let shares = prop::collection::vec((0..TREE.len() + 1, 1u64..6), 1..5);
    (0u8..24, 0..6u8, account.clone(), account, 1i64..2_500, 0..8u8, prop::option::of(1u64..40), 0..5u8, 0..24u8, shares).prop_map(
        move |(id, kind, debit, credit, cents, extra, timeout, linked, hold, shares)| {
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
                3 => void(&format!("t{id}"), &format!("t{hold}")),
                4 => {
                    let event = balancing(&format!("t{id}"), &debit, &credit, Some("1"));
                    if extra < 3 {
                        event
                    } else {
                        let TransferKind::Direct { debit, credit, amount } = event.kind else { unreachable!() };
                        NewTransfer { kind: TransferKind::Pending { debit, credit, amount, timeout_ms: timeout }, ..event }
                    }
                }
                _ => {
                    let shares: Vec<(String, u64)> = shares.into_iter().map(|(credit, weight)| (account_name(credit), weight)).collect();
                    let shares: Vec<(&str, u64)> = shares.iter().map(|(credit, weight)| (credit.as_str(), *weight)).collect();
                    let hold = (extra < 3).then_some(timeout);
                    let mut event = allocate(&format!("t{id}"), &debit, "1", &shares, hold);
                    if let TransferKind::Allocate { amount: a, .. } = &mut event.kind {
                        *a = amount;
                    }
                    event
                }
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
        1 => (0..TREE.len(), prop::bool::weighted(0.4), prop::bool::ANY).prop_map(|(account, closed, force)| Op::Close { account, closed, force }),
        2 => (0u8..24, prop::bool::weighted(0.2), 1u64..40, prop::bool::weighted(0.1)).prop_map(|(hold, leg, timeout_ms, wrong_seq)| {
            let hold = if leg { format!("t{hold}/0") } else { format!("t{hold}") };
            Op::Renew { hold, timeout_ms, wrong_seq }
        }),
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
                Op::Close { account, closed, force } => {
                    let patch = AccountPatch { closed: Some(closed), force, ..AccountPatch::default() };
                    let request = Request::UpdateAccounts(vec![AccountUpdate { id: id(name(account)), patch }]);
                    journal.push(batch(now, &request));
                    let got = state.apply(&request, now)[0];
                    prop_assert_eq!(got.result, model.close(account, closed, force, now));
                }
                Op::Renew { hold, timeout_ms, wrong_seq } => {
                    let if_seq = wrong_seq.then_some(1);
                    let renewal = HoldRenewal { id: Id::parse_transfer(&hold).unwrap(), timeout_ms, if_seq };
                    let request = Request::RenewHolds(vec![renewal]);
                    journal.push(batch(now, &request));
                    let got = state.apply(&request, now)[0];
                    prop_assert_eq!(got, model.renew(&hold, timeout_ms, if_seq, now));
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
