//! Audit reports computed from the log: what a smelter's (or any
//! custodian's) auditor asks for, for one site or organisation and one
//! period, each tied to the signed checkpoint it was computed from.
//!
//! A report is computed by a [`Collect`]or riding along the verifying
//! replay of the log (`ledger::verify_frames` with an `Observer`): for each
//! accepted entry it sees the entry, its event, the state before it and
//! the values the rules wrote ([`Accepted`]), so nothing is re-derived and
//! nothing is reported from a log that does not verify. One replay feeds
//! any number of reports ([`compute`] takes several [`Request`]s). Before
//! the replay, one quick pass over the events builds the [`Directory`]
//! (who and what the ledger names), so that a request naming an unknown
//! participant is refused at once, with a clear message.
//!
//! Everything here but [`compute`] (which reads the log through
//! [`LogSnapshot`]) is pure: [`Directory::observe`] takes events, and
//! [`Reports`] is an `Observer` any replay can drive, so the same reports
//! can be computed from any copy of the frames (an audit bundle holds the
//! log's own frames).
//!
//! Every report has the same [`ReportHeader`]: the ledger's origin, log
//! key, tree size, root and checkpoint note it was computed from, the
//! report's scope, period and parameters, and when it was generated. It is
//! rendered as JSON (the whole report, header included) or as CSV (a header
//! row, then one row per line item: [`Report::rows`]). Figures are exact
//! integers everywhere: grams, parts per billion, signed grams for
//! differences. No floating point number appears in any figure.
//!
//! **Periods** are half-open, `[from, until)`, and judged by an entry's
//! *record time* (the ledger's clock when it sequenced the entry), not by
//! the time the signer claims: record times never decrease along the log,
//! so "the state at `from`" is exactly the state after the last entry
//! recorded before `from`, and every entry falls in exactly one of any set
//! of adjacent periods.
//!
//! **Scopes.** On this ledger custody is held by participants (a smelter,
//! a warehouse), not by registered sites (those are the mines and
//! recycling sites that material comes from). So a report's *site* is the
//! participant that physically holds the lots ([`Scope::Site`]), and an
//! *organisation* ([`Scope::Organisation`]) is a participant together with
//! every participant appointed to act for it (its compliance officers).
//! Red flags belong to an organisation's register.
//!
//! The reports: [`receipts`] (line-item receipt summary), [`mass_balance`]
//! (contained-metal mass balance, its definitions in full), [`origin`]
//! (country-of-origin breakdown) and [`flags`] (red-flag register); and
//! the sourcing reports built on [`sourcing`]: [`kpis`] (supplier KPIs),
//! [`cmrt`] (CMRT/EMRT buyer rows), [`impact`] (forward impact) and
//! [`sample`] (the reproducible audit sample).

pub mod cmrt;
pub mod flags;
pub mod impact;
pub mod kpis;
pub mod mass_balance;
pub mod origin;
pub mod receipts;
pub mod sample;
pub mod sourcing;

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::Write;

use serde::{Serialize, Serializer};

use super::epcis::LotGraph;
use super::{AuditError, LogSnapshot};
use crate::ledger::{Accepted, Observer, VerifyReport};
use crate::model::{
    CountryCode, Element, Event, EventBody, Flag, Grams, Lot, LotId, LotStatus, MemoryState,
    ParticipantId, SiteId, SiteScale, StateError, StateKey, StateValue, StateView, Timestamp,
};

// ---------------------------------------------------------------------------
// Period and scope
// ---------------------------------------------------------------------------

/// A half-open period `[from, until)` of record time; an absent bound is
/// open (from the first entry, or up to the checkpoint).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Period {
    from: Option<Timestamp>,
    until: Option<Timestamp>,
}

impl Period {
    /// The whole log.
    pub const ALL: Period = Period {
        from: None,
        until: None,
    };

    /// A period; refused when it is empty (`from >= until`).
    pub fn new(from: Option<Timestamp>, until: Option<Timestamp>) -> Result<Self, AuditError> {
        if let (Some(f), Some(u)) = (from, until)
            && f >= u
        {
            return Err(AuditError::Filter(format!(
                "the period is empty: --from {f} must be before --until {u}"
            )));
        }
        Ok(Period { from, until })
    }

