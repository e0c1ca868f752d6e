//! Two nodes on one database receive the very same requests at the same moment: every id is
//! decided once (one node hears `created`, the other `exists` with the same seq), accounts and
//! assets created twice at once exist once, and the journal holds each event once, gapless.

use std::collections::BTreeSet;
use tally_core::{
    AccountPatch, AssetCode, Decimal, Id, JournalEntry, NewAccount, NewAsset, NewTransfer, Request, ResultCode, TransferKind,
};
use tally_ledger::Ledger;
use tally_pg::{Config, PgLedger};
use tally_testkit::postgres::{ClusterOptions, PrivateCluster};

fn id(text: &str) -> Id {
    Id::parse(text).unwrap()
}

fn transfer(name: &str, debit: &str, credit: &str, amount: &str, pending: bool) -> NewTransfer {
    let amount = Decimal::parse(amount).unwrap();
    let (debit, credit) = (id(debit), id(credit));
    let kind = if pending {
        TransferKind::Pending { debit, credit, amount, timeout_ms: None }
    } else {
        TransferKind::Direct { debit, credit, amount }
    };
    NewTransfer::new(id(name), kind)
}

/// Sends `request` to both nodes at once; returns both answers.
async fn both(first: &PgLedger, second: &PgLedger, request: Request) -> (Vec<tally_core::Outcome>, Vec<tally_core::Outcome>) {
    let (a, b) = tokio::join!(first.submit(request.clone()), second.submit(request));
    (a.unwrap().outcomes, b.unwrap().outcomes)
}

fn decided_once(first: &[tally_core::Outcome], second: &[tally_core::Outcome]) {
    for (a, b) in first.iter().zip(second) {
        assert_eq!((a.seq, a.timestamp), (b.seq, b.timestamp), "both nodes name the same decision: {a:?} {b:?}");
        let results = [a.result, b.result];
        let created = results.iter().filter(|r| **r == ResultCode::Created).count();
        assert!(created <= 1, "decided twice: {a:?} {b:?}");
        if created == 1 {
            assert!(results.contains(&ResultCode::Exists), "the other node hears exists: {a:?} {b:?}");
        } else {
            assert_eq!(a.result, b.result, "a failure is the same failure on both nodes");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_requests_sent_to_two_nodes_at_once_are_applied_once() {
    let cluster = PrivateCluster::start(ClusterOptions::default()).unwrap();
    let first = PgLedger::start(Config::new(cluster.url())).await.unwrap();
    let second = PgLedger::start(Config::new(cluster.url())).await.unwrap();

    let asset = Request::CreateAssets(vec![NewAsset { code: AssetCode::parse("EUR").unwrap(), scale: 2 }]);
    let (a, b) = both(&first, &second, asset).await;
    decided_once(&a, &b);
    let account = |name: &str, parent: Option<&str>, min: Option<&str>| NewAccount {
        id: id(name),
        asset: AssetCode::parse("EUR").unwrap(),
        parent: parent.map(id),
        min_balance: min.map(|m| Decimal::parse(m).unwrap()),
        max_balance: None,
        metadata: None,
    };
    // Parents and children created at once on both nodes: each account exists once.
    let accounts = Request::CreateAccounts(vec![
        account("bank", None, None),
        account("team", None, Some("0")),
        account("team:a", Some("team"), None),
        account("team:b", Some("team"), None),
    ]);
    let (a, b) = both(&first, &second, accounts).await;
    decided_once(&a, &b);
    assert!(a.iter().chain(&b).all(|o| o.result.is_success()), "{a:?} {b:?}");

    // Rounds of transfers, holds and posts, each sent to both nodes at once.
    for round in 0..40 {
        let fund = transfer(&format!("fund-{round}"), "bank", "team:a", "10.00", false);
        let spend = transfer(&format!("spend-{round}"), "team:a", "team:b", "7.50", false);
        let hold = transfer(&format!("hold-{round}"), "team:b", "bank", "5.00", true);
        let (a, b) = both(&first, &second, Request::CreateTransfers(vec![fund, spend, hold])).await;
        decided_once(&a, &b);
        let post = NewTransfer {
            kind: TransferKind::Post { pending_id: id(&format!("hold-{round}")), debit: None, credit: None, amount: None },
            ..transfer(&format!("post-{round}"), "bank", "bank", "1", false)
        };
        let (a, b) = both(&first, &second, Request::CreateTransfers(vec![post])).await;
        decided_once(&a, &b);
        if round % 10 == 0 {
            let patch = AccountPatch {
                metadata: Some(Some(tally_core::Metadata::parse(&format!("{{\"round\":{round}}}")).unwrap())),
                ..AccountPatch::default()
            };
            let update = Request::UpdateAccounts(vec![tally_core::AccountUpdate { id: id("team"), patch }]);
            let (a, b) = tokio::join!(first.submit(update.clone()), second.submit(update));
            // Updates are not idempotent by id: both apply, one after the other.
            assert_ne!(a.unwrap().outcomes[0].seq, b.unwrap().outcomes[0].seq);
        }
    }

    // The journal holds every event once, gapless, whichever node is asked.
    let mut seen = BTreeSet::new();
    let mut after = 0;
    loop {
        let page = second.journal(after, 1_000, std::time::Duration::ZERO).await.unwrap();
        let Some(last) = page.last() else { break };
        for (offset, entry) in page.iter().enumerate() {
            assert_eq!(entry.seq(), after + 1 + offset as u64, "gapless");
            if let JournalEntry::Transfer(view) = entry {
                assert!(seen.insert(view.id.clone()), "transfer {} journaled twice", view.id);
            }
        }
        after = last.seq();
    }
    assert_eq!(seen.len(), 160, "40 rounds of four transfer ids, each once");
    let team = first.account(id("team"), None).await.unwrap().unwrap();
    // Per round: team:a +10.00 -7.50, team:b +7.50 -5.00 (held then posted); 40 rounds.
    assert_eq!(team.totals.balance(), 40 * 500);
    first.shutdown().await;
    second.shutdown().await;
}
