//! Every failure the API reports, as `{"error": {"code", "message", "field"}}` with the
//! right status. A request that fails here has applied nothing, except one answered 504
//! `outcome_unknown`: the store had it when something went wrong, and it may be applied.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use tally_api::{ErrorBody, ErrorDetail, FieldError};
use tally_ledger::LedgerError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
    /// Seconds, for answers that invite a retry.
    pub retry_after: Option<u32>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, code, message: message.into(), field: None, retry_after: None }
    }

    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError { field: Some(field.into()), ..ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", message) }
    }

    pub fn not_found(what: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", what)
    }
}

impl From<FieldError> for ApiError {
    fn from(error: FieldError) -> ApiError {
        ApiError::invalid(error.field, error.message)
    }
}

impl From<LedgerError> for ApiError {
    fn from(error: LedgerError) -> ApiError {
        let message = error.to_string();
        match error {
            LedgerError::QueueFull => {
                ApiError { retry_after: Some(1), ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "queue_full", message) }
            }
            LedgerError::AsOfAhead { .. } => {
                ApiError { field: Some("as_of".into()), ..ApiError::new(StatusCode::BAD_REQUEST, "as_of_ahead", message) }
            }
            LedgerError::ShuttingDown | LedgerError::Unavailable(_) => {
                ApiError { retry_after: Some(1), ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message) }
            }
            LedgerError::Failed(_) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message),
            LedgerError::Withdrawn => {
                ApiError { retry_after: Some(1), ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message) }
            }
            // Not a 503: a 503 promises nothing was applied, and this one may have been.
            LedgerError::OutcomeUnknown(_) => ApiError::new(StatusCode::GATEWAY_TIMEOUT, "outcome_unknown", message),
            LedgerError::Unsupported(_) => ApiError::new(StatusCode::NOT_IMPLEMENTED, "unsupported", message),
            LedgerError::BackupRefused(_) => {
                ApiError { field: Some("to".into()), ..ApiError::new(StatusCode::CONFLICT, "backup_refused", message) }
            }
            LedgerError::BackupFailed(_) => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "backup_failed", message),
        }
    }
}

impl ApiError {
    /// The error object, as bytes.
    pub fn body(self) -> Vec<u8> {
        serde_json::to_vec(&self.detail()).expect("wire types always serialize")
    }

    fn detail(self) -> ErrorBody {
        ErrorBody { error: ErrorDetail { code: self.code.to_owned(), message: self.message, field: self.field } }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, retry_after) = (self.status, self.retry_after);
        let mut response = (status, Json(self.detail())).into_response();
        if let Some(seconds) = retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, seconds.into());
        }
        response
    }
}
