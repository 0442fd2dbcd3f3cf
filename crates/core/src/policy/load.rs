//! Loading and validating a policy directory into a compiled [`Policy`].
//!
//! This module is the only part of the policy code that reads files
//! ([`load_dir`]); everything after reading is the pure
//! [`Policy::from_sources`], which parses every file, checks every reference
//! and reports *all* problems at once, each with the file and line it comes
//! from. A policy with any error is refused whole: there is no partially
//! loaded policy. It never decides anything.

use std::collections::BTreeSet;
use std::fmt;
use std::ops::Range;
use std::path::Path;

use toml::value::{Datetime, Offset};

use super::model::*;

/// Every lookup table of the loader is one of the compiled policy's.
type HashMap<K, V> = FastMap<K, V>;
use super::source::*;
use crate::domain::bytes::{sha256, to_cbor};
use crate::domain::principal::{Agency, PrincipalId};

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

/// Reads every `*.toml` file directly in `dir` (sorted by name; `tests/` is
/// not part of the policy) and compiles them.
pub fn load_dir(dir: &Path) -> Result<Policy, PolicyError> {
    let files = read_toml_files(dir)?;
    Policy::from_sources(&files).map_err(PolicyError::Invalid)
}

/// Reads the `*.toml` files directly in `dir` as `(file name, text)`, sorted.
pub(crate) fn read_toml_files(dir: &Path) -> Result<Vec<(String, String)>, PolicyError> {
    let io = |source| PolicyError::Io {
        path: dir.display().to_string(),
        source,
    };
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let path = entry.path();
        if path.is_file() && path.extension().is_some_and(|e| e == "toml") {
            names.push(path);
        }
    }
    names.sort();
    let mut files = Vec::with_capacity(names.len());
    for path in names {
        let text = std::fs::read_to_string(&path).map_err(|source| PolicyError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        files.push((name, text));
    }
    Ok(files)
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

/// Parses a duration written `45m`, `8h` or `3d` into seconds: at least a
/// minute, at most a year.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    let bad = || format!("{s:?} is not a duration such as 30s, 45m, 8h or 3d");
    let s = s.trim();
    let (num, unit) = s.split_at(s.len().saturating_sub(1));
    let n: i64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        // Seconds are for exercises and drills (a deadline that passes
        // while people watch); real deadlines are minutes to days.
        "s" => Some(n),
        "m" => n.checked_mul(60),
        "h" => n.checked_mul(3_600),
        "d" => n.checked_mul(86_400),
        _ => None,
    }
    .ok_or_else(bad)?;
    if !(1..=366 * 86_400).contains(&secs) {
        return Err(format!("{s:?} is not between one second and one year"));
    }
    Ok(secs)
}

/// The answer deadlines that apply when the policy declares none for a
/// request: Directive (EU) 2023/977, art. 5(1): 8 hours for urgent requests
/// on directly accessible information, 3 days for urgent requests on
/// indirectly accessible information, 7 days for the others; and FLASH
/// within the hour.
pub(crate) fn default_deadlines() -> Vec<Deadline> {
    const DIRECTIVE: &str = "default: Directive (EU) 2023/977, art. 5(1)";
    let d = |priority: &str, accessibility, within_secs, source| Deadline {
        priority: priority.to_string(),
        accessibility,
        purposes: None,
        within_secs,
        source,
        purpose_mask: None,
    };
    vec![
        d("FLASH", None, 3_600, "default: FLASH within the hour"),
        d("URGENT", Some(Accessibility::Direct), 8 * 3_600, DIRECTIVE),
        d(
            "URGENT",
            Some(Accessibility::Indirect),
            3 * 86_400,
            DIRECTIVE,
        ),
        d("ROUTINE", None, 7 * 86_400, DIRECTIVE),
    ]
}

/// The canonical content hashed into the digest: semantics only, sorted,
/// independent of how the policy is split into files, of comments and of
/// layout.
#[derive(serde::Serialize)]
struct Canonical<'a> {
    format: &'static str,
    scheme: &'a str,
    levels: &'a [Level],
    caveats: Vec<&'a String>,
    purposes: Vec<&'a String>,
    cases: Vec<(&'a String, &'a String)>,
    agencies: &'a [AgencyBinding],
    principals: &'a [Principal],
    third_parties: &'a [ThirdParty],
    consents: &'a [Consent],
    rules: &'a [Rule],
    markings: &'a [Marking],
    deadlines: &'a [Deadline],
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

