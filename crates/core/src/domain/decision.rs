//! The result of deciding whether one recipient may receive an item.
//!
//! A [`Decision`] is made per item and per recipient, at submission and
//! again at delivery. It says allow or deny, which portions are released,
//! which rules decided, and why, with the digest of the policy that decided.
//! This module defines the result and what a decider sees of an item
//! ([`ItemFacts`]: the signed manifest and portion labels, never bodies); it
//! does no I/O and never reads the clock: `now` is passed in.

use serde::{Deserialize, Serialize};

use super::bounds::FieldError;
use super::item::{Manifest, VerifiedItem};
use super::label::SecurityLabel;
use super::principal::PrincipalId;

/// Rule ids of the built-in mandatory rules start with this.
pub const MANDATORY_RULE_PREFIX: &str = "mandatory.";
/// Rule id of the mandatory REL TO rule.
pub const REL_TO_RULE: &str = "mandatory.rel_to";
/// Rule id of the mandatory third-party rule.
pub const THIRD_PARTY_RULE: &str = "mandatory.third_party";
/// Rule id of the mandatory rule that the sender is cleared for what it
/// sends: its clearance covers the item label's level and it holds every
/// caveat of it.
pub const SENDER_CLEARANCE_RULE: &str = "mandatory.sender_clearance";
/// Rule id of the mandatory rule that purpose-bound material (Diffusion
/// restreinte / Beperkte verspreiding) goes only to flows for a purpose
/// the marking is bound to.
pub const MARKING_PURPOSE_RULE: &str = "mandatory.marking_purpose";
/// Rule id of "nothing granted it": deny by default.
pub const DEFAULT_DENY_RULE: &str = "default.deny";

/// Allow or deny.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    /// The recipient receives the released portions.
    Allow,
    /// The recipient receives nothing and learns nothing of the content.
    Deny,
}

/// The outcome for one recipient.
///
/// A proof, not plain data: its fields are private and only the decider
/// (the policy engine, in the core) builds one, so no other module can
/// fabricate a decision or edit one it was given; it is not deserialisable
/// either. Read it through its accessors; what the gateway records and
/// releases comes from its methods ([`Decision::released`],
/// [`Decision::effect_releasing`]), not from recomputing its fields.
///
/// ```compile_fail
/// use passerelle::domain::decision::{Decision, Effect};
/// use passerelle::domain::principal::PrincipalId;
/// // Outside the decider, a decision cannot be built…
/// let d = Decision {
///     recipient: PrincipalId::new("vsse/analysis/ct").unwrap(),
///     effect: Effect::Allow,
///     portions: vec![0],
///     rules: vec![],
///     reasons: vec![],
///     policy_digest: String::new(),
/// };
/// ```
///
/// ```compile_fail
/// use passerelle::domain::decision::{Decision, Effect};
/// use passerelle::domain::principal::PrincipalId;
/// // …not even through its constructor.
/// let d = Decision::new(
///     PrincipalId::new("vsse/analysis/ct").unwrap(),
///     Effect::Allow,
///     vec![0],
///     vec![],
///     vec![],
///     String::new(),
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// Who the decision is about.
    recipient: PrincipalId,
    /// Allow or deny.
    effect: Effect,
    /// Indices of the portions released (empty when denied).
    portions: Vec<u32>,
    /// Ids of the rules that granted or denied.
    rules: Vec<String>,
    /// Human-readable reasons, for the security officer and the auditor.
    reasons: Vec<String>,
    /// Hex SHA-256 of the policy that decided.
    policy_digest: String,
}

impl Decision {
    /// The decider's constructor. `pub(crate)`: once the core is its own
    /// crate, only the core's decider can call it.
    pub(crate) fn new(
        recipient: PrincipalId,
        effect: Effect,
        portions: Vec<u32>,
        rules: Vec<String>,
        reasons: Vec<String>,
        policy_digest: String,
    ) -> Decision {
        Decision {
            recipient,
            effect,
            portions,
            rules,
            reasons,
            policy_digest,
        }
    }

