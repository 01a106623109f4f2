//! The catalog's tables: what the listings and graph walks read, folded
//! from committed entries one at a time by [`Tables::apply`]. Pure: no
//! I/O; the red flags an entry raised are handed in by the caller, who
//! read them from the ledger state.
//!
//! Lots, participants, sites and flags are numbered in the order they first
//! appear in the log (their ordinal, a `u32`), and the tables refer to
//! each other by ordinal, so a link costs four bytes and a graph walk is a
//! few array lookups per lot.

use std::collections::{HashMap, HashSet, VecDeque};

use serde::Serialize;

use super::CatalogError;
use super::epcis::{self, BizStep, EpcisType, EventType};
use super::quantities::{Quantities, shares};
use crate::model::{
    CahraDetermination, CountryCode, Element, Event, EventBody, Flag, FlagDecisionKind, FlagId,
    FlagKind, Grams, LotId, LotKind, LotStatus, ParticipantId, ParticipantKind, Ppb, SiteId,
    SiteScale, Timestamp,
};

/// What the catalog keeps of every entry: 16 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntrySummary {
    /// The event's own time (EPCIS `eventTime`).
    pub time: Timestamp,
    /// Ordinal of the signing participant.
    signer: u32,
    pub kind: EventType,
    /// A receipt that turned the lot away (EPCIS bizStep `accepting`).
    pub refused_receipt: bool,
}

impl EntrySummary {
    pub fn epcis(&self) -> Option<epcis::EpcisMapping> {
        epcis::mapping(self.kind, self.refused_receipt)
    }
}

/// Where a lot is in its life, by ordinals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Held,
    InTransit { to: u32, dispatched_in: u64 },
    Consumed { in_entry: u64 },
}

/// The status names the `status` filter of lot listings takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFilter {
    Held,
    InTransit,
    Consumed,
}

impl StatusFilter {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "held" => Some(StatusFilter::Held),
            "in_transit" => Some(StatusFilter::InTransit),
            "consumed" => Some(StatusFilter::Consumed),
            _ => None,
        }
    }

    fn matches(self, status: Status) -> bool {
        matches!(
            (self, status),
            (StatusFilter::Held, Status::Held)
                | (StatusFilter::InTransit, Status::InTransit { .. })
                | (StatusFilter::Consumed, Status::Consumed { .. })
        )
    }
}

/// A parent of a derived lot and the payable metal it brought.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Edge {
    lot: u32,
    /// Grams of the child's payable metal this parent brought.
    metal: Grams,
    /// `metal` as a share of what all the parents brought.
    share: Ppb,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct LotNode {
    id: LotId,
    kind: LotKind,
    metal: Element,
    status: Status,
    custodian: u32,
    owner: u32,
    /// The site a created lot came from; `None` for derived lots.
    site: Option<u32>,
    /// Set once, when the lot is made; empty for created lots.
    parents: Box<[Edge]>,
    children: Vec<u32>,
    /// Every participant that was ever its custodian or owner.
    holders: Vec<u32>,
    /// Entries whose event names the lot, in order; the first made it.
    entries: Vec<u64>,
}

