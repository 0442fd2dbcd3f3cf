//! The auditor's offline tools on real exports: a log written by a running
//! gateway through real mTLS exchanges, and a larger log written straight
//! into a store. Verification must pass on the untouched export, and every
//! kind of tampering must fail and name the entry or checkpoint at fault.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{item, Harness};
use passerelle::audit::checkpoint::Checkpoint;
use passerelle::audit::event::{AuditEntry, AuditEvent, BoundedEntry};
use passerelle::audit::rfc9162::{leaf_hash, Tree};
use passerelle::audit::signed_note::{SignerKey, VerifierKey};
use passerelle::audit::tiles::{self, TileLevel, TilePath, TILE_WIDTH};
use passerelle::auditor::prove::{self, ProveError, ReceiptError};
use passerelle::auditor::show::{self, Filter};
use passerelle::auditor::verify::{self, Change, Fault, VerifyFailure};
use passerelle::domain::decision::Effect;
use passerelle::domain::principal::PrincipalId;
use passerelle::keys::GatewayKey;
use passerelle::log_service::AuditLog;
use passerelle::store::{Batch, StoreConfig};

// ---------------------------------------------------------------------------
// Helpers

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A fresh copy of `export` to tamper with.
fn copy_of(export: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(export, dir.path());
    dir
}

fn fault(dir: &Path, key: &VerifierKey) -> Fault {
    match verify::verify(dir, key) {
        Ok(r) => panic!("verification passed on a tampered export: {r}"),
        Err(VerifyFailure::Failed(f)) => f,
        Err(other) => panic!("expected a fault, got: {other}"),
    }
}

/// The bundle holding entry `index` in an export of `size` entries.
fn bundle_of(index: u64, size: u64) -> TilePath {
    let start = index - index % TILE_WIDTH;
    TilePath {
        level: TileLevel::Entries,
        index: index / TILE_WIDTH,
        width: (size - start).min(TILE_WIDTH) as u16,
    }
}

fn read_bundle(dir: &Path, path: &TilePath) -> Vec<Vec<u8>> {
    let data = std::fs::read(dir.join(path.to_string())).unwrap();
    tiles::parse_entry_bundle(&data)
        .unwrap()
        .into_iter()
        .map(<[u8]>::to_vec)
        .collect()
}

fn write_bundle(dir: &Path, path: &TilePath, entries: &[Vec<u8>]) {
    let data = tiles::encode_entry_bundle(entries.iter().map(Vec::as_slice)).unwrap();
    std::fs::write(dir.join(path.to_string()), data).unwrap();
}

/// Every entry of the export, in order.
fn all_entries(dir: &Path, size: u64) -> Vec<Vec<u8>> {
    tiles::entry_bundle_paths(size)
        .flat_map(|p| read_bundle(dir, &p))
        .collect()
}

/// Rewrites every bundle and hash tile of the export from `entries`, as a
/// tamperer who knows the layout would (but cannot sign).
fn rewrite_all(dir: &Path, entries: &[Vec<u8>]) {
    std::fs::remove_dir_all(dir.join("tile")).unwrap();
    let size = entries.len() as u64;
    for p in tiles::entry_bundle_paths(size) {
        let r = p.entry_range();
        let path = dir.join(p.to_string());
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let part = &entries[r.start as usize..r.end as usize];
        std::fs::write(
            path,
            tiles::encode_entry_bundle(part.iter().map(Vec::as_slice)).unwrap(),
        )
        .unwrap();
    }
    let tree = Tree::from_leaf_hashes(entries.iter().map(|e| leaf_hash(e)));
    for tile in tiles::hash_tiles(&tree, size).unwrap() {
        let path = dir.join(tile.path.to_string());
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, tile.data).unwrap();
    }
}

fn checkpoint_sizes(dir: &Path) -> Vec<u64> {
    let mut sizes: Vec<u64> = std::fs::read_dir(dir.join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_str().unwrap().parse().unwrap())
        .collect();
    sizes.sort();
    sizes
}

fn ack_entry(i: u64) -> AuditEntry {
    AuditEntry::new(
        1_790_000_000 + i as i64,
        AuditEvent::Acknowledged {
            item_ref: format!("{i:032x}"),
            recipient: PrincipalId::new("vsse/analysis/ct").unwrap(),
        },
    )
}

/// A log of `size` entries written straight into a store, signed at each
/// of `checkpoints` (the last must be `size`), and exported.
struct Synthetic {
    dir: tempfile::TempDir,
    key: std::sync::Arc<GatewayKey>,
}

