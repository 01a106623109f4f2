//! Forward impact: given a mine (or recycling) site newly determined to be
//! in a CAHRA, or a supplier newly sanctioned, every lot its material
//! reached downstream, the share of each lot's payable metal that came
//! from it, who holds and owns each lot now, and every customer that
//! bought or received any of them, with the entries behind each step.
//!
//! How it is followed (README, "Forward impact"):
//! - **A site**: its material starts in the lots created there. A lot made
//!   (split, blended, transformed) from a reached lot is reached at the
//!   entry that made it; dispatches, receipts and sales move a reached lot
//!   without changing it. The share is the site's origin share of the lot
//!   (`model::lot::Origin`, the rules' own figure; zero when the lot's
//!   payable metal took nothing from the site's material, for example an
//!   output of another metal than the site produced).
//! - **A supplier**: its material is every lot it (or anyone acting for
//!   it) produced, received or bought, from that entry on, and what was
//!   made from those lots afterwards. A lot's share from the supplier is
//!   followed along the lot graph like an origin: 100 % for a lot it held,
//!   mixed by the payable metal each input brought (the weights the rules
//!   use for origins, largest-remainder rounding) for a lot made from
//!   several.
//! - A lot's **customers** are the participants that bought it or received
//!   it (accepted receipt) at or after the entry that reached it; the
//!   report's customers are all of those, with the lots of each. Its
//!   **entries** are those of its history from that entry on, each with
//!   event id and leaf hash, so each can be proven against the header's
//!   checkpoint.
//!
//! Shares are in parts per billion, exact integers; no floats.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;

use super::sourcing::{Acquired, EntryLink, MadeBy, Sourcing, is_or_acts_for};
use super::{
    Collect, Directory, Ending, Period, Rendered, Report, ReportHeader, Request, Row, joined,
};
use crate::audit::AuditError;
use crate::ledger::{Accepted, Observer};
use crate::model::{
    BILLION, CahraDetermination, CountryCode, Element, Grams, LotId, LotKind, LotStatus,
    ParticipantId, SanctionRecord, SiteId, apportion,
};

/// Whose material to follow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    Site(SiteId),
    Supplier(ParticipantId),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Site(s) => write!(f, "site {s}"),
            Target::Supplier(p) => write!(f, "supplier {p}"),
        }
    }
}

/// What the ledger says about the target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TargetFacts {
    pub target: Target,
    pub name: String,
    pub country: Option<CountryCode>,
    /// A site's operator.
    pub operator: Option<ParticipantId>,
    /// A site's CAHRA determinations, in entry order.
    pub cahra: Vec<CahraDetermination>,
    /// Sanctions against a supplier, by organisation.
    pub sanctions: Vec<(ParticipantId, SanctionRecord)>,
}

/// How a lot was reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reached {
    /// Created at the site.
    CreatedAtSite,
    /// The supplier produced, received or bought it.
    HeldBySupplier,
    /// Made from reached lots.
    Split,
    Blend,
    Transform,
}

/// A lot the material reached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReachedLot {
    pub lot: LotId,
    pub kind: LotKind,
    pub metal: Element,
    /// The entry from which the lot held the target's material.
    pub reached_in: u64,
    pub how: Reached,
    /// The reached lots it was made from.
    pub from: Vec<LotId>,
    /// Share of its payable metal from the target, in ppb.
    pub share_ppb: u64,
    /// Its payable metal now, and `floor(metal × share / 10^9)` of it.
    pub metal_grams: Grams,
    pub grams_from_target: Grams,
    pub custodian: ParticipantId,
    pub owner: ParticipantId,
    /// `held`, `in_transit` or `consumed`.
    pub status: &'static str,
    pub customers: Vec<ParticipantId>,
    pub entries: Vec<EntryLink>,
}

/// A customer the material reached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Customer {
    pub participant: ParticipantId,
    pub name: String,
    pub country: Option<CountryCode>,
    pub lots: Vec<LotId>,
    /// The sales and receipts by which it got them.
    pub entries: Vec<u64>,
}

