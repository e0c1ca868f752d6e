//! The Tally HTTP service as a library: routes, limits, authentication and metrics around
//! any store that implements `tally_ledger::Ledger`. The `tally serve` command and the
//! tests both build the service from here.

pub mod body;
pub mod error;
pub mod listen;
pub mod routes;

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
use tally_ledger::Ledger;
use tower::ServiceBuilder;
use utoipa::openapi::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use tally_core::limits::{IN_FLIGHT_REQUESTS_MAX, REQUEST_TIMEOUT_MS, WRITE_WAIT_MS};

#[derive(Clone)]
pub struct App {
    pub ledger: Arc<dyn Ledger>,
    pub engine_name: &'static str,
    pub metrics: PrometheusHandle,
    /// When set, every `/v1` route requires `Authorization: Bearer <token>`.
    pub api_token: Option<Arc<str>>,
    /// What the request bodies being read hold, all together.
    pub bodies: Arc<body::BodyBudget>,
    /// Requests served at once, all routes together.
    pub in_flight_max: usize,
    /// How long a write waits for the writer once its body has arrived.
    pub write_wait: Duration,
}

impl App {
    pub fn new(ledger: Arc<dyn Ledger>, engine_name: &'static str) -> App {
        App {
            ledger,
            engine_name,
            metrics: metrics_handle(),
            api_token: None,
            bodies: Arc::default(),
            in_flight_max: IN_FLIGHT_REQUESTS_MAX,
            write_wait: Duration::from_millis(WRITE_WAIT_MS),
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
        .routes(routes!(routes::create_transfers))
        .routes(routes!(routes::get_transfer, routes::renew_hold))
        .routes(routes!(routes::get_leg, routes::renew_leg))
        .routes(routes!(routes::journal))
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
    document
}

async fn authenticate(State(app): State<App>, request: Request, next: Next) -> Response {
    if let Some(token) = &app.api_token {
        let presented = request.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
        // Compare in constant time so the token cannot be guessed byte by byte from timing.
        let matches =
            presented.is_some_and(|p| p.len() == token.len() && p.bytes().zip(token.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0);
        if !matches {
            return ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "missing or wrong bearer token").into_response();
        }
    }
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
    let document = openapi();
    let (v1, _) = api().split_for_parts();
    let v1 = v1.layer(middleware::from_fn_with_state(app.clone(), authenticate));
    let (operations, _) = OpenApiRouter::new().routes(routes!(routes::health)).routes(routes!(routes::metrics)).split_for_parts();
    let routes = v1
        .merge(operations)
        .route("/openapi.json", axum::routing::get(move || async move { axum::Json(document) }))
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
