//! Contained-metal mass balance per metal, for a site or organisation and
//! a period.
//!
//! Definitions (all in grams of contained metal, exact integers, judged by
//! record time; "held" means a lot with status `Held` whose custodian the
//! scope covers: a lot in transit is held by nobody):
//!
//! - **opening**: the metal in the lots held at `from` (after every entry
//!   recorded before `from`);
//! - **receipts**: the metal of lots entering custody by a `receive` entry
//!   in the period: deliveries a covered receiver accepted (as weighed at
//!   receipt: the rules scale dry mass and metal to the measured weight),
//!   and refused deliveries that thereby went back into a covered
//!   custodian's holding (returns);
//! - **produced**: the metal of lots created at the scope's own sites (a
//!   mine's or recycler's production);
//! - **outputs**: the metal of lots that left custody by dispatch (a
//!   sale alone moves ownership, not material, and is not an output);
//! - **losses**: for each transformation the scope ran, the metal taken
//!   from its inputs minus the metal in its outputs (negative when the
//!   outputs assay a little more, which the rules allow up to 0.5 %).
//!   Splits and blends conserve metal exactly and appear nowhere;
//! - **closing**: the metal in the lots held at `until` (or at the
//!   checkpoint);
//! - **variance** = (opening + receipts + produced − outputs − losses) −
//!   closing. Every physical movement is counted above, so what remains
//!   is the re-assessment of metal already held: a new assay (a final
//!   assay replacing the provisional one a lot was received on) changes
//!   a lot's metal with no movement. The report lists each such revision;
//!   `unexplained` = variance + revisions, which is zero for every log
//!   the rules accepted (a non-zero figure would mean a rule that let
//!   metal change otherwise).
//!
//! A balance *closes* when its variance is zero. A recovery factor is a
//! transformation's output metal over the metal it consumed, in parts per
//! billion, rounded down (above 10^9 for a gain); both figures are given
//! so it can be checked exactly. The metals reported are the payable
//! metals of the lots held at some point from `from` to `until`; the
//! balance of each counts that element in every lot, payable or not.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;

use super::receipts::Contained;
use super::{
    Collect, Coverage, Directory, Ending, MetalTotals, Params, Period, Rendered, Report,
    ReportHeader, Request, Row, lot_before,
};
use crate::audit::AuditError;
use crate::ledger::Accepted;
use crate::model::{BILLION, Element, EventBody, Grams, Lot, LotId, ParticipantId, Timestamp};

/// The report's kind, as the CLI names it.
pub const KIND: &str = "mass-balance";

/// Asks for the mass balance.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MassBalanceRequest(pub Params);

impl Request for MassBalanceRequest {
    fn start(&self, directory: &Directory) -> Result<Box<dyn Collect>, AuditError> {
        let coverage = directory.coverage(self.0.scope.as_ref())?;
        Ok(Box::new(Collector {
            coverage,
            period: self.0.period,
            held: HashMap::new(),
            opening: None,
            closing: None,
            metals: BTreeSet::new(),
            movements: Vec::new(),
            transformations: Vec::new(),
            revisions: Vec::new(),
            other: Vec::new(),
        }))
    }
}

/// How metal entered or left custody.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MovementKind {
    /// A delivery accepted.
    Receipt,
    /// A refused delivery, back in its dispatcher's holding.
    Return,
    /// A lot created at the scope's site.
    Produced,
    /// A lot dispatched away.
    Dispatch,
}

/// One movement into or out of custody.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Movement {
    pub entry: u64,
    pub recorded_at: Timestamp,
    pub kind: MovementKind,
    pub lot: LotId,
    /// The supplier of a receipt or return, the receiver of a dispatch.
    pub counterparty: Option<ParticipantId>,
    /// The metal that moved.
    pub contained: Vec<Contained>,
}

