//! The ledger state derived from the entries, as the rules engine sees it.
//!
//! State is a map from [`StateKey`] to [`StateValue`]. The rules engine
//! reads it through [`StateView`] and answers with the values to write; the
//! store persists them, and an offline verifier keeps them in a
//! [`MemoryState`]. Values are only ever replaced, never deleted.

use std::cell::RefCell;
use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::compliance::{Flag, FlagId, SupplierFile};
use super::event::ReceiptPolicy;
use super::ids::CountryCode;
use super::ids::ParticipantId;
use super::lot::{CountryRisk, Lot, LotId, Site, SiteId};
use super::participant::{KeyRecord, LedgerInfo, Participant};
use crate::codec::{self, Canonical};
use crate::crypto::{CryptoError, PublicKey};

/// Names one value of the state.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum StateKey {
    Ledger,
    Participant(ParticipantId),
    Key(PublicKey),
    Site(SiteId),
    Lot(LotId),
    /// The organisation a participant acts for.
    Affiliation(ParticipantId),
    /// An organisation's file on a supplier: (organisation, supplier).
    Supplier(ParticipantId, ParticipantId),
    ReceiptPolicy(ParticipantId),
    Flag(FlagId),
    CountryRisk(CountryCode),
}

impl StateKey {
    /// Compact, prefix-distinct bytes for use as a storage key.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            StateKey::Ledger => b"L".to_vec(),
            StateKey::Participant(id) => [b"P".as_slice(), id.as_str().as_bytes()].concat(),
            StateKey::Key(key) => [b"K".as_slice(), key.as_bytes().as_slice()].concat(),
            StateKey::Site(id) => [b"S".as_slice(), id.as_str().as_bytes()].concat(),
            StateKey::Lot(id) => [b"T".as_slice(), id.as_str().as_bytes()].concat(),
            StateKey::Affiliation(id) => [b"A".as_slice(), id.as_str().as_bytes()].concat(),
            // Participant ids never contain a space, so it separates the two.
            StateKey::Supplier(org, supplier) => [
                b"U",
                org.as_str().as_bytes(),
                b" ",
                supplier.as_str().as_bytes(),
            ]
            .concat(),
            StateKey::CountryRisk(c) => [b"C".as_slice(), c.as_str().as_bytes()].concat(),
            StateKey::ReceiptPolicy(org) => [b"R".as_slice(), org.as_str().as_bytes()].concat(),
            StateKey::Flag(id) => [
                b"F".as_slice(),
                &id.entry.to_be_bytes(),
                &id.n.to_be_bytes(),
            ]
            .concat(),
        }
    }
}

/// One value of the state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum StateValue {
    Ledger(LedgerInfo),
    Participant(Participant),
    Key(KeyRecord),
    Site(Site),
    Lot(Lot),
    Affiliation(Affiliation),
    Supplier(SupplierFile),
    ReceiptPolicy(ReceiptPolicy),
    Flag(Flag),
    CountryRisk(CountryRisk),
}

/// A participant acting for an organisation (for example its compliance
/// officer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Affiliation {
    pub member: ParticipantId,
    pub organisation: ParticipantId,
    pub entry: u64,
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
            StateValue::Site(s) => StateKey::Site(s.id.clone()),
            StateValue::Lot(l) => StateKey::Lot(l.id.clone()),
            StateValue::Affiliation(a) => StateKey::Affiliation(a.member.clone()),
            StateValue::Supplier(f) => {
                StateKey::Supplier(f.organisation.clone(), f.supplier.clone())
            }
            StateValue::ReceiptPolicy(p) => StateKey::ReceiptPolicy(p.organisation.clone()),
            StateValue::Flag(f) => StateKey::Flag(f.id),
            StateValue::CountryRisk(r) => StateKey::CountryRisk(r.country.clone()),
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

    fn site(&self, id: &SiteId) -> Result<Option<Site>, StateError> {
        Ok(match self.get(&StateKey::Site(id.clone()))? {
            Some(StateValue::Site(s)) => Some(s),
            _ => None,
        })
    }

    fn lot(&self, id: &LotId) -> Result<Option<Lot>, StateError> {
        Ok(match self.get(&StateKey::Lot(id.clone()))? {
            Some(StateValue::Lot(l)) => Some(l),
            _ => None,
        })
    }

    /// The organisation `id` acts for: its appointment, or itself.
    fn organisation_of(&self, id: &ParticipantId) -> Result<ParticipantId, StateError> {
        Ok(match self.get(&StateKey::Affiliation(id.clone()))? {
            Some(StateValue::Affiliation(a)) => a.organisation,
            _ => id.clone(),
        })
    }

    fn supplier_file(
        &self,
        organisation: &ParticipantId,
        supplier: &ParticipantId,
    ) -> Result<Option<SupplierFile>, StateError> {
        let key = StateKey::Supplier(organisation.clone(), supplier.clone());
        Ok(match self.get(&key)? {
            Some(StateValue::Supplier(f)) => Some(f),
            _ => None,
        })
    }

    fn receipt_policy(
        &self,
        organisation: &ParticipantId,
    ) -> Result<Option<ReceiptPolicy>, StateError> {
        Ok(
            match self.get(&StateKey::ReceiptPolicy(organisation.clone()))? {
                Some(StateValue::ReceiptPolicy(p)) => Some(p),
                _ => None,
            },
        )
    }

    fn country_risk(&self, country: &CountryCode) -> Result<Option<CountryRisk>, StateError> {
        Ok(match self.get(&StateKey::CountryRisk(country.clone()))? {
            Some(StateValue::CountryRisk(r)) => Some(r),
            _ => None,
        })
    }

    fn flag(&self, id: FlagId) -> Result<Option<Flag>, StateError> {
        Ok(match self.get(&StateKey::Flag(id))? {
            Some(StateValue::Flag(f)) => Some(f),
            _ => None,
        })
    }

    /// Whether `key` may be registered: a valid point, not of small order.
    /// A property of the key alone, but a costly one (a point
    /// decompression), so a view may answer it from checks made earlier in
    /// parallel ([`PrecheckedKeys`]) instead of on the sequencing path.
    fn registrable(&self, key: &PublicKey) -> Result<(), CryptoError> {
        key.check_registrable()
    }
}

