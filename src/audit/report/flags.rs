//! Red-flag register: every red flag raised in the period for a site or
//! organisation, with its decisions (dates, who, notes) and the flags
//! still open at the end of the period.
//!
//! A flag is covered when it is in the organisation's register (the
//! organisation the rules charged with deciding it), or, for a site, when
//! the site's own entry raised it (its receipts, dispatches, lots,
//! transformations). The register lists the covered flags raised in the
//! period and, marked `carried_over`, those raised before it that were
//! still open at its start. It stands as at the end of the period:
//! decisions recorded after `until` are left out, so a flag decided only
//! later is open here.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{
    Collect, Coverage, Directory, Ending, Params, Period, Rendered, Report, ReportHeader, Request,
    Row, changed_flags, joined,
};
use crate::audit::AuditError;
use crate::ledger::Accepted;
use crate::model::{
    Flag, FlagDecisionKind, FlagDecisionRecord, FlagId, FlagKind, LotId, ParticipantId, SiteId,
    Timestamp,
};

/// The report's kind, as the CLI names it.
pub const KIND: &str = "flags";

/// Asks for the red-flag register.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FlagsRequest(pub Params);

impl Request for FlagsRequest {
    fn start(&self, directory: &Directory) -> Result<Box<dyn Collect>, AuditError> {
        Ok(Box::new(Collector {
            coverage: directory.coverage(self.0.scope.as_ref())?,
            period: self.0.period,
            flags: BTreeMap::new(),
            ended: false,
        }))
    }
}

/// Where a flag stands: open, or its latest decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FlagStatus {
    Open,
    Continue,
    Mitigate,
    Suspend,
    Disengage,
}

impl FlagStatus {
    pub fn of(decisions: &[FlagDecisionRecord]) -> Self {
        match decisions.last().map(|d| &d.decision) {
            None => FlagStatus::Open,
            Some(FlagDecisionKind::Continue) => FlagStatus::Continue,
            Some(FlagDecisionKind::Mitigate { .. }) => FlagStatus::Mitigate,
            Some(FlagDecisionKind::Suspend) => FlagStatus::Suspend,
            Some(FlagDecisionKind::Disengage) => FlagStatus::Disengage,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            FlagStatus::Open => "open",
            FlagStatus::Continue => "continue",
            FlagStatus::Mitigate => "mitigate",
            FlagStatus::Suspend => "suspend",
            FlagStatus::Disengage => "disengage",
        }
    }
}

/// One flag of the register.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FlagLine {
    pub id: FlagId,
    pub kind: FlagKind,
    /// Whose register it is in.
    pub organisation: ParticipantId,
    pub lot: Option<LotId>,
    pub site: Option<SiteId>,
    pub supplier: Option<ParticipantId>,
    /// The entry that raised it (`id.entry`), its record time and signer.
    pub raised_in: u64,
    pub raised_at: Timestamp,
    pub raised_by: ParticipantId,
    pub detail: String,
    /// Raised before the period and still open at its start.
    pub carried_over: bool,
    /// Decisions recorded up to the end of the period, oldest first.
    pub decisions: Vec<FlagDecisionRecord>,
    pub status: FlagStatus,
}

/// The red-flag register.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FlagsReport {
    pub header: ReportHeader,
    /// Flags by status at the end of the period.
    pub by_status: BTreeMap<FlagStatus, u64>,
    /// Flags by kind.
    pub by_kind: BTreeMap<String, u64>,
    pub flags: Vec<FlagLine>,
}

impl FlagsReport {
    pub fn flag(&self, id: FlagId) -> Option<&FlagLine> {
        self.flags.iter().find(|f| f.id == id)
    }

    /// Flags open at the end of the period.
    pub fn open(&self) -> impl Iterator<Item = &FlagLine> {
        self.flags.iter().filter(|f| f.status == FlagStatus::Open)
    }
}

/// A flag as one CSV row; its decisions in one cell, oldest first, as
/// `time decision by entry: note`, separated by ` | `.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FlagRow {
    pub flag: String,
    pub kind: FlagKind,
    pub organisation: ParticipantId,
    pub lot: Option<LotId>,
    pub site: Option<SiteId>,
    pub supplier: Option<ParticipantId>,
    pub raised_in: u64,
    pub raised_at: Timestamp,
    pub raised_by: ParticipantId,
    pub carried_over: bool,
    pub status: &'static str,
    pub decisions: usize,
    pub latest_decision_at: Option<Timestamp>,
    pub latest_decision_by: Option<ParticipantId>,
    pub latest_decision_note: Option<String>,
    pub mitigation_plan: Option<String>,
    pub decision_history: String,
    pub detail: String,
}