impl Synthetic {
    fn new(checkpoints: &[u64]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let key = std::sync::Arc::new(
            GatewayKey::generate(&dir.path().join("audit-key.pem"), "test.example/audit").unwrap(),
        );
        let store = passerelle::store::open(
            &StoreConfig::from_setting(&dir.path().join("store.db")),
            key.clone(),
        )
        .unwrap();
        let log = AuditLog::load(store.clone()).unwrap();
        let mut next = 0u64;
        for &size in checkpoints {
            while next < size {
                let end = (next + 10_000).min(size);
                let batch: Vec<BoundedEntry> = (next..end)
                    .map(|i| BoundedEntry::new(ack_entry(i).time, ack_entry(i).event).unwrap())
                    .collect();
                log.append(Batch::entries(batch)).unwrap();
                next = end;
            }
            passerelle::gateway::sign_checkpoint(&log, &key.note, 1_790_000_000 + size as i64)
                .unwrap();
        }
        passerelle::export::export(store.as_ref(), &dir.path().join("export")).unwrap();
        Synthetic { dir, key }
    }

    fn export(&self) -> PathBuf {
        self.dir.path().join("export")
    }

    fn vkey(&self) -> VerifierKey {
        self.key.verifier_key()
    }
}

/// Runs every tampering case on a copy of `export` and checks the verdict
/// names the fault. `signer` is the gateway's own key (to forge
/// inconsistent but validly signed checkpoints).
fn every_tampering_is_caught(export: &Path, signer: &SignerKey) {
    let key = signer.verifier_key();
    let report = verify::verify(export, &key).unwrap();
    let size = report.size;
    let sizes = checkpoint_sizes(export);
    assert!(sizes.len() >= 2, "need two checkpoints, got {sizes:?}");
    assert!(size >= 4, "need a few entries, got {size}");
    let covering = |i: u64| *sizes.iter().find(|&&s| s > i).unwrap();

    // One byte changed inside an entry (not its length prefix).
    let i = size / 2;
    let t = copy_of(export);
    let b = bundle_of(i, size);
    let mut entries = read_bundle(t.path(), &b);
    let e = &mut entries[(i % TILE_WIDTH) as usize];
    let mid = e.len() / 2;
    e[mid] ^= 0x01;
    write_bundle(t.path(), &b, &entries);
    let f = fault(t.path(), &key);
    assert_eq!(
        f,
        Fault::Entry {
            index: i,
            change: Change::Changed,
            checkpoint: covering(i),
            file: f_file(&f),
        },
        "{f}"
    );
    assert!(
        f.to_string().contains(&format!("entry {i} was changed")),
        "{f}"
    );

    // An entry deleted.
    let i = size / 2 - 1;
    let t = copy_of(export);
    let b = bundle_of(i, size);
    let mut entries = read_bundle(t.path(), &b);
    entries.remove((i % TILE_WIDTH) as usize);
    write_bundle(t.path(), &b, &entries);
    let f = fault(t.path(), &key);
    assert!(
        matches!(f, Fault::Entry { index, change: Change::Deleted, .. } if index == i),
        "{f}"
    );

    // Two entries swapped.
    let i = size / 2 - 1;
    let t = copy_of(export);
    let mut all = all_entries(t.path(), size);
    all.swap(i as usize, i as usize + 1);
    // Only the bundles change: the tiles still hold the signed hashes.
    for p in tiles::entry_bundle_paths(size) {
        let r = p.entry_range();
        write_bundle(t.path(), &p, &all[r.start as usize..r.end as usize]);
    }
    let f = fault(t.path(), &key);
    assert!(
        matches!(f, Fault::Entry { index, change: Change::Swapped, .. } if index == i),
        "{f}"
    );

    // An entry appended without a checkpoint: the last bundle grows.
    let t = copy_of(export);
    let last = bundle_of(size - 1, size);
    let mut entries = read_bundle(t.path(), &last);
    entries.push(ack_entry(999_999).encode());
    std::fs::remove_file(t.path().join(last.to_string())).unwrap();
    let grown = if last.is_full() {
        TilePath {
            level: TileLevel::Entries,
            index: last.index + 1,
            width: 1,
        }
    } else {
        TilePath {
            width: last.width + 1,
            ..last
        }
    };
    let path = t.path().join(grown.to_string());
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    if last.is_full() {
        write_bundle(t.path(), &last, &entries[..entries.len() - 1]);
        write_bundle(t.path(), &grown, &entries[entries.len() - 1..]);
    } else {
        write_bundle(t.path(), &grown, &entries);
    }
    let f = fault(t.path(), &key);
    assert_eq!(
        f,
        Fault::Appended {
            index: size,
            count: 1,
            size
        },
        "{f}"
    );

    // A checkpoint signed with another key (same name, another key).
    let other = GatewayKey::generate(
        &tempfile::tempdir().unwrap().path().join("other.pem"),
        key.name(),
    )
    .unwrap();
    let s = sizes[0];
    let t = copy_of(export);
    let (cp, _) = Checkpoint::open(
        &std::fs::read(t.path().join(format!("checkpoints/{s}"))).unwrap(),
        key.name(),
        std::slice::from_ref(&key),
    )
    .unwrap();
    let forged = cp.sign(&[&other.note]).unwrap();
    std::fs::write(t.path().join(format!("checkpoints/{s}")), forged).unwrap();
    let f = fault(t.path(), &key);
    assert!(
        matches!(&f, Fault::CheckpointNotSigned { file, size: Some(z), .. } if *z == s && *file == format!("checkpoints/{s}")),
        "{f}"
    );

    // A checkpoint, validly signed, whose tree is not consistent with the
    // later one: the gateway's key signed another history.
    let t = copy_of(export);
    let mut all = all_entries(t.path(), size);
    all[0] = ack_entry(123_456).encode();
    let fork = Tree::from_leaf_hashes(all.iter().map(|e| leaf_hash(e)));
    let note = Checkpoint::new(key.name(), s, fork.root_at(s).unwrap())
        .sign(&[signer])
        .unwrap();
    std::fs::write(t.path().join(format!("checkpoints/{s}")), note).unwrap();
    let f = fault(t.path(), &key);
    assert!(
        matches!(&f, Fault::Inconsistent { size: z, other, .. } if *z == s && *other == size),
        "{f}"
    );

    // The latest checkpoint, validly signed, not consistent with an earlier
    // one (the entries and tiles agree with the earlier one).
    let t = copy_of(export);
    let note = Checkpoint::new(key.name(), size, fork.root_at(size).unwrap())
        .sign(&[signer])
        .unwrap();
    std::fs::write(t.path().join("checkpoint"), &note).unwrap();
    std::fs::write(t.path().join(format!("checkpoints/{size}")), &note).unwrap();
    let f = fault(t.path(), &key);
    let prev = sizes[sizes.len() - 2];
    assert!(
        matches!(&f, Fault::LatestMismatch { size: z, range, .. } if *z == size && *range == (prev..size)),
        "{f}"
    );

    // An entry changed and every tile rewritten to match: the first
    // checkpoint that no longer matches, and its range, are named.
    let i = sizes[0] - 1;
    let t = copy_of(export);
    let mut all = all_entries(t.path(), size);
    all[i as usize] = ack_entry(777_777).encode();
    rewrite_all(t.path(), &all);
    let f = fault(t.path(), &key);
    let from = sizes.iter().rev().find(|&&z| z <= i).copied().unwrap_or(0);
    assert!(
        matches!(&f, Fault::EntriesInRange { size: z, range, .. } if *z == sizes[0] && *range == (from..sizes[0])),
        "{f}"
    );

    // A truncated bundle: the last entry in it is cut.
    let t = copy_of(export);
    let b = bundle_of(size - 1, size);
    let path = t.path().join(b.to_string());
    let data = std::fs::read(&path).unwrap();
    std::fs::write(&path, &data[..data.len() - 3]).unwrap();
    let f = fault(t.path(), &key);
    assert!(
        matches!(&f, Fault::BundleDamaged { index, .. } if *index == size - 1),
        "{f}"
    );

    // A missing bundle: the first one, and the partial bundles that
    // earlier checkpoints' sizes have at its index.
    let t = copy_of(export);
    let b = bundle_of(0, size);
    std::fs::remove_file(t.path().join(b.to_string())).unwrap();
    let partials = t.path().join("tile/entries/000.p");
    if partials.exists() {
        std::fs::remove_dir_all(partials).unwrap();
    }
    let f = fault(t.path(), &key);
    assert!(
        matches!(&f, Fault::MissingBundle { range, .. } if range.start == 0),
        "{f}"
    );

    // A missing hash tile.
    let t = copy_of(export);
    let tile = tiles::hash_tile_paths(size).next().unwrap();
    std::fs::remove_file(t.path().join(tile.to_string())).unwrap();
    let f = fault(t.path(), &key);
    assert_eq!(
        f,
        Fault::MissingTile {
            path: tile.to_string(),
            range: 0..u64::from(tile.width).min(size)
        },
        "{f}"
    );

    // A corrupted checkpoint file.
    let t = copy_of(export);
    std::fs::write(t.path().join("checkpoint"), b"not a note").unwrap();
    let f = fault(t.path(), &key);
    assert!(
        matches!(&f, Fault::MalformedCheckpoint { file, .. } if file == "checkpoint"),
        "{f}"
    );

    // An unknown key: nothing in the export is signed by it.
    let f = fault(export, &other.verifier_key());
    assert!(matches!(f, Fault::UnknownKey { .. }), "{f}");
    assert!(
        f.to_string()
            .contains(&key.to_string()[..key.name().len() + 9]),
        "{f}"
    );
}

