//! Who may read what: the access policy, decided here and nowhere else.
//!
//! The API authenticates a request (a bearer token bound to a participant,
//! [`tokens`]) and asks this module what the participant may see. The
//! answers are pure functions of the ledger state and of the events in
//! the log, read through [`Records`]; nothing here knows HTTP or files
//! (except [`tokens`], the token file at the edge).
//!
//! The policy (README, "Who sees what", says the same for users):
//!
//! - **Public** (no token): the log API (checkpoint, log key, every entry's
//!   index and leaf hash, proofs) so anyone can check the log only grows;
//!   and appends, which need a valid participant signature, not a token.
//! - **The operator and auditors** ([`Standing::Operator`],
//!   [`Standing::Auditor`]) see everything.
//! - **Everyone else** reads for its organisation ([`Viewer::organisation`]:
//!   itself, or the organisation it is appointed to act for). An
//!   organisation sees
//!   - in full ([`LotSight::Full`]), every lot it holds now: its custodian
//!     or owner;
//!   - of every lot it held before ([`LotSight::Held`]: in the lot's
//!     history its creator, a processor that split, blended or
//!     transformed it, a dispatcher or the named receiver of a dispatch, a
//!     receiver, a seller or a buyer, [`holding_parties`]), the summary
//!     ([`LotSummary`]) and the history up to and including the event that
//!     ended its holding: its last holding event, or, when that was its
//!     dispatch, the receipt of that dispatch ([`held_until`]). What
//!     happened to the lot after that (later custody, sales between
//!     others, its holder now) is other parties' commercial detail;
//!   - every event it signed or is a party to ([`event_parties`]), every
//!     event in the history of a lot it holds now, and the events of a lot
//!     it held up to the end of its holding;
//!   - the red flags in its own register, and those on any lot it holds or
//!     held, inherited ones included (a cathode carries the flags of the
//!     concentrate it was made from);
//!   - of lots upstream of one it may see, and of lots it held, only the
//!     summary that makes up aggregated provenance ([`LotSummary`]: id,
//!     kind, metal, origin shares by site, flags), not their custodians,
//!     owners, sales, masses, assays or documents;
//!   - its own participant records in full (itself, its organisation, the
//!     officers acting for it), and of everyone else the public identity
//!     ([`ParticipantIdentity`]: id, legal name, country, kinds);
//!   - the supplier files it keeps, and the files others keep on it minus
//!     grievances ([`supplier_file_view`]);
//!   - sites in full when it operates them, and otherwise without capacity
//!     and production ([`site_view`]).
//!
//! Anything else is hidden as if it did not exist (the API answers 404),
//! so that a lot id or a flag number tells nothing to those who may not
//! see it.

pub mod tokens;

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap, VecDeque};

use serde::Serialize;

use crate::model::{
    CountryCode, Element, Event, EventBody, Flag, FlagId, Lot, LotId, LotKind, Origin, Participant,
    ParticipantId, ParticipantKind, Role, Site, StateError, StateView, SupplierFile,
};

/// How far a viewer's sight reaches, widest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Standing {
    /// The ledger's operator: everything.
    Operator,
    /// An auditor: everything.
    Auditor,
    /// A participant reading for its organisation: what the policy shows
    /// that organisation.
    Member,
}

/// An authenticated reader: the participant a token is bound to, the
/// organisation it reads for, and its standing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Viewer {
    participant: ParticipantId,
    organisation: ParticipantId,
    standing: Standing,
}

/// The standing a participant record confers by itself.
fn standing_of(p: &Participant, ledger_operator: Option<&ParticipantId>) -> Standing {
    if ledger_operator == Some(&p.id)
        || p.kinds.contains(&ParticipantKind::Operator)
        || p.has_role(Role::Operator)
    {
        Standing::Operator
    } else if p.kinds.contains(&ParticipantKind::Auditor) || p.has_role(Role::Auditor) {
        Standing::Auditor
    } else {
        Standing::Member
    }
}

