//! Supplier KPIs of one buying organisation (a smelter) for a period, the
//! figures of the customer's responsible-supply-chain page: the share of
//! current suppliers that passed ESG review, the new suppliers that passed
//! their onboarding assessment, the local procurement share, overdue
//! reviews, sanctioned suppliers, and receipts from sanctioned suppliers
//! (which must be zero: the rules refuse them).
//!
//! Definitions (README, "Supplier KPIs"):
//! - The organisation's **suppliers** are every participant it holds a
//!   supplier file on (an onboarding assessment, review, sanction,
//!   grievance or code acknowledgement) and every direct supplier of a
//!   delivery it accepted. The direct supplier of a receipt is the one the
//!   rules name: the lot's owner when it belongs to another organisation,
//!   else the organisation that sold it to the receiver.
//! - Point-in-time figures are judged **as of** the period's last
//!   millisecond (`until` − 1 ms), or, for a period without an end, the
//!   record time of the last entry the report covers: the state at the
//!   checkpoint.
//! - A supplier is **current** when no sanction of the organisation is in
//!   force against it as of that instant and either it delivered (an
//!   accepted receipt) in the twelve months (365 days) up to it, or its
//!   file is active: its latest onboarding assessment passed, or it holds
//!   a review whose validity covers the instant.
//! - It **passed ESG review** when its latest review recorded by then
//!   passed and has not expired (`SupplierFile::review_current_at`, the
//!   check the receipt policy applies).
//! - A **new supplier passed** in the period when an onboarding
//!   assessment recorded in the period passed (counted once per supplier).
//! - **Local procurement**: the organisation's host countries are its
//!   registration country and the countries of the sites it operates; a
//!   supplier is local when it is registered in one of them. The share is
//!   given by suppliers (those that delivered in the period) and by
//!   payable metal received in the period (per metal, and all metals
//!   together), from accepted receipts' weights.
//! - A review is **overdue** for a current supplier whose latest review has
//!   expired (`valid_until` at or before the instant) with no renewal.
//! - A supplier is **sanctioned** when a blacklisting or ban by the
//!   organisation is in force as of the instant.
//! - **Receipts from sanctioned suppliers** are accepted receipts in the
//!   period for which any party behind the lot (its direct supplier, or an
//!   operator of one of its origin sites) was sanctioned by the
//!   organisation at the receipt's record time, as the rules judge it. The
//!   rules refuse such deliveries, so the figure is zero in any ledger that
//!   verifies; a non-zero figure is reported under `alerts`.
//!
//! Receipts and onboarding assessments fall in the period by their record
//! time, the time the rules judged them at. Shares are exact fractions,
//! with parts per billion rounded down; no floats.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::sourcing::{Share, Sourcing, host_countries};
use super::{
    Collect, Directory, Ending, Period, Rendered, Report, ReportHeader, Request, Row, Scope, joined,
};
use crate::audit::AuditError;
use crate::ledger::{Accepted, Observer};
use crate::model::{
    CountryCode, Element, Grams, ParticipantId, SanctionKind, SanctionReason, SupplierFile,
    Timestamp,
};

/// Twelve months, for "delivered recently".
pub const RECENT_MS: u64 = 365 * 24 * 60 * 60 * 1000;

/// The KPIs of one organisation for one period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SupplierKpis {
    pub organisation: ParticipantId,
    pub organisation_name: String,
    pub host_countries: Vec<CountryCode>,
    /// The instant point-in-time figures are judged at.
    pub as_of: Timestamp,
    pub suppliers: u64,
    pub current_suppliers: u64,
    /// Current suppliers with a passed, unexpired ESG review, of all
    /// current suppliers.
    pub passed_esg_review: Share,
    /// Suppliers whose onboarding assessment in the period passed.
    pub new_suppliers_passed: u64,
    /// Local suppliers of those that delivered in the period.
    pub local_procurement_by_suppliers: Share,
    /// Payable metal received in the period from local suppliers, of all
    /// received from suppliers, all metals together.
    pub local_procurement_by_metal: Share,
    pub local_procurement_per_metal: Vec<MetalShare>,
    pub overdue_reviews: u64,
    pub sanctioned_suppliers: u64,
    /// Must be zero: the rules refuse deliveries from sanctioned suppliers.
    pub receipts_from_sanctioned_suppliers: u64,
    pub sanctioned_receipts: Vec<SanctionedReceipt>,
    /// Figures that need attention (a non-zero count of receipts from
    /// sanctioned suppliers).
    pub alerts: Vec<String>,
    /// Each supplier with the facts behind the figures.
    pub supplier_lines: Vec<SupplierLine>,
}

