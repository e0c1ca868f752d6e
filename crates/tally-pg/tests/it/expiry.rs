//! More holds come due than one batch expires, while two nodes take concurrent writes that
//! touch the same accounts. Each batch sees only the due holds it loaded (its horizon keeps
//! its clock before the rest), so every hold is posted or expires exactly once, and the
//! batch records replay on the bare state machine to exactly the tables (`verify`).

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tally_core::limits::{BATCH_EVENTS_MAX, DUE_HOLDS_MAX};
use tally_core::{AssetCode, Decimal, Id, JournalEntry, NewAccount, NewAsset, NewTransfer, Request, ResultCode, TransferKind};
use tally_ledger::Ledger;
use tally_pg::{Concurrency, Config, PgLedger};
use tally_testkit::postgres::{ClusterOptions, PrivateCluster};

const USERS: usize = 20;
const HOLDS: usize = DUE_HOLDS_MAX + 1_808;
const HOLD_TIMEOUT_MS: u64 = 1_000;

fn id(text: &str) -> Id {
    Id::parse(text).unwrap()
}

fn transfer(name: String, kind: TransferKind) -> NewTransfer {
    NewTransfer::new(id(&name), kind)
}

fn amount(text: &str) -> Decimal {
    Decimal::parse(text).unwrap()
}

fn user(n: usize) -> Id {
    id(&format!("user:{}", n % USERS))
}

async fn created(ledger: &PgLedger, request: Request) {
    let outcomes = ledger.submit(request).await.unwrap().outcomes;
    assert!(outcomes.iter().all(|o| o.result == ResultCode::Created), "{outcomes:?}");
}

/// One node's share of the traffic while the holds come due: transfers between users and
/// the bank, new holds, and posts of old holds (which may find them expired).
async fn traffic(ledger: &PgLedger, node: usize) {
    for round in 0..30 {
        let n = node * 1_000 + round;
        let events = vec![
            transfer(format!("move-{n}"), TransferKind::Direct { debit: id("bank"), credit: user(n), amount: amount("1.00") }),
            transfer(format!("back-{n}"), TransferKind::Direct { debit: user(n + 1), credit: id("bank"), amount: amount("0.50") }),
            transfer(
                format!("new-hold-{n}"),
                TransferKind::Pending { debit: user(n + 2), credit: id("bank"), amount: amount("0.10"), timeout_ms: None },
            ),
            transfer(
                format!("post-{n}"),
                TransferKind::Post { pending_id: id(&format!("hold-{}", n * 37 % HOLDS)), debit: None, credit: None, amount: None },
            ),
        ];
        let outcomes = ledger.submit(Request::CreateTransfers(events)).await.unwrap().outcomes;
        assert!(outcomes[..3].iter().all(|o| o.result == ResultCode::Created), "{outcomes:?}");
        // Each post names a hold of its own (37 and 10,000 share no factor); whether it finds
        // the hold still open depends on how far expiry has come.
        let post = outcomes[3].result;
        assert!(matches!(post, ResultCode::Created | ResultCode::PendingExpired), "{post:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn more_due_holds_than_one_batch_expires_are_each_resolved_once_across_two_nodes() {
    let cluster = PrivateCluster::start(ClusterOptions::default()).unwrap();
    let clock = Arc::new(AtomicU64::new(1_700_000_000_000_000_000));
    let config = || {
        let mut config = Config::new(cluster.url());
        config.concurrency = Concurrency::Locking;
        let clock = clock.clone();
        config.clock = Arc::new(move || clock.load(Ordering::SeqCst));
        config
    };
    let first = PgLedger::start(config()).await.unwrap();
    let second = PgLedger::start(config()).await.unwrap();

    let usd = || AssetCode::parse("USD").unwrap();
    created(&first, Request::CreateAssets(vec![NewAsset { code: usd(), scale: 2 }])).await;
    let account =
        |id: Id, min: Option<Decimal>| NewAccount { id, asset: usd(), parent: None, min_balance: min, max_balance: None, metadata: None };
    let mut accounts = vec![account(id("bank"), None)];
    accounts.extend((0..USERS).map(|n| account(user(n), Some(Decimal::ZERO))));
    created(&first, Request::CreateAccounts(accounts)).await;
    let funding = (0..USERS)
        .map(|n| transfer(format!("fund-{n}"), TransferKind::Direct { debit: id("bank"), credit: user(n), amount: amount("1000.00") }))
        .collect();
    created(&first, Request::CreateTransfers(funding)).await;
    let holds: Vec<NewTransfer> = (0..HOLDS)
        .map(|n| {
            let kind =
                TransferKind::Pending { debit: user(n), credit: id("bank"), amount: amount("0.01"), timeout_ms: Some(HOLD_TIMEOUT_MS) };
            transfer(format!("hold-{n}"), kind)
        })
        .collect();
    for chunk in holds.chunks(BATCH_EVENTS_MAX) {
        created(&second, Request::CreateTransfers(chunk.to_vec())).await;
    }

    // Every hold comes due at once; both nodes' writers expire them while taking traffic.
    clock.fetch_add(2 * HOLD_TIMEOUT_MS * 1_000_000, Ordering::SeqCst);
    tokio::join!(traffic(&first, 0), traffic(&second, 1));

    let deadline = Instant::now() + Duration::from_secs(120);
    let (mut resolved, mut after) = (HashSet::new(), 0);
    while resolved.len() < HOLDS {
        let page = first.journal(after, 1_000, Duration::from_millis(200)).await.unwrap();
        for entry in &page {
            let hold = match entry {
                JournalEntry::Expiry { pending_id, .. } => Some(pending_id.clone()),
                JournalEntry::Transfer(view) if view.id.starts_with("post-") && view.result == ResultCode::Created => {
                    view.detail.as_ref().and_then(|detail| detail.pending_id.clone())
                }
                _ => None,
            };
            if let Some(hold) = hold.filter(|hold| hold.starts_with("hold-")) {
                assert!(resolved.insert(hold.clone()), "{hold} resolved twice");
            }
            after = entry.seq();
        }
        assert!(Instant::now() < deadline, "holds are still open: {} of {HOLDS} resolved", resolved.len());
    }
    // Every hold once, and nothing more resolves later.
    assert!(first.journal(after, 1_000, Duration::ZERO).await.unwrap().is_empty());
    first.shutdown().await;
    second.shutdown().await;
    let verified = tally_pg::offline::verify(&cluster.url(), |_, _, _| {}).await.expect("the batch records replay to the tables");
    assert!(verified.last_seq >= after);
}
