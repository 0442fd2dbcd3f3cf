//! The security officer's tools: `check`, `test` and item descriptions for
//! `explain`.
//!
//! Test cases live beside the policy in `tests/*.toml`: each gives a sender,
//! a recipient, an item label and portions, the purpose, cases and priority,
//! the decision time, and the expected effect, released portions and rule
//! ids. [`run_test_sources`] runs every case through [`Policy::decide`] and
//! reports failures with file and line, and which flow and built-in rules no
//! case exercised; [`check_sources`] checks the cases without running them.
//! This module never reads files: `crate::policy_files` reads the policy
//! directory and its tests and hands their texts here.

use std::collections::{BTreeSet, HashSet};
use std::fmt;

use serde::Serialize;

use super::engine::rule_ids;
use super::load::{datetime_to_unix, Diagnostics, Reporter};
use super::model::{AuditScope, Policy};
use super::source::{RawTestCase, RawTestLabel, TestFile};
use crate::domain::bytes::Bytes;
use crate::domain::decision::{Effect, ItemFacts};
use crate::domain::item::{Header, Manifest, Priority, MANIFEST_VERSION};
use crate::domain::label::{HandlingCode, Originator, SecurityLabel};
use crate::domain::principal::{Agency, PrincipalId};
use crate::domain::receipt::RecipientOutcome;

/// An item described in TOML (a test case, or the `--item` of `explain`):
/// what the decider sees of it, without bodies.
#[derive(Clone, Debug)]
pub struct ItemSpec {
    /// The case name, when given.
    pub name: Option<String>,
    /// Header and item label, as a sender would sign them.
    pub manifest: Manifest,
    /// Each portion's label.
    pub portion_labels: Vec<SecurityLabel>,
    /// The recipient named in the file, if any.
    pub recipient: Option<PrincipalId>,
    /// The decision time named in the file, if any (Unix seconds, UTC).
    pub now: Option<i64>,
}

impl ItemSpec {
    /// The facts to hand to [`Policy::decide`] or [`Policy::explain`].
    pub fn facts(&self) -> ItemFacts<'_> {
        ItemFacts {
            manifest: &self.manifest,
            portion_labels: self.portion_labels.iter().collect(),
        }
    }

    /// Parses an item description: the keys of one test case at the top
    /// level of the file (`sender`, `label`, `portions`, `purpose`, …).
    pub fn from_toml(file_name: &str, text: &str) -> Result<ItemSpec, Diagnostics> {
        let files = [(file_name.to_string(), text.to_string())];
        let mut r = Reporter::new(&files);
        let raw: toml::Spanned<RawTestCase> = match toml::from_str(text) {
            Ok(v) => v,
            Err(e) => {
                r.parse_error(0, &e);
                return Err(Diagnostics(r.diags));
            }
        };
        let span = raw.span();
        match item_spec(&mut r, 0, span, raw.get_ref(), None) {
            Some(s) if r.diags.is_empty() => Ok(s),
            _ => Err(Diagnostics(r.diags)),
        }
    }
}

fn label(
    r: &mut Reporter,
    file: usize,
    span: std::ops::Range<usize>,
    l: &RawTestLabel,
) -> Option<SecurityLabel> {
    let agency = match Agency::new(l.originator.clone()) {
        Ok(a) => a,
        Err(e) => {
            r.at(file, span, e.to_string());
            return None;
        }
    };
    let mut rel_to = BTreeSet::new();
    for a in &l.rel_to {
        match Agency::new(a.clone()) {
            Ok(a) => {
                rel_to.insert(a);
            }
            Err(e) => {
                r.at(file, span.clone(), e.to_string());
                return None;
            }
        }
    }
    let handling = match l.handling.as_deref() {
        None => None,
        Some("H0") => Some(HandlingCode::H0),
        Some("H1") => Some(HandlingCode::H1),
        Some("H2") => Some(HandlingCode::H2),
        Some("H3") => Some(HandlingCode::H3),
        Some(other) => {
            r.at(
                file,
                span,
                format!("handling {other:?} is not H0, H1, H2 or H3"),
            );
            return None;
        }
    };
    Some(SecurityLabel {
        level: l.level.clone(),
        caveats: l.caveats.iter().cloned().collect(),
        rel_to,
        handling,
        diffusion_restreinte: l.diffusion_restreinte,
        originator: Originator {
            agency,
            third_party: l.third_party.clone(),
        },
        evaluation: None,
        review_date: None,
    })
}

