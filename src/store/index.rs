//! The sled index: everything derived from the log, for fast reads.
//!
//! The index folder holds a sled database and three dense record files
//! (`store::dense`): `locations` (where each entry's frame lies in the log),
//! `event-ids` (each entry's event id) and `tree` (every complete Merkle
//! subtree hash, in post-order). sled holds one tree, keys prefixed by kind.
//! A committed batch's sled writes, with its applied count, wait in memory
//! (`store::deferred`), where readers find them, until a background thread
//! gives sled everything waiting in one atomic `apply_batch`: always after
//! the dense records of the same entries. Nothing here is the only copy of
//! anything: the log file is, and this index can be rebuilt from it.
//!
//! | prefix | key                  | value                                 |
//! |--------|----------------------|---------------------------------------|
//! | `m`    | meta name            | applied count, last hash, format      |
//! | `c`    | tree size (u64 BE)   | checkpoint record bytes               |
//! | `s`    | state key bytes      | state value (`codec::encode_compact`) |
//!
//! Event ids are found through a map in memory from their first 8 bytes to
//! entry indexes (20 to 40 bytes per entry), filled from `event-ids` on
//! open; every candidate is confirmed against the file. A sled B-tree of
//! random 32-byte keys cost an insert and a lookup per append and most of
//! the index's bytes on disk.
//!
//! State keys are also kept in memory, as 8-byte keyed hashes (filled from
//! sled on open, about 16 to 24 bytes per key), so that a key the index
//! does not hold, as every new lot's is, is answered without a sled lookup.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use super::deferred::{Deferred, Flusher, later_of};
use super::dense::{EventIdFile, LocationFile, TreeFile};
use crate::crypto::Digest;
use crate::merkle::{Hash, NodeSource};
use crate::model::{StateError, StateKey, StateValue, StateView};

const META_APPLIED: &[u8] = b"mapplied";
const META_LAST_HASH: &[u8] = b"mlast_hash";
const META_FORMAT: &[u8] = b"mformat";
/// Before the key of every state value (`StateKey::to_bytes`).
const STATE_PREFIX: &[u8] = b"s";

/// How long opening waits for sled's file lock before giving up on the
/// index (which is then moved aside and rebuilt).
const SLED_LOCK_WAIT: Duration = Duration::from_secs(10);

/// Whether sled refused to open because its file lock is held. sled 0.34
/// reports this only in the message of an I/O error.
fn is_lock_held(e: &sled::Error) -> bool {
    matches!(e, sled::Error::Io(io) if io.to_string().contains("could not acquire lock"))
}

/// The layout of this build's index. An index of another layout is
/// rebuilt from the log rather than read.
pub const INDEX_FORMAT: u8 = 2;

/// Storage failure inside the index.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("index database: {0}")]
pub struct IndexError(pub String);

impl From<sled::Error> for IndexError {
    fn from(e: sled::Error) -> Self {
        IndexError(e.to_string())
    }
}

/// Where an entry's frame lies in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryLocation {
    pub frame_offset: u64,
    pub payload_len: u32,
}

/// Handle on the index; cheap to clone, safe to share between threads.
#[derive(Clone)]
pub struct Index {
    db: sled::Db,
    tree: Arc<TreeFile>,
    locations: Arc<LocationFile>,
    event_ids: Arc<EventIdFile>,
    events: Arc<RwLock<EventMap>>,
    /// Every state key the index holds, hashed (see [`StateKeys`]).
    state_keys: Arc<StateKeys>,
    /// sled writes committed but not yet given to sled, and the thread
    /// that gives them (`store::deferred`). Dropped with the last handle:
    /// writes out what waits, then stops.
    sled_writes: Arc<Flusher>,
}

/// The keys of every state value the index holds, as keyed 64-bit hashes
/// in memory, so that a key it does not hold is known at once rather than
/// looked up in sled: every new lot's id is such a key. A hash shared by
/// two keys only sends the second to sled, as without this set. Filled
/// from sled when the index opens and by every batch applied; sled's state
/// is written only through [`Index::apply`], so it holds no key the set
/// lacks.
#[derive(Default)]
struct StateKeys {
    hasher: std::hash::RandomState,
    hashes: RwLock<HashSet<u64>>,
}

impl StateKeys {
    /// The set of the state keys `db` holds.
    fn load(db: &sled::Db) -> Result<Self, IndexError> {
        let mut keys = StateKeys::default();
        let mut hashes = HashSet::new();
        for key in db.scan_prefix(STATE_PREFIX).keys() {
            hashes.insert(keys.hash(&key?));
        }
        *keys.hashes.get_mut().unwrap_or_else(|e| e.into_inner()) = hashes;
        Ok(keys)
    }

