//! Line-item receipt summary: every delivery a site or organisation took
//! in (or refused) in a period, with its supplier, mines of origin,
//! masses, assays, contained metal and documents.
//!
//! A line is a `receive` entry whose signer (the receiver) is covered by
//! the scope and whose record time falls in the period. For an accepted
//! receipt the masses are the lot's as the receiver took it in: the wet
//! mass it weighed, and the dry mass and contained metal the rules scaled
//! to that weight. A refused receipt is listed and marked, with the lot as
//! dispatched; it counts in no total. The supplier is the lot's custodian
//! before the receipt (who dispatched it); the owner is who owned it then
//! (a trader may own what a transporter ships). Documents are every one
//! the lot's history carried up to the receipt: those of its dispatches,
//! its assay certificates, documents attached to it, and the receipt's own.

use std::collections::HashMap;

use serde::Serialize;

use super::{
    After, Collect, Coverage, Directory, Ending, MetalTotals, Params, Period, Rendered, Report,
    ReportHeader, Request, Row, changed_flags, joined, lot_before,
};
use crate::audit::AuditError;
use crate::crypto::Digest;
use crate::ledger::Accepted;
use crate::model::{
    Assay, AssayStage, CountryCode, DocumentKind, DocumentRef, Element, EventBody, FlagId, Grams,
    LotId, LotKind, LotStatus, ParticipantId, Ppb, SiteId, SiteScale, Timestamp,
};

/// The report's kind, as the CLI names it.
pub const KIND: &str = "receipts";

/// Asks for the receipt summary.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReceiptsRequest(pub Params);

impl Request for ReceiptsRequest {
    fn start(&self, directory: &Directory) -> Result<Box<dyn Collect>, AuditError> {
        Ok(Box::new(Collector {
            coverage: directory.coverage(self.0.scope.as_ref())?,
            period: self.0.period,
            documents: HashMap::new(),
            lines: Vec::new(),
        }))
    }
}

/// Where a document reference was recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DocumentSource {
    Dispatch,
    Assay,
    Attachment,
    Receipt,
}

impl DocumentSource {
    fn name(self) -> &'static str {
        match self {
            DocumentSource::Dispatch => "dispatch",
            DocumentSource::Assay => "assay",
            DocumentSource::Attachment => "attachment",
            DocumentSource::Receipt => "receipt",
        }
    }
}

/// A document reference and the entry that recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DocumentLine {
    pub source: DocumentSource,
    pub entry: u64,
    pub kind: DocumentKind,
    pub sha256: Digest,
}

/// One site's share of the lot's payable metal. The site's details are
/// absent only for a site the state does not hold (never in a log that
/// verifies: lots are created at registered sites).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OriginLine {
    pub site: SiteId,
    pub name: Option<String>,
    pub country: Option<CountryCode>,
    pub scale: Option<SiteScale>,
    /// Whether the site was determined to be in a CAHRA at the receipt.
    pub cahra: bool,
    pub share_ppb: Ppb,
}

/// One element's contained metal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Contained {
    pub element: Element,
    pub grams: Grams,
}

/// One receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReceiptLine {
    pub entry: u64,
    pub recorded_at: Timestamp,
    /// When the receiver says it received the lot.
    pub event_time: Timestamp,
    pub lot: LotId,
    pub kind: LotKind,
    /// The payable metal its origin shares are counted in.
    pub metal: Element,
    pub receiver: ParticipantId,
    pub accepted: bool,
    pub note: String,
    /// Who dispatched it: its custodian before the receipt.
    pub supplier: ParticipantId,
    /// Who owned it at the receipt.
    pub owner: ParticipantId,
    /// The dispatch entry it arrived by.
    pub dispatched_in: Option<u64>,
    pub origins: Vec<OriginLine>,
    /// Wet mass as dispatched.
    pub dispatched_wet: Grams,
    /// Wet mass the receiver weighed.
    pub measured_wet: Grams,
    /// Dry mass as taken in (accepted) or as dispatched (refused).
    pub dry: Grams,
    pub moisture: Ppb,
    pub assay_stage: AssayStage,
    /// Grades, dry basis.
    pub assays: Vec<Assay>,
    pub contained: Vec<Contained>,
    pub documents: Vec<DocumentLine>,
    /// Red flags the receipt raised.
    pub flags: Vec<FlagId>,
}

impl ReceiptLine {
    /// Contained grams of `element` (zero when not assayed).
    pub fn contained_of(&self, element: Element) -> Grams {
        self.contained
            .iter()
            .find(|c| c.element == element)
            .map(|c| c.grams)
            .unwrap_or_default()
    }
}

/// Sums over the accepted receipts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReceiptTotals {
    pub accepted: u64,
    pub refused: u64,
    pub measured_wet: u128,
    pub dry: u128,
    /// Contained grams per element.
    pub contained: MetalTotals,
}

