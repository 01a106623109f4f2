//! The sled index: everything derived from the log, for fast reads.
//!
//! One sled tree, keys prefixed by kind, so that each committed batch is
//! written with one atomic `apply_batch`. sled is never the only copy of
//! anything: the log file is, and this index can be rebuilt from it.
//!
//! | prefix | key                         | value                          |
//! |--------|-----------------------------|--------------------------------|
//! | `m`    | meta name                   | applied count, last hash, ...  |
//! | `o`    | entry index (u64 BE)        | frame offset u64 LE, len u32 LE|
//! | `e`    | event id (32 bytes)         | entry index u64 LE             |
//! | `n`    | level u8, node index u64 BE | subtree hash (32 bytes)        |
//! | `c`    | tree size (u64 BE)          | checkpoint record bytes        |
//! | `s`    | state key bytes             | state value (canonical)        |

use std::path::Path;

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
}

impl Index {
    /// Opens (or creates) the index. sled can panic on some corrupt files,
    /// so a panic while opening is turned into an error the caller can
    /// recover from by rebuilding.
    pub fn open(path: &Path) -> Result<Self, IndexError> {
        let config = sled::Config::new().path(path).flush_every_ms(Some(500));
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || config.open())) {
            Ok(Ok(db)) => Ok(Self { db }),
            Ok(Err(e)) => Err(e.into()),
            Err(_) => Err(IndexError("sled panicked while opening the index".into())),
        }
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

    pub fn location(&self, index: u64) -> Result<Option<EntryLocation>, IndexError> {
        let Some(v) = self.db.get(key_u64(b'o', index))? else {
            return Ok(None);
        };
        if v.len() != 12 {
            return Err(IndexError(format!(
                "location of entry {index} is {} bytes, not 12",
                v.len()
            )));
        }
        Ok(Some(EntryLocation {
            frame_offset: read_u64(&v[..8])?,
            payload_len: u32::from_le_bytes([v[8], v[9], v[10], v[11]]),
        }))
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

    /// Applies a batch atomically.
    pub fn apply(&self, batch: IndexBatch) -> Result<(), IndexError> {
        self.db.apply_batch(batch.0)?;
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
        let v = self
            .db
            .get(node_key(level, index))?
            .ok_or_else(|| IndexError(format!("tree node ({level}, {index}) is missing")))?;
        <[u8; 32]>::try_from(v.as_ref())
            .map_err(|_| IndexError(format!("tree node ({level}, {index}) is not 32 bytes")))
    }
}

/// Writes staged for one atomic apply.
#[derive(Default)]
pub struct IndexBatch(sled::Batch);

impl IndexBatch {
    pub fn set_applied(&mut self, count: u64, last_hash: &Digest) {
        self.0.insert(META_APPLIED, &count.to_le_bytes());
        self.0.insert(META_LAST_HASH, last_hash.as_bytes());
    }
    pub fn put_location(&mut self, index: u64, loc: EntryLocation) {
        let mut v = loc.frame_offset.to_le_bytes().to_vec();
        v.extend_from_slice(&loc.payload_len.to_le_bytes());
        self.0.insert(key_u64(b'o', index), v);
    }
    pub fn put_event(&mut self, event_id: &Digest, index: u64) {
        self.0.insert(
            [b"e".as_slice(), event_id.as_bytes()].concat(),
            &index.to_le_bytes(),
        );
    }
    pub fn put_node(&mut self, level: u8, index: u64, hash: &Hash) {
        self.0.insert(node_key(level, index), hash.as_slice());
    }
    pub fn put_checkpoint(&mut self, size: u64, record: &[u8]) {
        self.0.insert(key_u64(b'c', size), record);
    }
    pub fn put_state(&mut self, value: &StateValue) -> Result<(), IndexError> {
        let bytes = crate::codec::encode(value).map_err(|e| IndexError(e.to_string()))?;
        self.0
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

fn node_key(level: u8, index: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(10);
    k.push(b'n');
    k.push(level);
    k.extend_from_slice(&index.to_be_bytes());
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
