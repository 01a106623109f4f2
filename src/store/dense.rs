//! Dense files of fixed-size records for data derived from the log that
//! grows with every entry: entry locations, event ids and Merkle subtree
//! hashes.
//!
//! Each record ends in a CRC-32 of its contents, so damage (for example
//! zeros left by a power cut, as these files are not synced) is detected on
//! read and on open, where the files are checked and their damaged or
//! excess tail is recomputed from the log. Records are only ever appended;
//! positional reads let readers proceed while the writer appends.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::index::{EntryLocation, IndexError};
use crate::crypto::Digest;
use crate::merkle::{Hash, NodeSource};

/// An append-only file of `N`-byte records, each followed by its CRC-32.
#[derive(Debug)]
pub struct RecordFile<const N: usize> {
    file: File,
    path: PathBuf,
}

impl<const N: usize> RecordFile<N> {
    const RECORD: usize = N + 4;

    pub fn open(path: &Path) -> io::Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        Ok(Self {
            file,
            path: path.to_path_buf(),
        })
    }

    /// Number of records whose CRC checks, counted from the start.
    pub fn valid_prefix(&self) -> io::Result<u64> {
        self.intact_prefix(u64::MAX, |_, _| {})
    }

    /// Calls `each(position, record)` for the records from the start, in
    /// order, up to `limit` of them or the first whose CRC fails, reading
    /// in large chunks; answers how many there were.
    pub fn intact_prefix(
        &self,
        limit: u64,
        mut each: impl FnMut(u64, &[u8; N]),
    ) -> io::Result<u64> {
        const CHUNK: u64 = 4096;
        let records = (self.file.metadata()?.len() / Self::RECORD as u64).min(limit);
        let mut buf = vec![0u8; Self::RECORD * CHUNK as usize];
        let mut at = 0u64;
        while at < records {
            let n = (records - at).min(CHUNK) as usize;
            let chunk = &mut buf[..n * Self::RECORD];
            self.file.read_exact_at(chunk, at * Self::RECORD as u64)?;
            for (i, record) in chunk.chunks_exact(Self::RECORD).enumerate() {
                let position = at + i as u64;
                if !crc_ok(record) {
                    return Ok(position);
                }
                let mut out = [0u8; N];
                out.copy_from_slice(&record[..N]);
                each(position, &out);
            }
            at += n as u64;
        }
        Ok(records)
    }

    /// Cuts the file to its first `records` records.
    pub fn truncate(&self, records: u64) -> io::Result<()> {
        self.file.set_len(records * Self::RECORD as u64)
    }

    /// Writes `records` starting at record position `at`.
    pub fn write_at(&self, at: u64, records: &[[u8; N]]) -> io::Result<()> {
        let mut buf = Vec::with_capacity(records.len() * Self::RECORD);
        for r in records {
            buf.extend_from_slice(r);
            buf.extend_from_slice(&crc32fast::hash(r).to_le_bytes());
        }
        self.file.write_all_at(&buf, at * Self::RECORD as u64)
    }

    /// Reads the record at `at`, checking its CRC.
    pub fn read(&self, at: u64) -> Result<[u8; N], IndexError> {
        let mut buf = vec![0u8; Self::RECORD];
        self.file
            .read_exact_at(&mut buf, at * Self::RECORD as u64)
            .map_err(|e| {
                IndexError(format!(
                    "{}: record {at} cannot be read: {e}",
                    self.path.display()
                ))
            })?;
        if !crc_ok(&buf) {
            return Err(IndexError(format!(
                "{}: record {at} is damaged",
                self.path.display()
            )));
        }
        let mut out = [0u8; N];
        out.copy_from_slice(&buf[..N]);
        Ok(out)
    }
}

fn crc_ok(record: &[u8]) -> bool {
    let (data, crc) = record.split_at(record.len() - 4);
    crc32fast::hash(data).to_le_bytes() == crc
}