impl Viewer {
    /// The viewer `participant` is now: `None` when the ledger does not
    /// hold it (a token for it is then refused). The operator is the
    /// ledger's operator participant, or one of kind or role operator; an
    /// auditor one of kind or role auditor; a participant appointed to act
    /// for an organisation takes the higher of its own standing and the
    /// organisation's.
    pub fn resolve(
        state: &impl StateView,
        participant: &ParticipantId,
    ) -> Result<Option<Viewer>, StateError> {
        let Some(record) = state.participant(participant)? else {
            return Ok(None);
        };
        let operator = state.ledger()?.map(|info| info.operator);
        let organisation = state.organisation_of(participant)?;
        let mut standing = standing_of(&record, operator.as_ref());
        if organisation != *participant
            && let Some(org) = state.participant(&organisation)?
        {
            // Standings are ordered widest first, so the smaller is the
            // one that sees more.
            standing = standing.min(standing_of(&org, operator.as_ref()));
        }
        Ok(Some(Viewer {
            participant: participant.clone(),
            organisation,
            standing,
        }))
    }

    /// A viewer with the given identity, for tests and tools that have
    /// decided it themselves.
    pub fn new(
        participant: ParticipantId,
        organisation: ParticipantId,
        standing: Standing,
    ) -> Self {
        Self {
            participant,
            organisation,
            standing,
        }
    }

    pub fn participant(&self) -> &ParticipantId {
        &self.participant
    }

    /// The organisation it reads for: itself, or the one it acts for.
    pub fn organisation(&self) -> &ParticipantId {
        &self.organisation
    }

    pub fn standing(&self) -> Standing {
        self.standing
    }

    /// Whether it sees everything (the operator and auditors).
    pub fn sees_everything(&self) -> bool {
        matches!(self.standing, Standing::Operator | Standing::Auditor)
    }
}

/// The participants an event names as taking part: its signer and, by
/// event type, the participant registered or whose keys change, a site's
/// operator, a dispatch's receiver, a sale's buyer, an appointed officer
/// and its organisation, the organisation and supplier of a supplier
/// assessment, review, sanction or reinstatement, the organisation of a
/// code acknowledgement, grievance or receipt policy. The subject of a
/// grievance is not a party: the report is the organisation's, and its
/// subject is not told. Parties that only the state knows (a site's
/// operator for a CAHRA finding, a flag's organisation for a decision) are
/// added by [`Disclosure::event`].
pub fn event_parties(event: &Event) -> Vec<&ParticipantId> {
    let mut parties = vec![&event.signer];
    match &event.body {
        EventBody::Genesis(g) => parties.push(&g.operator),
        EventBody::RegisterParticipant(r) => parties.push(&r.participant),
        EventBody::AddKey(k) => parties.push(&k.participant),
        EventBody::RotateKey(k) => parties.push(&k.participant),
        EventBody::RevokeKey(k) => parties.push(&k.participant),
        EventBody::RegisterSite(s) => parties.push(&s.operator),
        EventBody::Dispatch(d) => parties.push(&d.to),
        EventBody::Sell(s) => parties.push(&s.buyer),
        EventBody::AppointOfficer(a) => parties.extend([&a.officer, &a.organisation]),
        EventBody::AssessOnboarding(a) => parties.extend([&a.organisation, &a.supplier]),
        EventBody::ReviewSupplier(r) => parties.extend([&r.organisation, &r.supplier]),
        EventBody::SanctionSupplier(s) => parties.extend([&s.organisation, &s.supplier]),
        EventBody::ReinstateSupplier(r) => parties.extend([&r.organisation, &r.supplier]),
        EventBody::AcknowledgeCode(c) => parties.push(&c.organisation),
        EventBody::ReportGrievance(g) => parties.push(&g.organisation),
        EventBody::SetReceiptPolicy(p) => parties.push(&p.organisation),
        EventBody::DetermineCahra(_)
        | EventBody::CreateLot(_)
        | EventBody::RecordAssay(_)
        | EventBody::Receive(_)
        | EventBody::Split(_)
        | EventBody::Blend(_)
        | EventBody::Transform(_)
        | EventBody::AttachDocument(_)
        | EventBody::Correct(_)
        | EventBody::DecideFlag(_)
        | EventBody::DetermineCountryCahra(_) => {}
    }
    parties
}

