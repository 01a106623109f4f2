//! GS1 EPCIS 2.0 export: custody events as a JSON-LD `EPCISDocument`
//! (`schemas/EVENTS.md`, "EPCIS 2.0 export", gives the mapping).
//!
//! The export rides along a full verification of the log (an
//! [`Observer`] of the replay), so each event is rendered with the state
//! the rules left behind it (masses, assays, contained metal, custody and
//! origin after the event) and nothing is exported from a log that does
//! not verify. Quantities go into `quantityList` in kilograms, exactly;
//! everything else the ledger knows (integer grams, grades in parts per
//! billion, origin shares, documents, the entry and its hash) goes into
//! extension fields under the `oretrail` prefix that the document's
//! `@context` declares. Participants and sites are EPCIS master data in
//! the header. The vocabulary (event types, business steps, lot EPCs,
//! event ids) is `catalog::epcis`, shared with the query API's filters.
//!
//! Everything but [`export`] and [`export_each`] (which read the log) is
//! pure: a function of the entries and the state at each.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};

use super::{AuditError, LogSnapshot};
use crate::catalog::epcis::{BizStep, EpcisType, EventType, event_id_uri, lot_epc, mapping};
use crate::crypto::Digest;
use crate::ledger::{Accepted, Observer, VerifyReport};
use crate::model::{
    AssayStage, DocumentKind, DocumentRef, Element, Event, EventBody, Grams, Lot, LotId, LotKind,
    LotStatus, ParticipantId, SiteId, SiteScale, StateValue, StateView, Timestamp,
};

/// The GS1 EPCIS 2.0 JSON-LD context every document names first.
pub const EPCIS_CONTEXT: &str = "https://ref.gs1.org/standards/epcis/epcis-context.jsonld";

/// The prefix of our extension fields, and the IRI it stands for.
pub const EXTENSION_PREFIX: &str = "oretrail";
pub const EXTENSION_NAMESPACE: &str = "urn:oretrail:epcis:";

/// Participants as EPCIS source and destination ids.
pub const PARTY_PREFIX: &str = "urn:oretrail:party:";
/// Sites as EPCIS read points and business locations.
pub const SITE_PREFIX: &str = "urn:oretrail:site:";
/// A sale as the EPCIS business transaction of its `TransactionEvent`:
/// the hex event id of the sale event.
pub const SALE_PREFIX: &str = "urn:oretrail:sale:";

/// Above this many grams a quantity is written in grams (`GRM`, an
/// integer) instead of kilograms: below it, the shortest decimal of the
/// nearest `f64` to `grams / 1000` is that quotient exactly, so no gram is
/// lost (2^51 g is about 2.25 billion tonnes; no lot comes near).
const EXACT_KILOGRAMS_BELOW: u64 = 1 << 51;

/// The EPCIS id of a participant.
pub fn party_uri(id: &ParticipantId) -> String {
    format!("{PARTY_PREFIX}{id}")
}

/// The EPCIS id of a site.
pub fn site_uri(id: &SiteId) -> String {
    format!("{SITE_PREFIX}{id}")
}

/// Which events to export.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// Only events that concern this lot (and the lots it reaches).
    pub lot: Option<LotSelection>,
    /// Only events of one of these types; all exported types when empty.
    pub types: Vec<TypeFilter>,
    /// Only events whose event time is at or after this.
    pub from: Option<Timestamp>,
    /// Only events whose event time is before this.
    pub until: Option<Timestamp>,
    /// Only events this participant signed, or that name it as a source
    /// or destination party.
    pub participant: Option<ParticipantId>,
    /// Only events of these entries: what an access policy lets a reader
    /// see (the HTTP export for a member); every entry when `None`. The
    /// document then says it holds only disclosed events.
    pub entries: Option<BTreeSet<u64>>,
}

/// A lot and how far along its graph of splits, blends and
/// transformations the selection reaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LotSelection {
    pub lot: LotId,
    pub reach: Reach,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reach {
    /// The lot alone.
    Lot,
    /// The lot and every lot it was made from, down to the mines' lots.
    Upstream,
    /// The lot and every lot made from it.
    Downstream,
    /// Both directions.
    UpstreamAndDownstream,
}

/// An event type to select: one of ours (`dispatch`) or an EPCIS event
/// type (`ObjectEvent`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypeFilter {
    Event(EventType),
    Epcis(EpcisType),
}

impl FromStr for TypeFilter {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        if let Some(t) = EventType::parse(text) {
            if mapping(t, false).is_none() {
                return Err(format!(
                    "{text} events are not exported to EPCIS (identity, site and compliance \
                     records are not physical events; see schemas/EVENTS.md)"
                ));
            }
            return Ok(TypeFilter::Event(t));
        }
        EpcisType::parse(text)
            .map(TypeFilter::Epcis)
            .ok_or_else(|| {
                format!(
                    "{text:?} is neither an oretrail event type (create_lot, dispatch, ...) nor \
                     an EPCIS event type (ObjectEvent, TransformationEvent, TransactionEvent)"
                )
            })
    }
}

impl fmt::Display for TypeFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TypeFilter::Event(t) => f.write_str(t.name()),
            TypeFilter::Epcis(t) => f.write_str(t.name()),
        }
    }
}

