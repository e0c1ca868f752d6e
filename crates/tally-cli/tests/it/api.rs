//! Request validation and reads: a bad field is named and nothing is applied; every read
//! returns exact decimal strings.

use crate::harness::TestServer;
use serde_json::json;

async fn the_quick_start_works_as_documented(server: TestServer) {
    server.usd().await;
    let fund = json!({"transfers": [{"id": "fund-1", "debit": "world", "credit": "alice", "amount": "100.00"}]});
    assert_eq!(server.results("/v1/transfers", fund).await, ["created"]);
    let (status, alice) = server.get("/v1/accounts/alice").await;
    assert_eq!(status, 200);
    assert_eq!(alice["balance"], "100.00");
    assert_eq!(alice["available"], "100.00");
    assert_eq!(alice["credits_posted"], "100.00");
    assert_eq!(alice["min_balance"], "0.00");
    assert_eq!(alice["version"], 2);
}

async fn bad_input_names_the_field_and_applies_nothing(server: TestServer) {
    server.usd().await;
    let before = server.engine_seq();
    let cases = [
        (json!({"transfers": [{"id": "a", "debit": "world", "credit": "alice", "amount": 12.5}]}), "transfers[0].amount"),
        (json!({"transfers": [{"id": "a", "debit": "world", "credit": "alice", "amount": "1e3"}]}), "transfers[0].amount"),
        (json!({"transfers": [{"id": "a", "debit": "world", "credit": "alice", "amount": "-5"}]}), "transfers[0].amount"),
        (json!({"transfers": [{"id": "a", "debit": "world", "credit": "alice", "amount": "0"}]}), "transfers[0].amount"),
        (json!({"transfers": [{"id": "a", "debit": "world", "credit": "alice"}]}), "transfers[0].amount"),
        (
            json!({"transfers": [{"id": "ok", "debit": "world", "credit": "alice", "amount": "1"}, {"id": "b c", "debit": "world", "credit": "alice", "amount": "1"}]}),
            "transfers[1].id",
        ),
        (json!({"transfers": [{"id": "a", "debit": "world", "credit": "alice", "amount": "1", "colour": "red"}]}), "transfers[0].colour"),
        (
            json!({"transfers": [{"id": "a", "debit": "world", "credit": "alice", "amount": "1", "timeout_ms": 5}]}),
            "transfers[0].timeout_ms",
        ),
        (json!({"transfers": [{"id": "a", "void": "h", "amount": "1"}]}), "transfers[0].amount"),
        (json!({"transfers": [{"id": "a", "post": "h", "void": "h"}]}), "transfers[0].void"),
        (json!({"transfers": [{"id": "a", "debit": "world", "credit": "alice", "amount": "1", "metadata": [1]}]}), "transfers[0].metadata"),
        (
            json!({"transfers": [{"id": "a", "debit": "world", "credit": "alice", "amount": "1", "metadata": {"k": "x".repeat(5000)}}]}),
            "transfers[0].metadata",
        ),
        (json!({"transfers": []}), "transfers"),
        (json!({"transfer": []}), "transfer"),
    ];
    for (body, field) in cases {
        let (status, answer) = server.post("/v1/transfers", body.clone()).await;
        assert_eq!(status, 400, "{body} -> {answer}");
        assert_eq!(answer["error"]["code"], "invalid_request");
        assert_eq!(answer["error"]["field"], field, "{body} -> {answer}");
    }
    let (status, answer) = server.raw("POST", "/v1/transfers", "{\"transfers\": [").await;
    assert_eq!((status, answer["error"]["field"].as_str()), (400, Some("transfers")), "the parse stopped inside the list: {answer}");
    let (status, answer) = server.raw("POST", "/v1/transfers", "not json").await;
    assert_eq!((status, answer["error"]["field"].as_str()), (400, Some("body")), "{answer}");
    let (status, answer) = server.post("/v1/accounts", json!({"accounts": [{"id": "x", "asset": "USD", "max_balance": "1.2.3"}]})).await;
    assert_eq!((status, answer["error"]["field"].as_str()), (400, Some("accounts[0].max_balance")));
    let (status, answer) = server.post("/v1/assets", json!({"code": "USD", "scale": 19})).await;
    assert_eq!((status, answer["error"]["field"].as_str()), (400, Some("scale")));
    let (status, _) = server.raw("PATCH", "/v1/accounts/alice", "{\"min_balance\": 5}").await;
    assert_eq!(status, 400);
    assert_eq!(server.engine_seq(), before, "nothing was applied");
    assert_eq!(server.balance("alice").await, "0.00");
}

