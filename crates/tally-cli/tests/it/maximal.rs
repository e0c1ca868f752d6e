//! The writer never outgrows a journal record. Requests are measured exactly when they are
//! queued, so however many maximal requests wait at once, each commit holds only what one
//! record can, and every request is answered, made durable and verifiable. (Commits used to
//! be bounded by an estimate: a few such requests queued together crashed the writer.)

use crate::harness::TestServer;
use crate::support::tally;
use serde_json::json;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;
use tally_core::limits::{BATCH_EVENTS_MAX, COMMIT_BYTES_MAX, ID_LENGTH_MAX, RECORD_PAYLOAD_BYTES_MAX, REQUEST_BODY_BYTES_MAX};
use tally_engine::{Config, Engine, FileStorage, Produce, Storage};
use tally_ledger::Ledger;

/// Files on disk whose fsyncs wait while the gate is held: keeps the writer still while
/// requests pile up in the queue.
struct GatedFiles {
    files: FileStorage,
    held: Arc<(Mutex<bool>, Condvar)>,
    /// Makes the next fsync panic, as a bug in the writer would.
    panics: Arc<AtomicBool>,
}

impl Storage for GatedFiles {
    fn list(&self) -> io::Result<Vec<String>> {
        self.files.list()
    }
    fn len(&self, name: &str) -> io::Result<u64> {
        self.files.len(name)
    }
    fn read_exact_at(&self, name: &str, offset: u64, buffer: &mut [u8]) -> io::Result<()> {
        self.files.read_exact_at(name, offset, buffer)
    }
    fn append(&mut self, name: &str, bytes: &[u8]) -> io::Result<()> {
        self.files.append(name, bytes)
    }
    fn sync(&mut self, name: &str) -> io::Result<()> {
        let (held, released) = &*self.held;
        drop(released.wait_while(held.lock().unwrap(), |held| *held).unwrap());
        assert!(!self.panics.load(Ordering::SeqCst), "a bug in the writer");
        self.files.sync(name)
    }
    fn truncate(&mut self, name: &str, len: u64) -> io::Result<()> {
        self.files.truncate(name, len)
    }
    fn write_atomic(&mut self, name: &str, produce: &mut Produce<'_>) -> io::Result<()> {
        self.files.write_atomic(name, produce)
    }
    fn remove(&mut self, name: &str) -> io::Result<()> {
        self.files.remove(name)
    }
}

fn long_id(prefix: &str, n: usize) -> String {
    format!("{prefix}{n:0>width$}", width = ID_LENGTH_MAX - prefix.len())
}

