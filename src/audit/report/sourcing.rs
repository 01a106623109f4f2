//! What the verifying replay shows of sourcing, gathered once for the
//! supplier KPIs ([`super::kpis`]), the buyer's CMRT/EMRT rows
//! ([`super::cmrt`]), the forward impact of a mine or supplier
//! ([`super::impact`]) and the reproducible audit sample
//! ([`super::sample`]).
//!
//! [`Sourcing`] is an [`Observer`] of `ledger::verify_frames`: it sees each
//! entry with the state just before it and the rules' changes, so every
//! figure it keeps is the one the rules computed (a receipt's direct
//! supplier and the sanctions in force are judged exactly as the rules
//! judged them, from the state before the entry; the payable metal each
//! input brought to a blend or transformation is taken from the inputs as
//! they were). It keeps facts, not answers: the reports are pure functions
//! of a [`Sourcing`], so they can be checked against hand-computed values.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::crypto::Digest;
use crate::ledger::{Accepted, Observer};
use crate::model::{
    CountryCode, DocumentRef, Element, EventBody, Grams, Lot, LotId, LotStatus, Participant,
    ParticipantId, Site, SiteId, StateValue, StateView, SupplierFile, Timestamp,
};

/// One entry of the log, as an auditor names it: its index, its event's id
/// (SHA-256 of the event bytes) and its RFC 9162 leaf hash, which an
/// inclusion proof ties to a signed checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EntryLink {
    pub entry: u64,
    pub event_type: &'static str,
    pub event_id: Digest,
    pub leaf_hash: Digest,
    pub event_time: Timestamp,
    pub record_time: Timestamp,
    pub signer: ParticipantId,
}

/// How a lot came to be, and from which lots with how much payable metal
/// (of the lot's own payable metal) each brought.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Making {
    pub entry: u64,
    pub how: MadeBy,
    /// Parent lots and the grams of this lot's payable metal each gave, as
    /// the rules weighed them when mixing origins.
    pub parents: Vec<(LotId, Grams)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MadeBy {
    /// Created at a site by its operator.
    Created {
        site: SiteId,
    },
    Split,
    Blend,
    /// Smelting or refining by `processor` (the organisation the signer
    /// acts for).
    Transform {
        processor: ParticipantId,
        process: String,
    },
}

/// A participant came to hold or own a lot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Acquired {
    /// Created it at its site.
    Produced,
    /// Took custody with an accepted receipt.
    Received,
    /// Became its owner by a sale.
    Bought,
}

/// One acquisition of a lot, with the lot's payable metal just after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acquisition {
    pub entry: u64,
    pub lot: LotId,
    pub how: Acquired,
    pub party: ParticipantId,
    /// The organisation `party` acted for at the time.
    pub organisation: ParticipantId,
    pub event_time: Timestamp,
    pub record_time: Timestamp,
    pub metal: Element,
    pub contained: Grams,
}

/// A receipt (accepted or refused) as the rules judged it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub entry: u64,
    pub lot: LotId,
    pub receiver: ParticipantId,
    /// The organisation the receiver acted for.
    pub organisation: ParticipantId,
    /// The direct supplier, as the rules name it: the lot's owner when it
    /// belongs to another organisation, else the one that sold it.
    pub supplier: Option<ParticipantId>,
    pub accepted: bool,
    pub event_time: Timestamp,
    pub record_time: Timestamp,
    /// The dispatch the receipt answers.
    pub dispatched_in: Option<u64>,
    pub metal: Element,
    /// Payable metal in the lot as received (after the receiver's weight).
    pub contained: Grams,
    /// Parties behind the lot (the direct supplier and the operators of
    /// its origin sites) that the receiving organisation had sanctioned at
    /// the record time, with the entry that imposed each sanction. The
    /// rules refuse such deliveries, so for an accepted receipt this stays
    /// empty in any ledger that verifies.
    pub sanctioned: Vec<(ParticipantId, u64)>,
}

/// An onboarding assessment, kept in full because a supplier file keeps
/// only the latest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Onboarding {
    pub entry: u64,
    pub record_time: Timestamp,
    pub organisation: ParticipantId,
    pub supplier: ParticipantId,
    pub passed: bool,
}