/// One element through one transformation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Recovery {
    pub element: Element,
    /// Taken from the inputs.
    pub consumed: u64,
    /// In the outputs.
    pub produced: u64,
    /// `consumed - produced`.
    pub loss: i128,
    /// `floor(produced * 10^9 / consumed)`; absent when nothing was consumed.
    pub recovery_ppb: Option<u64>,
}

/// A transformation the scope ran in the period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TransformationLine {
    pub entry: u64,
    pub recorded_at: Timestamp,
    pub process: String,
    pub inputs: Vec<LotId>,
    pub outputs: Vec<LotId>,
    pub recoveries: Vec<Recovery>,
}

/// A held lot's metal re-assessed without moving (a new assay).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Revision {
    pub entry: u64,
    pub recorded_at: Timestamp,
    pub lot: LotId,
    pub element: Element,
    pub before: u64,
    pub after: u64,
    pub change: i128,
}

/// A change of held metal by an event that is neither a movement, a
/// transformation nor an assay (none for a log the rules accepted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OtherChange {
    pub entry: u64,
    pub event: &'static str,
    pub element: Element,
    pub change: i128,
}

/// The balance of one metal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MetalBalance {
    pub metal: Element,
    pub opening: u128,
    pub receipts: u128,
    pub produced: u128,
    pub outputs: u128,
    pub losses: i128,
    /// `opening + receipts + produced - outputs - losses`.
    pub computed_closing: i128,
    /// Metal held at the end of the period.
    pub closing: u128,
    /// `computed_closing - closing`; zero when the balance closes.
    pub variance: i128,
    /// Net change of held metal by assay revisions in the period.
    pub revisions: i128,
    /// `variance + revisions`: zero unless metal changed some other way.
    pub unexplained: i128,
}

/// The mass balance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MassBalanceReport {
    pub header: ReportHeader,
    pub balances: Vec<MetalBalance>,
    pub movements: Vec<Movement>,
    pub transformations: Vec<TransformationLine>,
    pub revisions: Vec<Revision>,
    pub other_changes: Vec<OtherChange>,
}

impl MassBalanceReport {
    /// The balance of `metal`, if reported.
    pub fn balance(&self, metal: Element) -> Option<&MetalBalance> {
        self.balances.iter().find(|b| b.metal == metal)
    }
}

/// A metal's balance as one CSV row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BalanceRow {
    pub metal: Element,
    pub opening_g: u128,
    pub receipts_g: u128,
    pub produced_g: u128,
    pub outputs_g: u128,
    pub losses_g: i128,
    pub computed_closing_g: i128,
    pub closing_g: u128,
    pub variance_g: i128,
    pub revisions_g: i128,
    pub unexplained_g: i128,
    /// Transformations in the period that consumed this metal.
    pub transformations: usize,
    /// Over all of them: `floor(produced * 10^9 / consumed)`.
    pub recovery_ppb: Option<u64>,
}

impl Row for BalanceRow {
    const COLUMNS: &'static [&'static str] = &[
        "metal",
        "opening_g",
        "receipts_g",
        "produced_g",
        "outputs_g",
        "losses_g",
        "computed_closing_g",
        "closing_g",
        "variance_g",
        "revisions_g",
        "unexplained_g",
        "transformations",
        "recovery_ppb",
    ];
}

impl Report for MassBalanceReport {
    type Row = BalanceRow;

    fn header(&self) -> &ReportHeader {
        &self.header
    }

    fn rows(&self) -> Vec<BalanceRow> {
        self.balances
            .iter()
            .map(|b| {
                let mut count = 0;
                let (mut consumed, mut produced) = (0u128, 0u128);
                for r in self.transformations.iter().flat_map(|t| &t.recoveries) {
                    if r.element == b.metal && r.consumed > 0 {
                        count += 1;
                        consumed += u128::from(r.consumed);
                        produced += u128::from(r.produced);
                    }
                }
                BalanceRow {
                    metal: b.metal,
                    opening_g: b.opening,
                    receipts_g: b.receipts,
                    produced_g: b.produced,
                    outputs_g: b.outputs,
                    losses_g: b.losses,
                    computed_closing_g: b.computed_closing,
                    closing_g: b.closing,
                    variance_g: b.variance,
                    revisions_g: b.revisions,
                    unexplained_g: b.unexplained,
                    transformations: count,
                    recovery_ppb: ratio_ppb(produced, consumed),
                }
            })
            .collect()
    }

