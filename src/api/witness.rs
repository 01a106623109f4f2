//! The witness API: witnesses submit cosignatures of the log's
//! checkpoints (`POST /v1/checkpoint/cosignatures`), and the log serves
//! them with its checkpoints: `GET /v1/checkpoint` carries the cosignature
//! lines of every trusted witness that cosigned the current checkpoint,
//! and `GET /v1/checkpoint/{size}` serves an older cosigned checkpoint
//! from the book (`witness::CosignatureBook`: each witness's last 64
//! sizes).
//!
//! Only witnesses the operator trusts (`DATA/witnesses`, managed with
//! `oretrail witness trust`) are accepted, and only for checkpoints the
//! log signed of its own tree. All of it is public, like the rest of the
//! log API: a cosignature is checked by its signature, not by who sends
//! it. Files are read and written on blocking threads.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::AppState;
use super::error::{ApiError, ErrorBody, code};
use super::log::path_rejection;
use crate::merkle::checkpoint::{self, Note, parse_verifier_key};
use crate::witness::{Recorded, SubmissionError, WitnessDesk, check_submission};

/// Largest body `POST /v1/checkpoint/cosignatures` takes: a checkpoint
/// note with its log signature and a few cosignature lines is under 1 KiB.
pub const MAX_COSIGNATURE_BODY: usize = 64 << 10;

/// A witness's cosignature(s) of one checkpoint.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CosignatureRequest {
    /// The checkpoint note as the log signed it (`GET /v1/checkpoint`),
    /// with the witness's C2SP tlog-cosignature/v1 line(s) appended after
    /// the log's signature line. Every line besides the log's must be from
    /// a witness the operator trusts.
    checkpoint: String,
}

/// What recording a cosignature did.
#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
enum RecordedBody {
    /// The witness's first cosignature of this checkpoint.
    New,
    /// Newer than the one kept for this witness and size, which it replaced.
    Newer,
    /// The one kept is as new or newer; nothing changed.
    Kept,
}

impl From<Recorded> for RecordedBody {
    fn from(r: Recorded) -> Self {
        match r {
            Recorded::New => RecordedBody::New,
            Recorded::Newer => RecordedBody::Newer,
            Recorded::Kept => RecordedBody::Kept,
        }
    }
}

/// One accepted cosignature.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct CosignatureItem {
    /// The witness's key name.
    witness: String,
    /// The witness's key id (cosignature/v1), 8 hex digits.
    key_id: String,
    /// When the witness cosigned, POSIX seconds.
    timestamp: u64,
    recorded: RecordedBody,
}

/// The answer to an accepted submission: the checkpoint and its
/// cosignatures, now durable.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct CosignatureReceipt {
    origin: String,
    tree_size: u64,
    /// The root hash, standard base64.
    root_hash: String,
    cosignatures: Vec<CosignatureItem>,
}

/// The time the log checks cosignature timestamps against, POSIX seconds.
fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl From<SubmissionError> for ApiError {
    fn from(e: SubmissionError) -> Self {
        let message = e.to_string();
        match e {
            SubmissionError::Malformed(_) => ApiError::malformed(message),
            SubmissionError::NotSignedByLog(_) | SubmissionError::WrongOrigin { .. } => {
                ApiError::new(StatusCode::BAD_REQUEST, code::BAD_CHECKPOINT, message)
            }
            SubmissionError::NoCosignature => {
                ApiError::new(StatusCode::BAD_REQUEST, code::BAD_COSIGNATURE, message)
            }
            SubmissionError::BadCosignature { ref name, .. }
            | SubmissionError::FromTheFuture { ref name, .. } => {
                let details = json!({ "witness": name });
                ApiError::new(StatusCode::BAD_REQUEST, code::BAD_COSIGNATURE, message)
                    .with_details(details)
            }
            SubmissionError::Untrusted { name, key_id } => {
                ApiError::new(StatusCode::FORBIDDEN, code::UNTRUSTED_WITNESS, message)
                    .with_details(json!({ "witness": name, "key_id": key_id }))
            }
            SubmissionError::UnknownSize { size, tree_size } => ApiError::not_found(message)
                .with_details(json!({ "size": size, "tree_size": tree_size })),
            SubmissionError::Conflict { size, root, ours } => {
                ApiError::new(StatusCode::CONFLICT, code::CHECKPOINT_CONFLICT, message)
                    .with_details(json!({ "size": size, "root_hash": root, "log_root_hash": ours }))
            }
        }
    }
}

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

