//! C2SP signed notes (<https://c2sp.org/signed-note>) with Ed25519 keys.
//!
//! This module owns the note format: the text, the blank line, the signature
//! lines `— <key name> base64(key ID || signature)`, the key ID
//! `SHA-256(name || 0x0A || 0x01 || public key)[:4]`, and the verifier key
//! (`name+hex(key ID)+base64(0x01 || public key)`) and signer key
//! (`PRIVATE+KEY+name+hex(key ID)+base64(0x01 || seed)`) strings. It signs
//! notes and opens them against a set of trusted verifier keys, following the
//! spec's "Signatures" section: signature lines from unknown keys are
//! skipped, a known key whose signature fails rejects the note, and a note
//! that no known key signed is rejected. It never reads key files, never
//! generates randomness and never interprets the text; [`super::checkpoint`]
//! gives the text its meaning.
//!
//! About 620 lines before its tests, on purpose: the note's text, its signature
//! lines and the two key strings are one format, parsed and written in
//! one place so that a change to the spec is one file's change.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use ring::digest;
use ring::signature::{self, KeyPair as _};
use std::fmt;

/// Signature type identifier byte of Ed25519 in the signed-note spec.
const ALG_ED25519: u8 = 0x01;
/// Length of an Ed25519 public key and of its seed (RFC 8032).
pub const ED25519_KEY_LEN: usize = 32;
/// Length of an Ed25519 signature.
const ED25519_SIG_LEN: usize = 64;
/// The em dash (U+2014) and space that open every signature line.
pub(crate) const SIG_PREFIX: &str = "\u{2014} ";
/// Prefix of a signer key string.
const PRIVATE_KEY_PREFIX: &str = "PRIVATE+KEY+";

/// Largest note accepted, in bytes. Checkpoints are a few hundred bytes; this
/// leaves room for many (even post-quantum) cosignatures while bounding work.
pub const MAX_NOTE_LEN: usize = 1 << 20;
/// Most signature lines accepted on one note. The spec requires accepting at
/// least 16.
pub const MAX_SIGNATURES: usize = 100;

/// Why a note, a key or a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NoteError {
    /// The note is larger than [`MAX_NOTE_LEN`]: the sender's fault.
    #[error("the note is larger than {MAX_NOTE_LEN} bytes")]
    TooLarge,
    /// The note has more than [`MAX_SIGNATURES`] signature lines.
    #[error("the note has more than {MAX_SIGNATURES} signatures")]
    TooManySignatures,
    /// The bytes are not a well-formed note: bad UTF-8, a control character,
    /// no blank line before the signatures, a malformed signature line. The
    /// `reason` says which.
    #[error("malformed note: {reason}")]
    Malformed {
        /// What is wrong, in a few words.
        reason: &'static str,
    },
    /// The text to sign is not valid note text (empty, no final newline,
    /// control characters): the caller's fault.
    #[error("invalid note text: {reason}")]
    InvalidText {
        /// What is wrong, in a few words.
        reason: &'static str,
    },
    /// A key name is empty or contains a space or `+`: the operator's fault.
    #[error("invalid key name {0:?}")]
    InvalidKeyName(String),
    /// A verifier or signer key string is malformed, uses another algorithm
    /// or its key ID does not match the key: the operator's fault.
    #[error("invalid key string: {reason}")]
    InvalidKey {
        /// What is wrong, in a few words.
        reason: &'static str,
    },
    /// Two trusted keys share a name and key ID, so a signature could not be
    /// attributed: the operator's fault.
    #[error("ambiguous trusted keys {name}+{key_id:08x}")]
    AmbiguousKey {
        /// The shared name.
        name: String,
        /// The shared key ID.
        key_id: u32,
    },
    /// A signature by a trusted key does not verify: tampering, or a signer
    /// that is not who it claims.
    #[error("invalid signature by trusted key {name}+{key_id:08x}")]
    BadSignature {
        /// The key's name.
        name: String,
        /// The key's ID.
        key_id: u32,
    },
    /// No trusted key signed the note. The note must not be believed.
    #[error("the note is not signed by any trusted key")]
    NoTrustedSignature,
}

fn malformed(reason: &'static str) -> NoteError {
    NoteError::Malformed { reason }
}