impl LotNode {
    fn created_in(&self) -> u64 {
        self.entries[0]
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct PartyNode {
    id: ParticipantId,
    /// Kinds from its registration; empty until registered.
    kinds: Vec<ParticipantKind>,
    registered_in: Option<u64>,
    /// Entries it signed or that name it, in order.
    entries: Vec<u64>,
    /// Lots it ever held or owned, in the order it first did.
    lots: Vec<u32>,
    /// Sites it operates.
    sites: Vec<u32>,
    /// Organisations that keep a supplier file on it.
    organisations: Vec<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct SiteNode {
    id: SiteId,
    operator: u32,
    name: String,
    country: CountryCode,
    scale: SiteScale,
    metal: Element,
    registered_in: u64,
    /// Every CAHRA determination, in entry order.
    cahra: Vec<CahraDetermination>,
    /// Lots created at the site, in order.
    lots: Vec<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct FlagNode {
    id: FlagId,
    kind: FlagKind,
    organisation: u32,
    supplier: Option<u32>,
    lot: Option<u32>,
    site: Option<u32>,
    /// The latest decision and the entry that recorded it.
    decision: Option<(u64, FlagDecisionKind)>,
}

/// The catalog's tables. Equal tables come from equal logs: every field is
/// a function of the entries applied (and of the flags those entries
/// raised, which are themselves a function of the log).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Tables {
    applied: u64,
    last_record_time: Option<Timestamp>,
    entries: Vec<EntrySummary>,
    lots: Vec<LotNode>,
    lot_refs: HashMap<LotId, u32>,
    parties: Vec<PartyNode>,
    party_refs: HashMap<ParticipantId, u32>,
    sites: Vec<SiteNode>,
    site_refs: HashMap<SiteId, u32>,
    /// In id order, which is the order they were raised.
    flags: Vec<FlagNode>,
    /// Quantities of the lots not yet used up.
    live: HashMap<u32, Quantities>,
}

/// Appends `index` to a posting list unless it is already the last one.
fn post(list: &mut Vec<u64>, index: u64) {
    if list.last() != Some(&index) {
        list.push(index);
    }
}

fn ordinal(len: usize, what: &str, index: u64) -> Result<u32, CatalogError> {
    u32::try_from(len).map_err(|_| CatalogError::Inconsistent {
        index,
        reason: format!("more than {} {what}s", u32::MAX),
    })
}

impl Tables {
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of entries applied: the tree size the tables describe.
    pub fn applied(&self) -> u64 {
        self.applied
    }

    /// Record time of the last entry applied.
    pub fn last_record_time(&self) -> Option<Timestamp> {
        self.last_record_time
    }

    /// Folds in entry `index`: its record time, its event, and the red
    /// flags the ledger raised when it captured it. Entries must come in
    /// order, each exactly once.
    pub fn apply(
        &mut self,
        index: u64,
        record_time: Timestamp,
        event: &Event,
        raised: &[Flag],
    ) -> Result<(), CatalogError> {
        if index != self.applied {
            return Err(CatalogError::Inconsistent {
                index,
                reason: format!("expected entry {} next", self.applied),
            });
        }
        let bad = |reason: String| CatalogError::Inconsistent { index, reason };
        let signer = self.party(&event.signer, index)?;
        let kind = EventType::of(&event.body);
        self.entries.push(EntrySummary {
            time: event.time,
            signer,
            kind,
            refused_receipt: epcis::is_refused_receipt(&event.body),
        });
        post(&mut self.parties[signer as usize].entries, index);

        match &event.body {
            EventBody::Genesis(g) => {
                let op = self.name_party(&g.operator, index)?;
                self.registered(op, vec![ParticipantKind::Operator], index);
            }
            EventBody::RegisterParticipant(r) => {
                let p = self.name_party(&r.participant, index)?;
                self.registered(p, r.kinds.clone(), index);
            }
            EventBody::AddKey(k) => {
                self.name_party(&k.participant, index)?;
            }
            EventBody::RotateKey(k) => {
                self.name_party(&k.participant, index)?;
            }
            EventBody::RevokeKey(k) => {
                self.name_party(&k.participant, index)?;
            }
            EventBody::RegisterSite(s) => {
                let operator = self.name_party(&s.operator, index)?;
                if self.site_refs.contains_key(&s.site) {
                    return Err(bad(format!("site {} registered twice", s.site)));
                }
                let r = ordinal(self.sites.len(), "site", index)?;
                self.sites.push(SiteNode {
                    id: s.site.clone(),
                    operator,
                    name: s.name.clone(),
                    country: s.country.clone(),
                    scale: s.scale,
                    metal: s.metal,
                    registered_in: index,
                    cahra: Vec::new(),
                    lots: Vec::new(),
                });
                self.site_refs.insert(s.site.clone(), r);
                self.parties[operator as usize].sites.push(r);
            }
            EventBody::DetermineCahra(f) => {
                let site = self.site_ref(&f.site, index)?;
                self.sites[site as usize].cahra.push(CahraDetermination {
                    cahra: f.cahra,
                    effective: f.effective,
                    source: f.source.clone(),
                    by: event.signer.clone(),
                    entry: index,
                });
            }
            EventBody::DetermineCountryCahra(_) => {}
            EventBody::CreateLot(c) => {
                let site = self.site_ref(&c.site, index)?;
                let metal = self.sites[site as usize].metal;
                let lot = self.new_lot(
                    &c.lot,
                    c.kind,
                    metal,
                    signer,
                    signer,
                    Some(site),
                    Vec::new(),
                    index,
                )?;
                self.sites[site as usize].lots.push(lot);
                self.live
                    .insert(lot, Quantities::assayed(c.wet, c.moisture, &c.assays));
            }
            EventBody::RecordAssay(a) => {
                let lot = self.touch_lot(&a.lot, index)?;
                self.live_mut(lot, index)?.reassay(a.moisture, &a.assays);
            }
            EventBody::Dispatch(d) => {
                let lot = self.touch_lot(&d.lot, index)?;
                let to = self.name_party(&d.to, index)?;
                self.lots[lot as usize].status = Status::InTransit {
                    to,
                    dispatched_in: index,
                };
            }
            EventBody::Receive(r) => {
                let lot = self.touch_lot(&r.lot, index)?;
                if r.accepted {
                    self.live_mut(lot, index)?
                        .receive(r.measured_wet)
                        .ok_or_else(|| bad(format!("receipt of {} overflows", r.lot)))?;
                    self.lots[lot as usize].custodian = signer;
                    self.hold(lot, signer);
                }
                self.lots[lot as usize].status = Status::Held;
            }
            EventBody::Split(s) => {
                let parent = self.touch_lot(&s.lot, index)?;
                let wets: Vec<Grams> = s.parts.iter().map(|p| p.wet).collect();
                let parts = self
                    .live_mut(parent, index)?
                    .split(&wets)
                    .ok_or_else(|| bad(format!("split of {} does not add up", s.lot)))?;
                self.consume(parent, index);
                let (kind, metal, custodian, owner) = {
                    let p = &self.lots[parent as usize];
                    (p.kind, p.metal, p.custodian, p.owner)
                };
                for (part, q) in s.parts.iter().zip(parts) {
                    let edge = Edge {
                        lot: parent,
                        metal: q.contained_of(metal),
                        share: Ppb::ONE,
                    };
                    let child = self.new_lot(
                        &part.lot,
                        kind,
                        metal,
                        custodian,
                        owner,
                        None,
                        vec![edge],
                        index,
                    )?;
                    self.live.insert(child, q);
                }
            }
            EventBody::Blend(b) => {
                let mut inputs = Vec::with_capacity(b.inputs.len());
                for id in &b.inputs {
                    inputs.push(self.touch_lot(id, index)?);
                }
                let first = inputs
                    .first()
                    .copied()
                    .ok_or_else(|| bad("a blend without inputs".into()))?;
                let (metal, owner) = {
                    let l = &self.lots[first as usize];
                    (l.metal, l.owner)
                };
                let mut quantities = Vec::with_capacity(inputs.len());
                for &l in &inputs {
                    quantities.push(self.live.remove(&l).ok_or_else(|| {
                        bad(format!(
                            "blend input {} is not live",
                            self.lots[l as usize].id
                        ))
                    })?);
                }
                let brought: Vec<Grams> =
                    quantities.iter().map(|q| q.contained_of(metal)).collect();
                let edges = edges(&inputs, &brought).ok_or_else(|| bad("blend shares".into()))?;
                let output = Quantities::blend(&quantities)
                    .ok_or_else(|| bad(format!("blend into {} overflows", b.output)))?;
                for &l in &inputs {
                    self.consume(l, index);
                }
                let lot = self.new_lot(
                    &b.output,
                    LotKind::Blend,
                    metal,
                    signer,
                    owner,
                    None,
                    edges,
                    index,
                )?;
                self.live.insert(lot, output);
            }
            EventBody::Transform(t) => {
                let mut inputs = Vec::with_capacity(t.inputs.len());
                let mut taken = Vec::with_capacity(t.inputs.len());
                for input in &t.inputs {
                    let l = self.touch_lot(&input.lot, index)?;
                    let q = self.live_mut(l, index)?;
                    taken.push(q.take(input.consumed_wet).ok_or_else(|| {
                        bad(format!(
                            "{} taken from lot {}",
                            input.consumed_wet, input.lot
                        ))
                    })?);
                    if q.wet.0 == 0 {
                        self.live.remove(&l);
                        self.consume(l, index);
                    }
                    inputs.push(l);
                }
                let owner = inputs
                    .first()
                    .map(|l| self.lots[*l as usize].owner)
                    .ok_or_else(|| bad("a transformation without inputs".into()))?;
                for o in &t.outputs {
                    let brought: Vec<Grams> = taken
                        .iter()
                        .map(|from| {
                            from.iter()
                                .find(|(e, _)| *e == o.metal)
                                .map(|(_, g)| *g)
                                .unwrap_or_default()
                        })
                        .collect();
                    let edges =
                        edges(&inputs, &brought).ok_or_else(|| bad("output shares".into()))?;
                    let lot =
                        self.new_lot(&o.lot, o.kind, o.metal, signer, owner, None, edges, index)?;
                    self.live
                        .insert(lot, Quantities::assayed(o.wet, o.moisture, &o.assays));
                }
            }
            EventBody::Sell(s) => {
                let lot = self.touch_lot(&s.lot, index)?;
                let buyer = self.name_party(&s.buyer, index)?;
                self.lots[lot as usize].owner = buyer;
                self.hold(lot, buyer);
            }
            EventBody::AppointOfficer(a) => {
                self.name_party(&a.officer, index)?;
                self.name_party(&a.organisation, index)?;
            }
            EventBody::AssessOnboarding(o) => self.file(&o.organisation, &o.supplier, index)?,
            EventBody::ReviewSupplier(r) => self.file(&r.organisation, &r.supplier, index)?,
            EventBody::SanctionSupplier(s) => self.file(&s.organisation, &s.supplier, index)?,
            EventBody::ReinstateSupplier(r) => self.file(&r.organisation, &r.supplier, index)?,
            EventBody::AcknowledgeCode(a) => self.file(&a.organisation, &event.signer, index)?,
            EventBody::ReportGrievance(g) => self.file(&g.organisation, &g.subject, index)?,
            EventBody::SetReceiptPolicy(p) => {
                self.name_party(&p.organisation, index)?;
            }
            EventBody::AttachDocument(d) => {
                self.touch_lot(&d.lot, index)?;
            }
            EventBody::Correct(c) => {
                if let Some(lot) = &c.lot {
                    self.touch_lot(lot, index)?;
                }
            }
            EventBody::DecideFlag(d) => {
                let at = self
                    .flags
                    .binary_search_by_key(&d.flag, |f| f.id)
                    .map_err(|_| bad(format!("decides unknown flag {:?}", d.flag)))?;
                self.flags[at].decision = Some((index, d.decision.clone()));
            }
        }
        for flag in raised {
            self.raise(flag, index)?;
        }
        self.applied = index + 1;
        self.last_record_time = Some(record_time);
        Ok(())
    }

    // -- folding helpers ---------------------------------------------------

    /// The ordinal of a participant, numbering it on first sight.
    fn party(&mut self, id: &ParticipantId, index: u64) -> Result<u32, CatalogError> {
        if let Some(r) = self.party_refs.get(id) {
            return Ok(*r);
        }
        let r = ordinal(self.parties.len(), "participant", index)?;
        self.parties.push(PartyNode {
            id: id.clone(),
            kinds: Vec::new(),
            registered_in: None,
            entries: Vec::new(),
            lots: Vec::new(),
            sites: Vec::new(),
            organisations: Vec::new(),
        });
        self.party_refs.insert(id.clone(), r);
        Ok(r)
    }

    /// A participant the event names: the entry goes in its postings.
    fn name_party(&mut self, id: &ParticipantId, index: u64) -> Result<u32, CatalogError> {
        let r = self.party(id, index)?;
        post(&mut self.parties[r as usize].entries, index);
        Ok(r)
    }

    fn registered(&mut self, party: u32, kinds: Vec<ParticipantKind>, index: u64) {
        let p = &mut self.parties[party as usize];
        p.kinds = kinds;
        p.registered_in = Some(index);
    }

    /// `organisation` keeps a file on `supplier`; both are named.
    fn file(
        &mut self,
        organisation: &ParticipantId,
        supplier: &ParticipantId,
        index: u64,
    ) -> Result<(), CatalogError> {
        let org = self.name_party(organisation, index)?;
        let sup = self.name_party(supplier, index)?;
        let files = &mut self.parties[sup as usize].organisations;
        if !files.contains(&org) {
            files.push(org);
        }
        Ok(())
    }

    fn site_ref(&self, id: &SiteId, index: u64) -> Result<u32, CatalogError> {
        self.site_refs
            .get(id)
            .copied()
            .ok_or_else(|| CatalogError::Inconsistent {
                index,
                reason: format!("names site {id}, which is not registered"),
            })
    }

    /// A lot the event names: the entry goes in its postings.
    fn touch_lot(&mut self, id: &LotId, index: u64) -> Result<u32, CatalogError> {
        let r = self
            .lot_refs
            .get(id)
            .copied()
            .ok_or_else(|| CatalogError::Inconsistent {
                index,
                reason: format!("names lot {id}, which does not exist"),
            })?;
        post(&mut self.lots[r as usize].entries, index);
        Ok(r)
    }

    fn live_mut(&mut self, lot: u32, index: u64) -> Result<&mut Quantities, CatalogError> {
        let id = &self.lots[lot as usize].id;
        self.live
            .get_mut(&lot)
            .ok_or_else(|| CatalogError::Inconsistent {
                index,
                reason: format!("lot {id} is used up"),
            })
    }

    #[allow(clippy::too_many_arguments)]
    fn new_lot(
        &mut self,
        id: &LotId,
        kind: LotKind,
        metal: Element,
        custodian: u32,
        owner: u32,
        site: Option<u32>,
        parents: Vec<Edge>,
        index: u64,
    ) -> Result<u32, CatalogError> {
        if self.lot_refs.contains_key(id) {
            return Err(CatalogError::Inconsistent {
                index,
                reason: format!("lot {id} made twice"),
            });
        }
        let r = ordinal(self.lots.len(), "lot", index)?;
        for e in &parents {
            self.lots[e.lot as usize].children.push(r);
        }
        self.lots.push(LotNode {
            id: id.clone(),
            kind,
            metal,
            status: Status::Held,
            custodian,
            owner,
            site,
            parents: parents.into_boxed_slice(),
            children: Vec::new(),
            holders: Vec::new(),
            entries: vec![index],
        });
        self.lot_refs.insert(id.clone(), r);
        self.hold(r, custodian);
        self.hold(r, owner);
        Ok(r)
    }

    /// `party` holds or owns `lot` now; remember that it did.
    fn hold(&mut self, lot: u32, party: u32) {
        let holders = &mut self.lots[lot as usize].holders;
        if !holders.contains(&party) {
            holders.push(party);
            self.parties[party as usize].lots.push(lot);
        }
    }

    fn consume(&mut self, lot: u32, index: u64) {
        self.live.remove(&lot);
        let l = &mut self.lots[lot as usize];
        l.status = Status::Consumed { in_entry: index };
        // A used-up lot rarely gains links or entries again (a document or
        // a correction at most): give back what its lists reserved.
        l.holders.shrink_to_fit();
        l.entries.shrink_to_fit();
    }

    fn raise(&mut self, flag: &Flag, index: u64) -> Result<(), CatalogError> {
        if flag.id.entry != index || self.flags.last().is_some_and(|f| f.id >= flag.id) {
            return Err(CatalogError::Inconsistent {
                index,
                reason: format!("flag {:?} is out of order", flag.id),
            });
        }
        let organisation = self.party(&flag.organisation, index)?;
        let supplier = match &flag.supplier {
            Some(s) => Some(self.party(s, index)?),
            None => None,
        };
        let lot = flag
            .lot
            .as_ref()
            .and_then(|l| self.lot_refs.get(l).copied());
        let site = flag
            .site
            .as_ref()
            .and_then(|s| self.site_refs.get(s).copied());
        self.flags.push(FlagNode {
            id: flag.id,
            kind: flag.kind,
            organisation,
            supplier,
            lot,
            site,
            decision: None,
        });
        Ok(())
    }

    // -- reading -------------------------------------------------------------

    /// Event time of the entry that made the lot.
    fn created_at(&self, l: &LotNode) -> Timestamp {
        self.entries[l.created_in() as usize].time
    }

    fn summary(&self, r: u32) -> LotSummary {
        let l = &self.lots[r as usize];
        let party = |p: u32| self.parties[p as usize].id.clone();
        LotSummary {
            id: l.id.clone(),
            kind: l.kind,
            metal: l.metal,
            status: match l.status {
                Status::Held => LotStatus::Held,
                Status::InTransit { to, dispatched_in } => LotStatus::InTransit {
                    to: party(to),
                    dispatched_in,
                },
                Status::Consumed { in_entry } => LotStatus::Consumed { in_entry },
            },
            custodian: party(l.custodian),
            owner: party(l.owner),
            site: l.site.map(|s| self.sites[s as usize].id.clone()),
            created_in: l.created_in(),
            created_at: self.created_at(l),
        }
    }

    /// A lot as the catalog knows it.
    pub fn lot(&self, id: &LotId) -> Option<LotSummary> {
        self.lot_refs.get(id).map(|r| self.summary(*r))
    }

    /// The lot's parents with the payable metal each brought.
    pub fn parents(&self, id: &LotId) -> Option<Vec<LinkView>> {
        let r = *self.lot_refs.get(id)?;
        Some(
            self.lots[r as usize]
                .parents
                .iter()
                .map(|e| self.link(r, e))
                .collect(),
        )
    }

    fn link(&self, child: u32, e: &Edge) -> LinkView {
        LinkView {
            child: self.lots[child as usize].id.clone(),
            parent: self.lots[e.lot as usize].id.clone(),
            share: e.share,
            grams: e.metal,
        }
    }

    /// Every participant that was ever the lot's custodian or owner.
    pub fn holders_ever(&self, id: &LotId) -> Option<Vec<ParticipantId>> {
        let r = *self.lot_refs.get(id)?;
        Some(
            self.lots[r as usize]
                .holders
                .iter()
                .map(|p| self.parties[*p as usize].id.clone())
                .collect(),
        )
    }

    /// A live lot's wet mass, dry mass and contained metal as the catalog
    /// follows them (to cross-check against the ledger state); `None` for
    /// an unknown or used-up lot.
    pub fn quantities(&self, id: &LotId) -> Option<&Quantities> {
        self.live.get(self.lot_refs.get(id)?)
    }

    /// Entries whose event names the lot, in order.
    pub fn lot_entries(&self, id: &LotId) -> Option<&[u64]> {
        let r = *self.lot_refs.get(id)?;
        Some(&self.lots[r as usize].entries)
    }

    /// Lots in the order they were made, from position `from` on, that
    /// pass `filter`: at most `limit`, and the position to go on from when
    /// there are more.
    pub fn lots(&self, filter: &LotFilter, from: u64, limit: usize) -> Page<LotSummary> {
        let Ok(page) = self.lots_where(filter, from, limit, usize::MAX, keep_all);
        page
    }

    /// [`Tables::lots`], keeping only the lots `keep` maps to an item (it
    /// may read elsewhere, and fail), and giving `keep` at most `budget`
    /// lots: a page may then hold fewer than `limit` items and still say
    /// where to go on from ([`Page`]).
    pub fn lots_where<U, E>(
        &self,
        filter: &LotFilter,
        from: u64,
        limit: usize,
        budget: usize,
        keep: impl FnMut(LotSummary) -> Result<Option<U>, E>,
    ) -> Result<Page<U>, E> {
        let holder = match &filter.holder {
            Some(p) => match self.party_refs.get(p) {
                Some(r) => Some(*r),
                None => return Ok(Page::empty()),
            },
            None => None,
        };
        let matches = |r: u32| {
            let l = &self.lots[r as usize];
            filter.kind.is_none_or(|k| k == l.kind)
                && holder.is_none_or(|h| l.custodian == h || l.owner == h)
                && filter.status.is_none_or(|s| s.matches(l.status))
                && filter.created_from.is_none_or(|t| self.created_at(l) >= t)
                && filter.created_to.is_none_or(|t| self.created_at(l) < t)
        };
        // Lots created at a site are listed from the site's own postings;
        // every other filter scans the lots in order.
        let candidates: Box<dyn Iterator<Item = u32> + '_> = match &filter.site {
            Some(s) => match self.site_refs.get(s) {
                Some(site) => {
                    let lots = &self.sites[*site as usize].lots;
                    let start = lots.partition_point(|l| u64::from(*l) < from);
                    Box::new(lots[start..].iter().copied())
                }
                None => return Ok(Page::empty()),
            },
            None => {
                let start = u32::try_from(from).unwrap_or(u32::MAX);
                let end = u32::try_from(self.lots.len()).unwrap_or(u32::MAX);
                Box::new(start.min(end)..end)
            }
        };
        page_where(
            candidates.filter(|r| matches(*r)),
            limit,
            budget,
            |r| (self.summary(r), u64::from(r) + 1),
            keep,
        )
    }

    /// The lot and every lot it was made from, back to the lots created at
    /// sites: nodes in breadth-first order from the lot, and one edge per
    /// child and parent. `None` for an unknown lot.
    /// Nodes say what each lot is and who has it, not where it is in its
    /// life: a trace is read for its shape and its mines, and kept small.
    pub fn upstream(&self, id: &LotId) -> Option<Graph<UpstreamLot>> {
        self.walk(
            id,
            |l| l.parents.iter().map(|e| e.lot).collect(),
            |r| self.upstream_lot(r),
        )
    }

    /// The lot and every lot made from it, transitively, each with its
    /// status, custodian and owner now.
    pub fn downstream(&self, id: &LotId) -> Option<Graph<LotSummary>> {
        self.walk(id, |l| l.children.clone(), |r| self.summary(r))
    }

    fn upstream_lot(&self, r: u32) -> UpstreamLot {
        let l = &self.lots[r as usize];
        UpstreamLot {
            id: l.id.clone(),
            kind: l.kind,
            metal: l.metal,
            custodian: self.parties[l.custodian as usize].id.clone(),
            owner: self.parties[l.owner as usize].id.clone(),
            site: l.site.map(|s| self.sites[s as usize].id.clone()),
        }
    }

    fn walk<N>(
        &self,
        id: &LotId,
        next: impl Fn(&LotNode) -> Vec<u32>,
        node: impl Fn(u32) -> N,
    ) -> Option<Graph<N>> {
        let start = *self.lot_refs.get(id)?;
        let mut seen = HashSet::from([start]);
        let mut queue = VecDeque::from([start]);
        let mut order = Vec::new();
        while let Some(r) = queue.pop_front() {
            order.push(r);
            for n in next(&self.lots[r as usize]) {
                if seen.insert(n) {
                    queue.push_back(n);
                }
            }
        }
        // Each edge once: the parents of every node reached, restricted to
        // the nodes reached (upstream that is all of them; downstream it
        // leaves out the other parents of a blend).
        let mut edges = Vec::new();
        for &r in &order {
            for e in self.lots[r as usize].parents.iter() {
                if seen.contains(&e.lot) {
                    edges.push(self.link(r, e));
                }
            }
        }
        Some(Graph {
            nodes: order.into_iter().map(node).collect(),
            edges,
        })
    }

    /// A registered site.
    pub fn site(&self, id: &SiteId) -> Option<SiteSummary> {
        self.site_refs.get(id).map(|r| self.site_summary(*r))
    }

    fn site_summary(&self, r: u32) -> SiteSummary {
        let s = &self.sites[r as usize];
        SiteSummary {
            id: s.id.clone(),
            operator: self.parties[s.operator as usize].id.clone(),
            name: s.name.clone(),
            country: s.country.clone(),
            scale: s.scale,
            metal: s.metal,
            registered_in: s.registered_in,
            cahra: s.cahra.clone(),
        }
    }

    /// Registered participants in registration order, from position
    /// `from`, of `kind` when given.
    pub fn participants(
        &self,
        kind: Option<ParticipantKind>,
        from: u64,
        limit: usize,
    ) -> Page<ParticipantId> {
        let start = usize::try_from(from)
            .unwrap_or(usize::MAX)
            .min(self.parties.len());
        let candidates = (start..self.parties.len()).filter(|r| {
            let p = &self.parties[*r];
            p.registered_in.is_some() && kind.is_none_or(|k| p.kinds.contains(&k))
        });
        let Ok(page) = page_where(
            candidates,
            limit,
            usize::MAX,
            |r| (self.parties[r].id.clone(), r as u64 + 1),
            keep_all,
        );
        page
    }

    /// What the catalog knows of a participant beyond its state record:
    /// the sites it operates and who keeps a supplier file on it.
    pub fn participant(&self, id: &ParticipantId) -> Option<ParticipantLinks> {
        let p = &self.parties[*self.party_refs.get(id)? as usize];
        Some(ParticipantLinks {
            sites: p
                .sites
                .iter()
                .map(|s| self.sites[*s as usize].id.clone())
                .collect(),
            supplier_files: p
                .organisations
                .iter()
                .map(|o| self.parties[*o as usize].id.clone())
                .collect(),
        })
    }

    /// A red flag's summary.
    pub fn flag(&self, id: FlagId) -> Option<FlagSummary> {
        let at = self.flags.binary_search_by_key(&id, |f| f.id).ok()?;
        Some(self.flag_summary(at))
    }

    fn flag_summary(&self, at: usize) -> FlagSummary {
        let f = &self.flags[at];
        FlagSummary {
            id: f.id,
            kind: f.kind,
            organisation: self.parties[f.organisation as usize].id.clone(),
            supplier: f.supplier.map(|p| self.parties[p as usize].id.clone()),
            lot: f.lot.map(|l| self.lots[l as usize].id.clone()),
            site: f.site.map(|s| self.sites[s as usize].id.clone()),
            status: if f.decision.is_some() {
                FlagStatus::Decided
            } else {
                FlagStatus::Open
            },
            decision: f.decision.as_ref().map(|(_, d)| d.clone()),
            decided_in: f.decision.as_ref().map(|(e, _)| *e),
        }
    }

    /// The red-flag register in the order flags were raised, from position
    /// `from`, filtered.
    pub fn flags(&self, filter: &FlagFilter, from: u64, limit: usize) -> Page<FlagId> {
        let Ok(page) = self.flags_where(filter, from, limit, usize::MAX, keep_all);
        page
    }

    /// [`Tables::flags`], keeping only the flags `keep` maps to an item,
    /// giving `keep` at most `budget` flags (as [`Tables::lots_where`]).
    pub fn flags_where<U, E>(
        &self,
        filter: &FlagFilter,
        from: u64,
        limit: usize,
        budget: usize,
        keep: impl FnMut(FlagId) -> Result<Option<U>, E>,
    ) -> Result<Page<U>, E> {
        let lot = match &filter.lot {
            Some(l) => match self.lot_refs.get(l) {
                Some(r) => Some(*r),
                None => return Ok(Page::empty()),
            },
            None => None,
        };
        let party = match &filter.participant {
            Some(p) => match self.party_refs.get(p) {
                Some(r) => Some(*r),
                None => return Ok(Page::empty()),
            },
            None => None,
        };
        let start = usize::try_from(from)
            .unwrap_or(usize::MAX)
            .min(self.flags.len());
        let candidates = (start..self.flags.len()).filter(|at| {
            let f = &self.flags[*at];
            filter.status.is_none_or(|s| {
                s == if f.decision.is_some() {
                    FlagStatus::Decided
                } else {
                    FlagStatus::Open
                }
            }) && filter.kind.is_none_or(|k| k == f.kind)
                && lot.is_none_or(|l| f.lot == Some(l))
                && party.is_none_or(|p| f.organisation == p || f.supplier == Some(p))
        });
        page_where(
            candidates,
            limit,
            budget,
            |at| (self.flags[at].id, at as u64 + 1),
            keep,
        )
    }

    /// Summary of entry `index`, if applied.
    pub fn entry(&self, index: u64) -> Option<(&EntrySummary, &ParticipantId)> {
        let e = self.entries.get(usize::try_from(index).ok()?)?;
        Some((e, &self.parties[e.signer as usize].id))
    }

    /// Entries from index `from` on that pass `filter`, in order.
    pub fn events(&self, filter: &EventFilter, from: u64, limit: usize) -> Page<u64> {
        let Ok(page) = self.events_where(filter, from, limit, usize::MAX, keep_all);
        page
    }

    /// [`Tables::events`], keeping only the entries `keep` maps to an
    /// item, giving `keep` at most `budget` entries (as
    /// [`Tables::lots_where`]).
    pub fn events_where<U, E>(
        &self,
        filter: &EventFilter,
        from: u64,
        limit: usize,
        budget: usize,
        keep: impl FnMut(u64) -> Result<Option<U>, E>,
    ) -> Result<Page<U>, E> {
        let lot_postings = match &filter.lot {
            Some(l) => match self.lot_refs.get(l) {
                Some(r) => Some(self.lots[*r as usize].entries.as_slice()),
                None => return Ok(Page::empty()),
            },
            None => None,
        };
        let party_postings = match &filter.participant {
            Some(p) => match self.party_refs.get(p) {
                Some(r) => Some(self.parties[*r as usize].entries.as_slice()),
                None => return Ok(Page::empty()),
            },
            None => None,
        };
        let matches = |index: u64| {
            let Some(e) = usize::try_from(index)
                .ok()
                .and_then(|i| self.entries.get(i))
            else {
                return false;
            };
            let mapping = e.epcis();
            filter.kind.is_none_or(|k| k == e.kind)
                && filter
                    .epcis_type
                    .is_none_or(|t| mapping.is_some_and(|m| m.event_type == t))
                && filter
                    .biz_step
                    .is_none_or(|s| s.is_some_and(|s| mapping.is_some_and(|m| m.biz_step == s)))
                && filter.time_from.is_none_or(|t| e.time >= t)
                && filter.time_to.is_none_or(|t| e.time < t)
        };
        fn from_postings(list: &[u64], from: u64) -> impl Iterator<Item = u64> + '_ {
            let start = list.partition_point(|i| *i < from);
            list[start..].iter().copied()
        }
        // The shortest posting list drives the scan; the other is probed.
        let candidates: Box<dyn Iterator<Item = u64> + '_> = match (lot_postings, party_postings) {
            (Some(lots), Some(parties)) => {
                let (drive, probe) = if lots.len() <= parties.len() {
                    (lots, parties)
                } else {
                    (parties, lots)
                };
                Box::new(from_postings(drive, from).filter(move |i| probe.binary_search(i).is_ok()))
            }
            (Some(list), None) | (None, Some(list)) => Box::new(from_postings(list, from)),
            (None, None) => Box::new(from.min(self.applied)..self.applied),
        };
        page_where(
            candidates.filter(|i| matches(*i)),
            limit,
            budget,
            |i| (i, i + 1),
            keep,
        )
    }
}

