//! Tests of the tree math against a deliberately naive transcription of the
//! RFC 9162 recursions, which work on the full list of entries.

use std::cell::Cell;

use proptest::prelude::*;

use super::*;

fn entry(i: u64) -> Vec<u8> {
    format!("oretrail test entry {i}").into_bytes()
}

fn entries(n: u64) -> Vec<Vec<u8>> {
    (0..n).map(entry).collect()
}

fn tree(n: u64) -> MemoryNodes {
    MemoryNodes::from_leaves((0..n).map(|i| leaf_hash(&entry(i))))
}

/// Largest power of two strictly below `n`, found by doubling (independent
/// of the bit tricks in the implementation).
fn naive_k(n: usize) -> usize {
    assert!(n >= 2);
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

/// RFC 9162 section 2.1.1, MTH(D[n]).
fn naive_mth(d: &[Vec<u8>]) -> Hash {
    match d.len() {
        0 => empty_root(),
        1 => leaf_hash(&d[0]),
        n => {
            let k = naive_k(n);
            node_hash(&naive_mth(&d[..k]), &naive_mth(&d[k..]))
        }
    }
}

/// RFC 9162 section 2.1.3.1, PATH(m, D[n]).
fn naive_path(m: usize, d: &[Vec<u8>]) -> Vec<Hash> {
    let n = d.len();
    if n == 1 {
        assert_eq!(m, 0);
        return Vec::new();
    }
    let k = naive_k(n);
    if m < k {
        let mut p = naive_path(m, &d[..k]);
        p.push(naive_mth(&d[k..]));
        p
    } else {
        let mut p = naive_path(m - k, &d[k..]);
        p.push(naive_mth(&d[..k]));
        p
    }
}

/// RFC 9162 section 2.1.4.1, SUBPROOF(m, D[n], b).
fn naive_subproof(m: usize, d: &[Vec<u8>], b: bool) -> Vec<Hash> {
    let n = d.len();
    if m == n {
        return if b { Vec::new() } else { vec![naive_mth(d)] };
    }
    let k = naive_k(n);
    if m <= k {
        let mut p = naive_subproof(m, &d[..k], b);
        p.push(naive_mth(&d[k..]));
        p
    } else {
        let mut p = naive_subproof(m - k, &d[k..], false);
        p.push(naive_mth(&d[..k]));
        p
    }
}

/// A node source that counts reads, to check the O(log n) bound.
struct Counting<'a> {
    inner: &'a MemoryNodes,
    reads: Cell<usize>,
}

impl<'a> Counting<'a> {
    fn new(inner: &'a MemoryNodes) -> Self {
        Self {
            inner,
            reads: Cell::new(0),
        }
    }

    fn take(&self) -> usize {
        self.reads.replace(0)
    }
}

impl NodeSource for Counting<'_> {
    type Error = MissingNode;

    fn node(&self, level: u8, index: u64) -> Result<Hash, MissingNode> {
        self.reads.set(self.reads.get() + 1);
        self.inner.node(level, index)
    }
}

fn ceil_log2(n: u64) -> usize {
    (64 - (n - 1).leading_zeros()) as usize
}

