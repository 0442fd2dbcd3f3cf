//! The C2SP `tlog-witness` exchange (<https://c2sp.org/tlog-witness>),
//! `add-checkpoint`, without I/O.
//!
//! This module owns the request body (`old <size>`, the consistency proof
//! lines, a blank line, the signed checkpoint), the `409 Conflict` body
//! (`text/x.tlog.size`), and the witness's decision: which log the
//! checkpoint claims, whether a trusted key of that log signed it, whether
//! it extends the last checkpoint the witness cosigned for that log, and so
//! which HTTP status the spec gives each refusal. It never touches the
//! network, files or the clock, and it never remembers anything: the caller
//! passes the last state it persisted and persists the new one (before
//! answering, and atomically with the check, as the spec requires).

use super::checkpoint::{Checkpoint, CheckpointError};
use super::rfc9162::{self, Hash, HASH_LEN};
use super::signed_note::{self, NoteError, VerifierKey};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;

/// The path of the call, after the witness's submission prefix.
pub const ADD_CHECKPOINT_PATH: &str = "/add-checkpoint";
/// The media type of a `409 Conflict` answer: the witness's known size.
pub const TLOG_SIZE_CONTENT_TYPE: &str = "text/x.tlog.size";
/// Most consistency proof lines a client may send.
pub const MAX_PROOF_LINES: usize = 63;

/// A parsed `add-checkpoint` request body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddCheckpoint<'a> {
    /// The size of the checkpoint the client believes the witness last
    /// cosigned (0 when it does not know).
    pub old_size: u64,
    /// The RFC 9162 consistency proof from `old_size` to the checkpoint.
    pub proof: Vec<Hash>,
    /// The signed checkpoint note, possibly with several signatures.
    pub note: &'a [u8],
}

/// Why a witness refuses to cosign, with the spec's status code.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// 400: the body is not an `add-checkpoint` request, or the old size is
    /// above the checkpoint's.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// 404: the witness does not witness the log this checkpoint names.
    #[error("unknown log {0:?}: this witness does not witness it")]
    UnknownLog(String),
    /// 403: no trusted key of the log signed the checkpoint, or a trusted
    /// key's signature does not verify.
    #[error("the checkpoint is not validly signed by the log: {0}")]
    BadSignature(String),
    /// 409: the old size is not the size this witness last cosigned.
    #[error("the old size {old_size} is not the size this witness last cosigned for the log, {known_size}")]
    Conflict {
        /// The size the client sent.
        old_size: u64,
        /// The size the witness last cosigned (the answer's body).
        known_size: u64,
    },
    /// 422: the checkpoint is not consistent with what the witness last
    /// cosigned: a bad proof, a fork (same size, another root) or a wrong
    /// empty root.
    #[error("the checkpoint of size {size} is not consistent with the one of size {old_size} this witness cosigned: {reason}")]
    Inconsistent {
        /// The witness's known size.
        old_size: u64,
        /// The new checkpoint's size.
        size: u64,
        /// What failed.
        reason: String,
    },
}

impl Refusal {
    /// The HTTP status code the spec gives this refusal.
    pub fn status(&self) -> u16 {
        match self {
            Refusal::BadRequest(_) => 400,
            Refusal::BadSignature(_) => 403,
            Refusal::UnknownLog(_) => 404,
            Refusal::Conflict { .. } => 409,
            Refusal::Inconsistent { .. } => 422,
        }
    }

    /// The answer's body: for 409 the known size as the spec requires, else
    /// the reason, one line.
    pub fn body(&self) -> String {
        match self {
            Refusal::Conflict { known_size, .. } => size_body(*known_size),
            other => format!("{other}\n"),
        }
    }
}

fn bad(reason: impl Into<String>) -> Refusal {
    Refusal::BadRequest(reason.into())
}

/// A decimal without sign or leading zero (`0` alone for zero).
fn parse_decimal(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0'))
    {
        return None;
    }
    s.parse().ok()
}

/// The body of a `409 Conflict` answer: the size and a newline.
pub fn size_body(size: u64) -> String {
    format!("{size}\n")
}

/// Reads the body of a `409 Conflict` answer (for the log's side).
pub fn parse_size_body(body: &str) -> Option<u64> {
    body.strip_suffix('\n').and_then(parse_decimal)
}

impl<'a> AddCheckpoint<'a> {
    /// The request body for `old_size`, `proof` and a signed `note`.
    pub fn body(old_size: u64, proof: &[Hash], note: &str) -> String {
        let mut body = format!("old {old_size}\n");
        for hash in proof {
            body.push_str(&BASE64.encode(hash));
            body.push('\n');
        }
        body.push('\n');
        body.push_str(note);
        body
    }

