//! Listings of the query API and what they share: opaque cursors, limits,
//! time parameters, reading the catalog on a blocking thread, and the
//! participant, red-flag and event listings.
//!
//! Every listing pages with `cursor` (opaque, from the previous page's
//! `next_cursor`) and `limit` (default [`DEFAULT_LIMIT`], at most
//! [`MAX_LIMIT`]). A cursor is a position in the listing's own order
//! (lots by creation, participants by registration, flags as raised,
//! events by entry index), so pages never repeat or skip an item, even
//! while entries are appended.
//!
//! Every listing needs a token and shows only what the access policy
//! (`crate::access`) lets the viewer see. Hidden items are left out as the
//! page is filled, and for a viewer who does not see everything a page
//! looks at no more than [`POLICY_BUDGET`] items: it may then come back
//! short, even empty, with a `next_cursor` that goes on past what it
//! looked at.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::AppState;
use super::access::{Disclosure, LedgerRecords};
use super::error::{ApiError, ErrorBody};
use crate::access::{ParticipantDetail, ParticipantIdentity, Viewer};
use crate::catalog::epcis::{self, BizStep, EpcisMapping, EpcisType, EventType};
use crate::catalog::{CatalogError, EventFilter, FlagFilter, FlagStatus, Tables};
use crate::codec;
use crate::crypto::Digest;
use crate::ledger::Ledger;
use crate::model::{
    Event, Flag, FlagKind, IdError, LotId, MAX_TIME_MS, Participant, ParticipantId,
    ParticipantKind, StateView, Timestamp,
};

/// Items per page when the request names no `limit`.
pub const DEFAULT_LIMIT: usize = 100;
/// Most items one page holds.
pub const MAX_LIMIT: usize = 1000;
/// Most items one page looks at under the access policy for a viewer who
/// does not see everything: each may cost reads of the state and the log,
/// so this bounds the work of a request whatever the viewer may see.
pub const POLICY_BUDGET: usize = 2_000;

/// How many items a page may look at for the viewer of `disclosure`.
pub(super) fn budget(disclosure: &Disclosure<'_, LedgerRecords<'_>>) -> usize {
    if disclosure.sees_everything() {
        usize::MAX
    } else {
        POLICY_BUDGET
    }
}

impl From<CatalogError> for ApiError {
    fn from(e: CatalogError) -> Self {
        ApiError::internal(&e)
    }
}

/// Runs `read` on a blocking thread over catalog tables that cover every
/// entry committed when the request got here.
pub(super) async fn read_catalog<T: Send + 'static>(
    app: &AppState,
    read: impl FnOnce(&Ledger, &Tables) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let ledger = app.ledger.clone();
    let catalog = app.catalog.clone();
    tokio::task::spawn_blocking(move || {
        let tables = catalog.read(&ledger)?;
        read(&ledger, &tables)
    })
    .await?
}

/// [`read_catalog`] as `viewer`: `read` also gets the access policy's
/// answers for it, over the ledger's records.
pub(super) async fn read_disclosed<T: Send + 'static>(
    app: &AppState,
    viewer: Viewer,
    read: impl FnOnce(&Ledger, &Tables, &Disclosure<'_, LedgerRecords<'_>>) -> Result<T, ApiError>
    + Send
    + 'static,
) -> Result<T, ApiError> {
    read_catalog(app, move |ledger, tables| {
        let records = LedgerRecords(ledger);
        read(ledger, tables, &Disclosure::new(Some(&viewer), &records))
    })
    .await
}

/// A JSON answer serialized where it was built, on the blocking thread
/// that read it: a large answer such as a provenance graph (hundreds of
/// kilobytes, about a millisecond to write) then keeps no async worker
/// thread busy.
pub(super) struct JsonBytes(Vec<u8>);

impl JsonBytes {
    pub(super) fn of<T: Serialize>(value: &T) -> Result<Self, ApiError> {
        serde_json::to_vec(value)
            .map(JsonBytes)
            .map_err(|e| ApiError::internal(&e))
    }
}

impl axum::response::IntoResponse for JsonBytes {
    fn into_response(self) -> axum::response::Response {
        (
            [(
                axum::http::header::CONTENT_TYPE,
                axum::http::HeaderValue::from_static("application/json"),
            )],
            self.0,
        )
            .into_response()
    }
}

