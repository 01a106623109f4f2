//! Tree roots, inclusion proofs and consistency proofs (RFC 9162 section 2.1).
//!
//! Generation follows the recursive definitions of RFC 9162 sections 2.1.3.1
//! and 2.1.4.1, unrolled into loops that walk from the root down to the leaf
//! (or to the old tree's edge). Verification follows the iterative
//! algorithms of sections 2.1.3.2 and 2.1.4.2 step by step.

use super::{Hash, NodeSource, empty_root, node_hash};

/// Failure while *producing* a root or a proof from stored nodes.
#[derive(Debug, thiserror::Error)]
pub enum ProofError<E>
where
    E: std::error::Error + 'static,
{
    /// The requested leaf is not part of the tree of the requested size.
    #[error("leaf index {index} is outside a tree of size {size}")]
    IndexOutOfRange {
        /// The leaf index that was asked for.
        index: u64,
        /// The tree size the proof was requested for.
        size: u64,
    },
    /// The two sizes cannot be used for a consistency proof.
    #[error(
        "a consistency proof needs 0 < first <= second, but first is {first} and second is {second}"
    )]
    BadSizes {
        /// The older tree size.
        first: u64,
        /// The newer tree size.
        second: u64,
    },
    /// The node source could not deliver a stored hash.
    #[error("could not read a stored tree node")]
    Source(#[source] E),
}

/// Why a proof was rejected by [`verify_inclusion`] or [`verify_consistency`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The leaf index is not inside the tree, so no proof can show inclusion.
    #[error("leaf index {index} is outside a tree of size {size}")]
    IndexOutOfRange {
        /// The claimed leaf index.
        index: u64,
        /// The claimed tree size.
        size: u64,
    },
    /// The sizes do not describe an old tree and a newer (or equal) tree.
    #[error(
        "a consistency proof needs 0 < first <= second, but first is {first} and second is {second}"
    )]
    BadSizes {
        /// The claimed older tree size.
        first: u64,
        /// The claimed newer tree size.
        second: u64,
    },
    /// The proof has the wrong number of hashes for the claimed sizes.
    #[error("the proof has {actual} hashes but these tree sizes need exactly {expected}")]
    WrongProofLength {
        /// Number of hashes the sizes require.
        expected: usize,
        /// Number of hashes supplied.
        actual: usize,
    },
    /// A root hash that is not a 32-byte SHA-256 digest.
    #[error("a root hash must be 32 bytes, not {len}")]
    RootLength {
        /// Length of the root supplied.
        len: usize,
    },
    /// The inclusion proof leads to a different root than the one expected.
    #[error("the inclusion proof does not lead to the expected root hash")]
    RootMismatch,
    /// The consistency proof does not reproduce the old tree's root.
    #[error("the consistency proof does not reproduce the first (older) root hash")]
    FirstRootMismatch,
    /// The consistency proof does not reproduce the new tree's root.
    #[error("the consistency proof does not reproduce the second (newer) root hash")]
    SecondRootMismatch,
    /// Two trees of the same size must have the same root, but these do not.
    #[error("the two roots differ although both trees have size {size}")]
    RootsDiffer {
        /// The common tree size.
        size: u64,
    },
}

/// Largest power of two strictly smaller than `n` (the `k` of RFC 9162
/// section 2.1.1). Requires `n >= 2`.
fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

/// MTH(D[start:end]) read from complete subtrees, for `start < end`.
///
/// The range must be "left aligned": `start` is a multiple of the largest
/// power of two not exceeding `end - start`. Every range that occurs in the
/// RFC 9162 recursions has this shape (each right child `D[k:n]` is no bigger
/// than its left sibling `D[0:k]`, whose size `k` it starts at), and for such
/// a range MTH splits exactly along the set bits of `end - start`: one stored
/// complete subtree per bit, folded together from the right. That costs at
/// most 64 reads and never needs the whole range.
fn range_hash<S: NodeSource>(src: &S, start: u64, end: u64) -> Result<Hash, S::Error> {
    debug_assert!(start < end);
    let width = end - start;
    debug_assert!(start.is_multiple_of(1u64 << (63 - width.leading_zeros())));
    // Walk the decomposition from the smallest (rightmost) subtree upwards so
    // the fold matches MTH's right-nested shape without a buffer.
    let mut remaining = width;
    let mut pos = end;
    let mut acc: Option<Hash> = None;
    while remaining != 0 {
        let chunk = remaining & remaining.wrapping_neg();
        let level = chunk.trailing_zeros();
        pos -= chunk;
        // Levels are < 64, so the cast cannot truncate.
        let subtree = src.node(level as u8, pos >> level)?;
        acc = Some(match acc {
            None => subtree,
            Some(right) => node_hash(&subtree, &right),
        });
        remaining -= chunk;
    }
    Ok(acc.expect("a non-empty range has at least one subtree"))
}

