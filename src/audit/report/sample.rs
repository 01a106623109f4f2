//! A reproducible audit sample: N receipts chosen by a seed, each with the
//! full evidence chain an auditor checks, and the signed checkpoint the
//! sample was drawn from (in the report header).
//!
//! **The choice** (README, "Audit sample"), which anyone can redo from the
//! ledger without this code: take every accepted receipt in the scope and
//! period (receipts by the site's participant, or by anyone acting for the
//! organisation; record time in `[from, until)`); give each the key
//! `SHA-256(seed || event id)`, where `seed` is the seed's text exactly as
//! given (UTF-8 bytes; a number is its decimal digits) and `event id` is
//! the 32 bytes of the receipt's event id (SHA-256 of its event bytes);
//! sort by key, bytewise ascending (ties, which SHA-256 makes practically
//! impossible, by entry index); take the first N. The same seed on the
//! same ledger up to the same checkpoint gives the same receipts; a
//! longer ledger only adds candidates, each of which may rank anywhere.
//! When N is at least the number of receipts, all are taken and the
//! report says so.
//!
//! **The evidence chain** of a sampled receipt: the receipt entry; the
//! dispatch it answers; the lot's history up to the receipt (its creation
//! or the split, blend or transformation that made it, assays, attached
//! documents, earlier dispatches, receipts and sales, corrections); for
//! every lot it was made from, back to the lots created at the mines, that
//! lot's history up to the entry that used it; and the registration and
//! CAHRA determinations (up to the receipt) of every origin site. Each
//! entry is named by index, event id and leaf hash, so each can be checked
//! against the checkpoint with an inclusion proof
//! (`GET /v1/proofs/inclusion`); the documents the entries reference
//! are listed by SHA-256.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::Serialize;

use super::sourcing::{EntryLink, MadeBy, Sourcing};
use super::{
    Collect, Coverage, Directory, Ending, Period, Rendered, Report, ReportHeader, Request, Row,
    Scope,
};
use crate::audit::AuditError;
use crate::crypto::{Digest, sha256};
use crate::ledger::{Accepted, Observer};
use crate::model::{DocumentKind, LotId, ParticipantId, SiteId};

/// The selection rule, as the report states it.
pub const METHOD: &str = "accepted receipts in scope and period, sorted by \
    SHA-256(seed as UTF-8 bytes || 32-byte event id) ascending, ties by entry; the first N";

/// The key a receipt is ranked by.
pub fn selection_key(seed: &str, event_id: &Digest) -> Digest {
    let mut bytes = Vec::with_capacity(seed.len() + Digest::LEN);
    bytes.extend_from_slice(seed.as_bytes());
    bytes.extend_from_slice(event_id.as_bytes());
    sha256(&bytes)
}

/// Why an entry is in a receipt's evidence chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EvidenceRole {
    /// The sampled receipt.
    Receipt,
    /// The dispatch the receipt answers.
    Dispatch,
    /// An earlier entry of the received lot.
    Lot,
    /// An entry of a lot the received lot was made from.
    Upstream,
    /// An origin site's registration.
    SiteRegistration,
    /// An origin site's CAHRA determination.
    CahraDetermination,
}

/// One entry of an evidence chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Evidence {
    pub role: EvidenceRole,
    /// The lot (or site) the entry is evidence about.
    pub about: String,
    #[serde(flatten)]
    pub entry: EntryLink,
}

/// A document an evidence entry references.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EvidenceDocument {
    pub entry: u64,
    pub kind: DocumentKind,
    pub sha256: Digest,
}

/// A lot created at a mine that the received lot came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MineLot {
    pub lot: LotId,
    pub site: SiteId,
    pub created_in: u64,
}

/// A sampled receipt with its evidence chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SampledReceipt {
    /// 1 for the first chosen.
    pub rank: u64,
    /// `SHA-256(seed || event id)`.
    pub key: Digest,
    pub entry: u64,
    pub event_id: Digest,
    pub lot: LotId,
    pub receiver: ParticipantId,
    pub supplier: Option<ParticipantId>,
    /// Entries in index order.
    pub evidence: Vec<Evidence>,
    pub documents: Vec<EvidenceDocument>,
    pub mine_lots: Vec<MineLot>,
}

