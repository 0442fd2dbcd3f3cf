//! Checkpoints and their chain: opening every signed checkpoint of an export
//! with the verifier key, one per size, and checking that a later
//! checkpoint is consistent with an earlier one.
//!
//! This module owns why a checkpoint file is refused (not signed, wrong
//! origin, misnamed, a fork, `checkpoint` not the latest). It never reads
//! entries or tiles, and never believes an unsigned size or root.

use super::report::Fault;
use super::report::SignedCheckpoint;
use super::report::VerifyFailure;
use super::source::ExportSource;
use super::source::CHECKPOINTS;
use super::source::LATEST;
use crate::audit::checkpoint::Checkpoint;
use crate::audit::checkpoint::CheckpointError;
use crate::audit::rfc9162;
use crate::audit::rfc9162::Tree;
use crate::audit::signed_note;
use crate::audit::signed_note::NoteError;
use crate::audit::signed_note::VerifierKey;
use std::collections::BTreeMap;
use std::collections::BTreeSet;

/// The signed checkpoints of an export, one per size, by increasing size.
pub(crate) struct Opened {
    pub(crate) checkpoints: Vec<SignedCheckpoint>,
    /// The `checkpoint` file's, also the last of `checkpoints`.
    latest: SignedCheckpoint,
    pub(super) ignored: Vec<String>,
}

impl Opened {
    pub(crate) fn latest(&self) -> &SignedCheckpoint {
        &self.latest
    }
}

/// A decimal number without sign or leading zero.
pub(super) fn parse_decimal(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0'))
    {
        return None;
    }
    s.parse().ok()
}

/// Opens one checkpoint file with the key, saying precisely why not.
pub(crate) fn open_one(
    file: &str,
    bytes: &[u8],
    key: &VerifierKey,
) -> Result<SignedCheckpoint, Fault> {
    let unverified = || {
        let parsed = signed_note::parse(bytes).ok();
        let size = parsed
            .as_ref()
            .and_then(|p| Checkpoint::from_note_text(p.text).ok())
            .map(|c| c.size);
        let signers = parsed
            .map(|p| {
                p.signatures
                    .iter()
                    .map(|s| format!("{}+{:08x}", s.name, s.key_id))
                    .collect()
            })
            .unwrap_or_default();
        (size, signers)
    };
    match Checkpoint::open(bytes, key.name(), std::slice::from_ref(key)) {
        Ok((checkpoint, _)) => Ok(SignedCheckpoint {
            file: file.to_string(),
            checkpoint,
            // Opening succeeded, so the note is UTF-8.
            note: String::from_utf8_lossy(bytes).into_owned(),
        }),
        Err(CheckpointError::Note(NoteError::NoTrustedSignature)) => {
            let (size, signed_by) = unverified();
            Err(Fault::CheckpointNotSigned {
                file: file.to_string(),
                size,
                key: key.to_string(),
                signed_by,
            })
        }
        Err(CheckpointError::Note(NoteError::BadSignature { .. })) => {
            let (size, _) = unverified();
            Err(Fault::CheckpointBadSignature {
                file: file.to_string(),
                size,
                key: key.to_string(),
            })
        }
        Err(CheckpointError::WrongOrigin { expected, found }) => {
            Err(Fault::CheckpointWrongOrigin {
                file: file.to_string(),
                expected,
                found,
            })
        }
        Err(e) => Err(Fault::MalformedCheckpoint {
            file: file.to_string(),
            reason: e.to_string(),
        }),
    }
}

