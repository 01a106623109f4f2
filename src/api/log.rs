//! The log API: checkpoint, verifier key, entries and RFC 9162 proofs.
//!
//! Outside verifiers depend on exactly these shapes (issue 4, "Log API"):
//! hashes and entry bytes are standard base64 (RFC 4648 section 4), the
//! checkpoint is the C2SP signed note as text, and the key is the C2SP
//! verifier key line. Reads that touch the index or the log file run on
//! blocking threads.

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::AppState;
use super::error::ApiError;
use crate::codec;
use crate::crypto::{Digest, PublicKey, Signature};
use crate::ledger::Ledger;
use crate::merkle::{self, Hash};
use crate::model::{Event, Timestamp};

/// Most entries one `GET /v1/entries` answers with.
pub const MAX_ENTRIES_PER_PAGE: u64 = 1000;

/// `GET /v1/checkpoint`: the latest C2SP checkpoint note, `text/plain`.
pub(super) async fn checkpoint(State(app): State<AppState>) -> Response {
    app.ledger.checkpoint().to_string().into_response()
}

/// `GET /v1/log/key`: the verifier key line
/// `<origin>+<key id hex>+<base64(0x01 || public key)>` and a newline.
pub(super) async fn log_key(State(app): State<AppState>) -> Result<Response, ApiError> {
    match &app.key_line {
        Some(line) => Ok(format!("{line}\n").into_response()),
        None => Err(ApiError::unavailable(&"the ledger has no log key line")),
    }
}

/// One entry as `GET /v1/entries` answers it.
#[derive(Debug, Serialize)]
pub(super) struct EntryItem {
    index: u64,
    /// RFC 9162 leaf hash `SHA-256(0x00 || leaf)`, standard base64.
    leaf_hash: String,
    /// The exact entry bytes hashed as the leaf, standard base64.
    leaf: String,
    /// The entry decoded.
    entry: EntryView,
}

/// An entry decoded, with its event decoded too.
#[derive(Debug, Serialize)]
pub(super) struct EntryView {
    index: u64,
    /// Leaf hash of the previous entry, hex; zeros for entry 0.
    prev: Digest,
    record_time: Timestamp,
    /// SHA-256 of the event bytes, hex.
    event_id: Digest,
    key: PublicKey,
    signature: Signature,
    event: Event,
}

#[derive(Debug, Serialize)]
pub(super) struct EntriesBody {
    entries: Vec<EntryItem>,
}

fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Reads entries `start..end` (all committed). Blocking.
fn read_entries(ledger: &Ledger, start: u64, end: u64) -> Result<Vec<EntryItem>, ApiError> {
    let mut items = Vec::with_capacity((end - start) as usize);
    for index in start..end {
        let (entry, bytes) = ledger.entry(index)?;
        let event: Event = codec::decode(&entry.signed.event).map_err(|e| {
            ApiError::internal(&format!("entry {index} holds an undecodable event: {e}"))
        })?;
        items.push(EntryItem {
            index,
            leaf_hash: b64(&merkle::leaf_hash(&bytes)),
            leaf: b64(&bytes),
            entry: EntryView {
                index: entry.index,
                prev: entry.prev,
                record_time: entry.record_time,
                event_id: entry.signed.event_id(),
                key: entry.signed.key,
                signature: entry.signed.signature,
                event,
            },
        });
    }
    Ok(items)
}

pub(super) fn path_rejection(rejection: PathRejection) -> ApiError {
    ApiError::malformed(rejection.body_text())
}

fn query_rejection(rejection: QueryRejection) -> ApiError {
    ApiError::malformed(rejection.body_text())
}

/// `GET /v1/entries/{index}`.
pub(super) async fn entry(
    State(app): State<AppState>,
    index: Result<Path<u64>, PathRejection>,
) -> Result<Json<EntriesBody>, ApiError> {
    let Path(index) = index.map_err(path_rejection)?;
    let size = app.ledger.size();
    if index >= size {
        return Err(ApiError::not_found(format!("entry {index} does not exist"))
            .with_details(json!({ "index": index, "tree_size": size })));
    }
    let ledger = app.ledger.clone();
    let entries =
        tokio::task::spawn_blocking(move || read_entries(&ledger, index, index + 1)).await??;
    Ok(Json(EntriesBody { entries }))
}

