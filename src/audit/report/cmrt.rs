//! Buyer rows in the style of the RMI Conflict Minerals and Extended
//! Minerals Reporting Templates (CMRT/EMRT): for the lots a buyer acquired
//! (bought by a sale, or received with an accepted receipt) in a period,
//! the smelters its metal passed through and the mines it came from, each
//! with its share of the buyer's metal.
//!
//! How the figures are made (README, "CMRT/EMRT rows"):
//! - The buyer's lots are the distinct lots it (or, for an organisation,
//!   anyone acting for it) acquired in the period; each counts once, with
//!   its payable metal as of the buyer's latest acquisition of it in the
//!   period (the receiver's weight when it received the lot after buying
//!   it). Each metal (copper, zinc, ...) is reported on its own.
//! - **Mine rows**: a lot's payable metal is divided among its origin
//!   sites by its origin shares (`model::lot::Origin`, which the rules
//!   carry through every blend, split and transformation), exactly, with
//!   the published largest-remainder rule (`model::quantity::apportion`),
//!   so a lot's site grams add up to its metal. A row gives the site, its
//!   country, its scale (`large_scale`, `artisanal`, `recycled`), whether
//!   it is in a CAHRA (the latest determination in effect as of the
//!   period's last millisecond, or the last entry), and its grams and
//!   share of the buyer's metal.
//! - **Smelter rows**: the organisations that smelted or refined the
//!   material (signed a transformation of it, or of a lot it was made
//!   from). Along the lot graph each lot carries, like its origin, the
//!   share of its metal by the *set* of processors it passed through,
//!   mixed by the payable metal each input brought (the weights the rules
//!   use for origins); a smelter's grams are those of every set it belongs
//!   to. A buyer's metal may pass through several smelters (a smelter and
//!   a separate refinery), so smelter shares may add up to more than the
//!   whole; metal that passed through none (concentrate bought as mined)
//!   is given as `unprocessed` per metal.
//! - Shares are exact fractions of grams, with parts per billion rounded
//!   down; no floats.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use super::sourcing::{Acquired, MadeBy, Share, Sourcing};
use super::{
    Collect, Coverage, Directory, Ending, Period, Rendered, Report, ReportHeader, Request, Row,
    Scope,
};
use crate::audit::AuditError;
use crate::ledger::{Accepted, Observer};
use crate::model::{
    BILLION, CountryCode, Element, Grams, LotId, LotKind, ParticipantId, SiteId, SiteScale,
    Timestamp, apportion,
};

/// The organisations a lot's metal passed through, sorted; empty for
/// metal that no one smelted or refined.
pub type Processors = Vec<ParticipantId>;

/// Shares (ppb, adding up to 10^9) of a lot's payable metal by the set of
/// processors it passed through.
pub type Processing = Vec<(Processors, u64)>;

/// Each lot's [`Processing`], computed along the lot graph in the order
/// the lots were made.
pub fn processing(sourcing: &Sourcing) -> HashMap<LotId, Processing> {
    let mut out: HashMap<LotId, Processing> = HashMap::new();
    for lot in sourcing.lots_in_order() {
        let Some(making) = sourcing.making(lot) else {
            continue;
        };
        let mixed = match &making.how {
            MadeBy::Created { .. } => vec![(Vec::new(), BILLION)],
            _ => {
                let parts: Vec<(&Processing, u64)> = making
                    .parents
                    .iter()
                    .filter_map(|(p, w)| out.get(p).map(|pr| (pr, w.0)))
                    .collect();
                mix(&parts)
            }
        };
        let processing = match &making.how {
            MadeBy::Transform { processor, .. } => {
                let mut with: BTreeMap<Processors, u64> = BTreeMap::new();
                for (set, share) in mixed {
                    let mut set = set;
                    if let Err(at) = set.binary_search(processor) {
                        set.insert(at, processor.clone());
                    }
                    *with.entry(set).or_insert(0) += share;
                }
                with.into_iter().collect()
            }
            _ => mixed,
        };
        out.insert(lot.clone(), processing);
    }
    out
}

