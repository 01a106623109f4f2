//! The query API by id: one lot, one participant, one red flag, as the
//! ledger state holds them now (listings, histories and graph walks are
//! in `lots` and `listing`, over the catalog). State reads go to sled, so
//! they run on blocking threads.

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use serde::Serialize;
use serde_json::json;

use super::AppState;
use super::access::{Disclosure, LedgerRecords};
use super::error::{ApiError, ErrorBody};
use super::listing::{as_of, read_disclosed};
use super::log::path_rejection;
use crate::access::{
    LotSight, LotSummary, ParticipantDetail, ParticipantIdentity, Records, Viewer, site_view,
    supplier_file_view,
};
use crate::catalog::ParticipantLinks;
use crate::model::{Flag, StateError};
use crate::model::{
    FlagId, KeyRecord, Lot, LotId, Participant, ParticipantId, StateKey, StateValue, StateView,
};
use crate::model::{SanctionRecord, Site, SupplierFile, Timestamp};

/// `GET /v1/lots/{id}`: the lot's current state. Lot ids may contain `/`,
/// which must be sent percent-encoded (`%2F`).
#[utoipa::path(
    get,
    path = "/v1/lots/{id}",
    tag = "state",
    params(("id" = String, Path, description = "The lot id; a `/` in it is sent as `%2F`.")),
    responses(
        (status = 200, description = "The lot as the ledger holds it now, for its custodian or owner, the operator and auditors; for a former holder, its summary and the entries of its history it may see.", body = LotAnswer),
        (status = 400, description = "`MALFORMED_REQUEST`: not a lot id.", body = ErrorBody),
        (status = 401, description = "`UNAUTHENTICATED`: no valid bearer token.", body = ErrorBody),
        (status = 404, description = "`NOT_FOUND`: no such lot, or one the caller may not see.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(super) async fn lot(
    State(app): State<AppState>,
    viewer: Viewer,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<LotAnswer>, ApiError> {
    let Path(id) = id.map_err(path_rejection)?;
    let id = LotId::new(id).map_err(|e| ApiError::malformed(e.to_string()))?;
    let ledger = app.ledger.clone();
    let lookup = id.clone();
    // A lot the viewer may not see is answered as if it did not exist.
    let lot = tokio::task::spawn_blocking(move || -> Result<Option<LotAnswer>, StateError> {
        let records = LedgerRecords(&ledger);
        let disclosure = Disclosure::new(Some(&viewer), &records);
        let Some(lot) = records.lot(&lookup)? else {
            return Ok(None);
        };
        match disclosure.lot_sight(&lot)? {
            LotSight::Full => Ok(Some(LotAnswer::Full(Box::new(lot)))),
            LotSight::Held { .. } => {
                let mut history = Vec::new();
                for index in &lot.history {
                    if disclosure.event(*index, &records.event(*index)?)? {
                        history.push(*index);
                    }
                }
                Ok(Some(LotAnswer::Held(HeldLotBody {
                    lot: LotSummary::from(&lot),
                    history,
                })))
            }
            LotSight::Hidden => Ok(None),
        }
    })
    .await??;
    lot.map(Json).ok_or_else(|| {
        ApiError::not_found(format!("no lot {id} on this ledger"))
            .with_details(json!({ "lot": id.as_str() }))
    })
}

/// A lot as the viewer may see it: all of it for its custodian or owner
/// now, the operator and auditors; for a former holder, what it is and
/// the part of its history it may see (`access::LotSight`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub(super) enum LotAnswer {
    Full(Box<Lot>),
    Held(HeldLotBody),
}

/// What a former holder sees of a lot: not who holds it now, nor what
/// happened to it after its holding ended.
#[derive(Debug, Serialize, utoipa::ToSchema)]
// Closed in the schema, so that a lot in full never also matches it.
#[serde(deny_unknown_fields)]
pub(super) struct HeldLotBody {
    /// Id, kind, metal, origin shares by site and red-flag ids.
    lot: LotSummary,
    /// The entries of its history the viewer may see, in order: up to and
    /// including the one that ended its holding, and those it is a party
    /// to.
    history: Vec<u64>,
}

/// A participant with the validity windows of its keys, the sites it
/// operates and its standing with every organisation that keeps a
/// supplier file on it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct ParticipantBody {
    participant: Participant,
    /// Every key ever registered for it, in registration order, with its
    /// validity window.
    keys: Vec<KeyRecord>,
    /// The organisation it acts for as an appointed officer, if any.
    acts_for: Option<ParticipantId>,
    /// The sites it operates, in registration order.
    sites: Vec<Site>,
    /// Its compliance and sanction status in each supplier file naming it.
    compliance: Vec<SupplierStanding>,
}