/// Opens `checkpoint` and every `checkpoints/<size>` with the key.
pub(crate) fn open_checkpoints(
    source: &dyn ExportSource,
    key: &VerifierKey,
) -> Result<Opened, VerifyFailure> {
    let latest = source.read(LATEST)?;
    let names = source.list(CHECKPOINTS)?;
    let Some(latest) = latest else {
        if names.is_empty() && source.list("tile")?.is_empty() {
            return Err(VerifyFailure::NotAnExport(String::new()));
        }
        return Err(Fault::MissingCheckpointFile {
            file: LATEST.to_string(),
        }
        .into());
    };
    let mut ignored = Vec::new();
    let mut files: Vec<(u64, String)> = Vec::new();
    for name in names {
        match name.strip_prefix("checkpoints/").and_then(parse_decimal) {
            Some(size) => files.push((size, name)),
            None => ignored.push(name),
        }
    }
    files.sort();
    let mut results = Vec::with_capacity(files.len() + 1);
    for (named, file) in &files {
        let bytes = source.read(file)?.unwrap_or_default();
        results.push((Some(*named), open_one(file, &bytes, key)));
    }
    results.push((None, open_one(LATEST, &latest, key)));

    // Not one signed by the key: the key is not this log's.
    if results
        .iter()
        .all(|(_, r)| matches!(r, Err(Fault::CheckpointNotSigned { .. })))
    {
        let mut signed_by: Vec<String> = results
            .iter()
            .flat_map(|(_, r)| match r {
                Err(Fault::CheckpointNotSigned { signed_by, .. }) => signed_by.clone(),
                _ => Vec::new(),
            })
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if signed_by.is_empty() {
            signed_by.push("nobody".into());
        }
        return Err(Fault::UnknownKey {
            key: key.to_string(),
            signed_by,
        }
        .into());
    }
    let mut opened = Vec::with_capacity(results.len());
    for (named, result) in results {
        let cp = result?;
        if let Some(named) = named {
            if named != cp.checkpoint.size {
                return Err(Fault::CheckpointMisnamed {
                    file: cp.file,
                    named,
                    size: cp.checkpoint.size,
                }
                .into());
            }
        }
        opened.push(cp);
    }
    // The last one pushed is `checkpoint`: it must be the largest.
    let Some(latest) = opened.pop() else {
        return Err(Fault::MissingCheckpointFile {
            file: LATEST.to_string(),
        }
        .into());
    };
    if let Some(larger) = opened
        .iter()
        .find(|c| c.checkpoint.size > latest.checkpoint.size)
    {
        return Err(Fault::LatestNotLargest {
            size: latest.checkpoint.size,
            file: larger.file.clone(),
            larger: larger.checkpoint.size,
        }
        .into());
    }
    // One root per size: two signed roots for a size is a fork.
    let mut by_size: BTreeMap<u64, SignedCheckpoint> = BTreeMap::new();
    for cp in opened.into_iter().chain(std::iter::once(latest.clone())) {
        match by_size.get(&cp.checkpoint.size) {
            Some(seen) if seen.checkpoint.root != cp.checkpoint.root => {
                return Err(Fault::Fork {
                    size: cp.checkpoint.size,
                    first: seen.file.clone(),
                    second: cp.file,
                }
                .into());
            }
            Some(_) => {}
            None => {
                by_size.insert(cp.checkpoint.size, cp);
            }
        }
    }
    // Keep `checkpoint` as the representative of the latest size.
    by_size.insert(latest.checkpoint.size, latest.clone());
    Ok(Opened {
        checkpoints: by_size.into_values().collect(),
        latest,
        ignored,
    })
}

pub(super) fn check_consistent(
    tree: &Tree,
    old: &SignedCheckpoint,
    new: &SignedCheckpoint,
    matching: &SignedCheckpoint,
) -> Result<(), Fault> {
    let (o, n) = (&old.checkpoint, &new.checkpoint);
    let result = tree
        .consistency_proof(o.size, n.size)
        .and_then(|proof| rfc9162::verify_consistency(o.size, n.size, &o.root, &n.root, &proof));
    result.map_err(|e| {
        let (bad, good) = if std::ptr::eq(matching, new) {
            (old, new)
        } else {
            (new, old)
        };
        Fault::Inconsistent {
            size: bad.checkpoint.size,
            file: bad.file.clone(),
            other: good.checkpoint.size,
            other_file: good.file.clone(),
            reason: e.to_string(),
        }
    })
}
