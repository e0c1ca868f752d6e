//! The same seeded workload applied to the PostgreSQL store and to a plain in-memory state
//! (the embedded engine's state machine, through the same `batch::apply`) must give the same
//! outcome for every event, and afterwards the same accounts, transfers and journal.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tally_core::batch;
use tally_core::limits::PAGE_LIMIT_MAX;
use tally_core::{Id, Request, State, Under};
use tally_ledger::{AccountQuery, Ledger};
use tally_pg::{Concurrency, Config, PgLedger};
use tally_testkit::postgres::{ClusterOptions, PrivateCluster};
use tally_testkit::workload::{id, Workload, ACCOUNTS};
use tally_testkit::Random;

const STEPS: usize = 400;

async fn compare(ledger: &PgLedger, reference: &State, sent: &[Id]) {
    for &(name, ..) in ACCOUNTS {
        let account = id(name);
        assert_eq!(ledger.account(account.clone(), None).await.unwrap(), reference.account(&account), "account {name}");
        for as_of in [1, reference.last_seq() / 3, reference.last_seq() / 2, reference.last_seq()] {
            assert_eq!(
                ledger.account(account.clone(), Some(as_of)).await.unwrap(),
                reference.account_as_of(&account, as_of),
                "account {name} as of {as_of}"
            );
        }
        assert_eq!(
            ledger.account_transfers(account.clone(), 0, PAGE_LIMIT_MAX).await.unwrap(),
            reference.account_transfers(&account, 0, PAGE_LIMIT_MAX),
            "transfers of {name}"
        ); // The history with running balances, a few changes a page.
        let mut after = 0;
        loop {
            let page = ledger.account_history(account.clone(), after, 7).await.unwrap().expect("the account exists");
            assert_eq!(Some(&page), reference.account_history(&account, after, 7).as_ref(), "history of {name} after {after}");
            match page.last() {
                Some(last) if page.len() == 7 => after = last.seq,
                _ => break,
            }
        }
    }
    // Open holds by expiry, three a page: holds that expire at the same time are ordered by seq.
    let mut position = None;
    loop {
        let page = ledger.expiring_holds(position, 3).await.unwrap();
        assert_eq!(page, reference.expiring_holds(position, 3), "holds after {position:?}");
        match page.last() {
            Some(last) if page.len() == 3 => {
                position = Some((last.detail.as_ref().and_then(|d| d.expires_at).expect("a hold that expires"), last.seq))
            }
            _ => break,
        }
    }
    let roots = AccountQuery { under: Under::Root, limit: PAGE_LIMIT_MAX, ..AccountQuery::default() };
    assert_eq!(ledger.accounts(roots).await.unwrap(), reference.accounts_page("", &Under::Root, None, PAGE_LIMIT_MAX));
    let everything = AccountQuery { limit: PAGE_LIMIT_MAX, ..AccountQuery::default() };
    assert_eq!(ledger.accounts(everything).await.unwrap(), reference.accounts_page("", &Under::Anywhere, None, PAGE_LIMIT_MAX));
    let children = AccountQuery { under: Under::Parent(id("org")), prefix: "org:".into(), limit: 10, ..AccountQuery::default() };
    assert_eq!(ledger.accounts(children).await.unwrap(), reference.accounts_page("org:", &Under::Parent(id("org")), None, 10));
    for transfer in sent {
        assert_eq!(ledger.transfer(transfer.clone()).await.unwrap(), reference.transfer(transfer.as_str()), "transfer {transfer}");
    }
    let mut after = 0;
    while after < reference.last_seq() {
        let page = ledger.journal(after, PAGE_LIMIT_MAX, Duration::ZERO).await.unwrap();
        assert_eq!(page, reference.journal(after, u64::MAX, PAGE_LIMIT_MAX), "journal after {after}");
        after = page.last().expect("a page while behind").seq();
    }
}

async fn differential(seed: u64, concurrency: Concurrency) {
    let cluster = PrivateCluster::start(ClusterOptions::default()).expect("a private PostgreSQL cluster");
    let clock = Arc::new(AtomicU64::new(1_700_000_000_000_000_000));
    let mut config = Config::new(cluster.url());
    config.concurrency = concurrency;
    config.clock = {
        let clock = clock.clone();
        Arc::new(move || clock.load(Ordering::SeqCst))
    };
    let ledger = PgLedger::start(config).await.expect("the store starts");
    let mut reference = State::new();
    let mut workload = Workload::new(seed);
    let mut random = Random::new(seed);
    let mut sent = Vec::new();
    let mut submit = |request: Request| {
        if let Request::CreateTransfers(events) = &request {
            sent.extend(events.iter().map(|e| e.id.clone()));
        }
        request
    };
    let mut requests: Vec<Request> = Workload::setup();
    for step in 0..STEPS {
        for request in requests.drain(..) {
            let request = submit(request);
            let now = clock.load(Ordering::SeqCst);
            let expected = batch::apply(&mut reference, now, [&request]);
            let applied = ledger.submit(request).await.expect("the store applies the request");
            assert_eq!(vec![applied.outcomes], expected.answers, "seed {seed} step {step}");
        }
        clock.fetch_add(random.below(40) as u64 * 1_000_000, Ordering::SeqCst);
        requests.push(match random.below(1_000) {
            0..=99 => workload.bounds(),
            100..=179 => workload.renewals(),
            _ => workload.transfers(),
        });
    }
    // Let every due hold expire on both sides, then compare everything.
    clock.fetch_add(1_000_000_000, Ordering::SeqCst);
    let expiry = batch::apply(&mut reference, clock.load(Ordering::SeqCst), []);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while ledger.journal(expiry.last_seq.saturating_sub(1), 1, Duration::from_millis(200)).await.unwrap().is_empty() {
        assert!(std::time::Instant::now() < deadline, "the store expires due holds by itself");
    }
    compare(&ledger, &reference, &sent).await;
    ledger.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_decides_exactly_what_the_state_machine_decides_with_locking() {
    differential(11, Concurrency::Locking).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_decides_exactly_what_the_state_machine_decides_with_optimistic_versions() {
    differential(12, Concurrency::Optimistic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_decides_exactly_what_the_state_machine_decides_at_serializable_isolation() {
    differential(13, Concurrency::Serializable).await;
}
