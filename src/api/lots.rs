//! The lot endpoints of the query API beyond the lot itself: the lot
//! listing, a lot's history, its provenance (the backward graph to the
//! mines, with shares and exposure) and its downstream (every lot made
//! from it, and who has each now). Graph walks read the catalog's
//! in-memory links; only the lot's own state (its origin shares and
//! flags) and the history's entries are read from disk. The graph answers
//! can run to hundreds of kilobytes (a cathode with a thousand lots behind
//! it), so they are serialized on the blocking thread that built them.

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::AppState;
use super::error::{ApiError, ErrorBody};
use super::listing::{
    EventItem, JsonBytes, Listing, enum_parameter, event_item, next_cursor, paging,
    participant_parameter, query_rejection, read_catalog, time_parameter,
};
use super::log::path_rejection;
use crate::catalog::{self, LinkView, LotFilter, LotSummary, Provenance, StatusFilter};
use crate::model::{LotId, LotKind, SiteId, StateView};

const LOT_KINDS: [LotKind; 8] = [
    LotKind::Concentrate,
    LotKind::Blend,
    LotKind::Matte,
    LotKind::Anode,
    LotKind::Slime,
    LotKind::Cathode,
    LotKind::Ingot,
    LotKind::Scrap,
];

fn lot_path(id: Result<Path<String>, PathRejection>) -> Result<LotId, ApiError> {
    let Path(id) = id.map_err(path_rejection)?;
    LotId::new(id).map_err(|e| ApiError::malformed(e.to_string()))
}

fn no_lot(id: &LotId) -> ApiError {
    ApiError::not_found(format!("no lot {id} on this ledger"))
        .with_details(json!({ "lot": id.as_str() }))
}

// -- listing -----------------------------------------------------------------

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct LotsQuery {
    kind: Option<String>,
    holder: Option<String>,
    site: Option<String>,
    status: Option<String>,
    created_from: Option<String>,
    created_to: Option<String>,
    cursor: Option<String>,
    limit: Option<String>,
}

