//! Merkle tree math from RFC 9162 section 2.1, C2SP checkpoints and
//! witness cosignatures.
//!
//! This module is pure computation: it never touches files or the network.
//! Stored hashes are read through the [`NodeSource`] trait so that the same
//! code serves the on-disk ledger, the in-memory [`MemoryNodes`] used by
//! tests and offline verifiers, and anything else that can look up a hash.
//!
//! Vocabulary used throughout:
//!
//! * A *leaf hash* is `SHA-256(0x00 || entry)` ([`leaf_hash`]).
//! * An *interior hash* is `SHA-256(0x01 || left || right)` ([`node_hash`]).
//! * `node(level, index)` is the Merkle Tree Hash (MTH) of the complete,
//!   aligned subtree covering leaves `[index << level, (index + 1) << level)`.
//!   Level 0 holds the leaf hashes themselves.
//!
//! Every tree of size `n` is the sequence of complete subtrees given by the
//! binary decomposition of `n` (largest first), folded together from the
//! right. All algorithms here exploit that shape so they read only
//! `O(log n)` stored nodes.

pub mod checkpoint;
pub mod cosignature;
mod frontier;
mod proof;

pub use frontier::{Frontier, MemoryNodes, MissingNode};
pub use proof::{
    ProofError, VerifyError, consistency_proof, inclusion_proof, root, root_from_inclusion,
    verify_consistency, verify_inclusion,
};

use sha2::{Digest, Sha256};

/// A SHA-256 digest: a leaf hash, an interior node hash or a tree root.
pub type Hash = [u8; 32];

/// Domain-separation prefix for leaf hashes (RFC 9162 section 2.1.1).
const LEAF_PREFIX: u8 = 0x00;
/// Domain-separation prefix for interior node hashes (RFC 9162 section 2.1.1).
const NODE_PREFIX: u8 = 0x01;

/// Hash of a single entry: `SHA-256(0x00 || data)` (RFC 9162 section 2.1.1).
///
/// The `0x00` prefix keeps leaf hashes and interior hashes in different
/// domains, so no entry can be passed off as an interior node (a second
/// preimage attack on the tree).
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([LEAF_PREFIX]);
    hasher.update(data);
    hasher.finalize().into()
}

/// Hash of an interior node: `SHA-256(0x01 || left || right)`
/// (RFC 9162 section 2.1.1).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([NODE_PREFIX]);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// Root of the empty tree: `MTH({}) = SHA-256()`, the hash of the empty
/// string (RFC 9162 section 2.1.1).
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// Read access to the hashes of complete, aligned subtrees.
///
/// `node(level, index)` must return the Merkle Tree Hash of the leaves
/// `[index << level, (index + 1) << level)`; level 0 is the leaf hashes.
/// Callers in this module only ask for subtrees lying entirely inside the
/// tree size they were given, so an implementation never has to compute a
/// hash over an incomplete right edge.
pub trait NodeSource {
    /// Why a lookup failed (I/O trouble, a missing node, ...).
    type Error: std::error::Error + Send + Sync + 'static;

    /// Hash of the complete subtree at `level` and `index`.
    fn node(&self, level: u8, index: u64) -> Result<Hash, Self::Error>;
}

impl<S: NodeSource + ?Sized> NodeSource for &S {
    type Error = S::Error;

    fn node(&self, level: u8, index: u64) -> Result<Hash, Self::Error> {
        (**self).node(level, index)
    }
}

#[cfg(test)]
mod tests;
