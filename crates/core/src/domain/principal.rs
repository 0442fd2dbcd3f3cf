//! Who takes part in an exchange: agencies and principals.
//!
//! A principal id is a path such as `police/lo/rabat` whose first segment is
//! its agency. It is derived from the URI SAN of a client certificate
//! (`spiffe://police.example/lo/rabat`) by the TLS edge; this module only
//! says what a well-formed id is and never trusts an id it is handed.

use serde::{Deserialize, Serialize};
use std::fmt;

use super::bounds;

/// Why a principal id is not well formed. It quotes at most the first 80
/// bytes of what it was given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid principal id {0:?}: expected agency/segment[/segment…] of lowercase letters, digits, '-' or '_', at most 256 bytes")]
pub struct InvalidPrincipal(pub String);

impl InvalidPrincipal {
    fn of(s: String) -> Self {
        InvalidPrincipal(bounds::truncate(s, 80))
    }
}

fn valid_segment(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= bounds::SEGMENT
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// An agency name (`police`, `vsse`, `oversight`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Agency(String);

impl Agency {
    /// Parses an agency name.
    pub fn new(s: impl Into<String>) -> Result<Self, InvalidPrincipal> {
        let s = s.into();
        if valid_segment(&s) {
            Ok(Agency(s))
        } else {
            Err(InvalidPrincipal::of(s))
        }
    }
    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Agency {
    type Error = InvalidPrincipal;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Agency::new(s)
    }
}
impl From<Agency> for String {
    fn from(a: Agency) -> String {
        a.0
    }
}
impl fmt::Display for Agency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

/// A principal id: `agency/path…`, at least two segments.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PrincipalId(String);

impl PrincipalId {
    /// Parses a principal id.
    pub fn new(s: impl Into<String>) -> Result<Self, InvalidPrincipal> {
        let s = s.into();
        let ok = s.len() <= bounds::PRINCIPAL_ID
            && s.split('/').count() >= 2
            && s.split('/').all(valid_segment);
        if ok {
            Ok(PrincipalId(s))
        } else {
            Err(InvalidPrincipal::of(s))
        }
    }

    /// Builds the id for `path` (e.g. `lo/rabat`) inside `agency`.
    pub fn in_agency(agency: &Agency, path: &str) -> Result<Self, InvalidPrincipal> {
        PrincipalId::new(format!("{}/{}", agency.as_str(), path))
    }

    /// The agency this principal belongs to: its first segment.
    pub fn agency(&self) -> Agency {
        let first = self.0.split('/').next().unwrap_or_default();
        Agency(first.to_string())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for PrincipalId {
    type Error = InvalidPrincipal;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        PrincipalId::new(s)
    }
}
impl std::str::FromStr for PrincipalId {
    type Err = InvalidPrincipal;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PrincipalId::new(s)
    }
}
impl From<PrincipalId> for String {
    fn from(p: PrincipalId) -> String {
        p.0
    }
}
impl fmt::Display for PrincipalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principal_ids() {
        let p = PrincipalId::new("police/lo/rabat").unwrap();
        assert_eq!(p.agency().as_str(), "police");
        for bad in [
            "police",
            "",
            "police/",
            "/lo",
            "Police/lo",
            "police/lo rabat",
            "police//x",
            "vsse/../x",
        ] {
            assert!(PrincipalId::new(bad).is_err(), "{bad} accepted");
        }
    }
}