/// The facts the sourcing reports are computed from, gathered during one
/// verifying replay.
#[derive(Debug, Default)]
pub struct Sourcing {
    entries: Vec<EntryLink>,
    participants: BTreeMap<ParticipantId, Participant>,
    /// Member to organisation, as last appointed.
    affiliations: HashMap<ParticipantId, ParticipantId>,
    sites: BTreeMap<SiteId, Site>,
    lots: HashMap<LotId, Lot>,
    makings: HashMap<LotId, Making>,
    /// Lots in the order they were made (entry order).
    made_order: Vec<LotId>,
    children: HashMap<LotId, Vec<LotId>>,
    acquisitions: Vec<Acquisition>,
    receipts: Vec<Receipt>,
    onboardings: Vec<Onboarding>,
    files: BTreeMap<(ParticipantId, ParticipantId), SupplierFile>,
    documents: BTreeMap<u64, Vec<DocumentRef>>,
}

impl Sourcing {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every entry, in order.
    pub fn entries(&self) -> &[EntryLink] {
        &self.entries
    }

    pub fn entry(&self, index: u64) -> Option<&EntryLink> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.entries.get(i))
    }

    /// The record time of the last entry seen.
    pub fn last_record_time(&self) -> Option<Timestamp> {
        self.entries.last().map(|e| e.record_time)
    }

    pub fn participant(&self, id: &ParticipantId) -> Option<&Participant> {
        self.participants.get(id)
    }

    pub fn participants(&self) -> impl Iterator<Item = &Participant> {
        self.participants.values()
    }

    /// The organisation `id` acts for now: its appointment, or itself.
    pub fn organisation_of<'a>(&'a self, id: &'a ParticipantId) -> &'a ParticipantId {
        self.affiliations.get(id).unwrap_or(id)
    }

    pub fn site(&self, id: &SiteId) -> Option<&Site> {
        self.sites.get(id)
    }

    pub fn sites(&self) -> impl Iterator<Item = &Site> {
        self.sites.values()
    }

    /// A lot as the ledger holds it at the end of the replay.
    pub fn lot(&self, id: &LotId) -> Option<&Lot> {
        self.lots.get(id)
    }

    pub fn making(&self, id: &LotId) -> Option<&Making> {
        self.makings.get(id)
    }

    /// Lots in the order they were made: parents always before children.
    pub fn lots_in_order(&self) -> &[LotId] {
        &self.made_order
    }

    /// Lots made (in part) from `id`.
    pub fn children(&self, id: &LotId) -> &[LotId] {
        self.children.get(id).map(Vec::as_slice).unwrap_or(&[])
    }

    pub fn acquisitions(&self) -> &[Acquisition] {
        &self.acquisitions
    }

    pub fn receipts(&self) -> &[Receipt] {
        &self.receipts
    }

    pub fn onboardings(&self) -> &[Onboarding] {
        &self.onboardings
    }

    /// Every supplier file, by (organisation, supplier).
    pub fn supplier_files(&self) -> impl Iterator<Item = &SupplierFile> {
        self.files.values()
    }

    /// The documents an entry carries (dispatch, receipt and sale papers,
    /// assay certificates, attachments).
    pub fn documents(&self, entry: u64) -> &[DocumentRef] {
        self.documents.get(&entry).map(Vec::as_slice).unwrap_or(&[])
    }

    fn make(&mut self, lot: &LotId, making: Making) {
        for (parent, _) in &making.parents {
            self.children
                .entry(parent.clone())
                .or_default()
                .push(lot.clone());
        }
        self.made_order.push(lot.clone());
        self.makings.insert(lot.clone(), making);
    }
}

/// A lot as `a` leaves it: its new value if the rules wrote one.
fn lot_after<'a>(a: &'a Accepted<'_>, id: &LotId) -> Option<&'a Lot> {
    a.changes.iter().rev().find_map(|v| match v {
        StateValue::Lot(l) if l.id == *id => Some(l),
        _ => None,
    })
}

/// The organisation `id` acted for just before `a`.
fn organisation_before(a: &Accepted<'_>, id: &ParticipantId) -> ParticipantId {
    a.before.organisation_of(id).unwrap_or_else(|_| id.clone())
}