    pub fn from(&self) -> Option<Timestamp> {
        self.from
    }

    pub fn until(&self) -> Option<Timestamp> {
        self.until
    }

    /// Whether `t` is not before the period's start.
    pub fn started_by(&self, t: Timestamp) -> bool {
        self.from.is_none_or(|f| f <= t)
    }

    /// Whether `t` is at or after the period's end.
    pub fn ended_by(&self, t: Timestamp) -> bool {
        self.until.is_some_and(|u| u <= t)
    }

    pub fn contains(&self, t: Timestamp) -> bool {
        self.started_by(t) && !self.ended_by(t)
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.from {
            Some(t) => write!(f, "[{t}, ")?,
            None => f.write_str("[first entry, ")?,
        }
        match self.until {
            Some(t) => write!(f, "{t})"),
            None => f.write_str("checkpoint]"),
        }
    }
}

/// Whose material or register a report covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// The lots one participant holds physically (a smelter, a
    /// warehouse), and the red flags its own entries raised.
    Site(ParticipantId),
    /// A participant and everyone appointed to act for it: the lots any of
    /// them holds, and the organisation's red-flag register.
    Organisation(ParticipantId),
}

impl Scope {
    /// The participant the scope is named by.
    pub fn participant(&self) -> &ParticipantId {
        match self {
            Scope::Site(p) | Scope::Organisation(p) => p,
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Site(p) => write!(f, "site {p}"),
            Scope::Organisation(p) => write!(f, "organisation {p}"),
        }
    }
}

/// A scope resolved against the [`Directory`]: the custodians whose
/// holdings it covers and the organisation whose register it reads; no
/// scope covers everyone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coverage {
    scope: Option<Scope>,
    /// `None`: every participant.
    custodians: Option<BTreeSet<ParticipantId>>,
    /// The organisation the scope's participant acts for.
    organisation: Option<ParticipantId>,
}

impl Coverage {
    /// Everyone: the whole ledger.
    pub fn everyone() -> Self {
        Coverage {
            scope: None,
            custodians: None,
            organisation: None,
        }
    }

    pub fn scope(&self) -> Option<&Scope> {
        self.scope.as_ref()
    }

    /// The organisation whose register and supplier files apply: the
    /// scope's organisation, or the one its site acts for.
    pub fn organisation(&self) -> Option<&ParticipantId> {
        self.organisation.as_ref()
    }

    /// Whether lots this participant holds are covered.
    pub fn covers(&self, custodian: &ParticipantId) -> bool {
        self.custodians
            .as_ref()
            .is_none_or(|c| c.contains(custodian))
    }

    /// The custodians covered; `None` for everyone.
    pub fn custodians(&self) -> Option<&BTreeSet<ParticipantId>> {
        self.custodians.as_ref()
    }

    /// Whether `lot` is held (not in transit, not used up) by a covered
    /// custodian.
    pub fn holds(&self, lot: &Lot) -> bool {
        lot.status == LotStatus::Held && self.covers(&lot.custodian)
    }

    /// Whether a red flag is covered: for a site, one that its own entry
    /// raised (`raised_by` signed the entry); for an organisation, one in
    /// its register; for everyone, all.
    pub fn covers_flag(&self, flag: &Flag, raised_by: &ParticipantId) -> bool {
        match &self.scope {
            None => true,
            Some(Scope::Site(p)) => raised_by == p,
            Some(Scope::Organisation(o)) => flag.organisation == *o,
        }
    }
}

/// What most reports are asked for: a scope (none for the whole ledger)
/// and a period.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Params {
    pub scope: Option<Scope>,
    pub period: Period,
}

// ---------------------------------------------------------------------------
// Directory: what the ledger names, from one quick pass over the events
// ---------------------------------------------------------------------------

/// A registered participant as its registration names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ParticipantEntry {
    pub legal_name: String,
    pub country: CountryCode,
    pub registered_in: u64,
}

/// A registered site (mine, concentrator, recycling site).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SiteEntry {
    pub operator: ParticipantId,
    pub name: String,
    pub country: CountryCode,
    pub scale: SiteScale,
    pub metal: Element,
    pub registered_in: u64,
}