/// The participants `event` shows holding a lot it names: the signer of
/// a creation, of a split, blend or transformation, of a dispatch, a
/// receipt or a sale, the receiver named in a dispatch and the buyer in a
/// sale. Assayers, and those who only attached a document or a
/// correction, do not hold the lot.
pub fn holding_parties(event: &Event) -> Vec<&ParticipantId> {
    match &event.body {
        EventBody::CreateLot(_)
        | EventBody::Split(_)
        | EventBody::Blend(_)
        | EventBody::Transform(_)
        | EventBody::Receive(_) => vec![&event.signer],
        EventBody::Dispatch(d) => vec![&event.signer, &d.to],
        EventBody::Sell(s) => vec![&event.signer, &s.buyer],
        _ => Vec::new(),
    }
}

/// Everyone who held `lot` at some time: its custodian, owner and latest
/// seller now, and the holding parties of the events of its history
/// ([`holding_parties`]).
pub fn lot_holders<'a>(
    lot: &'a Lot,
    history: impl IntoIterator<Item = &'a Event>,
) -> BTreeSet<&'a ParticipantId> {
    let mut holders: BTreeSet<&ParticipantId> = [&lot.custodian, &lot.owner].into();
    holders.extend(lot.seller.as_ref());
    for event in history {
        holders.extend(holding_parties(event));
    }
    holders
}

/// The last entry of a lot's history that someone who held the lot before
/// may see: its own last holding event ([`holding_parties`]), or, when
/// that was its dispatch of the lot, the receipt that ended the dispatch
/// (the next receipt in the history). `history` is the lot's entries and
/// events, oldest first; `holds` says whether a participant is of the
/// organisation asking. `None` when it never held the lot.
pub fn held_until<'a, E>(
    history: impl IntoIterator<Item = (u64, &'a Event)>,
    mut holds: impl FnMut(&ParticipantId) -> Result<bool, E>,
) -> Result<Option<u64>, E> {
    let mut until = None;
    let mut awaiting_receipt = false;
    for (index, event) in history {
        if awaiting_receipt && matches!(event.body, EventBody::Receive(_)) {
            until = Some(index);
            awaiting_receipt = false;
        }
        let mut holding = false;
        for party in holding_parties(event) {
            if holds(party)? {
                holding = true;
                break;
            }
        }
        if holding {
            until = Some(index);
            awaiting_receipt =
                matches!(event.body, EventBody::Dispatch(_)) && holds(&event.signer)?;
        }
    }
    Ok(until)
}

/// The lots `event` made out of `lot`: the parts of a split of it, the
/// output of a blend or the outputs of a transformation it went into.
pub fn lots_made_from<'a>(lot: &LotId, event: &'a Event) -> Vec<&'a LotId> {
    match &event.body {
        EventBody::Split(s) if s.lot == *lot => s.parts.iter().map(|p| &p.lot).collect(),
        EventBody::Blend(b) if b.inputs.contains(lot) => vec![&b.output],
        EventBody::Transform(t) if t.inputs.iter().any(|i| i.lot == *lot) => {
            t.outputs.iter().map(|o| &o.lot).collect()
        }
        _ => Vec::new(),
    }
}

/// What anyone who may see a lot's provenance sees of a lot upstream of
/// it: what it is and where its metal came from, not who held it, what
/// it weighed or what it cost.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
// Closed in the schema (`additionalProperties: false`), so that a lot in
// full never also matches a summary where answers offer either.
#[serde(deny_unknown_fields)]
#[schema(as = LotOriginSummary)]
pub struct LotSummary {
    pub id: LotId,
    pub kind: LotKind,
    pub metal: Element,
    pub origin: Origin,
    pub flags: Vec<FlagId>,
}