impl Serialize for TypeFilter {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Exports the events of the log `snapshot` that `selection` picks as an
/// EPCIS document created at `created`, verifying the whole log on the way.
pub fn export(
    snapshot: &LogSnapshot,
    selection: &Selection,
    created: Timestamp,
    progress: bool,
) -> Result<EpcisDocument, AuditError> {
    let mut documents = export_each(snapshot, std::slice::from_ref(selection), created, progress)?;
    documents
        .pop()
        .ok_or_else(|| AuditError::Filter("no selection given".into()))
}

/// One document per selection, from a single verification of the log:
/// for many exports at once (a document per sampled lot, say), since
/// verifying dominates the cost of each.
pub fn export_each(
    snapshot: &LogSnapshot,
    selections: &[Selection],
    created: Timestamp,
    progress: bool,
) -> Result<Vec<EpcisDocument>, AuditError> {
    let needs_graph = selections
        .iter()
        .any(|s| s.lot.is_some() || s.participant.is_some());
    let graph = if needs_graph {
        let mut graph = LotGraph::default();
        snapshot.scan_events(|_, event| graph.observe(event))?;
        Some(graph)
    } else {
        None
    };
    let mut collectors = Vec::with_capacity(selections.len());
    for selection in selections {
        let lots = match (&selection.lot, &graph) {
            (Some(chosen), Some(graph)) => Some(graph.reach(&chosen.lot, chosen.reach)?),
            _ => None,
        };
        if let (Some(p), Some(graph)) = (&selection.participant, &graph)
            && !graph.participants.contains(p)
        {
            return Err(AuditError::Filter(format!(
                "participant {p} is not registered on this ledger"
            )));
        }
        collectors.push(Collector::new(selection.clone(), lots));
    }
    let (report, Collectors(collectors)) = snapshot.verify(Collectors(collectors), progress)?;
    Ok(collectors
        .into_iter()
        .map(|c| c.into_document(&report, created))
        .collect())
}

/// The lots each split, blend and transformation made from which, for
/// selecting a lot's upstream or downstream, and every id seen, to tell a
/// mistyped filter from an empty result.
#[derive(Debug, Default)]
pub struct LotGraph {
    parents: HashMap<LotId, Vec<LotId>>,
    children: HashMap<LotId, Vec<LotId>>,
    lots: HashSet<LotId>,
    participants: HashSet<ParticipantId>,
}

impl LotGraph {
    /// Takes in one event, in log order.
    pub fn observe(&mut self, event: &Event) {
        let mut link = |from: &LotId, to: &LotId| {
            self.children
                .entry(from.clone())
                .or_default()
                .push(to.clone());
            self.parents
                .entry(to.clone())
                .or_default()
                .push(from.clone());
        };
        match &event.body {
            EventBody::Split(s) => s.parts.iter().for_each(|p| link(&s.lot, &p.lot)),
            EventBody::Blend(b) => b.inputs.iter().for_each(|i| link(i, &b.output)),
            EventBody::Transform(t) => {
                for i in &t.inputs {
                    t.outputs.iter().for_each(|o| link(&i.lot, &o.lot));
                }
            }
            EventBody::Genesis(g) => {
                self.participants.insert(g.operator.clone());
            }
            EventBody::RegisterParticipant(r) => {
                self.participants.insert(r.participant.clone());
            }
            _ => {}
        }
        self.lots.extend(event.body.lots().into_iter().cloned());
    }

    /// `lot` and the lots it reaches in the given direction.
    pub fn reach(&self, lot: &LotId, reach: Reach) -> Result<HashSet<LotId>, AuditError> {
        if !self.lots.contains(lot) {
            return Err(AuditError::Filter(format!(
                "lot {lot} is not on this ledger"
            )));
        }
        let mut found = HashSet::from([lot.clone()]);
        let directions: &[&HashMap<LotId, Vec<LotId>>] = match reach {
            Reach::Lot => &[],
            Reach::Upstream => &[&self.parents],
            Reach::Downstream => &[&self.children],
            Reach::UpstreamAndDownstream => &[&self.parents, &self.children],
        };
        // Each direction on its own: a sibling (another output of the same
        // smelting) is neither upstream nor downstream of the lot.
        for edges in directions {
            let mut queue = VecDeque::from([lot.clone()]);
            let mut seen = HashSet::from([lot.clone()]);
            while let Some(next) = queue.pop_front() {
                for linked in edges.get(&next).into_iter().flatten() {
                    if seen.insert(linked.clone()) {
                        queue.push_back(linked.clone());
                    }
                }
            }
            found.extend(seen);
        }
        Ok(found)
    }
}

/// A JSON-LD `EPCISDocument` (EPCIS 2.0, section 12 JSON binding).
#[derive(Debug, Clone, Serialize)]
pub struct EpcisDocument {
    #[serde(rename = "@context")]
    context: Context,
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(rename = "schemaVersion")]
    schema_version: &'static str,
    #[serde(rename = "creationDate")]
    creation_date: Timestamp,
    #[serde(rename = "epcisHeader")]
    header: Header,
    #[serde(rename = "epcisBody")]
    body: Body,
    /// The ledger the events are from, and the signed checkpoint that
    /// commits to all of them (each event names its entry and entry hash,
    /// so an inclusion proof ties it to this checkpoint).
    #[serde(rename = "oretrail:ledger")]
    ledger: String,
    #[serde(rename = "oretrail:treeSize")]
    tree_size: u64,
    #[serde(rename = "oretrail:checkpoint")]
    checkpoint: String,
    #[serde(rename = "oretrail:logKey")]
    log_key: String,
    #[serde(rename = "oretrail:selection")]
    selection: SelectionRecord,
}

impl EpcisDocument {
    pub fn events(&self) -> &[EpcisEvent] {
        &self.body.event_list
    }
}

/// `["<GS1 context>", {"oretrail": "<namespace>"}]`.
#[derive(Debug, Clone)]
struct Context;

impl Serialize for Context {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = s.serialize_seq(Some(2))?;
        seq.serialize_element(EPCIS_CONTEXT)?;
        seq.serialize_element(&BTreeMap::from([(EXTENSION_PREFIX, EXTENSION_NAMESPACE)]))?;
        seq.end()
    }
}

