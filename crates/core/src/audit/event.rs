//! What an audit entry says: one event, its time, and nothing of any payload.
//!
//! Every event the oversight bodies may ask about — an item accepted, the
//! decision for each of its recipients, a delivery or a refused delivery,
//! an acknowledgement, a policy loaded, refusals counted per subject and
//! cause, the gateway starting and stopping — is one [`AuditEntry`],
//! encoded as deterministic CBOR; those bytes are the leaf data of the RFC
//! 9162 tree. Entries carry digests, labels, principals, decisions and rule
//! ids, never item content, so payloads can be purged at the end of their
//! retention while the log stays verifiable.
//!
//! Two rules shape the events. **Need to know**: each entry is written for
//! at most one reader besides auditors ([`AuditEntry::reader`]), and holds
//! only what that reader may see, so the gateway can hand out an entry and
//! its proof whole (a redacted entry could not be proved). That is why an
//! acceptance is one entry for the sender and one `decided` entry per
//! recipient for auditors. **Bounded**: a store appends only a
//! [`BoundedEntry`], which cannot exceed what the log's export format can
//! hold, and text the gateway does not control is [`clip`]ped.
//!
//! This module is data only: no I/O, no clock.
//!
//! Over 600 lines: every event with the documentation of each field (a
//! format auditors read), and the tests that pin the encoding.

use serde::{Deserialize, Serialize};

use crate::domain::bytes::to_cbor;
use crate::domain::decision::Effect;
use crate::domain::item::Priority;
use crate::domain::label::SecurityLabel;
use crate::domain::principal::PrincipalId;
use crate::domain::receipt::RecipientOutcome;

/// Version of the entry format the gateway writes. Version 1 entries
/// (before refusals were counted, `decided` entries and the item's
/// priority) are still read: see [`super::legacy`].
pub const ENTRY_VERSION: u32 = 2;

/// The decision for one recipient, as recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedDecision {
    /// Rules that decided.
    pub rules: Vec<String>,
    /// Allow or deny.
    pub effect: Effect,
    /// Reasons. Full reasons are written only in entries that auditors
    /// alone read (`decided`, `delivery-refused`); an entry a recipient may
    /// read (`delivered`) leaves them out, because they name the levels of
    /// withheld portions.
    pub reasons: Vec<String>,
    /// Portions released.
    pub portions: Vec<u32>,
    /// The recipient.
    pub recipient: PrincipalId,
}

/// One file of the gateway's configuration snapshot, as a reload read it:
/// what an auditor compares between reloads. Never a key: the gateway's
/// private key is not named, its certificate is.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ConfigFile {
    /// What the file is: `tls-cert` (the gateway's certificate chain),
    /// `ca:<agency>`, `crl:<agency>`.
    pub role: String,
    /// Hex SHA-256 of the file's bytes.
    pub sha256: String,
}