    /// Whether the recipient receives anything.
    pub fn allowed(&self) -> bool {
        self.effect == Effect::Allow && !self.portions.is_empty()
    }

    /// The portions the recipient receives: none unless
    /// [`allowed`](Decision::allowed).
    pub fn released(&self) -> &[u32] {
        if self.allowed() {
            &self.portions
        } else {
            &[]
        }
    }

    /// The effect to record when `released` are the portions actually
    /// given (at delivery, never more than at submission): deny when
    /// nothing is, else this decision's effect.
    pub fn effect_releasing(&self, released: &[u32]) -> Effect {
        if released.is_empty() {
            Effect::Deny
        } else {
            self.effect
        }
    }

    /// Who the decision is about.
    pub fn recipient(&self) -> &PrincipalId {
        &self.recipient
    }

    /// Allow or deny.
    pub fn effect(&self) -> Effect {
        self.effect
    }

    /// Indices of the portions the decision releases (empty when denied).
    pub fn portions(&self) -> &[u32] {
        &self.portions
    }

    /// Ids of the rules that granted or denied.
    pub fn rules(&self) -> &[String] {
        &self.rules
    }

    /// Human-readable reasons, for the security officer and the auditor.
    pub fn reasons(&self) -> &[String] {
        &self.reasons
    }

    /// Hex SHA-256 of the policy that decided.
    pub fn policy_digest(&self) -> &str {
        &self.policy_digest
    }
}

/// What a decider may look at: the signed manifest and each portion's label.
#[derive(Clone, Debug)]
pub struct ItemFacts<'a> {
    /// The sender's signed manifest (header and item label).
    pub manifest: &'a Manifest,
    /// Each portion's label, in manifest order.
    pub portion_labels: Vec<&'a SecurityLabel>,
}

impl<'a> From<&'a VerifiedItem> for ItemFacts<'a> {
    fn from(item: &'a VerifiedItem) -> Self {
        ItemFacts {
            manifest: item.manifest(),
            portion_labels: item.portions().iter().map(|p| &p.label).collect(),
        }
    }
}

/// Decides, for one item and one recipient, what is released.
///
/// Implementations are pure: no I/O, no clock (`now` is given).
pub trait Decider: Send + Sync + 'static {
    /// Hex SHA-256 of the rules in force, recorded with every decision.
    fn digest(&self) -> String;
    /// Whether `principal` is known at all: only principals of the policy
    /// in force may use the API, and unknown recipients are refused before
    /// any decision.
    fn knows(&self, principal: &PrincipalId) -> bool;
    /// Whether `principal` may submit items (auditors send nothing unless
    /// the policy says so). `false` for a principal the policy does not know.
    fn may_send(&self, principal: &PrincipalId) -> bool;
    /// Whether `principal` may read the proof of every audit entry, not
    /// only of the entries that concern it. `false` for a principal the
    /// policy does not know.
    fn reads_whole_log(&self, principal: &PrincipalId) -> bool;
    /// The decision for `recipient`.
    fn decide(&self, item: &ItemFacts<'_>, recipient: &PrincipalId, now: i64) -> Decision;
    /// How long an item's content is kept, in days, for its item-level
    /// classification `level`; `None` keeps it until an operator purges it.
    fn retention_days(&self, level: &str) -> Option<u32>;
    /// Whether every label of the item fits the scheme in force and the
    /// item label dominates every portion label; the error names the field
    /// (`label.level`, `portions[1].label`) and the values allowed there.
    /// The gateway refuses such an item at submission, before storing
    /// anything; [`Decider::decide`] denies it all the same.
    fn check_labels(&self, item: &ItemFacts<'_>) -> Result<(), FieldError>;
    /// When the answer to the item is due (Unix seconds, UTC), if the item
    /// is a request (`header.request`): `accepted_at`, the time the gateway
    /// accepted it, plus the deadline the rules in force give its priority,
    /// purpose and accessibility. `None` for an item that asks nothing.
    /// Pure: the gateway passes the acceptance time.
    fn answer_due(&self, item: &ItemFacts<'_>, accepted_at: i64) -> Option<i64>;
}
