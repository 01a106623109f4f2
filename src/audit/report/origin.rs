//! Country-of-origin breakdown of contained metal, split into large-scale
//! mined, artisanal and recycled, with CAHRA marking, per metal.
//!
//! Three bases, each per payable metal, the same movements the mass
//! balance counts (`mass_balance`), so each lot is counted once per basis:
//!
//! - **received**: every delivery a covered receiver accepted in the
//!   period, by the payable metal it held as taken in;
//! - **produced**: every lot created at the scope's own sites in the
//!   period (mined or collected);
//! - **dispatched**: every lot a covered custodian dispatched in the
//!   period: what left the site, smelted or not, by the origin its metal
//!   carries (origin shares follow the metal through every blend, split
//!   and transformation).
//!
//! A lot's payable metal is divided among the sites of its origin shares
//! exactly (`model::quantity::apportion`: the parts add up to the lot's
//! grams), and each site's part is counted under the site's country, its
//! category (its registered scale: `LargeScale` is large-scale mined,
//! `Artisanal` artisanal, `Recycling` recycled) and whether the site was
//! determined to be in a CAHRA at the entry's record time. Shares are
//! parts per billion of the basis' total for the metal, apportioned the
//! same way, so a group's shares add up to exactly 10^9.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{
    After, Collect, Coverage, Directory, Ending, Params, Period, Rendered, Report, ReportHeader,
    Request, Row,
};
use crate::audit::AuditError;
use crate::ledger::Accepted;
use crate::model::{
    BILLION, CountryCode, Element, EventBody, Lot, SiteId, SiteScale, Timestamp, apportion,
};

/// The report's kind, as the CLI names it.
pub const KIND: &str = "origin";

/// Asks for the origin breakdown.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OriginRequest(pub Params);

impl Request for OriginRequest {
    fn start(&self, directory: &Directory) -> Result<Box<dyn Collect>, AuditError> {
        Ok(Box::new(Collector {
            coverage: directory.coverage(self.0.scope.as_ref())?,
            period: self.0.period,
            parts: BTreeMap::new(),
            lots: BTreeMap::new(),
        }))
    }
}

/// What the metal was counted on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    Received,
    Produced,
    Dispatched,
}

impl Basis {
    pub fn name(self) -> &'static str {
        match self {
            Basis::Received => "received",
            Basis::Produced => "produced",
            Basis::Dispatched => "dispatched",
        }
    }
}

/// How the metal was won.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    LargeScaleMined,
    Artisanal,
    Recycled,
}

impl From<SiteScale> for Category {
    fn from(scale: SiteScale) -> Self {
        match scale {
            SiteScale::LargeScale => Category::LargeScaleMined,
            SiteScale::Artisanal => Category::Artisanal,
            SiteScale::Recycling => Category::Recycled,
        }
    }
}

/// One site's metal in a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SiteLine {
    pub site: SiteId,
    pub name: String,
    /// Absent only for a site the ledger never registered (no log that
    /// verifies has one).
    pub country: Option<CountryCode>,
    pub category: Category,
    pub cahra: bool,
    pub grams: u128,
}

/// Metal of one country, category and CAHRA status in a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CountryLine {
    pub country: Option<CountryCode>,
    pub category: Category,
    pub cahra: bool,
    pub grams: u128,
    pub share_ppb: u64,
    /// The sites it came from.
    pub sites: Vec<SiteId>,
}

/// A subtotal with its share of the group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Subtotal<K> {
    pub key: K,
    pub grams: u128,
    pub share_ppb: u64,
}

/// The breakdown of one metal on one basis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OriginGroup {
    pub basis: Basis,
    pub metal: Element,
    /// Lots counted.
    pub lots: u64,
    pub total: u128,
    pub countries: Vec<CountryLine>,
    pub categories: Vec<Subtotal<Category>>,
    /// Metal from sites in a CAHRA (`key: true`) and not (`key: false`).
    pub cahra: Vec<Subtotal<bool>>,
    pub sites: Vec<SiteLine>,
}

