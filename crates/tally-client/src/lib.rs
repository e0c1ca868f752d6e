//! An async Rust client for Tally's HTTP API. Amounts are decimal strings end to end (the
//! same exact values the ledger stores), never floats. Request and response types are the
//! server's own, from `tally-api`, so the two cannot disagree.

pub use tally_api as api;

use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::time::Duration;
use tally_api::*;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an error body.
    #[error("HTTP {status}: {} ({})", .body.error.message, .body.error.code)]
    Api { status: u16, body: ErrorBody },
    /// The request may or may not have reached the ledger (connection refused, reset, timeout).
    /// Retry with the same ids: the ledger applies an id at most once.
    #[error("transport: {0}")]
    Transport(#[from] reqwest::Error),
    #[error("unexpected response (HTTP {status}): {detail}")]
    Decode { status: u16, detail: String },
    /// The client could not be set up (an unreadable CA file).
    #[error("client setup: {0}")]
    Setup(String),
}

impl ClientError {
    /// True when the outcome is unknown: the request may have been applied (the connection
    /// failed, or the server answered 504 `outcome_unknown`). Resend it with the same ids.
    pub fn is_unknown_outcome(&self) -> bool {
        matches!(self, ClientError::Transport(_)) || self.code() == Some("outcome_unknown")
    }

    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Api { body, .. } => Some(&body.error.code),
            _ => None,
        }
    }
}

#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

/// Shows the server's address, never the key.
impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("base", &self.base).field("key", &self.token.as_ref().map(|_| "(set)")).finish()
    }
}

impl Client {
    /// `base` is the server's address, such as `http://127.0.0.1:7420` or
    /// `https://ledger.internal:7420` (trusting the system's certificate authorities).
    pub fn new(base: &str) -> Client {
        Client::build(base, reqwest::Client::builder())
    }

    /// A client that also trusts the certificate authority in `ca_pem` (a PEM file's
    /// contents), for a server whose certificate a private authority signed.
    pub fn with_ca(base: &str, ca_pem: &[u8]) -> Result<Client, ClientError> {
        let authority = reqwest::Certificate::from_pem(ca_pem).map_err(|e| ClientError::Setup(format!("the CA certificate: {e}")))?;
        Ok(Client::build(base, reqwest::Client::builder().add_root_certificate(authority)))
    }

    fn build(base: &str, builder: reqwest::ClientBuilder) -> Client {
        let http = builder
            .timeout(Duration::from_secs(120))
            .pool_max_idle_per_host(64)
            .build()
            .expect("a client with these settings always builds");
        Client { http, base: base.trim_end_matches('/').to_owned(), token: None }
    }

    pub fn with_token(mut self, token: impl Into<String>) -> Client {
        self.token = Some(token.into());
        self
    }