/// The receipt summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReceiptsReport {
    pub header: ReportHeader,
    pub totals: ReceiptTotals,
    pub receipts: Vec<ReceiptLine>,
}

/// A receipt as one CSV row: lists are `;`-separated `name=value` items.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReceiptRow {
    pub entry: u64,
    pub recorded_at: Timestamp,
    pub event_time: Timestamp,
    pub lot: LotId,
    pub kind: LotKind,
    pub metal: Element,
    pub receiver: ParticipantId,
    pub status: &'static str,
    pub note: String,
    pub supplier: ParticipantId,
    pub owner: ParticipantId,
    pub dispatched_in: Option<u64>,
    /// `SITE=share_ppb` per origin site.
    pub origin_sites: String,
    /// Countries of the origin sites, once each.
    pub origin_countries: String,
    /// Origin sites in a CAHRA at the receipt.
    pub cahra_sites: String,
    /// Origin sites that are artisanal.
    pub artisanal_sites: String,
    pub dispatched_wet_g: u64,
    pub measured_wet_g: u64,
    pub dry_g: u64,
    pub moisture_ppb: u32,
    pub assay_stage: AssayStage,
    /// `Element=grade_ppb`.
    pub assays_ppb: String,
    /// Contained grams of the payable metal.
    pub payable_contained_g: u64,
    /// `Element=grams`.
    pub contained_g: String,
    /// `source:Kind:sha256`.
    pub documents: String,
    /// `entry/n` per flag raised.
    pub flags: String,
}

impl Row for ReceiptRow {
    const COLUMNS: &'static [&'static str] = &[
        "entry",
        "recorded_at",
        "event_time",
        "lot",
        "kind",
        "metal",
        "receiver",
        "status",
        "note",
        "supplier",
        "owner",
        "dispatched_in",
        "origin_sites",
        "origin_countries",
        "cahra_sites",
        "artisanal_sites",
        "dispatched_wet_g",
        "measured_wet_g",
        "dry_g",
        "moisture_ppb",
        "assay_stage",
        "assays_ppb",
        "payable_contained_g",
        "contained_g",
        "documents",
        "flags",
    ];
}

impl From<&ReceiptLine> for ReceiptRow {
    fn from(l: &ReceiptLine) -> Self {
        let mut countries: Vec<&CountryCode> = l
            .origins
            .iter()
            .filter_map(|o| o.country.as_ref())
            .collect();
        countries.sort();
        countries.dedup();
        ReceiptRow {
            entry: l.entry,
            recorded_at: l.recorded_at,
            event_time: l.event_time,
            lot: l.lot.clone(),
            kind: l.kind,
            metal: l.metal,
            receiver: l.receiver.clone(),
            status: if l.accepted { "accepted" } else { "refused" },
            note: l.note.clone(),
            supplier: l.supplier.clone(),
            owner: l.owner.clone(),
            dispatched_in: l.dispatched_in,
            origin_sites: joined(
                l.origins
                    .iter()
                    .map(|o| format!("{}={}", o.site, o.share_ppb.get())),
            ),
            origin_countries: joined(countries),
            cahra_sites: joined(l.origins.iter().filter(|o| o.cahra).map(|o| &o.site)),
            artisanal_sites: joined(
                l.origins
                    .iter()
                    .filter(|o| o.scale == Some(SiteScale::Artisanal))
                    .map(|o| &o.site),
            ),
            dispatched_wet_g: l.dispatched_wet.0,
            measured_wet_g: l.measured_wet.0,
            dry_g: l.dry.0,
            moisture_ppb: l.moisture.get(),
            assay_stage: l.assay_stage,
            assays_ppb: joined(
                l.assays
                    .iter()
                    .map(|a| format!("{:?}={}", a.element, a.grade.get())),
            ),
            payable_contained_g: l.contained_of(l.metal).0,
            contained_g: joined(
                l.contained
                    .iter()
                    .map(|c| format!("{:?}={}", c.element, c.grams.0)),
            ),
            documents: joined(
                l.documents
                    .iter()
                    .map(|d| format!("{}:{:?}:{}", d.source.name(), d.kind, d.sha256)),
            ),
            flags: joined(l.flags.iter().map(|f| format!("{}/{}", f.entry, f.n))),
        }
    }
}

impl Report for ReceiptsReport {
    type Row = ReceiptRow;

    fn header(&self) -> &ReportHeader {
        &self.header
    }

    fn rows(&self) -> Vec<ReceiptRow> {
        self.receipts.iter().map(ReceiptRow::from).collect()
    }

