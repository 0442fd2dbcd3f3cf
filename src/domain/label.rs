//! Security labels as they travel on an item and on each of its portions.
//!
//! A label is data: its level is a name from the policy's classification
//! scheme (`SECRET`, `GEHEIM`, `RESTREINT UE`, …) and only the loaded policy
//! can say how levels compare. This module checks the shape of a label and
//! never ranks levels itself, so that a scheme change is a policy change, not
//! a code change. Evaluations are kept exactly as given (police 4×4,
//! intelligence 6×6) and never converted.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

use super::principal::Agency;

/// Europol-style handling codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum HandlingCode {
    /// H0: for crime-fighting use only.
    H0,
    /// H1: no use in court without the provider's permission.
    H1,
    /// H2: no onward dissemination without the provider's permission.
    H2,
    /// H3: other restrictions, stated with the item.
    H3,
}

/// Who originated the information.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Originator {
    /// The agency that created the information or first received it from a
    /// third party.
    pub agency: Agency,
    /// The foreign partner service that originated it, when third-party
    /// material (e.g. `partner/ma-dgst`). It never connects to the gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub third_party: Option<String>,
}

/// An evaluation of source and information, kept as given.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Evaluation {
    /// The grading, e.g. `B2` or `A1`.
    pub grade: String,
    /// `4x4` (police) or `6x6` (intelligence).
    pub system: String,
}

/// A security label: on the item as a whole and on each portion.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SecurityLabel {
    /// Classification level, a name from the policy's scheme.
    pub level: String,
    /// Releasability: when not empty, the recipient's agency must be one of them.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub rel_to: BTreeSet<Agency>,
    /// Caveats and compartments: a recipient must hold all of them.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub caveats: BTreeSet<String>,
    /// Handling code, when one applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handling: Option<HandlingCode>,
    /// Source and information evaluation, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluation: Option<Evaluation>,
    /// Who originated the information.
    pub originator: Originator,
    /// Date (YYYY-MM-DD) by which the classification is to be reviewed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review_date: Option<String>,
    /// The purpose-bound marking "Diffusion restreinte / Beperkte
    /// verspreiding": not a level, a restriction on use.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub diffusion_restreinte: bool,
}

/// Why a label is not well formed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LabelError {
    /// The sender wrote an empty or oversized level name.
    #[error("the classification level is empty or too long")]
    BadLevel,
    /// The sender wrote an empty or oversized caveat.
    #[error("a caveat is empty or longer than 64 characters")]
    BadCaveat,
    /// The evaluation names a system other than 4x4 or 6x6.
    #[error("evaluation system {0:?} is neither 4x4 nor 6x6")]
    BadEvaluation(String),
    /// The third party name is empty or too long.
    #[error("the third-party originator name is empty or too long")]
    BadThirdParty,
}

impl SecurityLabel {
    /// A label at `level`, originated by `agency`, with nothing else set.
    pub fn new(level: impl Into<String>, agency: Agency) -> Self {
        SecurityLabel {
            level: level.into(),
            caveats: BTreeSet::new(),
            rel_to: BTreeSet::new(),
            handling: None,
            diffusion_restreinte: false,
            originator: Originator {
                agency,
                third_party: None,
            },
            evaluation: None,
            review_date: None,
        }
    }

    /// Checks the shape of the label; levels are checked by the policy.
    pub fn check_shape(&self) -> Result<(), LabelError> {
        if self.level.trim().is_empty() || self.level.len() > 64 {
            return Err(LabelError::BadLevel);
        }
        if self
            .caveats
            .iter()
            .any(|c| c.trim().is_empty() || c.len() > 64)
        {
            return Err(LabelError::BadCaveat);
        }
        if let Some(e) = &self.evaluation {
            if e.system != "4x4" && e.system != "6x6" {
                return Err(LabelError::BadEvaluation(e.system.clone()));
            }
        }
        if let Some(tp) = &self.originator.third_party {
            if tp.trim().is_empty() || tp.len() > 128 {
                return Err(LabelError::BadThirdParty);
            }
        }
        Ok(())
    }
}