/// Local payable metal of one metal, of all received.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MetalShare {
    pub metal: Element,
    /// Local grams of all grams received.
    pub share: Share,
}

/// An accepted receipt from a party the organisation had sanctioned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SanctionedReceipt {
    pub entry: u64,
    pub lot: crate::model::LotId,
    /// The sanctioned parties and the entries that sanctioned them.
    pub parties: Vec<(ParticipantId, u64)>,
}

/// One supplier, as the KPIs count it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SupplierLine {
    pub supplier: ParticipantId,
    pub name: String,
    pub country: Option<CountryCode>,
    pub local: bool,
    pub current: bool,
    /// Why it is current: `delivered_in_last_12_months`,
    /// `passed_onboarding`, `review_valid`.
    pub current_because: Vec<&'static str>,
    pub review: ReviewStatus,
    pub review_valid_until: Option<Timestamp>,
    pub review_entry: Option<u64>,
    pub overdue: bool,
    /// Entry of a passed onboarding assessment in the period.
    pub onboarded_in_period: Option<u64>,
    pub sanction: Option<SanctionLine>,
    /// Accepted receipts in the period and the payable metal they brought.
    pub receipts_in_period: u64,
    pub metal_in_period: Vec<(Element, Grams)>,
}

/// The latest ESG review as of the instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewStatus {
    Passed,
    Failed,
    Expired,
    None,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SanctionLine {
    pub kind: &'static str,
    pub reason: SanctionReason,
    pub from: Timestamp,
    /// End of a blacklisting; none for a permanent ban.
    pub until: Option<Timestamp>,
    pub entry: u64,
}

/// The instant point-in-time figures are judged at: the period's last
/// millisecond, or the last entry's record time.
pub fn as_of(sourcing: &Sourcing, period: &Period) -> Timestamp {
    match period.until() {
        Some(until) => Timestamp::from_millis(until.as_millis().saturating_sub(1)),
        None => sourcing
            .last_record_time()
            .unwrap_or(Timestamp::from_millis(0)),
    }
}

