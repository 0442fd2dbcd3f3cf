//! `passerelle audit prove` and `passerelle audit check-receipt`: proofs that
//! one entry is in the log, built from an export or carried by a receipt.
//!
//! This module owns two offline answers for an auditor holding the gateway's
//! verifier key: an RFC 9162 inclusion proof of entry `index` against the
//! export's latest signed checkpoint, in the JSON shape of
//! [`InclusionProof`] (the one receipts carry), and the check of a
//! [`SignedReceipt`] a sender kept, through
//! [`crate::audit::receipts::check_receipt`], and, when the auditor names
//! witnesses, that the receipt is final: the checkpoint its proof is
//! against carries valid cosignatures of at least a quorum of them (as
//! `passerelle receipt --wait` prints it for a station with `[witnesses]`).
//! A proof is checked with the key before it is returned, so nothing
//! unverified is ever printed. It reads
//! files through [`super::verify::ExportSource`]; it never verifies the whole
//! log (that is [`super::verify`]) and never writes.

use std::fmt;
use std::path::{Path, PathBuf};

use super::verify::{self, DirSource, ExportSource, Fault, Layout, SourceError};
use crate::audit::checkpoint::Checkpoint;
use crate::audit::cosignature::{self, CosignatureError, CosignatureVerifier};
use crate::audit::event::AuditEntry;
use crate::audit::receipts::{self, CheckedReceipt, VouchError};
use crate::audit::rfc9162::Tree;
use crate::audit::signed_note::{self, VerifierKey};
use crate::audit::tiles::{TileLevel, TilePath, TILE_WIDTH};
use crate::domain::bytes::Bytes;
use crate::domain::receipt::{InclusionProof, Outcome, SignedReceipt};

/// Why no proof was produced.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProveError {
    /// The export could not be read: the environment's fault.
    #[error(transparent)]
    Unreadable(#[from] SourceError),
    /// The index is not in the log: the caller's fault.
    #[error("entry {index} is not in the log: its latest checkpoint has size {size} (entries 0..{size})")]
    OutOfRange {
        /// The index asked for.
        index: u64,
        /// The latest checkpoint's size.
        size: u64,
    },
    /// The export is damaged or not signed by the key, so it cannot prove
    /// the entry.
    #[error("the export cannot prove entry {index}: {fault}")]
    Export {
        /// The index asked for.
        index: u64,
        /// What is wrong.
        fault: Fault,
    },
    /// The proof built from the export does not lead to the signed root:
    /// the export was tampered with.
    #[error("the proof of entry {index} built from the export does not verify: {source}; run `passerelle audit verify` to name the fault")]
    DoesNotVerify {
        /// The index asked for.
        index: u64,
        /// What the check said.
        source: VouchError,
    },
}

impl ProveError {
    /// The CLI's exit code: [`verify::EXIT_FAILED`] when the export is at
    /// fault, [`verify::EXIT_CANNOT_RUN`] when the input or the request is.
    pub fn exit_code(&self) -> u8 {
        match self {
            ProveError::Unreadable(_) | ProveError::OutOfRange { .. } => verify::EXIT_CANNOT_RUN,
            ProveError::Export { .. } | ProveError::DoesNotVerify { .. } => verify::EXIT_FAILED,
        }
    }
}

/// An inclusion proof, checked with the key, and the entry it proves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proved {
    /// The proof, as receipts carry it.
    pub proof: InclusionProof,
    /// The entry, decoded.
    pub entry: AuditEntry,
}

/// The inclusion proof of entry `index` of the export in `dir` against its
/// latest checkpoint, checked with `key`.
pub fn prove(dir: &Path, index: u64, key: &VerifierKey) -> Result<Proved, ProveError> {
    prove_source(&DirSource::open(dir)?, index, key)
}

/// The inclusion proof of entry `index` of the export read from `source`
/// against its latest checkpoint, checked with `key`.
pub fn prove_source(
    source: &dyn ExportSource,
    index: u64,
    key: &VerifierKey,
) -> Result<Proved, ProveError> {
    let fault = |fault| ProveError::Export { index, fault };
    let Some(note) = source.read(verify::LATEST)? else {
        return Err(fault(Fault::MissingCheckpointFile {
            file: verify::LATEST.into(),
        }));
    };
    let latest = verify::open_one(verify::LATEST, &note, key).map_err(fault)?;
    let size = latest.checkpoint.size;
    if index >= size {
        return Err(ProveError::OutOfRange { index, size });
    }
    let layout = Layout::list(source)?;
    // The leaf hashes from the level-0 tiles: the proof is checked against
    // the signed root below, so tampered tiles cannot produce a valid one.
    let Some(leaves) = verify::read_claimed_leaves(source, &layout, size)? else {
        return Err(fault(verify::first_missing_level0(source, &layout, size)?));
    };
    let entry = read_entry(source, &layout, index, size).map_err(|e| match e {
        Read::Source(s) => ProveError::Unreadable(s),
        Read::Fault(f) => fault(f),
    })?;
    let tree = Tree::from_leaf_hashes(leaves);
    let hashes = tree
        .inclusion_proof(index, size)
        .map_err(|_| ProveError::OutOfRange { index, size })?;
    let proof = InclusionProof {
        entry: Bytes(entry),
        index,
        size,
        hashes: hashes.iter().map(|h| Bytes(h.to_vec())).collect(),
        checkpoint: latest.note,
    };
    let entry = receipts::check_inclusion(&proof, key)
        .map_err(|source| ProveError::DoesNotVerify { index, source })?;
    Ok(Proved { proof, entry })
}

