//! The write API: `POST /v1/events` and `POST /v1/events/batch`.
//!
//! Bodies carry the canonical event bytes, the signing key and the
//! signature, never the event as JSON: the signature covers the bytes
//! (`schemas/ENCODING.md`), and JSON text is never signed or hashed.
//! Parsing, decoding and the strict signature check run on a blocking
//! thread (`Ledger::submit`); the handler then awaits the writer's answer,
//! which comes only once the entry is durable.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::AppState;
use super::error::{ApiError, ErrorBody, code};
use crate::crypto::{PublicKey, Signature};
use crate::ledger::{Pending, Receipt};
use crate::model::SignedEvent;

/// How the byte fields of a signed event are written.
#[derive(Debug, Clone, Copy, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
enum Encoding {
    /// Lowercase or uppercase hex digits.
    #[default]
    Hex,
    /// Standard base64 (RFC 4648 section 4) with padding.
    Base64,
}

impl Encoding {
    fn name(self) -> &'static str {
        match self {
            Encoding::Hex => "hex",
            Encoding::Base64 => "base64",
        }
    }
}

/// One signed event as JSON. The encoding is named rather than guessed,
/// since a string of hex digits is also valid base64.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct EventRequest {
    /// The signer's 32-byte Ed25519 public key.
    key: String,
    /// The 64-byte Ed25519 signature over the event bytes.
    signature: String,
    /// The canonical event bytes (`schemas/ENCODING.md`).
    event: String,
    /// How `key`, `signature` and `event` are written; hex when absent.
    #[serde(default)]
    encoding: Encoding,
}

/// Signed events submitted in order, each accepted or refused on its own.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct BatchRequest {
    /// Read one by one, so a bad item is refused on its own.
    #[schema(value_type = Vec<EventRequest>)]
    events: Vec<serde_json::Value>,
}

/// The durable receipt of an append, as JSON.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct ReceiptBody {
    index: u64,
    /// RFC 9162 leaf hash of the entry, hex.
    entry_hash: String,
    tree_size: u64,
    /// The C2SP checkpoint note covering the entry.
    checkpoint: String,
    /// True when the same signed event was already recorded: this is the
    /// original entry.
    replay: bool,
}

impl From<Receipt> for ReceiptBody {
    fn from(r: Receipt) -> Self {
        Self {
            index: r.index,
            entry_hash: r.entry_hash.to_hex(),
            tree_size: r.tree_size,
            checkpoint: r.checkpoint,
            replay: r.replay,
        }
    }
}

/// 201 for a new entry, 200 for a replay of a recorded one.
fn receipt_status(receipt: &Receipt) -> StatusCode {
    if receipt.replay {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    }
}

/// One item of a batch answer: the status the single-event endpoint would
/// have answered with, and its receipt or its error.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct BatchItem {
    status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    receipt: Option<ReceiptBody>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorBody>,
}

impl BatchItem {
    fn from_outcome(outcome: Result<Receipt, ApiError>) -> Self {
        match outcome {
            Ok(receipt) => Self {
                status: receipt_status(&receipt).as_u16(),
                receipt: Some(receipt.into()),
                error: None,
            },
            Err(e) => Self {
                status: e.status().as_u16(),
                receipt: None,
                error: Some(e.body().clone()),
            },
        }
    }
}

/// One result per submitted event, in order.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct BatchBody {
    results: Vec<BatchItem>,
}

/// Maps a failure to read the body (most often the size limit) to JSON.
fn body_rejection(rejection: BytesRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            code::BODY_TOO_LARGE,
            "the request body is larger than this endpoint accepts",
        )
    } else {
        ApiError::malformed(format!("cannot read the request body: {rejection}"))
    }
}

fn decode_field(field: &'static str, text: &str, encoding: Encoding) -> Result<Vec<u8>, ApiError> {
    let decoded = match encoding {
        Encoding::Hex => hex::decode(text).map_err(|e| e.to_string()),
        Encoding::Base64 => base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|e| e.to_string()),
    };
    decoded.map_err(|reason| {
        ApiError::malformed(format!(
            "{field} is not valid {}: {reason}",
            encoding.name()
        ))
        .with_details(json!({ "field": field }))
    })
}

