//! Reading requests: path segments whose failures answer with the error object like every
//! other, and bodies within bounds: each body may hold at most `REQUEST_BODY_BYTES_MAX`
//! bytes and take at most `BODY_READ_TIMEOUT_MS` to arrive, and all bodies arriving at once
//! share one budget, `BODY_BYTES_BUFFERED_MAX`. Memory is counted as it is allocated, so a
//! client that announces a large body and trickles it in holds only what it has sent.

use crate::error::ApiError;
use crate::App;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use http_body_util::BodyExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tally_core::limits::{BODY_BYTES_BUFFERED_MAX, BODY_READ_TIMEOUT_MS, REQUEST_BODY_BYTES_MAX};

/// The bytes all bodies being read hold together, and how many they may.
#[derive(Debug)]
pub struct BodyBudget {
    held: AtomicUsize,
    max: usize,
}

impl Default for BodyBudget {
    fn default() -> BodyBudget {
        BodyBudget::new(BODY_BYTES_BUFFERED_MAX)
    }
}

impl BodyBudget {
    pub fn new(max: usize) -> BodyBudget {
        BodyBudget { held: AtomicUsize::new(0), max }
    }

    pub fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }
}

/// Bytes taken from the budget, given back when dropped.
struct Reservation {
    budget: Arc<BodyBudget>,
    bytes: usize,
}

impl Reservation {
    /// Takes the budget up to `bytes` in all, or fails leaving the reservation as it was.
    fn grow_to(&mut self, bytes: usize) -> bool {
        let more = bytes.saturating_sub(self.bytes);
        let taken = self
            .budget
            .held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| held.checked_add(more).filter(|&total| total <= self.budget.max));
        if taken.is_ok() {
            self.bytes += more;
        }
        taken.is_ok()
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.held.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

/// A request body read whole, holding its share of the budget until the handler is done.
pub struct Body {
    pub bytes: Bytes,
    _held: Reservation,
}

fn too_large() -> ApiError {
    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", format!("request bodies are limited to {REQUEST_BODY_BYTES_MAX} bytes"))
}

impl FromRequest<App> for Body {
    type Rejection = ApiError;

    async fn from_request(request: Request, app: &App) -> Result<Body, ApiError> {
        let announced = request.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
        if announced.is_some_and(|length| length > REQUEST_BODY_BYTES_MAX as u64) {
            return Err(too_large());
        }
        let mut held = Reservation { budget: app.bodies.clone(), bytes: 0 };
        let mut bytes = Vec::new();
        let mut body = request.into_body();
        let deadline = tokio::time::Instant::now() + Duration::from_millis(BODY_READ_TIMEOUT_MS);
        loop {
            let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
                Err(_) => {
                    return Err(ApiError::new(
                        StatusCode::REQUEST_TIMEOUT,
                        "body_timeout",
                        format!("the request body did not arrive within {BODY_READ_TIMEOUT_MS} ms; nothing was applied"),
                    ))
                }
                Ok(None) => break,
                Ok(Some(Err(error))) => return Err(ApiError::invalid("body", format!("the body could not be read: {error}"))),
                Ok(Some(Ok(frame))) => frame,
            };
            let Ok(data) = frame.into_data() else { continue };
            let needed = bytes.len() + data.len();
            if needed > REQUEST_BODY_BYTES_MAX {
                return Err(too_large());
            }
            if needed > bytes.capacity() {
                // Double as a Vec would, but take the budget before the memory.
                let capacity = needed.max(bytes.capacity() * 2).min(REQUEST_BODY_BYTES_MAX);
                if !held.grow_to(capacity) {
                    return Err(ApiError {
                        retry_after: Some(1),
                        ..ApiError::new(
                            StatusCode::SERVICE_UNAVAILABLE,
                            "unavailable",
                            "too many request bodies are arriving at once; nothing was applied, retry later",
                        )
                    });
                }
                bytes.reserve_exact(capacity - bytes.len());
            }
            bytes.extend_from_slice(&data);
        }
        Ok(Body { bytes: bytes.into(), _held: held })
    }
}

/// The route's path segments, decoded: a segment that is not UTF-8 once percent-decoded is a
/// 400 naming the path, with the usual error object.
pub struct Segments<T>(pub T);

impl<T: serde::de::DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Segments<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Segments<T>, ApiError> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(segments)) => Ok(Segments(segments)),
            Err(rejection) => Err(ApiError::invalid("path", rejection.body_text())),
        }
    }
}