/// Keeps every candidate: the `keep` of the unrestricted listings.
fn keep_all<T>(t: T) -> Result<Option<T>, std::convert::Infallible> {
    Ok(Some(t))
}

/// Takes up to `limit` items and says where to go on from when there are
/// more. `item` maps a candidate to what `keep` looks at and the position
/// after it; `keep` turns that into an item, or `None` to leave it out.
/// At most `budget` candidates (at least one) are given to `keep`: when
/// it runs out with candidates left, the page ends early, possibly short
/// or empty, and its `next` is the position after the last candidate
/// looked at, so paging on always advances and never repeats or skips.
pub fn page_where<C, T, U, E>(
    candidates: impl Iterator<Item = C>,
    limit: usize,
    budget: usize,
    item: impl Fn(C) -> (T, u64),
    mut keep: impl FnMut(T) -> Result<Option<U>, E>,
) -> Result<Page<U>, E> {
    let budget = budget.max(1);
    let mut items = Vec::with_capacity(limit.min(1024));
    // The position after the last candidate looked at.
    let mut after = None;
    for (looked_at, c) in candidates.enumerate() {
        if looked_at == budget {
            return Ok(Page { items, next: after });
        }
        let (t, position) = item(c);
        if let Some(u) = keep(t)? {
            if items.len() >= limit {
                // One more is kept: the page is full and there is more.
                return Ok(Page { items, next: after });
            }
            items.push(u);
        }
        after = Some(position);
    }
    Ok(Page { items, next: None })
}

