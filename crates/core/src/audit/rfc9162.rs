//! Merkle tree hashing, inclusion and consistency proofs as in RFC 9162 §2.1
//! (the same hashing as RFC 6962 §2.1).
//!
//! This module owns the arithmetic of the audit log's tree: the leaf and node
//! hashes (§2.1.1), the Merkle Tree Hash of any prefix of the log, inclusion
//! proofs (§2.1.3) and consistency proofs (§2.1.4), both their generation and
//! their verification. It never does I/O, never reads the clock and never
//! decides what an entry contains: callers hand it entry bytes or leaf
//! hashes. The verification functions take only hashes and sizes, so that an
//! auditor holding a proof and two signed roots can check it without a copy
//! of the tree.
//!
//! Over 600 lines only with its tests (the code is about 520): the tests
//! check every proof against the RFC's definitions and stay beside it.

use ring::digest;

/// Length in bytes of every hash in the tree (SHA-256).
pub const HASH_LEN: usize = 32;

/// A SHA-256 value: a leaf hash, an interior node hash or a root.
pub type Hash = [u8; HASH_LEN];

/// Domain separation prefix of a leaf hash (RFC 9162 §2.1.1).
const LEAF_PREFIX: u8 = 0x00;
/// Domain separation prefix of an interior node hash (RFC 9162 §2.1.1).
const NODE_PREFIX: u8 = 0x01;

/// Why a proof was not produced or did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProofError {
    /// The caller asked about a leaf that is not inside the tree size given.
    #[error("leaf index {index} is not below tree size {size}")]
    IndexOutOfRange {
        /// The leaf index asked for.
        index: u64,
        /// The tree size it was asked against.
        size: u64,
    },
    /// The caller asked about a tree larger than the one held, or an older
    /// size larger than the newer one.
    #[error("tree size {size} is out of range (at most {limit})")]
    SizeOutOfRange {
        /// The size asked for.
        size: u64,
        /// The largest size allowed here.
        limit: u64,
    },
    /// The proof has the wrong number of hashes for the sizes claimed: the
    /// prover's fault or tampering.
    #[error("the proof has the wrong number of hashes for these tree sizes")]
    WrongProofLength,
    /// The hashes do not recompute the expected root: the prover's fault or
    /// tampering with the proof, the leaf or the root.
    #[error("the proof does not lead to the expected root hash")]
    RootMismatch,
    /// Two trees of the same size were given different roots: the log forked.
    #[error("two different root hashes for the same tree size {size}")]
    DifferentRootsSameSize {
        /// The size both roots claim.
        size: u64,
    },
}

/// SHA-256 of the empty string: the Merkle Tree Hash of the empty tree.
pub fn empty_root() -> Hash {
    sha256(&[&[]])
}

/// The leaf hash of an entry: SHA-256(0x00 || entry).
pub fn leaf_hash(entry: &[u8]) -> Hash {
    sha256(&[&[LEAF_PREFIX], entry])
}

/// The hash of an interior node: SHA-256(0x01 || left || right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    sha256(&[&[NODE_PREFIX], left, right])
}

fn sha256(parts: &[&[u8]]) -> Hash {
    let mut ctx = digest::Context::new(&digest::SHA256);
    for part in parts {
        ctx.update(part);
    }
    let mut out = [0u8; HASH_LEN];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// The Merkle Tree Hash of a list of leaf hashes (RFC 9162 §2.1.1), computed
/// in one pass with a right-edge stack. For the empty list this is
/// [`empty_root`].
pub fn root_of_leaf_hashes(leaf_hashes: &[Hash]) -> Hash {
    let mut edge = RightEdge::new();
    for hash in leaf_hashes {
        edge.push(*hash);
    }
    edge.root()
}

/// The largest power of two strictly smaller than `n` (the split point `k`
/// of RFC 9162 §2.1.1). `n` must be at least 2.
fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1u64 << (63 - (n - 1).leading_zeros())
}

/// The right edge of a growing tree: the roots of its perfect subtrees from
/// left to right (a compact range starting at 0). It takes O(log n) memory,
/// appends in O(1) amortised time and gives the root in O(log n), which is
/// what an auditor needs to recompute the roots of an exported log without
/// keeping every hash.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RightEdge {
    size: u64,
    /// Roots of the perfect subtrees, largest (leftmost) first; their sizes
    /// are the set bits of `size`, from high to low.
    nodes: Vec<Hash>,
}