/// Position of subtree node (`level`, `index`) in post-order: the order in
/// which a growing tree completes its nodes (each leaf, then the parents it
/// completes, lowest first), so appends are contiguous.
pub fn node_position(level: u8, index: u64) -> Option<u64> {
    // The node completes when leaf `m - 1` is added, m = (index + 1) << level;
    // that step appends nodes of levels 0..=trailing_zeros(m), this one at
    // `level`, after all nodes of the first m - 1 leaves.
    let m = index
        .checked_add(1)?
        .checked_mul(1u64.checked_shl(u32::from(level))?)?;
    let highest = u64::from(m.trailing_zeros());
    let total = nodes_for_size(m)?;
    total.checked_sub(1 + highest - u64::from(level))
}

/// Number of complete-subtree nodes in a tree of `size` leaves.
pub fn nodes_for_size(size: u64) -> Option<u64> {
    size.checked_mul(2)?
        .checked_sub(u64::from(size.count_ones()))
}

/// Merkle subtree hashes, in post-order.
#[derive(Debug)]
pub struct TreeFile(RecordFile<32>);

impl TreeFile {
    pub fn open(path: &Path) -> io::Result<Self> {
        RecordFile::open(path).map(Self)
    }

    /// Largest tree size whose nodes are all present and intact.
    pub fn intact_size(&self) -> io::Result<u64> {
        let nodes = self.0.valid_prefix()?;
        // Sizes grow node counts monotonically; find the largest size whose
        // node count fits.
        let (mut lo, mut hi) = (0u64, nodes);
        while lo < hi {
            let mid = lo + (hi - lo).div_ceil(2);
            if nodes_for_size(mid).is_some_and(|n| n <= nodes) {
                lo = mid
            } else {
                hi = mid - 1
            }
        }
        Ok(lo)
    }

    /// Cuts the file to the nodes of a tree of `size` leaves.
    pub fn truncate_to_size(&self, size: u64) -> io::Result<()> {
        self.0.truncate(nodes_for_size(size).unwrap_or(u64::MAX))
    }

    /// Appends the nodes completed while the tree grew from `size` leaves,
    /// in the order `Frontier::push` returned them.
    pub fn append(&self, size: u64, nodes: &[Hash]) -> io::Result<()> {
        let at = nodes_for_size(size).ok_or_else(|| io::Error::other("tree size overflow"))?;
        self.0.write_at(at, nodes)
    }
}

impl NodeSource for TreeFile {
    type Error = IndexError;
    fn node(&self, level: u8, index: u64) -> Result<Hash, IndexError> {
        let at = node_position(level, index)
            .ok_or_else(|| IndexError(format!("tree node ({level}, {index}) is out of range")))?;
        self.0.read(at)
    }
}

/// A value stored as one fixed-size record per entry.
pub trait EntryRecord<const N: usize>: Sized {
    fn to_record(&self) -> [u8; N];
    fn from_record(record: &[u8; N]) -> Self;
}

/// Where each entry's frame lies in the log: offset `u64` LE, payload
/// length `u32` LE.
impl EntryRecord<12> for EntryLocation {
    fn to_record(&self) -> [u8; 12] {
        let mut r = [0u8; 12];
        r[..8].copy_from_slice(&self.frame_offset.to_le_bytes());
        r[8..].copy_from_slice(&self.payload_len.to_le_bytes());
        r
    }

    fn from_record(r: &[u8; 12]) -> Self {
        let mut offset = [0u8; 8];
        let mut len = [0u8; 4];
        offset.copy_from_slice(&r[..8]);
        len.copy_from_slice(&r[8..]);
        EntryLocation {
            frame_offset: u64::from_le_bytes(offset),
            payload_len: u32::from_le_bytes(len),
        }
    }
}

/// An entry's event id.
impl EntryRecord<32> for Digest {
    fn to_record(&self) -> [u8; 32] {
        *self.as_bytes()
    }

    fn from_record(r: &[u8; 32]) -> Self {
        Digest::from_bytes(*r)
    }
}

