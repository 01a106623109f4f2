//! The audit endpoints (`/v1/audit/...`): the same outputs as
//! `oretrail audit ...`, built by `crate::audit` from the log file up to
//! its last intact checkpoint, verified on the way. They read the log the
//! server appends to, read-only, on blocking threads; each request
//! verifies the log from the start, so these are for audits, not for
//! polling.
//!
//! - `GET /v1/audit/bundle`: the audit bundle, streamed (operator and
//!   auditors only: it is the whole ledger).
//! - `GET /v1/audit/epcis`: an EPCIS 2.0 document of a selection. The
//!   operator and auditors get every event the selection picks; anyone
//!   else only those the access policy lets them see
//!   (`access::Disclosure::event`), and the document says so
//!   (`oretrail:disclosedOnly`).
//! - `GET /v1/audit/reports/{kind}`: a report (`audit::report`) as JSON or
//!   CSV. The operator and auditors may ask for any; an organisation only
//!   for its own custody or register (`site` or `org` naming a participant
//!   it represents), and not for the whole ledger, the forward impact of a
//!   mine or supplier (every customer downstream) or an audit sample.

use std::collections::BTreeSet;
use std::io::Write;

use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::mpsc;

use super::AppState;
use super::access::{Disclosure, LedgerRecords, require_everything};
use super::error::{ApiError, ErrorBody};
use super::listing::{lot_parameter, participant_parameter, query_rejection, time_parameter};
use crate::access::Viewer;
use crate::audit::epcis::{self, LotSelection, Reach, Selection, TypeFilter};
use crate::audit::report::cmrt::CmrtRequest;
use crate::audit::report::flags::FlagsRequest;
use crate::audit::report::impact::{ImpactRequest, Target};
use crate::audit::report::kpis::KpisRequest;
use crate::audit::report::mass_balance::MassBalanceRequest;
use crate::audit::report::origin::OriginRequest;
use crate::audit::report::receipts::ReceiptsRequest;
use crate::audit::report::sample::SampleRequest;
use crate::audit::report::{self, Params, Period, Request, Scope};
use crate::audit::{AuditError, LogSnapshot, bundle};
use crate::ledger::{LOG_FILE, Ledger};
use crate::model::{SiteId, Timestamp};

/// Entries read at a time while working out which ones a member may see.
const DISCLOSURE_CHUNK: u64 = 4096;

/// Chunks of a streamed bundle in flight between the reader and the
/// connection: bounds the memory a slow client can pin.
const STREAM_CHUNKS: usize = 8;

impl From<AuditError> for ApiError {
    fn from(e: AuditError) -> Self {
        match e {
            AuditError::Filter(message) => ApiError::not_found(message),
            AuditError::NothingCommitted => ApiError::unavailable(&e),
            other => ApiError::internal(&other),
        }
    }
}

fn snapshot(ledger: &Ledger) -> Result<LogSnapshot, ApiError> {
    Ok(LogSnapshot::open(&ledger.dir().join(LOG_FILE))?)
}

