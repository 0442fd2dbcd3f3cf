//! The fuzz targets on stable Rust: every file of every target's corpus
//! (`fuzz/corpus/<target>/`: `seed-*` from the test vectors and a real
//! exchange, `found-*` a handful of the fuzzer's inputs that reach code the
//! seeds do not, and `crash-*` each crash it found) goes through the same
//! function `cargo fuzz` calls (`passerelle::fuzz_targets`), then a bounded,
//! seeded run of mutations of them. A target that panics fails the test.
//!
//! The seeds are written by the ignored test `write_seed_corpus`:
//! `cargo test --test fuzz_corpus -- --ignored write_seed_corpus`.

mod common;

use std::path::{Path, PathBuf};

use passerelle::fuzz_targets::{self, TARGETS};

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target)
}

/// The files of a target's corpus, sorted, so the mutation run is the same
/// on every machine.
fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus_dir(target))
        .unwrap_or_else(|e| panic!("fuzz/corpus/{target}: {e}"))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect()
}

/// Runs `target` on `data`, naming the input if it panics.
fn run(name: &str, target: fn(&[u8]), data: &[u8], what: &dyn Fn() -> String) {
    if std::panic::catch_unwind(|| target(data)).is_err() {
        panic!(
            "fuzz target {name} panicked on {} ({} bytes: {})",
            what(),
            data.len(),
            hex::encode(&data[..data.len().min(256)])
        );
    }
}

#[test]
fn every_target_has_a_fuzz_target_file_and_a_corpus() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    for (name, _) in TARGETS {
        let file = root.join("fuzz_targets").join(format!("{name}.rs"));
        let text =
            std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        assert!(
            text.contains(&format!("fuzz_targets::{name}(")),
            "{}",
            file.display()
        );
        assert!(
            manifest.contains(&format!("name = \"{name}\"")),
            "fuzz/Cargo.toml has no [[bin]] {name}"
        );
        assert!(
            corpus(name).len() >= 2,
            "fuzz/corpus/{name} has too few seeds"
        );
    }
}

/// A dictionary scripts/fuzz.sh would not pass to any target (a renamed
/// target's) is a dictionary no run uses.
#[test]
fn every_dictionary_is_a_targets() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/dict");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        assert!(
            path.extension().is_some_and(|x| x == "dict")
                && TARGETS.iter().any(|(t, _)| *t == name),
            "{} names no fuzz target",
            path.display()
        );
    }
}

#[test]
fn every_corpus_file_runs_through_its_target() {
    for (name, target) in TARGETS {
        for (path, data) in corpus(name) {
            run(name, target, &data, &|| path.display().to_string());
        }
    }
}

/// A small, seeded generator (xorshift64*): the same mutations on every
/// run, so a failure here is reproducible. Not for anything secret.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// One mutation, of the kinds libFuzzer makes: flip a bit, set a byte to
/// an interesting value, cut, duplicate a slice, splice another input in.
fn mutate(rng: &mut Rng, data: &[u8], other: &[u8]) -> Vec<u8> {
    let mut out = data.to_vec();
    for _ in 0..=rng.below(4) {
        let len = out.len();
        match rng.below(6) {
            0 if len > 0 => {
                let i = rng.below(len);
                out[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                out[i] =
                    [0x00, 0xff, 0x7f, 0x80, 0x18, 0x1b, 0x5b, 0x7b, b'\n', b'"'][rng.below(10)];
            }
            2 if len > 0 => out.truncate(rng.below(len)),
            3 if len > 0 => {
                let a = rng.below(len);
                let b = (a + rng.below(64)).min(len);
                let slice = out[a..b].to_vec();
                let at = rng.below(len);
                out.splice(at..at, slice);
            }
            4 if !other.is_empty() => {
                let a = rng.below(other.len());
                let b = (a + rng.below(256)).min(other.len());
                let at = rng.below(len + 1);
                out.splice(at..at, other[a..b].iter().copied());
            }
            _ => {
                let at = rng.below(len + 1);
                out.insert(at, rng.next() as u8);
            }
        }
    }
    out
}

#[test]
fn seeded_mutations_of_every_corpus_run_through_their_targets() {
    // Bounded: this many mutants per target, whatever the corpus size.
    const PER_TARGET: usize = 2000;
    for (t, (name, target)) in TARGETS.into_iter().enumerate() {
        let files = corpus(name);
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (t as u64 + 1));
        for n in 0..PER_TARGET {
            let (path, base) = &files[n % files.len()];
            let (_, other) = &files[rng.below(files.len())];
            let mutant = mutate(&mut rng, base, other);
            run(name, target, &mutant, &|| {
                format!("mutant {n} of {}", path.display())
            });
        }
    }
}