/// Who and what the ledger names: participants, appointments, sites and
/// the lot graph, from the events alone (every event in a log was
/// accepted; the replay that follows verifies them). Used to check a
/// request's names before the replay and to label a report's figures.
#[derive(Debug, Default)]
pub struct Directory {
    participants: BTreeMap<ParticipantId, ParticipantEntry>,
    /// Member → the organisation it was last appointed to act for.
    appointments: BTreeMap<ParticipantId, ParticipantId>,
    sites: BTreeMap<SiteId, SiteEntry>,
    lots: LotGraph,
    entries: u64,
}

impl Directory {
    /// One pass over the events of `snapshot` (decoded, not verified).
    pub fn scan(snapshot: &LogSnapshot) -> Result<Self, AuditError> {
        let mut directory = Directory::default();
        snapshot.scan_events(|index, event| directory.observe(index, event))?;
        Ok(directory)
    }

    /// Takes in entry `index`'s event, in log order.
    pub fn observe(&mut self, index: u64, event: &Event) {
        match &event.body {
            EventBody::Genesis(g) => {
                self.participants.insert(
                    g.operator.clone(),
                    ParticipantEntry {
                        legal_name: g.operator_name.clone(),
                        country: g.operator_country.clone(),
                        registered_in: index,
                    },
                );
            }
            EventBody::RegisterParticipant(r) => {
                self.participants.insert(
                    r.participant.clone(),
                    ParticipantEntry {
                        legal_name: r.legal_name.clone(),
                        country: r.country.clone(),
                        registered_in: index,
                    },
                );
            }
            EventBody::AppointOfficer(a) => {
                self.appointments
                    .insert(a.officer.clone(), a.organisation.clone());
            }
            EventBody::RegisterSite(s) => {
                self.sites.insert(
                    s.site.clone(),
                    SiteEntry {
                        operator: s.operator.clone(),
                        name: s.name.clone(),
                        country: s.country.clone(),
                        scale: s.scale,
                        metal: s.metal,
                        registered_in: index,
                    },
                );
            }
            _ => {}
        }
        self.lots.observe(event);
        self.entries = index + 1;
    }

    pub fn participant(&self, id: &ParticipantId) -> Option<&ParticipantEntry> {
        self.participants.get(id)
    }

    pub fn participants(&self) -> &BTreeMap<ParticipantId, ParticipantEntry> {
        &self.participants
    }

    pub fn site(&self, id: &SiteId) -> Option<&SiteEntry> {
        self.sites.get(id)
    }

    pub fn sites(&self) -> &BTreeMap<SiteId, SiteEntry> {
        &self.sites
    }

    /// The lots split, blended and transformed from which.
    pub fn lots(&self) -> &LotGraph {
        &self.lots
    }

    /// Entries seen.
    pub fn entries(&self) -> u64 {
        self.entries
    }

    /// The organisation `id` acts for: its latest appointment, or itself.
    pub fn organisation_of(&self, id: &ParticipantId) -> ParticipantId {
        self.appointments.get(id).unwrap_or(id).clone()
    }

    /// A registered participant, or an error that says what `id` is if it
    /// is something else (a site) or nothing.
    pub fn require_participant(&self, id: &ParticipantId) -> Result<(), AuditError> {
        if self.participants.contains_key(id) {
            return Ok(());
        }
        let as_site = SiteId::new(id.as_str())
            .ok()
            .and_then(|s| self.sites.get(&s).map(|e| (s, e)));
        Err(AuditError::Filter(match as_site {
            Some((site, entry)) => format!(
                "{site} is a registered production site, not a participant: custody on this \
                 ledger is held by participants; its operator is {}",
                entry.operator
            ),
            None => format!("participant {id} is not registered on this ledger"),
        }))
    }

    /// The custodians and register a scope covers (everyone for no
    /// scope); refused when it names no registered participant.
    pub fn coverage(&self, scope: Option<&Scope>) -> Result<Coverage, AuditError> {
        let Some(scope) = scope else {
            return Ok(Coverage::everyone());
        };
        self.require_participant(scope.participant())?;
        let custodians = match scope {
            Scope::Site(p) => BTreeSet::from([p.clone()]),
            Scope::Organisation(o) => {
                let mut members: BTreeSet<ParticipantId> = self
                    .appointments
                    .iter()
                    .filter(|(_, org)| *org == o)
                    .map(|(m, _)| m.clone())
                    .collect();
                members.insert(o.clone());
                members
            }
        };
        Ok(Coverage {
            scope: Some(scope.clone()),
            custodians: Some(custodians),
            organisation: Some(self.organisation_of(scope.participant())),
        })
    }
}