    fn findings(&self) -> Vec<String> {
        let mut out = Vec::new();
        for b in &self.balances {
            if b.variance != 0 {
                out.push(format!(
                    "the {:?} balance does not close: variance {} g ({} g of assay revisions)",
                    b.metal, b.variance, b.revisions
                ));
            }
            if b.unexplained != 0 {
                out.push(format!(
                    "{} g of {:?} changed by events other than movements, transformations \
                     and assays (see other_changes)",
                    b.unexplained, b.metal
                ));
            }
        }
        out
    }
}

/// `floor(part * 10^9 / whole)`, `None` when `whole` is zero.
fn ratio_ppb(part: u128, whole: u128) -> Option<u64> {
    if whole == 0 {
        return None;
    }
    u64::try_from(part.saturating_mul(u128::from(BILLION)) / whole).ok()
}

/// A held lot: its payable metal and contained metal.
struct Held {
    metal: Element,
    contained: Vec<(Element, Grams)>,
}

struct Collector {
    coverage: Coverage,
    period: Period,
    /// Lots held now.
    held: HashMap<LotId, Held>,
    /// Metal held at `from`, and the payable metals then held.
    opening: Option<MetalTotals>,
    closing: Option<MetalTotals>,
    metals: BTreeSet<Element>,
    movements: Vec<Movement>,
    transformations: Vec<TransformationLine>,
    revisions: Vec<Revision>,
    other: Vec<OtherChange>,
}

impl Collector {
    fn totals(&self) -> MetalTotals {
        let mut t = MetalTotals::default();
        for h in self.held.values() {
            t.add_all(&h.contained);
        }
        t
    }