#[derive(Debug, Clone, Serialize)]
struct Header {
    #[serde(rename = "epcisMasterData")]
    master_data: MasterData,
}

#[derive(Debug, Clone, Serialize)]
struct MasterData {
    #[serde(rename = "vocabularyList")]
    vocabulary_list: Vec<Vocabulary>,
}

#[derive(Debug, Clone, Serialize)]
struct Vocabulary {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(rename = "vocabularyElementList")]
    elements: Vec<VocabularyElement>,
}

#[derive(Debug, Clone, Serialize)]
struct VocabularyElement {
    id: String,
    attributes: Vec<Attribute>,
}

#[derive(Debug, Clone, Serialize)]
struct Attribute {
    id: &'static str,
    attribute: String,
}

#[derive(Debug, Clone, Serialize)]
struct Body {
    #[serde(rename = "eventList")]
    event_list: Vec<EpcisEvent>,
}

/// The selection, recorded in the document so it can be reproduced.
#[derive(Debug, Clone, Serialize)]
struct SelectionRecord {
    #[serde(rename = "oretrail:lot", skip_serializing_if = "Option::is_none")]
    lot: Option<String>,
    #[serde(rename = "oretrail:reach", skip_serializing_if = "Option::is_none")]
    reach: Option<Reach>,
    #[serde(rename = "oretrail:eventTypes", skip_serializing_if = "Vec::is_empty")]
    types: Vec<TypeFilter>,
    #[serde(rename = "oretrail:from", skip_serializing_if = "Option::is_none")]
    from: Option<Timestamp>,
    #[serde(rename = "oretrail:until", skip_serializing_if = "Option::is_none")]
    until: Option<Timestamp>,
    #[serde(
        rename = "oretrail:participant",
        skip_serializing_if = "Option::is_none"
    )]
    participant: Option<String>,
    /// Set when the selection was narrowed to what the reader may see.
    #[serde(
        rename = "oretrail:disclosedOnly",
        skip_serializing_if = "std::ops::Not::not"
    )]
    disclosed_only: bool,
}

impl From<&Selection> for SelectionRecord {
    fn from(s: &Selection) -> Self {
        SelectionRecord {
            lot: s.lot.as_ref().map(|l| lot_epc(&l.lot)),
            reach: s.lot.as_ref().map(|l| l.reach),
            types: s.types.clone(),
            from: s.from,
            until: s.until,
            participant: s.participant.as_ref().map(party_uri),
            disclosed_only: s.entries.is_some(),
        }
    }
}

/// One EPCIS event: an `ObjectEvent`, `TransformationEvent` or
/// `TransactionEvent`, with our extension fields.
#[derive(Debug, Clone, Serialize)]
pub struct EpcisEvent {
    #[serde(rename = "type")]
    pub event_type: EpcisType,
    #[serde(rename = "eventID")]
    pub event_id: String,
    #[serde(rename = "eventTime")]
    pub event_time: Timestamp,
    #[serde(rename = "recordTime")]
    pub record_time: Timestamp,
    /// Times are UTC throughout.
    #[serde(rename = "eventTimeZoneOffset")]
    time_zone_offset: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    action: Option<Action>,
    #[serde(rename = "epcList", skip_serializing_if = "Option::is_none")]
    epc_list: Option<Vec<String>>,
    #[serde(rename = "quantityList", skip_serializing_if = "Option::is_none")]
    quantity_list: Option<Vec<Quantity>>,
    #[serde(rename = "inputQuantityList", skip_serializing_if = "Option::is_none")]
    input_quantity_list: Option<Vec<Quantity>>,
    #[serde(rename = "outputQuantityList", skip_serializing_if = "Option::is_none")]
    output_quantity_list: Option<Vec<Quantity>>,
    #[serde(rename = "bizStep")]
    pub biz_step: BizStep,
    #[serde(skip_serializing_if = "Option::is_none")]
    disposition: Option<Disposition>,
    #[serde(rename = "readPoint", skip_serializing_if = "Option::is_none")]
    read_point: Option<Location>,
    #[serde(rename = "bizLocation", skip_serializing_if = "Option::is_none")]
    biz_location: Option<Location>,
    #[serde(rename = "bizTransactionList", skip_serializing_if = "Vec::is_empty")]
    biz_transactions: Vec<BizTransaction>,
    #[serde(rename = "sourceList", skip_serializing_if = "Vec::is_empty")]
    sources: Vec<Source>,
    #[serde(rename = "destinationList", skip_serializing_if = "Vec::is_empty")]
    destinations: Vec<Destination>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ilmd: Option<Ilmd>,
    /// Our event type (`dispatch`, `transform`, ...).
    #[serde(rename = "oretrail:eventType")]
    pub our_type: EventType,
    #[serde(rename = "oretrail:ledger")]
    ledger: String,
    /// The entry's index and its RFC 9162 leaf hash (hex).
    #[serde(rename = "oretrail:entry")]
    pub entry: u64,
    #[serde(rename = "oretrail:entryHash")]
    entry_hash: String,
    #[serde(rename = "oretrail:signer")]
    signer: String,
    /// Each lot the event concerns, as the ledger holds it after the event.
    #[serde(rename = "oretrail:lots", skip_serializing_if = "Vec::is_empty")]
    lots: Vec<LotFacts>,
    #[serde(rename = "oretrail:documents", skip_serializing_if = "Vec::is_empty")]
    documents: Vec<Document>,
    #[serde(rename = "oretrail:details", skip_serializing_if = "Option::is_none")]
    details: Option<Details>,
}

