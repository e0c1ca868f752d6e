//! Who is calling, and what they may do. With keys in the ledger's key store every request
//! but `/openapi.json` must carry one (`Authorization: Bearer tally_...`); a key has a scope
//! (read, write, admin) and may be confined to account id prefixes, a tenant's share of one
//! ledger. A ledger that has never had a key answers everyone (`tally serve` allows that only
//! on a loopback address, unless told otherwise).
//!
//! Keys are cached in memory and read again from the store every `KEYS_REFRESH_MS`, so a key
//! made or revoked on another node, or offline, takes effect within that.

use crate::error::ApiError;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tally_core::limits::KEYS_REFRESH_MS;
use tally_ledger::keys::{self, KeyRecord, KeySpec, KeyStore, NewKey, Scope};
use tally_ledger::LedgerError;

pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The caller of one request, as the routes see it.
#[derive(Clone, Debug)]
pub enum Caller {
    /// No key needed: the ledger has none.
    Open,
    Key(Arc<KeyRecord>),
}

impl Caller {
    pub fn scope(&self) -> Scope {
        match self {
            Caller::Open => Scope::Admin,
            Caller::Key(key) => key.scope,
        }
    }

    /// Whether the caller may see and move the account or transfer with this id.
    pub fn permits(&self, id: &str) -> bool {
        match self {
            Caller::Open => true,
            Caller::Key(key) => key.permits(id),
        }
    }

    /// Confined to prefixes: some accounts are out of sight.
    pub fn is_confined(&self) -> bool {
        matches!(self, Caller::Key(key) if !key.prefixes.is_empty())
    }

    /// The prefixes a listing of ids starting with `prefix` may cover: `prefix` itself for an
    /// unconfined caller, else its intersection with each of the key's prefixes.
    pub fn narrow(&self, prefix: &str) -> Vec<String> {
        match self {
            Caller::Key(key) if !key.prefixes.is_empty() => {
                let mut narrowed: Vec<String> = key
                    .prefixes
                    .iter()
                    .filter_map(|own| {
                        if own.starts_with(prefix) {
                            Some(own.clone())
                        } else {
                            prefix.starts_with(own.as_str()).then(|| prefix.to_owned())
                        }
                    })
                    .collect();
                narrowed.sort();
                // A prefix inside another adds nothing.
                narrowed.dedup_by(|later, earlier| later.starts_with(earlier.as_str()));
                narrowed
            }
            _ => vec![prefix.to_owned()],
        }
    }

