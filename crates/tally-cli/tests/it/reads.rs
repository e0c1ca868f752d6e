//! The read routes behind the console: an account's history with running balances, open
//! holds by expiry, the trees' roots, who a key is, a time's journal position, the writer's
//! samples. Every store answers them alike.

use crate::harness::TestServer;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn transfer(id: &str, debit: &str, credit: &str, amount: &str) -> Value {
    json!({"id": id, "debit": debit, "credit": credit, "amount": amount})
}

async fn ok(server: &TestServer, path: &str) -> Value {
    let (status, answer) = server.get(path).await;
    assert_eq!(status, 200, "{path}: {answer}");
    answer
}

/// Waits (bounded) until the transfer `id` stands in `state`.
async fn until_state(server: &TestServer, id: &str, state: &str) {
    let started = Instant::now();
    while ok(server, &format!("/v1/transfers/{id}")).await["state"] != state {
        assert!(started.elapsed() < Duration::from_secs(30), "{id} never became {state}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn an_accounts_history_gives_its_balances_after_every_change(server: TestServer) {
    server.usd().await;
    let hold = json!({"id": "h1", "debit": "alice", "credit": "bob", "amount": "30.00", "pending": true});
    let short = json!({"id": "h2", "debit": "alice", "credit": "bob", "amount": "5.00", "pending": true, "timeout_ms": 1});
    server.results("/v1/transfers", json!({"transfers": [transfer("fund", "world", "alice", "100.00"), hold]})).await;
    server.results("/v1/transfers", json!({"transfers": [{"id": "p1", "post": "h1", "amount": "20.00"}, short]})).await;
    until_state(&server, "h2", "expired").await;
    let (status, _) = server.raw("PATCH", "/v1/accounts/alice", r#"{"max_balance": "1000.00"}"#).await;
    assert_eq!(status, 200);
    server.results("/v1/transfers", json!({"transfers": [transfer("out", "alice", "world", "0.01")]})).await;

    let history = ok(&server, "/v1/accounts/alice/history").await;
    let changes = history["changes"].as_array().unwrap();
    let summary: Vec<(&str, Option<&str>, &str, &str)> = changes
        .iter()
        .map(|c| (c["kind"].as_str().unwrap(), c["transfer"].as_str(), c["balance"].as_str().unwrap(), c["available"].as_str().unwrap()))
        .collect();
    assert_eq!(
        summary,
        [
            ("created", None, "0.00", "0.00"),
            ("transfer", Some("fund"), "100.00", "100.00"),
            ("transfer", Some("h1"), "100.00", "70.00"),
            ("transfer", Some("p1"), "80.00", "80.00"),
            ("transfer", Some("h2"), "80.00", "75.00"),
            ("expiry", Some("h2"), "80.00", "80.00"),
            ("updated", None, "80.00", "80.00"),
            ("transfer", Some("out"), "79.99", "79.99"),
        ]
    );
    assert_eq!(history["next_after_seq"], Value::Null);
    // Every change's balances are the account's as of that change, and versions count them.
    for (n, change) in changes.iter().enumerate() {
        let then = ok(&server, &format!("/v1/accounts/alice?as_of={}", change["seq"])).await;
        for field in ["debits_posted", "credits_posted", "debits_pending", "credits_pending", "balance", "available", "version"] {
            assert_eq!(change[field], then[field], "{field} at change {n}");
        }
        assert_eq!(change["version"], n as u64 + 1);
    }
    // Pages continue where the last one ended.
    let first = ok(&server, "/v1/accounts/alice/history?limit=3").await;
    assert_eq!(first["changes"].as_array().unwrap().len(), 3);
    let next = first["next_after_seq"].as_u64().unwrap();
    assert_eq!(next, changes[2]["seq"].as_u64().unwrap());
    let rest = ok(&server, &format!("/v1/accounts/alice/history?after_seq={next}&limit=1000")).await;
    assert_eq!(rest["changes"].as_array().unwrap().as_slice(), &changes[3..]);
    let (status, answer) = server.get("/v1/accounts/nobody/history").await;
    assert_eq!((status, answer["error"]["code"].as_str()), (404, Some("not_found")), "{answer}");
    let (status, answer) = server.get("/v1/accounts/alice/history?limit=0").await;
    assert_eq!((status, answer["error"]["field"].as_str()), (400, Some("limit")), "{answer}");
    for route in ["/v1/accounts/alice/history", "/v1/accounts/alice/transfers", "/v1/journal"] {
        let (status, answer) = server.get(&format!("{route}?after_seq=9223372036854775808")).await;
        assert_eq!((status, answer["error"]["field"].as_str()), (400, Some("after_seq")), "{route}: {answer}");
    }
}

async fn open_holds_are_listed_soonest_to_expire_first(server: TestServer) {
    server.usd().await;
    server.results("/v1/transfers", json!({"transfers": [transfer("fund", "world", "alice", "100.00")]})).await;
    let hold = |id: &str, timeout: Option<u64>| {
        let mut hold = json!({"id": id, "debit": "alice", "credit": "bob", "amount": "1.00", "pending": true});
        if let Some(timeout) = timeout {
            hold["timeout_ms"] = json!(timeout);
        }
        hold
    };
    let holds = json!({"transfers": [
        hold("late", Some(90_000_000)), hold("soon", Some(30_000_000)), hold("never", None),
        hold("middle", Some(60_000_000)), hold("voided", Some(10_000_000)), {"id": "v", "void": "voided"}
    ]});
    server.results("/v1/transfers", holds).await;
    let page = ok(&server, "/v1/holds").await;
    let ids: Vec<&str> = page["holds"].as_array().unwrap().iter().map(|h| h["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["soon", "middle", "late"], "resolved holds and holds without a timeout are not listed");
    assert!(page["holds"][0]["expires_at"].as_u64().unwrap() < page["holds"][1]["expires_at"].as_u64().unwrap());
    assert_eq!(page["next_after"], Value::Null);
    let first = ok(&server, "/v1/holds?limit=2").await;
    let middle = &first["holds"][1];
    let position = format!("{}.{}", middle["expires_at"], middle["seq"]);
    assert_eq!(first["next_after"].as_str(), Some(position.as_str()), "a page ends at where its last hold expires, and its seq");
    let rest = ok(&server, &format!("/v1/holds?limit=2&after={position}")).await;
    assert_eq!(rest["holds"][0]["id"], "late");
    assert_eq!(rest["holds"].as_array().unwrap().len(), 1);
    for wrong in ["middle", "1.x", "12", "9223372036854775808.1"] {
        let (status, answer) = server.get(&format!("/v1/holds?after={wrong}")).await;
        assert_eq!((status, answer["error"]["field"].as_str()), (400, Some("after")), "{wrong}: {answer}");
    }
}

async fn roots_list_the_tops_of_the_account_trees(server: TestServer) {
    server.usd().await;
    let tree = json!({"accounts": [
        {"id": "org", "asset": "USD", "min_balance": null},
        {"id": "org:a", "asset": "USD", "parent": "org"},
        {"id": "org:b", "asset": "USD", "parent": "org"},
        {"id": "org:a:x", "asset": "USD", "parent": "org:a"}
    ]});
    server.results("/v1/accounts", tree).await;
    let ids = |page: &Value| page["accounts"].as_array().unwrap().iter().map(|a| a["id"].as_str().unwrap().to_owned()).collect::<Vec<_>>();
    assert_eq!(ids(&ok(&server, "/v1/accounts?roots=true").await), ["alice", "bob", "org", "world"]);
    assert_eq!(ids(&ok(&server, "/v1/accounts?roots=true&prefix=o").await), ["org"]);
    let page = ok(&server, "/v1/accounts?roots=true&limit=2").await;
    assert_eq!((ids(&page), page["next_after"].as_str()), (vec!["alice".to_owned(), "bob".to_owned()], Some("bob")));
    assert_eq!(ids(&ok(&server, "/v1/accounts?roots=true&after=bob").await), ["org", "world"]);
    assert_eq!(ids(&ok(&server, "/v1/accounts?parent=org").await), ["org:a", "org:b"]);
    let (status, answer) = server.get("/v1/accounts?roots=true&parent=org").await;
    assert_eq!((status, answer["error"]["field"].as_str()), (400, Some("roots")), "{answer}");
}

async fn a_time_finds_its_journal_position(server: TestServer) {
    server.usd().await;
    server.results("/v1/transfers", json!({"transfers": [transfer("t1", "world", "alice", "1.00")]})).await;
    server.results("/v1/transfers", json!({"transfers": [transfer("t2", "world", "alice", "2.00")]})).await;
    let whoami = ok(&server, "/v1/whoami").await;
    let last = whoami["last_seq"].as_u64().unwrap();
    assert_eq!(
        (whoami["scope"].as_str(), &whoami["key"]),
        (Some("admin"), &Value::Null),
        "a ledger without keys lets everyone do everything"
    );
    let entries = ok(&server, "/v1/journal?limit=1000").await["entries"].as_array().unwrap().clone();
    assert_eq!(entries.len() as u64, last);
    for entry in &entries {
        let (seq, timestamp) = (entry["seq"].as_u64().unwrap(), entry["timestamp"].as_u64().unwrap());
        let at = ok(&server, &format!("/v1/journal/position?at={timestamp}")).await;
        assert_eq!((at["seq"].as_u64(), at["timestamp"].as_u64()), (Some(seq), Some(timestamp)));
        let before = ok(&server, &format!("/v1/journal/position?at={}", timestamp - 1)).await;
        assert_eq!(before["seq"].as_u64(), Some(seq - 1));
    }
    let after_all = ok(&server, &format!("/v1/journal/position?at={}", u64::MAX)).await;
    assert_eq!(after_all["seq"].as_u64(), Some(last));
    let before_all = ok(&server, "/v1/journal/position?at=0").await;
    assert_eq!((before_all["seq"].as_u64(), &before_all["timestamp"]), (Some(0), &Value::Null));
    let (status, answer) = server.get("/v1/journal/position").await;
    assert_eq!((status, answer["error"]["field"].as_str()), (400, Some("at")), "{answer}");
}

async fn the_writers_progress_is_sampled(server: TestServer) {
    server.usd().await;
    let started = Instant::now();
    let stats = loop {
        let stats = ok(&server, "/v1/stats").await;
        let last = stats["samples"].as_array().unwrap().last().cloned().unwrap_or(Value::Null);
        if last["last_seq"].as_u64() >= Some(4) {
            break stats;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "no sample saw the writes: {stats}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(stats["interval_ms"], 1000);
    let samples = stats["samples"].as_array().unwrap();
    // Seqs that grew between samples were committed between them.
    let commits: u64 = samples.iter().skip(1).map(|s| s["commits"].as_u64().unwrap()).sum();
    if samples[0]["last_seq"] != samples[samples.len() - 1]["last_seq"] {
        assert!(commits >= 1, "{stats}");
    }
    assert!(samples.windows(2).all(|pair| pair[0]["at_ms"].as_u64() <= pair[1]["at_ms"].as_u64()));
}

on_every_store!(
    an_accounts_history_gives_its_balances_after_every_change,
    open_holds_are_listed_soonest_to_expire_first,
    roots_list_the_tops_of_the_account_trees,
    a_time_finds_its_journal_position,
    the_writers_progress_is_sampled,
);