fn f_file(f: &Fault) -> String {
    match f {
        Fault::Entry { file, .. } => file.clone(),
        _ => String::new(),
    }
}

// ---------------------------------------------------------------------------
// A log of 600 entries: several full and partial tiles, four checkpoints.

#[test]
fn a_multi_tile_log_verifies_and_every_tampering_is_named() {
    let log = Synthetic::new(&[100, 256, 300, 600]);
    let report = verify::verify(&log.export(), &log.vkey()).unwrap();
    assert_eq!(report.size, 600);
    assert_eq!(report.checkpoints, [100, 256, 300, 600]);
    assert_eq!(report.bundles, 3);
    // tile/0/000, 001, 002.p/88 and tile/1/000.p/2.
    assert_eq!(report.hash_tiles, 4);
    every_tampering_is_caught(&log.export(), &log.key.note);
}

#[test]
fn faults_across_tiles_are_pinpointed() {
    let log = Synthetic::new(&[100, 256, 300, 600]);
    let key = log.vkey();

    // Swapped across two bundles.
    let t = copy_of(&log.export());
    let mut all = all_entries(t.path(), 600);
    all.swap(255, 256);
    for p in tiles::entry_bundle_paths(600) {
        let r = p.entry_range();
        write_bundle(t.path(), &p, &all[r.start as usize..r.end as usize]);
    }
    let f = fault(t.path(), &key);
    assert_eq!(
        f,
        Fault::Entry {
            index: 255,
            change: Change::Swapped,
            checkpoint: 256,
            file: "checkpoints/256".into()
        }
    );

    // An entry inserted: the bundles shift by one from there on.
    let t = copy_of(&log.export());
    let mut all = all_entries(t.path(), 600);
    all.insert(400, ack_entry(5_000).encode());
    all.pop();
    for p in tiles::entry_bundle_paths(600) {
        let r = p.entry_range();
        write_bundle(t.path(), &p, &all[r.start as usize..r.end as usize]);
    }
    let f = fault(t.path(), &key);
    assert!(
        matches!(
            f,
            Fault::Entry {
                index: 400,
                change: Change::Inserted,
                checkpoint: 600,
                ..
            }
        ),
        "{f}"
    );

    // A full bundle truncated in the middle of the log.
    let t = copy_of(&log.export());
    let path = t.path().join("tile/entries/001");
    let data = std::fs::read(&path).unwrap();
    std::fs::write(&path, &data[..data.len() - 1]).unwrap();
    let f = fault(t.path(), &key);
    assert!(matches!(f, Fault::BundleDamaged { index: 511, .. }), "{f}");

    // A level-1 tile altered.
    let t = copy_of(&log.export());
    std::fs::write(t.path().join("tile/1/000.p/2"), [0u8; 64]).unwrap();
    let f = fault(t.path(), &key);
    assert!(
        matches!(&f, Fault::BadTile { path, .. } if path == "tile/1/000.p/2"),
        "{f}"
    );

    // `checkpoint` is not the latest.
    let t = copy_of(&log.export());
    std::fs::copy(
        t.path().join("checkpoints/300"),
        t.path().join("checkpoint"),
    )
    .unwrap();
    let f = fault(t.path(), &key);
    assert!(
        matches!(
            f,
            Fault::LatestNotLargest {
                size: 300,
                larger: 600,
                ..
            }
        ),
        "{f}"
    );

    // A checkpoint file under the wrong name.
    let t = copy_of(&log.export());
    std::fs::rename(
        t.path().join("checkpoints/300"),
        t.path().join("checkpoints/299"),
    )
    .unwrap();
    let f = fault(t.path(), &key);
    assert!(
        matches!(
            f,
            Fault::CheckpointMisnamed {
                named: 299,
                size: 300,
                ..
            }
        ),
        "{f}"
    );
}

