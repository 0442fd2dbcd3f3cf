//! `passerelle audit report`: one self-contained HTML page of what an
//! export shows, for oversight bodies who read pictures rather than lines.
//!
//! This module owns the order of the work: verify the export with the
//! gateway's key ([`crate::auditor::verify`], through the listing of
//! [`crate::auditor::show`]) and, when witnesses are given, their quorum on
//! the latest checkpoint ([`crate::auditor::witnesses`]); only then count
//! ([`aggregate`]) and draw ([`render`]). It never renders an export that
//! did not verify, never writes files (the CLI does) and never reads the
//! clock, so the same export gives the same page.

use std::path::Path;

use super::show::{self, Filter, ShowError};
use super::verify::VerifyReport;
use super::witnesses::{self, WitnessFailure, WitnessReport};
use crate::audit::cosignature::CosignatureVerifier;
use crate::audit::signed_note::VerifierKey;

pub mod aggregate;
pub mod render;

pub use aggregate::{DenialReason, FlowCount, Summary};

/// A verified export, counted, ready to render.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// The export's verification.
    pub verified: VerifyReport,
    /// The witnesses' cosignatures on the latest checkpoint, when asked.
    pub witnessed: Option<WitnessReport>,
    /// The filter, in words (`none` when every entry counts).
    pub filter: String,
    /// The figures.
    pub summary: Summary,
}

/// Why no report was made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    /// The export does not verify, or could not be read.
    #[error(transparent)]
    Show(#[from] ShowError),
    /// The witnesses' quorum is not met, or a cosignature is bad.
    #[error("NOT WITNESSED: {0}")]
    Witness(#[from] WitnessFailure),
}

impl ReportError {
    /// The CLI's exit code, as for `audit verify`.
    pub fn exit_code(&self) -> u8 {
        match self {
            ReportError::Show(e) => e.exit_code(),
            ReportError::Witness(e) => e.exit_code(),
        }
    }
}

/// What the report asks of the witnesses: their keys and how many must
/// have cosigned the latest checkpoint. Empty: not asked.
#[derive(Clone, Debug, Default)]
pub struct Quorum {
    /// The witnesses' verifier keys.
    pub witnesses: Vec<CosignatureVerifier>,
    /// How many of them must have cosigned.
    pub quorum: usize,
}

/// Verifies the export in `dir` with `key` (and the witnesses' quorum,
/// when asked), then counts the entries that pass `filter`.
pub fn build(
    dir: &Path,
    key: &VerifierKey,
    quorum: &Quorum,
    filter: &Filter,
) -> Result<Report, ReportError> {
    // Every entry, verified: the filter picks what is counted afterwards,
    // the others still give the context (an item's acceptance for its
    // deliveries).
    let listing = show::show(dir, &Filter::default(), Some(key))?;
    let Some(verified) = listing.verified else {
        // `show` verifies whenever it is given a key; a listing without
        // its verification must never be drawn.
        return Err(ReportError::Show(ShowError::Verify(
            super::verify::VerifyFailure::NotAnExport(dir.display().to_string()),
        )));
    };
    let witnessed = if quorum.witnesses.is_empty() {
        None
    } else {
        Some(witnesses::check(
            dir,
            key,
            &quorum.witnesses,
            quorum.quorum,
        )?)
    };
    Ok(Report {
        verified,
        witnessed,
        filter: describe(filter),
        summary: aggregate::summarize(&listing.entries, filter),
    })
}

/// The filter in words, as the command line gave it.
fn describe(filter: &Filter) -> String {
    let mut parts = Vec::new();
    if let Some(p) = &filter.principal {
        parts.push(format!("--principal {p}"));
    }
    if let Some(a) = &filter.agency {
        parts.push(format!("--agency {}", a.as_str()));
    }
    if let Some(c) = &filter.case {
        parts.push(format!("--case {c}"));
    }
    if let Some(d) = filter.decision {
        parts.push(format!("--decision {}", show::effect_name(d)));
    }
    if let Some(t) = filter.since {
        parts.push(format!("--since {}", super::time::rfc3339(t)));
    }
    if let Some(t) = filter.until {
        parts.push(format!("--until {}", super::time::rfc3339(t)));
    }
    if parts.is_empty() {
        "none: every entry counts".to_string()
    } else {
        parts.join(" ")
    }
}
