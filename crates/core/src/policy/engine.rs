//! The decision: may this recipient receive these portions of this item?
//!
//! This module owns the order of DESIGN.md's decision: label well formed,
//! label consistency, the built-in mandatory rules per portion (clearance,
//! accreditation, caveats, REL TO, third-party consent), then deny rules,
//! then grants, else deny; and the obligation that only permitted portions are
//! released. It is pure: no I/O, and it never reads the clock (`now` is
//! passed in). The mandatory rules are code, not policy: no file can switch
//! them off, and a flow rule can only narrow what they allow.
//!
//! [`Policy::decide`] gives the [`Decision`] the gateway acts on and shows
//! the sender; its reasons never state another principal's clearance,
//! accreditation or caveats. [`Policy::explain`] gives the security officer
//! the full picture, including those.

use std::fmt;

use serde::Serialize;

use super::model::*;
use crate::domain::bounds::{self, FieldError};
use crate::domain::decision::{Decider, Decision, Effect, ItemFacts};
use crate::domain::item::Priority;
use crate::domain::label::{HandlingCode, SecurityLabel};
use crate::domain::principal::PrincipalId;

/// Fixed ids of the built-in rules, as they appear in decisions.
pub mod rule_ids {
    /// Recipient clearance must dominate the portion's level.
    pub const CLEARANCE: &str = "mandatory.clearance";
    /// Recipient station accreditation must dominate the portion's level.
    pub const ACCREDITATION: &str = "mandatory.accreditation";
    /// The recipient must hold every caveat of the portion.
    pub const CAVEATS: &str = "mandatory.caveats";
    /// The recipient's agency must be in the portion's REL TO, when present.
    pub const REL_TO: &str = crate::domain::decision::REL_TO_RULE;
    /// Third-party material beyond the first receiving agency needs consent.
    pub const THIRD_PARTY: &str = crate::domain::decision::THIRD_PARTY_RULE;
    /// The item label must dominate every portion's label.
    pub const LABEL_CONSISTENCY: &str = "mandatory.label_consistency";
    /// Every label must be well formed under the loaded scheme.
    pub const LABEL_WELL_FORMED: &str = "mandatory.label_well_formed";
    /// The recipient must be a principal the policy knows.
    pub const RECIPIENT_KNOWN: &str = "mandatory.recipient_known";
    /// The sender must be a principal the policy knows.
    pub const SENDER_KNOWN: &str = "mandatory.sender_known";
    /// The sender's clearance must cover the item label, and it must hold
    /// every caveat of it.
    pub const SENDER_CLEARANCE: &str = crate::domain::decision::SENDER_CLEARANCE_RULE;
    /// Purpose-bound material goes only to flows for one of its purposes.
    pub const MARKING_PURPOSE: &str = crate::domain::decision::MARKING_PURPOSE_RULE;
    /// No flow rule granted: deny by default.
    pub const DEFAULT_DENY: &str = crate::domain::decision::DEFAULT_DENY_RULE;
    /// Every built-in rule id, for coverage reports.
    pub const ALL: [&str; 12] = [
        CLEARANCE,
        ACCREDITATION,
        CAVEATS,
        REL_TO,
        THIRD_PARTY,
        LABEL_CONSISTENCY,
        LABEL_WELL_FORMED,
        RECIPIENT_KNOWN,
        SENDER_KNOWN,
        SENDER_CLEARANCE,
        MARKING_PURPOSE,
        DEFAULT_DENY,
    ];
}

const F_CLEARANCE: u8 = 1;
const F_ACCREDITATION: u8 = 2;
const F_CAVEATS: u8 = 4;
const F_REL_TO: u8 = 8;
const F_THIRD_PARTY: u8 = 16;
const NO_HANDLING: u8 = 1 << 4;
/// Granting rules named in one portion's reason; the decision's rule list
/// names them all.
const MAX_RULES_IN_REASON: usize = 3;

/// What the engine needs of the item header, resolved once per decision.
struct ItemCtx {
    sender: u32,
    purpose: Option<u8>,
    priority: u8,
    /// The item's cases that the policy knows, interned and sorted.
    cases: Vec<u32>,
    /// Whether the item also names a case the policy does not know: no
    /// recipient or sender is then assigned to all its cases.
    unknown_case: bool,
}

/// What the engine needs of one label.
#[derive(Clone, Copy)]
struct LabelCtx {
    rank: Rank,
    caveats: Mask,
    handling: u8,
    origin_agency: u16,
    /// `Some(None)`: third-party material from an originator the policy does
    /// not know.
    third_party: Option<Option<u16>>,
    /// Marked Diffusion restreinte.
    marked: bool,
}

/// Why a label does not fit the scheme.
enum LabelFault<'l> {
    /// Out of bounds or of the wrong shape, whatever the scheme.
    Shape(FieldError),
    /// The level is not one of the scheme's.
    Level,
    /// This caveat is not declared.
    Caveat(&'l str),
    /// The originating agency is not one of the gateway's.
    OriginAgency,
    /// Marked Diffusion restreinte, a marking the policy does not declare.
    Marking,
}

/// Why a flow rule did not match.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mismatch {
    Sender,
    Purpose,
    Priority,
    Handling,
    BelowMin,
    AboveMax,
    Caveats,
    ThirdParty,
    CaseAssignment,
    Cases,
    Originator,
    RelTo,
    Marking,
}

impl Mismatch {
    fn text(self) -> &'static str {
        match self {
            Mismatch::Sender => "the sender is not one it selects",
            Mismatch::Purpose => "the item's purpose is not among its purposes",
            Mismatch::Priority => "the item's priority is not among its priorities",
            Mismatch::Handling => "the portion's handling code is not among its handling codes",
            Mismatch::BelowMin => "the portion is below its min_level",
            Mismatch::AboveMax => "the portion is above its max_level",
            Mismatch::Caveats => "the portion carries none of its caveats_any",
            Mismatch::ThirdParty => {
                "the portion's origin (own or third-party) is not the one it applies to"
            }
            Mismatch::CaseAssignment => "the required case assignment does not hold",
            Mismatch::Cases => "the item names none of its cases",
            Mismatch::Originator => "the portion's originator is not among its originators",
            Mismatch::RelTo => "the portion's REL TO names none of its rel_to",
            Mismatch::Marking => {
                "the portion's Diffusion restreinte marking is not the one it applies to"
            }
        }
    }
}

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
        writeln!(f, "decision for {}: {verdict}", d.recipient)?;
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
        writeln!(f, "released portions: {:?}", d.portions)?;
        writeln!(f, "rules: {}", d.rules.join(", "))?;
        for r in &d.reasons {
            writeln!(f, "reason: {r}")?;
        }
        write!(f, "policy digest: {}", d.policy_digest)
    }
}

