//! Witness cosignatures on checkpoints (C2SP `tlog-cosignature`, the
//! Ed25519 `cosignature/v1` type, <https://c2sp.org/tlog-cosignature>).
//!
//! This module owns the cosignature format: the cosigner's verifier key
//! (`name+hex(key ID)+base64(0x04 || public key)`, key ID
//! `SHA-256(name || 0x0A || 0x04 || public key)[:4]`), the signed message
//! (`cosignature/v1\ntime <t>\n` followed by the checkpoint's note text),
//! the signature line `— <name> base64(key ID || u64 big-endian time ||
//! Ed25519 signature)`, making one, checking the ones a note carries against
//! the witnesses an auditor trusts, and counting them for a quorum. It reuses
//! [`super::signed_note`] for the note's layout and [`super::checkpoint`] for
//! its text; it never parses a note itself, never reads a clock (the caller
//! passes the time), never reads keys or files, and never decides whether a
//! checkpoint is consistent with an earlier one ([`super::witness`] does).

use super::checkpoint::{Checkpoint, CheckpointError};
use super::signed_note::{
    self, NoteError, SignatureLine, SignerKey, VerifierKey, ED25519_KEY_LEN, SIG_PREFIX,
};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use std::fmt;

/// The signature type byte of Ed25519 `cosignature/v1` keys.
pub const ALG_COSIGNATURE_V1: u8 = 0x04;
/// The header line of the signed message, for domain separation.
pub const COSIGNATURE_V1_HEADER: &str = "cosignature/v1";
/// Largest timestamp the spec allows (2^63 - 1).
pub const MAX_TIMESTAMP: u64 = (1 << 63) - 1;
/// Key ID, timestamp and Ed25519 signature.
const COSIGNATURE_LEN: usize = 4 + 8 + 64;

/// Why a cosignature, a cosigner key or a quorum was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CosignatureError {
    /// The note or a key string is malformed, or the log's signature fails.
    #[error(transparent)]
    Note(#[from] NoteError),
    /// The note is not a checkpoint of the expected log signed by its key.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The timestamp is zero or above 2^63 - 1: the caller's fault when
    /// cosigning, a malformed cosignature when verifying.
    #[error("a cosignature time must be between 1 and 2^63 - 1, not {0}")]
    InvalidTime(u64),
    /// A line with a trusted witness's name and key ID is not a
    /// `cosignature/v1` (wrong length).
    #[error("the cosignature by {witness} is malformed: {reason}")]
    Malformed {
        /// The witness's name and key ID.
        witness: String,
        /// What is wrong, in a few words.
        reason: &'static str,
    },
    /// A line with a trusted witness's name and key ID does not verify over
    /// this checkpoint: the checkpoint was altered after cosigning, or the
    /// line was forged.
    #[error("the cosignature by {witness} does not verify over this checkpoint")]
    BadCosignature {
        /// The witness's name and key ID.
        witness: String,
    },
    /// Two trusted witnesses share a name and key ID.
    #[error("ambiguous witness keys {0}")]
    AmbiguousWitness(String),
    /// A witness's answer holds no cosignature by that witness.
    #[error("the answer holds no cosignature by {witness}")]
    NoCosignature {
        /// The witness's name and key ID.
        witness: String,
    },
}

/// The message a `cosignature/v1` signs: the header line, the time line,
/// then the checkpoint's note text (with its final newline, without the
/// signature lines).
pub fn cosigned_message(note_text: &str, timestamp: u64) -> String {
    format!("{COSIGNATURE_V1_HEADER}\ntime {timestamp}\n{note_text}")
}

fn check_time(timestamp: u64) -> Result<(), CosignatureError> {
    if timestamp == 0 || timestamp > MAX_TIMESTAMP {
        return Err(CosignatureError::InvalidTime(timestamp));
    }
    Ok(())
}

/// A witness's public key, as auditors and gateways configure it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct CosignatureVerifier {
    name: String,
    key_id: u32,
    public_key: [u8; ED25519_KEY_LEN],
}

impl fmt::Debug for CosignatureVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CosignatureVerifier({self})")
    }
}

impl fmt::Display for CosignatureVerifier {
    /// The verifier key string `name+hex(key ID)+base64(0x04 || key)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}+{:08x}+{}",
            self.name,
            self.key_id,
            signed_note::encode_typed_material(&self.public_key, ALG_COSIGNATURE_V1)
        )
    }
}

impl std::str::FromStr for CosignatureVerifier {
    type Err = NoteError;