/// The key ID of an Ed25519 key: the first four bytes, big-endian, of
/// SHA-256(name || 0x0A || 0x01 || public key).
pub fn ed25519_key_id(name: &str, public_key: &[u8; ED25519_KEY_LEN]) -> u32 {
    typed_key_id(name, ALG_ED25519, public_key)
}

/// SHA-256(name || 0x0A || alg || public key)[:4], big-endian: the key ID
/// rule of every signature type (0x04 for cosignatures).
pub(crate) fn typed_key_id(name: &str, alg: u8, public_key: &[u8]) -> u32 {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(name.as_bytes());
    ctx.update(b"\n");
    ctx.update(&[alg]);
    ctx.update(public_key);
    let d = ctx.finish();
    let b = d.as_ref();
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// Checks the spec's rule for key names: non-empty, no Unicode space, no `+`.
pub fn check_key_name(name: &str) -> Result<(), NoteError> {
    if name.is_empty() || name.contains('+') || name.chars().any(char::is_whitespace) {
        return Err(NoteError::InvalidKeyName(name.to_string()));
    }
    if name.chars().any(char::is_control) {
        return Err(NoteError::InvalidKeyName(name.to_string()));
    }
    Ok(())
}

/// The three parts of a key string `name+hex(key ID)+material`, or `shape`
/// as the reason it is not one.
pub(crate) fn split_key_string<'a>(
    vkey: &'a str,
    shape: &'static str,
) -> Result<(&'a str, &'a str, &'a str), NoteError> {
    let mut parts = vkey.splitn(3, '+');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(name), Some(hex_id), Some(material)) => Ok((name, hex_id, material)),
        _ => Err(NoteError::InvalidKey { reason: shape }),
    }
}

/// That the key ID a key string claims is the one its name and key give.
pub(crate) fn check_claimed_key_id(claimed: u32, actual: u32) -> Result<(), NoteError> {
    if claimed != actual {
        return Err(NoteError::InvalidKey {
            reason: "the key ID does not match the name and key",
        });
    }
    Ok(())
}

pub(crate) fn parse_key_id(hex_id: &str) -> Result<u32, NoteError> {
    let bad = || NoteError::InvalidKey {
        reason: "the key ID is not 8 lowercase hex digits",
    };
    if hex_id.len() != 8
        || !hex_id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(bad());
    }
    u32::from_str_radix(hex_id, 16).map_err(|_| bad())
}

/// Decodes `base64(0x01 || 32 bytes)` as found in both key strings.
fn decode_ed25519_material(text: &str) -> Result<[u8; ED25519_KEY_LEN], NoteError> {
    decode_typed_material(
        text,
        ALG_ED25519,
        "unsupported signature type (only Ed25519, 0x01)",
    )
}

/// Decodes `base64(alg || 32-byte Ed25519 key)`; `wrong_type` says why
/// another type byte is refused. Shared with [`super::cosignature`], whose
/// verifier keys carry the type 0x04.
pub(crate) fn decode_typed_material(
    text: &str,
    alg: u8,
    wrong_type: &'static str,
) -> Result<[u8; ED25519_KEY_LEN], NoteError> {
    let raw = BASE64.decode(text).map_err(|_| NoteError::InvalidKey {
        reason: "the key material is not standard base64",
    })?;
    match raw.split_first() {
        Some((&t, key)) if t == alg => key.try_into().map_err(|_| NoteError::InvalidKey {
            reason: "an Ed25519 key must be 32 bytes",
        }),
        Some(_) => Err(NoteError::InvalidKey { reason: wrong_type }),
        None => Err(NoteError::InvalidKey {
            reason: "empty key material",
        }),
    }
}

fn encode_ed25519_material(key: &[u8; ED25519_KEY_LEN]) -> String {
    encode_typed_material(key, ALG_ED25519)
}

/// `base64(alg || key)`, the key material of a key string.
pub(crate) fn encode_typed_material(key: &[u8; ED25519_KEY_LEN], alg: u8) -> String {
    let mut raw = Vec::with_capacity(1 + ED25519_KEY_LEN);
    raw.push(alg);
    raw.extend_from_slice(key);
    BASE64.encode(raw)
}

/// A trusted Ed25519 public key with its name, as an auditor configures it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct VerifierKey {
    name: String,
    key_id: u32,
    public_key: [u8; ED25519_KEY_LEN],
}