/// The gateway holds the policy as an `Arc<dyn Decider>` and swaps it whole
/// on reload.
impl Decider for Policy {
    fn digest(&self) -> String {
        self.digest_hex.clone()
    }
    fn knows(&self, principal: &PrincipalId) -> bool {
        self.principal(principal).is_some()
    }
    fn may_send(&self, principal: &PrincipalId) -> bool {
        self.principal(principal).is_some_and(Principal::may_send)
    }
    fn reads_whole_log(&self, principal: &PrincipalId) -> bool {
        self.principal(principal)
            .is_some_and(|p| p.audit() == AuditScope::All)
    }
    fn decide(&self, item: &ItemFacts<'_>, recipient: &PrincipalId, now: i64) -> Decision {
        Policy::decide(self, item, recipient, now)
    }
    fn retention_days(&self, level: &str) -> Option<u32> {
        Policy::retention_days(self, level)
    }
    fn check_labels(&self, item: &ItemFacts<'_>) -> Result<(), FieldError> {
        Policy::check_labels(self, item)
    }
    fn answer_due(&self, item: &ItemFacts<'_>, accepted_at: i64) -> Option<i64> {
        Policy::answer_due(self, &item.manifest.header, accepted_at)
    }
}

fn priority_bit(p: Priority) -> u8 {
    match p {
        Priority::Flash => 1,
        Priority::Urgent => 2,
        Priority::Routine => 4,
    }
}

/// Whether the item names at least one case and `p` is assigned to all of
/// them (`all`: then every case must be one the policy declares) or to at
/// least one of them (`any`).
fn assigned(p: &Principal, item: &ItemCtx, m: CaseMatch) -> bool {
    match m {
        CaseMatch::All => {
            !item.unknown_case
                && !item.cases.is_empty()
                && item.cases.iter().all(|&x| p.assigned_to(x))
        }
        CaseMatch::Any => item.cases.iter().any(|&x| p.assigned_to(x)),
    }
}

impl Policy {
    /// Decides whether `recipient` may receive the item, portion by portion.
    ///
    /// Pure and deterministic: the same policy, facts, recipient and `now`
    /// (Unix seconds, UTC) always give the same decision.
    pub fn decide(
        &self,
        facts: &ItemFacts<'_>,
        recipient: &PrincipalId,
        now_unix_secs: i64,
    ) -> Decision {
        self.evaluate(facts, recipient, now_unix_secs, None)
    }

    /// Like [`Policy::decide`], with the security officer's account of every
    /// check and rule.
    pub fn explain(
        &self,
        facts: &ItemFacts<'_>,
        recipient: &PrincipalId,
        now_unix_secs: i64,
    ) -> Explanation {
        let mut ex = Explanation {
            decision: Decision {
                recipient: recipient.clone(),
                effect: Effect::Deny,
                portions: Vec::new(),
                rules: Vec::new(),
                reasons: Vec::new(),
                policy_digest: String::new(),
            },
            recipient_profile: None,
            item: Vec::new(),
            portions: Vec::new(),
        };
        let d = self.evaluate(facts, recipient, now_unix_secs, Some(&mut ex));
        if ex.item.is_empty() && ex.portions.is_empty() {
            // Refused before any portion was looked at: say why at item level.
            ex.item = d.reasons.clone();
        }
        ex.decision = d;
        ex
    }

    fn deny(&self, recipient: &PrincipalId, rule: &str, reason: String) -> Decision {
        Decision {
            recipient: recipient.clone(),
            effect: Effect::Deny,
            portions: Vec::new(),
            rules: vec![rule.to_string()],
            reasons: vec![reason],
            policy_digest: self.digest_hex.clone(),
        }
    }

    /// Resolves a label under the scheme, or says why it is not well formed
    /// (the reason a decision gives).
    fn label_ctx(&self, l: &SecurityLabel) -> Result<LabelCtx, String> {
        self.resolve_label(l).map_err(|f| match f {
            LabelFault::Shape(e) => e.to_string(),
            LabelFault::Level => format!(
                "level {:?} is not a level of the {} scheme",
                l.level, self.scheme_name
            ),
            LabelFault::Caveat(c) => format!("caveat {c:?} is not declared by the policy"),
            LabelFault::OriginAgency => format!(
                "originator agency {} is not an agency of this gateway",
                l.originator.agency
            ),
            LabelFault::Marking => {
                "it is marked Diffusion restreinte and the policy declares no such marking".into()
            }
        })
    }

    /// What a sender reads when a label does not fit the scheme: the field
    /// (relative to the label) and the values the scheme allows there.
    fn label_field_error(&self, l: &SecurityLabel, fault: LabelFault<'_>) -> FieldError {
        // Allowed values are the policy's, so bounded by it; the list is cut
        // all the same, since it is written to the audit log with the refusal.
        const ALLOWED: usize = 600;
        match fault {
            LabelFault::Shape(e) => e,
            LabelFault::Level => FieldError::new(
                "level",
                format!(
                    "{:?} is not a level of the {} scheme; allowed (lowest first, any letter case): {}",
                    l.level,
                    self.scheme_name,
                    bounds::list(
                        self.levels.iter().flat_map(|v| {
                            v.names.iter().chain(&v.eu).chain(&v.nato).map(String::as_str)
                        }),
                        ALLOWED
                    )
                ),
            ),
            LabelFault::Caveat(c) => FieldError::new(
                "caveats",
                format!(
                    "{c:?} is not a caveat of the policy; allowed: {}",
                    if self.caveats.is_empty() {
                        "none".to_string()
                    } else {
                        bounds::list(self.caveats.iter().map(String::as_str), ALLOWED)
                    }
                ),
            ),
            LabelFault::OriginAgency => FieldError::new(
                "originator.agency",
                format!(
                    "{:?} is not an agency of this gateway; allowed: {}",
                    l.originator.agency.as_str(),
                    bounds::list(self.agencies.iter().map(|a| a.agency.as_str()), ALLOWED)
                ),
            ),
            LabelFault::Marking => FieldError::new(
                "diffusion_restreinte",
                "the policy in force declares no Diffusion restreinte marking; leave it out",
            ),
        }
    }