#[test]
fn unreadable_input_is_an_error_not_a_verdict() {
    let log = Synthetic::new(&[5]);
    let key = log.vkey();
    let empty = tempfile::tempdir().unwrap();
    let e = verify::verify(empty.path(), &key).unwrap_err();
    assert!(matches!(e, VerifyFailure::NotAnExport(_)), "{e}");
    assert_eq!(e.exit_code(), verify::EXIT_CANNOT_RUN);
    let e = verify::verify(&empty.path().join("nope"), &key).unwrap_err();
    assert!(matches!(e, VerifyFailure::Unreadable(_)), "{e}");
    assert_eq!(e.exit_code(), verify::EXIT_CANNOT_RUN);

    // --key: the string, or a file holding it; anything else is refused.
    let file = log.dir.path().join("audit.vkey");
    std::fs::write(&file, format!("{key}\n")).unwrap();
    assert_eq!(verify::load_verifier_key(&key.to_string()).unwrap(), key);
    assert_eq!(
        verify::load_verifier_key(file.to_str().unwrap()).unwrap(),
        key
    );
    assert!(verify::load_verifier_key("no/such/file.vkey").is_err());
    assert!(verify::load_verifier_key("name+0000+AAAA").is_err());
    std::fs::write(&file, "garbage").unwrap();
    assert!(verify::load_verifier_key(file.to_str().unwrap()).is_err());
}

