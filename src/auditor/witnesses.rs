//! `passerelle audit verify --witness KEY [--quorum N]`: the witnesses'
//! cosignatures on a verified export's latest checkpoint.
//!
//! This module owns the quorum check an auditor asks for: after
//! [`super::verify`] has accepted the export with the gateway's key, the
//! latest checkpoint (the `checkpoint` file, whose size is the whole log
//! verified) must carry valid `cosignature/v1` cosignatures from at least
//! N of the witnesses given. The latest is the one that matters: a witness
//! cosigns a checkpoint only if it is consistent with every one it cosigned
//! before, so its cosignature on the latest vouches for the history up to
//! it, and an operator who rolled back or forked the log cannot get it.
//! Older checkpoints' cosignatures are not required (a log may have been
//! witnessed only from some size on). It never verifies the export itself
//! and never reads anything but the `checkpoint` file.

use super::verify::{DirSource, ExportSource, SourceError, LATEST};
use crate::audit::cosignature::{self, CosignatureError, CosignatureVerifier};
use crate::audit::signed_note::VerifierKey;
use std::fmt;
use std::path::Path;

/// Why the witnesses' check failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WitnessFailure {
    /// The export could not be read (exit 2).
    #[error(transparent)]
    Unreadable(#[from] SourceError),
    /// A cosignature by a given witness is malformed or does not verify
    /// over the checkpoint: altered or forged (exit 1).
    #[error("the latest checkpoint ({LATEST}): {0}")]
    Bad(CosignatureError),
    /// Fewer witnesses than the quorum cosigned (exit 1).
    #[error("{0}")]
    Quorum(WitnessReport),
}

impl WitnessFailure {
    /// The exit code, as [`super::verify`]'s.
    pub fn exit_code(&self) -> u8 {
        match self {
            WitnessFailure::Unreadable(_) => super::verify::EXIT_CANNOT_RUN,
            _ => super::verify::EXIT_FAILED,
        }
    }
}

/// Which witnesses cosigned the latest checkpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WitnessReport {
    /// The latest checkpoint's size.
    pub size: u64,
    /// The quorum asked for.
    pub quorum: usize,
    /// The witnesses that cosigned (`name+keyid`) and when.
    pub cosigned: Vec<(String, u64)>,
    /// The witnesses that did not.
    pub missing: Vec<String>,
}

impl WitnessReport {
    /// Whether the quorum is met.
    pub fn met(&self) -> bool {
        self.cosigned.len() >= self.quorum
    }
}

impl fmt::Display for WitnessReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total = self.cosigned.len() + self.missing.len();
        if self.met() {
            write!(
                f,
                "{} of {total} witnesses cosigned the latest checkpoint (size {}), quorum {}",
                self.cosigned.len(),
                self.size,
                self.quorum
            )?;
        } else {
            write!(
                f,
                "the latest checkpoint (size {}) is cosigned by {} of {total} witnesses, fewer than the quorum of {}: the log may have been rolled back or forked, or the witnesses were not asked",
                self.size,
                self.cosigned.len(),
                self.quorum
            )?;
        }
        for (label, time) in &self.cosigned {
            write!(f, "\n  cosigned     {label} at {}", rfc3339(*time))?;
        }
        for label in &self.missing {
            write!(f, "\n  not cosigned {label}")?;
        }
        Ok(())
    }
}

fn rfc3339(secs: u64) -> String {
    i64::try_from(secs)
        .map(super::time::rfc3339)
        .unwrap_or_else(|_| secs.to_string())
}

/// Checks that the latest checkpoint of the export in `dir` (already
/// verified with `key`) carries at least `quorum` valid cosignatures of
/// `witnesses`.
pub fn check(
    dir: &Path,
    key: &VerifierKey,
    witnesses: &[CosignatureVerifier],
    quorum: usize,
) -> Result<WitnessReport, WitnessFailure> {
    let source = DirSource::open(dir)?;
    let note = source.read(LATEST)?.unwrap_or_default();
    let opened = cosignature::open_cosigned(&note, key.name(), key, witnesses)
        .map_err(WitnessFailure::Bad)?;
    let cosigned: Vec<(String, u64)> = opened
        .cosignatures
        .iter()
        .map(|c| (c.witness.label(), c.timestamp))
        .collect();
    let missing = opened.missing(witnesses);
    let report = WitnessReport {
        size: opened.checkpoint.size,
        quorum,
        cosigned,
        missing,
    };
    if report.met() {
        Ok(report)
    } else {
        Err(WitnessFailure::Quorum(report))
    }
}
