//! The security officer's account of a decision ([`Explanation`]) and the
//! [`Tracer`] through which the decision loop reports what it checks.
//! Deciding uses [`NoTrace`] (every method a no-op, so the trace costs
//! nothing once monomorphised); explaining uses [`Trace`]. It may name a
//! recipient's clearance, accreditation and caveats, so it must never be
//! what a sender sees.

use std::fmt;

use serde::Serialize;

use super::*;
use crate::domain::decision::Decision;

/// One built-in check on one portion, for the security officer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Check {
    /// The rule id (`mandatory.clearance`, …).
    pub rule: &'static str,
    /// Whether the check passed.
    pub passed: bool,
    /// What was compared, in plain words.
    pub detail: String,
}

/// How one flow rule related to one portion.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RuleTrace {
    /// The rule id.
    pub rule: String,
    /// Grant or deny.
    pub effect: RuleEffect,
    /// Whether it matched.
    pub matched: bool,
    /// Why not, when it did not.
    pub why_not: Option<&'static str>,
}

/// Everything about one portion, for the security officer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PortionExplanation {
    /// Index in the manifest.
    pub index: u32,
    /// The portion's level as labelled.
    pub level: String,
    /// Whether it would be released.
    pub released: bool,
    /// The built-in checks (empty when an item-level check already failed).
    pub checks: Vec<Check>,
    /// The flow rules that select this sender → recipient pair.
    pub rules: Vec<RuleTrace>,
}

/// The security officer's account of a decision: which rules matched and
/// which built-in check failed, per portion. It may name the recipient's
/// clearance and caveats, so it is for officers and auditors, not senders.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Explanation {
    /// The decision itself, as [`Policy::decide`] gives it.
    pub decision: Decision,
    /// The recipient's profile from the policy, when known.
    pub recipient_profile: Option<String>,
    /// Item-level findings (well-formedness, consistency, unknown parties).
    pub item: Vec<String>,
    /// Per-portion findings.
    pub portions: Vec<PortionExplanation>,
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = &self.decision;
        let verdict = if d.allowed() { "ALLOW" } else { "DENY" };
        writeln!(f, "decision for {}: {verdict}", d.recipient())?;
        if let Some(p) = &self.recipient_profile {
            writeln!(f, "recipient: {p}")?;
        }
        for i in &self.item {
            writeln!(f, "item: {i}")?;
        }
        for p in &self.portions {
            let state = if p.released { "released" } else { "withheld" };
            writeln!(f, "portion {} ({}): {state}", p.index, p.level)?;
            for c in &p.checks {
                let mark = if c.passed { "ok  " } else { "FAIL" };
                writeln!(f, "  [{mark}] {}: {}", c.rule, c.detail)?;
            }
            for r in &p.rules {
                let eff = match r.effect {
                    RuleEffect::Grant => "grant",
                    RuleEffect::Deny => "deny",
                };
                match (r.matched, r.why_not) {
                    (true, _) => writeln!(f, "  {eff} rule {} matched", r.rule)?,
                    (false, Some(w)) => writeln!(f, "  {eff} rule {} did not match: {w}", r.rule)?,
                    (false, None) => writeln!(f, "  {eff} rule {} did not match", r.rule)?,
                }
            }
        }
        writeln!(f, "released portions: {:?}", d.portions())?;
        writeln!(f, "rules: {}", d.rules().join(", "))?;
        for r in d.reasons() {
            writeln!(f, "reason: {r}")?;
        }
        write!(f, "policy digest: {}", d.policy_digest())
    }
}

/// What the decision loop reports as it goes.
///
/// The loop is generic over its tracer and monomorphised: with
/// [`NoTrace`] every call is an empty inline function and `EXPLAINS` a
/// constant `false`, so deciding pays for no trace at all.
pub(super) trait Tracer {
    /// Explaining: every rule that selects the recipient is examined and
    /// reported for every portion, and a matching deny does not stop the
    /// walk. Deciding: only the rules the item-level predicates leave,
    /// stopping at the first matching deny.
    const EXPLAINS: bool;
    /// The recipient's profile, once the recipient is known.
    fn recipient(&mut self, profile: impl FnOnce() -> String);
    /// An item-level finding.
    fn item(&mut self, finding: impl FnOnce() -> String);
    /// A portion is examined (with its built-in checks); the rules and
    /// release that follow concern it.
    fn portion(&mut self, portion: impl FnOnce() -> PortionExplanation);
    /// How one flow rule related to the current portion.
    fn rule(&mut self, rule: &Rule, mismatch: Option<Mismatch>);
    /// The current portion is released.
    fn released(&mut self);
}

/// The tracer of [`Policy::decide`]: reports nothing.
pub(super) struct NoTrace;

impl Tracer for NoTrace {
    const EXPLAINS: bool = false;
    #[inline(always)]
    fn recipient(&mut self, _: impl FnOnce() -> String) {}
    #[inline(always)]
    fn item(&mut self, _: impl FnOnce() -> String) {}
    #[inline(always)]
    fn portion(&mut self, _: impl FnOnce() -> PortionExplanation) {}
    #[inline(always)]
    fn rule(&mut self, _: &Rule, _: Option<Mismatch>) {}
    #[inline(always)]
    fn released(&mut self) {}
}

/// The tracer of [`Policy::explain`]: the findings of an [`Explanation`].
#[derive(Default)]
pub(super) struct Trace {
    pub(super) recipient_profile: Option<String>,
    pub(super) item: Vec<String>,
    pub(super) portions: Vec<PortionExplanation>,
}