/// Mixes compositions in proportion to the payable metal each part
/// brings, exactly (as `Origin::mix` mixes origins). Parts that all bring
/// nothing are mixed equally.
fn mix(parts: &[(&Processing, u64)]) -> Processing {
    let all_zero = parts.iter().all(|(_, w)| *w == 0);
    let mut by_set: BTreeMap<&Processors, u128> = BTreeMap::new();
    for (processing, weight) in parts {
        let weight = if all_zero { 1 } else { u128::from(*weight) };
        for (set, share) in processing.iter() {
            *by_set.entry(set).or_insert(0) += weight * u128::from(*share);
        }
    }
    let weights: Vec<u128> = by_set.values().copied().collect();
    let shares = apportion(BILLION, &weights).unwrap_or_else(|| vec![0; weights.len()]);
    by_set
        .into_keys()
        .zip(shares)
        .filter(|(_, s)| *s > 0)
        .map(|(set, s)| (set.clone(), s))
        .collect()
}

/// `grams` divided by `shares` (ppb, adding up to 10^9), exactly.
fn divide(grams: Grams, shares: &[u64]) -> Vec<u64> {
    let weights: Vec<u128> = shares.iter().map(|s| u128::from(*s)).collect();
    apportion(grams.0, &weights).unwrap_or_else(|| vec![0; shares.len()])
}

/// A lot the buyer acquired, as counted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BuyerLot {
    pub lot: LotId,
    pub kind: Option<LotKind>,
    pub metal: Element,
    /// The acquisition counted: the buyer's latest of the lot in the period.
    pub how: Acquired,
    pub entry: u64,
    pub by: ParticipantId,
    pub grams: Grams,
}

/// The buyer's total of one metal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MetalTotal {
    pub metal: Element,
    pub lots: u64,
    pub grams: Grams,
    /// Grams that passed through no smelter or refinery.
    pub unprocessed: Share,
}

/// A smelter or refiner row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SmelterRow {
    pub metal: Element,
    pub smelter: ParticipantId,
    pub name: String,
    pub country: Option<CountryCode>,
    /// Grams of the buyer's metal that passed through it, of the buyer's
    /// total of the metal.
    pub share: Share,
}

/// How a site produces, in CMRT words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MineScale {
    LargeScale,
    Artisanal,
    Recycled,
}

impl From<SiteScale> for MineScale {
    fn from(s: SiteScale) -> Self {
        match s {
            SiteScale::LargeScale => MineScale::LargeScale,
            SiteScale::Artisanal => MineScale::Artisanal,
            SiteScale::Recycling => MineScale::Recycled,
        }
    }
}

/// A mine (or recycling site) row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MineRow {
    pub metal: Element,
    pub site: SiteId,
    pub name: String,
    pub country: Option<CountryCode>,
    pub scale: Option<MineScale>,
    pub cahra: bool,
    pub operator: Option<ParticipantId>,
    /// Grams of the buyer's metal from the site, of the buyer's total of
    /// the metal.
    pub share: Share,
}

/// The rows of one buyer for one period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BuyerRows {
    pub buyer: ParticipantId,
    pub buyer_name: String,
    /// The instant CAHRA status is judged at.
    pub as_of: Timestamp,
    pub metals: Vec<MetalTotal>,
    pub smelters: Vec<SmelterRow>,
    pub mines: Vec<MineRow>,
    pub lots: Vec<BuyerLot>,
}