/// Who was refused: an authenticated principal, or a network address for a
/// connection refused before any identity was established.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RefusedSubject {
    /// An authenticated principal.
    Principal(PrincipalId),
    /// A source address (IP only: ports change with every connection).
    Address(String),
    /// Every subject over the per-interval cap, counted together.
    Others,
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
    /// A reload put a new configuration snapshot in force (its policy,
    /// CAs, CRLs and the gateway's certificate). Fields in RFC 8949 order
    /// (shorter keys first).
    PolicyLoaded {
        /// The files the new snapshot was read from, by their digests.
        /// Absent from entries written before reloads named their files.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        files: Vec<ConfigFile>,
        /// What differs from the snapshot it replaced: `policy` and the
        /// [`ConfigFile::role`]s whose digest changed, appeared or went,
        /// sorted. Absent when nothing changed, and from older entries.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        changed: Vec<String>,
        /// Hex SHA-256 of the policy.
        policy_digest: String,
    },
    /// A reload was refused; the snapshot in force stays. Fields in RFC
    /// 8949 order.
    PolicyRefused {
        /// The files as they were read for the refused reload (those that
        /// could be read). Absent from older entries.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        files: Vec<ConfigFile>,
        /// What was wrong (clipped to [`MAX_TEXT`]).
        reason: String,
        /// The roles of the files that differ from the snapshot in force
        /// (what the refused reload would have changed), sorted. Absent
        /// when none, and from older entries.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        changed: Vec<String>,
    },
    /// Refusals of one kind from one subject during one interval, counted
    /// in one entry: refusals anyone can provoke at will must not grow the
    /// log faster than the interval allows (see `Gateway::flush_refusals`).
    Refused {
        /// Last refusal of the interval, Unix seconds.
        last: i64,
        /// The cause: a problem-type slug or a fixed cause such as
        /// `handshake` or `identity` (never caller-supplied text).
        cause: String,
        /// How many times in the interval.
        count: u64,
        /// First refusal of the interval, Unix seconds.
        first: i64,
        /// Up to [`MAX_SAMPLES`] of what was refused: hex SHA-256 digests
        /// of refused bodies, or the item references and audit indices that
        /// were asked for. Never the refused bytes themselves.
        samples: Vec<String>,
        /// Who was refused.
        subject: RefusedSubject,
    },
    /// An item was accepted. Holds what the sender may read: the header
    /// facts, the labels and the outcome for each recipient as the receipt
    /// gives it. The full decision for each recipient follows in its own
    /// `decided` entry, which only auditors read.
    ItemAccepted {
        /// For a request: when its answer is due (Unix seconds), as the
        /// policy in force computed it at acceptance. Absent otherwise.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        due: Option<i64>,
        /// Case references.
        cases: Vec<String>,
        /// Item label.
        label: SecurityLabel,
        /// Hex SHA-256 of the signed manifest.
        digest: String,
        /// Sender.
        sender: PrincipalId,
        /// For an answer: the gateway reference of the request it answers
        /// (its sender was a recipient of the request, and the request's
        /// sender receives it). The request is closed by the first entry
        /// that answers it. Absent otherwise.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        answers: Option<String>,
        /// Sender's id.
        item_id: String,
        /// Purpose.
        purpose: String,
        /// Gateway reference.
        item_ref: String,
        /// One outcome per recipient, as in the sender's receipt.
        outcomes: Vec<RecipientOutcome>,
        /// The header's priority, which policy rules may match on: with
        /// the sender, purpose, cases and labels, every fact a decision
        /// reads, so `policy replay` can decide again. Absent only from
        /// entries mapped from version 1.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        priority: Option<Priority>,
        /// Hex SHA-256 of the policy that decided.
        policy_digest: String,
        /// Portion labels, in order.
        portion_labels: Vec<SecurityLabel>,
    },
    /// The full decision for one recipient of an accepted item, with every
    /// reason. Written right after the item's `item-accepted` entry, in the
    /// same transaction. Auditors only.
    Decided {
        /// Hex SHA-256 of the signed manifest.
        digest: String,
        /// The decision.
        decision: RecordedDecision,
        /// Gateway reference.
        item_ref: String,
        /// Hex SHA-256 of the policy that decided.
        policy_digest: String,
    },
    /// An item was handed to a recipient. Readable by that recipient: the
    /// decision's reasons are left out (see [`RecordedDecision`]).
    Delivered {
        /// Hex digest of the manifest.
        digest: String,
        /// Sender.
        sender: PrincipalId,
        /// The decision at delivery.
        decision: RecordedDecision,
        /// Gateway reference.
        item_ref: String,
        /// Hex SHA-256 of the policy that decided.
        policy_digest: String,
    },
    /// Delivery was refused by the policy in force at delivery. Auditors
    /// only.
    DeliveryRefused {
        /// Sender.
        sender: PrincipalId,
        /// The decision at delivery.
        decision: RecordedDecision,
        /// Gateway reference.
        item_ref: String,
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
        /// Hex digest of the signed manifest.
        digest: String,
        /// Gateway reference.
        item_ref: String,
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
        /// What the gateway found wrong, in words.
        found: String,
        /// The last head the gateway had signed for the previous log (a
        /// C2SP checkpoint note, verifiable with the gateway's key), when
        /// one was known and verified.
        previous_head: Option<String>,
    },
    /// At start, accepted items were found whose stored rows had vanished
    /// (deleted behind the gateway's back), or whose open inbox entries had
    /// vanished or been closed without an audit entry.
    StoreInconsistency {
        /// The first references concerned, sorted (at most 32).
        item_refs: Vec<String>,
        /// Accepted items whose row is gone.
        items_lost: u64,
        /// Open deliveries whose inbox entry is gone or closed.
        deliveries_lost: u64,
    },
    /// A witness the gateway's configuration names refused to cosign a
    /// checkpoint: it last cosigned a larger log (the log was rolled back
    /// or wiped), the checkpoint forks from what it cosigned, or it does
    /// not know or trust this log. Written once per witness and cause
    /// while the refusals last, never for a witness that is only
    /// unreachable. Fields in RFC 8949 order (shorter keys first).
    WitnessRefused {
        /// The size of the checkpoint refused.
        size: u64,
        /// The witness's reason, or what the gateway concluded (clipped
        /// to [`MAX_TEXT`]).
        reason: String,
        /// The witness's HTTP status (409 with a size above the log's,
        /// 422 for a fork or a bad proof, 403, 404, ...).
        status: u16,
        /// The witness, `name+keyid`.
        witness: String,
        /// The size the witness last cosigned, when it said (409).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        known_size: Option<u64>,
    },
}

