//! Three nodes with an optimistic or serializable strategy, all moving the same two accounts
//! at once: the worst case for strategies that retry on conflict. Every request must still be
//! applied: after two conflicts a batch takes the ledger's turn before reading, which cannot
//! conflict, so no batch runs out of attempts (which would answer 503 `unavailable`).

use std::sync::Arc;
use tally_core::{AssetCode, Decimal, Id, NewAccount, NewAsset, NewTransfer, Request, ResultCode, TransferKind};
use tally_ledger::Ledger;
use tally_pg::{Concurrency, Config, PgLedger};
use tally_testkit::postgres::{ClusterOptions, PrivateCluster};

const NODES: usize = 3;
const CLIENTS_PER_NODE: usize = 12;
const REQUESTS_PER_CLIENT: usize = 20;
const TRANSFERS_PER_REQUEST: usize = 50;

fn id(text: &str) -> Id {
    Id::parse(text).unwrap()
}

async fn hot_accounts_on_three_nodes(concurrency: Concurrency) {
    let cluster = PrivateCluster::start(ClusterOptions::default()).unwrap();
    let mut nodes = Vec::new();
    for _ in 0..NODES {
        let mut config = Config::new(cluster.url());
        config.concurrency = concurrency;
        nodes.push(Arc::new(PgLedger::start(config).await.unwrap()));
    }
    let eur = AssetCode::parse("EUR").unwrap();
    nodes[0].submit(Request::CreateAssets(vec![NewAsset { code: eur.clone(), scale: 2 }])).await.unwrap();
    let account =
        |name: &str| NewAccount { id: id(name), asset: eur.clone(), parent: None, min_balance: None, max_balance: None, metadata: None };
    nodes[0].submit(Request::CreateAccounts(vec![account("hot:a"), account("hot:b")])).await.unwrap();

    let mut clients = Vec::new();
    for (node_index, node) in nodes.iter().enumerate() {
        for client in 0..CLIENTS_PER_NODE {
            let node = node.clone();
            clients.push(tokio::spawn(async move {
                let mut failures = Vec::new();
                for n in 0..REQUESTS_PER_CLIENT {
                    let transfers = (0..TRANSFERS_PER_REQUEST)
                        .map(|k| {
                            let (debit, credit) = if k % 2 == 0 { ("hot:a", "hot:b") } else { ("hot:b", "hot:a") };
                            let amount = Decimal::parse("1.00").unwrap();
                            let kind = TransferKind::Direct { debit: id(debit), credit: id(credit), amount };
                            NewTransfer::new(id(&format!("t-{node_index}-{client}-{n}-{k}")), kind)
                        })
                        .collect();
                    match node.submit(Request::CreateTransfers(transfers)).await {
                        Ok(applied) if applied.outcomes.iter().all(|o| o.result == ResultCode::Created) => {}
                        other => failures.push(format!("{other:?}")),
                    }
                }
                failures
            }));
        }
    }
    let mut failures = Vec::new();
    for client in clients {
        failures.extend(client.await.unwrap());
    }
    assert!(failures.is_empty(), "{concurrency}: {} requests were not applied, e.g. {}", failures.len(), failures[0]);
    let transfers = NODES * CLIENTS_PER_NODE * REQUESTS_PER_CLIENT * TRANSFERS_PER_REQUEST;
    let last = nodes[0].journal(2 + transfers as u64, 10, std::time::Duration::ZERO).await.unwrap();
    assert_eq!(
        last.iter().map(|e| e.seq()).collect::<Vec<_>>(),
        [3 + transfers as u64],
        "one asset, two accounts and every transfer, once each"
    );
    for node in &nodes {
        node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn optimistic_nodes_apply_every_request_on_hot_accounts() {
    hot_accounts_on_three_nodes(Concurrency::Optimistic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serializable_nodes_apply_every_request_on_hot_accounts() {
    hot_accounts_on_three_nodes(Concurrency::Serializable).await;
}
