//! Connections an attacker can open without a key: idle ones, ones that send their headers
//! byte by byte, bodies that trickle in, more connections than the process has descriptors.
//! Each is bounded, and a normal client is served while they are open.

use crate::harness::TestServer;
use crate::support::{free_port, Server};
use serde_json::json;
use std::time::Duration;
use tally_core::limits::{BODY_READ_TIMEOUT_MS, HEADER_READ_TIMEOUT_MS};
use tally_server::body::BodyBudget;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Waits for the server to close `stream`: a read that ends (or fails) rather than waits.
async fn closed_by_server(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buffer = [0u8; 1024];
    loop {
        match tokio::time::timeout(within, stream.read(&mut buffer)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            // An answer (such as a 408) may come first; the close follows.
            Ok(Ok(_)) => continue,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn idle_slow_header_and_stalled_body_connections_are_closed_and_never_keep_a_client_out() {
    let server = TestServer::start().await;
    let address = server.url.trim_start_matches("http://").to_owned();
    let mut idle = Vec::new();
    for _ in 0..500 {
        idle.push(TcpStream::connect(&address).await.unwrap());
    }
    let mut slow = Vec::new();
    for _ in 0..20 {
        let mut stream = TcpStream::connect(&address).await.unwrap();
        stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await.unwrap();
        slow.push(stream);
    }
    // And 500 whose bodies stall after their first bytes.
    let mut stalled_bodies = Vec::new();
    for _ in 0..500 {
        stalled_bodies.push(unfinished_post(&address, "/v1/transfers", 10_000, 100).await);
    }
    // Keep the slow ones sending a header byte now and then, never finishing.
    let trickle = tokio::spawn(async move {
        for _ in 0..(HEADER_READ_TIMEOUT_MS / 250 + 8) {
            for stream in &mut slow {
                let _ = stream.write_all(b"x").await;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        slow
    });
    server.usd().await;
    let (status, answer) =
        server.post("/v1/transfers", json!({"transfers": [{"id": "t1", "debit": "world", "credit": "alice", "amount": "5"}]})).await;
    assert_eq!((status, answer["results"][0]["result"].as_str()), (200, Some("created")), "{answer}");
    assert_eq!(server.balance("alice").await, "5.00");
    let within = Duration::from_millis(3 * HEADER_READ_TIMEOUT_MS);
    for stream in &mut idle {
        assert!(closed_by_server(stream, within).await, "an idle connection is closed after the header read timeout");
    }
    for stream in &mut trickle.await.unwrap() {
        assert!(closed_by_server(stream, within).await, "a connection sending headers byte by byte is closed");
    }
    let body_deadline = Duration::from_millis(3 * BODY_READ_TIMEOUT_MS);
    for stream in &mut stalled_bodies {
        let status = tokio::time::timeout(body_deadline, status_of(stream)).await.expect("an answer to a stalled body");
        assert!(status.contains(" 408 "), "{status}");
    }
    assert_eq!(server.balance("alice").await, "5.00", "the server still answers");
}

/// Sends the headers of a POST announcing `length` bytes and `sent` bytes of its body.
async fn unfinished_post(address: &str, path: &str, length: usize, sent: usize) -> TcpStream {
    let mut stream = TcpStream::connect(address).await.unwrap();
    let head = format!("POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&vec![b' '; sent]).await.unwrap();
    stream
}

/// Reads an answer's status line from a raw connection.
async fn status_of(stream: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    while !answer.windows(2).any(|w| w == b"\r\n") {
        let read = tokio::time::timeout(Duration::from_secs(120), stream.read(&mut buffer)).await.expect("an answer").unwrap();
        assert!(read > 0, "the connection closed without an answer");
        answer.extend_from_slice(&buffer[..read]);
    }
    String::from_utf8_lossy(&answer).lines().next().unwrap().to_owned()
}

#[tokio::test]
async fn the_in_flight_limit_covers_every_route_together() {
    let server = TestServer::with_app(|app| tally_server::App { in_flight_max: 4, ..app }).await;
    server.usd().await;
    let address = server.url.trim_start_matches("http://").to_owned();
    let mut stalled = Vec::new();
    for _ in 0..4 {
        stalled.push(unfinished_post(&address, "/v1/transfers", 1_000, 10).await);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    for path in ["/v1/accounts", "/v1/journal", "/healthz"] {
        let (status, answer) = server.get(path).await;
        assert_eq!((status, answer["error"]["code"].as_str()), (503, Some("unavailable")), "{path}: {answer}");
    }
    drop(stalled);
    let mut answered = false;
    for _ in 0..100 {
        if server.get("/v1/accounts").await.0 == 200 {
            answered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(answered, "once the stalled requests are gone the server answers again");
}

#[tokio::test]
async fn unfinished_bodies_share_one_memory_budget() {
    let budget = std::sync::Arc::new(BodyBudget::new(1 << 20));
    let server = TestServer::with_app(|app| tally_server::App { bodies: budget.clone(), ..app }).await;
    let address = server.url.trim_start_matches("http://").to_owned();
    let mut unfinished = Vec::new();
    for _ in 0..3 {
        unfinished.push(unfinished_post(&address, "/v1/transfers", 500_000, 400_000).await);
    }
    let mut refused = 0;
    for stream in &mut unfinished {
        if let Ok(status) = tokio::time::timeout(Duration::from_secs(2), status_of(stream)).await {
            assert!(status.contains(" 503 "), "{status}");
            refused += 1;
        }
    }
    assert!(refused >= 1, "three 400 kB bodies do not fit a 1 MiB budget together");
    assert!(budget.held() <= 1 << 20, "held {} bytes", budget.held());
    drop(unfinished);
    for _ in 0..100 {
        if budget.held() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(budget.held(), 0, "bodies dropped give their memory back");
}

#[tokio::test]
async fn a_body_that_stalls_is_answered_408_and_applies_nothing() {
    let server = TestServer::start().await;
    server.usd().await;
    let address = server.url.trim_start_matches("http://").to_owned();
    let body = json!({"transfers": [{"id": "t1", "debit": "world", "credit": "alice", "amount": "5"}]}).to_string();
    let mut stream = unfinished_post(&address, "/v1/transfers", body.len(), 0).await;
    stream.write_all(&body.as_bytes()[..body.len() - 1]).await.unwrap();
    let status = tokio::time::timeout(Duration::from_millis(3 * BODY_READ_TIMEOUT_MS), status_of(&mut stream)).await.expect("an answer");
    assert!(status.contains(" 408 "), "{status}");
    assert_eq!(server.balance("alice").await, "0.00");
}

/// A server whose descriptor limit leaves room for 144 connections, flooded with more: the
/// ones beyond the cap wait in the kernel's backlog, the ledger can still open its files (a
/// snapshot at shutdown), and a normal client is served once idle ones time out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_connections_leaves_the_ledger_its_descriptors() {
    let directory = tempfile::tempdir().unwrap();
    let port = free_port();
    let server = Server::start_with_descriptors(directory.path(), port, 400).healthy().await;
    let mut flood = Vec::new();
    for _ in 0..500 {
        flood.push(TcpStream::connect(("127.0.0.1", port)).await.unwrap());
    }
    server.client.create_asset("USD", 2).await.expect("served once the idle connections time out");
    let snapshots_before = std::fs::read_dir(directory.path()).unwrap().count();
    assert!(server.terminate().success(), "a clean stop, snapshot written");
    assert!(std::fs::read_dir(directory.path()).unwrap().count() > snapshots_before, "the snapshot file was opened and written");
    drop(flood);
}

/// Sends raw bytes and reads the whole answer (the server closes after these).
async fn raw_answer(address: &str, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn requests_http_itself_refuses_still_get_the_error_object() {
    let server = TestServer::start().await;
    let address = server.url.trim_start_matches("http://").to_owned();
    let many_headers: String = (0..150).map(|n| format!("X-{n}: 1\r\n")).collect();
    let cases: [(Vec<u8>, &str, &str); 4] = [
        (b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n".to_vec(), "400", "bad_request"),
        (format!("GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "a".repeat(70_000)).into_bytes(), "431", "headers_too_large"),
        (format!("GET / HTTP/1.1\r\nHost: x\r\n{many_headers}\r\n").into_bytes(), "431", "headers_too_large"),
        (b"GET / HTTP/3.0\r\nHost: x\r\n\r\n".to_vec(), "400", "bad_request"),
    ];
    for (request, status, code) in cases {
        let answer = raw_answer(&address, &request).await;
        assert!(answer.starts_with(&format!("HTTP/1.1 {status} ")), "{answer}");
        let body: serde_json::Value = serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap()).expect(&answer);
        assert_eq!(body["error"]["code"], code, "{answer}");
    }
    // A path that is not UTF-8 once decoded is named like any other bad field.
    let (status, answer) = server.get("/v1/accounts/%FF").await;
    assert_eq!((status, answer["error"]["field"].as_str()), (400, Some("path")), "{answer}");
    // An answer to HEAD keeps its empty body.
    let answer = raw_answer(&address, b"HEAD /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await;
    assert!(answer.starts_with("HTTP/1.1 404 ") && answer.ends_with("\r\n\r\n"), "{answer}");
}