    /// Resolves a label under the scheme: its shape and bounds, its level,
    /// its caveats and its originating agency must be the scheme's. A
    /// third-party originator the policy does not know is well formed: the
    /// third-party rule then keeps the material inside its agency.
    fn resolve_label<'l>(&self, l: &'l SecurityLabel) -> Result<LabelCtx, LabelFault<'l>> {
        l.check_shape().map_err(LabelFault::Shape)?;
        let rank = self.rank_of(&l.level).ok_or(LabelFault::Level)?;
        let mut caveats: Mask = 0;
        for c in &l.caveats {
            match self.caveat_by_name.get(c) {
                Some(&b) => caveats |= 1 << b,
                None => return Err(LabelFault::Caveat(c)),
            }
        }
        let origin_agency = *self
            .agency_by_name
            .get(l.originator.agency.as_str())
            .ok_or(LabelFault::OriginAgency)?;
        let handling = match l.handling {
            Some(HandlingCode::H0) => 1,
            Some(HandlingCode::H1) => 2,
            Some(HandlingCode::H2) => 4,
            Some(HandlingCode::H3) => 8,
            None => NO_HANDLING,
        };
        let third_party = l
            .originator
            .third_party
            .as_ref()
            .map(|t| self.third_party_by_id.get(t).copied());
        if l.diffusion_restreinte && self.diffusion_restreinte.is_none() {
            return Err(LabelFault::Marking);
        }
        Ok(LabelCtx {
            rank,
            caveats,
            handling,
            origin_agency,
            third_party,
            marked: l.diffusion_restreinte,
        })
    }

    /// Checks, for the sender, what the decision's first two mandatory rules
    /// check (`mandatory.label_well_formed`, `mandatory.label_consistency`):
    /// every label fits the scheme in force and the item label dominates
    /// every portion label. The error names the field and what is allowed.
    pub fn check_labels(&self, facts: &ItemFacts<'_>) -> Result<(), FieldError> {
        let item_label = &facts.manifest.label;
        let item = self
            .resolve_label(item_label)
            .map_err(|f| self.label_field_error(item_label, f).within("label"))?;
        for (i, l) in facts.portion_labels.iter().enumerate() {
            let at = format!("portions[{i}].label");
            let c = self
                .resolve_label(l)
                .map_err(|f| self.label_field_error(l, f).within(&at))?;
            if let Some(why) = Self::dominance(item_label, &item, l, &c) {
                return Err(FieldError::new(
                    at,
                    format!("the item label must dominate every portion label and does not dominate this one: {why}"),
                ));
            }
        }
        Ok(())
    }

    /// Why the item label does not dominate a portion label, if it does not.
    fn dominance(
        item: &SecurityLabel,
        i: &LabelCtx,
        p: &SecurityLabel,
        pc: &LabelCtx,
    ) -> Option<String> {
        if pc.rank > i.rank {
            return Some("its level is above the item's level".into());
        }
        if pc.caveats & !i.caveats != 0 {
            return Some("it carries a caveat the item label does not".into());
        }
        if !p.rel_to.is_empty() && (item.rel_to.is_empty() || !item.rel_to.is_subset(&p.rel_to)) {
            return Some("its REL TO is narrower than the item's".into());
        }
        if p.handling.is_some() && item.handling.is_none() {
            return Some("it carries a handling code and the item label does not".into());
        }
        if p.diffusion_restreinte && !item.diffusion_restreinte {
            return Some("it is marked Diffusion restreinte and the item label is not".into());
        }
        // A purpose-bound marking travels with every portion: a portion
        // released on its own still says what it may be used for.
        if item.diffusion_restreinte && !p.diffusion_restreinte {
            return Some(
                "the item is marked Diffusion restreinte and this portion is not: the marking travels with every portion".into(),
            );
        }
        None
    }

    /// The built-in checks: a bit per failure, and the consent that covered
    /// third-party material, if any.
    fn mandatory(
        &self,
        l: &SecurityLabel,
        c: &LabelCtx,
        rcp: &Principal,
        now: i64,
    ) -> (u8, Option<u32>) {
        let mut fails = 0;
        if c.rank > rcp.clearance {
            fails |= F_CLEARANCE;
        }
        if rcp.accreditation.is_some_and(|a| c.rank > a) {
            fails |= F_ACCREDITATION;
        }
        if c.caveats & !rcp.caveat_mask != 0 {
            fails |= F_CAVEATS;
        }
        if !l.rel_to.is_empty() && !l.rel_to.contains(&rcp.agency) {
            fails |= F_REL_TO;
        }
        let mut consent = None;
        if let Some(tp) = c.third_party {
            if rcp.agency_idx != c.origin_agency {
                consent = tp.and_then(|tp| {
                    self.consents_by_tp.get(tp as usize).and_then(|list| {
                        list.iter().copied().find(|&ci| {
                            self.consents.get(ci as usize).is_some_and(|k| {
                                k.agency_idx == rcp.agency_idx
                                    && c.rank <= k.max_rank
                                    && c.handling & k.handling_mask != 0
                                    && now <= k.until_unix
                            })
                        })
                    })
                });
                if consent.is_none() {
                    fails |= F_THIRD_PARTY;
                }
            }
        }
        (fails, consent)
    }

    /// Checks a rule's item-level predicates: sender, purpose, priority,
    /// cases. They hold or fail for the whole item.
    fn item_mismatch(
        &self,
        rule: &Rule,
        ri: u32,
        item: &ItemCtx,
        sender: &Principal,
        rcp: &Principal,
    ) -> Option<Mismatch> {
        if !bit(self.sender_row(item.sender), ri) {
            return Some(Mismatch::Sender);
        }
        let k = &rule.c;
        // A deny rule fails closed: a purpose or case the policy does not
        // know (a misspelling, another letter case) could be the one it
        // names, so it matches; a grant never matches on what it cannot know.
        let deny = rule.effect == RuleEffect::Deny;
        if let Some(m) = k.purposes {
            let hit = match item.purpose {
                Some(p) => m & (1 << p) != 0,
                None => deny,
            };
            if !hit {
                return Some(Mismatch::Purpose);
            }
        }
        if let Some(m) = k.priorities {
            if m & item.priority == 0 {
                return Some(Mismatch::Priority);
            }
        }
        if let Some(a) = rule.case_assignment {
            // The loader requires case_match with case_assignment.
            let m = rule.case_match.unwrap_or(CaseMatch::All);
            let ok = match a {
                CaseAssignment::Recipient => assigned(rcp, item, m),
                CaseAssignment::Sender => assigned(sender, item, m),
                CaseAssignment::Both => assigned(rcp, item, m) && assigned(sender, item, m),
            };
            if !ok {
                return Some(Mismatch::CaseAssignment);
            }
        }
        if let Some(cases) = &k.cases {
            // Any named case counts, so an unknown case added beside a
            // listed one cannot slip an item past a deny rule.
            let hit = item.cases.iter().any(|x| cases.binary_search(x).is_ok())
                || (deny && item.unknown_case);
            if !hit {
                return Some(Mismatch::Cases);
            }
        }
        None
    }

    /// Checks a rule's portion-level predicates: handling, level range,
    /// caveats, origin, originators, REL TO, marking.
    fn label_mismatch(rule: &Rule, l: &SecurityLabel, c: &LabelCtx) -> Option<Mismatch> {
        let k = &rule.c;
        if let Some(m) = k.handling {
            if m & c.handling == 0 {
                return Some(Mismatch::Handling);
            }
        }
        if k.min_rank.is_some_and(|lo| c.rank < lo) {
            return Some(Mismatch::BelowMin);
        }
        if k.max_rank.is_some_and(|hi| c.rank > hi) {
            return Some(Mismatch::AboveMax);
        }
        if let Some(m) = k.caveats_any {
            if m & c.caveats == 0 {
                return Some(Mismatch::Caveats);
            }
        }
        if let Some(tp) = rule.third_party {
            if tp != c.third_party.is_some() {
                return Some(Mismatch::ThirdParty);
            }
        }
        if rule.originators.is_some() {
            let hit = k.origin_agencies.contains(&c.origin_agency)
                || match c.third_party {
                    Some(Some(t)) => k.origin_third_parties.contains(&t),
                    // A third party the policy does not know might be one a
                    // deny rule names under another spelling: fail closed.
                    Some(None) => rule.effect == RuleEffect::Deny,
                    None => false,
                };
            if !hit {
                return Some(Mismatch::Originator);
            }
        }
        if let Some((agencies, none)) = &k.rel_to {
            let hit = if l.rel_to.is_empty() {
                *none
            } else {
                agencies.iter().any(|a| l.rel_to.contains(a))
            };
            if !hit {
                return Some(Mismatch::RelTo);
            }
        }
        if rule.diffusion_restreinte.is_some_and(|m| m != c.marked) {
            return Some(Mismatch::Marking);
        }
        None
    }

    fn evaluate(
        &self,
        facts: &ItemFacts<'_>,
        recipient: &PrincipalId,
        now: i64,
        mut trace: Option<&mut Explanation>,
    ) -> Decision {
        let header = &facts.manifest.header;
        // The decision's combining rule, in order. Any failure before the
        // per-portion loop denies the whole item.
        let Some(&rcp_idx) = self.principal_by_id.get(recipient.as_str()) else {
            return self.deny(
                recipient,
                rule_ids::RECIPIENT_KNOWN,
                format!("{recipient} is not a principal of this policy"),
            );
        };
        let rcp = &self.principals[rcp_idx as usize];
        if let Some(t) = trace.as_deref_mut() {
            t.recipient_profile = Some(format!(
                "{} ({:?}, role {}), clearance {}, accreditation {}, caveats [{}], cases [{}], may_send {}, audit {}",
                rcp.id,
                rcp.kind,
                rcp.role,
                self.level_name(rcp.clearance),
                self.accreditation_name(rcp),
                rcp.caveats.join(", "),
                rcp.cases.join(", "),
                rcp.may_send,
                rcp.audit.as_str()
            ));
        }
        let Some(&sender_idx) = self.principal_by_id.get(header.sender.as_str()) else {
            let d = self.deny(
                recipient,
                rule_ids::SENDER_KNOWN,
                format!("sender {} is not a principal of this policy", header.sender),
            );
            if let Some(t) = trace {
                t.item.push(d.reasons[0].clone());
            }
            return d;
        };
        let sender = &self.principals[sender_idx as usize];
        if !sender.may_send {
            // Not a decision rule: the gateway refuses the submission before
            // deciding anything (403 may-not-send). Said here so that an
            // officer who explains such an item is not misled.
            if let Some(t) = trace.as_deref_mut() {
                t.item.push(format!(
                    "sender {} may not send (may_send = false): the gateway refuses its submissions before any decision",
                    sender.id
                ));
            }
        }

        // Well formed: the item label and every portion label.
        let item_label = &facts.manifest.label;
        let item_ctx = match self.label_ctx(item_label) {
            Ok(c) => c,
            Err(e) => {
                let d = self.deny(
                    recipient,
                    rule_ids::LABEL_WELL_FORMED,
                    format!("the item label is not well formed: {e}"),
                );
                if let Some(t) = trace {
                    t.item.push(d.reasons[0].clone());
                }
                return d;
            }
        };
        if facts.portion_labels.is_empty() {
            return self.deny(
                recipient,
                rule_ids::LABEL_WELL_FORMED,
                "the item has no portions".into(),
            );
        }
        let mut portions = Vec::with_capacity(facts.portion_labels.len());
        for (i, l) in facts.portion_labels.iter().enumerate() {
            match self.label_ctx(l) {
                Ok(c) => portions.push(c),
                Err(e) => {
                    let d = self.deny(
                        recipient,
                        rule_ids::LABEL_WELL_FORMED,
                        format!("the label of portion {i} is not well formed: {e}"),
                    );
                    if let Some(t) = trace {
                        t.item.push(d.reasons[0].clone());
                    }
                    return d;
                }
            }
        }
        // Consistency: the item label dominates every portion.
        for (i, (l, c)) in facts.portion_labels.iter().zip(&portions).enumerate() {
            if let Some(why) = Self::dominance(item_label, &item_ctx, l, c) {
                let d = self.deny(
                    recipient,
                    rule_ids::LABEL_CONSISTENCY,
                    format!("the item label does not dominate portion {i}: {why}"),
                );
                if let Some(t) = trace {
                    t.item.push(d.reasons[0].clone());
                }
                return d;
            }
        }

        // The sender must be cleared for what it sends: the item label
        // dominates every portion, so checking it covers them all. This
        // holds for every recipient alike. The personal clearance, not the
        // station accreditation: an officer abroad may report at once, at
        // the level of what he learnt, what his post may not keep (the
        // recipients' accreditation is checked as ever).
        let sender_over = item_ctx.rank > sender.clearance;
        let sender_lacks = item_ctx.caveats & !sender.caveat_mask;
        if sender_over || sender_lacks != 0 {
            let d = self.deny(
                recipient,
                rule_ids::SENDER_CLEARANCE,
                format!(
                    "the item label ({}) is above the clearance of the sender {}, or carries a caveat it does not hold: a principal sends only material within its own clearance",
                    item_label.level, sender.id
                ),
            );
            if let Some(t) = trace {
                let mut why = Vec::new();
                if sender_over {
                    why.push(format!(
                        "item level {} is above the sender's clearance {}",
                        self.level_name(item_ctx.rank),
                        self.level_name(sender.clearance)
                    ));
                }
                if sender_lacks != 0 {
                    let missing: Vec<&str> = self
                        .caveats
                        .iter()
                        .enumerate()
                        .filter(|(b, _)| sender_lacks & (1 << b) != 0)
                        .map(|(_, c)| c.as_str())
                        .collect();
                    why.push(format!("the sender lacks caveat(s) {}", missing.join(", ")));
                }
                t.item
                    .push(format!("{} ({})", d.reasons[0], why.join("; ")));
            }
            return d;
        }

        let purpose = self.purpose_by_name.get(&header.purpose).copied();
        // Purpose-bound material: the item label carries the marking when
        // any portion does (consistency above), and the flow's purpose must
        // be one the marking is bound to, whatever the recipient.
        if item_label.diffusion_restreinte {
            let mask = self
                .diffusion_restreinte
                .and_then(|i| self.markings.get(i))
                .map(|m| m.purpose_mask)
                .unwrap_or(0);
            if !purpose.is_some_and(|p| mask & (1 << p) != 0) {
                let bound = self
                    .diffusion_restreinte
                    .and_then(|i| self.markings.get(i))
                    .map(|m| m.purposes.join(", "))
                    .unwrap_or_default();
                let d = self.deny(
                    recipient,
                    rule_ids::MARKING_PURPOSE,
                    format!(
                        "the item is marked Diffusion restreinte, bound to the purposes {bound}; this flow's purpose {:?} is not one of them",
                        header.purpose
                    ),
                );
                if let Some(t) = trace {
                    t.item.push(d.reasons[0].clone());
                }
                return d;
            }
        }

        let mut unknown_case = false;
        let mut cases: Vec<u32> = header
            .cases
            .iter()
            .filter_map(|c| {
                let id = self.case_index(c);
                if id.is_none() {
                    unknown_case = true;
                    if let Some(t) = trace.as_deref_mut() {
                        t.item.push(format!(
                            "case {c:?} is not declared by the policy: no grant matches on it, and no one is assigned to it (a deny rule with `cases` matches it, failing closed)"
                        ));
                    }
                }
                id
            })
            .collect();
        cases.sort_unstable();
        cases.dedup();
        let ctx = ItemCtx {
            sender: sender_idx,
            purpose,
            priority: priority_bit(header.priority),
            cases,
            unknown_case,
        };
        let candidates = &self.rules_by_recipient[rcp_idx as usize];
        // Item-level predicates (sender, purpose, priority, cases) hold or
        // fail for the whole item: without a trace, test them once and keep
        // only the rules left, so each portion checks its own predicates only.
        let item_matches: Vec<u32> = if trace.is_none() {
            candidates
                .iter()
                .copied()
                .filter(|&ri| {
                    self.item_mismatch(&self.rules[ri as usize], ri, &ctx, sender, rcp)
                        .is_none()
                })
                .collect()
        } else {
            Vec::new()
        };

        let n = facts.portion_labels.len();
        let mut released = Vec::with_capacity(n);
        let mut rules: Vec<String> = Vec::with_capacity(n + 1);
        let mut reasons: Vec<String> = Vec::with_capacity(n + 1);
        // Which rule ids are already named: built-in ones by bit, flow rules
        // in a bit set over rule indices (allocated on first use).
        let mut named_builtin: u16 = 0;
        let mut named_rules: Vec<u64> = Vec::new();
        let mut name_rule = |rules: &mut Vec<String>, ri: u32| {
            if named_rules.is_empty() {
                named_rules = vec![0; self.rule_words];
            }
            let (w, b) = ((ri / 64) as usize, 1u64 << (ri % 64));
            if let Some(word) = named_rules.get_mut(w) {
                if *word & b == 0 {
                    *word |= b;
                    rules.push(self.rules[ri as usize].id.clone());
                }
            }
        };
        let mut name_builtin = |rules: &mut Vec<String>, bit: u16, id: &str| {
            if named_builtin & bit == 0 {
                named_builtin |= bit;
                rules.push(id.to_string());
            }
        };
        for (i, (l, c)) in facts.portion_labels.iter().zip(&portions).enumerate() {
            let i32 = i as u32;
            let lvl = &l.level;
            let (fails, consent) = self.mandatory(l, c, rcp, now);
            let mut pex = trace.as_ref().map(|_| PortionExplanation {
                index: i32,
                level: lvl.clone(),
                released: false,
                checks: Vec::new(),
                rules: Vec::new(),
            });
            if let Some(p) = pex.as_mut() {
                self.trace_checks(p, l, c, rcp, fails, consent, now);
            }
            if fails != 0 {
                for (flag, id, why) in [
                    (F_CLEARANCE, rule_ids::CLEARANCE, "the recipient's clearance does not cover this level"),
                    (F_ACCREDITATION, rule_ids::ACCREDITATION, "the recipient's station accreditation does not cover this level"),
                    (F_CAVEATS, rule_ids::CAVEATS, "the recipient does not hold every caveat of this portion"),
                    (F_REL_TO, rule_ids::REL_TO, "the recipient's agency is not in the portion's REL TO"),
                    (
                        F_THIRD_PARTY,
                        rule_ids::THIRD_PARTY,
                        "third-party material: no recorded, unexpired consent of the originator covers release to the recipient's agency at this level with this handling code",
                    ),
                ] {
                    if fails & flag != 0 {
                        name_builtin(&mut rules, u16::from(flag), id);
                        reasons.push(format!("portion {i} ({lvl}) withheld: {why}"));
                    }
                }
            } else {
                let mut denied_by: Option<u32> = None;
                let mut granted: Vec<u32> = Vec::new();
                if let Some(p) = pex.as_mut() {
                    // With a trace: every rule that selects this recipient,
                    // and why each did or did not match.
                    for &ri in candidates {
                        let rule = &self.rules[ri as usize];
                        let mm = self
                            .item_mismatch(rule, ri, &ctx, sender, rcp)
                            .or_else(|| Self::label_mismatch(rule, l, c));
                        if mm != Some(Mismatch::Sender) {
                            p.rules.push(RuleTrace {
                                rule: rule.id.clone(),
                                effect: rule.effect,
                                matched: mm.is_none(),
                                why_not: mm.map(Mismatch::text),
                            });
                        }
                        if mm.is_none() {
                            match rule.effect {
                                RuleEffect::Deny => {
                                    denied_by = denied_by.or(Some(ri));
                                }
                                RuleEffect::Grant => granted.push(ri),
                            }
                        }
                    }
                } else {
                    for &ri in &item_matches {
                        let rule = &self.rules[ri as usize];
                        if Self::label_mismatch(rule, l, c).is_none() {
                            match rule.effect {
                                // Deny rules come first: the first match settles it.
                                RuleEffect::Deny => {
                                    denied_by = Some(ri);
                                    break;
                                }
                                RuleEffect::Grant => granted.push(ri),
                            }
                        }
                    }
                }
                match (denied_by, granted.is_empty()) {
                    // Any matching deny rule withholds the portion, whatever
                    // grants say.
                    (Some(ri), _) => {
                        let rule = &self.rules[ri as usize];
                        name_rule(&mut rules, ri);
                        let what = rule.description.as_deref().unwrap_or("explicit deny rule");
                        reasons.push(format!(
                            "portion {i} ({lvl}) withheld by rule {}: {what}",
                            rule.id
                        ));
                    }
                    // No grant: deny by default.
                    (None, true) => {
                        name_builtin(&mut rules, 1 << 8, rule_ids::DEFAULT_DENY);
                        reasons.push(format!(
                            "portion {i} ({lvl}) withheld: no flow rule grants {} → {} for this item",
                            header.sender, recipient
                        ));
                    }
                    // Mandatory rules passed, no deny, at least one grant.
                    (None, false) => {
                        released.push(i32);
                        let mut reason = format!("portion {i} ({lvl}) released under ");
                        let shown = granted.len().min(MAX_RULES_IN_REASON);
                        for (k, &ri) in granted.iter().enumerate() {
                            name_rule(&mut rules, ri);
                            if k < shown {
                                if k > 0 {
                                    reason.push_str(", ");
                                }
                                reason.push_str(&self.rules[ri as usize].id);
                            }
                        }
                        if granted.len() > shown {
                            reason.push_str(&format!(" and {} more", granted.len() - shown));
                        }
                        reasons.push(reason);
                        if let Some(p) = pex.as_mut() {
                            p.released = true;
                        }
                    }
                }
            }
            if let (Some(t), Some(p)) = (trace.as_deref_mut(), pex) {
                t.portions.push(p);
            }
        }
        let effect = if released.is_empty() {
            reasons.push("no portion of the item may be released to this recipient".into());
            Effect::Deny
        } else {
            Effect::Allow
        };
        Decision {
            recipient: recipient.clone(),
            effect,
            portions: released,
            rules,
            reasons,
            policy_digest: self.digest_hex.clone(),
        }
    }

    /// The recipient's accreditation as shown to the security officer.
    fn accreditation_name(&self, p: &Principal) -> &str {
        match p.accreditation {
            Some(a) => self.level_name(a),
            None => "none (not a station)",
        }
    }

    /// Why each recorded consent of `tp` does not cover this release.
    fn consents_considered(&self, tp: &str, c: &LabelCtx, rcp: &Principal, now: i64) -> String {
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
    fn trace_checks(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::bytes::Bytes;
    use crate::domain::item::{Header, Manifest, MANIFEST_VERSION};
    use crate::domain::principal::Agency;

    const POLICY: &str = r#"
[scheme]
name = "mini"
[[level]]
id = "low"
rank = 0
names = ["LOW"]
[[level]]
id = "high"
rank = 1
names = ["HIGH"]
[[caveat]]
id = "X"
[[purpose]]
id = "p"
[[agency]]
id = "a"
ca = "a/ca.pem"
trust_domain = "a.example"
[[agency]]
id = "b"
ca = "b/ca.pem"
trust_domain = "b.example"
[[principal]]
id = "a/s"
kind = "desk"
role = "sender"
clearance = "HIGH"
accreditation = "HIGH"
caveats = ["X"]
[[principal]]
id = "b/r"
kind = "station"
role = "reader"
clearance = "HIGH"
accreditation = "LOW"
[[grant]]
id = "g"
from = { agencies = ["a"] }
to = { agencies = ["b"] }
purposes = ["p"]
[[deny]]
id = "d"
from = {}
to = {}
priorities = ["FLASH"]
"#;

    fn policy() -> Policy {
        Policy::from_sources(&[("p.toml".into(), POLICY.into())]).unwrap()
    }

    fn manifest(label: SecurityLabel, priority: Priority, n: usize) -> Manifest {
        Manifest {
            version: MANIFEST_VERSION,
            header: Header {
                id: "i".into(),
                sender: PrincipalId::new("a/s").unwrap(),
                recipients: vec![PrincipalId::new("b/r").unwrap()],
                created: 0,
                priority,
                purpose: "p".into(),
                cases: vec![],
                language: "fr".into(),
                expires: None,
                request: None,
                in_reply_to: None,
            },
            label,
            portions: vec![Bytes(vec![]); n],
        }
    }

    fn lbl(level: &str) -> SecurityLabel {
        SecurityLabel::new(level, Agency::new("a").unwrap())
    }

    #[test]
    fn grant_deny_default_and_ceiling() {
        let p = policy();
        let to = PrincipalId::new("b/r").unwrap();
        let (high, low) = (lbl("HIGH"), lbl("LOW"));
        let m = manifest(high.clone(), Priority::Routine, 2);
        let facts = ItemFacts {
            manifest: &m,
            portion_labels: vec![&high, &low],
        };
        let d = p.decide(&facts, &to, 0);
        assert_eq!(d.effect, Effect::Allow);
        assert_eq!(d.portions, vec![1]);
        assert_eq!(
            d.rules,
            vec![rule_ids::ACCREDITATION.to_string(), "g".to_string()]
        );
        // The sender-facing reasons never state the recipient's levels.
        assert!(d
            .reasons
            .iter()
            .all(|r| !r.contains("LOW") || r.starts_with("portion 1")));

        // Deny wins over the grant.
        let m = manifest(low.clone(), Priority::Flash, 1);
        let facts = ItemFacts {
            manifest: &m,
            portion_labels: vec![&low],
        };
        let d = p.decide(&facts, &to, 0);
        assert_eq!(
            (d.effect, d.rules.clone()),
            (Effect::Deny, vec!["d".to_string()])
        );

        // No grant back from b to a: deny by default.
        let back = PrincipalId::new("a/s").unwrap();
        let mut m = manifest(low.clone(), Priority::Routine, 1);
        m.header.sender = to.clone();
        let facts = ItemFacts {
            manifest: &m,
            portion_labels: vec![&low],
        };
        let d = p.decide(&facts, &back, 0);
        assert_eq!(d.rules, vec![rule_ids::DEFAULT_DENY.to_string()]);
        assert!(!d.allowed());
    }

    #[test]
    fn no_portions_and_bad_labels_deny() {
        let p = policy();
        let to = PrincipalId::new("b/r").unwrap();
        let low = lbl("LOW");
        let m = manifest(low.clone(), Priority::Routine, 0);
        let facts = ItemFacts {
            manifest: &m,
            portion_labels: vec![],
        };
        assert_eq!(
            p.decide(&facts, &to, 0).rules,
            vec![rule_ids::LABEL_WELL_FORMED]
        );
        let mut odd = lbl("LOW");
        odd.originator.agency = Agency::new("zz").unwrap();
        let facts = ItemFacts {
            manifest: &m,
            portion_labels: vec![&odd],
        };
        let d = p.decide(&facts, &to, 0);
        assert_eq!(d.rules, vec![rule_ids::LABEL_WELL_FORMED]);
        assert!(
            d.reasons[0].contains("originator agency zz"),
            "{:?}",
            d.reasons
        );
    }

    #[test]
    fn unknown_cases_and_purposes_fail_closed() {
        let extra = "[[case]]\nid = \"K\"\npurpose = \"p\"\n[[deny]]\nid = \"no-k\"\nfrom = {}\nto = {}\ncases = [\"K\"]\n";
        let p = Policy::from_sources(&[("p.toml".into(), format!("{POLICY}{extra}"))]).unwrap();
        let to = PrincipalId::new("b/r").unwrap();
        let low = lbl("LOW");
        let mut m = manifest(low.clone(), Priority::Routine, 1);
        m.header.cases = vec!["K".into(), "UNKNOWN-1".into()];
        let facts = ItemFacts {
            manifest: &m,
            portion_labels: vec![&low],
        };
        assert_eq!(p.decide(&facts, &to, 0).rules, vec!["no-k".to_string()]);
        // Case references compare in any letter case: "k" is the case K.
        m.header.cases = vec!["k".into()];
        let facts = ItemFacts {
            manifest: &m,
            portion_labels: vec![&low],
        };
        assert_eq!(p.decide(&facts, &to, 0).rules, vec!["no-k".to_string()]);
        m.header.cases = vec![];
        let facts = ItemFacts {
            manifest: &m,
            portion_labels: vec![&low],
        };
        assert!(p.decide(&facts, &to, 0).allowed());
        // An unknown purpose: the grant (purposes = ["p"]) fails closed.
        m.header.purpose = "P".into();
        let facts = ItemFacts {
            manifest: &m,
            portion_labels: vec![&low],
        };
        assert_eq!(p.decide(&facts, &to, 0).rules, vec![rule_ids::DEFAULT_DENY]);
    }

    #[test]
    fn rel_to_narrower_on_portion_breaks_consistency() {
        let p = policy();
        let to = PrincipalId::new("b/r").unwrap();
        let item = lbl("LOW");
        let mut portion = lbl("LOW");
        portion.rel_to.insert(Agency::new("b").unwrap());
        let m = manifest(item, Priority::Routine, 1);
        let facts = ItemFacts {
            manifest: &m,
            portion_labels: vec![&portion],
        };
        assert_eq!(
            p.decide(&facts, &to, 0).rules,
            vec![rule_ids::LABEL_CONSISTENCY]
        );
    }

    #[test]
    fn check_labels_names_the_field_and_what_is_allowed() {
        let p = policy();
        let (high, low) = (lbl("HIGH"), lbl("LOW"));
        let check = |item: &SecurityLabel, portions: Vec<&SecurityLabel>| {
            let m = manifest(item.clone(), Priority::Routine, portions.len());
            p.check_labels(&ItemFacts {
                manifest: &m,
                portion_labels: portions,
            })
        };
        assert_eq!(check(&high, vec![&high, &low]), Ok(()));

        let e = check(&lbl("TOP"), vec![&low]).unwrap_err();
        assert_eq!(e.field, "label.level");
        assert!(
            e.problem.contains("\"TOP\"") && e.problem.contains("LOW, HIGH"),
            "{e}"
        );

        let e = check(&low, vec![&high]).unwrap_err();
        assert_eq!(e.field, "portions[0].label");
        assert!(e.problem.contains("dominate"), "{e}");

        let mut odd = lbl("LOW");
        odd.caveats.insert("NOPE".into());
        let e = check(&low, vec![&low, &odd]).unwrap_err();
        assert_eq!(e.field, "portions[1].label.caveats");

        odd = lbl("LOW");
        odd.originator.agency = Agency::new("zz").unwrap();
        let e = check(&odd, vec![&low]).unwrap_err();
        assert_eq!(e.field, "label.originator.agency");

        // What the sender is told matches what the decision would do.
        let m = manifest(low.clone(), Priority::Routine, 1);
        let facts = ItemFacts {
            manifest: &m,
            portion_labels: vec![&high],
        };
        assert_eq!(
            p.decide(&facts, &PrincipalId::new("b/r").unwrap(), 0).rules,
            vec![rule_ids::LABEL_CONSISTENCY]
        );
    }

    fn with(extra: &str) -> Policy {
        Policy::from_sources(&[("p.toml".into(), format!("{POLICY}{extra}"))]).unwrap()
    }

    #[test]
    fn case_match_any_all_and_every_case() {
        let extra = r#"
[[case]]
id = "K1"
purpose = "p"
[[case]]
id = "K2"
purpose = "p"
[[principal]]
id = "b/one"
kind = "desk"
role = "one"
clearance = "HIGH"
accreditation = "none"
cases = ["K1"]
[[principal]]
id = "b/all"
kind = "desk"
role = "all"
clearance = "HIGH"
accreditation = "none"
cases = ["*"]
[[grant]]
id = "any"
from = { agencies = ["a"] }
to = { roles = ["one", "all"] }
case_assignment = "recipient"
case_match = "any"
[[grant]]
id = "all"
from = { agencies = ["a"] }
to = { roles = ["one", "all"] }
case_assignment = "recipient"
case_match = "all"
"#;
        let p = with(extra);
        let low = lbl("LOW");
        let decide = |cases: &[&str], to: &str| {
            let mut m = manifest(low.clone(), Priority::Routine, 1);
            m.header.purpose = "other".into();
            m.header.cases = cases.iter().map(|c| c.to_string()).collect();
            let facts = ItemFacts {
                manifest: &m,
                portion_labels: vec![&low],
            };
            p.decide(&facts, &PrincipalId::new(to).unwrap(), 0).rules
        };
        let ids = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        // Two cases, the recipient assigned to one: `any` grants, `all` does not.
        assert_eq!(decide(&["K1", "K2"], "b/one"), ids(&["any"]));
        assert_eq!(decide(&["K1"], "b/one"), ids(&["all", "any"]));
        // `*` is every declared case…
        assert_eq!(decide(&["K1", "K2"], "b/all"), ids(&["all", "any"]));
        // … not a case the policy does not declare: `all` fails closed,
        // `any` still matches on the declared one.
        assert_eq!(decide(&["K2", "K9"], "b/all"), ids(&["any"]));
        assert_eq!(decide(&["K9"], "b/all"), ids(&[rule_ids::DEFAULT_DENY]));
        // No case named: neither matches.
        assert_eq!(decide(&[], "b/all"), ids(&[rule_ids::DEFAULT_DENY]));
        // No station ceiling: HIGH reaches a desk with accreditation none.
        let high = lbl("HIGH");
        let mut m = manifest(high.clone(), Priority::Routine, 1);
        m.header.cases = vec!["K1".into()];
        let facts = ItemFacts {
            manifest: &m,
            portion_labels: vec![&high],
        };
        assert!(p
            .decide(&facts, &PrincipalId::new("b/one").unwrap(), 0)
            .allowed());
        // explain says which case is undeclared.
        m.header.cases = vec!["K1".into(), "K9".into()];
        let facts = ItemFacts {
            manifest: &m,
            portion_labels: vec![&high],
        };
        let ex = p.explain(&facts, &PrincipalId::new("b/one").unwrap(), 0);
        assert!(
            ex.item
                .iter()
                .any(|i| i.contains("case \"K9\" is not declared")),
            "{ex}"
        );
        assert!(
            ex.to_string()
                .contains("accreditation none (not a station)"),
            "{ex}"
        );
    }

    #[test]
    fn sender_clearance_and_marking_purpose_deny_every_recipient() {
        let extra = r#"
[[purpose]]
id = "q"
[[marking]]
id = "diffusion-restreinte"
names = ["DR"]
purposes = ["p"]
"#;
        let p = with(extra);
        let to = PrincipalId::new("b/r").unwrap();
        // The sender a/s holds X and is cleared HIGH: LOW with X is fine.
        let mut low = lbl("LOW");
        low.caveats.insert("X".into());
        let m = manifest(low.clone(), Priority::Routine, 1);
        let facts = ItemFacts {
            manifest: &m,
            portion_labels: vec![&low],
        };
        assert_ne!(
            p.decide(&facts, &to, 0).rules,
            vec![rule_ids::SENDER_CLEARANCE]
        );
        // b/r (HIGH clearance, no caveat) cannot originate X material.
        let mut m = manifest(low.clone(), Priority::Routine, 1);
        m.header.sender = to.clone();
        let facts = ItemFacts {
            manifest: &m,
            portion_labels: vec![&low],
        };
        let d = p.decide(&facts, &PrincipalId::new("a/s").unwrap(), 0);
        assert_eq!(d.rules, vec![rule_ids::SENDER_CLEARANCE]);

        // Marked material: for purpose p only.
        let mut dr = lbl("LOW");
        dr.diffusion_restreinte = true;
        let mut m = manifest(dr.clone(), Priority::Routine, 1);
        let facts = ItemFacts {
            manifest: &m,
            portion_labels: vec![&dr],
        };
        assert!(p.decide(&facts, &to, 0).allowed());
        m.header.purpose = "q".into();
        let facts = ItemFacts {
            manifest: &m,
            portion_labels: vec![&dr],
        };
        let d = p.decide(&facts, &to, 0);
        assert_eq!(d.rules, vec![rule_ids::MARKING_PURPOSE]);
        assert!(d.reasons[0].contains("bound to the purposes p"), "{d:?}");
        // Under a policy that declares no such marking, the label is not
        // well formed, and the sender is told at submission.
        let plain = policy();
        let d = plain.decide(&facts, &to, 0);
        assert_eq!(d.rules, vec![rule_ids::LABEL_WELL_FORMED]);
        let e = plain.check_labels(&facts).unwrap_err();
        assert_eq!(e.field, "label.diffusion_restreinte");
    }

    #[test]
    fn answer_deadlines_default_to_the_directive_and_the_policy_may_shorten_them() {
        use crate::domain::item::{Accessibility, Request};
        let p = policy();
        let m = |prio, acc| {
            let mut m = manifest(lbl("LOW"), prio, 1);
            m.header.request = Some(Request { accessibility: acc });
            m
        };
        let due = |p: &Policy, prio, acc| p.answer_due(&m(prio, acc).header, 1_000);
        assert_eq!(
            due(&p, Priority::Flash, Accessibility::Indirect),
            Some(1_000 + 3_600)
        );
        assert_eq!(
            due(&p, Priority::Urgent, Accessibility::Direct),
            Some(1_000 + 8 * 3_600)
        );
        assert_eq!(
            due(&p, Priority::Urgent, Accessibility::Indirect),
            Some(1_000 + 3 * 86_400)
        );
        assert_eq!(
            due(&p, Priority::Routine, Accessibility::Direct),
            Some(1_000 + 7 * 86_400)
        );
        // Not a request: no deadline.
        assert_eq!(
            p.answer_due(&manifest(lbl("LOW"), Priority::Flash, 1).header, 1_000),
            None
        );

        let p = with(
            r#"
[[purpose]]
id = "q"
[[deadline]]
priority = "URGENT"
within = "6h"
[[deadline]]
priority = "URGENT"
accessibility = "direct"
purposes = ["p"]
within = "2h"
[[deadline]]
priority = "ROUTINE"
purposes = ["q"]
within = "1d"
"#,
        );
        // The shortest of the policy's matching entries.
        assert_eq!(
            due(&p, Priority::Urgent, Accessibility::Direct),
            Some(1_000 + 2 * 3_600)
        );
        assert_eq!(
            due(&p, Priority::Urgent, Accessibility::Indirect),
            Some(1_000 + 6 * 3_600)
        );
        // No entry for this purpose: the default.
        assert_eq!(
            due(&p, Priority::Routine, Accessibility::Direct),
            Some(1_000 + 7 * 86_400)
        );
        assert_eq!(
            p.deadline_for(Priority::Routine, "q", Accessibility::Direct)
                .map(|d| d.within_secs),
            Some(86_400)
        );
        // The table is part of the digest.
        assert_ne!(
            p.digest_hex(),
            with("[[purpose]]\nid = \"q\"\n").digest_hex()
        );
    }
}