impl<V: StateView + ?Sized> StateView for &V {
    fn get(&self, key: &StateKey) -> Result<Option<StateValue>, StateError> {
        (**self).get(key)
    }

    fn registrable(&self, key: &PublicKey) -> Result<(), CryptoError> {
        (**self).registrable(key)
    }
}

/// A view that answers [`StateView::registrable`] from checks already
/// made, and everything else from the view it wraps.
pub struct PrecheckedKeys<'a, V: StateView> {
    inner: V,
    checked: &'a [(PublicKey, Result<(), CryptoError>)],
}

impl<'a, V: StateView> PrecheckedKeys<'a, V> {
    pub fn new(inner: V, checked: &'a [(PublicKey, Result<(), CryptoError>)]) -> Self {
        Self { inner, checked }
    }
}

impl<V: StateView> StateView for PrecheckedKeys<'_, V> {
    fn get(&self, key: &StateKey) -> Result<Option<StateValue>, StateError> {
        self.inner.get(key)
    }

    fn registrable(&self, key: &PublicKey) -> Result<(), CryptoError> {
        match self.checked.iter().find(|(k, _)| k == key) {
            Some((_, verdict)) => verdict.clone(),
            None => self.inner.registrable(key),
        }
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
    /// The values held, in no particular order.
    pub fn into_values(self) -> impl Iterator<Item = StateValue> {
        self.values.into_values()
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

/// Committed state with a cache in front, for the one thread that
/// sequences entries. Values it has read, and values it has committed
/// (`remember`), are then served from memory. Only correct while nobody
/// else writes the base, which is why the writer alone holds one.
pub struct CachedState<V: StateView> {
    base: V,
    /// `None` caches that a key has no value.
    cache: RefCell<HashMap<StateKey, Option<StateValue>>>,
    limit: usize,
}

impl<V: StateView> CachedState<V> {
    /// A cache of at most `limit` keys; it starts afresh when full.
    pub fn new(base: V, limit: usize) -> Self {
        Self {
            base,
            cache: RefCell::new(HashMap::new()),
            limit,
        }
    }

    /// Records values that are now committed to the base.
    pub fn remember(&self, values: impl IntoIterator<Item = StateValue>) {
        let mut cache = self.cache.borrow_mut();
        for value in values {
            if cache.len() >= self.limit {
                cache.clear();
            }
            cache.insert(value.key(), Some(value));
        }
    }
}

impl<V: StateView> StateView for CachedState<V> {
    fn get(&self, key: &StateKey) -> Result<Option<StateValue>, StateError> {
        if let Some(hit) = self.cache.borrow().get(key) {
            return Ok(hit.clone());
        }
        let value = self.base.get(key)?;
        let mut cache = self.cache.borrow_mut();
        if cache.len() >= self.limit {
            cache.clear();
        }
        cache.insert(key.clone(), value.clone());
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Timestamp;

    fn ledger_value(origin: &str) -> StateValue {
        StateValue::Ledger(LedgerInfo {
            origin: origin.into(),
            log_key: PublicKey::from_bytes([9; 32]),
            operator: ParticipantId::new("op").unwrap(),
            created_at: Timestamp::from_millis(1),
        })
    }

    #[test]
    fn cached_state_serves_reads_and_remembered_values_and_stays_bounded() {
        let mut base = MemoryState::new();
        base.put(ledger_value("a"));
        let cached = CachedState::new(base, 2);
        assert_eq!(
            cached.get(&StateKey::Ledger).unwrap(),
            Some(ledger_value("a"))
        );
        cached.remember([ledger_value("b")]);
        assert_eq!(
            cached.get(&StateKey::Ledger).unwrap(),
            Some(ledger_value("b"))
        );
        let p = StateKey::Participant(ParticipantId::new("p").unwrap());
        assert_eq!(cached.get(&p).unwrap(), None);
        // A third key exceeds the limit of two: the cache starts afresh and
        // the base is read again.
        let k = StateKey::Key(PublicKey::from_bytes([1; 32]));
        assert_eq!(cached.get(&k).unwrap(), None);
        assert_eq!(cached.cache.borrow().len(), 1);
        assert_eq!(
            cached.get(&StateKey::Ledger).unwrap(),
            Some(ledger_value("a"))
        );
    }
}