impl fmt::Debug for VerifierKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VerifierKey({self})")
    }
}

impl fmt::Display for VerifierKey {
    /// The verifier key string `name+hex(key ID)+base64(0x01 || key)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}+{:08x}+{}",
            self.name,
            self.key_id,
            encode_ed25519_material(&self.public_key)
        )
    }
}

impl std::str::FromStr for VerifierKey {
    type Err = NoteError;

    /// Parses a verifier key string and checks its key ID against the key.
    fn from_str(vkey: &str) -> Result<Self, NoteError> {
        let (name, hex_id, material) =
            split_key_string(vkey, "a verifier key is name+keyid+base64")?;
        check_key_name(name)?;
        let key_id = parse_key_id(hex_id)?;
        let public_key = decode_ed25519_material(material)?;
        let key = Self::from_ed25519(name, public_key)?;
        check_claimed_key_id(key_id, key.key_id)?;
        Ok(key)
    }
}

impl VerifierKey {
    /// A verifier key for a raw 32-byte Ed25519 public key.
    pub fn from_ed25519(name: &str, public_key: [u8; ED25519_KEY_LEN]) -> Result<Self, NoteError> {
        check_key_name(name)?;
        Ok(Self {
            name: name.to_string(),
            key_id: ed25519_key_id(name, &public_key),
            public_key,
        })
    }

    /// The key's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key ID that prefixes its signatures.
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// The raw Ed25519 public key.
    pub fn public_key(&self) -> &[u8; ED25519_KEY_LEN] {
        &self.public_key
    }

    fn verifies(&self, text: &[u8], sig: &[u8]) -> bool {
        ed25519_verifies(&self.public_key, text, sig)
    }
}

/// Whether `sig` is an Ed25519 signature of `msg` by `public_key`; shared
/// with [`super::cosignature`], whose keys are not note verifier keys.
pub(crate) fn ed25519_verifies(public_key: &[u8; ED25519_KEY_LEN], msg: &[u8], sig: &[u8]) -> bool {
    sig.len() == ED25519_SIG_LEN
        && signature::UnparsedPublicKey::new(&signature::ED25519, public_key)
            .verify(msg, sig)
            .is_ok()
}

/// An Ed25519 private key with its name, that signs notes.
pub struct SignerKey {
    name: String,
    key_id: u32,
    seed: [u8; ED25519_KEY_LEN],
    pair: signature::Ed25519KeyPair,
}

impl fmt::Debug for SignerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print key material.
        write!(f, "SignerKey({}+{:08x}, ..)", self.name, self.key_id)
    }
}

impl SignerKey {
    /// A signer from a 32-byte Ed25519 seed (the RFC 8032 private key).
    pub fn from_ed25519_seed(name: &str, seed: [u8; ED25519_KEY_LEN]) -> Result<Self, NoteError> {
        check_key_name(name)?;
        let pair = signature::Ed25519KeyPair::from_seed_unchecked(&seed).map_err(|_| {
            NoteError::InvalidKey {
                reason: "not a valid Ed25519 seed",
            }
        })?;
        let public_key = public_key_of(&pair);
        Ok(Self {
            name: name.to_string(),
            key_id: ed25519_key_id(name, &public_key),
            seed,
            pair,
        })
    }