fn edges(inputs: &[u32], brought: &[Grams]) -> Option<Vec<Edge>> {
    let s = shares(brought)?;
    Some(
        inputs
            .iter()
            .zip(brought)
            .zip(s)
            .map(|((lot, metal), share)| Edge {
                lot: *lot,
                metal: *metal,
                share,
            })
            .collect(),
    )
}

// -- what readers get ------------------------------------------------------

/// A page of a listing: the items, and the position to go on from when
/// there are more.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<u64>,
}

impl<T> Page<T> {
    fn empty() -> Self {
        Self {
            items: Vec::new(),
            next: None,
        }
    }
}

/// A lot as the catalog knows it: what it is, where it is and who has it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct LotSummary {
    pub id: LotId,
    pub kind: LotKind,
    /// The payable metal its origin shares are counted in.
    pub metal: Element,
    pub status: LotStatus,
    pub custodian: ParticipantId,
    pub owner: ParticipantId,
    /// The site a created lot came from; `null` for derived lots.
    pub site: Option<SiteId>,
    /// The entry that made it.
    pub created_in: u64,
    /// The event time of that entry.
    pub created_at: Timestamp,
}

/// One parent of a derived lot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct LinkView {
    pub child: LotId,
    pub parent: LotId,
    /// Share of the child's payable metal the parent brought, in parts per
    /// billion; the shares of a child's parents add up to 10^9.
    pub share: Ppb,
    /// Grams of the child's payable metal the parent brought.
    pub grams: Grams,
}