impl RightEdge {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of leaves appended.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends one leaf hash.
    pub fn push(&mut self, leaf_hash: Hash) {
        let mut hash = leaf_hash;
        // Each trailing one bit of the old size is a perfect subtree of the
        // same height as the one being carried: merge them like a binary add.
        let mut carry = self.size;
        while carry & 1 == 1 {
            match self.nodes.pop() {
                Some(left) => hash = node_hash(&left, &hash),
                None => unreachable!("bug: the right edge has fewer nodes than set bits"),
            }
            carry >>= 1;
        }
        self.nodes.push(hash);
        self.size += 1;
    }

    /// The Merkle Tree Hash of the leaves appended so far.
    pub fn root(&self) -> Hash {
        let mut iter = self.nodes.iter().rev();
        let Some(last) = iter.next() else {
            return empty_root();
        };
        iter.fold(*last, |acc, left| node_hash(left, &acc))
    }
}

/// An append-only Merkle tree that keeps every perfect subtree hash, so that
/// it can answer roots at any earlier size and produce inclusion and
/// consistency proofs in O(log n).
///
/// `levels[h][i]` is the hash of the perfect subtree of 2^h leaves starting
/// at leaf `i * 2^h`; `levels[0]` holds the leaf hashes. This is about twice
/// the memory of the leaf hashes alone (64 bytes per entry), and appending
/// costs one leaf hash plus on average one node hash.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tree {
    levels: Vec<Vec<Hash>>,
}