/// `GET /v1/audit/bundle`: the audit bundle of the log up to its latest
/// checkpoint, streamed.
#[utoipa::path(
    get,
    path = "/v1/audit/bundle",
    tag = "audit",
    responses(
        (status = 200, description = "The audit bundle (schemas/ENCODING.md section 11): a header naming origin, log key, entry and checkpoint counts and root, then every frame of the log up to its latest checkpoint. `oretrail audit verify FILE` checks it offline. The `Oretrail-Tree-Size` header gives the entries it holds.", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 401, description = "`UNAUTHENTICATED`: no valid bearer token.", body = ErrorBody),
        (status = 403, description = "`FORBIDDEN`: only the operator and auditors may export the ledger.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(super) async fn bundle(
    State(app): State<AppState>,
    viewer: Viewer,
) -> Result<Response, ApiError> {
    require_everything(&viewer)?;
    let ledger = app.ledger.clone();
    let snapshot = tokio::task::spawn_blocking(move || snapshot(&ledger)).await??;
    let entries = snapshot.entries();
    let (sender, mut receiver) = mpsc::channel::<Result<Bytes, std::io::Error>>(STREAM_CHUNKS);
    tokio::task::spawn_blocking(move || {
        let mut out = std::io::BufWriter::with_capacity(1 << 20, ChannelWriter(sender.clone()));
        if let Err(e) = bundle::export(&snapshot, &mut out, Timestamp::now()) {
            // The client sees the body end early; the bundle's own
            // framing makes a cut one fail verification.
            tracing::warn!(error = %e, "streaming an audit bundle stopped");
            let _ = sender.blocking_send(Err(std::io::Error::other(e.to_string())));
        }
    });
    let stream = futures_util::stream::poll_fn(move |cx| receiver.poll_recv(cx));
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"oretrail-{entries}.bundle\""),
            ),
            (
                header::HeaderName::from_static("oretrail-tree-size"),
                entries.to_string(),
            ),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

/// Sends what is written to it down a channel, in the chunks it is given.
struct ChannelWriter(mpsc::Sender<Result<Bytes, std::io::Error>>);

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client left"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct EpcisQuery {
    /// Only events about this lot (and, with `reach`, the lots it reaches).
    lot: Option<String>,
    /// With `lot`: `lot` (default), `upstream`, `downstream` or `both`.
    reach: Option<String>,
    /// Comma-separated event types: ours (`create_lot`, `dispatch`, ...) or
    /// EPCIS (`ObjectEvent`, `TransformationEvent`, `TransactionEvent`).
    #[serde(rename = "eventType")]
    #[param(rename = "eventType")]
    event_type: Option<String>,
    /// Only events at or after this time (RFC 3339 or milliseconds).
    from: Option<String>,
    /// Only events before this time.
    until: Option<String>,
    /// Only events this participant signed or is a source or destination of.
    participant: Option<String>,
}

impl EpcisQuery {
    fn selection(&self) -> Result<Selection, ApiError> {
        let reach = match self.reach.as_deref() {
            None | Some("lot") => Reach::Lot,
            Some("upstream") => Reach::Upstream,
            Some("downstream") => Reach::Downstream,
            Some("both") => Reach::UpstreamAndDownstream,
            Some(other) => {
                return Err(bad(
                    "reach",
                    format!("reach {other:?} is not one of lot, upstream, downstream, both"),
                ));
            }
        };
        if self.reach.is_some() && self.lot.is_none() {
            return Err(bad("reach", "reach needs a lot"));
        }
        let lot = self
            .lot
            .as_deref()
            .map(|l| lot_parameter("lot", l).map(|lot| LotSelection { lot, reach }))
            .transpose()?;
        let types = match self.event_type.as_deref() {
            None => Vec::new(),
            Some(list) => list
                .split(',')
                .map(|t| {
                    t.trim()
                        .parse::<TypeFilter>()
                        .map_err(|e| bad("eventType", e))
                })
                .collect::<Result<_, _>>()?,
        };
        let period = period(self.from.as_deref(), self.until.as_deref())?;
        let participant = self
            .participant
            .as_deref()
            .map(|p| participant_parameter("participant", p))
            .transpose()?;
        Ok(Selection {
            lot,
            types,
            from: period.from(),
            until: period.until(),
            participant,
            entries: None,
        })
    }
}