#[derive(Debug, Deserialize)]
pub(super) struct RangeQuery {
    start: u64,
    end: u64,
}

/// `GET /v1/entries?start=S&end=E`: entries `S..E` (end exclusive),
/// cut at the tree size and at [`MAX_ENTRIES_PER_PAGE`]; a client pages on
/// from the last index it got plus one.
pub(super) async fn entries(
    State(app): State<AppState>,
    query: Result<Query<RangeQuery>, QueryRejection>,
) -> Result<Json<EntriesBody>, ApiError> {
    let Query(RangeQuery { start, end }) = query.map_err(query_rejection)?;
    let size = app.ledger.size();
    if start >= end {
        return Err(ApiError::bad_range(format!(
            "start ({start}) must be less than end ({end})"
        )));
    }
    if start >= size {
        return Err(ApiError::bad_range(format!(
            "start ({start}) is beyond the tree ({size} entries)"
        ))
        .with_details(json!({ "tree_size": size })));
    }
    let end = end
        .min(size)
        .min(start.saturating_add(MAX_ENTRIES_PER_PAGE));
    let ledger = app.ledger.clone();
    let entries = tokio::task::spawn_blocking(move || read_entries(&ledger, start, end)).await??;
    Ok(Json(EntriesBody { entries }))
}

#[derive(Debug, Deserialize)]
pub(super) struct InclusionQuery {
    index: u64,
    tree_size: u64,
}

#[derive(Debug, Serialize)]
pub(super) struct InclusionBody {
    index: u64,
    tree_size: u64,
    proof: Vec<String>,
}

fn proof_b64(proof: &[Hash]) -> Vec<String> {
    proof.iter().map(|h| b64(h)).collect()
}

/// `GET /v1/proofs/inclusion?index=I&tree_size=N`: the RFC 9162 section
/// 2.1.3 inclusion proof of entry `I` in the tree of size `N`.
pub(super) async fn inclusion(
    State(app): State<AppState>,
    query: Result<Query<InclusionQuery>, QueryRejection>,
) -> Result<Json<InclusionBody>, ApiError> {
    let Query(InclusionQuery { index, tree_size }) = query.map_err(query_rejection)?;
    let size = app.ledger.size();
    if tree_size > size {
        return Err(ApiError::bad_range(format!(
            "tree_size ({tree_size}) is larger than the committed tree ({size} entries)"
        ))
        .with_details(json!({ "tree_size": size })));
    }
    if index >= tree_size {
        return Err(ApiError::bad_range(format!(
            "index ({index}) must be less than tree_size ({tree_size})"
        )));
    }
    let ledger = app.ledger.clone();
    let proof =
        tokio::task::spawn_blocking(move || ledger.inclusion_proof(index, tree_size)).await??;
    Ok(Json(InclusionBody {
        index,
        tree_size,
        proof: proof_b64(&proof),
    }))
}

#[derive(Debug, Deserialize)]
pub(super) struct ConsistencyQuery {
    first: u64,
    second: u64,
}

#[derive(Debug, Serialize)]
pub(super) struct ConsistencyBody {
    first: u64,
    second: u64,
    proof: Vec<String>,
}

/// `GET /v1/proofs/consistency?first=M&second=N`: the RFC 9162 section
/// 2.1.4 consistency proof between the trees of sizes `M` and `N`
/// (`0 < M <= N`; empty when `M == N`).
pub(super) async fn consistency(
    State(app): State<AppState>,
    query: Result<Query<ConsistencyQuery>, QueryRejection>,
) -> Result<Json<ConsistencyBody>, ApiError> {
    let Query(ConsistencyQuery { first, second }) = query.map_err(query_rejection)?;
    let size = app.ledger.size();
    if second > size {
        return Err(ApiError::bad_range(format!(
            "second ({second}) is larger than the committed tree ({size} entries)"
        ))
        .with_details(json!({ "tree_size": size })));
    }
    if first == 0 || first > second {
        return Err(ApiError::bad_range(format!(
            "first ({first}) must be at least 1 and at most second ({second})"
        )));
    }
    let ledger = app.ledger.clone();
    let proof =
        tokio::task::spawn_blocking(move || ledger.consistency_proof(first, second)).await??;
    Ok(Json(ConsistencyBody {
        first,
        second,
        proof: proof_b64(&proof),
    }))
}
