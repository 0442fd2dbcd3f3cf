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
    /// Gateway reference of the item.
    pub item_ref: String,
    /// Hex SHA-256 of the sender's signed manifest.
    pub item_digest: String,
    /// The sender.
    pub sender: PrincipalId,
    /// The recipient.
    pub recipient: PrincipalId,
    /// Portions released.
    pub portions: Vec<u32>,
    /// The decision.
    pub effect: Effect,
    /// Rules that decided.
    pub rules: Vec<String>,
    /// Hex SHA-256 of the policy that decided.
    pub policy_digest: String,
    /// When the gateway accepted the item (and checked the sender's
    /// certificate), seconds since the Unix epoch.
    pub accepted_at: i64,
    /// When it was delivered, seconds since the Unix epoch.
    pub time: i64,
    /// Index of the delivery's audit entry.
    pub audit_index: u64,
}