impl EpcisEvent {
    /// Every party the event names as a source or destination.
    pub fn parties(&self) -> impl Iterator<Item = &str> {
        self.sources
            .iter()
            .map(|s| s.source.as_str())
            .chain(self.destinations.iter().map(|d| d.destination.as_str()))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
enum Action {
    Add,
    Observe,
}

/// The CBV 2.0 dispositions our events set (bare names, as EPCIS 2.0
/// JSON-LD writes them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum Disposition {
    Active,
    InTransit,
    InProgress,
    NonConformant,
}

#[derive(Debug, Clone, Serialize)]
struct Location {
    id: String,
}

#[derive(Debug, Clone, Serialize)]
struct BizTransaction {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(rename = "bizTransaction")]
    id: String,
}

#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "snake_case")]
enum PartyRole {
    OwningParty,
    PossessingParty,
}

#[derive(Debug, Clone, Serialize)]
struct Source {
    #[serde(rename = "type")]
    role: PartyRole,
    source: String,
}

#[derive(Debug, Clone, Serialize)]
struct Destination {
    #[serde(rename = "type")]
    role: PartyRole,
    destination: String,
}

fn source(role: PartyRole, party: &ParticipantId) -> Source {
    Source {
        role,
        source: party_uri(party),
    }
}

fn destination(role: PartyRole, party: &ParticipantId) -> Destination {
    Destination {
        role,
        destination: party_uri(party),
    }
}

/// A class-level quantity of a lot.
#[derive(Debug, Clone, Serialize)]
struct Quantity {
    #[serde(rename = "epcClass")]
    epc_class: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    quantity: Option<serde_json::Number>,
    #[serde(skip_serializing_if = "Option::is_none")]
    uom: Option<&'static str>,
}

impl Quantity {
    /// `grams` of `lot`, in kilograms (`KGM`) written exactly, or in grams
    /// (`GRM`) for the absurdly large.
    fn of(lot: &LotId, grams: Grams) -> Self {
        let (quantity, uom) = if grams.0 < EXACT_KILOGRAMS_BELOW {
            #[allow(clippy::cast_precision_loss)] // exact below 2^53, see the constant
            let kg = grams.0 as f64 / 1000.0;
            match serde_json::Number::from_f64(kg) {
                Some(n) => (n, "KGM"),
                None => (serde_json::Number::from(grams.0), "GRM"),
            }
        } else {
            (serde_json::Number::from(grams.0), "GRM")
        };
        Quantity {
            epc_class: lot_epc(lot),
            quantity: Some(quantity),
            uom: Some(uom),
        }
    }

    /// A lot named without a figure.
    fn unknown(lot: &LotId) -> Self {
        Quantity {
            epc_class: lot_epc(lot),
            quantity: None,
            uom: None,
        }
    }
}

/// Lot master data at creation (ILMD).
#[derive(Debug, Clone, Serialize)]
struct Ilmd {
    #[serde(rename = "oretrail:lotKind")]
    kind: LotKind,
    #[serde(rename = "oretrail:site")]
    site: String,
    #[serde(rename = "oretrail:producedFrom")]
    produced_from: Timestamp,
    #[serde(rename = "oretrail:producedUntil")]
    produced_until: Timestamp,
}

/// A lot as the ledger holds it after the event: integer grams and parts
/// per billion, as the rules computed them.
#[derive(Debug, Clone, Serialize)]
struct LotFacts {
    #[serde(rename = "oretrail:epc")]
    epc: String,
    #[serde(rename = "oretrail:kind")]
    kind: LotKind,
    #[serde(rename = "oretrail:metal")]
    metal: Element,
    #[serde(rename = "oretrail:custodian")]
    custodian: String,
    #[serde(rename = "oretrail:owner")]
    owner: String,
    #[serde(rename = "oretrail:status")]
    status: &'static str,
    #[serde(rename = "oretrail:wetGrams")]
    wet: u64,
    #[serde(rename = "oretrail:dryGrams")]
    dry: u64,
    #[serde(rename = "oretrail:moisturePpb")]
    moisture: u32,
    #[serde(rename = "oretrail:assayStage")]
    assay_stage: AssayStage,
    #[serde(rename = "oretrail:assays")]
    assays: Vec<Grade>,
    #[serde(rename = "oretrail:containedMetal")]
    contained: Vec<Contained>,
    #[serde(rename = "oretrail:origin")]
    origin: Vec<Share>,
    #[serde(rename = "oretrail:redFlags", skip_serializing_if = "Vec::is_empty")]
    red_flags: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
struct Grade {
    #[serde(rename = "oretrail:element")]
    element: Element,
    #[serde(rename = "oretrail:gradePpb")]
    grade: u32,
}

#[derive(Debug, Clone, Serialize)]
struct Contained {
    #[serde(rename = "oretrail:element")]
    element: Element,
    #[serde(rename = "oretrail:grams")]
    grams: u64,
}

#[derive(Debug, Clone, Serialize)]
struct Share {
    #[serde(rename = "oretrail:site")]
    site: String,
    #[serde(rename = "oretrail:sharePpb")]
    share: u32,
}

impl From<&Lot> for LotFacts {
    fn from(lot: &Lot) -> Self {
        LotFacts {
            epc: lot_epc(&lot.id),
            kind: lot.kind,
            metal: lot.metal,
            custodian: party_uri(&lot.custodian),
            owner: party_uri(&lot.owner),
            status: match lot.status {
                LotStatus::Held => "held",
                LotStatus::InTransit { .. } => "in_transit",
                LotStatus::Consumed { .. } => "consumed",
            },
            wet: lot.wet.0,
            dry: lot.dry.0,
            moisture: lot.moisture.get(),
            assay_stage: lot.assay_stage,
            assays: lot
                .assays
                .iter()
                .map(|a| Grade {
                    element: a.element,
                    grade: a.grade.get(),
                })
                .collect(),
            contained: lot
                .contained
                .iter()
                .map(|(element, grams)| Contained {
                    element: *element,
                    grams: grams.0,
                })
                .collect(),
            origin: lot
                .origin
                .shares()
                .iter()
                .map(|s| Share {
                    site: site_uri(&s.site),
                    share: s.share.get(),
                })
                .collect(),
            red_flags: lot
                .flags
                .iter()
                .map(|f| format!("{}/{}", f.entry, f.n))
                .collect(),
        }
    }
}

/// A document referenced by SHA-256.
#[derive(Debug, Clone, Serialize)]
struct Document {
    #[serde(rename = "oretrail:documentKind")]
    kind: DocumentKind,
    #[serde(rename = "oretrail:sha256")]
    sha256: String,
}

impl From<&DocumentRef> for Document {
    fn from(d: &DocumentRef) -> Self {
        Document {
            kind: d.kind,
            sha256: d.sha256.to_hex(),
        }
    }
}

/// What a particular kind of event says beyond lots and quantities.
#[derive(Debug, Clone, Default, Serialize)]
struct Details {
    #[serde(
        rename = "oretrail:assayStage",
        skip_serializing_if = "Option::is_none"
    )]
    assay_stage: Option<AssayStage>,
    #[serde(rename = "oretrail:assays", skip_serializing_if = "Vec::is_empty")]
    assays: Vec<Grade>,
    #[serde(
        rename = "oretrail:moisturePpb",
        skip_serializing_if = "Option::is_none"
    )]
    moisture: Option<u32>,
    /// A dispatch's route: the countries it passes through, in order.
    #[serde(rename = "oretrail:route", skip_serializing_if = "Vec::is_empty")]
    route: Vec<String>,
    #[serde(rename = "oretrail:accepted", skip_serializing_if = "Option::is_none")]
    accepted: Option<bool>,
    #[serde(
        rename = "oretrail:dispatchedWetGrams",
        skip_serializing_if = "Option::is_none"
    )]
    dispatched_wet: Option<u64>,
    #[serde(
        rename = "oretrail:measuredWetGrams",
        skip_serializing_if = "Option::is_none"
    )]
    measured_wet: Option<u64>,
    #[serde(rename = "oretrail:note", skip_serializing_if = "Option::is_none")]
    note: Option<String>,
    #[serde(rename = "oretrail:process", skip_serializing_if = "Option::is_none")]
    process: Option<String>,
    #[serde(
        rename = "oretrail:correctsEntry",
        skip_serializing_if = "Option::is_none"
    )]
    corrects_entry: Option<u64>,
    #[serde(
        rename = "oretrail:correctsEventID",
        skip_serializing_if = "Option::is_none"
    )]
    corrects_event: Option<String>,
}

