//! Tests of `cosignature/v1`: published vectors, round trips, refusals.

use super::*;
use crate::audit::rfc9162::empty_root;

const ORIGIN: &str = "gateway.example/audit";

fn log_key() -> SignerKey {
    SignerKey::from_ed25519_seed(ORIGIN, [7; 32]).unwrap()
}

fn witness(name: &str, byte: u8) -> CosignerKey {
    CosignerKey::from_ed25519_seed(name, [byte; 32]).unwrap()
}

fn checkpoint_note(size: u64) -> (String, String) {
    let mut root = empty_root();
    root[0] ^= size as u8;
    let cp = Checkpoint::new(ORIGIN, size, root);
    let text = cp.to_note_text().unwrap();
    (cp.sign(&[&log_key()]).unwrap(), text)
}

/// From C2SP tlog-cosignature (the spec's example): the cosigned checkpoint
/// and the message its cosignature signs.
const SPEC_TEXT: &str =
    "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";
const SPEC_MESSAGE: &str = "cosignature/v1\ntime 1679315147\nexample.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";
/// The spec's example cosignature line on that checkpoint.
const SPEC_LINE: &str = "\u{2014} witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==";

#[test]
fn the_spec_example_message_and_line_decode_as_the_spec_says() {
    assert_eq!(cosigned_message(SPEC_TEXT, 1_679_315_147), SPEC_MESSAGE);
    let line = signed_note::parse_signature_line(SPEC_LINE).unwrap();
    assert_eq!(line.name, "witness.example.com/w1");
    assert_eq!(line.signature.len(), 8 + 64);
    let time = u64::from_be_bytes(line.signature[..8].try_into().unwrap());
    // The time on the spec's line is the one of its example message.
    assert_eq!(time, 1_679_315_147);
}

/// From transparency-dev/formats, note/note_cosigv1_test.go
/// (TestCoSigV1NewVerifier, "native algEd25519CosignatureV1 verifier"): a
/// real witness's cosignature/v1 verifier key. Parsing checks its key ID,
/// SHA-256(name || 0x0A || 0x04 || key)[:4], so this pins the key ID rule.
#[test]
fn a_published_witness_key_parses_and_its_key_id_matches() {
    let vkey = "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2";
    let k: CosignatureVerifier = vkey.parse().unwrap();
    assert_eq!(k.key_id(), 0xda77_ade7);
    assert_eq!(k.name(), "remora.n621.de");
    assert_eq!(k.to_string(), vkey);
    // The same key as a log (type 0x01) key is refused: the types differ.
    let log_form = "TEST+7997405c+AQcC+FTVKf0jlTdHDY3rbevmnKxxPjigCXlVtGe6RIr6";
    assert!(log_form.parse::<CosignatureVerifier>().is_err());
    // A wrong key ID is refused.
    let bad = vkey.replace("da77ade7", "da77ade8");
    assert!(bad.parse::<CosignatureVerifier>().is_err());
}

/// From transparency-dev/formats, note/note_cosigv1_test.go
/// (TestCosignatureTimestamp): a cosignature whose time is 1727964367.
#[test]
fn a_published_cosignature_time_decodes() {
    let raw = BASE64
        .decode("ZGhGuQAAAABm/qTPeyKXD+R2rzyQsxPiP8mXum7qq/iF0u4vanlqJyocWODBt97w9uL+8qT7S5gxEHWWOworDcFiEBYJXORmnFBOBA==")
        .unwrap();
    assert_eq!(raw.len(), COSIGNATURE_LEN);
    assert_eq!(
        u64::from_be_bytes(raw[4..12].try_into().unwrap()),
        1_727_964_367
    );
}

#[test]
fn cosign_then_open_round_trips_and_counts_each_witness_once() {
    let (note, text) = checkpoint_note(5);
    let (w1, w2, w3) = (
        witness("w1.example", 1),
        witness("w2.example", 2),
        witness("w3.example", 3),
    );
    let line1 = w1.cosign(&text, 1_700_000_000).unwrap();
    let line2 = w2.cosign(&text, 1_700_000_001).unwrap();
    let cosigned = attach_cosignatures(&note, &line1, w1.verifier()).unwrap();
    // The same answer twice adds nothing; another witness's line does.
    let cosigned = attach_cosignatures(&cosigned, &line1, w1.verifier()).unwrap();
    let cosigned = attach_cosignatures(&cosigned, &line2, w2.verifier()).unwrap();
    assert_eq!(cosigned.matches('\u{2014}').count(), 3);
    let trusted = [
        w1.verifier().clone(),
        w2.verifier().clone(),
        w3.verifier().clone(),
    ];
    let opened = open_cosigned(
        cosigned.as_bytes(),
        ORIGIN,
        &log_key().verifier_key(),
        &trusted,
    )
    .unwrap();
    assert_eq!(opened.checkpoint.size, 5);
    assert_eq!(opened.count(), 2);
    assert_eq!(opened.cosignatures[0].timestamp, 1_700_000_000);
    assert!(opened.meets(2) && !opened.meets(3));
    // The cosignature lines do not disturb a plain opening with the log key.
    assert!(Checkpoint::open(cosigned.as_bytes(), ORIGIN, &[log_key().verifier_key()]).is_ok());
    // Nor does the log key count as a witness.
    let as_witness =
        CosignatureVerifier::from_ed25519(ORIGIN, *log_key().verifier_key().public_key()).unwrap();
    let opened = open_cosigned(
        cosigned.as_bytes(),
        ORIGIN,
        &log_key().verifier_key(),
        &[as_witness],
    )
    .unwrap();
    assert_eq!(opened.count(), 0);
}