    /// A signer from a PKCS#8 (DER) Ed25519 private key, such as the
    /// gateway's key file, so that notes and COSE signatures can share one
    /// key. Accepts RFC 8410 v1 documents and ring's v2 documents with the
    /// public key.
    pub fn from_ed25519_pkcs8(name: &str, der: &[u8]) -> Result<Self, NoteError> {
        let pair = signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).map_err(|_| {
            NoteError::InvalidKey {
                reason: "not a PKCS#8 Ed25519 private key",
            }
        })?;
        // ring does not hand the seed back, and the signer key string needs
        // it. Both PKCS#8 versions put it at the same place: SEQUENCE,
        // version, algorithm (Ed25519 OID), then OCTET STRING { OCTET STRING
        // (32) seed }.
        const SEED_PREFIX: [u8; 14] = [
            0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
        ];
        let seed: [u8; ED25519_KEY_LEN] = der
            .get(2..16)
            .filter(|p| p[0..2] == SEED_PREFIX[0..2] && p[3..] == SEED_PREFIX[3..])
            .and_then(|_| der.get(16..16 + ED25519_KEY_LEN))
            .and_then(|s| s.try_into().ok())
            .ok_or(NoteError::InvalidKey {
                reason: "unsupported PKCS#8 layout for an Ed25519 key",
            })?;
        let key = Self::from_ed25519_seed(name, seed)?;
        // The seed found must be the key ring parsed.
        if key.verifier_key().public_key != public_key_of(&pair) {
            return Err(NoteError::InvalidKey {
                reason: "unsupported PKCS#8 layout for an Ed25519 key",
            });
        }
        Ok(key)
    }

    /// Parses a signer key string `PRIVATE+KEY+name+hex(key ID)+base64(0x01
    /// || seed)` and checks its key ID against the derived public key.
    pub fn from_signer_key_string(skey: &str) -> Result<Self, NoteError> {
        let Some(rest) = skey.strip_prefix(PRIVATE_KEY_PREFIX) else {
            return Err(NoteError::InvalidKey {
                reason: "a signer key starts with PRIVATE+KEY+",
            });
        };
        let (name, hex_id, material) =
            split_key_string(rest, "a signer key is PRIVATE+KEY+name+keyid+base64")?;
        let key_id = parse_key_id(hex_id)?;
        let seed = decode_ed25519_material(material)?;
        let key = Self::from_ed25519_seed(name, seed)?;
        check_claimed_key_id(key_id, key.key_id)?;
        Ok(key)
    }

    /// The signer key string. It holds the private key: write it only to a
    /// file the operator protects.
    pub fn to_signer_key_string(&self) -> String {
        format!(
            "{PRIVATE_KEY_PREFIX}{}+{:08x}+{}",
            self.name,
            self.key_id,
            encode_ed25519_material(&self.seed)
        )
    }

    /// The key's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key ID that prefixes its signatures.
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// The matching verifier key, to publish to auditors.
    pub fn verifier_key(&self) -> VerifierKey {
        VerifierKey {
            name: self.name.clone(),
            key_id: self.key_id,
            public_key: public_key_of(&self.pair),
        }
    }

    /// The raw Ed25519 signature of `msg`, for [`super::cosignature`], which
    /// signs another message than the note text with the same kind of key.
    pub(crate) fn sign_ed25519(&self, msg: &[u8]) -> Vec<u8> {
        self.pair.sign(msg).as_ref().to_vec()
    }

    /// The signature line for `text`, without its final newline.
    fn signature_line(&self, text: &[u8]) -> String {
        let mut raw = Vec::with_capacity(4 + ED25519_SIG_LEN);
        raw.extend_from_slice(&self.key_id.to_be_bytes());
        raw.extend_from_slice(self.pair.sign(text).as_ref());
        format!("{SIG_PREFIX}{} {}", self.name, BASE64.encode(raw))
    }
}

fn public_key_of(pair: &signature::Ed25519KeyPair) -> [u8; ED25519_KEY_LEN] {
    let mut key = [0u8; ED25519_KEY_LEN];
    key.copy_from_slice(pair.public_key().as_ref());
    key
}

/// Checks that `text` may be the text of a note: non-empty, ending in a
/// newline, no control characters other than newline.
fn check_text(text: &str) -> Result<(), NoteError> {
    if text.is_empty() {
        return Err(NoteError::InvalidText {
            reason: "the text is empty",
        });
    }
    if !text.ends_with('\n') {
        return Err(NoteError::InvalidText {
            reason: "the text must end with a newline",
        });
    }
    if text.chars().any(|c| c != '\n' && c < ' ') {
        return Err(NoteError::InvalidText {
            reason: "the text contains a control character",
        });
    }
    Ok(())
}

/// Signs `text` with each signer, in order, and returns the signed note.
pub fn sign(text: &str, signers: &[&SignerKey]) -> Result<String, NoteError> {
    check_text(text)?;
    if signers.is_empty() {
        return Err(NoteError::InvalidText {
            reason: "a note needs at least one signer",
        });
    }
    if signers.len() > MAX_SIGNATURES {
        return Err(NoteError::TooManySignatures);
    }
    let mut note = String::with_capacity(text.len() + 1 + signers.len() * 120);
    note.push_str(text);
    note.push('\n');
    for signer in signers {
        note.push_str(&signer.signature_line(text.as_bytes()));
        note.push('\n');
    }
    if note.len() > MAX_NOTE_LEN {
        return Err(NoteError::TooLarge);
    }
    Ok(note)
}