/// A supplier's standing with one buying organisation, judged at `as_of`,
/// with the file it is judged from.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct SupplierStanding {
    organisation: ParticipantId,
    as_of: Timestamp,
    /// The latest onboarding verdict; `null` when never assessed.
    onboarding_passed: Option<bool>,
    /// Whether its latest ESG review passed and has not expired.
    review_current: bool,
    /// The sanction in force (blacklisting or ban), if any.
    sanction_in_force: Option<SanctionRecord>,
    /// Whether it acknowledged the organisation's Supplier Code of Conduct.
    code_acknowledged: bool,
    file: SupplierFile,
}

/// A participant as the viewer may see it: all of it for its own
/// organisation, the operator and auditors; otherwise its identity.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub(super) enum ParticipantAnswer {
    Full(ParticipantBody),
    Identity(ParticipantIdentityBody),
}

/// What a reader of another organisation sees of a participant.
#[derive(Debug, Serialize, utoipa::ToSchema)]
// Closed in the schema (`additionalProperties: false`), so that a full
// body never also matches this one of the untagged `oneOf`.
#[serde(deny_unknown_fields)]
pub(super) struct ParticipantIdentityBody {
    /// Id, legal name, country and kinds; not its roles, keys or
    /// registration.
    participant: ParticipantIdentity,
    /// The sites it operates, without capacity and production.
    sites: Vec<Site>,
    /// The supplier files on it that the reader's organisation keeps.
    compliance: Vec<SupplierStanding>,
}

/// Applies the access policy to a participant's body: sites and supplier
/// files as the viewer may see them, and only the public identity of a
/// participant of another organisation (`access`, "Who sees what").
fn disclose_participant(
    mut body: ParticipantBody,
    disclosure: &Disclosure<'_, LedgerRecords<'_>>,
) -> Result<ParticipantAnswer, StateError> {
    body.sites = body
        .sites
        .iter()
        .map(|s| site_view(disclosure, s))
        .collect::<Result<_, _>>()?;
    let mut compliance = Vec::with_capacity(body.compliance.len());
    for mut standing in body.compliance {
        if let Some(file) = supplier_file_view(disclosure, &standing.file)? {
            standing.file = file;
            compliance.push(standing);
        }
    }
    body.compliance = compliance;
    Ok(match disclosure.participant(&body.participant.id)? {
        ParticipantDetail::Full => ParticipantAnswer::Full(body),
        ParticipantDetail::Identity => ParticipantAnswer::Identity(ParticipantIdentityBody {
            participant: ParticipantIdentity::from(&body.participant),
            sites: body.sites,
            compliance: body.compliance,
        }),
    })
}

/// A participant with what the catalog links to it (`links`: its sites
/// and the organisations with a file on it), statuses judged at `as_of`.
fn read_participant(
    state: &impl StateView,
    links: Option<ParticipantLinks>,
    id: &ParticipantId,
    as_of: Timestamp,
) -> Result<Option<ParticipantBody>, StateError> {
    let Some(participant) = state.participant(id)? else {
        return Ok(None);
    };
    let links = links.unwrap_or(ParticipantLinks {
        sites: Vec::new(),
        supplier_files: Vec::new(),
    });
    let mut sites = Vec::with_capacity(links.sites.len());
    for site in &links.sites {
        if let Some(s) = state.site(site)? {
            sites.push(s);
        }
    }
    let mut compliance = Vec::with_capacity(links.supplier_files.len());
    for organisation in &links.supplier_files {
        if let Some(file) = state.supplier_file(organisation, id)? {
            compliance.push(SupplierStanding {
                organisation: organisation.clone(),
                as_of,
                onboarding_passed: file.onboarding.as_ref().map(|(_, passed, _)| *passed),
                review_current: file.review_current_at(as_of),
                sanction_in_force: file.sanction_at(as_of).cloned(),
                code_acknowledged: file.code_acknowledged.is_some(),
                file,
            });
        }
    }
    let mut keys = Vec::with_capacity(participant.keys.len());
    for key in &participant.keys {
        if let Some(record) = state.key(key)? {
            keys.push(record);
        }
    }
    let acts_for = match state.get(&StateKey::Affiliation(id.clone()))? {
        Some(StateValue::Affiliation(a)) => Some(a.organisation),
        _ => None,
    };
    Ok(Some(ParticipantBody {
        participant,
        keys,
        acts_for,
        sites,
        compliance,
    }))
}

