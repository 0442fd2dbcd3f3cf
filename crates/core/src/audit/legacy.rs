//! Entries of format version 1, read so that logs written before the
//! version 2 entry format stay verifiable and readable.
//!
//! Version 1 differs from version 2 in four events: refusals were one entry
//! each (`connection-refused`, `submission-refused`, `proof-refused`,
//! `item-request-refused`) where version 2 counts them in `refused`
//! entries, and `item-accepted` held every recipient's full decision
//! (`decisions`) where version 2 holds the sender's view (`outcomes`) and
//! one `decided` entry per recipient. This module decodes the version 1
//! shapes and maps each to the version 2 event that says the same thing,
//! for the auditor's tools; it never writes an entry, and nothing the
//! gateway writes is ever decoded through it when the current shape fits.
//! [`AuditEntry::decode`], the one reader of entries of either version, is
//! here so that the current format ([`super::event`]) never depends on this
//! one.

use serde::Deserialize;

use super::event::{AuditEntry, AuditEvent, RecordedDecision, RefusedSubject};
use crate::domain::bytes::{from_cbor, CborError};
use crate::domain::decision::Effect;
use crate::domain::label::SecurityLabel;
use crate::domain::principal::PrincipalId;
use crate::domain::receipt::{Outcome, RecipientOutcome};

/// The entry format version this module reads.
pub const V1: u32 = 1;

/// A version 1 entry.
#[derive(Deserialize)]
struct V1Entry {
    v: u32,
    time: i64,
    event: V1Event,
}

/// The version 1 events whose shape version 2 changed or dropped. Events
/// whose shape did not change decode through the current
/// [`AuditEvent`] and never reach this enum.
// Decoded once per entry and mapped straight away; boxing would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
enum V1Event {
    ConnectionRefused {
        peer: String,
        reason: String,
    },
    SubmissionRefused {
        caller: PrincipalId,
        problem: String,
        detail: String,
    },
    ProofRefused {
        caller: PrincipalId,
        index: u64,
    },
    ItemRequestRefused {
        caller: PrincipalId,
        item_ref: String,
        action: String,
    },
    ItemAccepted {
        item_ref: String,
        item_id: String,
        sender: PrincipalId,
        digest: String,
        purpose: String,
        cases: Vec<String>,
        label: SecurityLabel,
        portion_labels: Vec<SecurityLabel>,
        decisions: Vec<RecordedDecision>,
        policy_digest: String,
    },
}

/// A version 1 entry read and mapped to version 2, with what the mapping
/// could not carry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapped {
    /// The entry as version 2 would say it; `v` stays 1.
    pub entry: AuditEntry,
    /// For a version 1 `item-accepted`, each recipient's full decision,
    /// which version 2 writes in `decided` entries.
    pub decisions: Vec<RecordedDecision>,
}

/// Decodes `bytes` as a version 1 entry of a shape that version 2
/// changed, or says why not.
pub fn decode_v1(bytes: &[u8]) -> Result<Mapped, CborError> {
    let e: V1Entry = from_cbor(bytes)?;
    if e.v != V1 {
        return Err(CborError(format!(
            "entry version {} with a version 1 event",
            e.v
        )));
    }
    let refused = |subject, cause: String, samples| AuditEvent::Refused {
        last: e.time,
        cause,
        count: 1,
        first: e.time,
        samples,
        subject,
    };
    let mut decisions = Vec::new();
    let event = match e.event {
        V1Event::ConnectionRefused { peer, reason } => {
            refused(RefusedSubject::Address(peer), reason, vec![])
        }
        V1Event::SubmissionRefused {
            caller,
            problem,
            detail,
        } => refused(RefusedSubject::Principal(caller), problem, vec![detail]),
        V1Event::ProofRefused { caller, index } => refused(
            RefusedSubject::Principal(caller),
            "proof-refused".into(),
            vec![index.to_string()],
        ),
        V1Event::ItemRequestRefused {
            caller,
            item_ref,
            action,
        } => refused(
            RefusedSubject::Principal(caller),
            format!("{action}-refused"),
            vec![item_ref],
        ),
        V1Event::ItemAccepted {
            item_ref,
            item_id,
            sender,
            digest,
            purpose,
            cases,
            label,
            portion_labels,
            decisions: ds,
            policy_digest,
        } => {
            let outcomes = ds.iter().map(outcome).collect();
            decisions = ds;
            AuditEvent::ItemAccepted {
                cases,
                label,
                digest,
                sender,
                item_id,
                purpose,
                item_ref,
                outcomes,
                priority: None,
                due: None,
                answers: None,
                policy_digest,
                portion_labels,
            }
        }
    };
    Ok(Mapped {
        entry: AuditEntry {
            v: e.v,
            time: e.time,
            event,
        },
        decisions,
    })
}