/// The time "current" statuses (CAHRA, sanctions, reviews) are judged at:
/// now, or the ledger's latest record time when its clock runs ahead of
/// ours (a ledger recorded on a simulated clock, such as the demo).
pub(super) fn as_of(tables: &Tables) -> Timestamp {
    let now = Timestamp::now();
    tables.last_record_time().map_or(now, |t| t.max(now))
}

// -- cursors and limits ------------------------------------------------------

/// Which listing a cursor belongs to: a cursor from one listing is refused
/// by the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(super) enum Listing {
    Lots = 1,
    Participants = 2,
    Flags = 3,
    Events = 4,
    History = 5,
}

/// First byte of every cursor, so that random text is unlikely to pass.
const CURSOR_MAGIC: u8 = 0x6f;

/// A cursor: base64url (no padding) of the magic byte, the listing and the
/// position to go on from (u64 big-endian).
pub(super) fn cursor(listing: Listing, position: u64) -> String {
    let mut bytes = [0u8; 10];
    bytes[0] = CURSOR_MAGIC;
    bytes[1] = listing as u8;
    bytes[2..].copy_from_slice(&position.to_be_bytes());
    URL_SAFE_NO_PAD.encode(bytes)
}

fn bad_cursor() -> ApiError {
    ApiError::malformed(
        "cursor is not one this listing gave out; pass the next_cursor of the previous page unchanged",
    )
    .with_details(json!({ "parameter": "cursor" }))
}

fn decode_cursor(listing: Listing, text: &str) -> Result<u64, ApiError> {
    let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| bad_cursor())?;
    let bytes: [u8; 10] = bytes.try_into().map_err(|_| bad_cursor())?;
    if bytes[0] != CURSOR_MAGIC || bytes[1] != listing as u8 {
        return Err(bad_cursor());
    }
    let mut position = [0u8; 8];
    position.copy_from_slice(&bytes[2..]);
    Ok(u64::from_be_bytes(position))
}

/// Where a page starts and how many items it may hold.
#[derive(Debug, Clone, Copy)]
pub(super) struct Paging {
    pub from: u64,
    pub limit: usize,
}

pub(super) fn paging(
    listing: Listing,
    cursor: Option<&str>,
    limit: Option<&str>,
) -> Result<Paging, ApiError> {
    let from = match cursor {
        Some(text) => decode_cursor(listing, text)?,
        None => 0,
    };
    let limit = match limit {
        None => DEFAULT_LIMIT,
        Some(text) => match text.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => {
                return Err(ApiError::malformed(format!(
                    "limit {text:?} must be a whole number from 1 to {MAX_LIMIT}"
                ))
                .with_details(json!({ "parameter": "limit", "max": MAX_LIMIT })));
            }
        },
    };
    Ok(Paging { from, limit })
}

/// The `next_cursor` of a page.
pub(super) fn next_cursor(listing: Listing, next: Option<u64>) -> Option<String> {
    next.map(|n| cursor(listing, n))
}

// -- parameters ----------------------------------------------------------------

fn bad_parameter(parameter: &str, message: String) -> ApiError {
    ApiError::malformed(message).with_details(json!({ "parameter": parameter }))
}

pub(super) fn query_rejection(rejection: QueryRejection) -> ApiError {
    ApiError::malformed(rejection.body_text())
}

/// A time parameter: RFC 3339 (`2026-03-01T00:00:00Z`, or with an offset
/// such as `+02:00`, as EPCIS queries write times) or milliseconds since
/// 1970.
pub(super) fn time_parameter(parameter: &str, text: &str) -> Result<Timestamp, ApiError> {
    let parsed = if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        text.parse::<u64>()
            .ok()
            .filter(|ms| *ms <= MAX_TIME_MS)
            .map(Timestamp::from_millis)
    } else {
        rfc3339(text)
    };
    parsed.ok_or_else(|| {
        bad_parameter(
            parameter,
            format!(
                "{parameter} {text:?} must be an RFC 3339 time such as 2026-03-01T00:00:00Z or 2026-03-01T02:00:00+02:00, or milliseconds since 1970"
            ),
        )
    })
}