/// One signature line of a note, not yet verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignatureLine {
    /// The key name on the line.
    pub name: String,
    /// The key ID, the first four bytes of the decoded signature.
    pub key_id: u32,
    /// The signature proper, after the key ID.
    pub signature: Vec<u8>,
}

impl fmt::Display for SignatureLine {
    /// The line as a note holds it, without its final newline.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut raw = Vec::with_capacity(4 + self.signature.len());
        raw.extend_from_slice(&self.key_id.to_be_bytes());
        raw.extend_from_slice(&self.signature);
        write!(f, "{SIG_PREFIX}{} {}", self.name, BASE64.encode(raw))
    }
}

/// A note split into its text and signature lines; nothing verified yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedNote<'a> {
    /// The text, including its final newline.
    pub text: &'a str,
    /// The signature lines, in order.
    pub signatures: Vec<SignatureLine>,
}

/// Splits a note into text and signature lines, checking the format but no
/// signature. Use [`open`] to decide whether to believe it.
pub fn parse(note: &[u8]) -> Result<ParsedNote<'_>, NoteError> {
    if note.len() > MAX_NOTE_LEN {
        return Err(NoteError::TooLarge);
    }
    let note = std::str::from_utf8(note).map_err(|_| malformed("not valid UTF-8"))?;
    if note.chars().any(|c| c != '\n' && c < ' ') {
        return Err(malformed("control character other than newline"));
    }
    // The text ends at the last blank line; it keeps its final newline.
    let Some(split) = note.rfind("\n\n") else {
        return Err(malformed("no blank line before the signatures"));
    };
    let text = &note[..split + 1];
    let sig_block = &note[split + 2..];
    if sig_block.is_empty() {
        return Err(malformed("no signature lines"));
    }
    let Some(sig_block) = sig_block.strip_suffix('\n') else {
        return Err(malformed(
            "the last signature line does not end with a newline",
        ));
    };
    let mut signatures = Vec::new();
    for line in sig_block.split('\n') {
        if signatures.len() == MAX_SIGNATURES {
            return Err(NoteError::TooManySignatures);
        }
        signatures.push(parse_signature_line(line)?);
    }
    Ok(ParsedNote { text, signatures })
}

pub(crate) fn parse_signature_line(line: &str) -> Result<SignatureLine, NoteError> {
    let Some(rest) = line.strip_prefix(SIG_PREFIX) else {
        return Err(malformed(
            "a signature line must start with an em dash and a space",
        ));
    };
    let Some((name, b64)) = rest.split_once(' ') else {
        return Err(malformed("a signature line is: em dash, name, base64"));
    };
    check_key_name(name).map_err(|_| malformed("invalid key name on a signature line"))?;
    let raw = BASE64
        .decode(b64)
        .map_err(|_| malformed("signature is not standard base64"))?;
    // A key ID and at least one byte of signature.
    if raw.len() < 5 {
        return Err(malformed("signature too short"));
    }
    let (id, sig) = raw.split_at(4);
    Ok(SignatureLine {
        name: name.to_string(),
        key_id: u32::from_be_bytes([id[0], id[1], id[2], id[3]]),
        signature: sig.to_vec(),
    })
}

/// A note whose signature by at least one trusted key was verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedNote {
    /// The text, including its final newline. Believe it only because
    /// `verified_by` is not empty.
    pub text: String,
    /// The trusted keys whose signatures verified, in note order, once each.
    pub verified_by: Vec<VerifierKey>,
    /// Signature lines from keys not in the trusted set, skipped as the spec
    /// requires (for example witness cosignatures or a rotated key).
    pub unknown: Vec<SignatureLine>,
}