fn item_spec(
    r: &mut Reporter,
    file: usize,
    span: std::ops::Range<usize>,
    c: &RawTestCase,
    default_now: Option<i64>,
) -> Option<ItemSpec> {
    let before = r.diags.len();
    let sender = PrincipalId::new(c.sender.get_ref().clone())
        .map_err(|e| r.at(file, c.sender.span(), e.to_string()))
        .ok();
    let recipient = match &c.recipient {
        None => None,
        Some(s) => PrincipalId::new(s.get_ref().clone())
            .map_err(|e| r.at(file, s.span(), e.to_string()))
            .ok(),
    };
    let priority: Option<Priority> = c
        .priority
        .get_ref()
        .parse()
        .map_err(|e: String| r.at(file, c.priority.span(), e))
        .ok();
    let now = match &c.now {
        Some(n) => test_time(n.get_ref())
            .map_err(|e| r.at(file, n.span(), format!("invalid time: {e}")))
            .ok(),
        None => default_now,
    };
    let item_label = label(r, file, c.label.span(), c.label.get_ref());
    let portion_labels: Vec<Option<SecurityLabel>> = match &c.portions {
        Some(ps) => ps
            .iter()
            .map(|p| label(r, file, p.span(), p.get_ref()))
            .collect(),
        None => vec![item_label.clone()],
    };
    if c.portions.as_ref().is_some_and(|p| p.is_empty()) {
        r.at(
            file,
            span.clone(),
            "`portions` is empty: an item has at least one portion",
        );
    }
    if r.diags.len() != before {
        return None;
    }
    let (Some(sender), Some(priority), Some(item_label)) = (sender, priority, item_label) else {
        return None;
    };
    let portion_labels: Vec<SecurityLabel> = portion_labels.into_iter().flatten().collect();
    let created = now.unwrap_or(0);
    let manifest =
        Manifest {
            version: MANIFEST_VERSION,
            header: Header {
                id: "policy-test".into(),
                sender,
                recipients: recipient
                    .iter()
                    .cloned()
                    .chain(c.outcomes.iter().filter_map(|o| {
                        PrincipalId::new(o.get_ref().recipient.get_ref().clone()).ok()
                    }))
                    .collect(),
                created,
                priority,
                purpose: c.purpose.clone(),
                cases: c.cases.clone(),
                language: "fr".into(),
                expires: None,
                request: None,
                in_reply_to: None,
            },
            label: item_label,
            portions: portion_labels.iter().map(|_| Bytes(vec![0; 32])).collect(),
        };
    Some(ItemSpec {
        name: c.name.clone(),
        manifest,
        portion_labels,
        recipient,
        now,
    })
}

/// A test case whose outcome differed from the expected one, for one
/// recipient.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TestFailure {
    /// File in `tests/`.
    pub file: String,
    /// Line of the case (of its outcome, for a case with `outcomes`).
    pub line: usize,
    /// The case's name.
    pub name: String,
    /// The recipient the failed expectation is about.
    pub recipient: String,
    /// The expected effect.
    pub expected: Effect,
    /// The effect the policy gave.
    pub observed: Effect,
    /// The portions the policy released.
    pub released: Vec<u32>,
    /// The rules named in the decision (those that matched or refused).
    pub rules: Vec<String>,
    /// What differed.
    pub problems: Vec<String>,
    /// The reasons the engine gave.
    pub reasons: Vec<String>,
}

/// The result of running a policy's test cases.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TestReport {
    /// Decisions checked: one per case, or one per outcome of a case with
    /// several recipients.
    pub cases: usize,
    /// Decisions that were as expected.
    pub passed: usize,
    /// Decisions that were not.
    pub failures: Vec<TestFailure>,
    /// Flow rules and built-in rules that no case exercised.
    pub uncovered_rules: Vec<String>,
    /// Digest of the policy under test.
    pub policy_digest: String,
}

impl TestReport {
    /// Whether every case passed.
    pub fn ok(&self) -> bool {
        self.failures.is_empty()
    }
}