/// RFC 3339 with `Z` or a numeric offset. A `+` left unescaped in a query
/// string arrives as a space, so a space stands for `+` there.
fn rfc3339(text: &str) -> Option<Timestamp> {
    let b = text.as_bytes();
    let n = b.len();
    let offset = n >= 6 && b[n - 3] == b':' && matches!(b[n - 6], b'+' | b'-' | b' ');
    if !offset {
        return Timestamp::parse(text).ok();
    }
    let digits = |s: &str| -> Option<u64> {
        (s.len() == 2 && s.bytes().all(|c| c.is_ascii_digit())).then(|| s.parse().ok())?
    };
    let (hours, minutes) = (digits(&text[n - 5..n - 3])?, digits(&text[n - 2..])?);
    if hours > 23 || minutes > 59 {
        return None;
    }
    let local = Timestamp::parse(&format!("{}Z", &text[..n - 6])).ok()?;
    let shift = (hours * 60 + minutes) * 60_000;
    // Local time minus the offset is UTC.
    let utc = if b[n - 6] == b'-' {
        local.as_millis().checked_add(shift)?
    } else {
        local.as_millis().checked_sub(shift)?
    };
    (utc <= MAX_TIME_MS).then_some(Timestamp::from_millis(utc))
}

pub(super) fn participant_parameter(
    parameter: &str,
    text: &str,
) -> Result<ParticipantId, ApiError> {
    ParticipantId::new(text).map_err(|e| id_error(parameter, e))
}

pub(super) fn lot_parameter(parameter: &str, text: &str) -> Result<LotId, ApiError> {
    LotId::new(text).map_err(|e| id_error(parameter, e))
}

pub(super) fn id_error(parameter: &str, e: IdError) -> ApiError {
    bad_parameter(parameter, e.to_string())
}

/// One of `values`, by the name its JSON form uses (case does not matter).
pub(super) fn enum_parameter<T: Serialize + Copy>(
    parameter: &str,
    text: &str,
    values: &[T],
) -> Result<T, ApiError> {
    let name = |v: &T| {
        serde_json::to_value(v)
            .ok()
            .and_then(|j| j.as_str().map(str::to_owned))
    };
    values
        .iter()
        .find(|v| name(v).is_some_and(|n| n.eq_ignore_ascii_case(text)))
        .copied()
        .ok_or_else(|| {
            let names: Vec<String> = values.iter().filter_map(name).collect();
            bad_parameter(
                parameter,
                format!("{parameter} {text:?} must be one of {}", names.join(", ")),
            )
        })
}

const PARTICIPANT_KINDS: [ParticipantKind; 8] = [
    ParticipantKind::Operator,
    ParticipantKind::Mine,
    ParticipantKind::Trader,
    ParticipantKind::Transporter,
    ParticipantKind::Smelter,
    ParticipantKind::Buyer,
    ParticipantKind::AssayLab,
    ParticipantKind::Auditor,
];

const FLAG_KINDS: [FlagKind; 8] = [
    FlagKind::CahraOrigin,
    FlagKind::ArtisanalOrigin,
    FlagKind::CahraTransit,
    FlagKind::SupplierNotReviewed,
    FlagKind::ProductionAboveCapacity,
    FlagKind::WeightVariance,
    FlagKind::MissingExportDocument,
    FlagKind::NearMetalTolerance,
];

// -- events --------------------------------------------------------------------

/// One entry's event, as the event listing and lot histories show it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct EventItem {
    index: u64,
    /// SHA-256 of the canonical event bytes, hex.
    event_id: Digest,
    #[serde(rename = "type")]
    #[schema(value_type = String)]
    kind: EventType,
    /// EPCIS 2.0 `eventType` and `bizStep`, with the EPCIS `eventID`;
    /// `null` for events that are not EPCIS events.
    epcis: Option<EpcisView>,
    /// When the signer says it happened (EPCIS `eventTime`).
    event_time: Timestamp,
    /// When the ledger recorded it.
    record_time: Timestamp,
    signer: ParticipantId,
    event: Event,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct EpcisView {
    #[serde(rename = "eventID")]
    event_id: String,
    #[serde(flatten)]
    mapping: EpcisMapping,
}