/// `POST /v1/checkpoint/cosignatures`: a trusted witness's cosignature of
/// a checkpoint of this log.
#[utoipa::path(
    post,
    path = "/v1/checkpoint/cosignatures",
    tag = "log",
    request_body = CosignatureRequest,
    responses(
        (status = 200, description = "Verified and durable: served from now on with that checkpoint.", body = CosignatureReceipt),
        (status = 400, description = "`MALFORMED_REQUEST` (not a signed note), `BAD_CHECKPOINT` (not signed by this log's key, or another origin) or `BAD_COSIGNATURE` (a trusted witness's line does not verify, is dated more than 300 s ahead, or there is none).", body = ErrorBody),
        (status = 403, description = "`UNTRUSTED_WITNESS`: a line from a key the operator does not trust (`oretrail witness trust`).", body = ErrorBody),
        (status = 404, description = "`NOT_FOUND`: the log has not reached that size.", body = ErrorBody),
        (status = 409, description = "`CHECKPOINT_CONFLICT`: signed by this log's key, but not this log's tree at that size (a fork).", body = ErrorBody),
        (status = 413, description = "`BODY_TOO_LARGE`.", body = ErrorBody),
    )
)]
pub(super) async fn post_cosignatures(
    State(app): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<CosignatureReceipt>, ApiError> {
    let body = body.map_err(body_rejection)?;
    let ledger = app.ledger.clone();
    let desk = app.witnesses.clone();
    let key_line = app.key_line.clone();
    tokio::task::spawn_blocking(move || {
        let request: CosignatureRequest = serde_json::from_slice(&body).map_err(|e| {
            ApiError::malformed(format!("the body is not a cosignature request: {e}"))
        })?;
        let log = key_line
            .as_deref()
            .ok_or_else(|| ApiError::unavailable(&"the ledger has no log key line"))
            .and_then(|line| parse_verifier_key(line).map_err(|e| ApiError::internal(&e)))?;
        let trusted = desk.trusted().map_err(|e| ApiError::internal(&e))?;
        let submission = check_submission(&request.checkpoint, &log, &trusted, now_secs())?;
        submission.check_tree(ledger.size(), |size| ledger.root_at(size))??;
        let recorded = desk
            .record(&submission)
            .map_err(|e| ApiError::internal(&e))?;
        let checkpoint = submission.checkpoint();
        Ok(Json(CosignatureReceipt {
            origin: checkpoint.origin().to_owned(),
            tree_size: checkpoint.size(),
            root_hash: STANDARD.encode(checkpoint.root()),
            cosignatures: submission
                .cosignatures()
                .iter()
                .zip(recorded)
                .map(|(c, r)| CosignatureItem {
                    witness: c.line.name().to_owned(),
                    key_id: hex::encode(c.line.key_id()),
                    timestamp: c.timestamp,
                    recorded: r.into(),
                })
                .collect(),
        }))
    })
    .await?
}

/// `note` with the cosignature lines the desk holds for its checkpoint.
/// Blocking.
fn with_cosignatures(desk: &WitnessDesk, note: &str) -> Result<String, String> {
    let mut note = Note::parse(note).map_err(|e| e.to_string())?;
    let checkpoint = checkpoint::parse_body(note.body()).map_err(|e| e.to_string())?;
    let lines = desk
        .lines(checkpoint.size(), checkpoint.root())
        .map_err(|e| e.to_string())?;
    for line in lines {
        note.add_signature(line).map_err(|e| e.to_string())?;
    }
    Ok(note.to_string())
}

/// The latest checkpoint note with the trusted witnesses' cosignatures of
/// it, for `GET /v1/checkpoint`. When the witness files cannot be read,
/// the log's own note is served (and the trouble logged): the checkpoint
/// stays available whatever happens to the cosignatures.
pub(super) async fn latest_cosigned(app: &AppState) -> String {
    let note = app.ledger.checkpoint();
    let desk = app.witnesses.clone();
    let plain = note.clone();
    let cosigned = tokio::task::spawn_blocking(move || with_cosignatures(&desk, &note))
        .await
        .map_err(|e| e.to_string())
        .and_then(|text| text);
    cosigned.unwrap_or_else(|error| {
        tracing::error!(%error, "serving the checkpoint without cosignatures");
        plain.to_string()
    })
}

/// `GET /v1/checkpoint/{size}`: the checkpoint of that size with its
/// witnesses' cosignatures.
#[utoipa::path(
    get,
    path = "/v1/checkpoint/{size}",
    tag = "log",
    params(("size" = u64, Path, description = "The tree size of the checkpoint.")),
    responses(
        (status = 200, description = "The C2SP checkpoint note of that size as the log signed it, with the cosignature line of every trusted witness that cosigned it. The current size is always served; an older one while the book keeps a cosignature of it (each witness's last 64 sizes).", content_type = "text/plain", body = String),
        (status = 400, description = "`MALFORMED_REQUEST`: the size is not a number.", body = ErrorBody),
        (status = 404, description = "`NOT_FOUND`: the log has not reached that size, or no cosigned checkpoint of it is kept.", body = ErrorBody),
    )
)]
pub(super) async fn checkpoint_at(
    State(app): State<AppState>,
    size: Result<Path<u64>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(size) = size.map_err(path_rejection)?;
    let current = app.ledger.size();
    if size > current {
        return Err(ApiError::not_found(format!(
            "the log has no checkpoint of size {size}; it holds {current} entries"
        ))
        .with_details(json!({ "size": size, "tree_size": current })));
    }
    let latest = latest_cosigned(&app).await;
    let text = if checkpoint_size(&latest) == Some(size) {
        Some(latest)
    } else {
        let desk = app.witnesses.clone();
        tokio::task::spawn_blocking(move || desk.note(size))
            .await?
            .map_err(|e| ApiError::internal(&e))?
    };
    let text = text.ok_or_else(|| {
        ApiError::not_found(format!(
            "no cosigned checkpoint of size {size} is kept (the current size is {current})"
        ))
        .with_details(json!({ "size": size, "tree_size": current }))
    })?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response())
}

fn checkpoint_size(note: &str) -> Option<u64> {
    let note = Note::parse(note).ok()?;
    checkpoint::parse_body(note.body()).ok().map(|c| c.size())
}