impl Policy {
    /// Compiles a policy from `(file name, text)` pairs. Pure: no I/O.
    /// Returns every problem found, each with file and line.
    pub fn from_sources(files: &[(String, String)]) -> Result<Policy, Diagnostics> {
        let mut r = Reporter::new(files);
        let mut schemes = Vec::new();
        let mut levels = Vec::new();
        let mut caveats = Vec::new();
        let mut handlings = Vec::new();
        let mut markings = Vec::new();
        let mut deadlines = Vec::new();
        let mut purposes = Vec::new();
        let mut cases = Vec::new();
        let mut agencies = Vec::new();
        let mut principals = Vec::new();
        let mut third_parties = Vec::new();
        let mut consents = Vec::new();
        let mut rules: Vec<Located<(RuleEffect, RawRule)>> = Vec::new();

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
        // A file that does not parse hides its references: stop here rather
        // than report a cascade of "unknown" errors.
        if !r.diags.is_empty() {
            return Err(Diagnostics(r.diags));
        }

        // --- scheme --------------------------------------------------------
        let scheme_name = match schemes.as_slice() {
            [] => {
                r.at(
                    0,
                    0..0,
                    "no [scheme] section: one file must name the classification scheme",
                );
                String::new()
            }
            [(_, s)] => s.name.get_ref().clone(),
            [_, rest @ ..] => {
                for (fi, s) in rest {
                    r.at(*fi, s.name.span(), "a second [scheme] section");
                }
                schemes[0].1.name.get_ref().clone()
            }
        };

        // --- levels --------------------------------------------------------
        levels.sort_by_key(|l| *l.value.rank.get_ref());
        let mut compiled_levels: Vec<Level> = Vec::new();
        let mut level_by_name: HashMap<String, Rank> = HashMap::default();
        let mut level_ids = HashMap::default();
        if levels.is_empty() {
            r.at(0, 0..0, "no [[level]]: the scheme declares no levels");
        }
        if levels.len() > 200 {
            r.at(0, 0..0, "more than 200 levels");
        }
        for (i, l) in levels.iter().enumerate() {
            let v = &l.value;
            if *v.rank.get_ref() != i as i64 {
                r.at(
                    l.file,
                    v.rank.span(),
                    format!(
                        "level {:?} has rank {} but ranks must be 0, 1, 2, … without gaps or duplicates (expected {i})",
                        v.id.get_ref(),
                        v.rank.get_ref()
                    ),
                );
            }
            if !valid_name(v.id.get_ref(), 64) {
                r.at(
                    l.file,
                    v.id.span(),
                    "a level id must be 1-64 printable characters",
                );
            }
            if level_ids.insert(v.id.get_ref().clone(), ()).is_some() {
                r.at(
                    l.file,
                    v.id.span(),
                    format!("duplicate level id {:?}", v.id.get_ref()),
                );
            }
            if v.names.is_empty() {
                r.at(
                    l.file,
                    l.span.clone(),
                    format!("level {:?} has no names", v.id.get_ref()),
                );
            }
            let retention_days = match &v.retention_days {
                None => None,
                Some(d) if (1..=36_600).contains(d.get_ref()) => Some(*d.get_ref() as u32),
                Some(d) => {
                    r.at(
                        l.file,
                        d.span(),
                        format!(
                            "retention of {} days is not between 1 day and 100 years",
                            d.get_ref()
                        ),
                    );
                    None
                }
            };
            let rank = i as Rank;
            let mut register = |name: &S<String>, r: &mut Reporter| {
                if !valid_name(name.get_ref(), 64) {
                    r.at(
                        l.file,
                        name.span(),
                        "a level name must be 1-64 printable characters",
                    );
                    return;
                }
                for key in [name.get_ref().clone(), normalize_level(name.get_ref())] {
                    match level_by_name.get(&key) {
                        Some(&other) if other != rank => r.at(
                            l.file,
                            name.span(),
                            format!(
                                "level name {:?} already stands for another level: a name may mean only one level",
                                name.get_ref()
                            ),
                        ),
                        _ => {
                            level_by_name.insert(key, rank);
                        }
                    }
                }
            };
            register(&v.id, &mut r);
            for n in v.names.iter().chain(&v.eu).chain(&v.nato) {
                register(n, &mut r);
            }
            compiled_levels.push(Level {
                id: v.id.get_ref().clone(),
                rank,
                names: v.names.iter().map(|n| n.get_ref().clone()).collect(),
                eu: v.eu.iter().map(|n| n.get_ref().clone()).collect(),
                nato: v.nato.iter().map(|n| n.get_ref().clone()).collect(),
                retention_days,
            });
        }
        let level = |name: &S<String>, what: &str, file: usize, r: &mut Reporter| -> Option<Rank> {
            let found = level_by_name
                .get(name.get_ref())
                .or_else(|| level_by_name.get(&normalize_level(name.get_ref())))
                .copied();
            if found.is_none() {
                r.at(
                    file,
                    name.span(),
                    format!(
                        "{what} {:?} is not a level of the classification scheme",
                        name.get_ref()
                    ),
                );
            }
            found
        };

        // --- caveats, purposes, handling, markings -------------------------
        let intern = |items: &[Located<RawNamed>], what: &str, r: &mut Reporter| {
            let mut names: Vec<String> = Vec::new();
            let mut by_name = HashMap::default();
            for c in items {
                let id = c.value.id.get_ref();
                if !valid_name(id, 64) || id.contains(char::is_whitespace) {
                    r.at(
                        c.file,
                        c.value.id.span(),
                        format!("a {what} must be 1-64 characters without spaces"),
                    );
                    continue;
                }
                if by_name.contains_key(id) {
                    r.at(
                        c.file,
                        c.value.id.span(),
                        format!("duplicate {what} {id:?}"),
                    );
                    continue;
                }
                if names.len() >= MAX_INTERNED {
                    r.at(
                        c.file,
                        c.value.id.span(),
                        format!("more than {MAX_INTERNED} {what}s"),
                    );
                    continue;
                }
                by_name.insert(id.clone(), names.len() as u8);
                names.push(id.clone());
            }
            (names, by_name)
        };
        let (caveat_names, caveat_by_name) = intern(&caveats, "caveat", &mut r);
        let (purpose_names, purpose_by_name) = intern(&purposes, "purpose", &mut r);
        let mut seen_codes = BTreeSet::new();
        for h in &handlings {
            let code = h.value.code.get_ref();
            if handling_bit(code).is_none() {
                r.at(
                    h.file,
                    h.value.code.span(),
                    format!("handling code {code:?} is not one of H0, H1, H2, H3"),
                );
            } else if !seen_codes.insert(code.clone()) {
                r.at(
                    h.file,
                    h.value.code.span(),
                    format!("handling code {code:?} declared twice"),
                );
            }
        }
        let mut marking_ids = BTreeSet::new();
        let mut compiled_markings: Vec<Marking> = Vec::new();
        for m in &markings {
            let id = m.value.id.get_ref();
            if !marking_ids.insert(id.clone()) {
                r.at(
                    m.file,
                    m.value.id.span(),
                    format!("duplicate marking {id:?}"),
                );
                continue;
            }
            // Labels carry one purpose-bound marking, as a flag: a marking
            // of another id could be declared but never carried.
            if id != DIFFUSION_RESTREINTE {
                r.at(
                    m.file,
                    m.value.id.span(),
                    format!(
                        "marking {id:?}: labels carry only the Diffusion restreinte / Beperkte verspreiding marking (`diffusion_restreinte = true`); declare it with id {DIFFUSION_RESTREINTE:?}"
                    ),
                );
            }
            let mut purpose_mask: Mask = 0;
            let mut purpose_list = Vec::new();
            match &m.value.purposes {
                None => r.at(
                    m.file,
                    m.span.clone(),
                    format!(
                        "marking {id:?} names no purposes: a purpose-bound marking needs `purposes = [...]`, the purposes marked material may be released for"
                    ),
                ),
                Some(ps) if ps.get_ref().is_empty() => r.at(
                    m.file,
                    ps.span(),
                    format!("marking {id:?}: `purposes` is an empty list, so marked material could never be released"),
                ),
                Some(ps) => {
                    for p in ps.get_ref() {
                        match purpose_by_name.get(p.get_ref()) {
                            Some(&b) => {
                                purpose_mask |= 1 << b;
                                purpose_list.push(p.get_ref().clone());
                            }
                            None => r.at(
                                m.file,
                                p.span(),
                                format!("marking {id:?}: unknown purpose {:?}", p.get_ref()),
                            ),
                        }
                    }
                }
            }
            purpose_list.sort();
            purpose_list.dedup();
            compiled_markings.push(Marking {
                id: id.clone(),
                names: m.value.names.iter().map(|n| n.get_ref().clone()).collect(),
                purposes: purpose_list,
                purpose_mask,
            });
            for n in &m.value.names {
                if level_by_name.contains_key(&normalize_level(n.get_ref())) {
                    r.at(
                        m.file,
                        n.span(),
                        format!(
                            "marking name {:?} is also a level: a marking is not a classification",
                            n.get_ref()
                        ),
                    );
                }
            }
        }

        compiled_markings.sort_by(|a, b| a.id.cmp(&b.id));
        let dr_marking = compiled_markings
            .iter()
            .position(|m| m.id == DIFFUSION_RESTREINTE);

        // --- cases ---------------------------------------------------------
        let mut case_names: Vec<String> = Vec::new();
        let mut case_purposes: Vec<String> = Vec::new();
        let mut case_by_id: HashMap<String, u32> = HashMap::default();
        for c in &cases {
            let id = c.value.id.get_ref();
            if !valid_name(id, 64) || id.contains(char::is_whitespace) {
                r.at(
                    c.file,
                    c.value.id.span(),
                    "a case id must be 1-64 characters without spaces",
                );
                continue;
            }
            if case_by_id.contains_key(&normalize_case(id)) {
                r.at(
                    c.file,
                    c.value.id.span(),
                    format!("duplicate case {id:?} (case references compare in any letter case)"),
                );
                continue;
            }
            if id == "*" {
                r.at(
                    c.file,
                    c.value.id.span(),
                    "\"*\" is not a case id: in a principal's `cases` it means every case",
                );
                continue;
            }
            if !purpose_by_name.contains_key(c.value.purpose.get_ref()) {
                r.at(
                    c.file,
                    c.value.purpose.span(),
                    format!(
                        "case {id:?} has unknown purpose {:?}",
                        c.value.purpose.get_ref()
                    ),
                );
            }
            case_by_id.insert(normalize_case(id), case_names.len() as u32);
            case_names.push(id.clone());
            case_purposes.push(c.value.purpose.get_ref().clone());
        }

        // --- agencies ------------------------------------------------------
        let mut bindings: Vec<AgencyBinding> = Vec::new();
        let mut agency_by_name: HashMap<String, u16> = HashMap::default();
        let mut cas = BTreeSet::new();
        let mut domains = BTreeSet::new();
        for a in &agencies {
            let v = &a.value;
            let agency = match Agency::new(v.id.get_ref().clone()) {
                Ok(ag) => ag,
                Err(e) => {
                    r.at(a.file, v.id.span(), e.to_string());
                    continue;
                }
            };
            if agency_by_name.contains_key(agency.as_str()) {
                r.at(a.file, v.id.span(), format!("duplicate agency {agency}"));
                continue;
            }
            let ca = v.ca.get_ref();
            if ca.trim().is_empty() || ca.starts_with('/') || ca.contains("..") {
                r.at(
                    a.file,
                    v.ca.span(),
                    "the CA path must be relative to the configuration directory, without '..'",
                );
            } else if !cas.insert(ca.clone()) {
                r.at(
                    a.file,
                    v.ca.span(),
                    format!("CA {ca:?} is already bound to another agency: each CA is bound to exactly one agency"),
                );
            }
            let td = v.trust_domain.get_ref();
            if !valid_trust_domain(td) {
                r.at(
                    a.file,
                    v.trust_domain.span(),
                    format!("{td:?} is not a trust domain name such as police.example"),
                );
            } else if !domains.insert(td.clone()) {
                r.at(
                    a.file,
                    v.trust_domain.span(),
                    format!("trust domain {td:?} is already bound to another agency"),
                );
            }
            agency_by_name.insert(agency.as_str().to_string(), bindings.len() as u16);
            bindings.push(AgencyBinding {
                name: v
                    .name
                    .clone()
                    .unwrap_or_else(|| agency.as_str().to_string()),
                agency,
                ca: ca.clone(),
                trust_domain: td.clone(),
            });
        }

        // --- principals ----------------------------------------------------
        principals.sort_by(|a, b| a.value.id.get_ref().cmp(b.value.id.get_ref()));
        let mut compiled_principals: Vec<Principal> = Vec::new();
        let mut principal_by_id: HashMap<String, u32> = HashMap::default();
        let mut principal_first: HashMap<String, (usize, Range<usize>)> = HashMap::default();
        for p in &principals {
            let v = &p.value;
            let id = match PrincipalId::new(v.id.get_ref().clone()) {
                Ok(id) => id,
                Err(e) => {
                    r.at(p.file, v.id.span(), e.to_string());
                    continue;
                }
            };
            if let Some((ff, fs)) = principal_first.get(id.as_str()) {
                let first = r.location(*ff, fs);
                r.at(
                    p.file,
                    v.id.span(),
                    format!("duplicate principal {id} (first declared at {first})"),
                );
                continue;
            }
            principal_first.insert(id.as_str().to_string(), (p.file, v.id.span()));
            let agency = id.agency();
            let agency_idx = agency_by_name.get(agency.as_str()).copied();
            if agency_idx.is_none() {
                r.at(
                    p.file,
                    v.id.span(),
                    format!("principal {id} belongs to unknown agency {agency}"),
                );
            }
            let kind = match v.kind.get_ref().as_str() {
                "station" => Some(PrincipalKind::Station),
                "desk" => Some(PrincipalKind::Desk),
                "person" => Some(PrincipalKind::Person),
                other => {
                    r.at(
                        p.file,
                        v.kind.span(),
                        format!("kind {other:?} is not station, desk or person"),
                    );
                    None
                }
            };
            if !valid_name(v.role.get_ref(), 64) {
                r.at(
                    p.file,
                    v.role.span(),
                    "a role must be 1-64 printable characters",
                );
            }
            let clearance = level(&v.clearance, "clearance", p.file, &mut r);
            // `Some(None)`: no station ceiling; `None`: an error was reported.
            let accreditation: Option<Option<Rank>> = match &v.accreditation {
                None => {
                    r.at(
                        p.file,
                        v.id.span(),
                        format!(
                            "principal {id} has no `accreditation`: give the level its station or premises is accredited to, or \"none\" for a principal that is not a station"
                        ),
                    );
                    None
                }
                Some(a) if a.get_ref() == "none" => {
                    if kind == Some(PrincipalKind::Station) {
                        r.at(
                            p.file,
                            a.span(),
                            format!(
                                "principal {id} is a station: a station always has an accreditation level (\"none\" is only for desks and persons)"
                            ),
                        );
                        None
                    } else {
                        Some(None)
                    }
                }
                Some(a) => level(a, "accreditation", p.file, &mut r).map(Some),
            };
            let mut caveat_mask: Mask = 0;
            let mut cav = BTreeSet::new();
            for c in &v.caveats {
                match caveat_by_name.get(c.get_ref()) {
                    Some(&b) => {
                        caveat_mask |= 1 << b;
                        cav.insert(c.get_ref().clone());
                    }
                    None => r.at(
                        p.file,
                        c.span(),
                        format!("unknown caveat {:?}", c.get_ref()),
                    ),
                }
            }
            let mut case_ids = Vec::new();
            let mut case_list = BTreeSet::new();
            let all_cases = v.cases.iter().any(|c| c.get_ref() == "*");
            if all_cases && v.cases.len() > 1 {
                r.at(
                    p.file,
                    v.cases[0].span(),
                    format!("principal {id}: `cases = [\"*\"]` already names every case; list no other case beside it"),
                );
            }
            for c in &v.cases {
                if c.get_ref() == "*" {
                    continue;
                }
                match case_by_id.get(&normalize_case(c.get_ref())) {
                    Some(&ci) => {
                        case_ids.push(ci);
                        case_list.insert(case_names[ci as usize].clone());
                    }
                    None => r.at(
                        p.file,
                        c.span(),
                        format!(
                            "unknown case {:?} (declare it as a [[case]], or write [\"*\"] for every case)",
                            c.get_ref()
                        ),
                    ),
                }
            }
            if all_cases {
                case_list.insert("*".to_string());
            }
            case_ids.sort_unstable();
            case_ids.dedup();
            // Oversight reads and does not take part: an auditor sends
            // nothing and reads every proof unless the policy says otherwise.
            let auditor = v.role.get_ref() == AUDITOR_ROLE;
            let may_send = v.may_send.unwrap_or(!auditor);
            let audit = match v.audit.as_ref().map(|a| (a.get_ref().as_str(), a.span())) {
                None if auditor => Some(AuditScope::All),
                None => Some(AuditScope::Own),
                Some(("all", _)) => Some(AuditScope::All),
                Some(("own", _)) => Some(AuditScope::Own),
                Some((other, span)) => {
                    r.at(
                        p.file,
                        span,
                        format!(
                            "audit {other:?} is not \"all\" (every audit proof) or \"own\" (the entries that concern this principal)"
                        ),
                    );
                    None
                }
            };
            let (Some(clearance), Some(accreditation), Some(agency_idx), Some(kind), Some(audit)) =
                (clearance, accreditation, agency_idx, kind, audit)
            else {
                continue;
            };
            principal_by_id.insert(id.as_str().to_string(), compiled_principals.len() as u32);
            compiled_principals.push(Principal {
                clearance_level: compiled_levels[clearance as usize].id.clone(),
                accreditation_level: accreditation.map(|a| compiled_levels[a as usize].id.clone()),
                id,
                agency,
                kind,
                role: v.role.get_ref().clone(),
                caveats: cav.into_iter().collect(),
                cases: case_list.into_iter().collect(),
                all_cases,
                may_send,
                audit,
                agency_idx,
                clearance,
                accreditation,
                caveat_mask,
                case_ids,
            });
        }
        let roles: BTreeSet<&str> = compiled_principals
            .iter()
            .map(|p| p.role.as_str())
            .collect();

        // --- third parties and consents -----------------------------------
        let mut tps: Vec<ThirdParty> = Vec::new();
        let mut tp_by_id: HashMap<String, u16> = HashMap::default();
        for t in &third_parties {
            let id = t.value.id.get_ref();
            if !valid_name(id, 128) || id.contains(char::is_whitespace) {
                r.at(
                    t.file,
                    t.value.id.span(),
                    "a third-party id must be 1-128 characters without spaces",
                );
                continue;
            }
            if tp_by_id.contains_key(id) {
                r.at(
                    t.file,
                    t.value.id.span(),
                    format!("duplicate third party {id:?}"),
                );
                continue;
            }
            if agency_by_name.contains_key(id) {
                r.at(
                    t.file,
                    t.value.id.span(),
                    format!("{id:?} is an agency of the gateway, not a third party"),
                );
                continue;
            }
            tp_by_id.insert(id.clone(), tps.len() as u16);
            tps.push(ThirdParty {
                id: id.clone(),
                name: t.value.name.clone().unwrap_or_else(|| id.clone()),
                country: t.value.country.clone(),
            });
        }
        let mut compiled_consents: Vec<Consent> = Vec::new();
        let mut consent_ids = BTreeSet::new();
        for c in &consents {
            let v = &c.value;
            let id = v.id.get_ref();
            if !consent_ids.insert(id.clone()) {
                r.at(c.file, v.id.span(), format!("duplicate consent {id:?}"));
                continue;
            }
            let tp = tp_by_id.get(v.originator.get_ref()).copied();
            if tp.is_none() {
                r.at(
                    c.file,
                    v.originator.span(),
                    format!("consent {id:?} is for unknown originator {:?}: declare it as a [[third_party]]", v.originator.get_ref()),
                );
            }
            let ag = agency_by_name.get(v.to_agency.get_ref()).copied();
            if ag.is_none() {
                r.at(
                    c.file,
                    v.to_agency.span(),
                    format!(
                        "consent {id:?} names unknown agency {:?}",
                        v.to_agency.get_ref()
                    ),
                );
            }
            let max = level(&v.max_level, "max_level", c.file, &mut r);
            let mut mask = 0u8;
            let mut handling_list: Vec<String> = Vec::new();
            match (&v.handling, &v.max_handling) {
                (None, None) => r.at(
                    c.file,
                    c.span.clone(),
                    format!("consent {id:?} names no handling code: list the codes released material must carry (`handling = [\"H2\"]`) or the highest one (`max_handling = \"H2\"`)"),
                ),
                (Some(_), Some(m)) => r.at(
                    c.file,
                    m.span(),
                    format!("consent {id:?} has both `handling` and `max_handling`: give one"),
                ),
                (Some(hs), None) => {
                    if hs.get_ref().is_empty() {
                        r.at(
                            c.file,
                            hs.span(),
                            format!("consent {id:?} lists no handling code"),
                        );
                    }
                    for h in hs.get_ref() {
                        match handling_bit(h.get_ref()) {
                            Some(b) => {
                                mask |= b;
                                handling_list.push(h.get_ref().clone());
                            }
                            None => r.at(
                                c.file,
                                h.span(),
                                format!(
                                    "handling code {:?} is not one of H0, H1, H2, H3",
                                    h.get_ref()
                                ),
                            ),
                        }
                    }
                }
                (None, Some(m)) => match handling_bit(m.get_ref()) {
                    // Every code up to and including the ceiling.
                    Some(b) => {
                        mask = (b << 1) - 1;
                        handling_list = HANDLING_CODES
                            .iter()
                            .take(b.trailing_zeros() as usize + 1)
                            .map(|c| c.to_string())
                            .collect();
                    }
                    None => r.at(
                        c.file,
                        m.span(),
                        format!(
                            "consent {id:?}: max_handling {:?} is not one of H0, H1, H2, H3",
                            m.get_ref()
                        ),
                    ),
                },
            }
            let until = match &v.until {
                None => {
                    r.at(
                        c.file,
                        v.id.span(),
                        format!("consent {id:?} has no expiry: every consent needs `until = YYYY-MM-DD`"),
                    );
                    None
                }
                Some(u) => match datetime_to_unix(u.get_ref(), true) {
                    Ok(t) => Some(t),
                    Err(e) => {
                        r.at(
                            c.file,
                            u.span(),
                            format!("consent {id:?}: invalid expiry: {e}"),
                        );
                        None
                    }
                },
            };
            let (Some(tp_idx), Some(agency_idx), Some(max_rank), Some(until_unix)) =
                (tp, ag, max, until)
            else {
                continue;
            };
            compiled_consents.push(Consent {
                id: id.clone(),
                originator: v.originator.get_ref().clone(),
                to_agency: bindings[agency_idx as usize].agency.clone(),
                max_level: compiled_levels[max_rank as usize].id.clone(),
                handling: handling_list,
                max_handling: v.max_handling.as_ref().map(|m| m.get_ref().clone()),
                until_unix,
                reference: v.reference.clone(),
                tp_idx,
                agency_idx,
                max_rank,
                handling_mask: mask,
            });
        }
        compiled_consents.sort_by(|a, b| a.id.cmp(&b.id));
        let mut consents_by_tp = vec![Vec::new(); tps.len()];
        for (i, c) in compiled_consents.iter().enumerate() {
            consents_by_tp[c.tp_idx as usize].push(i as u32);
        }

        // --- answer deadlines ---------------------------------------------
        let mut compiled_deadlines: Vec<Deadline> = Vec::new();
        let mut deadline_keys: HashMap<String, (usize, Range<usize>)> = HashMap::default();
        for d in &deadlines {
            let v = &d.value;
            let before = r.diags.len();
            let priority = v.priority.get_ref().to_ascii_uppercase();
            if !matches!(priority.as_str(), "FLASH" | "URGENT" | "ROUTINE") {
                r.at(
                    d.file,
                    v.priority.span(),
                    format!(
                        "deadline: priority {:?} is not FLASH, URGENT or ROUTINE",
                        v.priority.get_ref()
                    ),
                );
            }
            let accessibility = match &v.accessibility {
                None => None,
                Some(a) => match a.get_ref().parse::<Accessibility>() {
                    Ok(x) => Some(x),
                    Err(e) => {
                        r.at(d.file, a.span(), format!("deadline: {e}"));
                        None
                    }
                },
            };
            let mut purpose_mask = None;
            let mut purpose_list = None;
            if let Some(ps) = &v.purposes {
                if ps.get_ref().is_empty() {
                    r.at(d.file, ps.span(), "deadline: `purposes` is an empty list");
                }
                let mut m: Mask = 0;
                let mut list = Vec::new();
                for p in ps.get_ref() {
                    match purpose_by_name.get(p.get_ref()) {
                        Some(&b) => {
                            m |= 1 << b;
                            list.push(p.get_ref().clone());
                        }
                        None => r.at(
                            d.file,
                            p.span(),
                            format!("deadline: unknown purpose {:?}", p.get_ref()),
                        ),
                    }
                }
                list.sort();
                purpose_mask = Some(m);
                purpose_list = Some(list);
            }
            let within = match parse_duration(v.within.get_ref()) {
                Ok(t) => t,
                Err(e) => {
                    r.at(d.file, v.within.span(), format!("deadline: {e}"));
                    0
                }
            };
            if r.diags.len() != before {
                continue;
            }
            let key = format!("{priority} {accessibility:?} {purpose_list:?}");
            if let Some((ff, fs)) = deadline_keys.get(&key) {
                let first = r.location(*ff, fs);
                r.at(
                    d.file,
                    d.span.clone(),
                    format!("a second deadline for the same requests (first declared at {first})"),
                );
                continue;
            }
            deadline_keys.insert(key, (d.file, d.span.clone()));
            compiled_deadlines.push(Deadline {
                priority,
                accessibility,
                purposes: purpose_list,
                within_secs: within,
                source: "policy",
                purpose_mask,
            });
        }
        compiled_deadlines.sort_by(|a, b| {
            (&a.priority, a.accessibility, &a.purposes, a.within_secs).cmp(&(
                &b.priority,
                b.accessibility,
                &b.purposes,
                b.within_secs,
            ))
        });
        compiled_deadlines.extend(default_deadlines());

        // --- rules ---------------------------------------------------------
        let n = compiled_principals.len();
        let mut compiled_rules: Vec<(Rule, Vec<u64>, Vec<u64>)> = Vec::new();
        let mut rule_first: HashMap<String, (usize, Range<usize>)> = HashMap::default();
        rules.sort_by_key(|l| (l.file, l.span.start));
        for l in &rules {
            let (effect, v) = (&l.value.0, &l.value.1);
            let f = l.file;
            let id = v.id.get_ref();
            if !valid_name(id, 128) || id.contains(char::is_whitespace) {
                r.at(
                    f,
                    v.id.span(),
                    "a rule id must be 1-128 characters without spaces",
                );
                continue;
            }
            if id.starts_with("mandatory.") || id.starts_with("default.") {
                r.at(
                    f,
                    v.id.span(),
                    format!("rule id {id:?} uses a reserved prefix (mandatory., default.)"),
                );
                continue;
            }
            if let Some((ff, fs)) = rule_first.get(id) {
                let first = r.location(*ff, fs);
                r.at(
                    f,
                    v.id.span(),
                    format!("duplicate rule id {id:?} (first declared at {first})"),
                );
                continue;
            }
            rule_first.insert(id.clone(), (f, v.id.span()));
            let before = r.diags.len();
            let selector = |sel: &S<RawSelector>,
                            side: &str,
                            r: &mut Reporter|
             -> (Selector, Vec<u64>) {
                let s = sel.get_ref();
                for a in &s.agencies {
                    if !agency_by_name.contains_key(a.get_ref()) {
                        r.at(
                            f,
                            a.span(),
                            format!("rule {id:?}: unknown agency {:?} in `{side}`", a.get_ref()),
                        );
                    }
                }
                for ro in &s.roles {
                    if !roles.contains(ro.get_ref().as_str()) {
                        r.at(
                            f,
                            ro.span(),
                            format!(
                                "rule {id:?}: no principal has role {:?} (in `{side}`)",
                                ro.get_ref()
                            ),
                        );
                    }
                }
                for p in &s.principals {
                    if !principal_by_id.contains_key(p.get_ref()) {
                        r.at(
                            f,
                            p.span(),
                            format!(
                                "rule {id:?}: unknown principal {:?} in `{side}`",
                                p.get_ref()
                            ),
                        );
                    }
                }
                let mut set = vec![0u64; n.div_ceil(64)];
                let mut any = false;
                for (i, p) in compiled_principals.iter().enumerate() {
                    let ok = (s.agencies.is_empty()
                        || s.agencies.iter().any(|a| a.get_ref() == p.agency.as_str()))
                        && (s.roles.is_empty() || s.roles.iter().any(|x| *x.get_ref() == p.role))
                        && (s.principals.is_empty()
                            || s.principals.iter().any(|x| x.get_ref() == p.id.as_str()));
                    if ok {
                        set[i / 64] |= 1 << (i % 64);
                        any = true;
                    }
                }
                let strs =
                    |v: &Vec<S<String>>| v.iter().map(|x| x.get_ref().clone()).collect::<Vec<_>>();
                let compiled = Selector {
                    agencies: strs(&s.agencies),
                    roles: strs(&s.roles),
                    principals: strs(&s.principals),
                };
                if !any {
                    r.at(
                        f,
                        sel.span(),
                        format!(
                            "rule {id:?} can never match: no declared principal matches `{side}`"
                        ),
                    );
                }
                (compiled, set)
            };
            let (from, senders) = selector(&v.from, "from", &mut r);
            let selects_some = senders.iter().any(|w| *w != 0);
            let selects_a_sender = compiled_principals
                .iter()
                .enumerate()
                .any(|(i, p)| p.may_send && bit(&senders, i as u32));
            if *effect == RuleEffect::Grant && selects_some && !selects_a_sender {
                r.at(
                    f,
                    v.from.span(),
                    format!(
                        "rule {id:?} can never match: no principal it selects in `from` may send (may_send = false)"
                    ),
                );
            }
            let (to, recipients) = selector(&v.to, "to", &mut r);

            let nonempty = |list: &S<Vec<S<String>>>, what: &str, r: &mut Reporter| {
                if list.get_ref().is_empty() {
                    r.at(
                        f,
                        list.span(),
                        format!("rule {id:?} can never match: `{what}` is an empty list"),
                    );
                }
            };
            let mut c = CompiledRule::default();
            if let Some(ps) = &v.purposes {
                nonempty(ps, "purposes", &mut r);
                let mut m: Mask = 0;
                for p in ps.get_ref() {
                    match purpose_by_name.get(p.get_ref()) {
                        Some(&b) => m |= 1 << b,
                        None => r.at(
                            f,
                            p.span(),
                            format!("rule {id:?}: unknown purpose {:?}", p.get_ref()),
                        ),
                    }
                }
                c.purposes = Some(m);
            }
            if let Some(ps) = &v.priorities {
                nonempty(ps, "priorities", &mut r);
                let mut m = 0u8;
                for p in ps.get_ref() {
                    match p.get_ref().as_str() {
                        "FLASH" => m |= 1,
                        "URGENT" => m |= 2,
                        "ROUTINE" => m |= 4,
                        other => r.at(
                            f,
                            p.span(),
                            format!(
                                "rule {id:?}: priority {other:?} is not FLASH, URGENT or ROUTINE"
                            ),
                        ),
                    }
                }
                c.priorities = Some(m);
            }
            if let Some(hs) = &v.handling {
                nonempty(hs, "handling", &mut r);
                let mut m = 0u8;
                for h in hs.get_ref() {
                    if h.get_ref() == "none" {
                        m |= 1 << 4;
                    } else if let Some(b) = handling_bit(h.get_ref()) {
                        m |= b;
                    } else {
                        r.at(
                            f,
                            h.span(),
                            format!(
                                "rule {id:?}: handling {:?} is not H0, H1, H2, H3 or none",
                                h.get_ref()
                            ),
                        );
                    }
                }
                c.handling = Some(m);
            }
            c.min_rank = v
                .min_level
                .as_ref()
                .and_then(|x| level(x, "min_level", f, &mut r));
            c.max_rank = v
                .max_level
                .as_ref()
                .and_then(|x| level(x, "max_level", f, &mut r));
            if let (Some(lo), Some(hi)) = (c.min_rank, c.max_rank) {
                if lo > hi {
                    r.at(
                        f,
                        l.span.clone(),
                        format!("rule {id:?} can never match: min_level is above max_level"),
                    );
                }
            }
            if let Some(cs) = &v.caveats_any {
                nonempty(cs, "caveats_any", &mut r);
                let mut m: Mask = 0;
                for cv in cs.get_ref() {
                    match caveat_by_name.get(cv.get_ref()) {
                        Some(&b) => m |= 1 << b,
                        None => r.at(
                            f,
                            cv.span(),
                            format!("rule {id:?}: unknown caveat {:?}", cv.get_ref()),
                        ),
                    }
                }
                c.caveats_any = Some(m);
            }
            let case_assignment = match &v.case_assignment {
                None => None,
                Some(s) => match s.get_ref().as_str() {
                    "recipient" => Some(CaseAssignment::Recipient),
                    "sender" => Some(CaseAssignment::Sender),
                    "both" => Some(CaseAssignment::Both),
                    other => {
                        r.at(f, s.span(), format!("rule {id:?}: case_assignment {other:?} is not recipient, sender or both"));
                        None
                    }
                },
            };
            // Both readings of "for a case of the recipient" are
            // legitimate, so the rule must say which one it means.
            let case_match = match (&v.case_assignment, &v.case_match) {
                (_, Some(m)) if !matches!(m.get_ref().as_str(), "all" | "any") => {
                    r.at(
                        f,
                        m.span(),
                        format!(
                            "rule {id:?}: case_match {:?} is not all or any",
                            m.get_ref()
                        ),
                    );
                    None
                }
                (None, Some(m)) => {
                    r.at(
                        f,
                        m.span(),
                        format!("rule {id:?}: case_match without case_assignment says nothing; add case_assignment"),
                    );
                    None
                }
                (Some(a), None) => {
                    r.at(
                        f,
                        a.span(),
                        format!("rule {id:?}: case_assignment needs case_match = \"all\" (assigned to every case the item names) or \"any\" (to at least one of them)"),
                    );
                    None
                }
                (Some(_), Some(m)) if m.get_ref() == "any" => Some(CaseMatch::Any),
                (Some(_), Some(_)) => Some(CaseMatch::All),
                (None, None) => None,
            };
            if let Some(os) = &v.originators {
                nonempty(os, "originators", &mut r);
                for o in os.get_ref() {
                    if let Some(&ai) = agency_by_name.get(o.get_ref()) {
                        c.origin_agencies.push(ai);
                    } else if let Some(&ti) = tp_by_id.get(o.get_ref()) {
                        c.origin_third_parties.push(ti);
                    } else {
                        r.at(
                            f,
                            o.span(),
                            format!(
                                "rule {id:?}: originator {:?} is neither an agency nor a declared third party",
                                o.get_ref()
                            ),
                        );
                    }
                }
            }
            if let Some(rs) = &v.rel_to {
                nonempty(rs, "rel_to", &mut r);
                let mut ags = Vec::new();
                let mut none = false;
                for a in rs.get_ref() {
                    if a.get_ref() == "none" {
                        none = true;
                    } else if let Some(&ai) = agency_by_name.get(a.get_ref()) {
                        ags.push(bindings[ai as usize].agency.clone());
                    } else {
                        r.at(
                            f,
                            a.span(),
                            format!(
                                "rule {id:?}: rel_to {:?} is not an agency (or \"none\": no REL TO)",
                                a.get_ref()
                            ),
                        );
                    }
                }
                c.rel_to = Some((ags, none));
            }
            if v.diffusion_restreinte == Some(true) && dr_marking.is_none() {
                r.at(
                    f,
                    l.span.clone(),
                    format!("rule {id:?} can never match: no label may carry Diffusion restreinte until the policy declares the [[marking]] {DIFFUSION_RESTREINTE:?}"),
                );
            }
            if let Some(cs) = &v.cases {
                nonempty(cs, "cases", &mut r);
                let mut ids = Vec::new();
                for cv in cs.get_ref() {
                    match case_by_id.get(&normalize_case(cv.get_ref())) {
                        Some(&ci) => ids.push(ci),
                        None => r.at(
                            f,
                            cv.span(),
                            format!("rule {id:?}: unknown case {:?}", cv.get_ref()),
                        ),
                    }
                }
                ids.sort_unstable();
                ids.dedup();
                c.cases = Some(ids);
            }
            // A grant for levels no matched recipient may ever hold releases nothing.
            if *effect == RuleEffect::Grant {
                if let Some(lo) = c.min_rank {
                    let top = compiled_principals
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| bit(&recipients, *i as u32))
                        .map(|(_, p)| p.ceiling())
                        .max();
                    if top.is_some_and(|t| t < lo) {
                        r.at(
                            f,
                            l.span.clone(),
                            format!("rule {id:?} can never release anything: min_level is above the ceiling of every recipient it selects"),
                        );
                    }
                }
            }
            if r.diags.len() != before {
                continue;
            }
            let names = |o: &Option<S<Vec<S<String>>>>| {
                o.as_ref().map(|v| {
                    v.get_ref()
                        .iter()
                        .map(|x| x.get_ref().clone())
                        .collect::<Vec<_>>()
                })
            };
            compiled_rules.push((
                Rule {
                    id: id.clone(),
                    effect: *effect,
                    description: v.description.clone(),
                    from,
                    to,
                    purposes: names(&v.purposes),
                    priorities: names(&v.priorities),
                    handling: names(&v.handling),
                    min_level: c.min_rank.map(|x| compiled_levels[x as usize].id.clone()),
                    max_level: c.max_rank.map(|x| compiled_levels[x as usize].id.clone()),
                    caveats_any: names(&v.caveats_any),
                    third_party: v.third_party,
                    case_assignment,
                    case_match,
                    cases: names(&v.cases),
                    originators: names(&v.originators),
                    rel_to: names(&v.rel_to),
                    diffusion_restreinte: v.diffusion_restreinte,
                    c,
                },
                recipients,
                senders,
            ));
        }