/// The sample.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditSample {
    pub seed: String,
    pub method: &'static str,
    pub requested: u64,
    /// Receipts the sample was drawn from.
    pub eligible: u64,
    pub taken: u64,
    /// Whether every eligible receipt was taken (N ≥ eligible).
    pub all_taken: bool,
    pub receipts: Vec<SampledReceipt>,
}

/// Draws `count` receipts with `seed` from those `coverage` covers in
/// `period`.
pub fn draw(
    sourcing: &Sourcing,
    coverage: &Coverage,
    period: &Period,
    seed: &str,
    count: u64,
) -> AuditSample {
    let mut eligible: Vec<(Digest, u64, &super::sourcing::Receipt)> = sourcing
        .receipts()
        .iter()
        .filter(|r| r.accepted && coverage.covers(&r.receiver) && period.contains(r.record_time))
        .filter_map(|r| {
            let link = sourcing.entry(r.entry)?;
            Some((selection_key(seed, &link.event_id), r.entry, r))
        })
        .collect();
    eligible.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    let total = eligible.len() as u64;
    let receipts: Vec<SampledReceipt> = eligible
        .into_iter()
        .take(usize::try_from(count).unwrap_or(usize::MAX))
        .enumerate()
        .map(|(i, (key, _, r))| chain(sourcing, i as u64 + 1, key, r))
        .collect();
    AuditSample {
        seed: seed.to_string(),
        method: METHOD,
        requested: count,
        eligible: total,
        taken: receipts.len() as u64,
        all_taken: count >= total,
        receipts,
    }
}

/// The evidence chain of one receipt.
fn chain(
    sourcing: &Sourcing,
    rank: u64,
    key: Digest,
    r: &super::sourcing::Receipt,
) -> SampledReceipt {
    // Entry → (role, what it is about); the first role given wins, and
    // roles are given most specific first.
    let mut found: BTreeMap<u64, (EvidenceRole, String)> = BTreeMap::new();
    let mut note = |entry: u64, role: EvidenceRole, about: &str| {
        found.entry(entry).or_insert((role, about.to_string()));
    };
    note(r.entry, EvidenceRole::Receipt, r.lot.as_str());
    if let Some(d) = r.dispatched_in {
        note(d, EvidenceRole::Dispatch, r.lot.as_str());
    }
    let history_until = |lot: &LotId, until: u64| -> Vec<u64> {
        sourcing
            .lot(lot)
            .map(|l| l.history.iter().copied().filter(|e| *e <= until).collect())
            .unwrap_or_default()
    };
    for e in history_until(&r.lot, r.entry) {
        note(e, EvidenceRole::Lot, r.lot.as_str());
    }
    // Every lot upstream, with the last entry at which it was used to make
    // a lot on the way to the received one.
    let mut used_until: BTreeMap<LotId, u64> = BTreeMap::new();
    let mut queue = VecDeque::from([r.lot.clone()]);
    let mut seen = BTreeSet::from([r.lot.clone()]);
    let mut mine_lots = Vec::new();
    while let Some(lot) = queue.pop_front() {
        let Some(making) = sourcing.making(&lot) else {
            continue;
        };
        if let MadeBy::Created { site } = &making.how {
            mine_lots.push(MineLot {
                lot: lot.clone(),
                site: site.clone(),
                created_in: making.entry,
            });
        }
        for (parent, _) in &making.parents {
            let until = used_until.entry(parent.clone()).or_insert(making.entry);
            *until = (*until).max(making.entry);
            if seen.insert(parent.clone()) {
                queue.push_back(parent.clone());
            }
        }
    }
    for (lot, until) in &used_until {
        for e in history_until(lot, *until) {
            note(e, EvidenceRole::Upstream, lot.as_str());
        }
    }
    mine_lots.sort_by(|a, b| (a.created_in, &a.lot).cmp(&(b.created_in, &b.lot)));
    // The origin sites, and the sites of the mine lots (a site whose
    // material gave no payable metal is not in the origin, but its lot is
    // still in the chain).
    let mut sites: BTreeSet<&SiteId> = mine_lots.iter().map(|m| &m.site).collect();
    if let Some(l) = sourcing.lot(&r.lot) {
        sites.extend(l.origin.shares().iter().map(|s| &s.site));
    }
    for site in sites {
        if let Some(s) = sourcing.site(site) {
            note(
                s.registered_in,
                EvidenceRole::SiteRegistration,
                site.as_str(),
            );
            for d in s.cahra.iter().filter(|d| d.entry <= r.entry) {
                note(d.entry, EvidenceRole::CahraDetermination, site.as_str());
            }
        }
    }
    let mut evidence = Vec::with_capacity(found.len());
    let mut documents = Vec::new();
    for (entry, (role, about)) in found {
        let Some(link) = sourcing.entry(entry) else {
            continue;
        };
        for d in sourcing.documents(entry) {
            documents.push(EvidenceDocument {
                entry,
                kind: d.kind,
                sha256: d.sha256,
            });
        }
        evidence.push(Evidence {
            role,
            about,
            entry: link.clone(),
        });
    }
    SampledReceipt {
        rank,
        key,
        entry: r.entry,
        event_id: sourcing
            .entry(r.entry)
            .map(|e| e.event_id)
            .unwrap_or(Digest::from_bytes([0; 32])),
        lot: r.lot.clone(),
        receiver: r.receiver.clone(),
        supplier: r.supplier.clone(),
        evidence,
        documents,
        mine_lots,
    }
}

