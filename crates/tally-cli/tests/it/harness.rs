//! A server on a free loopback port over a fresh ledger, stopped when dropped: embedded (in
//! a temporary directory) or on PostgreSQL (in a private cluster of its own).

use std::sync::Arc;
use tally_client::Client;
use tally_engine::keys::FileKeys;
use tally_engine::{Config, Engine, Storage};
use tally_ledger::keys::{KeySpec, Scope};
use tally_ledger::Ledger;
use tally_server::auth::Keyring;
use tally_server::App;
use tally_testkit::postgres::{ClusterOptions, PgBouncer, PrivateCluster};

/// Runs each named behaviour test, an `async fn(TestServer)`, once against each store, and
/// once more on PostgreSQL through PgBouncer in transaction mode: one suite, three targets.
macro_rules! on_every_store {
    ($($test:ident,)*) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $test() {
                    super::$test(crate::harness::TestServer::start().await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $test() {
                    super::$test(crate::harness::TestServer::start_postgres().await).await;
                }
            )*
        }
        mod through_pgbouncer {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $test() {
                    super::$test(crate::harness::TestServer::start_postgres_pooled().await).await;
                }
            )*
        }
    };
}

pub struct TestServer {
    pub client: Client,
    pub url: String,
    pub engine: Arc<dyn Ledger>,
    keys: Option<Arc<Keyring>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    _directory: Option<tempfile::TempDir>,
    /// Dropped last: the server and its store stop before their database (and the pooler in
    /// front of it, if any) does.
    _database: Option<(Option<PgBouncer>, PrivateCluster)>,
}

impl TestServer {
    /// An embedded ledger with a key store of its own (no keys yet: open to all).
    pub async fn start() -> TestServer {
        TestServer::with_app(|app| app).await
    }

    pub async fn with_storage(storage: impl Storage, config: Config) -> TestServer {
        TestServer::with_storage_app(storage, config, |app| app).await
    }

    /// A ledger on `storage`, served by `configure(App::new(..))`.
    pub async fn with_storage_app(storage: impl Storage, config: Config, configure: impl FnOnce(App) -> App) -> TestServer {
        let (engine, _) = Engine::start(storage, config).unwrap();
        TestServer::serve_app(configure(App::new(Arc::new(engine), "embedded")), None).await
    }

    pub async fn start_postgres() -> TestServer {
        let cluster = PrivateCluster::start(ClusterOptions::default()).expect("a private PostgreSQL cluster");
        let url = cluster.url();
        TestServer::serve_postgres(tally_pg::Config::new(url), (None, cluster)).await
    }

    /// On PostgreSQL, reached through PgBouncer in transaction pooling mode.
    pub async fn start_postgres_pooled() -> TestServer {
        let cluster = PrivateCluster::start(ClusterOptions::default()).expect("a private PostgreSQL cluster");
        let pooler = PgBouncer::start(&cluster).expect("a private PgBouncer");
        let config = tally_pg::Config { transaction_pooler: true, ..tally_pg::Config::new(pooler.url()) };
        TestServer::serve_postgres(config, (Some(pooler), cluster)).await
    }

    async fn serve_postgres(config: tally_pg::Config, database: (Option<PgBouncer>, PrivateCluster)) -> TestServer {
        let url = config.url.clone();
        let ledger = tally_pg::PgLedger::start(config).await.expect("the PostgreSQL store starts");
        let keys = tally_pg::keys::PgKeys::connect(&url).await.unwrap();
        let keyring = Keyring::load(Arc::new(keys), 0).await.unwrap();
        keyring.keep_fresh();
        let app = App { keys: Some(keyring), ..App::new(Arc::new(ledger), "postgres") };
        let mut server = TestServer::serve_app(app, None).await;
        server._database = Some(database);
        server
    }

    /// An embedded ledger (with its key store) served by `configure(App::new(..))`.
    pub async fn with_app(configure: impl FnOnce(App) -> App) -> TestServer {
        TestServer::embedded(0, configure).await
    }

    /// An embedded ledger whose keys may make `rate` requests per second each.
    pub async fn with_key_rate(rate: u32) -> TestServer {
        TestServer::embedded(rate, |app| app).await
    }