/// Reads and decodes entry `index` for a listing, if the viewer of
/// `disclosure` may see its event. Blocking.
pub(super) fn visible_event_item(
    ledger: &Ledger,
    disclosure: &Disclosure<'_, LedgerRecords<'_>>,
    index: u64,
) -> Result<Option<EventItem>, ApiError> {
    let (entry, _) = ledger.entry(index)?;
    let event: Event = codec::decode(&entry.signed.event).map_err(|e| {
        ApiError::internal(&format!("entry {index} holds an undecodable event: {e}"))
    })?;
    if !disclosure.event(index, &event)? {
        return Ok(None);
    }
    let event_id = entry.signed.event_id();
    let kind = EventType::of(&event.body);
    Ok(Some(EventItem {
        index,
        event_id,
        kind,
        epcis: epcis::mapping(kind, epcis::is_refused_receipt(&event.body)).map(|mapping| {
            EpcisView {
                event_id: epcis::event_id_uri(&event_id),
                mapping,
            }
        }),
        event_time: event.time,
        record_time: entry.record_time,
        signer: event.signer.clone(),
        event,
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct EventsQuery {
    #[serde(rename = "eventType")]
    event_type: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    #[serde(rename = "GE_eventTime")]
    ge_event_time: Option<String>,
    #[serde(rename = "LT_eventTime")]
    lt_event_time: Option<String>,
    #[serde(rename = "EQ_bizStep")]
    eq_biz_step: Option<String>,
    #[serde(rename = "MATCH_epc")]
    match_epc: Option<String>,
    participant: Option<String>,
    cursor: Option<String>,
    limit: Option<String>,
}

impl EventsQuery {
    fn filter(&self) -> Result<EventFilter, ApiError> {
        let epcis_type = match &self.event_type {
            Some(t) => Some(EpcisType::parse(t).ok_or_else(|| {
                bad_parameter(
                    "eventType",
                    format!(
                        "eventType {t:?} must be one of ObjectEvent, AggregationEvent, TransactionEvent, TransformationEvent"
                    ),
                )
            })?),
            None => None,
        };
        let kind = match &self.kind {
            Some(t) => Some(EventType::parse(t).ok_or_else(|| {
                let names: Vec<&str> = EventType::ALL.iter().map(|t| t.name()).collect();
                bad_parameter(
                    "type",
                    format!("type {t:?} must be one of {}", names.join(", ")),
                )
            })?),
            None => None,
        };
        let lot = match &self.match_epc {
            Some(epc) => Some(epcis::parse_lot_epc(epc).ok_or_else(|| {
                bad_parameter(
                    "MATCH_epc",
                    format!(
                        "MATCH_epc {epc:?} must be a lot's EPC ({}LOT-ID) or a lot id",
                        epcis::LOT_EPC_PREFIX
                    ),
                )
            })?),
            None => None,
        };
        Ok(EventFilter {
            kind,
            epcis_type,
            biz_step: self.eq_biz_step.as_deref().map(BizStep::parse),
            time_from: self
                .ge_event_time
                .as_deref()
                .map(|t| time_parameter("GE_eventTime", t))
                .transpose()?,
            time_to: self
                .lt_event_time
                .as_deref()
                .map(|t| time_parameter("LT_eventTime", t))
                .transpose()?,
            lot,
            participant: self
                .participant
                .as_deref()
                .map(|p| participant_parameter("participant", p))
                .transpose()?,
        })
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct EventsBody {
    events: Vec<EventItem>,
    next_cursor: Option<String>,
}

/// `GET /v1/events`: entries in order with EPCIS-style filters.
#[utoipa::path(
    get,
    path = "/v1/events",
    tag = "state",
    params(EventsQuery),
    responses(
        (status = 200, description = "The events the caller may see, in entry order, filtered: `eventType` (EPCIS type), `type` (oretrail event type), `GE_eventTime` and `LT_eventTime` (RFC 3339 or milliseconds), `EQ_bizStep`, `MATCH_epc` (a lot's EPC or id), `participant`; paged with `cursor` and `limit` (a page may be short: page on while `next_cursor` is not null).", body = EventsBody),
        (status = 400, description = "`MALFORMED_REQUEST`: a filter, cursor or limit that cannot be read.", body = ErrorBody),
        (status = 401, description = "`UNAUTHENTICATED`: no valid bearer token.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(super) async fn events(
    State(app): State<AppState>,
    viewer: Viewer,
    query: Result<Query<EventsQuery>, QueryRejection>,
) -> Result<Json<EventsBody>, ApiError> {
    let Query(query) = query.map_err(query_rejection)?;
    let filter = query.filter()?;
    let paging = paging(
        Listing::Events,
        query.cursor.as_deref(),
        query.limit.as_deref(),
    )?;
    read_disclosed(&app, viewer, move |ledger, tables, disclosure| {
        let page = tables.events_where(
            &filter,
            paging.from,
            paging.limit,
            budget(disclosure),
            |i| visible_event_item(ledger, disclosure, i),
        )?;
        Ok(Json(EventsBody {
            events: page.items,
            next_cursor: next_cursor(Listing::Events, page.next),
        }))
    })
    .await
}

// -- participants ----------------------------------------------------------------

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct ParticipantsQuery {
    kind: Option<String>,
    cursor: Option<String>,
    limit: Option<String>,
}

/// A participant of the listing: its registration for the operator,
/// auditors and its own organisation, its public identity for others.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub(super) enum ListedParticipant {
    Full(Participant),
    Identity(ParticipantIdentity),
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct ParticipantsBody {
    participants: Vec<ListedParticipant>,
    next_cursor: Option<String>,
}

/// `GET /v1/participants`: registered participants in registration order.
#[utoipa::path(
    get,
    path = "/v1/participants",
    tag = "state",
    params(ParticipantsQuery),
    responses(
        (status = 200, description = "Participants in registration order, filtered by `kind`; paged with `cursor` and `limit`. Each in full for the operator, auditors and its own organisation, else its public identity (id, legal name, country, kinds).", body = ParticipantsBody),
        (status = 400, description = "`MALFORMED_REQUEST`: a filter, cursor or limit that cannot be read.", body = ErrorBody),
        (status = 401, description = "`UNAUTHENTICATED`: no valid bearer token.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(super) async fn participants(
    State(app): State<AppState>,
    viewer: Viewer,
    query: Result<Query<ParticipantsQuery>, QueryRejection>,
) -> Result<Json<ParticipantsBody>, ApiError> {
    let Query(query) = query.map_err(query_rejection)?;
    let kind = query
        .kind
        .as_deref()
        .map(|k| enum_parameter("kind", k, &PARTICIPANT_KINDS))
        .transpose()?;
    let paging = paging(
        Listing::Participants,
        query.cursor.as_deref(),
        query.limit.as_deref(),
    )?;
    read_disclosed(&app, viewer, move |_, tables, disclosure| {
        let page = tables.participants(kind, paging.from, paging.limit);
        let mut participants = Vec::with_capacity(page.items.len());
        for id in &page.items {
            let participant = disclosure.records().participant(id)?.ok_or_else(|| {
                ApiError::internal(&format!(
                    "participant {id} is in the catalog, not the state"
                ))
            })?;
            // Identities are public to readers: no participant is left out.
            participants.push(match disclosure.participant(id)? {
                ParticipantDetail::Full => ListedParticipant::Full(participant),
                ParticipantDetail::Identity => {
                    ListedParticipant::Identity(ParticipantIdentity::from(&participant))
                }
            });
        }
        Ok(Json(ParticipantsBody {
            participants,
            next_cursor: next_cursor(Listing::Participants, page.next),
        }))
    })
    .await
}

// -- red flags -------------------------------------------------------------------

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct FlagsQuery {
    status: Option<String>,
    kind: Option<String>,
    lot: Option<String>,
    participant: Option<String>,
    cursor: Option<String>,
    limit: Option<String>,
}

/// A red flag of the register, with its status.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct FlagItem {
    status: FlagStatus,
    #[serde(flatten)]
    flag: Flag,
}

/// A red flag as the register shows it.
pub(super) fn flag_item(flag: Flag) -> FlagItem {
    FlagItem {
        status: if flag.decisions.is_empty() {
            FlagStatus::Open
        } else {
            FlagStatus::Decided
        },
        flag,
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct FlagsBody {
    flags: Vec<FlagItem>,
    next_cursor: Option<String>,
}

/// `GET /v1/flags`: the red-flag register in the order flags were raised.
#[utoipa::path(
    get,
    path = "/v1/flags",
    tag = "state",
    params(FlagsQuery),
    responses(
        (status = 200, description = "The red flags the caller may see, in the order raised, filtered by `status` (open, decided), `kind`, `lot` and `participant`; paged with `cursor` and `limit` (a page may be short: page on while `next_cursor` is not null).", body = FlagsBody),
        (status = 400, description = "`MALFORMED_REQUEST`: a filter, cursor or limit that cannot be read.", body = ErrorBody),
        (status = 401, description = "`UNAUTHENTICATED`: no valid bearer token.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(super) async fn flags(
    State(app): State<AppState>,
    viewer: Viewer,
    query: Result<Query<FlagsQuery>, QueryRejection>,
) -> Result<Json<FlagsBody>, ApiError> {
    let Query(query) = query.map_err(query_rejection)?;
    let filter = FlagFilter {
        status: query
            .status
            .as_deref()
            .map(|s| {
                FlagStatus::parse(s).ok_or_else(|| {
                    bad_parameter("status", format!("status {s:?} must be open or decided"))
                })
            })
            .transpose()?,
        kind: query
            .kind
            .as_deref()
            .map(|k| enum_parameter("kind", k, &FLAG_KINDS))
            .transpose()?,
        lot: query
            .lot
            .as_deref()
            .map(|l| lot_parameter("lot", l))
            .transpose()?,
        participant: query
            .participant
            .as_deref()
            .map(|p| participant_parameter("participant", p))
            .transpose()?,
    };
    let paging = paging(
        Listing::Flags,
        query.cursor.as_deref(),
        query.limit.as_deref(),
    )?;
    read_disclosed(&app, viewer, move |_, tables, disclosure| {
        let page = tables.flags_where(
            &filter,
            paging.from,
            paging.limit,
            budget(disclosure),
            |id| -> Result<Option<FlagItem>, ApiError> {
                let flag = disclosure.records().flag(id)?.ok_or_else(|| {
                    ApiError::internal(&format!("flag {id:?} is in the catalog, not the state"))
                })?;
                Ok(disclosure.flag(&flag)?.then(|| flag_item(flag)))
            },
        )?;
        Ok(Json(FlagsBody {
            flags: page.items,
            next_cursor: next_cursor(Listing::Flags, page.next),
        }))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_are_bound_to_their_listing() {
        let c = cursor(Listing::Events, 4242);
        assert_eq!(decode_cursor(Listing::Events, &c).unwrap(), 4242);
        assert!(decode_cursor(Listing::Lots, &c).is_err());
        assert!(decode_cursor(Listing::Events, "garbage!").is_err());
        assert!(decode_cursor(Listing::Events, &URL_SAFE_NO_PAD.encode([0x6f, 4])).is_err());
    }

    #[test]
    fn times_are_rfc3339_or_milliseconds() {
        assert_eq!(
            time_parameter("t", "1767225600000").unwrap(),
            Timestamp::from_millis(1_767_225_600_000)
        );
        assert_eq!(
            time_parameter("t", "2026-01-01T00:00:00Z").unwrap(),
            Timestamp::from_millis(1_767_225_600_000)
        );
        for local in [
            "2026-01-01T02:00:00+02:00",
            "2026-01-01T02:00:00 02:00",
            "2025-12-31T19:30:00-04:30",
        ] {
            assert_eq!(
                time_parameter("t", local).unwrap(),
                Timestamp::from_millis(1_767_225_600_000),
                "{local}"
            );
        }
        assert!(time_parameter("t", "2026-01-01T02:00:00+25:00").is_err());
        assert!(time_parameter("t", "yesterday").is_err());
        assert!(time_parameter("t", "99999999999999999999").is_err());
    }

    #[test]
    fn enum_parameters_take_their_json_names_in_any_case() {
        assert_eq!(
            enum_parameter("kind", "assay_lab", &PARTICIPANT_KINDS).unwrap(),
            ParticipantKind::AssayLab
        );
        assert_eq!(
            enum_parameter("kind", "cahraorigin", &FLAG_KINDS).unwrap(),
            FlagKind::CahraOrigin
        );
        let e = enum_parameter("kind", "miner", &PARTICIPANT_KINDS).unwrap_err();
        assert!(
            e.body().message.contains("mine, trader"),
            "{}",
            e.body().message
        );
    }
}