/// The rows for the lots acquired in `period` by a participant `coverage`
/// covers (`buyer` names it).
pub fn buyer_rows(
    sourcing: &Sourcing,
    buyer: &ParticipantId,
    coverage: &Coverage,
    period: &Period,
) -> BuyerRows {
    let as_of = super::kpis::as_of(sourcing, period);
    // The buyer's latest acquisition of each lot in the period.
    let mut latest: BTreeMap<&LotId, &super::sourcing::Acquisition> = BTreeMap::new();
    for a in sourcing.acquisitions() {
        if matches!(a.how, Acquired::Bought | Acquired::Received)
            && coverage.covers(&a.party)
            && period.contains(a.record_time)
        {
            latest.insert(&a.lot, a);
        }
    }
    let processing = processing(sourcing);
    let mut totals: BTreeMap<Element, (u64, u64, u64)> = BTreeMap::new();
    let mut smelters: BTreeMap<(Element, &ParticipantId), u64> = BTreeMap::new();
    let mut mines: BTreeMap<(Element, &SiteId), u64> = BTreeMap::new();
    let mut lots = Vec::new();
    for (id, a) in &latest {
        let lot = sourcing.lot(id);
        let (lot_count, grams, unprocessed) = totals.entry(a.metal).or_default();
        *lot_count += 1;
        *grams = grams.saturating_add(a.contained.0);
        if let Some(lot) = lot {
            let shares: Vec<u64> = lot
                .origin
                .shares()
                .iter()
                .map(|s| u64::from(s.share.get()))
                .collect();
            for (s, g) in lot.origin.shares().iter().zip(divide(a.contained, &shares)) {
                let slot = mines.entry((a.metal, &s.site)).or_insert(0);
                *slot = slot.saturating_add(g);
            }
        }
        if let Some(p) = processing.get(*id) {
            let shares: Vec<u64> = p.iter().map(|(_, s)| *s).collect();
            for ((set, _), g) in p.iter().zip(divide(a.contained, &shares)) {
                if set.is_empty() {
                    *unprocessed = unprocessed.saturating_add(g);
                }
                for smelter in set {
                    let slot = smelters.entry((a.metal, smelter)).or_insert(0);
                    *slot = slot.saturating_add(g);
                }
            }
        }
        lots.push(BuyerLot {
            lot: (*id).clone(),
            kind: lot.map(|l| l.kind),
            metal: a.metal,
            how: a.how,
            entry: a.entry,
            by: a.party.clone(),
            grams: a.contained,
        });
    }
    let total_of = |metal: Element| totals.get(&metal).map(|t| t.1).unwrap_or(0);
    BuyerRows {
        buyer: buyer.clone(),
        buyer_name: sourcing
            .participant(buyer)
            .map(|p| p.legal_name.clone())
            .unwrap_or_default(),
        as_of,
        metals: totals
            .iter()
            .map(|(metal, (lots, grams, unprocessed))| MetalTotal {
                metal: *metal,
                lots: *lots,
                grams: Grams(*grams),
                unprocessed: Share::of(*unprocessed, *grams),
            })
            .collect(),
        smelters: smelters
            .into_iter()
            .map(|((metal, smelter), grams)| {
                let p = sourcing.participant(smelter);
                SmelterRow {
                    metal,
                    smelter: smelter.clone(),
                    name: p.map(|p| p.legal_name.clone()).unwrap_or_default(),
                    country: p.map(|p| p.country.clone()),
                    share: Share::of(grams, total_of(metal)),
                }
            })
            .collect(),
        mines: mines
            .into_iter()
            .map(|((metal, site), grams)| {
                let s = sourcing.site(site);
                MineRow {
                    metal,
                    site: site.clone(),
                    name: s.map(|s| s.name.clone()).unwrap_or_default(),
                    country: s.map(|s| s.country.clone()),
                    scale: s.map(|s| s.scale.into()),
                    cahra: s.is_some_and(|s| s.cahra_at(as_of)),
                    operator: s.map(|s| s.operator.clone()),
                    share: Share::of(grams, total_of(metal)),
                }
            })
            .collect(),
        lots,
    }
}

/// `audit report cmrt`: the smelter and mine rows of a buyer (the
/// scope's participant, or its organisation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CmrtRequest {
    pub scope: Scope,
    pub period: Period,
}