fn effect_word(e: Effect) -> &'static str {
    match e {
        Effect::Allow => "allow",
        Effect::Deny => "deny",
    }
}

impl fmt::Display for TestReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for t in &self.failures {
            writeln!(
                f,
                "FAIL {}:{}: {} (to {})",
                t.file, t.line, t.name, t.recipient
            )?;
            writeln!(
                f,
                "  expected {}, observed {}: portions {:?} released; rules [{}]",
                effect_word(t.expected),
                effect_word(t.observed),
                t.released,
                t.rules.join(", ")
            )?;
            for p in &t.problems {
                writeln!(f, "  {p}")?;
            }
            for r in &t.reasons {
                writeln!(f, "  reason: {r}")?;
            }
        }
        if !self.uncovered_rules.is_empty() {
            writeln!(
                f,
                "rules no case exercises: {}",
                self.uncovered_rules.join(", ")
            )?;
        }
        writeln!(f, "policy digest {}", self.policy_digest)?;
        write!(f, "{} passed, {} failed", self.passed, self.failures.len())
    }
}

/// What one case expects for one recipient.
struct Expectation {
    line: usize,
    recipient: PrincipalId,
    expect: Effect,
    released: Option<Vec<u32>>,
    rules: Vec<String>,
    not_rules: Vec<String>,
    reasons: Vec<String>,
    sender_reasons: Vec<String>,
}

struct ParsedCase {
    file: usize,
    spec: ItemSpec,
    now: i64,
    outcomes: Vec<Expectation>,
}

/// A decision time in a test file: a date and a time of day with its
/// offset, so that no one has to guess which moment a bare date means.
fn test_time(dt: &toml::value::Datetime) -> Result<i64, String> {
    if dt.date.is_none() {
        return Err("a date is required, not a bare time".into());
    }
    if dt.time.is_none() {
        return Err(format!(
            "{dt} is a date without a time of day: write the moment, e.g. {dt}T12:00:00Z"
        ));
    }
    if dt.offset.is_none() {
        return Err(format!(
            "{dt} has no offset: write Z for UTC (e.g. {dt}Z) or +01:00"
        ));
    }
    datetime_to_unix(dt, false)
}

#[allow(clippy::too_many_arguments)]
fn expectation(
    r: &mut Reporter,
    known: &HashSet<&str>,
    fi: usize,
    line: usize,
    recipient: &toml::Spanned<String>,
    expect: Option<&toml::Spanned<String>>,
    case_span: std::ops::Range<usize>,
    released: &Option<Vec<u32>>,
    rules: &[toml::Spanned<String>],
    not_rules: &[toml::Spanned<String>],
    reasons: &[toml::Spanned<String>],
    sender_reasons: &[toml::Spanned<String>],
) -> Option<Expectation> {
    let recipient = PrincipalId::new(recipient.get_ref().clone())
        .map_err(|e| r.at(fi, recipient.span(), e.to_string()))
        .ok();
    let expect = match expect.map(|e| (e.get_ref().as_str(), e.span())) {
        Some(("allow", _)) => Some(Effect::Allow),
        Some(("deny", _)) => Some(Effect::Deny),
        Some((other, s)) => {
            r.at(fi, s, format!("expect {other:?} is neither allow nor deny"));
            None
        }
        None => {
            r.at(
                fi,
                case_span,
                "a test case needs `expect = \"allow\"` or `\"deny\"`",
            );
            None
        }
    };
    for id in rules.iter().chain(not_rules) {
        if !known.contains(id.get_ref().as_str()) {
            r.at(fi, id.span(), format!("unknown rule id {:?}", id.get_ref()));
        }
    }
    for id in not_rules {
        if rules.iter().any(|x| x.get_ref() == id.get_ref()) {
            r.at(
                fi,
                id.span(),
                format!(
                    "rule {:?} is both in `rules` and in `not_rules`",
                    id.get_ref()
                ),
            );
        }
    }
    for t in reasons.iter().chain(sender_reasons) {
        if t.get_ref().trim().is_empty() {
            r.at(fi, t.span(), "an expected reason must not be empty");
        }
    }
    let strs = |v: &[toml::Spanned<String>]| v.iter().map(|x| x.get_ref().clone()).collect();
    Some(Expectation {
        line,
        recipient: recipient?,
        expect: expect?,
        released: released.clone(),
        rules: strs(rules),
        not_rules: strs(not_rules),
        reasons: strs(reasons),
        sender_reasons: strs(sender_reasons),
    })
}

