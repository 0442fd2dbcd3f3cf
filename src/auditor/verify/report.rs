//! The verdict and its report: the [`Fault`] named on failure (with the
//! [`Change`] that happened to an entry), the [`VerifyFailure`] the CLI
//! maps to an exit code, and the [`VerifyReport`] printed on success.
//!
//! This module owns the wording an auditor reads. It never checks
//! anything itself: the other steps build these values.

use super::source::SourceError;
use super::source::LATEST;
use crate::audit::checkpoint::Checkpoint;
use crate::audit::rfc9162::Hash;
use std::fmt;
use std::ops::Range;

/// Exit code of a verified export.
pub const EXIT_VERIFIED: u8 = 0;
/// Exit code when verification failed: tampering, damage or the wrong key.
pub const EXIT_FAILED: u8 = 1;
/// Exit code when verification could not run: usage, unreadable input.
pub const EXIT_CANNOT_RUN: u8 = 2;

/// What happened to the first entry at fault, judged from the signed leaf
/// hashes around it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Change {
    /// Its bytes differ from the signed entry's.
    Changed,
    /// The signed entry is gone: the entry found in its place is the next
    /// signed one.
    Deleted,
    /// An entry that was never signed sits here; the signed one follows.
    Inserted,
    /// It changed places with the next entry.
    Swapped,
    /// The export ends before it.
    Missing,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Change::Changed => "was changed (its hash is not the signed one)",
            Change::Deleted => "was deleted (the next signed entry stands in its place)",
            Change::Inserted => "was inserted (it was never signed; the signed entry follows it)",
            Change::Swapped => "was swapped with the next entry",
            Change::Missing => "is missing (the export ends before it)",
        })
    }
}