/// Every lot and customer the target's material reached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Impact {
    pub target: TargetFacts,
    pub lots: Vec<ReachedLot>,
    pub customers: Vec<Customer>,
}

/// An unknown target, said plainly.
fn unknown(target: &Target, directory: &Directory) -> Option<String> {
    match target {
        Target::Site(s) if directory.site(s).is_none() => Some(format!(
            "site {s} is not registered on this ledger{}",
            ParticipantId::new(s.as_str())
                .ok()
                .filter(|p| directory.participant(p).is_some())
                .map(|p| format!(" ({p} is a participant: follow it with --supplier {p})"))
                .unwrap_or_default()
        )),
        Target::Supplier(p) => directory
            .require_participant(p)
            .err()
            .map(|e| e.to_string()),
        Target::Site(_) => None,
    }
}

/// Shares from the target of every lot its material reached, with the
/// entry that reached each and how, computed in entry order.
fn follow(sourcing: &Sourcing, target: &Target) -> HashMap<LotId, (u64, u64, Reached)> {
    // (entry, lot, reached-by-holding) events in log order: lots made, and
    // for a supplier, the lots it took.
    let mut steps: Vec<(u64, &LotId, bool)> = sourcing
        .lots_in_order()
        .iter()
        .filter_map(|l| sourcing.making(l).map(|m| (m.entry, l, false)))
        .collect();
    if let Target::Supplier(supplier) = target {
        steps.extend(
            sourcing
                .acquisitions()
                .iter()
                .filter(|a| {
                    is_or_acts_for(sourcing, &a.party, supplier) || a.organisation == *supplier
                })
                .map(|a| (a.entry, &a.lot, true)),
        );
    }
    // A lot is made before anything happens to it, even in one entry.
    steps.sort_by_key(|(entry, _, held)| (*entry, *held));
    // Lot → (share ppb, entry reached, how).
    let mut reached: HashMap<LotId, (u64, u64, Reached)> = HashMap::new();
    for (entry, lot, held) in steps {
        if held {
            let slot = reached
                .entry(lot.clone())
                .or_insert((0, entry, Reached::HeldBySupplier));
            slot.0 = BILLION;
            continue;
        }
        let Some(making) = sourcing.making(lot) else {
            continue;
        };
        match &making.how {
            MadeBy::Created { site } => {
                if *target == Target::Site(site.clone()) {
                    reached.insert(lot.clone(), (BILLION, entry, Reached::CreatedAtSite));
                }
            }
            how => {
                let parents: Vec<(u64, u64)> = making
                    .parents
                    .iter()
                    .map(|(p, w)| (reached.get(p).map(|r| r.0).unwrap_or(0), w.0))
                    .collect();
                let any_reached = making.parents.iter().any(|(p, _)| reached.contains_key(p));
                if !any_reached {
                    continue;
                }
                let share = mixed_share(&parents);
                let how = match how {
                    MadeBy::Split => Reached::Split,
                    MadeBy::Blend => Reached::Blend,
                    _ => Reached::Transform,
                };
                reached.insert(lot.clone(), (share, entry, how));
            }
        }
    }
    reached
}

/// The share of a mix from the target: parents' shares weighted by the
/// payable metal each brought, with largest-remainder rounding (equal
/// weights when none brought any).
fn mixed_share(parents: &[(u64, u64)]) -> u64 {
    let all_zero = parents.iter().all(|(_, w)| *w == 0);
    let (mut from, mut rest) = (0u128, 0u128);
    for (share, weight) in parents {
        let w = if all_zero { 1 } else { u128::from(*weight) };
        from += w * u128::from(*share);
        rest += w * u128::from(BILLION.saturating_sub(*share));
    }
    apportion(BILLION, &[from, rest])
        .map(|parts| parts[0])
        .unwrap_or(0)
}

