//! The policy files as written: TOML tables deserialised with their spans.
//!
//! This module owns the shape of the files a security officer edits. Every
//! file in a policy directory has the same shape (any section may appear in
//! any file, so an officer can split the policy by concern), and unknown keys
//! are refused so that a typo is an error rather than a silently ignored rule.
//! It only describes; it never validates references (that is
//! [`super::load`]'s job) and never reads files.

// `description` fields are documentation for the readers of the files: they
// are parsed (so that a misspelt key is an error) but the engine ignores them.
#![allow(dead_code)]

use serde::Deserialize;
use toml::value::Datetime;
use toml::Spanned;

/// Shorthand: a value with the byte range it came from.
pub(crate) type S<T> = Spanned<T>;

/// One policy file. All sections are optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PolicyFile {
    #[serde(default)]
    pub scheme: Option<SchemeMeta>,
    #[serde(default)]
    pub level: Vec<S<RawLevel>>,
    #[serde(default)]
    pub caveat: Vec<S<RawNamed>>,
    #[serde(default)]
    pub handling: Vec<S<RawHandling>>,
    #[serde(default)]
    pub marking: Vec<S<RawMarking>>,
    #[serde(default)]
    pub purpose: Vec<S<RawNamed>>,
    #[serde(default)]
    pub case: Vec<S<RawCase>>,
    #[serde(default)]
    pub agency: Vec<S<RawAgency>>,
    #[serde(default)]
    pub principal: Vec<S<RawPrincipal>>,
    #[serde(default)]
    pub third_party: Vec<S<RawThirdParty>>,
    #[serde(default)]
    pub consent: Vec<S<RawConsent>>,
    #[serde(default)]
    pub grant: Vec<S<RawRule>>,
    #[serde(default)]
    pub deny: Vec<S<RawRule>>,
    #[serde(default)]
    pub deadline: Vec<S<RawDeadline>>,
}

/// `[scheme]`: the name of the classification scheme.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SchemeMeta {
    pub name: S<String>,
    #[serde(default)]
    pub description: Option<String>,
}

/// `[[level]]`: one classification level.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLevel {
    pub id: S<String>,
    pub rank: S<i64>,
    pub names: Vec<S<String>>,
    #[serde(default)]
    pub eu: Vec<S<String>>,
    #[serde(default)]
    pub nato: Vec<S<String>>,
    #[serde(default)]
    pub retention_days: Option<S<i64>>,
}

/// `[[caveat]]` and `[[purpose]]`: a declared name.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNamed {
    pub id: S<String>,
    #[serde(default)]
    pub description: Option<String>,
}

/// `[[handling]]`: documents a handling code.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHandling {
    pub code: S<String>,
    pub description: String,
}

/// `[[marking]]`: a purpose-bound marking that is not a level.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMarking {
    pub id: S<String>,
    pub names: Vec<S<String>>,
    /// The purposes the marked material may be used for; required (the
    /// loader reports its absence with the marking's line).
    #[serde(default)]
    pub purposes: Option<S<Vec<S<String>>>>,
    #[serde(default)]
    pub description: Option<String>,
}

/// `[[case]]`: a case reference principals can be assigned to.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCase {
    pub id: S<String>,
    pub purpose: S<String>,
    #[serde(default)]
    pub description: Option<String>,
}

/// `[[agency]]`: an agency and the CA it is bound to.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAgency {
    pub id: S<String>,
    #[serde(default)]
    pub name: Option<String>,
    /// Removed: the CA that issues an agency's certificates is bound in
    /// the gateway configuration only (`[[agency]] ca` in gateway.toml).
    /// Still parsed so that a policy written for an older version is
    /// refused with a message saying where the binding lives, not with
    /// "unknown field".
    #[serde(default)]
    pub ca: Option<S<toml::Value>>,
    pub trust_domain: S<String>,
}

/// `[[principal]]`: a desk, station or person.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPrincipal {
    pub id: S<String>,
    pub kind: S<String>,
    pub role: S<String>,
    pub clearance: S<String>,
    /// A level, or `none` for a principal that is not a station; required
    /// (the loader reports its absence with the principal's line).
    #[serde(default)]
    pub accreditation: Option<S<String>>,
    #[serde(default)]
    pub caveats: Vec<S<String>>,
    /// Case ids, or `["*"]` for every declared case.
    #[serde(default)]
    pub cases: Vec<S<String>>,
    /// Whether it may submit items; the loader gives the default by role.
    #[serde(default)]
    pub may_send: Option<bool>,
    /// Which audit proofs it may read (`all` or `own`); the loader gives the
    /// default by role.
    #[serde(default)]
    pub audit: Option<S<String>>,
    #[serde(default)]
    pub description: Option<String>,
}

/// `[[third_party]]`: a foreign partner service that originates material.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawThirdParty {
    pub id: S<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub country: Option<String>,
}

/// `[[consent]]`: a recorded consent of a third party to onward release.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConsent {
    pub id: S<String>,
    pub originator: S<String>,
    pub to_agency: S<String>,
    pub max_level: S<String>,
    /// The handling codes released material must carry (one of them)…
    #[serde(default)]
    pub handling: Option<S<Vec<S<String>>>>,
    /// … or the highest handling code, in the order H0 < H1 < H2 < H3
    /// (exactly one of the two).
    #[serde(default)]
    pub max_handling: Option<S<String>>,
    /// Required; its absence is reported by the loader with the consent's line.
    #[serde(default)]
    pub until: Option<S<Datetime>>,
    #[serde(default)]
    pub reference: Option<String>,
}