async fn amounts_with_more_decimals_than_the_scale_fail_per_event_and_are_never_rounded(server: TestServer) {
    server.usd().await;
    let body = json!({"transfers": [
        {"id": "a", "debit": "world", "credit": "alice", "amount": "10.005"},
        {"id": "b", "debit": "world", "credit": "alice", "amount": "10.50"}
    ]});
    assert_eq!(server.results("/v1/transfers", body).await, ["invalid_amount", "created"]);
    assert_eq!(server.balance("alice").await, "10.50");
}

async fn reads_page_through_accounts_and_their_transfers(server: TestServer) {
    server.usd().await;
    let accounts: Vec<_> = (0..25).map(|n| json!({"id": format!("user:{n:02}"), "asset": "USD", "parent": "alice"})).collect();
    assert!(server.results("/v1/accounts", json!({"accounts": accounts})).await.iter().all(|r| r == "created"));
    let mut seen = Vec::new();
    let mut after = String::new();
    loop {
        let (status, page) = server.get(&format!("/v1/accounts?prefix=user:&limit=10{after}")).await;
        assert_eq!(status, 200);
        seen.extend(page["accounts"].as_array().unwrap().iter().map(|a| a["id"].as_str().unwrap().to_owned()));
        match page["next_after"].as_str() {
            Some(next) => after = format!("&after={next}"),
            None => break,
        }
    }
    assert_eq!(seen, (0..25).map(|n| format!("user:{n:02}")).collect::<Vec<_>>());
    let (_, children) = server.get("/v1/accounts?parent=alice&limit=1000").await;
    assert_eq!(children["accounts"].as_array().unwrap().len(), 25);
    let (status, answer) = server.get("/v1/accounts?limit=1001").await;
    assert_eq!((status, answer["error"]["field"].as_str()), (400, Some("limit")));
    let (status, _) = server.get("/v1/accounts?parent=nobody").await;
    assert_eq!(status, 404);

    let transfers: Vec<_> =
        (0..30).map(|n| json!({"id": format!("t{n}"), "debit": "world", "credit": "user:07", "amount": "1.10"})).collect();
    server.results("/v1/transfers", json!({"transfers": transfers})).await;
    let mut total = 0u64;
    let mut after_seq = 0;
    loop {
        let (_, page) = server.get(&format!("/v1/accounts/user:07/transfers?after_seq={after_seq}&limit=7")).await;
        for transfer in page["transfers"].as_array().unwrap() {
            total += transfer["amount"].as_str().unwrap().replace('.', "").parse::<u64>().unwrap();
        }
        match page["next_after_seq"].as_u64() {
            Some(next) => after_seq = next,
            None => break,
        }
    }
    assert_eq!(total, 3300, "the listed transfers sum to the balance");
    assert_eq!(server.balance("user:07").await, "33.00");
    assert_eq!(server.balance("alice").await, "33.00", "a parent's balance covers its subtree");
}

async fn balances_as_of_a_seq_are_exact_and_the_future_is_refused(server: TestServer) {
    server.usd().await;
    let (_, answer) =
        server.post("/v1/transfers", json!({"transfers": [{"id": "a", "debit": "world", "credit": "alice", "amount": "5.00"}]})).await;
    let seq = answer["results"][0]["seq"].as_u64().unwrap();
    server.results("/v1/transfers", json!({"transfers": [{"id": "b", "debit": "world", "credit": "alice", "amount": "7.00"}]})).await;
    let (_, then) = server.get(&format!("/v1/accounts/alice?as_of={seq}")).await;
    assert_eq!((then["balance"].as_str(), then["as_of"].as_u64(), then["version"].as_u64()), (Some("5.00"), Some(seq), Some(2)));
    let (status, _) = server.get(&format!("/v1/accounts/alice?as_of={}", seq - 3)).await;
    assert_eq!(status, 404, "alice did not exist yet");
    let (status, answer) = server.get("/v1/accounts/alice?as_of=999999").await;
    assert_eq!((status, answer["error"]["field"].as_str()), (400, Some("as_of")));
    let (status, answer) = server.get("/v1/accounts/alice?as_of=soon").await;
    assert_eq!((status, answer["error"]["field"].as_str()), (400, Some("as_of")));
}

async fn the_journal_feed_has_every_event_once_in_order_and_long_polls(server: TestServer) {
    server.usd().await;
    let (_, page) = server.get("/v1/journal?after_seq=0&limit=1000").await;
    let seqs: Vec<u64> = page["entries"].as_array().unwrap().iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, [1, 2, 3, 4]);
    let last = page["next_after_seq"].as_u64().unwrap();
    let waiter = {
        let client = server.client.clone();
        tokio::spawn(async move { client.journal(last, 10, 20_000).await.unwrap() })
    };
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    server.results("/v1/transfers", json!({"transfers": [{"id": "late", "debit": "world", "credit": "bob", "amount": "1"}]})).await;
    let page = waiter.await.unwrap();
    assert_eq!(page.entries.len(), 1);
    assert_eq!(page.next_after_seq, last + 1);
    let (status, answer) = server.get("/v1/journal?wait_ms=30001").await;
    assert_eq!((status, answer["error"]["field"].as_str()), (400, Some("wait_ms")));
}