        if !r.diags.is_empty() {
            return Err(Diagnostics(r.diags));
        }

        compiled_rules.sort_by(|a, b| a.0.id.cmp(&b.0.id));
        let rule_words = compiled_rules.len().div_ceil(64);
        let mut rules_by_sender = vec![0u64; n * rule_words];
        for (ri, (_, _, senders)) in compiled_rules.iter().enumerate() {
            for pi in 0..n {
                if bit(senders, pi as u32) {
                    rules_by_sender[pi * rule_words + ri / 64] |= 1 << (ri % 64);
                }
            }
        }
        let mut rules_by_recipient: Vec<Vec<u32>> = vec![Vec::new(); n];
        for effect in [RuleEffect::Deny, RuleEffect::Grant] {
            for (ri, (rule, recips, _)) in compiled_rules.iter().enumerate() {
                if rule.effect != effect {
                    continue;
                }
                for (pi, slot) in rules_by_recipient.iter_mut().enumerate() {
                    if bit(recips, pi as u32) {
                        slot.push(ri as u32);
                    }
                }
            }
        }
        let compiled_rules: Vec<Rule> = compiled_rules.into_iter().map(|(r, _, _)| r).collect();

        let mut sorted_caveats: Vec<&String> = caveat_names.iter().collect();
        sorted_caveats.sort();
        let mut sorted_purposes: Vec<&String> = purpose_names.iter().collect();
        sorted_purposes.sort();
        let mut sorted_cases: Vec<(&String, &String)> =
            case_names.iter().zip(case_purposes.iter()).collect();
        sorted_cases.sort();
        let mut sorted_bindings = bindings.clone();
        sorted_bindings.sort_by(|a, b| a.agency.cmp(&b.agency));
        let mut sorted_tps = tps.clone();
        sorted_tps.sort_by(|a, b| a.id.cmp(&b.id));
        let canonical = Canonical {
            format: "passerelle-policy/3",
            scheme: &scheme_name,
            levels: &compiled_levels,
            caveats: sorted_caveats,
            purposes: sorted_purposes,
            cases: sorted_cases,
            agencies: &sorted_bindings,
            principals: &compiled_principals,
            third_parties: &sorted_tps,
            consents: &compiled_consents,
            rules: &compiled_rules,
            markings: &compiled_markings,
            deadlines: &compiled_deadlines,
        };
        let digest = sha256(&to_cbor(&canonical));

        Ok(Policy {
            scheme_name,
            digest,
            digest_hex: hex::encode(digest),
            levels: compiled_levels,
            level_by_name,
            caveats: caveat_names,
            caveat_by_name,
            purposes: purpose_names,
            purpose_by_name,
            cases: case_names,
            case_by_id,
            markings: compiled_markings,
            diffusion_restreinte: dr_marking,
            deadlines: compiled_deadlines,
            agencies: bindings,
            agency_by_name,
            principals: compiled_principals,
            principal_by_id,
            third_parties: tps,
            third_party_by_id: tp_by_id,
            consents: compiled_consents,
            consents_by_tp,
            rules: compiled_rules,
            rules_by_recipient,
            rule_words,
            rules_by_sender,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
ca = "a/ca.pem"
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
            text.contains("mini.toml:28: principal b/y belongs to unknown agency b"),
            "{text}"
        );
        assert!(text.contains("mini.toml:29: kind \"robot\""), "{text}");
        assert!(
            text.contains("mini.toml:31: clearance \"MEDIUM\" is not a level"),
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
