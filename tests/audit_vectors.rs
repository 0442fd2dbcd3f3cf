//! The audit core against published vectors from independent implementations:
//! RFC 6962/9162 Merkle trees and proofs (transparency-dev/merkle), C2SP
//! signed notes (the Go note package and the C2SP spec), tlog-checkpoint and
//! tlog-tiles examples (C2SP spec, Go sumdb tile paths), a complete tiled log
//! written by Tessera, and a production tree head of the Go checksum
//! database. The data lives under `tests/vectors/`, each source with a README
//! naming where it came from; this file only reads it.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use passerelle::audit::checkpoint::Checkpoint;
use passerelle::audit::rfc9162::{self, Hash, RightEdge, Tree};
use passerelle::audit::signed_note::{self, NoteError, SignerKey, VerifierKey};
use passerelle::audit::tiles::{self, TileLevel, TilePath};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn vectors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

fn read(rel: &str) -> String {
    let path = vectors().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn json_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            json_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "json") {
            out.push(path);
        }
    }
}

/// A base64 field as a 32-byte hash; `None` if it is not one (placeholder
/// values in the vectors), which our typed API cannot even express.
fn hash_field(v: &Value, key: &str) -> Option<Hash> {
    let text = v[key].as_str()?;
    let raw = BASE64.decode(text).ok()?;
    raw.try_into().ok()
}

fn proof_field(v: &Value) -> Option<Vec<Hash>> {
    match &v["proof"] {
        Value::Null => Some(Vec::new()),
        Value::Array(items) => items
            .iter()
            .map(|p| BASE64.decode(p.as_str()?).ok()?.try_into().ok())
            .collect(),
        _ => None,
    }
}