/// Merkle Tree Hash of the first `size` leaves (RFC 9162 section 2.1.1).
///
/// `size == 0` gives [`empty_root`]. Reads one stored node per set bit of
/// `size`, so at most 64.
pub fn root<S: NodeSource>(src: &S, size: u64) -> Result<Hash, ProofError<S::Error>> {
    if size == 0 {
        return Ok(empty_root());
    }
    range_hash(src, 0, size).map_err(ProofError::Source)
}

/// Inclusion proof `PATH(index, D[size])` (RFC 9162 section 2.1.3.1).
///
/// `size` may be any size the tree has had, not only the current one; the
/// caller must make sure the source holds at least `size` leaves. The proof
/// lists sibling hashes from the leaf upwards, as the RFC's recursion emits
/// them. Only one sibling per level is read, plus at most `O(log n)` reads for
/// the single incomplete sibling on the tree's right edge.
pub fn inclusion_proof<S: NodeSource>(
    src: &S,
    index: u64,
    size: u64,
) -> Result<Vec<Hash>, ProofError<S::Error>> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    // Descend from the root: at each step the current range D[lo:hi] splits
    // at lo + k; the sibling of the half containing `index` is emitted. The
    // RFC appends siblings after recursing, so the top-down order is reversed
    // at the end.
    let (mut lo, mut hi) = (0u64, size);
    let mut path = Vec::new();
    while hi - lo > 1 {
        let mid = lo + split_point(hi - lo);
        if index < mid {
            path.push(range_hash(src, mid, hi).map_err(ProofError::Source)?);
            hi = mid;
        } else {
            path.push(range_hash(src, lo, mid).map_err(ProofError::Source)?);
            lo = mid;
        }
    }
    path.reverse();
    Ok(path)
}

/// Consistency proof `PROOF(first, D[second])` (RFC 9162 section 2.1.4.1).
///
/// Requires `0 < first <= second`; equal sizes give an empty proof, as the
/// RFC's `SUBPROOF(m, D[m], true) = {}` does. The caller must make sure the
/// source holds at least `second` leaves.
pub fn consistency_proof<S: NodeSource>(
    src: &S,
    first: u64,
    second: u64,
) -> Result<Vec<Hash>, ProofError<S::Error>> {
    if first == 0 || first > second {
        return Err(ProofError::BadSizes { first, second });
    }
    // SUBPROOF(m, D[lo:hi], b), unrolled: `whole_old_tree` is the RFC's flag
    // `b`, true while D[lo:hi] starts at leaf 0 (the verifier already knows
    // MTH of the old tree, so that subtree is never sent).
    let (mut lo, mut hi) = (0u64, second);
    let mut whole_old_tree = true;
    let mut path = Vec::new();
    // The loop ends when the old tree's right edge coincides with the
    // current range's end (m == n in the RFC); this must happen by the time
    // the range is a single leaf because lo < first <= hi throughout.
    while first != hi {
        let mid = lo + split_point(hi - lo);
        if first <= mid {
            path.push(range_hash(src, mid, hi).map_err(ProofError::Source)?);
            hi = mid;
        } else {
            path.push(range_hash(src, lo, mid).map_err(ProofError::Source)?);
            lo = mid;
            whole_old_tree = false;
        }
    }
    if !whole_old_tree {
        path.push(range_hash(src, lo, hi).map_err(ProofError::Source)?);
    }
    path.reverse();
    Ok(path)
}