#[test]
fn a_witness_key_string_round_trips() {
    let w = witness("w.example/one", 9);
    let back = CosignerKey::from_signer_key_string(&w.to_signer_key_string()).unwrap();
    assert_eq!(back.verifier(), w.verifier());
    let v: CosignatureVerifier = w.verifier().to_string().parse().unwrap();
    assert_eq!(&v, w.verifier());
    assert!(
        w.verifier().to_string().contains("+B"),
        "type 0x04 encodes as B..."
    );
}

#[test]
fn a_cosignature_by_another_key_is_not_counted() {
    let (note, text) = checkpoint_note(3);
    let impostor = witness("w1.example", 99);
    let line = impostor.cosign(&text, 1_700_000_000).unwrap();
    let trusted = witness("w1.example", 1);
    // Another key under the same name has another key ID: skipped.
    assert!(matches!(
        attach_cosignatures(&note, &line, trusted.verifier()),
        Err(CosignatureError::NoCosignature { .. })
    ));
    let mut cosigned = note.clone();
    cosigned.push_str(&line);
    let opened = open_cosigned(
        cosigned.as_bytes(),
        ORIGIN,
        &log_key().verifier_key(),
        &[trusted.verifier().clone()],
    )
    .unwrap();
    assert_eq!(opened.count(), 0);
}

#[test]
fn an_altered_body_is_refused() {
    let (note, text) = checkpoint_note(3);
    let w = witness("w1.example", 1);
    let line = w.cosign(&text, 1_700_000_000).unwrap();
    // The cosignature of checkpoint 3 moved onto checkpoint 4.
    let (other, _) = checkpoint_note(4);
    assert!(matches!(
        attach_cosignatures(&other, &line, w.verifier()),
        Err(CosignatureError::BadCosignature { .. })
    ));
    let mut forged = other.clone();
    forged.push_str(&line);
    assert!(matches!(
        open_cosigned(
            forged.as_bytes(),
            ORIGIN,
            &log_key().verifier_key(),
            &[w.verifier().clone()]
        ),
        Err(CosignatureError::BadCosignature { .. })
    ));
    let _ = note;
}

#[test]
fn a_wrong_time_encoding_is_refused() {
    let (note, text) = checkpoint_note(3);
    let w = witness("w1.example", 1);
    // Signed over "time 0123" (a leading zero) but stating 123: the message
    // the verifier rebuilds differs, so the signature cannot verify.
    let sig = w
        .inner
        .sign_ed25519(format!("cosignature/v1\ntime 0123\n{text}").as_bytes());
    let mut raw = w.verifier().key_id().to_be_bytes().to_vec();
    raw.extend_from_slice(&123u64.to_be_bytes());
    raw.extend_from_slice(&sig);
    let line = format!("\u{2014} w1.example {}\n", BASE64.encode(&raw));
    assert!(matches!(
        attach_cosignatures(&note, &line, w.verifier()),
        Err(CosignatureError::BadCosignature { .. })
    ));
    // The time in little-endian order: the signature is over another time.
    let good = w.cosign(&text, 1_700_000_000).unwrap();
    let parsed = signed_note::parse_signature_line(good.trim_end()).unwrap();
    let mut raw = w.verifier().key_id().to_be_bytes().to_vec();
    raw.extend_from_slice(&1_700_000_000u64.to_le_bytes());
    raw.extend_from_slice(&parsed.signature[8..]);
    let line = format!("\u{2014} w1.example {}\n", BASE64.encode(&raw));
    assert!(attach_cosignatures(&note, &line, w.verifier()).is_err());
    // A time of zero or above 2^63 - 1 is neither made nor accepted.
    assert_eq!(w.cosign(&text, 0), Err(CosignatureError::InvalidTime(0)));
    assert!(w.cosign(&text, 1 << 63).is_err());
    let mut raw = w.verifier().key_id().to_be_bytes().to_vec();
    raw.extend_from_slice(&0u64.to_be_bytes());
    raw.extend_from_slice(&parsed.signature[8..]);
    let line = format!("\u{2014} w1.example {}\n", BASE64.encode(&raw));
    assert!(matches!(
        attach_cosignatures(&note, &line, w.verifier()),
        Err(CosignatureError::Malformed { .. })
    ));
    // A truncated cosignature is malformed, not a panic.
    let line = format!("\u{2014} w1.example {}\n", BASE64.encode(&raw[..40]));
    assert!(matches!(
        attach_cosignatures(&note, &line, w.verifier()),
        Err(CosignatureError::Malformed { .. })
    ));
}

#[test]
fn the_log_signature_is_still_required() {
    let (_, text) = checkpoint_note(3);
    let w = witness("w1.example", 1);
    let other_log = SignerKey::from_ed25519_seed(ORIGIN, [8; 32]).unwrap();
    let mut note = signed_note::sign(&text, &[&other_log]).unwrap();
    note.push_str(&w.cosign(&text, 1_700_000_000).unwrap());
    assert!(matches!(
        open_cosigned(
            note.as_bytes(),
            ORIGIN,
            &log_key().verifier_key(),
            &[w.verifier().clone()]
        ),
        Err(CosignatureError::Checkpoint(_))
    ));
}

#[test]
fn malformed_answers_are_refused_without_panic() {
    let (note, _) = checkpoint_note(3);
    let w = witness("w1.example", 1);
    for answer in [
        "",
        "no newline",
        "not a line\n",
        "\u{2014} w1.example !!!\n",
    ] {
        assert!(
            attach_cosignatures(&note, answer, w.verifier()).is_err(),
            "{answer:?}"
        );
    }
}