/// `GET /v1/audit/epcis`: the custody events a selection picks, as a GS1
/// EPCIS 2.0 JSON-LD document.
#[utoipa::path(
    get,
    path = "/v1/audit/epcis",
    tag = "audit",
    params(EpcisQuery),
    responses(
        (status = 200, description = "An `EPCISDocument` (JSON-LD, valid against the GS1 EPCIS 2.0 schema) of the selected custody events, each with its `eventID`, entry index and entry hash, and the signed checkpoint that commits to them. The operator and auditors get every selected event; anyone else only the events it may see, and the document then carries `oretrail:disclosedOnly`.", content_type = "application/ld+json", body = Object),
        (status = 400, description = "`MALFORMED_REQUEST`: a parameter is not valid (named in `details.parameter`).", body = ErrorBody),
        (status = 401, description = "`UNAUTHENTICATED`: no valid bearer token.", body = ErrorBody),
        (status = 404, description = "`NOT_FOUND`: the lot or participant is not on this ledger, or is a lot the caller may not see.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(super) async fn epcis(
    State(app): State<AppState>,
    viewer: Viewer,
    query: Result<Query<EpcisQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(query_rejection)?;
    let mut selection = query.selection()?;
    let ledger = app.ledger.clone();
    let body = tokio::task::spawn_blocking(move || {
        let snapshot = snapshot(&ledger)?;
        if !viewer.sees_everything() {
            let records = LedgerRecords(&ledger);
            let disclosure = Disclosure::new(Some(&viewer), &records);
            if let Some(chosen) = &selection.lot
                && !disclosure.lot_id(&chosen.lot)?
            {
                return Err(
                    ApiError::not_found(format!("no lot {} on this ledger", chosen.lot))
                        .with_details(json!({ "lot": chosen.lot.as_str() })),
                );
            }
            selection.entries = Some(disclosed_entries(&ledger, &disclosure, snapshot.entries())?);
        }
        let document = epcis::export(&snapshot, &selection, Timestamp::now(), false)?;
        serde_json::to_vec(&document).map_err(|e| ApiError::internal(&e))
    })
    .await??;
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/ld+json")],
        body,
    )
        .into_response())
}

/// The entries below `size` whose events the viewer may see.
fn disclosed_entries(
    ledger: &Ledger,
    disclosure: &Disclosure<'_, LedgerRecords<'_>>,
    size: u64,
) -> Result<BTreeSet<u64>, ApiError> {
    let mut seen = BTreeSet::new();
    let mut start = 0;
    while start < size {
        let end = (start + DISCLOSURE_CHUNK).min(size);
        for entry in ledger.entries(start, end)? {
            let event = crate::codec::decode(&entry.signed.event).map_err(|e| {
                ApiError::internal(&format!(
                    "entry {} holds an undecodable event: {e}",
                    entry.index
                ))
            })?;
            if disclosure.event(entry.index, &event)? {
                seen.insert(entry.index);
            }
        }
        start = end;
    }
    Ok(seen)
}

/// The reports, by the name the path gives.
const REPORTS: [&str; 8] = [
    "receipts",
    "mass-balance",
    "origin",
    "flags",
    "kpis",
    "cmrt",
    "impact",
    "sample",
];

/// Most receipts one audit sample draws over HTTP.
const MAX_SAMPLE: u64 = 10_000;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct ReportQuery {
    /// The participant that holds the lots (a smelter, a warehouse).
    site: Option<String>,
    /// An organisation: the participant and everyone appointed to act for
    /// it (their custody, and its red-flag register).
    org: Option<String>,
    /// Start of the period, inclusive, by record time (RFC 3339 or ms).
    from: Option<String>,
    /// End of the period, exclusive.
    until: Option<String>,
    /// `json` (default) or `csv`.
    format: Option<String>,
    /// `impact`: a registered mine or recycling site.
    mine: Option<String>,
    /// `impact`: a participant (a sanctioned supplier).
    supplier: Option<String>,
    /// `sample`: the seed (any text).
    seed: Option<String>,
    /// `sample`: how many receipts to draw.
    count: Option<String>,
}

fn bad(parameter: &str, message: impl Into<String>) -> ApiError {
    ApiError::malformed(message).with_details(json!({ "parameter": parameter }))
}

