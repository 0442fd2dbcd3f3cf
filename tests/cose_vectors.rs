//! The gateway's COSE_Sign1 verifier against the COSE working group's
//! published examples (`tests/vectors/cose-wg/`, see its README).
//!
//! Each example carries the signer's public key (as a JWK-like map) and the
//! COSE_Sign1 bytes in `output.cbor`. `PublicKey::verify1` verifies with an
//! empty external AAD and requires the algorithm in the protected header, so
//! each file below is listed with what must happen, and why.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as BASE64URL;
use base64::Engine as _;
use passerelle::domain::cose::{CoseError, PublicKey};
use serde_json::Value;
use std::path::Path;

enum Expect {
    /// Must verify and return the example's plaintext.
    Verifies,
    /// Must be refused with this error.
    Refused(CoseError),
    /// Not checked, for the reason given.
    Skipped(&'static str),
}

const CASES: &[(&str, Expect)] = &[
    ("ecdsa-sig-01.json", Expect::Verifies),
    ("eddsa-sig-01.json", Expect::Verifies),
    // The example drops the CBOR tag; passerelle requires it (see
    // `tagged_sign_pass_03_verifies` for the same signature with its tag).
    ("sign-pass-03.json", Expect::Refused(CoseError::Malformed)),
    // Algorithm only in the unprotected header. RFC 9052 allows it, but the
    // gateway requires a protected algorithm so that it cannot be swapped.
    (
        "sign-pass-01.json",
        Expect::Refused(CoseError::AlgorithmMismatch),
    ),
    // Signed with external AAD 11aa22bb…; verify1 always uses empty AAD, so
    // the signature must not verify.
    (
        "sign-pass-02.json",
        Expect::Refused(CoseError::BadSignature),
    ),
    ("sign-fail-01.json", Expect::Refused(CoseError::Malformed)),
    (
        "sign-fail-02.json",
        Expect::Refused(CoseError::BadSignature),
    ),
    // Algorithm changed to -999, a value coset does not accept in a
    // protected header.
    ("sign-fail-03.json", Expect::Refused(CoseError::Malformed)),
    (
        "sign-fail-04.json",
        Expect::Refused(CoseError::AlgorithmMismatch),
    ),
    (
        "sign-fail-06.json",
        Expect::Refused(CoseError::BadSignature),
    ),
    (
        "sign-fail-07.json",
        Expect::Refused(CoseError::BadSignature),
    ),
    (
        "ecdsa-sig-02.json",
        Expect::Skipped("ES384 (P-384) is not supported by the gateway"),
    ),
    (
        "ecdsa-sig-03.json",
        Expect::Skipped("ES512 (P-521) is not supported by the gateway"),
    ),
    (
        "ecdsa-sig-04.json",
        Expect::Skipped("ES512 over P-256 is not supported by the gateway"),
    ),
    (
        "eddsa-sig-02.json",
        Expect::Skipped("Ed448 is not supported by the gateway"),
    ),
];

fn load(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors/cose-wg")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    // Some files start with a UTF-8 byte order mark.
    serde_json::from_str(text.trim_start_matches('\u{feff}')).unwrap()
}

fn public_key(example: &Value) -> PublicKey {
    let key = &example["input"]["sign0"]["key"];
    match (key["kty"].as_str(), key["crv"].as_str()) {
        (Some("EC"), Some("P-256")) => {
            let coord = |k: &str| BASE64URL.decode(key[k].as_str().unwrap()).unwrap();
            let mut point = vec![0x04];
            point.extend(coord("x"));
            point.extend(coord("y"));
            PublicKey::Es256(point)
        }
        (Some("OKP"), Some("Ed25519")) => {
            PublicKey::Ed25519(hex::decode(key["x_hex"].as_str().unwrap()).unwrap())
        }
        other => panic!("no key type for {other:?}"),
    }
}

#[test]
fn cose_wg_sign1_examples() {
    // Every file in the folder is listed, so none is silently ignored.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/cose-wg");
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = CASES.iter().map(|(n, _)| n.to_string()).collect();
    listed.sort();
    assert_eq!(on_disk, listed);

    let mut verified = 0;
    for (name, expect) in CASES {
        let example = load(name);
        let cbor = hex::decode(example["output"]["cbor"].as_str().unwrap()).unwrap();
        match expect {
            Expect::Verifies => {
                let payload = public_key(&example).verify1(&cbor);
                let plaintext = example["input"]["plaintext"].as_str().unwrap();
                assert_eq!(payload, Ok(plaintext.as_bytes().to_vec()), "{name}");
                verified += 1;
            }
            Expect::Refused(err) => {
                assert_eq!(
                    public_key(&example).verify1(&cbor).as_ref(),
                    Err(err),
                    "{name}"
                );
            }
            Expect::Skipped(reason) => {
                eprintln!("skipped {name}: {reason}");
            }
        }
    }
    assert_eq!(verified, 2);
}

#[test]
fn tagged_sign_pass_03_verifies() {
    // sign-pass-03 is an untagged COSE_Sign1: with the one-byte tag 18
    // (0xd2, RFC 9052 §4.2) in front, its signature verifies.
    let example = load("sign-pass-03.json");
    let mut cbor = vec![0xd2];
    cbor.extend(hex::decode(example["output"]["cbor"].as_str().unwrap()).unwrap());
    let plaintext = example["input"]["plaintext"].as_str().unwrap();
    assert_eq!(
        public_key(&example).verify1(&cbor),
        Ok(plaintext.as_bytes().to_vec())
    );
}
