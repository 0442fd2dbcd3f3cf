//! The bodies of the fuzz targets: one function per decoder that bytes
//! from outside reach (items in CBOR and JSON, COSE_Sign1, receipts and
//! attestations, signed notes, checkpoints, cosignatures and witness
//! requests, tiles and entry bundles, the policy, station item files,
//! client certificates' extensions as the identity step reads them).
//!
//! Where a signature gates a decoder, the target also signs what it
//! decoded with its own fixed key and checks it again, so the fuzzer
//! reaches the checks behind the signature, and asserts what must hold:
//! what decodes survives its re-encoding, what was signed verifies and
//! reads back as signed.
//!
//! `fuzz/` (cargo-fuzz, libFuzzer) calls each with the fuzzer's bytes, and
//! `tests/fuzz_corpus.rs` calls each with every file of its corpus and with
//! bounded, seeded mutations of them, so CI exercises the same code on
//! stable Rust. A function here may only panic on a broken invariant of
//! ours (what it decoded does not survive its own re-encoding); a decoder
//! refusing the bytes is the expected outcome. Nothing here does I/O or
//! keeps state between calls.

use crate::audit::cosignature::{self, CosignatureVerifier, CosignerKey};
use crate::audit::signed_note::{self, SignerKey, VerifierKey};
use crate::audit::{checkpoint::Checkpoint, event::AuditEntry, tiles, witness::AddCheckpoint};
use crate::domain::attestation::ATTESTATION_CONTENT_TYPE;
use crate::domain::bytes::{from_cbor, to_cbor, Bytes};
use crate::domain::cose::{self, PublicKey, SigningKey};
use crate::domain::decode;
use crate::domain::item::{DeliveredItem, ItemError, Manifest, SignedItem, MANIFEST_CONTENT_TYPE};
use crate::domain::receipt::{SignedReceipt, RECEIPT_CONTENT_TYPE};

/// A target's body: bytes in, a panic only on a broken invariant.
pub type Target = fn(&[u8]);

/// Every target, by the name of its `fuzz/fuzz_targets/<name>.rs` and
/// corpus directory `fuzz/corpus/<name>/`.
pub const TARGETS: [(&str, Target); 11] = [
    ("item_cbor", item_cbor),
    ("item_json", item_json),
    ("cose_sign1", cose_sign1),
    ("receipt", receipt),
    ("signed_note", signed_note),
    ("checkpoint", checkpoint),
    ("cosignature", cosignature),
    ("tiles", tiles),
    ("policy_toml", policy_toml),
    ("item_spec", item_spec),
    ("client_certificate", client_certificate),
];

/// The log origin the targets' fixed keys are named for.
pub const ORIGIN: &str = "fuzz.example/log";
/// The witness name of the targets' fixed cosigner.
pub const WITNESS: &str = "fuzz.example/witness";

/// The fixed signer the targets verify against (seeds are public: these
/// keys only make the verifying code run to its end).
pub fn log_signer() -> SignerKey {
    // A fixed, valid name and seed: cannot fail.
    SignerKey::from_ed25519_seed(ORIGIN, [7; 32]).unwrap_or_else(|e| panic!("fuzz key: {e}"))
}

/// The fixed witness key the targets verify cosignatures against.
pub fn witness_signer() -> CosignerKey {
    CosignerKey::from_ed25519_seed(WITNESS, [9; 32]).unwrap_or_else(|e| panic!("fuzz key: {e}"))
}

/// The fixed key the targets sign COSE_Sign1 with: the log signer's seed,
/// so what it signs verifies with [`log_key`] as receipts and
/// attestations do.
fn cose_signer() -> SigningKey {
    // A 32-byte seed: ring refuses only other lengths.
    SigningKey::Ed25519(
        ring::signature::Ed25519KeyPair::from_seed_unchecked(&[7; 32])
            .unwrap_or_else(|e| panic!("fuzz key: {e}")),
    )
}

fn log_key() -> VerifierKey {
    log_signer().verifier_key()
}

fn cose_key() -> PublicKey {
    PublicKey::Ed25519(log_key().public_key().to_vec())
}

fn witness_key() -> CosignatureVerifier {
    witness_signer().verifier().clone()
}

