//! Domain types: identifiers, time, participants, keys, events and ledger
//! entries. Pure data with validating constructors; no I/O.

mod compliance;
mod entry;
mod event;
mod ids;
mod lot;
mod participant;
mod quantity;
mod state;

pub use compliance::{
    AttachedDocument, CodeAcknowledgement, EsgElement, EsgScore, Flag, FlagDecisionKind,
    FlagDecisionRecord, FlagId, FlagKind, GrievanceOutcome, ReviewCadence, ReviewRecord,
    SanctionKind, SanctionReason, SanctionRecord, SupplierFile, UnreviewedSupplierPolicy,
};
pub use entry::{Entry, SignedEvent};
pub use event::{
    AssayReport, Blend, CahraFinding, CodeOfConductAcknowledgement, Correction,
    CountryCahraFinding, Dispatch, DocumentAttachment, DocumentKind, DocumentRef, Event, EventBody,
    FlagDecision, Genesis, GrievanceReport, KeyAdded, KeyRevoked, KeyRotated, LotCreation,
    LotReceipt, OfficerAppointment, OnboardingAssessment, ReceiptPolicy, Registration, Sale,
    SiteRegistration, Split, SplitPart, SupplierReinstatement, SupplierReview, SupplierSanction,
    TransformInput, TransformOutput, Transformation,
};
pub use ids::{CountryCode, IdError, MAX_TIME_MS, ParticipantId, Timestamp};
pub use lot::{
    CahraDetermination, CountryRisk, Lot, LotId, LotKind, LotStatus, Origin, OriginShare, Site,
    SiteId, SiteScale, cahra_at,
};
pub use participant::{KeyRecord, LedgerInfo, Participant, ParticipantKind, Role};
pub use quantity::{
    Assay, AssayStage, BILLION, Element, Grams, Ppb, PpbError, apportion, contained, dry_mass,
};
pub use state::{
    Affiliation, CachedState, MemoryState, Overlay, PrecheckedKeys, StateError, StateKey,
    StateValue, StateView,
};