#[test]
fn hashes_match_rfc_definitions() {
    // SHA-256 of the empty string, a well-known constant.
    assert_eq!(
        hex::encode(empty_root()),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    // SHA-256(0x00): the leaf hash of the empty entry.
    assert_eq!(
        hex::encode(leaf_hash(b"")),
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    );
    let (a, b) = (leaf_hash(b"a"), leaf_hash(b"b"));
    let mut pre = vec![1u8];
    pre.extend_from_slice(&a);
    pre.extend_from_slice(&b);
    use sha2::Digest as _;
    let want: Hash = sha2::Sha256::digest(&pre).into();
    assert_eq!(node_hash(&a, &b), want);
}

#[test]
fn roots_match_naive_for_every_prefix() {
    let all = entries(130);
    let nodes = tree(130);
    let counting = Counting::new(&nodes);
    for size in 0..=130u64 {
        let want = naive_mth(&all[..size as usize]);
        assert_eq!(root(&counting, size).unwrap(), want, "size {size}");
        assert!(counting.take() <= size.count_ones() as usize);
        assert_eq!(tree(size).root(), want, "frontier root at size {size}");
    }
}

#[test]
fn inclusion_proofs_match_naive_and_verify() {
    let all = entries(70);
    let nodes = tree(70);
    let counting = Counting::new(&nodes);
    let mut checked = 0;
    for size in 1..=70u64 {
        let d = &all[..size as usize];
        let tree_root = root(&nodes, size).unwrap();
        for index in 0..size {
            let proof = inclusion_proof(&counting, index, size).unwrap();
            let reads = counting.take();
            assert!(
                reads <= 2 * ceil_log2(size) + 1,
                "{reads} reads for index {index} size {size}"
            );
            assert_eq!(proof, naive_path(index as usize, d), "{index}/{size}");
            let leaf = leaf_hash(&all[index as usize]);
            verify_inclusion(&leaf, index, size, &proof, &tree_root).unwrap();
            assert_eq!(
                root_from_inclusion(&leaf, index, size, &proof).unwrap(),
                tree_root
            );
            // The proof must not work for another leaf or position.
            let other = leaf_hash(b"not in the tree");
            assert_eq!(
                verify_inclusion(&other, index, size, &proof, &tree_root),
                Err(VerifyError::RootMismatch)
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 70 * 71 / 2);
}

#[test]
fn consistency_proofs_match_naive_and_verify() {
    let all = entries(40);
    let nodes = tree(40);
    let counting = Counting::new(&nodes);
    let mut checked = 0;
    for second in 1..=40u64 {
        let second_root = root(&nodes, second).unwrap();
        for first in 1..=second {
            let first_root = root(&nodes, first).unwrap();
            let proof = consistency_proof(&counting, first, second).unwrap();
            let reads = counting.take();
            assert!(
                reads <= 2 * ceil_log2(second) + 2,
                "{reads} reads for {first} -> {second}"
            );
            assert_eq!(
                proof,
                naive_subproof(first as usize, &all[..second as usize], true),
                "{first} -> {second}"
            );
            verify_consistency(first, second, &first_root, &second_root, &proof).unwrap();
            if first < second {
                // Swapping the roots must fail: they differ for different
                // sizes of this tree.
                assert!(
                    verify_consistency(first, second, &second_root, &first_root, &proof).is_err()
                );
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 40 * 41 / 2);
}

#[test]
fn proofs_read_logarithmically_many_nodes_in_a_big_tree() {
    let size = 100_003u64;
    let nodes = tree(size);
    let counting = Counting::new(&nodes);
    let log = ceil_log2(size);
    for index in [0, 1, 65_535, 65_536, 99_999, size - 1] {
        let proof = inclusion_proof(&counting, index, size).unwrap();
        assert!(counting.take() <= 2 * log + 1);
        verify_inclusion(
            &leaf_hash(&entry(index)),
            index,
            size,
            &proof,
            &nodes.root(),
        )
        .unwrap();
    }
    for first in [1, 7, 65_536, 70_001, size - 1] {
        let proof = consistency_proof(&counting, first, size).unwrap();
        assert!(counting.take() <= 2 * log + 2);
        let first_root = root(&nodes, first).unwrap();
        verify_consistency(first, size, &first_root, &nodes.root(), &proof).unwrap();
    }
    root(&counting, size).unwrap();
    assert!(counting.take() <= 64);
}

#[test]
fn generation_errors() {
    let nodes = tree(10);
    assert!(matches!(
        inclusion_proof(&nodes, 10, 10),
        Err(ProofError::IndexOutOfRange {
            index: 10,
            size: 10
        })
    ));
    assert!(matches!(
        inclusion_proof(&nodes, 0, 0),
        Err(ProofError::IndexOutOfRange { .. })
    ));
    assert!(matches!(
        consistency_proof(&nodes, 0, 5),
        Err(ProofError::BadSizes {
            first: 0,
            second: 5
        })
    ));
    assert!(matches!(
        consistency_proof(&nodes, 6, 5),
        Err(ProofError::BadSizes { .. })
    ));
    assert_eq!(consistency_proof(&nodes, 7, 7).unwrap(), Vec::<Hash>::new());
    // Asking beyond what the source holds surfaces the source's error.
    assert!(matches!(
        root(&nodes, 11),
        Err(ProofError::Source(MissingNode {
            level: 0,
            index: 10
        }))
    ));
    assert!(matches!(
        inclusion_proof(&nodes, 3, 12),
        Err(ProofError::Source(_))
    ));
}

#[test]
fn verification_errors_are_specific() {
    let nodes = tree(8);
    let r = nodes.root();
    let leaf = leaf_hash(&entry(3));
    let proof = inclusion_proof(&nodes, 3, 8).unwrap();
    assert_eq!(
        verify_inclusion(&leaf, 8, 8, &proof, &r),
        Err(VerifyError::IndexOutOfRange { index: 8, size: 8 })
    );
    assert_eq!(
        verify_inclusion(&leaf, 3, 8, &proof[..2], &r),
        Err(VerifyError::WrongProofLength {
            expected: 3,
            actual: 2
        })
    );
    let mut long = proof.clone();
    long.push(r);
    assert_eq!(
        verify_inclusion(&leaf, 3, 8, &long, &r),
        Err(VerifyError::WrongProofLength {
            expected: 3,
            actual: 4
        })
    );
    assert_eq!(
        verify_inclusion(&leaf, 3, 8, &proof, &empty_root()),
        Err(VerifyError::RootMismatch)
    );

    let r5 = root(&nodes, 5).unwrap();
    let cproof = consistency_proof(&nodes, 5, 8).unwrap();
    assert_eq!(
        verify_consistency(0, 8, &r5, &r, &cproof),
        Err(VerifyError::BadSizes {
            first: 0,
            second: 8
        })
    );
    assert_eq!(
        verify_consistency(9, 8, &r5, &r, &cproof),
        Err(VerifyError::BadSizes {
            first: 9,
            second: 8
        })
    );
    assert_eq!(
        verify_consistency(5, 8, &r5, &r, &[]),
        Err(VerifyError::WrongProofLength {
            expected: cproof.len(),
            actual: 0
        })
    );
    assert_eq!(
        verify_consistency(5, 8, &r, &r, &cproof),
        Err(VerifyError::FirstRootMismatch)
    );
    assert_eq!(
        verify_consistency(5, 8, &r5, &r5, &cproof),
        Err(VerifyError::SecondRootMismatch)
    );
    assert_eq!(verify_consistency(8, 8, &r, &r, &[]), Ok(()));
    assert_eq!(
        verify_consistency(8, 8, &r, &r5, &[]),
        Err(VerifyError::RootsDiffer { size: 8 })
    );
    assert_eq!(
        verify_consistency(8, 8, &r, &r, &[r]),
        Err(VerifyError::WrongProofLength {
            expected: 0,
            actual: 1
        })
    );
}

#[test]
fn frontier_push_reports_every_completed_node() {
    let mut f = Frontier::new();
    assert_eq!(f.size(), 0);
    assert_eq!(f.root(), empty_root());
    let leaves: Vec<Hash> = (0..4).map(|i| leaf_hash(&entry(i))).collect();
    assert_eq!(f.push(leaves[0]), vec![(0, 0, leaves[0])]);
    let n01 = node_hash(&leaves[0], &leaves[1]);
    assert_eq!(f.push(leaves[1]), vec![(0, 1, leaves[1]), (1, 0, n01)]);
    assert_eq!(f.push(leaves[2]), vec![(0, 2, leaves[2])]);
    let n23 = node_hash(&leaves[2], &leaves[3]);
    let n0123 = node_hash(&n01, &n23);
    assert_eq!(
        f.push(leaves[3]),
        vec![(0, 3, leaves[3]), (1, 1, n23), (2, 0, n0123)]
    );
    assert_eq!(f.size(), 4);
    assert_eq!(f.root(), n0123);
    assert_eq!(f.subtrees(), vec![(2, 0, n0123)]);
}

#[test]
fn frontier_restore_matches_and_continues_identically() {
    const TOTAL: u64 = 100;
    let leaves: Vec<Hash> = (0..TOTAL).map(|i| leaf_hash(&entry(i))).collect();
    let nodes = MemoryNodes::from_leaves(leaves.iter().copied());
    let mut reference = Frontier::new();
    for size in 0..=70u64 {
        let counting = Counting::new(&nodes);
        let mut restored = Frontier::restore(&counting, size).unwrap();
        assert_eq!(counting.take(), size.count_ones() as usize);
        assert_eq!(restored, reference, "size {size}");
        assert_eq!(restored.root(), root(&nodes, size).unwrap());
        // Both must keep producing the same nodes and roots.
        let mut original = reference.clone();
        for leaf in &leaves[size as usize..] {
            assert_eq!(restored.push(*leaf), original.push(*leaf), "size {size}");
            assert_eq!(restored.root(), original.root());
        }
        assert_eq!(restored.root(), nodes.root());
        reference.push(leaves[size as usize]);
    }
}

#[test]
fn memory_nodes_hold_every_complete_subtree() {
    let nodes = tree(13);
    for level in 0..4u8 {
        let count = 13u64 >> level;
        for index in 0..count {
            let lo = (index << level) as usize;
            let hi = ((index + 1) << level) as usize;
            let want = naive_mth(&entries(13)[lo..hi]);
            assert_eq!(nodes.node(level, index).unwrap(), want);
        }
        assert_eq!(
            nodes.node(level, count),
            Err(MissingNode {
                level,
                index: count
            })
        );
    }
}

fn flip(hash: &mut Hash, bit: usize) {
    hash[bit / 8] ^= 1 << (bit % 8);
}

proptest! {
    #[test]
    fn flipped_bit_breaks_inclusion_proof(
        (size, index) in (2u64..=300).prop_flat_map(|s| (Just(s), 0..s)),
        element in any::<prop::sample::Index>(),
        bit in 0usize..256,
    ) {
        let nodes = tree(size);
        let mut proof = inclusion_proof(&nodes, index, size).unwrap();
        let leaf = leaf_hash(&entry(index));
        prop_assert!(verify_inclusion(&leaf, index, size, &proof, &nodes.root()).is_ok());
        let i = element.index(proof.len());
        flip(&mut proof[i], bit);
        prop_assert_eq!(
            verify_inclusion(&leaf, index, size, &proof, &nodes.root()),
            Err(VerifyError::RootMismatch)
        );
    }

    #[test]
    fn flipped_bit_breaks_consistency_proof(
        (second, first) in (2u64..=300).prop_flat_map(|s| (Just(s), 1..s)),
        element in any::<prop::sample::Index>(),
        bit in 0usize..256,
    ) {
        let nodes = tree(second);
        let first_root = root(&nodes, first).unwrap();
        let mut proof = consistency_proof(&nodes, first, second).unwrap();
        prop_assert!(
            verify_consistency(first, second, &first_root, &nodes.root(), &proof).is_ok()
        );
        let i = element.index(proof.len());
        flip(&mut proof[i], bit);
        prop_assert!(
            verify_consistency(first, second, &first_root, &nodes.root(), &proof).is_err()
        );
    }
}