// ---------------------------------------------------------------------------
// The state around an accepted entry
// ---------------------------------------------------------------------------

/// The state just after an accepted entry: its changes over the state
/// before it.
#[derive(Clone, Copy)]
pub struct After<'a> {
    before: &'a MemoryState,
    changes: &'a [StateValue],
}

impl<'a> After<'a> {
    pub fn of(accepted: &Accepted<'a>) -> Self {
        After {
            before: accepted.before,
            changes: accepted.changes,
        }
    }

    /// A value after the entry, borrowed (no copy).
    pub fn value(&self, key: &StateKey) -> Option<&'a StateValue> {
        self.changes
            .iter()
            .rev()
            .find(|v| v.key() == *key)
            .or_else(|| self.before.get_local(key))
    }

    pub fn lot(&self, id: &LotId) -> Option<&'a Lot> {
        match self.value(&StateKey::Lot(id.clone())) {
            Some(StateValue::Lot(l)) => Some(l),
            _ => None,
        }
    }

    pub fn site(&self, id: &SiteId) -> Option<&'a crate::model::Site> {
        match self.value(&StateKey::Site(id.clone())) {
            Some(StateValue::Site(s)) => Some(s),
            _ => None,
        }
    }
}

impl StateView for After<'_> {
    fn get(&self, key: &StateKey) -> Result<Option<StateValue>, StateError> {
        Ok(self.value(key).cloned())
    }
}

/// A lot as it stood just before an accepted entry, borrowed.
pub fn lot_before<'a>(accepted: &Accepted<'a>, id: &LotId) -> Option<&'a Lot> {
    match accepted.before.get_local(&StateKey::Lot(id.clone())) {
        Some(StateValue::Lot(l)) => Some(l),
        _ => None,
    }
}

/// The lots an accepted entry wrote, in the order the rules wrote them.
pub fn changed_lots<'a>(accepted: &Accepted<'a>) -> impl Iterator<Item = &'a Lot> {
    accepted.changes.iter().filter_map(|v| match v {
        StateValue::Lot(l) => Some(l),
        _ => None,
    })
}

/// The red flags an accepted entry wrote (raised or decided).
pub fn changed_flags<'a>(accepted: &Accepted<'a>) -> impl Iterator<Item = &'a Flag> {
    accepted.changes.iter().filter_map(|v| match v {
        StateValue::Flag(f) => Some(f),
        _ => None,
    })
}

// ---------------------------------------------------------------------------
// Header
// ---------------------------------------------------------------------------

/// The signed checkpoint a report was computed from: enough to tie every
/// figure to the ledger (each line item names its entry, and an inclusion
/// proof ties an entry to this root).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LedgerRef {
    pub origin: String,
    /// The verifier key line of the log key: `<origin>+<key id>+<key>`.
    pub log_key: String,
    /// The log key's id (C2SP signed note), in hex.
    pub key_id: String,
    /// Entries the checkpoint covers: the report saw exactly these.
    pub tree_size: u64,
    /// RFC 9162 root of those entries, in hex.
    pub root: String,
    /// The checkpoint as a C2SP signed note, signature included.
    pub checkpoint: String,
}

impl From<&VerifyReport> for LedgerRef {
    fn from(r: &VerifyReport) -> Self {
        LedgerRef {
            origin: r.origin.clone(),
            log_key: r.log_key.clone(),
            key_id: r.log_key.split('+').nth(1).unwrap_or_default().to_string(),
            tree_size: r.entries,
            root: hex::encode(r.root),
            checkpoint: r.checkpoint.clone(),
        }
    }
}

/// Entries `[first, end)` of the log whose record time falls in the
/// report's period (`first == end` when none does).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct EntryRange {
    pub first: u64,
    pub end: u64,
}

