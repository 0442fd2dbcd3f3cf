//! What the officer sees: the station's status, the list of items (FLASH
//! first) and one item read, as values that the CLI prints as text or
//! JSON. Computed from a vault scan; reading an item verifies it again
//! ([`crate::client::Station::open`]) before anything of it is returned,
//! and marks it read. This module never talks to the gateway.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use super::{AgentError, LinkState};
use crate::client::Station;
use crate::domain::attestation::Attestation;
use crate::domain::item::{Header, Priority};
use crate::domain::label::SecurityLabel;
use crate::domain::principal::PrincipalId;
use crate::vault::{OutgoingState, Record, Scan, Unlocked};

/// `station status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// The link, when an agent is running.
    pub link: Option<LinkState>,
    /// Whether the vault is locked (then the counts below are absent).
    pub locked: bool,
    /// Written, not yet sent.
    pub queued: Option<usize>,
    /// Sent, no receipt yet.
    pub awaiting_receipt: Option<usize>,
    /// Accepted by the gateway (receipt kept).
    pub sent: Option<usize>,
    /// Refused by the gateway for good.
    pub refused: Option<usize>,
    /// Received and kept.
    pub received: Option<usize>,
    /// Received and not read yet.
    pub unread: Option<usize>,
    /// Of these, FLASH.
    pub unread_flash: Option<usize>,
    /// Requests received whose answer is past due and not sent.
    pub overdue: Option<usize>,
    /// Items the gateway listed at the last look (with the vault locked,
    /// they wait there).
    pub waiting_at_gateway: usize,
    /// Deliveries that failed verification or could not be fetched: never
    /// stored, never acknowledged.
    pub not_verified: BTreeMap<String, String>,
    /// Vault files that do not open.
    pub tampered: usize,
}

/// One line of `station list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListEntry {
    /// `received` or `outgoing`.
    pub direction: String,
    /// The item's reference.
    pub item_ref: String,
    /// The sender's id for the item.
    pub item_id: String,
    /// FLASH, URGENT, ROUTINE.
    pub priority: Priority,
    /// Sender.
    pub from: PrincipalId,
    /// Recipients.
    pub to: Vec<PrincipalId>,
    /// Classification level.
    pub level: String,
    /// Purpose.
    pub purpose: String,
    /// Received or written, seconds since the Unix epoch.
    pub at: i64,
    /// `unread`, `read`, `queued`, `awaiting_receipt`, `sent`, `refused`.
    pub state: String,
    /// When an answer is due, for a received request.
    pub due: Option<i64>,
    /// The answer is past due.
    pub overdue: bool,
}

/// `station read ID`: an item, verified again just now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reading {
    /// The item's reference.
    pub item_ref: String,
    /// The header, as the sender signed it.
    pub header: Header,
    /// The label, as the sender signed it.
    pub label: SecurityLabel,
    /// The portions released to this station.
    pub portions: Vec<ReadPortion>,
    /// The gateway's attestation (verified).
    pub attestation: Attestation,
    /// Always true: an item that does not verify is not returned.
    pub verified: bool,
    /// Received, seconds since the Unix epoch.
    pub received_at: i64,
    /// First read.
    pub read_at: Option<i64>,
}

/// One released portion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadPortion {
    /// Its index in the sender's item.
    pub index: u32,
    /// Its label.
    pub label: SecurityLabel,
    /// Its content type.
    pub content_type: String,
    /// Its text.
    pub text: String,
}

/// Requests received whose answer is due by `now` and that no item sent
/// from here answers.
fn overdue_refs(scan: &Scan, now: i64) -> Vec<&str> {
    let answered: Vec<&str> = scan
        .records
        .iter()
        .filter_map(|r| match r {
            Record::Outgoing(o) if o.state() != OutgoingState::Refused => {
                o.header.in_reply_to.as_deref()
            }
            _ => None,
        })
        .collect();
    scan.records
        .iter()
        .filter_map(|r| match r {
            Record::Received(r)
                if r.due.is_some_and(|d| d <= now) && !answered.contains(&r.item_ref.as_str()) =>
            {
                Some(r.item_ref.as_str())
            }
            _ => None,
        })
        .collect()
}

/// The status, from a scan of the unlocked vault (`None`: locked).
pub fn status_of(
    scan: Option<&Scan>,
    link: Option<LinkState>,
    waiting_at_gateway: usize,
    not_verified: BTreeMap<String, String>,
    now: i64,
) -> Status {
    let mut status = Status {
        link,
        locked: scan.is_none(),
        queued: None,
        awaiting_receipt: None,
        sent: None,
        refused: None,
        received: None,
        unread: None,
        unread_flash: None,
        overdue: None,
        waiting_at_gateway,
        not_verified,
        tampered: 0,
    };
    let Some(scan) = scan else {
        return status;
    };
    let outgoing = |state: OutgoingState| {
        Some(
            scan.records
                .iter()
                .filter(|r| matches!(r, Record::Outgoing(o) if o.state() == state))
                .count(),
        )
    };
    status.queued = outgoing(OutgoingState::Queued);
    status.awaiting_receipt = outgoing(OutgoingState::AwaitingReceipt);
    status.sent = outgoing(OutgoingState::Sent);
    status.refused = outgoing(OutgoingState::Refused);
    let received: Vec<_> = scan
        .records
        .iter()
        .filter_map(|r| match r {
            Record::Received(r) => Some(r),
            _ => None,
        })
        .collect();
    status.received = Some(received.len());
    status.unread = Some(received.iter().filter(|r| r.read_at.is_none()).count());
    status.unread_flash = Some(
        received
            .iter()
            .filter(|r| r.read_at.is_none() && r.header.priority == Priority::Flash)
            .count(),
    );
    status.overdue = Some(overdue_refs(scan, now).len());
    status.tampered = scan.tampered.len();
    status
}