#[test]
fn prove_gives_a_checked_inclusion_proof() {
    let log = Synthetic::new(&[100, 600]);
    let key = log.vkey();
    for index in [0, 255, 256, 599] {
        let proved = prove::prove(&log.export(), index, &key).unwrap();
        assert_eq!(proved.proof.index, index);
        assert_eq!(proved.proof.size, 600);
        assert_eq!(proved.entry, ack_entry(index));
        // The same shape receipts carry, checked independently.
        let json = serde_json::to_string(&proved.proof).unwrap();
        let back: passerelle::domain::receipt::InclusionProof =
            serde_json::from_str(&json).unwrap();
        passerelle::audit::receipts::check_inclusion(&back, &key).unwrap();
    }
    let e = prove::prove(&log.export(), 600, &key).unwrap_err();
    assert!(
        matches!(
            e,
            ProveError::OutOfRange {
                index: 600,
                size: 600
            }
        ),
        "{e}"
    );
    assert_eq!(e.exit_code(), verify::EXIT_CANNOT_RUN);

    // A tampered entry cannot be proved.
    let t = copy_of(&log.export());
    let mut entries = read_bundle(t.path(), &bundle_of(300, 600));
    entries[44][10] ^= 1;
    write_bundle(t.path(), &bundle_of(300, 600), &entries);
    let e = prove::prove(t.path(), 300, &key).unwrap_err();
    assert!(
        matches!(e, ProveError::DoesNotVerify { index: 300, .. }),
        "{e}"
    );
    assert_eq!(e.exit_code(), verify::EXIT_FAILED);
    // Nor can anything with another key.
    let other = Synthetic::new(&[1]);
    let e = prove::prove(&log.export(), 3, &other.vkey()).unwrap_err();
    assert!(matches!(e, ProveError::Export { .. }), "{e}");
}

// ---------------------------------------------------------------------------
// A real gateway, real exchanges.

struct Exchanged {
    h: Harness,
    export: tempfile::TempDir,
    receipt_json: PathBuf,
    case_ref: String,
}

async fn exchange_and_export() -> Exchanged {
    let mut h = Harness::start().await;
    let rabat = h.station("police/lo/rabat");
    let vsse = h.station("vsse/analysis/ct");
    let r1 = rabat
        .submit(&item(&rabat, "ex-1", &["vsse/analysis/ct"], "one"))
        .await
        .unwrap()
        .receipt;
    let fetched = vsse.fetch(&r1.item_ref).await.unwrap();
    vsse.open(&fetched).unwrap();
    vsse.ack(&r1.item_ref).await.unwrap();
    // A checkpoint now, so that the receipt gets an inclusion proof.
    rabat
        .request(
            hyper::Method::GET,
            "/v1/audit/checkpoint",
            None,
            Duration::ZERO,
        )
        .await
        .unwrap();
    let signed = rabat.receipt(&r1.item_ref).await.unwrap();
    assert!(signed.inclusion.is_some(), "no inclusion proof yet");
    let receipt_json = h.path().join("receipt.json");
    std::fs::write(&receipt_json, serde_json::to_vec_pretty(&signed).unwrap()).unwrap();
    let r2 = vsse
        .submit(&item(&vsse, "ex-2", &["police/lo/rabat"], "two"))
        .await
        .unwrap()
        .receipt;
    rabat.fetch(&r2.item_ref).await.unwrap();
    rabat.ack(&r2.item_ref).await.unwrap();
    h.running.take().unwrap().shutdown().await;
    let store = passerelle::store::open(
        &StoreConfig::from_setting(&h.config.store),
        std::sync::Arc::new(gateway_key(&h)),
    )
    .unwrap();
    let export = tempfile::tempdir().unwrap();
    passerelle::export::export(store.as_ref(), export.path()).unwrap();
    Exchanged {
        h,
        export,
        receipt_json,
        case_ref: r1.item_ref,
    }
}

fn gateway_key(h: &Harness) -> GatewayKey {
    GatewayKey::load(&h.config.audit.key, &h.config.audit.origin).unwrap()
}