    fn findings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.totals.refused > 0 {
            out.push(format!(
                "deliveries refused in the period (status \"refused\"): {}",
                self.totals.refused
            ));
        }
        let flagged = self.receipts.iter().filter(|r| !r.flags.is_empty()).count();
        if flagged > 0 {
            out.push(format!("receipts that raised red flags: {flagged}"));
        }
        out
    }
}

struct Collector {
    coverage: Coverage,
    period: Period,
    /// Documents each live lot's history carried so far.
    documents: HashMap<LotId, Vec<DocumentLine>>,
    lines: Vec<ReceiptLine>,
}

impl Collector {
    fn remember(&mut self, lot: &LotId, source: DocumentSource, entry: u64, d: &DocumentRef) {
        self.documents
            .entry(lot.clone())
            .or_default()
            .push(DocumentLine {
                source,
                entry,
                kind: d.kind,
                sha256: d.sha256,
            });
    }

    fn receipt(&mut self, a: &Accepted<'_>, receipt: &crate::model::LotReceipt) {
        let index = a.entry.index;
        let after = After::of(a);
        let (Some(before), Some(now)) = (lot_before(a, &receipt.lot), after.lot(&receipt.lot))
        else {
            return;
        };
        let dispatched_in = match before.status {
            LotStatus::InTransit { dispatched_in, .. } => Some(dispatched_in),
            _ => None,
        };
        let origins = now
            .origin
            .shares()
            .iter()
            .map(|share| {
                let site = after.site(&share.site);
                OriginLine {
                    site: share.site.clone(),
                    name: site.map(|s| s.name.clone()),
                    country: site.map(|s| s.country.clone()),
                    scale: site.map(|s| s.scale),
                    cahra: site.is_some_and(|s| s.cahra_at(a.entry.record_time)),
                    share_ppb: share.share,
                }
            })
            .collect();
        let mut documents = self
            .documents
            .get(&receipt.lot)
            .cloned()
            .unwrap_or_default();
        documents.extend(receipt.documents.iter().map(|d| DocumentLine {
            source: DocumentSource::Receipt,
            entry: index,
            kind: d.kind,
            sha256: d.sha256,
        }));
        self.lines.push(ReceiptLine {
            entry: index,
            recorded_at: a.entry.record_time,
            event_time: a.event.time,
            lot: receipt.lot.clone(),
            kind: now.kind,
            metal: now.metal,
            receiver: a.event.signer.clone(),
            accepted: receipt.accepted,
            note: receipt.note.clone(),
            supplier: before.custodian.clone(),
            owner: before.owner.clone(),
            dispatched_in,
            origins,
            dispatched_wet: before.wet,
            measured_wet: receipt.measured_wet,
            dry: now.dry,
            moisture: now.moisture,
            assay_stage: now.assay_stage,
            assays: now.assays.clone(),
            contained: now
                .contained
                .iter()
                .map(|(element, grams)| Contained {
                    element: *element,
                    grams: *grams,
                })
                .collect(),
            documents,
            flags: changed_flags(a)
                .filter(|f| f.id.entry == index)
                .map(|f| f.id)
                .collect(),
        });
    }
}

impl Collect for Collector {
    fn accepted(&mut self, a: &Accepted<'_>) {
        let index = a.entry.index;
        match &a.event.body {
            EventBody::Dispatch(d) => {
                for doc in &d.documents {
                    self.remember(&d.lot, DocumentSource::Dispatch, index, doc);
                }
            }
            EventBody::RecordAssay(r) => {
                if let Some(doc) = &r.certificate {
                    self.remember(&r.lot, DocumentSource::Assay, index, doc);
                }
            }
            EventBody::AttachDocument(d) => {
                self.remember(&d.lot, DocumentSource::Attachment, index, &d.document);
            }
            EventBody::Receive(r)
                if self.period.contains(a.entry.record_time)
                    && self.coverage.covers(&a.event.signer) =>
            {
                self.receipt(a, r);
            }
            _ => {}
        }
        // A lot used up needs no more documents remembered.
        for lot in super::changed_lots(a) {
            if matches!(lot.status, LotStatus::Consumed { .. }) {
                self.documents.remove(&lot.id);
            }
        }
    }

    fn finish(self: Box<Self>, end: &Ending<'_>) -> Result<Box<dyn Rendered>, AuditError> {
        let mut totals = ReceiptTotals::default();
        for line in self.lines.iter() {
            if !line.accepted {
                totals.refused += 1;
                continue;
            }
            totals.accepted += 1;
            totals.measured_wet += u128::from(line.measured_wet.0);
            totals.dry += u128::from(line.dry.0);
            for c in &line.contained {
                totals.contained.add(c.element, c.grams);
            }
        }
        Ok(Box::new(ReceiptsReport {
            header: ReportHeader::new(KIND, end, self.coverage.scope(), self.period),
            totals,
            receipts: self.lines,
        }))
    }
}
