//! The v1 routes. Each handler validates the whole request before it reaches the ledger, so a
//! bad field anywhere in a batch rejects the batch with nothing applied.

use crate::auth::{self, Caller, Keyring};
use crate::body::Body;
use crate::body::Segments;
use crate::confine;
use crate::error::ApiError;
use crate::App;
use axum::extract::{RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use std::time::{Duration, Instant};
use tally_api::*;
use tally_core::actors::key_in;
use tally_core::limits::{
    BACKUP_ANSWER_WAIT_MS, BACKUP_WAIT_MS_MAX, HOLD_TIMEOUT_MS_MAX, KEYS_MAX, PAGE_LIMIT_MAX, SEQ_MAX, STATS_INTERVAL_MS, WRITER_STALLED_MS,
};
use tally_core::{Id, JournalEntry, Request, Under};
use tally_ledger::keys::{KeySpec, Scope};
use tally_ledger::{AccountQuery, LedgerError};
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

/// A journal position to read after (0, the start, by default).
fn after_seq(value: Option<u64>) -> Result<u64, ApiError> {
    match value.unwrap_or(0) {
        seq if seq > SEQ_MAX => Err(ApiError::invalid("after_seq", format!("must be at most {SEQ_MAX}"))),
        seq => Ok(seq),
    }
}

fn limit(value: Option<usize>) -> Result<usize, ApiError> {
    match value.unwrap_or(PAGE_LIMIT_DEFAULT) {
        0 => Err(ApiError::invalid("limit", "must be at least 1")),
        n if n > PAGE_LIMIT_MAX => Err(ApiError::invalid("limit", format!("must be at most {PAGE_LIMIT_MAX}"))),
        n => Ok(n),
    }
}

async fn submit(app: &App, caller: &Caller, request: Request) -> Result<Response, ApiError> {
    // The deadline covers a confined key's checks too, which read the ledger.
    let deadline = Instant::now() + app.write_wait;
    let checked = tokio::time::timeout_at(deadline.into(), confine::check(app, caller, &request)).await;
    checked.map_err(|_| ApiError::from(tally_ledger::LedgerError::Withdrawn))??;
    // Every entry it journals names the key it was made with.
    let key = caller.key_id().map(|id| Id::parse(id).expect("key ids are 12 hex digits, a valid id"));
    let applied = app.ledger.submit_by(request.by(key), deadline).await?;
    let body = Results::json(&applied.request, &applied.outcomes);
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// Create an asset: a currency or any countable resource, with its number of decimals.
#[utoipa::path(post, path = "/v1/assets", tag = "assets", request_body = AssetInput,
    responses((status = 200, description = "One result", body = Results), (status = 400, body = ErrorBody), (status = 408, body = ErrorBody), (status = 503, body = ErrorBody), (status = 504, body = ErrorBody)))]
pub async fn create_asset(State(app): State<App>, caller: Caller, body: Body) -> Result<Response, ApiError> {
    let request = decode_json::<AssetInput>(&body.bytes)?.convert()?;
    submit(&app, &caller, request).await
}

/// Create accounts, up to 8,190 per request; each gets its own result.
#[utoipa::path(post, path = "/v1/accounts", tag = "accounts", request_body = CreateAccounts,
    responses((status = 200, description = "One result per account, in order", body = Results), (status = 400, body = ErrorBody), (status = 408, body = ErrorBody), (status = 503, body = ErrorBody), (status = 504, body = ErrorBody)))]
pub async fn create_accounts(State(app): State<App>, caller: Caller, body: Body) -> Result<Response, ApiError> {
    let request = decode_json::<CreateAccounts>(&body.bytes)?.convert()?;
    submit(&app, &caller, request).await
}

/// Change an account's bounds or metadata, checked against its current balances.
#[utoipa::path(patch, path = "/v1/accounts/{id}", tag = "accounts", request_body = AccountPatchInput,
    params(("id" = String, Path, description = "Account id")),
    responses((status = 200, description = "One result: updated, or why not", body = Results), (status = 400, body = ErrorBody), (status = 408, body = ErrorBody), (status = 503, body = ErrorBody), (status = 504, body = ErrorBody)))]
