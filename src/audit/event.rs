//! What an audit entry says: one event, its time, and nothing of any payload.
//!
//! Every event the oversight bodies may ask about — an item accepted with
//! the decision for each recipient, a submission refused, a delivery or a
//! refused delivery, an acknowledgement, a policy loaded, a refused
//! handshake or identity, the gateway starting and stopping — is one
//! [`AuditEntry`], encoded as deterministic CBOR; those bytes are the leaf
//! data of the RFC 9162 tree. Entries carry digests, labels, principals,
//! decisions and rule ids, never item content, so payloads can be purged at
//! the end of their retention while the log stays verifiable. This module is
//! data only: no I/O, no clock.

use serde::{Deserialize, Serialize};

use crate::domain::bytes::{from_cbor, to_cbor, CborError};
use crate::domain::decision::Effect;
use crate::domain::label::SecurityLabel;
use crate::domain::principal::PrincipalId;

/// Version of the entry format.
pub const ENTRY_VERSION: u32 = 1;

/// The decision for one recipient, as recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedDecision {
    /// The recipient.
    pub recipient: PrincipalId,
    /// Allow or deny.
    pub effect: Effect,
    /// Portions released.
    pub portions: Vec<u32>,
    /// Rules that decided.
    pub rules: Vec<String>,
    /// Reasons.
    pub reasons: Vec<String>,
}

/// An event on the audit log.
// Entries are built once per event and encoded straight away; boxing the
// large variant would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuditEvent {
    /// The gateway started.
    GatewayStarted {
        /// Software version.
        version: String,
        /// Hex SHA-256 of the policy in force.
        policy_digest: String,
    },
    /// The gateway stopped cleanly.
    GatewayStopped,
    /// A policy was loaded (at start or on reload).
    PolicyLoaded {
        /// Hex SHA-256 of the policy.
        policy_digest: String,
    },
    /// A reload was refused; the old policy stays in force.
    PolicyRefused {
        /// What was wrong.
        reason: String,
    },
    /// A TLS handshake failed or a certificate's identity was refused.
    ConnectionRefused {
        /// Peer address.
        peer: String,
        /// Why.
        reason: String,
    },
    /// A submission was refused before anything was stored.
    SubmissionRefused {
        /// The authenticated caller.
        caller: PrincipalId,
        /// Problem type slug.
        problem: String,
        /// Detail, as given to the caller.
        detail: String,
    },
    /// A principal asked for the proof of an audit entry that does not
    /// concern it, and was refused.
    ProofRefused {
        /// The caller.
        caller: PrincipalId,
        /// The entry it asked about.
        index: u64,
    },
    /// A principal asked to fetch, acknowledge or read the receipt of an
    /// item that is not, or no longer, its own to ask for.
    ItemRequestRefused {
        /// The caller.
        caller: PrincipalId,
        /// The reference it asked for.
        item_ref: String,
        /// `fetch`, `ack` or `receipt`.
        action: String,
    },
    /// An item was accepted; one decision per recipient.
    ItemAccepted {
        /// Gateway reference.
        item_ref: String,
        /// Sender's id.
        item_id: String,
        /// Sender.
        sender: PrincipalId,
        /// Hex SHA-256 of the signed manifest.
        digest: String,
        /// Purpose.
        purpose: String,
        /// Case references.
        cases: Vec<String>,
        /// Item label.
        label: SecurityLabel,
        /// Portion labels, in order.
        portion_labels: Vec<SecurityLabel>,
        /// Decisions.
        decisions: Vec<RecordedDecision>,
        /// Hex SHA-256 of the policy that decided.
        policy_digest: String,
    },
    /// An item was handed to a recipient.
    Delivered {
        /// Gateway reference.
        item_ref: String,
        /// Hex digest of the manifest.
        digest: String,
        /// Sender.
        sender: PrincipalId,
        /// The decision at delivery.
        decision: RecordedDecision,
        /// Hex SHA-256 of the policy that decided.
        policy_digest: String,
    },
    /// Delivery was refused by the policy in force at delivery.
    DeliveryRefused {
        /// Gateway reference.
        item_ref: String,
        /// Sender.
        sender: PrincipalId,
        /// The decision at delivery.
        decision: RecordedDecision,
        /// Hex SHA-256 of the policy that decided.
        policy_digest: String,
    },
    /// An item expired (its header's expiry passed) before this recipient
    /// acknowledged it; it is no longer offered.
    Expired {
        /// Gateway reference.
        item_ref: String,
        /// The recipient who never acknowledged it.
        recipient: PrincipalId,
    },
    /// An item's content was purged at the end of its retention; its
    /// digest, receipt and audit entries stay.
    Purged {
        /// Gateway reference.
        item_ref: String,
        /// Hex digest of the signed manifest.
        digest: String,
    },
    /// A recipient acknowledged an item.
    Acknowledged {
        /// Gateway reference.
        item_ref: String,
        /// The recipient.
        recipient: PrincipalId,
    },
    /// The operator started a new log (`passerelle serve --new-log`) over a
    /// store that disagreed with what the gateway had signed, or at a first
    /// start. Entries before this one may not extend the checkpoints an
    /// auditor kept from before.
    NewLog {
        /// The last head the gateway had signed for the previous log (a
        /// C2SP checkpoint note, verifiable with the gateway's key), when
        /// one was known and verified.
        previous_head: Option<String>,
        /// What the gateway found wrong, in words.
        found: String,
    },
    /// At start, accepted items were found whose stored rows had vanished
    /// (deleted behind the gateway's back), or whose open inbox entries had
    /// vanished or been closed without an audit entry.
    StoreInconsistency {
        /// Accepted items whose row is gone.
        items_lost: u64,
        /// Open deliveries whose inbox entry is gone or closed.
        deliveries_lost: u64,
        /// The first references concerned, sorted (at most 32).
        item_refs: Vec<String>,
    },
}