    /// Parses a `cosignature/v1` verifier key string and checks its key ID.
    fn from_str(vkey: &str) -> Result<Self, NoteError> {
        let (name, hex_id, material) =
            signed_note::split_key_string(vkey, "a witness verifier key is name+keyid+base64")?;
        let key_id = signed_note::parse_key_id(hex_id)?;
        let public_key = signed_note::decode_typed_material(
            material,
            ALG_COSIGNATURE_V1,
            "not a cosignature/v1 key (type 0x04): a witness key, not a log key, is expected",
        )?;
        let key = Self::from_ed25519(name, public_key)?;
        signed_note::check_claimed_key_id(key_id, key.key_id)?;
        Ok(key)
    }
}

impl CosignatureVerifier {
    /// The verifier of a raw Ed25519 public key under `name`.
    pub fn from_ed25519(name: &str, public_key: [u8; ED25519_KEY_LEN]) -> Result<Self, NoteError> {
        signed_note::check_key_name(name)?;
        Ok(Self {
            name: name.to_string(),
            key_id: signed_note::typed_key_id(name, ALG_COSIGNATURE_V1, &public_key),
            public_key,
        })
    }

    /// The witness's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key ID that prefixes its cosignatures.
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// `name+keyid`, how messages name the witness.
    pub fn label(&self) -> String {
        format!("{}+{:08x}", self.name, self.key_id)
    }

    /// Whether a signature line claims to be by this witness.
    pub fn claims(&self, line: &SignatureLine) -> bool {
        line.name == self.name && line.key_id == self.key_id
    }

    /// Verifies a line that [`Self::claims`] over `note_text`; returns its
    /// timestamp.
    pub fn verify_line(
        &self,
        note_text: &str,
        line: &SignatureLine,
    ) -> Result<u64, CosignatureError> {
        // The line's signature is what follows the key ID.
        if line.signature.len() != COSIGNATURE_LEN - 4 {
            return Err(CosignatureError::Malformed {
                witness: self.label(),
                reason: "a cosignature/v1 is a key ID, an 8-byte time and 64 bytes",
            });
        }
        let (time, sig) = line.signature.split_at(8);
        let mut be = [0u8; 8];
        be.copy_from_slice(time);
        let timestamp = u64::from_be_bytes(be);
        check_time(timestamp).map_err(|_| CosignatureError::Malformed {
            witness: self.label(),
            reason: "the time is zero or above 2^63 - 1",
        })?;
        let msg = cosigned_message(note_text, timestamp);
        if signed_note::ed25519_verifies(&self.public_key, msg.as_bytes(), sig) {
            Ok(timestamp)
        } else {
            Err(CosignatureError::BadCosignature {
                witness: self.label(),
            })
        }
    }
}

/// A witness's private key. It is an ordinary signed-note Ed25519 signer
/// key (`PRIVATE+KEY+name+keyid+base64(0x01 || seed)`, the form Go's
/// `note.GenerateKey` writes and other witnesses read); only its public
/// form and its signatures use the cosignature type 0x04.
pub struct CosignerKey {
    inner: SignerKey,
    verifier: CosignatureVerifier,
}

impl fmt::Debug for CosignerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print key material.
        write!(f, "CosignerKey({}, ..)", self.verifier.label())
    }
}

impl CosignerKey {
    /// A cosigner from a 32-byte Ed25519 seed.
    pub fn from_ed25519_seed(
        name: &str,
        seed: [u8; ED25519_KEY_LEN],
    ) -> Result<Self, CosignatureError> {
        Self::from_signer(SignerKey::from_ed25519_seed(name, seed)?)
    }

    /// Parses the signer key string a key file holds.
    pub fn from_signer_key_string(skey: &str) -> Result<Self, CosignatureError> {
        Self::from_signer(SignerKey::from_signer_key_string(skey)?)
    }

    fn from_signer(inner: SignerKey) -> Result<Self, CosignatureError> {
        let verifier =
            CosignatureVerifier::from_ed25519(inner.name(), *inner.verifier_key().public_key())?;
        Ok(Self { inner, verifier })
    }

    /// The signer key string, for the witness's key file (mode 0600).
    pub fn to_signer_key_string(&self) -> String {
        self.inner.to_signer_key_string()
    }

    /// The public key to give to gateways and auditors.
    pub fn verifier(&self) -> &CosignatureVerifier {
        &self.verifier
    }

    /// The cosignature line (with its final newline) over a checkpoint's
    /// note text at `timestamp` (POSIX seconds, not zero).
    pub fn cosign(&self, note_text: &str, timestamp: u64) -> Result<String, CosignatureError> {
        check_time(timestamp)?;
        let sig = self
            .inner
            .sign_ed25519(cosigned_message(note_text, timestamp).as_bytes());
        let mut raw = Vec::with_capacity(COSIGNATURE_LEN);
        raw.extend_from_slice(&self.verifier.key_id.to_be_bytes());
        raw.extend_from_slice(&timestamp.to_be_bytes());
        raw.extend_from_slice(&sig);
        Ok(format!(
            "{SIG_PREFIX}{} {}\n",
            self.verifier.name,
            BASE64.encode(raw)
        ))
    }
}