/// What is wrong with an export. Every variant names the entry (index) or
/// the file and checkpoint size at fault.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Fault {
    /// The export has no `checkpoint` file.
    #[error("the file {file} is missing: the export has no latest checkpoint")]
    MissingCheckpointFile {
        /// The file.
        file: String,
    },
    /// A checkpoint file is not a well-formed signed checkpoint.
    #[error("{file} is not a well-formed signed checkpoint: {reason}")]
    MalformedCheckpoint {
        /// The file.
        file: String,
        /// What is wrong.
        reason: String,
    },
    /// A checkpoint is not signed by the key: it was not issued by this
    /// gateway (forged, or signed with another key).
    #[error("{file} (checkpoint of size {}) is not signed by the key {key}; signed by: {}", fmt_size(*.size), .signed_by.join(", "))]
    CheckpointNotSigned {
        /// The file.
        file: String,
        /// The size it claims, unverified.
        size: Option<u64>,
        /// The key expected.
        key: String,
        /// The keys on its signature lines (name+keyid), unverified.
        signed_by: Vec<String>,
    },
    /// The key's signature on a checkpoint does not verify: the checkpoint
    /// was altered after it was signed.
    #[error("{file} (checkpoint of size {}): the signature by {key} does not verify, the checkpoint was altered after signing", fmt_size(*.size))]
    CheckpointBadSignature {
        /// The file.
        file: String,
        /// The size it claims, unverified.
        size: Option<u64>,
        /// The key.
        key: String,
    },
    /// A checkpoint signed by the key names another log.
    #[error("{file} is a checkpoint of the log {found:?}, not {expected:?}")]
    CheckpointWrongOrigin {
        /// The file.
        file: String,
        /// The origin expected: the key's name.
        expected: String,
        /// The origin found.
        found: String,
    },
    /// No checkpoint in the export is signed by the key: the wrong key, or
    /// an export of another log.
    #[error("no checkpoint in the export is signed by the key {key}: wrong key, or another log's export (its checkpoints are signed by: {})", .signed_by.join(", "))]
    UnknownKey {
        /// The key given.
        key: String,
        /// The keys found on the checkpoints (name+keyid), unverified.
        signed_by: Vec<String>,
    },
    /// A file of `checkpoints/` is named for another size than it holds.
    #[error("{file} holds the checkpoint of size {size}, not of size {named}")]
    CheckpointMisnamed {
        /// The file.
        file: String,
        /// The size its name says.
        named: u64,
        /// The size it holds.
        size: u64,
    },
    /// `checkpoint` is not the latest signed checkpoint of the export.
    #[error("{LATEST} (size {size}) is not the latest checkpoint: {file} has size {larger}, so entries {size}..{larger} are missing from the export")]
    LatestNotLargest {
        /// Its size.
        size: u64,
        /// The larger signed checkpoint.
        file: String,
        /// Its size.
        larger: u64,
    },
    /// Two signed checkpoints of one size have different roots: the gateway
    /// signed two different logs.
    #[error("{first} and {second} are both signed checkpoints of size {size} but have different roots: the log forked")]
    Fork {
        /// Their size.
        size: u64,
        /// One file.
        first: String,
        /// The other.
        second: String,
    },
    /// A signed checkpoint is not consistent with another signed checkpoint
    /// that matches the entries: its tree is not a prefix of (or does not
    /// extend) the log.
    #[error("checkpoint of size {size} ({file}) is not consistent with the checkpoint of size {other} ({other_file}), which matches the entries: {reason}")]
    Inconsistent {
        /// The checkpoint at fault.
        size: u64,
        /// Its file.
        file: String,
        /// The checkpoint it was checked against.
        other: u64,
        /// Its file.
        other_file: String,
        /// What the consistency check said.
        reason: String,
    },
    /// The first entry at fault, pinpointed with the signed hash tiles.
    #[error("entry {index} {change}; the checkpoint of size {checkpoint} ({file}) no longer matches the entries")]
    Entry {
        /// Its index.
        index: u64,
        /// What happened to it.
        change: Change,
        /// The first signed checkpoint that covers it.
        checkpoint: u64,
        /// Its file.
        file: String,
    },
    /// The entries no longer match a checkpoint and the hash tiles were
    /// rewritten too: the fault lies in `range`.
    #[error("the entries no longer match the checkpoint of size {size} ({file}), though they match every earlier one: an entry in {}..{} was changed, deleted, inserted or reordered; the hash tiles do not match that checkpoint either, so the entry cannot be named", .range.start, .range.end)]
    EntriesInRange {
        /// The first checkpoint that no longer matches.
        size: u64,
        /// Its file.
        file: String,
        /// The entries it covers and the earlier matching one does not.
        range: Range<u64>,
    },
    /// The latest checkpoint matches neither the entries nor the hash tiles,
    /// which agree with each other and with every earlier checkpoint.
    #[error("the latest checkpoint, of size {size} ({file}), matches neither the entries nor the hash tiles, which agree with each other and with every earlier checkpoint: either it is not consistent with the checkpoint of size {}, or an entry in {}..{} was rewritten together with its hash tiles", .range.start, .range.start, .range.end)]
    LatestMismatch {
        /// Its size.
        size: u64,
        /// Its file.
        file: String,
        /// The entries only it covers.
        range: Range<u64>,
    },
    /// Entries follow the latest checkpoint without being covered by one.
    #[error("entry {index} was appended without a checkpoint: the export holds {count} entries beyond the latest checkpoint, of size {size}")]
    Appended {
        /// The first entry beyond the latest checkpoint.
        index: u64,
        /// How many.
        count: u64,
        /// The latest checkpoint's size.
        size: u64,
    },
    /// An entry bundle is damaged at an entry.
    #[error("entry {index} cannot be read: {path} {what}")]
    BundleDamaged {
        /// The first entry that cannot be read.
        index: u64,
        /// The bundle.
        path: String,
        /// What is wrong.
        what: String,
    },
    /// An entry bundle is missing.
    #[error("entry {}: {path} is missing, entries {}..{} cannot be read", .range.start, .range.start, .range.end)]
    MissingBundle {
        /// The bundle.
        path: String,
        /// The entries it holds.
        range: Range<u64>,
    },
    /// An entry bundle holds another number of entries than its name says.
    #[error("{path} holds {found} entries, its name says {expected} (entries {}..{})", .range.start, .range.end)]
    BundleCount {
        /// The bundle.
        path: String,
        /// The entries it should hold.
        range: Range<u64>,
        /// The entries its name says.
        expected: u64,
        /// The entries found.
        found: u64,
    },
    /// A bundle holds entries past the end of the log and is not the next.
    #[error("{path} holds entries {}..{}, beyond the end of the log's bundles", .range.start, .range.end)]
    StrayBundle {
        /// The bundle.
        path: String,
        /// The entries it claims to hold.
        range: Range<u64>,
    },
    /// An entry the signed tree includes does not decode as an audit entry.
    #[error("entry {index} is signed but is not an audit entry: {reason}")]
    Undecodable {
        /// Its index.
        index: u64,
        /// The decoder's complaint.
        reason: String,
    },
    /// A hash tile is missing.
    #[error("{path} is missing (hashes over entries {}..{})", .range.start, .range.end)]
    MissingTile {
        /// The tile.
        path: String,
        /// The entries its hashes cover.
        range: Range<u64>,
    },
    /// A hash tile is malformed or does not hold the hashes of the entries.
    #[error("{path} does not hold the hashes of entries {}..{}: {what}", .range.start, .range.end)]
    BadTile {
        /// The tile.
        path: String,
        /// The entries its hashes cover.
        range: Range<u64>,
        /// What is wrong.
        what: String,
    },
}

