//! The gateway's attestation of one delivery.
//!
//! When the gateway hands an item to a recipient it signs, as a COSE_Sign1,
//! what it released and why: the item's digest, sender, recipient, portions
//! released, the decision with its rules, the policy digest, the time and
//! the index of the delivery's audit entry. A recipient checks it next to
//! the sender's own signature; an auditor can match it to the log. Data only.

use serde::{Deserialize, Serialize};

use super::decision::Effect;
use super::principal::PrincipalId;

/// Content type of an attestation's COSE payload.
pub const ATTESTATION_CONTENT_TYPE: &str = "application/vnd.passerelle.attestation+cbor";

/// What the gateway attests for one delivery.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attestation {
    /// When it was delivered, seconds since the Unix epoch.
    pub time: i64,
    /// Rules that decided.
    pub rules: Vec<String>,
    /// The decision.
    pub effect: Effect,
    /// The sender.
    pub sender: PrincipalId,
    /// Gateway reference of the item.
    pub item_ref: String,
    /// Portions released.
    pub portions: Vec<u32>,
    /// The recipient.
    pub recipient: PrincipalId,
    /// When the gateway accepted the item (and checked the sender's
    /// certificate), seconds since the Unix epoch.
    pub accepted_at: i64,
    /// Index of the delivery's audit entry.
    pub audit_index: u64,
    /// Hex SHA-256 of the sender's signed manifest.
    pub item_digest: String,
    /// Hex SHA-256 of the policy that decided.
    pub policy_digest: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attestations_are_in_rfc8949_deterministic_order() {
        let attestation = Attestation {
            time: 2,
            rules: vec!["vsse.context-to-lo".into()],
            effect: Effect::Allow,
            sender: PrincipalId::new("vsse/analysis/ct").unwrap(),
            item_ref: "00".repeat(16),
            portions: vec![1],
            recipient: PrincipalId::new("police/lo/rabat").unwrap(),
            accepted_at: 1,
            audit_index: 3,
            item_digest: "dd".into(),
            policy_digest: "ab".into(),
        };
        crate::domain::bytes::assert_core_deterministic(&crate::domain::bytes::to_cbor(
            &attestation,
        ));
    }
}
