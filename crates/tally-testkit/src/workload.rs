//! A seeded random workload over a small tree of accounts with bounds: transfers, holds with
//! timeouts, posts and voids (of real and unknown holds, and of allocations), balancing
//! transfers, allocations, linked chains, retries of old ids, bound changes, accounts
//! closed (sometimes by force) and reopened, and holds renewed as leases. The simulator and the engine-against-engine differential test both
//! drive the ledger with it.

use tally_check::Random;
use tally_core::*;

/// One account of the tree every run starts with: id, parent, min_balance and max_balance
/// (whole units).
type Node = (&'static str, Option<&'static str>, Option<i64>, Option<i64>);

pub const ACCOUNTS: &[Node] = &[
    ("world", None, None, None),
    ("alice", None, Some(0), None),
    ("bob", None, Some(0), Some(800)),
    ("carol", None, Some(-50), None),
    ("org", None, Some(-300), None),
    ("org:a", Some("org"), None, None),
    ("org:b", Some("org"), Some(-100), None),
    ("org:b:x", Some("org:b"), Some(0), Some(200)),
];

pub fn id(text: &str) -> Id {
    Id::parse(text).expect("workload ids are valid")
}

fn decimal(units: i64) -> Decimal {
    Decimal::parse(&units.to_string()).expect("integers are decimals")
}

pub struct Workload {
    random: Random,
    /// Transfer events sent so far, to resend as retries.
    sent: Vec<NewTransfer>,
    next_id: u64,
}

impl Workload {
    pub fn new(seed: u64) -> Workload {
        Workload { random: Random::new(seed ^ 0x0b5e_55ed), sent: Vec::new(), next_id: 0 }
    }

    /// The asset and the tree of accounts, as two requests.
    pub fn setup() -> Vec<Request> {
        let asset = Request::CreateAssets(vec![NewAsset { code: AssetCode::parse("USD").expect("valid"), scale: 0 }]);
        let accounts = Request::CreateAccounts(
            ACCOUNTS
                .iter()
                .map(|&(name, parent, min, max)| NewAccount {
                    id: id(name),
                    asset: AssetCode::parse("USD").expect("valid"),
                    parent: parent.map(id),
                    min_balance: min.map(decimal),
                    max_balance: max.map(decimal),
                    metadata: None,
                })
                .collect(),
        );
        vec![asset, accounts]
    }

    fn account(&mut self) -> Id {
        id(self.random.pick(ACCOUNTS).0)
    }

    pub fn transfers(&mut self) -> Request {
        let mut events = Vec::new();
        for _ in 0..1 + self.random.below(6) {
            let event = if !self.sent.is_empty() && self.random.chance(120) {
                // A retry: the very same event again, possibly with a flipped link.
                self.random.pick(&self.sent).clone()
            } else {
                self.next_id += 1;
                let debit = self.account();
                let mut credit = self.account();
                if self.random.chance(950) {
                    while credit == debit {
                        credit = self.account();
                    }
                }
                let amount = decimal(1 + self.random.below(120) as i64);
                let held = |workload: &mut Self| {
                    let is_hold =
                        |e: &&NewTransfer| matches!(e.kind, TransferKind::Pending { .. } | TransferKind::Allocate { pending: true, .. });
                    let holds: Vec<Id> = workload.sent.iter().filter(is_hold).map(|e| e.id.clone()).collect();
                    if holds.is_empty() {
                        id("none")
                    } else {
                        workload.random.pick(&holds).clone()
                    }
                };
                let timeout = |workload: &mut Self| workload.random.chance(600).then(|| 1 + workload.random.below(200) as u64);
                let balancing = self.random.chance(100);
                let kind = match self.random.below(11) {
                    0..=4 => TransferKind::Direct { debit, credit, amount },
                    5..=6 => TransferKind::Pending { debit, credit, amount, timeout_ms: timeout(self) },
                    7..=8 => {
                        let partial = self.random.chance(300).then(|| decimal(1 + self.random.below(60) as i64));
                        TransferKind::Post { pending_id: held(self), debit: None, credit: None, amount: partial }
                    }
                    9 => TransferKind::Void { pending_id: held(self), debit: None, credit: None },
                    _ => {
                        let shares = (0..1 + self.random.below(4))
                            .map(|_| Share { credit: self.account(), weight: 1 + self.random.below(5) as u64 })
                            .collect();
                        let pending = self.random.chance(400);
                        let timeout_ms = if pending { timeout(self) } else { None };
                        TransferKind::Allocate { debit, shares, amount, pending, timeout_ms }
                    }
                };
                let balancing = balancing && matches!(kind, TransferKind::Direct { .. } | TransferKind::Pending { .. });
                NewTransfer {
                    id: id(&format!("t{}", self.next_id)),
                    kind,
                    asset: None,
                    linked: self.random.chance(200),
                    metadata: self.random.chance(100).then(|| Metadata::parse(&format!("{{\"n\":{}}}", self.next_id)).expect("canonical")),
                    if_debit_version: None,
                    if_credit_version: None,
                    balancing,
                }
            };
            self.sent.push(event.clone());
            events.push(event);
        }
        Request::CreateTransfers(events)
    }

    /// Renewals of holds sent before (some already resolved or expired, some legs of held
    /// allocations), now and then with a fencing token that does not match.
    pub fn renewals(&mut self) -> Request {
        let holds: Vec<Id> = self
            .sent
            .iter()
            .filter_map(|event| match &event.kind {
                TransferKind::Pending { .. } => Some(event.id.clone()),
                TransferKind::Allocate { pending: true, .. } => Some(event.id.leg(0)),
                _ => None,
            })
            .collect();
        let renewals = (0..1 + self.random.below(3))
            .map(|_| HoldRenewal {
                id: if holds.is_empty() { id("none") } else { self.random.pick(&holds).clone() },
                timeout_ms: 1 + self.random.below(200) as u64,
                if_seq: self.random.chance(100).then_some(1),
            })
            .collect();
        Request::RenewHolds(renewals)
    }

    pub fn bounds(&mut self) -> Request {
        let index = self.random.below(ACCOUNTS.len());
        let bound = |random: &mut Random, base: Option<i64>| match random.below(3) {
            0 => None,
            1 => Some(base.map(decimal)),
            _ => Some(Some(decimal(base.unwrap_or(0) + random.below(200) as i64 - 100))),
        };
        let (closed, force) = match self.random.below(8) {
            0 => (Some(true), self.random.chance(500)),
            1..=2 => (Some(false), false),
            _ => (None, false),
        };
        let patch = AccountPatch {
            min_balance: bound(&mut self.random, ACCOUNTS[index].2),
            max_balance: bound(&mut self.random, ACCOUNTS[index].3),
            closed,
            force,
            ..AccountPatch::default()
        };
        Request::UpdateAccounts(vec![AccountUpdate { id: id(ACCOUNTS[index].0), patch }])
    }
}