/// Lots reached by a walk of the graph, and the links between them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Graph<N> {
    pub nodes: Vec<N>,
    pub edges: Vec<LinkView>,
}

/// A lot in a backward trace: what it is and who has it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct UpstreamLot {
    pub id: LotId,
    pub kind: LotKind,
    /// The payable metal its origin shares are counted in.
    pub metal: Element,
    pub custodian: ParticipantId,
    pub owner: ParticipantId,
    /// The site a created lot came from; absent for derived lots.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub site: Option<SiteId>,
}

/// A registered site with its CAHRA determinations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteSummary {
    pub id: SiteId,
    pub operator: ParticipantId,
    pub name: String,
    pub country: CountryCode,
    pub scale: SiteScale,
    pub metal: Element,
    pub registered_in: u64,
    pub cahra: Vec<CahraDetermination>,
}

/// Links of a participant that its state record does not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParticipantLinks {
    pub sites: Vec<SiteId>,
    /// Organisations that keep a supplier file on it.
    pub supplier_files: Vec<ParticipantId>,
}

/// Whether a red flag has been decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FlagStatus {
    Open,
    Decided,
}

impl FlagStatus {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "open" => Some(FlagStatus::Open),
            "decided" => Some(FlagStatus::Decided),
            _ => None,
        }
    }
}