/// A submitted item in CBOR: decoded, checked, and what decodes survives
/// its own re-encoding.
pub fn item_cbor(data: &[u8]) {
    if let Ok(item) = decode::cbor::<SignedItem>(data) {
        let again: SignedItem = from_cbor(&to_cbor(&item))
            .unwrap_or_else(|e| panic!("a decoded item does not decode re-encoded: {e}"));
        assert_eq!(again, item, "an item changed through its re-encoding");
        let _ = item.clone().verify(&cose_key());
        resigned_item(item);
    }
    if let Ok(delivered) = decode::cbor::<DeliveredItem>(data) {
        let _ = delivered.verify(&cose_key());
        let _ = crate::tls::read_claims(&delivered.sender_certificate.0);
        let manifest = cose::payload_unverified(&delivered.envelope.0)
            .ok()
            .and_then(|p| from_cbor::<Manifest>(&p).ok());
        if let Some(manifest) = manifest {
            // Behind the signature: the delivered portions against the
            // manifest, as a recipient checks them.
            let envelope = cose_signer().sign1(to_cbor(&manifest), MANIFEST_CONTENT_TYPE);
            let resigned = DeliveredItem {
                envelope: Bytes(envelope),
                ..delivered
            };
            if let Ok((checked, _)) = resigned.verify(&cose_key()) {
                assert_eq!(
                    checked, manifest,
                    "a delivered manifest changed in checking"
                );
            }
        }
    }
}

/// The item's own manifest and portions signed again with the targets'
/// key, so the checks behind the signature run on the fuzzer's bytes; and
/// an item signed by [`SignedItem::sign`] is never refused for its
/// signature, its encoding or a portion it did not sign.
fn resigned_item(item: SignedItem) {
    let Ok(manifest) = item.own_manifest() else {
        return;
    };
    let resigned = SignedItem {
        envelope: Bytes(cose_signer().sign1(to_cbor(&manifest), MANIFEST_CONTENT_TYPE)),
        portions: item.portions.clone(),
    };
    let _ = resigned.verify(&cose_key());
    let signed = SignedItem::sign(
        &cose_signer(),
        manifest.header,
        manifest.label,
        item.portions,
    );
    signed_item_verifies(signed);
}

/// What [`SignedItem::sign`] made may be refused for its bounds or shape,
/// never for its signature, its encoding or its portions.
fn signed_item_verifies(signed: SignedItem) {
    if let Err(
        e @ (ItemError::Signature(_)
        | ItemError::NotDeterministic
        | ItemError::PortionMismatch(_)
        | ItemError::Cbor(_)),
    ) = signed.verify(&cose_key())
    {
        panic!("an item we signed does not verify: {e}");
    }
}

/// A submitted item in JSON, as curl users send it: what decodes survives
/// its JSON re-encoding.
pub fn item_json(data: &[u8]) {
    if let Ok(item) = decode::json::<SignedItem>(data) {
        let text = serde_json::to_vec(&item)
            .unwrap_or_else(|e| panic!("a decoded item does not encode as JSON: {e}"));
        let again: SignedItem = decode::json(&text)
            .unwrap_or_else(|e| panic!("a decoded item does not decode re-encoded: {e}"));
        assert_eq!(again, item, "an item changed through its JSON re-encoding");
        let _ = item.clone().verify(&cose_key());
        resigned_item(item);
    }
}

/// A COSE_Sign1 envelope (an item's, a receipt's, an attestation's).
/// Whatever the bytes, the payload the targets' key signs verifies and
/// reads back as signed, under its content type only.
pub fn cose_sign1(data: &[u8]) {
    let _ = cose::payload_unverified(data);
    let _ = cose_key().verify1(data);
    let _ = PublicKey::Es256(vec![4; 65]).verify1(data);

    let envelope = cose_signer().sign1(data.to_vec(), MANIFEST_CONTENT_TYPE);
    let key = cose_key();
    assert_eq!(
        key.verify1_as(&envelope, MANIFEST_CONTENT_TYPE).as_deref(),
        Ok(data),
        "a payload we signed does not verify as signed"
    );
    assert_eq!(cose::payload_unverified(&envelope).as_deref(), Ok(data));
    assert_eq!(
        key.verify1_as(&envelope, RECEIPT_CONTENT_TYPE),
        Err(cose::CoseError::ContentType),
        "a signature checked under another content type"
    );
    assert!(
        PublicKey::Es256(vec![4; 65]).verify1(&envelope).is_err(),
        "an EdDSA signature checked as ES256"
    );
}

/// A signed receipt (as a station gets it) and a delivery attestation.
pub fn receipt(data: &[u8]) {
    let key = log_key();
    if let Ok(signed) = decode::cbor::<SignedReceipt>(data) {
        let again: SignedReceipt = from_cbor(&to_cbor(&signed))
            .unwrap_or_else(|e| panic!("a decoded receipt does not decode re-encoded: {e}"));
        assert_eq!(again, signed, "a receipt changed through its re-encoding");
        resigned_receipt(signed, &key);
    }
    if let Ok(signed) = decode::json::<SignedReceipt>(data) {
        resigned_receipt(signed, &key);
    }
    let _ = crate::audit::receipts::check_attestation(&Bytes(data.to_vec()), &key);
    // Behind the signature: the attestation's payload decoded.
    let attestation = Bytes(cose_signer().sign1(data.to_vec(), ATTESTATION_CONTENT_TYPE));
    if let Ok(a) = crate::audit::receipts::check_attestation(&attestation, &key) {
        let again: crate::domain::attestation::Attestation = from_cbor(&to_cbor(&a))
            .unwrap_or_else(|e| panic!("an attestation does not decode re-encoded: {e}"));
        assert_eq!(again, a, "an attestation changed through its re-encoding");
    }
}

