//! Allocations and balancing transfers through the HTTP API, on both stores: what the
//! results say, what reads show, and what is refused before it reaches the ledger.

use crate::harness::TestServer;
use serde_json::json;

async fn a_pot_is_split_exactly_into_legs_that_read_back_one_by_one(server: TestServer) {
    server.usd().await;
    assert_eq!(server.results("/v1/accounts", json!({"accounts": [{"id": "carol", "asset": "USD"}]})).await, ["created"]);
    let fund = json!({"transfers": [{"id": "fund", "debit": "world", "credit": "table:7", "amount": "100.00"}]});
    server.post("/v1/accounts", json!({"accounts": [{"id": "table:7", "asset": "USD"}]})).await;
    assert_eq!(server.results("/v1/transfers", fund).await, ["created"]);
    let payout = json!({"transfers": [{"id": "pot-7-payout", "debit": "table:7", "amount": "100.00",
        "allocate": [{"credit": "alice", "weight": 1}, {"credit": "bob", "weight": 1}, {"credit": "carol", "weight": 1}]}]});
    let (status, answer) = server.post("/v1/transfers", payout.clone()).await;
    assert_eq!(status, 200, "{answer}");
    let result = &answer["results"][0];
    assert_eq!((result["result"].as_str(), result["amount"].as_str()), (Some("created"), Some("100.00")), "{answer}");
    assert_eq!(
        result["legs"],
        json!([
            {"id": "pot-7-payout/0", "credit": "alice", "amount": "33.34"},
            {"id": "pot-7-payout/1", "credit": "bob", "amount": "33.33"},
            {"id": "pot-7-payout/2", "credit": "carol", "amount": "33.33"}
        ])
    );
    for (account, balance) in [("alice", "33.34"), ("bob", "33.33"), ("carol", "33.33"), ("table:7", "0.00")] {
        assert_eq!(server.balance(account).await, balance, "{account}");
    }
    let (status, leg) = server.get("/v1/transfers/pot-7-payout/1").await;
    assert_eq!((status, leg["credit"].as_str(), leg["amount"].as_str()), (200, Some("bob"), Some("33.33")), "{leg}");
    let (status, leg) = server.get("/v1/transfers/pot-7-payout%2F2").await;
    assert_eq!((status, leg["credit"].as_str()), (200, Some("carol")), "{leg}");
    for (path, expected) in
        [("/v1/transfers/pot-7-payout/3", 404), ("/v1/transfers/pot-7-payout/01", 400), ("/v1/transfers/pot-7-payout", 404)]
    {
        assert_eq!(server.get(path).await.0, expected, "{path}");
    }
    // A retry applies nothing and answers exactly as the first time did.
    let (_, again) = server.post("/v1/transfers", payout).await;
    assert_eq!(again["results"][0]["result"], "exists");
    assert_eq!((&again["results"][0]["seq"], &again["results"][0]["legs"]), (&result["seq"], &result["legs"]));
    assert_eq!(server.balance("alice").await, "33.34");
}