/// One entry of the audit log, decoded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// [`ENTRY_VERSION`] for entries the gateway writes; 1 for older ones.
    pub v: u32,
    /// Seconds since the Unix epoch.
    pub time: i64,
    /// The event: a map with one key, the event's kebab-case name (or just
    /// the name, for events without fields). Serde's externally tagged
    /// form: it decodes without buffering, which is most of what an
    /// auditor's verification of a large log spends.
    pub event: AuditEvent,
}

/// Largest encoded entry the gateway writes. Entry bundles (C2SP
/// tlog-tiles) store each entry's length as a big-endian u16, so no entry
/// may exceed 65,535 bytes or the log could never be exported again; the
/// margin leaves room for a later entry version.
pub const MAX_ENTRY_BYTES: usize = 60 * 1024;

/// Longest free text (a refused policy's reason) kept in an entry.
pub const MAX_TEXT: usize = 2048;

/// Most samples kept in a `refused` entry.
pub const MAX_SAMPLES: usize = 8;

/// Longest sample kept in a `refused` entry.
pub const MAX_SAMPLE_LEN: usize = 96;

/// An entry would be larger than [`MAX_ENTRY_BYTES`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an audit entry of {len} bytes would exceed the {MAX_ENTRY_BYTES}-byte limit")]
pub struct EntryTooLarge {
    /// Its encoded length.
    pub len: usize,
}

/// An encoded audit entry that is known to fit the log's formats: the only
/// thing a store accepts to append. It can be made only by
/// [`BoundedEntry::new`], which encodes and measures, so no code path can
/// write an entry that would make the log unexportable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BoundedEntry(Vec<u8>);

impl BoundedEntry {
    /// Encodes `event` at `time`, or refuses it if it is too large.
    pub fn new(time: i64, event: AuditEvent) -> Result<Self, EntryTooLarge> {
        let bytes = AuditEntry::new(time, event).encode();
        if bytes.len() > MAX_ENTRY_BYTES {
            return Err(EntryTooLarge { len: bytes.len() });
        }
        Ok(BoundedEntry(bytes))
    }

