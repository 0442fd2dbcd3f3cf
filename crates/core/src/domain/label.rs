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

use super::bounds::{self, FieldError};
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

    /// Checks the shape and the bounds of every field (see
    /// [`super::bounds`]); whether the level, caveats and originating agency
    /// are those of the scheme is the policy's check. Field paths in the
    /// error are relative to the label (`level`, `evaluation.grade`).
    pub fn check_shape(&self) -> Result<(), FieldError> {
        bounds::text("level", &self.level, bounds::LEVEL)?;
        bounds::count("caveats", self.caveats.len(), 0, bounds::CAVEATS)?;
        for c in &self.caveats {
            bounds::text("caveats", c, bounds::CAVEAT)?;
        }
        bounds::count("rel_to", self.rel_to.len(), 0, bounds::REL_TO)?;
        if let Some(e) = &self.evaluation {
            bounds::text("evaluation.grade", &e.grade, bounds::EVALUATION_GRADE)?;
            if e.system != "4x4" && e.system != "6x6" {
                return Err(FieldError::new(
                    "evaluation.system",
                    "must be 4x4 (police) or 6x6 (intelligence)",
                ));
            }
        }
        if let Some(tp) = &self.originator.third_party {
            bounds::text("originator.third_party", tp, bounds::THIRD_PARTY)?;
        }
        if let Some(d) = &self.review_date {
            let format = time::macros::format_description!("[year]-[month]-[day]");
            if d.len() != bounds::REVIEW_DATE || time::Date::parse(d, format).is_err() {
                return Err(FieldError::new(
                    "review_date",
                    "must be a date written YYYY-MM-DD",
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label() -> SecurityLabel {
        SecurityLabel::new("SECRET", Agency::new("vsse").unwrap())
    }

    #[test]
    fn every_field_is_bounded_and_named() {
        assert_eq!(label().check_shape(), Ok(()));
        let field = |l: SecurityLabel| l.check_shape().unwrap_err().field;

        let mut l = label();
        l.level = "S".repeat(65);
        assert_eq!(field(l), "level");
        let mut l = label();
        l.caveats = (0..33).map(|i| format!("C{i}")).collect();
        assert_eq!(field(l), "caveats");
        let mut l = label();
        l.caveats.insert("\u{7}".into());
        assert_eq!(field(l), "caveats");
        let mut l = label();
        l.rel_to = (0..33)
            .map(|i| Agency::new(format!("a{i}")).unwrap())
            .collect();
        assert_eq!(field(l), "rel_to");
        let mut l = label();
        l.evaluation = Some(Evaluation {
            grade: "A".repeat(70_000),
            system: "6x6".into(),
        });
        assert_eq!(field(l), "evaluation.grade");
        let mut l = label();
        l.evaluation = Some(Evaluation {
            grade: "B2".into(),
            system: "x".repeat(100),
        });
        let e = l.check_shape().unwrap_err();
        assert_eq!(e.field, "evaluation.system");
        assert!(!e.problem.contains("xxx"));
        let mut l = label();
        l.originator.third_party = Some("p".repeat(129));
        assert_eq!(field(l), "originator.third_party");
        for bad in ["2030-13-01", "30-01-01", "2030-01-01T00", "tomorrow"] {
            let mut l = label();
            l.review_date = Some(bad.into());
            assert_eq!(field(l), "review_date", "{bad}");
        }
        let mut l = label();
        l.review_date = Some("2030-02-28".into());
        assert_eq!(l.check_shape(), Ok(()));
    }
}