enum Read {
    Source(SourceError),
    Fault(Fault),
}

/// Entry `index` of the tree of `size`, from its bundle.
fn read_entry(
    source: &dyn ExportSource,
    layout: &Layout,
    index: u64,
    size: u64,
) -> Result<Vec<u8>, Read> {
    let start = index - index % TILE_WIDTH;
    let want = TilePath {
        level: TileLevel::Entries,
        index: index / TILE_WIDTH,
        // At most TILE_WIDTH, so it fits.
        width: (size - start).min(TILE_WIDTH) as u16,
    };
    let missing = || {
        Read::Fault(Fault::MissingBundle {
            path: want.to_string(),
            range: want.entry_range(),
        })
    };
    let file = layout.file_for(&want).ok_or_else(missing)?;
    let data = source
        .read(&file.to_string())
        .map_err(Read::Source)?
        .ok_or_else(missing)?;
    let (entries, broken) = verify::split_bundle(&data);
    let offset = (index - start) as usize;
    match entries.get(offset) {
        Some(e) => Ok(e.to_vec()),
        None => Err(Read::Fault(Fault::BundleDamaged {
            index: start + entries.len() as u64,
            path: file.to_string(),
            what: broken
                .unwrap_or("holds fewer entries than its name says")
                .into(),
        })),
    }
}

/// Why a receipt was not accepted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReceiptError {
    /// The receipt file could not be read.
    #[error("cannot read the receipt {path}: {source}")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not a signed receipt as `passerelle send --json` or
    /// `passerelle receipt --json` print it.
    #[error("{path} is not a signed receipt (the JSON that `passerelle send --json` or `passerelle receipt --json` print): {reason}")]
    NotAReceipt {
        /// The file.
        path: PathBuf,
        /// The parser's complaint.
        reason: String,
    },
    /// The receipt's proof is against another log's checkpoint.
    #[error("the receipt is from another log: its checkpoint is for {origin:?}, signed by {}; the key given is {key}", .signed_by.join(", "))]
    OtherLog {
        /// The origin on the receipt's checkpoint, unverified.
        origin: String,
        /// The keys on that checkpoint, unverified.
        signed_by: Vec<String>,
        /// The key given.
        key: String,
    },
    /// The receipt does not verify.
    #[error("the receipt is NOT valid: {0}")]
    Invalid(#[from] VouchError),
    /// The receipt verifies, but no checkpoint cosigned by the quorum of
    /// the witnesses given proves its entry.
    #[error("the receipt is valid but NOT FINAL: {0}")]
    NotFinal(String),
    /// A cosignature on the receipt's checkpoint that claims to be one of
    /// the witnesses given does not verify: altered or forged.
    #[error("the receipt's checkpoint does NOT verify: {0}")]
    BadCosignature(#[from] CosignatureError),
}

impl ReceiptError {
    /// The CLI's exit code: [`verify::EXIT_FAILED`] when the receipt does
    /// not verify, [`verify::EXIT_CANNOT_RUN`] when it could not be read.
    pub fn exit_code(&self) -> u8 {
        match self {
            ReceiptError::Unreadable { .. } | ReceiptError::NotAReceipt { .. } => {
                verify::EXIT_CANNOT_RUN
            }
            ReceiptError::OtherLog { .. }
            | ReceiptError::Invalid(_)
            | ReceiptError::NotFinal(_)
            | ReceiptError::BadCosignature(_) => verify::EXIT_FAILED,
        }
    }
}

/// A receipt that checked out, and what that proves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceiptReport {
    /// What the check established.
    pub checked: CheckedReceipt,
    /// The key that verified it.
    pub key: String,
    /// The witnesses that cosigned the checkpoint proving it, when the
    /// auditor asked for a quorum.
    pub finality: Option<Finality>,
}

/// A receipt's checkpoint cosigned by the quorum of the witnesses given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finality {
    /// The checkpoint's size.
    pub size: u64,
    /// The quorum asked for.
    pub quorum: usize,
    /// How many witnesses were given.
    pub witnesses: usize,
    /// The witnesses that cosigned (`name+keyid`).
    pub cosigned: Vec<String>,
}