#[tokio::test]
async fn a_real_gateways_log_verifies_offline_and_tampering_is_named() {
    let x = exchange_and_export().await;
    let key = gateway_key(&x.h);
    let vkey =
        verify::load_verifier_key(x.h.path().join("gateway/audit.vkey").to_str().unwrap()).unwrap();
    assert_eq!(vkey, key.verifier_key());
    let report = verify::verify(x.export.path(), &vkey).unwrap();
    assert!(report.size >= 6, "{report}");
    assert!(report.checkpoints.len() >= 2, "{report}");
    assert!(report.to_string().contains("verified"));
    every_tampering_is_caught(x.export.path(), &key.note);

    // The receipt kept by the sender checks out offline.
    let ok = prove::check_receipt_file(&x.receipt_json, &vkey, &[], 0).unwrap();
    assert!(ok.checked.included_in.is_some());
    assert!(ok.to_string().contains("inclusion proof verified"), "{ok}");
    // Tampered: another digest.
    let mut signed: passerelle::domain::receipt::SignedReceipt =
        serde_json::from_slice(&std::fs::read(&x.receipt_json).unwrap()).unwrap();
    signed.receipt.digest = "00".repeat(32);
    let e = prove::check_signed_receipt(&signed, &vkey).unwrap_err();
    assert!(matches!(e, ReceiptError::Invalid(_)), "{e}");
    assert_eq!(e.exit_code(), verify::EXIT_FAILED);
    // Checked with another log's key.
    let other = Synthetic::new(&[1]);
    let e = prove::check_receipt_file(&x.receipt_json, &other.vkey(), &[], 0).unwrap_err();
    assert!(matches!(e, ReceiptError::OtherLog { .. }), "{e}");
    assert!(e.to_string().contains("another log"), "{e}");
    // Not a receipt at all.
    let e = prove::check_receipt_file(&x.h.path().join("gateway.toml"), &vkey, &[], 0).unwrap_err();
    assert_eq!(e.exit_code(), verify::EXIT_CANNOT_RUN, "{e}");

    // show: filters.
    let all = show::show(x.export.path(), &Filter::default(), Some(&vkey)).unwrap();
    assert_eq!(all.total, report.size);
    assert_eq!(all.entries.len() as u64, report.size);
    let case = show::show(
        x.export.path(),
        &Filter {
            case: Some("CT-2026-014".into()),
            ..Filter::default()
        },
        Some(&vkey),
    )
    .unwrap();
    let events: Vec<&str> = case
        .entries
        .iter()
        .map(|s| show::event_name(&s.entry.as_ref().unwrap().event))
        .collect();
    // Both items carry the case: accepted, delivered, acknowledged each.
    assert_eq!(
        events.iter().filter(|e| **e == "item-accepted").count(),
        2,
        "{events:?}"
    );
    assert!(events.contains(&"delivered") && events.contains(&"acknowledged"));
    let rabat = show::show(
        x.export.path(),
        &Filter {
            principal: Some(PrincipalId::new("police/lo/rabat").unwrap()),
            decision: Some(Effect::Allow),
            ..Filter::default()
        },
        None,
    )
    .unwrap();
    assert!(rabat.verified.is_none());
    assert!(!rabat.entries.is_empty());
    for s in &rabat.entries {
        let line = s.to_string();
        assert!(line.contains("police/lo/rabat"), "{line}");
        assert!(line.contains(":allow["), "{line}");
    }
    assert!(rabat
        .entries
        .iter()
        .any(|s| s.to_string().contains(&x.case_ref)));
    let none = show::show(
        x.export.path(),
        &Filter {
            until: Some(0),
            ..Filter::default()
        },
        None,
    )
    .unwrap();
    assert!(none.entries.is_empty());
    // With a key, a tampered export is not listed.
    let t = copy_of(x.export.path());
    let b = bundle_of(1, report.size);
    let mut entries = read_bundle(t.path(), &b);
    entries[1][3] ^= 1;
    write_bundle(t.path(), &b, &entries);
    let e = show::show(t.path(), &Filter::default(), Some(&vkey)).unwrap_err();
    assert_eq!(e.exit_code(), verify::EXIT_FAILED);
}

fn passerelle() -> Command {
    Command::new(env!("CARGO_BIN_EXE_passerelle"))
}