/// A red flag as the catalog knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FlagSummary {
    pub id: FlagId,
    pub kind: FlagKind,
    pub organisation: ParticipantId,
    pub supplier: Option<ParticipantId>,
    pub lot: Option<LotId>,
    pub site: Option<SiteId>,
    pub status: FlagStatus,
    /// The latest decision, and the entry that recorded it.
    pub decision: Option<FlagDecisionKind>,
    pub decided_in: Option<u64>,
}

/// Filters of the lot listing; all given must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LotFilter {
    pub kind: Option<LotKind>,
    /// Current custodian or owner.
    pub holder: Option<ParticipantId>,
    /// Created at this site.
    pub site: Option<SiteId>,
    pub status: Option<StatusFilter>,
    /// Made at or after (event time).
    pub created_from: Option<Timestamp>,
    /// Made before (event time).
    pub created_to: Option<Timestamp>,
}

/// Filters of the red-flag register; all given must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlagFilter {
    pub status: Option<FlagStatus>,
    pub kind: Option<FlagKind>,
    /// Raised on this lot.
    pub lot: Option<LotId>,
    /// In this organisation's register, or about this supplier.
    pub participant: Option<ParticipantId>,
}

/// EPCIS-style filters of the event listing; all given must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    pub kind: Option<EventType>,
    pub epcis_type: Option<EpcisType>,
    /// `Some(None)`: a business step none of our events uses, so nothing
    /// matches.
    pub biz_step: Option<Option<BizStep>>,
    /// Event time at or after (`GE_eventTime`).
    pub time_from: Option<Timestamp>,
    /// Event time before (`LT_eventTime`).
    pub time_to: Option<Timestamp>,
    /// Events that name this lot (`MATCH_epc`).
    pub lot: Option<LotId>,
    /// Events this participant signed or that name it.
    pub participant: Option<ParticipantId>,
}