/// Every lot and customer the material of `target` reached.
pub fn impact(sourcing: &Sourcing, target: &Target) -> Impact {
    let followed = follow(sourcing, target);
    let mut lots = Vec::new();
    let mut customers: BTreeMap<&ParticipantId, (BTreeSet<LotId>, BTreeSet<u64>)> = BTreeMap::new();
    let supplier = match target {
        Target::Supplier(p) => Some(p),
        Target::Site(_) => None,
    };
    let mut taken: HashMap<&LotId, Vec<&super::sourcing::Acquisition>> = HashMap::new();
    for a in sourcing.acquisitions() {
        if followed.contains_key(&a.lot) {
            taken.entry(&a.lot).or_default().push(a);
        }
    }
    for id in sourcing.lots_in_order() {
        let Some((followed_share, reached_in, how)) = followed.get(id) else {
            continue;
        };
        let Some(lot) = sourcing.lot(id) else {
            continue;
        };
        let share = match target {
            Target::Site(site) => lot
                .origin
                .shares()
                .iter()
                .find(|s| s.site == *site)
                .map(|s| u64::from(s.share.get()))
                .unwrap_or(0),
            Target::Supplier(_) => *followed_share,
        };
        let mut lot_customers = BTreeSet::new();
        for a in taken.get(id).into_iter().flatten() {
            if a.entry < *reached_in
                || !matches!(a.how, Acquired::Bought | Acquired::Received)
                || supplier.is_some_and(|s| is_or_acts_for(sourcing, &a.party, s))
            {
                continue;
            }
            lot_customers.insert(a.party.clone());
            let c = customers.entry(&a.party).or_default();
            c.0.insert(id.clone());
            c.1.insert(a.entry);
        }
        let metal_grams = lot.contained_of(lot.metal);
        let from = sourcing
            .making(id)
            .map(|m| {
                m.parents
                    .iter()
                    .filter(|(p, _)| followed.contains_key(p))
                    .map(|(p, _)| p.clone())
                    .collect()
            })
            .unwrap_or_default();
        lots.push(ReachedLot {
            lot: id.clone(),
            kind: lot.kind,
            metal: lot.metal,
            reached_in: *reached_in,
            how: *how,
            from,
            share_ppb: share,
            metal_grams,
            grams_from_target: Grams(
                (u128::from(metal_grams.0) * u128::from(share) / u128::from(BILLION)) as u64,
            ),
            custodian: lot.custodian.clone(),
            owner: lot.owner.clone(),
            status: match lot.status {
                LotStatus::Held => "held",
                LotStatus::InTransit { .. } => "in_transit",
                LotStatus::Consumed { .. } => "consumed",
            },
            customers: lot_customers.into_iter().collect(),
            entries: lot
                .history
                .iter()
                .filter(|e| **e >= *reached_in)
                .filter_map(|e| sourcing.entry(*e).cloned())
                .collect(),
        });
    }
    lots.sort_by_key(|l| l.reached_in);
    Impact {
        target: target_facts(sourcing, target),
        lots,
        customers: customers
            .into_iter()
            .map(|(p, (lots, entries))| {
                let participant = sourcing.participant(p);
                Customer {
                    participant: p.clone(),
                    name: participant
                        .map(|x| x.legal_name.clone())
                        .unwrap_or_default(),
                    country: participant.map(|x| x.country.clone()),
                    lots: lots.into_iter().collect(),
                    entries: entries.into_iter().collect(),
                }
            })
            .collect(),
    }
}

