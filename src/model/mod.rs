//! Domain types: identifiers, time, participants, keys, events and ledger
//! entries. Pure data with validating constructors; no I/O.

mod entry;
mod event;
mod ids;
mod participant;
mod state;

pub use entry::{Entry, SignedEvent};
pub use event::{Event, EventBody, Genesis, KeyAdded, KeyRevoked, KeyRotated, Registration};
pub use ids::{CountryCode, IdError, ParticipantId, Timestamp};
pub use participant::{KeyRecord, LedgerInfo, Participant, ParticipantKind, Role};
pub use state::{
    CachedState, MemoryState, Overlay, PrecheckedKeys, StateError, StateKey, StateValue, StateView,
};