/// Who a rule applies to. Fields combine with AND, list entries with OR; an
/// empty selector matches every principal.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSelector {
    #[serde(default)]
    pub agencies: Vec<S<String>>,
    #[serde(default)]
    pub roles: Vec<S<String>>,
    #[serde(default)]
    pub principals: Vec<S<String>>,
}

/// `[[grant]]` and `[[deny]]`: a flow rule.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRule {
    pub id: S<String>,
    #[serde(default)]
    pub description: Option<String>,
    pub from: S<RawSelector>,
    pub to: S<RawSelector>,
    #[serde(default)]
    pub purposes: Option<S<Vec<S<String>>>>,
    #[serde(default)]
    pub priorities: Option<S<Vec<S<String>>>>,
    #[serde(default)]
    pub handling: Option<S<Vec<S<String>>>>,
    #[serde(default)]
    pub min_level: Option<S<String>>,
    #[serde(default)]
    pub max_level: Option<S<String>>,
    #[serde(default)]
    pub caveats_any: Option<S<Vec<S<String>>>>,
    #[serde(default)]
    pub third_party: Option<bool>,
    #[serde(default)]
    pub case_assignment: Option<S<String>>,
    /// With `case_assignment`: `all` the item's cases or `any` of them.
    #[serde(default)]
    pub case_match: Option<S<String>>,
    #[serde(default)]
    pub cases: Option<S<Vec<S<String>>>>,
    /// Agencies or third parties the portion originates from (any of).
    #[serde(default)]
    pub originators: Option<S<Vec<S<String>>>>,
    /// Agencies the portion's REL TO names (any of; `none`: no REL TO).
    #[serde(default)]
    pub rel_to: Option<S<Vec<S<String>>>>,
    /// Only portions marked Diffusion restreinte (true) or not (false).
    #[serde(default)]
    pub diffusion_restreinte: Option<bool>,
}

/// `[[deadline]]`: how long the recipient of a request has to answer it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDeadline {
    pub priority: S<String>,
    /// `direct` or `indirect`; absent: both.
    #[serde(default)]
    pub accessibility: Option<S<String>>,
    /// The request's purpose is one of these; absent: every purpose.
    #[serde(default)]
    pub purposes: Option<S<Vec<S<String>>>>,
    /// A duration: `45m`, `8h`, `3d`.
    pub within: S<String>,
    #[serde(default)]
    pub description: Option<String>,
}

/// A file of test cases in `tests/`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TestFile {
    /// Default decision time for the cases in this file.
    #[serde(default)]
    pub now: Option<S<Datetime>>,
    #[serde(default)]
    pub case: Vec<S<RawTestCase>>,
}

/// One test case, or (without `expect`) an item description for `explain`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTestCase {
    #[serde(default)]
    pub name: Option<String>,
    pub sender: S<String>,
    #[serde(default)]
    pub recipient: Option<S<String>>,
    #[serde(default = "default_purpose")]
    pub purpose: String,
    #[serde(default)]
    pub cases: Vec<String>,
    #[serde(default = "default_priority")]
    pub priority: S<String>,
    #[serde(default)]
    pub now: Option<S<Datetime>>,
    pub label: S<RawTestLabel>,
    #[serde(default)]
    pub portions: Option<Vec<S<RawTestLabel>>>,
    #[serde(default)]
    pub expect: Option<S<String>>,
    #[serde(default)]
    pub released: Option<Vec<u32>>,
    #[serde(default)]
    pub rules: Vec<S<String>>,
    #[serde(default)]
    pub not_rules: Vec<S<String>>,
    #[serde(default)]
    pub reasons: Vec<S<String>>,
    #[serde(default)]
    pub sender_reasons: Vec<S<String>>,
    /// One item, several recipients: an expectation for each (instead of
    /// `recipient` and the expectations above).
    #[serde(default)]
    pub outcomes: Vec<S<RawOutcome>>,
}

/// What a test case expects for one recipient.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawOutcome {
    pub recipient: S<String>,
    pub expect: S<String>,
    #[serde(default)]
    pub released: Option<Vec<u32>>,
    #[serde(default)]
    pub rules: Vec<S<String>>,
    #[serde(default)]
    pub not_rules: Vec<S<String>>,
    #[serde(default)]
    pub reasons: Vec<S<String>>,
    #[serde(default)]
    pub sender_reasons: Vec<S<String>>,
}

fn default_purpose() -> String {
    "terrorism".to_string()
}
fn default_priority() -> S<String> {
    Spanned::new(0..0, "ROUTINE".to_string())
}

/// A label in a test case.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTestLabel {
    pub level: String,
    pub originator: String,
    #[serde(default)]
    pub third_party: Option<String>,
    #[serde(default)]
    pub caveats: Vec<String>,
    #[serde(default)]
    pub rel_to: Vec<String>,
    #[serde(default)]
    pub handling: Option<String>,
    #[serde(default)]
    pub diffusion_restreinte: bool,
}
