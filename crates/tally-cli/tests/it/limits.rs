//! Every limit answers clearly and applies nothing: oversized bodies and batches, a full
//! write queue, a write past its deadline.

use crate::harness::TestServer;
use serde_json::json;
use std::io;
use std::sync::{Arc, Condvar, Mutex};
use tally_engine::{Config, Produce, Storage};

#[tokio::test]
async fn oversized_bodies_and_batches_are_refused() {
    let server = TestServer::start().await;
    server.usd().await;
    let too_many: Vec<_> = (0..8_191).map(|n| json!({"id": format!("t{n}"), "debit": "world", "credit": "alice", "amount": "1"})).collect();
    let (status, answer) = server.post("/v1/transfers", json!({"transfers": too_many})).await;
    assert_eq!((status, answer["error"]["field"].as_str()), (400, Some("transfers")), "{answer}");
    let huge = format!("{{\"transfers\": [{{\"id\": \"{}\"}}]}}", "x".repeat(tally_api::REQUEST_BODY_BYTES_MAX));
    let (status, answer) = server.raw("POST", "/v1/transfers", &huge).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (413, Some("body_too_large")));
    assert_eq!(server.balance("alice").await, "0.00");
}

#[tokio::test]
async fn a_method_a_route_does_not_take_answers_405_with_the_error_object() {
    let server = TestServer::start().await;
    for (method, path) in [("PUT", "/v1/assets"), ("DELETE", "/v1/accounts/alice"), ("POST", "/healthz")] {
        let response = reqwest::Client::new().request(method.parse().unwrap(), format!("{}{path}", server.url)).send().await.unwrap();
        let allow = response.headers().get("allow").map(|allow| allow.to_str().unwrap().to_owned());
        assert_eq!(response.status().as_u16(), 405, "{method} {path}");
        let answer: serde_json::Value = response.json().await.unwrap();
        assert_eq!(answer["error"]["code"], "method_not_allowed", "{method} {path}: {answer}");
        assert!(allow.is_some_and(|allow| !allow.is_empty()), "{method} {path} names the methods it takes");
    }
}