impl OriginGroup {
    /// The country line for `(country, category, cahra)`, if any.
    pub fn country(&self, country: &str, category: Category, cahra: bool) -> Option<&CountryLine> {
        self.countries.iter().find(|c| {
            c.country.as_ref().is_some_and(|c| c.as_str() == country)
                && c.category == category
                && c.cahra == cahra
        })
    }

    pub fn category(&self, category: Category) -> u128 {
        self.categories
            .iter()
            .find(|c| c.key == category)
            .map_or(0, |c| c.grams)
    }
}

/// The origin breakdown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OriginReport {
    pub header: ReportHeader,
    pub groups: Vec<OriginGroup>,
}

impl OriginReport {
    pub fn group(&self, basis: Basis, metal: Element) -> Option<&OriginGroup> {
        self.groups
            .iter()
            .find(|g| g.basis == basis && g.metal == metal)
    }
}

/// One country line as a CSV row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OriginRow {
    pub basis: Basis,
    pub metal: Element,
    pub country: Option<CountryCode>,
    pub category: Category,
    pub cahra: bool,
    pub grams: u128,
    /// Of the basis' total for the metal.
    pub share_ppb: u64,
    pub sites: String,
}

impl Row for OriginRow {
    const COLUMNS: &'static [&'static str] = &[
        "basis",
        "metal",
        "country",
        "category",
        "cahra",
        "grams",
        "share_ppb",
        "sites",
    ];
}

impl Report for OriginReport {
    type Row = OriginRow;

    fn header(&self) -> &ReportHeader {
        &self.header
    }

    fn rows(&self) -> Vec<OriginRow> {
        self.groups
            .iter()
            .flat_map(|g| {
                g.countries.iter().map(|c| OriginRow {
                    basis: g.basis,
                    metal: g.metal,
                    country: c.country.clone(),
                    category: c.category,
                    cahra: c.cahra,
                    grams: c.grams,
                    share_ppb: c.share_ppb,
                    sites: super::joined(&c.sites),
                })
            })
            .collect()
    }

    fn findings(&self) -> Vec<String> {
        self.groups
            .iter()
            .filter_map(|g| {
                let cahra = g.cahra.iter().find(|s| s.key)?;
                (cahra.grams > 0).then(|| {
                    format!(
                        "{} g of {:?} {} in the period ({} ppb) came from sites in a CAHRA",
                        cahra.grams,
                        g.metal,
                        g.basis.name(),
                        cahra.share_ppb
                    )
                })
            })
            .collect()
    }
}

/// A site part's key: (site, CAHRA at the time).
type Part = (SiteId, bool);

/// A country line's key: (country, category, CAHRA).
type CountryKey = (Option<CountryCode>, Category, bool);

struct Collector {
    coverage: Coverage,
    period: Period,
    /// (basis, metal) → site part → grams.
    parts: BTreeMap<(Basis, Element), BTreeMap<Part, u128>>,
    /// (basis, metal) → lots counted.
    lots: BTreeMap<(Basis, Element), u64>,
}

impl Collector {
    fn count(&mut self, basis: Basis, lot: &Lot, after: &After<'_>, at: Timestamp) {
        let grams = lot.contained_of(lot.metal).0;
        let weights: Vec<u128> = lot
            .origin
            .shares()
            .iter()
            .map(|s| u128::from(s.share.get()))
            .collect();
        // Shares add up to 10^9, so grams × share always fits.
        let split = apportion(grams, &weights).unwrap_or_default();
        let group = self.parts.entry((basis, lot.metal)).or_default();
        for (share, g) in lot.origin.shares().iter().zip(split) {
            let cahra = after.site(&share.site).is_some_and(|s| s.cahra_at(at));
            *group.entry((share.site.clone(), cahra)).or_default() += u128::from(g);
        }
        *self.lots.entry((basis, lot.metal)).or_default() += 1;
    }
}