    /// Parses a request body strictly; a refusal is a 400.
    pub fn parse(body: &'a [u8]) -> Result<Self, Refusal> {
        let mut rest = body;
        let mut next_line = || -> Result<&'a str, Refusal> {
            let end = rest
                .iter()
                .position(|&b| b == b'\n')
                .ok_or_else(|| bad("no blank line before the checkpoint"))?;
            let line = std::str::from_utf8(&rest[..end])
                .map_err(|_| bad("a line before the checkpoint is not UTF-8"))?;
            rest = &rest[end + 1..];
            Ok(line)
        };
        let first = next_line()?;
        let old_size = first
            .strip_prefix("old ")
            .and_then(parse_decimal)
            .ok_or_else(|| bad("the first line must be \"old <size>\" in decimal"))?;
        let mut proof = Vec::new();
        loop {
            let line = next_line()?;
            if line.is_empty() {
                break;
            }
            if proof.len() == MAX_PROOF_LINES {
                return Err(bad(format!(
                    "more than {MAX_PROOF_LINES} consistency proof lines"
                )));
            }
            let raw = BASE64
                .decode(line)
                .map_err(|_| bad("a consistency proof line is not standard base64"))?;
            let hash = <[u8; HASH_LEN]>::try_from(raw.as_slice())
                .map_err(|_| bad("a consistency proof line is not a 32-byte hash"))?;
            proof.push(hash);
        }
        Ok(Self {
            old_size,
            proof,
            note: rest,
        })
    }
}

/// What a witness remembers of a log: the last checkpoint it cosigned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogState {
    /// Its size.
    pub size: u64,
    /// Its root.
    pub root: Hash,
}

