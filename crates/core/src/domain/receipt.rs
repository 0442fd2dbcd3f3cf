//! The receipt a sender gets when the gateway accepts an item.
//!
//! A receipt records what the gateway took (item reference, id, digest,
//! time) and the outcome for each recipient. Outcomes for denied recipients
//! carry only reasons fit for the sender: never another principal's
//! clearance or caveats. This module is data only.

use serde::{Deserialize, Serialize};

use super::bytes::Bytes;
use super::decision::{
    Decision, DEFAULT_DENY_RULE, MANDATORY_RULE_PREFIX, MARKING_PURPOSE_RULE, REL_TO_RULE,
    SENDER_CLEARANCE_RULE, THIRD_PARTY_RULE,
};
use super::principal::PrincipalId;

// The item reference lived here; its path stays for outside code.
pub use super::reference::{item_ref, ItemRef};

/// What happened for one recipient at submission.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecipientOutcome {
    /// `queued` (in the recipient's inbox) or `denied`.
    pub outcome: Outcome,
    /// For a denied recipient, the kinds of rule that refused, safe to show
    /// to the sender (see [`RecipientOutcome::for_sender`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
    /// The recipient.
    pub recipient: PrincipalId,
    /// Number of portions released to the recipient.
    pub portions_released: u32,
}

impl RecipientOutcome {
    /// The outcome of `decision` as its sender may see it. A denial names
    /// only the kind of rule that refused (a mandatory rule, a deny rule
    /// with its id, or no grant), never which mandatory rule: "the
    /// recipient's accreditation does not cover this level" would tell the
    /// sender an attribute of another principal. The two mandatory rules
    /// that depend only on the item and the recipient's agency (REL TO and
    /// third-party consent) are named, and so are the two that depend only
    /// on the item and its sender (the sender's own clearance, and the
    /// purpose of Diffusion restreinte material). The full reasons stay on
    /// the audit log (in `decided` entries) and in `policy explain`.
    pub fn for_sender(decision: &Decision) -> Self {
        let allowed = decision.allowed();
        let mut reasons = Vec::new();
        if !allowed {
            let mut mandatory = false;
            let mut no_grant = false;
            let mut deny_rules = Vec::new();
            for rule in decision.rules() {
                if rule == THIRD_PARTY_RULE {
                    // About the item's originator, not the recipient: the
                    // sender is the one who can ask the partner for consent.
                    reasons.push(format!(
                        "refused by mandatory rule {rule}: no recorded consent of the originator covers this release"
                    ));
                } else if rule == REL_TO_RULE {
                    // The recipient's agency is in its principal id: the
                    // sender knows it already.
                    reasons.push(format!(
                        "refused by mandatory rule {rule}: the recipient's agency is not in the REL TO"
                    ));
                } else if rule == SENDER_CLEARANCE_RULE {
                    // About the sender's own attributes and its own label.
                    reasons.push(format!(
                        "refused by mandatory rule {rule}: the item label is above your own clearance, or carries a caveat you do not hold"
                    ));
                } else if rule == MARKING_PURPOSE_RULE {
                    // About the item's marking and purpose, both the sender's.
                    reasons.push(format!(
                        "refused by mandatory rule {rule}: the item is marked Diffusion restreinte and its purpose is not one the marking is bound to"
                    ));
                } else if rule.starts_with(MANDATORY_RULE_PREFIX) {
                    mandatory = true;
                } else if rule == DEFAULT_DENY_RULE {
                    no_grant = true;
                } else {
                    deny_rules.push(rule);
                }
            }
            if mandatory {
                reasons.push(
                    "refused by a mandatory rule on the recipient's own attributes (which one is not told to the sender)"
                        .to_string(),
                );
            }
            reasons.extend(
                deny_rules
                    .iter()
                    .map(|r| format!("refused by deny rule {r}")),
            );
            if no_grant {
                reasons.push("no grant: no flow rule grants this flow".to_string());
            }
            if reasons.is_empty() {
                reasons.push("refused".to_string());
            }
        }
        RecipientOutcome {
            recipient: decision.recipient().clone(),
            outcome: if allowed {
                Outcome::Queued
            } else {
                Outcome::Denied
            },
            portions_released: if allowed {
                decision.portions().len() as u32
            } else {
                0
            },
            reasons,
        }
    }
}

/// Outcome for a recipient.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Put in the recipient's inbox.
    Queued,
    /// Refused by policy; the recipient learns nothing.
    Denied,
}

/// The acceptance receipt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// Hex SHA-256 of the signed manifest.
    pub digest: String,
    /// The sender.
    pub sender: PrincipalId,
    /// The sender's id for the item.
    pub item_id: String,
    /// The gateway's reference for the item (see [`item_ref`]).
    pub item_ref: String,
    /// One outcome per recipient, in the header's order.
    pub outcomes: Vec<RecipientOutcome>,
    /// When the gateway made the item durable, seconds since the Unix epoch.
    pub accepted_at: i64,
    /// Index of the item's entry in the audit log.
    pub audit_index: u64,
    /// Hex SHA-256 of the policy that decided.
    pub policy_digest: String,
}

/// Content type of a signed receipt's COSE payload.
pub const RECEIPT_CONTENT_TYPE: &str = "application/vnd.passerelle.receipt+cbor";

/// An inclusion proof of an audit entry against a signed checkpoint
/// (RFC 9162 §2.1.3, C2SP tlog-checkpoint).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InclusionProof {
    /// The tree size the proof is for: the checkpoint's.
    pub size: u64,
    /// The audit entry's bytes (its leaf data).
    pub entry: Bytes,
    /// Its index.
    pub index: u64,
    /// The proof's hashes, leaf to root.
    pub hashes: Vec<Bytes>,
    /// The signed checkpoint (a C2SP signed note).
    pub checkpoint: String,
}

/// A receipt with the gateway's signature, and once a checkpoint covers it,
/// an inclusion proof of its audit entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedReceipt {
    /// Tagged COSE_Sign1 by the gateway whose payload is the receipt's CBOR.
    pub cose: Bytes,
    /// The receipt, as signed.
    pub receipt: Receipt,
    /// Inclusion proof, when a checkpoint covers the entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inclusion: Option<InclusionProof>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receipts_and_proofs_are_in_rfc8949_deterministic_order() {
        let receipt = Receipt {
            item_ref: "00".repeat(16),
            item_id: "id".into(),
            sender: PrincipalId::new("police/lo/rabat").unwrap(),
            digest: "dd".into(),
            accepted_at: 1,
            policy_digest: "ab".into(),
            outcomes: vec![RecipientOutcome {
                recipient: PrincipalId::new("vsse/analysis/ct").unwrap(),
                outcome: Outcome::Denied,
                portions_released: 0,
                reasons: vec!["no grant".into()],
            }],
            audit_index: 7,
        };
        let signed = SignedReceipt {
            receipt,
            cose: Bytes(vec![1]),
            inclusion: Some(InclusionProof {
                entry: Bytes(vec![2]),
                index: 1,
                size: 2,
                hashes: vec![Bytes(vec![3])],
                checkpoint: "c".into(),
            }),
        };
        crate::domain::bytes::assert_core_deterministic(&crate::domain::bytes::to_cbor(&signed));
    }
}