#[tokio::test]
async fn the_cli_verifies_proves_checks_and_shows_with_stable_exit_codes() {
    let x = exchange_and_export().await;
    let vkey_file = x.h.path().join("gateway/audit.vkey");
    let export = x.export.path();
    let run = |args: &[&std::ffi::OsStr]| {
        let out = passerelle().args(args).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let os = |s: &str| std::ffi::OsString::from(s);

    let (code, stdout, stderr) = run(&[
        &os("audit"),
        &os("verify"),
        export.as_os_str(),
        &os("--key"),
        vkey_file.as_os_str(),
    ]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("verified"), "{stdout}");

    // The key string itself works too.
    let key_string = std::fs::read_to_string(&vkey_file).unwrap();
    let (code, _, stderr) = run(&[
        &os("audit"),
        &os("verify"),
        export.as_os_str(),
        &os("--key"),
        &os(key_string.trim()),
    ]);
    assert_eq!(code, Some(0), "{stderr}");

    // Tampered: exit 1, and the entry is named.
    let t = copy_of(export);
    let size = verify::verify(
        export,
        &verify::load_verifier_key(vkey_file.to_str().unwrap()).unwrap(),
    )
    .unwrap()
    .size;
    let b = bundle_of(2, size);
    let mut entries = read_bundle(t.path(), &b);
    let e = &mut entries[2];
    let mid = e.len() / 2;
    e[mid] ^= 0x20;
    write_bundle(t.path(), &b, &entries);
    let (code, _, stderr) = run(&[
        &os("audit"),
        &os("verify"),
        t.path().as_os_str(),
        &os("--key"),
        vkey_file.as_os_str(),
    ]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("entry 2 "), "{stderr}");

    // Could not run: exit 2.
    let (code, _, stderr) = run(&[
        &os("audit"),
        &os("verify"),
        export.as_os_str(),
        &os("--key"),
        &os("no/such/key.vkey"),
    ]);
    assert_eq!(code, Some(2), "{stderr}");
    let (code, _, _) = run(&[
        &os("audit"),
        &os("verify"),
        &os("/nonexistent/export"),
        &os("--key"),
        vkey_file.as_os_str(),
    ]);
    assert_eq!(code, Some(2));
    let (code, _, _) = run(&[&os("audit"), &os("verify")]);
    assert_eq!(code, Some(2), "usage errors exit 2");

    // prove: JSON of an InclusionProof, checked.
    let (code, stdout, stderr) = run(&[
        &os("audit"),
        &os("prove"),
        export.as_os_str(),
        &os("--index"),
        &os("1"),
        &os("--key"),
        vkey_file.as_os_str(),
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    let proof: passerelle::domain::receipt::InclusionProof = serde_json::from_str(&stdout).unwrap();
    assert_eq!(proof.index, 1);
    let (code, _, _) = run(&[
        &os("audit"),
        &os("prove"),
        export.as_os_str(),
        &os("--index"),
        &os("100000"),
        &os("--key"),
        vkey_file.as_os_str(),
    ]);
    assert_eq!(code, Some(2));

    // check-receipt.
    let (code, stdout, stderr) = run(&[
        &os("audit"),
        &os("check-receipt"),
        x.receipt_json.as_os_str(),
        &os("--key"),
        vkey_file.as_os_str(),
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("valid receipt"), "{stdout}");
    let mut signed: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&x.receipt_json).unwrap()).unwrap();
    signed["receipt"]["item_id"] = "forged".into();
    let forged = x.h.path().join("forged.json");
    std::fs::write(&forged, signed.to_string()).unwrap();
    let (code, _, stderr) = run(&[
        &os("audit"),
        &os("check-receipt"),
        forged.as_os_str(),
        &os("--key"),
        vkey_file.as_os_str(),
    ]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("NOT valid"), "{stderr}");

    // show --json: one object per line.
    let (code, stdout, stderr) = run(&[
        &os("audit"),
        &os("show"),
        export.as_os_str(),
        &os("--key"),
        vkey_file.as_os_str(),
        &os("--agency"),
        &os("vsse"),
        &os("--json"),
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(!lines.is_empty());
    for l in &lines {
        assert_eq!(l["verified"], true);
        assert!(l["time"].as_str().unwrap().ends_with('Z'), "{l}");
        assert!(l["principals"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p.as_str().unwrap().starts_with("vsse/")));
    }
    let (code, _, stderr) = run(&[&os("audit"), &os("show"), export.as_os_str()]);
    assert_eq!(code, Some(0));
    assert!(stderr.contains("UNVERIFIED"), "{stderr}");

    for cmd in ["verify", "prove", "check-receipt", "show"] {
        let (code, stdout, _) = run(&[&os("audit"), &os(cmd), &os("--help")]);
        assert_eq!(code, Some(0));
        assert!(stdout.contains("Exit codes"), "{cmd}: {stdout}");
    }
}

/// Builds a log of one million entries and verifies it, printing how long
/// verification took (a measurement for BENCHMARKS.md, not a pass/fail on
/// time). Run with
/// `cargo test --release --test audit_offline -- --ignored --nocapture`;
/// `benches/audit_verify.rs` measures the same with criterion.
#[test]
#[ignore]
fn a_million_entries_verify() {
    let log = Synthetic::new(&[500_000, 1_000_000]);
    let start = std::time::Instant::now();
    let report = verify::verify(&log.export(), &log.vkey()).unwrap();
    let took = start.elapsed();
    eprintln!("verified {} entries in {took:?}", report.size);
    assert_eq!(report.size, 1_000_000);
}

/// C2SP tlog-tiles: "Logs MUST serve partial tiles corresponding to tree
/// sizes for which a checkpoint was produced". A tlog-tiles client that
/// holds an older checkpoint recomputes its root from the export alone, and
/// finds the partial entry bundle of its size.
#[test]
fn an_export_serves_the_partial_tiles_of_every_checkpoint() {
    let log = Synthetic::new(&[100, 256, 300, 600, 70_000]);
    let export = log.export();
    let key = log.vkey();
    for size in checkpoint_sizes(&export) {
        let note = std::fs::read(export.join(format!("checkpoints/{size}"))).unwrap();
        let (checkpoint, _) =
            Checkpoint::open(&note, key.name(), std::slice::from_ref(&key)).unwrap();
        let root = tiles::root_from_tiles(size, |path| {
            std::fs::read(export.join(path.to_string())).ok()
        })
        .unwrap_or_else(|e| panic!("size {size}: {e}"));
        assert_eq!(root, checkpoint.root, "size {size}");
        if size % 256 != 0 {
            let bundle = export.join(format!("tile/entries/{:03}.p/{}", size / 256, size % 256));
            let data =
                std::fs::read(&bundle).unwrap_or_else(|e| panic!("{}: {e}", bundle.display()));
            assert_eq!(
                tiles::parse_entry_bundle(&data).unwrap().len() as u64,
                size % 256
            );
        }
    }
    verify::verify(&export, &key).unwrap();
}

/// An entry of format version 1, encoded as version 1 wrote it (fields in
/// declaration order, an event map with one key).
fn v1_entry(time: i64, name: &str, fields: Vec<(&str, ciborium::Value)>) -> Vec<u8> {
    use ciborium::Value;
    let map = |fields: Vec<(&str, Value)>| {
        Value::Map(
            fields
                .into_iter()
                .map(|(k, v)| (Value::Text(k.into()), v))
                .collect(),
        )
    };
    let entry = map(vec![
        ("v", Value::Integer(1.into())),
        ("time", Value::Integer(time.into())),
        ("event", map(vec![(name, map(fields))])),
    ]);
    let mut out = Vec::new();
    ciborium::into_writer(&entry, &mut out).unwrap();
    out
}

/// A log begun under entry format version 1 and continued under the
/// current version verifies, and its old entries are listed, not called
/// undecodable.
#[test]
fn a_log_with_version_1_entries_verifies_and_shows() {
    use ciborium::Value;
    let t = |s: &str| Value::Text(s.into());
    let label = || {
        Value::Map(vec![
            (t("level"), t("SECRET")),
            (t("originator"), Value::Map(vec![(t("agency"), t("vsse"))])),
        ])
    };
    let mut entries = vec![
        v1_entry(
            1_700_000_000,
            "gateway-started",
            vec![("version", t("0.1.0")), ("policy_digest", t("ab"))],
        ),
        v1_entry(
            1_700_000_001,
            "connection-refused",
            vec![("peer", t("192.0.2.1:4000")), ("reason", t("handshake"))],
        ),
        v1_entry(
            1_700_000_002,
            "item-accepted",
            vec![
                ("item_ref", t(&"ab".repeat(16))),
                ("item_id", t("id-1")),
                ("sender", t("vsse/analysis/ct")),
                ("digest", t("dd")),
                ("purpose", t("terrorism")),
                ("cases", Value::Array(vec![t("CT-2026-014")])),
                ("label", label()),
                ("portion_labels", Value::Array(vec![label()])),
                (
                    "decisions",
                    Value::Array(vec![Value::Map(vec![
                        (t("recipient"), t("police/lo/rabat")),
                        (t("effect"), t("deny")),
                        (t("portions"), Value::Array(vec![])),
                        (t("rules"), Value::Array(vec![t("default.deny")])),
                        (t("reasons"), Value::Array(vec![t("no grant")])),
                    ])]),
                ),
                ("policy_digest", t("ab")),
            ],
        ),
    ];
    // Then the current version.
    entries.push(ack_entry(3).encode());
    let log = Synthetic::new(&[1]);
    let export = log.export();
    rewrite_all(&export, &entries);
    std::fs::remove_dir_all(export.join("checkpoints")).unwrap();
    std::fs::create_dir_all(export.join("checkpoints")).unwrap();
    let tree = Tree::from_leaf_hashes(entries.iter().map(|e| leaf_hash(e)));
    let size = entries.len() as u64;
    let note = Checkpoint::new(log.vkey().name(), size, tree.root())
        .sign(&[&log.key.note])
        .unwrap();
    std::fs::write(export.join(format!("checkpoints/{size}")), &note).unwrap();
    std::fs::write(export.join("checkpoint"), &note).unwrap();

    let key = log.vkey().to_string();
    let out = passerelle()
        .args(["audit", "verify"])
        .arg(&export)
        .args(["--key", &key])
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let out = passerelle()
        .args(["audit", "show"])
        .arg(&export)
        .args(["--key", &key, "--case", "CT-2026-014"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("item-accepted"), "{text}");
    assert!(!text.contains("not an audit entry"), "{text}");
    let out = passerelle()
        .args(["audit", "show"])
        .arg(&export)
        .args(["--key", &key])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(text.contains("192.0.2.1:4000: handshake"), "{text}");
    assert!(text.contains("acknowledged"), "{text}");
}