/// The observer that renders the selected events during verification.
struct Collector {
    selection: Selection,
    /// The lots the selection reaches, when it names one.
    lots: Option<HashSet<LotId>>,
    events: Vec<EpcisEvent>,
    /// Event id of every entry so far, for corrections to name the event
    /// they correct.
    event_ids: Vec<Digest>,
    origin: String,
    sites: BTreeMap<SiteId, VocabularyElement>,
    parties: BTreeMap<ParticipantId, VocabularyElement>,
}

/// Several collectors fed by one replay.
struct Collectors(Vec<Collector>);

impl Observer for Collectors {
    fn accepted(&mut self, a: &Accepted<'_>) {
        for collector in &mut self.0 {
            collector.accepted(a);
        }
    }
}

impl Observer for Collector {
    fn accepted(&mut self, a: &Accepted<'_>) {
        let event_id = a.entry.signed.event_id();
        if let EventBody::Genesis(g) = &a.event.body {
            self.origin.clone_from(&g.origin);
        }
        if let Some(event) = self.render(a, &event_id) {
            self.remember_master_data(a, &event);
            self.events.push(event);
        }
        self.event_ids.push(event_id);
    }
}

impl Collector {
    fn new(selection: Selection, lots: Option<HashSet<LotId>>) -> Self {
        Collector {
            selection,
            lots,
            events: Vec::new(),
            event_ids: Vec::new(),
            origin: String::new(),
            sites: BTreeMap::new(),
            parties: BTreeMap::new(),
        }
    }

    /// The EPCIS event for an accepted entry, when it maps to one and the
    /// selection picks it.
    fn render(&self, a: &Accepted<'_>, event_id: &Digest) -> Option<EpcisEvent> {
        let body = &a.event.body;
        let our_type = EventType::of(body);
        let refused = matches!(body, EventBody::Receive(r) if !r.accepted);
        let mapped = mapping(our_type, refused)?;
        let s = &self.selection;
        let type_matches = s.types.is_empty()
            || s.types.iter().any(|t| match t {
                TypeFilter::Event(t) => *t == our_type,
                TypeFilter::Epcis(t) => *t == mapped.event_type,
            });
        let time = a.event.time;
        let in_period =
            s.from.is_none_or(|from| time >= from) && s.until.is_none_or(|until| time < until);
        let lot_matches = self
            .lots
            .as_ref()
            .is_none_or(|lots| body.lots().into_iter().any(|l| lots.contains(l)));
        let disclosed = s
            .entries
            .as_ref()
            .is_none_or(|entries| entries.contains(&a.entry.index));
        if !(type_matches && in_period && lot_matches && disclosed) {
            return None;
        }
        let mut event = EpcisEvent {
            event_type: mapped.event_type,
            event_id: event_id_uri(event_id),
            event_time: time,
            record_time: a.entry.record_time,
            time_zone_offset: "+00:00",
            action: None,
            epc_list: None,
            quantity_list: None,
            input_quantity_list: None,
            output_quantity_list: None,
            biz_step: mapped.biz_step,
            disposition: None,
            read_point: None,
            biz_location: None,
            biz_transactions: Vec::new(),
            sources: Vec::new(),
            destinations: Vec::new(),
            ilmd: None,
            our_type,
            ledger: self.origin.clone(),
            entry: a.entry.index,
            entry_hash: hex::encode(a.leaf),
            signer: party_uri(&a.event.signer),
            lots: Vec::new(),
            documents: Vec::new(),
            details: None,
        };
        self.fill(&mut event, a, event_id);
        let participant_matches = s.participant.as_ref().is_none_or(|p| {
            *p == a.event.signer || {
                let uri = party_uri(p);
                event.parties().any(|party| party == uri)
            }
        });
        participant_matches.then_some(event)
    }