#[tokio::test]
async fn a_compressed_body_is_refused_not_misread() {
    let server = TestServer::start().await;
    for encoding in ["gzip", "br", "GZIP"] {
        let response = reqwest::Client::new()
            .post(format!("{}/v1/assets", server.url))
            .header("content-encoding", encoding)
            .body(r#"{"code":"USD","scale":2}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 415, "{encoding}");
        let answer: serde_json::Value = response.json().await.unwrap();
        assert_eq!(answer["error"]["code"], "unsupported_encoding", "{answer}");
    }
    let identity = reqwest::Client::new()
        .post(format!("{}/v1/assets", server.url))
        .header("content-encoding", "identity")
        .body(r#"{"code":"USD","scale":2}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(identity.status().as_u16(), 200, "an identity coding is the body as sent");
    let (_, journal) = server.get("/v1/journal").await;
    assert_eq!(journal["entries"].as_array().unwrap().len(), 1, "only the identity request was applied");
}

/// Storage whose fsync waits until released, to hold the writer still.
#[derive(Clone, Default)]
struct Gate {
    inner: Arc<(Mutex<(bool, bool)>, Condvar)>,
    files: Arc<Mutex<std::collections::BTreeMap<String, Vec<u8>>>>,
}

impl Gate {
    fn wait_until_syncing(&self) {
        let (lock, signal) = &*self.inner;
        let _guard = signal.wait_while(lock.lock().unwrap(), |(syncing, _)| !*syncing).unwrap();
    }
    fn open(&self) {
        let (lock, signal) = &*self.inner;
        lock.lock().unwrap().1 = true;
        signal.notify_all();
    }
}

impl Storage for Gate {
    fn list(&self) -> io::Result<Vec<String>> {
        Ok(self.files.lock().unwrap().keys().cloned().collect())
    }
    fn len(&self, name: &str) -> io::Result<u64> {
        Ok(self.files.lock().unwrap().get(name).map_or(0, |f| f.len() as u64))
    }
    fn read_exact_at(&self, _: &str, _: u64, _: &mut [u8]) -> io::Result<()> {
        Err(io::ErrorKind::UnexpectedEof.into())
    }
    fn append(&mut self, name: &str, bytes: &[u8]) -> io::Result<()> {
        self.files.lock().unwrap().entry(name.to_owned()).or_default().extend_from_slice(bytes);
        Ok(())
    }
    fn sync(&mut self, _: &str) -> io::Result<()> {
        let (lock, signal) = &*self.inner;
        let mut state = lock.lock().unwrap();
        state.0 = true;
        signal.notify_all();
        let _open = signal.wait_while(state, |(_, open)| !*open).unwrap();
        Ok(())
    }
    fn truncate(&mut self, _: &str, _: u64) -> io::Result<()> {
        Ok(())
    }
    fn write_atomic(&mut self, _: &str, _: &mut Produce<'_>) -> io::Result<()> {
        Ok(())
    }
    fn remove(&mut self, _: &str) -> io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_write_queue_answers_503_with_retry_after_and_applies_nothing() {
    let gate = Gate::default();
    let server =
        TestServer::with_storage(gate.clone(), Config { queue_requests_max: 1, snapshot_on_shutdown: false, ..Config::default() }).await;
    let first = {
        let client = server.client.clone();
        tokio::spawn(async move { client.create_asset("USD", 2).await })
    };
    gate.wait_until_syncing();
    // The writer is inside fsync with the first request; one more fills the queue.
    let second = {
        let client = server.client.clone();
        tokio::spawn(async move { client.create_asset("EUR", 2).await })
    };
    while tally_ledger::Ledger::status(&*server.engine).queue_depth < 1 {
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    let response =
        reqwest::Client::new().post(format!("{}/v1/assets", server.url)).body(r#"{"code":"GBP","scale":2}"#).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 503);
    assert_eq!(response.headers()["retry-after"], "1");
    let answer: serde_json::Value = response.json().await.unwrap();
    assert_eq!(answer["error"]["code"], "queue_full");
    gate.open();
    assert_eq!(first.await.unwrap().unwrap().results[0].result, "created");
    assert_eq!(second.await.unwrap().unwrap().results[0].result, "created");
    let (_, journal) = server.get("/v1/journal?limit=10").await;
    let codes: Vec<_> = journal["entries"].as_array().unwrap().iter().map(|e| e["code"].as_str().unwrap().to_owned()).collect();
    assert_eq!(codes, ["USD", "EUR"], "the refused request left no trace");
}

/// A disk that stalls: the write the writer holds answers 504 `outcome_unknown` at its
/// deadline (it is applied once the disk resumes), the one still queued is withdrawn with a
/// 503 and never applied, and `/healthz` says `stalled` meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_past_its_deadline_says_whether_it_may_still_be_applied() {
    let gate = Gate::default();
    let config = Config { snapshot_on_shutdown: false, ..Config::default() };
    let wait = std::time::Duration::from_millis(300);
    let server = TestServer::with_storage_app(gate.clone(), config, |app| tally_server::App { write_wait: wait, ..app }).await;
    let held = {
        let url = server.url.clone();
        tokio::spawn(
            async move { reqwest::Client::new().post(format!("{url}/v1/assets")).body(r#"{"code":"USD","scale":2}"#).send().await },
        )
    };
    gate.wait_until_syncing();
    let (status, answer) = server.post("/v1/assets", serde_json::json!({"code": "EUR", "scale": 2})).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (503, Some("unavailable")), "withdrawn from the queue: {answer}");
    let held = held.await.unwrap().unwrap();
    assert_eq!(held.status().as_u16(), 504);
    let answer: serde_json::Value = held.json().await.unwrap();
    assert_eq!(answer["error"]["code"], "outcome_unknown", "{answer}");
    let stalled_after = std::time::Duration::from_millis(tally_core::limits::WRITER_STALLED_MS + 500);
    tokio::time::sleep(stalled_after.saturating_sub(wait)).await;
    let (status, health) = server.get("/healthz").await;
    assert_eq!((status, health["status"].as_str()), (503, Some("stalled")), "{health}");
    gate.open();
    let mut health = server.get("/healthz").await;
    for _ in 0..200 {
        if health.0 == 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        health = server.get("/healthz").await;
    }
    assert_eq!((health.0, health.1["status"].as_str()), (200, Some("ok")), "{}", health.1);
    let (_, journal) = server.get("/v1/journal?limit=10").await;
    let codes: Vec<_> = journal["entries"].as_array().unwrap().iter().map(|e| e["code"].as_str().unwrap().to_owned()).collect();
    assert_eq!(codes, ["USD"], "the held write was applied once the disk resumed; the withdrawn one never");
}