impl fmt::Display for ReceiptReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = &self.checked.receipt;
        writeln!(f, "valid receipt, signed by the gateway's key {}", self.key)?;
        writeln!(
            f,
            "  item       {} (reference {}), from {}",
            r.item_id, r.item_ref, r.sender
        )?;
        writeln!(
            f,
            "  digest     {} (SHA-256 of the signed manifest)",
            r.digest
        )?;
        writeln!(
            f,
            "  accepted   {} under policy {}",
            super::time::rfc3339(r.accepted_at),
            r.policy_digest
        )?;
        for o in &r.outcomes {
            match o.outcome {
                Outcome::Queued => writeln!(
                    f,
                    "  recipient  {}: queued, {} portion(s) released",
                    o.recipient, o.portions_released
                )?,
                Outcome::Denied => writeln!(
                    f,
                    "  recipient  {}: denied ({})",
                    o.recipient,
                    o.reasons.join("; ")
                )?,
            }
        }
        match self.checked.included_in {
            Some(size) => writeln!(
                f,
                "  audit      entry {} records this acceptance and is included in the signed checkpoint of size {size} (inclusion proof verified)",
                r.audit_index
            ),
            None => writeln!(
                f,
                "  audit      entry {}; the receipt carries no inclusion proof yet: it proves the gateway accepted the item, not yet that its log includes the entry (ask `passerelle receipt` again once a checkpoint covers it, or `passerelle audit prove` on an export)",
                r.audit_index
            ),
        }?;
        match &self.finality {
            Some(fin) => writeln!(
                f,
                "  final      the checkpoint of size {} is cosigned by {} of {} witnesses (quorum {}): {}",
                fin.size,
                fin.cosigned.len(),
                fin.witnesses,
                fin.quorum,
                fin.cosigned.join(", ")
            ),
            None => Ok(()),
        }
    }
}

/// Checks the signed receipt in the JSON file at `path` with `key`, and
/// that it is final for `witnesses` when some are given.
pub fn check_receipt_file(
    path: &Path,
    key: &VerifierKey,
    witnesses: &[CosignatureVerifier],
    quorum: usize,
) -> Result<ReceiptReport, ReceiptError> {
    let bytes = std::fs::read(path).map_err(|source| ReceiptError::Unreadable {
        path: path.to_path_buf(),
        source,
    })?;
    let signed: SignedReceipt =
        serde_json::from_slice(&bytes).map_err(|e| ReceiptError::NotAReceipt {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    let mut report = check_signed_receipt(&signed, key)?;
    if !witnesses.is_empty() {
        report.finality = Some(check_final(&signed, key, witnesses, quorum)?);
    }
    Ok(report)
}

/// Whether the checkpoint that `signed`'s (already checked) proof is
/// against carries valid cosignatures of at least `quorum` of
/// `witnesses`. A receipt without a proof is not final: nothing shows
/// its entry in a checkpoint anyone cosigned.
pub fn check_final(
    signed: &SignedReceipt,
    key: &VerifierKey,
    witnesses: &[CosignatureVerifier],
    quorum: usize,
) -> Result<Finality, ReceiptError> {
    let Some(proof) = &signed.inclusion else {
        return Err(ReceiptError::NotFinal(
            "it carries no inclusion proof, so no cosigned checkpoint covers its entry (ask `passerelle receipt REF --wait` again)".into(),
        ));
    };
    let opened =
        cosignature::open_cosigned(proof.checkpoint.as_bytes(), key.name(), key, witnesses)?;
    let cosigned: Vec<String> = opened
        .cosignatures
        .iter()
        .map(|c| c.witness.label())
        .collect();
    if !opened.meets(quorum) {
        let missing = opened.missing(witnesses);
        return Err(ReceiptError::NotFinal(format!(
            "its checkpoint of size {} is cosigned by {} of the witnesses given, fewer than the quorum of {quorum} (not cosigned: {})",
            opened.checkpoint.size,
            cosigned.len(),
            missing.join(", ")
        )));
    }
    Ok(Finality {
        size: opened.checkpoint.size,
        quorum,
        witnesses: witnesses.len(),
        cosigned,
    })
}

/// Checks a signed receipt with `key`, telling a receipt of another log
/// apart from a tampered one.
pub fn check_signed_receipt(
    signed: &SignedReceipt,
    key: &VerifierKey,
) -> Result<ReceiptReport, ReceiptError> {
    if let Some(proof) = &signed.inclusion {
        if let Ok(parsed) = signed_note::parse(proof.checkpoint.as_bytes()) {
            let origin = Checkpoint::from_note_text(parsed.text)
                .map(|c| c.origin)
                .unwrap_or_default();
            let ours = parsed
                .signatures
                .iter()
                .any(|s| s.name == key.name() && s.key_id == key.key_id());
            if origin != key.name() || !ours {
                return Err(ReceiptError::OtherLog {
                    origin,
                    signed_by: parsed
                        .signatures
                        .iter()
                        .map(|s| format!("{}+{:08x}", s.name, s.key_id))
                        .collect(),
                    key: key.to_string(),
                });
            }
        }
    }
    let checked = receipts::check_receipt(signed, key)?;
    Ok(ReceiptReport {
        checked,
        key: key.to_string(),
        finality: None,
    })
}
