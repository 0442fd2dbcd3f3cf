//! `passerelle audit verify`: checks an exported audit log with nothing but
//! the gateway's verifier key, and names the first thing at fault.
//!
//! This module owns the auditor's verdict on an export (layout in
//! [`crate::auditor`]): every checkpoint's signature, that `checkpoint` is
//! the latest, that the entry bundles hold exactly the entries the latest
//! checkpoint signed, that each checkpoint's root is the root of the first
//! `size` entries recomputed from the entries themselves, that each later
//! checkpoint is consistent with the earlier one (an RFC 9162 consistency
//! proof generated from the recomputed tree and checked against the two
//! signed roots), that the hash tiles are those of the entries, and that
//! every entry decodes as an [`AuditEntry`]. It reads files only through
//! [`ExportSource`], a thin layer, so the checks are pure logic over bytes.
//! It never writes, never repairs, never trusts a file because of its name,
//! and never believes an unsigned hash: hash tiles are used to pinpoint a
//! fault only once their root matches a signed checkpoint.
//!
//! # Naming the fault
//!
//! On failure the verdict is one [`Fault`], the first found in this order:
//! checkpoints (signature, origin, name, fork, `checkpoint` not the latest),
//! then entries (the first entry at fault, or the checkpoint at fault), then
//! entries that do not decode, then hash tiles. When the level-0 hash tiles
//! recompute the latest signed root, they are the signed leaf hashes, so the
//! first entry whose hash differs is named, with what happened to it
//! (changed, deleted, inserted, swapped). When the tiles were rewritten too,
//! the verdict names the first checkpoint that no longer matches and the
//! range of entries between it and the last one that still does.
//!
//! # Steps
//!
//! One module per step: [`source`] reads the export's files, [`keys`] turns
//! `--key` into a verifier key, [`checkpoints`] opens the signed checkpoints
//! and checks their chain, [`entries`] reads the tiles and entry bundles,
//! [`diagnose`] names the first entry or checkpoint at fault and checks the
//! hash tiles, and [`report`] holds the verdict and its report. This file
//! runs them in order.

use std::path::Path;

use crate::audit::rfc9162::Tree;
use crate::audit::signed_note::VerifierKey;

mod checkpoints;
mod diagnose;
mod entries;
mod keys;
mod report;
mod source;

use checkpoints::check_consistent;
pub(crate) use checkpoints::{open_checkpoints, open_one};
pub(crate) use diagnose::first_missing_level0;
use diagnose::{check_tiles, diagnose};
use entries::read_entries;
pub(crate) use entries::{read_claimed_leaves, split_bundle, Layout};
pub use keys::{load_key_arg, load_verifier_key, KeyArgError};
pub use report::{
    Change, Fault, SignedCheckpoint, VerifyFailure, VerifyReport, EXIT_CANNOT_RUN, EXIT_FAILED,
    EXIT_VERIFIED,
};
pub use source::{DirSource, ExportSource, SourceError, CHECKPOINTS, LATEST};

/// Verifies the export in the directory `dir` with `key`.
pub fn verify(dir: &Path, key: &VerifierKey) -> Result<VerifyReport, VerifyFailure> {
    let source = DirSource::open(dir)?;
    verify_source(&source, key).map_err(|e| match e {
        VerifyFailure::NotAnExport(_) => VerifyFailure::NotAnExport(dir.display().to_string()),
        other => other,
    })
}

/// Verifies the export read from `source` with `key`.
pub fn verify_source(
    source: &dyn ExportSource,
    key: &VerifierKey,
) -> Result<VerifyReport, VerifyFailure> {
    let opened = open_checkpoints(source, key)?;
    let latest = opened.latest();
    let size = latest.checkpoint.size;
    let layout = Layout::list(source)?;
    let read = read_entries(source, &layout, size)?;
    let tree = Tree::from_leaf_hashes(read.leaves.iter().copied());

    // Entries against the signed checkpoints; damage found while reading is
    // preferred when it is at or before the entry the hashes point to.
    let diagnosis = diagnose(&tree, read.claimed.as_deref(), &opened.checkpoints);
    if let Some(damage) = read.damage.iter().find(|d| d.pinpoints) {
        let diag_index = diagnosis.as_ref().map(fault_position);
        if diag_index.map_or(true, |i| damage.index <= i) {
            return Err(damage.fault.clone().into());
        }
    }
    if let Some(fault) = diagnosis {
        return Err(fault.into());
    }
    if let Some(damage) = read.damage.first() {
        return Err(damage.fault.clone().into());
    }
    if let Some((index, reason)) = read.undecodable {
        return Err(Fault::Undecodable { index, reason }.into());
    }
    // The consistency of each checkpoint with the previous one, proved from
    // the recomputed tree and checked against the two signed roots.
    for pair in opened.checkpoints.windows(2) {
        let (old, new) = (&pair[0], &pair[1]);
        check_consistent(&tree, old, new, new)?;
    }
    let hash_tiles = check_tiles(source, &layout, &tree, size, read.claimed.as_deref())?;
    Ok(VerifyReport {
        origin: key.name().to_string(),
        key: key.to_string(),
        size,
        root: latest.checkpoint.root,
        checkpoints: opened
            .checkpoints
            .iter()
            .map(|c| c.checkpoint.size)
            .collect(),
        bundles: read.bundles,
        hash_tiles,
        span: read.span,
        ignored: opened.ignored.into_iter().chain(layout.ignored).collect(),
    })
}

/// Where in the log a fault from [`diagnose`] lies, to compare with damage.
fn fault_position(f: &Fault) -> u64 {
    match f {
        Fault::Entry { index, .. } | Fault::Appended { index, .. } => *index,
        Fault::EntriesInRange { range, .. } | Fault::LatestMismatch { range, .. } => range.start,
        _ => u64::MAX,
    }
}

#[cfg(test)]
mod tests;