    fn hash(&self, key: &[u8]) -> u64 {
        std::hash::BuildHasher::hash_one(&self.hasher, key)
    }

    fn may_hold(&self, key: &[u8]) -> bool {
        let hash = self.hash(key);
        self.hashes
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&hash)
    }

    fn add<'a>(&self, keys: impl IntoIterator<Item = &'a [u8]>) {
        let hashes: Vec<u64> = keys.into_iter().map(|k| self.hash(k)).collect();
        self.hashes
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .extend(hashes);
    }
}

/// Entry indexes by the first 8 bytes of their event id. Two ids sharing
/// those bytes (about one pair in 10^7 at a million entries) both stay
/// findable: the first in `first`, later ones in `more`.
#[derive(Default)]
struct EventMap {
    first: HashMap<u64, u64>,
    more: HashMap<u64, Vec<u64>>,
}

impl EventMap {
    fn insert(&mut self, id: &[u8; 32], index: u64) {
        let prefix = id_prefix(id);
        match self.first.entry(prefix) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(index);
            }
            std::collections::hash_map::Entry::Occupied(_) => {
                self.more.entry(prefix).or_default().push(index);
            }
        }
    }

    /// Entries whose event id starts as `id` does (allocates only when
    /// there are several).
    fn candidates(&self, id: &[u8; 32]) -> impl Iterator<Item = u64> + use<> {
        let prefix = id_prefix(id);
        let first = self.first.get(&prefix).copied();
        let more = self.more.get(&prefix).cloned().unwrap_or_default();
        first.into_iter().chain(more)
    }
}

fn id_prefix(id: &[u8; 32]) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&id[..8]);
    u64::from_le_bytes(b)
}