    fn held_metals(&self) -> impl Iterator<Item = Element> + '_ {
        self.held.values().map(|h| h.metal)
    }

    /// Takes the entry's lot changes into the holding; returns the change
    /// of held metal per element and lot.
    fn update(&mut self, a: &Accepted<'_>) -> Vec<(LotId, Vec<(Element, i128)>)> {
        let mut deltas = Vec::new();
        for lot in super::changed_lots(a) {
            let now: &[(Element, Grams)] = if self.coverage.holds(lot) {
                &lot.contained
            } else {
                &[]
            };
            let was: &[(Element, Grams)] = self
                .held
                .get(&lot.id)
                .map(|h| h.contained.as_slice())
                .unwrap_or(&[]);
            let mut delta: BTreeMap<Element, i128> = BTreeMap::new();
            for (e, g) in now {
                *delta.entry(*e).or_default() += i128::from(g.0);
            }
            for (e, g) in was {
                *delta.entry(*e).or_default() -= i128::from(g.0);
            }
            delta.retain(|_, d| *d != 0);
            if !delta.is_empty() {
                deltas.push((lot.id.clone(), delta.into_iter().collect()));
            }
            if self.coverage.holds(lot) {
                self.held.insert(
                    lot.id.clone(),
                    Held {
                        metal: lot.metal,
                        contained: lot.contained.clone(),
                    },
                );
            } else {
                self.held.remove(&lot.id);
            }
        }
        deltas
    }

    fn movement(
        &mut self,
        a: &Accepted<'_>,
        kind: MovementKind,
        lot: &Lot,
        counterparty: Option<ParticipantId>,
        contained: &[(Element, Grams)],
    ) {
        self.movements.push(Movement {
            entry: a.entry.index,
            recorded_at: a.entry.record_time,
            kind,
            lot: lot.id.clone(),
            counterparty,
            contained: contained
                .iter()
                .map(|(element, grams)| Contained {
                    element: *element,
                    grams: *grams,
                })
                .collect(),
        });
    }

    /// Records what the entry did to the holding, in the period.
    fn record(&mut self, a: &Accepted<'_>) {
        let ids = a.event.body.lots();
        let before: Vec<Option<Lot>> = ids.iter().map(|id| lot_before(a, id).cloned()).collect();
        let was_held: BTreeSet<LotId> = ids
            .iter()
            .filter(|id| self.held.contains_key(**id))
            .map(|id| (*id).clone())
            .collect();
        let deltas = self.update(a);
        for lot in super::changed_lots(a) {
            if self.held.contains_key(&lot.id) {
                self.metals.insert(lot.metal);
            }
        }
        let lot_after = |id: &LotId| super::changed_lots(a).find(|l| l.id == *id);
        match &a.event.body {
            EventBody::Receive(r) => {
                if let (Some(lot), Some(Some(was))) = (lot_after(&r.lot), before.first())
                    && self.held.contains_key(&r.lot)
                {
                    let kind = if r.accepted {
                        MovementKind::Receipt
                    } else {
                        MovementKind::Return
                    };
                    let supplier = if r.accepted {
                        was.custodian.clone()
                    } else {
                        a.event.signer.clone()
                    };
                    self.movement(a, kind, lot, Some(supplier), &lot.contained);
                }
            }
            EventBody::CreateLot(c) => {
                if let Some(lot) = lot_after(&c.lot)
                    && self.held.contains_key(&c.lot)
                {
                    self.movement(a, MovementKind::Produced, lot, None, &lot.contained);
                }
            }
            EventBody::Dispatch(d) => {
                if let Some(Some(was)) = before.first()
                    && was_held.contains(&d.lot)
                {
                    self.movement(
                        a,
                        MovementKind::Dispatch,
                        was,
                        Some(d.to.clone()),
                        &was.contained,
                    );
                }
            }
            EventBody::Transform(t) if self.coverage.covers(&a.event.signer) => {
                let mut consumed = MetalTotals::default();
                for (input, was) in t.inputs.iter().zip(&before) {
                    let (Some(was), Some(now)) = (was, lot_after(&input.lot)) else {
                        continue;
                    };
                    for (e, g) in &was.contained {
                        consumed.add(*e, Grams(g.0.saturating_sub(now.contained_of(*e).0)));
                    }
                }
                let mut produced = MetalTotals::default();
                for o in &t.outputs {
                    if let Some(lot) = lot_after(&o.lot) {
                        produced.add_all(&lot.contained);
                    }
                }
                let elements: BTreeSet<Element> = consumed
                    .iter()
                    .chain(produced.iter())
                    .map(|(e, _)| e)
                    .collect();
                let recoveries = elements
                    .into_iter()
                    .map(|e| {
                        let (c, p) = (consumed.get(e), produced.get(e));
                        Recovery {
                            element: e,
                            consumed: u64::try_from(c).unwrap_or(u64::MAX),
                            produced: u64::try_from(p).unwrap_or(u64::MAX),
                            loss: c as i128 - p as i128,
                            recovery_ppb: ratio_ppb(p, c),
                        }
                    })
                    .collect();
                self.transformations.push(TransformationLine {
                    entry: a.entry.index,
                    recorded_at: a.entry.record_time,
                    process: t.process.clone(),
                    inputs: t.inputs.iter().map(|i| i.lot.clone()).collect(),
                    outputs: t.outputs.iter().map(|o| o.lot.clone()).collect(),
                    recoveries,
                });
            }
            EventBody::RecordAssay(r) => {
                for (lot, changes) in &deltas {
                    let was = before.first().and_then(|b| b.as_ref());
                    let now = lot_after(lot);
                    for (e, change) in changes {
                        self.revisions.push(Revision {
                            entry: a.entry.index,
                            recorded_at: a.entry.record_time,
                            lot: r.lot.clone(),
                            element: *e,
                            before: was.map(|l| l.contained_of(*e).0).unwrap_or(0),
                            after: now.map(|l| l.contained_of(*e).0).unwrap_or(0),
                            change: *change,
                        });
                    }
                }
            }
            // Splits and blends conserve metal exactly: a change here
            // would be reported as unexplained, as would any other.
            other => {
                let mut net: BTreeMap<Element, i128> = BTreeMap::new();
                for (_, changes) in &deltas {
                    for (e, d) in changes {
                        *net.entry(*e).or_default() += d;
                    }
                }
                for (element, change) in net.into_iter().filter(|(_, d)| *d != 0) {
                    self.other.push(OtherChange {
                        entry: a.entry.index,
                        event: other.type_name(),
                        element,
                        change,
                    });
                }
            }
        }
    }
}