/// The `from` and `until` parameters: a non-empty period.
fn period(from: Option<&str>, until: Option<&str>) -> Result<Period, ApiError> {
    let from = from.map(|t| time_parameter("from", t)).transpose()?;
    let until = until.map(|t| time_parameter("until", t)).transpose()?;
    Period::new(from, until).map_err(|e| bad("until", e.to_string()))
}

impl ReportQuery {
    fn scope(&self) -> Result<Option<Scope>, ApiError> {
        Ok(match (&self.site, &self.org) {
            (Some(_), Some(_)) => return Err(bad("org", "give site or org, not both")),
            (Some(site), None) => Some(Scope::Site(participant_parameter("site", site)?)),
            (None, Some(org)) => Some(Scope::Organisation(participant_parameter("org", org)?)),
            (None, None) => None,
        })
    }

    fn period(&self) -> Result<Period, ApiError> {
        period(self.from.as_deref(), self.until.as_deref())
    }

    fn csv(&self) -> Result<bool, ApiError> {
        match self.format.as_deref() {
            None | Some("json") => Ok(false),
            Some("csv") => Ok(true),
            Some(other) => Err(bad(
                "format",
                format!("format {other:?} is not json or csv"),
            )),
        }
    }

    /// The request for report `kind`, refusing parameters it does not take.
    fn request(&self, kind: &str) -> Result<Box<dyn Request>, ApiError> {
        let unused = |parameter: &str, given: bool| {
            if given {
                Err(bad(
                    parameter,
                    format!("the {kind} report does not take {parameter}"),
                ))
            } else {
                Ok(())
            }
        };
        if kind != "impact" {
            unused("mine", self.mine.is_some())?;
            unused("supplier", self.supplier.is_some())?;
        }
        if kind != "sample" {
            unused("seed", self.seed.is_some())?;
            unused("count", self.count.is_some())?;
        }
        let scoped = |scope: Option<Scope>| {
            scope.ok_or_else(|| bad("org", format!("the {kind} report needs org or site")))
        };
        let params = || -> Result<Params, ApiError> {
            Ok(Params {
                scope: self.scope()?,
                period: self.period()?,
            })
        };
        Ok(match kind {
            "receipts" => Box::new(ReceiptsRequest(params()?)),
            "mass-balance" => Box::new(MassBalanceRequest(params()?)),
            "origin" => Box::new(OriginRequest(params()?)),
            "flags" => Box::new(FlagsRequest(params()?)),
            "kpis" => Box::new(KpisRequest {
                scope: scoped(self.scope()?)?,
                period: self.period()?,
            }),
            "cmrt" => Box::new(CmrtRequest {
                scope: scoped(self.scope()?)?,
                period: self.period()?,
            }),
            "impact" => {
                for (parameter, given) in [
                    ("site", self.site.is_some()),
                    ("org", self.org.is_some()),
                    ("from", self.from.is_some()),
                    ("until", self.until.is_some()),
                ] {
                    unused(parameter, given)?;
                }
                let target = match (&self.mine, &self.supplier) {
                    (Some(mine), None) => Target::Site(
                        SiteId::new(mine.as_str()).map_err(|e| bad("mine", e.to_string()))?,
                    ),
                    (None, Some(p)) => Target::Supplier(participant_parameter("supplier", p)?),
                    _ => return Err(bad("mine", "the impact report needs mine or supplier")),
                };
                Box::new(ImpactRequest { target })
            }
            "sample" => {
                let seed = self
                    .seed
                    .clone()
                    .ok_or_else(|| bad("seed", "the sample needs a seed"))?;
                let count = self
                    .count
                    .as_deref()
                    .ok_or_else(|| bad("count", "the sample needs a count"))?
                    .parse::<u64>()
                    .ok()
                    .filter(|n| (1..=MAX_SAMPLE).contains(n))
                    .ok_or_else(|| bad("count", format!("count must be 1 to {MAX_SAMPLE}")))?;
                Box::new(SampleRequest {
                    scope: self.scope()?,
                    period: self.period()?,
                    seed,
                    count,
                })
            }
            other => {
                return Err(ApiError::not_found(format!(
                    "no report {other:?}; the reports are {}",
                    REPORTS.join(", ")
                )));
            }
        })
    }