    /// Fills in what each kind of event says (`schemas/EVENTS.md`).
    fn fill(&self, e: &mut EpcisEvent, a: &Accepted<'_>, event_id: &Digest) {
        let before = |id: &LotId| a.before.lot(id).ok().flatten();
        let after = |id: &LotId| lot_after(a, id);
        let facts = |ids: &[&LotId]| -> Vec<LotFacts> {
            ids.iter()
                .filter_map(|id| after(id))
                .map(|l| LotFacts::from(&l))
                .collect()
        };
        let wet_before = |id: &LotId| before(id).map(|l| l.wet);
        let quantity = |id: &LotId, grams: Option<Grams>| match grams {
            Some(g) => Quantity::of(id, g),
            // An accepted event always finds its lots; should one be
            // missing, the lot is still named, without a figure.
            None => Quantity::unknown(id),
        };
        let mut details = Details::default();
        match &a.event.body {
            EventBody::CreateLot(c) => {
                e.action = Some(Action::Add);
                e.disposition = Some(Disposition::Active);
                e.quantity_list = Some(vec![Quantity::of(&c.lot, c.wet)]);
                e.read_point = Some(Location {
                    id: site_uri(&c.site),
                });
                e.biz_location = e.read_point.clone();
                e.ilmd = Some(Ilmd {
                    kind: c.kind,
                    site: site_uri(&c.site),
                    produced_from: c.produced_from,
                    produced_until: c.produced_until,
                });
                e.lots = facts(&[&c.lot]);
            }
            EventBody::RecordAssay(r) => {
                e.action = Some(Action::Observe);
                e.quantity_list = Some(vec![quantity(&r.lot, after(&r.lot).map(|l| l.wet))]);
                details.assay_stage = Some(r.stage);
                details.assays = r
                    .assays
                    .iter()
                    .map(|g| Grade {
                        element: g.element,
                        grade: g.grade.get(),
                    })
                    .collect();
                details.moisture = r.moisture.map(|m| m.get());
                e.documents = r.certificate.iter().map(Document::from).collect();
                e.lots = facts(&[&r.lot]);
            }
            EventBody::Dispatch(d) => {
                e.action = Some(Action::Observe);
                e.disposition = Some(Disposition::InTransit);
                e.quantity_list = Some(vec![quantity(&d.lot, wet_before(&d.lot))]);
                if let Some(lot) = before(&d.lot) {
                    e.sources = vec![
                        source(PartyRole::PossessingParty, &lot.custodian),
                        source(PartyRole::OwningParty, &lot.owner),
                    ];
                }
                e.destinations = vec![destination(PartyRole::PossessingParty, &d.to)];
                details.route = d.route.iter().map(ToString::to_string).collect();
                e.biz_transactions = bills_of_lading(&d.documents);
                e.documents = d.documents.iter().map(Document::from).collect();
                e.lots = facts(&[&d.lot]);
            }
            EventBody::Receive(r) => {
                e.action = Some(Action::Observe);
                e.quantity_list = Some(vec![Quantity::of(&r.lot, r.measured_wet)]);
                let held = before(&r.lot);
                if let Some(lot) = &held {
                    e.sources = vec![source(PartyRole::PossessingParty, &lot.custodian)];
                }
                if r.accepted {
                    e.disposition = Some(Disposition::InProgress);
                    if let Some(lot) = after(&r.lot) {
                        e.destinations =
                            vec![destination(PartyRole::PossessingParty, &lot.custodian)];
                    }
                } else {
                    e.disposition = Some(Disposition::NonConformant);
                }
                details.accepted = Some(r.accepted);
                details.dispatched_wet = held.map(|l| l.wet.0);
                details.measured_wet = Some(r.measured_wet.0);
                details.note = (!r.note.is_empty()).then(|| r.note.clone());
                e.biz_transactions = bills_of_lading(&r.documents);
                e.documents = r.documents.iter().map(Document::from).collect();
                e.lots = facts(&[&r.lot]);
            }
            EventBody::Split(s) => {
                e.disposition = Some(Disposition::Active);
                e.input_quantity_list = Some(vec![quantity(&s.lot, wet_before(&s.lot))]);
                e.output_quantity_list = Some(
                    s.parts
                        .iter()
                        .map(|p| Quantity::of(&p.lot, p.wet))
                        .collect(),
                );
                e.lots = facts(&a.event.body.lots());
            }
            EventBody::Blend(b) => {
                e.disposition = Some(Disposition::Active);
                e.input_quantity_list = Some(
                    b.inputs
                        .iter()
                        .map(|i| quantity(i, wet_before(i)))
                        .collect(),
                );
                e.output_quantity_list =
                    Some(vec![quantity(&b.output, after(&b.output).map(|l| l.wet))]);
                e.lots = facts(&a.event.body.lots());
            }
            EventBody::Transform(t) => {
                e.disposition = Some(Disposition::Active);
                e.input_quantity_list = Some(
                    t.inputs
                        .iter()
                        .map(|i| Quantity::of(&i.lot, i.consumed_wet))
                        .collect(),
                );
                e.output_quantity_list = Some(
                    t.outputs
                        .iter()
                        .map(|o| Quantity::of(&o.lot, o.wet))
                        .collect(),
                );
                details.process = Some(t.process.clone());
                e.lots = facts(&a.event.body.lots());
            }
            EventBody::Sell(s) => {
                e.action = Some(Action::Add);
                e.quantity_list = Some(vec![quantity(&s.lot, wet_before(&s.lot))]);
                e.biz_transactions = vec![BizTransaction {
                    kind: "po",
                    id: format!("{SALE_PREFIX}{event_id}"),
                }];
                if let Some(lot) = before(&s.lot) {
                    e.sources = vec![source(PartyRole::OwningParty, &lot.owner)];
                }
                e.destinations = vec![destination(PartyRole::OwningParty, &s.buyer)];
                e.documents = s.documents.iter().map(Document::from).collect();
                e.lots = facts(&[&s.lot]);
            }
            EventBody::AttachDocument(d) => {
                e.action = Some(Action::Observe);
                e.quantity_list = Some(vec![quantity(&d.lot, after(&d.lot).map(|l| l.wet))]);
                e.documents = vec![Document::from(&d.document)];
                e.lots = facts(&[&d.lot]);
            }
            EventBody::Correct(c) => {
                e.action = Some(Action::Observe);
                match &c.lot {
                    Some(lot) => {
                        e.quantity_list = Some(vec![quantity(lot, after(lot).map(|l| l.wet))]);
                        e.lots = facts(&[lot]);
                    }
                    // A correction of a record that names no lot observes
                    // no object: an empty EPC list says so.
                    None => e.epc_list = Some(Vec::new()),
                }
                details.corrects_entry = Some(c.entry);
                details.corrects_event = usize::try_from(c.entry)
                    .ok()
                    .and_then(|i| self.event_ids.get(i))
                    .map(event_id_uri);
                details.note = Some(c.reason.clone());
            }
            _ => {}
        }
        let has_details = details.assay_stage.is_some()
            || !details.route.is_empty()
            || details.accepted.is_some()
            || details.process.is_some()
            || details.corrects_entry.is_some();
        e.details = has_details.then_some(details);
    }