impl EventRequest {
    fn into_signed(self) -> Result<SignedEvent, ApiError> {
        let key = decode_field("key", &self.key, self.encoding)?;
        let signature = decode_field("signature", &self.signature, self.encoding)?;
        let event = decode_field("event", &self.event, self.encoding)?;
        let key = PublicKey::from_slice(&key).map_err(|e| {
            ApiError::malformed(format!("key: {e}")).with_details(json!({ "field": "key" }))
        })?;
        let signature = Signature::from_slice(&signature).map_err(|e| {
            ApiError::malformed(format!("signature: {e}"))
                .with_details(json!({ "field": "signature" }))
        })?;
        Ok(SignedEvent {
            key,
            signature,
            event,
        })
    }
}

fn parse_json<'a, T: Deserialize<'a>>(body: &'a [u8], what: &str) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::malformed(format!("the body is not {what}: {e}")))
}

/// `POST /v1/events`: one signed event.
#[utoipa::path(
    post,
    path = "/v1/events",
    tag = "write",
    request_body = EventRequest,
    responses(
        (status = 201, description = "Appended and durable.", body = ReceiptBody),
        (status = 200, description = "Already recorded: the original entry (`replay`).", body = ReceiptBody),
        (status = 400, description = "`MALFORMED_REQUEST`, `MALFORMED_EVENT` or `BAD_SIGNATURE`.", body = ErrorBody),
        (status = 413, description = "`BODY_TOO_LARGE`.", body = ErrorBody),
        (status = 422, description = "A business rule refused the event; nothing changed.", body = ErrorBody),
    )
)]
pub(super) async fn post_event(
    State(app): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let ledger = app.ledger.clone();
    let outcome = async move {
        let body = body.map_err(body_rejection)?;
        let pending = tokio::task::spawn_blocking(move || -> Result<Pending, ApiError> {
            let request: EventRequest = parse_json(&body, "a signed event")?;
            Ok(ledger.submit(request.into_signed()?)?)
        })
        .await??;
        Ok::<_, ApiError>(pending.into_future().await?)
    }
    .await;
    app.metrics.record_append(&outcome);
    let receipt = outcome?;
    Ok((receipt_status(&receipt), Json(ReceiptBody::from(receipt))).into_response())
}

/// `POST /v1/events/batch`: many signed events, submitted in the order
/// given (so an event may depend on an earlier one of the same batch),
/// each accepted or refused on its own.
#[utoipa::path(
    post,
    path = "/v1/events/batch",
    tag = "write",
    request_body = BatchRequest,
    responses(
        (status = 200, description = "One result per event, in order.", body = BatchBody),
        (status = 400, description = "`MALFORMED_REQUEST`: the batch itself cannot be read.", body = ErrorBody),
        (status = 413, description = "`BODY_TOO_LARGE` or `BATCH_TOO_LARGE`; nothing was submitted.", body = ErrorBody),
    )
)]
pub(super) async fn post_batch(
    State(app): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(body_rejection)?;
    let ledger = app.ledger.clone();
    let max = app.limits.max_batch_events;
    let submitted = tokio::task::spawn_blocking(
        move || -> Result<Vec<Result<Pending, ApiError>>, ApiError> {
            let batch: BatchRequest = parse_json(&body, "a batch of signed events")?;
            if batch.events.len() > max {
                return Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    code::BATCH_TOO_LARGE,
                    format!(
                        "a batch holds at most {max} events, this one has {}",
                        batch.events.len()
                    ),
                )
                .with_details(json!({ "max_events": max, "events": batch.events.len() })));
            }
            Ok(batch
                .events
                .into_iter()
                .map(|item| {
                    let request: EventRequest = serde_json::from_value(item).map_err(|e| {
                        ApiError::malformed(format!("the item is not a signed event: {e}"))
                    })?;
                    Ok(ledger.submit(request.into_signed()?)?)
                })
                .collect())
        },
    )
    .await??;
    app.metrics.record_batch(submitted.len());
    let mut results = Vec::with_capacity(submitted.len());
    for item in submitted {
        let outcome = match item {
            Ok(pending) => pending.into_future().await.map_err(ApiError::from),
            Err(e) => Err(e),
        };
        app.metrics.record_append(&outcome);
        results.push(BatchItem::from_outcome(outcome));
    }
    Ok(Json(BatchBody { results }).into_response())
}