/// `floor(value × part / whole)`, as the rules scale a partly consumed
/// input; zero when `whole` is zero.
fn scale(value: Grams, part: Grams, whole: Grams) -> Grams {
    if whole.0 == 0 {
        return Grams(0);
    }
    let v = u128::from(value.0) * u128::from(part.0) / u128::from(whole.0);
    Grams(u64::try_from(v).unwrap_or(u64::MAX))
}

impl Observer for Sourcing {
    fn accepted(&mut self, a: &Accepted<'_>) {
        let index = a.entry.index;
        let event = a.event;
        let record_time = a.entry.record_time;
        self.entries.push(EntryLink {
            entry: index,
            event_type: event.body.type_name(),
            event_id: a.entry.signed.event_id(),
            leaf_hash: Digest::from_bytes(*a.leaf),
            event_time: event.time,
            record_time,
            signer: event.signer.clone(),
        });
        let acquisition = |lot: &Lot, how, party: &ParticipantId| Acquisition {
            entry: index,
            lot: lot.id.clone(),
            how,
            party: party.clone(),
            organisation: organisation_before(a, party),
            event_time: event.time,
            record_time,
            metal: lot.metal,
            contained: lot.contained_of(lot.metal),
        };
        let mut documents: Vec<DocumentRef> = Vec::new();
        match &event.body {
            EventBody::CreateLot(c) => {
                if let Some(l) = lot_after(a, &c.lot) {
                    self.acquisitions
                        .push(acquisition(l, Acquired::Produced, &event.signer));
                    self.make(
                        &c.lot,
                        Making {
                            entry: index,
                            how: MadeBy::Created {
                                site: c.site.clone(),
                            },
                            parents: Vec::new(),
                        },
                    );
                }
            }
            EventBody::Split(s) => {
                for part in &s.parts {
                    let metal = lot_after(a, &part.lot)
                        .map(|l| l.contained_of(l.metal))
                        .unwrap_or_default();
                    self.make(
                        &part.lot,
                        Making {
                            entry: index,
                            how: MadeBy::Split,
                            parents: vec![(s.lot.clone(), metal)],
                        },
                    );
                }
            }
            EventBody::Blend(b) => {
                let parents = b
                    .inputs
                    .iter()
                    .map(|id| {
                        let weight = a
                            .before
                            .lot(id)
                            .ok()
                            .flatten()
                            .map(|l| l.contained_of(l.metal))
                            .unwrap_or_default();
                        (id.clone(), weight)
                    })
                    .collect();
                self.make(
                    &b.output,
                    Making {
                        entry: index,
                        how: MadeBy::Blend,
                        parents,
                    },
                );
            }
            EventBody::Transform(t) => {
                let processor = organisation_before(a, &event.signer);
                let inputs: Vec<(LotId, Option<Lot>, Grams)> = t
                    .inputs
                    .iter()
                    .map(|i| {
                        (
                            i.lot.clone(),
                            a.before.lot(&i.lot).ok().flatten(),
                            i.consumed_wet,
                        )
                    })
                    .collect();
                for o in &t.outputs {
                    // What each input gave of this output's metal: its
                    // consumed share, as the rules weigh origins.
                    let parents = inputs
                        .iter()
                        .map(|(id, lot, consumed)| {
                            let weight = lot
                                .as_ref()
                                .map(|l| scale(l.contained_of(o.metal), *consumed, l.wet))
                                .unwrap_or_default();
                            (id.clone(), weight)
                        })
                        .collect();
                    self.make(
                        &o.lot,
                        Making {
                            entry: index,
                            how: MadeBy::Transform {
                                processor: processor.clone(),
                                process: t.process.clone(),
                            },
                            parents,
                        },
                    );
                }
            }
            EventBody::Receive(r) => {
                documents.extend(r.documents.iter().cloned());
                if let Some(before) = a.before.lot(&r.lot).ok().flatten() {
                    let organisation = organisation_before(a, &event.signer);
                    // The direct supplier and the parties behind the lot,
                    // as `rules::compliance::check_delivery` names them.
                    let owner_org = organisation_before(a, &before.owner);
                    let supplier = if owner_org != organisation {
                        Some(before.owner.clone())
                    } else {
                        before.seller.clone()
                    };
                    let mut parties: Vec<ParticipantId> = supplier.iter().cloned().collect();
                    for share in before.origin.shares() {
                        if let Ok(Some(site)) = a.before.site(&share.site)
                            && !parties.contains(&site.operator)
                        {
                            parties.push(site.operator);
                        }
                    }
                    let sanctioned = parties
                        .into_iter()
                        .filter_map(|party| {
                            let file = a.before.supplier_file(&organisation, &party).ok()??;
                            let imposed = file.sanction_at(record_time)?.imposed_in;
                            Some((party, imposed))
                        })
                        .collect();
                    let after = lot_after(a, &r.lot).unwrap_or(&before);
                    let dispatched_in = match before.status {
                        LotStatus::InTransit { dispatched_in, .. } => Some(dispatched_in),
                        _ => None,
                    };
                    if r.accepted {
                        self.acquisitions.push(acquisition(
                            after,
                            Acquired::Received,
                            &event.signer,
                        ));
                    }
                    self.receipts.push(Receipt {
                        entry: index,
                        lot: r.lot.clone(),
                        receiver: event.signer.clone(),
                        organisation,
                        supplier,
                        accepted: r.accepted,
                        event_time: event.time,
                        record_time,
                        dispatched_in,
                        metal: after.metal,
                        contained: after.contained_of(after.metal),
                        sanctioned,
                    });
                }
            }
            EventBody::Sell(s) => {
                documents.extend(s.documents.iter().cloned());
                if let Some(l) = lot_after(a, &s.lot) {
                    self.acquisitions
                        .push(acquisition(l, Acquired::Bought, &s.buyer));
                }
            }
            EventBody::Dispatch(d) => documents.extend(d.documents.iter().cloned()),
            EventBody::RecordAssay(r) => documents.extend(r.certificate.iter().cloned()),
            EventBody::AttachDocument(d) => documents.push(d.document.clone()),
            EventBody::AssessOnboarding(o) => self.onboardings.push(Onboarding {
                entry: index,
                record_time,
                organisation: o.organisation.clone(),
                supplier: o.supplier.clone(),
                passed: o.passed,
            }),
            _ => {}
        }
        if !documents.is_empty() {
            self.documents.insert(index, documents);
        }
        for value in a.changes {
            match value {
                StateValue::Participant(p) => {
                    self.participants.insert(p.id.clone(), p.clone());
                }
                StateValue::Affiliation(x) => {
                    self.affiliations
                        .insert(x.member.clone(), x.organisation.clone());
                }
                StateValue::Site(s) => {
                    self.sites.insert(s.id.clone(), s.clone());
                }
                StateValue::Lot(l) => {
                    self.lots.insert(l.id.clone(), l.clone());
                }
                StateValue::Supplier(f) => {
                    self.files
                        .insert((f.organisation.clone(), f.supplier.clone()), f.clone());
                }
                _ => {}
            }
        }
    }
}