    /// Records the master data of the sites and parties `event` names, as
    /// registered before it.
    fn remember_master_data(&mut self, a: &Accepted<'_>, event: &EpcisEvent) {
        let mut sites: Vec<SiteId> = Vec::new();
        if let EventBody::CreateLot(c) = &a.event.body {
            sites.push(c.site.clone());
        }
        for lot in a.event.body.lots() {
            if let Some(l) = lot_after(a, lot) {
                sites.extend(l.origin.shares().iter().map(|s| s.site.clone()));
            }
        }
        for id in sites {
            if self.sites.contains_key(&id) {
                continue;
            }
            if let Ok(Some(site)) = a.before.site(&id) {
                self.sites.insert(id.clone(), site_element(&site));
            }
        }
        let mut parties: Vec<ParticipantId> = Vec::new();
        for party in event.parties() {
            if let Some(id) = party
                .strip_prefix(PARTY_PREFIX)
                .and_then(|p| ParticipantId::new(p).ok())
            {
                parties.push(id);
            }
        }
        for id in parties {
            if self.parties.contains_key(&id) {
                continue;
            }
            if let Ok(Some(p)) = a.before.participant(&id) {
                self.parties.insert(
                    id.clone(),
                    VocabularyElement {
                        id: party_uri(&id),
                        attributes: vec![
                            attribute(MDA_NAME, p.legal_name.clone()),
                            attribute(MDA_COUNTRY, p.country.to_string()),
                        ],
                    },
                );
            }
        }
    }

    fn into_document(self, report: &VerifyReport, created: Timestamp) -> EpcisDocument {
        let mut vocabulary_list = Vec::new();
        if !self.sites.is_empty() {
            vocabulary_list.push(Vocabulary {
                kind: "urn:epcglobal:epcis:vtype:BusinessLocation",
                elements: self.sites.into_values().collect(),
            });
        }
        if !self.parties.is_empty() {
            vocabulary_list.push(Vocabulary {
                kind: "urn:epcglobal:epcis:vtype:SourceDest",
                elements: self.parties.into_values().collect(),
            });
        }
        EpcisDocument {
            context: Context,
            kind: "EPCISDocument",
            schema_version: "2.0",
            creation_date: created,
            header: Header {
                master_data: MasterData { vocabulary_list },
            },
            body: Body {
                event_list: self.events,
            },
            ledger: report.origin.clone(),
            tree_size: report.entries,
            checkpoint: report.checkpoint.clone(),
            log_key: report.log_key.clone(),
            selection: SelectionRecord::from(&self.selection),
        }
    }
}

/// CBV master data attributes (CBV 2.0, section 10).
const MDA_NAME: &str = "urn:epcglobal:cbv:mda#name";
const MDA_COUNTRY: &str = "urn:epcglobal:cbv:mda#countryCode";
const MDA_LATITUDE: &str = "urn:epcglobal:cbv:mda#latitude";
const MDA_LONGITUDE: &str = "urn:epcglobal:cbv:mda#longitude";

fn attribute(id: &'static str, value: String) -> Attribute {
    Attribute {
        id,
        attribute: value,
    }
}

fn site_element(site: &crate::model::Site) -> VocabularyElement {
    VocabularyElement {
        id: site_uri(&site.id),
        attributes: vec![
            attribute(MDA_NAME, site.name.clone()),
            attribute(MDA_COUNTRY, site.country.to_string()),
            attribute(MDA_LATITUDE, micro_degrees(site.latitude_micro)),
            attribute(MDA_LONGITUDE, micro_degrees(site.longitude_micro)),
            attribute("oretrail:operator", party_uri(&site.operator)),
            attribute(
                "oretrail:scale",
                match site.scale {
                    SiteScale::LargeScale => "large_scale",
                    SiteScale::Artisanal => "artisanal",
                    SiteScale::Recycling => "recycling",
                }
                .into(),
            ),
            attribute("oretrail:metal", format!("{:?}", site.metal)),
        ],
    }
}