pub(super) fn fmt_size(size: Option<u64>) -> String {
    size.map_or_else(|| "unknown".to_string(), |s| s.to_string())
}

impl Fault {
    /// The first entry at fault, when the fault is an entry's.
    pub fn entry_index(&self) -> Option<u64> {
        match self {
            Fault::Entry { index, .. }
            | Fault::Appended { index, .. }
            | Fault::BundleDamaged { index, .. }
            | Fault::Undecodable { index, .. } => Some(*index),
            Fault::MissingBundle { range, .. } => Some(range.start),
            _ => None,
        }
    }
}

/// Why verification did not succeed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyFailure {
    /// The export does not prove the log: tampering, damage, or the wrong
    /// key. Exit code [`EXIT_FAILED`].
    #[error("verification FAILED: {0}")]
    Failed(#[from] Fault),
    /// The export could not be read. Exit code [`EXIT_CANNOT_RUN`].
    #[error(transparent)]
    Unreadable(#[from] SourceError),
    /// The directory holds no export at all. Exit code [`EXIT_CANNOT_RUN`].
    #[error("{0} is not an audit export: it has no checkpoint, checkpoints/ or tile/")]
    NotAnExport(String),
}

impl VerifyFailure {
    /// The CLI's exit code for this failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            VerifyFailure::Failed(_) => EXIT_FAILED,
            VerifyFailure::Unreadable(_) | VerifyFailure::NotAnExport(_) => EXIT_CANNOT_RUN,
        }
    }

    /// The fault, when the export was read and found wanting.
    pub fn fault(&self) -> Option<&Fault> {
        match self {
            VerifyFailure::Failed(f) => Some(f),
            _ => None,
        }
    }
}

/// A checkpoint of the export, opened with the key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedCheckpoint {
    /// The file it came from.
    pub file: String,
    /// The checkpoint.
    pub checkpoint: Checkpoint,
    /// The signed note, as read.
    pub note: String,
}

/// What a successful verification established.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyReport {
    /// The log's origin: the key's name.
    pub origin: String,
    /// The verifier key used.
    pub key: String,
    /// Entries verified: the latest checkpoint's size.
    pub size: u64,
    /// The latest root.
    pub root: Hash,
    /// The sizes of the signed checkpoints, each consistent with the
    /// previous one and matching the entries.
    pub checkpoints: Vec<u64>,
    /// Entry bundles read.
    pub bundles: usize,
    /// Hash tiles checked.
    pub hash_tiles: usize,
    /// Time of the first and last entries, seconds since the Unix epoch.
    pub span: Option<(i64, i64)>,
    /// Files of the export that are not part of the layout and were ignored.
    pub ignored: Vec<String>,
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "verified: the audit log {} holds {} entries",
            self.origin, self.size
        )?;
        writeln!(f, "  key          {}", self.key)?;
        writeln!(f, "  root         {}", hex::encode(self.root))?;
        let sizes: Vec<String> = self.checkpoints.iter().map(u64::to_string).collect();
        writeln!(
            f,
            "  checkpoints  {} signed, each consistent with the one before (sizes {})",
            self.checkpoints.len(),
            sizes.join(", ")
        )?;
        writeln!(
            f,
            "  files        {} entry bundles, {} hash tiles, all matching",
            self.bundles, self.hash_tiles
        )?;
        if let Some((first, last)) = self.span {
            writeln!(
                f,
                "  entries      from {} to {}",
                crate::auditor::time::rfc3339(first),
                crate::auditor::time::rfc3339(last)
            )?;
        }
        for path in &self.ignored {
            writeln!(f, "  ignored      {path} (not part of the export layout)")?;
        }
        Ok(())
    }
}