    /// The leaf data.
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

/// `text` cut to at most `max` bytes on a character boundary, with `…`
/// when it was cut: for text whose length the gateway does not control.
pub fn clip(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
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

    /// Principals this entry is about, for an auditor's search.
    pub fn principals(&self) -> Vec<&PrincipalId> {
        match &self.event {
            AuditEvent::Refused {
                subject: RefusedSubject::Principal(p),
                ..
            } => vec![p],
            AuditEvent::ItemAccepted {
                sender, outcomes, ..
            } => {
                let mut v = vec![sender];
                v.extend(outcomes.iter().map(|o| &o.recipient));
                v
            }
            AuditEvent::Decided { decision, .. } => vec![&decision.recipient],
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

    /// The one principal, besides auditors, who may read this entry and
    /// its proof through the gateway: the sender of an accepted item, the
    /// recipient of a delivery, acknowledgement or expiry. Entries that
    /// would tell a principal about another's decision, clearance or the
    /// labels of what it was not given (`decided`, `delivery-refused`) or
    /// about other principals' refusals have no reader but auditors.
    pub fn reader(&self) -> Option<&PrincipalId> {
        match &self.event {
            AuditEvent::ItemAccepted { sender, .. } => Some(sender),
            AuditEvent::Delivered { decision, .. } => Some(&decision.recipient),
            AuditEvent::Acknowledged { recipient, .. } | AuditEvent::Expired { recipient, .. } => {
                Some(recipient)
            }
            _ => None,
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

    #[test]
    fn an_entry_that_would_not_fit_a_bundle_cannot_be_built() {
        let big = AuditEvent::PolicyRefused {
            files: vec![],
            reason: "x".repeat(70_000),
            changed: vec![],
        };
        let err = BoundedEntry::new(1, big).unwrap_err();
        assert!(err.len > MAX_ENTRY_BYTES);
        let clipped = AuditEvent::PolicyRefused {
            files: vec![],
            reason: clip(&"é".repeat(70_000), MAX_TEXT),
            changed: vec![],
        };
        let ok = BoundedEntry::new(1, clipped).unwrap();
        assert!(ok.bytes().len() < MAX_ENTRY_BYTES);
        assert!(MAX_ENTRY_BYTES < usize::from(u16::MAX));
    }

    /// One of each event, every optional field filled.
    fn every_event() -> Vec<AuditEvent> {
        use crate::domain::label::{Evaluation, HandlingCode};
        use crate::domain::principal::Agency;
        use crate::domain::receipt::Outcome;
        let p = |s: &str| PrincipalId::new(s).unwrap();
        let mut label = SecurityLabel::new("SECRET", Agency::new("vsse").unwrap());
        label.caveats.insert("HUMINT".into());
        label.rel_to.insert(Agency::new("police").unwrap());
        label.handling = Some(HandlingCode::H2);
        label.diffusion_restreinte = true;
        label.originator.third_party = Some("partner/ma-dgst".into());
        label.evaluation = Some(Evaluation {
            system: "6x6".into(),
            grade: "B2".into(),
        });
        label.review_date = Some("2030-01-01".into());
        let decision = RecordedDecision {
            recipient: p("police/lo/rabat"),
            effect: Effect::Allow,
            portions: vec![1],
            rules: vec!["vsse.context-to-lo".into()],
            reasons: vec!["portion 1 released".into()],
        };
        vec![
            AuditEvent::GatewayStarted {
                version: "1".into(),
                policy_digest: "ab".into(),
            },
            AuditEvent::GatewayStopped,
            AuditEvent::PolicyLoaded {
                files: vec![
                    ConfigFile {
                        role: "tls-cert".into(),
                        sha256: "cd".into(),
                    },
                    ConfigFile {
                        role: "crl:police".into(),
                        sha256: "ef".into(),
                    },
                ],
                changed: vec!["crl:police".into(), "policy".into()],
                policy_digest: "ab".into(),
            },
            AuditEvent::PolicyRefused {
                files: vec![ConfigFile {
                    role: "ca:vsse".into(),
                    sha256: "cd".into(),
                }],
                reason: "bad".into(),
                changed: vec!["ca:vsse".into()],
            },
            AuditEvent::Refused {
                subject: RefusedSubject::Principal(p("police/lo/rabat")),
                cause: "proof-refused".into(),
                count: 3,
                first: 1,
                last: 2,
                samples: vec!["0".into()],
            },
            AuditEvent::Refused {
                subject: RefusedSubject::Address("192.0.2.1".into()),
                cause: "handshake".into(),
                count: 1,
                first: 1,
                last: 1,
                samples: vec![],
            },
            AuditEvent::ItemAccepted {
                due: Some(1_790_003_600),
                answers: Some("11".repeat(16)),
                item_ref: "00".repeat(16),
                item_id: "id".into(),
                sender: p("vsse/analysis/ct"),
                digest: "dd".into(),
                purpose: "terrorism".into(),
                cases: vec!["CT-2026-014".into()],
                label: label.clone(),
                portion_labels: vec![label.clone(), label],
                outcomes: vec![RecipientOutcome {
                    recipient: p("police/lo/rabat"),
                    outcome: Outcome::Denied,
                    portions_released: 0,
                    reasons: vec!["no grant".into()],
                }],
                priority: Some(crate::domain::item::Priority::Flash),
                policy_digest: "ab".into(),
            },
            AuditEvent::Decided {
                item_ref: "r".into(),
                digest: "d".into(),
                decision: decision.clone(),
                policy_digest: "ab".into(),
            },
            AuditEvent::Delivered {
                item_ref: "r".into(),
                digest: "d".into(),
                sender: p("vsse/analysis/ct"),
                decision: decision.clone(),
                policy_digest: "ab".into(),
            },
            AuditEvent::DeliveryRefused {
                item_ref: "r".into(),
                sender: p("vsse/analysis/ct"),
                decision,
                policy_digest: "ab".into(),
            },
            AuditEvent::Expired {
                item_ref: "r".into(),
                recipient: p("police/lo/rabat"),
            },
            AuditEvent::Purged {
                item_ref: "r".into(),
                digest: "d".into(),
            },
            AuditEvent::Acknowledged {
                item_ref: "r".into(),
                recipient: p("police/lo/rabat"),
            },
            AuditEvent::NewLog {
                found: "wiped".into(),
                previous_head: Some("note".into()),
            },
            AuditEvent::StoreInconsistency {
                item_refs: vec!["r".into()],
                items_lost: 1,
                deliveries_lost: 2,
            },
            AuditEvent::WitnessRefused {
                size: 3,
                reason: "rolled back".into(),
                status: 409,
                witness: "comite-p.example/w1+01020304".into(),
                known_size: Some(20),
            },
        ]
    }

    #[test]
    fn every_entry_is_in_rfc8949_deterministic_order() {
        for event in every_event() {
            let bytes = BoundedEntry::new(1_790_000_000, event).unwrap();
            crate::domain::bytes::assert_core_deterministic(bytes.bytes());
        }
    }

    #[test]
    fn an_item_that_is_neither_request_nor_answer_is_recorded_as_before() {
        // `due` and `answers` are left out when absent, so entries of items
        // that ask and answer nothing keep the bytes they had before the
        // fields existed, and such older entries still decode.
        let accepted = every_event()
            .into_iter()
            .find(|e| matches!(e, AuditEvent::ItemAccepted { .. }))
            .unwrap();
        let AuditEvent::ItemAccepted {
            due, ref answers, ..
        } = accepted
        else {
            unreachable!()
        };
        assert!(due.is_some() && answers.is_some());
        let entry = AuditEntry::new(1, accepted.clone());
        assert_eq!(AuditEntry::decode(&entry.encode()).unwrap(), entry);
        let mut plain = accepted;
        if let AuditEvent::ItemAccepted { due, answers, .. } = &mut plain {
            *due = None;
            *answers = None;
        }
        let bytes = AuditEntry::new(1, plain.clone()).encode();
        let has = |key: &str| {
            let mut text = vec![0x60 | key.len() as u8];
            text.extend_from_slice(key.as_bytes());
            bytes.windows(text.len()).any(|w| w == text)
        };
        assert!(!has("due") && !has("answers") && has("cases"));
        assert_eq!(AuditEntry::decode(&bytes).unwrap().event, plain);
    }

    #[test]
    fn a_reload_entry_written_before_files_were_named_still_decodes() {
        // As version 2 wrote them before: the digest alone, the reason alone.
        let loaded = AuditEntry::new(
            1,
            AuditEvent::PolicyLoaded {
                files: vec![],
                changed: vec![],
                policy_digest: "ab".into(),
            },
        );
        let bytes = loaded.encode();
        let old = b"\xa3av\x02dtime\x01eevent\xa1mpolicy-loaded\xa1mpolicy_digestbab";
        assert_eq!(bytes, old, "nothing new is written when nothing is named");
        assert_eq!(AuditEntry::decode(old).unwrap(), loaded);
        let refused = b"\xa3av\x02dtime\x01eevent\xa1npolicy-refused\xa1freasoncbad";
        assert!(matches!(
            AuditEntry::decode(refused).unwrap().event,
            AuditEvent::PolicyRefused { ref files, ref changed, .. } if files.is_empty() && changed.is_empty()
        ));
    }

    #[test]
    fn clip_cuts_on_a_character_boundary() {
        assert_eq!(clip("abc", 3), "abc");
        let c = clip("ééééé", 6);
        assert!(c.len() <= 6 && c.ends_with('…'), "{c}");
    }
}
