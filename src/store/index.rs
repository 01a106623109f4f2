//! The sled index: everything derived from the log, for fast reads.
//!
//! The index folder holds a sled database and two dense record files
//! (`store::dense`): `locations` (where each entry's frame lies in the log)
//! and `tree` (every complete Merkle subtree hash, in post-order). sled holds
//! one tree, keys prefixed by kind, so that each committed batch is written
//! with one atomic `apply_batch`, after the dense records of that batch.
//! Nothing here is the only copy of anything: the log file is, and this
//! index can be rebuilt from it.
//!
//! | prefix | key                  | value                         |
//! |--------|----------------------|-------------------------------|
//! | `m`    | meta name            | applied count, last hash      |
//! | `e`    | event id (32 bytes)  | entry index u64 LE            |
//! | `c`    | tree size (u64 BE)   | checkpoint record bytes       |
//! | `s`    | state key bytes      | state value (canonical)       |

use std::path::Path;

use std::sync::Arc;

use super::dense::{LocationFile, TreeFile};
use crate::crypto::Digest;
use crate::merkle::{Hash, NodeSource};
use crate::model::{StateError, StateKey, StateValue, StateView};

const META_APPLIED: &[u8] = b"mapplied";
const META_LAST_HASH: &[u8] = b"mlast_hash";

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
}

impl Index {
    /// Opens (or creates) the index in folder `path`. sled can panic on
    /// some corrupt files, so a panic while opening is turned into an
    /// error the caller can recover from by rebuilding.
    pub fn open(path: &Path) -> Result<Self, IndexError> {
        std::fs::create_dir_all(path)
            .map_err(|e| IndexError(format!("{}: {e}", path.display())))?;
        let config = sled::Config::new()
            .path(path.join("sled"))
            .flush_every_ms(Some(500));
        let db = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || config.open()))
        {
            Ok(Ok(db)) => db,
            Ok(Err(e)) => return Err(e.into()),
            Err(_) => return Err(IndexError("sled panicked while opening the index".into())),
        };
        let dense_err =
            |what: &str, e: std::io::Error| IndexError(format!("{}/{what}: {e}", path.display()));
        let tree = TreeFile::open(&path.join("tree")).map_err(|e| dense_err("tree", e))?;
        let locations =
            LocationFile::open(&path.join("locations")).map_err(|e| dense_err("locations", e))?;
        Ok(Self {
            db,
            tree: Arc::new(tree),
            locations: Arc::new(locations),
        })
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
            .db
            .get(META_APPLIED)?
            .map(|v| read_u64(&v))
            .transpose()?
            .unwrap_or(0))
    }

    /// Hash of the last applied entry.
    pub fn last_hash(&self) -> Result<Option<Digest>, IndexError> {
        self.db
            .get(META_LAST_HASH)?
            .map(|v| Digest::from_slice(&v).map_err(|e| IndexError(e.to_string())))
            .transpose()
    }

    pub fn location(&self, index: u64) -> Result<EntryLocation, IndexError> {
        self.locations.get(index)
    }

    /// The entry holding the event with this id, if any.
    pub fn event_entry(&self, event_id: &Digest) -> Result<Option<u64>, IndexError> {
        let key = [b"e".as_slice(), event_id.as_bytes()].concat();
        self.db.get(key)?.map(|v| read_u64(&v)).transpose()
    }

    /// The stored checkpoint record for a tree size.
    pub fn checkpoint(&self, size: u64) -> Result<Option<Vec<u8>>, IndexError> {
        Ok(self.db.get(key_u64(b'c', size))?.map(|v| v.to_vec()))
    }

    /// The largest stored checkpoint at or below `size`.
    pub fn checkpoint_at_or_below(&self, size: u64) -> Result<Option<(u64, Vec<u8>)>, IndexError> {
        let start = key_u64(b'c', 0);
        let end = key_u64(b'c', size);
        match self.db.range(start..=end).next_back() {
            Some(kv) => {
                let (k, v) = kv?;
                Ok(Some((read_u64_be(&k[1..])?, v.to_vec())))
            }
            None => Ok(None),
        }
    }

    /// Applies a batch: first its dense records, then its sled writes in
    /// one atomic batch (which records how many entries are applied).
    pub fn apply(&self, batch: IndexBatch) -> Result<(), IndexError> {
        let io = |what: &str, e: std::io::Error| IndexError(format!("writing {what}: {e}"));
        self.tree
            .append(batch.first, &batch.nodes)
            .map_err(|e| io("tree nodes", e))?;
        self.locations
            .append(batch.first, &batch.locations)
            .map_err(|e| io("entry locations", e))?;
        self.db.apply_batch(batch.sled)?;
        Ok(())
    }

    /// Writes everything to disk (sled's flush; not an fsync of the log,
    /// which is the durable copy).
    pub fn flush(&self) -> Result<(), IndexError> {
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
        let k = [b"s".as_slice(), &key.to_bytes()].concat();
        let Some(v) = self.db.get(k).map_err(|e| StateError(e.to_string()))? else {
            return Ok(None);
        };
        crate::codec::decode(&v)
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
    sled: sled::Batch,
    nodes: Vec<Hash>,
    locations: Vec<EntryLocation>,
}

impl IndexBatch {
    /// A batch whose first entry will be entry `first`.
    pub fn new(first: u64) -> Self {
        Self {
            first,
            sled: sled::Batch::default(),
            nodes: Vec::new(),
            locations: Vec::new(),
        }
    }
    pub fn set_applied(&mut self, count: u64, last_hash: &Digest) {
        self.sled.insert(META_APPLIED, &count.to_le_bytes());
        self.sled.insert(META_LAST_HASH, last_hash.as_bytes());
    }
    /// Records the next entry's location; entries come in order.
    pub fn push_location(&mut self, loc: EntryLocation) {
        self.locations.push(loc);
    }
    /// Records the next completed subtree node, in `Frontier::push` order.
    pub fn push_node(&mut self, hash: Hash) {
        self.nodes.push(hash);
    }
    pub fn put_event(&mut self, event_id: &Digest, index: u64) {
        self.sled.insert(
            [b"e".as_slice(), event_id.as_bytes()].concat(),
            &index.to_le_bytes(),
        );
    }
    pub fn put_checkpoint(&mut self, size: u64, record: &[u8]) {
        self.sled.insert(key_u64(b'c', size), record);
    }
    pub fn put_state(&mut self, value: &StateValue) -> Result<(), IndexError> {
        let bytes = crate::codec::encode(value).map_err(|e| IndexError(e.to_string()))?;
        self.sled
            .insert([b"s".as_slice(), &value.key().to_bytes()].concat(), bytes);
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