/// Decides an `add-checkpoint` request, in the spec's order of checks.
///
/// `keys_of` gives the trusted keys of a log by origin (`None`: not
/// witnessed); `state_of` the last state persisted for it (`None`: never
/// cosigned, treated as size 0). Returns the checkpoint to cosign; the
/// caller must persist it as the log's new state before answering.
pub fn decide(
    request: &AddCheckpoint<'_>,
    keys_of: impl Fn(&str) -> Option<Vec<VerifierKey>>,
    state_of: impl Fn(&str) -> Option<LogState>,
) -> Result<Checkpoint, Refusal> {
    // The origin, read before any signature is checked, picks the keys.
    let parsed = signed_note::parse(request.note)
        .map_err(|e| bad(format!("the checkpoint is not a signed note: {e}")))?;
    let claimed = Checkpoint::from_note_text(parsed.text)
        .map_err(|e| bad(format!("the note is not a checkpoint: {e}")))?;
    let keys =
        keys_of(&claimed.origin).ok_or_else(|| Refusal::UnknownLog(claimed.origin.clone()))?;
    let (checkpoint, _) = Checkpoint::open(request.note, &claimed.origin, &keys).map_err(|e| {
        Refusal::BadSignature(match e {
            CheckpointError::Note(NoteError::NoTrustedSignature) => {
                "no signature by a key this witness trusts for the log".to_string()
            }
            other => other.to_string(),
        })
    })?;
    if request.old_size > checkpoint.size {
        return Err(bad(format!(
            "the old size {} is above the checkpoint's size {}",
            request.old_size, checkpoint.size
        )));
    }
    let known = state_of(&checkpoint.origin).unwrap_or(LogState {
        size: 0,
        root: rfc9162::empty_root(),
    });
    if request.old_size != known.size {
        return Err(Refusal::Conflict {
            old_size: request.old_size,
            known_size: known.size,
        });
    }
    rfc9162::verify_consistency(
        known.size,
        checkpoint.size,
        &known.root,
        &checkpoint.root,
        &request.proof,
    )
    .map_err(|e| Refusal::Inconsistent {
        old_size: known.size,
        size: checkpoint.size,
        reason: e.to_string(),
    })?;
    Ok(checkpoint)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::rfc9162::Tree;
    use crate::audit::signed_note::SignerKey;

    const ORIGIN: &str = "gateway.example/audit";

    fn key() -> SignerKey {
        SignerKey::from_ed25519_seed(ORIGIN, [5; 32]).unwrap()
    }

    fn tree(n: u64, salt: u8) -> Tree {
        let mut t = Tree::new();
        for i in 0..n {
            t.append(&[salt, i as u8]);
        }
        t
    }

    fn note(t: &Tree, size: u64) -> String {
        Checkpoint::new(ORIGIN, size, t.root_at(size).unwrap())
            .sign(&[&key()])
            .unwrap()
    }

    fn run(body: &str, state: Option<LogState>) -> Result<Checkpoint, Refusal> {
        let req = AddCheckpoint::parse(body.as_bytes())?;
        decide(
            &req,
            |o| (o == ORIGIN).then(|| vec![key().verifier_key()]),
            |_| state.clone(),
        )
    }

    #[test]
    fn the_spec_example_body_parses() {
        let body = "old 20852014\nPlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=\njrJZDmY8Y7SyJE0MWLpLozkIVMSMZcD5kvuKxPC3swk=\n\nexample.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n\u{2014} example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n";
        let req = AddCheckpoint::parse(body.as_bytes()).unwrap();
        assert_eq!(req.old_size, 20_852_014);
        assert_eq!(req.proof.len(), 2);
        assert!(req.note.starts_with(b"example.com/behind-the-sofa\n"));
        // An origin the witness does not know is a 404.
        assert_eq!(run(body, None).unwrap_err().status(), 404);
    }

    #[test]
    fn a_growing_log_is_accepted_and_rollbacks_and_forks_refused() {
        let t = tree(10, 1);
        let body = AddCheckpoint::body(0, &[], &note(&t, 4));
        assert_eq!(run(&body, None).unwrap().size, 4);
        let state = Some(LogState {
            size: 4,
            root: t.root_at(4).unwrap(),
        });
        let proof = t.consistency_proof(4, 10).unwrap();
        let body = AddCheckpoint::body(4, &proof, &note(&t, 10));
        assert_eq!(run(&body, state.clone()).unwrap().size, 10);
        // Rollback: the witness knows 10, the log claims 4 again.
        let known = Some(LogState {
            size: 10,
            root: t.root(),
        });
        let body = AddCheckpoint::body(0, &[], &note(&t, 4));
        let r = run(&body, known.clone()).unwrap_err();
        assert_eq!((r.status(), r.body()), (409, "10\n".to_string()));
        let body = AddCheckpoint::body(10, &[], &note(&t, 4));
        assert_eq!(run(&body, known.clone()).unwrap_err().status(), 400);
        // Fork: same size, another root.
        let other = tree(10, 2);
        let body = AddCheckpoint::body(10, &[], &note(&other, 10));
        assert_eq!(run(&body, known.clone()).unwrap_err().status(), 422);
        // Fork: a bigger tree that does not extend the known one.
        let other = tree(12, 2);
        let proof = other.consistency_proof(10, 12).unwrap();
        let body = AddCheckpoint::body(10, &proof, &note(&other, 12));
        assert_eq!(run(&body, known.clone()).unwrap_err().status(), 422);
        // Same size and root: cosigned again.
        let body = AddCheckpoint::body(10, &[], &note(&t, 10));
        assert!(run(&body, known).is_ok());
        // A proof with an empty old tree is refused.
        let body = AddCheckpoint::body(0, &proof, &note(&t, 4));
        assert_eq!(run(&body, None).unwrap_err().status(), 422);
    }

    #[test]
    fn bad_signatures_and_bodies_are_refused() {
        let t = tree(3, 1);
        let other = SignerKey::from_ed25519_seed(ORIGIN, [6; 32]).unwrap();
        let cp = Checkpoint::new(ORIGIN, 3, t.root());
        let body = AddCheckpoint::body(0, &[], &cp.sign(&[&other]).unwrap());
        assert_eq!(run(&body, None).unwrap_err().status(), 403);
        let altered = note(&t, 3).replacen("\n3\n", "\n2\n", 1);
        let body = AddCheckpoint::body(0, &[], &altered);
        assert_eq!(run(&body, None).unwrap_err().status(), 403);
        for body in [
            "",
            "old 1\n",
            "old 01\n\nx",
            "old -1\n\nx",
            "new 1\n\nx",
            "old 0\nnot base64\n\nx",
            "old 0\n\nnot a note",
        ] {
            assert_eq!(run(body, None).unwrap_err().status(), 400, "{body:?}");
        }
        let many = format!(
            "old 0\n{}\n{}",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n".repeat(64),
            note(&t, 3)
        );
        assert_eq!(run(&many, None).unwrap_err().status(), 400);
        assert_eq!(parse_size_body("12\n"), Some(12));
        assert_eq!(parse_size_body("012\n"), None);
    }
}