pub async fn update_account(
    State(app): State<App>,
    caller: Caller,
    Segments(id): Segments<String>,
    body: Body,
) -> Result<Response, ApiError> {
    let request = decode_json::<AccountPatchInput>(&body.bytes)?.convert(&id)?;
    submit(&app, &caller, request).await
}

/// Create transfers, holds, posts and voids, up to 8,190 per request. Each gets its own
/// result; a failed linked chain rolls back only that chain.
#[utoipa::path(post, path = "/v1/transfers", tag = "transfers", request_body = CreateTransfers,
    responses((status = 200, description = "One result per transfer, in order", body = Results), (status = 400, body = ErrorBody), (status = 413, body = ErrorBody), (status = 408, body = ErrorBody), (status = 503, body = ErrorBody), (status = 504, body = ErrorBody)))]
pub async fn create_transfers(State(app): State<App>, caller: Caller, body: Body) -> Result<Response, ApiError> {
    let request = CreateTransfers::decode(&body.bytes)?;
    submit(&app, &caller, request).await
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
pub async fn get_account(
    State(app): State<App>,
    caller: Caller,
    Segments(id): Segments<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Account>, ApiError> {
    let params: AccountParams = query(raw)?;
    let id = path_id(&id)?;
    let view = if caller.permits(id.as_str()) { app.ledger.account(id.clone(), params.as_of).await? } else { None };
    match view {
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
    /// `true`: only accounts without a parent (the roots of the account trees).
    roots: Option<bool>,
    /// Page size, 1 to 1,000 (default 100).
    limit: Option<usize>,
    /// Continue after this account id (the previous page's `next_after`).
    after: Option<String>,
}

/// List accounts in id order.
#[utoipa::path(get, path = "/v1/accounts", tag = "accounts", params(AccountsParams),
    responses((status = 200, body = AccountsPage), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list_accounts(State(app): State<App>, caller: Caller, RawQuery(raw): RawQuery) -> Result<Json<AccountsPage>, ApiError> {
    let params: AccountsParams = query(raw)?;
    let limit = limit(params.limit)?;
    let named = |field: &str, value: Option<String>| {
        value.map(|v| Id::parse(&v).map_err(|e| ApiError::invalid(field, format!("invalid id: {e}")))).transpose()
    };
    let (parent, after) = (named("parent", params.parent)?, named("after", params.after)?);
    let under = match (parent.clone(), params.roots.unwrap_or(false)) {
        (Some(_), true) => return Err(ApiError::invalid("roots", "cannot be combined with parent")),
        (Some(parent), false) => Under::Parent(parent),
        (None, true) => Under::Root,
        (None, false) => Under::Anywhere,
    };
    let parent_missing =
        || ApiError::not_found(format!("parent account {} not found", parent.as_ref().map(|p| p.to_string()).unwrap_or_default()));
    if parent.as_ref().is_some_and(|parent| !caller.permits(parent.as_str())) {
        return Err(parent_missing());
    }
    // A confined key lists the part of each of its prefixes the asked prefix covers, merged
    // in id order.
    let mut views = Vec::new();
    for prefix in caller.narrow(&params.prefix.unwrap_or_default()) {
        let query = AccountQuery { prefix, under: under.clone(), after: after.clone(), limit };
        views.extend(app.ledger.accounts(query).await?.ok_or_else(parent_missing)?);
    }
    views.sort_by(|a, b| a.id.cmp(&b.id));
    views.truncate(limit);
    let next_after = (views.len() == limit).then(|| views.last().map(|v| v.id.to_string())).flatten();
    Ok(Json(AccountsPage { accounts: views.iter().map(|v| Account::new(v, None)).collect(), next_after }))
}

/// Read a transfer (or hold, post, void) and where it stands.
#[utoipa::path(get, path = "/v1/transfers/{id}", tag = "transfers", params(("id" = String, Path, description = "Transfer id")),
    responses((status = 200, body = Transfer), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_transfer(State(app): State<App>, caller: Caller, Segments(id): Segments<String>) -> Result<Json<Transfer>, ApiError> {
    transfer(&app, &caller, &id).await
}

/// Read one leg of an allocation (or of the post or void of one): `/v1/transfers/pot-7/0`
/// is the transfer `pot-7/0`.
#[utoipa::path(get, path = "/v1/transfers/{id}/{leg}", tag = "transfers",
    params(("id" = String, Path, description = "The allocation's id"), ("leg" = u32, Path, description = "The leg's index, from 0")),
    responses((status = 200, body = Transfer), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_leg(
    State(app): State<App>,
    caller: Caller,
    Segments((id, leg)): Segments<(String, String)>,
) -> Result<Json<Transfer>, ApiError> {
    transfer(&app, &caller, &format!("{id}/{leg}")).await
}

/// Renew a hold as a lease: it expires `timeout_ms` after this renewal. Refused with
/// `pending_already_posted`, `pending_already_voided` or `pending_expired` once it is resolved.
#[utoipa::path(patch, path = "/v1/transfers/{id}", tag = "transfers", request_body = HoldPatchInput,
    params(("id" = String, Path, description = "The hold's id")),
    responses((status = 200, description = "One result: updated, or why not", body = Results), (status = 400, body = ErrorBody), (status = 408, body = ErrorBody), (status = 503, body = ErrorBody), (status = 504, body = ErrorBody)))]
pub async fn renew_hold(State(app): State<App>, caller: Caller, Segments(id): Segments<String>, body: Body) -> Result<Response, ApiError> {
    let request = decode_json::<HoldPatchInput>(&body.bytes)?.convert(&id)?;
    submit(&app, &caller, request).await
}

/// Renew one held leg of an allocation, as `PATCH /v1/transfers/{id}` renews a hold.
#[utoipa::path(patch, path = "/v1/transfers/{id}/{leg}", tag = "transfers", request_body = HoldPatchInput,
    params(("id" = String, Path, description = "The allocation's id"), ("leg" = u32, Path, description = "The leg's index, from 0")),
    responses((status = 200, description = "One result: updated, or why not", body = Results), (status = 400, body = ErrorBody), (status = 408, body = ErrorBody), (status = 503, body = ErrorBody), (status = 504, body = ErrorBody)))]
pub async fn renew_leg(
    State(app): State<App>,
    caller: Caller,
    Segments((id, leg)): Segments<(String, String)>,
    body: Body,
) -> Result<Response, ApiError> {
    let request = decode_json::<HoldPatchInput>(&body.bytes)?.convert(&format!("{id}/{leg}"))?;
    submit(&app, &caller, request).await
}

/// Which keys made the entries of a page from `first` to `last` (seq order); none for an
/// empty page.
async fn key_runs(app: &App, first: Option<u64>, last: Option<u64>) -> Result<Vec<(u64, Option<Id>)>, ApiError> {
    match (first, last) {
        (Some(first), Some(last)) => Ok(app.ledger.key_runs(first, last).await?),
        _ => Ok(Vec::new()),
    }
}

/// The transfer `id` if the caller may see it: its id and both its accounts in its share.
async fn visible_transfer(app: &App, caller: &Caller, id: Id) -> Result<Option<tally_core::TransferView>, ApiError> {
    let view = if caller.permits(id.as_str()) { app.ledger.transfer(id).await? } else { None };
    Ok(view.filter(|view| confine::sees_transfer(caller, view)))
}

async fn transfer(app: &App, caller: &Caller, id: &str) -> Result<Json<Transfer>, ApiError> {
    let id = Id::parse_transfer(id).map_err(|e| ApiError::invalid("id", format!("invalid transfer id: {e}")))?;
    match visible_transfer(app, caller, id.clone()).await? {
        Some(view) => {
            let runs = app.ledger.key_runs(view.seq, view.seq).await?;
            Ok(Json(Transfer::new(&view, key_in(&runs, view.seq).map(Id::to_string))))
        }
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

/// A page of an account's entries as asked for: the account, the seq to continue after, and
/// how many.
fn account_page(id: &str, raw: Option<String>) -> Result<(Id, u64, usize), ApiError> {
    let params: SeqPageParams = query(raw)?;
    let limit = limit(params.limit)?;
    Ok((path_id(id)?, after_seq(params.after_seq)?, limit))
}

/// The transfers that changed an account (for a parent, its subtree), in seq order.
#[utoipa::path(get, path = "/v1/accounts/{id}/transfers", tag = "accounts",
    params(("id" = String, Path, description = "Account id"), SeqPageParams),
    responses((status = 200, body = TransfersPage), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn account_transfers(
    State(app): State<App>,
    caller: Caller,
    Segments(id): Segments<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<TransfersPage>, ApiError> {
    let (id, after_seq, limit) = account_page(&id, raw)?;
    let views = if caller.permits(id.as_str()) { app.ledger.account_transfers(id.clone(), after_seq, limit).await? } else { None };
    let Some(views) = views else {
        return Err(ApiError::not_found(format!("account {id} not found")));
    };
    // The page continues after the last transfer looked at, shown or not.
    let next_after_seq = (views.len() == limit).then(|| views.last().map(|v| v.seq)).flatten();
    let runs = key_runs(&app, views.first().map(|v| v.seq), views.last().map(|v| v.seq)).await?;
    let transfers = views
        .iter()
        .filter(|view| confine::sees_transfer(&caller, view))
        .map(|view| Transfer::new(view, key_in(&runs, view.seq).map(Id::to_string)))
        .collect();
    Ok(Json(TransfersPage { transfers, next_after_seq }))
}

/// Every change to an account (creation, settings, each transfer, hold, post, void and
/// expiry that moved it), in seq order, each with the balances right after it.
#[utoipa::path(get, path = "/v1/accounts/{id}/history", tag = "accounts",
    params(("id" = String, Path, description = "Account id"), SeqPageParams),
    responses((status = 200, body = AccountHistoryPage), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn account_history(
    State(app): State<App>,
    caller: Caller,
    Segments(id): Segments<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<AccountHistoryPage>, ApiError> {
    let (id, after_seq, limit) = account_page(&id, raw)?;
    let not_found = || ApiError::not_found(format!("account {id} not found"));
    // The account's scale, which never changes, renders every amount of its history.
    let account = if caller.permits(id.as_str()) { app.ledger.account(id.clone(), None).await? } else { None };
    let account = account.ok_or_else(not_found)?;
    let entries = app.ledger.account_history(id.clone(), after_seq, limit).await?.ok_or_else(not_found)?;
    let next_after_seq = (entries.len() == limit).then(|| entries.last().map(|e| e.seq)).flatten();
    let mut changes = Vec::with_capacity(entries.len());
    for entry in &entries {
        let mut change = AccountChange::new(entry, account.scale);
        // A confined key sees its account's balances, and names only transfers it may read.
        if let Some(transfer) = change.transfer.as_deref().filter(|_| caller.is_confined()) {
            let id = Id::parse_transfer(transfer).expect("stored transfer ids parse");
            change.transfer = visible_transfer(&app, &caller, id).await?.map(|view| view.id);
        }
        changes.push(change);
    }
    Ok(Json(AccountHistoryPage { changes, next_after_seq }))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct HoldsParams {
    /// Continue from here: the previous page's `next_after`.
    after: Option<String>,
    /// Page size, 1 to 1,000 (default 100).
    limit: Option<usize>,
}

/// Open holds that expire, soonest first (ties in seq order). Holds without a timeout never
/// expire and are not listed.
#[utoipa::path(get, path = "/v1/holds", tag = "transfers", params(HoldsParams),
    responses((status = 200, body = HoldsPage), (status = 400, body = ErrorBody)))]
pub async fn list_holds(State(app): State<App>, caller: Caller, RawQuery(raw): RawQuery) -> Result<Json<HoldsPage>, ApiError> {
    let params: HoldsParams = query(raw)?;
    let limit = limit(params.limit)?;
    let after = params.after.as_deref().map(HoldPosition::parse).transpose()?;
    let views = app.ledger.expiring_holds(after.map(|at| (at.expires_at, at.seq)), limit).await?;
    // The page continues after the last hold looked at, shown or not: a position, which
    // names no hold a confined key may not see.
    let next_after = (views.len() == limit)
        .then(|| views.last().and_then(|v| Some(HoldPosition { expires_at: v.detail.as_ref()?.expires_at?, seq: v.seq }.to_string())))
        .flatten();
    let mut holds = Vec::new();
    for view in views.iter().filter(|view| confine::sees_transfer(&caller, view)) {
        // Holds in expiry order have seqs from anywhere in the journal: each key is read alone.
        let runs = app.ledger.key_runs(view.seq, view.seq).await?;
        holds.push(Transfer::new(view, key_in(&runs, view.seq).map(Id::to_string)));
    }
    Ok(Json(HoldsPage { holds, next_after }))
}

/// Where a listing of holds by expiry stands: after the hold that expires at `expires_at`
/// with seq `seq`. Written `<expires_at>.<seq>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct HoldPosition {
    expires_at: u64,
    seq: u64,
}

impl HoldPosition {
    fn parse(text: &str) -> Result<HoldPosition, ApiError> {
        let invalid = || ApiError::invalid("after", "must be a position from a page's next_after");
        let (expires_at, seq) = text.split_once('.').ok_or_else(invalid)?;
        let number = |part: &str| part.parse::<u64>().ok().filter(|&n| n <= SEQ_MAX).ok_or_else(invalid);
        Ok(HoldPosition { expires_at: number(expires_at)?, seq: number(seq)? })
    }
}

impl std::fmt::Display for HoldPosition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.expires_at, self.seq)
    }
}

/// The writer's progress over the last minutes, sampled every second by the server: journal
/// entries per second, commits and their mean time, queue depth. For the whole ledger, so not
/// for a key confined to some accounts.
#[utoipa::path(get, path = "/v1/stats", tag = "operations", responses((status = 200, body = Stats)))]
pub async fn stats(State(app): State<App>) -> Json<Stats> {
    Json(Stats { engine: app.engine_name.to_owned(), node: app.node.clone(), interval_ms: STATS_INTERVAL_MS, samples: app.stats.samples() })
}

/// The key this request was made with (never the key itself) and the ledger's last durable
/// journal position.
#[utoipa::path(get, path = "/v1/whoami", tag = "keys", responses((status = 200, body = WhoAmI)))]
pub async fn whoami(State(app): State<App>, caller: Caller) -> Json<WhoAmI> {
    let key = match &caller {
        Caller::Open => None,
        Caller::Key(key) => Some(auth::key_info(key)),
    };
    Json(WhoAmI { key, scope: caller.scope().name().to_owned(), last_seq: app.ledger.status().durable_seq })
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PositionParams {
    /// A time, in ns since the Unix epoch.
    at: Option<u64>,
}

/// The last journal position whose timestamp is at or before `at`: the seq to read balances
/// `as_of` for "as they were at that time". Timestamps increase strictly with seq, so this is
/// a binary search over the journal.
#[utoipa::path(get, path = "/v1/journal/position", tag = "journal", params(PositionParams),
    responses((status = 200, body = JournalPosition), (status = 400, body = ErrorBody)))]
pub async fn journal_position(State(app): State<App>, RawQuery(raw): RawQuery) -> Result<Json<JournalPosition>, ApiError> {
    let params: PositionParams = query(raw)?;
    let at = params.at.ok_or_else(|| ApiError::invalid("at", "is required: a time in ns since the Unix epoch"))?;
    let timestamp_of = |seq: u64| {
        let ledger = app.ledger.clone();
        async move {
            let entries = ledger.journal(seq - 1, 1, Duration::ZERO).await?;
            let entry = entries.first().filter(|entry| entry.seq() == seq);
            entry
                .map(JournalEntry::timestamp)
                .ok_or_else(|| ApiError::from(LedgerError::Unavailable(format!("journal entry {seq} could not be read"))))
        }
    };
    // The answer lies in 0..=last: the highest seq whose timestamp is at most `at`.
    let (mut low, mut high) = (0, app.ledger.status().durable_seq);
    let mut found = None;
    while low < high {
        let middle = low + (high - low).div_ceil(2);
        let timestamp = timestamp_of(middle).await?;
        if timestamp <= at {
            (low, found) = (middle, Some(timestamp));
        } else {
            high = middle - 1;
        }
    }
    Ok(Json(JournalPosition { seq: low, timestamp: found }))
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
pub async fn journal(State(app): State<App>, caller: Caller, RawQuery(raw): RawQuery) -> Result<Response, ApiError> {
    let params: JournalParams = query(raw)?;
    let limit = limit(params.limit)?;
    let wait_ms = params.wait_ms.unwrap_or(0);
    if wait_ms > JOURNAL_WAIT_MS_MAX {
        return Err(ApiError::invalid("wait_ms", format!("must be at most {JOURNAL_WAIT_MS_MAX}")));
    }
    let after_seq = after_seq(params.after_seq)?;
    if wait_ms > 0 {
        // Waiting costs nothing; reading and rendering a page does. Pages are built a few
        // at a time, so a commit that wakes hundreds of readers leaves the server free to
        // answer writes between their pages.
        app.ledger.journal(after_seq, 0, Duration::from_millis(wait_ms)).await?;
    }
    let _turn = app.journal_pages.acquire().await.expect("the semaphore is never closed");
    let entries = app.ledger.journal(after_seq, limit, Duration::ZERO).await?;
    let runs = key_runs(&app, entries.first().map(JournalEntry::seq), entries.last().map(JournalEntry::seq)).await?;
    // Rendered off the threads that answer requests: a page of a thousand entries is
    // milliseconds of work, and a write's answer must not queue behind hundreds of them.
    let render = move || {
        // The feed continues after the last entry looked at, shown or not.
        let next_after_seq = entries.last().map_or(after_seq, JournalEntry::seq);
        let entries: Vec<JournalItem> = entries
            .iter()
            .filter(|entry| confine::sees_entry(&caller, entry))
            .map(|entry| JournalItem::new(entry, key_in(&runs, entry.seq())))
            .collect();
        serde_json::to_vec(&JournalPage { entries, next_after_seq }).expect("wire types always serialize")
    };
    // Only a runtime that is shutting down drops the task.
    let body = tokio::task::spawn_blocking(render).await.map_err(|_| ApiError::from(tally_ledger::LedgerError::ShuttingDown))?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
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
        counts: if status.counts_estimated { "estimated" } else { "exact" }.to_owned(),
        failure: status.failure,
    };
    (code, Json(health))
}

/// Prometheus metrics: commit latency, fsync time, batch sizes, queue depth, HTTP requests, and on the embedded engine the memory it holds, by part.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain")))]
pub async fn metrics(State(app): State<App>) -> String {
    app.backups.measure_lag(app.ledger.as_ref()).await;
    // Measuring memory walks every account: off the threads that answer requests.
    let ledger = app.ledger.clone();
    if let Ok(Some(memory)) = tokio::task::spawn_blocking(move || ledger.memory()).await {
        for (part, bytes) in memory.parts() {
            metrics::gauge!("tally_memory_bytes", "part" => part).set(bytes as f64);
        }
    }
    app.metrics.render()
}

fn keyring(app: &App) -> Result<&Keyring, ApiError> {
    app.keys.as_deref().ok_or_else(|| ApiError::not_found("this server has no key store"))
}

/// Make an API key (admin). The key is in the answer, once: only its digest is kept.
#[utoipa::path(post, path = "/v1/keys", tag = "keys", request_body = KeyInput,
    responses((status = 201, body = CreatedKey), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn create_key(State(app): State<App>, body: Body) -> Result<(StatusCode, Json<CreatedKey>), ApiError> {
    let input = decode_json::<KeyInput>(&body.bytes)?;
    let scope = input.scope.ok_or_else(|| ApiError::invalid("scope", "is required: read, write or admin"))?;
    let scope = scope.parse::<Scope>().map_err(|message| ApiError::invalid("scope", message))?;
    let keyring = keyring(&app)?;
    if keyring.list().len() >= KEYS_MAX {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "too_many_keys",
            format!("a ledger holds at most {KEYS_MAX} keys, revoked ones included"),
        ));
    }
    let expires_at_ms = match input.expires_in_ms {
        Some(0) => return Err(ApiError::invalid("expires_in_ms", "must be at least 1")),
        Some(ms) if ms > HOLD_TIMEOUT_MS_MAX => {
            return Err(ApiError::invalid("expires_in_ms", format!("must be at most {HOLD_TIMEOUT_MS_MAX}")))
        }
        Some(ms) => Some(auth::now_ms() + ms),
        None => None,
    };
    let spec = KeySpec { name: input.name.unwrap_or_default(), scope, prefixes: input.accounts, expires_at_ms };
    let key = keyring.create(spec).await?;
    tracing::info!(key = %key.record.id, scope = scope.name(), "key created");
    Ok((StatusCode::CREATED, Json(CreatedKey { key: key.text, info: auth::key_info(&key.record) })))
}

/// List the API keys (admin): revoked and expired ones too, never the keys themselves.
#[utoipa::path(get, path = "/v1/keys", tag = "keys",
    responses((status = 200, body = KeysPage), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list_keys(State(app): State<App>) -> Result<Json<KeysPage>, ApiError> {
    Ok(Json(KeysPage { keys: keyring(&app)?.list().iter().map(|key| auth::key_info(key)).collect() }))
}

/// Revoke an API key (admin): every node refuses it within a second.
#[utoipa::path(delete, path = "/v1/keys/{id}", tag = "keys", params(("id" = String, Path, description = "The key's id")),
    responses((status = 200, body = KeyInfo), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn revoke_key(State(app): State<App>, Segments(id): Segments<String>) -> Result<Json<KeyInfo>, ApiError> {
    match keyring(&app)?.revoke(&id).await? {
        Some(key) => {
            tracing::info!(key = %key.id, "key revoked");
            Ok(Json(auth::key_info(&key)))
        }
        None => Err(ApiError::not_found(format!("key {id} not found"))),
    }
}

/// Bring a backup up to date (admin; embedded engine): the journal, snapshots and key file,
/// copied into a directory under the server's backup root while writes go on. Answers 200
/// when the copy is done, 202 while it still runs (ask again with the same `to` to wait on).
/// With `after_seq` and `wait_ms`, first waits for a commit after `after_seq`, so a loop of
/// these keeps a backup seconds behind the ledger.
#[utoipa::path(post, path = "/v1/backups", tag = "operations", request_body = BackupInput,
    responses((status = 200, body = BackupStatus), (status = 202, body = BackupStatus), (status = 400, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 500, body = ErrorBody), (status = 501, body = ErrorBody)))]
pub async fn backup(State(app): State<App>, body: Body) -> Result<(StatusCode, Json<BackupStatus>), ApiError> {
    let input = decode_json::<BackupInput>(&body.bytes)?;
    let to = input.to.ok_or_else(|| ApiError::invalid("to", "is required: a directory under the backup root"))?;
    match (input.after_seq, input.wait_ms) {
        (_, Some(wait)) if wait > BACKUP_WAIT_MS_MAX => {
            return Err(ApiError::invalid("wait_ms", format!("must be at most {BACKUP_WAIT_MS_MAX}")))
        }
        (None, Some(_)) => return Err(ApiError::invalid("after_seq", "is required with wait_ms")),
        (Some(_), None) => return Err(ApiError::invalid("wait_ms", "is required with after_seq")),
        (Some(after), Some(wait)) => {
            app.ledger.journal(after, 1, Duration::from_millis(wait)).await?;
        }
        _ => {}
    }
    let mut done = app.backups.start(&app.ledger, &to)?;
    let finished = tokio::time::timeout(Duration::from_millis(BACKUP_ANSWER_WAIT_MS), done.wait_for(Option::is_some)).await;
    let running = BackupStatus {
        state: "running".into(),
        to: to.clone(),
        record: None,
        last_seq: None,
        files_copied: None,
        bytes_copied: None,
        written_at_ms: None,
    };
    let backed = match finished {
        Err(_) => return Ok((StatusCode::ACCEPTED, Json(running))),
        Ok(Err(_)) => return Err(LedgerError::BackupFailed("the copy stopped without an outcome".into()).into()),
        Ok(Ok(outcome)) => outcome.clone().expect("waited for an outcome")?,
    };
    Ok((
        StatusCode::OK,
        Json(BackupStatus {
            state: "done".into(),
            record: Some(backed.record),
            last_seq: Some(backed.last_seq),
            files_copied: Some(backed.files_copied),
            bytes_copied: Some(backed.bytes_copied),
            written_at_ms: Some(backed.written_at_ms),
            ..running
        }),
    ))
}
