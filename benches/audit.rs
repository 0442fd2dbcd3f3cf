//! Speed of the audit core: appending entries to the Merkle tree (the work
//! the gateway does per event) and recomputing a whole log from its entries
//! (the work `audit verify` does), without any I/O.
//!
//! Entries are 256 bytes, about the size of an audit entry (digests, label,
//! principals, decision and rule ids in CBOR).

use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use passerelle::audit::rfc9162::{self, RightEdge, Tree};
use passerelle::audit::tiles;

const ENTRY_LEN: usize = 256;

fn entries(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let mut e = vec![0u8; ENTRY_LEN];
            e[..8].copy_from_slice(&(i as u64).to_be_bytes());
            e
        })
        .collect()
}

fn append(c: &mut Criterion) {
    const BATCH: usize = 100_000;
    let batch = entries(BATCH);
    let mut group = c.benchmark_group("append");
    group.throughput(Throughput::Elements(BATCH as u64));

    // Hash each entry as a leaf and append it to a tree that already holds a
    // million entries, as a long-running gateway does.
    group.bench_function("hash+append 256 B entries to a 1M tree", |b| {
        let base = Tree::from_leaf_hashes(entries(1_000_000).iter().map(|e| rfc9162::leaf_hash(e)));
        b.iter_batched(
            || base.clone(),
            |mut tree| {
                for e in &batch {
                    black_box(tree.append(e));
                }
                tree
            },
            BatchSize::LargeInput,
        )
    });

    // The same from an empty tree, root read after every append (a
    // checkpoint per entry is the worst case).
    group.bench_function("hash+append+root 256 B entries", |b| {
        b.iter(|| {
            let mut tree = Tree::new();
            for e in &batch {
                tree.append(e);
                black_box(tree.root());
            }
            tree
        })
    });
    group.finish();
}

fn rebuild(c: &mut Criterion) {
    const N: usize = 1_000_000;
    let all = entries(N);
    let bundles: Vec<Vec<u8>> = tiles::entry_bundle_paths(N as u64)
        .map(|p| {
            let r = p.entry_range();
            tiles::encode_entry_bundle(
                all[r.start as usize..r.end as usize]
                    .iter()
                    .map(Vec::as_slice),
            )
            .expect("entries fit in a bundle")
        })
        .collect();
    drop(all);

    let mut group = c.benchmark_group("rebuild 1M");
    group.sample_size(10);
    group.throughput(Throughput::Elements(N as u64));

    // What `audit verify` needs for the roots: parse every bundle, hash every
    // entry, fold into the right edge (O(log n) memory).
    group.bench_function("entry bundles -> root (right edge)", |b| {
        b.iter(|| {
            let mut edge = RightEdge::new();
            for bundle in &bundles {
                for e in tiles::parse_entry_bundle(bundle).expect("well-formed bundle") {
                    edge.push(rfc9162::leaf_hash(e));
                }
            }
            edge.root()
        })
    });

    // The full tree, to compare every tile and answer proofs.
    group.bench_function("entry bundles -> Tree + all tiles", |b| {
        b.iter(|| {
            let mut tree = Tree::new();
            for bundle in &bundles {
                for e in tiles::parse_entry_bundle(bundle).expect("well-formed bundle") {
                    tree.append(e);
                }
            }
            let tiles = tiles::hash_tiles(&tree, tree.size()).expect("size is the tree's");
            (tree.root(), tiles.len())
        })
    });
    group.finish();
}

criterion_group!(benches, append, rebuild);
criterion_main!(benches);