    /// The key's id, recorded with what it does.
    pub fn key_id(&self) -> Option<&str> {
        match self {
            Caller::Open => None,
            Caller::Key(key) => Some(&key.id),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Caller, ApiError> {
        Ok(parts.extensions.get::<Caller>().cloned().unwrap_or(Caller::Open))
    }
}

/// Requests per second one key may make, with a burst of as many.
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The keys of a ledger, cached, and each key's request budget.
pub struct Keyring {
    store: Arc<dyn KeyStore>,
    keys: RwLock<Arc<HashMap<String, Arc<KeyRecord>>>>,
    /// Held from reading the store to installing what was read, so an older read never
    /// replaces a newer one.
    refreshing: tokio::sync::Mutex<()>,
    /// Requests per second per key; 0 for no limit.
    rate_per_second: u32,
    buckets: Mutex<HashMap<String, Bucket>>,
}

/// Why a request was refused before any route saw it.
pub enum Refusal {
    Unauthorized,
    RateLimited { retry_after: u32 },
}

impl Keyring {
    pub async fn load(store: Arc<dyn KeyStore>, rate_per_second: u32) -> Result<Arc<Keyring>, LedgerError> {
        let keyring = Arc::new(Keyring {
            store,
            keys: RwLock::default(),
            refreshing: tokio::sync::Mutex::new(()),
            rate_per_second,
            buckets: Mutex::new(HashMap::new()),
        });
        keyring.refresh().await?;
        Ok(keyring)
    }

    /// Reads the store again; a failed read keeps the keys as they were. Keys are never
    /// deleted, so a store that reads empty after having keys lost them (a removed key
    /// file): the keys read before stay in force rather than opening the ledger to all.
    pub async fn refresh(&self) -> Result<(), LedgerError> {
        let _turn = self.refreshing.lock().await;
        let records = self.store.keys().await?;
        if records.is_empty() && self.required() {
            return Err(LedgerError::Unavailable("the key store reads empty after holding keys".into()));
        }
        let keys = records.into_iter().map(|record| (record.id.clone(), Arc::new(record))).collect();
        *self.keys.write().expect("keys lock") = Arc::new(keys);
        Ok(())
    }

    /// Reads the keys again every `KEYS_REFRESH_MS` while the keyring is in use.
    pub fn keep_fresh(self: &Arc<Keyring>) {
        let keyring = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(Duration::from_millis(KEYS_REFRESH_MS));
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let Some(keyring) = keyring.upgrade() else { return };
                if let Err(error) = keyring.refresh().await {
                    tracing::warn!(%error, "could not read the keys again; the last ones read stay in force");
                }
            }
        });
    }

    fn snapshot(&self) -> Arc<HashMap<String, Arc<KeyRecord>>> {
        self.keys.read().expect("keys lock").clone()
    }

    /// Whether keys are required: the ledger has (or ever had) a key.
    pub fn required(&self) -> bool {
        !self.snapshot().is_empty()
    }

    pub fn list(&self) -> Vec<Arc<KeyRecord>> {
        let mut keys: Vec<_> = self.snapshot().values().cloned().collect();
        keys.sort_by(|a, b| (a.created_at_ms, &a.id).cmp(&(b.created_at_ms, &b.id)));
        keys
    }

    /// Who presents these headers: a live key, or a refusal that says nothing of why.
    pub fn caller(&self, headers: &HeaderMap) -> Result<Caller, Refusal> {
        let keys = self.snapshot();
        if keys.is_empty() {
            return Ok(Caller::Open);
        }
        let text = bearer(headers).ok_or(Refusal::Unauthorized)?;
        let key = keys::claimed_id(text).and_then(|id| keys.get(id)).ok_or(Refusal::Unauthorized)?;
        if !key.matches(text) || !key.is_live(now_ms()) {
            return Err(Refusal::Unauthorized);
        }
        self.spend(&key.id)?;
        Ok(Caller::Key(key.clone()))
    }

    /// Takes one request from the key's budget.
    fn spend(&self, id: &str) -> Result<(), Refusal> {
        if self.rate_per_second == 0 {
            return Ok(());
        }
        let rate = f64::from(self.rate_per_second);
        let now = Instant::now();
        let mut buckets = self.buckets.lock().expect("buckets lock");
        let bucket = buckets.entry(id.to_owned()).or_insert(Bucket { tokens: rate, at: now });
        bucket.tokens = (bucket.tokens + now.duration_since(bucket.at).as_secs_f64() * rate).min(rate);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        let wait = (1.0 - bucket.tokens) / rate;
        Err(Refusal::RateLimited { retry_after: (wait.ceil() as u32).max(1) })
    }

    pub async fn create(&self, spec: KeySpec) -> Result<NewKey, ApiError> {
        let key = spec.generate(now_ms()).map_err(|(field, message)| ApiError::invalid(field, message))?;
        self.store.add(key.record.clone()).await?;
        self.refresh().await?;
        Ok(key)
    }

    pub async fn revoke(&self, id: &str) -> Result<Option<KeyRecord>, ApiError> {
        let revoked = self.store.revoke(id, now_ms()).await?;
        self.refresh().await?;
        Ok(revoked)
    }
}

/// The token of an `Authorization: Bearer <token>` header; the scheme's case does not matter
/// (RFC 7235), an empty token is none.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// A key as the API shows it: never the key itself.
pub fn key_info(key: &KeyRecord) -> tally_api::KeyInfo {
    tally_api::KeyInfo {
        id: key.id.clone(),
        name: key.name.clone(),
        scope: key.scope.name().to_owned(),
        accounts: key.prefixes.clone(),
        created_at_ms: key.created_at_ms,
        expires_at_ms: key.expires_at_ms,
        revoked_at_ms: key.revoked_at_ms,
    }
}

pub fn unauthorized() -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "a valid API key is required: Authorization: Bearer <key>")
}

pub fn forbidden(needed: Scope, had: Scope) -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "forbidden",
        format!("this needs a key with scope {}; this key's scope is {}", needed.name(), had.name()),
    )
}