impl Tree {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// A tree holding these leaf hashes, in order.
    pub fn from_leaf_hashes<I: IntoIterator<Item = Hash>>(leaf_hashes: I) -> Self {
        let mut tree = Self::new();
        for hash in leaf_hashes {
            tree.append_leaf_hash(hash);
        }
        tree
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64)
    }

    /// Hashes `entry` as a leaf, appends it and returns its index.
    pub fn append(&mut self, entry: &[u8]) -> u64 {
        self.append_leaf_hash(leaf_hash(entry))
    }

    /// Appends an already computed leaf hash and returns its index.
    pub fn append_leaf_hash(&mut self, hash: Hash) -> u64 {
        if self.levels.is_empty() {
            self.levels.push(Vec::new());
        }
        let index = self.levels[0].len() as u64;
        self.levels[0].push(hash);
        // Completing a pair at one level completes a node at the next.
        let mut height = 0;
        while self.levels[height].len() % 2 == 0 {
            let level = &self.levels[height];
            let n = level.len();
            let parent = node_hash(&level[n - 2], &level[n - 1]);
            if self.levels.len() == height + 1 {
                self.levels.push(Vec::new());
            }
            self.levels[height + 1].push(parent);
            height += 1;
        }
        index
    }

    /// The tree's right edge (its perfect subtrees' roots), to work out the
    /// root the tree would have with more leaves without changing it: the
    /// store signs that root before its transaction commits, and extends
    /// the tree only after.
    pub fn right_edge(&self) -> RightEdge {
        let size = self.size();
        let mut nodes = Vec::new();
        let mut start = 0u64;
        for height in (0..64).rev() {
            if size & (1u64 << height) != 0 {
                nodes.push(self.levels[height][(start >> height) as usize]);
                start += 1u64 << height;
            }
        }
        RightEdge { size, nodes }
    }

    /// The leaf hashes, in order.
    pub fn leaf_hashes(&self) -> &[Hash] {
        self.levels.first().map_or(&[], |l| l.as_slice())
    }

    /// The hashes of all complete perfect subtrees of 2^`height` leaves, left
    /// to right. Height 0 gives the leaf hashes. Tiles are cut from these.
    pub fn perfect_subtrees(&self, height: usize) -> &[Hash] {
        self.levels.get(height).map_or(&[], |l| l.as_slice())
    }

    /// The root of the whole tree.
    pub fn root(&self) -> Hash {
        self.subtree_hash(0, self.size())
    }

    /// The root the tree had when it held its first `size` leaves.
    pub fn root_at(&self, size: u64) -> Result<Hash, ProofError> {
        self.check_size(size)?;
        Ok(self.subtree_hash(0, size))
    }

    fn check_size(&self, size: u64) -> Result<(), ProofError> {
        if size > self.size() {
            return Err(ProofError::SizeOutOfRange {
                size,
                limit: self.size(),
            });
        }
        Ok(())
    }

    /// MTH(D[start : start + len]). Only called on the ranges that RFC 9162's
    /// recursion produces, whose start is a multiple of the largest power of
    /// two not above `len`, so every perfect piece is stored.
    fn subtree_hash(&self, start: u64, len: u64) -> Hash {
        if len == 0 {
            return empty_root();
        }
        // The range splits into perfect subtrees, one per set bit of `len`,
        // largest first; the piece for bit b starts after the larger pieces,
        // at `start` plus the bits of `len` above b. Folding from the
        // smallest piece up needs no list.
        let above = |bit: u32| len & u64::MAX.checked_shl(bit + 1).unwrap_or(0);
        let lowest = len.trailing_zeros();
        let mut acc = self.perfect(start + above(lowest), 1u64 << lowest);
        let mut rest = len & (len - 1);
        while rest != 0 {
            let bit = rest.trailing_zeros();
            acc = node_hash(&self.perfect(start + above(bit), 1u64 << bit), &acc);
            rest &= rest - 1;
        }
        acc
    }

    fn perfect(&self, start: u64, len: u64) -> Hash {
        let height = len.trailing_zeros() as usize;
        let index = (start >> height) as usize;
        match self.levels.get(height).and_then(|l| l.get(index)) {
            Some(hash) => *hash,
            None => unreachable!("bug: perfect subtree {start}+{len} asked beyond the tree"),
        }
    }

    /// The inclusion proof of leaf `index` in the tree of the first `size`
    /// leaves (RFC 9162 §2.1.3.1), ordered from the leaf up.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, ProofError> {
        self.check_size(size)?;
        if index >= size {
            return Err(ProofError::IndexOutOfRange { index, size });
        }
        // PATH(m, D[start : start + n]), unrolled top-down; the RFC appends
        // each sibling after the deeper path, so reverse at the end.
        let (mut start, mut n, mut m) = (0u64, size, index);
        let mut path = Vec::new();
        while n > 1 {
            let k = split_point(n);
            if m < k {
                path.push(self.subtree_hash(start + k, n - k));
                n = k;
            } else {
                path.push(self.subtree_hash(start, k));
                start += k;
                m -= k;
                n -= k;
            }
        }
        path.reverse();
        Ok(path)
    }

    /// The consistency proof between the tree of the first `old_size` leaves
    /// and that of the first `new_size` leaves (RFC 9162 §2.1.4.1). It is
    /// empty when the sizes are equal or `old_size` is 0.
    pub fn consistency_proof(&self, old_size: u64, new_size: u64) -> Result<Vec<Hash>, ProofError> {
        self.check_size(new_size)?;
        if old_size > new_size {
            return Err(ProofError::SizeOutOfRange {
                size: old_size,
                limit: new_size,
            });
        }
        if old_size == 0 || old_size == new_size {
            return Ok(Vec::new());
        }
        // SUBPROOF(m, D[start : start + n], b), unrolled top-down.
        let (mut start, mut n, mut m) = (0u64, new_size, old_size);
        let mut whole_old_tree = true;
        let mut proof = Vec::new();
        loop {
            if m == n {
                if !whole_old_tree {
                    proof.push(self.subtree_hash(start, n));
                }
                break;
            }
            let k = split_point(n);
            if m <= k {
                proof.push(self.subtree_hash(start + k, n - k));
                n = k;
            } else {
                proof.push(self.subtree_hash(start, k));
                start += k;
                m -= k;
                n -= k;
                whole_old_tree = false;
            }
        }
        proof.reverse();
        Ok(proof)
    }
}

/// Recomputes the root from a leaf hash and its inclusion proof (RFC 9162
/// §2.1.3.2). Fails if the proof has the wrong length for `index` and `size`.
pub fn root_from_inclusion_proof(
    leaf_hash: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
) -> Result<Hash, ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let (mut fn_, mut sn) = (index, size - 1);
    let mut r = *leaf_hash;
    for p in proof {
        if sn == 0 {
            return Err(ProofError::WrongProofLength);
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(ProofError::WrongProofLength);
    }
    Ok(r)
}