/// The organisation's supplier KPIs for `period`.
pub fn supplier_kpis(
    sourcing: &Sourcing,
    organisation: &ParticipantId,
    period: &Period,
) -> SupplierKpis {
    let at = as_of(sourcing, period);
    let hosts = host_countries(sourcing, organisation);
    let files: BTreeMap<&ParticipantId, &SupplierFile> = sourcing
        .supplier_files()
        .filter(|f| f.organisation == *organisation)
        .map(|f| (&f.supplier, f))
        .collect();
    // Accepted receipts of the organisation recorded up to the instant.
    let receipts: Vec<_> = sourcing
        .receipts()
        .iter()
        .filter(|r| r.accepted && r.organisation == *organisation && r.record_time <= at)
        .collect();
    let mut suppliers: BTreeSet<&ParticipantId> = files.keys().copied().collect();
    suppliers.extend(receipts.iter().filter_map(|r| r.supplier.as_ref()));
    let recent_from = at.as_millis().saturating_sub(RECENT_MS);

    let mut lines = Vec::new();
    for supplier in suppliers {
        let file = files.get(supplier).copied();
        let participant = sourcing.participant(supplier);
        let country = participant.map(|p| p.country.clone());
        let local = country.as_ref().is_some_and(|c| hosts.contains(c));
        let sanction = file.and_then(|f| f.sanction_at(at)).map(|s| SanctionLine {
            kind: match s.kind {
                SanctionKind::Blacklisted { .. } => "blacklisted",
                SanctionKind::PermanentBan => "permanent_ban",
            },
            reason: s.reason,
            from: s.from,
            until: match s.kind {
                SanctionKind::Blacklisted { until } => Some(until),
                SanctionKind::PermanentBan => None,
            },
            entry: s.imposed_in,
        });
        let theirs: Vec<_> = receipts
            .iter()
            .filter(|r| r.supplier.as_ref() == Some(supplier))
            .collect();
        let delivered_recently = theirs
            .iter()
            .any(|r| r.record_time.as_millis() > recent_from);
        let latest_onboarding = sourcing
            .onboardings()
            .iter()
            .filter(|o| {
                o.organisation == *organisation && o.supplier == *supplier && o.record_time <= at
            })
            .max_by_key(|o| o.entry);
        let latest_review = file.and_then(|f| {
            f.reviews
                .iter()
                .filter(|r| r.reviewed_at <= at)
                .max_by_key(|r| (r.reviewed_at, r.entry))
        });
        let review_valid = latest_review.is_some_and(|r| at < r.valid_until);
        let mut current_because = Vec::new();
        if delivered_recently {
            current_because.push("delivered_in_last_12_months");
        }
        if latest_onboarding.is_some_and(|o| o.passed) {
            current_because.push("passed_onboarding");
        }
        if review_valid {
            current_because.push("review_valid");
        }
        let current = sanction.is_none() && !current_because.is_empty();
        let review = match latest_review {
            None => ReviewStatus::None,
            Some(_) if !review_valid => ReviewStatus::Expired,
            Some(r) if r.passed => ReviewStatus::Passed,
            Some(_) => ReviewStatus::Failed,
        };
        let onboarded_in_period = sourcing
            .onboardings()
            .iter()
            .filter(|o| {
                o.organisation == *organisation
                    && o.supplier == *supplier
                    && o.passed
                    && period.contains(o.record_time)
            })
            .map(|o| o.entry)
            .next();
        let in_period: Vec<_> = theirs
            .iter()
            .filter(|r| period.contains(r.record_time))
            .collect();
        let mut metal: BTreeMap<Element, Grams> = BTreeMap::new();
        for r in &in_period {
            let g = metal.entry(r.metal).or_default();
            *g = Grams(g.0.saturating_add(r.contained.0));
        }
        lines.push(SupplierLine {
            supplier: supplier.clone(),
            name: participant
                .map(|p| p.legal_name.clone())
                .unwrap_or_default(),
            country,
            local,
            current,
            current_because,
            review,
            review_valid_until: latest_review.map(|r| r.valid_until),
            review_entry: latest_review.map(|r| r.entry),
            overdue: current && review == ReviewStatus::Expired,
            onboarded_in_period,
            sanction,
            receipts_in_period: in_period.len() as u64,
            metal_in_period: metal.into_iter().collect(),
        });
    }

    let count = |f: &dyn Fn(&SupplierLine) -> bool| lines.iter().filter(|l| f(l)).count() as u64;
    let current = count(&|l| l.current);
    let passed = count(&|l| l.current && l.review == ReviewStatus::Passed);
    let delivering = count(&|l| l.receipts_in_period > 0);
    let delivering_local = count(&|l| l.receipts_in_period > 0 && l.local);
    let mut per_metal: BTreeMap<Element, (u64, u64)> = BTreeMap::new();
    for l in &lines {
        for (metal, g) in &l.metal_in_period {
            let (local, all) = per_metal.entry(*metal).or_default();
            *all = all.saturating_add(g.0);
            if l.local {
                *local = local.saturating_add(g.0);
            }
        }
    }
    let (local_all, all) = per_metal.values().fold((0u64, 0u64), |(l, a), (x, y)| {
        (l.saturating_add(*x), a.saturating_add(*y))
    });
    let sanctioned_receipts: Vec<SanctionedReceipt> = receipts
        .iter()
        .filter(|r| period.contains(r.record_time) && !r.sanctioned.is_empty())
        .map(|r| SanctionedReceipt {
            entry: r.entry,
            lot: r.lot.clone(),
            parties: r.sanctioned.clone(),
        })
        .collect();
    let mut alerts = Vec::new();
    if !sanctioned_receipts.is_empty() {
        alerts.push(format!(
            "{} accepted receipts from sanctioned suppliers (must be 0): entries {}",
            sanctioned_receipts.len(),
            sanctioned_receipts
                .iter()
                .map(|r| r.entry.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    SupplierKpis {
        organisation: organisation.clone(),
        organisation_name: sourcing
            .participant(organisation)
            .map(|p| p.legal_name.clone())
            .unwrap_or_default(),
        host_countries: hosts,
        as_of: at,
        suppliers: lines.len() as u64,
        current_suppliers: current,
        passed_esg_review: Share::of(passed, current),
        new_suppliers_passed: count(&|l| l.onboarded_in_period.is_some()),
        local_procurement_by_suppliers: Share::of(delivering_local, delivering),
        local_procurement_by_metal: Share::of(local_all, all),
        local_procurement_per_metal: per_metal
            .into_iter()
            .map(|(metal, (local, all))| MetalShare {
                metal,
                share: Share::of(local, all),
            })
            .collect(),
        overdue_reviews: count(&|l| l.overdue),
        sanctioned_suppliers: count(&|l| l.sanction.is_some()),
        receipts_from_sanctioned_suppliers: sanctioned_receipts.len() as u64,
        sanctioned_receipts,
        alerts,
        supplier_lines: lines,
    }
}

/// `audit report kpis`: the supplier KPIs of the scope's organisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KpisRequest {
    pub scope: Scope,
    pub period: Period,
}

impl Request for KpisRequest {
    fn start(&self, directory: &Directory) -> Result<Box<dyn Collect>, AuditError> {
        let coverage = directory.coverage(Some(&self.scope))?;
        let organisation = coverage
            .organisation()
            .unwrap_or(self.scope.participant())
            .clone();
        Ok(Box::new(KpisCollector {
            request: self.clone(),
            organisation,
            sourcing: Sourcing::new(),
        }))
    }
}

struct KpisCollector {
    request: KpisRequest,
    organisation: ParticipantId,
    sourcing: Sourcing,
}

impl Collect for KpisCollector {
    fn accepted(&mut self, entry: &Accepted<'_>) {
        self.sourcing.accepted(entry);
    }

    fn finish(self: Box<Self>, end: &Ending<'_>) -> Result<Box<dyn Rendered>, AuditError> {
        let kpis = supplier_kpis(&self.sourcing, &self.organisation, &self.request.period);
        let header = ReportHeader::new("kpis", end, Some(&self.request.scope), self.request.period)
            .with("organisation", &self.organisation)
            .with("as_of", kpis.as_of);
        Ok(Box::new(KpisReport { header, kpis }))
    }
}

/// The supplier KPIs with their report header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KpisReport {
    pub header: ReportHeader,
    #[serde(flatten)]
    pub kpis: SupplierKpis,
}

/// One KPI figure: a count, or a share as `numerator / denominator` with
/// its parts per billion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KpiRow {
    pub kpi: String,
    pub value: u64,
    pub numerator: Option<u64>,
    pub denominator: Option<u64>,
    pub ppb: Option<u64>,
    pub detail: String,
}

impl Row for KpiRow {
    const COLUMNS: &'static [&'static str] =
        &["kpi", "value", "numerator", "denominator", "ppb", "detail"];
}

