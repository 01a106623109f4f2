//! Domain types: identifiers, time, participants, keys, events and ledger
//! entries. Pure data with validating constructors; no I/O.

mod entry;
mod event;
mod ids;
mod lot;
mod participant;
mod quantity;
mod state;

pub use entry::{Entry, SignedEvent};
pub use event::{
    AssayReport, Blend, CahraFinding, Dispatch, DocumentKind, DocumentRef, Event, EventBody,
    Genesis, KeyAdded, KeyRevoked, KeyRotated, LotCreation, LotReceipt, Registration, Sale,
    SiteRegistration, Split, SplitPart, TransformInput, TransformOutput, Transformation,
};
pub use ids::{CountryCode, IdError, ParticipantId, Timestamp};
pub use lot::{
    CahraDetermination, Lot, LotId, LotKind, LotStatus, Origin, OriginShare, Site, SiteId,
    SiteScale,
};
pub use participant::{KeyRecord, LedgerInfo, Participant, ParticipantKind, Role};
pub use quantity::{
    Assay, AssayStage, BILLION, Element, Grams, Ppb, PpbError, apportion, contained, dry_mass,
};
pub use state::{
    CachedState, MemoryState, Overlay, PrecheckedKeys, StateError, StateKey, StateValue, StateView,
};