impl LotsQuery {
    fn filter(&self) -> Result<LotFilter, ApiError> {
        Ok(LotFilter {
            kind: self
                .kind
                .as_deref()
                .map(|k| enum_parameter("kind", k, &LOT_KINDS))
                .transpose()?,
            holder: self
                .holder
                .as_deref()
                .map(|h| participant_parameter("holder", h))
                .transpose()?,
            site: self
                .site
                .as_deref()
                .map(|s| {
                    SiteId::new(s).map_err(|e| {
                        ApiError::malformed(e.to_string())
                            .with_details(json!({ "parameter": "site" }))
                    })
                })
                .transpose()?,
            status: self
                .status
                .as_deref()
                .map(|s| {
                    StatusFilter::parse(s).ok_or_else(|| {
                        ApiError::malformed(format!(
                            "status {s:?} must be held, in_transit or consumed"
                        ))
                        .with_details(json!({ "parameter": "status" }))
                    })
                })
                .transpose()?,
            created_from: self
                .created_from
                .as_deref()
                .map(|t| time_parameter("created_from", t))
                .transpose()?,
            created_to: self
                .created_to
                .as_deref()
                .map(|t| time_parameter("created_to", t))
                .transpose()?,
        })
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct LotsBody {
    lots: Vec<LotSummary>,
    next_cursor: Option<String>,
}

/// `GET /v1/lots`: lots in the order they were made, filtered.
#[utoipa::path(
    get,
    path = "/v1/lots",
    tag = "state",
    params(LotsQuery),
    responses(
        (status = 200, description = "Lots in the order they were made, filtered by `kind`, `holder`, `site`, `status` (held, in_transit, consumed) and creation time (`created_from`, `created_to`); paged with `cursor` and `limit`.", body = LotsBody),
        (status = 400, description = "`MALFORMED_REQUEST`: a filter, cursor or limit that cannot be read.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(super) async fn lots(
    State(app): State<AppState>,
    query: Result<Query<LotsQuery>, QueryRejection>,
) -> Result<Json<LotsBody>, ApiError> {
    let Query(query) = query.map_err(query_rejection)?;
    let filter = query.filter()?;
    let paging = paging(
        Listing::Lots,
        query.cursor.as_deref(),
        query.limit.as_deref(),
    )?;
    read_catalog(&app, move |_, tables| {
        let page = tables.lots(&filter, paging.from, paging.limit);
        Ok(Json(LotsBody {
            lots: page.items,
            next_cursor: next_cursor(Listing::Lots, page.next),
        }))
    })
    .await
}

// -- history -----------------------------------------------------------------

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct HistoryQuery {
    cursor: Option<String>,
    limit: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct HistoryBody {
    lot: LotId,
    /// Entries whose event names the lot, in order.
    entries: Vec<EventItem>,
    next_cursor: Option<String>,
}

/// `GET /v1/lots/{id}/history`.
#[utoipa::path(
    get,
    path = "/v1/lots/{id}/history",
    tag = "state",
    params(("id" = String, Path, description = "The lot id; a `/` in it is sent as `%2F`."), HistoryQuery),
    responses(
        (status = 200, description = "The entries whose event names the lot, in order; paged with `cursor` and `limit`.", body = HistoryBody),
        (status = 400, description = "`MALFORMED_REQUEST`: not a lot id, or a cursor or limit that cannot be read.", body = ErrorBody),
        (status = 404, description = "`NOT_FOUND`: no such lot.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(super) async fn history(
    State(app): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    query: Result<Query<HistoryQuery>, QueryRejection>,
) -> Result<Json<HistoryBody>, ApiError> {
    let id = lot_path(id)?;
    let Query(query) = query.map_err(query_rejection)?;
    let paging = paging(
        Listing::History,
        query.cursor.as_deref(),
        query.limit.as_deref(),
    )?;
    read_catalog(&app, move |ledger, tables| {
        let all = tables.lot_entries(&id).ok_or_else(|| no_lot(&id))?;
        let start = all.partition_point(|i| *i < paging.from);
        let rest = &all[start..];
        let page = &rest[..rest.len().min(paging.limit)];
        let entries = page
            .iter()
            .map(|i| event_item(ledger, *i))
            .collect::<Result<_, _>>()?;
        let next = (rest.len() > page.len())
            .then(|| page.last().map(|i| i + 1))
            .flatten();
        Ok(Json(HistoryBody {
            lot: id,
            entries,
            next_cursor: next_cursor(Listing::History, next),
        }))
    })
    .await
}

// -- provenance --------------------------------------------------------------

/// The provenance of one lot. Blocking: reads the lot's state.
pub(super) fn lot_provenance(
    ledger: &crate::ledger::Ledger,
    tables: &catalog::Tables,
    id: &LotId,
) -> Result<Provenance, ApiError> {
    let lot = ledger.state().lot(id)?.ok_or_else(|| no_lot(id))?;
    catalog::provenance(tables, &lot, super::listing::as_of(tables))?.ok_or_else(|| no_lot(id))
}

/// `GET /v1/lots/{id}/provenance`: the backward graph to the mines.
#[utoipa::path(
    get,
    path = "/v1/lots/{id}/provenance",
    tag = "state",
    params(("id" = String, Path, description = "The lot id; a `/` in it is sent as `%2F`.")),
    responses(
        (status = 200, description = "The backward graph to the mines, with shares, countries, CAHRA and artisanal exposure, and red flags.", body = Provenance),
        (status = 400, description = "`MALFORMED_REQUEST`: not a lot id.", body = ErrorBody),
        (status = 404, description = "`NOT_FOUND`: no such lot.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(super) async fn provenance(
    State(app): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<JsonBytes, ApiError> {
    let id = lot_path(id)?;
    read_catalog(&app, move |ledger, tables| {
        JsonBytes::of(&lot_provenance(ledger, tables, &id)?)
    })
    .await
}

// -- downstream --------------------------------------------------------------

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct DownstreamBody {
    lot: LotId,
    /// The lot first, then every lot made from it, breadth first, each
    /// with its status, custodian and owner now.
    lots: Vec<LotSummary>,
    /// Links among those lots, with the share of each child's payable
    /// metal the parent brought.
    edges: Vec<LinkView>,
}

/// `GET /v1/lots/{id}/downstream`: every lot derived from this one.
#[utoipa::path(
    get,
    path = "/v1/lots/{id}/downstream",
    tag = "state",
    params(("id" = String, Path, description = "The lot id; a `/` in it is sent as `%2F`.")),
    responses(
        (status = 200, description = "Every lot made from this one and who has each now, with the links among them.", body = DownstreamBody),
        (status = 400, description = "`MALFORMED_REQUEST`: not a lot id.", body = ErrorBody),
        (status = 404, description = "`NOT_FOUND`: no such lot.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(super) async fn downstream(
    State(app): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<JsonBytes, ApiError> {
    let id = lot_path(id)?;
    read_catalog(&app, move |_, tables| {
        let graph = tables.downstream(&id).ok_or_else(|| no_lot(&id))?;
        JsonBytes::of(&DownstreamBody {
            lot: id,
            lots: graph.nodes,
            edges: graph.edges,
        })
    })
    .await
}