impl Collect for Collector {
    fn accepted(&mut self, a: &Accepted<'_>) {
        let at = a.entry.record_time;
        if !self.period.contains(at) || !self.coverage.covers(&a.event.signer) {
            return;
        }
        let after = After::of(a);
        let counted: Vec<(Basis, &Lot)> = match &a.event.body {
            EventBody::Receive(r) if r.accepted => after
                .lot(&r.lot)
                .map(|l| (Basis::Received, l))
                .into_iter()
                .collect(),
            EventBody::CreateLot(c) => after
                .lot(&c.lot)
                .map(|l| (Basis::Produced, l))
                .into_iter()
                .collect(),
            EventBody::Dispatch(d) => after
                .lot(&d.lot)
                .map(|l| (Basis::Dispatched, l))
                .into_iter()
                .collect(),
            _ => Vec::new(),
        };
        for (basis, lot) in counted {
            self.count(basis, lot, &after, at);
        }
    }

    fn finish(self: Box<Self>, end: &Ending<'_>) -> Result<Box<dyn Rendered>, AuditError> {
        let directory = end.directory;
        let mut groups = Vec::new();
        for ((basis, metal), parts) in self.parts {
            let sites: Vec<SiteLine> = parts
                .into_iter()
                .map(|((site, cahra), grams)| {
                    let entry = directory.site(&site);
                    SiteLine {
                        name: entry.map(|e| e.name.clone()).unwrap_or_default(),
                        country: entry.map(|e| e.country.clone()),
                        category: entry.map_or(Category::LargeScaleMined, |e| e.scale.into()),
                        site,
                        cahra,
                        grams,
                    }
                })
                .collect();
            let total: u128 = sites.iter().map(|s| s.grams).sum();
            let mut by_country: BTreeMap<CountryKey, (u128, Vec<SiteId>)> = BTreeMap::new();
            let mut by_category: BTreeMap<Category, u128> = BTreeMap::new();
            let mut by_cahra: BTreeMap<bool, u128> = BTreeMap::new();
            for s in &sites {
                let slot = by_country
                    .entry((s.country.clone(), s.category, s.cahra))
                    .or_default();
                slot.0 += s.grams;
                if !slot.1.contains(&s.site) {
                    slot.1.push(s.site.clone());
                }
                *by_category.entry(s.category).or_default() += s.grams;
                *by_cahra.entry(s.cahra).or_default() += s.grams;
            }
            let country_shares = shares(by_country.values().map(|(g, _)| *g));
            let countries = by_country
                .into_iter()
                .zip(country_shares)
                .map(
                    |(((country, category, cahra), (grams, sites)), share_ppb)| CountryLine {
                        country,
                        category,
                        cahra,
                        grams,
                        share_ppb,
                        sites,
                    },
                )
                .collect();
            groups.push(OriginGroup {
                basis,
                metal,
                lots: self.lots.get(&(basis, metal)).copied().unwrap_or(0),
                total,
                countries,
                categories: subtotals(by_category),
                cahra: subtotals(by_cahra),
                sites,
            });
        }
        Ok(Box::new(OriginReport {
            header: ReportHeader::new(KIND, end, self.coverage.scope(), self.period),
            groups,
        }))
    }
}

/// Each amount's share of their sum in parts per billion, apportioned so
/// they add up to exactly 10^9 (all zero when the sum is).
fn shares(amounts: impl Iterator<Item = u128>) -> Vec<u64> {
    let weights: Vec<u128> = amounts.collect();
    apportion(BILLION, &weights).unwrap_or_else(|| vec![0; weights.len()])
}

fn subtotals<K: Copy>(totals: BTreeMap<K, u128>) -> Vec<Subtotal<K>> {
    let share = shares(totals.values().copied());
    totals
        .into_iter()
        .zip(share)
        .map(|((key, grams), share_ppb)| Subtotal {
            key,
            grams,
            share_ppb,
        })
        .collect()
}