impl Index {
    /// Opens (or creates) the index in folder `path`. sled can panic on
    /// some corrupt files, so a panic while opening is turned into an
    /// error the caller can recover from by rebuilding.
    pub fn open(path: &Path) -> Result<Self, IndexError> {
        std::fs::create_dir_all(path)
            .map_err(|e| IndexError(format!("{}: {e}", path.display())))?;
        let deadline = Instant::now() + SLED_LOCK_WAIT;
        let db = loop {
            let config = sled::Config::new()
                .path(path.join("sled"))
                .flush_every_ms(Some(500));
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || config.open())) {
                Ok(Ok(db)) => break db,
                // sled's lock is released by its own threads, a moment
                // after the last handle of a closed database is dropped;
                // the caller holds the ledger's writer lock, so no other
                // process can be holding it for long.
                Ok(Err(e)) if is_lock_held(&e) && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Ok(Err(e)) => return Err(e.into()),
                Err(_) => return Err(IndexError("sled panicked while opening the index".into())),
            }
        };
        match db.get(META_FORMAT)?.as_deref() {
            Some([INDEX_FORMAT]) => {}
            None if db.is_empty() => {
                db.insert(META_FORMAT, &[INDEX_FORMAT])?;
            }
            found => {
                return Err(IndexError(format!(
                    "the index is of format {}, this build reads format {INDEX_FORMAT}",
                    match found {
                        Some([n]) => n.to_string(),
                        Some(_) => "(unreadable)".into(),
                        None => "1".into(),
                    }
                )));
            }
        }
        let dense_err =
            |what: &str, e: std::io::Error| IndexError(format!("{}/{what}: {e}", path.display()));
        let tree = TreeFile::open(&path.join("tree")).map_err(|e| dense_err("tree", e))?;
        let locations =
            LocationFile::open(&path.join("locations")).map_err(|e| dense_err("locations", e))?;
        let event_ids =
            EventIdFile::open(&path.join("event-ids")).map_err(|e| dense_err("event-ids", e))?;
        let state_keys = StateKeys::load(&db)?;
        let flusher = Flusher::start(Arc::new(Deferred::default()), db.clone())?;
        Ok(Self {
            db,
            sled_writes: Arc::new(flusher),
            tree: Arc::new(tree),
            locations: Arc::new(locations),
            event_ids: Arc::new(event_ids),
            events: Arc::default(),
            state_keys: Arc::new(state_keys),
        })
    }

    /// The dense file of event ids.
    pub fn event_ids(&self) -> &EventIdFile {
        &self.event_ids
    }

    /// Fills the in-memory event map from the event-id file's intact
    /// records, at most `limit` of them, in the same pass that checks
    /// them; answers how many there were.
    pub fn load_event_ids(&self, limit: u64) -> Result<u64, IndexError> {
        let mut map = EventMap::default();
        let intact = self
            .event_ids
            .intact_prefix(limit, |i, id| map.insert(id.as_bytes(), i))
            .map_err(|e| IndexError(format!("reading the event ids: {e}")))?;
        *self.events.write().unwrap_or_else(|e| e.into_inner()) = map;
        Ok(intact)
    }

    /// Replaces the event ids of entries `first..` with `ids` (recomputed
    /// from the log), in the file and in the map.
    pub fn repair_event_ids(&self, first: u64, ids: &[Digest]) -> Result<(), IndexError> {
        let io = |e: std::io::Error| IndexError(format!("writing the event ids: {e}"));
        self.event_ids.truncate(first).map_err(io)?;
        self.event_ids.append(first, ids).map_err(io)?;
        let mut events = self.events.write().unwrap_or_else(|e| e.into_inner());
        for (i, id) in ids.iter().enumerate() {
            events.insert(id.as_bytes(), first + i as u64);
        }
        Ok(())
    }

    /// The dense file of Merkle subtree hashes.
    pub fn tree(&self) -> &TreeFile {
        &self.tree
    }

    /// The dense file of entry locations.
    pub fn locations(&self) -> &LocationFile {
        &self.locations
    }

    /// Number of entries whose effects are in the index.
    pub fn applied(&self) -> Result<u64, IndexError> {
        Ok(self
            .sled_get(META_APPLIED)?
            .map(|v| read_u64(&v))
            .transpose()?
            .unwrap_or(0))
    }

    /// Hash of the last applied entry.
    pub fn last_hash(&self) -> Result<Option<Digest>, IndexError> {
        self.sled_get(META_LAST_HASH)?
            .map(|v| Digest::from_slice(&v).map_err(|e| IndexError(e.to_string())))
            .transpose()
    }

    pub fn location(&self, index: u64) -> Result<EntryLocation, IndexError> {
        self.locations.get(index)
    }

    /// The entry holding the event with this id, if any.
    pub fn event_entry(&self, event_id: &Digest) -> Result<Option<u64>, IndexError> {
        let candidates = self
            .events
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .candidates(event_id.as_bytes());
        for index in candidates {
            if self.event_ids.get(index)? == *event_id {
                return Ok(Some(index));
            }
        }
        Ok(None)
    }

    /// The stored checkpoint record for a tree size.
    pub fn checkpoint(&self, size: u64) -> Result<Option<Vec<u8>>, IndexError> {
        self.sled_get(&key_u64(b'c', size))
    }

    /// A sled value, the newest waiting write first.
    fn sled_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, IndexError> {
        match self.sled_writes.waiting().get(key) {
            Some(v) => Ok(Some(v)),
            None => Ok(self.db.get(key)?.map(|v| v.to_vec())),
        }
    }

    /// The largest stored checkpoint at or below `size`.
    pub fn checkpoint_at_or_below(&self, size: u64) -> Result<Option<(u64, Vec<u8>)>, IndexError> {
        let start = key_u64(b'c', 0);
        let end = key_u64(b'c', size);
        let waiting = self.sled_writes.waiting().last_in(&start, &end);
        let stored = match self.db.range(start..=end).next_back() {
            Some(kv) => {
                let (k, v) = kv?;
                Some((k.to_vec(), v.to_vec()))
            }
            None => None,
        };
        later_of(waiting, stored)
            .map(|(k, v)| Ok((read_u64_be(&k[1..])?, v)))
            .transpose()
    }

    /// Applies a batch: first its dense records, then its sled writes
    /// (with the applied count), which readers see at once and sled gets
    /// in a later, larger atomic batch (`store::deferred`).
    pub fn apply(&self, batch: IndexBatch) -> Result<(), IndexError> {
        let io = |what: &str, e: std::io::Error| IndexError(format!("writing {what}: {e}"));
        self.tree
            .append(batch.first, &batch.nodes)
            .map_err(|e| io("tree nodes", e))?;
        self.locations
            .append(batch.first, &batch.locations)
            .map_err(|e| io("entry locations", e))?;
        self.event_ids
            .append(batch.first, &batch.event_ids)
            .map_err(|e| io("event ids", e))?;
        self.state_keys.add(
            batch
                .sled
                .iter()
                .filter(|(k, _)| k.starts_with(STATE_PREFIX))
                .map(|(k, _)| k.as_slice()),
        );
        self.sled_writes.waiting().put(batch.sled)?;
        let mut events = self.events.write().unwrap_or_else(|e| e.into_inner());
        for (i, id) in batch.event_ids.iter().enumerate() {
            events.insert(id.as_bytes(), batch.first + i as u64);
        }
        Ok(())
    }

    /// Writes everything to disk: the waiting writes to sled, then sled's
    /// flush (not an fsync of the log, which is the durable copy).
    pub fn flush(&self) -> Result<(), IndexError> {
        self.sled_writes.waiting().write_out(&self.db)?;
        self.db.flush()?;
        Ok(())
    }

    /// Approximate bytes on disk.
    pub fn size_on_disk(&self) -> Result<u64, IndexError> {
        Ok(self.db.size_on_disk()?)
    }
}