async fn bounds_change_at_runtime_with_an_optimistic_version_check(server: TestServer) {
    server.usd().await;
    let (_, alice) = server.get("/v1/accounts/alice").await;
    let version = alice["version"].as_u64().unwrap();
    let patch = |v: u64| json!({"min_balance": "-50.00", "if_version": v}).to_string();
    let (_, answer) = server.raw("PATCH", "/v1/accounts/alice", &patch(version + 1)).await;
    assert_eq!(answer["results"][0]["result"], "version_mismatch");
    let (_, answer) = server.raw("PATCH", "/v1/accounts/alice", &patch(version)).await;
    assert_eq!(answer["results"][0]["result"], "updated");
    assert_eq!(
        server.results("/v1/transfers", json!({"transfers": [{"id": "od", "debit": "alice", "credit": "bob", "amount": "50.00"}]})).await,
        ["created"]
    );
    let (_, answer) = server.raw("PATCH", "/v1/accounts/alice", "{\"min_balance\": \"0\"}").await;
    assert_eq!(answer["results"][0]["result"], "exceeds_min_balance");
    let (status, answer) = server.raw("PATCH", "/v1/accounts/nobody", "{}").await;
    assert_eq!((status, answer["results"][0]["result"].as_str()), (200, Some("account_not_found")));
}

async fn transfers_read_back_with_their_state(server: TestServer) {
    server.usd().await;
    let body = json!({"transfers": [
        {"id": "fund", "debit": "world", "credit": "alice", "amount": "10", "metadata": {"b": 2, "a": 1}},
        {"id": "hold", "debit": "alice", "credit": "bob", "amount": "4", "pending": true, "timeout_ms": 60000},
        {"id": "settle", "post": "hold", "amount": "3.50"},
        {"id": "bad", "debit": "alice", "credit": "bob", "amount": "100"}
    ]});
    assert_eq!(server.results("/v1/transfers", body).await, ["created", "created", "created", "exceeds_min_balance"]);
    let (_, fund) = server.get("/v1/transfers/fund").await;
    assert_eq!((fund["state"].as_str(), fund["amount"].as_str()), (Some("posted"), Some("10.00")));
    assert_eq!(fund["metadata"], json!({"a": 1, "b": 2}));
    let (_, hold) = server.get("/v1/transfers/hold").await;
    assert_eq!(
        (hold["state"].as_str(), hold["pending"].as_bool(), hold["resolved_by"].as_str()),
        (Some("posted"), Some(true), Some("settle"))
    );
    let (_, settle) = server.get("/v1/transfers/settle").await;
    assert_eq!((settle["post"].as_str(), settle["amount"].as_str()), (Some("hold"), Some("3.50")));
    let (_, bad) = server.get("/v1/transfers/bad").await;
    assert_eq!((bad["state"].as_str(), bad["result"].as_str()), (Some("failed"), Some("exceeds_min_balance")));
    let (status, answer) = server.get("/v1/transfers/nothing").await;
    assert_eq!((status, answer["error"]["code"].as_str()), (404, Some("not_found")));
    let (status, answer) = server.get("/v1/nowhere").await;
    assert_eq!((status, answer["error"]["code"].as_str()), (404, Some("not_found")));
}

impl TestServer {
    pub fn engine_seq(&self) -> u64 {
        self.engine.status().last_seq
    }
}

