//! The races Tally exists to make impossible, run for real: many clients at once over HTTP.

use crate::harness::TestServer;
use futures::future::join_all;
use serde_json::json;

async fn concurrently(server: &TestServer, bodies: Vec<serde_json::Value>) -> Vec<String> {
    let calls = bodies.into_iter().map(|body| async move { server.results("/v1/transfers", body).await.remove(0) });
    join_all(calls).await
}

fn count(results: &[String], name: &str) -> usize {
    results.iter().filter(|r| *r == name).count()
}

async fn fifty_concurrent_withdrawals_never_overdraw(server: TestServer) {
    server.usd().await;
    server.results("/v1/transfers", json!({"transfers": [{"id": "fund", "debit": "world", "credit": "alice", "amount": "100.00"}]})).await;
    let withdrawals =
        (0..50).map(|n| json!({"transfers": [{"id": format!("w{n}"), "debit": "alice", "credit": "world", "amount": "10.00"}]})).collect();
    let results = concurrently(&server, withdrawals).await;
    assert_eq!((count(&results, "created"), count(&results, "exceeds_min_balance")), (10, 40));
    assert_eq!(server.balance("alice").await, "0.00");
}

async fn a_job_with_two_slots_admits_two_of_six_concurrent_applicants(server: TestServer) {
    assert_eq!(server.results("/v1/assets", json!({"code": "SLOT", "scale": 0})).await, ["created"]);
    let accounts = json!({"accounts": [
        {"id": "job:42", "asset": "SLOT", "min_balance": null, "max_balance": "2"},
        {"id": "applicants", "asset": "SLOT", "min_balance": null}
    ]});
    server.results("/v1/accounts", accounts).await;
    let applications =
        (0..6).map(|n| json!({"transfers": [{"id": format!("apply-{n}"), "debit": "applicants", "credit": "job:42", "amount": "1", "pending": true}]})).collect();
    let results = concurrently(&server, applications).await;
    assert_eq!((count(&results, "created"), count(&results, "exceeds_max_balance")), (2, 4));
    // Rejecting an admitted applicant frees the slot; a rejected applicant never used one.
    let admitted: Vec<usize> = (0..6).filter(|n| results[*n] == "created").collect();
    let decide = json!({"transfers": [
        {"id": "reject", "void": format!("apply-{}", admitted[0])},
        {"id": "hire", "post": format!("apply-{}", admitted[1])}
    ]});
    assert_eq!(server.results("/v1/transfers", decide).await, ["created", "created"]);
    let late = json!({"transfers": [{"id": "apply-late", "debit": "applicants", "credit": "job:42", "amount": "1", "pending": true}]});
    assert_eq!(server.results("/v1/transfers", late).await, ["created"]);
    let (_, job) = server.get("/v1/accounts/job:42").await;
    assert_eq!((job["balance"].as_str(), job["credits_pending"].as_str()), (Some("1"), Some("1")));
}

async fn a_retried_payment_applies_once_even_when_the_retries_race(server: TestServer) {
    server.usd().await;
    let payment = json!({"transfers": [{"id": "pay-7", "debit": "world", "credit": "alice", "amount": "25.00"}]});
    let results = concurrently(&server, vec![payment; 20]).await;
    assert_eq!((count(&results, "created"), count(&results, "exists")), (1, 19));
    assert_eq!(server.balance("alice").await, "25.00");
    let changed = json!({"transfers": [{"id": "pay-7", "debit": "world", "credit": "alice", "amount": "26.00"}]});
    assert_eq!(server.results("/v1/transfers", changed).await, ["exists_with_different_fields"]);
}

async fn teams_spend_concurrently_within_their_shared_budget(server: TestServer) {
    server.usd().await;
    let tree = json!({"accounts": [
        {"id": "org", "asset": "USD", "min_balance": "-100.00"},
        {"id": "org:design", "asset": "USD", "parent": "org", "min_balance": null},
        {"id": "org:infra", "asset": "USD", "parent": "org", "min_balance": null},
        {"id": "org:infra:ci", "asset": "USD", "parent": "org:infra", "min_balance": null}
    ]});
    server.results("/v1/accounts", tree).await;
    let teams = ["org:design", "org:infra", "org:infra:ci"];
    let spends = (0..30)
        .map(|n| json!({"transfers": [{"id": format!("s{n}"), "debit": teams[n % 3], "credit": "world", "amount": "10.00"}]}))
        .collect();
    let results = concurrently(&server, spends).await;
    assert_eq!(count(&results, "created"), 10, "the org's floor of -100 binds all teams together");
    assert_eq!(server.balance("org").await, "-100.00");
    let moves = json!({"transfers": [{"id": "move", "debit": "org:design", "credit": "org:infra:ci", "amount": "500.00"}]});
    assert_eq!(server.results("/v1/transfers", moves).await, ["created"], "moving budget inside the org nets out");
}