async fn a_held_allocation_is_posted_by_its_id_and_a_balancing_transfer_sweeps_what_is_left(server: TestServer) {
    server.usd().await;
    let body = json!({"transfers": [
        {"id": "fund", "debit": "world", "credit": "alice", "amount": "10.00"},
        {"id": "refund", "debit": "alice", "amount": "9.00", "pending": true, "timeout_ms": 60000,
         "allocate": [{"credit": "bob", "weight": 2}, {"credit": "world", "weight": 1}]},
        {"id": "settle", "post": "refund"}
    ]});
    assert_eq!(server.results("/v1/transfers", body).await, ["created", "created", "created"]);
    assert_eq!((server.balance("alice").await, server.balance("bob").await), ("1.00".into(), "6.00".into()));
    let (_, leg) = server.get("/v1/transfers/refund/0").await;
    assert_eq!((leg["state"].as_str(), leg["resolved_by"].as_str()), (Some("posted"), Some("settle/0")), "{leg}");
    // One leg of a held allocation is resolved by its own id.
    let held = json!({"transfers": [
        {"id": "pair", "debit": "alice", "amount": "0.50", "pending": true, "allocate": [{"credit": "bob", "weight": 1}, {"credit": "world", "weight": 1}]},
        {"id": "one", "void": "pair/1"},
        {"id": "rest", "post": "pair/0"}
    ]});
    assert_eq!(server.results("/v1/transfers", held).await, ["created", "created", "created"]);
    assert_eq!(server.balance("bob").await, "6.25");
    let sweep = json!({"transfers": [{"id": "sweep", "debit": "alice", "credit": "world", "balancing": true}]});
    let (_, answer) = server.post("/v1/transfers", sweep).await;
    assert_eq!((answer["results"][0]["result"].as_str(), answer["results"][0]["amount"].as_str()), (Some("created"), Some("0.75")));
    let again = json!({"transfers": [{"id": "sweep-2", "debit": "alice", "credit": "world", "amount": "5", "balancing": true}]});
    let (_, answer) = server.post("/v1/transfers", again).await;
    assert_eq!(answer["results"][0]["amount"], "0.00", "nothing is left: created, moving nothing");
    assert_eq!(server.balance("alice").await, "0.00");
}

async fn malformed_allocations_and_balancing_transfers_are_refused_by_field(server: TestServer) {
    server.usd().await;
    let before = server.engine_seq();
    let share = |weight: u64| json!({"credit": "bob", "weight": weight});
    let many: Vec<_> = (0..1_001).map(|_| share(1)).collect();
    let cases = [
        (json!({"id": "a", "debit": "alice", "credit": "bob", "amount": "1", "allocate": [share(1)]}), "transfers[0].credit"),
        (json!({"id": "a", "debit": "alice", "amount": "1", "allocate": []}), "transfers[0].allocate"),
        (json!({"id": "a", "debit": "alice", "amount": "1", "allocate": many}), "transfers[0].allocate"),
        (json!({"id": "a", "debit": "alice", "amount": "1", "allocate": [share(1), share(0)]}), "transfers[0].allocate[1].weight"),
        (json!({"id": "a", "debit": "alice", "amount": "1", "allocate": [share(1_000_000_001)]}), "transfers[0].allocate[0].weight"),
        (
            json!({"id": "a", "debit": "alice", "amount": "1", "allocate": [{"credit": "b c", "weight": 1}]}),
            "transfers[0].allocate[0].credit",
        ),
        (json!({"id": "a", "debit": "alice", "allocate": [share(1)]}), "transfers[0].amount"),
        (json!({"id": "a", "post": "h", "allocate": [share(1)]}), "transfers[0].allocate"),
        (json!({"id": "a", "debit": "alice", "amount": "1", "allocate": [share(1)], "balancing": true}), "transfers[0].balancing"),
        (json!({"id": "a", "post": "h", "balancing": true}), "transfers[0].balancing"),
        (json!({"id": "a", "debit": "alice", "credit": "bob", "amount": "0", "balancing": true}), "transfers[0].amount"),
    ];
    for (transfer, field) in cases {
        let (status, answer) = server.post("/v1/transfers", json!({"transfers": [transfer]})).await;
        assert_eq!((status, answer["error"]["field"].as_str()), (400, Some(field)), "{transfer} -> {answer}");
    }
    // Entries count towards a request's limit of 8,190 events.
    let big: Vec<_> = (0..1_000).map(|_| share(1)).collect();
    let transfers: Vec<_> = (0..9).map(|n| json!({"id": format!("a{n}"), "debit": "alice", "amount": "1", "allocate": big})).collect();
    let (status, answer) = server.post("/v1/transfers", json!({"transfers": transfers})).await;
    assert_eq!((status, answer["error"]["field"].as_str()), (400, Some("transfers")), "{answer}");
    assert_eq!(server.engine_seq(), before, "nothing was applied");
}

on_every_store!(
    a_pot_is_split_exactly_into_legs_that_read_back_one_by_one,
    a_held_allocation_is_posted_by_its_id_and_a_balancing_transfer_sweeps_what_is_left,
    malformed_allocations_and_balancing_transfers_are_refused_by_field,
);
