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

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::audit::checkpoint::{Checkpoint, CheckpointError};
use crate::audit::event::AuditEntry;
use crate::audit::rfc9162::{self, leaf_hash, Hash, Tree, HASH_LEN};
use crate::audit::signed_note::{self, NoteError, VerifierKey};
use crate::audit::tiles::{self, TileLevel, TilePath, TILE_WIDTH};

/// Exit code of a verified export.
pub const EXIT_VERIFIED: u8 = 0;
/// Exit code when verification failed: tampering, damage or the wrong key.
pub const EXIT_FAILED: u8 = 1;
/// Exit code when verification could not run: usage, unreadable input.
pub const EXIT_CANNOT_RUN: u8 = 2;

/// The file of the latest checkpoint in an export.
pub const LATEST: &str = "checkpoint";
/// The folder of every signed checkpoint in an export.
pub const CHECKPOINTS: &str = "checkpoints";

/// A file of the export could not be read: the environment's fault
/// (permissions, I/O), not evidence of tampering.
#[derive(Debug, thiserror::Error)]
#[error("cannot read {path}: {source}")]
pub struct SourceError {
    /// The file or folder, relative to the export.
    pub path: String,
    /// The cause.
    #[source]
    pub source: std::io::Error,
}

/// Where an export's files come from. Paths are relative to the export and
/// use `/`, as in the tlog-tiles layout.
pub trait ExportSource: Sync {
    /// The bytes of the file at `path`, or `None` if there is no such file.
    fn read(&self, path: &str) -> Result<Option<Vec<u8>>, SourceError>;
    /// Every file under the folder `folder`, recursively, as paths relative
    /// to the export; empty if the folder does not exist.
    fn list(&self, folder: &str) -> Result<Vec<String>, SourceError>;
}

/// An export in a directory.
#[derive(Clone, Debug)]
pub struct DirSource {
    root: PathBuf,
}

impl DirSource {
    /// The export in `root`, which must be a readable directory.
    pub fn open(root: &Path) -> Result<Self, SourceError> {
        let err = |source| SourceError {
            path: root.display().to_string(),
            source,
        };
        let meta = std::fs::metadata(root).map_err(err)?;
        if !meta.is_dir() {
            return Err(err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "not a directory",
            )));
        }
        Ok(Self {
            root: root.to_path_buf(),
        })
    }

    fn walk(&self, rel: &str, out: &mut Vec<String>) -> Result<(), SourceError> {
        let dir = self.root.join(rel);
        let err = |source| SourceError {
            path: rel.to_string(),
            source,
        };
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(err(e)),
        };
        for entry in entries {
            let entry = entry.map_err(err)?;
            // A name that is not UTF-8 is no tile path: skip it.
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            let path = format!("{rel}/{name}");
            if entry.file_type().map_err(err)?.is_dir() {
                self.walk(&path, out)?;
            } else {
                out.push(path);
            }
        }
        Ok(())
    }
}

impl ExportSource for DirSource {
    fn read(&self, path: &str) -> Result<Option<Vec<u8>>, SourceError> {
        match std::fs::read(self.root.join(path)) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(SourceError {
                path: path.to_string(),
                source,
            }),
        }
    }

    fn list(&self, folder: &str) -> Result<Vec<String>, SourceError> {
        let mut out = Vec::new();
        self.walk(folder, &mut out)?;
        out.sort();
        Ok(out)
    }
}

/// Why the `--key` argument gave no verifier key: the caller's fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyArgError {
    /// It is not a key string and no readable file has that name.
    #[error("cannot read the key file {path}: {source}")]
    Read {
        /// The path given.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The string (given, or read from the file) is not a verifier key.
    #[error("{what} is not a signed-note verifier key (name+keyid+base64, as in gateway/audit.vkey): {source}")]
    Invalid {
        /// The argument, or the file it came from.
        what: String,
        /// What is wrong.
        source: NoteError,
    },
}

/// Reads a verifier key given as the key string itself
/// (`name+keyid+base64`) or as the path of a file holding it.
pub fn load_verifier_key(arg: &str) -> Result<VerifierKey, KeyArgError> {
    load_key_arg(arg)
}