/// Opens a note: parses it, verifies every signature made by a key in
/// `trusted`, skips the others, and fails unless at least one verified.
///
/// A signature line whose name and key ID match a trusted key but that does
/// not verify rejects the whole note, as the spec recommends.
pub fn open(note: &[u8], trusted: &[VerifierKey]) -> Result<VerifiedNote, NoteError> {
    let parsed = parse(note)?;
    let mut verified_by: Vec<VerifierKey> = Vec::new();
    let mut unknown = Vec::new();
    for line in parsed.signatures {
        let mut matching = trusted
            .iter()
            .filter(|k| k.name == line.name && k.key_id == line.key_id);
        let Some(key) = matching.next() else {
            unknown.push(line);
            continue;
        };
        if matching.any(|other| other != key) {
            return Err(NoteError::AmbiguousKey {
                name: line.name,
                key_id: line.key_id,
            });
        }
        if !key.verifies(parsed.text.as_bytes(), &line.signature) {
            return Err(NoteError::BadSignature {
                name: line.name,
                key_id: line.key_id,
            });
        }
        if !verified_by.contains(key) {
            verified_by.push(key.clone());
        }
    }
    if verified_by.is_empty() {
        return Err(NoteError::NoTrustedSignature);
    }
    Ok(VerifiedNote {
        text: parsed.text.to_string(),
        verified_by,
        unknown,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer(name: &str, byte: u8) -> SignerKey {
        SignerKey::from_ed25519_seed(name, [byte; 32]).unwrap()
    }

    #[test]
    fn sign_then_open_round_trips() {
        let key = signer("gateway.example/audit", 7);
        let note = sign("hello\nworld\n", &[&key]).unwrap();
        let opened = open(note.as_bytes(), &[key.verifier_key()]).unwrap();
        assert_eq!(opened.text, "hello\nworld\n");
        assert_eq!(opened.verified_by, vec![key.verifier_key()]);
        assert!(opened.unknown.is_empty());
    }

    #[test]
    fn pkcs8_keys_are_accepted() {
        let rng = ring::rand::SystemRandom::new();
        let der = signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let pair = signature::Ed25519KeyPair::from_pkcs8(der.as_ref()).unwrap();
        let key = SignerKey::from_ed25519_pkcs8("gateway", der.as_ref()).unwrap();
        assert_eq!(key.verifier_key().public_key(), &public_key_of(&pair));
        // RFC 8410 v1: no public key inside.
        let mut v1 = vec![
            0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65,
        ];
        v1.extend_from_slice(&[0x70, 0x04, 0x22, 0x04, 0x20]);
        v1.extend_from_slice(&[5; 32]);
        let key = SignerKey::from_ed25519_pkcs8("gateway", &v1).unwrap();
        assert_eq!(key.verifier_key(), signer("gateway", 5).verifier_key());
        assert!(SignerKey::from_ed25519_pkcs8("gateway", &v1[..40]).is_err());
        assert!(SignerKey::from_ed25519_pkcs8("gateway", b"").is_err());
    }

    #[test]
    fn key_strings_round_trip() {
        let key = signer("gateway.example/audit", 9);
        let vkey: VerifierKey = key.verifier_key().to_string().parse().unwrap();
        assert_eq!(vkey, key.verifier_key());
        let again = SignerKey::from_signer_key_string(&key.to_signer_key_string()).unwrap();
        assert_eq!(again.verifier_key(), key.verifier_key());
        assert!(!format!("{key:?}").contains(&key.to_signer_key_string()[30..]));
    }

    #[test]
    fn grease_signatures_from_unknown_keys_are_skipped() {
        let key = signer("gateway.example/audit", 1);
        let stranger = signer("witness.example/w1", 2);
        // Same name as the trusted key but another ID: still unknown.
        let impostor = signer("gateway.example/audit", 3);
        let note = sign("checkpoint\n", &[&stranger, &key, &impostor]).unwrap();
        // And a random grease line that is not even a valid Ed25519 signature.
        let note = format!("{note}\u{2014} grease.example/x AAAAAAAAAAAAAAAAAAAA\n");
        let opened = open(note.as_bytes(), &[key.verifier_key()]).unwrap();
        assert_eq!(opened.verified_by.len(), 1);
        assert_eq!(opened.unknown.len(), 3);
        assert_eq!(
            open(note.as_bytes(), &[]),
            Err(NoteError::NoTrustedSignature)
        );
        assert_eq!(
            open(note.as_bytes(), &[signer("other", 4).verifier_key()]),
            Err(NoteError::NoTrustedSignature)
        );
    }

    #[test]
    fn tampering_is_caught() {
        let key = signer("gateway.example/audit", 1);
        let note = sign("size 10\n", &[&key]).unwrap();
        let tampered = note.replacen("10", "11", 1);
        assert!(matches!(
            open(tampered.as_bytes(), &[key.verifier_key()]),
            Err(NoteError::BadSignature { .. })
        ));
    }

    #[test]
    fn ambiguous_trusted_keys_are_refused() {
        let key = signer("gateway.example/audit", 1);
        let note = sign("x\n", &[&key]).unwrap();
        let mut twin = key.verifier_key();
        twin.public_key[0] ^= 1;
        assert!(matches!(
            open(note.as_bytes(), &[key.verifier_key(), twin]),
            Err(NoteError::AmbiguousKey { .. })
        ));
        // The same key listed twice is not ambiguous.
        assert!(open(note.as_bytes(), &[key.verifier_key(), key.verifier_key()]).is_ok());
    }

    #[test]
    fn malformed_notes_are_refused_without_panic() {
        let key = signer("k", 1);
        let good = sign("text\n", &[&key]).unwrap();
        let trusted = [key.verifier_key()];
        let bad: Vec<Vec<u8>> = vec![
            b"text\n".to_vec(),
            b"text\n\n".to_vec(),
            good.trim_end_matches('\n').as_bytes().to_vec(),
            [b"\x01".as_slice(), good.as_bytes()].concat(),
            [b"\xff".as_slice(), good.as_bytes()].concat(),
            format!("{good}Unexpected line.\n").into_bytes(),
            good.replacen("\u{2014} k ", "\u{2014} a b ", 1)
                .into_bytes(),
            good.replacen("\u{2014} k ", "- k ", 1).into_bytes(),
            good.replacen("\u{2014} k ", "\u{2014} k+x ", 1)
                .into_bytes(),
            "text\n\n\u{2014} k AAAA\n".as_bytes().to_vec(),
            "text\n\n\u{2014} k !!!!\n".as_bytes().to_vec(),
            vec![b'a'; MAX_NOTE_LEN + 1],
            format!(
                "text\n\n{}",
                "\u{2014} k AAAAAAAA\n".repeat(MAX_SIGNATURES + 1)
            )
            .into_bytes(),
        ];
        for note in bad {
            assert!(
                open(&note, &trusted).is_err(),
                "{:?}",
                String::from_utf8_lossy(&note)
            );
        }
        assert!(sign("no newline", &[&key]).is_err());
        assert!(sign("", &[&key]).is_err());
        assert!(sign("tab\there\n", &[&key]).is_err());
        assert!(sign("x\n", &[]).is_err());
    }

    proptest::proptest! {
        #[test]
        fn opening_arbitrary_input_never_panics(bytes: Vec<u8>, text in "\\PC{0,200}") {
            let trusted = [signer("k", 1).verifier_key()];
            let _ = open(&bytes, &trusted);
            let _ = open(text.as_bytes(), &trusted);
            let _ = text.parse::<VerifierKey>();
            let _ = SignerKey::from_signer_key_string(&text);
        }

        #[test]
        fn any_valid_text_round_trips(lines in proptest::collection::vec("[^\\x00-\\x1f]{0,30}", 1..5)) {
            let text = lines.join("\n") + "\n";
            let key = signer("k", 1);
            let note = sign(&text, &[&key]).unwrap();
            let opened = open(note.as_bytes(), &[key.verifier_key()]).unwrap();
            proptest::prop_assert_eq!(opened.text, text);
        }
    }

    #[test]
    fn bad_key_strings_are_refused() {
        let vkey = signer("name", 5).verifier_key().to_string();
        let bytes = vkey.as_bytes();
        for i in 0..bytes.len() {
            let mut mangled = bytes.to_vec();
            mangled[i] = mangled[i].wrapping_add(1);
            if let Ok(s) = String::from_utf8(mangled) {
                assert!(s.parse::<VerifierKey>().is_err(), "{s}");
            }
            assert!(vkey[..i].parse::<VerifierKey>().is_err());
        }
        assert!(SignerKey::from_signer_key_string(&vkey).is_err());
        assert!(VerifierKey::from_ed25519("has space", [0; 32]).is_err());
        assert!(VerifierKey::from_ed25519("", [0; 32]).is_err());
    }
}
