//! Loading and validating a policy directory into a compiled [`Policy`].
//!
//! This module owns [`Policy::from_sources`]: pure (it never reads files;
//! `crate::policy_files` does), it parses every file, checks every reference
//! and reports *all* problems at once, each with the file and line it comes
//! from. A policy with any error is refused whole: there is no partially
//! loaded policy. It never decides anything.
//!
//! One loader per concern, each in its own module and called in dependency
//! order by [`Policy::from_sources`]: `scheme` (name and levels),
//! `names` (caveats, purposes, handling codes, markings, cases),
//! `agencies`, `principals`, `third_parties` (and consents),
//! `deadlines`, `rules` (and the engine's indices) and `digest`. This
//! module keeps what they share: the diagnostics and their reporter, the
//! parsed sections with their locations, and small validators.

use std::fmt;
use std::ops::Range;

use toml::value::{Datetime, Offset};

use super::model::*;

/// Every lookup table of the loader is one of the compiled policy's.
type HashMap<K, V> = FastMap<K, V>;
use super::source::*;

mod agencies;
mod deadlines;
mod digest;
mod names;
mod principals;
mod rules;
mod scheme;
mod third_parties;

pub use deadlines::parse_duration;

/// One problem found in a policy or test file.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    /// The file, relative to the policy directory (`principals.toml`).
    pub file: String,
    /// 1-based line (0 when the problem concerns no particular line).
    pub line: usize,
    /// What is wrong, in plain words.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "{}:{}: {}", self.file, self.line, self.message)
        } else {
            write!(f, "{}: {}", self.file, self.message)
        }
    }
}

/// Every problem found, in file order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// Why a policy directory could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The operator pointed at a directory or file that cannot be read.
    #[error("cannot read policy file or directory {path}: {source}")]
    Io {
        /// The path as given.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The policy's author wrote something invalid: every problem is listed.
    #[error("the policy is invalid ({n} problem(s)):\n{0}", n = .0.0.len())]
    Invalid(Diagnostics),
    /// The policy is valid, but its test files (`tests/*.toml`) are not:
    /// every problem is listed.
    #[error("the policy's test files are invalid ({n} problem(s)); the policy itself is valid:\n{0}", n = .0.0.len())]
    InvalidTests(Diagnostics),
}

impl PolicyError {
    /// The diagnostics, when the policy itself is at fault.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            PolicyError::Invalid(d) | PolicyError::InvalidTests(d) => &d.0,
            PolicyError::Io { .. } => &[],
        }
    }
}

/// 1-based line of a byte offset.
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Collects diagnostics against a set of files.
pub(crate) struct Reporter<'a> {
    pub files: &'a [(String, String)],
    pub diags: Vec<Diagnostic>,
}

impl<'a> Reporter<'a> {
    pub fn new(files: &'a [(String, String)]) -> Self {
        Reporter {
            files,
            diags: Vec::new(),
        }
    }
    pub fn at(&mut self, file: usize, span: Range<usize>, message: impl Into<String>) {
        let (name, text) = match self.files.get(file) {
            Some((n, t)) => (n.clone(), t.as_str()),
            None => (String::from("?"), ""),
        };
        let line = if span == (0..0) {
            0
        } else {
            line_of(text, span.start)
        };
        self.diags.push(Diagnostic {
            file: name,
            line,
            message: message.into(),
        });
    }
    /// `file:line` of a span, for "first declared at" messages.
    pub fn location(&self, file: usize, span: &Range<usize>) -> String {
        match self.files.get(file) {
            Some((n, t)) => format!("{n}:{}", line_of(t, span.start)),
            None => "?".into(),
        }
    }
    pub fn parse_error(&mut self, file: usize, e: &toml::de::Error) {
        let span = e.span().unwrap_or(0..0);
        let message = e.message().trim().to_string();
        let (name, text) = match self.files.get(file) {
            Some((n, t)) => (n.clone(), t.as_str()),
            None => (String::from("?"), ""),
        };
        self.diags.push(Diagnostic {
            file: name,
            line: line_of(text, span.start),
            message,
        });
    }
}

/// The handling codes, in bit order.
pub(crate) const HANDLING_CODES: [&str; 4] = ["H0", "H1", "H2", "H3"];

pub(crate) fn handling_bit(code: &str) -> Option<u8> {
    HANDLING_CODES
        .iter()
        .position(|c| *c == code)
        .map(|i| 1u8 << i)
}

/// Converts a TOML date or date-time to Unix seconds (UTC). A bare date
/// means the end of that day, UTC, when `end_of_day`, else its start.
pub(crate) fn datetime_to_unix(dt: &Datetime, end_of_day: bool) -> Result<i64, String> {
    let d = dt
        .date
        .ok_or_else(|| "a date is required, not a bare time".to_string())?;
    let month = time::Month::try_from(d.month).map_err(|e| e.to_string())?;
    let date = time::Date::from_calendar_date(i32::from(d.year), month, d.day)
        .map_err(|e| e.to_string())?;
    let (h, m, s) = match dt.time {
        Some(t) => (t.hour, t.minute, t.second),
        None if end_of_day => (23, 59, 59),
        None => (0, 0, 0),
    };
    let t = time::Time::from_hms(h, m, s.min(59)).map_err(|e| e.to_string())?;
    let base = date.with_time(t).assume_utc().unix_timestamp();
    let offset_minutes: i64 = match dt.offset {
        None | Some(Offset::Z) => 0,
        Some(Offset::Custom { minutes }) => i64::from(minutes),
    };
    Ok(base - offset_minutes * 60)
}