/// Reads a key of type `K` given as its string or as the path of a file
/// holding it: the gateway's key (`--key`) and witnesses' keys
/// (`--witness`).
pub fn load_key_arg<K: std::str::FromStr<Err = NoteError>>(arg: &str) -> Result<K, KeyArgError> {
    let direct = arg.trim().parse::<K>();
    let direct = match direct {
        Ok(key) => return Ok(key),
        Err(e) => e,
    };
    let path = Path::new(arg);
    match std::fs::read_to_string(path) {
        Ok(text) => text.trim().parse().map_err(|source| KeyArgError::Invalid {
            what: format!("the content of {}", path.display()),
            source,
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && arg.contains('+') => {
            Err(KeyArgError::Invalid {
                what: format!("{arg:?}"),
                source: direct,
            })
        }
        Err(source) => Err(KeyArgError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

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

fn fmt_size(size: Option<u64>) -> String {
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
                super::time::rfc3339(first),
                super::time::rfc3339(last)
            )?;
        }
        for path in &self.ignored {
            writeln!(f, "  ignored      {path} (not part of the export layout)")?;
        }
        Ok(())
    }
}

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

fn check_consistent(
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

// ---------------------------------------------------------------------------
// Checkpoints

/// The signed checkpoints of an export, one per size, by increasing size.
pub(crate) struct Opened {
    pub(crate) checkpoints: Vec<SignedCheckpoint>,
    /// The `checkpoint` file's, also the last of `checkpoints`.
    latest: SignedCheckpoint,
    ignored: Vec<String>,
}

impl Opened {
    pub(crate) fn latest(&self) -> &SignedCheckpoint {
        &self.latest
    }
}

/// A decimal number without sign or leading zero.
fn parse_decimal(s: &str) -> Option<u64> {
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

// ---------------------------------------------------------------------------
// Files of the layout

/// The tile and bundle files present in an export.
pub(crate) struct Layout {
    /// Widths present for each (level, index).
    present: BTreeMap<(TileLevel, u64), BTreeSet<u16>>,
    ignored: Vec<String>,
}

impl Layout {
    pub(crate) fn list(source: &dyn ExportSource) -> Result<Self, SourceError> {
        let mut present: BTreeMap<(TileLevel, u64), BTreeSet<u16>> = BTreeMap::new();
        let mut ignored = Vec::new();
        for path in source.list("tile")? {
            match path.parse::<TilePath>() {
                Ok(p) => {
                    present
                        .entry((p.level, p.index))
                        .or_default()
                        .insert(p.width);
                }
                Err(_) => ignored.push(path),
            }
        }
        Ok(Self { present, ignored })
    }

    fn widths(&self, level: TileLevel, index: u64) -> Option<&BTreeSet<u16>> {
        self.present.get(&(level, index)).filter(|w| !w.is_empty())
    }

    /// The widest entry bundle present at `index`: the full one if there.
    pub(crate) fn widest_bundle(&self, index: u64) -> Option<TilePath> {
        let width = *self.widths(TileLevel::Entries, index)?.last()?;
        Some(TilePath {
            level: TileLevel::Entries,
            index,
            width,
        })
    }

    /// The file to read for `want`: itself, else a wider tile of the same
    /// index (a tile of width W' > W starts with the W hashes or entries).
    pub(crate) fn file_for(&self, want: &TilePath) -> Option<TilePath> {
        let widths = self.widths(want.level, want.index)?;
        let width = widths.range(want.width..).next().copied()?;
        Some(TilePath { width, ..*want })
    }
}

/// A fault found while reading bundles, at an entry index.
struct Damage {
    index: u64,
    fault: Fault,
    /// Whether the damage itself is the best account of the fault at
    /// `index` (a truncated or missing bundle), rather than a symptom the
    /// hashes explain better (an entry deleted from a bundle).
    pinpoints: bool,
}

/// What reading the entries gave.
struct EntriesRead {
    /// Leaf hashes of the entries found, in order.
    leaves: Vec<Hash>,
    /// The level-0 tile hashes for the latest size, if every tile is there.
    claimed: Option<Vec<Hash>>,
    damage: Vec<Damage>,
    undecodable: Option<(u64, String)>,
    bundles: usize,
    span: Option<(i64, i64)>,
}

/// Splits an entry bundle as far as it goes: the entries, and what is wrong
/// after the last one if the bundle ends inside an entry. (Unlike
/// [`tiles::parse_entry_bundle`], which refuses the whole bundle, this keeps
/// the entries before the damage so that the first entry at fault is named.)
pub(crate) fn split_bundle(data: &[u8]) -> (Vec<&[u8]>, Option<&'static str>) {
    let mut entries = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let Some((len, after)) = rest.split_first_chunk::<2>() else {
            return (entries, Some("ends inside the entry's length prefix"));
        };
        let len = usize::from(u16::from_be_bytes(*len));
        if after.len() < len {
            return (entries, Some("ends inside the entry (truncated)"));
        }
        let (entry, after) = after.split_at(len);
        entries.push(entry);
        rest = after;
    }
    (entries, None)
}

struct BundleRead {
    leaves: Vec<Hash>,
    damage: Option<Damage>,
    undecodable: Option<(u64, String)>,
    span: Option<(i64, i64)>,
}

fn read_bundle(source: &dyn ExportSource, path: &TilePath) -> Result<BundleRead, SourceError> {
    let name = path.to_string();
    let start = path.entry_range().start;
    let Some(data) = source.read(&name)? else {
        return Ok(BundleRead {
            leaves: Vec::new(),
            damage: Some(Damage {
                index: start,
                fault: Fault::MissingBundle {
                    path: name,
                    range: path.entry_range(),
                },
                pinpoints: true,
            }),
            undecodable: None,
            span: None,
        });
    };
    let (entries, broken) = split_bundle(&data);
    let mut leaves = Vec::with_capacity(entries.len());
    let mut undecodable = None;
    let mut span: Option<(i64, i64)> = None;
    for (i, entry) in entries.iter().enumerate() {
        leaves.push(leaf_hash(entry));
        match AuditEntry::decode(entry) {
            Ok(e) => {
                span = Some(span.map_or((e.time, e.time), |(a, b)| (a.min(e.time), b.max(e.time))));
            }
            Err(e) if undecodable.is_none() => undecodable = Some((start + i as u64, e.0)),
            Err(_) => {}
        }
    }
    let found = entries.len() as u64;
    let damage = if let Some(what) = broken {
        Some(Damage {
            index: start + found,
            fault: Fault::BundleDamaged {
                index: start + found,
                path: name,
                what: what.to_string(),
            },
            pinpoints: true,
        })
    } else if found != u64::from(path.width) {
        Some(Damage {
            index: start + found.min(u64::from(path.width)),
            fault: Fault::BundleCount {
                path: name,
                range: path.entry_range(),
                expected: u64::from(path.width),
                found,
            },
            pinpoints: false,
        })
    } else {
        None
    };
    Ok(BundleRead {
        leaves,
        damage,
        undecodable,
        span,
    })
}

/// Runs `f` over `items` on one thread per core, keeping the order. Work is
/// handed out in small batches from a shared counter rather than split in
/// halves up front, so that a thread slowed by other processes on the
/// machine does not hold the others up.
fn par_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    const BATCH: usize = 8;
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 8);
    if threads == 1 || items.len() < 2 * BATCH {
        return items.iter().map(f).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let (f, next) = (&f, &next);
    let mut parts: Vec<(usize, Vec<R>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(move || {
                    let mut done = Vec::new();
                    loop {
                        let start = next.fetch_add(BATCH, std::sync::atomic::Ordering::Relaxed);
                        let Some(batch) = items.get(start..(start + BATCH).min(items.len())) else {
                            break;
                        };
                        if batch.is_empty() {
                            break;
                        }
                        done.push((start, batch.iter().map(f).collect::<Vec<R>>()));
                    }
                    done
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| match h.join() {
                Ok(v) => v,
                Err(panic) => std::panic::resume_unwind(panic),
            })
            .collect()
    });
    parts.sort_by_key(|(start, _)| *start);
    parts.into_iter().flat_map(|(_, r)| r).collect()
}

/// The bundles to read: from index 0, each full bundle present, then the
/// widest partial one; a gap ends the log (and is damage if the latest
/// checkpoint's size reaches past it). Also returns bundles found past the
/// end.
fn plan_bundles(layout: &Layout, size: u64) -> (Vec<TilePath>, Vec<Damage>) {
    let mut plan = Vec::new();
    let mut damage = Vec::new();
    let mut index = 0u64;
    while let Some(path) = layout.widest_bundle(index) {
        plan.push(path);
        if !path.is_full() {
            break;
        }
        index += 1;
    }
    let end = plan.last().map_or(0, |p| p.entry_range().end);
    if end < size {
        // The next bundle the latest checkpoint needs is not there.
        // Named as the latest checkpoint's layout names it (an earlier
        // checkpoint's partial bundle may have been read up to `end`).
        let index = end / TILE_WIDTH;
        let first = index * TILE_WIDTH;
        let next = TilePath {
            level: TileLevel::Entries,
            index,
            width: (size.min(first + TILE_WIDTH) - first) as u16,
        };
        damage.push(Damage {
            index: end,
            fault: Fault::MissingBundle {
                path: next.to_string(),
                range: end..(end + TILE_WIDTH).min(size),
            },
            pinpoints: true,
        });
    }
    for ((level, index), widths) in &layout.present {
        if *level != TileLevel::Entries || plan.iter().any(|p| p.index == *index) {
            continue;
        }
        for width in widths {
            let stray = TilePath {
                level: TileLevel::Entries,
                index: *index,
                width: *width,
            };
            let range = stray.entry_range();
            let fault = if range.start >= size {
                Fault::Appended {
                    index: range.start,
                    count: u64::from(*width),
                    size,
                }
            } else {
                Fault::StrayBundle {
                    path: stray.to_string(),
                    range: range.clone(),
                }
            };
            damage.push(Damage {
                index: range.start,
                fault,
                pinpoints: false,
            });
        }
    }
    (plan, damage)
}

/// Reads the level-0 hash tiles of the tree of `size`: the leaf hashes the
/// exporter claims. `Ok(None)` if a tile is missing or malformed.
pub(crate) fn read_claimed_leaves(
    source: &dyn ExportSource,
    layout: &Layout,
    size: u64,
) -> Result<Option<Vec<Hash>>, SourceError> {
    let paths: Vec<TilePath> = tiles::hash_tile_paths(size)
        .filter(|p| p.level == TileLevel::Hashes(0))
        .collect();
    let parts = par_map(&paths, |want| -> Result<Option<Vec<Hash>>, SourceError> {
        let Some(file) = layout.file_for(want) else {
            return Ok(None);
        };
        let Some(data) = source.read(&file.to_string())? else {
            return Ok(None);
        };
        let Ok(mut hashes) = tiles::parse_hash_tile(&file, &data) else {
            return Ok(None);
        };
        hashes.truncate(usize::from(want.width));
        Ok(Some(hashes))
    });
    let mut leaves = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    for part in parts {
        match part? {
            Some(hashes) => leaves.extend(hashes),
            None => return Ok(None),
        }
    }
    Ok(Some(leaves))
}

fn read_entries(
    source: &dyn ExportSource,
    layout: &Layout,
    size: u64,
) -> Result<EntriesRead, SourceError> {
    let (plan, mut damage) = plan_bundles(layout, size);
    let bundles = par_map(&plan, |p| read_bundle(source, p));
    let mut leaves = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    let mut undecodable = None;
    let mut span: Option<(i64, i64)> = None;
    let mut bundle_damage = Vec::new();
    for b in bundles {
        let b = b?;
        leaves.extend(b.leaves);
        if undecodable.is_none() {
            undecodable = b.undecodable;
        }
        if let Some((a, z)) = b.span {
            span = Some(span.map_or((a, z), |(x, y)| (x.min(a), y.max(z))));
        }
        bundle_damage.extend(b.damage);
    }
    // An entry beyond the signed size is judged by the checkpoints, not
    // here: only the signed entries must decode.
    if undecodable.as_ref().is_some_and(|(i, _)| *i >= size) {
        undecodable = None;
    }
    bundle_damage.append(&mut damage);
    bundle_damage.sort_by_key(|d| d.index);
    let claimed = read_claimed_leaves(source, layout, size)?;
    Ok(EntriesRead {
        leaves,
        claimed,
        damage: bundle_damage,
        undecodable,
        bundles: plan.len(),
        span,
    })
}

// ---------------------------------------------------------------------------
// The diagnosis

/// Compares the tree recomputed from the entries with the signed
/// checkpoints (by increasing size) and, when they differ, names the first
/// entry or checkpoint at fault. `claimed` are the level-0 tile hashes for
/// the latest size, used only if they recompute the latest signed root.
fn diagnose(
    tree: &Tree,
    claimed: Option<&[Hash]>,
    checkpoints: &[SignedCheckpoint],
) -> Option<Fault> {
    let latest = checkpoints.last()?;
    let size = latest.checkpoint.size;
    let found = tree.size();
    let matches = |c: &SignedCheckpoint| {
        c.checkpoint.size <= found
            && tree.root_at(c.checkpoint.size).ok() == Some(c.checkpoint.root)
    };
    let Some(first_bad) = checkpoints.iter().position(|c| !matches(c)) else {
        return (found > size).then(|| Fault::Appended {
            index: size,
            count: found - size,
            size,
        });
    };
    if matches(latest) {
        // The latest signed checkpoint vouches for the entries, so the
        // earlier one that does not match them is at fault.
        let bad = &checkpoints[first_bad];
        return Some(
            check_consistent(tree, bad, latest, latest)
                .err()
                .unwrap_or_else(|| Fault::Inconsistent {
                    size: bad.checkpoint.size,
                    file: bad.file.clone(),
                    other: size,
                    other_file: latest.file.clone(),
                    reason: "its root is not the root of the first entries".into(),
                }),
        );
    }
    let good = first_bad
        .checked_sub(1)
        .map_or(0, |i| checkpoints[i].checkpoint.size);
    let bad = &checkpoints[first_bad];
    if let Some(claimed) = claimed.filter(|c| c.len() as u64 == size) {
        let signed = Tree::from_leaf_hashes(claimed.iter().copied());
        if signed.root() == latest.checkpoint.root {
            // The tiles are the signed leaf hashes: name the first entry.
            return Some(first_entry_at_fault(
                tree.leaf_hashes(),
                claimed,
                checkpoints,
            ));
        }
        if first_bad + 1 == checkpoints.len() && tree.root_at(size).ok() == Some(signed.root()) {
            return Some(Fault::LatestMismatch {
                size,
                file: latest.file.clone(),
                range: good..size,
            });
        }
    }
    Some(Fault::EntriesInRange {
        size: bad.checkpoint.size,
        file: bad.file.clone(),
        range: good..bad.checkpoint.size,
    })
}

/// The first index where the entries found differ from the signed leaf
/// hashes, and what most likely happened there.
fn first_entry_at_fault(
    found: &[Hash],
    signed: &[Hash],
    checkpoints: &[SignedCheckpoint],
) -> Fault {
    let index = found
        .iter()
        .zip(signed)
        .position(|(a, b)| a != b)
        .unwrap_or(found.len().min(signed.len()));
    let at = |v: &[Hash], i: usize| v.get(i).copied();
    let change = if index >= found.len() {
        Change::Missing
    } else if at(found, index) == at(signed, index + 1)
        && at(found, index + 1) == at(signed, index)
        && index + 1 < signed.len()
    {
        Change::Swapped
    } else if index + 1 < signed.len() && at(found, index) == at(signed, index + 1) {
        Change::Deleted
    } else if index + 1 < found.len() && at(found, index + 1) == at(signed, index) {
        Change::Inserted
    } else {
        Change::Changed
    };
    let index = index as u64;
    let covering = checkpoints
        .iter()
        .find(|c| c.checkpoint.size > index)
        .or(checkpoints.last());
    Fault::Entry {
        index,
        change,
        checkpoint: covering.map_or(0, |c| c.checkpoint.size),
        file: covering.map_or_else(String::new, |c| c.file.clone()),
    }
}

/// Checks every hash tile of the tree of `size` against the tree recomputed
/// from the entries; returns how many were checked.
fn check_tiles(
    source: &dyn ExportSource,
    layout: &Layout,
    tree: &Tree,
    size: u64,
    claimed: Option<&[Hash]>,
) -> Result<usize, VerifyFailure> {
    let paths: Vec<TilePath> = tiles::hash_tile_paths(size).collect();
    let leaves = tree.leaf_hashes();
    for path in &paths {
        let range = path.entry_range();
        let missing = || Fault::MissingTile {
            path: path.to_string(),
            range: range.start..range.end.min(size),
        };
        if path.level == TileLevel::Hashes(0) {
            // Level 0 was read once already, as the claimed leaf hashes.
            let Some(claimed) = claimed else {
                return Err(first_missing_level0(source, layout, size)?.into());
            };
            let (a, b) = (range.start as usize, range.end.min(size) as usize);
            if let Some(i) = (a..b).find(|&i| claimed.get(i) != leaves.get(i)) {
                return Err(Fault::BadTile {
                    path: path.to_string(),
                    range: range.start..range.end.min(size),
                    what: format!("its hash of entry {i} is not that entry's"),
                }
                .into());
            }
            continue;
        }
        let Some(file) = layout.file_for(path) else {
            return Err(missing().into());
        };
        let Some(data) = source.read(&file.to_string())? else {
            return Err(missing().into());
        };
        let expected = tiles::hash_tile(tree, path).map_err(|e| Fault::BadTile {
            path: path.to_string(),
            range: range.clone(),
            what: e.to_string(),
        })?;
        let n = expected.len();
        if data.len() != usize::from(file.width) * HASH_LEN || data.get(..n) != Some(&expected[..])
        {
            return Err(Fault::BadTile {
                path: file.to_string(),
                range,
                what: "its hashes are not those of the entries".into(),
            }
            .into());
        }
    }
    Ok(paths.len())
}

/// Names the first level-0 tile that is missing or malformed.
pub(crate) fn first_missing_level0(
    source: &dyn ExportSource,
    layout: &Layout,
    size: u64,
) -> Result<Fault, SourceError> {
    for path in tiles::hash_tile_paths(size) {
        if path.level != TileLevel::Hashes(0) {
            continue;
        }
        let range = path.entry_range();
        let Some(file) = layout.file_for(&path) else {
            return Ok(Fault::MissingTile {
                path: path.to_string(),
                range,
            });
        };
        let data = source.read(&file.to_string())?;
        match data.map(|d| tiles::parse_hash_tile(&file, &d)) {
            None => {
                return Ok(Fault::MissingTile {
                    path: path.to_string(),
                    range,
                })
            }
            Some(Err(e)) => {
                return Ok(Fault::BadTile {
                    path: file.to_string(),
                    range,
                    what: e.to_string(),
                })
            }
            Some(Ok(_)) => {}
        }
    }
    Ok(Fault::MissingTile {
        path: "tile/0".into(),
        range: 0..size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(i: u8) -> Hash {
        [i; HASH_LEN]
    }

    fn checkpoints(sizes: &[u64]) -> Vec<SignedCheckpoint> {
        sizes
            .iter()
            .map(|&size| SignedCheckpoint {
                file: format!("checkpoints/{size}"),
                checkpoint: Checkpoint::new("o", size, h(0)),
                note: String::new(),
            })
            .collect()
    }

    #[test]
    fn a_damaged_bundle_keeps_the_entries_before_the_damage() {
        let bundle = tiles::encode_entry_bundle([&b"ab"[..], b"cde", b"f"]).unwrap();
        let (all, broken) = split_bundle(&bundle);
        assert_eq!((all.len(), broken), (3, None));
        let (some, broken) = split_bundle(&bundle[..bundle.len() - 1]);
        assert_eq!(some, [&b"ab"[..], b"cde"]);
        assert!(broken.is_some());
        let (some, broken) = split_bundle(&bundle[..5]);
        assert_eq!(some, [&b"ab"[..]]);
        assert!(broken.is_some());
        assert_eq!(split_bundle(&[]), (Vec::<&[u8]>::new(), None));
    }

    #[test]
    fn what_happened_to_the_first_entry_at_fault_is_named() {
        let signed: Vec<Hash> = (0..6).map(h).collect();
        let cps = checkpoints(&[2, 6]);
        let case = |found: &[u8]| {
            let found: Vec<Hash> = found.iter().map(|&i| h(i)).collect();
            match first_entry_at_fault(&found, &signed, &cps) {
                Fault::Entry {
                    index,
                    change,
                    checkpoint,
                    ..
                } => (index, change, checkpoint),
                other => panic!("{other}"),
            }
        };
        assert_eq!(case(&[0, 1, 9, 3, 4, 5]), (2, Change::Changed, 6));
        assert_eq!(case(&[0, 1, 3, 4, 5]), (2, Change::Deleted, 6));
        assert_eq!(case(&[0, 1, 9, 2, 3, 4, 5]), (2, Change::Inserted, 6));
        assert_eq!(case(&[0, 1, 3, 2, 4, 5]), (2, Change::Swapped, 6));
        assert_eq!(case(&[1, 0, 2, 3, 4, 5]), (0, Change::Swapped, 2));
        assert_eq!(case(&[0, 1, 2]), (3, Change::Missing, 6));
    }

    #[test]
    fn decimal_names_only() {
        assert_eq!(parse_decimal("0"), Some(0));
        assert_eq!(parse_decimal("600"), Some(600));
        for bad in ["", "01", "-1", "+1", "1.5", "x"] {
            assert_eq!(parse_decimal(bad), None, "{bad}");
        }
    }
}
