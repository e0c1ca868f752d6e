//! The v1 routes. Each handler validates the whole request before it reaches the ledger, so a
//! bad field anywhere in a batch rejects the batch with nothing applied.

use crate::body::Body;
use crate::error::ApiError;
use crate::App;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use std::time::{Duration, Instant};
use tally_api::*;
use tally_core::limits::{PAGE_LIMIT_MAX, WRITER_STALLED_MS};
use tally_core::{Id, Request};
use tally_ledger::AccountQuery;
use utoipa::IntoParams;

fn query<T: for<'de> Deserialize<'de> + Default>(raw: Option<String>) -> Result<T, ApiError> {
    let Some(raw) = raw else { return Ok(T::default()) };
    let deserializer = serde_urlencoded::Deserializer::new(form_urlencoded::parse(raw.as_bytes()));
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let field = error.path().to_string();
        ApiError::invalid(if field == "." { "query".to_owned() } else { field }, error.into_inner().to_string())
    })
}

fn path_id(text: &str) -> Result<Id, ApiError> {
    Id::parse(text).map_err(|e| ApiError::invalid("id", format!("invalid id: {e}")))
}

fn limit(value: Option<usize>) -> Result<usize, ApiError> {
    match value.unwrap_or(PAGE_LIMIT_DEFAULT) {
        0 => Err(ApiError::invalid("limit", "must be at least 1")),
        n if n > PAGE_LIMIT_MAX => Err(ApiError::invalid("limit", format!("must be at most {PAGE_LIMIT_MAX}"))),
        n => Ok(n),
    }
}

async fn submit(app: &App, request: Request) -> Result<Response, ApiError> {
    let applied = app.ledger.submit_by(request, Instant::now() + app.write_wait).await?;
    let body = Results::json(&applied.request, &applied.outcomes);
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// Create an asset: a currency or any countable resource, with its number of decimals.
#[utoipa::path(post, path = "/v1/assets", tag = "assets", request_body = AssetInput,
    responses((status = 200, description = "One result", body = Results), (status = 400, body = ErrorBody), (status = 408, body = ErrorBody), (status = 503, body = ErrorBody), (status = 504, body = ErrorBody)))]
pub async fn create_asset(State(app): State<App>, body: Body) -> Result<Response, ApiError> {
    let request = decode_json::<AssetInput>(&body.bytes)?.convert()?;
    submit(&app, request).await
}

/// Create accounts, up to 8,190 per request; each gets its own result.
#[utoipa::path(post, path = "/v1/accounts", tag = "accounts", request_body = CreateAccounts,
    responses((status = 200, description = "One result per account, in order", body = Results), (status = 400, body = ErrorBody), (status = 408, body = ErrorBody), (status = 503, body = ErrorBody), (status = 504, body = ErrorBody)))]
pub async fn create_accounts(State(app): State<App>, body: Body) -> Result<Response, ApiError> {
    let request = decode_json::<CreateAccounts>(&body.bytes)?.convert()?;
    submit(&app, request).await
}

/// Change an account's bounds or metadata, checked against its current balances.
#[utoipa::path(patch, path = "/v1/accounts/{id}", tag = "accounts", request_body = AccountPatchInput,
    params(("id" = String, Path, description = "Account id")),
    responses((status = 200, description = "One result: updated, or why not", body = Results), (status = 400, body = ErrorBody), (status = 408, body = ErrorBody), (status = 503, body = ErrorBody), (status = 504, body = ErrorBody)))]
pub async fn update_account(State(app): State<App>, Path(id): Path<String>, body: Body) -> Result<Response, ApiError> {
    let request = decode_json::<AccountPatchInput>(&body.bytes)?.convert(&id)?;
    submit(&app, request).await
}

/// Create transfers, holds, posts and voids, up to 8,190 per request. Each gets its own
/// result; a failed linked chain rolls back only that chain.
#[utoipa::path(post, path = "/v1/transfers", tag = "transfers", request_body = CreateTransfers,
    responses((status = 200, description = "One result per transfer, in order", body = Results), (status = 400, body = ErrorBody), (status = 413, body = ErrorBody), (status = 408, body = ErrorBody), (status = 503, body = ErrorBody), (status = 504, body = ErrorBody)))]