    /// Whether a viewer who does not see everything may ask for this:
    /// only its own custody or register, and never the reports that reach
    /// across customers.
    fn allowed_for_member(
        &self,
        kind: &str,
        disclosure: &Disclosure<'_, LedgerRecords<'_>>,
    ) -> Result<(), ApiError> {
        if matches!(kind, "impact" | "sample") {
            return Err(forbidden(format!(
                "the {kind} report reaches across customers: only the operator and auditors may ask for it"
            )));
        }
        let Some(scope) = self.scope()? else {
            return Err(forbidden(
                "a report of the whole ledger is for the operator and auditors: name your own site or org",
            ));
        };
        if !disclosure.represents(scope.participant())? {
            return Err(forbidden(format!(
                "{} is not a participant you act for",
                scope.participant()
            )));
        }
        Ok(())
    }
}

fn forbidden(message: impl Into<String>) -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        super::error::code::FORBIDDEN,
        message,
    )
}

/// `GET /v1/audit/reports/{kind}`: an audit report.
#[utoipa::path(
    get,
    path = "/v1/audit/reports/{kind}",
    tag = "audit",
    params(
        ("kind" = String, Path, description = "`receipts`, `mass-balance`, `origin`, `flags`, `kpis`, `cmrt`, `impact` or `sample` (README, \"Audit reports\")."),
        ReportQuery,
    ),
    responses(
        (status = 200, description = "The report: JSON (its header ties it to the signed checkpoint it was computed from: origin, log key, tree size, root and note; then its figures, exact integers) or CSV (a header row, one row per line item). Findings worth a look (a variance, open flags, CAHRA metal) are in the JSON and in `Oretrail-Findings` (their count).", content_type = "application/json", body = Object),
        (status = 400, description = "`MALFORMED_REQUEST`: a parameter is not valid or not taken by this report (named in `details.parameter`).", body = ErrorBody),
        (status = 401, description = "`UNAUTHENTICATED`: no valid bearer token.", body = ErrorBody),
        (status = 403, description = "`FORBIDDEN`: an organisation asked for another's report, the whole ledger's, an impact or a sample.", body = ErrorBody),
        (status = 404, description = "`NOT_FOUND`: no such report, or a participant or site the ledger does not hold.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(super) async fn report(
    State(app): State<AppState>,
    viewer: Viewer,
    kind: Result<axum::extract::Path<String>, axum::extract::rejection::PathRejection>,
    query: Result<Query<ReportQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let axum::extract::Path(kind) = kind.map_err(super::log::path_rejection)?;
    let Query(query) = query.map_err(query_rejection)?;
    let csv = query.csv()?;
    let ledger = app.ledger.clone();
    let (body, findings) = tokio::task::spawn_blocking(move || {
        let request = query.request(&kind)?;
        if !viewer.sees_everything() {
            let records = LedgerRecords(&ledger);
            query.allowed_for_member(&kind, &Disclosure::new(Some(&viewer), &records))?;
        }
        let snapshot = snapshot(&ledger)?;
        let rendered = report::compute(&snapshot, &[request.as_ref()], Timestamp::now(), false)?
            .pop()
            .ok_or_else(|| ApiError::internal(&"the report was not computed"))?;
        let mut body = Vec::new();
        if csv {
            rendered.write_csv(&mut body)?;
        } else {
            rendered.write_json(&mut body)?;
        }
        Ok::<_, ApiError>((body, rendered.findings().len()))
    })
    .await??;
    let content_type = if csv {
        "text/csv; charset=utf-8"
    } else {
        "application/json"
    };
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (
                header::HeaderName::from_static("oretrail-findings"),
                findings.to_string(),
            ),
        ],
        body,
    )
        .into_response())
}