    async fn embedded(rate: u32, configure: impl FnOnce(App) -> App) -> TestServer {
        let directory = tempfile::tempdir().unwrap();
        let (engine, _) = Engine::open(directory.path(), Config::default()).unwrap();
        let keyring = Keyring::load(Arc::new(FileKeys::open(directory.path()).unwrap()), rate).await.unwrap();
        keyring.keep_fresh();
        let app = App { keys: Some(keyring), ..App::new(Arc::new(engine), "embedded") };
        TestServer::serve_app(configure(app), Some(directory)).await
    }

    pub async fn serve_ledger(engine: Arc<dyn Ledger>, engine_name: &'static str) -> TestServer {
        TestServer::serve_app(App::new(engine, engine_name), None).await
    }

    /// Makes a key (the first one closes the ledger to callers without one) and returns it.
    pub async fn key(&self, scope: Scope, prefixes: &[&str]) -> String {
        let keyring = self.keys.as_ref().expect("a server with a key store");
        let spec =
            KeySpec { name: String::new(), scope, prefixes: prefixes.iter().map(|p| (*p).to_owned()).collect(), expires_at_ms: None };
        keyring.create(spec).await.unwrap().text
    }

    /// The data directory of an embedded ledger.
    pub fn directory(&self) -> &std::path::Path {
        self._directory.as_ref().expect("an embedded ledger in a directory").path()
    }

    /// Sends a raw body with `key` and returns the status and the JSON answer.
    pub async fn raw_as(&self, key: &str, method: &str, path: &str, body: &str) -> (u16, serde_json::Value) {
        self.send(Some(key), method, path, body).await
    }

    async fn send(&self, key: Option<&str>, method: &str, path: &str, body: &str) -> (u16, serde_json::Value) {
        let mut request = reqwest::Client::new().request(method.parse().unwrap(), format!("{}{path}", self.url)).body(body.to_owned());
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)))
    }

    async fn serve_app(app: App, directory: Option<tempfile::TempDir>) -> TestServer {
        let engine = app.ledger.clone();
        let keys = app.keys.clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let stop = async {
                stopped.await.ok();
            };
            tally_server::listen::serve(listener, app, tally_server::listen::Listening::plain(), stop).await.unwrap();
        });
        TestServer { client: Client::new(&url), url, engine, keys, stop: Some(stop), _directory: directory, _database: None }
    }

    /// Sends a raw body and returns the status and the JSON answer.
    pub async fn raw(&self, method: &str, path: &str, body: &str) -> (u16, serde_json::Value) {
        self.send(None, method, path, body).await
    }

    pub async fn post(&self, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        self.raw("POST", path, &body.to_string()).await
    }

    pub async fn get(&self, path: &str) -> (u16, serde_json::Value) {
        self.raw("GET", path, "").await
    }

    /// Results of a request that must succeed at the HTTP level, as result names.
    pub async fn results(&self, path: &str, body: serde_json::Value) -> Vec<String> {
        let (status, answer) = self.post(path, body).await;
        assert_eq!(status, 200, "{answer}");
        answer["results"].as_array().unwrap().iter().map(|r| r["result"].as_str().unwrap().to_owned()).collect()
    }

    pub async fn balance(&self, account: &str) -> String {
        let (status, answer) = self.get(&format!("/v1/accounts/{account}")).await;
        assert_eq!(status, 200, "{answer}");
        answer["balance"].as_str().unwrap().to_owned()
    }

    /// USD (scale 2), an unbounded `world` and zero-floored `alice` and `bob`.
    pub async fn usd(&self) {
        assert_eq!(self.results("/v1/assets", serde_json::json!({"code": "USD", "scale": 2})).await, ["created"]);
        let accounts = serde_json::json!({"accounts": [
            {"id": "world", "asset": "USD", "min_balance": null},
            {"id": "alice", "asset": "USD"},
            {"id": "bob", "asset": "USD"}
        ]});
        assert_eq!(self.results("/v1/accounts", accounts).await, ["created", "created", "created"]);
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