impl Row for FlagRow {
    const COLUMNS: &'static [&'static str] = &[
        "flag",
        "kind",
        "organisation",
        "lot",
        "site",
        "supplier",
        "raised_in",
        "raised_at",
        "raised_by",
        "carried_over",
        "status",
        "decisions",
        "latest_decision_at",
        "latest_decision_by",
        "latest_decision_note",
        "mitigation_plan",
        "decision_history",
        "detail",
    ];
}

impl From<&FlagLine> for FlagRow {
    fn from(f: &FlagLine) -> Self {
        let latest = f.decisions.last();
        FlagRow {
            flag: format!("{}/{}", f.id.entry, f.id.n),
            kind: f.kind,
            organisation: f.organisation.clone(),
            lot: f.lot.clone(),
            site: f.site.clone(),
            supplier: f.supplier.clone(),
            raised_in: f.raised_in,
            raised_at: f.raised_at,
            raised_by: f.raised_by.clone(),
            carried_over: f.carried_over,
            status: f.status.name(),
            decisions: f.decisions.len(),
            latest_decision_at: latest.map(|d| d.at),
            latest_decision_by: latest.map(|d| d.by.clone()),
            latest_decision_note: latest.map(|d| d.note.clone()),
            mitigation_plan: latest.and_then(|d| match &d.decision {
                FlagDecisionKind::Mitigate { plan } => Some(plan.clone()),
                _ => None,
            }),
            decision_history: f
                .decisions
                .iter()
                .map(|d| {
                    format!(
                        "{} {} by {} in entry {}: {}",
                        d.at,
                        FlagStatus::of(std::slice::from_ref(d)).name(),
                        d.by,
                        d.entry,
                        d.note
                    )
                })
                .collect::<Vec<_>>()
                .join(" | "),
            detail: f.detail.clone(),
        }
    }
}

impl Report for FlagsReport {
    type Row = FlagRow;

    fn header(&self) -> &ReportHeader {
        &self.header
    }

    fn rows(&self) -> Vec<FlagRow> {
        self.flags.iter().map(FlagRow::from).collect()
    }

    fn findings(&self) -> Vec<String> {
        let open: Vec<String> = self
            .open()
            .map(|f| format!("{}/{}", f.id.entry, f.id.n))
            .collect();
        if open.is_empty() {
            return Vec::new();
        }
        vec![format!(
            "red flags open at the end of the period: {} ({})",
            open.len(),
            joined(open)
        )]
    }
}

/// A covered flag as last seen, and who raised it.
struct Tracked {
    flag: Flag,
    raised_by: ParticipantId,
}

struct Collector {
    coverage: Coverage,
    period: Period,
    /// Every covered flag raised before the end of the period.
    flags: BTreeMap<FlagId, Tracked>,
    ended: bool,
}

impl Collect for Collector {
    fn accepted(&mut self, a: &Accepted<'_>) {
        if self.ended || self.period.ended_by(a.entry.record_time) {
            self.ended = true;
            return;
        }
        for flag in changed_flags(a) {
            if let Some(tracked) = self.flags.get_mut(&flag.id) {
                tracked.flag = flag.clone();
            } else if flag.id.entry == a.entry.index
                && self.coverage.covers_flag(flag, &a.event.signer)
            {
                self.flags.insert(
                    flag.id,
                    Tracked {
                        flag: flag.clone(),
                        raised_by: a.event.signer.clone(),
                    },
                );
            }
        }
    }

    fn finish(self: Box<Self>, end: &Ending<'_>) -> Result<Box<dyn Rendered>, AuditError> {
        let period = self.period;
        let mut lines = Vec::new();
        for (id, Tracked { flag, raised_by }) in self.flags {
            let in_period = period.started_by(flag.raised_at);
            // No decision recorded before the period started.
            let open_at_start = flag.decisions.iter().all(|d| period.started_by(d.at));
            if !in_period && !open_at_start {
                continue;
            }
            lines.push(FlagLine {
                id,
                kind: flag.kind,
                organisation: flag.organisation,
                lot: flag.lot,
                site: flag.site,
                supplier: flag.supplier,
                raised_in: id.entry,
                raised_at: flag.raised_at,
                raised_by,
                detail: flag.detail,
                carried_over: !in_period,
                status: FlagStatus::of(&flag.decisions),
                decisions: flag.decisions,
            });
        }
        let mut by_status = BTreeMap::new();
        let mut by_kind = BTreeMap::new();
        for l in &lines {
            *by_status.entry(l.status).or_insert(0) += 1;
            *by_kind.entry(format!("{:?}", l.kind)).or_insert(0) += 1;
        }
        Ok(Box::new(FlagsReport {
            header: ReportHeader::new(KIND, end, self.coverage.scope(), period),
            by_status,
            by_kind,
            flags: lines,
        }))
    }
}