async fn a_closed_account_refuses_new_transfers_and_says_so_everywhere(server: TestServer) {
    server.usd().await;
    let body = json!({"transfers": [
        {"id": "fund", "debit": "world", "credit": "alice", "amount": "10"},
        {"id": "hold", "debit": "alice", "credit": "bob", "amount": "4", "pending": true}
    ]});
    assert_eq!(server.results("/v1/transfers", body).await, ["created", "created"]);
    let (status, answer) = server.raw("PATCH", "/v1/accounts/alice", r#"{"force": true}"#).await;
    assert_eq!((status, answer["error"]["field"].as_str()), (400, Some("force")), "{answer}");
    let (_, answer) = server.raw("PATCH", "/v1/accounts/alice", r#"{"closed": true}"#).await;
    assert_eq!(answer["results"][0]["result"], "account_not_empty");
    let (_, answer) = server.raw("PATCH", "/v1/accounts/alice", r#"{"closed": true, "force": true}"#).await;
    assert_eq!(answer["results"][0]["result"], "updated");
    let closed_at = answer["results"][0]["seq"].as_u64().unwrap();
    let (_, alice) = server.get("/v1/accounts/alice").await;
    assert_eq!(alice["closed"], true);
    let body = json!({"transfers": [
        {"id": "more", "debit": "world", "credit": "alice", "amount": "1"},
        {"id": "settle", "post": "hold"}
    ]});
    assert_eq!(server.results("/v1/transfers", body).await, ["account_closed", "created"]);
    let (_, page) = server.get(&format!("/v1/journal?after_seq={}&limit=1", closed_at - 1)).await;
    let entry = &page["entries"][0];
    assert_eq!((entry["type"].as_str(), entry["closed"].as_bool()), (Some("account_updated"), Some(true)), "{page}");
    let (_, answer) = server.raw("PATCH", "/v1/accounts/alice", r#"{"closed": false}"#).await;
    assert_eq!(answer["results"][0]["result"], "updated");
    let (_, then) = server.get(&format!("/v1/accounts/alice?as_of={closed_at}")).await;
    assert_eq!((then["closed"].as_bool(), server.get("/v1/accounts/alice").await.1["closed"].as_bool()), (Some(true), Some(false)));
}

async fn a_hold_is_renewed_as_a_lease_and_the_renewal_is_journaled(server: TestServer) {
    server.usd().await;
    let body = json!({"transfers": [
        {"id": "fund", "debit": "world", "credit": "alice", "amount": "10"},
        {"id": "lease", "debit": "alice", "credit": "bob", "amount": "1", "pending": true, "timeout_ms": 60000},
        {"id": "pair", "debit": "alice", "amount": "2", "pending": true, "timeout_ms": 60000,
         "allocate": [{"credit": "bob", "weight": 1}, {"credit": "world", "weight": 1}]}
    ]});
    let (_, answer) = server.post("/v1/transfers", body).await;
    let token = answer["results"][1]["seq"].as_u64().unwrap();
    let (_, before) = server.get("/v1/transfers/lease").await;
    let (status, answer) = server.raw("PATCH", "/v1/transfers/lease", &format!(r#"{{"timeout_ms": 600000, "if_seq": {token}}}"#)).await;
    assert_eq!((status, answer["results"][0]["result"].as_str()), (200, Some("updated")), "{answer}");
    let renewed_at = answer["results"][0]["timestamp"].as_u64().unwrap();
    let (_, after) = server.get("/v1/transfers/lease").await;
    assert_eq!(after["expires_at"].as_u64(), Some(renewed_at + 600_000 * 1_000_000));
    assert!(after["expires_at"].as_u64() > before["expires_at"].as_u64());
    let (_, answer) = server.raw("PATCH", "/v1/transfers/lease", &format!(r#"{{"timeout_ms": 1000, "if_seq": {}}}"#, token + 1)).await;
    assert_eq!(answer["results"][0]["result"], "version_mismatch");
    let (_, answer) = server.raw("PATCH", "/v1/transfers/pair/1", r#"{"timeout_ms": 1000}"#).await;
    assert_eq!(answer["results"][0]["result"], "updated", "{answer}");
    for (body, field) in
        [(r#"{}"#, "timeout_ms"), (r#"{"timeout_ms": 0}"#, "timeout_ms"), (r#"{"timeout_ms": 1, "amount": "1"}"#, "amount")]
    {
        let (status, answer) = server.raw("PATCH", "/v1/transfers/lease", body).await;
        assert_eq!((status, answer["error"]["field"].as_str()), (400, Some(field)), "{body} -> {answer}");
    }
    let settle = json!({"transfers": [{"id": "done", "post": "lease"}]});
    assert_eq!(server.results("/v1/transfers", settle).await, ["created"]);
    let (_, answer) = server.raw("PATCH", "/v1/transfers/lease", r#"{"timeout_ms": 1000}"#).await;
    assert_eq!(answer["results"][0]["result"], "pending_already_posted");
    let (_, page) = server.get(&format!("/v1/journal?after_seq={}&limit=1000", token)).await;
    let renewals: Vec<_> = page["entries"].as_array().unwrap().iter().filter(|e| e["type"] == "hold_renewed").collect();
    assert_eq!(renewals.len(), 2, "{page}");
    assert_eq!((renewals[0]["pending_id"].as_str(), renewals[1]["pending_id"].as_str()), (Some("lease"), Some("pair/1")));
}

on_every_store!(
    a_hold_is_renewed_as_a_lease_and_the_renewal_is_journaled,
    a_closed_account_refuses_new_transfers_and_says_so_everywhere,
    the_quick_start_works_as_documented,
    bad_input_names_the_field_and_applies_nothing,
    amounts_with_more_decimals_than_the_scale_fail_per_event_and_are_never_rounded,
    reads_page_through_accounts_and_their_transfers,
    balances_as_of_a_seq_are_exact_and_the_future_is_refused,
    the_journal_feed_has_every_event_once_in_order_and_long_polls,
    bounds_change_at_runtime_with_an_optimistic_version_check,
    transfers_read_back_with_their_state,
);