impl KpiRow {
    fn count(kpi: &str, value: u64, detail: impl Into<String>) -> Self {
        KpiRow {
            kpi: kpi.into(),
            value,
            numerator: None,
            denominator: None,
            ppb: None,
            detail: detail.into(),
        }
    }

    fn share(kpi: &str, share: Share, detail: impl Into<String>) -> Self {
        KpiRow {
            kpi: kpi.into(),
            value: share.numerator,
            numerator: Some(share.numerator),
            denominator: Some(share.denominator),
            ppb: Some(share.ppb),
            detail: detail.into(),
        }
    }
}

impl Report for KpisReport {
    type Row = KpiRow;

    fn header(&self) -> &ReportHeader {
        &self.header
    }

    fn rows(&self) -> Vec<KpiRow> {
        let k = &self.kpis;
        let mut rows = vec![
            KpiRow::count(
                "suppliers",
                k.suppliers,
                "with a supplier file or a delivery",
            ),
            KpiRow::count(
                "current_suppliers",
                k.current_suppliers,
                "not sanctioned; delivered in the last 12 months or an active file",
            ),
            KpiRow::share(
                "passed_esg_review",
                k.passed_esg_review,
                "current suppliers with a passed, unexpired review",
            ),
            KpiRow::count(
                "new_suppliers_passed",
                k.new_suppliers_passed,
                "onboarding assessments passed in the period",
            ),
            KpiRow::share(
                "local_procurement_by_suppliers",
                k.local_procurement_by_suppliers,
                format!(
                    "suppliers delivering in the period registered in {}",
                    joined(&k.host_countries)
                ),
            ),
            KpiRow::share(
                "local_procurement_by_metal",
                k.local_procurement_by_metal,
                "grams of payable metal received in the period, all metals",
            ),
        ];
        for m in &k.local_procurement_per_metal {
            rows.push(KpiRow::share(
                &format!("local_procurement_by_metal_{:?}", m.metal),
                m.share,
                format!("grams of {:?} received in the period", m.metal),
            ));
        }
        rows.push(KpiRow::count(
            "overdue_reviews",
            k.overdue_reviews,
            "current suppliers whose latest review expired",
        ));
        rows.push(KpiRow::count(
            "sanctioned_suppliers",
            k.sanctioned_suppliers,
            "blacklisted or banned, in force",
        ));
        rows.push(KpiRow::count(
            "receipts_from_sanctioned_suppliers",
            k.receipts_from_sanctioned_suppliers,
            "must be 0",
        ));
        rows
    }

    fn findings(&self) -> Vec<String> {
        let mut findings = self.kpis.alerts.clone();
        if self.kpis.overdue_reviews > 0 {
            findings.push(format!(
                "{} current suppliers have an overdue ESG review: {}",
                self.kpis.overdue_reviews,
                joined(
                    self.kpis
                        .supplier_lines
                        .iter()
                        .filter(|l| l.overdue)
                        .map(|l| &l.supplier)
                )
            ));
        }
        findings
    }
}
