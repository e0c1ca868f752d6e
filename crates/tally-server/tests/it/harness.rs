//! A server on a free loopback port over a fresh embedded ledger, stopped when dropped.

use std::sync::Arc;
use tally_client::Client;
use tally_engine::{Config, Engine, Storage};
use tally_server::App;

pub struct TestServer {
    pub client: Client,
    pub url: String,
    pub engine: Arc<Engine>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    _directory: Option<tempfile::TempDir>,
}

impl TestServer {
    pub async fn start() -> TestServer {
        let directory = tempfile::tempdir().unwrap();
        let (engine, _) = Engine::open(directory.path(), Config::default()).unwrap();
        TestServer::serve(engine, None, Some(directory)).await
    }

    pub async fn with_storage(storage: impl Storage, config: Config) -> TestServer {
        let (engine, _) = Engine::start(storage, config).unwrap();
        TestServer::serve(engine, None, None).await
    }

    pub async fn with_token(token: &str) -> TestServer {
        let directory = tempfile::tempdir().unwrap();
        let (engine, _) = Engine::open(directory.path(), Config::default()).unwrap();
        TestServer::serve(engine, Some(token), Some(directory)).await
    }

    async fn serve(engine: Engine, token: Option<&str>, directory: Option<tempfile::TempDir>) -> TestServer {
        let engine = Arc::new(engine);
        let app = App {
            ledger: engine.clone(),
            engine_name: "embedded",
            metrics: tally_server::metrics_handle(),
            api_token: token.map(Into::into),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            axum::serve(listener, tally_server::router(app))
                .with_graceful_shutdown(async {
                    stopped.await.ok();
                })
                .await
                .unwrap();
        });
        TestServer { client: Client::new(&url), url, engine, stop: Some(stop), _directory: directory }
    }

    /// Sends a raw body and returns the status and the JSON answer.
    pub async fn raw(&self, method: &str, path: &str, body: &str) -> (u16, serde_json::Value) {
        let response = reqwest::Client::new()
            .request(method.parse().unwrap(), format!("{}{path}", self.url))
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)))
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