/// The receipt checked as it came, then signed again by the targets' key
/// (and its inclusion proof's checkpoint with it), so the checks behind
/// the signatures run; a receipt signed as it reads, without a proof, is
/// always accepted.
fn resigned_receipt(signed: SignedReceipt, key: &VerifierKey) {
    use crate::audit::receipts::check_receipt;
    let _ = check_receipt(&signed, key);
    let cose = Bytes(cose_signer().sign1(to_cbor(&signed.receipt), RECEIPT_CONTENT_TYPE));
    let bare = SignedReceipt {
        cose: cose.clone(),
        receipt: signed.receipt.clone(),
        inclusion: None,
    };
    match check_receipt(&bare, key) {
        Ok(checked) => assert_eq!(checked.receipt, signed.receipt),
        Err(e) => panic!("a receipt we signed is refused: {e}"),
    }
    if let Some(mut proof) = signed.inclusion {
        let text = signed_note::parse(proof.checkpoint.as_bytes())
            .map(|n| n.text.to_string())
            .unwrap_or_else(|_| proof.checkpoint.clone());
        if let Ok(mut c) = Checkpoint::from_note_text(&text) {
            c.origin = ORIGIN.to_string();
            if let Ok(note) = c.sign(&[&log_signer()]) {
                proof.checkpoint = note;
            }
        }
        let _ = check_receipt(
            &SignedReceipt {
                cose,
                receipt: signed.receipt,
                inclusion: Some(proof),
            },
            key,
        );
    }
}

/// A C2SP signed note, and key strings an auditor pastes.
/// A parsed note writes back to its own bytes; text the targets' key signs
/// opens to that text, and to nothing else once a byte of it changes.
pub fn signed_note(data: &[u8]) {
    if let Ok(parsed) = signed_note::parse(data) {
        let mut again = format!("{}\n", parsed.text);
        for line in &parsed.signatures {
            again.push_str(&format!("{line}\n"));
        }
        assert_eq!(
            again.as_bytes(),
            data,
            "a parsed note does not write back to its bytes"
        );
    }
    let _ = signed_note::open(data, &[log_key()]);
    let text = String::from_utf8_lossy(data);
    if let Ok(k) = text.trim().parse::<VerifierKey>() {
        assert_eq!(k.to_string(), text.trim(), "a verifier key string changed");
    }
    let _ = text.trim().parse::<CosignatureVerifier>();
    let _ = SignerKey::from_signer_key_string(text.trim());

    let key = log_key();
    if let Ok(note) = signed_note::sign(&text, &[&log_signer()]) {
        let opened = signed_note::open(note.as_bytes(), std::slice::from_ref(&key))
            .unwrap_or_else(|e| panic!("a note we signed does not open: {e}"));
        assert_eq!(opened.text, text, "a note we signed opened to other text");
        // The text changed by one byte (still a note): refused.
        let mut tampered = note.into_bytes();
        if let Some(at) = tampered.iter().position(|&b| b != b'\n') {
            tampered[at] = if tampered[at] == b'x' { b'y' } else { b'x' };
            if let Ok(forged) = signed_note::open(&tampered, std::slice::from_ref(&key)) {
                panic!("a changed note opened: {:?}", forged.text);
            }
        }
    }
}

/// A C2SP tlog-checkpoint, as text and as a signed note.
pub fn checkpoint(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(c) = Checkpoint::from_note_text(&text) {
        let again = c
            .to_note_text()
            .ok()
            .and_then(|t| Checkpoint::from_note_text(&t).ok());
        assert_eq!(
            again.as_ref(),
            Some(&c),
            "a checkpoint changed through its text"
        );
        // Signed by the log it names, it opens as itself.
        let ours = Checkpoint {
            origin: ORIGIN.to_string(),
            ..c
        };
        if let Ok(note) = ours.sign(&[&log_signer()]) {
            match Checkpoint::open(note.as_bytes(), ORIGIN, &[log_key()]) {
                Ok((opened, _)) => assert_eq!(opened, ours, "a checkpoint changed in signing"),
                Err(e) => panic!("a checkpoint we signed does not open: {e}"),
            }
        }
    }
    let _ = Checkpoint::open(data, ORIGIN, &[log_key()]);
}