struct Located<T> {
    file: usize,
    span: Range<usize>,
    value: T,
}

fn take<T>(file: usize, items: Vec<S<T>>, out: &mut Vec<Located<T>>) {
    for s in items {
        out.push(Located {
            file,
            span: s.span(),
            value: s.into_inner(),
        });
    }
}

fn valid_name(s: &str, max: usize) -> bool {
    !s.trim().is_empty() && s.len() <= max && !s.chars().any(char::is_control)
}

fn valid_trust_domain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && !s.starts_with('.')
        && !s.ends_with('.')
}

/// Every section of every file, with where it was written.
#[derive(Default)]
struct Sources {
    schemes: Vec<(usize, SchemeMeta)>,
    levels: Vec<Located<RawLevel>>,
    caveats: Vec<Located<RawNamed>>,
    handlings: Vec<Located<RawHandling>>,
    markings: Vec<Located<RawMarking>>,
    deadlines: Vec<Located<RawDeadline>>,
    purposes: Vec<Located<RawNamed>>,
    cases: Vec<Located<RawCase>>,
    agencies: Vec<Located<RawAgency>>,
    principals: Vec<Located<RawPrincipal>>,
    third_parties: Vec<Located<RawThirdParty>>,
    consents: Vec<Located<RawConsent>>,
    rules: Vec<Located<(RuleEffect, RawRule)>>,
}

impl Sources {
    /// Parses every file; a file that does not parse is reported.
    fn parse(files: &[(String, String)], r: &mut Reporter) -> Sources {
        let Sources {
            mut schemes,
            mut levels,
            mut caveats,
            mut handlings,
            mut markings,
            mut deadlines,
            mut purposes,
            mut cases,
            mut agencies,
            mut principals,
            mut third_parties,
            mut consents,
            mut rules,
        } = Sources::default();

        for (fi, (_, text)) in files.iter().enumerate() {
            let parsed: PolicyFile = match toml::from_str(text) {
                Ok(p) => p,
                Err(e) => {
                    r.parse_error(fi, &e);
                    continue;
                }
            };
            if let Some(s) = parsed.scheme {
                schemes.push((fi, s));
            }
            take(fi, parsed.level, &mut levels);
            take(fi, parsed.caveat, &mut caveats);
            take(fi, parsed.handling, &mut handlings);
            take(fi, parsed.marking, &mut markings);
            take(fi, parsed.purpose, &mut purposes);
            take(fi, parsed.case, &mut cases);
            take(fi, parsed.agency, &mut agencies);
            take(fi, parsed.principal, &mut principals);
            take(fi, parsed.third_party, &mut third_parties);
            take(fi, parsed.consent, &mut consents);
            take(fi, parsed.deadline, &mut deadlines);
            for g in parsed.grant {
                rules.push(Located {
                    file: fi,
                    span: g.span(),
                    value: (RuleEffect::Grant, g.into_inner()),
                });
            }
            for d in parsed.deny {
                rules.push(Located {
                    file: fi,
                    span: d.span(),
                    value: (RuleEffect::Deny, d.into_inner()),
                });
            }
        }
        Sources {
            schemes,
            levels,
            caveats,
            handlings,
            markings,
            deadlines,
            purposes,
            cases,
            agencies,
            principals,
            third_parties,
            consents,
            rules,
        }
    }
}

