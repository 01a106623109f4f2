//! The lot endpoints of the query API beyond the lot itself: the lot
//! listing, a lot's history, its provenance (the backward graph to the
//! mines, with shares and exposure) and its downstream (every lot made
//! from it, and who has each now). Graph walks read the catalog's
//! in-memory links; only the lot's own state (its origin shares and
//! flags) and the history's entries are read from disk. The graph answers
//! can run to hundreds of kilobytes (a cathode with a thousand lots behind
//! it), so they are serialized on the blocking thread that built them.
//!
//! All of them need a token and answer what the access policy
//! (`crate::access`) shows the viewer. A lot the viewer may not see at
//! all is answered `404`, word for word as a missing one. Lots it sees
//! in full (the operator and auditors: every lot; anyone else: the lots
//! it holds now) are shown as the catalog has them; the others as their
//! summary ([`access::LotSummary`]: id, kind, metal, origin shares, flags),
//! never their custodian or owner. Where links carry the grams of payable
//! metal a parent brought, those are shown only for a child the viewer
//! sees in full.

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};
use serde_json::json;

use std::collections::HashSet;

use super::AppState;
use super::access::{Disclosure, LedgerRecords};
use super::error::{ApiError, ErrorBody};
use super::listing::{
    EventItem, JsonBytes, Listing, budget, enum_parameter, next_cursor, paging,
    participant_parameter, query_rejection, read_disclosed, time_parameter, visible_event_item,
};
use super::log::path_rejection;
use crate::access::{self, LotSight, Viewer};
use crate::catalog::{
    self, Aggregates, LinkView, LotFilter, LotSummary, Mine, StatusFilter, UpstreamLot,
};
use crate::model::{Element, Grams, Lot, LotId, LotKind, Ppb, SiteId, StateView, Timestamp};

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

/// A lot of a listing or a downstream graph: as the catalog has it when
/// the caller sees it in full, else its summary.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub(super) enum ListedLot {
    /// What it is, where it is and who has it now.
    Full(LotSummary),
    /// What it is and where its metal came from.
    Summary(access::LotSummary),
}

