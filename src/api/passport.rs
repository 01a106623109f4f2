//! `GET /v1/lots/{id}/passport`: the lot passport (`crate::audit::passport`,
//! `schemas/ENCODING.md` section 13), built from the live ledger against
//! its latest checkpoint: entries and inclusion proofs from the index, the
//! lots' postings from the catalog. `oretrail passport export` builds the
//! same file from the log alone; at the same checkpoint the two are equal
//! byte for byte.
//!
//! A passport shows the lot in full (its custody events, masses, assays
//! and documents) and the events behind every lot upstream, so it is given
//! to those who see the lot in full: its custodian or owner now, the
//! operator and auditors (`access::Disclosure::lot_in_full`). Anyone else
//! is answered `404`, as for a lot that does not exist.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::AppState;
use super::access::{Disclosure, LedgerRecords};
use super::error::{ApiError, ErrorBody};
use super::listing::read_catalog;
use super::log::path_rejection;
use crate::access::Viewer;
use crate::audit::passport::{self, PassportError};
use crate::model::{LotId, StateView};

fn no_lot(id: &LotId) -> ApiError {
    ApiError::not_found(format!("no lot {id} on this ledger"))
        .with_details(json!({ "lot": id.as_str() }))
}

/// A file name for the download: the lot id with `/` (allowed in lot ids)
/// made `_`.
fn file_name(id: &LotId) -> String {
    format!("{}.passport", id.as_str().replace('/', "_"))
}

/// `GET /v1/lots/{id}/passport`.
#[utoipa::path(
    get,
    path = "/v1/lots/{id}/passport",
    tag = "audit",
    params(("id" = String, Path, description = "The lot id; a `/` in it is sent as `%2F`.")),
    responses(
        (status = 200, description = "The lot passport (schemas/ENCODING.md section 13): the lot's provenance graph down to the mines, with origin shares and the share each parent brought, and every entry behind it with its RFC 9162 inclusion proof against the latest signed checkpoint. `oretrail passport verify FILE` checks it offline. The `Oretrail-Tree-Size` header gives the checkpoint's size.", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 400, description = "`MALFORMED_REQUEST`: not a lot id.", body = ErrorBody),
        (status = 401, description = "`UNAUTHENTICATED`: no valid bearer token.", body = ErrorBody),
        (status = 404, description = "`NOT_FOUND`: no such lot (at the latest checkpoint), or one the caller does not see in full.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(super) async fn passport(
    State(app): State<AppState>,
    viewer: Viewer,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(id) = id.map_err(path_rejection)?;
    let id = LotId::new(id).map_err(|e| ApiError::malformed(e.to_string()))?;
    // The checkpoint before the catalog: the catalog then catches up to at
    // least the entries the checkpoint counts.
    let checkpoint = app.ledger.checkpoint();
    let name = file_name(&id);
    let (bytes, size) = read_catalog(&app, move |ledger, tables| {
        let records = LedgerRecords(ledger);
        let disclosure = Disclosure::new(Some(&viewer), &records);
        let lot = ledger.state().lot(&id)?.ok_or_else(|| no_lot(&id))?;
        // Hidden and missing lots are answered alike.
        if !disclosure.lot_in_full(&lot)? {
            return Err(no_lot(&id));
        }
        let built =
            passport::from_ledger(ledger, tables, &checkpoint, &id).map_err(|e| match e {
                PassportError::NoSuchLot { .. } => no_lot(&id),
                other => ApiError::internal(&other),
            })?;
        let bytes = built.to_bytes().map_err(|e| ApiError::internal(&e))?;
        Ok((bytes, built.tree_size()))
    })
    .await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
            (
                header::HeaderName::from_static("oretrail-tree-size"),
                size.to_string(),
            ),
        ],
        bytes,
    )
        .into_response())
}