impl StateView for Index {
    fn get(&self, key: &StateKey) -> Result<Option<StateValue>, StateError> {
        let k = [STATE_PREFIX, &key.to_bytes()].concat();
        if !self.state_keys.may_hold(&k) {
            return Ok(None);
        }
        let Some(v) = self.sled_get(&k).map_err(|e| StateError(e.to_string()))? else {
            return Ok(None);
        };
        crate::codec::decode_compact(&v)
            .map(Some)
            .map_err(|e| StateError(format!("stored state for {key:?} is unreadable: {e}")))
    }
}

impl NodeSource for Index {
    type Error = IndexError;
    fn node(&self, level: u8, index: u64) -> Result<Hash, IndexError> {
        self.tree.node(level, index)
    }
}

/// Writes staged for one apply: the batch's entries start at `first`.
pub struct IndexBatch {
    first: u64,
    /// sled inserts, in order (a later one for the same key wins).
    sled: Vec<(Vec<u8>, Vec<u8>)>,
    nodes: Vec<Hash>,
    locations: Vec<EntryLocation>,
    event_ids: Vec<Digest>,
}

impl IndexBatch {
    /// A batch whose first entry will be entry `first`.
    pub fn new(first: u64) -> Self {
        Self {
            first,
            sled: Vec::new(),
            nodes: Vec::new(),
            locations: Vec::new(),
            event_ids: Vec::new(),
        }
    }
    /// The first entry of the batch.
    pub fn first(&self) -> u64 {
        self.first
    }

    /// Number of entries staged.
    pub fn len(&self) -> usize {
        self.locations.len()
    }

    pub fn is_empty(&self) -> bool {
        self.locations.is_empty()
    }

    /// Moves every staged location `by` bytes further into the log: the
    /// writer stages offsets relative to its batch, and the batch's place
    /// in the log is known only when it is written.
    pub fn rebase_locations(&mut self, by: u64) {
        for loc in &mut self.locations {
            loc.frame_offset += by;
        }
    }

    /// Appends the batch that follows this one, so both apply as one.
    pub fn extend(&mut self, later: IndexBatch) -> Result<(), IndexError> {
        if later.first != self.first + self.len() as u64 {
            return Err(IndexError(format!(
                "index batches out of order: entries {}.. after {}..{}",
                later.first,
                self.first,
                self.first + self.len() as u64
            )));
        }
        self.sled.extend(later.sled);
        self.nodes.extend(later.nodes);
        self.locations.extend(later.locations);
        self.event_ids.extend(later.event_ids);
        Ok(())
    }

    pub fn set_applied(&mut self, count: u64, last_hash: &Digest) {
        self.sled
            .push((META_APPLIED.to_vec(), count.to_le_bytes().to_vec()));
        self.sled
            .push((META_LAST_HASH.to_vec(), last_hash.as_bytes().to_vec()));
    }
    /// Records the next entry's location and event id; entries come in
    /// order.
    pub fn push_entry(&mut self, loc: EntryLocation, event_id: &Digest) {
        self.locations.push(loc);
        self.event_ids.push(*event_id);
    }
    /// Records the next completed subtree node, in `Frontier::push` order.
    pub fn push_node(&mut self, hash: Hash) {
        self.nodes.push(hash);
    }
    pub fn put_checkpoint(&mut self, size: u64, record: &[u8]) {
        self.sled.push((key_u64(b'c', size), record.to_vec()));
    }
    pub fn put_state(&mut self, value: &StateValue) -> Result<(), IndexError> {
        let bytes = crate::codec::encode_compact(value).map_err(|e| IndexError(e.to_string()))?;
        self.sled
            .push(([STATE_PREFIX, &value.key().to_bytes()].concat(), bytes));
        Ok(())
    }
}

fn key_u64(prefix: u8, n: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(9);
    k.push(prefix);
    k.extend_from_slice(&n.to_be_bytes());
    k
}

fn read_u64(v: &[u8]) -> Result<u64, IndexError> {
    <[u8; 8]>::try_from(v).map(u64::from_le_bytes).map_err(|_| {
        IndexError(format!(
            "expected an 8-byte number, found {} bytes",
            v.len()
        ))
    })
}

fn read_u64_be(v: &[u8]) -> Result<u64, IndexError> {
    <[u8; 8]>::try_from(v)
        .map(u64::from_be_bytes)
        .map_err(|_| IndexError(format!("expected an 8-byte key, found {} bytes", v.len())))
}
