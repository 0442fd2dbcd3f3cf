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
//!
//! Its parts: `spec` (items written in TOML), `cases` (parsing the test
//! files) and `bindings` (the policy's agencies against the gateway
//! configuration's); this module runs the cases and makes the reports.

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

mod bindings;
mod cases;
mod spec;

pub use bindings::{compare_bindings, BindingReport, ConfiguredAgency};
use cases::parse_tests;
pub use spec::ItemSpec;

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