/// `audit report sample`: N receipts drawn by a seed, with evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleRequest {
    pub scope: Option<Scope>,
    pub period: Period,
    pub seed: String,
    pub count: u64,
}

impl Request for SampleRequest {
    fn start(&self, directory: &Directory) -> Result<Box<dyn Collect>, AuditError> {
        if self.count == 0 {
            return Err(AuditError::Filter(
                "--count must be at least 1 receipt".into(),
            ));
        }
        let coverage = directory.coverage(self.scope.as_ref())?;
        Ok(Box::new(SampleCollector {
            request: self.clone(),
            coverage,
            sourcing: Sourcing::new(),
        }))
    }
}

struct SampleCollector {
    request: SampleRequest,
    coverage: Coverage,
    sourcing: Sourcing,
}

impl Collect for SampleCollector {
    fn accepted(&mut self, entry: &Accepted<'_>) {
        self.sourcing.accepted(entry);
    }

    fn finish(self: Box<Self>, end: &Ending<'_>) -> Result<Box<dyn Rendered>, AuditError> {
        let r = &self.request;
        let sample = draw(&self.sourcing, &self.coverage, &r.period, &r.seed, r.count);
        let header = ReportHeader::new("sample", end, r.scope.as_ref(), r.period)
            .with("seed", &r.seed)
            .with("count", r.count);
        Ok(Box::new(SampleReport { header, sample }))
    }
}

/// The sample with its report header (which names the checkpoint).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SampleReport {
    pub header: ReportHeader,
    #[serde(flatten)]
    pub sample: AuditSample,
}

/// One evidence entry of one sampled receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SampleRow {
    pub rank: u64,
    pub receipt_entry: u64,
    pub receipt_lot: String,
    pub role: EvidenceRole,
    pub about: String,
    pub entry: u64,
    pub event_type: &'static str,
    pub event_id: Digest,
    pub leaf_hash: Digest,
}

impl Row for SampleRow {
    const COLUMNS: &'static [&'static str] = &[
        "rank",
        "receipt_entry",
        "receipt_lot",
        "role",
        "about",
        "entry",
        "event_type",
        "event_id",
        "leaf_hash",
    ];
}

impl Report for SampleReport {
    type Row = SampleRow;

    fn header(&self) -> &ReportHeader {
        &self.header
    }

    fn rows(&self) -> Vec<SampleRow> {
        self.sample
            .receipts
            .iter()
            .flat_map(|r| {
                r.evidence.iter().map(|e| SampleRow {
                    rank: r.rank,
                    receipt_entry: r.entry,
                    receipt_lot: r.lot.to_string(),
                    role: e.role,
                    about: e.about.clone(),
                    entry: e.entry.entry,
                    event_type: e.entry.event_type,
                    event_id: e.entry.event_id,
                    leaf_hash: e.entry.leaf_hash,
                })
            })
            .collect()
    }

    fn findings(&self) -> Vec<String> {
        let s = &self.sample;
        if s.all_taken {
            vec![format!(
                "{} receipts asked for, {} in scope and period: all of them are taken",
                s.requested, s.eligible
            )]
        } else {
            Vec::new()
        }
    }
}