/// What every report starts with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReportHeader {
    /// The report's kind (`receipts`, `mass-balance`, ...).
    pub report: &'static str,
    pub ledger: LedgerRef,
    /// Whose material or register it covers; `None` for a report of the
    /// whole ledger.
    pub scope: Option<Scope>,
    pub period: Period,
    /// The entries recorded in the period.
    pub entries: EntryRange,
    /// Further parameters of the report, by name.
    pub parameters: BTreeMap<String, String>,
    /// When the report was generated (the generating machine's clock).
    pub generated_at: Timestamp,
}

impl ReportHeader {
    pub fn new(
        report: &'static str,
        end: &Ending<'_>,
        scope: Option<&Scope>,
        period: Period,
    ) -> Self {
        ReportHeader {
            report,
            ledger: end.ledger.clone(),
            scope: scope.cloned(),
            period,
            entries: end.entries_within(&period),
            parameters: BTreeMap::new(),
            generated_at: end.generated_at,
        }
    }

    /// Records a further parameter.
    pub fn with(mut self, name: &str, value: impl ToString) -> Self {
        self.parameters.insert(name.to_string(), value.to_string());
        self
    }
}

// ---------------------------------------------------------------------------
// Reports, rendering
// ---------------------------------------------------------------------------

/// One CSV line item: a flat record of strings and integers.
pub trait Row: Serialize {
    /// The header row: the serialized field names, in order.
    const COLUMNS: &'static [&'static str];
}

/// A finished report: JSON is the whole value (header included), CSV is
/// its line items.
pub trait Report: Serialize + Any {
    type Row: Row;
    fn header(&self) -> &ReportHeader;
    /// The line items, one CSV row each.
    fn rows(&self) -> Vec<Self::Row>;
    /// What an auditor should look at (a variance, open flags, refused
    /// deliveries), one sentence each; empty when nothing stands out.
    fn findings(&self) -> Vec<String> {
        Vec::new()
    }
}

/// A report of any kind, as [`compute`] returns it.
pub trait Rendered: Any {
    fn header(&self) -> &ReportHeader;
    fn findings(&self) -> Vec<String>;
    /// The whole report as pretty JSON, with a final newline.
    fn write_json(&self, out: &mut dyn Write) -> Result<(), AuditError>;
    /// The line items as CSV: a header row, then one row per item.
    fn write_csv(&self, out: &mut dyn Write) -> Result<(), AuditError>;
    /// Line items in the CSV.
    fn row_count(&self) -> usize;
    fn into_any(self: Box<Self>) -> Box<dyn Any>;
}

impl<R: Report> Rendered for R {
    fn header(&self) -> &ReportHeader {
        Report::header(self)
    }

    fn findings(&self) -> Vec<String> {
        Report::findings(self)
    }

    fn write_json(&self, out: &mut dyn Write) -> Result<(), AuditError> {
        serde_json::to_writer_pretty(&mut *out, self)
            .map_err(|e| AuditError::Write(std::io::Error::other(e)))?;
        out.write_all(b"\n").map_err(AuditError::Write)
    }

    fn write_csv(&self, out: &mut dyn Write) -> Result<(), AuditError> {
        write_table(out, &self.rows())
    }

    fn row_count(&self) -> usize {
        self.rows().len()
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
}

/// Writes `rows` as CSV under the header row `R::COLUMNS` (written even
/// when there are no rows, so an empty report still names its columns).
pub fn write_table<R: Row>(out: &mut dyn Write, rows: &[R]) -> Result<(), AuditError> {
    let csv_error = |e: csv::Error| AuditError::Write(std::io::Error::other(e));
    let mut writer = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(out);
    writer.write_record(R::COLUMNS).map_err(csv_error)?;
    for row in rows {
        writer.serialize(row).map_err(csv_error)?;
    }
    writer.flush().map_err(AuditError::Write)
}

/// Serializes `items` as `a;b;c` in one CSV cell.
pub fn joined<T: fmt::Display>(items: impl IntoIterator<Item = T>) -> String {
    items
        .into_iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(";")
}

/// Contained grams per element, summed exactly (128 bits cannot overflow
/// on any sum of 64-bit masses a log can hold).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetalTotals(BTreeMap<Element, u128>);

impl MetalTotals {
    pub fn add(&mut self, element: Element, grams: Grams) {
        *self.0.entry(element).or_insert(0) += u128::from(grams.0);
    }

