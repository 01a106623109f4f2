//! The API's one error type: every failure becomes a JSON body
//! `{"code", "message", "details"}` with a stable machine-readable code
//! and an HTTP status chosen by who is at fault.
//!
//! Internals (paths, storage errors, integrity reasons) are logged here and
//! never put in a response: a client learns only that the server failed.

use std::borrow::Cow;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;

use crate::ledger::{AppendError, LedgerError};
use crate::model::StateError;

/// Stable codes of failures that are not rule refusals (those use the
/// rule's own code, `rules::RuleCode`). Clients match on these strings.
pub mod code {
    /// The request body, a path segment or a query parameter is not what
    /// the endpoint takes.
    pub const MALFORMED_REQUEST: &str = "MALFORMED_REQUEST";
    /// The event bytes are not a canonical oretrail event.
    pub const MALFORMED_EVENT: &str = "MALFORMED_EVENT";
    /// The signature does not verify under the key given.
    pub const BAD_SIGNATURE: &str = "BAD_SIGNATURE";
    /// An entry range or tree size outside the committed tree.
    pub const BAD_RANGE: &str = "BAD_RANGE";
    pub const NOT_FOUND: &str = "NOT_FOUND";
    pub const METHOD_NOT_ALLOWED: &str = "METHOD_NOT_ALLOWED";
    pub const BODY_TOO_LARGE: &str = "BODY_TOO_LARGE";
    pub const BATCH_TOO_LARGE: &str = "BATCH_TOO_LARGE";
    pub const INTERNAL: &str = "INTERNAL";
    /// The ledger is not accepting or answering requests (its writer
    /// stopped, or it is closing).
    pub const UNAVAILABLE: &str = "UNAVAILABLE";
    /// The request took longer than the server's time limit.
    pub const TIMEOUT: &str = "TIMEOUT";
}

/// A failed request, as the client will see it.
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    body: ErrorBody,
}

/// The JSON body of every error response.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorBody {
    pub code: Cow<'static, str>,
    pub message: String,
    /// Structured context (the field, the tree size, ...); `null` when
    /// there is none.
    pub details: Value,
}

impl ApiError {
    pub fn new(
        status: StatusCode,
        code: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            status,
            body: ErrorBody {
                code: code.into(),
                message: message.into(),
                details: Value::Null,
            },
        }
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.body.details = details;
        self
    }

    pub fn malformed(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code::MALFORMED_REQUEST, message)
    }

    pub fn bad_range(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code::BAD_RANGE, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code::NOT_FOUND, message)
    }

    /// A server-side failure: logged in full, answered without detail.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            code::INTERNAL,
            "internal error; the server's log has the details",
        )
    }

    /// The ledger cannot take or answer requests now: logged, answered
    /// without the reason.
    pub fn unavailable(cause: &dyn std::fmt::Display) -> Self {
        tracing::warn!(error = %cause, "ledger unavailable");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            code::UNAVAILABLE,
            "the ledger is unavailable; try again later",
        )
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn body(&self) -> &ErrorBody {
        &self.body
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

impl From<AppendError> for ApiError {
    fn from(e: AppendError) -> Self {
        match e {
            AppendError::Malformed(e) => Self::new(
                StatusCode::BAD_REQUEST,
                code::MALFORMED_EVENT,
                format!("the event bytes are not a canonical oretrail event: {e}"),
            ),
            AppendError::BadSignature(key) => Self::new(
                StatusCode::BAD_REQUEST,
                code::BAD_SIGNATURE,
                format!("the signature does not verify under key {key}"),
            ),
            AppendError::Refused(refusal) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                refusal.code.as_str(),
                refusal.message,
            ),
            AppendError::Unavailable(reason) => Self::unavailable(&reason),
        }
    }
}

impl From<LedgerError> for ApiError {
    fn from(e: LedgerError) -> Self {
        match e {
            LedgerError::NoSuchEntry { index, size } => {
                Self::not_found(format!("entry {index} does not exist"))
                    .with_details(serde_json::json!({ "index": index, "tree_size": size }))
            }
            LedgerError::WriterStopped(_) => Self::unavailable(&e),
            other => Self::internal(&other),
        }
    }
}

impl From<StateError> for ApiError {
    fn from(e: StateError) -> Self {
        Self::internal(&e)
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(e: tokio::task::JoinError) -> Self {
        Self::internal(&e)
    }
}
