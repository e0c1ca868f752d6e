//! API keys on both stores: scopes, revocation taking effect on a running server, a tenant's
//! key confined to its accounts on every route, the rate limit.

use crate::harness::TestServer;
use serde_json::json;
use std::time::Duration;
use tally_ledger::keys::Scope;

async fn scopes_decide_what_a_key_may_do_and_a_revoked_key_is_refused(server: TestServer) {
    let admin = server.key(Scope::Admin, &[]).await;
    // From the first key on, every request needs one, and every refusal reads the same.
    let (status, missing) = server.get("/v1/accounts").await;
    assert_eq!((status, missing["error"]["code"].as_str()), (401, Some("unauthorized")), "{missing}");
    // The key with its last digit changed (to another digit than the one it has).
    let last = if admin.ends_with('0') { '1' } else { '0' };
    let wrong = format!("{}{last}", &admin[..admin.len() - 1]);
    for key in [wrong.as_str(), "tally_000000000000_00", "", "not-a-key"] {
        assert_eq!(server.raw_as(key, "GET", "/v1/accounts", "").await, (401, missing.clone()), "{key:?}");
    }
    assert_eq!(server.get("/healthz").await.0, 401, "health counts the ledger: it needs a key too");
    let lower_case = reqwest::Client::new()
        .get(format!("{}/v1/accounts", server.url))
        .header("authorization", format!("bearer {admin}"))
        .send()
        .await
        .unwrap();
    assert_eq!(lower_case.status().as_u16(), 200, "the scheme's case does not matter");
    assert_eq!(server.raw_as(&admin, "POST", "/v1/assets", r#"{"code":"USD","scale":2}"#).await.0, 200);

    let read = server.key(Scope::Read, &[]).await;
    let write = server.key(Scope::Write, &[]).await;
    let account = r#"{"accounts":[{"id":"alice","asset":"USD"}]}"#;
    let (status, answer) = server.raw_as(&read, "POST", "/v1/accounts", account).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (403, Some("forbidden")), "{answer}");
    assert_eq!(server.raw_as(&write, "POST", "/v1/accounts", account).await.0, 200);
    assert_eq!(server.raw_as(&read, "GET", "/v1/accounts/alice", "").await.0, 200);
    assert_eq!(server.raw_as(&write, "POST", "/v1/assets", r#"{"code":"EUR","scale":2}"#).await.0, 403, "assets need admin");
    assert_eq!(server.raw_as(&write, "GET", "/v1/keys", "").await.0, 403, "keys need admin");

    let (status, made) = server.raw_as(&admin, "POST", "/v1/keys", r#"{"scope":"read","name":"dashboard"}"#).await;
    assert_eq!(status, 201, "{made}");
    let made_key = made["key"].as_str().unwrap().to_owned();
    assert_eq!(server.raw_as(&made_key, "GET", "/v1/accounts/alice", "").await.0, 200);
    let (_, listed) = server.raw_as(&admin, "GET", "/v1/keys", "").await;
    assert_eq!(listed["keys"].as_array().unwrap().len(), 4);
    assert!(!listed.to_string().contains(&made_key[made_key.len() - 64..]), "a listing never shows a key");
    let (status, revoked) = server.raw_as(&admin, "DELETE", &format!("/v1/keys/{}", made["id"].as_str().unwrap()), "").await;
    assert!(status == 200 && revoked["revoked_at_ms"].is_u64(), "{revoked}");
    assert_eq!(server.raw_as(&made_key, "GET", "/v1/accounts/alice", "").await, (401, missing), "revoked at once");
    let (status, answer) = server.raw_as(&admin, "POST", "/v1/keys", r#"{"scope":"root"}"#).await;
    assert_eq!((status, answer["error"]["field"].as_str()), (400, Some("scope")), "{answer}");
    let (status, answer) = server.raw_as(&admin, "POST", "/v1/keys", r#"{"scope":"read","accounts":["no spaces"]}"#).await;
    assert_eq!((status, answer["error"]["field"].as_str()), (400, Some("accounts")), "{answer}");
}

async fn a_tenant_key_sees_and_moves_only_its_own_accounts(server: TestServer) {
    let admin = server.key(Scope::Admin, &[]).await;
    let post = |key: &str, path: &str, body: serde_json::Value| {
        let (key, path) = (key.to_owned(), path.to_owned());
        let server = &server;
        async move { server.raw_as(&key, "POST", &path, &body.to_string()).await }
    };
    assert_eq!(post(&admin, "/v1/assets", json!({"code": "USD", "scale": 2})).await.0, 200);
    let accounts = json!({"accounts": [
        {"id": "world", "asset": "USD", "min_balance": null},
        {"id": "globex:x", "asset": "USD"}
    ]});
    assert_eq!(post(&admin, "/v1/accounts", accounts).await.0, 200);
    let acme = server.key(Scope::Write, &["acme:"]).await;
    let mine = json!({"accounts": [{"id": "acme:a", "asset": "USD"}, {"id": "acme:b", "asset": "USD"}]});
    assert_eq!(post(&acme, "/v1/accounts", mine).await.0, 200);
    let (status, answer) = post(&acme, "/v1/accounts", json!({"accounts": [{"id": "globex:y", "asset": "USD"}]})).await;
    assert_eq!((status, answer["error"]["field"].as_str()), (403, Some("accounts[0].id")), "{answer}");

    // Another tenant's account reads exactly as one that does not exist.
    let (status, hidden) = server.raw_as(&acme, "GET", "/v1/accounts/globex:x", "").await;
    let (_, absent) = server.raw_as(&acme, "GET", "/v1/accounts/acme:nobody", "").await;
    assert_eq!((status, hidden["error"]["code"].as_str()), (404, absent["error"]["code"].as_str()));
    assert_eq!(server.raw_as(&acme, "GET", "/v1/accounts/globex:x/transfers", "").await.0, 404);
    let (_, listed) = server.raw_as(&acme, "GET", "/v1/accounts", "").await;
    let ids: Vec<_> = listed["accounts"].as_array().unwrap().iter().map(|a| a["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(ids, ["acme:a", "acme:b"]);
    let (_, listed) = server.raw_as(&acme, "GET", "/v1/accounts?prefix=glo", "").await;
    assert_eq!(listed["accounts"], json!([]));

    // Money moves in from outside through an unconfined key; the tenant moves it within.
    let fund = json!({"transfers": [{"id": "fund-1", "debit": "world", "credit": "acme:a", "amount": "50.00"}]});
    assert_eq!(post(&admin, "/v1/transfers", fund).await.0, 200);
    let across = json!({"transfers": [
        {"id": "acme:t0", "debit": "acme:a", "credit": "acme:b", "amount": "1.00"},
        {"id": "acme:t1", "debit": "acme:a", "credit": "globex:x", "amount": "10.00"}
    ]});
    let (status, answer) = post(&acme, "/v1/transfers", across).await;
    assert_eq!((status, answer["error"]["field"].as_str()), (403, Some("transfers[1].credit")), "refused whole: {answer}");
    let unprefixed = json!({"transfers": [{"id": "t2", "debit": "acme:a", "credit": "acme:b", "amount": "1.00"}]});
    assert_eq!(post(&acme, "/v1/transfers", unprefixed).await.1["error"]["field"], "transfers[0].id");
    let within = json!({"transfers": [{"id": "acme:t3", "debit": "acme:a", "credit": "acme:b", "amount": "5.00"}]});
    let (status, answer) = post(&acme, "/v1/transfers", within).await;
    assert_eq!((status, answer["results"][0]["result"].as_str()), (200, Some("created")), "{answer}");
    let (_, b) = server.raw_as(&acme, "GET", "/v1/accounts/acme:b", "").await;
    assert_eq!(b["balance"], "5.00", "nothing of the refused request was applied");

    assert_eq!(server.raw_as(&acme, "GET", "/v1/transfers/fund-1", "").await.0, 404, "a transfer from outside is out of sight");
    assert_eq!(server.raw_as(&acme, "GET", "/v1/transfers/acme:t3", "").await.0, 200);
    let (_, page) = server.raw_as(&acme, "GET", "/v1/accounts/acme:a/transfers", "").await;
    let ids: Vec<_> = page["transfers"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(ids, ["acme:t3"]);

    // A hold made under the tenant's prefix by an unconfined key, between other accounts,
    // cannot be posted by the tenant.
    let planted = json!({"transfers": [{"id": "acme:h", "debit": "world", "credit": "globex:x", "amount": "1.00", "pending": true}]});
    assert_eq!(post(&admin, "/v1/transfers", planted).await.0, 200);
    let (status, answer) = post(&acme, "/v1/transfers", json!({"transfers": [{"id": "acme:p", "post": "acme:h"}]})).await;
    assert_eq!((status, answer["error"]["field"].as_str()), (403, Some("transfers[0].post")), "{answer}");
    assert_eq!(server.raw_as(&acme, "PATCH", "/v1/accounts/globex:x", r#"{"metadata":{}}"#).await.0, 403);
    assert_eq!(server.raw_as(&acme, "PATCH", "/v1/transfers/acme:h", r#"{"timeout_ms":60000}"#).await.0, 403, "nor renew it");
    // Nor the legs of an allocation planted the same way (its own id has no record).
    let pot = json!({"transfers": [{"id": "acme:pot", "debit": "world", "amount": "2.00", "pending": true,
        "allocate": [{"credit": "acme:a", "weight": 1}, {"credit": "globex:x", "weight": 1}]}]});
    assert_eq!(post(&admin, "/v1/transfers", pot).await.1["results"][0]["result"], "created");
    let (status, answer) = post(&acme, "/v1/transfers", json!({"transfers": [{"id": "acme:p2", "void": "acme:pot"}]})).await;
    assert_eq!((status, answer["error"]["field"].as_str()), (403, Some("transfers[0].void")), "{answer}");
    // An admin key is for the whole ledger: it cannot be confined.
    let (status, answer) = post(&admin, "/v1/keys", json!({"scope": "admin", "accounts": ["acme:"]})).await;
    assert_eq!((status, answer["error"]["field"].as_str()), (400, Some("accounts")), "{answer}");

    let (_, feed) = server.raw_as(&acme, "GET", "/v1/journal?limit=1000", "").await;
    let seen: Vec<String> = feed["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().or(e["transfer"]["id"].as_str()).unwrap_or("?").to_owned())
        .collect();
    assert_eq!(seen, ["acme:a", "acme:b", "acme:t3"], "{feed}");
    let (_, all) = server.raw_as(&admin, "GET", "/v1/journal?limit=1000", "").await;
    assert_eq!(feed["next_after_seq"], all["next_after_seq"], "the feed continues from the same place");
    assert_eq!(server.raw_as(&acme, "GET", "/healthz", "").await.0, 403, "a tenant cannot read the whole ledger's counts");
    assert_eq!(server.raw_as(&acme, "GET", "/v1/stats", "").await.0, 403, "nor the writer's progress");
    assert_eq!(server.raw_as(&acme, "GET", "/v1/journal/position?at=1", "").await.0, 403, "nor other tenants' timestamps");

    // Its account's history: every balance, but only its own transfers named.
    let (_, history) = server.raw_as(&acme, "GET", "/v1/accounts/acme:a/history", "").await;
    let named: Vec<_> =
        history["changes"].as_array().unwrap().iter().map(|c| (c["kind"].clone(), c["transfer"].clone(), c["balance"].clone())).collect();
    assert_eq!(
        named,
        [
            (json!("created"), json!(null), json!("0.00")),
            (json!("transfer"), json!(null), json!("50.00")),
            (json!("transfer"), json!("acme:t3"), json!("45.00")),
            (json!("transfer"), json!(null), json!("45.00")),
        ],
        "a leg under its prefix but from an account outside is not named either: {history}"
    );
    assert_eq!(server.raw_as(&acme, "GET", "/v1/accounts/globex:x/history", "").await.0, 404);
    // Open holds: only its own.
    let holds = json!({"transfers": [
        {"id": "acme:lease", "debit": "acme:a", "credit": "acme:b", "amount": "1.00", "pending": true, "timeout_ms": 60000},
        {"id": "globex:lease", "debit": "world", "credit": "globex:x", "amount": "1.00", "pending": true, "timeout_ms": 30000}
    ]});
    assert_eq!(post(&admin, "/v1/transfers", holds).await.0, 200);
    let (_, listed) = server.raw_as(&acme, "GET", "/v1/holds", "").await;
    assert_eq!(listed["holds"].as_array().unwrap().iter().map(|h| h["id"].as_str().unwrap()).collect::<Vec<_>>(), ["acme:lease"]);
    // Paging past another tenant's hold names nothing of it, and goes on.
    let (_, first) = server.raw_as(&acme, "GET", "/v1/holds?limit=1", "").await;
    assert_eq!((first["holds"].as_array().unwrap().len(), first["next_after"].as_str().unwrap().contains("globex")), (0, false), "{first}");
    let (_, next) = server.raw_as(&acme, "GET", &format!("/v1/holds?limit=1&after={}", first["next_after"].as_str().unwrap()), "").await;
    assert_eq!(next["holds"][0]["id"], "acme:lease", "{next}");
    let (_, everyone) = server.raw_as(&admin, "GET", "/v1/holds", "").await;
    assert_eq!(everyone["holds"].as_array().unwrap().len(), 2);
    let (_, whoami) = server.raw_as(&acme, "GET", "/v1/whoami", "").await;
    assert_eq!((whoami["scope"].as_str(), &whoami["key"]["accounts"]), (Some("write"), &json!(["acme:"])), "{whoami}");
}

async fn every_entry_names_the_key_that_made_it(server: TestServer) {
    let admin = server.key(Scope::Admin, &[]).await;
    let writer = server.key(Scope::Write, &[]).await;
    let (admin_id, writer_id) = (tally_ledger::keys::claimed_id(&admin).unwrap(), tally_ledger::keys::claimed_id(&writer).unwrap());
    assert_eq!(server.raw_as(&admin, "POST", "/v1/assets", r#"{"code":"USD","scale":2}"#).await.0, 200);
    let accounts = json!({"accounts": [{"id": "w", "asset": "USD", "min_balance": null}, {"id": "a", "asset": "USD"}]});
    assert_eq!(server.raw_as(&writer, "POST", "/v1/accounts", &accounts.to_string()).await.0, 200);
    let transfers = json!({"transfers": [
        {"id": "t1", "debit": "w", "credit": "a", "amount": "1.00"},
        {"id": "h1", "debit": "w", "credit": "a", "amount": "1.00", "pending": true, "timeout_ms": 1}
    ]});
    assert_eq!(server.raw_as(&writer, "POST", "/v1/transfers", &transfers.to_string()).await.0, 200);
    // The hold expires by itself: no key made that entry. A later write lets it happen.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let later = json!({"transfers": [{"id": "t2", "debit": "w", "credit": "a", "amount": "1.00"}]});
    assert_eq!(server.raw_as(&admin, "POST", "/v1/transfers", &later.to_string()).await.0, 200);
    let (_, journal) = server.raw_as(&admin, "GET", "/v1/journal?limit=100", "").await;
    let made: Vec<(String, Option<String>)> = journal["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["type"].as_str().unwrap().to_owned(), e["key"].as_str().map(str::to_owned)))
        .collect();
    let expected = [
        ("asset_created", Some(admin_id)),
        ("account_created", Some(writer_id)),
        ("account_created", Some(writer_id)),
        ("transfer", Some(writer_id)),
        ("transfer", Some(writer_id)),
        ("hold_expired", None),
        ("transfer", Some(admin_id)),
    ];
    let expected: Vec<(String, Option<String>)> = expected.iter().map(|(t, k)| ((*t).to_owned(), k.map(str::to_owned))).collect();
    assert_eq!(made, expected, "{journal}");
    let (_, transfer) = server.raw_as(&admin, "GET", "/v1/transfers/t1", "").await;
    assert_eq!(transfer["key"], writer_id, "{transfer}");
    let (_, page) = server.raw_as(&admin, "GET", "/v1/accounts/a/transfers", "").await;
    assert_eq!(page["transfers"][0]["key"], writer_id, "{page}");
}

on_every_store!(
    scopes_decide_what_a_key_may_do_and_a_revoked_key_is_refused,
    a_tenant_key_sees_and_moves_only_its_own_accounts,
    every_entry_names_the_key_that_made_it,
);

#[tokio::test]
async fn a_key_revoked_in_the_store_by_another_process_is_refused_within_a_second() {
    let server = TestServer::start().await;
    let key = server.key(Scope::Read, &[]).await;
    assert_eq!(server.raw_as(&key, "GET", "/v1/accounts", "").await.0, 200);
    // Another handle on the same file, as another process (or node) would have.
    let other = tally_engine::keys::FileKeys::open(server.directory()).unwrap();
    let id = tally_ledger::keys::claimed_id(&key).unwrap().to_owned();
    tally_ledger::keys::KeyStore::revoke(&other, &id, tally_server::auth::now_ms()).await.unwrap().unwrap();
    let mut refused = false;
    for _ in 0..100 {
        if server.raw_as(&key, "GET", "/v1/accounts", "").await.0 == 401 {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(refused, "the running server read the revocation");
}

#[tokio::test]
async fn a_key_past_its_rate_answers_429_with_retry_after() {
    let server = TestServer::with_key_rate(5).await;
    let key = server.key(Scope::Read, &[]).await;
    let mut limited = None;
    for _ in 0..20 {
        let response = reqwest::Client::new().get(format!("{}/v1/accounts", server.url)).bearer_auth(&key).send().await.unwrap();
        if response.status().as_u16() == 429 {
            limited = Some(response);
            break;
        }
    }
    let limited = limited.expect("20 requests at once exceed 5 per second");
    assert_eq!(limited.headers()["retry-after"], "1");
    let answer: serde_json::Value = limited.json().await.unwrap();
    assert_eq!(answer["error"]["code"], "rate_limited");
}