async fn a_withdrawal_holds_funds_until_the_bank_answers(server: TestServer) {
    server.usd().await;
    server.results("/v1/transfers", json!({"transfers": [{"id": "fund", "debit": "world", "credit": "alice", "amount": "100.00"}]})).await;
    let hold = |id: &str| json!({"transfers": [{"id": id, "debit": "alice", "credit": "world", "amount": "80.00", "pending": true, "timeout_ms": 3600000}]});
    assert_eq!(server.results("/v1/transfers", hold("wd-1")).await, ["created"]);
    assert_eq!(server.results("/v1/transfers", hold("wd-2")).await, ["exceeds_min_balance"], "the held funds are not available twice");
    let (_, alice) = server.get("/v1/accounts/alice").await;
    assert_eq!((alice["balance"].as_str(), alice["available"].as_str()), (Some("100.00"), Some("20.00")));
    // The bank declines: void. Then a second attempt is approved: post.
    assert_eq!(server.results("/v1/transfers", json!({"transfers": [{"id": "wd-1-declined", "void": "wd-1"}]})).await, ["created"]);
    assert_eq!(server.results("/v1/transfers", hold("wd-3")).await, ["created"]);
    assert_eq!(server.results("/v1/transfers", json!({"transfers": [{"id": "wd-3-paid", "post": "wd-3"}]})).await, ["created"]);
    assert_eq!(
        server.results("/v1/transfers", json!({"transfers": [{"id": "wd-3-again", "void": "wd-3"}]})).await,
        ["pending_already_posted"]
    );
    assert_eq!(server.balance("alice").await, "20.00");
}

async fn a_linked_chain_is_all_or_nothing_and_spares_the_rest_of_the_batch(server: TestServer) {
    server.usd().await;
    let body = json!({"transfers": [
        {"id": "c1", "debit": "world", "credit": "alice", "amount": "10", "linked": true},
        {"id": "c2", "debit": "alice", "credit": "bob", "amount": "11"},
        {"id": "solo", "debit": "world", "credit": "bob", "amount": "1"}
    ]});
    assert_eq!(server.results("/v1/transfers", body).await, ["linked_event_failed", "exceeds_min_balance", "created"]);
    assert_eq!((server.balance("alice").await, server.balance("bob").await), ("0.00".to_owned(), "1.00".to_owned()));
}

/// The root lock of a tree of records that share state: a lease (a hold of 1 with a timeout)
/// on any node of a tree whose root holds 1 permit excludes every other lease in that tree,
/// and nothing in any other tree. Many holders race for leases on random nodes of two trees;
/// each one that gets a lease enters its tree's critical section, which must be empty.
async fn a_lease_on_any_node_locks_its_whole_tree_against_many_concurrent_holders(server: TestServer) {
    assert_eq!(server.results("/v1/assets", json!({"code": "LOCK", "scale": 0})).await, ["created"]);
    let mut accounts = vec![json!({"id": "holders", "asset": "LOCK", "min_balance": null})];
    for tree in ["lock:genome:g0", "lock:genome:g1"] {
        accounts.push(json!({"id": tree, "asset": "LOCK", "min_balance": "-1"}));
        for chunk in 0..3 {
            let node = format!("{tree}:chunk:{chunk}");
            accounts.push(json!({"id": node, "asset": "LOCK", "parent": tree, "min_balance": null}));
            accounts.push(json!({"id": format!("{node}:part"), "asset": "LOCK", "parent": node, "min_balance": null}));
        }
    }
    let created = server.results("/v1/accounts", json!({"accounts": accounts})).await;
    assert!(created.iter().all(|result| result == "created"), "{created:?}");
    let inside = [std::sync::atomic::AtomicUsize::new(0), std::sync::atomic::AtomicUsize::new(0)];
    let held = [std::sync::atomic::AtomicUsize::new(0), std::sync::atomic::AtomicUsize::new(0)];
    let holder = |worker: usize| {
        let (inside, held, server) = (&inside, &held, &server);
        async move {
            let tree = worker % 2;
            for attempt in 0..8 {
                let node = match (worker + attempt) % 3 {
                    0 => format!("lock:genome:g{tree}"),
                    chunk => format!("lock:genome:g{tree}:chunk:{chunk}:part"),
                };
                let id = format!("lease-{worker}-{attempt}");
                let take = json!({"transfers": [{"id": id, "debit": node, "credit": "holders", "amount": "1", "pending": true, "timeout_ms": 60000}]});
                match server.results("/v1/transfers", take).await[0].as_str() {
                    "created" => {
                        assert_eq!(inside[tree].fetch_add(1, std::sync::atomic::Ordering::SeqCst), 0, "two holders inside tree {tree}");
                        held[tree].fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        tokio::task::yield_now().await;
                        inside[tree].fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                        let release = json!({"transfers": [{"id": format!("release-{worker}-{attempt}"), "void": id}]});
                        assert_eq!(server.results("/v1/transfers", release).await, ["created"]);
                    }
                    "exceeds_min_balance" => {}
                    other => panic!("a lease attempt answered {other}"),
                }
            }
        }
    };
    join_all((0..16).map(holder)).await;
    assert!(held.iter().all(|count| count.load(std::sync::atomic::Ordering::SeqCst) > 0), "both trees were leased");
    // While one tree is leased, the other is free.
    let take = |id: &str, node: &str| json!({"transfers": [{"id": id, "debit": node, "credit": "holders", "amount": "1", "pending": true, "timeout_ms": 60000}]});
    assert_eq!(server.results("/v1/transfers", take("a", "lock:genome:g0:chunk:1:part")).await, ["created"]);
    assert_eq!(server.results("/v1/transfers", take("b", "lock:genome:g0:chunk:2")).await, ["exceeds_min_balance"]);
    assert_eq!(server.results("/v1/transfers", take("c", "lock:genome:g1:chunk:2:part")).await, ["created"]);
}

on_every_store!(
    a_lease_on_any_node_locks_its_whole_tree_against_many_concurrent_holders,
    fifty_concurrent_withdrawals_never_overdraw,
    a_job_with_two_slots_admits_two_of_six_concurrent_applicants,
    a_retried_payment_applies_once_even_when_the_retries_race,
    teams_spend_concurrently_within_their_shared_budget,
    a_withdrawal_holds_funds_until_the_bank_answers,
    a_linked_chain_is_all_or_nothing_and_spares_the_rest_of_the_batch,
);