/// One record per entry, entry `i` at record `i`.
#[derive(Debug)]
pub struct EntryFile<T, const N: usize>(RecordFile<N>, std::marker::PhantomData<fn() -> T>);

/// Where each entry's frame lies in the log.
pub type LocationFile = EntryFile<EntryLocation, 12>;

/// The id of each entry's event: the index's table for finding an event
/// (and refusing a replay) without a B-tree insert per entry. `Index`
/// keeps a map from the ids' first 8 bytes in memory and confirms every
/// candidate against this file.
pub type EventIdFile = EntryFile<Digest, 32>;

impl<T: EntryRecord<N>, const N: usize> EntryFile<T, N> {
    pub fn open(path: &Path) -> io::Result<Self> {
        RecordFile::open(path).map(|f| Self(f, std::marker::PhantomData))
    }

    /// Number of entries, from the first, whose records are intact.
    pub fn intact_len(&self) -> io::Result<u64> {
        self.0.valid_prefix()
    }

    pub fn truncate(&self, entries: u64) -> io::Result<()> {
        self.0.truncate(entries)
    }

    /// Writes the records of entries `first..`.
    pub fn append(&self, first: u64, values: &[T]) -> io::Result<()> {
        let records: Vec<[u8; N]> = values.iter().map(T::to_record).collect();
        self.0.write_at(first, &records)
    }

    pub fn get(&self, index: u64) -> Result<T, IndexError> {
        self.0.read(index).map(|r| T::from_record(&r))
    }

    /// Calls `each(index, value)` for the intact records from the first,
    /// up to `limit` entries; answers how many there were.
    pub fn intact_prefix(&self, limit: u64, mut each: impl FnMut(u64, T)) -> io::Result<u64> {
        self.0
            .intact_prefix(limit, |i, r| each(i, T::from_record(r)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::{Frontier, MemoryNodes, leaf_hash};

    #[test]
    fn post_order_positions_match_the_order_of_pushes() {
        let mut frontier = Frontier::new();
        let mut position = 0u64;
        for i in 0..300u64 {
            for (level, index, _) in frontier.push(leaf_hash(&i.to_le_bytes())) {
                assert_eq!(
                    node_position(level, index),
                    Some(position),
                    "node ({level}, {index})"
                );
                position += 1;
            }
            assert_eq!(nodes_for_size(i + 1), Some(position));
        }
    }

    #[test]
    fn tree_file_serves_the_same_nodes_and_detects_damage() {
        let dir = tempfile::tempdir().unwrap();
        let tree = TreeFile::open(&dir.path().join("tree")).unwrap();
        let mut frontier = Frontier::new();
        let mut memory = MemoryNodes::new();
        let mut at_150 = None;
        let mut position = 0u64;
        for i in 0..100u64 {
            let leaf = leaf_hash(&i.to_le_bytes());
            let pushed = frontier.push(leaf);
            for (level, index, _) in &pushed {
                if position == 150 {
                    at_150 = Some((*level, *index));
                }
                position += 1;
            }
            let nodes: Vec<Hash> = pushed.into_iter().map(|(_, _, h)| h).collect();
            tree.append(i, &nodes).unwrap();
            memory.push(leaf);
        }
        assert_eq!(crate::merkle::root(&tree, 100).unwrap(), memory.root());
        assert_eq!(tree.intact_size().unwrap(), 100);
        // Zero the record of node position 150 (a power cut's leftovers).
        tree.0.file.write_all_at(&[0u8; 36], 150 * 36).unwrap();
        let intact = tree.intact_size().unwrap();
        assert!(
            nodes_for_size(intact).unwrap() <= 150 && nodes_for_size(intact + 1).unwrap() > 150
        );
        let (level, index) = at_150.unwrap();
        assert!(
            tree.node(level, index)
                .unwrap_err()
                .to_string()
                .contains("damaged")
        );
        assert_eq!(
            crate::merkle::root(&tree, 100).unwrap(),
            memory.root(),
            "other nodes still serve"
        );
    }
}