/// One entry of the audit log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Always [`ENTRY_VERSION`].
    pub v: u32,
    /// Seconds since the Unix epoch.
    pub time: i64,
    /// The event: a map with one key, the event's kebab-case name (or just
    /// the name, for events without fields). Serde's externally tagged
    /// form: it decodes without buffering, which is most of what an
    /// auditor's verification of a large log spends.
    pub event: AuditEvent,
}

impl AuditEntry {
    /// An entry for `event` at `time`.
    pub fn new(time: i64, event: AuditEvent) -> Self {
        AuditEntry {
            v: ENTRY_VERSION,
            time,
            event,
        }
    }

    /// The leaf data: deterministic CBOR.
    pub fn encode(&self) -> Vec<u8> {
        to_cbor(self)
    }

    /// Decodes leaf data.
    pub fn decode(bytes: &[u8]) -> Result<Self, CborError> {
        from_cbor(bytes)
    }

    /// Principals this entry is about: who may ask for a proof of it.
    pub fn principals(&self) -> Vec<&PrincipalId> {
        match &self.event {
            AuditEvent::SubmissionRefused { caller, .. }
            | AuditEvent::ProofRefused { caller, .. } => {
                vec![caller]
            }
            AuditEvent::ItemAccepted {
                sender, decisions, ..
            } => {
                let mut v = vec![sender];
                v.extend(decisions.iter().map(|d| &d.recipient));
                v
            }
            AuditEvent::Delivered {
                sender, decision, ..
            }
            | AuditEvent::DeliveryRefused {
                sender, decision, ..
            } => {
                vec![sender, &decision.recipient]
            }
            AuditEvent::Acknowledged { recipient, .. } | AuditEvent::Expired { recipient, .. } => {
                vec![recipient]
            }
            _ => vec![],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_encode_deterministically() {
        let e = AuditEntry::new(
            1_790_000_000,
            AuditEvent::Acknowledged {
                item_ref: "ab".into(),
                recipient: PrincipalId::new("vsse/analysis/ct").unwrap(),
            },
        );
        let bytes = e.encode();
        assert_eq!(AuditEntry::decode(&bytes).unwrap(), e);
        assert_eq!(bytes, e.encode());
        assert_eq!(e.principals().len(), 1);
        assert!(AuditEntry::decode(b"\x01").is_err());
    }
}
