//! Kill -9 under concurrent load, restart, and prove that every acknowledged transfer is
//! there, every unknown outcome resolves by retrying the same id, balances match the
//! transfers exactly, money is conserved, and `tally verify` agrees.

use crate::support::*;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tally_client::api::{AccountInput, TransferInput};
use tally_client::Client;

const ACCOUNTS: usize = 12;
const CLIENTS: usize = 6;
const CYCLES: usize = 3;

#[derive(Clone, Debug)]
struct Sent {
    debit: usize,
    credit: usize,
    cents: i64,
    linked: bool,
}

/// Every transfer sent, by id, with its outcome once known.
type History = Arc<Mutex<BTreeMap<String, (Sent, Option<String>)>>>;

fn account(index: usize) -> String {
    format!("acct-{index}")
}

fn body(batch: &[(String, Sent)]) -> Vec<TransferInput<'static>> {
    batch
        .iter()
        .map(|(id, sent)| TransferInput {
            id: id.clone().into(),
            debit: Some(account(sent.debit).into()),
            credit: Some(account(sent.credit).into()),
            amount: Some(format!("{}.{:02}", sent.cents / 100, sent.cents % 100).into()),
            linked: sent.linked,
            ..TransferInput::default()
        })
        .collect()
}

async fn load(client: Client, history: History, stop: Arc<AtomicBool>, cycle: usize, worker: usize) {
    let mut seed = (cycle * 1_000 + worker) as u64 * 0x9e37_79b9 + 1;
    let mut random = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let mut n = 0;
    while !stop.load(Ordering::SeqCst) {
        let size = 1 + random(8) as usize;
        let batch: Vec<(String, Sent)> = (0..size)
            .map(|i| {
                n += 1;
                let debit = random(ACCOUNTS as u64) as usize;
                let credit = (debit + 1 + random(ACCOUNTS as u64 - 1) as usize) % ACCOUNTS;
                let sent = Sent { debit, credit, cents: 1 + random(40_000) as i64, linked: i + 1 < size && random(4) == 0 };
                (format!("c{cycle}-w{worker}-{n}"), sent)
            })
            .collect();
        {
            let mut history = history.lock().unwrap();
            for (id, sent) in &batch {
                history.insert(id.clone(), (sent.clone(), None));
            }
        }
        match client.create_transfers(body(&batch)).await {
            Ok(results) => {
                let mut history = history.lock().unwrap();
                for result in results.results {
                    history.get_mut(&result.id).unwrap().1 = Some(result.result);
                }
            }
            // Unknown outcome (the server died mid-request): resolved after the restart.
            Err(error) if error.is_unknown_outcome() => tokio::time::sleep(Duration::from_millis(5)).await,
            Err(error) => panic!("unexpected answer: {error}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_transfers_survive_kill_9_under_load() {
    let directory = tempfile::tempdir().unwrap();
    let data = directory.path().join("data");
    let port = free_port();
    let mut server = Server::start(&data, port).healthy().await;
    let client = server.client.clone();
    client.create_asset("USD", 2).await.unwrap();
    let mut accounts = vec![AccountInput { id: "world".into(), asset: "USD".into(), min_balance: Some(None), ..AccountInput::default() }];
    accounts.extend((0..ACCOUNTS).map(|i| AccountInput { id: account(i).into(), asset: "USD".into(), ..AccountInput::default() }));
    assert!(client.create_accounts(accounts).await.unwrap().results.iter().all(|r| r.result == "created"));
    let funding: Vec<_> = (0..ACCOUNTS)
        .map(|i| TransferInput {
            id: format!("fund-{i}").into(),
            debit: Some("world".into()),
            credit: Some(account(i).into()),
            amount: Some("1000.00".into()),
            ..TransferInput::default()
        })
        .collect();
    assert!(client.create_transfers(funding).await.unwrap().results.iter().all(|r| r.result == "created"));

    let history: History = Arc::default();
    for cycle in 0..CYCLES {
        let stop = Arc::new(AtomicBool::new(false));
        let workers: Vec<_> =
            (0..CLIENTS).map(|w| tokio::spawn(load(server.client.clone(), history.clone(), stop.clone(), cycle, w))).collect();
        tokio::time::sleep(Duration::from_millis(400 + 150 * cycle as u64)).await;
        server.kill();
        stop.store(true, Ordering::SeqCst);
        for worker in workers {
            worker.await.unwrap();
        }
        server = Server::start(&data, port).healthy().await;

        // Resolve every unknown outcome by sending the same request again.
        let unknown: Vec<(String, Sent)> = history
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, (_, outcome))| outcome.is_none())
            .map(|(id, (sent, _))| (id.clone(), sent.clone()))
            .collect();
        for (id, sent) in &unknown {
            // Sent alone, a chain member would change its fields (its link); ask instead.
            let outcome = match server.client.transfer(id).await.unwrap() {
                Some(transfer) => transfer.result,
                None => {
                    let single = Sent { linked: false, ..sent.clone() };
                    server.client.create_transfers(body(&[(id.clone(), single)])).await.unwrap().results[0].result.clone()
                }
            };
            history.lock().unwrap().get_mut(id).unwrap().1 = Some(outcome);
        }

        // Every acknowledged outcome is exactly what the ledger holds now.
        let mut expected = [100_000i64; ACCOUNTS];
        let known = history.lock().unwrap().clone();
        let mut created = 0;
        for (id, (sent, outcome)) in &known {
            let outcome = outcome.as_deref().unwrap();
            let stored = server.client.transfer(id).await.unwrap().unwrap_or_else(|| panic!("acknowledged {id} ({outcome}) is missing"));
            let expect = if outcome == "exists" { "created" } else { outcome };
            assert_eq!(stored.result, expect, "{id}");
            if stored.result == "created" {
                expected[sent.debit] -= sent.cents;
                expected[sent.credit] += sent.cents;
                created += 1;
            }
        }
        assert!(created > 0, "the load made progress in cycle {cycle}");
        let mut total = 0i64;
        for (index, cents) in expected.iter().enumerate() {
            let balance = server.client.account(&account(index)).await.unwrap().unwrap().balance;
            assert_eq!(balance, format!("{}.{:02}", cents / 100, cents % 100), "{}", account(index));
            assert!(*cents >= 0, "no account went below its floor");
            total += cents;
        }
        let world = server.client.account("world").await.unwrap().unwrap().balance;
        assert_eq!(world, format!("-{}.00", total / 100), "money is conserved");
    }
    assert!(server.terminate().success());
    let verify = tally(&["verify", "--data-dir", data.to_str().unwrap()]);
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stderr));
}
