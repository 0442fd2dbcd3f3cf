//! C2SP transparency log checkpoints (<https://c2sp.org/tlog-checkpoint>).
//!
//! This module owns the checkpoint's note text, "Note text" section of the
//! spec: the origin line, the decimal tree size, the base64 root hash, then
//! optional non-empty extension lines. It formats and parses that text
//! strictly, and signs and opens checkpoints through [`super::signed_note`].
//! It never checks that a checkpoint is consistent with an earlier one (that
//! takes a proof from [`super::rfc9162`]) and never reads keys or files.

use super::rfc9162::{Hash, HASH_LEN};
use super::signed_note::{self, NoteError, SignerKey, VerifiedNote, VerifierKey};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;

/// Why a checkpoint was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// The note around the checkpoint is malformed or not trusted.
    #[error(transparent)]
    Note(#[from] NoteError),
    /// The note text is not a checkpoint: the `reason` says which line is
    /// wrong. The log's fault, or tampering.
    #[error("malformed checkpoint: {reason}")]
    Malformed {
        /// What is wrong, in a few words.
        reason: &'static str,
    },
    /// The checkpoint is for another log than the one expected: an auditor
    /// was handed the wrong file, or a log is being impersonated.
    #[error("checkpoint is for origin {found:?}, expected {expected:?}")]
    WrongOrigin {
        /// The origin the caller trusts.
        expected: String,
        /// The origin on the checkpoint.
        found: String,
    },
}

fn malformed(reason: &'static str) -> CheckpointError {
    CheckpointError::Malformed { reason }
}

/// A tree head: the log's identity, its size and its root hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's origin line, e.g. `gateway.example/audit`.
    pub origin: String,
    /// Number of entries in the tree.
    pub size: u64,
    /// RFC 9162 Merkle Tree Hash of those entries.
    pub root: Hash,
    /// Extension lines, opaque and usually empty; the spec advises against
    /// them because monitors cannot audit them.
    pub extensions: Vec<String>,
}

fn check_line(line: &str, what: &'static str) -> Result<(), CheckpointError> {
    if line.is_empty() {
        return Err(malformed(what));
    }
    if line.chars().any(|c| c < ' ') {
        return Err(malformed("a line contains a control character"));
    }
    Ok(())
}

impl Checkpoint {
    /// A checkpoint without extension lines.
    pub fn new(origin: impl Into<String>, size: u64, root: Hash) -> Self {
        Self {
            origin: origin.into(),
            size,
            root,
            extensions: Vec::new(),
        }
    }

    /// The note text: `origin\nsize\nbase64(root)\n` then each extension
    /// line and a newline.
    pub fn to_note_text(&self) -> Result<String, CheckpointError> {
        check_line(&self.origin, "the origin is empty")?;
        for ext in &self.extensions {
            check_line(ext, "an extension line is empty")?;
        }
        let mut text = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            BASE64.encode(self.root)
        );
        for ext in &self.extensions {
            text.push_str(ext);
            text.push('\n');
        }
        Ok(text)
    }

    /// Parses checkpoint note text (already taken out of its signed note).
    pub fn from_note_text(text: &str) -> Result<Self, CheckpointError> {
        let Some(body) = text.strip_suffix('\n') else {
            return Err(malformed("the text does not end with a newline"));
        };
        let mut lines = body.split('\n');
        let origin = lines.next().unwrap_or_default();
        check_line(origin, "the origin is empty")?;
        let size = parse_size(lines.next().ok_or(malformed("no tree size line"))?)?;
        let root = parse_root(lines.next().ok_or(malformed("no root hash line"))?)?;
        let mut extensions = Vec::new();
        for ext in lines {
            check_line(ext, "an extension line is empty")?;
            extensions.push(ext.to_string());
        }
        Ok(Self {
            origin: origin.to_string(),
            size,
            root,
            extensions,
        })
    }

    /// Signs the checkpoint as a note. The spec recommends that the key name
    /// match the origin.
    pub fn sign(&self, signers: &[&SignerKey]) -> Result<String, CheckpointError> {
        Ok(signed_note::sign(&self.to_note_text()?, signers)?)
    }

    /// Opens a signed checkpoint from the log `expected_origin`: at least one
    /// key of `trusted` must have signed it (others' signatures are skipped)
    /// and its origin must be the expected one.
    pub fn open(
        note: &[u8],
        expected_origin: &str,
        trusted: &[VerifierKey],
    ) -> Result<(Self, VerifiedNote), CheckpointError> {
        let verified = signed_note::open(note, trusted)?;
        let checkpoint = Self::from_note_text(&verified.text)?;
        if checkpoint.origin != expected_origin {
            return Err(CheckpointError::WrongOrigin {
                expected: expected_origin.to_string(),
                found: checkpoint.origin,
            });
        }
        Ok((checkpoint, verified))
    }
}