impl From<&Lot> for LotSummary {
    fn from(lot: &Lot) -> Self {
        Self {
            id: lot.id.clone(),
            kind: lot.kind,
            metal: lot.metal,
            origin: lot.origin.clone(),
            flags: lot.flags.clone(),
        }
    }
}

/// What every authenticated reader sees of any participant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
// Closed in the schema, so that a full registration never also matches it.
#[serde(deny_unknown_fields)]
pub struct ParticipantIdentity {
    pub id: ParticipantId,
    pub legal_name: String,
    pub country: CountryCode,
    pub kinds: Vec<ParticipantKind>,
}

impl From<&Participant> for ParticipantIdentity {
    fn from(p: &Participant) -> Self {
        Self {
            id: p.id.clone(),
            legal_name: p.legal_name.clone(),
            country: p.country.clone(),
            kinds: p.kinds.clone(),
        }
    }
}

/// How much of a participant's record a viewer sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParticipantDetail {
    /// Roles, keys and their validity, registration, affiliation.
    Full,
    /// [`ParticipantIdentity`] only.
    Identity,
}

/// A site as a viewer sees it: in full for the operator, auditors and the
/// organisation operating it; for others without `annual_capacity` (zero)
/// and `production` (empty), which are the site's commercial volumes.
/// Everything else (location, scale, CAHRA determinations) is what
/// provenance names, so every authenticated reader sees it.
pub fn site_view(
    disclosure: &Disclosure<'_, impl Records>,
    site: &Site,
) -> Result<Site, StateError> {
    if disclosure.sees_everything() || disclosure.represents(&site.operator)? {
        return Ok(site.clone());
    }
    let mut public = site.clone();
    public.annual_capacity = Default::default();
    public.production.clear();
    Ok(public)
}

/// A supplier file as a viewer sees it: whole for the operator, auditors
/// and the organisation that keeps it; for the supplier itself without
/// grievances (reports about it stay with the organisation); `None` for
/// everyone else.
pub fn supplier_file_view(
    disclosure: &Disclosure<'_, impl Records>,
    file: &SupplierFile,
) -> Result<Option<SupplierFile>, StateError> {
    if disclosure.sees_everything() || disclosure.represents(&file.organisation)? {
        Ok(Some(file.clone()))
    } else if disclosure.represents(&file.supplier)? {
        let mut own = file.clone();
        own.grievances.clear();
        Ok(Some(own))
    } else {
        Ok(None)
    }
}

/// How much of a lot a viewer sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LotSight {
    /// Nothing: answered as if the lot did not exist.
    Hidden,
    /// A former holder: the lot's summary ([`LotSummary`]) and its history
    /// up to and including entry `until` ([`held_until`]), plus the events
    /// it is a party to; not its state now.
    Held { until: u64 },
    /// Everything: the operator, auditors, and its custodian or owner now.
    Full,
}

/// What the policy reads: the state, and the event of any entry.
pub trait Records: StateView {
    /// The event recorded in entry `index`.
    fn event(&self, index: u64) -> Result<Event, StateError>;
}

/// Most lots [`Disclosure::flag`] walks downstream of a flagged lot looking
/// for one the viewer sees; beyond it the flag stays hidden (and the
/// server logs nothing: an auditor still sees it).
pub const MAX_FLAG_WALK: usize = 10_000;

/// The policy applied to one viewer (or to an anonymous reader) over one
/// request: answers what it may see, remembering what it has worked out
/// (organisations, lots), so a page of entries about the same lots costs
/// one look at each lot.
pub struct Disclosure<'a, R: Records> {
    viewer: Option<&'a Viewer>,
    records: &'a R,
    represents: RefCell<HashMap<ParticipantId, bool>>,
    lots: RefCell<HashMap<LotId, LotSight>>,
    flags: RefCell<HashMap<FlagId, bool>>,
}

