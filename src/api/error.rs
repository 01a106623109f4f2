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
    /// No credentials where a token is needed, or a token that is not (or
    /// no longer) valid: unknown, revoked, expired, or bound to a
    /// participant the ledger does not hold. Which of these is not said.
    pub const UNAUTHENTICATED: &str = "UNAUTHENTICATED";
    /// Authenticated, but the endpoint is open only to the operator and
    /// auditors.
    pub const FORBIDDEN: &str = "FORBIDDEN";
    /// A submitted checkpoint is not one this log signed (another key, or
    /// another origin).
    pub const BAD_CHECKPOINT: &str = "BAD_CHECKPOINT";
    /// A trusted witness's cosignature does not verify, is dated too far
    /// ahead, or the submission carries none.
    pub const BAD_COSIGNATURE: &str = "BAD_COSIGNATURE";
    /// A cosignature from a key the operator does not trust as a witness.
    pub const UNTRUSTED_WITNESS: &str = "UNTRUSTED_WITNESS";
    /// A checkpoint signed by this log's key that is not this log's tree
    /// at its size: evidence of a fork.
    pub const CHECKPOINT_CONFLICT: &str = "CHECKPOINT_CONFLICT";

    /// Every code above, for the OpenAPI document and the JSON Schemas
    /// (`tests/http/schemas.rs` fails when a code is missing here).
    pub const ALL: &[&str] = &[
        MALFORMED_REQUEST,
        MALFORMED_EVENT,
        BAD_SIGNATURE,
        BAD_RANGE,
        NOT_FOUND,
        METHOD_NOT_ALLOWED,
        BODY_TOO_LARGE,
        BATCH_TOO_LARGE,
        INTERNAL,
        UNAVAILABLE,
        TIMEOUT,
        UNAUTHENTICATED,
        FORBIDDEN,
        BAD_CHECKPOINT,
        BAD_COSIGNATURE,
        UNTRUSTED_WITNESS,
        CHECKPOINT_CONFLICT,
    ];
}

/// A failed request, as the client will see it.
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    body: ErrorBody,
}

/// The JSON body of every error response.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Stable and meant for programs: one of the edge's codes or a rule's
    /// code (`schemas/EVENTS.md`).
    #[schema(schema_with = code_schema)]
    pub code: Cow<'static, str>,
    /// A sentence for people.
    pub message: String,
    /// Structured context (the field, the tree size, ...); `null` when
    /// there is none.
    pub details: Value,
}

/// The schema of [`ErrorBody::code`]: the edge's codes ([`code::ALL`]) are
/// listed; rule codes share their shape.
fn code_schema() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    let edge: &[&str] = code::ALL;
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some("^[A-Z][A-Z0-9_]*$"))
        .description(Some(format!(
            "Stable, machine-readable code: one of the edge's codes ({}) or the \
             code of the business rule that refused the event (422; every rule \
             code is listed in schemas/EVENTS.md).",
            edge.join(", ")
        )))
        .examples(edge.iter().copied())
        .build()
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