fn hex_hash(s: &Value) -> Hash {
    hex::decode(s.as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap()
}

struct ReferenceTree {
    leaves: Vec<Vec<u8>>,
    roots: Vec<Hash>,
    node_hashes: Vec<Vec<Hash>>,
}

fn reference_tree() -> ReferenceTree {
    let v: Value = serde_json::from_str(&read("transparency-dev-merkle/tree.json")).unwrap();
    ReferenceTree {
        leaves: v["leafInputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| hex::decode(l.as_str().unwrap()).unwrap())
            .collect(),
        roots: v["rootHashes"]
            .as_array()
            .unwrap()
            .iter()
            .map(hex_hash)
            .collect(),
        node_hashes: v["nodeHashes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|level| level.as_array().unwrap().iter().map(hex_hash).collect())
            .collect(),
    }
}

fn our_tree(reference: &ReferenceTree) -> Tree {
    let mut tree = Tree::new();
    for leaf in &reference.leaves {
        tree.append(leaf);
    }
    tree
}

#[test]
fn merkle_roots_and_node_hashes_match_transparency_dev() {
    let reference = reference_tree();
    assert_eq!(reference.roots.len(), reference.leaves.len() + 1);
    let tree = our_tree(&reference);
    let mut edge = RightEdge::new();
    for (size, expected) in reference.roots.iter().enumerate() {
        assert_eq!(&tree.root_at(size as u64).unwrap(), expected, "size {size}");
        assert_eq!(&edge.root(), expected, "right edge, size {size}");
        if let Some(leaf) = reference.leaves.get(size) {
            edge.push(rfc9162::leaf_hash(leaf));
        }
    }
    assert_eq!(reference.roots[0], rfc9162::empty_root());
    for (height, level) in reference.node_hashes.iter().enumerate() {
        assert_eq!(
            tree.perfect_subtrees(height),
            level.as_slice(),
            "height {height}"
        );
    }
    // The level-0 tile of this 8-leaf tree is its leaf hashes, concatenated.
    let tiles = tiles::hash_tiles(&tree, 8).unwrap();
    assert_eq!(tiles.len(), 1);
    assert_eq!(tiles[0].path.to_string(), "tile/0/000.p/8");
    assert_eq!(tiles[0].data, reference.node_hashes[0].concat());
}

#[test]
fn inclusion_vectors_from_transparency_dev() {
    let reference = reference_tree();
    let tree = our_tree(&reference);
    let mut files = Vec::new();
    json_files(
        &vectors().join("transparency-dev-merkle/testdata/inclusion"),
        &mut files,
    );
    assert!(files.len() > 80, "only {} inclusion vectors", files.len());
    let mut generated_checked = 0;
    for file in &files {
        let v: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
        let want_err = v["wantErr"].as_bool().unwrap();
        let index = v["leafIdx"].as_u64().unwrap();
        let size = v["treeSize"].as_u64().unwrap();
        let parsed = (
            hash_field(&v, "leafHash"),
            hash_field(&v, "root"),
            proof_field(&v),
        );
        let outcome = match &parsed {
            (Some(leaf), Some(root), Some(proof)) => {
                rfc9162::verify_inclusion(leaf, index, size, proof, root).map_err(|e| e.to_string())
            }
            _ => Err("not 32-byte hashes".to_string()),
        };
        assert_eq!(
            outcome.is_err(),
            want_err,
            "{}: {outcome:?}",
            file.display()
        );
        // Our generated proof must be the published one for every valid case
        // on the reference tree.
        if let (false, (Some(leaf), Some(_), Some(proof))) = (want_err, &parsed) {
            if size <= tree.size() && tree.leaf_hashes().get(index as usize) == Some(leaf) {
                assert_eq!(
                    &tree.inclusion_proof(index, size).unwrap(),
                    proof,
                    "{}",
                    file.display()
                );
                generated_checked += 1;
            }
        }
    }
    assert!(
        generated_checked >= 4,
        "only {generated_checked} generated proofs compared"
    );
}

#[test]
fn consistency_vectors_from_transparency_dev() {
    let reference = reference_tree();
    let tree = our_tree(&reference);
    let mut files = Vec::new();
    json_files(
        &vectors().join("transparency-dev-merkle/testdata/consistency"),
        &mut files,
    );
    assert!(files.len() > 80, "only {} consistency vectors", files.len());
    // Equal sizes with equal 12-byte placeholder roots: the Go library
    // compares whatever bytes it gets; our API takes 32-byte roots only.
    let skipped = "sizes-are-equal-one-and-proof-is-empty.json";
    let mut generated_checked = 0;
    for file in &files {
        if file.ends_with(skipped) {
            continue;
        }
        let v: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
        let want_err = v["wantErr"].as_bool().unwrap();
        let old_size = v["size1"].as_u64().unwrap();
        let new_size = v["size2"].as_u64().unwrap();
        let parsed = (
            hash_field(&v, "root1"),
            hash_field(&v, "root2"),
            proof_field(&v),
        );
        let outcome = match &parsed {
            (Some(old_root), Some(new_root), Some(proof)) => {
                rfc9162::verify_consistency(old_size, new_size, old_root, new_root, proof)
                    .map_err(|e| e.to_string())
            }
            _ => Err("not 32-byte hashes".to_string()),
        };
        assert_eq!(
            outcome.is_err(),
            want_err,
            "{}: {outcome:?}",
            file.display()
        );
        if let (false, (Some(old_root), Some(new_root), Some(proof))) = (want_err, &parsed) {
            if new_size <= tree.size()
                && tree.root_at(old_size).ok() == Some(*old_root)
                && tree.root_at(new_size).ok() == Some(*new_root)
            {
                assert_eq!(
                    &tree.consistency_proof(old_size, new_size).unwrap(),
                    proof,
                    "{}",
                    file.display()
                );
                generated_checked += 1;
            }
        }
    }
    assert!(
        generated_checked >= 4,
        "only {generated_checked} generated proofs compared"
    );
}

fn key_file(rel: &str) -> String {
    read(rel).trim_end().to_string()
}

#[test]
fn go_note_signer_reproduces_the_published_signature() {
    let signer =
        SignerKey::from_signer_key_string(&key_file("golang-mod/note/PeterNeumann.skey")).unwrap();
    let vkey: VerifierKey = key_file("golang-mod/note/PeterNeumann.vkey")
        .parse()
        .unwrap();
    assert_eq!(signer.verifier_key(), vkey);
    assert_eq!(
        vkey.to_string(),
        key_file("golang-mod/note/PeterNeumann.vkey")
    );
    assert_eq!(
        signer.to_signer_key_string(),
        key_file("golang-mod/note/PeterNeumann.skey")
    );
    assert_eq!(vkey.key_id(), 0xc74f20a3);
    // Ed25519 is deterministic: our note must be byte for byte Go's.
    let note = signed_note::sign(&read("golang-mod/note/text"), &[&signer]).unwrap();
    assert_eq!(note, read("golang-mod/note/signed-by-PeterNeumann.note"));
}

#[test]
fn go_note_open_skips_unknown_keys_and_rejects_untrusted_notes() {
    let peter: VerifierKey = key_file("golang-mod/note/PeterNeumann.vkey")
        .parse()
        .unwrap();
    let enoch: VerifierKey = key_file("golang-mod/note/EnochRoot.vkey").parse().unwrap();
    assert_eq!(
        enoch.to_string(),
        key_file("golang-mod/note/EnochRoot.vkey")
    );
    let text = read("golang-mod/note/text");
    let both = read("golang-mod/note/signed-by-PeterNeumann-and-EnochRoot.note");

    let opened = signed_note::open(both.as_bytes(), std::slice::from_ref(&peter)).unwrap();
    assert_eq!(opened.text, text);
    assert_eq!(opened.verified_by, vec![peter.clone()]);
    assert_eq!(opened.unknown.len(), 1);
    assert_eq!(opened.unknown[0].name, "EnochRoot");
    assert_eq!(opened.unknown[0].key_id, enoch.key_id());

    let opened = signed_note::open(both.as_bytes(), &[peter.clone(), enoch.clone()]).unwrap();
    assert_eq!(opened.verified_by, vec![peter.clone(), enoch.clone()]);
    assert!(opened.unknown.is_empty());

    assert_eq!(
        signed_note::open(both.as_bytes(), &[]),
        Err(NoteError::NoTrustedSignature)
    );
    let tampered = both.replacen("answer", "Answer", 1);
    assert!(matches!(
        signed_note::open(tampered.as_bytes(), &[peter]),
        Err(NoteError::BadSignature { .. })
    ));
}

#[test]
fn c2sp_signed_note_example_verifies() {
    let vkey: VerifierKey = key_file("c2sp/signed-note-example.vkey").parse().unwrap();
    let note = read("c2sp/signed-note-example.note");
    let opened = signed_note::open(note.as_bytes(), std::slice::from_ref(&vkey)).unwrap();
    assert_eq!(opened.text, "This is an example message.\n");
    assert_eq!(opened.verified_by, vec![vkey.clone()]);

    // The opening example has a blank line inside its text; its key is not
    // published, so it parses but is not trusted.
    let poem = read("c2sp/signed-note-quasimodo.note");
    let parsed = signed_note::parse(poem.as_bytes()).unwrap();
    assert!(parsed.text.contains("\n\ned è subito sera.\n"));
    assert_eq!(parsed.signatures[0].name, "quasimodo.example/salvatore");
    assert_eq!(
        signed_note::open(poem.as_bytes(), &[vkey]),
        Err(NoteError::NoTrustedSignature)
    );
}

#[test]
fn c2sp_checkpoint_example_parses() {
    let note = read("c2sp/tlog-checkpoint-example.note");
    let parsed = signed_note::parse(note.as_bytes()).unwrap();
    let checkpoint = Checkpoint::from_note_text(parsed.text).unwrap();
    assert_eq!(checkpoint.origin, "example.com/behind-the-sofa");
    assert_eq!(checkpoint.size, 20852163);
    assert_eq!(
        BASE64.encode(checkpoint.root),
        "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I="
    );
    assert!(checkpoint.extensions.is_empty());
    assert_eq!(checkpoint.to_note_text().unwrap(), parsed.text);
    assert_eq!(parsed.signatures[0].name, checkpoint.origin);
}

#[test]
fn c2sp_tile_examples() {
    for line in read("c2sp/tlog-tiles-examples.txt").lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields.as_slice() {
            [] => {}
            [first, ..] if first.starts_with('#') => {}
            [size, level, full, partial] => {
                let (size, level): (u64, u8) = (size.parse().unwrap(), level.parse().unwrap());
                let (full, partial): (usize, u16) =
                    (full.parse().unwrap(), partial.parse().unwrap());
                let at_level: Vec<TilePath> = tiles::hash_tile_paths(size)
                    .filter(|p| p.level == TileLevel::Hashes(level))
                    .collect();
                assert_eq!(
                    at_level.iter().filter(|p| p.is_full()).count(),
                    full,
                    "{line}"
                );
                let partials: Vec<u16> = at_level
                    .iter()
                    .filter(|p| !p.is_full())
                    .map(|p| p.width)
                    .collect();
                let expected: Vec<u16> = if partial == 0 { vec![] } else { vec![partial] };
                assert_eq!(partials, expected, "{line}");
            }
            [index, encoded] => {
                let path: TilePath = format!("tile/0/{encoded}").parse().unwrap();
                assert_eq!(path.index, index.parse::<u64>().unwrap());
                assert_eq!(path.to_string(), format!("tile/0/{encoded}"));
            }
            _ => panic!("unexpected line {line:?}"),
        }
    }
}

#[test]
fn go_sumdb_tile_paths() {
    let mut checked = 0;
    for line in read("golang-mod/tile-paths.txt").lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        // sumdb's tile/H/L/N is tlog-tiles' tile/L/N, and its level "data"
        // is tlog-tiles' "entries".
        let sumdb_path = fields[0];
        let rest = sumdb_path
            .strip_prefix("tile/")
            .and_then(|r| r.split_once('/'))
            .map(|(_, rest)| rest)
            .unwrap();
        let ours = match rest.strip_prefix("data/") {
            Some(r) => format!("tile/entries/{r}"),
            None => format!("tile/{rest}"),
        };
        match fields[1..] {
            ["invalid"] => assert!(ours.parse::<TilePath>().is_err(), "{ours}"),
            [h, l, n, w] => {
                let (h, l, n, w): (u32, i64, u64, u64) = (
                    h.parse().unwrap(),
                    l.parse().unwrap(),
                    n.parse().unwrap(),
                    w.parse().unwrap(),
                );
                let full = w == 1 << h;
                let path: TilePath = ours.parse().unwrap();
                let level = if l < 0 {
                    TileLevel::Entries
                } else {
                    TileLevel::Hashes(l as u8)
                };
                assert_eq!(path.level, level, "{line}");
                assert_eq!(path.index, n, "{line}");
                assert_eq!(path.is_full(), full, "{line}");
                if !full {
                    assert_eq!(u64::from(path.width), w, "{line}");
                }
                assert_eq!(path.to_string(), ours);
                checked += 1;
            }
            _ => panic!("unexpected line {line:?}"),
        }
    }
    assert!(checked >= 5);
}

#[test]
fn signed_checkpoint_round_trip_with_published_key_format() {
    // Sign a checkpoint of the reference tree with the Go test key; an
    // auditor's Go tooling would open it with the published vkey.
    let reference = reference_tree();
    let tree = our_tree(&reference);
    let signer =
        SignerKey::from_signer_key_string(&key_file("golang-mod/note/PeterNeumann.skey")).unwrap();
    let checkpoint = Checkpoint::new("PeterNeumann", tree.size(), tree.root());
    let note = checkpoint.sign(&[&signer]).unwrap();
    let vkey: VerifierKey = key_file("golang-mod/note/PeterNeumann.vkey")
        .parse()
        .unwrap();
    let (opened, _) = Checkpoint::open(note.as_bytes(), "PeterNeumann", &[vkey]).unwrap();
    assert_eq!(opened.root, reference.roots[8]);
}

/// The Tessera test log: every checkpoint, tile and entry bundle that an
/// independent tlog-tiles implementation wrote must be exactly what we compute
/// and must verify with our code.
#[test]
fn tessera_log_matches_byte_for_byte() {
    let dir = vectors().join("tessera/log");
    let vkey: VerifierKey = key_file("tessera/log-testdata.vkey").parse().unwrap();
    let signer = SignerKey::from_signer_key_string(&key_file("tessera/log-testdata.skey")).unwrap();
    assert_eq!(signer.verifier_key(), vkey);
    let origin = vkey.name().to_string();

    let latest = std::fs::read(dir.join("tile/entries/000.p/15")).unwrap();
    let entries = tiles::parse_entry_bundle(&latest).unwrap();
    assert_eq!(entries.len(), 15);
    assert_eq!(entries[0], b"one");
    let mut tree = Tree::new();
    for e in &entries {
        tree.append(e);
    }

    let mut checkpoints = Vec::new();
    for size in 0..=15u64 {
        let note = std::fs::read(dir.join(format!("checkpoint.{size}"))).unwrap();
        let (checkpoint, verified) = Checkpoint::open(&note, &origin, std::slice::from_ref(&vkey))
            .unwrap_or_else(|e| panic!("checkpoint.{size}: {e}"));
        assert_eq!(verified.verified_by, vec![vkey.clone()]);
        assert_eq!(checkpoint.size, size);
        assert_eq!(
            checkpoint.root,
            tree.root_at(size).unwrap(),
            "root at {size}"
        );
        // Ed25519 is deterministic: our signed checkpoint is Tessera's, byte
        // for byte.
        assert_eq!(
            checkpoint.sign(&[&signer]).unwrap().as_bytes(),
            note.as_slice()
        );

        // Every tile and bundle Tessera wrote for this size is what we
        // compute, and the root read back from the tiles is the signed one.
        let read_tile = |p: &TilePath| std::fs::read(dir.join(p.to_string())).ok();
        for tile in tiles::hash_tiles(&tree, size).unwrap() {
            assert_eq!(Some(tile.data), read_tile(&tile.path), "{}", tile.path);
        }
        for path in tiles::entry_bundle_paths(size) {
            let r = path.entry_range();
            let ours = tiles::encode_entry_bundle(
                entries[r.start as usize..r.end as usize].iter().copied(),
            )
            .unwrap();
            assert_eq!(Some(ours), read_tile(&path), "{path}");
        }
        assert_eq!(
            tiles::root_from_tiles(size, read_tile).unwrap(),
            checkpoint.root
        );
        assert_eq!(
            tiles::leaf_hashes_from_tiles(size, read_tile).unwrap(),
            tree.leaf_hashes()[..size as usize]
        );
        checkpoints.push(checkpoint);
    }
    assert_eq!(
        std::fs::read(dir.join("checkpoint")).unwrap(),
        std::fs::read(dir.join("checkpoint.15")).unwrap()
    );

    // Every earlier checkpoint is consistent with every later one, and every
    // entry is included in every checkpoint that covers it.
    for old in &checkpoints {
        for new in checkpoints.iter().filter(|c| c.size >= old.size) {
            let proof = tree.consistency_proof(old.size, new.size).unwrap();
            rfc9162::verify_consistency(old.size, new.size, &old.root, &new.root, &proof).unwrap();
        }
        for (index, entry) in entries.iter().enumerate().take(old.size as usize) {
            let proof = tree.inclusion_proof(index as u64, old.size).unwrap();
            rfc9162::verify_inclusion(
                &rfc9162::leaf_hash(entry),
                index as u64,
                old.size,
                &proof,
                &old.root,
            )
            .unwrap();
        }
    }

    // A signature by another key is skipped; with only that key the
    // checkpoint is refused, with both it opens.
    let note = std::fs::read(dir.join("checkpoint")).unwrap();
    let other = SignerKey::from_ed25519_seed(&origin, [1; 32]).unwrap();
    let mut greased = note.clone();
    let extra = signed_note::sign(signed_note::parse(&note).unwrap().text, &[&other]).unwrap();
    let extra_line = extra.rsplit_once("\n\n").unwrap().1;
    greased.extend_from_slice(extra_line.as_bytes());
    assert!(Checkpoint::open(&greased, &origin, std::slice::from_ref(&vkey)).is_ok());
    assert!(matches!(
        Checkpoint::open(&note, &origin, &[other.verifier_key()]),
        Err(passerelle::audit::checkpoint::CheckpointError::Note(
            NoteError::NoTrustedSignature
        ))
    ));
    assert!(Checkpoint::open(&note, "example.com/other-log", &[vkey]).is_err());
}

/// A production tree head of the Go checksum database verifies with our note
/// and checkpoint code and its published key.
#[test]
fn go_checksum_database_tree_head_verifies() {
    let vkey: VerifierKey = key_file("sum-golang-org/sum.golang.org.vkey")
        .parse()
        .unwrap();
    assert_eq!(vkey.name(), "sum.golang.org");
    let note = read("sum-golang-org/tree-31700353.note");
    let (checkpoint, _) = Checkpoint::open(
        note.as_bytes(),
        "go.sum database tree",
        std::slice::from_ref(&vkey),
    )
    .unwrap();
    assert_eq!(checkpoint.size, 31700353);
    let tampered = note.replacen("31700353", "31700354", 1);
    assert!(Checkpoint::open(tampered.as_bytes(), "go.sum database tree", &[vkey]).is_err());
}