fn parse_tests(
    policy: &Policy,
    files: &[(String, String)],
) -> Result<Vec<ParsedCase>, Diagnostics> {
    let mut r = Reporter::new(files);
    let known: HashSet<&str> = policy
        .rules()
        .iter()
        .map(|x| x.id.as_str())
        .chain(rule_ids::ALL)
        .collect();
    let mut out = Vec::new();
    for (fi, (_, text)) in files.iter().enumerate() {
        let tf: TestFile = match toml::from_str(text) {
            Ok(t) => t,
            Err(e) => {
                r.parse_error(fi, &e);
                continue;
            }
        };
        let default_now = match &tf.now {
            Some(n) => match test_time(n.get_ref()) {
                Ok(t) => Some(t),
                Err(e) => {
                    r.at(fi, n.span(), format!("invalid time: {e}"));
                    None
                }
            },
            None => None,
        };
        for c in &tf.case {
            let span = c.span();
            let v = c.get_ref();
            let line = super::load::line_of(text, span.start);
            if v.name.is_none() {
                r.at(fi, span.clone(), "a test case needs a `name`");
            }
            let mut outcomes = Vec::new();
            let single = v.recipient.is_some()
                || v.expect.is_some()
                || v.released.is_some()
                || !v.rules.is_empty()
                || !v.not_rules.is_empty()
                || !v.reasons.is_empty()
                || !v.sender_reasons.is_empty();
            if !v.outcomes.is_empty() {
                if single {
                    r.at(
                        fi,
                        span.clone(),
                        "a test case has either `recipient` with its expectations, or `outcomes` (one per recipient), not both",
                    );
                    continue;
                }
                let mut seen = HashSet::new();
                for o in &v.outcomes {
                    let ov = o.get_ref();
                    if !seen.insert(ov.recipient.get_ref().clone()) {
                        r.at(
                            fi,
                            ov.recipient.span(),
                            format!(
                                "recipient {} has two outcomes in this case",
                                ov.recipient.get_ref()
                            ),
                        );
                    }
                    outcomes.extend(expectation(
                        &mut r,
                        &known,
                        fi,
                        super::load::line_of(text, o.span().start),
                        &ov.recipient,
                        Some(&ov.expect),
                        o.span(),
                        &ov.released,
                        &ov.rules,
                        &ov.not_rules,
                        &ov.reasons,
                        &ov.sender_reasons,
                    ));
                }
            } else {
                let Some(rcp) = &v.recipient else {
                    r.at(
                        fi,
                        span.clone(),
                        "a test case needs a `recipient` (or `outcomes`, one per recipient)",
                    );
                    continue;
                };
                outcomes.extend(expectation(
                    &mut r,
                    &known,
                    fi,
                    line,
                    rcp,
                    v.expect.as_ref(),
                    span.clone(),
                    &v.released,
                    &v.rules,
                    &v.not_rules,
                    &v.reasons,
                    &v.sender_reasons,
                ));
            }
            let Some(spec) = item_spec(&mut r, fi, span.clone(), v, default_now) else {
                continue;
            };
            let Some(now) = spec.now else {
                r.at(
                    fi,
                    span.clone(),
                    "no decision time: set `now` on the case or at the top of the file",
                );
                continue;
            };
            out.push(ParsedCase {
                file: fi,
                spec,
                now,
                outcomes,
            });
        }
    }
    if r.diags.is_empty() {
        Ok(out)
    } else {
        Err(Diagnostics(r.diags))
    }
}

