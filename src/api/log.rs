//! The log API: checkpoint, verifier key, entries and RFC 9162 proofs.
//!
//! Outside verifiers depend on exactly these shapes (issue 4, "Log API"):
//! hashes and entry bytes are standard base64 (RFC 4648 section 4), the
//! checkpoint is the C2SP signed note as text, and the key is the C2SP
//! verifier key line. Reads that touch the index or the log file run on
//! blocking threads.
//!
//! All of it is public, so that anyone can check the log only grows: the
//! checkpoint, the key and the proofs ignore credentials; entries answer
//! everyone with their index and leaf hash, and add the entry bytes and
//! the decoded entry only where the caller's token shows a viewer who may
//! see the entry's event (`access::Disclosure::event`).

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::AppState;
use super::access::{Disclosure, LedgerRecords};
use super::error::{ApiError, ErrorBody};
use crate::access::Viewer;
use crate::codec;
use crate::crypto::{Digest, PublicKey, Signature};
use crate::ledger::Ledger;
use crate::merkle::{self, Hash};
use crate::model::{Event, Timestamp};

/// Most entries one `GET /v1/entries` answers with.
pub const MAX_ENTRIES_PER_PAGE: u64 = 1000;

/// `GET /v1/checkpoint`: the latest C2SP checkpoint note, `text/plain`,
/// with the cosignatures of the trusted witnesses that cosigned it
/// (`api::witness`).
#[utoipa::path(
    get,
    path = "/v1/checkpoint",
    tag = "log",
    responses(
        (status = 200, description = "The latest C2SP checkpoint note: origin, tree size, base64 root, a blank line, the log key's signature line, then a C2SP tlog-cosignature line of each trusted witness that cosigned this checkpoint.", content_type = "text/plain", body = String),
    )
)]
pub(super) async fn checkpoint(State(app): State<AppState>) -> Response {
    super::witness::latest_cosigned(&app).await.into_response()
}

/// `GET /v1/log/key`: the verifier key line
/// `<origin>+<key id hex>+<base64(0x01 || public key)>` and a newline.
#[utoipa::path(
    get,
    path = "/v1/log/key",
    tag = "log",
    responses(
        (status = 200, description = "The C2SP verifier key line `<origin>+<key id hex>+<base64(0x01 || public key)>` and a newline.", content_type = "text/plain", body = String),
    )
)]
pub(super) async fn log_key(State(app): State<AppState>) -> Result<Response, ApiError> {
    match &app.key_line {
        Some(line) => Ok(format!("{line}\n").into_response()),
        None => Err(ApiError::unavailable(&"the ledger has no log key line")),
    }
}

/// One entry as `GET /v1/entries` answers it. Everyone gets `index` and
/// `leaf_hash`; `leaf` and `entry` are there only for a viewer who may see
/// the entry's event (`access::Disclosure::event`), and absent otherwise.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct EntryItem {
    index: u64,
    /// RFC 9162 leaf hash `SHA-256(0x00 || leaf)`, standard base64.
    leaf_hash: String,
    /// The exact entry bytes hashed as the leaf, standard base64; only for
    /// a viewer who may see the entry's event.
    #[serde(skip_serializing_if = "Option::is_none")]
    leaf: Option<String>,
    /// The entry decoded; only for a viewer who may see its event.
    #[serde(skip_serializing_if = "Option::is_none")]
    entry: Option<EntryView>,
}

/// An entry decoded, with its event decoded too.
#[derive(Debug, Serialize, utoipa::ToSchema)]
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

/// Entries in index order.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct EntriesBody {
    entries: Vec<EntryItem>,
}

fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Reads entries `start..end` (all committed), each with its bytes and
/// decoded form where `viewer` may see its event. Blocking.
fn read_entries(
    ledger: &Ledger,
    start: u64,
    end: u64,
    viewer: Option<&Viewer>,
) -> Result<Vec<EntryItem>, ApiError> {
    let records = LedgerRecords(ledger);
    let disclosure = Disclosure::new(viewer, &records);
    let mut items = Vec::with_capacity((end - start) as usize);
    for index in start..end {
        let (entry, bytes) = ledger.entry(index)?;
        let leaf_hash = b64(&merkle::leaf_hash(&bytes));
        // An anonymous reader sees no event: the bytes need no decoding.
        if viewer.is_none() {
            items.push(EntryItem {
                index,
                leaf_hash,
                leaf: None,
                entry: None,
            });
            continue;
        }
        let event: Event = codec::decode(&entry.signed.event).map_err(|e| {
            ApiError::internal(&format!("entry {index} holds an undecodable event: {e}"))
        })?;
        let shown = disclosure.event(index, &event)?;
        items.push(EntryItem {
            index,
            leaf_hash,
            leaf: shown.then(|| b64(&bytes)),
            entry: shown.then(|| EntryView {
                index: entry.index,
                prev: entry.prev,
                record_time: entry.record_time,
                event_id: entry.signed.event_id(),
                key: entry.signed.key,
                signature: entry.signed.signature,
                event,
            }),
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
#[utoipa::path(
    get,
    path = "/v1/entries/{index}",
    tag = "log",
    params(("index" = u64, Path, description = "The entry's index, from 0.")),
    responses(
        (status = 200, description = "The entry.", body = EntriesBody),
        (status = 400, description = "`MALFORMED_REQUEST`: the index is not a number.", body = ErrorBody),
        (status = 404, description = "`NOT_FOUND`: beyond the tree.", body = ErrorBody),
    ),
    security((), ("bearer" = []))
)]
pub(super) async fn entry(
    State(app): State<AppState>,
    viewer: Option<Viewer>,
    index: Result<Path<u64>, PathRejection>,
) -> Result<Json<EntriesBody>, ApiError> {
    let Path(index) = index.map_err(path_rejection)?;
    let size = app.ledger.size();
    if index >= size {
        return Err(ApiError::not_found(format!("entry {index} does not exist"))
            .with_details(json!({ "index": index, "tree_size": size })));
    }
    let ledger = app.ledger.clone();
    let entries = tokio::task::spawn_blocking(move || {
        read_entries(&ledger, index, index + 1, viewer.as_ref())
    })
    .await??;
    Ok(Json(EntriesBody { entries }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct RangeQuery {
    /// First index.
    start: u64,
    /// Index after the last one (exclusive).
    end: u64,
}

/// `GET /v1/entries?start=S&end=E`: entries `S..E` (end exclusive),
/// cut at the tree size and at [`MAX_ENTRIES_PER_PAGE`]; a client pages on
/// from the last index it got plus one.
#[utoipa::path(
    get,
    path = "/v1/entries",
    tag = "log",
    params(RangeQuery),
    responses(
        (status = 200, description = "Entries `start..end`, cut at the tree size and at 1,000.", body = EntriesBody),
        (status = 400, description = "`BAD_RANGE` (`start >= end`, or `start` beyond the tree) or `MALFORMED_REQUEST`.", body = ErrorBody),
    ),
    security((), ("bearer" = []))
)]
pub(super) async fn entries(
    State(app): State<AppState>,
    viewer: Option<Viewer>,
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
    let entries =
        tokio::task::spawn_blocking(move || read_entries(&ledger, start, end, viewer.as_ref()))
            .await??;
    Ok(Json(EntriesBody { entries }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct InclusionQuery {
    /// The entry to prove.
    index: u64,
    /// The size of the tree to prove it in.
    tree_size: u64,
}

/// An RFC 9162 inclusion proof, hashes in standard base64.
#[derive(Debug, Serialize, utoipa::ToSchema)]
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
#[utoipa::path(
    get,
    path = "/v1/proofs/inclusion",
    tag = "log",
    params(InclusionQuery),
    responses(
        (status = 200, description = "The RFC 9162 section 2.1.3 inclusion proof.", body = InclusionBody),
        (status = 400, description = "`BAD_RANGE` (not `index < tree_size <=` the current size) or `MALFORMED_REQUEST`.", body = ErrorBody),
    )
)]
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

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct ConsistencyQuery {
    /// Size of the older tree.
    first: u64,
    /// Size of the newer tree.
    second: u64,
}

/// An RFC 9162 consistency proof, hashes in standard base64.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct ConsistencyBody {
    first: u64,
    second: u64,
    proof: Vec<String>,
}

/// `GET /v1/proofs/consistency?first=M&second=N`: the RFC 9162 section
/// 2.1.4 consistency proof between the trees of sizes `M` and `N`
/// (`0 < M <= N`; empty when `M == N`).
#[utoipa::path(
    get,
    path = "/v1/proofs/consistency",
    tag = "log",
    params(ConsistencyQuery),
    responses(
        (status = 200, description = "The RFC 9162 section 2.1.4 consistency proof; empty when `first == second`.", body = ConsistencyBody),
        (status = 400, description = "`BAD_RANGE` (not `0 < first <= second <=` the current size) or `MALFORMED_REQUEST`.", body = ErrorBody),
    )
)]
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