pub async fn create_transfers(State(app): State<App>, body: Body) -> Result<Response, ApiError> {
    let request = CreateTransfers::decode(&body.bytes)?;
    submit(&app, request).await
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AccountParams {
    /// Balances exactly as they were right after this journal position.
    as_of: Option<u64>,
}

/// Read an account, now or as of a journal position.
#[utoipa::path(get, path = "/v1/accounts/{id}", tag = "accounts",
    params(("id" = String, Path, description = "Account id"), AccountParams),
    responses((status = 200, body = Account), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_account(State(app): State<App>, Path(id): Path<String>, RawQuery(raw): RawQuery) -> Result<Json<Account>, ApiError> {
    let params: AccountParams = query(raw)?;
    let id = path_id(&id)?;
    match app.ledger.account(id.clone(), params.as_of).await? {
        Some(view) => Ok(Json(Account::new(&view, params.as_of))),
        None if params.as_of.is_some() => {
            Err(ApiError::not_found(format!("account {id} did not exist at seq {}", params.as_of.unwrap_or(0))))
        }
        None => Err(ApiError::not_found(format!("account {id} not found"))),
    }
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AccountsParams {
    /// Only accounts whose id starts with this.
    prefix: Option<String>,
    /// Only direct children of this account.
    parent: Option<String>,
    /// Page size, 1 to 1,000 (default 100).
    limit: Option<usize>,
    /// Continue after this account id (the previous page's `next_after`).
    after: Option<String>,
}

/// List accounts in id order.
#[utoipa::path(get, path = "/v1/accounts", tag = "accounts", params(AccountsParams),
    responses((status = 200, body = AccountsPage), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list_accounts(State(app): State<App>, RawQuery(raw): RawQuery) -> Result<Json<AccountsPage>, ApiError> {
    let params: AccountsParams = query(raw)?;
    let limit = limit(params.limit)?;
    let named = |field: &str, value: Option<String>| {
        value.map(|v| Id::parse(&v).map_err(|e| ApiError::invalid(field, format!("invalid id: {e}")))).transpose()
    };
    let query = AccountQuery {
        prefix: params.prefix.unwrap_or_default(),
        parent: named("parent", params.parent)?,
        after: named("after", params.after)?,
        limit,
    };
    let parent = query.parent.clone();
    let Some(views) = app.ledger.accounts(query).await? else {
        return Err(ApiError::not_found(format!("parent account {} not found", parent.map(|p| p.to_string()).unwrap_or_default())));
    };
    let next_after = (views.len() == limit).then(|| views.last().map(|v| v.id.to_string())).flatten();
    Ok(Json(AccountsPage { accounts: views.iter().map(|v| Account::new(v, None)).collect(), next_after }))
}

/// Read a transfer (or hold, post, void) and where it stands.
#[utoipa::path(get, path = "/v1/transfers/{id}", tag = "transfers", params(("id" = String, Path, description = "Transfer id")),
    responses((status = 200, body = Transfer), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_transfer(State(app): State<App>, Path(id): Path<String>) -> Result<Json<Transfer>, ApiError> {
    transfer(&app, &id).await
}

/// Read one leg of an allocation (or of the post or void of one): `/v1/transfers/pot-7/0`
/// is the transfer `pot-7/0`.
#[utoipa::path(get, path = "/v1/transfers/{id}/{leg}", tag = "transfers",
    params(("id" = String, Path, description = "The allocation's id"), ("leg" = u32, Path, description = "The leg's index, from 0")),
    responses((status = 200, body = Transfer), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_leg(State(app): State<App>, Path((id, leg)): Path<(String, String)>) -> Result<Json<Transfer>, ApiError> {
    transfer(&app, &format!("{id}/{leg}")).await
}

/// Renew a hold as a lease: it expires `timeout_ms` after this renewal. Refused with
/// `pending_already_posted`, `pending_already_voided` or `pending_expired` once it is resolved.
#[utoipa::path(patch, path = "/v1/transfers/{id}", tag = "transfers", request_body = HoldPatchInput,
    params(("id" = String, Path, description = "The hold's id")),
    responses((status = 200, description = "One result: updated, or why not", body = Results), (status = 400, body = ErrorBody), (status = 408, body = ErrorBody), (status = 503, body = ErrorBody), (status = 504, body = ErrorBody)))]
pub async fn renew_hold(State(app): State<App>, Path(id): Path<String>, body: Body) -> Result<Response, ApiError> {
    let request = decode_json::<HoldPatchInput>(&body.bytes)?.convert(&id)?;
    submit(&app, request).await
}

/// Renew one held leg of an allocation, as `PATCH /v1/transfers/{id}` renews a hold.
#[utoipa::path(patch, path = "/v1/transfers/{id}/{leg}", tag = "transfers", request_body = HoldPatchInput,
    params(("id" = String, Path, description = "The allocation's id"), ("leg" = u32, Path, description = "The leg's index, from 0")),
    responses((status = 200, description = "One result: updated, or why not", body = Results), (status = 400, body = ErrorBody), (status = 408, body = ErrorBody), (status = 503, body = ErrorBody), (status = 504, body = ErrorBody)))]
pub async fn renew_leg(State(app): State<App>, Path((id, leg)): Path<(String, String)>, body: Body) -> Result<Response, ApiError> {
    let request = decode_json::<HoldPatchInput>(&body.bytes)?.convert(&format!("{id}/{leg}"))?;
    submit(&app, request).await
}

async fn transfer(app: &App, id: &str) -> Result<Json<Transfer>, ApiError> {
    let id = Id::parse_transfer(id).map_err(|e| ApiError::invalid("id", format!("invalid transfer id: {e}")))?;
    match app.ledger.transfer(id.clone()).await? {
        Some(view) => Ok(Json(Transfer::new(&view))),
        None => Err(ApiError::not_found(format!("transfer {id} not found"))),
    }
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SeqPageParams {
    /// Only entries with a higher seq (default 0: from the start).
    after_seq: Option<u64>,
    /// Page size, 1 to 1,000 (default 100).
    limit: Option<usize>,
}

/// The transfers that changed an account (for a parent, its subtree), in seq order.
#[utoipa::path(get, path = "/v1/accounts/{id}/transfers", tag = "accounts",
    params(("id" = String, Path, description = "Account id"), SeqPageParams),
    responses((status = 200, body = TransfersPage), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn account_transfers(
    State(app): State<App>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<TransfersPage>, ApiError> {
    let params: SeqPageParams = query(raw)?;
    let limit = limit(params.limit)?;
    let id = path_id(&id)?;
    let Some(views) = app.ledger.account_transfers(id.clone(), params.after_seq.unwrap_or(0), limit).await? else {
        return Err(ApiError::not_found(format!("account {id} not found")));
    };
    let next_after_seq = (views.len() == limit).then(|| views.last().map(|v| v.seq)).flatten();
    Ok(Json(TransfersPage { transfers: views.iter().map(Transfer::new).collect(), next_after_seq }))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct JournalParams {
    /// Only entries with a higher seq (default 0: from the start).
    after_seq: Option<u64>,
    /// Page size, 1 to 1,000 (default 100).
    limit: Option<usize>,
    /// Wait up to this long (at most 30,000 ms) for an entry if none is there yet.
    wait_ms: Option<u64>,
}

/// Every committed journal entry in order, with no gaps: a feed for consumers. Long-polls
/// with `wait_ms`.
#[utoipa::path(get, path = "/v1/journal", tag = "journal", params(JournalParams),
    responses((status = 200, body = JournalPage), (status = 400, body = ErrorBody)))]
pub async fn journal(State(app): State<App>, RawQuery(raw): RawQuery) -> Result<Json<JournalPage>, ApiError> {
    let params: JournalParams = query(raw)?;
    let limit = limit(params.limit)?;
    let wait_ms = params.wait_ms.unwrap_or(0);
    if wait_ms > JOURNAL_WAIT_MS_MAX {
        return Err(ApiError::invalid("wait_ms", format!("must be at most {JOURNAL_WAIT_MS_MAX}")));
    }
    let after_seq = params.after_seq.unwrap_or(0);
    let entries = app.ledger.journal(after_seq, limit, Duration::from_millis(wait_ms)).await?;
    let entries: Vec<JournalItem> = entries.iter().map(JournalItem::new).collect();
    let next_after_seq = entries.last().map_or(after_seq, JournalItem::seq);
    Ok(Json(JournalPage { entries, next_after_seq }))
}

/// Liveness and progress. 503 while the writer is stalled, and once the ledger stopped
/// after a storage failure.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = Health), (status = 503, body = Health)))]
pub async fn health(State(app): State<App>) -> (StatusCode, Json<Health>) {
    let status = app.ledger.status();
    let writer_busy_ms = u64::try_from(status.writer_busy.as_millis()).unwrap_or(u64::MAX);
    let condition = match (&status.failure, writer_busy_ms > WRITER_STALLED_MS) {
        (Some(_), _) => "failed",
        (None, true) => "stalled",
        (None, false) => "ok",
    };
    let code = if condition == "ok" { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let health = Health {
        status: condition.to_owned(),
        engine: app.engine_name.to_owned(),
        last_seq: status.last_seq,
        durable_seq: status.durable_seq,
        queue_depth: status.queue_depth,
        writer_busy_ms,
        accounts: status.accounts,
        transfer_records: status.transfers,
        failure: status.failure,
    };
    (code, Json(health))
}

/// Prometheus metrics: commit latency, fsync time, batch sizes, queue depth, HTTP requests.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain")))]
pub async fn metrics(State(app): State<App>) -> String {
    app.metrics.render()
}