/// The countries an organisation is at home in: where it is registered
/// and where the sites it (or anyone acting for it) operates lie.
pub fn host_countries(sourcing: &Sourcing, organisation: &ParticipantId) -> Vec<CountryCode> {
    let mut countries: Vec<CountryCode> = sourcing
        .participant(organisation)
        .map(|p| p.country.clone())
        .into_iter()
        .chain(
            sourcing
                .sites()
                .filter(|s| sourcing.organisation_of(&s.operator) == organisation)
                .map(|s| s.country.clone()),
        )
        .collect();
    countries.sort();
    countries.dedup();
    countries
}

/// Whether `party` is `who` or acts for it.
pub fn is_or_acts_for(sourcing: &Sourcing, party: &ParticipantId, who: &ParticipantId) -> bool {
    party == who || sourcing.organisation_of(party) == who
}

/// A share as an exact fraction and in parts per billion, rounded down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Share {
    pub numerator: u64,
    pub denominator: u64,
    /// `floor(numerator × 10^9 / denominator)`; zero when the denominator is.
    pub ppb: u64,
}

impl Share {
    pub fn of(numerator: u64, denominator: u64) -> Self {
        let ppb = if denominator == 0 {
            0
        } else {
            let v =
                u128::from(numerator) * u128::from(crate::model::BILLION) / u128::from(denominator);
            u64::try_from(v).unwrap_or(u64::MAX)
        };
        Share {
            numerator,
            denominator,
            ppb,
        }
    }
}