/// Millionths of a degree as an exact decimal string: -14095000 is
/// "-14.095000".
fn micro_degrees(micro: i32) -> String {
    let sign = if micro < 0 { "-" } else { "" };
    let abs = micro.unsigned_abs();
    format!("{sign}{}.{:06}", abs / 1_000_000, abs % 1_000_000)
}

/// Bills of lading among `documents`, as EPCIS business transactions of
/// type `bol`, named by the RFC 6920 URI of the document's hash.
fn bills_of_lading(documents: &[DocumentRef]) -> Vec<BizTransaction> {
    use base64::Engine as _;
    documents
        .iter()
        .filter(|d| d.kind == DocumentKind::BillOfLading)
        .map(|d| BizTransaction {
            kind: "bol",
            id: format!(
                "ni:///sha-256;{}",
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(d.sha256.as_bytes())
            ),
        })
        .collect()
}

/// A lot as the entry leaves it: its new value if the rules wrote one,
/// else as it was.
fn lot_after(a: &Accepted<'_>, id: &LotId) -> Option<Lot> {
    a.changes
        .iter()
        .rev()
        .find_map(|v| match v {
            StateValue::Lot(l) if l.id == *id => Some(l.clone()),
            _ => None,
        })
        .or_else(|| a.before.lot(id).ok().flatten())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kilograms_are_written_exactly_and_huge_masses_in_grams() {
        let lot = LotId::new("L-1").unwrap();
        let text = |g: u64| serde_json::to_string(&Quantity::of(&lot, Grams(g))).unwrap();
        assert_eq!(
            text(1_234_567),
            r#"{"epcClass":"urn:oretrail:lot:L-1","quantity":1234.567,"uom":"KGM"}"#
        );
        assert!(text(1).contains(r#""quantity":0.001,"uom":"KGM""#));
        assert!(text(40_000_000_000).contains(r#""quantity":40000000.0,"uom":"KGM""#));
        // The largest exact case keeps every gram.
        let edge = EXACT_KILOGRAMS_BELOW - 1;
        let want = format!("{}.{:03}", edge / 1000, edge % 1000);
        assert!(
            text(edge).contains(&format!(r#""quantity":{want},"uom":"KGM""#)),
            "{}",
            text(edge)
        );
        assert!(text(EXACT_KILOGRAMS_BELOW).contains(&format!(
            r#""quantity":{EXACT_KILOGRAMS_BELOW},"uom":"GRM""#
        )));
        assert!(text(u64::MAX).contains(r#""uom":"GRM""#));
    }

    #[test]
    fn coordinates_are_exact_decimals() {
        assert_eq!(micro_degrees(-14_095_000), "-14.095000");
        assert_eq!(micro_degrees(12), "0.000012");
        assert_eq!(micro_degrees(-5), "-0.000005");
        assert_eq!(micro_degrees(i32::MIN), "-2147.483648");
    }

    #[test]
    fn type_filters_parse_our_names_and_epcis_names_and_refuse_the_rest() {
        assert_eq!(
            "dispatch".parse::<TypeFilter>(),
            Ok(TypeFilter::Event(EventType::Dispatch))
        );
        assert_eq!(
            "TransformationEvent".parse::<TypeFilter>(),
            Ok(TypeFilter::Epcis(EpcisType::TransformationEvent))
        );
        assert!("sanction_supplier".parse::<TypeFilter>().is_err());
        assert!("Dispatch".parse::<TypeFilter>().is_err());
    }

    fn lot(id: &str) -> LotId {
        LotId::new(id).unwrap()
    }

    #[test]
    fn the_lot_graph_reaches_up_and_down_but_not_sideways() {
        use crate::model::{Blend, TransformInput, TransformOutput, Transformation};
        let event = |body| Event {
            ledger: "l".into(),
            signer: ParticipantId::new("p").unwrap(),
            time: Timestamp::from_millis(0),
            nonce: 0,
            body,
        };
        let output = |id: &str| TransformOutput {
            lot: lot(id),
            kind: LotKind::Cathode,
            metal: Element::Cu,
            wet: Grams(1),
            moisture: crate::model::Ppb::ZERO,
            assays: vec![],
        };
        let mut graph = LotGraph::default();
        graph.observe(&event(EventBody::Blend(Blend {
            inputs: vec![lot("A"), lot("B")],
            output: lot("AB"),
        })));
        graph.observe(&event(EventBody::Transform(Transformation {
            process: "smelt".into(),
            inputs: vec![TransformInput {
                lot: lot("AB"),
                consumed_wet: Grams(1),
            }],
            outputs: vec![output("CATH"), output("SLIME")],
        })));
        let set = |ids: &[&str]| ids.iter().map(|i| lot(i)).collect::<HashSet<_>>();
        assert_eq!(
            graph.reach(&lot("CATH"), Reach::Upstream).unwrap(),
            set(&["CATH", "AB", "A", "B"])
        );
        assert_eq!(
            graph.reach(&lot("A"), Reach::Downstream).unwrap(),
            set(&["A", "AB", "CATH", "SLIME"])
        );
        assert_eq!(
            graph
                .reach(&lot("AB"), Reach::UpstreamAndDownstream)
                .unwrap(),
            set(&["A", "B", "AB", "CATH", "SLIME"])
        );
        assert_eq!(
            graph.reach(&lot("SLIME"), Reach::Lot).unwrap(),
            set(&["SLIME"])
        );
        assert!(graph.reach(&lot("NOPE"), Reach::Lot).is_err());
    }
}