    pub fn add_all(&mut self, contained: &[(Element, Grams)]) {
        for (e, g) in contained {
            self.add(*e, *g);
        }
    }

    pub fn get(&self, element: Element) -> u128 {
        self.0.get(&element).copied().unwrap_or(0)
    }

    pub fn iter(&self) -> impl Iterator<Item = (Element, u128)> + '_ {
        self.0.iter().map(|(e, g)| (*e, *g))
    }
}

impl Serialize for MetalTotals {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter())
    }
}

// ---------------------------------------------------------------------------
// Computing: requests, collectors, one replay
// ---------------------------------------------------------------------------

/// What a report needs at the end of the replay.
pub struct Ending<'a> {
    pub ledger: &'a LedgerRef,
    pub generated_at: Timestamp,
    pub directory: &'a Directory,
    /// Record time of every entry, in order.
    times: &'a [Timestamp],
}

impl Ending<'_> {
    /// The entries recorded in `period` (record times never decrease, so
    /// they are one contiguous range).
    pub fn entries_within(&self, period: &Period) -> EntryRange {
        let first = self.times.partition_point(|t| !period.started_by(*t)) as u64;
        let end = self.times.partition_point(|t| !period.ended_by(*t)) as u64;
        EntryRange {
            first,
            end: end.max(first),
        }
    }
}

/// A report being computed along the replay.
pub trait Collect: Send {
    /// Told about each accepted entry, in log order.
    fn accepted(&mut self, entry: &Accepted<'_>);
    /// The report, once the whole log has verified.
    fn finish(self: Box<Self>, end: &Ending<'_>) -> Result<Box<dyn Rendered>, AuditError>;
}

/// A report asked for: checks its parameters against the [`Directory`]
/// and starts its collector.
pub trait Request {
    fn start(&self, directory: &Directory) -> Result<Box<dyn Collect>, AuditError>;
}

/// The collectors of one replay: an `Observer` for `verify_frames`.
pub struct Reports {
    collectors: Vec<Box<dyn Collect>>,
    times: Vec<Timestamp>,
}

impl Reports {
    pub fn new(collectors: Vec<Box<dyn Collect>>) -> Self {
        Reports {
            collectors,
            times: Vec::new(),
        }
    }

    /// Every report, once the replay ended intact with `verified`.
    pub fn finish(
        self,
        verified: &VerifyReport,
        directory: &Directory,
        generated_at: Timestamp,
    ) -> Result<Vec<Box<dyn Rendered>>, AuditError> {
        let ledger = LedgerRef::from(verified);
        let end = Ending {
            ledger: &ledger,
            generated_at,
            directory,
            times: &self.times,
        };
        self.collectors
            .into_iter()
            .map(|c| c.finish(&end))
            .collect()
    }
}

impl Observer for Reports {
    fn accepted(&mut self, entry: &Accepted<'_>) {
        self.times.push(entry.entry.record_time);
        for c in &mut self.collectors {
            c.accepted(entry);
        }
    }
}

/// Computes every requested report from one verification of the log
/// `snapshot`, in the order asked.
pub fn compute(
    snapshot: &LogSnapshot,
    requests: &[&dyn Request],
    generated_at: Timestamp,
    progress: bool,
) -> Result<Vec<Box<dyn Rendered>>, AuditError> {
    let directory = Directory::scan(snapshot)?;
    let collectors = requests
        .iter()
        .map(|r| r.start(&directory))
        .collect::<Result<Vec<_>, _>>()?;
    let (verified, reports) = snapshot.verify(Reports::new(collectors), progress)?;
    reports.finish(&verified, &directory, generated_at)
}

/// Computes one report of a known type (for callers that want its
/// fields, not only its rendering).
pub fn compute_one<R: Report>(
    snapshot: &LogSnapshot,
    request: &dyn Request,
    generated_at: Timestamp,
) -> Result<R, AuditError> {
    let report = compute(snapshot, &[request], generated_at, false)?
        .pop()
        .ok_or_else(|| AuditError::Filter("no report computed".into()))?;
    report
        .into_any()
        .downcast::<R>()
        .map(|r| *r)
        .map_err(|_| AuditError::Filter("the request made a report of another kind".into()))
}