impl<'a, R: Records> Disclosure<'a, R> {
    /// The policy for `viewer`; `None` is an anonymous reader, who sees
    /// only what is public.
    pub fn new(viewer: Option<&'a Viewer>, records: &'a R) -> Self {
        Self {
            viewer,
            records,
            represents: RefCell::default(),
            lots: RefCell::default(),
            flags: RefCell::default(),
        }
    }

    /// What the policy reads.
    pub fn records(&self) -> &'a R {
        self.records
    }

    pub fn viewer(&self) -> Option<&Viewer> {
        self.viewer
    }

    pub fn sees_everything(&self) -> bool {
        self.viewer.is_some_and(Viewer::sees_everything)
    }

    /// Whether `party` is the viewer's organisation, the viewer itself, or
    /// a participant appointed to act for the viewer's organisation.
    pub fn represents(&self, party: &ParticipantId) -> Result<bool, StateError> {
        let Some(viewer) = self.viewer else {
            return Ok(false);
        };
        if *party == viewer.participant || *party == viewer.organisation {
            return Ok(true);
        }
        if let Some(known) = self.represents.borrow().get(party) {
            return Ok(*known);
        }
        let answer = self.records.organisation_of(party)? == viewer.organisation;
        self.represents.borrow_mut().insert(party.clone(), answer);
        Ok(answer)
    }

    fn represents_any<'p>(
        &self,
        parties: impl IntoIterator<Item = &'p ParticipantId>,
    ) -> Result<bool, StateError> {
        for party in parties {
            if self.represents(party)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// How much of `lot` the viewer sees: in full when it sees everything
    /// or its organisation is the lot's custodian or owner now; as a
    /// former holder up to the end of its holding ([`held_until`]); else
    /// nothing.
    pub fn lot_sight(&self, lot: &Lot) -> Result<LotSight, StateError> {
        if self.sees_everything() {
            return Ok(LotSight::Full);
        }
        if self.viewer.is_none() {
            return Ok(LotSight::Hidden);
        }
        if let Some(known) = self.lots.borrow().get(&lot.id) {
            return Ok(*known);
        }
        let sight = if self.represents(&lot.custodian)? || self.represents(&lot.owner)? {
            LotSight::Full
        } else {
            let history = self.history(lot)?;
            let until = held_until(lot.history.iter().copied().zip(history.iter()), |p| {
                self.represents(p)
            })?;
            match until {
                Some(until) => LotSight::Held { until },
                None => LotSight::Hidden,
            }
        };
        self.lots.borrow_mut().insert(lot.id.clone(), sight);
        Ok(sight)
    }

    /// Whether the viewer may see `lot` at all: in full, or as a former
    /// holder ([`Disclosure::lot_sight`]).
    pub fn lot(&self, lot: &Lot) -> Result<bool, StateError> {
        Ok(self.lot_sight(lot)? != LotSight::Hidden)
    }

    /// Whether the viewer sees `lot` in full: it sees everything, or its
    /// organisation is the lot's custodian or owner now. Cheap: reads no
    /// history.
    pub fn lot_in_full(&self, lot: &Lot) -> Result<bool, StateError> {
        if self.sees_everything() {
            return Ok(true);
        }
        if self.viewer.is_none() {
            return Ok(false);
        }
        Ok(self.represents(&lot.custodian)? || self.represents(&lot.owner)?)
    }

    /// Whether the viewer may see the lot `id` at all; `false` when there
    /// is no such lot.
    pub fn lot_id(&self, id: &LotId) -> Result<bool, StateError> {
        if let Some(known) = self.lots.borrow().get(id) {
            return Ok(*known != LotSight::Hidden);
        }
        match self.records.lot(id)? {
            Some(lot) => self.lot(&lot),
            None => Ok(false),
        }
    }

    fn history(&self, lot: &Lot) -> Result<Vec<Event>, StateError> {
        lot.history.iter().map(|i| self.records.event(*i)).collect()
    }

    /// Whether the viewer may see the event of entry `index` (its bytes
    /// and its decoded form): it sees everything, or its organisation is a
    /// party to the event ([`event_parties`], plus a CAHRA finding's site
    /// operator), or the event is in the history of a lot it holds now, or
    /// in the history of a lot it held up to the end of its holding
    /// ([`LotSight::Held`]), or it decides a red flag the viewer sees.
    pub fn event(&self, index: u64, event: &Event) -> Result<bool, StateError> {
        if self.sees_everything() {
            return Ok(true);
        }
        if self.viewer.is_none() {
            return Ok(false);
        }
        if self.represents_any(event_parties(event))? {
            return Ok(true);
        }
        match &event.body {
            EventBody::DetermineCahra(c) => {
                if let Some(site) = self.records.site(&c.site)? {
                    return self.represents(&site.operator);
                }
                return Ok(false);
            }
            EventBody::DecideFlag(d) => {
                return match self.records.flag(d.flag)? {
                    Some(flag) => self.flag(&flag),
                    None => Ok(false),
                };
            }
            _ => {}
        }
        for id in event.body.lots() {
            if let Some(lot) = self.records.lot(id)?
                && lot.history.binary_search(&index).is_ok()
            {
                match self.lot_sight(&lot)? {
                    LotSight::Full => return Ok(true),
                    LotSight::Held { until } if index <= until => return Ok(true),
                    LotSight::Held { .. } | LotSight::Hidden => {}
                }
            }
        }
        Ok(false)
    }

    /// Whether the viewer may see red flag `flag`: it sees everything, the
    /// flag is in its organisation's register, or the flag is on a lot it
    /// holds or held, the flagged lot itself or any lot made from it that
    /// carries the flag (looked for downstream, at most [`MAX_FLAG_WALK`]
    /// lots).
    pub fn flag(&self, flag: &Flag) -> Result<bool, StateError> {
        if self.sees_everything() {
            return Ok(true);
        }
        if self.viewer.is_none() {
            return Ok(false);
        }
        if let Some(known) = self.flags.borrow().get(&flag.id) {
            return Ok(*known);
        }
        let answer = self.represents(&flag.organisation)? || self.flag_on_visible_lot(flag)?;
        self.flags.borrow_mut().insert(flag.id, answer);
        Ok(answer)
    }

    fn flag_on_visible_lot(&self, flag: &Flag) -> Result<bool, StateError> {
        let Some(start) = &flag.lot else {
            return Ok(false);
        };
        let mut seen: BTreeSet<LotId> = [start.clone()].into();
        let mut queue = VecDeque::from([start.clone()]);
        while let Some(id) = queue.pop_front() {
            let Some(lot) = self.records.lot(&id)? else {
                continue;
            };
            if !lot.flags.contains(&flag.id) {
                continue;
            }
            if self.lot(&lot)? {
                return Ok(true);
            }
            for index in &lot.history {
                let event = self.records.event(*index)?;
                for child in lots_made_from(&lot.id, &event) {
                    if seen.len() >= MAX_FLAG_WALK {
                        return Ok(false);
                    }
                    if seen.insert(child.clone()) {
                        queue.push_back(child.clone());
                    }
                }
            }
        }
        Ok(false)
    }

    /// How much of participant `id`'s record the viewer sees: all of it
    /// when it sees everything or `id` is of its own organisation, else its
    /// public identity.
    pub fn participant(&self, id: &ParticipantId) -> Result<ParticipantDetail, StateError> {
        if self.sees_everything() || self.represents(id)? {
            Ok(ParticipantDetail::Full)
        } else {
            Ok(ParticipantDetail::Identity)
        }
    }
}

#[cfg(test)]
mod tests;
