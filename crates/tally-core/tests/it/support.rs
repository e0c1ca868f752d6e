//! Small builders so each test reads as the story it tells.

use tally_core::*;

pub const T0: u64 = 1_000_000_000;

pub fn id(text: &str) -> Id {
    Id::parse(text).unwrap()
}

pub fn dec(text: &str) -> Decimal {
    Decimal::parse(text).unwrap()
}

pub fn asset(code: &str, scale: u8) -> Request {
    Request::CreateAssets(vec![NewAsset { code: AssetCode::parse(code).unwrap(), scale }])
}

pub fn account(name: &str, code: &str) -> NewAccount {
    NewAccount {
        id: id(name),
        asset: AssetCode::parse(code).unwrap(),
        parent: None,
        min_balance: Some(Decimal::ZERO),
        max_balance: None,
        metadata: None,
    }
}

pub fn direct(name: &str, debit: &str, credit: &str, amount: &str) -> NewTransfer {
    NewTransfer::new(id(name), TransferKind::Direct { debit: id(debit), credit: id(credit), amount: dec(amount) })
}

/// A balancing transfer of at most `amount` (as much as possible if `None`).
pub fn balancing(name: &str, debit: &str, credit: &str, amount: Option<&str>) -> NewTransfer {
    let amount = amount.map_or(Decimal::UNLIMITED, dec);
    NewTransfer { balancing: true, ..NewTransfer::new(id(name), TransferKind::Direct { debit: id(debit), credit: id(credit), amount }) }
}

/// An allocation of `amount` from `debit` over `(credit, weight)` entries.
pub fn allocate(name: &str, debit: &str, amount: &str, shares: &[(&str, u64)], hold: Option<Option<u64>>) -> NewTransfer {
    let shares = shares.iter().map(|&(credit, weight)| Share { credit: id(credit), weight }).collect();
    let kind =
        TransferKind::Allocate { debit: id(debit), shares, amount: dec(amount), pending: hold.is_some(), timeout_ms: hold.flatten() };
    NewTransfer::new(id(name), kind)
}

pub fn pending(name: &str, debit: &str, credit: &str, amount: &str, timeout_ms: Option<u64>) -> NewTransfer {
    NewTransfer {
        kind: TransferKind::Pending { debit: id(debit), credit: id(credit), amount: dec(amount), timeout_ms },
        ..direct(name, debit, credit, amount)
    }
}

pub fn post(name: &str, hold: &str, amount: Option<&str>) -> NewTransfer {
    NewTransfer {
        kind: TransferKind::Post { pending_id: id(hold), debit: None, credit: None, amount: amount.map(dec) },
        ..direct(name, "x", "y", "1")
    }
}

pub fn void(name: &str, hold: &str) -> NewTransfer {
    NewTransfer { kind: TransferKind::Void { pending_id: id(hold), debit: None, credit: None }, ..direct(name, "x", "y", "1") }
}

pub fn linked(mut transfer: NewTransfer) -> NewTransfer {
    transfer.linked = true;
    transfer
}

/// A ledger with asset USD (scale 2), an unbounded `world` and zero-floored `alice` and `bob`.
pub fn ledger() -> State {
    let mut state = State::new();
    state.apply(&asset("USD", 2), T0);
    let world = NewAccount { min_balance: None, ..account("world", "USD") };
    let outcomes = state.apply(&Request::CreateAccounts(vec![world, account("alice", "USD"), account("bob", "USD")]), T0);
    assert!(outcomes.iter().all(|o| o.result == ResultCode::Created));
    state
}

pub fn transfers(state: &mut State, events: Vec<NewTransfer>) -> Vec<ResultCode> {
    state.apply(&Request::CreateTransfers(events), T0).into_iter().map(|o| o.result).collect()
}

pub fn balance(state: &State, name: &str) -> i128 {
    state.account(&id(name)).unwrap().totals.balance()
}