fn parse_size(line: &str) -> Result<u64, CheckpointError> {
    // ASCII decimal, no sign, no leading zero unless the tree is empty.
    if line.is_empty() || !line.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed("the tree size is not a decimal number"));
    }
    if line.len() > 1 && line.starts_with('0') {
        return Err(malformed("the tree size has a leading zero"));
    }
    line.parse()
        .map_err(|_| malformed("the tree size does not fit in 64 bits"))
}

fn parse_root(line: &str) -> Result<Hash, CheckpointError> {
    let raw = BASE64
        .decode(line)
        .map_err(|_| malformed("the root hash is not standard base64"))?;
    <[u8; HASH_LEN]>::try_from(raw.as_slice())
        .map_err(|_| malformed("the root hash is not 32 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORIGIN: &str = "gateway.example/audit";

    fn key() -> SignerKey {
        SignerKey::from_ed25519_seed(ORIGIN, [42; 32]).unwrap()
    }

    #[test]
    fn text_round_trips() {
        let mut cp = Checkpoint::new(ORIGIN, 12345, [7; 32]);
        let text = cp.to_note_text().unwrap();
        assert_eq!(
            text,
            "gateway.example/audit\n12345\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n"
        );
        assert_eq!(Checkpoint::from_note_text(&text).unwrap(), cp);
        cp.extensions.push("ext one".into());
        let text = cp.to_note_text().unwrap();
        assert_eq!(Checkpoint::from_note_text(&text).unwrap(), cp);
    }

    #[test]
    fn sign_and_open() {
        let k = key();
        let cp = Checkpoint::new(ORIGIN, 0, crate::audit::rfc9162::empty_root());
        let note = cp.sign(&[&k]).unwrap();
        let (opened, _) = Checkpoint::open(note.as_bytes(), ORIGIN, &[k.verifier_key()]).unwrap();
        assert_eq!(opened, cp);
        assert!(matches!(
            Checkpoint::open(note.as_bytes(), "other.example/log", &[k.verifier_key()]),
            Err(CheckpointError::WrongOrigin { .. })
        ));
        let other = SignerKey::from_ed25519_seed(ORIGIN, [43; 32]).unwrap();
        assert!(matches!(
            Checkpoint::open(note.as_bytes(), ORIGIN, &[other.verifier_key()]),
            Err(CheckpointError::Note(NoteError::NoTrustedSignature))
        ));
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics_and_format_round_trips(
            text in "\\PC{0,100}",
            origin in "[a-z./]{1,20}",
            size: u64,
            root: [u8; 32],
        ) {
            let _ = Checkpoint::from_note_text(&text);
            let cp = Checkpoint::new(origin, size, root);
            let back = Checkpoint::from_note_text(&cp.to_note_text().unwrap());
            proptest::prop_assert_eq!(back, Ok(cp));
        }
    }

    #[test]
    fn malformed_texts_are_refused() {
        let root = BASE64.encode([1u8; 32]);
        let bad = [
            String::new(),
            format!("{ORIGIN}\n10\n{root}"),
            format!("\n10\n{root}\n"),
            format!("{ORIGIN}\n010\n{root}\n"),
            format!("{ORIGIN}\n-1\n{root}\n"),
            format!("{ORIGIN}\n+1\n{root}\n"),
            format!("{ORIGIN}\n 1\n{root}\n"),
            format!("{ORIGIN}\n18446744073709551616\n{root}\n"),
            format!("{ORIGIN}\n10\n{}\n", BASE64.encode([1u8; 31])),
            format!("{ORIGIN}\n10\nnot base64!\n"),
            format!("{ORIGIN}\n10\n{root}\n\n"),
            format!("{ORIGIN}\n10\n"),
            format!("{ORIGIN}\n"),
        ];
        for text in bad {
            assert!(Checkpoint::from_note_text(&text).is_err(), "{text:?}");
        }
        assert_eq!(
            Checkpoint::from_note_text(&format!("{ORIGIN}\n0\n{root}\n"))
                .unwrap()
                .size,
            0
        );
        assert!(Checkpoint::new("", 1, [0; 32]).to_note_text().is_err());
        assert!(Checkpoint::new("a\nb", 1, [0; 32]).to_note_text().is_err());
    }
}
