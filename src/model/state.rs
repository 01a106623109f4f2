//! The ledger state derived from the entries, as the rules engine sees it.
//!
//! State is a map from [`StateKey`] to [`StateValue`]. The rules engine
//! reads it through [`StateView`] and answers with the values to write; the
//! store persists them, and an offline verifier keeps them in a
//! [`MemoryState`]. Values are only ever replaced, never deleted.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::ids::ParticipantId;
use super::participant::{KeyRecord, LedgerInfo, Participant};
use crate::codec::{self, Canonical};
use crate::crypto::PublicKey;

/// Names one value of the state.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum StateKey {
    Ledger,
    Participant(ParticipantId),
    Key(PublicKey),
}

impl StateKey {
    /// Compact, prefix-distinct bytes for use as a storage key.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            StateKey::Ledger => b"L".to_vec(),
            StateKey::Participant(id) => [b"P".as_slice(), id.as_str().as_bytes()].concat(),
            StateKey::Key(key) => [b"K".as_slice(), key.as_bytes().as_slice()].concat(),
        }
    }
}

/// One value of the state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum StateValue {
    Ledger(LedgerInfo),
    Participant(Participant),
    Key(KeyRecord),
}

impl Canonical for StateValue {
    const TAG: [u8; 16] = codec::tag("oretrail.state");
    const VERSION: u16 = 1;
}

impl StateValue {
    /// The key this value is stored under.
    pub fn key(&self) -> StateKey {
        match self {
            StateValue::Ledger(_) => StateKey::Ledger,
            StateValue::Participant(p) => StateKey::Participant(p.id.clone()),
            StateValue::Key(k) => StateKey::Key(k.key),
        }
    }
}

/// The state could not be read (a storage failure, not a rule).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("ledger state unavailable: {0}")]
pub struct StateError(pub String);

/// Read access to the state.
pub trait StateView {
    fn get(&self, key: &StateKey) -> Result<Option<StateValue>, StateError>;

    fn ledger(&self) -> Result<Option<LedgerInfo>, StateError> {
        Ok(match self.get(&StateKey::Ledger)? {
            Some(StateValue::Ledger(info)) => Some(info),
            _ => None,
        })
    }

    fn participant(&self, id: &ParticipantId) -> Result<Option<Participant>, StateError> {
        Ok(match self.get(&StateKey::Participant(id.clone()))? {
            Some(StateValue::Participant(p)) => Some(p),
            _ => None,
        })
    }

    fn key(&self, key: &PublicKey) -> Result<Option<KeyRecord>, StateError> {
        Ok(match self.get(&StateKey::Key(*key))? {
            Some(StateValue::Key(k)) => Some(k),
            _ => None,
        })
    }
}

/// State held in memory: used by offline verifiers and as the overlay of
/// changes not yet committed.
#[derive(Debug, Default, Clone)]
pub struct MemoryState {
    values: HashMap<StateKey, StateValue>,
}

impl MemoryState {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn put(&mut self, value: StateValue) {
        self.values.insert(value.key(), value);
    }
    pub fn get_local(&self, key: &StateKey) -> Option<&StateValue> {
        self.values.get(key)
    }
    pub fn len(&self) -> usize {
        self.values.len()
    }
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
    pub fn clear(&mut self) {
        self.values.clear();
    }
}

impl StateView for MemoryState {
    fn get(&self, key: &StateKey) -> Result<Option<StateValue>, StateError> {
        Ok(self.values.get(key).cloned())
    }
}

/// Uncommitted changes layered over committed state.
pub struct Overlay<'a, V: StateView> {
    base: &'a V,
    pending: &'a MemoryState,
}

impl<'a, V: StateView> Overlay<'a, V> {
    pub fn new(base: &'a V, pending: &'a MemoryState) -> Self {
        Self { base, pending }
    }
}

impl<V: StateView> StateView for Overlay<'_, V> {
    fn get(&self, key: &StateKey) -> Result<Option<StateValue>, StateError> {
        match self.pending.get_local(key) {
            Some(v) => Ok(Some(v.clone())),
            None => self.base.get(key),
        }
    }
}
