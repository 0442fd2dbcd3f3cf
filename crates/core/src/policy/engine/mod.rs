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
//!
//! Its parts: `labels` (a label under the scheme), `matching` (the built-in
//! checks and flow-rule predicates for one portion), `evaluate` (the one
//! decision loop) and `explain` (the officer's account, and the tracer the
//! loop reports to).

use super::model::*;
use crate::domain::bounds::{self, FieldError};
use crate::domain::decision::{Decider, Decision, Effect, ItemFacts};
use crate::domain::item::Priority;
use crate::domain::label::{HandlingCode, SecurityLabel};
use crate::domain::principal::PrincipalId;

mod evaluate;
mod explain;
mod labels;
mod matching;
#[cfg(test)]
mod tests;

pub use explain::{Check, Explanation, PortionExplanation, RuleTrace};
use explain::{NoTrace, Trace};

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
        self.evaluate(facts, recipient, now_unix_secs, &mut NoTrace)
    }

    /// Like [`Policy::decide`], with the security officer's account of every
    /// check and rule.
    pub fn explain(
        &self,
        facts: &ItemFacts<'_>,
        recipient: &PrincipalId,
        now_unix_secs: i64,
    ) -> Explanation {
        let mut trace = Trace::default();
        let decision = self.evaluate(facts, recipient, now_unix_secs, &mut trace);
        let mut item = trace.item;
        if item.is_empty() && trace.portions.is_empty() {
            // Refused before any portion was looked at: say why at item level.
            item = decision.reasons().to_vec();
        }
        Explanation {
            decision,
            recipient_profile: trace.recipient_profile,
            item,
            portions: trace.portions,
        }
    }

    fn deny(&self, recipient: &PrincipalId, rule: &str, reason: String) -> Decision {
        Decision::new(
            recipient.clone(),
            Effect::Deny,
            Vec::new(),
            vec![rule.to_string()],
            vec![reason],
            self.digest_hex.clone(),
        )
    }
}