// Reading an entry of either version lives here rather than beside the
// current format, so that the current format never depends on the old one.
impl AuditEntry {
    /// Decodes leaf data of the current format, or of version 1 mapped to
    /// the current events (see this module).
    pub fn decode(bytes: &[u8]) -> Result<Self, CborError> {
        Self::decode_any(bytes).map(|m| m.entry)
    }

    /// Like [`AuditEntry::decode`], keeping what a version 1 entry said
    /// that its current form does not (the full decisions of a version 1
    /// `item-accepted`).
    pub fn decode_any(bytes: &[u8]) -> Result<Mapped, CborError> {
        // The current shape first: it is what the gateway writes, and most
        // of what an auditor's verification spends is spent here.
        match from_cbor::<AuditEntry>(bytes) {
            Ok(entry) => Ok(Mapped {
                entry,
                decisions: Vec::new(),
            }),
            Err(current) => decode_v1(bytes).map_err(|_| current),
        }
    }
}

/// What a version 1 decision told the sender, as version 2 records it; a
/// denial keeps the rules that decided, which only auditors read here.
fn outcome(d: &RecordedDecision) -> RecipientOutcome {
    let allowed = d.effect == Effect::Allow && !d.portions.is_empty();
    RecipientOutcome {
        outcome: if allowed {
            Outcome::Queued
        } else {
            Outcome::Denied
        },
        reasons: if allowed { vec![] } else { d.rules.clone() },
        recipient: d.recipient.clone(),
        portions_released: if allowed { d.portions.len() as u32 } else { 0 },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ciborium::Value;

    /// A CBOR map with text keys in the order given: version 1 entries were
    /// written with fields in declaration order.
    fn map(fields: Vec<(&str, Value)>) -> Value {
        Value::Map(
            fields
                .into_iter()
                .map(|(k, v)| (Value::Text(k.into()), v))
                .collect(),
        )
    }

    fn text(s: &str) -> Value {
        Value::Text(s.into())
    }

    /// A version 1 entry, encoded as version 1 wrote it.
    fn v1(time: i64, name: &str, fields: Vec<(&str, Value)>) -> Vec<u8> {
        let entry = map(vec![
            ("v", Value::Integer(1.into())),
            ("time", Value::Integer(time.into())),
            ("event", map(vec![(name, map(fields))])),
        ]);
        let mut out = Vec::new();
        ciborium::into_writer(&entry, &mut out).unwrap();
        out
    }

    fn label() -> Value {
        map(vec![
            ("level", text("SECRET")),
            ("originator", map(vec![("agency", text("vsse"))])),
        ])
    }

    fn decision(recipient: &str, effect: &str, portions: &[u64], rule: &str) -> Value {
        map(vec![
            ("recipient", text(recipient)),
            ("effect", text(effect)),
            (
                "portions",
                Value::Array(portions.iter().map(|&p| Value::Integer(p.into())).collect()),
            ),
            ("rules", Value::Array(vec![text(rule)])),
            ("reasons", Value::Array(vec![text("why")])),
        ])
    }

    #[test]
    fn version_1_entries_read_as_the_events_that_replaced_them() {
        let p = |s: &str| PrincipalId::new(s).unwrap();
        let accepted = v1(
            10,
            "item-accepted",
            vec![
                ("item_ref", text("ab")),
                ("item_id", text("id-1")),
                ("sender", text("vsse/analysis/ct")),
                ("digest", text("dd")),
                ("purpose", text("terrorism")),
                ("cases", Value::Array(vec![text("CT-1")])),
                ("label", label()),
                ("portion_labels", Value::Array(vec![label()])),
                (
                    "decisions",
                    Value::Array(vec![
                        decision("police/lo/rabat", "allow", &[0], "vsse.context-to-lo"),
                        decision("police/ops/x", "deny", &[], "default.deny"),
                    ]),
                ),
                ("policy_digest", text("pp")),
            ],
        );
        let m = AuditEntry::decode_any(&accepted).unwrap();
        assert_eq!((m.entry.v, m.entry.time), (1, 10));
        let AuditEvent::ItemAccepted {
            outcomes, priority, ..
        } = &m.entry.event
        else {
            panic!("{:?}", m.entry.event)
        };
        assert_eq!(*priority, None);
        assert_eq!(outcomes[0].outcome, Outcome::Queued);
        assert_eq!(outcomes[0].portions_released, 1);
        assert_eq!(outcomes[1].outcome, Outcome::Denied);
        assert_eq!(outcomes[1].reasons, ["default.deny"]);
        assert_eq!(m.decisions.len(), 2);
        assert_eq!(m.decisions[1].recipient, p("police/ops/x"));
        assert_eq!(m.entry.principals().len(), 3);

        let refused = |bytes: Vec<u8>| match AuditEntry::decode(&bytes).unwrap().event {
            AuditEvent::Refused {
                subject,
                cause,
                count,
                samples,
                ..
            } => (subject, cause, count, samples),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            refused(v1(
                1,
                "connection-refused",
                vec![("peer", text("192.0.2.1:5")), ("reason", text("handshake"))]
            )),
            (
                RefusedSubject::Address("192.0.2.1:5".into()),
                "handshake".into(),
                1,
                vec![]
            )
        );
        assert_eq!(
            refused(v1(
                1,
                "submission-refused",
                vec![
                    ("caller", text("police/lo/rabat")),
                    ("problem", text("bad-signature")),
                    ("detail", text("no"))
                ]
            )),
            (
                RefusedSubject::Principal(p("police/lo/rabat")),
                "bad-signature".into(),
                1,
                vec!["no".to_string()]
            )
        );
        assert_eq!(
            refused(v1(
                1,
                "proof-refused",
                vec![
                    ("caller", text("police/lo/rabat")),
                    ("index", Value::Integer(7.into()))
                ]
            ))
            .3,
            ["7"]
        );
        assert_eq!(
            refused(v1(
                1,
                "item-request-refused",
                vec![
                    ("caller", text("police/lo/rabat")),
                    ("item_ref", text("ab")),
                    ("action", text("fetch"))
                ]
            ))
            .1,
            "fetch-refused"
        );
        // Events whose shape did not change read through the current type.
        let ack = v1(
            3,
            "acknowledged",
            vec![
                ("item_ref", text("ab")),
                ("recipient", text("police/lo/rabat")),
            ],
        );
        let e = AuditEntry::decode(&ack).unwrap();
        assert_eq!(e.v, 1);
        assert!(matches!(e.event, AuditEvent::Acknowledged { .. }));
        // A version 2 entry with a version 1 event is not an entry.
        let mut bad = ciborium::from_reader::<Value, _>(&accepted[..]).unwrap();
        if let Value::Map(fields) = &mut bad {
            fields[0].1 = Value::Integer(2.into());
        }
        let mut bytes = Vec::new();
        ciborium::into_writer(&bad, &mut bytes).unwrap();
        assert!(AuditEntry::decode(&bytes).is_err());
        assert!(AuditEntry::decode(b"\xa0").is_err());
    }
}