impl Policy {
    /// Compiles a policy from `(file name, text)` pairs. Pure: no I/O.
    /// Returns every problem found, each with file and line.
    ///
    /// One loader per concern, in dependency order; diagnostics come out in
    /// that order, and each loader reports every problem of its concern.
    pub fn from_sources(files: &[(String, String)]) -> Result<Policy, Diagnostics> {
        let mut r = Reporter::new(files);
        let mut src = Sources::parse(files, &mut r);
        // A file that does not parse hides its references: stop here rather
        // than report a cascade of "unknown" errors.
        if !r.diags.is_empty() {
            return Err(Diagnostics(r.diags));
        }
        let scheme = scheme::compile(&src.schemes, &mut src.levels, &mut r);
        let names = names::compile(&src, &scheme, &mut r);
        let agencies = agencies::compile(&src.agencies, &mut r);
        let principals =
            principals::compile(&mut src.principals, &scheme, &names, &agencies, &mut r);
        let third = third_parties::compile(
            &src.third_parties,
            &src.consents,
            &scheme,
            &agencies,
            &mut r,
        );
        let deadlines = deadlines::compile(&src.deadlines, &names, &mut r);
        let selected = rules::compile(
            &mut src.rules,
            &scheme,
            &names,
            &agencies,
            &principals,
            &third,
            &mut r,
        );
        if !r.diags.is_empty() {
            return Err(Diagnostics(r.diags));
        }
        let rules = rules::index(selected, principals.compiled.len());
        let digest = digest::digest(
            &scheme,
            &names,
            &agencies,
            &principals,
            &third,
            &deadlines,
            &rules.rules,
        );

        Ok(Policy {
            scheme_name: scheme.name,
            digest,
            digest_hex: hex::encode(digest),
            levels: scheme.levels,
            level_by_name: scheme.level_by_name,
            caveats: names.caveat_names,
            caveat_by_name: names.caveat_by_name,
            purposes: names.purpose_names,
            purpose_by_name: names.purpose_by_name,
            cases: names.case_names,
            case_by_id: names.case_by_id,
            markings: names.markings,
            diffusion_restreinte: names.dr_marking,
            deadlines,
            agencies: agencies.bindings,
            agency_by_name: agencies.agency_by_name,
            principals: principals.compiled,
            principal_by_id: principals.by_id,
            third_parties: third.tps,
            third_party_by_id: third.tp_by_id,
            consents: third.consents,
            consents_by_tp: third.consents_by_tp,
            rules: rules.rules,
            rules_by_recipient: rules.rules_by_recipient,
            rule_words: rules.rule_words,
            rules_by_sender: rules.rules_by_sender,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::principal::PrincipalId;

    const MINI: &str = r#"
[scheme]
name = "mini"

[[level]]
id = "low"
rank = 0
names = ["LOW"]

[[level]]
id = "high"
rank = 1
names = ["HIGH", "HOOG"]

[[agency]]
id = "a"
trust_domain = "a.example"

[[principal]]
id = "a/x"
kind = "desk"
role = "r"
clearance = "HIGH"
accreditation = "low"
"#;

    fn files(extra: &str) -> Vec<(String, String)> {
        vec![("mini.toml".into(), format!("{MINI}{extra}"))]
    }

    #[test]
    fn lines_and_dates() {
        assert_eq!(line_of("a\nb\nc", 0), 1);
        assert_eq!(line_of("a\nb\nc", 2), 2);
        assert_eq!(line_of("a\nb\nc", 99), 3);
        let d: Datetime = "2027-12-31".parse().unwrap();
        assert_eq!(datetime_to_unix(&d, true).unwrap(), 1_830_297_599);
        assert_eq!(datetime_to_unix(&d, false).unwrap(), 1_830_211_200);
        let d: Datetime = "2027-12-31T01:00:00+01:00".parse().unwrap();
        assert_eq!(datetime_to_unix(&d, true).unwrap(), 1_830_211_200);
        let t: Datetime = "12:00:00".parse().unwrap();
        assert!(datetime_to_unix(&t, true).is_err());
    }

    #[test]
    fn names_compare_in_any_case_and_spacing() {
        let p = Policy::from_sources(&files("")).unwrap();
        assert_eq!(p.rank_of("hoog"), Some(1));
        assert_eq!(p.rank_of("  High "), Some(1));
        assert_eq!(p.rank_of("HIGHER"), None);
        let x = p.principal(&PrincipalId::new("a/x").unwrap()).unwrap();
        assert_eq!(x.ceiling(), 0, "the lower of clearance and accreditation");
    }

    #[test]
    fn digest_is_canonical() {
        let a = Policy::from_sources(&files("")).unwrap();
        // Comments, layout and the split into files do not change the digest.
        let (head, tail) = MINI.split_at(MINI.find("[[agency]]").unwrap());
        let split = vec![
            ("one.toml".to_string(), format!("# scheme\n{head}")),
            ("two.toml".to_string(), tail.replace(" = ", "=")),
        ];
        let b = Policy::from_sources(&split).unwrap();
        assert_eq!(a.digest_hex(), b.digest_hex());
        // A semantic change does.
        let c = Policy::from_sources(&[(
            "mini.toml".into(),
            MINI.replace("clearance = \"HIGH\"", "clearance = \"LOW\""),
        )])
        .unwrap();
        assert_ne!(a.digest_hex(), c.digest_hex());
    }

    #[test]
    fn reports_every_problem_at_once() {
        let err = Policy::from_sources(&files(
            r#"
[[principal]]
id = "b/y"
kind = "robot"
role = "r"
clearance = "MEDIUM"
accreditation = "LOW"

[[grant]]
id = "mandatory.sneaky"
from = {}
to = {}
"#,
        ))
        .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("mini.toml:27: principal b/y belongs to unknown agency b"),
            "{text}"
        );
        assert!(text.contains("mini.toml:28: kind \"robot\""), "{text}");
        assert!(
            text.contains("mini.toml:30: clearance \"MEDIUM\" is not a level"),
            "{text}"
        );
        assert!(text.contains("reserved prefix"), "{text}");
    }

    #[test]
    fn a_marking_is_not_a_level() {
        let err = Policy::from_sources(&files("[[marking]]\nid = \"dr\"\nnames = [\"Hoog\"]\n"))
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("a marking is not a classification"),
            "{err}"
        );
    }
}