/// Every item in the vault, FLASH first, then unread before read, then
/// newest first.
pub fn list_of(scan: &Scan, now: i64) -> Vec<ListEntry> {
    let overdue = overdue_refs(scan, now);
    let mut out: Vec<ListEntry> = scan
        .records
        .iter()
        .map(|record| match record {
            Record::Received(r) => ListEntry {
                direction: "received".into(),
                item_ref: r.item_ref.clone(),
                item_id: r.header.id.clone(),
                priority: r.header.priority,
                from: r.header.sender.clone(),
                to: r.header.recipients.clone(),
                level: r.label.level.clone(),
                purpose: r.header.purpose.clone(),
                at: r.received_at,
                state: if r.read_at.is_some() {
                    "read"
                } else {
                    "unread"
                }
                .into(),
                due: r.due,
                overdue: overdue.contains(&r.item_ref.as_str()),
            },
            Record::Outgoing(o) => ListEntry {
                direction: "outgoing".into(),
                item_ref: o.item_ref.clone(),
                item_id: o.header.id.clone(),
                priority: o.header.priority,
                from: o.header.sender.clone(),
                to: o.header.recipients.clone(),
                level: o
                    .item
                    .own_manifest()
                    .map(|m| m.label.level)
                    .unwrap_or_default(),
                purpose: o.header.purpose.clone(),
                at: o.kept_at,
                state: serde_json::to_value(o.state())
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                due: None,
                overdue: false,
            },
        })
        .collect();
    out.sort_by(|a, b| {
        (
            a.priority,
            a.state != "unread",
            std::cmp::Reverse(a.at),
            &a.item_ref,
        )
            .cmp(&(
                b.priority,
                b.state != "unread",
                std::cmp::Reverse(b.at),
                &b.item_ref,
            ))
    });
    out
}

/// Reads the received item `item_ref`: verified again by `station`, then
/// marked read (durably) and returned.
pub fn read_item(
    vault: &Unlocked,
    station: &Station,
    item_ref: &str,
    now: i64,
) -> Result<Reading, AgentError> {
    let mut received = vault
        .received(item_ref)?
        .ok_or_else(|| AgentError::NotFound(item_ref.to_string()))?;
    let delivery = station.open(&received.item)?;
    if received.read_at.is_none() {
        received.read_at = Some(now);
        vault.put(&Record::Received(received.clone()))?;
    }
    Ok(Reading {
        item_ref: received.item_ref,
        header: delivery.manifest.header,
        label: delivery.manifest.label,
        portions: received
            .item
            .portions
            .iter()
            .map(|p| ReadPortion {
                index: p.index,
                label: p.portion.label.clone(),
                content_type: p.portion.content_type.clone(),
                text: String::from_utf8_lossy(&p.portion.body.0).into_owned(),
            })
            .collect(),
        attestation: delivery.attestation,
        verified: true,
        received_at: received.received_at,
        read_at: received.read_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::item::Priority;
    use crate::vault::tests::received;
    use crate::vault::{Outgoing, Record, Scan};

    fn scan(records: Vec<Record>) -> Scan {
        Scan {
            records,
            tampered: vec![],
        }
    }

    #[test]
    fn a_request_past_due_is_overdue_until_an_answer_is_written() {
        let mut request = received("rfi-1", None);
        request.due = Some(1_000);
        let mut flash = received("flash-1", None);
        flash.header.priority = Priority::Flash;
        flash.received_at = 10;
        let mut records = vec![Record::Received(request.clone()), Record::Received(flash)];
        let status = status_of(
            Some(&scan(records.clone())),
            None,
            0,
            Default::default(),
            999,
        );
        assert_eq!(status.overdue, Some(0), "not yet due");
        let status = status_of(
            Some(&scan(records.clone())),
            None,
            0,
            Default::default(),
            1_000,
        );
        assert_eq!(status.overdue, Some(1));
        assert_eq!(
            (status.received, status.unread, status.unread_flash),
            (Some(2), Some(2), Some(1))
        );
        let list = list_of(&scan(records.clone()), 1_000);
        assert_eq!(list[0].item_ref, records[1].item_ref(), "FLASH first");
        assert!(list[1].overdue);

        // An answer written (queued, not even sent yet) closes it here.
        let mut answer = request.header.clone();
        answer.in_reply_to = Some(request.item_ref.clone());
        records.push(Record::Outgoing(Outgoing {
            item_ref: "answer".into(),
            kept_at: 1_001,
            attempts: 0,
            last_attempt: None,
            header: answer,
            item: crate::domain::item::SignedItem {
                envelope: Default::default(),
                portions: vec![],
            },
            receipt: None,
            refused: None,
            purge_after: None,
        }));
        let status = status_of(Some(&scan(records)), None, 0, Default::default(), 2_000);
        assert_eq!(status.overdue, Some(0));
        assert_eq!(status.queued, Some(1));
    }

    #[test]
    fn a_locked_status_counts_nothing_it_cannot_see() {
        let status = status_of(None, None, 3, Default::default(), 0);
        assert!(status.locked);
        assert_eq!(status.waiting_at_gateway, 3);
        assert!(status.received.is_none() && status.queued.is_none());
    }
}