/// A verified cosignature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cosignature {
    /// The witness that cosigned.
    pub witness: CosignatureVerifier,
    /// When, in POSIX seconds, as the witness states it.
    pub timestamp: u64,
}

/// A checkpoint signed by its log, with the cosignatures of trusted
/// witnesses that verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CosignedCheckpoint {
    /// The checkpoint, opened with the log's key.
    pub checkpoint: Checkpoint,
    /// One per trusted witness that cosigned, in the order of `witnesses`.
    pub cosignatures: Vec<Cosignature>,
}

impl CosignedCheckpoint {
    /// How many distinct trusted witnesses cosigned.
    pub fn count(&self) -> usize {
        self.cosignatures.len()
    }

    /// Whether at least `quorum` trusted witnesses cosigned.
    pub fn meets(&self, quorum: usize) -> bool {
        self.count() >= quorum
    }

    /// The labels (`name+keyid`) of the witnesses among `witnesses` that
    /// did not cosign, in their order: what a verdict short of its quorum
    /// names.
    pub fn missing(&self, witnesses: &[CosignatureVerifier]) -> Vec<String> {
        witnesses
            .iter()
            .filter(|w| !self.cosignatures.iter().any(|c| &c.witness == *w))
            .map(CosignatureVerifier::label)
            .collect()
    }
}

fn check_unambiguous(witnesses: &[CosignatureVerifier]) -> Result<(), CosignatureError> {
    for (i, w) in witnesses.iter().enumerate() {
        if witnesses[..i]
            .iter()
            .any(|o| o.name == w.name && o.key_id == w.key_id && o != w)
        {
            return Err(CosignatureError::AmbiguousWitness(w.label()));
        }
    }
    Ok(())
}

/// Opens a checkpoint note of the log `origin` signed by `log_key` and
/// verifies the cosignatures of `witnesses` on it.
///
/// Lines from other keys are skipped, as the signed-note spec requires. A
/// line bearing a trusted witness's name and key ID that does not verify
/// rejects the note: such a note was altered or forged, and counting
/// around it would hide that. A witness counts once however many lines it
/// has.
pub fn open_cosigned(
    note: &[u8],
    origin: &str,
    log_key: &VerifierKey,
    witnesses: &[CosignatureVerifier],
) -> Result<CosignedCheckpoint, CosignatureError> {
    check_unambiguous(witnesses)?;
    let (checkpoint, verified) = Checkpoint::open(note, origin, std::slice::from_ref(log_key))?;
    let mut cosignatures: Vec<Cosignature> = Vec::new();
    for w in witnesses {
        for line in verified.unknown.iter().filter(|l| w.claims(l)) {
            let timestamp = w.verify_line(&verified.text, line)?;
            if !cosignatures.iter().any(|c| &c.witness == w) {
                cosignatures.push(Cosignature {
                    witness: w.clone(),
                    timestamp,
                });
            }
        }
    }
    Ok(CosignedCheckpoint {
        checkpoint,
        cosignatures,
    })
}

/// Adds to `note` the cosignature lines of `witness` found in `answer` (a
/// witness's `add-checkpoint` answer: signature lines, each ending in a
/// newline), after verifying each over the note's text; lines of other
/// keys in the answer are dropped, and lines the note already holds are not
/// repeated. Fails if a line of `witness` does not verify or none is there.
pub fn attach_cosignatures(
    note: &str,
    answer: &str,
    witness: &CosignatureVerifier,
) -> Result<String, CosignatureError> {
    let parsed = signed_note::parse(note.as_bytes())?;
    let Some(body) = answer.strip_suffix('\n') else {
        return Err(NoteError::Malformed {
            reason: "a witness answer ends with a newline",
        }
        .into());
    };
    let mut out = note.to_string();
    let mut found = false;
    for raw in body.split('\n') {
        let line = signed_note::parse_signature_line(raw)?;
        if !witness.claims(&line) {
            continue;
        }
        witness.verify_line(parsed.text, &line)?;
        found = true;
        if !parsed.signatures.contains(&line) {
            out.push_str(raw);
            out.push('\n');
        }
    }
    if !found {
        return Err(CosignatureError::NoCosignature {
            witness: witness.label(),
        });
    }
    // The result must still be a note within the limits.
    signed_note::parse(out.as_bytes())?;
    Ok(out)
}

#[cfg(test)]
mod tests;