impl Request for CmrtRequest {
    fn start(&self, directory: &Directory) -> Result<Box<dyn Collect>, AuditError> {
        let coverage = directory.coverage(Some(&self.scope))?;
        Ok(Box::new(CmrtCollector {
            request: self.clone(),
            coverage,
            sourcing: Sourcing::new(),
        }))
    }
}

struct CmrtCollector {
    request: CmrtRequest,
    coverage: Coverage,
    sourcing: Sourcing,
}

impl Collect for CmrtCollector {
    fn accepted(&mut self, entry: &Accepted<'_>) {
        self.sourcing.accepted(entry);
    }

    fn finish(self: Box<Self>, end: &Ending<'_>) -> Result<Box<dyn Rendered>, AuditError> {
        let rows = buyer_rows(
            &self.sourcing,
            self.request.scope.participant(),
            &self.coverage,
            &self.request.period,
        );
        let header = ReportHeader::new("cmrt", end, Some(&self.request.scope), self.request.period)
            .with("as_of", rows.as_of);
        Ok(Box::new(CmrtReport { header, rows }))
    }
}

/// A buyer's rows with their report header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CmrtReport {
    pub header: ReportHeader,
    #[serde(flatten)]
    pub rows: BuyerRows,
}

/// One CSV row: a smelter row or a mine row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CmrtRow {
    /// `smelter` or `mine`.
    pub row: &'static str,
    pub metal: Element,
    pub id: String,
    pub name: String,
    pub country: String,
    /// Mines only: `large_scale`, `artisanal` or `recycled`.
    pub scale: String,
    /// Mines only: `yes` or `no`.
    pub cahra: String,
    pub grams: u64,
    pub metal_grams: u64,
    pub share_ppb: u64,
}

impl Row for CmrtRow {
    const COLUMNS: &'static [&'static str] = &[
        "row",
        "metal",
        "id",
        "name",
        "country",
        "scale",
        "cahra",
        "grams",
        "metal_grams",
        "share_ppb",
    ];
}

impl Report for CmrtReport {
    type Row = CmrtRow;

    fn header(&self) -> &ReportHeader {
        &self.header
    }

    fn rows(&self) -> Vec<CmrtRow> {
        let country =
            |c: &Option<CountryCode>| c.as_ref().map(|c| c.to_string()).unwrap_or_default();
        let smelters = self.rows.smelters.iter().map(|s| CmrtRow {
            row: "smelter",
            metal: s.metal,
            id: s.smelter.to_string(),
            name: s.name.clone(),
            country: country(&s.country),
            scale: String::new(),
            cahra: String::new(),
            grams: s.share.numerator,
            metal_grams: s.share.denominator,
            share_ppb: s.share.ppb,
        });
        let mines = self.rows.mines.iter().map(|m| CmrtRow {
            row: "mine",
            metal: m.metal,
            id: m.site.to_string(),
            name: m.name.clone(),
            country: country(&m.country),
            scale: match m.scale {
                Some(MineScale::LargeScale) => "large_scale",
                Some(MineScale::Artisanal) => "artisanal",
                Some(MineScale::Recycled) => "recycled",
                None => "",
            }
            .into(),
            cahra: if m.cahra { "yes" } else { "no" }.into(),
            grams: m.share.numerator,
            metal_grams: m.share.denominator,
            share_ppb: m.share.ppb,
        });
        smelters.chain(mines).collect()
    }

    fn findings(&self) -> Vec<String> {
        let mut findings = Vec::new();
        for m in self.rows.mines.iter().filter(|m| m.cahra) {
            findings.push(format!(
                "{} ppb of the buyer's {:?} comes from site {} ({}), in a CAHRA",
                m.share.ppb, m.metal, m.site, m.name
            ));
        }
        if self.rows.lots.is_empty() {
            findings.push("the buyer acquired no lots in the period".into());
        }
        findings
    }
}
