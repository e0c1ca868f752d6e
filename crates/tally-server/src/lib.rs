//! The Tally HTTP service as a library: routes, limits, authentication and metrics around
//! any store that implements `tally_ledger::Ledger`. The `tally serve` command and the
//! tests both build the service from here.

pub mod auth;
pub mod backups;
pub mod body;
pub mod confine;
pub mod console;
pub mod error;
pub mod listen;
pub mod routes;
pub mod stats;
pub mod tls;

use auth::{Caller, Refusal};
use axum::error_handling::HandleErrorLayer;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{BoxError, Router};
use error::ApiError;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tally_ledger::keys::Scope;
use tally_ledger::Ledger;
use tower::ServiceBuilder;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, RefOr, ResponseBuilder};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use tally_core::limits::{IN_FLIGHT_REQUESTS_MAX, JOURNAL_PAGES_AT_ONCE, REQUEST_TIMEOUT_MS, WRITE_WAIT_MS};

#[derive(Clone)]
pub struct App {
    pub ledger: Arc<dyn Ledger>,
    pub engine_name: &'static str,
    pub metrics: PrometheusHandle,
    /// The ledger's API keys; `None` serves everyone (tests of other concerns).
    pub keys: Option<Arc<auth::Keyring>>,
    /// `/healthz` and `/metrics` are served on an address of their own, without a key, and
    /// not here.
    pub operations_elsewhere: bool,
    /// What the request bodies being read hold, all together.
    pub bodies: Arc<body::BodyBudget>,
    /// Requests served at once, all routes together.
    pub in_flight_max: usize,
    /// How long a write waits for the writer once its body has arrived.
    pub write_wait: Duration,
    /// Turns to build a journal page: `JOURNAL_PAGES_AT_ONCE`.
    pub journal_pages: Arc<tokio::sync::Semaphore>,
    /// Backups through the API, and where they may go.
    pub backups: Arc<backups::Backups>,
    /// Which server this is, for `/v1/stats`: its listening address.
    pub node: String,
    /// The writer's progress, sampled every second while the service runs.
    pub stats: Arc<stats::Samples>,
}

impl App {
    pub fn new(ledger: Arc<dyn Ledger>, engine_name: &'static str) -> App {
        App {
            ledger,
            engine_name,
            metrics: metrics_handle(),
            keys: None,
            operations_elsewhere: false,
            bodies: Arc::default(),
            in_flight_max: IN_FLIGHT_REQUESTS_MAX,
            write_wait: Duration::from_millis(WRITE_WAIT_MS),
            journal_pages: Arc::new(tokio::sync::Semaphore::new(JOURNAL_PAGES_AT_ONCE)),
            backups: Arc::default(),
            node: "local".to_owned(),
            stats: Arc::default(),
        }
    }
}

/// The process-wide metrics recorder, installed once.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let seconds = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];
            let sizes = [1.0, 8.0, 64.0, 512.0, 4096.0, 8190.0, 32768.0, 131072.0];
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &seconds)
                .and_then(|b| b.set_buckets_for_metric(Matcher::Suffix("_events".into()), &sizes))
                .expect("bucket lists are not empty")
                .build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (several servers in one test process).
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

fn api() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(routes::create_asset))
        .routes(routes!(routes::create_accounts, routes::list_accounts))
        .routes(routes!(routes::get_account, routes::update_account))
        .routes(routes!(routes::account_transfers))
        .routes(routes!(routes::account_history))
        .routes(routes!(routes::list_holds))
        .routes(routes!(routes::stats))
        .routes(routes!(routes::create_transfers))
        .routes(routes!(routes::get_transfer, routes::renew_hold))
        .routes(routes!(routes::get_leg, routes::renew_leg))
        .routes(routes!(routes::journal))
        .routes(routes!(routes::journal_position))
        .routes(routes!(routes::whoami))
        .routes(routes!(routes::create_key, routes::list_keys))
        .routes(routes!(routes::revoke_key))
        .routes(routes!(routes::backup))
}

/// The OpenAPI document, as committed in `docs/openapi.json`.
pub fn openapi() -> OpenApi {
    let (_, mut document) = api().routes(routes!(routes::health)).routes(routes!(routes::metrics)).split_for_parts();
    document.info.title = "Tally".into();
    document.info.version = env!("CARGO_PKG_VERSION").into();
    document.info.description =
        Some("A ledger for money and limited resources that stays correct under concurrency. Amounts are decimal strings.".into());
    document.info.license = None;
    document.info.contact = None;
    let bearer = HttpBuilder::new().scheme(HttpAuthScheme::Bearer).description(Some("An API key: tally_<id>_<secret>")).build();
    document.components.get_or_insert_with(Default::default).add_security_scheme("api_key", SecurityScheme::Http(bearer));
    document.security = Some(vec![SecurityRequirement::new("api_key", Vec::<String>::new())]);
    document_refusals(&mut document);
    document
}

/// The scope a request needs: admin for keys, backups and assets, write for any other
/// change, read for the rest.
fn needed_scope(method: &Method, path: &str) -> Scope {
    if path.starts_with("/v1/keys") || path.starts_with("/v1/backups") || (path.starts_with("/v1/assets") && method != Method::GET) {
        Scope::Admin
    } else if method == Method::GET || method == Method::HEAD {
        Scope::Read
    } else {
        Scope::Write
    }
}