/// Runs test files `(name, text)` against a compiled policy. Pure.
pub fn run_test_sources(
    policy: &Policy,
    files: &[(String, String)],
) -> Result<TestReport, Diagnostics> {
    let cases = parse_tests(policy, files)?;
    let mut covered: HashSet<String> = HashSet::new();
    let mut failures = Vec::new();
    let mut checked = 0;
    for c in &cases {
        for x in &c.outcomes {
            checked += 1;
            let d = policy.decide(&c.spec.facts(), &x.recipient, c.now);
            covered.extend(d.rules().iter().cloned());
            let mut problems = Vec::new();
            let got = if d.allowed() {
                Effect::Allow
            } else {
                Effect::Deny
            };
            if got != x.expect {
                problems.push(format!(
                    "expected {}, got {}",
                    effect_word(x.expect),
                    effect_word(got)
                ));
            }
            if let Some(want) = &x.released {
                if *want != d.portions() {
                    problems.push(format!(
                        "expected portions {want:?} released, got {:?}",
                        d.portions()
                    ));
                }
            }
            for id in &x.rules {
                if !d.rules().contains(id) {
                    problems.push(format!("expected rule {id} in the decision; it is not"));
                }
            }
            for id in &x.not_rules {
                if d.rules().contains(id) {
                    problems.push(format!(
                        "expected rule {id} not to be in the decision; it is"
                    ));
                }
            }
            for want in &x.reasons {
                if !d.reasons().iter().any(|r| r.contains(want.as_str())) {
                    problems.push(format!("expected a reason containing {want:?}"));
                }
            }
            if !x.sender_reasons.is_empty() {
                let seen = RecipientOutcome::for_sender(&d).reasons;
                for want in &x.sender_reasons {
                    if !seen.iter().any(|r| r.contains(want.as_str())) {
                        problems.push(format!(
                            "expected a reason shown to the sender containing {want:?}; the sender is shown: {}",
                            if seen.is_empty() { "nothing".to_string() } else { seen.join(" | ") }
                        ));
                    }
                }
            }
            if !problems.is_empty() {
                failures.push(TestFailure {
                    file: files.get(c.file).map(|f| f.0.clone()).unwrap_or_default(),
                    line: x.line,
                    name: c.spec.name.clone().unwrap_or_default(),
                    recipient: x.recipient.to_string(),
                    expected: x.expect,
                    observed: got,
                    released: d.portions().to_vec(),
                    rules: d.rules().to_vec(),
                    problems,
                    reasons: d.reasons().to_vec(),
                });
            }
        }
    }
    let mut uncovered: Vec<String> = policy
        .rules()
        .iter()
        .map(|x| x.id.clone())
        .chain(rule_ids::ALL.iter().map(|s| s.to_string()))
        .filter(|id| !covered.contains(id))
        .collect();
    uncovered.sort();
    Ok(TestReport {
        cases: checked,
        passed: checked - failures.len(),
        failures,
        uncovered_rules: uncovered,
        policy_digest: policy.digest_hex().to_string(),
    })
}

/// What `passerelle policy check` reports for a valid policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CheckReport {
    /// The policy's digest.
    pub policy_digest: String,
    /// Number of levels in the scheme.
    pub levels: usize,
    /// Number of agencies.
    pub agencies: usize,
    /// Number of principals.
    pub principals: usize,
    /// Number of third parties.
    pub third_parties: usize,
    /// Number of consents.
    pub consents: usize,
    /// Number of flow rules.
    pub rules: usize,
    /// Number of test cases found (parsed and checked, not run).
    pub test_cases: usize,
    /// Principals that may not submit items (`may_send = false`).
    pub may_not_send: Vec<String>,
    /// Principals that read every audit proof (`audit = "all"`).
    pub read_whole_log: Vec<String>,
    /// The answer deadlines in force, one line each (the policy's, then
    /// the defaults).
    pub deadlines: Vec<String>,
}

/// Writes a number of seconds as the policy files do (`45m`, `8h`, `3d`).
pub fn duration_text(secs: i64) -> String {
    if secs % 86_400 == 0 {
        format!("{}d", secs / 86_400)
    } else if secs % 3_600 == 0 {
        format!("{}h", secs / 3_600)
    } else {
        format!("{}m", secs / 60)
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "policy valid: {} levels, {} agencies, {} principals, {} third parties, {} consents, {} flow rules, {} test cases\npolicy digest {}",
            self.levels, self.agencies, self.principals, self.third_parties, self.consents, self.rules, self.test_cases, self.policy_digest
        )?;
        let list = |v: &[String]| {
            if v.is_empty() {
                "none".to_string()
            } else {
                v.join(", ")
            }
        };
        write!(
            f,
            "\nmay not send: {}\nread every audit proof: {}",
            list(&self.may_not_send),
            list(&self.read_whole_log)
        )?;
        for d in &self.deadlines {
            write!(f, "\nanswer deadline: {d}")?;
        }
        Ok(())
    }
}

