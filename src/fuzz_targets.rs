//! The bodies of the fuzz targets: one function per decoder that bytes
//! from outside reach (items in CBOR and JSON, COSE_Sign1, receipts and
//! attestations, signed notes, checkpoints, cosignatures and witness
//! requests, tiles and entry bundles, the policy, station item files,
//! client certificates' extensions as the identity step reads them).
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
use crate::domain::bytes::{from_cbor, to_cbor, Bytes};
use crate::domain::cose::{self, PublicKey};
use crate::domain::decode;
use crate::domain::item::{DeliveredItem, SignedItem};
use crate::domain::receipt::SignedReceipt;

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
        let _ = item.verify(&cose_key());
    }
    if let Ok(delivered) = decode::cbor::<DeliveredItem>(data) {
        let _ = delivered.verify(&cose_key());
        let _ = crate::tls::read_claims(&delivered.sender_certificate.0);
    }
}

/// A submitted item in JSON, as curl users send it.
pub fn item_json(data: &[u8]) {
    if let Ok(item) = decode::json::<SignedItem>(data) {
        let _ = item.verify(&cose_key());
    }
}

/// A COSE_Sign1 envelope (an item's, a receipt's, an attestation's).
pub fn cose_sign1(data: &[u8]) {
    let _ = cose::payload_unverified(data);
    let _ = cose_key().verify1(data);
    let _ = PublicKey::Es256(vec![4; 65]).verify1(data);
}

/// A signed receipt (as a station gets it) and a delivery attestation.
pub fn receipt(data: &[u8]) {
    let key = log_key();
    if let Ok(signed) = decode::cbor::<SignedReceipt>(data) {
        let _ = crate::audit::receipts::check_receipt(&signed, &key);
    }
    if let Ok(signed) = decode::json::<SignedReceipt>(data) {
        let _ = crate::audit::receipts::check_receipt(&signed, &key);
    }
    let _ = crate::audit::receipts::check_attestation(&Bytes(data.to_vec()), &key);
}

/// A C2SP signed note, and key strings an auditor pastes.
pub fn signed_note(data: &[u8]) {
    let _ = signed_note::parse(data);
    let _ = signed_note::open(data, &[log_key()]);
    let text = String::from_utf8_lossy(data);
    let _ = text.trim().parse::<VerifierKey>();
    let _ = text.trim().parse::<CosignatureVerifier>();
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
    }
    let _ = Checkpoint::open(data, ORIGIN, &[log_key()]);
}

/// A cosigned checkpoint (C2SP tlog-cosignature) and a witness's
/// `add-checkpoint` request body.
pub fn cosignature(data: &[u8]) {
    let _ = cosignature::open_cosigned(data, ORIGIN, &log_key(), &[witness_key()]);
    let _ = AddCheckpoint::parse(data);
    let _ = crate::audit::witness::parse_size_body(&String::from_utf8_lossy(data));
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
        let _ = tiles::parse_hash_tile(path, body);
    }
    if let Ok(entries) = tiles::parse_entry_bundle(body) {
        for e in entries {
            let _ = AuditEntry::decode(e);
        }
    }
    let _ = AuditEntry::decode(data);
}

/// A policy file, as a security officer writes one.
pub fn policy_toml(data: &[u8]) {
    let text = String::from_utf8_lossy(data).into_owned();
    let _ = crate::policy::Policy::from_sources(&[("fuzz.toml".to_string(), text)]);
}

/// A station's item file (`send --item`).
pub fn item_spec(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = crate::spec::ItemSpec::parse(&text);
}

/// A client certificate's DER, as the identity step reads its extensions
/// (before and apart from chain verification) and its key.
pub fn client_certificate(data: &[u8]) {
    let _ = crate::tls::read_claims(data);
    let _ = PublicKey::from_certificate_der(data);
}