impl Collect for Collector {
    fn accepted(&mut self, a: &Accepted<'_>) {
        if self.closing.is_some() {
            return;
        }
        let t = a.entry.record_time;
        if self.period.ended_by(t) {
            if self.opening.is_none() {
                self.open();
            }
            self.closing = Some(self.totals());
            return;
        }
        if !self.period.started_by(t) {
            self.update(a);
            return;
        }
        if self.opening.is_none() {
            self.open();
        }
        self.record(a);
    }

    fn finish(mut self: Box<Self>, end: &Ending<'_>) -> Result<Box<dyn Rendered>, AuditError> {
        if self.opening.is_none() {
            self.open();
        }
        let closing = match self.closing.take() {
            Some(c) => c,
            None => self.totals(),
        };
        let opening = self.opening.take().unwrap_or_default();
        let balances = self
            .metals
            .iter()
            .map(|&metal| self.balance(metal, &opening, &closing))
            .collect();
        Ok(Box::new(MassBalanceReport {
            header: ReportHeader::new(KIND, end, self.coverage.scope(), self.period),
            balances,
            movements: self.movements,
            transformations: self.transformations,
            revisions: self.revisions,
            other_changes: self.other,
        }))
    }
}

impl Collector {
    /// Takes the opening inventory: the holding now, at `from`.
    fn open(&mut self) {
        self.opening = Some(self.totals());
        let metals: Vec<Element> = self.held_metals().collect();
        self.metals.extend(metals);
    }

    fn balance(
        &self,
        metal: Element,
        opening: &MetalTotals,
        closing: &MetalTotals,
    ) -> MetalBalance {
        let of = |contained: &[Contained]| -> u128 {
            contained
                .iter()
                .filter(|c| c.element == metal)
                .map(|c| u128::from(c.grams.0))
                .sum()
        };
        let mut receipts = 0u128;
        let mut produced = 0u128;
        let mut outputs = 0u128;
        for m in &self.movements {
            match m.kind {
                MovementKind::Receipt | MovementKind::Return => receipts += of(&m.contained),
                MovementKind::Produced => produced += of(&m.contained),
                MovementKind::Dispatch => outputs += of(&m.contained),
            }
        }
        let losses: i128 = self
            .transformations
            .iter()
            .flat_map(|t| &t.recoveries)
            .filter(|r| r.element == metal)
            .map(|r| r.loss)
            .sum();
        let revisions: i128 = self
            .revisions
            .iter()
            .filter(|r| r.element == metal)
            .map(|r| r.change)
            .sum();
        let other: i128 = self
            .other
            .iter()
            .filter(|o| o.element == metal)
            .map(|o| o.change)
            .sum();
        let (opening, closing) = (opening.get(metal), closing.get(metal));
        let computed_closing =
            opening as i128 + receipts as i128 + produced as i128 - outputs as i128 - losses;
        let variance = computed_closing - closing as i128;
        debug_assert_eq!(variance + revisions + other, 0);
        MetalBalance {
            metal,
            opening,
            receipts,
            produced,
            outputs,
            losses,
            computed_closing,
            closing,
            variance,
            revisions,
            unexplained: variance + revisions,
        }
    }
}