/// One agency as the gateway configuration binds it.
#[derive(Clone, Debug)]
pub struct ConfiguredAgency<'a> {
    /// The agency.
    pub agency: &'a str,
    /// The SPIFFE trust domain the configuration gives it.
    pub trust_domain: &'a str,
}

/// How the policy's agencies and the gateway configuration's bindings
/// differ.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct BindingReport {
    /// Differences that make the gateway refuse the policy at start or
    /// reload.
    pub errors: Vec<String>,
    /// Differences the gateway accepts, but that a security officer should
    /// know of: principals that cannot connect.
    pub warnings: Vec<String>,
}

/// Compares the policy's `[[agency]]` bindings with the gateway
/// configuration's, as the gateway does when it starts or reloads (the
/// same refusals: an agency the policy does not declare, or binds to
/// another trust domain), and says which agencies of the policy the
/// configuration leaves out. The gateway trusts the CA files its
/// configuration names. Pure.
pub fn compare_bindings(policy: &Policy, configured: &[ConfiguredAgency<'_>]) -> BindingReport {
    let mut report = BindingReport::default();
    for c in configured {
        let Some(b) = policy
            .agency_bindings()
            .iter()
            .find(|b| b.agency.as_str() == c.agency)
        else {
            report.errors.push(format!(
                "agency {} of the gateway config is not declared in the policy: the gateway refuses this policy",
                c.agency
            ));
            continue;
        };
        if b.trust_domain != c.trust_domain {
            report.errors.push(format!(
                "the policy binds agency {} to trust domain {}, the gateway config to {}: the gateway refuses this policy",
                c.agency, b.trust_domain, c.trust_domain
            ));
        }
    }
    for b in policy.agency_bindings() {
        if !configured.iter().any(|c| c.agency == b.agency.as_str()) {
            let n = policy
                .principals()
                .iter()
                .filter(|p| p.agency() == &b.agency)
                .count();
            report.warnings.push(format!(
                "agency {} of the policy has no [[agency]] in the gateway config: its {n} principal(s) cannot connect",
                b.agency
            ));
        }
    }
    report
}

/// Checks the syntax and references of a compiled policy's test cases
/// (`(file name, text)` pairs, names relative to the policy directory),
/// without running them, and summarises the policy. Pure: reading the
/// directory is `crate::policy_files::check`'s job. Every problem is
/// reported with file and line.
pub fn check_sources(
    policy: &Policy,
    files: &[(String, String)],
) -> Result<CheckReport, Diagnostics> {
    let cases = parse_tests(policy, files)?;
    Ok(CheckReport {
        policy_digest: policy.digest_hex().to_string(),
        levels: policy.levels().len(),
        agencies: policy.agency_bindings().len(),
        principals: policy.principals().len(),
        third_parties: policy.third_parties().len(),
        consents: policy.consents().len(),
        rules: policy.rules().len(),
        test_cases: cases.iter().map(|c| c.outcomes.len()).sum(),
        may_not_send: policy
            .principals()
            .iter()
            .filter(|p| !p.may_send())
            .map(|p| p.id().to_string())
            .collect(),
        read_whole_log: policy
            .principals()
            .iter()
            .filter(|p| p.audit() == AuditScope::All)
            .map(|p| p.id().to_string())
            .collect(),
        deadlines: policy
            .deadlines()
            .iter()
            .map(|d| {
                let mut who = vec![d.priority.clone()];
                if let Some(a) = d.accessibility {
                    who.push(format!("{a:?}").to_lowercase());
                }
                if let Some(p) = &d.purposes {
                    who.push(format!("for {}", p.join(", ")));
                }
                format!(
                    "{} within {} ({})",
                    who.join(" "),
                    duration_text(d.within_secs),
                    d.source
                )
            })
            .collect(),
    })
}