/// Writes the seed corpus: the repository's test vectors and the bytes of a
/// real exchange with a real gateway (items, deliveries, receipts,
/// attestations, certificates). Run by hand when a format changes; the
/// inputs the fuzzer found (`found-*`, `crash-*`) are kept.
#[tokio::test]
#[ignore = "writes fuzz/corpus; run by hand"]
async fn write_seed_corpus() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let vectors = root.join("tests/vectors");
    let mut seeds: Vec<(&str, String, Vec<u8>)> = Vec::new();
    let read = |p: &str| std::fs::read(vectors.join(p)).unwrap();

    // A real exchange: Rabat sends, VSSE fetches.
    let h = common::Harness::start().await;
    let rabat = h.station("police/lo/rabat");
    let vsse = h.station("vsse/analysis/ct");
    let item = common::item(&rabat, "fuzz-seed-1", &["vsse/analysis/ct"], "seed");
    let receipt = rabat.submit(&item).await.unwrap();
    let delivered = vsse
        .fetch(&receipt.receipt.item_ref.to_string())
        .await
        .unwrap();
    use passerelle::domain::bytes::to_cbor as cbor;
    seeds.push(("item_cbor", "submitted".into(), cbor(&item)));
    seeds.push(("item_cbor", "delivered".into(), cbor(&delivered)));
    seeds.push((
        "item_json",
        "submitted".into(),
        serde_json::to_vec(&item).unwrap(),
    ));
    seeds.push((
        "item_json",
        "delivered".into(),
        serde_json::to_vec(&delivered).unwrap(),
    ));
    seeds.push((
        "cose_sign1",
        "item-envelope".into(),
        item.envelope.0.clone(),
    ));
    seeds.push(("cose_sign1", "receipt".into(), receipt.cose.0.clone()));
    seeds.push((
        "cose_sign1",
        "attestation".into(),
        delivered.attestation.0.clone(),
    ));
    seeds.push(("receipt", "receipt-cbor".into(), cbor(&receipt)));
    seeds.push((
        "receipt",
        "receipt-json".into(),
        serde_json::to_vec(&receipt).unwrap(),
    ));
    seeds.push((
        "receipt",
        "attestation".into(),
        delivered.attestation.0.clone(),
    ));
    seeds.push((
        "client_certificate",
        "rabat-ed25519".into(),
        delivered.sender_certificate.0.clone(),
    ));
    for (name, pem) in [
        (
            "vsse-p256",
            h.path().join("stations/vsse-analysis-ct/cert.pem"),
        ),
        ("gateway", h.path().join("gateway/cert.pem")),
        ("police-ca", h.path().join("police/ca.pem")),
    ] {
        let der = passerelle::tls::load_certs(&pem).unwrap().remove(0);
        seeds.push(("client_certificate", name.into(), der.to_vec()));
    }
    let spec = std::fs::read_to_string(root.join("src/demo.rs")).unwrap();
    // The demo's item files: each `r#"` … `"#` constant that is an item.
    for (i, block) in spec.split("r#\"").skip(1).enumerate() {
        if let Some((text, _)) = block.split_once("\"#") {
            if text.contains("[[portion]]") {
                seeds.push(("item_spec", format!("demo-{i}"), text.as_bytes().to_vec()));
            }
        }
    }
    h.running.unwrap().shutdown().await;

    // COSE_Sign1 from the COSE working group's examples.
    for e in std::fs::read_dir(vectors.join("cose-wg")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "json") {
            let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
            if let Some(hex) = v["output"]["cbor"].as_str() {
                let name = p.file_stem().unwrap().to_string_lossy().to_string();
                seeds.push((
                    "cose_sign1",
                    format!("cose-wg-{name}"),
                    hex::decode(hex).unwrap(),
                ));
            }
        }
    }

    // Signed notes and checkpoints: C2SP, Go's note package, sum.golang.org,
    // tessera; and notes signed by the targets' own keys, so the verifying
    // code runs to its end.
    for (name, path) in [
        ("c2sp-example", "c2sp/signed-note-example.note"),
        ("c2sp-quasimodo", "c2sp/signed-note-quasimodo.note"),
        ("go-one", "golang-mod/note/signed-by-PeterNeumann.note"),
        (
            "go-two",
            "golang-mod/note/signed-by-PeterNeumann-and-EnochRoot.note",
        ),
    ] {
        seeds.push(("signed_note", name.into(), read(path)));
    }
    for (name, path) in [
        ("c2sp", "c2sp/tlog-checkpoint-example.note"),
        ("sumdb", "sum-golang-org/tree-31700353.note"),
        ("tessera-0", "tessera/log/checkpoint.0"),
        ("tessera-15", "tessera/log/checkpoint.15"),
    ] {
        seeds.push(("checkpoint", name.into(), read(path)));
        seeds.push(("signed_note", format!("checkpoint-{name}"), read(path)));
    }
    let signer = fuzz_targets::log_signer();
    let own = passerelle::audit::checkpoint::Checkpoint::new(fuzz_targets::ORIGIN, 5, [3; 32])
        .sign(&[&signer])
        .unwrap();
    seeds.push(("checkpoint", "own".into(), own.as_bytes().to_vec()));
    seeds.push(("signed_note", "own".into(), own.as_bytes().to_vec()));
    let text = own.split("\n\n").next().unwrap().to_string() + "\n";
    let line = fuzz_targets::witness_signer()
        .cosign(&text, 1_790_000_000)
        .unwrap();
    let cosigned = passerelle::audit::cosignature::attach_cosignatures(
        &own,
        &line,
        fuzz_targets::witness_signer().verifier(),
    )
    .unwrap();
    seeds.push((
        "cosignature",
        "cosigned".into(),
        cosigned.as_bytes().to_vec(),
    ));
    seeds.push((
        "cosignature",
        "add-checkpoint".into(),
        passerelle::audit::witness::AddCheckpoint::body(3, &[[1; 32], [2; 32]], &own).into_bytes(),
    ));
    seeds.push(("cosignature", "size".into(), b"17\n".to_vec()));

    // Tiles and entry bundles from tessera's test log.
    for w in [1, 4, 15] {
        let mut hashes = format!("tile/0/000.p/{w}\n").into_bytes();
        hashes.extend(read(&format!("tessera/log/tile/0/000.p/{w}")));
        seeds.push(("tiles", format!("hashes-{w}"), hashes));
        let mut entries = format!("tile/entries/000.p/{w}\n").into_bytes();
        entries.extend(read(&format!("tessera/log/tile/entries/000.p/{w}")));
        seeds.push(("tiles", format!("entries-{w}"), entries));
    }

    // The example policy, file by file.
    for e in std::fs::read_dir(root.join("policies")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "toml") {
            let name = p.file_stem().unwrap().to_string_lossy().to_string();
            seeds.push(("policy_toml", name, std::fs::read(&p).unwrap()));
        }
    }

    for (target, name, data) in seeds {
        let dir = corpus_dir(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("seed-{name}")), data).unwrap();
    }
}