/// Every operation but the document itself may be refused before it runs: no valid key
/// (401), a key without the scope or outside its accounts (403), a key over its rate (429).
fn document_refusals(document: &mut OpenApi) {
    let refusal = |description: &str| {
        let content = ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build();
        RefOr::T(ResponseBuilder::new().description(description).content("application/json", content).build())
    };
    for item in document.paths.paths.values_mut() {
        let operations = [&mut item.get, &mut item.post, &mut item.patch, &mut item.delete, &mut item.put, &mut item.head];
        for operation in operations.into_iter().flatten() {
            let responses = &mut operation.responses.responses;
            responses.entry("401".into()).or_insert_with(|| refusal("No valid API key (the ledger has keys)"));
            responses.entry("403".into()).or_insert_with(|| refusal("The key's scope or accounts do not allow this"));
            responses.entry("429".into()).or_insert_with(|| refusal("The key made too many requests; see Retry-After"));
        }
    }
}

async fn authenticate(State(app): State<App>, mut request: Request, next: Next) -> Response {
    let caller = match &app.keys {
        None => Caller::Open,
        Some(keyring) => match keyring.caller(request.headers()) {
            Ok(caller) => caller,
            Err(Refusal::Unauthorized) => return auth::unauthorized().into_response(),
            Err(Refusal::RateLimited { retry_after }) => {
                return ApiError {
                    retry_after: Some(retry_after),
                    ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", "this key made more requests per second than allowed")
                }
                .into_response()
            }
        },
    };
    let path = request.uri().path();
    let needed = needed_scope(request.method(), path);
    if caller.scope() < needed {
        return auth::forbidden(needed, caller.scope()).into_response();
    }
    // Health, metrics and keys concern the whole ledger: not for a key confined to some of
    // it (an admin key is never confined; this holds whatever the store says).
    // The writer's progress and the journal's timestamps are the whole ledger's too.
    let whole_ledger = matches!(path, "/v1/stats" | "/v1/journal/position");
    if caller.is_confined() && (!path.starts_with("/v1/") || whole_ledger || needed == Scope::Admin) {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "a key confined to some accounts cannot use what concerns the whole ledger",
        )
        .into_response();
    }
    request.extensions_mut().insert(caller);
    next.run(request).await
}

/// Bodies are read as sent: a compressed one would be misread as bad JSON (or, worse, as
/// other JSON), so any content coding but `identity` is refused before the body is read.
async fn refuse_content_encoding(request: Request, next: Next) -> Response {
    let encoding = request.headers().get(header::CONTENT_ENCODING).map(|value| value.to_str().unwrap_or("").trim().to_owned());
    match encoding {
        Some(encoding) if !encoding.eq_ignore_ascii_case("identity") => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_encoding",
            format!("request bodies are read as sent; Content-Encoding {encoding:?} is not supported"),
        )
        .into_response(),
        _ => next.run(request).await,
    }
}

async fn record_metrics(request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    let labels = [("route", route), ("method", method), ("status", response.status().as_u16().to_string())];
    metrics::histogram!("tally_http_request_seconds", &labels).record(started.elapsed().as_secs_f64());
    response
}

async fn overloaded(method: Method, error: BoxError) -> ApiError {
    if error.is::<tower::timeout::error::Elapsed>() {
        // Writes meet their own deadlines first (`WRITE_WAIT_MS`), so this is a read; should
        // a write ever get here, it must not be told that nothing happened.
        if method == Method::GET || method == Method::HEAD {
            return ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "the request took too long");
        }
        return ApiError::from(tally_ledger::LedgerError::OutcomeUnknown("the request took too long".into()));
    }
    ApiError {
        retry_after: Some(1),
        ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "too many requests in flight; retry later")
    }
}

async fn fallback() -> ApiError {
    ApiError::not_found("no such route; see /openapi.json")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "this route does not take that method; see /openapi.json")
}

/// The whole service: every route behind one set of limits. The limits wrap the router as a
/// whole (a layer on the router would give each route a limit of its own).
pub fn service(app: App) -> Router {
    let in_flight_max = app.in_flight_max;
    if tokio::runtime::Handle::try_current().is_ok() {
        stats::start(&app.stats, &app.ledger);
    }
    let document = openapi();
    let (mut guarded, _) = api().split_for_parts();
    if !app.operations_elsewhere {
        guarded = guarded.merge(operations());
    }
    let routes = guarded
        .layer(middleware::from_fn_with_state(app.clone(), authenticate))
        .route("/openapi.json", axum::routing::get(move || async move { axum::Json(document) }))
        .merge(console::routes())
        .fallback(fallback)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn(refuse_content_encoding))
        .route_layer(middleware::from_fn(record_metrics))
        .with_state(app);
    let limited = ServiceBuilder::new()
        .layer(HandleErrorLayer::new(overloaded))
        .load_shed()
        .concurrency_limit(in_flight_max)
        .timeout(Duration::from_millis(REQUEST_TIMEOUT_MS))
        .service(routes);
    Router::new().fallback_service(limited)
}

fn operations() -> Router<App> {
    let (operations, _) = OpenApiRouter::new().routes(routes!(routes::health)).routes(routes!(routes::metrics)).split_for_parts();
    operations
}

/// `/healthz` and `/metrics` alone, without keys, for an address of their own (an operator's
/// network, a balancer's health checks).
pub fn operations_service(app: App) -> Router {
    operations().fallback(fallback).with_state(app)
}