/// A lot as `disclosure` lets its viewer see it, from the catalog's
/// `item` and the lot's state: `None` when hidden, or when only a former
/// holder's summary would show and `in_full_only` says the request asks
/// about the lot's state now. Blocking.
fn listed_lot(
    records: &LedgerRecords<'_>,
    disclosure: &Disclosure<'_, LedgerRecords<'_>>,
    item: LotSummary,
    in_full_only: bool,
) -> Result<Option<ListedLot>, ApiError> {
    if disclosure.sees_everything() {
        return Ok(Some(ListedLot::Full(item)));
    }
    let Some(lot) = records.lot(&item.id)? else {
        return Ok(None);
    };
    Ok(match disclosure.lot_sight(&lot)? {
        LotSight::Full => Some(ListedLot::Full(item)),
        LotSight::Held { .. } if !in_full_only => {
            Some(ListedLot::Summary(access::LotSummary::from(&lot)))
        }
        LotSight::Held { .. } | LotSight::Hidden => None,
    })
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct LotsBody {
    lots: Vec<ListedLot>,
    next_cursor: Option<String>,
}

/// `GET /v1/lots`: lots in the order they were made, filtered.
#[utoipa::path(
    get,
    path = "/v1/lots",
    tag = "state",
    params(LotsQuery),
    responses(
        (status = 200, description = "The lots the caller may see, in the order they were made: in full those it holds now (every lot for the operator and auditors), as a summary those it held before. Filtered by `kind`, `holder`, `site`, `status` (held, in_transit, consumed) and creation time (`created_from`, `created_to`); `holder` and `status` match only lots the caller sees in full. Paged with `cursor` and `limit` (a page may be short: page on while `next_cursor` is not null).", body = LotsBody),
        (status = 400, description = "`MALFORMED_REQUEST`: a filter, cursor or limit that cannot be read.", body = ErrorBody),
        (status = 401, description = "`UNAUTHENTICATED`: no valid bearer token.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(super) async fn lots(
    State(app): State<AppState>,
    viewer: Viewer,
    query: Result<Query<LotsQuery>, QueryRejection>,
) -> Result<Json<LotsBody>, ApiError> {
    let Query(query) = query.map_err(query_rejection)?;
    let filter = query.filter()?;
    let paging = paging(
        Listing::Lots,
        query.cursor.as_deref(),
        query.limit.as_deref(),
    )?;
    // Filters on a lot's state now would tell a former holder who holds
    // the lot now, or where it is: they match only lots seen in full.
    let in_full_only = filter.holder.is_some() || filter.status.is_some();
    read_disclosed(&app, viewer, move |_, tables, disclosure| {
        let page = tables.lots_where(
            &filter,
            paging.from,
            paging.limit,
            budget(disclosure),
            |item| listed_lot(disclosure.records(), disclosure, item, in_full_only),
        )?;
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
        (status = 200, description = "The entries whose event names the lot and that the caller may see, in order: all of them for its holder now, up to the end of its holding (and those it is a party to) for a former holder; paged with `cursor` and `limit` (a page may be short: page on while `next_cursor` is not null).", body = HistoryBody),
        (status = 400, description = "`MALFORMED_REQUEST`: not a lot id, or a cursor or limit that cannot be read.", body = ErrorBody),
        (status = 401, description = "`UNAUTHENTICATED`: no valid bearer token.", body = ErrorBody),
        (status = 404, description = "`NOT_FOUND`: no such lot, or one the caller may not see.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(super) async fn history(
    State(app): State<AppState>,
    viewer: Viewer,
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
    read_disclosed(&app, viewer, move |ledger, tables, disclosure| {
        let all = tables.lot_entries(&id).ok_or_else(|| no_lot(&id))?;
        // Hidden and missing lots are answered alike.
        if !disclosure.lot_id(&id)? {
            return Err(no_lot(&id));
        }
        let start = all.partition_point(|i| *i < paging.from);
        let page = catalog::page_where(
            all[start..].iter().copied(),
            paging.limit,
            budget(disclosure),
            |i| (i, i + 1),
            |i| visible_event_item(ledger, disclosure, i),
        )?;
        Ok(Json(HistoryBody {
            lot: id,
            entries: page.items,
            next_cursor: next_cursor(Listing::History, page.next),
        }))
    })
    .await
}

// -- provenance --------------------------------------------------------------

/// A lot of a provenance graph: what it is and who has it when the caller
/// sees it in full, else its summary.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub(super) enum TracedLot {
    Full(UpstreamLot),
    Summary(access::LotSummary),
}

/// A link of a graph: the share of the child's payable metal the parent
/// brought and, when the caller sees the child in full, its grams.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct TracedLink {
    child: LotId,
    parent: LotId,
    /// Parts per billion of the child's payable metal.
    share: Ppb,
    /// Grams of the child's payable metal the parent brought; only for a
    /// child the caller sees in full.
    #[serde(skip_serializing_if = "Option::is_none")]
    grams: Option<Grams>,
}

fn traced_links(edges: Vec<LinkView>, in_full: &impl Fn(&LotId) -> bool) -> Vec<TracedLink> {
    edges
        .into_iter()
        .map(|e| TracedLink {
            grams: in_full(&e.child).then_some(e.grams),
            child: e.child,
            parent: e.parent,
            share: e.share,
        })
        .collect()
}

/// The backward graph of a lot to its mines, as the caller may see it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct ProvenanceBody {
    lot: LotId,
    /// The payable metal the shares are counted in.
    metal: Element,
    /// The time CAHRA statuses are judged at.
    as_of: Timestamp,
    /// The lot first, then the lots it was made from, breadth first: in
    /// full those the caller sees in full, the others as summaries.
    nodes: Vec<TracedLot>,
    /// One per child and parent.
    edges: Vec<TracedLink>,
    /// Largest share first (ties by site id).
    mines: Vec<Mine>,
    aggregates: Aggregates,
}

/// The provenance of lot `id` as `disclosure` lets its viewer see it;
/// `404` for a lot it may not see at all. Blocking: reads the lot's
/// state, and for a viewer who does not see everything the state of every
/// lot upstream.
pub(super) fn lot_provenance(
    ledger: &crate::ledger::Ledger,
    tables: &catalog::Tables,
    disclosure: &Disclosure<'_, LedgerRecords<'_>>,
    id: &LotId,
) -> Result<ProvenanceBody, ApiError> {
    let lot = ledger.state().lot(id)?.ok_or_else(|| no_lot(id))?;
    if !disclosure.lot(&lot)? {
        return Err(no_lot(id));
    }
    let trace = catalog::provenance(tables, &lot, super::listing::as_of(tables))?
        .ok_or_else(|| no_lot(id))?;
    let mut in_full: HashSet<LotId> = HashSet::new();
    let mut nodes = Vec::with_capacity(trace.nodes.len());
    for node in trace.nodes {
        if disclosure.sees_everything() {
            nodes.push(TracedLot::Full(node));
            continue;
        }
        let state: Option<Lot> = if node.id == lot.id {
            Some(lot.clone())
        } else {
            ledger.state().lot(&node.id)?
        };
        let Some(state) = state else {
            return Err(ApiError::internal(&format!(
                "lot {} is in the catalog, not the state",
                node.id
            )));
        };
        if disclosure.lot_in_full(&state)? {
            in_full.insert(node.id.clone());
            nodes.push(TracedLot::Full(node));
        } else {
            nodes.push(TracedLot::Summary(access::LotSummary::from(&state)));
        }
    }
    let everything = disclosure.sees_everything();
    let edges = traced_links(trace.edges, &|child| everything || in_full.contains(child));
    Ok(ProvenanceBody {
        lot: trace.lot,
        metal: trace.metal,
        as_of: trace.as_of,
        nodes,
        edges,
        mines: trace.mines,
        aggregates: trace.aggregates,
    })
}

/// `GET /v1/lots/{id}/provenance`: the backward graph to the mines.
#[utoipa::path(
    get,
    path = "/v1/lots/{id}/provenance",
    tag = "state",
    params(("id" = String, Path, description = "The lot id; a `/` in it is sent as `%2F`.")),
    responses(
        (status = 200, description = "The backward graph to the mines, with shares, countries, CAHRA and artisanal exposure, and red flags. Lots the caller does not see in full are summaries (id, kind, metal, origin shares, flags), without custodian or owner.", body = ProvenanceBody),
        (status = 400, description = "`MALFORMED_REQUEST`: not a lot id.", body = ErrorBody),
        (status = 401, description = "`UNAUTHENTICATED`: no valid bearer token.", body = ErrorBody),
        (status = 404, description = "`NOT_FOUND`: no such lot, or one the caller may not see.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(super) async fn provenance(
    State(app): State<AppState>,
    viewer: Viewer,
    id: Result<Path<String>, PathRejection>,
) -> Result<JsonBytes, ApiError> {
    let id = lot_path(id)?;
    read_disclosed(&app, viewer, move |ledger, tables, disclosure| {
        JsonBytes::of(&lot_provenance(ledger, tables, disclosure, &id)?)
    })
    .await
}

// -- downstream --------------------------------------------------------------

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct DownstreamBody {
    lot: LotId,
    /// The lot first, then every lot made from it that the caller may
    /// see, breadth first: in full (status, custodian and owner now) those
    /// it sees in full, as summaries those it held before.
    lots: Vec<ListedLot>,
    /// Links among those lots, with the share of each child's payable
    /// metal the parent brought.
    edges: Vec<TracedLink>,
}

/// `GET /v1/lots/{id}/downstream`: every lot derived from this one.
#[utoipa::path(
    get,
    path = "/v1/lots/{id}/downstream",
    tag = "state",
    params(("id" = String, Path, description = "The lot id; a `/` in it is sent as `%2F`.")),
    responses(
        (status = 200, description = "The lot and the lots made from it that the caller may see, and the links among them: in full the lots it sees in full (every lot for the operator and auditors), as summaries those it held before; lots it never held are left out.", body = DownstreamBody),
        (status = 400, description = "`MALFORMED_REQUEST`: not a lot id.", body = ErrorBody),
        (status = 401, description = "`UNAUTHENTICATED`: no valid bearer token.", body = ErrorBody),
        (status = 404, description = "`NOT_FOUND`: no such lot, or one the caller may not see.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(super) async fn downstream(
    State(app): State<AppState>,
    viewer: Viewer,
    id: Result<Path<String>, PathRejection>,
) -> Result<JsonBytes, ApiError> {
    let id = lot_path(id)?;
    read_disclosed(&app, viewer, move |_, tables, disclosure| {
        let graph = tables.downstream(&id).ok_or_else(|| no_lot(&id))?;
        // Hidden and missing lots are answered alike.
        if !disclosure.lot_id(&id)? {
            return Err(no_lot(&id));
        }
        let mut shown: HashSet<LotId> = HashSet::new();
        let mut in_full: HashSet<LotId> = HashSet::new();
        let mut lots = Vec::with_capacity(graph.nodes.len());
        for node in graph.nodes {
            let lot_id = node.id.clone();
            if let Some(listed) = listed_lot(disclosure.records(), disclosure, node, false)? {
                if matches!(listed, ListedLot::Full(_)) {
                    in_full.insert(lot_id.clone());
                }
                shown.insert(lot_id);
                lots.push(listed);
            }
        }
        let edges = graph
            .edges
            .into_iter()
            .filter(|e| shown.contains(&e.child) && shown.contains(&e.parent))
            .collect();
        JsonBytes::of(&DownstreamBody {
            lot: id,
            lots,
            edges: traced_links(edges, &|child| in_full.contains(child)),
        })
    })
    .await
}