/// A body of `BATCH_EVENTS_MAX` transfers between accounts with the longest ids, each with
/// 3,000 bytes of metadata: about 28 MB encoded, so two fit one commit and three do not.
fn maximal_body(request: usize, debit: &str, credit: &str) -> String {
    let metadata = format!(r#"{{"note":"{}"}}"#, "x".repeat(METADATA_NOTE_BYTES));
    let transfers: Vec<String> = (0..BATCH_EVENTS_MAX)
        .map(|n| {
            let id = long_id(&format!("r{request}-"), n);
            format!(r#"{{"id":"{id}","debit":"{debit}","credit":"{credit}","amount":"0.01","metadata":{metadata}}}"#)
        })
        .collect();
    let body = format!(r#"{{"transfers":[{}]}}"#, transfers.join(","));
    assert!(body.len() < REQUEST_BODY_BYTES_MAX);
    body
}

const METADATA_NOTE_BYTES: usize = 3_000;

/// What one maximal request's encoding takes at least: ids and metadata alone.
const REQUEST_BYTES_MIN: usize = BATCH_EVENTS_MAX * (3 * ID_LENGTH_MAX + METADATA_NOTE_BYTES);

// Five of them outgrow one record (the old estimate let all five into one commit); three
// outgrow one commit, two do not, so they take three commits.
const _: () = assert!(REQUESTS * REQUEST_BYTES_MIN > RECORD_PAYLOAD_BYTES_MAX);
const _: () = assert!(3 * REQUEST_BYTES_MIN > COMMIT_BYTES_MAX && 2 * (REQUEST_BYTES_MIN + BATCH_EVENTS_MAX * 64) < COMMIT_BYTES_MAX);
const REQUESTS: usize = 5;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn maximal_requests_queued_together_are_all_answered_durable_and_verifiable() {
    let directory = tempfile::tempdir().unwrap();
    let held = Arc::new((Mutex::new(false), Condvar::new()));
    let storage = GatedFiles { files: FileStorage::open(directory.path()).unwrap(), held: held.clone(), panics: Arc::default() };
    let (engine, _) = Engine::start(storage, Config::default()).unwrap();
    let engine = Arc::new(engine);
    let server = TestServer::serve_ledger(engine.clone(), "embedded").await;
    let (debit, credit) = (long_id("payer-", 0), long_id("payee-", 0));
    assert_eq!(server.results("/v1/assets", json!({"code": "USD", "scale": 2})).await, ["created"]);
    let accounts = json!({"accounts": [{"id": debit, "asset": "USD", "min_balance": null}, {"id": credit, "asset": "USD"}]});
    assert_eq!(server.results("/v1/accounts", accounts).await, ["created", "created"]);

    // Hold the writer inside an fsync, queue the maximal requests behind it, then let go.
    *held.0.lock().unwrap() = true;
    let blocker = {
        let client = server.client.clone();
        tokio::spawn(async move { client.create_asset("EUR", 2).await })
    };
    let answers: Vec<_> = (0..REQUESTS)
        .map(|request| {
            let (url, body) = (server.url.clone(), maximal_body(request, &debit, &credit));
            tokio::spawn(async move {
                let response = reqwest::Client::new().post(format!("{url}/v1/transfers")).body(body).send().await.unwrap();
                (response.status().as_u16(), response.json::<serde_json::Value>().await.unwrap())
            })
        })
        .collect();
    while engine.status().queue_depth < REQUESTS {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    *held.0.lock().unwrap() = false;
    held.1.notify_all();

    assert_eq!(blocker.await.unwrap().unwrap().results[0].result, "created");
    for answer in answers {
        let (status, answer) = answer.await.unwrap();
        assert_eq!(status, 200, "{answer}");
        let results = answer["results"].as_array().unwrap();
        assert_eq!(results.len(), BATCH_EVENTS_MAX);
        assert!(results.iter().all(|r| r["result"] == "created"), "every transfer is created");
    }
    let status = engine.status();
    assert_eq!((status.failure, status.durable_seq), (None, status.last_seq), "the writer is alive and everything is durable");
    assert_eq!(server.balance(&credit).await, format!("{}.{:02}", REQUESTS * BATCH_EVENTS_MAX / 100, REQUESTS * BATCH_EVENTS_MAX % 100));

    drop(server);
    engine.shutdown();
    let verify = tally(&["verify", "--data-dir", directory.path().to_str().unwrap()]);
    let report = String::from_utf8_lossy(&verify.stdout);
    assert!(verify.status.success(), "{report}{}", String::from_utf8_lossy(&verify.stderr));
    let events = 3 + 1 + REQUESTS * BATCH_EVENTS_MAX;
    assert!(report.contains(&format!("{events} events")), "every event is in the journal: {report}");
    // After the three setup records: the five maximal requests, two to a commit.
    let records: usize = report.trim_start_matches("ok: ").split(' ').next().unwrap().parse().unwrap();
    assert_eq!(records, 3 + REQUESTS.div_ceil(2), "{report}");
}

/// A writer that panics must not leave a server that looks alive: where panics unwind (tests,
/// debug builds; release builds abort), the ledger is marked failed and says so everywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_that_panics_fails_the_ledger_instead_of_leaving_it_half_alive() {
    let directory = tempfile::tempdir().unwrap();
    let panics = Arc::new(AtomicBool::new(false));
    let held = Arc::new((Mutex::new(false), Condvar::new()));
    let storage = GatedFiles { files: FileStorage::open(directory.path()).unwrap(), held, panics: panics.clone() };
    let (engine, _) = Engine::start(storage, Config::default()).unwrap();
    let server = TestServer::serve_ledger(Arc::new(engine), "embedded").await;
    server.usd().await;
    panics.store(true, Ordering::SeqCst);
    let (status, answer) = server.post("/v1/assets", json!({"code": "EUR", "scale": 2})).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (504, Some("outcome_unknown")), "the writer had it: {answer}");
    for path in ["/healthz", "/v1/accounts/alice", "/v1/journal"] {
        let (status, answer) = server.get(path).await;
        assert_eq!(status, 503, "{path} answers that the ledger failed: {answer}");
    }
    // The first to notice may be a request whose reply the dying writer dropped ("stopped
    // before answering"); the panic's own message follows once the writer has unwound.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (_, health) = server.get("/healthz").await;
        if health["failure"].as_str().unwrap().contains("the writer panicked") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the panic is reported: {health}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let (status, _) = server.post("/v1/assets", json!({"code": "GBP", "scale": 2})).await;
    assert_eq!(status, 503, "later writes are refused at once");
}
