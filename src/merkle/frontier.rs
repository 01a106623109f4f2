//! Appending leaves: the compact right edge of a growing tree, and a simple
//! in-memory node store built on it.

use super::{Hash, NodeSource, empty_root, node_hash};

/// The compact right edge ("frontier") of a growing Merkle tree.
///
/// A tree of `size` leaves is, by the definition of MTH in RFC 9162
/// section 2.1.1, the complete subtrees given by the binary decomposition of
/// `size` (largest first) folded together from the right. The frontier keeps
/// exactly those subtree roots, at most 64 hashes, which is all that is needed
/// to append further leaves and to compute the current root.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    /// Roots of the complete subtrees of the decomposition of `size`,
    /// leftmost (largest) first. Entry levels follow the set bits of `size`.
    subtrees: Vec<Hash>,
}

impl Frontier {
    /// The frontier of the empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of leaves appended so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Merkle Tree Hash of the current tree (RFC 9162 section 2.1.1);
    /// [`empty_root`] when no leaf has been appended.
    pub fn root(&self) -> Hash {
        // Fold from the right, mirroring MTH's right-nested recursion over
        // the incomplete right edge.
        let mut iter = self.subtrees.iter().rev();
        let Some(last) = iter.next() else {
            return empty_root();
        };
        iter.fold(*last, |right, left| node_hash(left, &right))
    }

    /// Append a leaf hash and return every complete subtree node that this
    /// leaf completes, as `(level, index, hash)`, smallest first.
    ///
    /// The first entry is always the leaf itself at level 0. The caller
    /// stores these so a [`NodeSource`] can later serve them: together, the
    /// results of all pushes are exactly the nodes of every complete aligned
    /// subtree of the tree.
    ///
    /// # Panics
    ///
    /// If the tree already holds `u64::MAX` leaves.
    pub fn push(&mut self, leaf: Hash) -> Vec<(u8, u64, Hash)> {
        let index = self.size;
        let new_size = index
            .checked_add(1)
            .expect("a Merkle tree cannot hold more than u64::MAX leaves");
        // Each trailing one bit of the old size is a complete subtree of the
        // same level as the node being carried up, so they merge like a
        // binary counter's carry chain.
        let merges = index.trailing_ones();
        let mut completed = Vec::with_capacity(merges as usize + 1);
        let mut carried = leaf;
        completed.push((0, index, carried));
        for level in 1..=merges {
            let left = self
                .subtrees
                .pop()
                .expect("the frontier holds one subtree per set bit of its size");
            carried = node_hash(&left, &carried);
            // `level` is at most 64, so the cast cannot truncate.
            completed.push((level as u8, index >> level, carried));
        }
        self.subtrees.push(carried);
        self.size = new_size;
        completed
    }

    /// Rebuild the frontier of a tree of `size` leaves from stored nodes.
    ///
    /// Reads one node per set bit of `size` (at most 64), the complete
    /// subtrees of its binary decomposition, and nothing else.
    pub fn restore<S: NodeSource>(src: &S, size: u64) -> Result<Self, S::Error> {
        let mut subtrees = Vec::with_capacity(size.count_ones() as usize);
        let mut start = 0u64;
        for level in (0..64u32).rev() {
            let width = 1u64 << level;
            if size & width != 0 {
                // `level` is below 64, so the cast cannot truncate.
                subtrees.push(src.node(level as u8, start >> level)?);
                start += width;
            }
        }
        Ok(Self { size, subtrees })
    }

    /// The stored subtrees making up the frontier, as `(level, index, hash)`,
    /// leftmost (largest) first.
    pub fn subtrees(&self) -> Vec<(u8, u64, Hash)> {
        let mut out = Vec::with_capacity(self.subtrees.len());
        let mut hashes = self.subtrees.iter();
        let mut start = 0u64;
        for level in (0..64u32).rev() {
            let width = 1u64 << level;
            if self.size & width != 0 {
                let hash = hashes.next().expect("one subtree per set bit");
                out.push((level as u8, start >> level, *hash));
                start += width;
            }
        }
        out
    }
}

/// A [`NodeSource`] lookup for a node that is not (yet) stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no stored hash for the subtree at level {level}, index {index}")]
pub struct MissingNode {
    /// Level of the requested subtree.
    pub level: u8,
    /// Index of the requested subtree within its level.
    pub index: u64,
}

/// Every complete subtree hash of a tree, held in memory, one `Vec` per
/// level.
///
/// Built by pushing leaf hashes through a [`Frontier`]; meant for tests and
/// for offline verifiers that rebuild a tree from an exported ledger. It holds
/// about `2n` hashes for `n` leaves.
#[derive(Clone, Debug, Default)]
pub struct MemoryNodes {
    levels: Vec<Vec<Hash>>,
    frontier: Frontier,
}

impl MemoryNodes {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// A tree holding the given leaf hashes in order.
    pub fn from_leaves<I: IntoIterator<Item = Hash>>(leaves: I) -> Self {
        let mut nodes = Self::new();
        for leaf in leaves {
            nodes.push(leaf);
        }
        nodes
    }

    /// Append a leaf hash, storing every node it completes.
    pub fn push(&mut self, leaf: Hash) {
        for (level, index, hash) in self.frontier.push(leaf) {
            let level = usize::from(level);
            if self.levels.len() <= level {
                self.levels.resize_with(level + 1, Vec::new);
            }
            debug_assert_eq!(self.levels[level].len() as u64, index);
            self.levels[level].push(hash);
        }
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.frontier.size()
    }

    /// Root of the whole tree.
    pub fn root(&self) -> Hash {
        self.frontier.root()
    }

    /// The frontier of the whole tree.
    pub fn frontier(&self) -> &Frontier {
        &self.frontier
    }
}

impl NodeSource for MemoryNodes {
    type Error = MissingNode;

    fn node(&self, level: u8, index: u64) -> Result<Hash, MissingNode> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.levels.get(usize::from(level))?.get(i))
            .copied()
            .ok_or(MissingNode { level, index })
    }
}