/// Number of proof hashes consumed by the verification loops of RFC 9162
/// sections 2.1.3.2 / 2.1.4.2 before `sn` reaches 0, starting from `fn_`
/// and `sn`. It mirrors the loops' shifting exactly, so checking the length
/// up front rejects precisely the proofs the loops would reject for running
/// out of hashes or having hashes left over, just with a clearer error.
fn path_len(mut fn_: u64, mut sn: u64) -> usize {
    let mut count = 0;
    while sn != 0 {
        count += 1;
        if fn_ & 1 == 1 || fn_ == sn {
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    count
}

/// Root implied by an inclusion proof: steps 1 to 4 of RFC 9162
/// section 2.1.3.2, with the `sn == 0` half of step 5.
///
/// [`verify_inclusion`] compares the result with a trusted root; this form is
/// for callers that want to compare against several candidate roots.
pub fn root_from_inclusion(
    leaf_hash: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
) -> Result<Hash, VerifyError> {
    // Step 1.
    if index >= size {
        return Err(VerifyError::IndexOutOfRange { index, size });
    }
    let expected = path_len(index, size - 1);
    if proof.len() != expected {
        return Err(VerifyError::WrongProofLength {
            expected,
            actual: proof.len(),
        });
    }
    // Steps 2 and 3.
    let (mut fn_, mut sn) = (index, size - 1);
    let mut r = *leaf_hash;
    // Step 4.
    for p in proof {
        if sn == 0 {
            return Err(VerifyError::WrongProofLength {
                expected,
                actual: proof.len(),
            });
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            // Skip the levels where this node is the right edge's only child
            // and therefore has no sibling in the proof.
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    // Step 5, first half: every level up to the root must be accounted for.
    if sn != 0 {
        return Err(VerifyError::WrongProofLength {
            expected,
            actual: proof.len(),
        });
    }
    Ok(r)
}

/// Verify an inclusion proof exactly as RFC 9162 section 2.1.3.2 describes:
/// `leaf_hash` sits at `index` in the tree of `size` leaves whose root is
/// `root`.
pub fn verify_inclusion(
    leaf_hash: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), VerifyError> {
    let computed = root_from_inclusion(leaf_hash, index, size, proof)?;
    // Step 5, second half.
    if &computed != root {
        return Err(VerifyError::RootMismatch);
    }
    Ok(())
}

/// Verify a consistency proof as RFC 9162 section 2.1.4.2 describes: the
/// tree of `first` leaves with root `first_root` is a prefix of the tree of
/// `second` leaves with root `second_root`.
///
/// The RFC algorithm assumes `0 < first < second`; the edges are fixed here
/// as follows. `first == 0` is rejected, because the empty tree is a prefix of
/// everything and such a "proof" proves nothing. `first > second` is
/// rejected. `first == second` needs an empty proof and identical roots.
pub fn verify_consistency(
    first: u64,
    second: u64,
    first_root: &[u8],
    second_root: &[u8],
    proof: &[Hash],
) -> Result<(), VerifyError> {
    if first == 0 || first > second {
        return Err(VerifyError::BadSizes { first, second });
    }
    if first == second {
        if !proof.is_empty() {
            return Err(VerifyError::WrongProofLength {
                expected: 0,
                actual: proof.len(),
            });
        }
        if first_root != second_root {
            return Err(VerifyError::RootsDiffer { size: first });
        }
        return Ok(());
    }
    // Past the equal-size case the roots enter hash computations, so they
    // must be SHA-256 digests. (With equal sizes RFC 9162 only compares
    // them, as opaque values, which is what the reference vectors expect.)
    let first_root: &Hash = first_root.try_into().map_err(|_| VerifyError::RootLength {
        len: first_root.len(),
    })?;
    let second_root: &Hash = second_root
        .try_into()
        .map_err(|_| VerifyError::RootLength {
            len: second_root.len(),
        })?;

    // Step 3 comes before steps 1 and 2 here only so the length can be
    // checked up front; it does not depend on the proof.
    let (mut fn_, mut sn) = (first - 1, second - 1);
    // Step 4: drop the levels where the old tree's last node is a right
    // child; the old tree's root hash then covers them.
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    // Step 2: when `first` is a power of two, the old root is itself a node
    // of the new tree and is not sent, so the verifier supplies it.
    let prepended = first.is_power_of_two();
    let expected = path_len(fn_, sn) + 1 - usize::from(prepended);
    // Step 1 (an empty proof fails) is covered: `expected` is at least 1 for
    // first < second.
    if proof.len() != expected {
        return Err(VerifyError::WrongProofLength {
            expected,
            actual: proof.len(),
        });
    }
    let (seed, rest) = if prepended {
        (*first_root, proof)
    } else {
        (proof[0], &proof[1..])
    };
    // Step 5.
    let (mut fr, mut sr) = (seed, seed);
    // Step 6.
    for c in rest {
        if sn == 0 {
            return Err(VerifyError::WrongProofLength {
                expected,
                actual: proof.len(),
            });
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    // Step 7.
    if sn != 0 {
        return Err(VerifyError::WrongProofLength {
            expected,
            actual: proof.len(),
        });
    }
    if &fr != first_root {
        return Err(VerifyError::FirstRootMismatch);
    }
    if &sr != second_root {
        return Err(VerifyError::SecondRootMismatch);
    }
    Ok(())
}