/// `GET /v1/participants/{id}`.
#[utoipa::path(
    get,
    path = "/v1/participants/{id}",
    tag = "state",
    params(("id" = String, Path, description = "The participant id.")),
    responses(
        (status = 200, description = "The registration, its keys, the organisation it acts for, its sites and compliance standing; of another organisation's participant, its public identity, its sites without volumes, and the caller's own supplier files on it.", body = ParticipantAnswer),
        (status = 401, description = "`UNAUTHENTICATED`: no valid bearer token.", body = ErrorBody),
        (status = 400, description = "`MALFORMED_REQUEST`: not a participant id.", body = ErrorBody),
        (status = 404, description = "`NOT_FOUND`: no such participant.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(super) async fn participant(
    State(app): State<AppState>,
    viewer: Viewer,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<ParticipantAnswer>, ApiError> {
    let Path(id) = id.map_err(path_rejection)?;
    let id = ParticipantId::new(id).map_err(|e| ApiError::malformed(e.to_string()))?;
    let lookup = id.clone();
    let body = read_disclosed(&app, viewer, move |ledger, tables, disclosure| {
        let links = tables.participant(&lookup);
        let body = read_participant(ledger.state(), links, &lookup, as_of(tables))?;
        Ok(match body {
            Some(body) => Some(disclose_participant(body, disclosure)?),
            None => None,
        })
    })
    .await?;
    body.map(Json).ok_or_else(|| {
        ApiError::not_found(format!("no participant {id} on this ledger"))
            .with_details(json!({ "participant": id.as_str() }))
    })
}

/// `GET /v1/flags/{entry}/{n}`: red flag `n` raised by entry `entry`.
#[utoipa::path(
    get,
    path = "/v1/flags/{entry}/{n}",
    tag = "state",
    params(
        ("entry" = u64, Path, description = "Index of the entry that raised the flag."),
        ("n" = u16, Path, description = "The flag's number within that entry."),
    ),
    responses(
        (status = 200, description = "The red flag and its decisions.", body = Flag),
        (status = 400, description = "`MALFORMED_REQUEST`: not a flag id.", body = ErrorBody),
        (status = 401, description = "`UNAUTHENTICATED`: no valid bearer token.", body = ErrorBody),
        (status = 404, description = "`NOT_FOUND`: no such flag, or one the caller may not see.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(super) async fn flag(
    State(app): State<AppState>,
    viewer: Viewer,
    id: Result<Path<(u64, u16)>, PathRejection>,
) -> Result<Json<Flag>, ApiError> {
    let Path((entry, n)) = id.map_err(path_rejection)?;
    let id = FlagId { entry, n };
    let ledger = app.ledger.clone();
    // A flag the viewer may not see is answered as if it did not exist.
    let flag = tokio::task::spawn_blocking(move || -> Result<Option<Flag>, StateError> {
        let records = LedgerRecords(&ledger);
        let disclosure = Disclosure::new(Some(&viewer), &records);
        match records.flag(id)? {
            Some(flag) if disclosure.flag(&flag)? => Ok(Some(flag)),
            _ => Ok(None),
        }
    })
    .await??;
    flag.map(Json).ok_or_else(|| {
        ApiError::not_found(format!("no red flag {entry}/{n} on this ledger"))
            .with_details(json!({ "entry": entry, "n": n }))
    })
}