    async fn send(&self, method: Method, path: &str, body: Option<Vec<u8>>) -> Result<reqwest::Response, ClientError> {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.header("content-type", "application/json").body(body);
        }
        Ok(request.send().await?)
    }

    fn error(status: StatusCode, bytes: &[u8]) -> ClientError {
        match serde_json::from_slice::<ErrorBody>(bytes) {
            Ok(body) => ClientError::Api { status: status.as_u16(), body },
            Err(_) => ClientError::Decode { status: status.as_u16(), detail: String::from_utf8_lossy(bytes).into_owned() },
        }
    }

    async fn call<T: DeserializeOwned>(&self, method: Method, path: &str, body: Option<Vec<u8>>) -> Result<T, ClientError> {
        let response = self.send(method, path, body).await?;
        let status = response.status();
        let bytes = response.bytes().await?;
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode { status: status.as_u16(), detail: e.to_string() });
        }
        Err(Self::error(status, &bytes))
    }

    async fn optional<T: DeserializeOwned>(&self, path: &str) -> Result<Option<T>, ClientError> {
        match self.call(Method::GET, path, None).await {
            Ok(value) => Ok(Some(value)),
            Err(ClientError::Api { status, .. }) if status == StatusCode::NOT_FOUND.as_u16() => Ok(None),
            Err(error) => Err(error),
        }
    }

    fn json(value: &impl Serialize) -> Option<Vec<u8>> {
        Some(serde_json::to_vec(value).expect("wire types always serialize"))
    }

    pub async fn create_asset(&self, code: &str, scale: u8) -> Result<Results, ClientError> {
        self.call(Method::POST, "/v1/assets", Self::json(&AssetInput { code: code.into(), scale })).await
    }

    pub async fn create_accounts(&self, accounts: Vec<AccountInput<'_>>) -> Result<Results, ClientError> {
        self.call(Method::POST, "/v1/accounts", Self::json(&CreateAccounts { accounts })).await
    }

    pub async fn update_account(&self, id: &str, patch: &AccountPatchInput<'_>) -> Result<Results, ClientError> {
        self.call(Method::PATCH, &format!("/v1/accounts/{id}"), Self::json(patch)).await
    }

    pub async fn create_transfers(&self, transfers: Vec<TransferInput<'_>>) -> Result<Results, ClientError> {
        self.call(Method::POST, "/v1/transfers", Self::json(&CreateTransfers { transfers })).await
    }

    /// Renews a hold (or a held leg, `<id>/<n>`) as a lease: it expires `timeout_ms` after now.
    pub async fn renew_hold(&self, id: &str, renewal: &HoldPatchInput) -> Result<Results, ClientError> {
        self.call(Method::PATCH, &format!("/v1/transfers/{id}"), Self::json(renewal)).await
    }

    /// Sends an already encoded `{"transfers": [...]}` body and returns the answer's raw
    /// JSON, for load generators that decode only what they need.
    pub async fn create_transfers_raw(&self, body: Vec<u8>) -> Result<Vec<u8>, ClientError> {
        let response = self.send(Method::POST, "/v1/transfers", Some(body)).await?;
        let status = response.status();
        let bytes = response.bytes().await?;
        if status.is_success() {
            return Ok(bytes.to_vec());
        }
        Err(Self::error(status, &bytes))
    }

    pub async fn account(&self, id: &str) -> Result<Option<Account>, ClientError> {
        self.optional(&format!("/v1/accounts/{id}")).await
    }

    pub async fn account_as_of(&self, id: &str, seq: u64) -> Result<Option<Account>, ClientError> {
        self.optional(&format!("/v1/accounts/{id}?as_of={seq}")).await
    }

    pub async fn accounts(&self, prefix: &str, after: Option<&str>, limit: usize) -> Result<AccountsPage, ClientError> {
        let after = after.map(|a| format!("&after={a}")).unwrap_or_default();
        self.call(Method::GET, &format!("/v1/accounts?prefix={prefix}&limit={limit}{after}"), None).await
    }

    pub async fn transfer(&self, id: &str) -> Result<Option<Transfer>, ClientError> {
        self.optional(&format!("/v1/transfers/{id}")).await
    }

    pub async fn account_transfers(&self, id: &str, after_seq: u64, limit: usize) -> Result<TransfersPage, ClientError> {
        self.call(Method::GET, &format!("/v1/accounts/{id}/transfers?after_seq={after_seq}&limit={limit}"), None).await
    }

    pub async fn journal(&self, after_seq: u64, limit: usize, wait_ms: u64) -> Result<JournalPage, ClientError> {
        self.call(Method::GET, &format!("/v1/journal?after_seq={after_seq}&limit={limit}&wait_ms={wait_ms}"), None).await
    }

    pub async fn health(&self) -> Result<Health, ClientError> {
        self.call(Method::GET, "/healthz", None).await
    }

    /// The server's metrics, in Prometheus's text format.
    pub async fn metrics(&self) -> Result<String, ClientError> {
        let response = self.send(Method::GET, "/metrics", None).await?;
        let status = response.status();
        let bytes = response.bytes().await?;
        if status.is_success() {
            return Ok(String::from_utf8_lossy(&bytes).into_owned());
        }
        Err(Self::error(status, &bytes))
    }

    /// Makes an API key (admin key). The answer holds the key itself, shown this once.
    pub async fn create_key(&self, key: &KeyInput) -> Result<CreatedKey, ClientError> {
        self.call(Method::POST, "/v1/keys", Self::json(key)).await
    }

    pub async fn keys(&self) -> Result<KeysPage, ClientError> {
        self.call(Method::GET, "/v1/keys", None).await
    }

    /// Brings a backup on the server's host up to date (admin key); `running` if it takes
    /// longer than the server waits, and asking again waits again.
    pub async fn backup(&self, backup: &BackupInput) -> Result<BackupStatus, ClientError> {
        self.call(Method::POST, "/v1/backups", Self::json(backup)).await
    }

    pub async fn revoke_key(&self, id: &str) -> Result<KeyInfo, ClientError> {
        self.call(Method::DELETE, &format!("/v1/keys/{id}"), None).await
    }
}