impl Tracer for Trace {
    const EXPLAINS: bool = true;
    fn recipient(&mut self, profile: impl FnOnce() -> String) {
        self.recipient_profile = Some(profile());
    }
    fn item(&mut self, finding: impl FnOnce() -> String) {
        self.item.push(finding());
    }
    fn portion(&mut self, portion: impl FnOnce() -> PortionExplanation) {
        self.portions.push(portion());
    }
    fn rule(&mut self, rule: &Rule, mm: Option<Mismatch>) {
        // A rule for other senders says nothing about this item.
        if mm == Some(Mismatch::Sender) {
            return;
        }
        if let Some(p) = self.portions.last_mut() {
            p.rules.push(RuleTrace {
                rule: rule.id.clone(),
                effect: rule.effect,
                matched: mm.is_none(),
                why_not: mm.map(Mismatch::text),
            });
        }
    }
    fn released(&mut self) {
        if let Some(p) = self.portions.last_mut() {
            p.released = true;
        }
    }
}

impl Policy {
    /// The recipient's accreditation as shown to the security officer.
    pub(super) fn accreditation_name(&self, p: &Principal) -> &str {
        match p.accreditation {
            Some(a) => self.level_name(a),
            None => "none (not a station)",
        }
    }

    /// Why each recorded consent of `tp` does not cover this release.
    pub(super) fn consents_considered(
        &self,
        tp: &str,
        c: &LabelCtx,
        rcp: &Principal,
        now: i64,
    ) -> String {
        let Some(&ti) = self.third_party_by_id.get(tp) else {
            return format!("{tp} is not a declared third party, so no consent of it is recorded");
        };
        let mut out = Vec::new();
        for &ci in self
            .consents_by_tp
            .get(ti as usize)
            .map(Vec::as_slice)
            .unwrap_or(&[])
        {
            let Some(k) = self.consents.get(ci as usize) else {
                continue;
            };
            let mut why = Vec::new();
            if k.agency_idx != rcp.agency_idx {
                why.push(format!("it is for {}", k.to_agency));
            }
            if c.rank > k.max_rank {
                why.push(format!("it stops at {}", self.level_name(k.max_rank)));
            }
            if c.handling & k.handling_mask == 0 {
                why.push(format!(
                    "it requires handling code {}",
                    k.handling.join(" or ")
                ));
            }
            if now > k.until_unix {
                let until = time::OffsetDateTime::from_unix_timestamp(k.until_unix)
                    .ok()
                    .and_then(|t| {
                        t.format(&time::format_description::well_known::Rfc3339)
                            .ok()
                    })
                    .unwrap_or_else(|| k.until_unix.to_string());
                why.push(format!("it expired at {until}"));
            }
            out.push(format!("consent {}: {}", k.id, why.join(", ")));
        }
        if out.is_empty() {
            format!("no consent of {tp} is recorded")
        } else {
            out.join("; ")
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn trace_checks(
        &self,
        p: &mut PortionExplanation,
        l: &SecurityLabel,
        c: &LabelCtx,
        rcp: &Principal,
        fails: u8,
        consent: Option<u32>,
        now: i64,
    ) {
        let lvl = self.level_name(c.rank);
        p.checks.push(Check {
            rule: rule_ids::CLEARANCE,
            passed: fails & F_CLEARANCE == 0,
            detail: format!(
                "portion level {lvl}, recipient clearance {}",
                self.level_name(rcp.clearance)
            ),
        });
        p.checks.push(Check {
            rule: rule_ids::ACCREDITATION,
            passed: fails & F_ACCREDITATION == 0,
            detail: match rcp.accreditation {
                Some(a) => format!(
                    "portion level {lvl}, recipient accreditation {}",
                    self.level_name(a)
                ),
                None => {
                    "the recipient is not a station: no station ceiling (accreditation = \"none\")"
                        .into()
                }
            },
        });
        let missing: Vec<&str> = l
            .caveats
            .iter()
            .filter(|cv| !rcp.caveats.iter().any(|h| h == *cv))
            .map(String::as_str)
            .collect();
        p.checks.push(Check {
            rule: rule_ids::CAVEATS,
            passed: fails & F_CAVEATS == 0,
            detail: if missing.is_empty() {
                "recipient holds every caveat of the portion".into()
            } else {
                format!("recipient lacks caveat(s) {}", missing.join(", "))
            },
        });
        p.checks.push(Check {
            rule: rule_ids::REL_TO,
            passed: fails & F_REL_TO == 0,
            detail: if l.rel_to.is_empty() {
                "no REL TO on the portion".into()
            } else {
                let rel: Vec<&str> = l.rel_to.iter().map(|a| a.as_str()).collect();
                format!("REL TO {}, recipient agency {}", rel.join(", "), rcp.agency)
            },
        });
        let tp_detail = match (&l.originator.third_party, consent) {
            (None, _) => "own material, no third-party consent needed".to_string(),
            (Some(tp), _) if rcp.agency == l.originator.agency => {
                format!(
                    "third-party material from {tp} stays within {}, the agency that received it",
                    rcp.agency
                )
            }
            (Some(tp), Some(ci)) => format!(
                "third-party material from {tp} released to {} under consent {}",
                rcp.agency,
                self.consents
                    .get(ci as usize)
                    .map(|k| k.id.as_str())
                    .unwrap_or("?")
            ),
            (Some(tp), None) => {
                let handling = l
                    .handling
                    .map(|h| format!("{h:?}"))
                    .unwrap_or_else(|| "no handling code".into());
                format!(
                    "third-party material from {tp} ({lvl}, {handling}) leaves {}: no recorded, unexpired consent covers agency {}; {}",
                    l.originator.agency,
                    rcp.agency,
                    self.consents_considered(tp, c, rcp, now)
                )
            }
        };
        p.checks.push(Check {
            rule: rule_ids::THIRD_PARTY,
            passed: fails & F_THIRD_PARTY == 0,
            detail: tp_detail,
        });
    }
}