/// A cosigned checkpoint (C2SP tlog-cosignature) and a witness's
/// `add-checkpoint` request body.
/// What parses writes back to its bytes; a checkpoint the targets' log
/// signs and their witness cosigns opens with that one cosignature.
pub fn cosignature(data: &[u8]) {
    use crate::audit::witness::{parse_size_body, size_body};
    let _ = cosignature::open_cosigned(data, ORIGIN, &log_key(), &[witness_key()]);
    if let Ok(req) = AddCheckpoint::parse(data) {
        if let Ok(note) = std::str::from_utf8(req.note) {
            let body = AddCheckpoint::body(req.old_size, &req.proof, note);
            assert_eq!(body.as_bytes(), data, "an add-checkpoint body changed");
        }
    }
    let text = String::from_utf8_lossy(data);
    if let Some(size) = parse_size_body(&text) {
        assert_eq!(size_body(size), text, "a size body changed");
    }

    let Ok(c) = Checkpoint::from_note_text(&text) else {
        return;
    };
    let ours = Checkpoint {
        origin: ORIGIN.to_string(),
        ..c
    };
    let (Ok(note), Ok(note_text)) = (ours.sign(&[&log_signer()]), ours.to_note_text()) else {
        return;
    };
    // A timestamp the fuzzer chooses, never zero.
    let timestamp = 1 + data
        .iter()
        .fold(0u64, |t, &b| t.rotate_left(5) ^ u64::from(b))
        % (1 << 40);
    let line = witness_signer()
        .cosign(&note_text, timestamp)
        .unwrap_or_else(|e| panic!("cosigning our checkpoint failed: {e}"));
    let cosigned = cosignature::attach_cosignatures(&note, &line, &witness_key())
        .unwrap_or_else(|e| panic!("our cosignature does not attach: {e}"));
    let opened =
        cosignature::open_cosigned(cosigned.as_bytes(), ORIGIN, &log_key(), &[witness_key()])
            .unwrap_or_else(|e| panic!("a cosigned checkpoint of ours does not open: {e}"));
    assert_eq!(opened.checkpoint, ours);
    assert_eq!(opened.count(), 1);
    assert_eq!(opened.cosignatures[0].timestamp, timestamp);
}

/// A tile path, then (after the first newline) a hash tile or an entry
/// bundle at it, whose entries are audit entries.
pub fn tiles(data: &[u8]) {
    let (head, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let path = String::from_utf8_lossy(head).parse::<tiles::TilePath>();
    if let Ok(path) = &path {
        let text = String::from_utf8_lossy(head);
        assert_eq!(path.to_string(), text, "a tile path changed");
        if let Ok(hashes) = tiles::parse_hash_tile(path, body) {
            assert_eq!(hashes.concat(), body, "a hash tile changed");
        }
    }
    if let Ok(entries) = tiles::parse_entry_bundle(body) {
        let again = tiles::encode_entry_bundle(entries.iter().copied())
            .unwrap_or_else(|e| panic!("a parsed bundle does not encode: {e}"));
        assert_eq!(again, body, "an entry bundle changed");
        for e in entries {
            audit_entry(e);
        }
    }
    audit_entry(data);
}

/// An audit entry (either version) decodes to one that survives its
/// current encoding.
fn audit_entry(data: &[u8]) {
    if let Ok(entry) = AuditEntry::decode(data) {
        let again = AuditEntry::decode(&entry.encode())
            .unwrap_or_else(|e| panic!("an audit entry does not decode re-encoded: {e}"));
        assert_eq!(again, entry, "an audit entry changed through its encoding");
        let _ = entry.principals();
    }
}

/// A policy file, as a security officer writes one.
pub fn policy_toml(data: &[u8]) {
    let text = String::from_utf8_lossy(data).into_owned();
    let _ = crate::policy::Policy::from_sources(&[("fuzz.toml".to_string(), text)]);
}

/// A station's item file (`send --item`).
pub fn item_spec(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let Ok(spec) = crate::spec::ItemSpec::parse(&text) else {
        return;
    };
    // Signed as a station signs it: refused perhaps for its bounds, never
    // for what the station itself made.
    let sender = crate::domain::principal::PrincipalId::new("police/lo/rabat")
        .unwrap_or_else(|e| panic!("fuzz sender: {e}"));
    signed_item_verifies(spec.sign(&cose_signer(), &sender, 1_790_000_000));
}

/// A client certificate's DER, as the identity step reads its extensions
/// (before and apart from chain verification) and its key.
pub fn client_certificate(data: &[u8]) {
    let _ = crate::tls::read_claims(data);
    let _ = PublicKey::from_certificate_der(data);
}