fn target_facts(sourcing: &Sourcing, target: &Target) -> TargetFacts {
    match target {
        Target::Site(id) => {
            let site = sourcing.site(id);
            TargetFacts {
                target: target.clone(),
                name: site.map(|s| s.name.clone()).unwrap_or_default(),
                country: site.map(|s| s.country.clone()),
                operator: site.map(|s| s.operator.clone()),
                cahra: site.map(|s| s.cahra.clone()).unwrap_or_default(),
                sanctions: Vec::new(),
            }
        }
        Target::Supplier(id) => {
            let p = sourcing.participant(id);
            TargetFacts {
                target: target.clone(),
                name: p.map(|p| p.legal_name.clone()).unwrap_or_default(),
                country: p.map(|p| p.country.clone()),
                operator: None,
                cahra: Vec::new(),
                sanctions: sourcing
                    .supplier_files()
                    .filter(|f| f.supplier == *id)
                    .flat_map(|f| {
                        f.sanctions
                            .iter()
                            .map(|s| (f.organisation.clone(), s.clone()))
                    })
                    .collect(),
            }
        }
    }
}

/// `audit report impact`: everything the material of a site or supplier
/// reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImpactRequest {
    pub target: Target,
}

impl Request for ImpactRequest {
    fn start(&self, directory: &Directory) -> Result<Box<dyn Collect>, AuditError> {
        if let Some(message) = unknown(&self.target, directory) {
            return Err(AuditError::Filter(message));
        }
        Ok(Box::new(ImpactCollector {
            request: self.clone(),
            sourcing: Sourcing::new(),
        }))
    }
}

struct ImpactCollector {
    request: ImpactRequest,
    sourcing: Sourcing,
}

impl Collect for ImpactCollector {
    fn accepted(&mut self, entry: &Accepted<'_>) {
        self.sourcing.accepted(entry);
    }

    fn finish(self: Box<Self>, end: &Ending<'_>) -> Result<Box<dyn Rendered>, AuditError> {
        let impact = impact(&self.sourcing, &self.request.target);
        let (kind, id) = match &self.request.target {
            Target::Site(s) => ("site", s.to_string()),
            Target::Supplier(p) => ("supplier", p.to_string()),
        };
        let header = ReportHeader::new("impact", end, None, Period::ALL).with(kind, id);
        Ok(Box::new(ImpactReport { header, impact }))
    }
}

/// The forward impact with its report header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImpactReport {
    pub header: ReportHeader,
    #[serde(flatten)]
    pub impact: Impact,
}

/// One reached lot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImpactRow {
    pub lot: String,
    pub kind: LotKind,
    pub metal: Element,
    pub reached_in: u64,
    pub how: Reached,
    pub from: String,
    pub share_ppb: u64,
    pub metal_grams: u64,
    pub grams_from_target: u64,
    pub custodian: String,
    pub owner: String,
    pub status: &'static str,
    pub customers: String,
    pub entries: String,
}

impl Row for ImpactRow {
    const COLUMNS: &'static [&'static str] = &[
        "lot",
        "kind",
        "metal",
        "reached_in",
        "how",
        "from",
        "share_ppb",
        "metal_grams",
        "grams_from_target",
        "custodian",
        "owner",
        "status",
        "customers",
        "entries",
    ];
}

impl Report for ImpactReport {
    type Row = ImpactRow;

    fn header(&self) -> &ReportHeader {
        &self.header
    }

    fn rows(&self) -> Vec<ImpactRow> {
        self.impact
            .lots
            .iter()
            .map(|l| ImpactRow {
                lot: l.lot.to_string(),
                kind: l.kind,
                metal: l.metal,
                reached_in: l.reached_in,
                how: l.how,
                from: joined(&l.from),
                share_ppb: l.share_ppb,
                metal_grams: l.metal_grams.0,
                grams_from_target: l.grams_from_target.0,
                custodian: l.custodian.to_string(),
                owner: l.owner.to_string(),
                status: l.status,
                customers: joined(&l.customers),
                entries: joined(l.entries.iter().map(|e| e.entry)),
            })
            .collect()
    }

    fn findings(&self) -> Vec<String> {
        let live = self
            .impact
            .lots
            .iter()
            .filter(|l| l.status != "consumed" && l.share_ppb > 0)
            .count();
        vec![format!(
            "the material of {} reached {} lots ({live} not used up) and {} customers",
            self.impact.target.target,
            self.impact.lots.len(),
            self.impact.customers.len()
        )]
    }
}