/// Checks that leaf `leaf_hash` is at `index` in the tree of `size` leaves
/// whose root is `root` (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(
    leaf_hash: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    let computed = root_from_inclusion_proof(leaf_hash, index, size, proof)?;
    if constant_time_eq(&computed, root) {
        Ok(())
    } else {
        Err(ProofError::RootMismatch)
    }
}

/// Checks that the tree of `old_size` leaves with root `old_root` is a prefix
/// of the tree of `new_size` leaves with root `new_root` (RFC 9162 §2.1.4.2).
///
/// Equal sizes need an empty proof and equal roots. An old size of 0 needs an
/// empty proof and `old_root` equal to [`empty_root`]: the empty tree is a
/// prefix of every tree, so nothing more can be proved.
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if old_size > new_size {
        return Err(ProofError::SizeOutOfRange {
            size: old_size,
            limit: new_size,
        });
    }
    if old_size == new_size {
        if !proof.is_empty() {
            return Err(ProofError::WrongProofLength);
        }
        return if constant_time_eq(old_root, new_root) {
            Ok(())
        } else {
            Err(ProofError::DifferentRootsSameSize { size: old_size })
        };
    }
    if old_size == 0 {
        if !proof.is_empty() {
            return Err(ProofError::WrongProofLength);
        }
        return if constant_time_eq(old_root, &empty_root()) {
            Ok(())
        } else {
            Err(ProofError::RootMismatch)
        };
    }
    // 1. An empty proof cannot link two different sizes.
    let Some((first, rest)) = proof.split_first() else {
        return Err(ProofError::WrongProofLength);
    };
    // 2. When the old tree is a perfect subtree, its root is the proof's
    // implicit first element.
    let (seed, rest) = if old_size.is_power_of_two() {
        (old_root, proof)
    } else {
        (first, rest)
    };
    // 3-4.
    let (mut fn_, mut sn) = (old_size - 1, new_size - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    // 5-6.
    let (mut fr, mut sr) = (*seed, *seed);
    for c in rest {
        if sn == 0 {
            return Err(ProofError::WrongProofLength);
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
    // 7.
    if sn != 0 {
        return Err(ProofError::WrongProofLength);
    }
    if constant_time_eq(&fr, old_root) && constant_time_eq(&sr, new_root) {
        Ok(())
    } else {
        Err(ProofError::RootMismatch)
    }
}

/// Compares two hashes without an early exit. Roots are public, so this is
/// care rather than necessity.
fn constant_time_eq(a: &Hash, b: &Hash) -> bool {
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// MTH computed literally as RFC 9162 §2.1.1 defines it.
    fn reference_root(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => empty_root(),
            1 => leaves[0],
            n => {
                let k = split_point(n as u64) as usize;
                node_hash(&reference_root(&leaves[..k]), &reference_root(&leaves[k..]))
            }
        }
    }

    fn tree_of(n: u64) -> Tree {
        Tree::from_leaf_hashes((0..n).map(|i| leaf_hash(&i.to_be_bytes())))
    }

    #[test]
    fn empty_tree_root_is_sha256_of_nothing() {
        assert_eq!(
            hex::encode(empty_root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(Tree::new().root(), empty_root());
        assert_eq!(RightEdge::new().root(), empty_root());
    }

    #[test]
    fn the_right_edge_of_a_tree_extends_like_the_tree() {
        let full = tree_of(70);
        for size in 0..=64u64 {
            let tree = tree_of(size);
            let mut edge = tree.right_edge();
            assert_eq!(edge.size(), size);
            assert_eq!(edge.root(), tree.root(), "size {size}");
            for i in size..70 {
                edge.push(full.leaf_hashes()[i as usize]);
            }
            assert_eq!(edge.root(), full.root(), "from size {size}");
        }
    }

    #[test]
    fn roots_match_the_recursive_definition() {
        let tree = tree_of(300);
        let mut edge = RightEdge::new();
        for size in 0..=300u64 {
            let expected = reference_root(&tree.leaf_hashes()[..size as usize]);
            assert_eq!(tree.root_at(size).unwrap(), expected, "size {size}");
            assert_eq!(edge.root(), expected, "edge size {size}");
            if size < 300 {
                edge.push(tree.leaf_hashes()[size as usize]);
            }
        }
    }

    #[test]
    fn out_of_range_requests_are_errors() {
        let tree = tree_of(5);
        assert!(matches!(
            tree.root_at(6),
            Err(ProofError::SizeOutOfRange { .. })
        ));
        assert!(matches!(
            tree.inclusion_proof(5, 5),
            Err(ProofError::IndexOutOfRange { .. })
        ));
        assert!(tree.consistency_proof(4, 3).is_err());
        assert!(tree.consistency_proof(4, 6).is_err());
        let h = empty_root();
        assert!(verify_inclusion(&h, 0, 0, &[], &h).is_err());
        assert!(verify_consistency(3, 2, &h, &h, &[]).is_err());
    }

    #[test]
    fn trivial_consistency_cases() {
        let tree = tree_of(7);
        let root = tree.root();
        assert_eq!(verify_consistency(7, 7, &root, &root, &[]), Ok(()));
        assert_eq!(
            verify_consistency(7, 7, &root, &empty_root(), &[]),
            Err(ProofError::DifferentRootsSameSize { size: 7 })
        );
        assert_eq!(verify_consistency(0, 7, &empty_root(), &root, &[]), Ok(()));
        assert!(verify_consistency(0, 7, &root, &root, &[]).is_err());
    }

    fn sizes() -> impl Strategy<Value = (u64, u64, u64)> {
        (1u64..=2000).prop_flat_map(|n| (Just(n), 0..=n, 0..n))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn generated_proofs_verify_and_tampering_fails(
            (n, m, index) in sizes(),
            flip in any::<prop::sample::Index>(),
            bit in 0u8..8,
        ) {
            let tree = tree_of(n);
            let root_n = tree.root_at(n).unwrap();
            let root_m = tree.root_at(m).unwrap();
            let index_m = if m > 0 { index % m } else { 0 };

            // Inclusion against the full tree and against the older one.
            for (size, root, idx) in [(n, root_n, index), (m, root_m, index_m)] {
                if size == 0 {
                    continue;
                }
                let leaf = tree.leaf_hashes()[idx as usize];
                let proof = tree.inclusion_proof(idx, size).unwrap();
                prop_assert_eq!(verify_inclusion(&leaf, idx, size, &proof, &root), Ok(()));
                let mut bad_root = root;
                bad_root[flip.index(HASH_LEN)] ^= 1 << bit;
                prop_assert!(verify_inclusion(&leaf, idx, size, &proof, &bad_root).is_err());
                if !proof.is_empty() {
                    let mut bad = proof.clone();
                    let which = flip.index(bad.len());
                    bad[which][flip.index(HASH_LEN)] ^= 1 << bit;
                    prop_assert!(verify_inclusion(&leaf, idx, size, &bad, &root).is_err());
                }
            }

            // Consistency from m to n.
            let proof = tree.consistency_proof(m, n).unwrap();
            prop_assert_eq!(verify_consistency(m, n, &root_m, &root_n, &proof), Ok(()));
            // The empty tree is a prefix of every tree, whatever its root.
            if m > 0 {
                let mut bad_root = root_n;
                bad_root[flip.index(HASH_LEN)] ^= 1 << bit;
                prop_assert!(verify_consistency(m, n, &root_m, &bad_root, &proof).is_err());
                let mut bad_old = root_m;
                bad_old[flip.index(HASH_LEN)] ^= 1 << bit;
                prop_assert!(verify_consistency(m, n, &bad_old, &root_n, &proof).is_err());
            }
            if !proof.is_empty() {
                let mut bad = proof.clone();
                let which = flip.index(bad.len());
                bad[which][flip.index(HASH_LEN)] ^= 1 << bit;
                prop_assert!(verify_consistency(m, n, &root_m, &root_n, &bad).is_err());
                let mut short = proof.clone();
                short.pop();
                prop_assert!(verify_consistency(m, n, &root_m, &root_n, &short).is_err());
                let mut long = proof.clone();
                long.push(root_n);
                prop_assert!(verify_consistency(m, n, &root_m, &root_n, &long).is_err());
            }
        }
    }
}
